//! The `rudask` command line: `scheduler`, `worker` and `demo`. Programs that
//! carry their own tasks (such as a test worker binary) can call [`main`] to
//! offer the same commands; the `rudask` binary passes its demo to
//! [`main_with_demo`].

use crate::config::LogFormat;
use crate::runtime::scheduler::{self, SchedulerOptions};
use crate::runtime::worker::{self, WorkerOptions};
use clap::{Parser, Subcommand};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "rudask", version, about = "A distributed task scheduler for async Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Configuration file [default: rudask.toml in the current directory, if any].
    #[arg(long, global = true, value_name = "FILE", env = "RUDASK_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    logging: LoggingFlags,
}

// The flags of each command mirror its section of the configuration
// (`crate::config`); a flag that was not given is not serialized, so it
// leaves the value from the file or the environment alone. Defaults and
// environment variables are listed in `crate::config::SETTINGS`.

/// `[logging]` flags, accepted by every command.
#[derive(clap::Args, Serialize, Debug)]
struct LoggingFlags {
    /// Log filter, e.g. `info` or `warn,rudask=debug` [env: RUDASK_LOG_LEVEL,
    /// RUST_LOG; default: info].
    #[arg(long = "log-level", global = true, value_name = "FILTER")]
    #[serde(rename = "level", skip_serializing_if = "Option::is_none")]
    level: Option<String>,
    /// Log line format [env: RUDASK_LOG_FORMAT; default: text].
    #[arg(long = "log-format", global = true, value_enum)]
    #[serde(rename = "format", skip_serializing_if = "Option::is_none")]
    format: Option<crate::config::LogFormat>,
}

/// `rudask scheduler` flags, the `[scheduler]` section.
#[derive(clap::Args, Serialize, Debug)]
struct SchedulerFlags {
    /// Interface to listen on [env: RUDASK_SCHEDULER_HOST; default: 127.0.0.1].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    /// Port to listen on, 0 = any free port [env: RUDASK_SCHEDULER_PORT; default: 8786].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    /// Enable a plugin linked into this binary: NAME or NAME:JSON-CONFIG
    /// (repeatable), e.g. `--plugin event-log:{"path":"events.jsonl"}`.
    #[arg(long = "plugin", value_name = "NAME[:JSON]")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plugins: Vec<String>,
    /// Directory of the durable dataset store: published datasets are
    /// written there and restored when a scheduler starts over it.
    /// Default: `rudask-scheduler-PORT/datasets` under the system's
    /// temporary directory (with `--port 0`, PID instead of PORT)
    /// [env: RUDASK_DATASET_STORE].
    #[arg(long, value_name = "DIR", conflicts_with = "no_dataset_store")]
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_store: Option<std::path::PathBuf>,
    /// Keep published datasets in memory only.
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    no_dataset_store: bool,
    /// Where to serve the web dashboard and `/metrics`, HOST:PORT; port 0 =
    /// any free port [env: RUDASK_DASHBOARD_ADDRESS; default: 127.0.0.1:8787].
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dashboard")]
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard_address: Option<String>,
    /// Serve no dashboard.
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    no_dashboard: bool,
    /// Directory of the scheduler's CA, certificate, token and connection
    /// file (generated on first start, reused later) [env: RUDASK_WORK_DIR;
    /// default: `rudask-scheduler-PORT` under the temporary directory, PID
    /// instead of PORT with `--port 0`].
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    work_dir: Option<std::path::PathBuf>,
    /// The scheduler's TLS certificate chain (PEM), instead of generating one.
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "tls_ca"], conflicts_with = "insecure")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<std::path::PathBuf>,
    /// The CA that clients and workers trust (PEM), with `--tls-cert`.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_ca: Option<std::path::PathBuf>,
    /// Turn TLS and the token off: anyone who can reach the port controls
    /// the cluster. Only for trusted networks [env: RUDASK_INSECURE].
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    insecure: bool,
}

/// `rudask worker` flags, the `[worker]` section.
#[derive(clap::Args, Serialize, Debug)]
struct WorkerFlags {
    /// Scheduler address, e.g. tcp://127.0.0.1:8786.
    #[arg(value_name = "SCHEDULER")]
    #[serde(skip)]
    address: Option<String>,
    /// Scheduler address (alternative to the positional argument) [env: RUDASK_SCHEDULER].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduler: Option<String>,
    /// Task slots [env: RUDASK_NTHREADS; default: one per core].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    nthreads: Option<usize>,
    /// Worker name [default: its data address].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// Interface for the worker's data port [default: 127.0.0.1].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    /// Resources offered to tasks that ask for them, e.g. `GPU=2` or
    /// `"GPU=2 MEMORY=8e9"` (repeatable) [env: RUDASK_WORKER_RESOURCES].
    #[arg(long, value_name = "NAME=AMOUNT")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<String>,
    /// Enable a worker plugin linked into this binary: NAME or
    /// NAME:JSON-CONFIG (repeatable), e.g. `--plugin environ:{"vars":{"A":"1"}}`.
    #[arg(long = "plugin", value_name = "NAME[:JSON]")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plugins: Vec<String>,
    /// Where to serve this worker's `/metrics`, HOST:PORT; port 0 = any free
    /// port [env: RUDASK_METRICS_ADDRESS; default: 127.0.0.1:0].
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_metrics")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_address: Option<String>,
    /// Serve no `/metrics`.
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    no_metrics: bool,
    /// Memory the worker may use: `auto` (this machine's memory), `none`, a
    /// percentage (`80%`) or a size (`4GiB`, `4e9`) [env:
    /// RUDASK_WORKER_MEMORY_LIMIT; default: auto].
    #[arg(long, value_name = "LIMIT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_limit: Option<String>,
    /// Fraction of the limit above which results in memory are spilled to
    /// disk, or `off` [default: 0.6].
    #[arg(long, value_name = "FRACTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_target: Option<String>,
    /// Fraction of the limit above which process memory spills more, or
    /// `off` [default: 0.7].
    #[arg(long, value_name = "FRACTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_spill: Option<String>,
    /// Fraction of the limit above which process memory pauses the worker,
    /// or `off` [default: 0.8].
    #[arg(long, value_name = "FRACTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_pause: Option<String>,
    /// Fraction of the limit above which process memory makes the nanny
    /// restart the worker, or `off` [default: 0.95].
    #[arg(long, value_name = "FRACTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_terminate: Option<String>,
    /// Run the worker in this process, without a nanny restarting it [env: RUDASK_NO_NANNY].
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    no_nanny: bool,
    /// The connection file the scheduler wrote: its address, token and CA
    /// [env: RUDASK_CONNECTION_FILE].
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_file: Option<std::path::PathBuf>,
    /// The cluster token [env: RUDASK_TOKEN].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The cluster CA certificate (PEM file, or PEM text) [env: RUDASK_TLS_CA].
    #[arg(long, value_name = "PEM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_ca: Option<String>,
    /// Certificate chain (PEM) the data port serves, instead of the cluster
    /// certificate the scheduler hands out.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<std::path::PathBuf>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The flags given to one command, shaped like the configuration.
#[derive(Serialize)]
struct Given<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduler: Option<&'a SchedulerFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'a WorkerFlags>,
    logging: &'a LoggingFlags,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scheduler.
    #[command(after_long_help = crate::config::help("scheduler"))]
    Scheduler(Box<SchedulerFlags>),
    /// Run a worker connected to a scheduler.
    #[command(after_long_help = crate::config::help("worker"))]
    Worker(Box<WorkerFlags>),
    /// List the task functions registered in this binary.
    Tasks,
    /// Start a local cluster in this process and run the published-dataset
    /// story (only in the `rudask` binary).
    Demo {
        /// Run the workers as separate processes over TCP.
        #[arg(long)]
        processes: bool,
        /// Number of workers.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
}

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG`
/// (default `info`).
pub fn init_logging() {
    let level = std::env::var("RUST_LOG").ok();
    let _ = install_logging(level.as_deref().unwrap_or("info"), LogFormat::Text);
}

/// Installs the subscriber for `filter` (an `EnvFilter` directive such as
/// `warn,rudask=debug`) writing lines in `format` to stderr.
fn install_logging(filter: &str, format: LogFormat) -> crate::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
        crate::Error::InvalidArgument(format!(
            "bad log level {filter:?} (--log-level, RUDASK_LOG_LEVEL, RUST_LOG or logging.level): {e}"
        ))
    })?;
    // Spans are logged as they close, with their busy and idle times: a task
    // run or a client request at `debug` level is one line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    // A subscriber installed earlier (by the program embedding the CLI) stays.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    Ok(())
}

/// What `rudask demo` runs: given `--processes` and `--workers`.
pub type Demo = fn(bool, usize) -> futures::future::BoxFuture<'static, crate::Result<()>>;

/// Parses the command line and runs the command; `demo` is not available.
pub fn main() -> ExitCode {
    main_with_demo(None)
}

/// A command ready to run, its configuration merged.
enum Run {
    Tasks,
    Scheduler(Box<SchedulerOptions>),
    /// The options, and whether a nanny runs the worker.
    Worker(Box<WorkerOptions>, bool),
    Demo {
        processes: bool,
        workers: usize,
    },
}

/// Merges the configuration of the command, installs logging, and turns
/// the settings into the options the runtime takes.
fn prepare(cli: Cli) -> crate::Result<Run> {
    let Cli { command, config: file, logging } = cli;
    let configure = |given: Given<'_>| {
        let config = crate::config::load(file.as_deref(), &given)?;
        let l = &config.logging;
        install_logging(l.level.as_deref().unwrap_or("info"), l.format)?;
        Ok::<_, crate::Error>(config)
    };
    match command {
        Command::Tasks => Ok(Run::Tasks),
        Command::Demo { processes, workers } => {
            // The demo's story is its output; only problems are logged.
            let format = logging.format.unwrap_or_default();
            install_logging(logging.level.as_deref().unwrap_or("warn"), format)?;
            Ok(Run::Demo { processes, workers })
        }
        Command::Scheduler(flags) => {
            let given = Given { scheduler: Some(&flags), worker: None, logging: &logging };
            let mut c = configure(given)?.scheduler;
            // A flag naming a place beats a file or environment turning it off.
            if flags.dataset_store.is_some() {
                c.no_dataset_store = false;
            }
            if flags.dashboard_address.is_some() {
                c.no_dashboard = false;
            }
            Ok(Run::Scheduler(Box::new(scheduler_options(c)?)))
        }
        Command::Worker(flags) => {
            let given = Given { scheduler: None, worker: Some(&flags), logging: &logging };
            let mut c = configure(given)?.worker;
            if flags.metrics_address.is_some() {
                c.no_metrics = false;
            }
            if let Some(address) = flags.address {
                c.scheduler = Some(address);
            }
            let nanny = !c.no_nanny && !crate::runtime::nanny::is_child();
            Ok(Run::Worker(Box::new(worker_options(c)?), nanny))
        }
    }
}

fn scheduler_options(c: crate::config::SchedulerSection) -> crate::Result<SchedulerOptions> {
    let dataset_store = match (c.dataset_store, c.no_dataset_store) {
        (_, true) => None,
        (Some(dir), false) => Some(dir),
        (None, false) => {
            let id = if c.port == 0 { std::process::id() } else { u32::from(c.port) };
            Some(std::env::temp_dir().join(format!("rudask-scheduler-{id}")).join("datasets"))
        }
    };
    let dashboard = (!c.no_dashboard).then_some(c.dashboard_address);
    let work_dir = c.work_dir.unwrap_or_else(|| {
        let id = if c.port == 0 { std::process::id() } else { u32::from(c.port) };
        std::env::temp_dir().join(format!("rudask-scheduler-{id}"))
    });
    let security = match (c.insecure, c.tls_cert, c.tls_key, c.tls_ca) {
        (true, ..) => crate::SchedulerSecurity::Insecure,
        (false, Some(cert), Some(key), Some(ca)) => {
            crate::SchedulerSecurity::Files { cert, key, ca, token: None, work_dir: Some(work_dir) }
        }
        (false, None, None, None) => crate::SchedulerSecurity::WorkDir(work_dir),
        _ => {
            return Err(crate::Error::InvalidArgument(
                "scheduler.tls_cert, tls_key and tls_ca (--tls-cert, --tls-key, --tls-ca) go \
                 together: give all three, or none to generate them"
                    .into(),
            ))
        }
    };
    let mut opts = SchedulerOptions {
        host: c.host,
        port: c.port,
        dataset_store,
        dashboard,
        security,
        ..Default::default()
    };
    for spec in c.plugins {
        opts.plugins.add_named(spec.parse()?)?;
    }
    Ok(opts)
}

fn worker_options(c: crate::config::WorkerSection) -> crate::Result<WorkerOptions> {
    let (mut credentials, file_address) = match &c.connection_file {
        Some(path) => {
            let file = crate::ConnectionFile::read(path)?;
            (file.credentials(), Some(file.address))
        }
        None => (crate::Credentials::new(), None),
    };
    if let Some(token) = c.token {
        credentials = credentials.token(token);
    }
    if let Some(ca) = &c.tls_ca {
        credentials = credentials.tls_ca(ca)?;
    }
    let scheduler = c.scheduler.or(file_address).ok_or_else(|| {
        crate::Error::InvalidArgument(
            "no scheduler address: give it as `rudask worker ADDRESS`, --scheduler, \
             --connection-file, RUDASK_SCHEDULER or worker.scheduler in rudask.toml"
                .into(),
        )
    })?;
    let mut opts = WorkerOptions::new(scheduler);
    opts.credentials = credentials;
    opts.tls_identity = match (c.tls_cert, c.tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(crate::Error::InvalidArgument(
                "worker.tls_cert and tls_key (--tls-cert, --tls-key) go together".into(),
            ))
        }
    };
    if let Some(n) = c.nthreads {
        opts.nthreads = n;
    }
    opts.name = c.name;
    opts.host = c.host;
    opts.resources = rudask_core::graph::parse_resources(&c.resources.0.join(","))
        .map_err(|e| crate::Error::InvalidArgument(format!("--resources: {e}")))?;
    for spec in c.plugins {
        opts.plugins.add_named(spec.parse()?)?;
    }
    opts.metrics = (!c.no_metrics).then_some(c.metrics_address);
    let flag = |name: &str, e: crate::Error| match e {
        crate::Error::InvalidArgument(why) => crate::Error::InvalidArgument(format!(
            "--{name}: {why} (setting worker.{})",
            name.replace('-', "_")
        )),
        other => other,
    };
    opts.memory_limit = c.memory_limit.parse().map_err(|e| flag("memory-limit", e))?;
    let fraction = |name: &str, v: &str| {
        crate::runtime::memory_limit::MemoryThresholds::parse_fraction(v).map_err(|e| flag(name, e))
    };
    opts.memory_thresholds = crate::runtime::memory_limit::MemoryThresholds {
        target: fraction("memory-target", &c.memory_target)?,
        spill: fraction("memory-spill", &c.memory_spill)?,
        pause: fraction("memory-pause", &c.memory_pause)?,
        terminate: fraction("memory-terminate", &c.memory_terminate)?,
    };
    Ok(opts)
}

/// Parses the command line and runs the command, with `demo` as `rudask demo`.
///
/// ```no_run
/// fn demo(_processes: bool, _workers: usize) -> futures::future::BoxFuture<'static, rudask::Result<()>> {
///     Box::pin(async { Ok(()) })
/// }
/// fn main() -> std::process::ExitCode {
///     rudask::cli::main_with_demo(Some(demo))
/// }
/// ```
pub fn main_with_demo(demo: Option<Demo>) -> ExitCode {
    ExitCode::from(run(demo))
}

/// Parses the command line, runs the command and gives its exit status.
pub(crate) fn run(demo: Option<Demo>) -> u8 {
    crate::launch_worker();
    let run = match prepare(Cli::parse()) {
        Ok(Run::Tasks) => {
            for id in rudask_core::registry::Catalog::global().ids() {
                println!("{id}");
            }
            return 0;
        }
        // Options are checked (above) before the nanny starts its worker.
        Ok(Run::Worker(_, true)) => return crate::runtime::nanny::supervise(),
        Ok(run) => run,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        match run {
            Run::Scheduler(opts) => {
                let handle = scheduler::start(*opts).await?;
                use std::io::Write;
                let mut stdout = std::io::stdout();
                let _ = writeln!(stdout, "rudask scheduler listening at {}", handle.address());
                // Whoever reads the address may stop reading after it.
                if let Some(path) = handle.connection_file() {
                    let _ =
                        writeln!(stdout, "rudask scheduler connection file: {}", path.display());
                }
                if let Some(url) = handle.dashboard_url() {
                    let _ = writeln!(stdout, "rudask dashboard at {url}");
                }
                let _ = stdout.flush();
                if !handle.credentials().has_token() {
                    eprintln!(
                        "warning: insecure: TLS and token authentication are off; anyone who \
                         can reach {} can run code on this cluster",
                        handle.address()
                    );
                }
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {
                        handle.shutdown();
                        Ok(())
                    }
                    () = handle.stopped() => if handle.stop_requested() {
                        Ok(())
                    } else {
                        Err(crate::Error::Disconnected(
                            "the scheduler stopped unexpectedly; see the log above".into(),
                        ))
                    },
                }
            }
            Run::Worker(opts, _) => worker::run(*opts).await,
            Run::Demo { processes, workers } => match demo {
                Some(demo) => demo(processes, workers).await,
                None => Err(crate::Error::Unsupported(
                    "this binary has no demo; run `cargo run --bin rudask -- demo`".into(),
                )),
            },
            Run::Tasks => Ok(()),
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

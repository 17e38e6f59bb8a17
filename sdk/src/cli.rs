//! The `rudask` command line: `scheduler`, `worker` and `demo`. Programs that
//! carry their own tasks (such as a test worker binary) can call [`main`] to
//! offer the same commands; the `rudask` binary passes its demo to
//! [`main_with_demo`].

use crate::runtime::scheduler::{self, SchedulerOptions};
use crate::runtime::worker::{self, WorkerOptions};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "rudask", version, about = "A distributed task scheduler for async Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scheduler.
    Scheduler {
        /// Interface to listen on.
        #[arg(long, default_value = "127.0.0.1", env = "RUDASK_SCHEDULER_HOST")]
        host: String,
        /// Port to listen on (0 = any free port).
        #[arg(long, default_value_t = 8786, env = "RUDASK_SCHEDULER_PORT")]
        port: u16,
        /// Enable a plugin linked into this binary: NAME or NAME:JSON-CONFIG
        /// (repeatable), e.g. `--plugin event-log:{"path":"events.jsonl"}`.
        #[arg(long = "plugin", value_name = "NAME[:JSON]")]
        plugins: Vec<crate::plugin::PluginSpec>,
        /// Directory of the durable dataset store: published datasets are
        /// written there and restored when a scheduler starts over it.
        /// Default: `rudask-scheduler-PORT/datasets` under the system's
        /// temporary directory (with `--port 0`, PID instead of PORT).
        #[arg(
            long,
            value_name = "DIR",
            env = "RUDASK_DATASET_STORE",
            conflicts_with = "no_dataset_store"
        )]
        dataset_store: Option<std::path::PathBuf>,
        /// Keep published datasets in memory only.
        #[arg(long)]
        no_dataset_store: bool,
        #[command(flatten)]
        security: SchedulerSecurityArgs,
    },
    /// Run a worker connected to a scheduler.
    Worker {
        /// Scheduler address, e.g. tcp://127.0.0.1:8786.
        #[arg(
            value_name = "SCHEDULER",
            required_unless_present_any = ["scheduler", "connection_file"]
        )]
        address: Option<String>,
        /// Scheduler address (alternative to the positional argument).
        #[arg(long, env = "RUDASK_SCHEDULER")]
        scheduler: Option<String>,
        /// Task slots.
        #[arg(long, env = "RUDASK_NTHREADS")]
        nthreads: Option<usize>,
        /// Worker name (default: its data address).
        #[arg(long)]
        name: Option<String>,
        /// Interface for the worker's data port.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Resources offered to tasks that ask for them, e.g. `GPU=2` or
        /// `"GPU=2 MEMORY=8e9"` (repeatable).
        #[arg(long, value_name = "NAME=AMOUNT", env = "RUDASK_WORKER_RESOURCES")]
        resources: Vec<String>,
        /// Enable a worker plugin linked into this binary: NAME or
        /// NAME:JSON-CONFIG (repeatable), e.g. `--plugin environ:{"vars":{"A":"1"}}`.
        #[arg(long = "plugin", value_name = "NAME[:JSON]")]
        plugins: Vec<crate::plugin::PluginSpec>,
        #[command(flatten)]
        security: WorkerSecurityArgs,
    },
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

/// How `rudask scheduler` secures its connections.
#[derive(clap::Args, Debug)]
struct SchedulerSecurityArgs {
    /// Directory of the scheduler's CA, certificate, token and connection
    /// file (generated on first start, reused later). Default:
    /// `rudask-scheduler-PORT` under the system's temporary directory (with
    /// `--port 0`, PID instead of PORT).
    #[arg(long, value_name = "DIR", env = "RUDASK_WORK_DIR")]
    work_dir: Option<std::path::PathBuf>,
    /// The scheduler's TLS certificate chain (PEM), instead of generating one.
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "tls_ca"], conflicts_with = "insecure")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The CA that clients and workers trust (PEM), with `--tls-cert`.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_ca: Option<std::path::PathBuf>,
    /// Turn TLS and the token off: anyone who can reach the port controls
    /// the cluster. Only for trusted networks.
    #[arg(long)]
    insecure: bool,
}

impl SchedulerSecurityArgs {
    fn into_security(self, port: u16) -> crate::SchedulerSecurity {
        let work_dir = self.work_dir.unwrap_or_else(|| {
            let id = if port == 0 { std::process::id() } else { u32::from(port) };
            std::env::temp_dir().join(format!("rudask-scheduler-{id}"))
        });
        match (self.insecure, self.tls_cert, self.tls_key, self.tls_ca) {
            (true, ..) => crate::SchedulerSecurity::Insecure,
            (false, Some(cert), Some(key), Some(ca)) => crate::SchedulerSecurity::Files {
                cert,
                key,
                ca,
                token: None,
                work_dir: Some(work_dir),
            },
            _ => crate::SchedulerSecurity::WorkDir(work_dir),
        }
    }
}

/// How `rudask worker` joins a secured cluster.
#[derive(clap::Args, Debug)]
struct WorkerSecurityArgs {
    /// The connection file the scheduler wrote: its address, token and CA.
    #[arg(long, value_name = "FILE", env = "RUDASK_CONNECTION_FILE")]
    connection_file: Option<std::path::PathBuf>,
    /// The cluster token.
    #[arg(long, env = "RUDASK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The cluster CA certificate (PEM file, or PEM text).
    #[arg(long, value_name = "PEM", env = "RUDASK_TLS_CA", hide_env_values = true)]
    tls_ca: Option<String>,
    /// Certificate chain (PEM) the data port serves, instead of the cluster
    /// certificate the scheduler hands out.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

impl WorkerSecurityArgs {
    /// Fills the worker's credentials; returns the connection file's
    /// scheduler address, if a file was given.
    fn apply(self, opts: &mut WorkerOptions) -> crate::Result<Option<String>> {
        let (mut creds, address) = match &self.connection_file {
            Some(path) => {
                let file = crate::ConnectionFile::read(path)?;
                (file.credentials(), Some(file.address))
            }
            None => (crate::Credentials::new(), None),
        };
        if let Some(token) = self.token {
            creds = creds.token(token);
        }
        if let Some(ca) = self.tls_ca {
            creds = creds.tls_ca(&ca)?;
        }
        opts.credentials = creds;
        opts.tls_identity = self.tls_cert.zip(self.tls_key);
        Ok(address)
    }
}

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG`
/// (default `info`).
pub fn init_logging() {
    init_logging_at("info");
}

/// Like [`init_logging`], with `default` when `RUST_LOG` is not set.
fn init_logging_at(default: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// What `rudask demo` runs: given `--processes` and `--workers`.
pub type Demo = fn(bool, usize) -> futures::future::BoxFuture<'static, crate::Result<()>>;

/// Parses the command line and runs the command; `demo` is not available.
pub fn main() -> ExitCode {
    main_with_demo(None)
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
    crate::init();
    let cli = Cli::parse();
    if let Command::Tasks = cli.command {
        for id in rudask_core::registry::Catalog::global().ids() {
            println!("{id}");
        }
        return ExitCode::SUCCESS;
    }
    // The demo's story is its output; only problems are logged.
    init_logging_at(if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" });
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Scheduler {
                host,
                port,
                plugins,
                dataset_store,
                no_dataset_store,
                security,
            } => {
                let dataset_store = match (dataset_store, no_dataset_store) {
                    (_, true) => None,
                    (Some(dir), false) => Some(dir),
                    (None, false) => {
                        let id = if port == 0 { std::process::id() } else { u32::from(port) };
                        Some(
                            std::env::temp_dir()
                                .join(format!("rudask-scheduler-{id}"))
                                .join("datasets"),
                        )
                    }
                };
                let insecure = security.insecure;
                let security = security.into_security(port);
                let mut opts =
                    SchedulerOptions { host, port, dataset_store, security, ..Default::default() };
                for spec in plugins {
                    opts.plugins.add_named(spec)?;
                }
                let handle = scheduler::start(opts).await?;
                println!("rudask scheduler listening at {}", handle.address());
                if let Some(path) = handle.connection_file() {
                    println!("rudask scheduler connection file: {}", path.display());
                }
                if insecure {
                    eprintln!(
                        "warning: --insecure: TLS and token authentication are off; anyone who \
                         can reach {} can run code on this cluster",
                        handle.address()
                    );
                }
                use std::io::Write;
                let _ = std::io::stdout().flush();
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
            Command::Worker {
                address,
                scheduler,
                nthreads,
                name,
                host,
                resources,
                plugins,
                security,
            } => {
                let mut opts = WorkerOptions::new(String::new());
                let file_address = security.apply(&mut opts)?;
                opts.scheduler = address.or(scheduler).or(file_address).unwrap_or_default();
                if let Some(n) = nthreads {
                    opts.nthreads = n;
                }
                opts.name = name;
                opts.host = host;
                opts.resources = rudask_core::graph::parse_resources(&resources.join(","))
                    .map_err(|e| crate::Error::InvalidArgument(format!("--resources: {e}")))?;
                for spec in plugins {
                    opts.plugins.add_named(spec)?;
                }
                worker::run(opts).await
            }
            Command::Demo { processes, workers } => match demo {
                Some(demo) => demo(processes, workers).await,
                None => Err(crate::Error::Unsupported(
                    "this binary has no demo; run `cargo run --bin rudask -- demo`".into(),
                )),
            },
            Command::Tasks => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

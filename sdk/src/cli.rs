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
    },
    /// Run a worker connected to a scheduler.
    Worker {
        /// Scheduler address, e.g. tcp://127.0.0.1:8786.
        #[arg(value_name = "SCHEDULER", required_unless_present = "scheduler")]
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
        memory: Box<MemoryArgs>,
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
    // Only a worker started by `LocalCluster::processes` (through the
    // environment): `rudask worker ...` is parsed below, with all its flags
    // and its nanny.
    if std::env::var_os(crate::cluster::ENV_SCHEDULER).is_some() {
        crate::init();
    }
    let cli = Cli::parse();
    if let Command::Tasks = cli.command {
        for id in rudask_core::registry::Catalog::global().ids() {
            println!("{id}");
        }
        return ExitCode::SUCCESS;
    }
    // The demo's story is its output; only problems are logged.
    init_logging_at(if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" });
    if let Command::Worker { memory, .. } = &cli.command {
        if !memory.no_nanny && !crate::runtime::nanny::is_child() {
            // Bad memory options are reported once, by the nanny.
            if let Err(e) = memory.apply(&mut WorkerOptions::new(String::new())) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            return crate::runtime::nanny::supervise();
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Scheduler { host, port, plugins, dataset_store, no_dataset_store } => {
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
                let mut opts = SchedulerOptions { host, port, dataset_store, ..Default::default() };
                for spec in plugins {
                    opts.plugins.add_named(spec)?;
                }
                let handle = scheduler::start(opts).await?;
                println!("rudask scheduler listening at {}", handle.address());
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
                memory,
            } => {
                let mut opts = WorkerOptions::new(address.or(scheduler).unwrap_or_default());
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
                memory.apply(&mut opts)?;
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

/// `rudask worker`'s memory options and its nanny.
#[derive(clap::Args, Debug)]
struct MemoryArgs {
    /// Memory the worker may use: `auto` (this machine's memory), `none`, a
    /// percentage (`80%`) or a size (`4GiB`, `4e9`).
    #[arg(long, value_name = "LIMIT", default_value = "auto", env = "RUDASK_WORKER_MEMORY_LIMIT")]
    memory_limit: String,
    /// Fraction of the limit above which results in memory are spilled to
    /// disk, or `off`.
    #[arg(long, value_name = "FRACTION", default_value = "0.6")]
    memory_target: String,
    /// Fraction of the limit above which process memory spills more, or `off`.
    #[arg(long, value_name = "FRACTION", default_value = "0.7")]
    memory_spill: String,
    /// Fraction of the limit above which process memory pauses the worker, or `off`.
    #[arg(long, value_name = "FRACTION", default_value = "0.8")]
    memory_pause: String,
    /// Fraction of the limit above which process memory makes the nanny
    /// restart the worker, or `off`.
    #[arg(long, value_name = "FRACTION", default_value = "0.95")]
    memory_terminate: String,
    /// Run the worker in this process, without a nanny restarting it.
    #[arg(long, env = "RUDASK_NO_NANNY")]
    no_nanny: bool,
}

impl MemoryArgs {
    fn apply(&self, opts: &mut WorkerOptions) -> crate::Result<()> {
        use crate::runtime::memory_limit::MemoryThresholds;
        let flag = |name: &str, e: crate::Error| match e {
            crate::Error::InvalidArgument(why) => {
                crate::Error::InvalidArgument(format!("--{name}: {why}"))
            }
            other => other,
        };
        opts.memory_limit = self.memory_limit.parse().map_err(|e| flag("memory-limit", e))?;
        let fraction =
            |name: &str, v: &str| MemoryThresholds::parse_fraction(v).map_err(|e| flag(name, e));
        opts.memory_thresholds = MemoryThresholds {
            target: fraction("memory-target", &self.memory_target)?,
            spill: fraction("memory-spill", &self.memory_spill)?,
            pause: fraction("memory-pause", &self.memory_pause)?,
            terminate: fraction("memory-terminate", &self.memory_terminate)?,
        };
        Ok(())
    }
}

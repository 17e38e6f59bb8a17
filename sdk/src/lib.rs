//! # rudask
//!
//! A distributed task scheduler for async Rust, in the spirit of Python's
//! `dask.distributed`: a central scheduler, workers that run registered task
//! functions, and async clients that submit work and get typed futures back.
//!
//! ## A guided tour
//!
//! **Tasks are registered functions.** Rust cannot ship closures, so a task is
//! a function marked `#[rudask::task]`; every binary that links it can run it.
//! The macro turns the name into a handle; call the function locally with
//! `name::call(..)`.
//!
//! ```
//! #[rudask::task]
//! fn inc(x: i64) -> i64 { x + 1 }
//!
//! #[rudask::task]
//! async fn add(x: i64, y: i64) -> i64 { x + y }
//!
//! assert_eq!(inc::call(1), 2);
//! ```
//!
//! **A cluster and a client.** [`LocalCluster::threads`] runs a scheduler and
//! workers inside this process; [`LocalCluster::processes`] starts workers as
//! child processes over TCP; [`Client::connect`] joins a running scheduler.
//!
//! **Submitting returns futures at once.** A [`Future<T>`] is a handle to a
//! result on the cluster; await it for the value. Passing a future as an
//! argument makes a dependency: the value moves between workers, never
//! through the client.
//!
//! ```
//! # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
//! # #[rudask::task] async fn add(x: i64, y: i64) -> i64 { x + y }
//! # #[tokio::main] async fn main() -> rudask::Result<()> {
//! let cluster = rudask::LocalCluster::threads(2).await?;
//! let client = cluster.client().await?;
//!
//! let x = client.submit(inc, (1,))?;            // Future<i64>
//! let y = client.submit(add, (&x, 10))?;         // depends on x
//! assert_eq!(y.await?, 12);
//!
//! let many = client.map(inc, (0..100).map(|i| (i,)))?;
//! assert_eq!(client.gather(&many).await?.iter().sum::<i64>(), 5050);
//! # Ok(()) }
//! ```
//!
//! **Options ride on the task**, as a builder: `inc.pure(false)`,
//! `inc.key("x")`, `inc.priority(10)`, `inc.retries(3)`, and where it may
//! run: `inc.workers(["w1"])`, `.allow_other_workers(true)`,
//! `inc.resources([("GPU", 1)])` for workers started with `--resources GPU=2`
//! (see [`TaskExt`]). [`Client::get_executor`] applies a fixed
//! [`SubmitOptions`] to every submission. Keys are pure by default: the same
//! call gives the same key and runs once.
//!
//! **Failures are values.** A task that returns `Err` or panics makes its
//! future, and every future depending on it, fail with [`Error::Task`], which
//! carries the message and the worker-side traceback. The worker stays up.
//!
//! **Waiting on many futures.** [`as_completed`] streams futures as they
//! finish, [`wait`] splits them into done and not done, [`progress`] shows a
//! bar; [`Future::add_done_callback`], [`Future::retry`] and
//! [`fire_and_forget`] act on one future.
//!
//! **Tasks can submit tasks.** Inside a task, [`get_client`] gives the
//! worker's client; a task waiting on what it submitted should [`secede`]
//! so its slot can run them. Synchronous tasks use [`worker_client`], which
//! does both and returns a [`blocking::Client`], the client without `async`
//! that plain synchronous programs can use too.
//!
//! **Running the cluster from a client.** [`Client::who_has`],
//! [`Client::replicate`] and [`Client::rebalance`] place data;
//! [`GraphBuilder`] and [`Client::get`] run a whole [`TaskGraph`];
//! [`Client::run`], [`Client::restart`], [`Client::upload_file`],
//! [`Client::log_event`] and [`Client::profile`] administer and observe it.
//!
//! **Actors are stateful objects on one worker.** Mark a struct and its
//! `impl` block with [`macro@actor`]; [`Client::submit_actor`] places one
//! and returns an [`Actor`] handle whose method calls go straight to that
//! worker and return [`ActorFuture`]s (see [`actor`](mod@actor)).
//!
//! **Your program is its own worker.** Start `main` with [`init`] (or use
//! `#[rudask::main]`) so that `LocalCluster::processes` and
//! `my-app worker --scheduler ADDR` can start this executable as a worker.
#![deny(missing_docs)]

// Lets the macros' `::rudask::...` paths resolve inside this crate too (its test tasks).
extern crate self as rudask;

pub mod actor;
mod as_completed;
pub mod blocking;
pub mod cli;
mod client;
mod cluster;
mod config;
mod context;
pub mod coord;
mod error;
mod future;
mod nested;
pub mod plugin;
pub mod runtime;
pub mod security;
mod task;
mod wait;

pub use actor::{Actor, ActorFuture, ActorType, Constructor};
pub use as_completed::{as_completed, AsCompleted, Batches};
pub use client::{Client, ClientExecutor, Event, PersistOptions, Scatter, Subscription};
pub use client::{Datasets, FromDataset, Futures, Publish, PublishDatasets};
pub use client::{GraphBuilder, GraphKey, OutputKey};
pub use cluster::{LocalCluster, LocalClusterBuilder};
pub use context::{local_directory, worker_name};
pub use coord::{Lock, Pub, Queue, Semaphore, Sub, Variable};
pub use error::{Error, Result};
pub use future::{fire_and_forget, Future, KeyRef, Status};
pub use nested::{get_client, rejoin, secede, worker_client, WorkerClient};
pub use rudask_core as core;
pub use rudask_core::collection::{Collection, CollectionMeta, Retain};
pub use rudask_core::graph::TaskGraph;
pub use rudask_core::protocol::DatasetInfo;
pub use rudask_core::protocol::{FunctionProfile, Profile, WorkerTime};
pub use rudask_core::protocol::{SchedulerInfo, Unrunnable, WorkerInfo};
pub use rudask_macros::{actor, main, plugin, task};
pub use runtime::memory_limit::{MemoryLimit, MemoryThresholds};
pub use runtime::scheduler::{SchedulerHandle, SchedulerOptions};
pub use runtime::worker::WorkerOptions;
pub use security::{ConnectionFile, Credentials, SchedulerSecurity};
pub use task::{ArgSlot, IntoArg, IntoArgs, SubmitOptions, Task, TaskExt, Value, WithOptions};
pub use wait::{progress, wait, Return};

/// Items the macros expand to. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::actor::{encode_arg, CtorDef, RawActor};
    pub use crate::runtime::actors::{
        actor_mut, actor_shared, host_actor, interleaving, ActorObject, ActorTypeDef,
        Method as ActorMethod, MethodKind as ActorMethodKind, ATTR_BIT,
    };
    pub use futures::future::BoxFuture;
    pub use inventory;
    pub use rudask_core::registry::{
        error_failure, take_held, task_result, TaskArgs, TaskCall, TaskDef, TaskResult,
    };
    pub use rudask_core::Payload;
    pub use tokio;
    pub use tokio::sync::OwnedMutexGuard;
}

/// Turns this process into a worker when it was launched as one, and returns
/// otherwise. Call it first thing in `main` (`#[rudask::main]` does).
///
/// A process is a worker when `RUDASK_WORKER_SCHEDULER` is set (that is how
/// [`LocalCluster::processes`] starts workers), or when it is run as
/// `my-app worker --scheduler ADDR ...`, which takes every flag, setting and
/// configuration file of `rudask worker` and, like it, runs the worker under
/// a nanny unless given `--no-nanny`.
/// The worker runs until its scheduler goes away, then the process exits.
///
/// ```
/// rudask::init(); // not launched as a worker: returns at once
/// ```
pub fn init() {
    launch_worker();
    if std::env::args_os().nth(1).is_some_and(|command| command == "worker") {
        std::process::exit(i32::from(cli::run(None)));
    }
}

/// Runs this process as a worker, and exits, when [`LocalCluster::processes`]
/// launched it as one.
pub(crate) fn launch_worker() {
    let Some(opts) = launched_worker_options() else { return };
    cli::init_logging();
    let code = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => match rt.block_on(runtime::worker::run(opts)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rudask worker failed: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("rudask worker could not start its runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// The options [`LocalCluster::processes`] passes its workers in the
/// environment, if it started this process.
fn launched_worker_options() -> Option<WorkerOptions> {
    let addr = std::env::var(cluster::ENV_SCHEDULER).ok()?;
    let mut opts = WorkerOptions::new(addr);
    opts.credentials = launch_credentials();
    if let Some(n) = std::env::var(cluster::ENV_NTHREADS).ok().and_then(|n| n.parse().ok()) {
        opts.nthreads = n;
    }
    opts.name = std::env::var(cluster::ENV_NAME).ok();
    opts.resources = launch_resources(std::env::var(cluster::ENV_RESOURCES).ok());
    opts.memory_limit = launch_memory_limit(std::env::var(cluster::ENV_MEMORY_LIMIT).ok());
    Some(opts)
}

/// Credentials of a worker launched by [`init`], from the environment.
fn launch_credentials() -> Credentials {
    Credentials::from_env().unwrap_or_else(|e| launch_failed(&e))
}

fn launch_failed(e: &Error) -> ! {
    eprintln!("rudask worker: {e}");
    std::process::exit(2);
}

/// Memory limit of a worker launched by [`init`] (default `auto`); a bad one
/// ends the process with the reason, as a command-line error would.
fn launch_memory_limit(text: Option<String>) -> MemoryLimit {
    match text.as_deref().map(str::parse).transpose() {
        Ok(limit) => limit.unwrap_or_default(),
        Err(e) => {
            eprintln!("rudask worker: --memory-limit: {e}");
            std::process::exit(2);
        }
    }
}

/// Resources of a worker launched by [`init`]; bad ones end the process with
/// the reason, as a command-line error would.
fn launch_resources(text: Option<String>) -> Vec<(String, f64)> {
    match rudask_core::graph::parse_resources(text.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rudask worker: --resources: {e}");
            std::process::exit(2);
        }
    }
}

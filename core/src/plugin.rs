//! Plugins: third-party code hooked into the scheduler's and workers' lifecycle.
//!
//! A [`SchedulerPlugin`] sees every task transition, graph update, worker and
//! client arrival and departure, logged event and restart; a [`WorkerPlugin`]
//! sees its worker's setup, teardown and task runs. Hooks get
//! borrowed data and run inline on the state machine's thread, so they must be
//! quick; a hook that errs or panics is caught, logged and counted, and never
//! stops the scheduler or worker. With no plugin registered the only cost is
//! one emptiness check per transition.
//!
//! ```
//! use rudask_core::plugin::{PluginResult, SchedulerPlugin, TransitionCtx};
//! use rudask_core::scheduler::{Scheduler, SchedulerConfig, TaskState};
//!
//! #[derive(Debug, Default)]
//! struct Count(usize);
//! impl SchedulerPlugin for Count {
//!     fn name(&self) -> &str { "count" }
//!     fn transition(&mut self, _: &str, _: TaskState, _: TaskState, _: &TransitionCtx<'_>) -> PluginResult {
//!         self.0 += 1;
//!         Ok(())
//!     }
//! }
//! let mut s = Scheduler::new(SchedulerConfig::default());
//! s.add_plugin(Box::new(Count::default())).unwrap();
//! assert_eq!(s.plugin_names(), vec!["count".to_string()]);
//! ```

use crate::error::TaskFailure;
use crate::graph::Key;
use crate::scheduler::TaskState;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a plugin hook failed; its message goes to the logs, or to the client
/// whose registration it rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    /// What went wrong, for a human.
    pub message: String,
}

impl PluginError {
    /// An error with this message.
    ///
    /// ```
    /// let e = rudask_core::plugin::PluginError::new("no such directory");
    /// assert_eq!(e.to_string(), "no such directory");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        PluginError { message: message.into() }
    }
}

/// What every hook returns.
pub type PluginResult = Result<(), PluginError>;

/// Details of a scheduler task transition.
#[derive(Clone, Copy, Debug)]
pub struct TransitionCtx<'a> {
    /// Registered id of the task's function (`None` for data a client scattered).
    pub func: Option<&'a str>,
    /// Name of the worker running or holding the task, when there is one.
    pub worker: Option<&'a str>,
    /// Run time in microseconds, on processing → memory.
    pub duration_us: Option<u64>,
    /// The failure, on a transition to erred.
    pub error: Option<&'a TaskFailure>,
}

/// What a scheduler plugin sees on each tick.
///
/// ```
/// let mut ctx = rudask_core::plugin::TickCtx::new(5_000_000, 0, 0, 2);
/// assert!(!ctx.shutdown_requested());
/// ctx.shutdown();
/// assert!(ctx.shutdown_requested());
/// ```
#[derive(Debug)]
pub struct TickCtx {
    /// The scheduler's clock, microseconds (see `Scheduler::set_now`).
    pub now_us: u64,
    /// Tasks the scheduler knows.
    pub tasks: usize,
    /// Connected clients.
    pub clients: usize,
    /// Connected workers.
    pub workers: usize,
    shutdown: bool,
}

impl TickCtx {
    /// The state of a tick.
    pub fn new(now_us: u64, tasks: usize, clients: usize, workers: usize) -> Self {
        TickCtx { now_us, tasks, clients, workers, shutdown: false }
    }

    /// Asks the scheduler to shut the cluster down after this tick.
    pub fn shutdown(&mut self) {
        self.shutdown = true;
    }

    /// Whether a plugin asked for a shutdown.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown
    }
}

/// A plugin of the scheduler. Every hook has a default that does nothing.
///
/// ```
/// use rudask_core::plugin::SchedulerPlugin;
/// #[derive(Debug)]
/// struct Quiet;
/// impl SchedulerPlugin for Quiet {
///     fn name(&self) -> &str { "quiet" }
/// }
/// assert_eq!(Quiet.name(), "quiet");
/// ```
pub trait SchedulerPlugin: Send + std::fmt::Debug + 'static {
    /// Unique name; registering another plugin of the same name replaces this one.
    fn name(&self) -> &str;
    /// Called once on registration; an error rejects the registration.
    fn start(&mut self) -> PluginResult {
        Ok(())
    }
    /// Called when the plugin is removed or replaced, or the scheduler stops.
    fn close(&mut self) -> PluginResult {
        Ok(())
    }
    /// A client submitted tasks.
    fn update_graph(&mut self, _client: &str, _keys: &[Key]) -> PluginResult {
        Ok(())
    }
    /// A task changed state.
    fn transition(
        &mut self,
        _key: &str,
        _from: TaskState,
        _to: TaskState,
        _ctx: &TransitionCtx<'_>,
    ) -> PluginResult {
        Ok(())
    }
    /// A worker joined.
    fn add_worker(&mut self, _worker: &str) -> PluginResult {
        Ok(())
    }
    /// A worker left.
    fn remove_worker(&mut self, _worker: &str) -> PluginResult {
        Ok(())
    }
    /// A client connected.
    fn add_client(&mut self, _client: &str) -> PluginResult {
        Ok(())
    }
    /// A client left.
    fn remove_client(&mut self, _client: &str) -> PluginResult {
        Ok(())
    }
    /// An event was logged on `topic` (its value stays encoded).
    fn log_event(&mut self, _topic: &str, _time: f64) -> PluginResult {
        Ok(())
    }
    /// The cluster is being restarted.
    fn restart(&mut self) -> PluginResult {
        Ok(())
    }
    /// Called on every scheduler tick (about once a second), with the
    /// cluster's state; [`TickCtx::shutdown`] stops the cluster.
    fn tick(&mut self, _ctx: &mut TickCtx) -> PluginResult {
        Ok(())
    }
    /// Answers a client's question (JSON in, JSON out), e.g. statistics the
    /// plugin gathered.
    fn query(&mut self, _query: &str) -> Result<String, PluginError> {
        Err(PluginError::new(format!("plugin {} answers no queries", self.name())))
    }
}

/// The worker a [`WorkerPlugin`] is set up on.
///
/// ```
/// use rudask_core::plugin::WorkerSetup;
/// let w = WorkerSetup { name: "w0", local_dir: std::path::Path::new("/tmp") };
/// assert_eq!(w.name, "w0");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WorkerSetup<'a> {
    /// The worker's name.
    pub name: &'a str,
    /// The worker's own scratch directory (removed when the worker stops),
    /// the one tasks see as `rudask::local_directory()`.
    pub local_dir: &'a std::path::Path,
}

/// A plugin of a worker. Every hook but `name` has a default that does nothing.
/// Hooks run on the worker's event loop, never on a task thread.
///
/// ```
/// use rudask_core::plugin::{PluginResult, WorkerPlugin, WorkerSetup};
/// #[derive(Debug)]
/// struct Hello;
/// impl WorkerPlugin for Hello {
///     fn name(&self) -> &str { "hello" }
///     fn setup(&mut self, worker: &WorkerSetup<'_>) -> PluginResult {
///         tracing::info!(worker = worker.name, dir = %worker.local_dir.display(), "hello");
///         Ok(())
///     }
/// }
/// assert_eq!(Hello.name(), "hello");
/// ```
pub trait WorkerPlugin: Send + std::fmt::Debug + 'static {
    /// Unique name; registering another plugin of the same name replaces this one.
    fn name(&self) -> &str;
    /// Called once on a worker; an error rejects the registration.
    fn setup(&mut self, _worker: &WorkerSetup<'_>) -> PluginResult {
        Ok(())
    }
    /// Called when the plugin is removed or replaced, or the worker stops.
    fn teardown(&mut self) -> PluginResult {
        Ok(())
    }
    /// Task `key` of function `func` is about to run.
    fn task_started(&mut self, _key: &str, _func: &str) -> PluginResult {
        Ok(())
    }
    /// A task of function `func` ran for `duration_us`; `ok` is false when it failed.
    fn task_finished(&mut self, _func: &str, _ok: bool, _duration_us: u64) -> PluginResult {
        Ok(())
    }
    /// Task `key` changed state on this worker, from `from` to `to`.
    fn transition(
        &mut self,
        _key: &str,
        _from: crate::worker::WorkerTaskState,
        _to: crate::worker::WorkerTaskState,
    ) -> PluginResult {
        Ok(())
    }
}

/// Runs one hook, turning an error or a panic into a logged failure.
/// Returns the error so that registration can report it.
///
/// ```
/// use rudask_core::plugin::guarded;
/// let mut n = 0;
/// let r = guarded(&mut n, "demo", "hook", |_| panic!("boom"));
/// assert_eq!(r.unwrap_err().message, "panicked: boom");
/// ```
pub fn guarded<P: ?Sized>(
    plugin: &mut P,
    name: &str,
    hook: &str,
    f: impl FnOnce(&mut P) -> PluginResult,
) -> PluginResult {
    let out = match catch_unwind(AssertUnwindSafe(|| f(plugin))) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_string());
            Err(PluginError::new(format!("panicked: {msg}")))
        }
    };
    if let Err(e) = &out {
        tracing::error!(plugin = name, hook, error = %e, "plugin hook failed");
    }
    out
}

/// The scheduler plugins of one scheduler and how often their hooks failed.
#[derive(Debug, Default)]
pub(crate) struct SchedulerPlugins {
    list: Vec<Box<dyn SchedulerPlugin>>,
    failures: u64,
}

impl SchedulerPlugins {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.list.iter().map(|p| p.name().to_string()).collect()
    }

    /// Calls `f` on every plugin, counting failures.
    pub(crate) fn each(
        &mut self,
        hook: &str,
        mut f: impl FnMut(&mut dyn SchedulerPlugin) -> PluginResult,
    ) {
        for p in &mut self.list {
            let name = p.name().to_string();
            if guarded(p.as_mut(), &name, hook, |p| f(p)).is_err() {
                self.failures += 1;
            }
        }
    }

    /// Starts `p`, replacing (closing first) a plugin of the same name.
    pub(crate) fn add(&mut self, mut p: Box<dyn SchedulerPlugin>) -> PluginResult {
        let name = p.name().to_string();
        self.remove(&name);
        guarded(p.as_mut(), &name, "start", |p| p.start())?;
        self.list.push(p);
        Ok(())
    }

    /// Asks the plugin called `name`; `None` if there is none.
    pub(crate) fn query(&mut self, name: &str, q: &str) -> Option<Result<String, PluginError>> {
        let p = self.list.iter_mut().find(|p| p.name() == name)?;
        let mut answer = None;
        let r = guarded(p.as_mut(), name, "query", |p| {
            answer = Some(p.query(q)?);
            Ok(())
        });
        Some(r.map(|()| answer.unwrap_or_default()))
    }

    /// Closes and drops the plugin called `name`; false if there is none.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        let Some(i) = self.list.iter().position(|p| p.name() == name) else {
            return false;
        };
        let mut old = self.list.remove(i);
        if guarded(old.as_mut(), name, "close", |p| p.close()).is_err() {
            self.failures += 1;
        }
        true
    }
}

//! Registered scheduler plugins and the calls into their hooks.

use super::requests::reply;
use super::task::TaskState;
use super::{ClientId, Comm, Scheduler, TaskId};
use crate::graph::Key;
use crate::plugin::{PluginResult, SchedulerPlugin, TransitionCtx};
use crate::protocol::{Reply, RequestError, RequestErrorKind};

impl Scheduler {
    /// Registers a plugin: runs its `start` and keeps it, replacing (after
    /// closing it) a plugin of the same name. A failing `start` rejects it.
    ///
    /// ```
    /// use rudask_core::plugin::{PluginError, PluginResult, SchedulerPlugin};
    /// use rudask_core::scheduler::{Scheduler, SchedulerConfig};
    /// #[derive(Debug)]
    /// struct Broken;
    /// impl SchedulerPlugin for Broken {
    ///     fn name(&self) -> &str { "broken" }
    ///     fn start(&mut self) -> PluginResult { Err(PluginError::new("no config")) }
    /// }
    /// let mut s = Scheduler::new(SchedulerConfig::default());
    /// assert_eq!(s.add_plugin(Box::new(Broken)).unwrap_err().message, "no config");
    /// assert!(s.plugin_names().is_empty());
    /// ```
    pub fn add_plugin(&mut self, plugin: Box<dyn SchedulerPlugin>) -> PluginResult {
        self.plugins.add(plugin)
    }

    /// Closes and removes the plugin called `name`; false if there is none.
    ///
    /// ```
    /// use rudask_core::scheduler::{Scheduler, SchedulerConfig};
    /// let mut s = Scheduler::new(SchedulerConfig::default());
    /// assert!(!s.remove_plugin("absent"));
    /// ```
    pub fn remove_plugin(&mut self, name: &str) -> bool {
        self.plugins.remove(name)
    }

    /// Names of the registered plugins, in registration order.
    ///
    /// ```
    /// use rudask_core::scheduler::{Scheduler, SchedulerConfig};
    /// assert!(Scheduler::new(SchedulerConfig::default()).plugin_names().is_empty());
    /// ```
    pub fn plugin_names(&self) -> Vec<String> {
        self.plugins.names()
    }

    /// How many plugin hooks failed or panicked so far.
    ///
    /// ```
    /// use rudask_core::scheduler::{Scheduler, SchedulerConfig};
    /// assert_eq!(Scheduler::new(SchedulerConfig::default()).plugin_failures(), 0);
    /// ```
    pub fn plugin_failures(&self) -> u64 {
        self.plugins.failures()
    }

    /// Closes every plugin; the driver calls it when the scheduler stops.
    ///
    /// ```
    /// use rudask_core::scheduler::{Scheduler, SchedulerConfig};
    /// let mut s = Scheduler::new(SchedulerConfig::default());
    /// s.close_plugins();
    /// ```
    pub fn close_plugins(&mut self) {
        for name in self.plugins.names() {
            self.plugins.remove(&name);
        }
    }

    pub(super) fn plugin_transition(&mut self, id: TaskId, from: TaskState, to: TaskState) {
        let t = &self.tasks[id];
        let worker = t
            .processing_on
            .or_else(|| t.who_has.first().copied())
            .and_then(|w| self.workers.get(w))
            .map(|w| w.info.name.as_str());
        let ctx = TransitionCtx {
            func: t.spec.as_ref().map(|s| &*s.func),
            worker,
            duration_us: (from == TaskState::Processing && to == TaskState::Memory)
                .then_some(self.finishing_us),
            error: if to == TaskState::Erred { t.failure.as_deref() } else { None },
        };
        let key = t.key.as_str();
        self.plugins.each("transition", |p| p.transition(key, from, to, &ctx));
    }

    pub(super) fn plugin_forgotten(&mut self, key: &Key, from: TaskState) {
        if self.plugins.is_empty() {
            return;
        }
        let ctx = TransitionCtx { func: None, worker: None, duration_us: None, error: None };
        self.plugins
            .each("transition", |p| p.transition(key.as_str(), from, TaskState::Forgotten, &ctx));
    }

    /// Gives every plugin its tick; stops the cluster if one asks to.
    pub(super) fn plugins_tick(&mut self, comm: &mut impl Comm) {
        if self.plugins.is_empty() {
            return;
        }
        let mut ctx = crate::plugin::TickCtx::new(
            self.now_us,
            self.tasks.len(),
            self.clients.len(),
            self.workers.len(),
        );
        self.plugins.each("tick", |p| p.tick(&mut ctx));
        if ctx.shutdown_requested() && !self.stopping() {
            tracing::info!("a scheduler plugin asked to shut the cluster down");
            self.stop_cluster(comm);
        }
    }

    /// Calls `hook` on every plugin unless there are none.
    pub(super) fn plugin_hook(
        &mut self,
        hook: &str,
        f: impl FnMut(&mut dyn SchedulerPlugin) -> PluginResult,
    ) {
        if !self.plugins.is_empty() {
            self.plugins.each(hook, f);
        }
    }
}

impl Scheduler {
    pub(super) fn on_register_plugin(
        &mut self,
        c: ClientId,
        id: u64,
        name: &str,
        _config: &str,
        comm: &mut impl Comm,
    ) {
        let message = format!(
            "this scheduler runs without a driver that can build plugins, so {name:?} cannot be registered"
        );
        reply(comm, c, id, Err(RequestError::new(RequestErrorKind::Failed, message)))
    }

    pub(super) fn on_unregister_plugin(
        &mut self,
        c: ClientId,
        id: u64,
        name: &str,
        comm: &mut impl Comm,
    ) {
        let r = if self.plugins.remove(name) {
            Ok(Reply::Done)
        } else {
            Err(no_plugin(name, &self.plugins.names()))
        };
        reply(comm, c, id, r)
    }

    pub(super) fn on_plugin_query(
        &mut self,
        c: ClientId,
        id: u64,
        name: &str,
        query: &str,
        comm: &mut impl Comm,
    ) {
        let r = match self.plugins.query(name, query) {
            None => Err(no_plugin(name, &self.plugins.names())),
            Some(Ok(answer)) => Ok(Reply::PluginQuery(answer)),
            Some(Err(e)) => Err(RequestError::new(
                RequestErrorKind::Failed,
                format!("plugin {name} could not answer: {e}"),
            )),
        };
        reply(comm, c, id, r)
    }
}

fn no_plugin(name: &str, known: &[String]) -> RequestError {
    RequestError::new(
        RequestErrorKind::InvalidArgument,
        format!("no scheduler plugin named {name:?} is registered (registered: {known:?})"),
    )
}

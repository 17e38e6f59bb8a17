//! Plugins by name: the registry through which a binary offers plugin types
//! to its command line (`--plugin name[:json]`) and to clients registering
//! plugins at run time.
//!
//! A crate makes a plugin type available by name with
//! [`register_scheduler_plugin!`](crate::register_scheduler_plugin); any binary
//! linking that crate can then enable it by name.
//!
//! ```
//! use rudask::plugin::{PluginError, PluginSpec, SchedulerPlugin};
//! #[derive(Debug)]
//! struct Hello;
//! impl SchedulerPlugin for Hello {
//!     fn name(&self) -> &str { "hello" }
//! }
//! fn make(_config: &str) -> Result<Box<dyn SchedulerPlugin>, PluginError> {
//!     Ok(Box::new(Hello))
//! }
//! rudask::register_scheduler_plugin!("hello", make);
//!
//! let spec: PluginSpec = "hello".parse().unwrap();
//! assert_eq!(spec.name, "hello");
//! assert!(rudask::plugin::build_scheduler_plugin(&spec.name, &spec.config).is_ok());
//! ```

use crate::error::{Error, Result};
pub use rudask_core::plugin::{
    PluginError, PluginResult, SchedulerPlugin, TickCtx, TransitionCtx, WorkerPlugin, WorkerSetup,
};
pub use rudask_core::worker::WorkerTaskState;
use std::sync::Arc;

/// A scheduler plugin type offered by name; made by
/// [`register_scheduler_plugin!`](crate::register_scheduler_plugin).
#[derive(Debug)]
pub struct SchedulerPluginDef {
    /// Name used on the command line and by clients.
    pub name: &'static str,
    /// Builds the plugin from its JSON configuration (`"{}"` when none is given).
    pub make: fn(&str) -> std::result::Result<Box<dyn SchedulerPlugin>, PluginError>,
}
inventory::collect!(SchedulerPluginDef);

/// Offers a scheduler plugin type by name to every binary linking this crate.
/// The second argument is a `fn(&str) -> Result<Box<dyn SchedulerPlugin>, PluginError>`
/// building the plugin from its JSON configuration.
///
/// ```
/// use rudask::plugin::{PluginError, SchedulerPlugin};
/// #[derive(Debug)]
/// struct Quiet;
/// impl SchedulerPlugin for Quiet { fn name(&self) -> &str { "quiet" } }
/// rudask::register_scheduler_plugin!("quiet", |_config: &str| -> Result<Box<dyn SchedulerPlugin>, PluginError> {
///     Ok(Box::new(Quiet))
/// });
/// ```
#[macro_export]
macro_rules! register_scheduler_plugin {
    ($name:expr, $make:expr) => {
        $crate::__private::inventory::submit! {
            $crate::plugin::SchedulerPluginDef { name: $name, make: $make }
        }
    };
}

/// Names of the scheduler plugin types this binary offers, sorted.
///
/// ```
/// let names = rudask::plugin::scheduler_plugin_names();
/// assert!(names.windows(2).all(|w| w[0] <= w[1]));
/// ```
pub fn scheduler_plugin_names() -> Vec<&'static str> {
    let mut v: Vec<_> = inventory::iter::<SchedulerPluginDef>.into_iter().map(|d| d.name).collect();
    v.sort_unstable();
    v
}

/// Builds the scheduler plugin registered as `name` from its JSON `config`.
///
/// ```
/// let err = rudask::plugin::build_scheduler_plugin("no-such-plugin", "{}").unwrap_err();
/// assert!(err.to_string().contains("no-such-plugin"));
/// ```
pub fn build_scheduler_plugin(name: &str, config: &str) -> Result<Box<dyn SchedulerPlugin>> {
    let def = inventory::iter::<SchedulerPluginDef>
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no scheduler plugin named {name:?} is linked into this binary (known: {:?})",
                scheduler_plugin_names()
            ))
        })?;
    (def.make)(config).map_err(|e| {
        Error::InvalidArgument(format!("scheduler plugin {name:?} rejected its configuration: {e}"))
    })
}

/// A plugin enabled by name, as written on the command line: `name` or
/// `name:{"json":"config"}`.
///
/// ```
/// let spec: rudask::plugin::PluginSpec = r#"event-log:{"path":"e.jsonl"}"#.parse().unwrap();
/// assert_eq!(spec.name, "event-log");
/// assert_eq!(spec.config, r#"{"path":"e.jsonl"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSpec {
    /// Registered plugin name.
    pub name: String,
    /// JSON configuration (`{}` when none was given).
    pub config: String,
}

impl std::str::FromStr for PluginSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (name, config) = match s.split_once(':') {
            Some((n, c)) => (n.trim(), c.trim()),
            None => (s.trim(), "{}"),
        };
        if name.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "plugin {s:?} has no name; write NAME or NAME:JSON"
            )));
        }
        Ok(PluginSpec { name: name.to_string(), config: config.to_string() })
    }
}

/// Makes a fresh scheduler plugin each time a scheduler starts.
pub(crate) type SchedulerPluginMaker =
    Arc<dyn Fn() -> Result<Box<dyn SchedulerPlugin>> + Send + Sync>;

/// Scheduler plugins of [`crate::SchedulerOptions`], built when the scheduler starts.
#[derive(Clone, Default)]
pub struct SchedulerPlugins(pub(crate) Vec<SchedulerPluginMaker>);

impl std::fmt::Debug for SchedulerPlugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SchedulerPlugins({})", self.0.len())
    }
}

impl SchedulerPlugins {
    /// Adds a plugin instance; each scheduler started with these options gets a clone.
    ///
    /// ```
    /// use rudask::plugin::{SchedulerPlugin, SchedulerPlugins};
    /// #[derive(Clone, Debug)]
    /// struct Quiet;
    /// impl SchedulerPlugin for Quiet { fn name(&self) -> &str { "quiet" } }
    /// let mut plugins = SchedulerPlugins::default();
    /// plugins.add(Quiet);
    /// ```
    pub fn add<P: SchedulerPlugin + Clone + Sync>(&mut self, plugin: P) {
        self.0.push(Arc::new(move || Ok(Box::new(plugin.clone()))));
    }

    /// Adds a plugin offered by name, built from `spec.config` when the scheduler starts.
    ///
    /// ```
    /// let mut plugins = rudask::plugin::SchedulerPlugins::default();
    /// assert!(plugins.add_named("no-such-plugin".parse().unwrap()).is_err());
    /// ```
    pub fn add_named(&mut self, spec: PluginSpec) -> Result<()> {
        build_scheduler_plugin(&spec.name, &spec.config)?;
        self.0.push(Arc::new(move || build_scheduler_plugin(&spec.name, &spec.config)));
        Ok(())
    }
}

/// A worker plugin type offered by name; made by
/// [`register_worker_plugin!`](crate::register_worker_plugin).
#[derive(Debug)]
pub struct WorkerPluginDef {
    /// Name used on the command line.
    pub name: &'static str,
    /// Builds the plugin from its JSON configuration (`"{}"` when none is given).
    pub make: fn(&str) -> std::result::Result<Box<dyn WorkerPlugin>, PluginError>,
}
inventory::collect!(WorkerPluginDef);

/// Offers a worker plugin type by name to every binary linking this crate.
/// The second argument is a `fn(&str) -> Result<Box<dyn WorkerPlugin>, PluginError>`
/// building the plugin from its JSON configuration.
///
/// ```
/// use rudask::plugin::{PluginError, WorkerPlugin};
/// #[derive(Debug)]
/// struct Quiet;
/// impl WorkerPlugin for Quiet { fn name(&self) -> &str { "quiet" } }
/// rudask::register_worker_plugin!("quiet", |_config: &str| -> Result<Box<dyn WorkerPlugin>, PluginError> {
///     Ok(Box::new(Quiet))
/// });
/// ```
#[macro_export]
macro_rules! register_worker_plugin {
    ($name:expr, $make:expr) => {
        $crate::__private::inventory::submit! {
            $crate::plugin::WorkerPluginDef { name: $name, make: $make }
        }
    };
}

/// Builds the worker plugin registered as `name` from its JSON `config`.
///
/// ```
/// let err = rudask::plugin::build_worker_plugin("no-such-plugin", "{}").unwrap_err();
/// assert!(err.to_string().contains("no-such-plugin"));
/// ```
pub fn build_worker_plugin(name: &str, config: &str) -> Result<Box<dyn WorkerPlugin>> {
    let defs = || inventory::iter::<WorkerPluginDef>.into_iter();
    let def = defs().find(|d| d.name == name).ok_or_else(|| {
        let mut known: Vec<_> = defs().map(|d| d.name).collect();
        known.sort_unstable();
        Error::InvalidArgument(format!(
            "no worker plugin named {name:?} is linked into this binary (known: {known:?})"
        ))
    })?;
    (def.make)(config).map_err(|e| {
        Error::InvalidArgument(format!("worker plugin {name:?} rejected its configuration: {e}"))
    })
}

/// Makes a fresh worker plugin each time a worker starts.
pub(crate) type WorkerPluginMaker = Arc<dyn Fn() -> Result<Box<dyn WorkerPlugin>> + Send + Sync>;

/// Worker plugins of [`crate::WorkerOptions`], built and set up when the worker starts.
#[derive(Clone, Default)]
pub struct WorkerPlugins(pub(crate) Vec<WorkerPluginMaker>);

impl std::fmt::Debug for WorkerPlugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerPlugins({})", self.0.len())
    }
}

impl WorkerPlugins {
    /// Adds a plugin instance; each worker started with these options gets a clone.
    ///
    /// ```
    /// use rudask::plugin::{WorkerPlugin, WorkerPlugins};
    /// #[derive(Clone, Debug)]
    /// struct Quiet;
    /// impl WorkerPlugin for Quiet { fn name(&self) -> &str { "quiet" } }
    /// let mut plugins = WorkerPlugins::default();
    /// plugins.add(Quiet);
    /// ```
    pub fn add<P: WorkerPlugin + Clone + Sync>(&mut self, plugin: P) {
        self.0.push(Arc::new(move || Ok(Box::new(plugin.clone()))));
    }

    /// Adds a plugin offered by name, built from `spec.config` when the worker starts.
    ///
    /// ```
    /// let mut plugins = rudask::plugin::WorkerPlugins::default();
    /// assert!(plugins.add_named("no-such-plugin".parse().unwrap()).is_err());
    /// ```
    pub fn add_named(&mut self, spec: PluginSpec) -> Result<()> {
        build_worker_plugin(&spec.name, &spec.config)?;
        self.0.push(Arc::new(move || build_worker_plugin(&spec.name, &spec.config)));
        Ok(())
    }

    /// Builds every plugin and runs its `setup` for worker `worker`; the
    /// first failure is returned and the ones set up so far are torn down.
    pub(crate) fn start(&self, worker: &WorkerSetup<'_>) -> Result<ActiveWorkerPlugins> {
        let mut active = ActiveWorkerPlugins::default();
        for make in &self.0 {
            let mut p = make()?;
            let name = p.name().to_string();
            if let Err(e) =
                rudask_core::plugin::guarded(p.as_mut(), &name, "setup", |p| p.setup(worker))
            {
                active.teardown();
                return Err(Error::InvalidArgument(format!(
                    "worker plugin {name:?} failed to set up: {e}"
                )));
            }
            active.list.push(p);
        }
        Ok(active)
    }
}

/// The set-up plugins of a running worker.
#[derive(Debug, Default)]
pub(crate) struct ActiveWorkerPlugins {
    list: Vec<Box<dyn WorkerPlugin>>,
}

impl ActiveWorkerPlugins {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn each(
        &mut self,
        hook: &str,
        mut f: impl FnMut(&mut dyn WorkerPlugin) -> PluginResult,
    ) {
        for p in &mut self.list {
            let name = p.name().to_string();
            if rudask_core::plugin::guarded(p.as_mut(), &name, hook, |p| f(p)).is_err() {
                crate::runtime::metrics::worker_plugin_failed();
            }
        }
    }

    /// Builds plugin `name` from `config` and sets it up on worker `worker`,
    /// replacing (after tearing it down) one of the same name; `None` only
    /// removes it. Returns the error to report to the scheduler.
    pub(crate) fn apply(
        &mut self,
        worker: &WorkerSetup<'_>,
        name: &str,
        config: Option<&str>,
    ) -> std::result::Result<(), String> {
        if let Some(i) = self.list.iter().position(|p| p.name() == name) {
            let mut old = self.list.remove(i);
            let _ = rudask_core::plugin::guarded(old.as_mut(), name, "teardown", |p| p.teardown());
        }
        let Some(config) = config else { return Ok(()) };
        let mut p = build_worker_plugin(name, config).map_err(|e| e.to_string())?;
        rudask_core::plugin::guarded(p.as_mut(), name, "setup", |p| p.setup(worker))
            .map_err(|e| e.to_string())?;
        self.list.push(p);
        Ok(())
    }

    pub(crate) fn teardown(&mut self) {
        self.each("teardown", |p| p.teardown());
        self.list.clear();
    }
}

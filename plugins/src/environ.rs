//! `environ`: environment variables set on every worker.

use rudask::plugin::{PluginError, PluginResult, WorkerPlugin, WorkerSetup};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Worker plugin setting environment variables in the worker's process when
/// it starts, before any task runs. Config: `{"vars": {"NAME": "value"}}`.
///
/// ```no_run
/// let opts = rudask::WorkerOptions::new("tcp://127.0.0.1:8786")
///     .plugin(rudask_plugins::Environ::new([("OMP_NUM_THREADS", "1")]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environ {
    /// Variables to set.
    pub vars: BTreeMap<String, String>,
}

impl Environ {
    /// A plugin setting these variables.
    ///
    /// ```
    /// let e = rudask_plugins::Environ::new([("A", "1")]);
    /// assert_eq!(e.vars["A"], "1");
    /// ```
    pub fn new<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Environ { vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }
}

impl WorkerPlugin for Environ {
    fn name(&self) -> &str {
        "environ"
    }

    fn setup(&mut self, worker: &WorkerSetup<'_>) -> PluginResult {
        for (k, v) in &self.vars {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(PluginError::new(format!(
                    "cannot set environment variable {k:?}: names must be non-empty without '=' or NUL"
                )));
            }
        }
        for (k, v) in &self.vars {
            // The worker sets these once, before it runs any task, so no
            // other thread of this process reads the environment meanwhile.
            std::env::set_var(k, v);
        }
        tracing::info!(worker = worker.name, vars = self.vars.len(), "environment set");
        Ok(())
    }
}

fn make(config: &str) -> Result<Box<dyn WorkerPlugin>, PluginError> {
    let e: Environ = crate::config("environ", config)?;
    Ok(Box::new(e))
}
rudask::register_worker_plugin!("environ", make);

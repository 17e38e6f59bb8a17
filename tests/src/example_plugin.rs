//! A plugin written outside rudask, as a third-party crate would: it
//! implements the public trait and offers itself by name. The end-to-end
//! tests register it from clients to check that a failing `start` is
//! reported and that a panicking hook neither stops the scheduler nor its
//! tasks.

use rudask::core::scheduler::TaskState;
use rudask::plugin::WorkerTaskState;
use rudask::plugin::{PluginError, PluginResult, SchedulerPlugin, TransitionCtx, WorkerPlugin};

/// `example` plugin. Config: `{"fail_start": "why"}` makes `start` fail with
/// that message; `{"panic": true}` makes every transition hook panic.
#[derive(Debug, Default)]
pub struct ExamplePlugin {
    fail_start: Option<String>,
    panic: bool,
}

impl SchedulerPlugin for ExamplePlugin {
    fn name(&self) -> &str {
        "example"
    }

    fn start(&mut self) -> PluginResult {
        match &self.fail_start {
            Some(why) => Err(PluginError::new(why.clone())),
            None => Ok(()),
        }
    }

    fn transition(
        &mut self,
        key: &str,
        _from: TaskState,
        _to: TaskState,
        _ctx: &TransitionCtx<'_>,
    ) -> PluginResult {
        if self.panic {
            panic!("example plugin panics on {key}");
        }
        Ok(())
    }
}

#[rudask::plugin(scheduler = "example")]
fn make(config: &str) -> Result<Box<dyn SchedulerPlugin>, PluginError> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        fail_start: Option<String>,
        #[serde(default)]
        panic: bool,
    }
    let c: Config = serde_json::from_str(config)
        .map_err(|e| PluginError::new(format!("bad example configuration: {e}")))?;
    Ok(Box::new(ExamplePlugin { fail_start: c.fail_start, panic: c.panic }))
}

/// `example-worker` plugin: every hook panics (`{"panic": true}`) or does
/// nothing, to check that a broken worker plugin does not break its worker.
/// With `{"log": "path"}` it appends each task transition to that file as a
/// `key from to` line, so tests can check the order a worker plugin sees.
#[derive(Debug, Default)]
pub struct ExampleWorkerPlugin {
    panic: bool,
    log: Option<std::path::PathBuf>,
}

impl WorkerPlugin for ExampleWorkerPlugin {
    fn name(&self) -> &str {
        "example-worker"
    }

    fn task_started(&mut self, key: &str, _func: &str) -> PluginResult {
        if self.panic {
            panic!("example worker plugin panics on {key}");
        }
        Ok(())
    }

    fn task_finished(&mut self, func: &str, _ok: bool, _us: u64) -> PluginResult {
        if self.panic {
            return Err(PluginError::new(format!("example worker plugin errs on {func}")));
        }
        Ok(())
    }

    fn transition(
        &mut self,
        key: &str,
        from: WorkerTaskState,
        to: WorkerTaskState,
    ) -> PluginResult {
        let Some(path) = &self.log else { return Ok(()) };
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| PluginError::new(format!("cannot open {}: {e}", path.display())))?;
        writeln!(f, "{key} {from:?} {to:?}").map_err(|e| PluginError::new(e.to_string()))
    }
}

#[rudask::plugin(worker = "example-worker")]
fn make_worker(config: &str) -> Result<Box<dyn WorkerPlugin>, PluginError> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        panic: bool,
        #[serde(default)]
        log: Option<std::path::PathBuf>,
    }
    let c: Config = serde_json::from_str(config)
        .map_err(|e| PluginError::new(format!("bad example-worker configuration: {e}")))?;
    Ok(Box::new(ExampleWorkerPlugin { panic: c.panic, log: c.log }))
}

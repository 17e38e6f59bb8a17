//! `idle-shutdown`: stop the cluster once nobody used it for a while.

use rudask::plugin::{PluginError, PluginResult, SchedulerPlugin, TickCtx};
use serde::{Deserialize, Serialize};

/// Scheduler plugin shutting the cluster down after `timeout_s` seconds
/// with no tasks and no clients (dask's `idle_timeout`). Idleness is checked
/// on the scheduler's ticks, so the shutdown comes up to one tick late.
/// Config: `{"timeout_s": 600}`.
///
/// ```
/// use rudask::plugin::{SchedulerPlugin, TickCtx};
/// let mut p = rudask_plugins::IdleShutdown { timeout_s: 10.0, ..Default::default() };
/// let mut idle = TickCtx::new(0, 0, 0, 1);
/// p.tick(&mut idle).unwrap();
/// let mut later = TickCtx::new(11_000_000, 0, 0, 1);
/// p.tick(&mut later).unwrap();
/// assert!(later.shutdown_requested());
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdleShutdown {
    /// Idle seconds before the shutdown.
    pub timeout_s: f64,
    /// Scheduler clock when the cluster became idle.
    #[serde(skip)]
    pub idle_since_us: Option<u64>,
}

impl SchedulerPlugin for IdleShutdown {
    fn name(&self) -> &str {
        "idle-shutdown"
    }

    fn start(&mut self) -> PluginResult {
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return Err(PluginError::new(format!(
                "timeout_s must be a positive number of seconds, not {}",
                self.timeout_s
            )));
        }
        Ok(())
    }

    fn tick(&mut self, ctx: &mut TickCtx) -> PluginResult {
        if ctx.tasks > 0 || ctx.clients > 0 {
            self.idle_since_us = None;
            return Ok(());
        }
        let since = *self.idle_since_us.get_or_insert(ctx.now_us);
        let idle_s = ctx.now_us.saturating_sub(since) as f64 / 1e6;
        if idle_s >= self.timeout_s {
            tracing::info!(idle_s, "cluster idle; shutting down");
            ctx.shutdown();
        }
        Ok(())
    }
}

fn make(config: &str) -> Result<Box<dyn SchedulerPlugin>, PluginError> {
    Ok(Box::new(crate::config::<IdleShutdown>("idle-shutdown", config)?))
}
rudask::register_scheduler_plugin!("idle-shutdown", make);

//! `task-stats`: what ran, how often it failed and how long it took, per function.

use rudask::core::scheduler::TaskState;
use rudask::plugin::{PluginError, PluginResult, SchedulerPlugin, TransitionCtx};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Number of run-time histogram buckets: bucket `i` counts runs shorter than
/// `2^i` microseconds (the last one counts every longer run too).
pub const HISTOGRAM_BUCKETS: usize = 32;

/// Statistics of one task function.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionStats {
    /// Runs that produced a result.
    pub finished: u64,
    /// Tasks that failed.
    pub failed: u64,
    /// Summed run time of the finished runs, in microseconds.
    pub total_us: u64,
    /// Run-time histogram, see [`HISTOGRAM_BUCKETS`].
    pub histogram: Vec<u64>,
}

/// Scheduler plugin gathering per-function [`FunctionStats`]. A query (any
/// JSON) answers a JSON object from function id to its statistics.
///
/// ```
/// use rudask::plugin::SchedulerPlugin;
/// let mut stats = rudask_plugins::TaskStats::default();
/// assert_eq!(stats.query("{}").unwrap(), "{}");
/// ```
#[derive(Clone, Debug, Default)]
pub struct TaskStats {
    by_func: HashMap<String, FunctionStats>,
}

impl TaskStats {
    /// The statistics gathered so far.
    ///
    /// ```
    /// assert!(rudask_plugins::TaskStats::default().stats().is_empty());
    /// ```
    pub fn stats(&self) -> &HashMap<String, FunctionStats> {
        &self.by_func
    }

    fn entry(&mut self, func: &str) -> &mut FunctionStats {
        if !self.by_func.contains_key(func) {
            let fresh =
                FunctionStats { histogram: vec![0; HISTOGRAM_BUCKETS], ..Default::default() };
            self.by_func.insert(func.to_string(), fresh);
        }
        self.by_func.get_mut(func).expect("inserted above")
    }
}

impl SchedulerPlugin for TaskStats {
    fn name(&self) -> &str {
        "task-stats"
    }

    fn transition(
        &mut self,
        _key: &str,
        _from: TaskState,
        to: TaskState,
        ctx: &TransitionCtx<'_>,
    ) -> PluginResult {
        let Some(func) = ctx.func else { return Ok(()) };
        match to {
            TaskState::Memory => {
                let Some(us) = ctx.duration_us else { return Ok(()) };
                let s = self.entry(func);
                s.finished += 1;
                s.total_us += us;
                let bucket = (u64::BITS - us.leading_zeros()) as usize;
                s.histogram[bucket.min(HISTOGRAM_BUCKETS - 1)] += 1;
            }
            TaskState::Erred if ctx.error.is_some_and(|e| e.origin.is_none()) => {
                self.entry(func).failed += 1;
            }
            _ => {}
        }
        Ok(())
    }

    fn restart(&mut self) -> PluginResult {
        self.by_func.clear();
        Ok(())
    }

    fn query(&mut self, _query: &str) -> Result<String, PluginError> {
        serde_json::to_string(&self.by_func).map_err(|e| PluginError::new(e.to_string()))
    }
}

fn make(config: &str) -> Result<Box<dyn SchedulerPlugin>, PluginError> {
    let _: serde::de::IgnoredAny = crate::config("task-stats", config)?;
    Ok(Box::new(TaskStats::default()))
}
rudask::register_scheduler_plugin!("task-stats", make);

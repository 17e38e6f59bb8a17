//! The worker's memory monitor: every [`INTERVAL`] it compares the results
//! held in memory and the process's resident memory with the limit, and
//! decides what to spill, whether to pause, and whether to give up so the
//! nanny restarts the worker. Deciding is pure ([`Monitor::check`]); the
//! worker's event loop acts on the decision.

use super::memory_limit::MemoryThresholds;
use std::time::Duration;

/// How often memory is checked (dask's monitor runs every 100 ms).
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// At most this much is written to disk per check (more when one value is
/// larger), so spilling never stalls the worker's event loop for long; a
/// worker producing results faster than that reaches its pause threshold
/// and stops taking tasks until spilling catches up.
pub(crate) const SPILL_PER_CHECK: u64 = 64 << 20;

/// Exit code of a worker that passed its terminate threshold; its nanny
/// restarts it.
pub(crate) const EXIT_MEMORY: i32 = 75;

/// What to do after one check.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Spill results until at most this many bytes stay in memory.
    pub spill_to: Option<u64>,
    /// Pause (`true`) or run (`false`); `None` leaves it as it is.
    pub paused: Option<bool>,
    /// Exit now so the nanny starts a fresh worker.
    pub terminate: bool,
}

/// A worker's limit and thresholds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Monitor {
    /// The limit in bytes.
    pub limit: u64,
    pub thresholds: MemoryThresholds,
    /// Whether process memory is this worker's own, so the process-memory
    /// thresholds apply (not for workers sharing a process).
    pub own_process: bool,
}

impl Monitor {
    fn at(&self, fraction: Option<f64>) -> Option<u64> {
        fraction.map(|f| (self.limit as f64 * f) as u64)
    }

    /// Decides from the bytes of results in memory and the process's resident memory.
    pub(crate) fn check(&self, managed: u64, process: u64) -> Decision {
        let mut d = Decision::default();
        let target = self.at(self.thresholds.target);
        if let Some(t) = target.filter(|&t| managed > t) {
            d.spill_to = Some(t);
        }
        if !self.own_process || process == 0 {
            return d;
        }
        if let Some(spill) = self.at(self.thresholds.spill).filter(|&s| process > s) {
            // Spill enough that process memory would fall under the target
            // (or the spill threshold without one).
            let goal = target.unwrap_or(spill);
            let excess = process - goal.min(process);
            let to = managed.saturating_sub(excess);
            d.spill_to = Some(d.spill_to.map_or(to, |t| t.min(to)));
        }
        if let Some(pause) = self.at(self.thresholds.pause) {
            d.paused = Some(process > pause);
        }
        d.terminate = self.at(self.thresholds.terminate).is_some_and(|t| process > t);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(own_process: bool) -> Monitor {
        Monitor { limit: 1000, thresholds: MemoryThresholds::default(), own_process }
    }

    #[test]
    fn spills_managed_memory_above_the_target() {
        assert_eq!(m(true).check(500, 500), Decision { paused: Some(false), ..Default::default() });
        assert_eq!(m(true).check(650, 650).spill_to, Some(600));
    }

    #[test]
    fn process_memory_above_the_spill_threshold_spills_more() {
        // 750 resident, 150 over the target of 600: spill 150 of the 400 held.
        assert_eq!(m(true).check(400, 750).spill_to, Some(250));
        // Not more than everything.
        assert_eq!(m(true).check(100, 750).spill_to, Some(0));
        // Between target and spill threshold: only managed memory counts.
        assert_eq!(m(true).check(400, 690).spill_to, None);
    }

    #[test]
    fn pauses_above_the_pause_threshold_and_resumes_below() {
        assert_eq!(m(true).check(0, 810).paused, Some(true));
        assert_eq!(m(true).check(0, 790).paused, Some(false));
        assert!(!m(true).check(0, 900).terminate);
        assert!(m(true).check(0, 960).terminate);
    }

    #[test]
    fn thresholds_can_be_off_and_shared_processes_only_spill() {
        let off = Monitor {
            limit: 1000,
            thresholds: MemoryThresholds {
                target: None,
                spill: None,
                pause: None,
                terminate: None,
            },
            own_process: true,
        };
        assert_eq!(off.check(990, 990), Decision::default());
        let shared = m(false).check(700, 990);
        assert_eq!(shared, Decision { spill_to: Some(600), ..Default::default() });
        // Unknown process memory (0) never pauses.
        assert_eq!(m(true).check(0, 0).paused, None);
    }
}

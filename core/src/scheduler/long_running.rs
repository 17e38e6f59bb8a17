//! Seceded tasks: a task that waits on tasks it submitted tells the scheduler
//! (through its worker) that it gave its slot back. It stays processing on
//! its worker, but no longer counts toward the worker's occupancy, so the
//! worker is given other work, including the tasks the seceded one waits on.

use super::{Scheduler, TaskId, WorkerId};

impl Scheduler {
    /// Tasks a worker runs that hold a slot: the ones it processes, minus
    /// those that seceded.
    pub(super) fn busy(&self, w: WorkerId) -> usize {
        let ws = &self.workers[w];
        ws.processing.len() - ws.long_running
    }

    /// Worker `w` reports that task `id` seceded.
    pub(super) fn on_long_running(&mut self, w: WorkerId, id: TaskId) {
        if !self.processing_on(w, id) || self.tasks[id].long_running {
            return;
        }
        let t = &mut self.tasks[id];
        t.long_running = true;
        // It runs already: a steal request for it can only be refused.
        t.stealing_to = None;
        self.workers[w].long_running += 1;
        self.dirty.push(w);
    }

    /// Each worker's count of seceded tasks matches its tasks' flags.
    pub(super) fn check_long_running(&self) {
        for (w, ws) in &self.workers {
            let flagged = ws.processing.iter().filter(|&&t| self.tasks[t].long_running).count();
            assert_eq!(ws.long_running, flagged, "seceded tasks of worker {}", ws.info.name);
            assert!(ws.long_running <= ws.processing.len(), "{w:?}");
        }
        for t in self.tasks.values() {
            if t.long_running {
                assert!(t.processing_on.is_some(), "{} seceded but not processing", t.key);
            }
        }
    }
}

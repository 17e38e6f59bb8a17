//! Workers under memory pressure. A worker whose memory passes its pause
//! threshold says so ([`WorkerMsg::Paused`]); the scheduler then assigns it
//! nothing new — no queued root task, no placement by data locality, no
//! stolen task — while it keeps its assigned tasks and serves its data, and
//! other workers may steal what it has not started. A task that only paused
//! workers could run waits in the no-worker state until one resumes.
//!
//! [`WorkerMsg::Paused`]: crate::protocol::WorkerMsg::Paused

use super::task::TaskState;
use super::{Scheduler, TaskId, WorkerId};
use crate::protocol::MemoryReport;

impl Scheduler {
    pub(super) fn on_worker_paused(&mut self, w: WorkerId, paused: bool) {
        let ws = &mut self.workers[w];
        if ws.info.paused == paused {
            return;
        }
        ws.info.paused = paused;
        tracing::info!(worker = %ws.info.name, paused, "worker memory pause changed");
        if paused {
            return;
        }
        for t in std::mem::take(&mut self.no_worker) {
            if self.tasks.get(t).is_some_and(|t| t.state == TaskState::NoWorker) {
                self.set_state(t, TaskState::Waiting);
                self.ready.push(t);
            }
        }
        self.dirty.push(w);
    }

    pub(super) fn on_worker_memory(&mut self, w: WorkerId, r: MemoryReport) {
        let info = &mut self.workers[w].info;
        info.memory = r.process;
        info.memory_limit = r.limit;
        info.managed_in_memory = r.managed;
        info.spilled_bytes = r.spilled_bytes;
        info.spilled_keys = r.spilled_keys;
    }

    /// Parks a ready task that only paused workers could run.
    pub(super) fn park_while_paused(&mut self, id: TaskId) {
        self.set_state(id, TaskState::NoWorker);
        self.no_worker.insert(id);
    }

    /// Why a no-worker task waits, when it is because workers are paused.
    pub(super) fn paused_reason(&self, id: TaskId) -> Option<String> {
        let mut able = self.workers.iter().filter(|&(w, _)| self.may_run_on(id, w)).peekable();
        let some = able.peek().is_some();
        (some && able.all(|(_, ws)| ws.info.paused)).then(|| {
            "every worker that could run it is paused: its memory is above the pause threshold \
             (it resumes when memory falls back)"
                .to_string()
        })
    }
}

//! Where and when tasks run: the root-task queue, data-locality placement,
//! worker capacity and work stealing.

use super::task::TaskState;
use super::{Comm, Queued, Scheduler, TaskId, WireId, WorkerId};
use crate::error::{FailureKind, TaskFailure};
use crate::protocol::{ComputeTask, DepLocation, ToWorker};

/// Steal only when the victim has at least this many tasks beyond its slots.
const STEAL_MIN_EXCESS: usize = 2;

impl Scheduler {
    /// How many tasks a worker should hold: its slots plus enough queued work
    /// to cover a scheduler round trip at the observed task duration.
    pub(super) fn capacity(&self, w: WorkerId) -> usize {
        let n = self.workers[w].info.nthreads.max(1) as usize;
        let per_slot =
            (self.config.buffer_us as f64 / self.avg_duration_us.max(1.0)).ceil() as usize;
        n + n * per_slot.clamp(1, 256)
    }

    pub(super) fn occupancy(&self, w: WorkerId) -> f64 {
        self.busy(w) as f64 / f64::from(self.workers[w].info.nthreads.max(1))
    }

    /// Called for a waiting task whose dependencies are all in memory.
    pub(super) fn schedule_ready(&mut self, id: TaskId, comm: &mut impl Comm) {
        let func = self.tasks[id].func;
        if self.workers.is_empty() {
            self.set_state(id, TaskState::NoWorker);
            self.no_worker.insert(id);
            return;
        }
        if !self.workers.values().any(|w| w.can_run(func)) {
            let t = &self.tasks[id];
            let spec = t.spec.as_ref().expect("runnable tasks have a spec");
            let failure = TaskFailure::new(
                FailureKind::NoWorker,
                format!(
                    "no worker can run task function {} (needed by {}); start workers from a binary that registers it with #[rudask::task]",
                    spec.func, t.key
                ),
            );
            self.fail(id, failure, comm);
            return;
        }
        if self.restrictions(id).is_some() {
            self.schedule_restricted(id, comm);
            return;
        }
        if self.tasks[id].deps.is_empty() {
            self.drop_stale_queue_head();
            let free = self.least_occupied(func, true);
            match free {
                Some(w) if self.queue.is_empty() => self.assign(id, w, comm),
                _ => {
                    self.set_state(id, TaskState::Queued);
                    self.queue.push(Queued { order: self.tasks[id].order, task: id });
                    // Tasks ahead in the queue may be ones this worker cannot
                    // run; let it look.
                    if let Some(w) = free {
                        self.dirty.push(w);
                    }
                }
            }
        } else {
            match self.decide_worker(id) {
                Some(w) => self.assign(id, w, comm),
                None => self.park_while_paused(id),
            }
        }
    }

    /// Pops queue entries of tasks that are no longer queued.
    fn drop_stale_queue_head(&mut self) {
        while let Some(q) = self.queue.peek() {
            let live = self
                .tasks
                .get(q.task)
                .is_some_and(|t| t.state == TaskState::Queued && t.order == q.order);
            if live {
                break;
            }
            self.queue.pop();
        }
    }

    fn least_occupied(&self, func: super::FuncIdx, with_capacity: bool) -> Option<WorkerId> {
        self.workers
            .iter()
            .filter(|(w, ws)| {
                ws.can_run(func)
                    && !ws.info.paused
                    && (!with_capacity || self.busy(*w) < self.capacity(*w))
            })
            .min_by(|a, b| self.occupancy(a.0).total_cmp(&self.occupancy(b.0)))
            .map(|(w, _)| w)
    }

    /// Data locality first (the worker holding most input bytes), then the
    /// least occupied worker; paused workers never (`None` when all that
    /// could run it are paused).
    fn decide_worker(&self, id: TaskId) -> Option<WorkerId> {
        let t = &self.tasks[id];
        let mut held: Vec<(WorkerId, u64)> = Vec::new();
        for &d in &t.deps {
            let dep = &self.tasks[d];
            for &w in &dep.who_has {
                if !self.workers[w].can_run(t.func) || self.workers[w].info.paused {
                    continue;
                }
                match held.iter_mut().find(|(x, _)| *x == w) {
                    Some((_, b)) => *b += dep.nbytes.max(1),
                    None => held.push((w, dep.nbytes.max(1))),
                }
            }
        }
        let best = held
            .iter()
            .max_by(|a, b| {
                a.1.cmp(&b.1).then_with(|| self.occupancy(b.0).total_cmp(&self.occupancy(a.0)))
            })
            .map(|&(w, _)| w);
        best.or_else(|| self.least_occupied(t.func, false))
    }

    /// Sends a task to a worker.
    pub(super) fn assign(&mut self, id: TaskId, w: WorkerId, comm: &mut impl Comm) {
        let slot = self.workers[w].processing.len();
        self.workers[w].processing.push(id);
        let t = &mut self.tasks[id];
        t.processing_on = Some(w);
        t.proc_slot = slot;
        self.set_state(id, TaskState::Processing);
        let t = &self.tasks[id];
        let spec = (**t.spec.as_ref().expect("runnable tasks have a spec")).clone();
        let order = t.order;
        let deps = t
            .deps
            .iter()
            .map(|&d| DepLocation {
                key: self.tasks[d].key.clone(),
                workers: self.wire_workers(&self.tasks[d].who_has),
            })
            .collect();
        comm.send_worker(
            w,
            ToWorker::Compute(Box::new(ComputeTask { task: id.to_wire(), spec, deps, order })),
        );
    }

    /// Takes a processing task off its worker; returns that worker, which is
    /// marked for a refill at the end of the handler.
    pub(super) fn unassign(&mut self, id: TaskId) -> WorkerId {
        let t = &mut self.tasks[id];
        let w = t.processing_on.take().expect("task is processing");
        t.stealing_to = None;
        if std::mem::take(&mut t.long_running) {
            self.workers[w].long_running -= 1;
        }
        let slot = t.proc_slot;
        let ws = &mut self.workers[w];
        ws.processing.swap_remove(slot);
        if let Some(&moved) = ws.processing.get(slot) {
            self.tasks[moved].proc_slot = slot;
        }
        self.dirty.push(w);
        w
    }

    pub(super) fn wire_workers(&self, ws: &[WorkerId]) -> Vec<u64> {
        ws.iter().map(|w| w.to_wire()).collect()
    }

    /// Gives a worker queued root tasks up to its capacity, then steals for it
    /// if it still has idle slots.
    pub(super) fn fill_worker(&mut self, w: WorkerId, comm: &mut impl Comm) {
        if self.workers[w].info.paused {
            return;
        }
        let cap = self.capacity(w);
        let mut skipped = Vec::new();
        while self.busy(w) < cap {
            let Some(q) = self.queue.pop() else { break };
            let Some(t) = self.tasks.get(q.task) else {
                continue;
            };
            if t.state != TaskState::Queued || t.order != q.order {
                continue;
            }
            if !self.workers[w].can_run(t.func) {
                skipped.push(q);
                if skipped.len() > 64 {
                    break;
                }
                continue;
            }
            self.assign(q.task, w, comm);
        }
        self.queue.extend(skipped);
        if self.busy(w) < self.workers[w].info.nthreads as usize {
            self.steal_for(w, comm);
        }
    }

    /// Asks the busiest worker to hand over tasks it has not started.
    fn steal_for(&mut self, thief: WorkerId, comm: &mut impl Comm) {
        let threads = |s: &Self, w: WorkerId| s.workers[w].info.nthreads as usize;
        let victim = self
            .workers
            .iter()
            .filter(|(w, _)| *w != thief)
            .max_by_key(|(w, _)| self.busy(*w).saturating_sub(threads(self, *w)))
            .map(|(w, _)| w);
        let Some(victim) = victim else { return };
        let excess = self.busy(victim).saturating_sub(threads(self, victim));
        if excess < STEAL_MIN_EXCESS {
            return;
        }
        let want = (excess / 2).min(self.capacity(thief).saturating_sub(self.busy(thief)));
        let mut asked = 0;
        for i in (0..self.workers[victim].processing.len()).rev() {
            if asked >= want {
                break;
            }
            let id = self.workers[victim].processing[i];
            let t = &self.tasks[id];
            if t.stealing_to.is_some() || t.long_running || !self.may_run_on(id, thief) {
                continue;
            }
            self.tasks[id].stealing_to = Some(thief);
            comm.send_worker(victim, ToWorker::Steal { task: id.to_wire() });
            asked += 1;
        }
    }

    /// A worker answered a steal request.
    pub(super) fn on_steal_response(
        &mut self,
        victim: WorkerId,
        id: TaskId,
        stolen: bool,
        comm: &mut impl Comm,
    ) {
        let Some(t) = self.tasks.get_mut(id) else {
            return;
        };
        if t.state != TaskState::Processing || t.processing_on != Some(victim) {
            return;
        }
        let thief = t.stealing_to.take();
        if !stolen {
            return;
        }
        self.unassign(id);
        match thief.filter(|w| self.workers.get(*w).is_some_and(|ws| !ws.info.paused)) {
            Some(w) => self.assign(id, w, comm),
            None => self.reschedule(id, comm),
        }
    }

    /// Puts a task that lost its worker back through the ready path.
    pub(super) fn reschedule(&mut self, id: TaskId, comm: &mut impl Comm) {
        self.set_state(id, TaskState::Released);
        if !self.tasks[id].wants.is_empty() || self.tasks[id].waiters > 0 {
            self.compute(id, comm);
        } else {
            self.maybe_release.push(id);
        }
    }
}

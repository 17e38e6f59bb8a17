//! Workers joining, reporting and leaving: results arriving, failures,
//! heartbeats and the recovery of work lost with a dead worker.

use super::task::TaskState;
use super::{worker_info, worker_state, Comm, Scheduler, TaskId, WireId, WorkerId};
use crate::error::{FailureKind, TaskFailure};
use crate::graph::Key;
use crate::protocol::{Payload, ToClient, ToWorker, WorkerHello, WorkerMsg};

impl Scheduler {
    /// A worker completed its handshake. Returns its id, or why it is refused.
    pub fn on_worker_connected(
        &mut self,
        hello: &WorkerHello,
        comm: &mut impl Comm,
    ) -> Result<WorkerId, String> {
        if self.workers.values().any(|w| w.info.name == hello.name) {
            return Err(format!(
                "a worker named {:?} is already connected; give each worker a unique name",
                hello.name
            ));
        }
        crate::graph::validate_resources(&hello.resources, "the worker offers")?;
        let mut funcs = Vec::new();
        for f in &hello.catalog {
            let i = self.intern_func(f).0 as usize;
            if funcs.len() <= i / 64 {
                funcs.resize(i / 64 + 1, 0u64);
            }
            funcs[i / 64] |= 1 << (i % 64);
        }
        let id = self.workers.insert(worker_state(worker_info(WorkerId::default(), hello), funcs));
        self.workers[id].info.id = id.to_wire();
        let info = self.workers[id].info.clone();
        for (w, _) in self.workers.iter().filter(|(w, _)| *w != id) {
            comm.send_worker(w, ToWorker::WorkerAdded(info.clone()));
        }
        for c in self.clients.keys() {
            comm.send_client(c, ToClient::WorkerAdded(info.clone()));
        }
        for t in std::mem::take(&mut self.no_worker) {
            if self.tasks.get(t).is_some_and(|t| t.state == TaskState::NoWorker) {
                self.set_state(t, TaskState::Waiting);
                self.ready.push(t);
            }
        }
        self.dirty.push(id);
        self.admin_worker_joined(id, comm);
        self.plugin_hook("add_worker", |p| p.add_worker(&hello.name));
        self.worker_plugins_joined(id, comm);
        self.finish(comm);
        Ok(id)
    }

    /// A message from a worker.
    pub fn on_worker_message(&mut self, w: WorkerId, msg: WorkerMsg, comm: &mut impl Comm) {
        let Some(ws) = self.workers.get_mut(w) else {
            return;
        };
        ws.missed_ticks = 0;
        match msg {
            WorkerMsg::TaskFinished { task, nbytes, value, duration_us } => {
                self.on_task_finished(w, TaskId::from_wire(task), nbytes, value, duration_us, comm)
            }
            WorkerMsg::TaskFailed { task, failure } => {
                self.on_task_failed(w, TaskId::from_wire(task), failure, comm)
            }
            WorkerMsg::MissingData { task, key, worker } => self.on_missing_data(
                w,
                TaskId::from_wire(task),
                &key,
                WorkerId::from_wire(worker),
                comm,
            ),
            WorkerMsg::StealResponse { task, stolen } => {
                self.on_steal_response(w, TaskId::from_wire(task), stolen, comm)
            }
            WorkerMsg::Heartbeat => {}
            WorkerMsg::Acquired { key, nbytes } => self.on_acquired(w, key, nbytes, comm),
            WorkerMsg::RunResult { id, result } => self.on_run_result(w, id, result, comm),
            WorkerMsg::LongRunning { task } => self.on_long_running(w, TaskId::from_wire(task)),
            WorkerMsg::Metrics { memory } => self.workers[w].info.memory = memory,
            WorkerMsg::PluginResult { id, error } => {
                self.on_worker_plugin_result(w, id, error, comm)
            }
            WorkerMsg::PartsStored { dir, results } => self.on_parts_stored(&dir, results, comm),
            WorkerMsg::Paused { paused } => self.on_worker_paused(w, paused),
            WorkerMsg::Memory(report) => self.on_worker_memory(w, report),
        }
        self.finish(comm);
    }

    pub(super) fn processing_on(&self, w: WorkerId, id: TaskId) -> bool {
        self.tasks
            .get(id)
            .is_some_and(|t| t.state == TaskState::Processing && t.processing_on == Some(w))
    }

    fn on_task_finished(
        &mut self,
        w: WorkerId,
        id: TaskId,
        nbytes: u64,
        value: Option<Payload>,
        duration_us: u64,
        comm: &mut impl Comm,
    ) {
        if !self.processing_on(w, id) {
            return;
        }
        self.avg_duration_us = 0.9 * self.avg_duration_us + 0.1 * duration_us as f64;
        self.record_run(w, self.tasks[id].func, duration_us);
        self.finishing_us = duration_us;
        self.unassign(id);
        let t = &mut self.tasks[id];
        t.nbytes = nbytes;
        t.who_has.push(w);
        let ws = &mut self.workers[w];
        ws.has_what.insert(id);
        ws.nbytes += nbytes;
        self.set_state(id, TaskState::Memory);
        let t = &self.tasks[id];
        if !t.wants.is_empty() {
            let workers = vec![w.to_wire()];
            for &c in &t.wants {
                comm.send_client(
                    c,
                    ToClient::KeyInMemory {
                        key: t.key.clone(),
                        nbytes,
                        workers: workers.clone(),
                        value: value.clone(),
                    },
                );
            }
        }
        self.maybe_release.push(id);
    }

    fn on_task_failed(
        &mut self,
        w: WorkerId,
        id: TaskId,
        failure: TaskFailure,
        comm: &mut impl Comm,
    ) {
        if !self.processing_on(w, id) {
            return;
        }
        self.unassign(id);
        if self.tasks[id].retries_left > 0 {
            self.tasks[id].retries_left -= 1;
            self.reschedule(id, comm);
        } else {
            self.set_state(id, TaskState::Released);
            self.fail(id, failure, comm);
        }
    }

    /// Forgets that `holder` has the result of `d`; returns true if that was
    /// the last copy.
    fn drop_replica(&mut self, d: TaskId, holder: WorkerId) -> bool {
        let dep = &mut self.tasks[d];
        let Some(pos) = dep.who_has.iter().position(|&x| x == holder) else {
            return false;
        };
        dep.who_has.swap_remove(pos);
        let nbytes = dep.nbytes;
        if let Some(hs) = self.workers.get_mut(holder) {
            hs.has_what.remove(&d);
            hs.nbytes = hs.nbytes.saturating_sub(nbytes);
        }
        self.tasks[d].who_has.is_empty()
    }

    /// Recomputes a released task if someone still needs it, else lets it go.
    fn recover(&mut self, id: TaskId, comm: &mut impl Comm) {
        let Some(t) = self.tasks.get(id) else { return };
        let held = !t.wants.is_empty() || t.waiters > 0 || self.fire_and_forget.contains(&id);
        if t.state == TaskState::Released && held {
            self.compute(id, comm);
        } else {
            self.maybe_release.push(id);
        }
    }

    fn on_missing_data(
        &mut self,
        w: WorkerId,
        id: TaskId,
        key: &Key,
        holder: WorkerId,
        comm: &mut impl Comm,
    ) {
        let lost = self.keys.get(key).copied().filter(|&d| self.drop_replica(d, holder));
        if let Some(d) = lost {
            self.set_state(d, TaskState::Released);
        }
        if self.processing_on(w, id) {
            self.unassign(id);
            self.reschedule(id, comm);
        }
        if let Some(d) = lost {
            self.recover(d, comm);
        }
    }

    /// A worker's connection closed or it stopped answering.
    pub fn on_worker_lost(&mut self, w: WorkerId, exit_code: Option<i32>, comm: &mut impl Comm) {
        let Some(ws) = self.workers.remove(w) else {
            return;
        };
        self.data_ops_worker_lost(w, &ws.info.name, comm);
        self.admin_worker_lost(w, "died", exit_code, comm);
        self.plugin_hook("remove_worker", |p| p.remove_worker(&ws.info.name));
        self.worker_plugins_lost(w, comm);
        let wire = w.to_wire();
        for other in self.workers.keys() {
            comm.send_worker(other, ToWorker::WorkerRemoved { id: wire });
        }
        for c in self.clients.keys() {
            comm.send_client(c, ToClient::WorkerRemoved { id: wire });
        }
        let mut lost = Vec::new();
        for id in ws.has_what {
            let t = &mut self.tasks[id];
            t.who_has.retain(|&x| x != w);
            if t.who_has.is_empty() {
                self.set_state(id, TaskState::Released);
                lost.push(id);
            }
        }
        // Take every task off the dead worker before failing or recomputing
        // any of them: a failure cascades to dependents that may have been
        // running there too.
        let mut killed = Vec::new();
        let mut rerun = Vec::new();
        for id in ws.processing {
            let t = &mut self.tasks[id];
            t.processing_on = None;
            t.stealing_to = None;
            t.long_running = false;
            t.suspicious += 1;
            if t.suspicious >= self.config.allowed_failures {
                killed.push(id);
            } else {
                rerun.push(id);
            }
            self.set_state(id, TaskState::Released);
        }
        for t in self.tasks.values_mut() {
            if t.stealing_to == Some(w) {
                t.stealing_to = None;
            }
        }
        for id in killed {
            let t = &self.tasks[id];
            let failure = TaskFailure::new(
                FailureKind::KilledWorker { worker: ws.info.name.clone(), exit_code },
                format!("task {} was running on {} workers that died", t.key, t.suspicious),
            );
            self.fail(id, failure, comm);
        }
        for id in rerun.into_iter().chain(lost) {
            self.recover(id, comm);
        }
        // Queued tasks that only the dead worker could run go back through
        // placement, which parks or fails them.
        let orphans: Vec<TaskId> = self
            .queue
            .iter()
            .filter(|q| {
                self.tasks.get(q.task).is_some_and(|t| {
                    t.state == TaskState::Queued
                        && !self.workers.values().any(|w| w.can_run(t.func))
                })
            })
            .map(|q| q.task)
            .collect();
        for id in orphans {
            self.set_state(id, TaskState::Waiting);
            self.ready.push(id);
        }
        self.dirty.extend(self.workers.keys());
        self.finish(comm);
    }

    /// Periodic check: a worker silent for `heartbeat_ticks` ticks is lost.
    pub fn on_tick(&mut self, comm: &mut impl Comm) -> Vec<WorkerId> {
        let mut dead = Vec::new();
        for (w, ws) in self.workers.iter_mut() {
            ws.missed_ticks += 1;
            if ws.missed_ticks > self.config.heartbeat_ticks {
                dead.push(w);
            }
        }
        for &w in &dead {
            tracing::warn!(worker = %self.workers[w].info.name, "worker missed its heartbeats; removing it");
            self.on_worker_lost(w, None, comm);
        }
        self.semaphore_expire(comm);
        self.plugins_tick(comm);
        dead
    }
}

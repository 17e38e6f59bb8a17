//! Graph bookkeeping: adding tasks, (re)computing what is needed, releasing
//! what nobody needs and forgetting what nothing refers to.

use super::task::{Task, TaskState};
use super::{ClientId, Comm, Scheduler, TaskId};
use crate::error::{FailureKind, TaskFailure};
use crate::graph::{Key, TaskSpec};
use crate::protocol::{ToClient, ToWorker};
use std::cmp::Reverse;
use std::sync::Arc;

impl Scheduler {
    /// Adds tasks (skipping keys already known) and links their dependencies.
    /// Returns the new tasks, and those whose dependencies are unknown.
    pub(super) fn add_tasks(&mut self, specs: Vec<TaskSpec>) -> (Vec<TaskId>, Vec<(TaskId, Key)>) {
        let mut new = Vec::with_capacity(specs.len());
        let fifo_timeout = specs
            .first()
            .and_then(|s| s.options.fifo_timeout_us)
            .unwrap_or(crate::graph::DEFAULT_FIFO_TIMEOUT_US);
        let base = self.generations.rank_base(self.now_us, fifo_timeout, specs.len());
        for (position, spec) in specs.into_iter().enumerate() {
            if self.keys.contains_key(&spec.key) {
                continue;
            }
            let func = self.intern_func(&spec.func);
            self.seq += 1;
            let id = self.tasks.insert(Task {
                key: spec.key.clone(),
                state: TaskState::Released,
                func,
                deps: Vec::new(),
                dependents: Vec::new(),
                waiting_on: 0,
                waiters: 0,
                wants: Vec::new(),
                who_has: Vec::new(),
                processing_on: None,
                proc_slot: 0,
                nbytes: 0,
                order: (spec.options.priority, Reverse(base + position as u64), Reverse(self.seq)),
                suspicious: 0,
                retries_left: spec.options.retries,
                failure: None,
                stealing_to: None,
                long_running: false,
                spec: Some(Arc::new(spec)),
            });
            self.keys.insert(self.tasks[id].key.clone(), id);
            new.push(id);
        }
        let mut unknown = Vec::new();
        for &id in &new {
            let spec = self.tasks[id].spec.clone().expect("new tasks have a spec");
            for dep_key in spec.dependencies() {
                match self.keys.get(dep_key) {
                    Some(&d) => {
                        self.tasks[d].dependents.push(id);
                        let in_memory = self.tasks[d].state == TaskState::Memory;
                        let t = &mut self.tasks[id];
                        t.deps.push(d);
                        t.waiting_on += u32::from(!in_memory);
                    }
                    None => unknown.push((id, dep_key.clone())),
                }
            }
        }
        (new, unknown)
    }

    /// Tasks among `new` that are part of (or depend on) a dependency cycle.
    /// Only new tasks can form one: a task's dependencies exist before it.
    pub(super) fn cyclic(&self, new: &[TaskId]) -> Vec<TaskId> {
        let fresh: rustc_hash::FxHashSet<TaskId> = new.iter().copied().collect();
        let mut pending: rustc_hash::FxHashMap<TaskId, usize> = new
            .iter()
            .map(|&id| (id, self.tasks[id].deps.iter().filter(|d| fresh.contains(d)).count()))
            .collect();
        let mut ready: Vec<TaskId> =
            pending.iter().filter(|(_, &n)| n == 0).map(|(&id, _)| id).collect();
        while let Some(id) = ready.pop() {
            pending.remove(&id);
            for d in &self.tasks[id].dependents {
                if let Some(n) = pending.get_mut(d) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(*d);
                    }
                }
            }
        }
        pending.into_keys().collect()
    }

    /// Cuts the dependency edges among `ids` (new, released tasks), so tasks
    /// of a cycle that fail can also be forgotten.
    pub(super) fn unlink(&mut self, ids: &[TaskId]) {
        let set: rustc_hash::FxHashSet<TaskId> = ids.iter().copied().collect();
        for &id in ids {
            let t = &mut self.tasks[id];
            t.deps.retain(|d| !set.contains(d));
            t.dependents.retain(|d| !set.contains(d));
        }
        for &id in ids {
            let waiting_on = self.tasks[id]
                .deps
                .iter()
                .filter(|&&d| self.tasks[d].state != TaskState::Memory)
                .count();
            self.tasks[id].waiting_on = waiting_on as u32;
        }
    }

    /// Records that `client` wants `id` and tells it the current outcome.
    pub(super) fn add_want(&mut self, client: ClientId, id: TaskId, comm: &mut impl Comm) {
        if !self.clients[client].wants.insert(id) {
            return;
        }
        self.tasks[id].wants.push(client);
        let t = &self.tasks[id];
        match t.state {
            TaskState::Memory => comm.send_client(
                client,
                ToClient::KeyInMemory {
                    key: t.key.clone(),
                    nbytes: t.nbytes,
                    workers: self.wire_workers(&t.who_has),
                    value: None,
                },
            ),
            TaskState::Erred => comm.send_client(
                client,
                ToClient::KeyErred {
                    key: t.key.clone(),
                    failure: (**t.failure.as_ref().expect("erred")).clone(),
                },
            ),
            TaskState::Released => self.compute(id, comm),
            _ => {}
        }
    }

    /// Removes `client`'s want of `id`, then releases it if nobody needs it.
    pub(super) fn remove_want(&mut self, client: ClientId, id: TaskId) {
        if let Some(c) = self.clients.get_mut(client) {
            c.wants.remove(&id);
        }
        let Some(t) = self.tasks.get_mut(id) else {
            return;
        };
        t.wants.retain(|&c| c != client);
        self.maybe_release.push(id);
    }

    /// Makes a released task (and its released dependencies) compute again.
    pub(super) fn compute(&mut self, id: TaskId, comm: &mut impl Comm) {
        let root = id;
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let Some(t) = self.tasks.get(id) else {
                continue;
            };
            // A dependency pushed earlier may no longer be needed (its
            // dependent failed in the meantime).
            let needed = id == root || !t.wants.is_empty() || t.waiters > 0;
            if t.state != TaskState::Released || !needed {
                continue;
            }
            if t.spec.is_none() {
                let failure = TaskFailure::new(
                    FailureKind::DataLost,
                    format!("scattered data {} was lost with its worker; scatter it again", t.key),
                );
                self.fail(id, failure, comm);
                continue;
            }
            if let Some(&d) = t.deps.iter().find(|&&d| self.tasks[d].state == TaskState::Erred) {
                let dep = &self.tasks[d];
                let mut failure = (**dep.failure.as_ref().expect("erred")).clone();
                failure.origin.get_or_insert_with(|| dep.key.to_string());
                self.fail(id, failure, comm);
                continue;
            }
            if t.waiting_on == 0 {
                self.set_state(id, TaskState::Waiting);
                self.ready.push(id);
            } else {
                self.set_state(id, TaskState::Waiting);
                let deps = self.tasks[id].deps.clone();
                stack.extend(
                    deps.into_iter().filter(|&d| self.tasks[d].state == TaskState::Released),
                );
            }
        }
    }

    /// Ends every handler: schedules what became ready, releases and forgets
    /// what nobody needs, and refills workers that lost tasks. Internal steps
    /// only push to these worklists, so nothing is forgotten while a handler
    /// still refers to it.
    pub(super) fn finish(&mut self, comm: &mut impl Comm) {
        loop {
            self.drain(comm);
            self.datasets_flush(comm);
            if self.dirty.is_empty() {
                break;
            }
            let mut dirty = std::mem::take(&mut self.dirty);
            dirty.sort();
            dirty.dedup();
            for w in dirty {
                if self.workers.contains_key(w) {
                    self.fill_worker(w, comm);
                }
            }
        }
    }

    fn drain(&mut self, comm: &mut impl Comm) {
        loop {
            if !self.ready.is_empty() {
                // Highest priority first, then submission order.
                let mut ready = std::mem::take(&mut self.ready);
                ready.sort_by_key(|&id| std::cmp::Reverse(self.tasks.get(id).map(|t| t.order)));
                for id in ready {
                    if self
                        .tasks
                        .get(id)
                        .is_some_and(|t| t.state == TaskState::Waiting && t.waiting_on == 0)
                    {
                        self.schedule_ready(id, comm);
                    }
                }
            } else if let Some(id) = self.maybe_release.pop() {
                self.release_if_unneeded(id, comm);
            } else {
                break;
            }
        }
    }

    fn release_if_unneeded(&mut self, id: TaskId, comm: &mut impl Comm) {
        let Some(t) = self.tasks.get(id) else { return };
        if !t.wants.is_empty() || t.waiters > 0 || self.fire_and_forget.contains(&id) {
            return;
        }
        match t.state {
            TaskState::Memory => {
                let key = t.key.clone();
                for w in std::mem::take(&mut self.tasks[id].who_has) {
                    let ws = &mut self.workers[w];
                    ws.has_what.remove(&id);
                    ws.nbytes = ws.nbytes.saturating_sub(self.tasks[id].nbytes);
                    comm.send_worker(w, ToWorker::Free { keys: vec![key.clone()] });
                }
                self.set_state(id, TaskState::Released);
            }
            TaskState::Processing
            | TaskState::NoWorker
            | TaskState::Waiting
            | TaskState::Queued => {
                self.withdraw(id, comm);
                self.set_state(id, TaskState::Released);
            }
            TaskState::Released | TaskState::Erred | TaskState::Forgotten => {}
        }
        self.forget_if_unused(id);
    }

    /// Stops whatever is under way for a task: takes it off its worker (which
    /// drops the task or its result) or out of the no-worker set. Queued
    /// entries go stale and are skipped.
    pub(super) fn withdraw(&mut self, id: TaskId, comm: &mut impl Comm) {
        match self.tasks[id].state {
            TaskState::Processing => {
                let w = self.unassign(id);
                let keys = vec![self.tasks[id].key.clone()];
                comm.send_worker(w, ToWorker::Free { keys });
            }
            TaskState::NoWorker => {
                self.no_worker.remove(&id);
            }
            _ => {}
        }
    }

    /// Forgets a task nothing refers to, then its dependencies that became unused.
    fn forget_if_unused(&mut self, id: TaskId) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let Some(t) = self.tasks.get(id) else {
                continue;
            };
            if !t.wants.is_empty()
                || !t.dependents.is_empty()
                || t.state.is_active()
                || t.state == TaskState::Memory
            {
                continue;
            }
            let t = self.tasks.remove(id).expect("checked");
            self.keys.remove(&t.key);
            self.plugin_forgotten(&t.key, t.state);
            for d in t.deps {
                let dep = &mut self.tasks[d];
                if let Some(pos) = dep.dependents.iter().position(|&x| x == id) {
                    dep.dependents.swap_remove(pos);
                }
                if dep.dependents.is_empty() {
                    if dep.state == TaskState::Memory {
                        self.maybe_release.push(d);
                    } else {
                        stack.push(d);
                    }
                }
            }
        }
    }

    /// Marks a task and its active or released dependents as failed and tells
    /// the clients that want them.
    pub(super) fn fail(&mut self, id: TaskId, failure: TaskFailure, comm: &mut impl Comm) {
        let origin = self.tasks[id].key.to_string();
        let root = Arc::new(failure);
        let mut stack = vec![(id, root.clone())];
        while let Some((id, failure)) = stack.pop() {
            if matches!(self.tasks[id].state, TaskState::Memory | TaskState::Erred) {
                continue;
            }
            self.withdraw(id, comm);
            self.tasks[id].failure = Some(failure.clone());
            self.set_state(id, TaskState::Erred);
            let t = &self.tasks[id];
            for &c in &t.wants {
                comm.send_client(
                    c,
                    ToClient::KeyErred { key: t.key.clone(), failure: (*failure).clone() },
                );
            }
            let blamed = if failure.origin.is_none() && Arc::ptr_eq(&failure, &root) {
                let mut f = (*failure).clone();
                f.origin = Some(origin.clone());
                Arc::new(f)
            } else {
                failure
            };
            let dependents = self.tasks[id].dependents.clone();
            stack.extend(dependents.into_iter().map(|d| (d, blamed.clone())));
            self.maybe_release.push(id);
        }
    }

    /// Cancels tasks and everything depending on them, for every client.
    pub(super) fn cancel(&mut self, ids: Vec<TaskId>, comm: &mut impl Comm) {
        let mut stack = ids;
        let mut seen = rustc_hash::FxHashSet::default();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || !self.tasks.contains_key(id) {
                continue;
            }
            self.fire_and_forget.remove(&id);
            let wants = std::mem::take(&mut self.tasks[id].wants);
            for c in wants {
                self.clients[c].wants.remove(&id);
                comm.send_client(c, ToClient::KeyCancelled { key: self.tasks[id].key.clone() });
            }
            stack.extend(self.tasks[id].dependents.iter().copied());
        }
        self.maybe_release.extend(seen);
    }
}

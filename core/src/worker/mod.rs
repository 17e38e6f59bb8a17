//! The sans-IO worker: which assigned tasks wait for data, which are ready,
//! which run; the results it holds; what it must fetch from its peers.
//!
//! The driver feeds it scheduler messages, fetch results and task
//! completions; the worker answers with an [`Outbox`] of messages to the
//! scheduler, fetches to start and task executions to start. It starts tasks
//! in priority order and hands the executor at most [`Worker::execute_limit`]
//! at once; the executor runs at most `nthreads` of them concurrently. A task
//! needing resources (see [`crate::graph::Restrictions`]) is handed over only
//! while the worker's totals ([`Worker::set_resources`]) leave room for it, so
//! at no time do running tasks hold more than the worker offers.
//!
//! ```
//! use rudask_core::worker::{Worker, Outbox};
//! let mut w = Worker::new(1, 2);
//! let mut out = Outbox::default();
//! w.put_data(vec![("x".into(), rudask_core::Payload::from(vec![1u8]))]);
//! assert_eq!(w.get_data(&["x".into()])[0].1.as_ref().map(|p| p.len()), Some(1));
//! # let _ = &mut out;
//! ```

mod resources;
mod store;

pub use store::{SpillBackend, SpillOutcome, Store};

use crate::error::{FailureKind, TaskFailure};
use crate::graph::{Arg, Key, Order, TaskSpec};
use crate::protocol::{ComputeTask, DepLocation, Payload, ToWorker, WorkerMsg};
use crate::registry::TaskResult;
use resources::{needs, Pool};
use rustc_hash::FxHashMap;
use std::collections::BinaryHeap;
use std::sync::Arc;

mod acquire;

/// Results at most this large travel inline to the scheduler and on to clients.
pub const DEFAULT_INLINE_RESULT: usize = 16 * 1024;

/// Tasks are handed to the executor ahead of a free slot only while the
/// average task is shorter than this, so a slot never waits for the event
/// loop between tiny tasks but long tasks stay stealable.
const PREFETCH_BELOW_US: f64 = 1000.0;

/// At most this many tasks per slot are handed to the executor.
const MAX_PREFETCH_PER_SLOT: usize = 16;

/// A task to start.
#[derive(Debug)]
pub struct Execute {
    /// Scheduler's task id.
    pub task: u64,
    /// The task's key.
    pub key: Key,
    /// Registered function id.
    pub func: Arc<str>,
    /// Arguments, dependencies resolved to their data.
    pub args: Vec<Payload>,
    /// The result is to be kept as an actor ([`crate::graph::TaskOptions::actor`]).
    pub actor: bool,
}

/// Data to fetch from a peer worker.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The peer's id.
    pub worker: u64,
    /// The peer's data address.
    pub addr: String,
    /// Keys to fetch.
    pub keys: Vec<Key>,
}

/// What the worker wants done after a handler.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Messages to the scheduler.
    pub to_scheduler: Vec<WorkerMsg>,
    /// Fetches to start.
    pub fetches: Vec<Fetch>,
    /// Tasks to start.
    pub executes: Vec<Execute>,
    /// Task state changes, recorded only when
    /// [`Worker::set_track_transitions`] is on (worker plugins want them).
    pub transitions: Vec<(Key, WorkerTaskState, WorkerTaskState)>,
}

/// A task's state on a worker, as worker plugins see it.
///
/// ```
/// use rudask_core::worker::WorkerTaskState;
/// assert_ne!(WorkerTaskState::Ready, WorkerTaskState::Executing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerTaskState {
    /// Just assigned by the scheduler.
    Received,
    /// Waiting for dependencies to arrive from peers.
    Fetching,
    /// All inputs here; waiting for a free slot.
    Ready,
    /// Running.
    Executing,
    /// Finished; its result is held here.
    Memory,
    /// Finished with an error.
    Error,
    /// Dropped by this worker (freed, stolen, cancelled or its inputs lost).
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Fetching,
    Ready,
    Executing,
    Cancelled,
}

#[derive(Debug)]
struct WTask {
    spec: TaskSpec,
    order: Order,
    missing: usize,
    state: State,
    /// Running, but gave its slot back (see [`Worker::on_secede`]).
    seceded: bool,
    /// It needs resources, so it waits in `constrained` when ready.
    constrained: bool,
}

/// The worker state machine.
#[derive(Debug)]
pub struct Worker {
    nthreads: usize,
    inline_max: usize,
    data: Store,
    fetched: FxHashMap<Key, (Payload, u32)>,
    tasks: FxHashMap<u64, WTask>,
    by_key: FxHashMap<Key, u64>,
    ready: BinaryHeap<(Order, u64)>,
    /// Ready tasks that need resources; the head starts when they are free.
    constrained: BinaryHeap<(Order, u64)>,
    resources: Pool,
    executing: usize,
    in_flight: FxHashMap<Key, Vec<u64>>,
    peers: FxHashMap<u64, String>,
    me: u64,
    avg_us: f64,
    acquiring: rustc_hash::FxHashSet<Key>,
    track_transitions: bool,
    /// Memory is above the pause threshold: no task starts.
    paused: bool,
}

impl Worker {
    /// A worker with scheduler id `me` and `nthreads` task slots.
    pub fn new(me: u64, nthreads: usize) -> Self {
        Worker {
            nthreads: nthreads.max(1),
            inline_max: DEFAULT_INLINE_RESULT,
            data: Store::default(),
            fetched: FxHashMap::default(),
            tasks: FxHashMap::default(),
            by_key: FxHashMap::default(),
            ready: BinaryHeap::new(),
            constrained: BinaryHeap::new(),
            resources: Pool::default(),
            executing: 0,
            in_flight: FxHashMap::default(),
            peers: FxHashMap::default(),
            me,
            avg_us: 2.0 * PREFETCH_BELOW_US,
            acquiring: Default::default(),
            track_transitions: false,
            paused: false,
        }
    }

    /// Records every task state change into [`Outbox::transitions`]; off by
    /// default so workers without plugins pay nothing.
    ///
    /// ```
    /// use rudask_core::worker::Worker;
    /// let mut w = Worker::new(1, 4);
    /// w.set_track_transitions(true);
    /// ```
    pub fn set_track_transitions(&mut self, on: bool) {
        self.track_transitions = on;
    }

    fn note(&self, out: &mut Outbox, key: &Key, from: WorkerTaskState, to: WorkerTaskState) {
        if self.track_transitions {
            out.transitions.push((key.clone(), from, to));
        }
    }

    fn note_state(state: State) -> WorkerTaskState {
        match state {
            State::Fetching => WorkerTaskState::Fetching,
            State::Ready => WorkerTaskState::Ready,
            State::Executing | State::Cancelled => WorkerTaskState::Executing,
        }
    }

    /// Sets the resources this worker offers, name and total (as given to
    /// `rudask worker --resources GPU=2`).
    ///
    /// ```
    /// use rudask_core::worker::Worker;
    /// let mut w = Worker::new(1, 4);
    /// w.set_resources(vec![("GPU".into(), 2.0)]);
    /// assert_eq!(w.resources_in_use(), vec![("GPU".to_string(), 0.0)]);
    /// ```
    pub fn set_resources(&mut self, totals: Vec<(String, f64)>) {
        self.resources = Pool::new(totals);
    }

    /// How much of each offered resource running tasks hold now.
    pub fn resources_in_use(&self) -> Vec<(String, f64)> {
        self.resources.in_use()
    }

    /// Registers a peer's data address.
    pub fn add_peer(&mut self, id: u64, addr: String) {
        if id != self.me {
            self.peers.insert(id, addr);
        }
    }

    /// Number of tasks handed to the executor and not finished.
    pub fn executing(&self) -> usize {
        self.executing
    }

    /// How many tasks may be handed to the executor at once: the slots, plus
    /// some queued per slot while tasks are tiny.
    pub fn execute_limit(&self) -> usize {
        let per_slot = (PREFETCH_BELOW_US / self.avg_us.max(1.0)) as usize;
        self.nthreads * (1 + per_slot.min(MAX_PREFETCH_PER_SLOT))
    }

    /// Number of tasks assigned and not finished.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Bytes of results held in memory (spilled ones not counted).
    pub fn nbytes(&self) -> usize {
        self.data.managed() as usize
    }

    /// A message from the scheduler.
    pub fn on_scheduler_message(&mut self, msg: ToWorker, out: &mut Outbox) {
        match msg {
            ToWorker::Compute(ct) => self.on_compute(*ct, out),
            ToWorker::Free { keys } => {
                for k in keys {
                    if self.data.remove(&k) {
                        self.note(out, &k, WorkerTaskState::Memory, WorkerTaskState::Released);
                    }
                    if let Some(id) = self.by_key.get(&k).copied() {
                        let t = self.tasks.get_mut(&id).expect("indexed");
                        if t.state == State::Executing {
                            t.state = State::Cancelled;
                        } else {
                            let from = Self::note_state(t.state);
                            self.drop_task(id);
                            self.note(out, &k, from, WorkerTaskState::Released);
                        }
                    }
                }
            }
            ToWorker::Steal { task } => {
                let stolen = matches!(self.tasks.get(&task), Some(t) if matches!(t.state, State::Fetching | State::Ready));
                if stolen {
                    if self.track_transitions {
                        let t = &self.tasks[&task];
                        let (key, from) = (t.spec.key.clone(), Self::note_state(t.state));
                        self.note(out, &key, from, WorkerTaskState::Released);
                    }
                    self.drop_task(task);
                }
                out.to_scheduler.push(WorkerMsg::StealResponse { task, stolen });
            }
            ToWorker::WorkerAdded(info) => self.add_peer(info.id, info.data_addr),
            ToWorker::WorkerRemoved { id } => {
                self.peers.remove(&id);
            }
            ToWorker::Acquire { keys } => self.on_acquire(keys, out),
            // The driver acts on these itself.
            ToWorker::Shutdown
            | ToWorker::Run { .. }
            | ToWorker::File { .. }
            | ToWorker::Restart
            | ToWorker::Plugin { .. }
            | ToWorker::StoreParts { .. } => {}
        }
        self.run_ready(out);
    }

    fn on_compute(&mut self, ct: ComputeTask, out: &mut Outbox) {
        let id = ct.task;
        // The same task may be assigned again (after a steal or a release
        // raced with a new assignment): a run in progress serves the new
        // assignment; anything earlier is replaced.
        match self.tasks.get_mut(&id) {
            Some(t) if matches!(t.state, State::Executing | State::Cancelled) => {
                t.state = State::Executing;
                return;
            }
            Some(_) => self.drop_task(id),
            None => {}
        }
        let constrained = match needs(&ct.spec) {
            Some(need) if !self.resources.covers(need) => {
                let failure = TaskFailure::new(
                    FailureKind::NoWorker,
                    format!(
                        "task {} needs resources {need:?} but this worker offers only {:?}",
                        ct.spec.key,
                        self.resources.totals()
                    ),
                );
                out.to_scheduler.push(WorkerMsg::TaskFailed { task: id, failure });
                return;
            }
            need => need.is_some(),
        };
        let mut missing = 0;
        let mut to_fetch: Vec<(u64, Key)> = Vec::new();
        let mut unreachable: Vec<(Key, u64)> = Vec::new();
        for DepLocation { key, workers } in ct.deps {
            if self.data.contains(&key) {
                continue;
            }
            if let Some(entry) = self.fetched.get_mut(&key) {
                entry.1 += 1;
                continue;
            }
            missing += 1;
            if let Some(waiting) = self.in_flight.get_mut(&key) {
                waiting.push(id);
                continue;
            }
            let known: Vec<u64> =
                workers.iter().copied().filter(|w| self.peers.contains_key(w)).collect();
            if known.is_empty() {
                unreachable.push((key, workers.first().copied().unwrap_or(u64::MAX)));
                continue;
            }
            let holder = known[(id as usize) % known.len()];
            self.in_flight.insert(key.clone(), vec![id]);
            to_fetch.push((holder, key));
        }
        let key = ct.spec.key.clone();
        let state = if missing == 0 { State::Ready } else { State::Fetching };
        if self.track_transitions {
            self.note(out, &key, WorkerTaskState::Received, Self::note_state(state));
        }
        self.by_key.insert(key, id);
        self.tasks.insert(
            id,
            WTask { spec: ct.spec, order: ct.order, missing, state, seceded: false, constrained },
        );
        if state == State::Ready {
            self.push_ready(constrained, ct.order, id);
        }
        to_fetch.sort();
        for (holder, key) in to_fetch {
            match out.fetches.last_mut() {
                Some(f) if f.worker == holder => f.keys.push(key),
                _ => out.fetches.push(Fetch {
                    worker: holder,
                    addr: self.peers[&holder].clone(),
                    keys: vec![key],
                }),
            }
        }
        if let Some((key, worker)) = unreachable.into_iter().next() {
            self.drop_task(id);
            out.to_scheduler.push(WorkerMsg::MissingData { task: id, key, worker });
        }
    }

    fn drop_task(&mut self, id: u64) {
        if let Some(t) = self.tasks.remove(&id) {
            if self.by_key.get(&t.spec.key) == Some(&id) {
                self.by_key.remove(&t.spec.key);
            }
            for k in t.spec.dependencies() {
                if let Some(waiting) = self.in_flight.get_mut(k) {
                    waiting.retain(|&x| x != id);
                }
                self.unref_fetched(k);
            }
        }
    }

    fn unref_fetched(&mut self, k: &Key) {
        if let Some(entry) = self.fetched.get_mut(k) {
            entry.1 -= 1;
            if entry.1 == 0 {
                self.fetched.remove(k);
            }
        }
    }

    /// Data arrived from peer `from`; `None` marks keys the peer did not have.
    pub fn on_fetched(&mut self, from: u64, items: Vec<(Key, Option<Payload>)>, out: &mut Outbox) {
        for (key, value) in items {
            self.on_acquire_fetched(&key, value.as_ref(), out);
            let waiting = self.in_flight.remove(&key).unwrap_or_default();
            match value {
                Some(v) => {
                    let refs =
                        waiting.iter().filter(|id| self.tasks.contains_key(id)).count() as u32;
                    if refs > 0 && !self.data.contains(&key) {
                        self.fetched.insert(key.clone(), (v, refs));
                    }
                    for id in waiting {
                        if let Some(t) = self.tasks.get_mut(&id) {
                            t.missing -= 1;
                            if t.missing == 0 && t.state == State::Fetching {
                                t.state = State::Ready;
                                let (constrained, order) = (t.constrained, t.order);
                                if self.track_transitions {
                                    let key = t.spec.key.clone();
                                    self.note(
                                        out,
                                        &key,
                                        WorkerTaskState::Fetching,
                                        WorkerTaskState::Ready,
                                    );
                                }
                                self.push_ready(constrained, order, id);
                            }
                        }
                    }
                }
                None => {
                    for id in waiting {
                        if self.tasks.contains_key(&id) {
                            self.drop_task(id);
                            out.to_scheduler.push(WorkerMsg::MissingData {
                                task: id,
                                key: key.clone(),
                                worker: from,
                            });
                        }
                    }
                }
            }
        }
        self.run_ready(out);
    }

    /// A fetch from `from` failed (the peer is unreachable or died).
    pub fn on_fetch_failed(&mut self, from: u64, keys: Vec<Key>, out: &mut Outbox) {
        self.on_fetched(from, keys.into_iter().map(|k| (k, None)).collect(), out);
    }

    /// A task finished running.
    pub fn on_task_done(
        &mut self,
        task: u64,
        result: TaskResult,
        duration_us: u64,
        out: &mut Outbox,
    ) {
        self.avg_us = 0.9 * self.avg_us + 0.1 * duration_us as f64;
        let Some(t) = self.tasks.get(&task) else {
            self.executing -= 1;
            self.run_ready(out);
            return;
        };
        if !t.seceded {
            self.executing -= 1;
        }
        if let Some(need) = needs(&t.spec) {
            self.resources.release(need);
        }
        let cancelled = t.state == State::Cancelled;
        let key = t.spec.key.clone();
        self.drop_task(task);
        if self.track_transitions {
            let to = match (&result, cancelled) {
                (_, true) => WorkerTaskState::Released,
                (Ok(_), false) => WorkerTaskState::Memory,
                (Err(_), false) => WorkerTaskState::Error,
            };
            self.note(out, &key, WorkerTaskState::Executing, to);
        }
        if !cancelled {
            match result {
                Ok(value) => {
                    let nbytes = value.len() as u64;
                    // An in-memory value costs nothing to pass along in-process.
                    let small = value.as_object().is_some() || value.len() <= self.inline_max;
                    let inline = small.then(|| value.clone());
                    self.data.insert(key, value);
                    out.to_scheduler.push(WorkerMsg::TaskFinished {
                        task,
                        nbytes,
                        value: inline,
                        duration_us,
                    });
                }
                Err(failure) => out.to_scheduler.push(WorkerMsg::TaskFailed { task, failure }),
            }
        }
        self.run_ready(out);
    }

    fn run_ready(&mut self, out: &mut Outbox) {
        while !self.paused && self.executing < self.execute_limit() {
            let Some((order, id)) = self.next_ready() else {
                break;
            };
            let Some(t) = self.tasks.get_mut(&id) else {
                continue;
            };
            if t.state != State::Ready || t.order != order {
                continue;
            }
            t.state = State::Executing;
            let mut args = Vec::with_capacity(t.spec.args.len());
            let mut lost = None;
            for a in &t.spec.args {
                match a {
                    Arg::Value(p) => args.push(p.clone()),
                    Arg::Dep(k) => {
                        match self.data.get(k).or_else(|| self.fetched.get(k).map(|e| e.0.clone()))
                        {
                            Some(p) => args.push(p),
                            None => lost = Some(k.clone()),
                        }
                    }
                }
            }
            if let Some(key) = lost {
                if self.track_transitions {
                    let own = t.spec.key.clone();
                    self.note(out, &own, WorkerTaskState::Ready, WorkerTaskState::Released);
                }
                self.drop_task(id);
                out.to_scheduler.push(WorkerMsg::MissingData { task: id, key, worker: self.me });
                continue;
            }
            if let Some(need) = needs(&t.spec) {
                self.resources.acquire(need);
            }
            if self.track_transitions {
                out.transitions.push((
                    t.spec.key.clone(),
                    WorkerTaskState::Ready,
                    WorkerTaskState::Executing,
                ));
            }
            self.executing += 1;
            out.executes.push(Execute {
                task: id,
                key: t.spec.key.clone(),
                func: t.spec.func.clone(),
                args,
                actor: t.spec.options.actor,
            });
        }
    }

    /// A running task seceded: it waits on other tasks and gives its slot
    /// back, so another task may start. The scheduler is told, so it stops
    /// counting the task toward this worker's occupancy.
    pub fn on_secede(&mut self, task: u64, out: &mut Outbox) {
        let Some(t) = self.tasks.get_mut(&task) else { return };
        if t.seceded || !matches!(t.state, State::Executing | State::Cancelled) {
            return;
        }
        t.seceded = true;
        self.executing -= 1;
        out.to_scheduler.push(WorkerMsg::LongRunning { task });
        self.run_ready(out);
    }

    /// A seceded task took a slot again (the executor waited for a free one).
    pub fn on_rejoin(&mut self, task: u64) {
        if let Some(t) = self.tasks.get_mut(&task) {
            if std::mem::take(&mut t.seceded) {
                self.executing += 1;
            }
        }
    }

    fn push_ready(&mut self, constrained: bool, order: Order, id: u64) {
        if constrained {
            self.constrained.push((order, id));
        } else {
            self.ready.push((order, id));
        }
    }

    /// The next ready task to start: the better of the plain ready heap's
    /// head and the resource-constrained heap's head, the latter only when
    /// its resources are free (a blocked one holds back only its own kind).
    fn next_ready(&mut self) -> Option<(Order, u64)> {
        while let Some(&(order, id)) = self.constrained.peek() {
            let Some(t) =
                self.tasks.get(&id).filter(|t| t.state == State::Ready && t.order == order)
            else {
                self.constrained.pop();
                continue;
            };
            if self.ready.peek().is_some_and(|&(o, _)| o > order) {
                break;
            }
            if !needs(&t.spec).is_some_and(|need| self.resources.available(need)) {
                break;
            }
            return self.constrained.pop();
        }
        self.ready.pop()
    }

    /// Values held for these keys (for peers and clients).
    /// Spilled values are read back from disk.
    pub fn get_data(&mut self, keys: &[Key]) -> Vec<(Key, Option<Payload>)> {
        keys.iter().map(|k| (k.clone(), self.data.get(k))).collect()
    }

    /// Stores values put by a client (scatter).
    pub fn put_data(&mut self, items: Vec<(Key, Payload)>) {
        for (k, v) in items {
            self.data.insert(k, v);
        }
    }

    /// The results held, for the memory monitor: sizes, spilling, spill
    /// backend.
    ///
    /// ```
    /// let mut w = rudask_core::worker::Worker::new(1, 1);
    /// w.put_data(vec![("x".into(), rudask_core::Payload::from(vec![0u8; 4]))]);
    /// assert_eq!(w.store().managed(), 4);
    /// ```
    pub fn store(&mut self) -> &mut Store {
        &mut self.data
    }

    /// Pauses or resumes starting tasks (memory above or back below the
    /// pause threshold). A paused worker keeps its assigned tasks, finishes
    /// the ones running and serves its data; the scheduler is told with
    /// [`WorkerMsg::Paused`] so it assigns nothing new meanwhile. Returns
    /// whether the state changed.
    ///
    /// ```
    /// use rudask_core::worker::{Outbox, Worker};
    /// let mut w = Worker::new(1, 1);
    /// let mut out = Outbox::default();
    /// assert!(w.set_paused(true, &mut out));
    /// assert!(w.paused());
    /// ```
    pub fn set_paused(&mut self, paused: bool, out: &mut Outbox) -> bool {
        if self.paused == paused {
            return false;
        }
        self.paused = paused;
        out.to_scheduler.push(WorkerMsg::Paused { paused });
        self.run_ready(out);
        true
    }

    /// Whether the worker is paused (see [`Worker::set_paused`]).
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// A failure for a task whose function this binary does not have.
    pub fn unknown_function(func: &str) -> TaskFailure {
        TaskFailure::new(FailureKind::NoWorker, format!("this worker has no task function {func}"))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_acquire;
#[cfg(test)]
mod tests_memory;
#[cfg(test)]
mod tests_resources;
#[cfg(test)]
mod tests_secede;
#[cfg(test)]
mod tests_transitions;

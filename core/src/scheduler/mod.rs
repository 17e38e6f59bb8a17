//! The sans-IO scheduler: the whole cluster's task state in one owner, driven
//! by `on_*` handlers that push their effects into a [`Comm`].
//!
//! Ids are dense generational slots ([`TaskId`], [`WorkerId`], [`ClientId`]);
//! external keys map to task ids through one hash map. All state changes of a
//! task go through `Scheduler::set_state`, which keeps the two counters the
//! rest relies on: `waiting_on` (dependencies not in memory) and `waiters`
//! (active dependents). Invariants are checked by [`Scheduler::check_invariants`]
//! in tests and property tests.
//!
//! ```
//! use rudask_core::scheduler::{Scheduler, SchedulerConfig, TestComm};
//! let mut s = Scheduler::new(SchedulerConfig::default());
//! let mut comm = TestComm::default();
//! let c = s.on_client_connected("me");
//! s.on_client_lost(c, &mut comm);
//! s.check_invariants();
//! ```

mod admin;
mod clients;
mod coord;
mod data_ops;
mod datasets;
pub use datasets::LOAD_PART;
mod events;
mod fifo;
mod futures;
mod graph;
mod long_running;
mod memory;
mod observe;
mod placement;
mod plugins;
mod profile;
mod requests;
mod restrictions;
mod task;
mod test_comm;
mod worker_plugins;
mod workers;
pub use observe::{
    FunctionProgress, Observation, StateCounts, TaskRecord, WorkerView, STREAM_CAPACITY,
};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_actors;
#[cfg(test)]
mod tests_admin;
#[cfg(test)]
mod tests_coord;
#[cfg(test)]
mod tests_data_ops;
#[cfg(test)]
mod tests_datasets;
#[cfg(test)]
mod tests_futures;
#[cfg(test)]
mod tests_long_running;
#[cfg(test)]
mod tests_memory;
#[cfg(test)]
mod tests_observe;
#[cfg(test)]
mod tests_placement;
#[cfg(test)]
mod tests_plugins;

pub use events::EVENT_HISTORY;
pub use task::{Task, TaskState};
pub use test_comm::TestComm;

use crate::protocol::{ToClient, ToWorker, WorkerHello, WorkerInfo};
use rustc_hash::FxHashMap;
use slotmap::{Key as _, KeyData, SlotMap};
use std::collections::BinaryHeap;
use std::sync::Arc;

slotmap::new_key_type! {
    /// Dense id of a task on this scheduler.
    pub struct TaskId;
    /// Dense id of a connected worker.
    pub struct WorkerId;
    /// Dense id of a connected client.
    pub struct ClientId;
}

/// Converts ids to and from their wire form.
pub trait WireId: Sized {
    /// The id as sent on the wire.
    fn to_wire(self) -> u64;
    /// The id from its wire form.
    fn from_wire(v: u64) -> Self;
}

macro_rules! wire_id {
    ($($t:ty),*) => {$(
        impl WireId for $t {
            fn to_wire(self) -> u64 { self.data().as_ffi() }
            fn from_wire(v: u64) -> Self { KeyData::from_ffi(v).into() }
        }
    )*};
}
wire_id!(TaskId, WorkerId, ClientId);

/// The scheduler's outbox.
pub trait Comm {
    /// Queue a message to a client.
    fn send_client(&mut self, client: ClientId, msg: ToClient);
    /// Queue a message to a worker.
    fn send_worker(&mut self, worker: WorkerId, msg: ToWorker);
    /// Record a change of a published dataset in the durable catalog. Only
    /// called once [`Scheduler::restore_datasets`] configured a store;
    /// drivers without one need not implement it.
    fn catalog(&mut self, _change: crate::protocol::CatalogChange) {}
}

/// Tunables of the scheduling rules.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// A task errs with `KilledWorker` once this many workers died running it.
    pub allowed_failures: u32,
    /// Consecutive ticks without a message after which a worker is declared dead.
    pub heartbeat_ticks: u32,
    /// Microseconds of queued work each worker slot should hold beyond the task it runs.
    pub buffer_us: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { allowed_failures: 3, heartbeat_ticks: 30, buffer_us: 2_000 }
    }
}

/// Dense index of an interned function id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FuncIdx(u32);

/// A connected worker as the scheduler sees it.
#[derive(Debug)]
pub struct WorkerState {
    /// Public description.
    pub info: WorkerInfo,
    funcs: Vec<u64>,
    /// Tasks assigned to it, in assignment order (swap-removed).
    pub processing: Vec<TaskId>,
    /// Tasks whose result it holds.
    pub has_what: rustc_hash::FxHashSet<TaskId>,
    /// Bytes of results it holds.
    pub nbytes: u64,
    missed_ticks: u32,
    /// How many of its processing tasks seceded (they hold no slot).
    pub long_running: usize,
}

impl WorkerState {
    fn can_run(&self, f: FuncIdx) -> bool {
        let i = f.0 as usize;
        self.funcs.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// A connected client.
#[derive(Debug, Default)]
pub struct ClientState {
    /// Name for logs.
    pub name: String,
    /// Tasks it wants.
    pub wants: rustc_hash::FxHashSet<TaskId>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    order: crate::graph::Order,
    task: TaskId,
}

/// The scheduler state machine.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    tasks: SlotMap<TaskId, task::Task>,
    keys: FxHashMap<crate::graph::Key, TaskId>,
    workers: SlotMap<WorkerId, WorkerState>,
    clients: SlotMap<ClientId, ClientState>,
    func_ids: FxHashMap<Arc<str>, FuncIdx>,
    queue: BinaryHeap<Queued>,
    no_worker: rustc_hash::FxHashSet<TaskId>,
    seq: u64,
    avg_duration_us: f64,
    // Worklists filled by `set_state` and drained at the end of each handler.
    ready: Vec<TaskId>,
    maybe_release: Vec<TaskId>,
    dirty: Vec<WorkerId>,
    // Tasks held until they finish or fail although no client may want them.
    fire_and_forget: rustc_hash::FxHashSet<TaskId>,
    data_ops: data_ops::DataOps,
    profiler: profile::Profiler,
    admin: admin::Admin,
    events: events::Events,
    /// Microseconds on the driver's clock, set before each batch of events.
    now_us: u64,
    generations: fifo::Generations,
    coord: coord::Coord,
    datasets: datasets::Datasets,
    plugins: crate::plugin::SchedulerPlugins,
    worker_plugins: worker_plugins::WorkerPlugins,
    // Run time of the task finishing now, for the plugins' transition hook.
    finishing_us: u64,
    // Task state changes so far, for monitoring.
    transitions: u64,
    stream: observe::TaskStream,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(config: SchedulerConfig) -> Self {
        Scheduler {
            config,
            tasks: SlotMap::with_key(),
            keys: FxHashMap::default(),
            workers: SlotMap::with_key(),
            clients: SlotMap::with_key(),
            func_ids: FxHashMap::default(),
            queue: BinaryHeap::new(),
            no_worker: Default::default(),
            seq: 0,
            avg_duration_us: 500.0,
            ready: Vec::new(),
            maybe_release: Vec::new(),
            dirty: Vec::new(),
            fire_and_forget: Default::default(),
            data_ops: Default::default(),
            profiler: Default::default(),
            admin: Default::default(),
            events: Default::default(),
            now_us: 0,
            generations: Default::default(),
            coord: Default::default(),
            datasets: Default::default(),
            plugins: Default::default(),
            worker_plugins: Default::default(),
            finishing_us: 0,
            transitions: 0,
            stream: Default::default(),
        }
    }

    /// Sets the scheduler's clock, in microseconds from any fixed origin. The
    /// driver calls it before each batch of events; time only matters for
    /// priority generations (see [`crate::graph::TaskOptions::fifo_timeout_us`]).
    ///
    /// ```
    /// use rudask_core::scheduler::{Scheduler, SchedulerConfig};
    /// let mut s = Scheduler::new(SchedulerConfig::default());
    /// s.set_now(1_500_000);
    /// assert_eq!(s.now(), 1_500_000);
    /// ```
    pub fn set_now(&mut self, micros: u64) {
        self.now_us = micros;
    }

    /// The clock as last set by [`Scheduler::set_now`].
    pub fn now(&self) -> u64 {
        self.now_us
    }

    /// Looks up a task by key.
    pub fn task_by_key(&self, key: &str) -> Option<(TaskId, &task::Task)> {
        let id = *self.keys.get(key)?;
        Some((id, &self.tasks[id]))
    }

    /// A task by id.
    pub fn task(&self, id: TaskId) -> Option<&task::Task> {
        self.tasks.get(id)
    }

    /// Number of tasks the scheduler knows.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// All connected workers.
    pub fn workers(&self) -> impl Iterator<Item = (WorkerId, &WorkerState)> {
        self.workers.iter()
    }

    /// Public descriptions of the connected workers.
    pub fn worker_infos(&self) -> Vec<WorkerInfo> {
        self.workers
            .values()
            .map(|w| WorkerInfo { managed_bytes: w.nbytes, ..w.info.clone() })
            .collect()
    }

    /// Number of connected clients.
    pub fn client_count(&self) -> usize {
        self.clients.len() - self.pseudo_clients()
    }

    /// Clients that are the scheduler's own holders of keys (coordination
    /// primitives, published datasets), not connections.
    fn pseudo_clients(&self) -> usize {
        usize::from(self.coord.holder().is_some()) + usize::from(self.datasets_holder().is_some())
    }

    fn intern_func(&mut self, id: &Arc<str>) -> FuncIdx {
        if let Some(&f) = self.func_ids.get(id) {
            return f;
        }
        let f = FuncIdx(self.func_ids.len() as u32);
        self.func_ids.insert(id.clone(), f);
        f
    }

    /// Changes a task's state, keeping `waiting_on` of its dependents and
    /// `waiters` of its dependencies right.
    fn set_state(&mut self, id: TaskId, new: TaskState) {
        let t = &mut self.tasks[id];
        let old = std::mem::replace(&mut t.state, new);
        if old == new {
            return;
        }
        self.transitions += 1;
        if matches!(new, TaskState::Memory | TaskState::Erred)
            && !self.fire_and_forget.is_empty()
            && self.fire_and_forget.remove(&id)
        {
            self.maybe_release.push(id);
        }
        let deps = if old.is_active() != new.is_active() {
            std::mem::take(&mut t.deps)
        } else {
            Vec::new()
        };
        if matches!(new, TaskState::Memory | TaskState::Erred) {
            self.dataset_task_settled(id);
        }
        if old.is_active() != new.is_active() {
            for &d in &deps {
                let dep = &mut self.tasks[d];
                if new.is_active() {
                    dep.waiters += 1;
                } else {
                    dep.waiters -= 1;
                    if dep.waiters == 0 {
                        self.maybe_release.push(d);
                    }
                }
            }
            self.tasks[id].deps = deps;
        }
        if (old == TaskState::Memory) != (new == TaskState::Memory) {
            let dependents = std::mem::take(&mut self.tasks[id].dependents);
            for &d in &dependents {
                let dt = &mut self.tasks[d];
                if new == TaskState::Memory {
                    dt.waiting_on -= 1;
                    if dt.waiting_on == 0 && dt.state == TaskState::Waiting {
                        self.ready.push(d);
                    }
                } else {
                    dt.waiting_on += 1;
                }
            }
            self.tasks[id].dependents = dependents;
        }
        if !self.plugins.is_empty() {
            self.plugin_transition(id, old, new);
        }
    }

    /// Panics when the state breaks an invariant. For tests.
    pub fn check_invariants(&self) {
        for (id, t) in &self.tasks {
            let waiting_on =
                t.deps.iter().filter(|&&d| self.tasks[d].state != TaskState::Memory).count() as u32;
            assert_eq!(t.waiting_on, waiting_on, "waiting_on of {}", t.key);
            let waiters =
                t.dependents.iter().filter(|&&d| self.tasks[d].state.is_active()).count() as u32;
            assert_eq!(t.waiters, waiters, "waiters of {}", t.key);
            for &d in &t.deps {
                assert!(
                    self.tasks[d].dependents.contains(&id),
                    "{} missing from dependents of its dependency",
                    t.key
                );
            }
            for &d in &t.dependents {
                assert!(
                    self.tasks[d].deps.contains(&id),
                    "dependent of {} does not list it",
                    t.key
                );
            }
            assert_eq!(self.keys.get(&t.key), Some(&id));
            match t.state {
                TaskState::Memory => {
                    assert!(!t.who_has.is_empty(), "{} in memory nowhere", t.key);
                    for &w in &t.who_has {
                        assert!(self.workers[w].has_what.contains(&id));
                    }
                }
                _ => assert!(t.who_has.is_empty(), "{} held but {:?}", t.key, t.state),
            }
            match t.state {
                TaskState::Processing => {
                    let w = t.processing_on.expect("processing without worker");
                    assert_eq!(self.workers[w].processing.get(t.proc_slot), Some(&id));
                }
                _ => {
                    assert!(t.processing_on.is_none(), "{} on a worker while {:?}", t.key, t.state)
                }
            }
            if t.state == TaskState::Waiting {
                assert!(t.waiting_on > 0, "{} waiting on nothing", t.key);
            }
            if t.state == TaskState::Erred {
                assert!(t.failure.is_some());
            }
            if t.state == TaskState::Memory && t.wants.is_empty() {
                assert!(t.waiters > 0, "{} kept in memory for nobody", t.key);
            }
            if t.wants.is_empty() && t.dependents.is_empty() {
                assert!(
                    t.state.is_active(),
                    "{} ({:?}) should have been forgotten",
                    t.key,
                    t.state
                );
            }
            if t.state.is_active() {
                assert!(
                    !t.wants.is_empty() || t.waiters > 0 || self.fire_and_forget.contains(&id),
                    "{} active for nobody",
                    t.key
                );
            }
            for &c in &t.wants {
                assert!(self.clients[c].wants.contains(&id));
            }
            if t.state == TaskState::NoWorker {
                assert!(self.no_worker.contains(&id));
            }
        }
        for (c, cs) in &self.clients {
            for &t in &cs.wants {
                assert!(self.tasks[t].wants.contains(&c));
            }
        }
        for (w, ws) in &self.workers {
            for (slot, &t) in ws.processing.iter().enumerate() {
                assert_eq!(self.tasks[t].processing_on, Some(w));
                assert_eq!(self.tasks[t].proc_slot, slot);
            }
            for &t in &ws.has_what {
                assert!(self.tasks[t].who_has.contains(&w));
            }
        }
        for &id in &self.fire_and_forget {
            assert!(self.tasks[id].state.is_active(), "fire-and-forget {:?} not active", id);
        }
        self.check_long_running();
        let queued = self.tasks.values().filter(|t| t.state == TaskState::Queued).count();
        assert!(self.queue.len() >= queued, "queued tasks missing from the queue");
        self.check_data_ops();
        self.check_restrictions();
        self.check_coord();
        self.check_datasets();
    }
}

/// Registers a worker; returns its id and the message to broadcast.
pub(crate) fn worker_state(info: WorkerInfo, funcs: Vec<u64>) -> WorkerState {
    WorkerState {
        info,
        funcs,
        processing: Vec::new(),
        has_what: Default::default(),
        nbytes: 0,
        missed_ticks: 0,
        long_running: 0,
    }
}

/// Used by the driver to build the description of a registering worker.
pub(crate) fn worker_info(id: WorkerId, hello: &WorkerHello) -> WorkerInfo {
    WorkerInfo {
        id: id.to_wire(),
        name: hello.name.clone(),
        data_addr: hello.data_addr.clone(),
        nthreads: hello.nthreads,
        resources: hello.resources.clone(),
        memory: 0,
        managed_bytes: 0,
        memory_limit: 0,
        managed_in_memory: 0,
        spilled_bytes: 0,
        spilled_keys: 0,
        paused: false,
    }
}

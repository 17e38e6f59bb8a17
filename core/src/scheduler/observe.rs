//! What a dashboard or a metrics endpoint shows of the scheduler: task counts
//! by state and by function, workers, a bounded stream of recently finished
//! tasks, published datasets. Built on request from the state the scheduler
//! keeps anyway, plus two cheap records kept per event: a transition counter
//! and a fixed-size ring of finished tasks.

use super::{FuncIdx, Scheduler, TaskState, WorkerId};
use crate::protocol::DatasetInfo;
use serde::Serialize;
use std::collections::VecDeque;

/// How many finished tasks the task stream remembers.
pub const STREAM_CAPACITY: usize = 10_000;

/// One finished task as the ring holds it: plain copies, no allocation.
#[derive(Clone, Copy, Debug)]
struct Finished {
    func: FuncIdx,
    worker: WorkerId,
    start_us: u64,
    stop_us: u64,
}

/// The most recently finished tasks, oldest first, at most [`STREAM_CAPACITY`].
#[derive(Debug, Default)]
pub(super) struct TaskStream {
    ring: VecDeque<Finished>,
}

impl TaskStream {
    fn push(&mut self, f: Finished) {
        if self.ring.len() == STREAM_CAPACITY {
            self.ring.pop_front();
        }
        self.ring.push_back(f);
    }
}

/// Number of tasks in each state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// Known but not needed right now.
    pub released: usize,
    /// Waiting for dependencies.
    pub waiting: usize,
    /// Ready, but no connected worker can run them.
    pub no_worker: usize,
    /// Ready root tasks waiting for a slot.
    pub queued: usize,
    /// Assigned to a worker.
    pub processing: usize,
    /// Results held by workers.
    pub memory: usize,
    /// Failed.
    pub erred: usize,
}

impl StateCounts {
    /// Each state's name (as in dask) and count.
    ///
    /// ```
    /// let c = rudask_core::scheduler::StateCounts { memory: 2, ..Default::default() };
    /// assert!(c.by_name().contains(&("memory", 2)));
    /// ```
    pub fn by_name(&self) -> [(&'static str, usize); 7] {
        [
            ("released", self.released),
            ("waiting", self.waiting),
            ("no-worker", self.no_worker),
            ("queued", self.queued),
            ("processing", self.processing),
            ("memory", self.memory),
            ("erred", self.erred),
        ]
    }

    fn count(&mut self, state: TaskState) {
        match state {
            TaskState::Released | TaskState::Forgotten => self.released += 1,
            TaskState::Waiting => self.waiting += 1,
            TaskState::NoWorker => self.no_worker += 1,
            TaskState::Queued => self.queued += 1,
            TaskState::Processing => self.processing += 1,
            TaskState::Memory => self.memory += 1,
            TaskState::Erred => self.erred += 1,
        }
    }
}

/// Progress of one task function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionProgress {
    /// The function's id.
    pub function: String,
    /// Tasks that finished since the scheduler started (also those since forgotten).
    pub done: u64,
    /// Tasks known now, by state.
    pub states: StateCounts,
}

/// A connected worker.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerView {
    /// Its name.
    pub name: String,
    /// Its data address.
    pub data_addr: String,
    /// Task slots.
    pub nthreads: u32,
    /// Tasks assigned to it and not finished.
    pub processing: usize,
    /// Of those, tasks that seceded (they hold no slot).
    pub long_running: usize,
    /// Results it holds.
    pub keys: usize,
    /// Bytes of results it holds.
    pub managed_bytes: u64,
    /// Resident memory of its process, as last reported (0: unknown).
    pub memory: u64,
    /// Its memory limit in bytes (0: none).
    pub memory_limit: u64,
    /// Bytes of results it spilled to disk.
    pub spilled_bytes: u64,
    /// It takes no new task until its memory falls.
    pub paused: bool,
}

/// A finished task of the task stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskRecord {
    /// The task's function id.
    pub function: String,
    /// The worker that ran it (empty once that worker has left).
    pub worker: String,
    /// When it started, on the scheduler's clock (see [`Scheduler::set_now`]), in microseconds.
    pub start_us: u64,
    /// When its result was reported, same clock.
    pub stop_us: u64,
}

/// A snapshot of what the scheduler is doing, for people and monitoring.
#[derive(Clone, Debug, Serialize)]
pub struct Observation {
    /// The scheduler's clock when taken, in microseconds.
    pub now_us: u64,
    /// Tasks by state.
    pub tasks: StateCounts,
    /// Task state changes since the scheduler started.
    pub transitions: u64,
    /// Connected clients.
    pub clients: usize,
    /// Connected workers.
    pub workers: Vec<WorkerView>,
    /// Task functions with known or finished tasks, by name.
    pub functions: Vec<FunctionProgress>,
    /// The last `stream_len` finished tasks, oldest first.
    pub stream: Vec<TaskRecord>,
    /// Published datasets.
    pub datasets: Vec<DatasetInfo>,
    /// Scheduler plugin hooks that failed or panicked.
    pub plugin_failures: u64,
}

impl Scheduler {
    /// Remembers a finished task for the task stream; called once per task.
    pub(super) fn stream_finished(&mut self, w: WorkerId, f: FuncIdx, duration_us: u64) {
        let stop_us = self.now_us;
        let start_us = stop_us.saturating_sub(duration_us);
        self.stream.push(Finished { func: f, worker: w, start_us, stop_us });
    }

    /// A snapshot of the cluster with at most `stream_len` entries of the
    /// task stream. It walks every task: call it on request, not per event.
    ///
    /// ```
    /// use rudask_core::scheduler::{Scheduler, SchedulerConfig};
    /// let s = Scheduler::new(SchedulerConfig::default());
    /// let o = s.observe(100);
    /// assert_eq!(o.tasks.memory, 0);
    /// assert!(o.workers.is_empty() && o.stream.is_empty());
    /// ```
    pub fn observe(&self, stream_len: usize) -> Observation {
        let mut names: Vec<&str> = vec![""; self.func_ids.len()];
        for (name, f) in &self.func_ids {
            names[f.0 as usize] = name;
        }
        let done = self.profiler.finished_per_function(names.len());
        let mut per_func = vec![StateCounts::default(); names.len()];
        let mut tasks = StateCounts::default();
        for t in self.tasks.values() {
            tasks.count(t.state);
            // Scattered data and dataset holders have no function.
            if t.spec.is_some() {
                if let Some(c) = per_func.get_mut(t.func.0 as usize) {
                    c.count(t.state);
                }
            }
        }
        let mut functions: Vec<FunctionProgress> = names
            .iter()
            .zip(per_func)
            .zip(done)
            .filter(|((_, states), done)| *done > 0 || *states != StateCounts::default())
            .map(|((name, states), done)| FunctionProgress {
                function: name.to_string(),
                done,
                states,
            })
            .collect();
        functions.sort_by(|a, b| a.function.cmp(&b.function));
        let workers = self
            .workers
            .values()
            .map(|w| WorkerView {
                name: w.info.name.clone(),
                data_addr: w.info.data_addr.clone(),
                nthreads: w.info.nthreads,
                processing: w.processing.len(),
                long_running: w.long_running,
                keys: w.has_what.len(),
                managed_bytes: w.nbytes,
                memory: w.info.memory,
                memory_limit: w.info.memory_limit,
                spilled_bytes: w.info.spilled_bytes,
                paused: w.info.paused,
            })
            .collect();
        let skip = self.stream.ring.len().saturating_sub(stream_len);
        let stream = self
            .stream
            .ring
            .iter()
            .skip(skip)
            .map(|f| TaskRecord {
                function: names.get(f.func.0 as usize).copied().unwrap_or_default().to_string(),
                worker: self.workers.get(f.worker).map(|w| w.info.name.clone()).unwrap_or_default(),
                start_us: f.start_us,
                stop_us: f.stop_us,
            })
            .collect();
        Observation {
            now_us: self.now_us,
            tasks,
            transitions: self.transitions,
            clients: self.client_count(),
            workers,
            functions,
            stream,
            datasets: self.on_list_datasets(),
            plugin_failures: self.plugin_failures(),
        }
    }
}

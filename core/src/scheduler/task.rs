//! A task as the scheduler tracks it, and the dask task states.

use super::{ClientId, FuncIdx, TaskId, WorkerId};
use crate::error::TaskFailure;
use crate::graph::{Key, TaskSpec};
use std::sync::Arc;

/// The states of a task, as in dask.distributed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Known, not in memory, not being computed (nobody needs it right now).
    Released,
    /// Needed; waiting for dependencies to be in memory.
    Waiting,
    /// Ready, but no connected worker can run its function.
    NoWorker,
    /// Ready root task waiting for a worker slot.
    Queued,
    /// Assigned to a worker.
    Processing,
    /// Result held by one or more workers.
    Memory,
    /// Failed; the failure is kept for the clients that want it.
    Erred,
    /// Removed from the scheduler (only seen in transitions).
    Forgotten,
}

impl TaskState {
    /// Active tasks still need their dependencies' data.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskState::Waiting | TaskState::NoWorker | TaskState::Queued | TaskState::Processing
        )
    }
}

/// Scheduler-side record of one task.
#[derive(Debug)]
pub struct Task {
    /// The task's key.
    pub key: Key,
    /// Current state.
    pub state: TaskState,
    /// How to compute it; `None` for scattered data, which cannot be recomputed.
    pub spec: Option<Arc<TaskSpec>>,
    pub(super) func: FuncIdx,
    /// Dependencies.
    pub deps: Vec<TaskId>,
    /// Tasks depending on this one.
    pub dependents: Vec<TaskId>,
    /// Number of dependencies not in memory.
    pub waiting_on: u32,
    /// Number of active dependents (they need this task's data).
    pub waiters: u32,
    /// Clients holding futures of this key.
    pub wants: Vec<ClientId>,
    /// Workers holding the result.
    pub who_has: Vec<WorkerId>,
    /// Worker running the task.
    pub processing_on: Option<WorkerId>,
    pub(super) proc_slot: usize,
    /// Size of the result in bytes.
    pub nbytes: u64,
    /// Global order: larger first.
    pub order: crate::graph::Order,
    /// How many workers died while running it.
    pub suspicious: u32,
    pub(super) retries_left: u32,
    /// Why it failed, when erred.
    pub failure: Option<Arc<TaskFailure>>,
    pub(super) stealing_to: Option<WorkerId>,
    /// It seceded on its worker: processing, but not occupying a slot.
    pub(super) long_running: bool,
}

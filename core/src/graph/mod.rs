//! The task graph vocabulary shared by clients, the scheduler and workers:
//! keys, task specifications and their arguments.

mod key;
mod task_graph;

pub use key::Key;
pub use task_graph::TaskGraph;

use crate::protocol::Payload;
use serde::{Deserialize, Serialize};

/// One argument of a task: an encoded value, or the key of another task whose
/// result is passed in its place (a dependency).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Arg {
    /// An encoded value (msgpack).
    Value(Payload),
    /// The result of another task.
    Dep(Key),
}

/// Scheduling options of one task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOptions {
    /// Higher runs first; ties run in submission order.
    pub priority: i32,
    /// How many times the task is re-run automatically after it errs.
    pub retries: u32,
}

/// A task as submitted by a client: the function's registered id, its
/// arguments and its options.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task's key (unique name of its result).
    pub key: Key,
    /// The registered id of the function to run.
    pub func: std::sync::Arc<str>,
    /// Arguments in call order.
    pub args: Vec<Arg>,
    /// Scheduling options.
    pub options: TaskOptions,
}

impl TaskSpec {
    /// The keys this task depends on, in argument order, without repeats.
    pub fn dependencies(&self) -> impl Iterator<Item = &Key> {
        self.args.iter().enumerate().filter_map(|(i, a)| match a {
            Arg::Dep(k) if !self.args[..i].iter().any(|b| matches!(b, Arg::Dep(j) if j == k)) => {
                Some(k)
            }
            _ => None,
        })
    }
}

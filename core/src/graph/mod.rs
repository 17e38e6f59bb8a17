//! The task graph vocabulary shared by clients, the scheduler and workers:
//! keys, task specifications and their arguments.

mod key;
mod restrictions;
mod task_graph;

pub use key::Key;
pub use restrictions::{parse_resources, validate_resources, Restrictions, RESOURCE_EPSILON};
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
///
/// The optional fields are left out of the encoded message when unset, so an
/// unrestricted task costs no more to send than before they existed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskOptions {
    /// Higher runs first; ties run by generation (see `fifo_timeout_us`),
    /// then by position in their submission, then in submission order.
    pub priority: i32,
    /// How many times the task is re-run automatically after it errs.
    pub retries: u32,
    /// Where the task may run; `None` for anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<std::sync::Arc<Restrictions>>,
    /// Submissions less than this many microseconds after the start of the
    /// current priority generation join it; later ones start a new
    /// generation, which runs after the earlier ones at equal priority.
    /// `None`: [`DEFAULT_FIFO_TIMEOUT_US`]. The first task of a submission
    /// decides for all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo_timeout_us: Option<u64>,
    /// The result stays on its worker as an actor (dask's `actors=True`):
    /// the key's value becomes a handle to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub actor: bool,
}

/// The fifo timeout of submissions that do not set one: 100 ms, as in dask.
pub const DEFAULT_FIFO_TIMEOUT_US: u64 = 100_000;

/// Where a task stands in the run order; larger runs first: user priority,
/// then the reversed rank of its generation and position in its submission,
/// then the reversed submission sequence number.
pub type Order = (i32, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>);

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

//! The task registry: every `#[rudask::task]` function registers a
//! [`TaskDef`] through `inventory`, so a worker binary knows the functions
//! linked into it and advertises them as its catalog.
//!
//! A [`TaskDef`] turns encoded arguments into a [`TaskCall`]: either a
//! synchronous closure (run on a worker's task thread) or a boxed future (run
//! on the worker's async runtime). Values are msgpack ([`encode`], [`decode`]).

mod codec;

pub use codec::{decode, encode, encode_serde, held_type, hold, shared_bytes, take_held, SizeOf};

use crate::error::{FailureKind, TaskFailure};
use crate::protocol::Payload;
use futures::future::BoxFuture;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// The outcome of running a task: its encoded result or why it failed.
pub type TaskResult = Result<Payload, TaskFailure>;

/// A prepared call of a registered task.
pub enum TaskCall {
    /// Runs on a task thread; may block.
    Sync(Box<dyn FnOnce() -> TaskResult + Send>),
    /// Runs on the worker's async runtime.
    Async(BoxFuture<'static, TaskResult>),
}

impl std::fmt::Debug for TaskCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskCall::Sync(_) => "TaskCall::Sync",
            TaskCall::Async(_) => "TaskCall::Async",
        })
    }
}

/// The encoded arguments of one call, in order.
#[derive(Debug)]
pub struct TaskArgs {
    name: &'static str,
    args: Vec<Payload>,
}

impl TaskArgs {
    /// Arguments for the task named `name`.
    pub fn new(name: &'static str, args: Vec<Payload>) -> Self {
        TaskArgs { name, args }
    }

    /// Checks the number of arguments.
    pub fn expect_len(&self, n: usize) -> Result<(), TaskFailure> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(TaskFailure::new(
                FailureKind::BadArgument,
                format!("task {} takes {n} arguments but was given {}", self.name, self.args.len()),
            ))
        }
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Decodes every argument from `i` on as `T`: the variadic tail of a
    /// task that takes any number of dependencies (a concatenation, a
    /// reduction), registered by hand as a [`TaskDef`].
    ///
    /// ```
    /// use rudask_core::registry::{encode, TaskArgs};
    /// let args = TaskArgs::new("sum", vec![encode(&1i64).unwrap(), encode(&2i64).unwrap()]);
    /// assert_eq!(args.get_rest::<i64>(0, "parts").unwrap(), [1, 2]);
    /// ```
    pub fn get_rest<T: DeserializeOwned + Clone + std::any::Any>(
        &self,
        i: usize,
        param: &str,
    ) -> Result<Vec<T>, TaskFailure> {
        (i..self.args.len()).map(|j| self.get(j, param)).collect()
    }

    /// Argument `i` as it arrived, not decoded (a kernel that passes a
    /// value through unchanged, whatever its type).
    pub fn payload(&self, i: usize) -> Option<&Payload> {
        self.args.get(i)
    }

    /// Decodes argument `i` (named `param` in the function) as `T`.
    pub fn get<T: DeserializeOwned + Clone + std::any::Any>(
        &self,
        i: usize,
        param: &str,
    ) -> Result<T, TaskFailure> {
        let p = self.args.get(i).ok_or_else(|| {
            TaskFailure::new(
                FailureKind::BadArgument,
                format!("task {}: argument {param} is missing", self.name),
            )
        })?;
        decode(p).map_err(|e| {
            TaskFailure::new(
                FailureKind::BadArgument,
                format!(
                    "task {}: argument {param} could not be decoded as {}: {e}",
                    self.name,
                    std::any::type_name::<T>()
                ),
            )
        })
    }
}

/// A registered task function.
#[derive(Debug)]
pub struct TaskDef {
    /// Stable id: the defining module path and the function name.
    pub id: &'static str,
    /// Prepares a call from encoded arguments.
    pub prepare: fn(TaskArgs) -> TaskCall,
}

inventory::collect!(TaskDef);

/// Wraps a task's return value. It stays in memory as itself; a worker that
/// sends it over a socket encodes it then (see [`Payload::into_encoded`]).
pub fn task_result<T: Serialize + std::any::Any + Send + Sync>(v: T) -> TaskResult {
    Ok(hold(v))
}

/// Turns a task's `Err` into a failure: `Display` is the message, `Debug`
/// (which for `anyhow` includes the cause chain and backtrace) the traceback.
pub fn error_failure<E: std::fmt::Display + std::fmt::Debug>(e: &E) -> TaskFailure {
    TaskFailure::new(FailureKind::Error, e.to_string()).with_traceback(format!("{e:?}"))
}

/// The functions linked into this binary, by id.
#[derive(Debug)]
pub struct Catalog {
    by_id: FxHashMap<&'static str, &'static TaskDef>,
}

impl Catalog {
    /// The process-wide catalog, built once from `inventory`.
    pub fn global() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog {
            by_id: inventory::iter::<TaskDef>.into_iter().map(|d| (d.id, d)).collect(),
        })
    }

    /// Looks up a function.
    pub fn get(&self, id: &str) -> Option<&'static TaskDef> {
        self.by_id.get(id).copied()
    }

    /// All function ids, sorted.
    pub fn ids(&self) -> Vec<Arc<str>> {
        let mut ids: Vec<Arc<str>> = self.by_id.keys().map(|k| Arc::from(*k)).collect();
        ids.sort();
        ids
    }
}

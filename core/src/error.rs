//! Errors that travel: a task's failure as reported by a worker and forwarded by
//! the scheduler to every client that wants the task or one of its dependents.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a task did not produce a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The task function returned `Err`.
    Error,
    /// The task function panicked.
    Panic,
    /// The workers running the task died too often.
    KilledWorker {
        /// Name of the last worker that died while running the task.
        worker: String,
        /// Exit status of that worker's process, when known.
        exit_code: Option<i32>,
    },
    /// No connected worker has the task's function in its catalog.
    NoWorker,
    /// An argument could not be decoded into the type the function expects.
    BadArgument,
    /// The task's result could not be encoded.
    BadResult,
    /// Data that cannot be recomputed (scattered data) was lost with its worker.
    DataLost,
    /// A dependency of the task is unknown to the scheduler.
    MissingDependency,
}

/// A task failure: what went wrong, where, and the worker-side traceback.
///
/// ```
/// use rudask_core::{TaskFailure, FailureKind};
/// let f = TaskFailure::new(FailureKind::Error, "boom");
/// assert_eq!(f.message, "boom");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// Human-readable message (the error's `Display`, or the panic message).
    pub message: String,
    /// Worker-side traceback: a backtrace for panics, the error's debug chain for `Err`.
    pub traceback: String,
    /// The key of the task that failed first; dependents carry their cause's key.
    pub origin: Option<String>,
}

impl TaskFailure {
    /// A failure with no traceback and no origin yet.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        TaskFailure { kind, message: message.into(), traceback: String::new(), origin: None }
    }

    /// Sets the traceback.
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> Self {
        self.traceback = traceback.into();
        self
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FailureKind::Panic => write!(f, "task panicked: {}", self.message)?,
            FailureKind::KilledWorker { worker, exit_code } => {
                write!(f, "{} (last worker {worker}", self.message)?;
                match exit_code {
                    Some(code) => write!(f, ", exit status {code})")?,
                    None => write!(f, ", exit status unknown)")?,
                }
            }
            _ => write!(f, "{}", self.message)?,
        }
        if let Some(origin) = &self.origin {
            write!(f, " [in task {origin}]")?;
        }
        Ok(())
    }
}

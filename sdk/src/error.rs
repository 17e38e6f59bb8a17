//! [`Error`]: everything that can go wrong, from a task's panic to a refused
//! connection, with a message that says what happened and what to do.

use rudask_core::protocol::{ProtocolError, RequestError, RequestErrorKind};
use rudask_core::{FailureKind, TaskFailure};
use std::time::Duration;

/// The result type of rudask operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A rudask error.
///
/// ```
/// let e = rudask::Error::Timeout(std::time::Duration::from_secs(1));
/// assert!(e.to_string().contains("timed out"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task (or a task it depends on) returned an error or panicked.
    #[error("task {key} failed: {failure}")]
    Task {
        /// The key of the future that was awaited.
        key: String,
        /// What the worker reported.
        failure: Box<TaskFailure>,
    },
    /// The workers running the task kept dying.
    #[error("task {key} failed: {message} (last worker {worker}, exit status {})", exit_code.map_or("unknown".to_string(), |c| c.to_string()))]
    KilledWorker {
        /// The task's key.
        key: String,
        /// The last worker that died running it.
        worker: String,
        /// That worker's exit status, when known.
        exit_code: Option<i32>,
        /// Details.
        message: String,
    },
    /// The key was cancelled.
    #[error("{key} was cancelled")]
    Cancelled {
        /// The key.
        key: String,
    },
    /// An operation did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A connection could not be made.
    #[error("could not connect to {addr}: {message}")]
    Connect {
        /// The address.
        addr: String,
        /// Why, and what to check.
        message: String,
    },
    /// The peer refused the handshake.
    #[error("{addr} refused the connection: {reason}")]
    Refused {
        /// The address.
        addr: String,
        /// The peer's reason.
        reason: String,
    },
    /// The connection to the scheduler is gone, or the client was closed.
    #[error("not connected: {0}")]
    Disconnected(String),
    /// Bytes on the wire were malformed or too large.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(String),
    /// A value could not be encoded or decoded as the requested type.
    #[error("{0}")]
    Serialization(String),
    /// The data of a key could not be fetched from any worker holding it.
    #[error("data of {key} is unavailable: {message}")]
    DataUnavailable {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// An argument given to a rudask API is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The scheduler could not carry out a valid request.
    #[error("the scheduler could not do it: {0}")]
    Scheduler(String),
    /// The cluster was restarted (`Client::restart`): the key's task and data
    /// are gone.
    #[error("{key} was lost: the cluster was restarted; submit it again")]
    Restarted {
        /// The key.
        key: String,
    },
    /// The operation is not available for this input; the message says what
    /// is, instead.
    #[error("{0}")]
    Unsupported(String),
    /// A function was called where it cannot work: a worker-only function
    /// outside a task, or a blocking call inside async code.
    #[error("{0}")]
    Context(String),
    /// A queue, variable or topic holds values of another type than the one
    /// asked for.
    #[error("{what} holds a value of type {found}, not {expected}; read it with the type its writers use")]
    Type {
        /// The primitive, e.g. `queue jobs`.
        what: String,
        /// The type asked for.
        expected: String,
        /// The type stored.
        found: String,
    },
    /// A subscriber fell behind: its buffer was full and the oldest
    /// `missed` messages of `topic` were dropped.
    #[error("subscriber of topic {topic} fell behind and missed {missed} messages; read faster or give it a larger buffer")]
    Lagged {
        /// The topic.
        topic: String,
        /// Messages dropped.
        missed: u64,
    },
    /// Publishing under a name that is taken, without override; the message
    /// names it.
    #[error("{0}")]
    DatasetExists(String),
    /// No dataset has this name.
    #[error("no dataset named {name:?} is published; the published datasets are: [{}]; publish it first or check the name", .available.join(", "))]
    DatasetNotFound {
        /// The name asked for.
        name: String,
        /// The names that are published.
        available: Vec<String>,
    },
    /// An actor's worker died or no longer hosts it: its state is gone, and
    /// every pending and later call of its handles fails with this.
    #[error("actor {actor} was lost with its worker {worker}; its state is gone, create a new actor with Client::submit_actor")]
    ActorLost {
        /// The actor's key.
        actor: String,
        /// The name of the worker that hosted it.
        worker: String,
    },
}

impl Error {
    /// The worker-side traceback of a failed task, if this is a task failure.
    pub fn traceback(&self) -> Option<&str> {
        match self {
            Error::Task { failure, .. } => Some(&failure.traceback),
            _ => None,
        }
    }

    pub(crate) fn from_failure(key: &str, failure: &TaskFailure) -> Error {
        match &failure.kind {
            FailureKind::KilledWorker { worker, exit_code } => Error::KilledWorker {
                key: key.to_string(),
                worker: worker.clone(),
                exit_code: *exit_code,
                message: failure.message.clone(),
            },
            _ => Error::Task { key: key.to_string(), failure: Box::new(failure.clone()) },
        }
    }
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        match e.kind {
            RequestErrorKind::InvalidArgument => Error::InvalidArgument(e.message),
            RequestErrorKind::Failed => Error::Scheduler(e.message),
            RequestErrorKind::Exists => Error::DatasetExists(e.message),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

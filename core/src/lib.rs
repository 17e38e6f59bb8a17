//! # rudask-core
//!
//! The part of rudask that has no sockets, no threads and no runtime: the wire
//! protocol, the task graph vocabulary, the task registry and the two state
//! machines — [`scheduler::Scheduler`] and [`worker::Worker`].
//!
//! Both state machines follow the sans-IO style of `quinn-proto`: events go in
//! through `on_*` methods, effects come out through an outbox (a [`scheduler::Comm`]
//! for the scheduler, a [`worker::Outbox`] for the worker). The `rudask` crate
//! drives them over TCP or in-process channels; the tests in this crate drive
//! them directly, with no sockets and no sleeps.
//!
//! ```
//! use rudask_core::graph::Key;
//! let key = Key::from("inc-1");
//! assert_eq!(key.as_str(), "inc-1");
//! ```
#![deny(missing_docs)]

pub mod collection;
pub mod error;
pub mod graph;
pub mod mem;
pub mod plugin;
pub mod protocol;
pub mod registry;
pub mod scheduler;
pub mod worker;

pub use error::{FailureKind, TaskFailure};
pub use graph::{Arg, Key, TaskSpec};
pub use protocol::Payload;

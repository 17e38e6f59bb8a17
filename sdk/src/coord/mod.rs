//! Coordination primitives shared through the scheduler: [`Queue`],
//! [`Variable`], [`Lock`], [`Event`], [`Semaphore`] and [`Pub`]/[`Sub`].
//!
//! Each is found by name: every client (and every task, through
//! [`crate::get_client`]) that makes one with the same name uses the same
//! state, which lives on the scheduler. Making a handle costs nothing; the
//! scheduler creates a primitive when it is first used and frees it once it
//! is empty again (an empty queue, an unset variable, a free lock, a cleared
//! event and an unused semaphore are the same as new ones).
//!
//! Operations that may wait take a `timeout`: `None` waits as long as it
//! takes, `Some(Duration::ZERO)` tries once without waiting. A timeout that
//! crosses a grant on the way never loses it: the lock, lease or item is
//! then returned as if it had come just in time.
//!
//! Queues and variables are typed: values carry their Rust type name, and
//! reading one with another type is [`Error::Type`]. They may hold
//! [`Future`]s (`Queue<Future<T>>`), whose results stay alive while they are
//! stored, even after every client dropped its own handles.
//!
//! Locks and semaphore leases belong to the acquiring handle; they are freed
//! when it is dropped or its client disconnects, so a worker process that
//! dies (even by `SIGKILL`) gives back what its tasks held.
//!
//! ```no_run
//! use rudask::coord::{Lock, Queue};
//! # async fn demo(client: rudask::Client) -> rudask::Result<()> {
//! let jobs: Queue<String> = Queue::new(&client, "jobs", 100);
//! jobs.put("a".to_string(), None).await?;
//! let lock = Lock::new(&client, "db");
//! if lock.acquire(None).await? {
//!     println!("{}", jobs.get(None).await?);
//!     lock.release().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! From synchronous code, [`blocking`] has the same primitives over a
//! [`crate::blocking::Client`].

pub mod blocking;
mod event;
mod lock;
mod pubsub;
mod queue;
mod semaphore;
mod variable;

pub use event::Event;
pub use lock::Lock;
pub use pubsub::{Pub, Sub, DEFAULT_SUB_BUFFER};
pub use queue::Queue;
pub use semaphore::Semaphore;
pub use variable::Variable;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::future::Future;
use crate::task::{decode_value, encode_value, Value};
use rudask_core::protocol::{CoordReply, CoordValue};
use std::time::Duration;

/// A value that queues, variables and topics can hold: any [`Value`], or a
/// [`Future`] (whose result then stays alive while it is stored).
///
/// ```
/// fn storable<T: rudask::coord::Storable>() {}
/// storable::<Vec<String>>();
/// storable::<rudask::Future<i64>>();
/// ```
pub trait Storable: Send + Sized + 'static {
    #[doc(hidden)]
    fn to_wire(&self) -> Result<CoordValue>;
    #[doc(hidden)]
    fn from_wire(client: &Client, value: CoordValue, what: &str) -> Result<Self>;
}

fn check_type<T>(value: &CoordValue, what: &str) -> Result<()> {
    let expected = std::any::type_name::<T>();
    if value.type_name != expected {
        return Err(Error::Type {
            what: what.to_string(),
            expected: expected.to_string(),
            found: value.type_name.clone(),
        });
    }
    Ok(())
}

impl<T: Value> Storable for T {
    fn to_wire(&self) -> Result<CoordValue> {
        Ok(CoordValue {
            type_name: std::any::type_name::<T>().to_string(),
            data: encode_value(self)?,
            keys: Vec::new(),
        })
    }

    fn from_wire(_: &Client, value: CoordValue, what: &str) -> Result<Self> {
        check_type::<T>(&value, what)?;
        decode_value(what, &value.data)
    }
}

impl<T: Value> Storable for Future<T> {
    fn to_wire(&self) -> Result<CoordValue> {
        Ok(CoordValue {
            type_name: std::any::type_name::<Future<T>>().to_string(),
            data: Default::default(),
            keys: vec![self.key_ref().state.key.clone()],
        })
    }

    fn from_wire(client: &Client, value: CoordValue, what: &str) -> Result<Self> {
        check_type::<Future<T>>(&value, what)?;
        let r =
            client.inner().adopt(&value.keys)?.pop().ok_or_else(|| {
                Error::Serialization(format!("{what} sent a future without its key"))
            })?;
        Ok(Future::new(r))
    }
}

/// `wait` flag and timeout of a request: a zero timeout asks the scheduler
/// not to wait at all.
fn waiting(timeout: Option<Duration>) -> (bool, Option<Duration>) {
    match timeout {
        Some(t) if t.is_zero() => (false, None),
        t => (true, t),
    }
}

fn timed_out(timeout: Option<Duration>) -> Error {
    Error::Timeout(timeout.unwrap_or_default())
}

fn unexpected(reply: CoordReply) -> Error {
    crate::client::unexpected(&rudask_core::protocol::Reply::Coord(reply))
}

//! Messages of the coordination primitives (queues, variables, locks,
//! events, semaphores, pub/sub topics), carried inside
//! [`Request::Coord`](super::Request::Coord) and [`Reply::Coord`](super::Reply::Coord).

use super::Payload;
use crate::graph::Key;
use serde::{Deserialize, Serialize};

/// A value stored in a queue or variable or published on a topic.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoordValue {
    /// Rust type name of the value, so a reader expecting another type gets
    /// a clear error instead of a garbled value.
    pub type_name: String,
    /// Encoded value.
    pub data: Payload,
    /// Keys of futures inside the value; the scheduler keeps them alive
    /// while the value is stored.
    pub keys: Vec<Key>,
}

/// A question about a coordination primitive. `wait: false` asks to be
/// answered at once ([`CoordReply::TimedOut`] when it would have to wait);
/// `wait: true` is answered once possible or after a [`CoordRequest::Cancel`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CoordRequest {
    /// Append to a queue (created with `maxsize`, 0 = unbounded, if new).
    QueuePut {
        /// Queue name.
        name: String,
        /// Capacity used when the queue is created.
        maxsize: u32,
        /// The item.
        value: CoordValue,
        /// Wait for room.
        wait: bool,
    },
    /// Take the oldest item ([`CoordReply::Values`] with one value).
    QueueGet {
        /// Queue name.
        name: String,
        /// Wait for an item.
        wait: bool,
    },
    /// Take up to `max` items at once, without waiting.
    QueueGetBatch {
        /// Queue name.
        name: String,
        /// Most items to take.
        max: u32,
    },
    /// Number of items ([`CoordReply::Count`]).
    QueueSize {
        /// Queue name.
        name: String,
    },
    /// Set a variable.
    VariableSet {
        /// Variable name.
        name: String,
        /// The value.
        value: CoordValue,
    },
    /// Read a variable ([`CoordReply::Values`] with one value).
    VariableGet {
        /// Variable name.
        name: String,
        /// Wait until it is set.
        wait: bool,
    },
    /// Delete a variable.
    VariableDelete {
        /// Variable name.
        name: String,
    },
    /// Acquire a lock ([`CoordReply::Granted`]); the request id is the token.
    LockAcquire {
        /// Lock name.
        name: String,
        /// Wait for it.
        wait: bool,
    },
    /// Release a lock acquired by request `token` of this client.
    LockRelease {
        /// Lock name.
        name: String,
        /// Id of the acquiring request.
        token: u64,
    },
    /// Who holds a lock ([`CoordReply::Holders`], empty or one name).
    LockHolder {
        /// Lock name.
        name: String,
    },
    /// Set an event, waking every waiter.
    EventSet {
        /// Event name.
        name: String,
    },
    /// Clear an event.
    EventClear {
        /// Event name.
        name: String,
    },
    /// Wait until an event is set ([`CoordReply::Granted`]).
    EventWait {
        /// Event name.
        name: String,
        /// Wait for it.
        wait: bool,
    },
    /// Whether an event is set ([`CoordReply::Flag`]).
    EventIsSet {
        /// Event name.
        name: String,
    },
    /// Acquire a lease ([`CoordReply::Granted`]); the request id is the lease.
    SemaphoreAcquire {
        /// Semaphore name.
        name: String,
        /// Number of leases, used when the semaphore is created.
        max_leases: u32,
        /// Wait for a lease.
        wait: bool,
        /// Expire the lease unless refreshed ([`CoordRequest::SemaphoreRefresh`])
        /// within this many microseconds; `None`: held until released.
        lease_timeout_us: Option<u64>,
    },
    /// Give back the lease acquired by request `lease` of this client.
    SemaphoreRelease {
        /// Semaphore name.
        name: String,
        /// Id of the acquiring request.
        lease: u64,
    },
    /// Number of leases held ([`CoordReply::Count`]).
    SemaphoreValue {
        /// Semaphore name.
        name: String,
    },
    /// Names of the clients holding leases, one per lease ([`CoordReply::Holders`]).
    SemaphoreHolders {
        /// Semaphore name.
        name: String,
    },
    /// Send subscriber `sub` of this client every message published on
    /// `topic` from now on, as [`ToClient::Published`](super::ToClient::Published).
    Subscribe {
        /// Topic.
        topic: String,
        /// Subscriber id, chosen by the client.
        sub: u64,
    },
    /// Stop sending subscriber `sub` the messages of `topic`.
    Unsubscribe {
        /// Topic.
        topic: String,
        /// Subscriber id.
        sub: u64,
    },
    /// Publish a message to the subscribers of `topic`. Gets no reply.
    Publish {
        /// Topic.
        topic: String,
        /// The message.
        value: CoordValue,
    },
    /// This client took over (sent [`ClientMsg::Want`](super::ClientMsg::Want)
    /// for) or gave up these keys of values it received; the scheduler stops
    /// holding them on its behalf. Gets no reply.
    Adopted {
        /// Keys.
        keys: Vec<Key>,
    },
    /// Stop waiting for request `request` of this client: it is answered
    /// with [`CoordReply::TimedOut`] if it still waits, and keeps its
    /// answer if it was already granted. Gets no reply of its own.
    Cancel {
        /// Id of the waiting request.
        request: u64,
    },
    /// Keep the leases acquired by these requests of this client (with a
    /// lease timeout) from expiring for another timeout. Gets no reply.
    SemaphoreRefresh {
        /// Semaphore name.
        name: String,
        /// Ids of the acquiring requests.
        leases: Vec<u64>,
    },
}

/// The answer to a [`CoordRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CoordReply {
    /// Done.
    Done,
    /// The request would have had to wait, or was cancelled while waiting.
    TimedOut,
    /// The lock, lease or event wait was granted.
    Granted,
    /// Items taken from a queue or the value of a variable.
    Values(Vec<CoordValue>),
    /// A count.
    Count(u64),
    /// A yes/no answer.
    Flag(bool),
    /// Names of holding clients.
    Holders(Vec<String>),
}

/// One coordination primitive, as listed in a scheduler snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimitiveInfo {
    /// `queue`, `variable`, `lock`, `event`, `semaphore` or `topic`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Items queued, 1 for a set variable/held lock/set event, leases held, or subscribers.
    pub size: u64,
    /// Requests waiting on it.
    pub waiters: u64,
}

//! Plumbing of the coordination primitives ([`crate::coord`]): requests that
//! may wait, with timeouts that never lose a grant; futures inside received
//! values; pub/sub messages pushed by the scheduler.

use super::{lock, unexpected, ClientInner};
use crate::error::{Error, Result};
use crate::future::KeyRef;
use rudask_core::graph::Key;
use rudask_core::protocol::{ClientMsg, CoordReply, CoordRequest, CoordValue, Reply, Request};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

/// What a granted request owns, to give back if its caller went away.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Grant<'a> {
    /// Nothing (an event wait) or nothing that can be given back (an item).
    Nothing,
    /// The lock of this name.
    Lock(&'a str),
    /// A lease of the semaphore of this name.
    Lease(&'a str),
}

/// Tells the scheduler to stop waiting for a request whose caller dropped
/// it, and gives back a lock or lease granted before the cancel arrived.
struct CancelGuard<'a> {
    client: &'a Arc<ClientInner>,
    id: u64,
    grant: Grant<'a>,
    rx: Option<tokio::sync::oneshot::Receiver<super::RequestResult>>,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        let Some(rx) = self.rx.take() else { return };
        let id = self.id;
        self.client.notify(Request::Coord(CoordRequest::Cancel { request: id }));
        let undo = match self.grant {
            Grant::Nothing => return,
            Grant::Lock(name) => CoordRequest::LockRelease { name: name.to_string(), token: id },
            Grant::Lease(name) => {
                CoordRequest::SemaphoreRelease { name: name.to_string(), lease: id }
            }
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let client = self.client.clone();
        handle.spawn(async move {
            if let Ok(Ok(Reply::Coord(CoordReply::Granted))) = rx.await {
                client.notify(Request::Coord(undo));
            }
        });
    }
}

impl ClientInner {
    /// Sends a coordination request and waits for its answer.
    pub(crate) async fn coord(&self, req: CoordRequest) -> Result<CoordReply> {
        match self.request(Request::Coord(req)).await? {
            Reply::Coord(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends a coordination request without waiting for (or getting) an answer.
    pub(crate) fn coord_notify(&self, req: CoordRequest) -> Result<()> {
        self.check_connected()?;
        self.notify(Request::Coord(req));
        Ok(())
    }

    /// Sends a request that may wait on the scheduler; returns its id (the
    /// token of a granted lock or lease) and answer. After `timeout` it asks
    /// the scheduler to stop waiting, then still takes the answer: either
    /// [`CoordReply::TimedOut`] or a grant that crossed the cancel, which
    /// the caller then owns.
    pub(crate) async fn coord_wait(
        self: &Arc<Self>,
        req: CoordRequest,
        timeout: Option<Duration>,
        grant: Grant<'_>,
    ) -> Result<(u64, CoordReply)> {
        let id = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.shared.requests).insert(id, tx);
        if let Err(e) = self.check_connected() {
            lock(&self.shared.requests).remove(&id);
            return Err(e);
        }
        if !self.uplink.send(ClientMsg::Request { id, req: Request::Coord(req) }) {
            lock(&self.shared.requests).remove(&id);
            return Err(self.closed());
        }
        let mut guard = CancelGuard { client: self, id, grant, rx: Some(rx) };
        let rx = guard.rx.as_mut().expect("just set");
        let answer = match timeout {
            None => rx.await,
            Some(t) => match tokio::time::timeout(t, &mut *rx).await {
                Ok(answer) => answer,
                Err(_) => {
                    // Cancelled, the request still gets its one answer:
                    // timed out, or a grant that crossed the cancel.
                    self.notify(Request::Coord(CoordRequest::Cancel { request: id }));
                    rx.await
                }
            },
        };
        guard.rx = None;
        let answer = answer.map_err(|_| {
            Error::Disconnected(format!(
                "the connection to the scheduler at {} was lost before it answered",
                self.scheduler
            ))
        })?;
        match answer.map_err(Error::from)? {
            Reply::Coord(r) => Ok((id, r)),
            other => Err(unexpected(&other)),
        }
    }

    fn closed(&self) -> Error {
        Error::Disconnected(format!(
            "the connection to the scheduler at {} is closed",
            self.scheduler
        ))
    }

    /// Takes over the keys of futures inside a received value: this client
    /// wants them from now on, and the scheduler stops holding them for it.
    pub(crate) fn adopt(self: &Arc<Self>, keys: &[Key]) -> Result<Vec<Arc<KeyRef>>> {
        let refs = self.register(keys, ClientMsg::Want { keys: keys.to_vec() })?;
        self.notify(Request::Coord(CoordRequest::Adopted { keys: keys.to_vec() }));
        Ok(refs)
    }

    /// Adds a subscriber buffer; returns its id.
    pub(crate) fn add_subscriber(&self, buffer: Arc<SubBuffer>) -> u64 {
        let id = self.shared.topics.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.topics.subs).insert(id, buffer);
        id
    }

    /// Tells the scheduler to stop holding keys of received futures that
    /// this client will not take.
    pub(crate) fn disown(&self, keys: Vec<Key>) {
        if !keys.is_empty() {
            self.notify(Request::Coord(CoordRequest::Adopted { keys }));
        }
    }

    /// Removes a subscriber buffer and its subscription.
    pub(crate) fn remove_subscriber(&self, topic: &str, sub: u64) {
        lock(&self.shared.topics.subs).remove(&sub);
        self.notify(Request::Coord(CoordRequest::Unsubscribe { topic: topic.to_string(), sub }));
    }
}

/// Messages of one subscriber not read yet, bounded: when full, the oldest
/// is dropped and counted.
#[derive(Debug)]
pub(crate) struct SubBuffer {
    state: Mutex<SubState>,
    capacity: usize,
}

/// What a subscriber reads next.
#[derive(Debug)]
pub(crate) enum Received {
    /// A message.
    Value(CoordValue),
    /// This many messages were dropped.
    Lagged(u64),
    /// The client disconnected.
    Closed,
}

#[derive(Debug, Default)]
struct SubState {
    items: VecDeque<CoordValue>,
    lagged: u64,
    // Keys of futures in dropped messages, for the scheduler to stop holding.
    dropped_keys: Vec<Key>,
    closed: bool,
    waker: Option<Waker>,
}

impl SubBuffer {
    pub(crate) fn new(capacity: usize) -> Arc<SubBuffer> {
        Arc::new(SubBuffer { state: Mutex::default(), capacity: capacity.max(1) })
    }

    fn push(&self, value: CoordValue) {
        let mut s = lock(&self.state);
        if s.items.len() == self.capacity {
            if let Some(old) = s.items.pop_front() {
                s.dropped_keys.extend(old.keys);
            }
            s.lagged += 1;
        }
        s.items.push_back(value);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    fn close(&self) {
        let mut s = lock(&self.state);
        s.closed = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// Keys of futures in messages that were dropped or never read.
    pub(crate) fn take_unread_keys(&self, all: bool) -> Vec<Key> {
        let mut s = lock(&self.state);
        let mut keys = std::mem::take(&mut s.dropped_keys);
        if all {
            keys.extend(s.items.drain(..).flat_map(|v| v.keys));
        }
        keys
    }

    /// The next thing to read, or `None` (registering `waker`) if there is none yet.
    pub(crate) fn poll(&self, waker: &Waker) -> Option<Received> {
        let mut s = lock(&self.state);
        if s.lagged > 0 {
            return Some(Received::Lagged(std::mem::take(&mut s.lagged)));
        }
        if let Some(v) = s.items.pop_front() {
            return Some(Received::Value(v));
        }
        if s.closed {
            return Some(Received::Closed);
        }
        s.waker = Some(waker.clone());
        None
    }
}

/// This client's subscribers, by id.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    subs: Mutex<FxHashMap<u64, Arc<SubBuffer>>>,
    next: AtomicU64,
}

impl Topics {
    /// Hands a published message to its subscriber.
    pub(super) fn dispatch(&self, sub: u64, value: CoordValue) {
        if let Some(b) = lock(&self.subs).get(&sub) {
            b.push(value);
        }
    }

    /// The connection is gone: every subscriber ends.
    pub(super) fn close_all(&self) {
        for b in lock(&self.subs).values() {
            b.close();
        }
    }
}

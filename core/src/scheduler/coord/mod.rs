//! Coordination primitives: named queues, variables, locks, events,
//! semaphores and pub/sub topics, shared by every client through the
//! scheduler. One module per primitive; this one holds what they share:
//! dispatch, waiting requests, keys held for stored futures, cleanup when a
//! client leaves, and the listing for scheduler snapshots.
//!
//! A request that has to wait is remembered as a [`Waiter`] (client and
//! request id) and answered when it can be granted. A client that stops
//! waiting sends [`CoordRequest::Cancel`]: the waiter is then answered with
//! [`CoordReply::TimedOut`], unless it was granted before the cancel arrived,
//! in which case the client receives (and owns) the grant. So a lease, lock
//! or item is never lost or handed out twice when a timeout races a grant.
//!
//! A primitive's memory is dropped as soon as it holds nothing: an empty
//! queue, an unset variable, a free lock, a cleared event or an unused
//! semaphore without waiters is indistinguishable from a new one.

mod event;
mod lock;
mod pubsub;
mod queue;
mod semaphore;
mod variable;

use super::requests::reply;
use super::{ClientId, ClientState, Comm, Scheduler, TaskId};
use crate::graph::Key;
use crate::protocol::{
    CoordReply, CoordRequest, CoordValue, PrimitiveInfo, Reply, RequestError, RequestErrorKind,
};
use rustc_hash::{FxHashMap, FxHashSet};

/// A request waiting for a grant: the client and its request id.
pub(super) type Waiter = (ClientId, u64);

type Answer = Option<Result<CoordReply, RequestError>>;

/// What a waiting request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    QueueGet,
    QueuePut,
    Variable,
    Lock,
    Event,
    Semaphore,
}

/// State of every primitive.
#[derive(Debug, Default)]
pub(in crate::scheduler) struct Coord {
    queues: FxHashMap<String, queue::Queue>,
    variables: FxHashMap<String, variable::Variable>,
    locks: FxHashMap<String, lock::Lock>,
    events: FxHashMap<String, event::Event>,
    semaphores: FxHashMap<String, semaphore::Semaphore>,
    topics: FxHashMap<String, Vec<(ClientId, u64)>>,
    waiting: FxHashMap<Waiter, (Kind, String)>,
    // Leases freed because they were not refreshed in time, until their
    // owner releases them (an error saying so) or leaves.
    expired_leases: FxHashSet<Waiter>,
    // How many stored values hold each key; the keys are wanted by `holder`.
    holds: FxHashMap<TaskId, u32>,
    // A client entry of the scheduler (with no connection) whose wants keep
    // stored futures alive, present while some key is held.
    holder: Option<ClientId>,
    // Keys of values sent to a client, held until it wants them itself
    // (it says so with `Adopted`), since its `Want` arrives after the answer.
    in_transit: Vec<(ClientId, Key)>,
}

impl Coord {
    /// The internal client that holds stored futures, if any.
    pub(in crate::scheduler) fn holder(&self) -> Option<ClientId> {
        self.holder
    }
}

fn invalid(message: String) -> RequestError {
    RequestError::new(RequestErrorKind::InvalidArgument, message)
}

impl Scheduler {
    /// Carries out coordination request `id` of client `c`.
    pub(in crate::scheduler) fn on_coord(
        &mut self,
        c: ClientId,
        id: u64,
        req: CoordRequest,
        comm: &mut impl Comm,
    ) {
        let w = (c, id);
        let answer = match req {
            CoordRequest::QueuePut { name, maxsize, value, wait } => {
                self.queue_put(w, name, maxsize, value, wait, comm)
            }
            CoordRequest::QueueGet { name, wait } => self.queue_get(w, name, wait, comm),
            CoordRequest::QueueGetBatch { name, max } => self.queue_get_batch(c, &name, max, comm),
            CoordRequest::QueueSize { name } => self.queue_size(&name),
            CoordRequest::VariableSet { name, value } => self.variable_set(name, value, comm),
            CoordRequest::VariableGet { name, wait } => self.variable_get(w, name, wait, comm),
            CoordRequest::VariableDelete { name } => self.variable_delete(&name),
            CoordRequest::LockAcquire { name, wait } => self.lock_acquire(w, name, wait),
            CoordRequest::LockRelease { name, token } => self.lock_release((c, token), &name, comm),
            CoordRequest::LockHolder { name } => self.lock_holder(&name),
            CoordRequest::EventSet { name } => self.event_set(name, comm),
            CoordRequest::EventClear { name } => self.event_clear(&name),
            CoordRequest::EventWait { name, wait } => self.event_wait(w, name, wait),
            CoordRequest::EventIsSet { name } => self.event_is_set(&name),
            CoordRequest::SemaphoreAcquire { name, max_leases, wait, lease_timeout_us } => {
                self.semaphore_acquire(w, name, max_leases, wait, lease_timeout_us)
            }
            CoordRequest::SemaphoreRelease { name, lease } => {
                self.semaphore_release((c, lease), &name, comm)
            }
            CoordRequest::SemaphoreValue { name } => self.semaphore_value(&name),
            CoordRequest::SemaphoreHolders { name } => self.semaphore_holders(&name),
            CoordRequest::Subscribe { topic, sub } => self.topic_subscribe((c, sub), topic),
            CoordRequest::Unsubscribe { topic, sub } => self.topic_unsubscribe((c, sub), &topic),
            CoordRequest::Publish { topic, value } => {
                self.topic_publish(&topic, value, comm);
                None
            }
            CoordRequest::Adopted { keys } => {
                for k in keys {
                    if let Some(i) = self.coord.in_transit.iter().position(|t| t.0 == c && t.1 == k)
                    {
                        self.coord.in_transit.swap_remove(i);
                        self.coord_unhold(std::slice::from_ref(&k));
                    }
                }
                None
            }
            CoordRequest::SemaphoreRefresh { name, leases } => {
                self.semaphore_refresh(c, &name, &leases);
                None
            }
            CoordRequest::Cancel { request } => {
                if self.coord_drop_waiter((c, request)) {
                    reply(comm, c, request, Ok(Reply::Coord(CoordReply::TimedOut)));
                }
                None
            }
        };
        if let Some(answer) = answer {
            reply(comm, c, id, answer.map(Reply::Coord));
        }
    }

    /// Answers a waiting request.
    fn coord_grant(&mut self, w: Waiter, answer: CoordReply, comm: &mut impl Comm) {
        self.coord.waiting.remove(&w);
        reply(comm, w.0, w.1, Ok(Reply::Coord(answer)));
    }

    /// Remembers a request that waits.
    fn coord_wait(&mut self, w: Waiter, kind: Kind, name: String) {
        self.coord.waiting.insert(w, (kind, name));
    }

    /// Forgets a waiting request; false if it was not waiting (any more).
    fn coord_drop_waiter(&mut self, w: Waiter) -> bool {
        let Some((kind, name)) = self.coord.waiting.remove(&w) else { return false };
        match kind {
            Kind::QueueGet | Kind::QueuePut => {
                if let Some(value) = self.queue_drop_waiter(w, &name) {
                    self.coord_unhold(&value.keys);
                }
            }
            Kind::Variable => self.variable_drop_waiter(w, &name),
            Kind::Lock => self.lock_drop_waiter(w, &name),
            Kind::Event => self.event_drop_waiter(w, &name),
            Kind::Semaphore => self.semaphore_drop_waiter(w, &name),
        }
        true
    }

    /// Keeps the keys of a value to be stored alive; errs (holding nothing)
    /// if one is unknown.
    fn coord_hold(&mut self, keys: &[Key], comm: &mut impl Comm) -> Result<(), RequestError> {
        let mut ids = Vec::with_capacity(keys.len());
        for k in keys {
            match self.keys.get(k) {
                Some(&id) => ids.push(id),
                None => {
                    return Err(invalid(format!(
                        "future {k} is not known to the scheduler (released or never submitted); store a future you still hold"
                    )))
                }
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let holder = match self.coord.holder {
            Some(h) => h,
            None => {
                let h = self.clients.insert(ClientState {
                    name: "coordination primitives".to_string(),
                    wants: Default::default(),
                });
                self.coord.holder = Some(h);
                h
            }
        };
        for id in ids {
            let n = self.coord.holds.entry(id).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.add_want(holder, id, comm);
            }
        }
        Ok(())
    }

    /// A stored value with these keys left its primitive.
    fn coord_unhold(&mut self, keys: &[Key]) {
        let Some(holder) = self.coord.holder else { return };
        for k in keys {
            let Some(&id) = self.keys.get(k) else { continue };
            let Some(n) = self.coord.holds.get_mut(&id) else { continue };
            *n -= 1;
            if *n == 0 {
                self.coord.holds.remove(&id);
                self.remove_want(holder, id);
            }
        }
        if self.coord.holds.is_empty() {
            self.coord.holder = None;
            self.clients.remove(holder);
        }
    }

    /// Client `c` receives a value: its keys stay held until the client
    /// wants them itself.
    fn coord_hand_over(&mut self, c: ClientId, value: &CoordValue, comm: &mut impl Comm) {
        if value.keys.is_empty() {
            return;
        }
        let known: Vec<Key> =
            value.keys.iter().filter(|k| self.keys.contains_key(*k)).cloned().collect();
        if self.coord_hold(&known, comm).is_ok() {
            self.coord.in_transit.extend(known.into_iter().map(|k| (c, k)));
        }
    }

    /// Client `c` left: its waiting requests are dropped, its locks and
    /// leases freed, its subscriptions ended.
    pub(in crate::scheduler) fn coord_client_lost(&mut self, c: ClientId, comm: &mut impl Comm) {
        let mine: Vec<Waiter> = self.coord.waiting.keys().filter(|w| w.0 == c).copied().collect();
        for w in mine {
            self.coord_drop_waiter(w);
        }
        self.lock_client_lost(c, comm);
        self.semaphore_client_lost(c, comm);
        self.coord.expired_leases.retain(|l| l.0 != c);
        self.topic_client_lost(c);
        let (lost, kept) = std::mem::take(&mut self.coord.in_transit)
            .into_iter()
            .partition::<Vec<_>, _>(|t| t.0 == c);
        self.coord.in_transit = kept;
        for (_, k) in lost {
            self.coord_unhold(std::slice::from_ref(&k));
        }
    }

    /// Every task was forgotten by a restart: nothing is held any more.
    /// Stored futures keep their keys, and a client reading one gets a
    /// future that errs saying the key is unknown.
    pub(in crate::scheduler) fn coord_restarted(&mut self) {
        self.coord.holds.clear();
        self.coord.in_transit.clear();
        if let Some(h) = self.coord.holder.take() {
            self.clients.remove(h);
        }
    }

    /// Every primitive that holds state.
    pub(in crate::scheduler) fn coord_info(&self) -> Vec<PrimitiveInfo> {
        let co = &self.coord;
        let waiters = |kinds: &[Kind], name: &str| {
            co.waiting.values().filter(|(k, n)| kinds.contains(k) && n == name).count() as u64
        };
        let mut out = Vec::new();
        let mut add = |kind: &str, name: &str, size: usize, w: u64| {
            out.push(PrimitiveInfo {
                kind: kind.to_string(),
                name: name.to_string(),
                size: size as u64,
                waiters: w,
            })
        };
        for (name, q) in &co.queues {
            add("queue", name, q.items.len(), waiters(&[Kind::QueueGet, Kind::QueuePut], name));
        }
        for (name, v) in &co.variables {
            add("variable", name, usize::from(v.value.is_some()), waiters(&[Kind::Variable], name));
        }
        for (name, l) in &co.locks {
            add("lock", name, usize::from(l.holder.is_some()), waiters(&[Kind::Lock], name));
        }
        for (name, e) in &co.events {
            add("event", name, usize::from(e.set), waiters(&[Kind::Event], name));
        }
        for (name, s) in &co.semaphores {
            add("semaphore", name, s.leases.len(), waiters(&[Kind::Semaphore], name));
        }
        for (name, subs) in &co.topics {
            add("topic", name, subs.len(), 0);
        }
        out.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        out
    }

    /// Panics when the primitives' bookkeeping is inconsistent. For tests.
    pub(in crate::scheduler) fn check_coord(&self) {
        let co = &self.coord;
        for (&(c, _), (kind, name)) in &co.waiting {
            assert!(self.clients.contains_key(c), "waiter of a lost client on {name}");
            let present = match kind {
                Kind::QueueGet | Kind::QueuePut => co.queues.contains_key(name),
                Kind::Variable => co.variables.contains_key(name),
                Kind::Lock => co.locks.contains_key(name),
                Kind::Event => co.events.contains_key(name),
                Kind::Semaphore => co.semaphores.contains_key(name),
            };
            assert!(present, "waiter on missing primitive {name}");
        }
        for &(c, _) in &co.expired_leases {
            assert!(self.clients.contains_key(c), "expired lease of a lost client");
        }
        for l in co.locks.values() {
            assert!(l.holder.is_some() || l.waiters.is_empty(), "free lock with waiters");
        }
        for s in co.semaphores.values() {
            assert!(s.leases.len() <= s.max as usize, "semaphore over its leases");
            assert!(s.waiters.is_empty() || s.leases.len() == s.max as usize);
        }
        for q in co.queues.values() {
            assert!(q.items.is_empty() || q.getters.is_empty(), "items and getters both waiting");
            assert!(q.putters.is_empty() || q.maxsize > 0, "putters on an unbounded queue");
        }
        assert_eq!(co.holder.is_some(), !co.holds.is_empty());
        if let Some(h) = co.holder {
            let wants = &self.clients[h].wants;
            assert_eq!(wants.len(), co.holds.len());
            for id in co.holds.keys() {
                assert!(wants.contains(id));
            }
        }
    }
}

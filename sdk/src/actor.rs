//! Actors: stateful objects living on one worker, whose methods clients call
//! directly on that worker.
//!
//! Mark a struct and its `impl` block with `#[rudask::actor]`; create an
//! actor with [`Client::submit_actor`](crate::Client::submit_actor), passing
//! one of its constructors (an associated function returning `Self`), and
//! call its methods on the returned [`Actor`] handle. Each call returns an
//! [`ActorFuture`] at once (the call is already on its way); await it for
//! the method's result.
//!
//! * **Placement.** The constructor runs as a task, placed by the scheduler
//!   like any other; the object it returns stays on that worker. Calls go from
//!   the caller to that worker's data port directly, never through the
//!   scheduler; in-process callers (and tasks on the hosting worker) call the
//!   object directly, without any message.
//! * **Ordering.** Calls on one actor run one at a time, in the order they
//!   arrive at the worker (calls from one caller arrive in the order they
//!   were made). Synchronous methods run on the thread that received the
//!   call, so keep them short; long work belongs in an `async fn` method,
//!   which runs as a task on the worker and holds the actor until it
//!   completes, so async methods never interleave either, unless the actor
//!   opts in (next point).
//! * **Interleaving (opt-in).** With `#[rudask::actor(interleave)]` on the
//!   `impl` block, async methods taking `&self` run concurrently with each
//!   other, interleaving at their `.await`s, and start on arrival. Every
//!   other call (sync methods, `&mut self` methods, attribute reads) stays
//!   exclusive and in arrival order: it waits for the `&self` calls running
//!   before it to finish, and the calls arriving after it wait for it (a
//!   reader/writer discipline per actor). The type must then be `Sync`
//!   (share state between concurrent calls with atomics or locks), and the
//!   block must have some public async `&self` method; both are checked at
//!   compile time.
//! * **Attributes.** Fields marked `#[actor(attr)]` are read with
//!   `handle.attr_NAME()`.
//! * **Lifetime.** The actor lives while some handle exists (clones
//!   included); when the last one drops, its worker drops the object. A
//!   handle passed to a task (as an argument of type `Actor<T>`) counts too:
//!   decoded in the task, it makes the worker's shared client (the one of
//!   [`crate::get_client`]) want the actor until it drops, so the task may
//!   go on using the actor after the submitting client dropped its own
//!   handle. The worker's client wants the actor before the handle's first
//!   call leaves (calls made while that client connects wait, in order).
//!   Until the task is done, the submitting client keeps the actor too (the
//!   task's future holds a clone of the handle), so dropping a handle right
//!   after submitting a task that takes it is safe. A handle decoded outside any task (say, read back from a
//!   [`Variable`](crate::coord::Variable) by a client) reaches the actor
//!   without keeping it.
//! * **Failures.** A method that panics or returns `Err` fails that call
//!   only; the actor stays usable. When the actor's worker dies, every pending
//!   and later call fails with [`Error::ActorLost`]: the state is gone and is
//!   not silently recreated.
//! * **Futures.** [`ActorFuture`] is a [`Future`], so [`crate::wait`],
//!   [`crate::as_completed`] and [`Client::gather`](crate::Client::gather)
//!   take actor calls and task results alike; such a future cannot be
//!   retried or cancelled.
//!
//! ```
//! #[rudask::actor]
//! pub struct Counter {
//!     #[actor(attr)]
//!     n: u64,
//! }
//!
//! #[rudask::actor]
//! impl Counter {
//!     pub fn new(start: u64) -> Self {
//!         Counter { n: start }
//!     }
//!     pub fn increment(&mut self) -> u64 {
//!         self.n += 1;
//!         self.n
//!     }
//!     pub async fn add_later(&mut self, x: u64) -> u64 {
//!         tokio::task::yield_now().await;
//!         self.n += x;
//!         self.n
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> rudask::Result<()> {
//! let cluster = rudask::LocalCluster::threads(1).await?;
//! let client = cluster.client().await?;
//! let counter = client.submit_actor(Counter::new, (10,)).await?;
//! assert_eq!(counter.increment().await?, 11);
//! assert_eq!(counter.add_later(5).await?, 16);
//! assert_eq!(counter.attr_n().await?, 16);
//!
//! let calls: Vec<_> = (0..3).map(|_| counter.increment()).collect();
//! assert_eq!(client.gather(&calls).await?, vec![17, 18, 19]);
//! # Ok(()) }
//! ```
//!
//! An interleaving actor: `fetch` calls overlap (each waits on a slow
//! source without holding up the others), while `set_source` runs alone.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! #[rudask::actor]
//! pub struct Cache {
//!     source: String,
//!     fetches: AtomicU64,
//! }
//!
//! #[rudask::actor(interleave)]
//! impl Cache {
//!     pub fn new(source: String) -> Self {
//!         Cache { source, fetches: AtomicU64::new(0) }
//!     }
//!     /// Shared: runs concurrently with other `fetch` calls.
//!     pub async fn fetch(&self, key: String) -> String {
//!         tokio::task::yield_now().await;
//!         self.fetches.fetch_add(1, Ordering::Relaxed);
//!         format!("{}/{key}", self.source)
//!     }
//!     /// Exclusive: waits for running `fetch` calls, then runs alone.
//!     pub fn set_source(&mut self, source: String) -> u64 {
//!         self.source = source;
//!         *self.fetches.get_mut()
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> rudask::Result<()> {
//! let cluster = rudask::LocalCluster::threads(1).await?;
//! let client = cluster.client().await?;
//! let cache = client.submit_actor(Cache::new, ("a".to_string(),)).await?;
//! let before: Vec<_> = ["x", "y"].map(|k| cache.fetch(k.into())).into();
//! // Arrives after both fetches: sees them done.
//! assert_eq!(cache.set_source("b".into()).await?, 2);
//! assert_eq!(client.gather(&before).await?, vec!["a/x", "a/y"]);
//! assert_eq!(cache.fetch("z".into()).await?, "b/z");
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::future::{Future, KeyRef, KeyState, Status};
use crate::runtime::actors::{self, ActorCell, Sink};
use crate::runtime::conn;
use rudask_core::protocol::{PeerRequest, PeerResponse, Role};
use rudask_core::{Key, Payload};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use tokio::sync::mpsc;

/// The result of an actor method call. It is a [`Future`]: await it, or pass
/// it to [`crate::wait`], [`crate::as_completed`] or
/// [`Client::gather`](crate::Client::gather).
///
/// ```
/// # #[rudask::actor] pub struct Echo {}
/// # #[rudask::actor] impl Echo {
/// #     pub fn new() -> Self { Echo {} }
/// #     pub fn echo(&self, s: String) -> String { s }
/// # }
/// # #[tokio::main] async fn main() -> rudask::Result<()> {
/// # let cluster = rudask::LocalCluster::threads(1).await?;
/// # let client = cluster.client().await?;
/// let echo = client.submit_actor(Echo::new, ()).await?;
/// let f: rudask::ActorFuture<String> = echo.echo("hi".into());
/// assert_eq!(f.await?, "hi");
/// # Ok(()) }
/// ```
pub type ActorFuture<T> = Future<T>;

/// An actor type: implemented by `#[rudask::actor]` on the type's `impl`
/// block.
///
/// ```
/// # #[rudask::actor] pub struct Echo {}
/// # #[rudask::actor] impl Echo { pub fn new() -> Self { Echo {} } }
/// use rudask::ActorType;
/// assert_eq!(Echo::NAME, "Echo");
/// ```
pub trait ActorType: Send + 'static {
    /// The generated handle, with one method per method of the type.
    type Handle: Send + Sync + 'static;
    /// The type's name, used in keys.
    const NAME: &'static str;
    /// Wraps a raw handle into the typed one.
    #[doc(hidden)]
    fn handle(raw: RawActor) -> Self::Handle;
}

/// A constructor of actor type `Self::Actor` taking `Args`: an associated
/// function returning `Self` in an `impl` block marked `#[rudask::actor]`.
///
/// ```
/// # #[rudask::actor] pub struct Echo {}
/// # #[rudask::actor] impl Echo { pub fn new() -> Self { Echo {} } }
/// fn check<C: rudask::Constructor<()>>(_: C) {}
/// check(Echo::new);
/// ```
pub trait Constructor<Args>: Sized {
    /// The actor type it makes.
    type Actor: ActorType;
}

macro_rules! constructor {
    ($($T:ident),*) => {
        impl<F, A: ActorType, $($T),*> Constructor<($($T,)*)> for F
        where
            F: Fn($($T),*) -> A,
        {
            type Actor = A;
        }
    };
}

constructor!();
constructor!(T0);
constructor!(T0, T1);
constructor!(T0, T1, T2);
constructor!(T0, T1, T2, T3);
constructor!(T0, T1, T2, T3, T4);
constructor!(T0, T1, T2, T3, T4, T5);
constructor!(T0, T1, T2, T3, T4, T5, T6);

/// A registered actor constructor (generated by `#[rudask::actor]`).
#[doc(hidden)]
#[derive(Debug)]
pub struct CtorDef {
    /// `std::any::type_name` of the constructor function.
    pub function: fn() -> &'static str,
    /// Id of the task that runs it on a worker.
    pub task: &'static str,
}

inventory::collect!(CtorDef);

/// The task id of constructor `C`, if `C` is a registered constructor.
pub(crate) fn ctor_task<C>() -> Option<&'static str> {
    static CTORS: OnceLock<FxHashMap<&'static str, &'static str>> = OnceLock::new();
    let ctors = CTORS
        .get_or_init(|| inventory::iter::<CtorDef>().map(|d| ((d.function)(), d.task)).collect());
    ctors.get(std::any::type_name::<C>()).copied()
}

/// Where an actor lives: what a handle needs to reach it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Placement {
    pub(crate) id: u64,
    pub(crate) key: String,
    pub(crate) worker: String,
    pub(crate) addr: String,
    /// [`ActorType::NAME`] of the actor, so that decoding a handle as
    /// another type fails instead of calling the wrong methods.
    pub(crate) type_name: String,
}

/// An untyped actor handle. Not a stable API: use [`Actor`].
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct RawActor(Arc<Inner>);

struct Inner {
    at: Placement,
    /// The key of every call's future: they never reach the scheduler, so
    /// they can share one.
    call_key: Key,
    /// Keeps the actor wanted.
    keep: Keep,
    /// The actor itself when this process hosts it.
    local: Option<Weak<ActorCell>>,
    conn: OnceLock<std::result::Result<Arc<ActorConn>, Error>>,
    /// TLS and token of the cluster the actor lives in.
    security: crate::security::Security,
}

/// What keeps the actor wanted while a handle lives.
enum Keep {
    /// A client's want: the creating client's, or that of the worker's
    /// client of a task that decoded the handle.
    Held {
        /// Released when the last clone of the handle drops.
        _want: Arc<KeyRef>,
    },
    /// Decoded in a task whose worker's client is still connecting: the want
    /// comes once it has, and calls wait for it.
    Task(Mutex<TaskHold>),
    /// Decoded outside any task: it reaches the actor without keeping it.
    Nothing,
}

/// A task's handle until (and after) its worker's client wants the actor.
#[derive(Default)]
struct TaskHold {
    /// Dropped with the handle, which releases the want.
    _want: Option<Arc<KeyRef>>,
    /// The want was sent (or could not be): calls go straight out.
    ready: bool,
    /// Calls made before, in call order.
    waiting: Vec<(u32, Vec<Payload>, Arc<KeyState>)>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor").field("key", &self.at.key).field("worker", &self.at.worker).finish()
    }
}

impl RawActor {
    fn new(at: Placement, keep: Keep, security: crate::security::Security) -> RawActor {
        RawActor(Arc::new(Inner {
            call_key: Key::from(format!("{}-call", at.key)),
            local: actors::local(at.id),
            at,
            keep,
            conn: OnceLock::new(),
            security,
        }))
    }

    /// A handle decoded from its placement. Inside a task it holds the actor
    /// through the worker's shared client, connecting that client first if
    /// no task of this worker has yet.
    fn decoded(at: Placement) -> RawActor {
        let Some(ctx) = crate::context::current() else {
            // No cluster at hand: the credentials this process last joined with.
            return RawActor::new(at, Keep::Nothing, crate::security::ambient());
        };
        let security = match &ctx.scheduler {
            crate::context::SchedulerLink::Tcp(_, security) => security.clone(),
            crate::context::SchedulerLink::Local(_) => Default::default(),
        };
        if let Some(client) = ctx.client.get() {
            let keep = match client.hold_actor(&at.key) {
                Ok(held) => Keep::Held { _want: held },
                Err(e) => {
                    tracing::warn!(actor = %at.key, error = %e, "a task could not hold an actor");
                    Keep::Nothing
                }
            };
            return RawActor::new(at, keep, security);
        }
        let raw = RawActor::new(at, Keep::Task(Mutex::default()), security);
        let handle = Arc::downgrade(&raw.0);
        let runtime = ctx.runtime.clone();
        runtime.spawn(async move {
            let client = ctx.client().await;
            let Some(inner) = handle.upgrade() else { return };
            let held = client.and_then(|c| c.hold_actor(&inner.at.key));
            if let Err(e) = &held {
                tracing::warn!(actor = %inner.at.key, error = %e, "a task could not hold an actor");
            }
            let Keep::Task(hold) = &inner.keep else { return };
            let mut hold = lock(hold);
            hold._want = held.ok();
            hold.ready = true;
            // Under the lock, so that later calls leave after these.
            let raw = RawActor(inner.clone());
            for (method, args, state) in std::mem::take(&mut hold.waiting) {
                raw.dispatch(method, args, state);
            }
        });
        raw
    }

    fn key_str(&self) -> &str {
        &self.0.at.key
    }

    fn lost(&self) -> Error {
        Error::ActorLost { actor: self.0.at.key.clone(), worker: self.0.at.worker.clone() }
    }

    /// Sends a call of method number `method`; generated handles call this.
    pub fn call<T>(&self, method: u32, args: Result<Vec<Payload>>) -> ActorFuture<T> {
        let state = KeyState::new(self.0.call_key.clone());
        let future = Future::new(Arc::new(KeyRef { state: state.clone(), client: None }));
        let args = match args {
            Ok(args) => args,
            Err(e) => {
                state.set_failed(Status::Error, e);
                return future;
            }
        };
        if let Keep::Task(hold) = &self.0.keep {
            let mut hold = lock(hold);
            if !hold.ready {
                hold.waiting.push((method, args, state));
                return future;
            }
        }
        self.dispatch(method, args, state);
        future
    }

    /// Sends a call whose outcome settles `state`.
    fn dispatch(&self, method: u32, args: Vec<Payload>, state: Arc<KeyState>) {
        if let Some(local) = &self.0.local {
            match local.upgrade() {
                Some(cell) => cell.call(method, args, Sink::Local(state)),
                None => state.set_failed(Status::Error, self.lost()),
            }
            return;
        }
        match self.0.conn.get_or_init(|| ActorConn::get(&self.0.at.addr, &self.0.security)) {
            Ok(conn) => conn.call(self, method, args, state),
            Err(e) => state.set_failed(Status::Error, e.clone()),
        }
    }
}

/// Encodes one argument of an actor method call; generated handles call this.
#[doc(hidden)]
pub fn encode_arg<T: serde::Serialize + std::any::Any>(v: &T) -> Result<Payload> {
    crate::task::encode_value(v)
}

/// A handle to an actor of type `A`: call its methods on it (they are the
/// methods of `A::Handle`, reached through `Deref`). Clones share the actor;
/// it lives while some handle exists, in a client or in a task. See the [module](mod@crate::actor)
/// documentation.
///
/// ```no_run
/// # #[rudask::actor] pub struct Counter { n: u64 }
/// # #[rudask::actor] impl Counter {
/// #     pub fn new() -> Self { Counter { n: 0 } }
/// #     pub fn increment(&mut self) -> u64 { self.n += 1; self.n }
/// # }
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let counter: rudask::Actor<Counter> = client.submit_actor(Counter::new, ()).await?;
/// println!("{} lives on {}", counter.key(), counter.worker());
/// assert_eq!(counter.increment().await?, 1);
/// # Ok(()) }
/// ```
pub struct Actor<A: ActorType> {
    raw: RawActor,
    handle: A::Handle,
}

impl<A: ActorType> Actor<A> {
    fn from_raw(raw: RawActor) -> Self {
        Actor { handle: A::handle(raw.clone()), raw }
    }

    pub(crate) fn placed(
        id: u64,
        key: String,
        worker: String,
        addr: String,
        keep: Arc<KeyRef>,
    ) -> Self {
        let security = keep.client.as_ref().map(|c| c.security().clone()).unwrap_or_default();
        Self::from_raw(RawActor::new(
            Placement { id, key, worker, addr, type_name: A::NAME.to_string() },
            Keep::Held { _want: keep },
            security,
        ))
    }

    /// The actor's key.
    ///
    /// ```no_run
    /// # #[rudask::actor] pub struct Echo {}
    /// # #[rudask::actor] impl Echo { pub fn new() -> Self { Echo {} } }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let echo = client.submit_actor(Echo::new, ()).await?;
    /// assert!(echo.key().starts_with("actor-"));
    /// # Ok(()) }
    /// ```
    pub fn key(&self) -> &str {
        &self.raw.0.at.key
    }

    /// The name of the worker hosting the actor.
    ///
    /// ```no_run
    /// # #[rudask::actor] pub struct Echo {}
    /// # #[rudask::actor] impl Echo { pub fn new() -> Self { Echo {} } }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let echo = client.submit_actor(Echo::new, ()).await?;
    /// println!("on {}", echo.worker());
    /// # Ok(()) }
    /// ```
    pub fn worker(&self) -> &str {
        &self.raw.0.at.worker
    }
}

impl<A: ActorType> std::ops::Deref for Actor<A> {
    type Target = A::Handle;
    fn deref(&self) -> &A::Handle {
        &self.handle
    }
}

impl<A: ActorType> Clone for Actor<A> {
    fn clone(&self) -> Self {
        Self::from_raw(self.raw.clone())
    }
}

impl<A: ActorType> std::fmt::Debug for Actor<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.0.fmt(f)
    }
}

/// A handle crosses processes as the actor's placement; one decoded inside a
/// task keeps the actor alive like the client's (see the module docs).
impl<A: ActorType> Serialize for Actor<A> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.raw.0.at.serialize(s)
    }
}

impl<'de, A: ActorType> Deserialize<'de> for Actor<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let at = Placement::deserialize(d)?;
        if at.type_name != A::NAME {
            return Err(serde::de::Error::custom(format!(
                "actor {} is a {}, not a {}",
                at.key,
                at.type_name,
                A::NAME
            )));
        }
        Ok(Self::from_raw(RawActor::decoded(at)))
    }
}

impl<A: ActorType> crate::task::IntoArg<Actor<A>> for &Actor<A> {
    fn into_arg(self) -> Result<crate::task::ArgSlot> {
        let keep = rudask_core::collection::Retain::new(self.raw.clone());
        let handle = crate::task::encode_value(&self.raw.0.at)?;
        Ok(crate::task::ArgSlot::Retaining(handle, keep))
    }
}

/// A connection to one worker's data port for actor calls, whose answers
/// settle the calls' futures straight from the connection's reader.
struct ActorConn {
    tx: mpsc::UnboundedSender<PeerRequest>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Pending {
    closed: bool,
    calls: FxHashMap<u64, (Arc<KeyState>, RawActor)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ActorConn {
    /// The open connection to `addr`, made (in the background) if needed.
    fn get(addr: &str, security: &crate::security::Security) -> Result<Arc<ActorConn>> {
        static CONNS: OnceLock<Mutex<FxHashMap<String, Arc<ActorConn>>>> = OnceLock::new();
        let mut conns = lock(CONNS.get_or_init(Default::default));
        if let Some(c) = conns.get(addr) {
            if !c.tx.is_closed() && !lock(&c.pending).closed {
                return Ok(c.clone());
            }
        }
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| crate::context::current().map(|c| c.runtime.clone()))
            .ok_or_else(|| {
                Error::Context(
                    "actor methods are called from async code (inside a tokio runtime) or tasks"
                        .into(),
                )
            })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let c = Arc::new(ActorConn { tx, pending: Mutex::default(), next_id: AtomicU64::new(0) });
        let conn = c.clone();
        let target = addr.to_string();
        let security = security.clone();
        runtime.spawn(async move {
            match conn::connect(&target, Role::Peer, &security).await {
                Ok((reader, w, _)) => {
                    conn::spawn_writer_from(w, rx);
                    let on_msg = conn.clone();
                    conn::spawn_reader(
                        reader,
                        move |r: PeerResponse| {
                            on_msg.settle(r);
                            true
                        },
                        move |_| conn.close(),
                    );
                }
                Err(e) => {
                    tracing::warn!(worker = %target, error = %e, "could not reach an actor's worker");
                    conn.close();
                }
            }
        });
        conns.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    fn call(&self, actor: &RawActor, method: u32, args: Vec<Payload>, state: Arc<KeyState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut p = lock(&self.pending);
            if p.closed {
                drop(p);
                state.set_failed(Status::Error, actor.lost());
                return;
            }
            p.calls.insert(id, (state, actor.clone()));
        }
        let req = PeerRequest::ActorCall { id, actor: actor.0.at.id, method, args };
        if self.tx.send(req).is_err() {
            if let Some((state, actor)) = lock(&self.pending).calls.remove(&id) {
                state.set_failed(Status::Error, actor.lost());
            }
        }
    }

    fn settle(&self, r: PeerResponse) {
        let (id, result) = match r {
            PeerResponse::ActorReply { id, result } => (id, Some(result)),
            PeerResponse::NoSuchActor { id } => (id, None),
            _ => return,
        };
        let Some((state, actor)) = lock(&self.pending).calls.remove(&id) else { return };
        match result {
            Some(Ok(p)) => state.set_memory(Some(p), Vec::new()),
            Some(Err(f)) => {
                state.set_failed(Status::Error, Error::from_failure(actor.key_str(), &f))
            }
            None => state.set_failed(Status::Error, actor.lost()),
        }
    }

    /// The connection is gone: the worker died, so every pending call's
    /// actor is lost.
    fn close(&self) {
        let calls = {
            let mut p = lock(&self.pending);
            p.closed = true;
            std::mem::take(&mut p.calls)
        };
        for (_, (state, actor)) in calls {
            state.set_failed(Status::Error, actor.lost());
        }
    }
}

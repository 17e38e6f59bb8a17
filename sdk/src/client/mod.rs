//! [`Client`]: submit tasks, move data and get results.
//!
//! Outgoing messages go straight to the scheduler's uplink (a TCP writer
//! that batches, or the scheduler's inbox in-process). Incoming messages are
//! applied to the shared key table by the connection's reader, so a result
//! wakes its awaiting futures without another task hop.

mod actor;
mod admin;
mod collection;
mod coord;
mod data;
mod datasets;
mod events;
mod graph;
mod placement;
mod plugins;
mod scatter;

pub use collection::PersistOptions;
pub(crate) use coord::{Grant, Received, SubBuffer};
pub use datasets::{Datasets, FromDataset, Futures, Publish, PublishDatasets};
pub use events::{Event, Subscription};
pub use graph::{GraphBuilder, GraphKey, OutputKey};
pub use placement::ClientExecutor;
pub use scatter::Scatter;

use crate::error::{Error, Result};
use crate::future::{Future, KeyRef, KeyState, Outcome, Status};
use crate::runtime::conn;
use crate::runtime::peer::PeerPool;
use crate::runtime::scheduler::SchedulerHandle;
use crate::runtime::Uplink;
use crate::task::{ArgSlot, IntoArgs, SubmitOptions, Task, Value};
use rudask_core::graph::Arg;
use rudask_core::protocol::{
    ClientMsg, Reply, Request, RequestError, Role, SchedulerInfo, ToClient, WorkerInfo,
};

type RequestResult = std::result::Result<Reply, RequestError>;
use rudask_core::{Key, Payload, TaskSpec};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Key table and cluster view shared by the client and its connection reader.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    keys: Mutex<FxHashMap<Key, (Arc<KeyState>, usize)>>,
    workers: Mutex<FxHashMap<u64, WorkerInfo>>,
    disconnected: Mutex<Option<String>>,
    requests: Mutex<FxHashMap<u64, tokio::sync::oneshot::Sender<RequestResult>>>,
    next_request: std::sync::atomic::AtomicU64,
    subscriptions: events::Subscriptions,
    topics: coord::Topics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Applies one scheduler message.
    fn apply(&self, msg: ToClient) {
        match msg {
            ToClient::KeyInMemory { key, workers, value, .. } => {
                if let Some(s) = self.state(&key) {
                    s.set_memory(value, workers);
                }
            }
            ToClient::KeyErred { key, failure } => {
                if let Some(s) = self.state(&key) {
                    s.set_failed(Status::Error, Error::from_failure(key.as_str(), &failure));
                }
            }
            ToClient::KeyCancelled { key } => {
                if let Some(s) = self.state(&key) {
                    s.set_failed(Status::Cancelled, Error::Cancelled { key: key.to_string() });
                }
            }
            ToClient::WorkerAdded(info) => {
                lock(&self.workers).insert(info.id, info);
            }
            ToClient::WorkerRemoved { id } => {
                lock(&self.workers).remove(&id);
            }
            ToClient::Reply { id, reply } => {
                if let Some(tx) = lock(&self.requests).remove(&id) {
                    let _ = tx.send(reply);
                }
            }
            ToClient::Restarted => self.restarted(),
            ToClient::Event { topic, time, data } => self.subscriptions.dispatch(topic, time, data),
            ToClient::Published { sub, value } => self.topics.dispatch(sub, value),
        }
    }

    fn state(&self, key: &Key) -> Option<Arc<KeyState>> {
        lock(&self.keys).get(key).map(|(s, _)| s.clone())
    }

    /// The scheduler connection is gone: every pending key fails.
    fn disconnect(&self, reason: String) {
        *lock(&self.disconnected) = Some(reason.clone());
        lock(&self.requests).clear();
        self.topics.close_all();
        let states: Vec<_> = lock(&self.keys).values().map(|(s, _)| s.clone()).collect();
        for s in states {
            if s.status() == Status::Pending {
                s.set_failed(Status::Error, Error::Disconnected(reason.clone()));
            }
        }
    }
}

/// The part of a client that futures keep alive.
#[derive(Debug)]
pub(crate) struct ClientInner {
    uplink: Uplink<ClientMsg>,
    shared: Arc<Shared>,
    peers: PeerPool,
    scheduler: String,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.uplink.send(ClientMsg::Close);
    }
}

impl ClientInner {
    /// TLS and token of this client's connections.
    pub(crate) fn security(&self) -> &crate::security::Security {
        self.peers.security()
    }

    /// Submits one task the client wants, and returns its future.
    pub(crate) fn submit_spec<T>(self: &Arc<Self>, spec: TaskSpec) -> Result<Future<T>> {
        let wanted = vec![spec.key.clone()];
        let refs = self.register(
            &wanted,
            ClientMsg::UpdateGraph { tasks: vec![spec], wanted: wanted.clone() },
        )?;
        Ok(Future::new(refs.into_iter().next().expect("one key")))
    }

    /// Sends a request to the scheduler and waits for its reply.
    pub(crate) async fn request(&self, req: Request) -> Result<Reply> {
        let id = self.shared.next_request.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.shared.requests).insert(id, tx);
        self.check_connected()?;
        if !self.uplink.send(ClientMsg::Request { id, req }) {
            lock(&self.shared.requests).remove(&id);
            return Err(Error::Disconnected(format!(
                "the connection to the scheduler at {} is closed",
                self.scheduler
            )));
        }
        let reply = rx.await.map_err(|_| {
            Error::Disconnected(format!(
                "the connection to the scheduler at {} was lost before it answered",
                self.scheduler
            ))
        })?;
        reply.map_err(Error::from)
    }

    pub(crate) fn check_connected(&self) -> Result<()> {
        match &*lock(&self.shared.disconnected) {
            Some(reason) => Err(Error::Disconnected(reason.clone())),
            None => Ok(()),
        }
    }

    /// Counts one more handle of each key and sends `msg` (which tells the
    /// scheduler about them) while the table is locked, so a concurrent release
    /// of the same key is ordered before or after it, never across it.
    fn register(self: &Arc<Self>, keys: &[Key], msg: ClientMsg) -> Result<Vec<Arc<KeyRef>>> {
        self.check_connected()?;
        let mut table = lock(&self.shared.keys);
        let refs = keys
            .iter()
            .map(|k| {
                let entry = table.entry(k.clone()).or_insert_with(|| (KeyState::new(k.clone()), 0));
                entry.1 += 1;
                Arc::new(KeyRef { state: entry.0.clone(), client: Some(self.clone()) })
            })
            .collect::<Vec<_>>();
        let sent = self.uplink.send(msg);
        drop(table);
        if sent {
            Ok(refs)
        } else {
            Err(Error::Disconnected(format!(
                "the connection to the scheduler at {} is closed",
                self.scheduler
            )))
        }
    }

    /// One handle of `key` was dropped.
    pub(crate) fn release(&self, key: &Key) {
        let mut table = lock(&self.shared.keys);
        if let Some(entry) = table.get_mut(key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                table.remove(key);
                self.uplink.send(ClientMsg::Release { keys: vec![key.clone()] });
            }
        }
    }

    pub(crate) fn cancel(&self, keys: Vec<Key>) {
        self.uplink.send(ClientMsg::Cancel { keys });
    }

    /// Sends `msg`, or says the connection is closed.
    pub(crate) fn send(&self, msg: ClientMsg) -> Result<()> {
        if self.uplink.send(msg) {
            Ok(())
        } else {
            Err(Error::Disconnected(format!(
                "the connection to the scheduler at {} is closed",
                self.scheduler
            )))
        }
    }

    fn worker_addr(&self, id: u64) -> Option<String> {
        lock(&self.shared.workers).get(&id).map(|w| w.data_addr.clone())
    }

    /// Waits for a key and returns its encoded value, fetching it from a
    /// worker when it was not sent inline.
    pub(crate) async fn fetch(&self, state: &KeyState) -> Result<Payload> {
        loop {
            match state.outcome().await {
                Outcome::Value(p) => return Ok(p),
                Outcome::Failed(e) => return Err(e),
                Outcome::At { workers, version } => {
                    for w in workers {
                        if let Some(addr) = self.worker_addr(w) {
                            if let Ok(items) =
                                self.peers.get_data(&addr, vec![state.key.clone()]).await
                            {
                                if let Some((_, Some(p))) = items.into_iter().next() {
                                    return Ok(p);
                                }
                            }
                        }
                        state.drop_worker(w, version);
                    }
                }
            }
        }
    }
}

/// A connection to a rudask scheduler.
///
/// ```no_run
/// #[rudask::task]
/// fn inc(x: i64) -> i64 { x + 1 }
///
/// # async fn demo() -> rudask::Result<()> {
/// let client = rudask::Client::connect("tcp://127.0.0.1:8786").await?;
/// let futures = client.map(inc, (0..10).map(|i| (i,)))?;
/// let results = client.gather(&futures).await?;
/// assert_eq!(results[9], 10);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// Connects to the scheduler at `addr` (`tls://host:port`,
    /// `tcp://host:port` or `host:port`), with the credentials in the
    /// environment (`RUDASK_CONNECTION_FILE`, `RUDASK_TOKEN`, `RUDASK_TLS_CA`;
    /// none are needed for an `--insecure` scheduler).
    pub async fn connect(addr: &str) -> Result<Client> {
        Self::connect_with(addr, crate::Credentials::from_env()?).await
    }

    /// Connects to the scheduler at `addr` with a token and the cluster's CA.
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let creds = rudask::Credentials::new()
    ///     .token(std::fs::read_to_string("/tmp/rudask-scheduler-8786/token")?)
    ///     .tls_ca_file("/tmp/rudask-scheduler-8786/ca.pem")?;
    /// let client = rudask::Client::connect_with("tls://127.0.0.1:8786", creds).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(addr: &str, credentials: crate::Credentials) -> Result<Client> {
        Self::connect_secured(addr, credentials.security()?).await
    }

    /// Connects to the scheduler described by a connection file (the one
    /// `rudask scheduler` writes and prints the path of).
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let client = rudask::Client::from_connection_file("/tmp/rudask-scheduler-8786/connection.json").await?;
    /// # Ok(()) }
    /// ```
    pub async fn from_connection_file(path: impl AsRef<std::path::Path>) -> Result<Client> {
        let file = crate::ConnectionFile::read(path)?;
        Self::connect_with(&file.address, file.credentials()).await
    }

    pub(crate) async fn connect_secured(
        addr: &str,
        security: crate::security::Security,
    ) -> Result<Client> {
        let name = format!("client-{}", std::process::id());
        let (reader, w, welcome) = conn::connect(addr, Role::Client { name }, &security).await?;
        if security.connector.is_some() || security.token.is_some() {
            crate::security::set_ambient(&security);
        }
        let shared = Arc::new(Shared::default());
        lock(&shared.workers).extend(welcome.workers.into_iter().map(|w| (w.id, w)));
        let on_msg = {
            let shared = shared.clone();
            move |m| {
                shared.apply(m);
                true
            }
        };
        let on_close = {
            let shared = shared.clone();
            let addr = addr.to_string();
            move |err: Option<Error>| {
                let why = err.map(|e| format!(": {e}")).unwrap_or_default();
                shared
                    .disconnect(format!("the connection to the scheduler at {addr} was lost{why}"));
            }
        };
        conn::spawn_reader::<ToClient, _, _>(reader, on_msg, on_close);
        let inner = ClientInner {
            uplink: Uplink::Tcp(conn::spawn_writer(w)),
            shared,
            peers: PeerPool::new(security),
            scheduler: addr.to_string(),
        };
        Ok(Client { inner: Arc::new(inner) })
    }

    /// A client of an in-process scheduler, over channels.
    pub(crate) async fn connect_local(scheduler: &SchedulerHandle) -> Result<Client> {
        let (uplink, mut rx, welcome) = scheduler.join_client_local("local-client").await?;
        let shared = Arc::new(Shared::default());
        lock(&shared.workers).extend(welcome.workers.into_iter().map(|w| (w.id, w)));
        let reader = shared.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(1024);
            while rx.recv_many(&mut batch, 1024).await > 0 {
                for m in batch.drain(..) {
                    reader.apply(m);
                }
            }
            reader.disconnect("the in-process scheduler has stopped".into());
        });
        let inner = ClientInner {
            uplink,
            shared,
            peers: PeerPool::default(),
            scheduler: scheduler.address().to_string(),
        };
        Ok(Client { inner: Arc::new(inner) })
    }

    /// The scheduler's address.
    pub fn scheduler_address(&self) -> &str {
        &self.inner.scheduler
    }

    /// The workers known to this client.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let mut w: Vec<_> = lock(&self.inner.shared.workers).values().cloned().collect();
        w.sort_by_key(|w| w.id);
        w
    }

    /// Submits one task. Each argument is a value or a `&Future` of the
    /// parameter's type. Options ride on the task: `client.submit(inc.pure(false), (1,))`.
    pub fn submit<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<Future<F::Output>> {
        let options = task.options();
        options.validate()?;
        let (spec, holds) = build_spec(&task, &options, args.into_args()?, options.key.clone())?;
        let future: Future<F::Output> = self.inner.submit_spec(spec)?;
        holds.attach(future.key_ref());
        Ok(future)
    }

    /// Submits one task per argument tuple, in one message.
    pub fn map<F, A, I>(&self, task: F, args: I) -> Result<Vec<Future<F::Output>>>
    where
        F: Task,
        A: IntoArgs<F::Args>,
        I: IntoIterator<Item = A>,
    {
        let options = task.options();
        options.validate()?;
        let mut specs = Vec::new();
        let mut holds = Vec::new();
        for (i, a) in args.into_iter().enumerate() {
            let key = options.key.as_ref().map(|k| format!("{k}-{i}"));
            let (spec, h) = build_spec(&task, &options, a.into_args()?, key)?;
            specs.push(spec);
            holds.push(h);
        }
        let keys: Vec<Key> = specs.iter().map(|s| s.key.clone()).collect();
        let refs = self
            .inner
            .register(&keys, ClientMsg::UpdateGraph { tasks: specs, wanted: keys.clone() })?;
        for (r, h) in refs.iter().zip(holds) {
            h.attach(r);
        }
        Ok(refs.into_iter().map(Future::new).collect())
    }

    /// Waits for all futures and returns their values in order; values not
    /// sent inline are fetched from their workers, one request per worker.
    pub async fn gather<T: Value>(&self, futures: &[Future<T>]) -> Result<Vec<T>> {
        let mut values: Vec<Option<Payload>> = vec![None; futures.len()];
        let mut remote: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
        for (i, f) in futures.iter().enumerate() {
            match f.key_ref().state.outcome().await {
                Outcome::Value(p) => values[i] = Some(p),
                Outcome::Failed(e) => return Err(e),
                Outcome::At { workers, .. } => remote.entry(workers[0]).or_default().push(i),
            }
        }
        let requests = remote.into_iter().map(|(w, idx)| {
            let keys = idx.iter().map(|&i| futures[i].key_ref().state.key.clone()).collect();
            let addr = self.inner.worker_addr(w);
            async move {
                match addr {
                    Some(addr) => (idx, self.inner.peers.get_data(&addr, keys).await.ok()),
                    None => (idx, None),
                }
            }
        });
        for (idx, items) in futures::future::join_all(requests).await {
            let items = items.unwrap_or_default();
            for (n, i) in idx.into_iter().enumerate() {
                values[i] = match items.get(n) {
                    Some((_, Some(p))) => Some(p.clone()),
                    _ => Some(self.inner.fetch(&futures[i].key_ref().state).await?),
                };
            }
        }
        futures
            .iter()
            .zip(values)
            .map(|(f, v)| crate::task::decode_value(f.key(), &v.expect("every value gathered")))
            .collect()
    }

    /// Places values on workers without running a task. Returns a builder;
    /// await it for one future per value.
    pub fn scatter<T: Value>(&self, values: impl IntoIterator<Item = T>) -> Scatter<'_, T> {
        Scatter::new(self, values.into_iter().collect())
    }

    /// A snapshot of the scheduler: workers, number of tasks and clients, and
    /// the state of each key in `keys` (`None` once the scheduler forgot it).
    pub async fn scheduler_info(&self, keys: &[&str]) -> Result<SchedulerInfo> {
        let keys = keys.iter().map(|&k| Key::from(k)).collect();
        match self.inner.request(Request::Info { keys }).await? {
            Reply::Info(info) => Ok(info),
            other => Err(unexpected(&other)),
        }
    }

    /// Cancels the futures' keys for every client that wants them.
    pub fn cancel<T>(&self, futures: &[Future<T>]) {
        self.inner.cancel(futures.iter().map(|f| f.key_ref().state.key.clone()).collect());
    }

    /// Leaves the scheduler. Futures of this client fail with
    /// [`Error::Disconnected`] afterwards.
    pub fn close(&self) {
        self.inner.uplink.send(ClientMsg::Close);
        self.inner.shared.disconnect("the client was closed".into());
    }

    pub(crate) fn inner(&self) -> &Arc<ClientInner> {
        &self.inner
    }
}

impl ClientInner {
    pub(crate) fn peers(&self) -> &PeerPool {
        &self.peers
    }

    pub(crate) fn register_scattered(
        self: &Arc<Self>,
        items: Vec<rudask_core::protocol::ScatteredKey>,
    ) -> Result<Vec<Arc<KeyRef>>> {
        let keys: Vec<Key> = items.iter().map(|i| i.key.clone()).collect();
        let workers: Vec<Vec<u64>> = items.iter().map(|i| i.workers.clone()).collect();
        let refs = self.register(&keys, ClientMsg::UpdateData { items })?;
        for (r, w) in refs.iter().zip(workers) {
            r.state.set_memory(None, w);
        }
        Ok(refs)
    }
}

/// The error for a reply of the wrong kind, which only a scheduler of another
/// build could send.
pub(crate) fn unexpected(reply: &Reply) -> Error {
    Error::Protocol(rudask_core::protocol::ProtocolError::Malformed(format!(
        "the scheduler answered with an unexpected reply: {reply:?}"
    )))
}

/// Turns a task and its encoded arguments into a spec and the futures it depends on.
/// What a task's arguments need kept while it is submitted: its
/// dependencies until the scheduler has the task, and what
/// [`ArgSlot::Retaining`] arguments refer to until the task is done.
#[derive(Debug, Default)]
pub(crate) struct ArgHolds {
    deps: Vec<Arc<KeyRef>>,
    until_done: Vec<rudask_core::collection::Retain>,
}

impl ArgHolds {
    /// Keeps the retained referents until `task`'s key settles (or this
    /// client forgets it); the dependencies go now.
    pub(crate) fn attach(self, task: &KeyRef) {
        for keep in self.until_done {
            task.state.on_done(Box::new(move || drop(keep)));
        }
    }
}

fn build_spec<F: Task>(
    task: &F,
    options: &SubmitOptions,
    slots: Vec<ArgSlot>,
    key: Option<String>,
) -> Result<(TaskSpec, ArgHolds)> {
    let mut args = Vec::with_capacity(slots.len());
    let mut holds = ArgHolds::default();
    for s in slots {
        match s {
            ArgSlot::Value(p) => args.push(Arg::Value(p)),
            ArgSlot::Retaining(p, keep) => {
                args.push(Arg::Value(p));
                holds.until_done.push(keep);
            }
            ArgSlot::Dep(r) => {
                args.push(Arg::Dep(r.state.key.clone()));
                holds.deps.push(r);
            }
            ArgSlot::Key(k) => args.push(Arg::Dep(k)),
        }
    }
    let key = match key {
        Some(k) => Key::from(k),
        None if options.pure => {
            let encoded = args
                .iter()
                .map(|a| match a {
                    Arg::Value(p) => p.encoded().map_err(Error::Serialization),
                    Arg::Dep(_) => Ok(bytes::Bytes::new()),
                })
                .collect::<Result<Vec<_>>>()?;
            Key::pure(
                task.id(),
                task.name(),
                args.iter().zip(&encoded).flat_map(|(a, e)| match a {
                    Arg::Value(_) => [b"v".as_slice(), e.as_ref()],
                    Arg::Dep(k) => [b"d".as_slice(), k.as_str().as_bytes()],
                }),
            )
        }
        None => Key::random(task.name(), fastrand::u128(..)),
    };
    let spec = TaskSpec { key, func: Arc::from(task.id()), args, options: options.task_options() };
    Ok((spec, holds))
}

//! Message types, one enum per direction of each kind of connection.

use super::Payload;
use crate::error::TaskFailure;
use crate::graph::{Key, TaskSpec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// First message on every connection, from the connecting side.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`super::MAGIC`].
    pub magic: String,
    /// The sender's [`super::PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The sender's build (crate version).
    pub build: String,
    /// Who is connecting.
    pub role: Role,
    /// The cluster token, when the cluster requires one.
    #[serde(default)]
    pub token: Option<String>,
}

/// The role of a connecting peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Role {
    /// A client connecting to the scheduler.
    Client {
        /// A name for logs.
        name: String,
    },
    /// A worker registering with the scheduler.
    Worker(WorkerHello),
    /// A worker or client connecting to a worker's data port.
    Peer,
}

/// What a worker tells the scheduler about itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerHello {
    /// Worker name, unique in the cluster (defaults to its address).
    pub name: String,
    /// Address of the worker's data port.
    pub data_addr: String,
    /// Number of task slots.
    pub nthreads: u32,
    /// Ids of the task functions this worker can run.
    pub catalog: Vec<Arc<str>>,
    /// Abstract resources it offers (`--resources GPU=2`), name and total.
    #[serde(default)]
    pub resources: Vec<(String, f64)>,
}

/// The accepting side's answer to a [`Hello`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted.
    Welcome(Welcome),
    /// Refused, with a reason meant for a human.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Details of an accepted connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Welcome {
    /// The accepting side's protocol version.
    pub protocol: u32,
    /// The accepting side's build.
    pub build: String,
    /// The id given to the connecting client or worker.
    pub id: u64,
    /// Workers known at this time.
    pub workers: Vec<WorkerInfo>,
    /// To a worker joining over TLS: the cluster certificate its data port serves.
    #[serde(default)]
    pub tls_identity: Option<TlsIdentity>,
}

/// A TLS certificate chain and private key, in PEM.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TlsIdentity {
    /// The certificate chain.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity(<certificate and key>)")
    }
}

/// A worker as clients and other workers see it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Scheduler-assigned id.
    pub id: u64,
    /// Worker name.
    pub name: String,
    /// Address of its data port.
    pub data_addr: String,
    /// Number of task slots.
    pub nthreads: u32,
    /// Abstract resources it offers, name and total.
    #[serde(default)]
    pub resources: Vec<(String, f64)>,
    /// Resident memory of its process in bytes, as last reported with its
    /// heartbeat (0 until the first report, or where it cannot be measured).
    #[serde(default)]
    pub memory: u64,
    /// Bytes of task results it holds, as the scheduler counts them.
    #[serde(default)]
    pub managed_bytes: u64,
    /// Its memory limit in bytes (0: none), as last reported.
    #[serde(default)]
    pub memory_limit: u64,
    /// Bytes of results it holds in memory, as it last reported.
    #[serde(default)]
    pub managed_in_memory: u64,
    /// Bytes of results it spilled to disk, as it last reported.
    #[serde(default)]
    pub spilled_bytes: u64,
    /// Number of results it spilled to disk, as it last reported.
    #[serde(default)]
    pub spilled_keys: u64,
    /// It is paused: its memory is above the pause threshold, so it starts
    /// no task and the scheduler assigns it none.
    #[serde(default)]
    pub paused: bool,
}

impl WorkerInfo {
    /// Process memory not accounted for by results held in memory: the
    /// runtime, running tasks' working memory, allocator slack.
    ///
    /// ```
    /// let w = rudask_core::protocol::WorkerInfo {
    ///     memory: 100,
    ///     managed_in_memory: 30,
    ///     ..Default::default()
    /// };
    /// assert_eq!(w.unmanaged_memory(), 70);
    /// ```
    pub fn unmanaged_memory(&self) -> u64 {
        self.memory.saturating_sub(self.managed_in_memory)
    }
}

/// Client → scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientMsg {
    /// New tasks; the client wants the keys in `wanted`.
    UpdateGraph {
        /// Task specifications, dependencies before dependents is not required.
        tasks: Vec<TaskSpec>,
        /// Keys the client holds futures for.
        wanted: Vec<Key>,
    },
    /// The client holds futures for these existing keys again.
    Want {
        /// Keys.
        keys: Vec<Key>,
    },
    /// The client dropped its last future of these keys.
    Release {
        /// Keys.
        keys: Vec<Key>,
    },
    /// Cancel these keys for every client that wants them.
    Cancel {
        /// Keys.
        keys: Vec<Key>,
    },
    /// The client placed data on workers (scatter); the scheduler now tracks it.
    UpdateData {
        /// Each key, its size and the workers that hold it.
        items: Vec<ScatteredKey>,
    },
    /// A question that gets exactly one [`ToClient::Reply`] with the same id.
    Request {
        /// Request id, echoed in the reply.
        id: u64,
        /// The question.
        req: Request,
    },
    /// The client leaves.
    Close,
    /// Compute these erred keys again, with their erred dependencies.
    Retry {
        /// Keys.
        keys: Vec<Key>,
    },
    /// Run these keys to completion even if every client releases them.
    FireAndForget {
        /// Keys.
        keys: Vec<Key>,
    },
}

/// A client's question to the scheduler (see [`ClientMsg::Request`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// A [`SchedulerInfo`] snapshot.
    Info {
        /// Keys whose state to report.
        keys: Vec<Key>,
    },
    /// Which workers hold each of these keys.
    WhoHas {
        /// Keys.
        keys: Vec<Key>,
    },
    /// Which keys each worker holds.
    HasWhat,
    /// Copy each key's data to `n` workers in total (all workers if fewer);
    /// answered when the copies are made.
    Replicate {
        /// Keys, all in memory.
        keys: Vec<Key>,
        /// Wanted number of copies of each key.
        n: u32,
    },
    /// Move data between workers so that each holds about the same number of
    /// bytes; answered when the moves are done.
    Rebalance {
        /// Only move these keys (`None`: any key in memory).
        keys: Option<Vec<Key>>,
    },
    /// Per-function counts and run times of finished tasks.
    Profile,
    /// Run a registered function on workers, outside the task graph;
    /// answered by [`Reply::Run`] once every chosen worker answered or left.
    Run {
        /// Names (or data addresses) of the workers to run on; `None`: all.
        workers: Option<Vec<String>>,
        /// Registered function id.
        func: Arc<str>,
        /// Encoded arguments.
        args: Vec<Payload>,
    },
    /// Run a registered function in the scheduler's process; answered by
    /// [`Reply::RunOnScheduler`].
    RunOnScheduler {
        /// Registered function id.
        func: Arc<str>,
        /// Encoded arguments.
        args: Vec<Payload>,
    },
    /// Forget every task, restart every worker; answered once as many
    /// workers as before are connected again.
    Restart,
    /// Stop the scheduler and every worker.
    Shutdown,
    /// Answered once at least `n` workers are connected.
    WaitForWorkers {
        /// Number of workers.
        n: usize,
    },
    /// Keep a file and write it into every worker's local directory, now
    /// and on every worker that joins later.
    UploadFile {
        /// File name (no directories).
        name: String,
        /// Contents.
        data: Payload,
    },
    /// Record an event on a topic and pass it to the topic's subscribers.
    LogEvent {
        /// Topic.
        topic: String,
        /// Seconds since the Unix epoch, from the logging client's clock.
        time: f64,
        /// Encoded value.
        data: Payload,
    },
    /// Send this client every new event of `topic`.
    Subscribe {
        /// Topic.
        topic: String,
    },
    /// Stop sending this client the events of `topic`.
    Unsubscribe {
        /// Topic.
        topic: String,
    },
    /// The recorded events of a topic, answered by [`Reply::Events`].
    GetEvents {
        /// Topic.
        topic: String,
    },
    /// A coordination primitive operation, answered by [`Reply::Coord`].
    Coord(super::CoordRequest),
    /// Build the scheduler plugin registered under `name` in the scheduler's
    /// binary from `config` (JSON), start it and keep it, replacing one of the
    /// same name; answered once started, or with its start error.
    RegisterSchedulerPlugin {
        /// Registered plugin name.
        name: String,
        /// JSON configuration.
        config: String,
    },
    /// Close and remove the scheduler plugin `name`.
    UnregisterSchedulerPlugin {
        /// Plugin name.
        name: String,
    },
    /// Set up worker plugin `name` from `config` (JSON) on every worker, now
    /// and on every worker that joins later; answered once every worker set
    /// it up, or with the first worker's error (the plugin is then removed).
    RegisterWorkerPlugin {
        /// Registered plugin name (in the workers' binary).
        name: String,
        /// JSON configuration.
        config: String,
    },
    /// Tear down and forget worker plugin `name` on every worker.
    UnregisterWorkerPlugin {
        /// Plugin name.
        name: String,
    },
    /// Ask the scheduler plugin `name` a question; answered by [`Reply::PluginQuery`].
    PluginQuery {
        /// Plugin name.
        name: String,
        /// The question, JSON.
        query: String,
    },
    /// Publish datasets, all or none: a name taken by another dataset fails
    /// the request unless `override_existing`.
    PublishDatasets {
        /// Names and what they name.
        items: Vec<(String, super::Publication)>,
        /// Replace datasets of the same names.
        override_existing: bool,
        /// The publisher's clock, seconds since the Unix epoch.
        time: f64,
    },
    /// Remove a dataset (its keys are released, its files deleted).
    UnpublishDataset {
        /// The name.
        name: String,
    },
    /// Describe every dataset; answered by [`Reply::Datasets`].
    ListDatasets,
    /// A dataset; answered by [`Reply::Dataset`], or [`Reply::NoDataset`]
    /// when there is none of that name and `wait` is false. With `wait`, the
    /// answer comes once the name is published.
    GetDataset {
        /// The name.
        name: String,
        /// Wait for the name to be published.
        wait: bool,
    },
}

/// The scheduler's answer to a [`Request`], variant for variant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The request was carried out; there is nothing else to say.
    Done,
    /// Answer to [`Request::Info`].
    Info(SchedulerInfo),
    /// Answer to [`Request::WhoHas`]: each key and the names of the workers holding it.
    WhoHas(Vec<(Key, Vec<String>)>),
    /// Answer to [`Request::HasWhat`]: each worker's name and the keys it holds.
    HasWhat(Vec<(String, Vec<Key>)>),
    /// Answer to [`Request::Profile`].
    Profile(super::Profile),
    /// Answer to [`Request::Run`]: each worker's name and outcome.
    Run(Vec<(String, Result<Payload, TaskFailure>)>),
    /// Answer to [`Request::RunOnScheduler`].
    RunOnScheduler(Result<Payload, TaskFailure>),
    /// Answer to [`Request::GetEvents`]: time and value of each event, oldest first.
    Events(Vec<(f64, Payload)>),
    /// Answer to [`Request::Coord`].
    Coord(super::CoordReply),
    /// Answer to [`Request::PluginQuery`]: the plugin's answer, JSON.
    PluginQuery(String),
    /// Answer to [`Request::GetDataset`]. The dataset holds its keys (and
    /// has started loading those that were only on disk); the getter then
    /// wants them like any key.
    Dataset(super::Publication),
    /// Answer to [`Request::GetDataset`] for a name that is not published:
    /// the names that are.
    NoDataset(Vec<String>),
    /// Answer to [`Request::ListDatasets`].
    Datasets(Vec<super::DatasetInfo>),
}

/// Why the scheduler could not answer a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestError {
    /// What kind of failure.
    pub kind: RequestErrorKind,
    /// What happened and what to do, for a human.
    pub message: String,
}

/// Kinds of [`RequestError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestErrorKind {
    /// The request itself is wrong (unknown name, bad value).
    InvalidArgument,
    /// The request was valid but could not be carried out.
    Failed,
    /// A dataset of that name exists (publishing without override).
    Exists,
}

impl RequestError {
    /// An error of `kind` with a message.
    pub fn new(kind: RequestErrorKind, message: impl Into<String>) -> Self {
        RequestError { kind, message: message.into() }
    }
}

/// A snapshot of the scheduler's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SchedulerInfo {
    /// Connected workers.
    pub workers: Vec<WorkerInfo>,
    /// Tasks the scheduler knows about.
    pub tasks: usize,
    /// Connected clients.
    pub clients: usize,
    /// State of each requested key (`None`: unknown, i.e. forgotten or never submitted).
    pub key_states: Vec<Option<String>>,
    /// Coordination primitives that hold state (queues, variables, locks, ...).
    #[serde(default)]
    pub primitives: Vec<super::PrimitiveInfo>,
    /// Tasks in the no-worker state and why: every requested key in that
    /// state, then others up to [`UNRUNNABLE_REPORTED`] entries in all.
    #[serde(default)]
    pub unrunnable: Vec<Unrunnable>,
    /// How many scheduler plugin hooks failed or panicked so far.
    #[serde(default)]
    pub plugin_failures: u64,
}

/// How many no-worker tasks a [`SchedulerInfo`] lists beyond the requested keys.
pub const UNRUNNABLE_REPORTED: usize = 100;

/// A task that is ready but waits for a worker that can run it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unrunnable {
    /// The task's key.
    pub key: Key,
    /// Why no connected worker can run it, for a human.
    pub reason: String,
}

/// A key the client placed on workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScatteredKey {
    /// The key.
    pub key: Key,
    /// Size in bytes.
    pub nbytes: u64,
    /// Ids of the workers holding it.
    pub workers: Vec<u64>,
}

/// Scheduler → client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToClient {
    /// A wanted key is in memory.
    KeyInMemory {
        /// The key.
        key: Key,
        /// Size in bytes.
        nbytes: u64,
        /// Workers holding it.
        workers: Vec<u64>,
        /// The value itself when it is small.
        value: Option<Payload>,
    },
    /// A wanted key failed.
    KeyErred {
        /// The key.
        key: Key,
        /// Why.
        failure: TaskFailure,
    },
    /// A wanted key was cancelled.
    KeyCancelled {
        /// The key.
        key: Key,
    },
    /// A worker joined.
    WorkerAdded(WorkerInfo),
    /// A worker left.
    WorkerRemoved {
        /// Its id.
        id: u64,
    },
    /// Answer to [`ClientMsg::Request`].
    Reply {
        /// The request's id.
        id: u64,
        /// The answer, or why there is none.
        reply: Result<Reply, RequestError>,
    },
    /// The cluster was restarted: every key this client wanted is forgotten.
    Restarted,
    /// A new event on a topic this client subscribed to.
    Event {
        /// Topic.
        topic: String,
        /// Seconds since the Unix epoch, from the logging client's clock.
        time: f64,
        /// Encoded value.
        data: Payload,
    },
    /// A message published on a topic, for one subscriber of this client.
    Published {
        /// Subscriber id, as given in the subscription.
        sub: u64,
        /// The message.
        value: super::CoordValue,
    },
}

/// Worker → scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerMsg {
    /// A task finished; its result is held by the worker.
    TaskFinished {
        /// Scheduler's task id.
        task: u64,
        /// Result size in bytes.
        nbytes: u64,
        /// The result itself when it is small, for the clients that want it.
        value: Option<Payload>,
        /// Run time in microseconds.
        duration_us: u64,
    },
    /// A task failed.
    TaskFailed {
        /// Scheduler's task id.
        task: u64,
        /// Why.
        failure: TaskFailure,
    },
    /// A dependency of a task could not be fetched from the worker said to hold it.
    MissingData {
        /// The task that needed it.
        task: u64,
        /// The dependency.
        key: Key,
        /// The worker that did not deliver it.
        worker: u64,
    },
    /// Answer to [`ToWorker::Steal`].
    StealResponse {
        /// Scheduler's task id.
        task: u64,
        /// True when the worker gave the task up.
        stolen: bool,
    },
    /// Liveness signal.
    Heartbeat,
    /// Outcome of fetching one key asked for by [`ToWorker::Acquire`].
    Acquired {
        /// The key.
        key: Key,
        /// Size of the data now held, or `None` when it could not be fetched.
        nbytes: Option<u64>,
    },
    /// Outcome of [`ToWorker::Run`].
    RunResult {
        /// The run's id.
        id: u64,
        /// The function's encoded result, or why there is none.
        result: Result<Payload, TaskFailure>,
    },
    /// A running task seceded: it waits on other tasks and gave its slot back,
    /// so it no longer counts toward the worker's occupancy until it ends.
    LongRunning {
        /// Scheduler's task id.
        task: u64,
    },
    /// Liveness signal with the worker's measurements.
    Metrics {
        /// Resident memory of the worker's process in bytes (0: unknown).
        memory: u64,
    },
    /// Outcome of a [`ToWorker::Plugin`]: `None` when set up, else why not.
    PluginResult {
        /// The registration id.
        id: u64,
        /// The plugin's error.
        error: Option<String>,
    },
    /// Outcome of a [`ToWorker::StoreParts`], one entry per key asked for.
    PartsStored {
        /// The dataset's directory, as sent.
        dir: String,
        /// Each key and its file, or why it could not be written.
        results: Vec<(Key, Result<super::StoredPart, String>)>,
    },
    /// The worker paused (its memory passed the pause threshold) or resumed.
    Paused {
        /// True when paused.
        paused: bool,
    },
    /// The worker's memory, sent with its heartbeat.
    Memory(MemoryReport),
}

/// A worker's memory as it reports it (see [`WorkerMsg::Memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Resident memory of its process in bytes (0: unknown).
    pub process: u64,
    /// Its memory limit in bytes (0: none).
    pub limit: u64,
    /// Bytes of results held in memory.
    pub managed: u64,
    /// Bytes of results spilled to disk.
    pub spilled_bytes: u64,
    /// Number of results spilled to disk.
    pub spilled_keys: u64,
}

/// Where the data of a dependency can be fetched.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DepLocation {
    /// The dependency's key.
    pub key: Key,
    /// Ids of workers holding it.
    pub workers: Vec<u64>,
}

/// A task sent to a worker to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComputeTask {
    /// Scheduler's task id (echoed in replies).
    pub task: u64,
    /// The task; its `Dep` arguments refer to `deps`.
    pub spec: TaskSpec,
    /// Where each dependency lives.
    pub deps: Vec<DepLocation>,
    /// Global order: larger runs first.
    pub order: crate::graph::Order,
}

/// Scheduler → worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run a task.
    Compute(Box<ComputeTask>),
    /// Drop these keys: their data, and their tasks if still pending.
    Free {
        /// Keys.
        keys: Vec<Key>,
    },
    /// Give a not-yet-started task back so another worker can run it.
    Steal {
        /// Scheduler's task id.
        task: u64,
    },
    /// A worker joined.
    WorkerAdded(WorkerInfo),
    /// A worker left.
    WorkerRemoved {
        /// Its id.
        id: u64,
    },
    /// Stop.
    Shutdown,
    /// Fetch these keys from the given workers and keep them; each key is
    /// answered with one [`WorkerMsg::Acquired`] (replicate, rebalance).
    Acquire {
        /// Each key and the workers to fetch it from (first known one is used).
        keys: Vec<DepLocation>,
    },
    /// Run a registered function outside the task graph; answer with
    /// [`WorkerMsg::RunResult`].
    Run {
        /// Run id, echoed.
        id: u64,
        /// Registered function id.
        func: Arc<str>,
        /// Encoded arguments.
        args: Vec<Payload>,
    },
    /// Write a file into the worker's local directory.
    File {
        /// File name (no directories).
        name: String,
        /// Contents.
        data: Payload,
    },
    /// Drop all data and tasks and register again as a fresh worker (a
    /// worker process replaces itself with a new process of its binary).
    Restart,
    /// Build, set up and keep worker plugin `name` from `config` (JSON),
    /// replacing one of the same name; `None` removes it. The worker answers
    /// with [`WorkerMsg::PluginResult`] carrying the same `id`.
    Plugin {
        /// Registration id (0: no answer awaited).
        id: u64,
        /// Registered plugin name.
        name: String,
        /// JSON configuration, or `None` to remove the plugin.
        config: Option<String>,
    },
    /// Write these keys' data to files of a published dataset, atomically,
    /// and answer with [`WorkerMsg::PartsStored`].
    StoreParts {
        /// The dataset store's directory (shared with the scheduler's host).
        store: String,
        /// The dataset's directory inside it.
        dir: String,
        /// Each key and its file name.
        parts: Vec<(Key, String)>,
    },
}

/// Request to a worker's data port.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Send these keys' data.
    GetData {
        /// Request id, echoed.
        id: u64,
        /// Keys.
        keys: Vec<Key>,
    },
    /// Store this data.
    PutData {
        /// Request id, echoed.
        id: u64,
        /// Keys and values.
        items: Vec<(Key, Payload)>,
    },
    /// Call a method of an actor hosted by this worker; answered by
    /// [`PeerResponse::ActorReply`] or [`PeerResponse::NoSuchActor`].
    ActorCall {
        /// Request id, echoed.
        id: u64,
        /// The actor's id.
        actor: u64,
        /// Index of the method in the actor's method table (attribute
        /// reads have the high bit set).
        method: u32,
        /// Encoded arguments.
        args: Vec<Payload>,
    },
}

/// Answer from a worker's data port.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    /// Data for [`PeerRequest::GetData`]; `None` for keys the worker does not hold.
    Data {
        /// Request id.
        id: u64,
        /// Keys and values.
        items: Vec<(Key, Option<Payload>)>,
    },
    /// [`PeerRequest::PutData`] is stored.
    PutAck {
        /// Request id.
        id: u64,
    },
    /// Outcome of [`PeerRequest::ActorCall`].
    ActorReply {
        /// Request id.
        id: u64,
        /// The method's encoded result, or why there is none.
        result: Result<Payload, TaskFailure>,
    },
    /// [`PeerRequest::ActorCall`] named an actor this worker does not host
    /// (freed, or lost in a restart).
    NoSuchActor {
        /// Request id.
        id: u64,
    },
}

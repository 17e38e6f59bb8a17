//! The worker driver: connects to the scheduler, serves its data port, runs
//! tasks through its executor, fetches dependencies from peers, and feeds
//! all of it to the sans-IO [`rudask_core::worker::Worker`] from one loop.

use super::conn::{self, BUILD};
use super::executor::{Completion, Executor};
use super::memory_limit::{MemoryLimit, MemoryThresholds};
use super::monitor::{self, Monitor};
use super::peer::{self, LocalRequest, PeerPool, PeerReply};
use super::scheduler::SchedulerHandle;
use super::slots::SlotEvent;
use super::Uplink;
use crate::context::{SchedulerLink, WorkerContext};
use crate::error::{Error, Result};
use rudask_core::protocol::{
    HelloReply, MemoryReport, PeerRequest, PeerResponse, Role, ToWorker, Welcome, WorkerHello,
    WorkerMsg, PROTOCOL_VERSION,
};
use rudask_core::registry::Catalog;
use rudask_core::worker::{Outbox, Worker};
use rudask_core::{Key, Payload};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Scheduler address (`tcp://host:port`).
    pub scheduler: String,
    /// Task slots.
    pub nthreads: usize,
    /// Worker name (defaults to its data address).
    pub name: Option<String>,
    /// Interface the data port listens on.
    pub host: String,
    /// How often a heartbeat is sent.
    pub heartbeat: Duration,
    /// Abstract resources offered to tasks that ask for them, name and total
    /// (`("GPU", 2.0)`); see [`crate::TaskExt::resources`].
    pub resources: Vec<(String, f64)>,
    /// Plugins set up when the worker starts (see [`WorkerOptions::plugin`]).
    pub plugins: crate::plugin::WorkerPlugins,
    /// How much memory the worker may use (default [`MemoryLimit::Auto`]:
    /// all of this machine's for a lone worker process).
    pub memory_limit: MemoryLimit,
    /// What the worker does as memory nears the limit (default dask's
    /// 0.6 / 0.7 / 0.8 / 0.95).
    pub memory_thresholds: MemoryThresholds,
    /// Where [`run`] serves this worker's Prometheus `/metrics`
    /// (`host:port`, port 0 for any free one); `None` (the default) serves none.
    pub metrics: Option<String>,
    /// Token and CA of the cluster (default: none, for insecure clusters;
    /// `rudask worker` fills them from its arguments and environment).
    pub credentials: crate::Credentials,
    /// Certificate chain and key (PEM files) the data port serves under TLS,
    /// instead of the cluster certificate the scheduler hands out.
    pub tls_identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl WorkerOptions {
    /// Adds a plugin; each worker started with these options gets a clone of it.
    ///
    /// ```
    /// use rudask::plugin::WorkerPlugin;
    /// #[derive(Clone, Debug)]
    /// struct Quiet;
    /// impl WorkerPlugin for Quiet { fn name(&self) -> &str { "quiet" } }
    /// let opts = rudask::WorkerOptions::new("tcp://127.0.0.1:8786").plugin(Quiet);
    /// ```
    pub fn plugin<P: crate::plugin::WorkerPlugin + Clone + Sync>(mut self, plugin: P) -> Self {
        self.plugins.add(plugin);
        self
    }

    /// Options for a worker of `scheduler` with one slot per core.
    ///
    /// ```
    /// let o = rudask::WorkerOptions::new("tcp://127.0.0.1:8786");
    /// assert!(o.nthreads >= 1);
    /// ```
    pub fn new(scheduler: impl Into<String>) -> Self {
        WorkerOptions {
            scheduler: scheduler.into(),
            nthreads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            name: None,
            host: "127.0.0.1".into(),
            heartbeat: Duration::from_secs(1),
            resources: Vec::new(),
            plugins: Default::default(),
            memory_limit: MemoryLimit::Auto,
            memory_thresholds: MemoryThresholds::default(),
            metrics: None,
            credentials: Default::default(),
            tls_identity: None,
        }
    }
}

enum Event {
    Sched(ToWorker),
    SchedGone,
    Fetched {
        from: u64,
        items: Vec<(Key, Option<Payload>)>,
    },
    FetchFailed {
        from: u64,
        keys: Vec<Key>,
    },
    RunDone {
        id: u64,
        result: rudask_core::registry::TaskResult,
    },
    PartsStored {
        dir: String,
        results: Vec<(Key, Result<rudask_core::protocol::StoredPart, String>)>,
    },
}

/// Why a worker's event loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// The scheduler is gone or told the worker to stop.
    Stop,
    /// The scheduler restarted the cluster: start afresh.
    Restart,
}

fn hello(
    name: String,
    data_addr: String,
    nthreads: usize,
    resources: Vec<(String, f64)>,
) -> Result<WorkerHello> {
    rudask_core::graph::validate_resources(&resources, "the worker was given")
        .map_err(Error::InvalidArgument)?;
    let nthreads = nthreads as u32;
    Ok(WorkerHello { name, data_addr, nthreads, catalog: Catalog::global().ids(), resources })
}

/// Runs a worker connected over TCP until the scheduler goes away or tells it
/// to stop. When the cluster is restarted (`Client::restart`), the process
/// replaces itself with a fresh run of the same executable and arguments
/// (same pid, same environment); this returns only if that fails.
///
/// ```no_run
/// # async fn demo() -> rudask::Result<()> {
/// rudask::runtime::worker::run(rudask::WorkerOptions::new("tcp://127.0.0.1:8786")).await
/// # }
/// ```
pub async fn run(opts: WorkerOptions) -> Result<()> {
    let listener = TcpListener::bind((opts.host.as_str(), 0))
        .await
        .map_err(|e| Error::Io(format!("could not open a data port on {}: {e}", opts.host)))?;
    let security = opts.credentials.security()?;
    let tls = conn::uses_tls(&opts.scheduler, &security);
    let scheme = if tls { "tls" } else { "tcp" };
    let data_addr = format!("{scheme}://{}", listener.local_addr()?);
    let name = opts.name.clone().unwrap_or_else(|| data_addr.clone());
    let hello = hello(name.clone(), data_addr.clone(), opts.nthreads, opts.resources.clone())?;
    // Plugins are set up after the local directory exists, so they may fill it.
    let local_dir = LocalDir::create(&name)
        .map_err(|e| Error::Io(format!("could not create the worker's local directory: {e}")))?;
    let mut plugins = opts
        .plugins
        .start(&rudask_core::plugin::WorkerSetup { name: &name, local_dir: &local_dir.0 })?;
    let metrics = match &opts.metrics {
        Some(addr) => Some(super::dashboard::serve_worker_metrics(addr)?),
        None => None,
    };
    let (reader, w, mut welcome) =
        conn::connect(&opts.scheduler, Role::Worker(hello), &security).await?;
    let data_security = if tls {
        let identity = match (&opts.tls_identity, welcome.tls_identity.take()) {
            (Some((cert, key)), _) => crate::security::identity_from_files(cert, key)?,
            (None, Some(identity)) => identity,
            (None, None) => {
                return Err(Error::Refused {
                    addr: opts.scheduler.clone(),
                    reason: "the scheduler handed out no certificate for the worker's data port; \
                             give the worker --tls-cert and --tls-key"
                        .into(),
                })
            }
        };
        security.clone().with_identity(&identity)?
    } else {
        // Plain TCP: peers never send the token in clear text.
        crate::security::Security::default()
    };
    crate::security::set_ambient(&security);
    let (events, rx) = mpsc::unbounded_channel();
    let (peer_tx, peer_rx) = mpsc::unbounded_channel();
    tokio::spawn(serve_data_port(listener, peer_tx, data_security));
    let sched_events = events.clone();
    let gone = events.clone();
    conn::spawn_reader::<ToWorker, _, _>(
        reader,
        move |m| sched_events.send(Event::Sched(m)).is_ok(),
        move |err| {
            if let Some(e) = err {
                tracing::warn!(error = %e, "scheduler connection failed");
            }
            let _ = gone.send(Event::SchedGone);
        },
    );
    tracing::info!(%name, %data_addr, scheduler = %opts.scheduler, "worker connected");
    let mut thresholds = opts.memory_thresholds;
    if !super::nanny::is_child() {
        // Exiting helps only when a nanny starts a fresh worker.
        thresholds.terminate = None;
    }
    let memory =
        opts.memory_limit.resolve(1).map(|limit| Monitor { limit, thresholds, own_process: true });
    if let Some(m) = &memory {
        tracing::info!(%name, limit_mib = m.limit >> 20, "memory limit");
    }
    if let Some((url, _)) = &metrics {
        tracing::info!(%name, %url, "worker metrics served");
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "rudask worker metrics at {url}");
    }
    let setup = Setup {
        nthreads: opts.nthreads,
        name: &name,
        data_addr: &data_addr,
        heartbeat: opts.heartbeat,
        in_process: false,
        scheduler: SchedulerLink::Tcp(opts.scheduler.clone(), security),
        resources: opts.resources,
        plugins: &mut plugins,
        local_dir,
        memory,
    };
    let exit =
        event_loop(Uplink::Tcp(conn::spawn_writer(w)), welcome, setup, events, rx, peer_rx).await;
    super::actors::drop_worker(&name);
    plugins.teardown();
    if let Some((_, server)) = metrics {
        server.abort();
    }
    if exit == Exit::Restart {
        tracing::info!(%name, "restarting: replacing this process with a fresh run of its binary");
        let e = super::admin::reexec();
        return Err(Error::Io(format!("could not restart the worker process: {e}")));
    }
    Ok(())
}

/// Starts a worker inside this process, joined to `scheduler` through
/// channels. On a restart it drops everything and joins again.
pub(crate) async fn start_local(
    scheduler: &SchedulerHandle,
    name: String,
    nthreads: usize,
    resources: Vec<(String, f64)>,
    memory_limit: Option<u64>,
) -> Result<()> {
    let memory = memory_limit.map(|limit| Monitor {
        limit,
        thresholds: MemoryThresholds::default(),
        own_process: false,
    });
    let mut joined = join_local(scheduler, &name, nthreads, &resources).await?;
    let scheduler = scheduler.clone();
    tokio::spawn(async move {
        loop {
            let LocalJoin { uplink, welcome, events, rx, peer_rx, data_addr } = joined;
            let heartbeat = Duration::from_secs(1);
            let link = SchedulerLink::Local(scheduler.clone());
            let local_dir = match LocalDir::create(&name) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(worker = %name, error = %e, "could not create the worker's local directory");
                    return;
                }
            };
            let setup = Setup {
                nthreads,
                name: &name,
                data_addr: &data_addr,
                heartbeat,
                in_process: true,
                scheduler: link,
                resources: resources.clone(),
                plugins: &mut Default::default(),
                local_dir,
                memory,
            };
            let exit = event_loop(uplink, welcome, setup, events, rx, peer_rx).await;
            peer::unregister_local(&data_addr);
            super::actors::drop_worker(&name);
            if exit == Exit::Stop {
                return;
            }
            joined = match join_local(&scheduler, &name, nthreads, &resources).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(worker = %name, error = %e, "could not rejoin after a restart");
                    return;
                }
            };
        }
    });
    Ok(())
}

/// An in-process worker registered with its scheduler, before its loop runs.
struct LocalJoin {
    uplink: Uplink<WorkerMsg>,
    welcome: Welcome,
    events: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    peer_rx: mpsc::UnboundedReceiver<LocalRequest>,
    data_addr: String,
}

async fn join_local(
    scheduler: &SchedulerHandle,
    name: &str,
    nthreads: usize,
    resources: &[(String, f64)],
) -> Result<LocalJoin> {
    let data_addr = format!("inproc://{name}-{}", fastrand::u64(..));
    let hello = hello(name.to_string(), data_addr.clone(), nthreads, resources.to_vec())?;
    let (uplink, mut sched_rx, welcome) = scheduler.join_worker_local(hello).await?;
    let (events, rx) = mpsc::unbounded_channel();
    let (peer_tx, peer_rx) = mpsc::unbounded_channel();
    peer::register_local(data_addr.clone(), peer_tx);
    let forward = events.clone();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while sched_rx.recv_many(&mut batch, 1024).await > 0 {
            for m in batch.drain(..) {
                if forward.send(Event::Sched(m)).is_err() {
                    return;
                }
            }
        }
        let _ = forward.send(Event::SchedGone);
    });
    Ok(LocalJoin { uplink, welcome, events, rx, peer_rx, data_addr })
}

async fn serve_data_port(
    listener: TcpListener,
    requests: mpsc::UnboundedSender<LocalRequest>,
    security: crate::security::Security,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let conn_requests = requests.clone();
        let security = security.clone();
        tokio::spawn(async move {
            let requests = conn_requests;
            let (hello, reader, mut w) = match conn::accept(stream, &security).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "data connection rejected");
                    return;
                }
            };
            if !matches!(hello.role, Role::Peer) {
                let reason =
                    "this is a worker's data port; clients and workers connect to the scheduler"
                        .to_string();
                let _ = conn::reply(&mut w, &HelloReply::Refused { reason }).await;
                return;
            }
            let welcome = Welcome {
                protocol: PROTOCOL_VERSION,
                build: BUILD.to_string(),
                id: 0,
                workers: Vec::new(),
                tls_identity: None,
            };
            if conn::reply(&mut w, &HelloReply::Welcome(welcome)).await.is_err() {
                return;
            }
            let out = conn::spawn_writer::<PeerResponse>(w);
            conn::spawn_reader::<PeerRequest, _, _>(
                reader,
                move |req| match req {
                    // Served right here, not by the event loop: a call that
                    // finds its actor idle runs on this reader, without a hop.
                    PeerRequest::ActorCall { id, actor, method, args } => {
                        super::actors::serve(id, actor, method, args, PeerReply::Conn(out.clone()));
                        true
                    }
                    req => requests.send((req, PeerReply::Conn(out.clone()))).is_ok(),
                },
                |_| {},
            );
        });
        if requests.is_closed() {
            return;
        }
    }
}

/// How a worker's event loop runs.
struct Setup<'a> {
    nthreads: usize,
    name: &'a str,
    /// Where peers and clients reach this worker's data (and actors).
    data_addr: &'a str,
    heartbeat: Duration,
    /// Scheduler, clients and peers live in this process: results stay
    /// in memory as values instead of being encoded.
    in_process: bool,
    /// How tasks reach the scheduler (for clients made inside tasks).
    scheduler: SchedulerLink,
    /// Resources offered to tasks, name and total.
    resources: Vec<(String, f64)>,
    /// Plugins told about every task run.
    plugins: &'a mut crate::plugin::ActiveWorkerPlugins,
    /// The worker's scratch directory, removed when the event loop ends.
    local_dir: LocalDir,
    /// Its memory limit and thresholds; `None`: no limit.
    memory: Option<Monitor>,
}

async fn event_loop(
    uplink: Uplink<WorkerMsg>,
    welcome: Welcome,
    setup: Setup<'_>,
    events: mpsc::UnboundedSender<Event>,
    mut rx: mpsc::UnboundedReceiver<Event>,
    mut peer_rx: mpsc::UnboundedReceiver<LocalRequest>,
) -> Exit {
    let Setup {
        nthreads,
        name,
        data_addr,
        heartbeat,
        in_process,
        scheduler,
        resources,
        plugins,
        local_dir,
        memory,
    } = setup;
    let peers = Arc::new(match &scheduler {
        SchedulerLink::Tcp(_, security) => PeerPool::new(security.clone()),
        SchedulerLink::Local(_) => PeerPool::default(),
    });
    let (slot_events, mut slot_rx) = mpsc::unbounded_channel::<SlotEvent>();
    let ctx = Arc::new(WorkerContext {
        name: name.to_string(),
        data_addr: data_addr.to_string(),
        scheduler,
        local_dir: local_dir.0.clone(),
        runtime: tokio::runtime::Handle::current(),
        slot_events,
        client: Default::default(),
    });
    let mut worker = Worker::new(welcome.id, nthreads);
    worker.set_resources(resources);
    worker.set_track_transitions(!plugins.is_empty());
    worker.store().set_backend(Box::new(super::spill::FileSpill::new(local_dir.0.join("spill"))));
    let mut monitor_ticker = tokio::time::interval(monitor::INTERVAL);
    monitor_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for w in welcome.workers {
        worker.add_peer(w.id, w.data_addr);
    }
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<Completion>>();
    let mut executor = Executor::new(nthreads, ctx, done_tx, !in_process);
    let mut out = Outbox::default();
    let mut ticker = tokio::time::interval(heartbeat);
    let mut batch = Vec::with_capacity(256);
    let mut done = Vec::with_capacity(256);
    let mut requests = Vec::with_capacity(64);
    loop {
        tokio::select! {
            biased;
            Some(ev) = slot_rx.recv() => match ev {
                SlotEvent::Seceded { task, func } => {
                    executor.pin(func);
                    worker.on_secede(task, &mut out);
                }
                SlotEvent::Rejoined { task } => worker.on_rejoin(task),
                SlotEvent::NeedsThread { func } => executor.pin(func),
            },
            n = done_rx.recv_many(&mut done, 1024) => {
                if n == 0 { return Exit::Stop; }
                for (task, result, us, func) in done.drain(..).flatten() {
                    if !plugins.is_empty() {
                        plugins.each("task_finished", |p| p.task_finished(func, result.is_ok(), us));
                    }
                    executor.observe(func, us);
                    worker.on_task_done(task, result, us, &mut out);
                }
            }
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 { return Exit::Stop; }
                for ev in batch.drain(..) {
                    match ev {
                        Event::Sched(ToWorker::Shutdown) | Event::SchedGone => {
                            tracing::info!(worker = %name, "scheduler gone; worker stopping");
                            return Exit::Stop;
                        }
                        Event::Sched(ToWorker::Restart) => {
                            tracing::info!(worker = %name, "the cluster is restarting");
                            return Exit::Restart;
                        }
                        Event::Sched(ToWorker::Run { id, func, args }) => {
                            let events = events.clone();
                            let ctx = executor.context().clone();
                            tokio::spawn(async move {
                                let result = super::admin::call(&func, args, Some(ctx)).await;
                                let _ = events.send(Event::RunDone { id, result });
                            });
                        }
                        Event::Sched(ToWorker::File { name: file, data }) => {
                            // Written before the next message is handled, so the
                            // tasks and runs sent after an upload see the file.
                            if let Err(e) = super::admin::write_file(&local_dir.0, &file, &data) {
                                tracing::error!(worker = %name, %file, error = %e, "could not write an uploaded file");
                            }
                        }
                        Event::Sched(ToWorker::Plugin { id, name: plugin, config }) => {
                            let me = rudask_core::plugin::WorkerSetup { name, local_dir: &local_dir.0 };
                            let error = plugins.apply(&me, &plugin, config.as_deref()).err();
                            worker.set_track_transitions(!plugins.is_empty());
                            out.to_scheduler.push(WorkerMsg::PluginResult { id, error });
                        }
                        Event::RunDone { id, result } => {
                            out.to_scheduler.push(WorkerMsg::RunResult { id, result });
                        }
                        Event::Sched(ToWorker::StoreParts { store, dir, parts }) => {
                            let keys: Vec<Key> = parts.iter().map(|p| p.0.clone()).collect();
                            let values = worker.get_data(&keys);
                            let events = events.clone();
                            tokio::task::spawn_blocking(move || {
                                let results = parts
                                    .into_iter()
                                    .zip(values)
                                    .map(|((key, file), (_, value))| {
                                        let written = value
                                            .ok_or_else(|| format!("the worker no longer holds {key}"))
                                            .and_then(|v| v.encoded())
                                            .and_then(|bytes| {
                                                super::dataset_store::write_part(&store, &dir, &file, &bytes)
                                            });
                                        (key, written)
                                    })
                                    .collect();
                                let _ = events.send(Event::PartsStored { dir, results });
                            });
                        }
                        Event::PartsStored { dir, results } => {
                            out.to_scheduler.push(WorkerMsg::PartsStored { dir, results });
                        }
                        Event::Sched(m) => {
                            if let ToWorker::Free { keys } = &m {
                                super::actors::free(name, keys);
                            }
                            worker.on_scheduler_message(m, &mut out)
                        }
                        Event::Fetched { from, items } => worker.on_fetched(from, items, &mut out),
                        Event::FetchFailed { from, keys } => worker.on_fetch_failed(from, keys, &mut out),
                    }
                }
            }
            n = peer_rx.recv_many(&mut requests, 64) => {
                if n == 0 { return Exit::Stop; }
                for req in requests.drain(..) {
                    serve_request(&mut worker, req);
                }
            }
            _ = ticker.tick() => {
                let process = super::memory::process_rss();
                super::metrics::worker_heartbeat(&worker, process);
                if !uplink.send(WorkerMsg::Metrics { memory: process }) { return Exit::Stop; }
                let report = memory_report(&mut worker, process, memory.as_ref());
                if !uplink.send(WorkerMsg::Memory(report)) { return Exit::Stop; }
            }
            _ = monitor_ticker.tick(), if memory.is_some() => {
                if let Some(m) = &memory {
                    check_memory(m, &mut worker, &mut out, name, &local_dir);
                }
            }
            () = std::future::ready(()), if !out.executes.is_empty() => {}
        }
        run_tasks(&mut worker, &mut executor, &mut out, plugins);
        for (key, from, to) in out.transitions.drain(..) {
            plugins.each("transition", |p| p.transition(key.as_str(), from, to));
        }
        for m in out.to_scheduler.drain(..) {
            if !uplink.send(m) {
                return Exit::Stop;
            }
        }
        for f in out.fetches.drain(..) {
            let peers = peers.clone();
            let events = events.clone();
            tokio::spawn(async move {
                let ev = match peers.get_data(&f.addr, f.keys.clone()).await {
                    Ok(items) => Event::Fetched { from: f.worker, items },
                    Err(e) => {
                        tracing::warn!(peer = %f.addr, error = %e, "fetching dependencies failed");
                        Event::FetchFailed { from: f.worker, keys: f.keys }
                    }
                };
                let _ = events.send(ev);
            });
        }
    }
}

/// What the worker tells the scheduler about its memory.
fn memory_report(worker: &mut Worker, process: u64, m: Option<&Monitor>) -> MemoryReport {
    let store = worker.store();
    MemoryReport {
        process,
        limit: m.map_or(0, |m| m.limit),
        managed: store.managed(),
        spilled_bytes: store.spilled_bytes(),
        spilled_keys: store.spilled_count() as u64,
    }
}

/// One memory check: spill, pause or resume, or exit for the nanny to
/// restart the worker.
fn check_memory(m: &Monitor, worker: &mut Worker, out: &mut Outbox, name: &str, dir: &LocalDir) {
    let process = if m.own_process { super::memory::process_rss() } else { 0 };
    let d = m.check(worker.store().managed(), process);
    if let Some(to) = d.spill_to {
        let spilled = worker.store().spill_until(to, monitor::SPILL_PER_CHECK);
        if spilled.keys > 0 {
            tracing::debug!(worker = %name, keys = spilled.keys, bytes = spilled.bytes, "spilled to disk");
            super::memory::release_free_memory();
        }
    }
    if let Some(paused) = d.paused.filter(|&p| p != worker.paused()) {
        // The scheduler learns the memory that made it pause along with the pause.
        let report = memory_report(worker, process, Some(m));
        out.to_scheduler.push(WorkerMsg::Memory(report));
        if worker.set_paused(paused, out) {
            let (process, limit) = (process >> 20, m.limit >> 20);
            if paused {
                tracing::warn!(worker = %name, process_mib = process, limit_mib = limit, "memory above the pause threshold: pausing (no new tasks)");
            } else {
                tracing::info!(worker = %name, process_mib = process, limit_mib = limit, "memory back below the pause threshold: resuming");
            }
        }
    }
    if d.terminate {
        tracing::error!(worker = %name, process_mib = process >> 20, limit_mib = m.limit >> 20, "memory above the terminate threshold: exiting so the nanny restarts this worker");
        let _ = std::fs::remove_dir_all(&dir.0);
        std::process::exit(monitor::EXIT_MEMORY);
    }
}

/// A worker's scratch directory under the system's temporary directory,
/// removed when the worker stops.
struct LocalDir(std::path::PathBuf);

impl LocalDir {
    fn create(name: &str) -> std::io::Result<LocalDir> {
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let dir = std::env::temp_dir().join(format!(
            "rudask-worker-{safe}-{}-{:x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(LocalDir(dir))
    }
}

impl Drop for LocalDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How long the event loop runs inline tasks before it serves its sockets.
const INLINE_BUDGET: Duration = Duration::from_micros(500);

/// Starts the tasks the worker released; tiny ones complete inline, which may
/// release more, until the budget is spent. What is left stays in the outbox
/// and the event loop comes back to it after serving ready I/O.
fn run_tasks(
    worker: &mut Worker,
    executor: &mut Executor,
    out: &mut Outbox,
    plugins: &mut crate::plugin::ActiveWorkerPlugins,
) {
    let start = std::time::Instant::now();
    let mut executes = Vec::new();
    while !out.executes.is_empty() {
        executes.append(&mut out.executes);
        let mut completed = Vec::new();
        for e in executes.drain(..) {
            if !plugins.is_empty() {
                plugins.each("task_started", |p| p.task_started(e.key.as_str(), &e.func));
            }
            completed.extend(executor.start(e));
        }
        for (task, result, us, func) in completed {
            if !plugins.is_empty() {
                plugins.each("task_finished", |p| p.task_finished(func, result.is_ok(), us));
            }
            executor.observe(func, us);
            worker.on_task_done(task, result, us, out);
        }
        if start.elapsed() >= INLINE_BUDGET {
            break;
        }
    }
}

fn serve_request(worker: &mut Worker, (req, reply): LocalRequest) {
    match req {
        PeerRequest::GetData { id, keys } => {
            reply.send(PeerResponse::Data { id, items: worker.get_data(&keys) })
        }
        PeerRequest::PutData { id, items } => {
            worker.put_data(items);
            reply.send(PeerResponse::PutAck { id });
        }
        PeerRequest::ActorCall { id, actor, method, args } => {
            super::actors::serve(id, actor, method, args, reply)
        }
    }
}

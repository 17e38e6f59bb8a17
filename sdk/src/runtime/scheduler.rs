//! The scheduler driver: accepts connections, feeds the sans-IO
//! [`rudask_core::scheduler::Scheduler`] from one inbox, and routes its outbox
//! to per-connection writers (or in-process channels).

use super::conn::{self, BUILD};
use super::Uplink;
use crate::error::{Error, Result};
use rudask_core::protocol::{
    ClientMsg, HelloReply, Request, Role, SchedulerInfo, ToClient, ToWorker, Welcome, WorkerHello,
    WorkerInfo, WorkerMsg, PROTOCOL_VERSION,
};
use rudask_core::scheduler::{ClientId, Comm, Scheduler, SchedulerConfig, WireId, WorkerId};
use slotmap::SecondaryMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Everything the scheduler loop reacts to.
#[derive(Debug)]
pub(crate) enum SchedEvent {
    ClientJoin {
        name: String,
        sink: mpsc::UnboundedSender<ToClient>,
        reply: oneshot::Sender<Welcome>,
    },
    Client(ClientId, ClientMsg),
    ClientGone(ClientId),
    WorkerJoin {
        hello: WorkerHello,
        sink: mpsc::UnboundedSender<ToWorker>,
        reply: oneshot::Sender<std::result::Result<Welcome, String>>,
    },
    Worker(WorkerId, WorkerMsg),
    WorkerGone(WorkerId),
    WorkerExited {
        name: String,
        exit_code: Option<i32>,
    },
    Info(oneshot::Sender<SchedulerInfo>),
    Shutdown,
    /// A snapshot for the dashboard, with at most `stream` finished tasks.
    Observe {
        stream: usize,
        reply: oneshot::Sender<rudask_core::scheduler::Observation>,
    },
}

/// Scheduler settings.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Interface to listen on.
    pub host: String,
    /// Port (0 = any free port).
    pub port: u16,
    /// Scheduling rules.
    pub config: SchedulerConfig,
    /// How often workers are checked for missed heartbeats.
    pub tick: Duration,
    /// Run on a thread of its own (the default), where its connections and
    /// state machine share one single-threaded runtime, isolated from the
    /// caller's load. `false` runs it on the caller's runtime, which is faster
    /// when clients live in the same process (their requests then cross no
    /// thread).
    pub dedicated_thread: bool,
    /// Plugins every scheduler started with these options gets (see [`SchedulerOptions::plugin`]).
    pub plugins: crate::plugin::SchedulerPlugins,
    /// Directory of the durable dataset store: published datasets are
    /// written there and restored from there when a scheduler starts over
    /// it. `None` (the default) keeps datasets in memory only.
    pub dataset_store: Option<std::path::PathBuf>,
    /// Where to serve the web dashboard and `/metrics` (`host:port`, port 0
    /// for any free one); `None` (the default) serves none.
    pub dashboard: Option<String>,
    /// TLS and token (default: generated in memory; see [`crate::security`]).
    pub security: crate::SchedulerSecurity,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            host: "127.0.0.1".into(),
            port: 8786,
            config: SchedulerConfig::default(),
            tick: Duration::from_secs(1),
            dedicated_thread: true,
            plugins: Default::default(),
            dataset_store: None,
            dashboard: None,
            security: Default::default(),
        }
    }
}

impl SchedulerOptions {
    /// Adds a plugin; each scheduler started with these options gets a clone of it.
    ///
    /// ```
    /// use rudask::plugin::SchedulerPlugin;
    /// #[derive(Clone, Debug)]
    /// struct Quiet;
    /// impl SchedulerPlugin for Quiet { fn name(&self) -> &str { "quiet" } }
    /// let opts = rudask::SchedulerOptions { port: 0, ..Default::default() }.plugin(Quiet);
    /// ```
    pub fn plugin<P: crate::plugin::SchedulerPlugin + Clone + Sync>(mut self, plugin: P) -> Self {
        self.plugins.add(plugin);
        self
    }
}

/// A running scheduler. Cloning gives another handle to the same scheduler.
///
/// ```no_run
/// # async fn demo() -> rudask::Result<()> {
/// let opts = rudask::SchedulerOptions { port: 0, ..Default::default() };
/// let scheduler = rudask::runtime::scheduler::start(opts).await?;
/// println!("listening at {}", scheduler.address());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    inbox: mpsc::UnboundedSender<SchedEvent>,
    address: String,
    /// Set when the scheduler stops because it was asked to, so the process
    /// can tell a requested stop from a failure.
    stop_requested: Arc<AtomicBool>,
    dashboard: Option<String>,
    /// What clients and workers need to join.
    credentials: crate::Credentials,
    /// The connection file written at start, if any.
    connection_file: Option<std::path::PathBuf>,
}

impl SchedulerHandle {
    /// The address clients and workers connect to (`tls://host:port`, or
    /// `tcp://host:port` when insecure).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The dashboard's URL (`http://host:port/`), when it serves one
    /// (see [`SchedulerOptions::dashboard`]).
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let opts = rudask::SchedulerOptions {
    ///     port: 0,
    ///     dashboard: Some("127.0.0.1:0".into()),
    ///     ..Default::default()
    /// };
    /// let scheduler = rudask::runtime::scheduler::start(opts).await?;
    /// println!("dashboard at {}", scheduler.dashboard_url().unwrap());
    /// # Ok(()) }
    /// ```
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard.as_deref()
    }

    /// The token and CA clients and workers need to join (empty when insecure).
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let scheduler = rudask::runtime::scheduler::start(rudask::SchedulerOptions { port: 0, ..Default::default() }).await?;
    /// let client = rudask::Client::connect_with(scheduler.address(), scheduler.credentials().clone()).await?;
    /// # Ok(()) }
    /// ```
    pub fn credentials(&self) -> &crate::Credentials {
        &self.credentials
    }

    /// The connection file written at start (with a work directory only).
    ///
    /// ```no_run
    /// # async fn demo(scheduler: rudask::SchedulerHandle) {
    /// if let Some(path) = scheduler.connection_file() { println!("{}", path.display()); }
    /// # }
    /// ```
    pub fn connection_file(&self) -> Option<&std::path::Path> {
        self.connection_file.as_deref()
    }

    /// A snapshot of the scheduler's state.
    pub async fn info(&self) -> Result<SchedulerInfo> {
        let (tx, rx) = oneshot::channel();
        self.inbox.send(SchedEvent::Info(tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Stops the scheduler; connections close.
    pub fn shutdown(&self) {
        let _ = self.inbox.send(SchedEvent::Shutdown);
    }

    /// Resolves once the scheduler has stopped (shut down, or failed).
    pub async fn stopped(&self) {
        self.inbox.closed().await;
    }

    /// True once the scheduler stopped because it was asked to
    /// ([`SchedulerHandle::shutdown`] or `Client::shutdown`), not by failure.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Relaxed)
    }

    /// Tells the scheduler that a worker process exited, so its loss is
    /// reported with the exit status.
    pub(crate) fn worker_exited(&self, name: String, exit_code: Option<i32>) {
        let _ = self.inbox.send(SchedEvent::WorkerExited { name, exit_code });
    }

    pub(crate) async fn join_client_local(
        &self,
        name: &str,
    ) -> Result<(Uplink<ClientMsg>, mpsc::UnboundedReceiver<ToClient>, Welcome)> {
        let (sink, rx) = mpsc::unbounded_channel();
        let (reply, welcome) = oneshot::channel();
        self.inbox
            .send(SchedEvent::ClientJoin { name: name.to_string(), sink, reply })
            .map_err(|_| stopped())?;
        let welcome = welcome.await.map_err(|_| stopped())?;
        let uplink = Uplink::Local {
            inbox: self.inbox.clone(),
            wrap: |id, m| SchedEvent::Client(ClientId::from_wire(id), m),
            id: welcome.id,
        };
        Ok((uplink, rx, welcome))
    }

    pub(crate) async fn join_worker_local(
        &self,
        hello: WorkerHello,
    ) -> Result<(Uplink<WorkerMsg>, mpsc::UnboundedReceiver<ToWorker>, Welcome)> {
        let (sink, rx) = mpsc::unbounded_channel();
        let (reply, welcome) = oneshot::channel();
        self.inbox.send(SchedEvent::WorkerJoin { hello, sink, reply }).map_err(|_| stopped())?;
        let welcome = welcome
            .await
            .map_err(|_| stopped())?
            .map_err(|reason| Error::Refused { addr: self.address.clone(), reason })?;
        let uplink = Uplink::Local {
            inbox: self.inbox.clone(),
            wrap: |id, m| SchedEvent::Worker(WorkerId::from_wire(id), m),
            id: welcome.id,
        };
        Ok((uplink, rx, welcome))
    }
}

fn stopped() -> Error {
    Error::Disconnected("the scheduler has stopped".into())
}

/// Starts a scheduler listening on `opts.host:opts.port`, by default on a
/// thread of its own (see [`SchedulerOptions::dedicated_thread`]).
pub async fn start(opts: SchedulerOptions) -> Result<SchedulerHandle> {
    let mut state = Scheduler::new(opts.config.clone());
    let store = match &opts.dataset_store {
        Some(dir) => {
            let store = super::dataset_store::DatasetStore::open(dir)?;
            let records = store.load()?;
            tracing::info!(store = %store.dir(), datasets = records.len(), "dataset store opened");
            state.restore_datasets(store.dir(), records);
            Some(store)
        }
        None => None,
    };
    for make in &opts.plugins.0 {
        let plugin = make()?;
        let name = plugin.name().to_string();
        state.add_plugin(plugin).map_err(|e| {
            Error::InvalidArgument(format!("scheduler plugin {name:?} failed to start: {e}"))
        })?;
    }
    let listener = std::net::TcpListener::bind((opts.host.as_str(), opts.port))
        .map_err(|e| Error::Io(format!("could not listen on {}:{}: {e}", opts.host, opts.port)))?;
    listener.set_nonblocking(true)?;
    let setup = opts.security.setup()?;
    let address = conn::listen_addr(listener.local_addr()?, &setup.security);
    let connection_file = setup.write_connection_file(&address)?;
    let security = setup.security;
    let dashboard = opts.dashboard.as_deref().map(super::dashboard::Dashboard::bind).transpose()?;
    let dashboard_url = dashboard.as_ref().map(|d| d.url().to_string());
    let (inbox, rx) = mpsc::unbounded_channel();
    let dashboard_task = dashboard.map(|d| d.serve(inbox.clone()));
    let accept_inbox = inbox.clone();
    let stop_requested = Arc::new(AtomicBool::new(false));
    let stopping = stop_requested.clone();
    let run = async move {
        match TcpListener::from_std(listener) {
            Ok(listener) => {
                tokio::spawn(accept_loop(listener, accept_inbox, security));
                if let Some(serve) = dashboard_task {
                    tokio::spawn(serve);
                }
                event_loop(rx, state, opts.tick, store, &stopping).await;
            }
            Err(e) => tracing::error!(error = %e, "scheduler could not use its listener"),
        }
    };
    if opts.dedicated_thread {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // The loop runs as a task rather than as the future the thread blocks
        // on: a connection's reader then wakes it by queueing it, whereas
        // waking the blocked-on future costs an extra poll of the sockets
        // (a system call) per message.
        std::thread::Builder::new().name("rudask-scheduler".into()).spawn(move || {
            rt.block_on(async {
                if let Err(e) = tokio::spawn(run).await {
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            })
        })?;
    } else {
        tokio::spawn(run);
    }
    tracing::info!(%address, dashboard = dashboard_url.as_deref(), "scheduler started");
    Ok(SchedulerHandle {
        inbox,
        address,
        stop_requested,
        dashboard: dashboard_url,
        credentials: setup.credentials,
        connection_file,
    })
}

/// Routes the scheduler's outbox. Messages for a worker whose connection is
/// not registered yet (during its own join) wait in `joining`.
#[derive(Default)]
struct ChannelComm {
    clients: SecondaryMap<ClientId, mpsc::UnboundedSender<ToClient>>,
    workers: SecondaryMap<WorkerId, mpsc::UnboundedSender<ToWorker>>,
    joining: Vec<(WorkerId, ToWorker)>,
    store: Option<super::dataset_store::DatasetStore>,
}

impl Comm for ChannelComm {
    fn send_client(&mut self, client: ClientId, msg: ToClient) {
        if let Some(tx) = self.clients.get(client) {
            let _ = tx.send(msg);
        }
    }

    fn send_worker(&mut self, worker: WorkerId, msg: ToWorker) {
        match self.workers.get(worker) {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => self.joining.push((worker, msg)),
        }
    }

    fn catalog(&mut self, change: rudask_core::protocol::CatalogChange) {
        if let Some(store) = &self.store {
            store.apply(change);
        }
    }
}

async fn event_loop(
    mut rx: mpsc::UnboundedReceiver<SchedEvent>,
    mut s: Scheduler,
    tick: Duration,
    store: Option<super::dataset_store::DatasetStore>,
    stopping: &AtomicBool,
) {
    let mut comm = ChannelComm { store, ..Default::default() };
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = Vec::with_capacity(1024);
    // The state machine reads time only from here (priority generations).
    let clock = std::time::Instant::now();
    loop {
        tokio::select! {
            n = rx.recv_many(&mut events, 1024) => {
                if n == 0 {
                    s.close_plugins();
                    return;
                }
                s.set_now(u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX));
                for ev in events.drain(..) {
                    if !handle(&mut s, &mut comm, ev) {
                        return stop(&mut s, &mut comm, stopping);
                    }
                }
            }
            _ = ticker.tick() => {
                s.set_now(u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX));
                for w in s.on_tick(&mut comm) {
                    comm.workers.remove(w);
                }
                if s.stopping() {
                    return stop(&mut s, &mut comm, stopping);
                }
            }
        }
    }
}

/// Stops workers and plugins once the scheduler was asked to stop.
fn stop(s: &mut Scheduler, comm: &mut ChannelComm, stopping: &AtomicBool) {
    for (_, tx) in comm.workers.drain() {
        let _ = tx.send(ToWorker::Shutdown);
    }
    s.close_plugins();
    tracing::info!("scheduler stopped");
    stopping.store(true, Ordering::Relaxed);
}

fn handle(s: &mut Scheduler, comm: &mut ChannelComm, ev: SchedEvent) -> bool {
    match ev {
        SchedEvent::Client(
            c,
            ClientMsg::Request { id, req: Request::RunOnScheduler { func, args } },
        ) => {
            // Off the event loop: the function may block or run for long.
            if let Some(tx) = comm.clients.get(c).cloned() {
                tokio::spawn(async move {
                    let reply = super::admin::run_on_scheduler(func, args).await;
                    let _ = tx.send(ToClient::Reply { id, reply });
                });
            }
        }
        SchedEvent::Client(
            c,
            ClientMsg::Request { id, req: Request::RegisterSchedulerPlugin { name, config } },
        ) => super::plugins::register_scheduler_plugin(s, comm, c, id, &name, &config),
        SchedEvent::Client(c, msg) => {
            let _span = super::span::client_request(c, &msg);
            let restart = matches!(msg, ClientMsg::Request { req: Request::Restart, .. });
            s.on_client_message(c, msg, comm);
            if restart {
                // Every worker was removed: their old connections close once
                // the restart message is written.
                comm.workers.retain(|w, _| s.worker(w).is_some());
            }
            if s.stopping() {
                return false;
            }
        }
        SchedEvent::Worker(w, msg) => s.on_worker_message(w, msg, comm),
        SchedEvent::ClientJoin { name, sink, reply } => {
            let c = s.on_client_connected(&name);
            comm.clients.insert(c, sink);
            let _ = reply.send(welcome(c.to_wire(), s.worker_infos()));
            tracing::debug!(client = %name, "client connected");
        }
        SchedEvent::ClientGone(c) => {
            s.on_client_lost(c, comm);
            comm.clients.remove(c);
        }
        SchedEvent::WorkerJoin { hello, sink, reply } => {
            match s.on_worker_connected(&hello, comm) {
                Ok(w) => {
                    for (to, msg) in std::mem::take(&mut comm.joining) {
                        if to == w {
                            let _ = sink.send(msg);
                        }
                    }
                    comm.workers.insert(w, sink);
                    let _ = reply.send(Ok(welcome(w.to_wire(), s.worker_infos())));
                    tracing::info!(worker = %hello.name, addr = %hello.data_addr, nthreads = hello.nthreads, "worker joined");
                }
                Err(reason) => {
                    tracing::warn!(worker = %hello.name, %reason, "worker refused");
                    let _ = reply.send(Err(reason));
                }
            }
        }
        SchedEvent::WorkerGone(w) => {
            if let Some((_, ws)) = s.workers().find(|(id, _)| *id == w) {
                tracing::warn!(worker = %ws.info.name, "worker connection lost");
            }
            s.on_worker_lost(w, None, comm);
            comm.workers.remove(w);
        }
        SchedEvent::WorkerExited { name, exit_code } => {
            let found = s.workers().find(|(_, ws)| ws.info.name == name).map(|(w, _)| w);
            if let Some(w) = found {
                tracing::warn!(worker = %name, ?exit_code, "worker process exited");
                s.on_worker_lost(w, exit_code, comm);
                comm.workers.remove(w);
            }
        }
        SchedEvent::Info(reply) => {
            let _ = reply.send(s.info(&[]));
        }
        SchedEvent::Shutdown => return false,
        SchedEvent::Observe { stream, reply } => {
            let _ = reply.send(s.observe(stream));
        }
    }
    true
}

fn welcome(id: u64, workers: Vec<WorkerInfo>) -> Welcome {
    Welcome {
        protocol: PROTOCOL_VERSION,
        build: BUILD.to_string(),
        id,
        workers,
        tls_identity: None,
    }
}

async fn accept_loop(
    listener: TcpListener,
    inbox: mpsc::UnboundedSender<SchedEvent>,
    security: crate::security::Security,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let inbox = inbox.clone();
                let security = security.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, inbox, &security).await {
                        tracing::warn!(error = %e, "connection rejected");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if inbox.is_closed() {
            return;
        }
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    inbox: mpsc::UnboundedSender<SchedEvent>,
    security: &crate::security::Security,
) -> Result<()> {
    let (hello, reader, mut w) = conn::accept(stream, security).await?;
    match hello.role {
        Role::Client { name } => {
            let (sink, rx) = mpsc::unbounded_channel();
            let (reply, welcome) = oneshot::channel();
            inbox.send(SchedEvent::ClientJoin { name, sink, reply }).map_err(|_| stopped())?;
            let welcome = welcome.await.map_err(|_| stopped())?;
            let c = ClientId::from_wire(welcome.id);
            let link = Link { reader, w, rx, inbox };
            link.attach(welcome, move |m| SchedEvent::Client(c, m), SchedEvent::ClientGone(c))
                .await?;
        }
        Role::Worker(hello) => {
            let (sink, rx) = mpsc::unbounded_channel();
            let (reply, welcome) = oneshot::channel();
            inbox.send(SchedEvent::WorkerJoin { hello, sink, reply }).map_err(|_| stopped())?;
            match welcome.await.map_err(|_| stopped())? {
                Ok(mut welcome) => {
                    welcome.tls_identity = security.identity.as_deref().cloned();
                    let id = WorkerId::from_wire(welcome.id);
                    let link = Link { reader, w, rx, inbox };
                    let (event, gone) =
                        (move |m| SchedEvent::Worker(id, m), SchedEvent::WorkerGone(id));
                    link.attach(welcome, event, gone).await?;
                }
                Err(reason) => conn::reply(&mut w, &HelloReply::Refused { reason }).await?,
            }
        }
        Role::Peer => {
            let reason =
                "this is a scheduler; data requests go to a worker's data address".to_string();
            conn::reply(&mut w, &HelloReply::Refused { reason }).await?;
        }
    }
    Ok(())
}

/// An accepted connection whose peer has been registered.
struct Link<O> {
    reader: conn::FrameReader,
    w: conn::WriteHalf,
    rx: mpsc::UnboundedReceiver<O>,
    inbox: mpsc::UnboundedSender<SchedEvent>,
}

impl<O: serde::Serialize + rudask_core::protocol::Coalesce + Send + 'static> Link<O> {
    /// Sends the welcome, then pumps outgoing messages from `rx` and incoming
    /// ones (wrapped by `event`) into the inbox until the peer leaves (`gone`).
    async fn attach<M: serde::de::DeserializeOwned + Send + 'static>(
        mut self,
        welcome: Welcome,
        event: impl Fn(M) -> SchedEvent + Send + 'static,
        gone: SchedEvent,
    ) -> Result<()> {
        conn::reply(&mut self.w, &HelloReply::Welcome(welcome)).await?;
        conn::spawn_writer_from(self.w, self.rx);
        let inbox = self.inbox.clone();
        conn::spawn_reader::<M, _, _>(
            self.reader,
            move |m| inbox.send(event(m)).is_ok(),
            move |err| {
                if let Some(e) = err {
                    tracing::warn!(error = %e, "connection failed");
                }
                let _ = self.inbox.send(gone);
            },
        );
        Ok(())
    }
}

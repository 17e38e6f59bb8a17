//! [`LocalCluster`]: a scheduler and workers on this machine, in this process
//! (`threads`) or as child processes of this executable (`processes`).

use crate::client::Client;
use crate::error::{Error, Result};
use crate::runtime::scheduler::{self, SchedulerHandle, SchedulerOptions};
use crate::runtime::worker;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Environment variables that make [`crate::init`] start a worker.
pub(crate) const ENV_SCHEDULER: &str = "RUDASK_WORKER_SCHEDULER";
pub(crate) const ENV_NTHREADS: &str = "RUDASK_WORKER_NTHREADS";
pub(crate) const ENV_NAME: &str = "RUDASK_WORKER_NAME";
pub(crate) const ENV_RESOURCES: &str = "RUDASK_WORKER_RESOURCES";
/// Memory limit of a worker started by [`LocalCluster::processes`].
pub(crate) const ENV_MEMORY_LIMIT: &str = "RUDASK_WORKER_MEMORY_LIMIT";

/// How long a local cluster waits for its workers to join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of a local cluster.
#[derive(Clone, Debug)]
pub struct LocalClusterBuilder {
    workers: usize,
    threads_per_worker: usize,
    port: u16,
    resources: Vec<(String, f64)>,
    dataset_store: Option<std::path::PathBuf>,
    memory_limit: crate::MemoryLimit,
    scheduler_thread: bool,
    security: crate::SchedulerSecurity,
}

impl LocalClusterBuilder {
    /// Number of workers (default 2).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Task slots per worker (default 1).
    pub fn threads_per_worker(mut self, n: usize) -> Self {
        self.threads_per_worker = n.max(1);
        self
    }

    /// Resources every worker offers to tasks that ask for them (default
    /// none), as `rudask worker --resources` does.
    ///
    /// ```
    /// #[rudask::task]
    /// fn on_gpu(x: i64) -> i64 { x }
    ///
    /// # #[tokio::main] async fn main() -> rudask::Result<()> {
    /// use rudask::TaskExt;
    /// let cluster = rudask::LocalCluster::builder().resources([("GPU", 1)]).threads().await?;
    /// let client = cluster.client().await?;
    /// assert_eq!(client.submit(on_gpu.resources([("GPU", 1)]), (3,))?.await?, 3);
    /// # Ok(()) }
    /// ```
    pub fn resources<S: Into<String>, A: Into<f64>>(
        mut self,
        resources: impl IntoIterator<Item = (S, A)>,
    ) -> Self {
        self.resources = resources.into_iter().map(|(n, a)| (n.into(), a.into())).collect();
        self
    }

    /// Runs the scheduler on a thread of its own (default `false`: it runs
    /// on the caller's runtime, as dask's local cluster runs it in the
    /// client's event loop).
    ///
    /// On its own thread the scheduler keeps answering while the caller's
    /// runtime is busy, at a price per request: each answer to a client of
    /// this process crosses threads twice, which on an idle virtual machine
    /// costs more than the loopback round trip itself (sequential
    /// coordination requests measured 5× slower than on the shared runtime).
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let cluster = rudask::LocalCluster::builder().scheduler_thread(true).processes().await?;
    /// # drop(cluster); Ok(()) }
    /// ```
    pub fn scheduler_thread(mut self, own_thread: bool) -> Self {
        self.scheduler_thread = own_thread;
        self
    }

    /// Scheduler port (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Writes published datasets to a durable store in `dir`, and restores
    /// the datasets a previous cluster left there (default: none, datasets
    /// live in memory only).
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let cluster = rudask::LocalCluster::builder().dataset_store("/var/lib/rudask").threads().await?;
    /// # drop(cluster); Ok(()) }
    /// ```
    pub fn dataset_store(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.dataset_store = Some(dir.into());
        self
    }

    /// Memory limit of each worker (default [`crate::MemoryLimit::Auto`]:
    /// this machine's memory divided among the workers). Worker processes
    /// spill and pause as `rudask worker --no-nanny` does (the cluster is
    /// their supervisor: one that dies is recomputed around, not restarted);
    /// in-process workers share one process, so they only spill results past
    /// the target fraction of their share.
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let limit: rudask::MemoryLimit = "2GiB".parse()?;
    /// let cluster = rudask::LocalCluster::builder().memory_limit(limit).processes().await?;
    /// # drop(cluster); Ok(()) }
    /// ```
    pub fn memory_limit(mut self, limit: crate::MemoryLimit) -> Self {
        self.memory_limit = limit;
        self
    }

    /// How the scheduler secures its TCP connections (default: a CA,
    /// certificate and token generated in memory, handed to the worker
    /// processes and [`LocalCluster::client`] automatically).
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let cluster = rudask::LocalCluster::builder()
    ///     .security(rudask::SchedulerSecurity::Insecure)
    ///     .processes()
    ///     .await?;
    /// # drop(cluster); Ok(()) }
    /// ```
    pub fn security(mut self, security: crate::SchedulerSecurity) -> Self {
        self.security = security;
        self
    }

    async fn start_scheduler(&self) -> Result<SchedulerHandle> {
        let opts = SchedulerOptions {
            port: self.port,
            dedicated_thread: self.scheduler_thread,
            dataset_store: self.dataset_store.clone(),
            security: self.security.clone(),
            ..Default::default()
        };
        scheduler::start(opts).await
    }

    /// Workers run inside this process and talk to the scheduler through
    /// channels; the scheduler also listens on TCP for other clients.
    pub async fn threads(self) -> Result<LocalCluster> {
        let scheduler = self.start_scheduler().await?;
        for i in 0..self.workers {
            let (name, res) = (format!("local-{i}"), self.resources.clone());
            let limit = self.memory_limit.resolve(self.workers);
            worker::start_local(&scheduler, name, self.threads_per_worker, res, limit).await?;
        }
        Ok(LocalCluster { scheduler, processes: false, children: Vec::new() })
    }

    /// Workers are child processes running this executable, which must call
    /// [`crate::init`] (or use `#[rudask::main]`) first thing in `main`.
    pub async fn processes(self) -> Result<LocalCluster> {
        rudask_core::graph::validate_resources(&self.resources, "the workers were given")
            .map_err(Error::InvalidArgument)?;
        let resources: Vec<String> =
            self.resources.iter().map(|(n, a)| format!("{n}={a}")).collect();
        let memory_limit =
            self.memory_limit.resolve(self.workers).map_or("none".to_string(), |b| b.to_string());
        let scheduler = self.start_scheduler().await?;
        let exe = std::env::current_exe()
            .map_err(|e| Error::Io(format!("cannot find the current executable: {e}")))?;
        let mut children = Vec::new();
        for i in 0..self.workers {
            let name = format!("local-{i}");
            let creds = scheduler.credentials();
            let mut child = tokio::process::Command::new(&exe)
                .env(ENV_SCHEDULER, scheduler.address())
                .env_remove(crate::security::ENV_CONNECTION_FILE)
                .env(crate::security::ENV_TOKEN, creds.token_str().unwrap_or_default())
                .env(crate::security::ENV_TLS_CA, creds.tls_ca_str().unwrap_or_default())
                .env(ENV_NTHREADS, self.threads_per_worker.to_string())
                .env(ENV_NAME, &name)
                .env(ENV_RESOURCES, resources.join(","))
                .env(ENV_MEMORY_LIMIT, &memory_limit)
                // The workers are part of this program: they log what it
                // logs, and only problems unless RUST_LOG says otherwise.
                .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    Error::Io(format!("could not start worker process {}: {e}", exe.display()))
                })?;
            let handle = scheduler.clone();
            children.push(tokio::spawn(async move {
                let status = child.wait().await;
                let code = status.ok().and_then(|s| {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().or(s.signal().map(|sig| -sig))
                });
                handle.worker_exited(name, code);
            }));
        }
        let cluster = LocalCluster { scheduler, processes: true, children };
        cluster.wait_for_workers(self.workers, JOIN_TIMEOUT).await.map_err(|e| match e {
            Error::Timeout(t) => Error::Timeout(t),
            other => other,
        })?;
        Ok(cluster)
    }
}

/// A scheduler and workers on this machine.
///
/// ```
/// #[rudask::task]
/// fn square(x: i64) -> i64 { x * x }
///
/// # #[tokio::main] async fn main() -> rudask::Result<()> {
/// let cluster = rudask::LocalCluster::threads(2).await?;
/// let client = cluster.client().await?;
/// let squares = client.map(square, (0..5).map(|i| (i,)))?;
/// assert_eq!(client.gather(&squares).await?, vec![0, 1, 4, 9, 16]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LocalCluster {
    scheduler: SchedulerHandle,
    processes: bool,
    children: Vec<JoinHandle<()>>,
}

impl LocalCluster {
    /// Settings, starting from 2 workers with 1 slot each.
    pub fn builder() -> LocalClusterBuilder {
        LocalClusterBuilder {
            workers: 2,
            threads_per_worker: 1,
            port: 0,
            resources: Vec::new(),
            dataset_store: None,
            memory_limit: crate::MemoryLimit::Auto,
            scheduler_thread: false,
            security: Default::default(),
        }
    }

    /// `n` in-process workers with one slot each.
    pub async fn threads(n: usize) -> Result<LocalCluster> {
        Self::builder().workers(n).threads().await
    }

    /// `n` worker processes with one slot each.
    pub async fn processes(n: usize) -> Result<LocalCluster> {
        Self::builder().workers(n).processes().await
    }

    /// A client of this cluster: in-process for `threads`, over TCP for `processes`.
    pub async fn client(&self) -> Result<Client> {
        if self.processes {
            Client::connect_with(self.scheduler.address(), self.credentials().clone()).await
        } else {
            Client::connect_local(&self.scheduler).await
        }
    }

    /// The scheduler's TCP address, for clients in other processes.
    pub fn scheduler_address(&self) -> &str {
        self.scheduler.address()
    }

    /// The token and CA that clients in other processes need.
    ///
    /// ```no_run
    /// # async fn demo() -> rudask::Result<()> {
    /// let cluster = rudask::LocalCluster::processes(2).await?;
    /// let other = rudask::Client::connect_with(cluster.scheduler_address(), cluster.credentials().clone()).await?;
    /// # Ok(()) }
    /// ```
    pub fn credentials(&self) -> &crate::Credentials {
        self.scheduler.credentials()
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &SchedulerHandle {
        &self.scheduler
    }

    /// Waits until at least `n` workers are connected.
    pub async fn wait_for_workers(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.scheduler.info().await?.workers.len() >= n {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::error!(
                    "workers did not join within {timeout:?}; a program that starts LocalCluster::processes must call rudask::init() (or use #[rudask::main]) first thing in main"
                );
                return Err(Error::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the workers and the scheduler.
    pub fn close(self) {}
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.scheduler.shutdown();
        for c in &self.children {
            c.abort();
        }
    }
}

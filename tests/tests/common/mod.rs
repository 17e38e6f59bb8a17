//! Harness of the end-to-end tests: a scheduler and workers as real
//! processes of `rudask-test-worker`, connected over TCP on localhost.
//!
//! Every wait is bounded: [`within`] fails a test that hangs, and
//! [`eventually`] polls a condition every 20 ms until a deadline, so no test
//! relies on sleeping for synchronisation.
//!
//! Set `RUDASK_TEST_LOG=1` to see the processes' logs on stderr.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use rudask::{Client, Future as RFuture, SchedulerInfo};
use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Upper bound of any single wait in a test.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// How often [`eventually`] polls.
const POLL: Duration = Duration::from_millis(20);

const BIN: &str = env!("CARGO_BIN_EXE_rudask-test-worker");

/// Awaits `fut` (anything `.await`able), failing the test if it takes longer than [`LIMIT`].
#[track_caller]
pub(crate) fn within<F: IntoFuture>(fut: F) -> impl Future<Output = F::Output> {
    within_for(LIMIT, fut)
}

/// Awaits `fut`, failing the test if it takes longer than `limit`.
#[track_caller]
pub(crate) fn within_for<F: IntoFuture>(
    limit: Duration,
    fut: F,
) -> impl Future<Output = F::Output> {
    let at = Location::caller();
    let fut = fut.into_future();
    async move {
        match tokio::time::timeout(limit, fut).await {
            Ok(v) => v,
            Err(_) => panic!("hung: the operation awaited at {at} did not finish within {limit:?}"),
        }
    }
}

/// Calls `probe` every 20 ms until it returns `Some`, failing the test after
/// [`LIMIT`] with `what` in the message.
#[track_caller]
pub(crate) fn eventually<T, F, Fut>(what: &str, mut probe: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let at = Location::caller();
    let what = what.to_string();
    async move {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("condition never became true within {LIMIT:?} (waited at {at}): {what}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn stderr() -> Stdio {
    if std::env::var_os("RUDASK_TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// A worker process.
#[derive(Debug)]
pub(crate) struct WorkerProc {
    pub(crate) name: String,
    pub(crate) pid: u32,
    child: Child,
}

/// A scheduler process and its worker processes. Dropping it kills them all.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// The scheduler's address, `tls://127.0.0.1:PORT` (`tcp://` when insecure).
    pub(crate) addr: String,
    scheduler: Child,
    pub(crate) workers: Vec<WorkerProc>,
    /// The dashboard's URL, when started with `--dashboard-address` (else
    /// the harness turns the dashboard off, so tests never share a port).
    pub(crate) dashboard: Option<String>,
    /// The connection file the scheduler wrote (none when insecure).
    pub(crate) connection_file: Option<std::path::PathBuf>,
    /// The scheduler's work directory made for this test, removed on drop.
    work_dir: Option<std::path::PathBuf>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.work_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The next line the scheduler prints, which must start with `prefix`,
/// without it.
async fn announced(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    prefix: &str,
    what: &str,
) -> String {
    let line = within(lines.next_line())
        .await
        .expect("reading the scheduler's stdout")
        .unwrap_or_else(|| panic!("the scheduler exited before printing {what}"));
    line.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {what} from the scheduler, got {line:?}"))
        .trim()
        .to_string()
}

/// A fresh directory name for a scheduler's work directory.
fn fresh_work_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("rudask-test-{}-{n}", std::process::id()))
}

impl Cluster {
    /// Starts a scheduler only.
    pub(crate) async fn scheduler() -> Cluster {
        Cluster::scheduler_with(&[]).await
    }

    /// Starts a scheduler only, with extra command-line arguments.
    pub(crate) async fn scheduler_with(extra: &[&str]) -> Cluster {
        let store =
            if extra.contains(&"--dataset-store") { None } else { Some("--no-dataset-store") };
        let with_dashboard = extra.contains(&"--dashboard-address");
        let dashboard_off = if with_dashboard { None } else { Some("--no-dashboard") };
        let work_dir = (!extra.contains(&"--work-dir")).then(fresh_work_dir);
        let work_dir_args = work_dir
            .iter()
            .flat_map(|d| ["--work-dir".to_string(), d.display().to_string()])
            .collect::<Vec<_>>();
        let mut scheduler = Command::new(BIN)
            .args(["scheduler", "--port", "0"])
            .args(store)
            .args(dashboard_off)
            .args(&work_dir_args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr())
            .kill_on_drop(true)
            .spawn()
            .expect("could not start the scheduler process");
        let stdout = scheduler.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = announced(&mut lines, "rudask scheduler listening at ", "its address").await;
        let insecure = extra.contains(&"--insecure");
        let scheme = if insecure { "tcp" } else { "tls" };
        assert!(addr.starts_with(&format!("{scheme}://127.0.0.1:")), "unexpected address {addr:?}");
        let connection_file = if insecure {
            None
        } else {
            let path =
                announced(&mut lines, "rudask scheduler connection file: ", "its connection file")
                    .await;
            Some(std::path::PathBuf::from(path))
        };
        let dashboard = if with_dashboard {
            Some(announced(&mut lines, "rudask dashboard at ", "its dashboard's URL").await)
        } else {
            None
        };
        Cluster { addr, scheduler, workers: Vec::new(), dashboard, connection_file, work_dir }
    }

    /// Starts a scheduler without TLS and token (`--insecure`) and `n`
    /// workers, as [`Cluster::start`] does; for tests that speak the
    /// protocol by hand.
    pub(crate) async fn start_insecure(n: usize, nthreads: usize) -> (Cluster, Client) {
        let mut cluster = Cluster::scheduler_with(&["--insecure"]).await;
        for i in 0..n {
            cluster.spawn_worker(&format!("w{i}"), nthreads);
        }
        let client = cluster.client().await;
        wait_for_workers(&client, n).await;
        (cluster, client)
    }

    /// The token and CA that clients of this cluster need (empty when insecure).
    pub(crate) fn credentials(&self) -> rudask::Credentials {
        match &self.connection_file {
            Some(path) => rudask::ConnectionFile::read(path)
                .expect("reading the connection file")
                .credentials(),
            None => rudask::Credentials::new(),
        }
    }

    /// The arguments that give a worker this cluster's credentials.
    fn credential_args(&self) -> Vec<String> {
        match &self.connection_file {
            Some(path) => vec!["--connection-file".into(), path.display().to_string()],
            None => Vec::new(),
        }
    }

    /// Starts a scheduler and `n` workers named `w0`, `w1`, ... with
    /// `nthreads` slots each, and waits until all of them joined.
    ///
    /// Most tests use one slot per worker: with two or more, a short task
    /// can complete without ever being reported (see the ignored test
    /// `short_tasks_complete_on_multi_slot_workers`).
    pub(crate) async fn start(n: usize, nthreads: usize) -> (Cluster, Client) {
        let mut cluster = Cluster::scheduler().await;
        for i in 0..n {
            cluster.spawn_worker(&format!("w{i}"), nthreads);
        }
        let client = cluster.client().await;
        wait_for_workers(&client, n).await;
        (cluster, client)
    }

    /// Starts a worker process (does not wait for it to join).
    pub(crate) fn spawn_worker(&mut self, name: &str, nthreads: usize) {
        self.spawn_worker_with(name, nthreads, &[]);
    }

    /// A new client connected to the scheduler.
    pub(crate) async fn client(&self) -> Client {
        within(Client::connect_with(&self.addr, self.credentials()))
            .await
            .expect("connecting a client")
    }

    /// The process id of worker `name`.
    pub(crate) fn worker_pid(&self, name: &str) -> u32 {
        self.workers
            .iter()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("no worker {name}"))
            .pid
    }

    /// Sends SIGKILL to worker `name` and reaps it.
    pub(crate) async fn kill_worker(&mut self, name: &str) {
        let pos = self
            .workers
            .iter()
            .position(|w| w.name == name)
            .unwrap_or_else(|| panic!("no worker {name}"));
        let mut w = self.workers.remove(pos);
        w.child.start_kill().expect("sending SIGKILL");
        within(w.child.wait()).await.expect("reaping the killed worker");
    }

    /// Whether worker `name`'s process is still running.
    pub(crate) fn worker_alive(&mut self, name: &str) -> bool {
        let w = self
            .workers
            .iter_mut()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("no worker {name}"));
        matches!(w.child.try_wait(), Ok(None))
    }

    /// Sends SIGKILL to the scheduler and every worker, and reaps them.
    pub(crate) async fn kill_all(&mut self) {
        self.scheduler.start_kill().expect("sending SIGKILL");
        within(self.scheduler.wait()).await.expect("reaping the scheduler");
        for mut w in self.workers.drain(..) {
            let _ = w.child.start_kill();
            within(w.child.wait()).await.expect("reaping a worker");
        }
    }

    /// Whether the scheduler process is still running.
    pub(crate) fn scheduler_alive(&mut self) -> bool {
        matches!(self.scheduler.try_wait(), Ok(None))
    }
}

/// Waits until the scheduler counts exactly `n` workers.
pub(crate) async fn wait_for_workers(client: &Client, n: usize) -> SchedulerInfo {
    eventually(&format!("the scheduler has {n} workers"), || async move {
        let info = within(client.scheduler_info(&[])).await.expect("scheduler_info");
        (info.workers.len() == n).then_some(info)
    })
    .await
}

/// The scheduler's states of `keys`.
pub(crate) async fn key_states(client: &Client, keys: &[&str]) -> Vec<Option<String>> {
    within(client.scheduler_info(keys)).await.expect("scheduler_info").key_states
}

/// Sums `level` as a binary tree of `add` tasks and returns the root.
pub(crate) fn tree_sum(client: &Client, mut level: Vec<RFuture<i64>>) -> RFuture<i64> {
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut pairs = level.chunks_exact(2);
        for pair in &mut pairs {
            next.push(
                client.submit(rudask_tests::add, (&pair[0], &pair[1])).expect("submitting add"),
            );
        }
        if let [odd] = pairs.remainder() {
            next.push(odd.clone());
        }
        level = next;
    }
    level.pop().expect("at least one value")
}

impl Cluster {
    /// Starts a worker process with extra command-line arguments, e.g.
    /// `["--resources", "GPU=2"]` (does not wait for it to join).
    pub(crate) fn spawn_worker_with(&mut self, name: &str, nthreads: usize, extra: &[&str]) {
        // The process is the worker (its pid, SIGKILL kills it, restart
        // execs it in place); see `spawn_worker_with_nanny`.
        self.spawn_worker_process(name, nthreads, &[&["--no-nanny"], extra].concat());
    }

    /// Like [`Cluster::spawn_worker_with`], as `rudask worker` runs by
    /// default: a nanny process restarting the worker, its child. Killing the
    /// nanny kills the worker too.
    pub(crate) fn spawn_worker_with_nanny(&mut self, name: &str, nthreads: usize, extra: &[&str]) {
        self.spawn_worker_process(name, nthreads, extra);
    }

    fn spawn_worker_process(&mut self, name: &str, nthreads: usize, extra: &[&str]) {
        let child = Command::new(BIN)
            .args(["worker", &self.addr, "--nthreads", &nthreads.to_string(), "--name", name])
            .args(self.credential_args())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr())
            .kill_on_drop(true)
            .spawn()
            .expect("could not start a worker process");
        let pid = child.id().expect("a running child has a pid");
        self.workers.push(WorkerProc { name: name.to_string(), pid, child });
    }

    /// Runs a worker process with `args` after `worker ADDR` that is expected
    /// to exit at once; returns whether it succeeded and its stderr.
    pub(crate) async fn run_worker_to_exit(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(BIN)
            .args(["worker", &self.addr])
            .args(self.credential_args())
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = within(out).await.expect("running a worker process");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `body` on a plain thread (no runtime, as in synchronous programs),
/// failing the test if it takes longer than [`LIMIT`].
pub(crate) fn on_plain_thread(body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(()) => t.join().expect("the body ran"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(t.join().expect_err("the body panicked"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung for {LIMIT:?}"),
    }
}

impl Cluster {
    /// The scheduler's process id.
    pub(crate) fn scheduler_pid(&self) -> u32 {
        self.scheduler.id().expect("the scheduler is running")
    }
}

pub(crate) mod raw;

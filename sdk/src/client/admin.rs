//! Cluster administration from a client: run a function on workers or on the
//! scheduler, restart or shut down the cluster, wait for workers, upload files.

use super::{lock, unexpected, Client, ClientInner, Shared};
use crate::error::{Error, Result};
use crate::future::{KeyState, Status};
use crate::task::{decode_value, ArgSlot, IntoArgs, Task};
use rudask_core::protocol::{ClientMsg, Reply, Request};
use rudask_core::{Payload, TaskFailure};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long [`Client::restart`] waits for the workers to come back.
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);

impl Shared {
    /// The cluster was restarted: every key of this client is gone. Its
    /// futures fail; a key submitted again starts from a fresh state, while
    /// the count of handles (old and new) stays in the table.
    pub(super) fn restarted(&self) {
        let states: Vec<_> = lock(&self.keys)
            .iter_mut()
            .map(|(k, (s, _))| std::mem::replace(s, KeyState::new(k.clone())))
            .collect();
        for s in states {
            s.set_failed(Status::Cancelled, Error::Restarted { key: s.key.to_string() });
        }
    }
}

impl ClientInner {
    /// Sends a request whose answer nobody waits for.
    pub(super) fn notify(&self, req: Request) {
        let id = self.shared.next_request.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.uplink.send(ClientMsg::Request { id, req });
    }
}

/// Encodes the arguments of a function run outside the task graph, where
/// futures cannot stand in for values.
fn plain_args<F: Task, A: IntoArgs<F::Args>>(task: &F, args: A) -> Result<Vec<Payload>> {
    args.into_args()?
        .into_iter()
        .map(|slot| match slot {
            ArgSlot::Value(p) | ArgSlot::Retaining(p, _) => Ok(p),
            ArgSlot::Dep(r) => Err(Error::InvalidArgument(format!(
                "{} runs outside the task graph and takes values, not futures (got the future {}); \
                 await the future and pass its value",
                task.name(),
                r.state.key
            ))),
            ArgSlot::Key(k) => Err(Error::InvalidArgument(format!(
                "{} runs outside the task graph and takes values, not graph keys (got {k})",
                task.name()
            ))),
        })
        .collect()
}

fn outcome<T: crate::task::Value>(
    label: &str,
    r: std::result::Result<Payload, TaskFailure>,
) -> Result<T> {
    match r {
        Ok(p) => decode_value(label, &p),
        Err(failure) => Err(Error::from_failure(label, &failure)),
    }
}

impl Client {
    /// Runs a registered function once on every connected worker, outside the
    /// task graph (nothing is stored; no key is made). Returns each worker's
    /// outcome by worker name: a function that fails or panics on one worker,
    /// or a worker that dies meanwhile, gives an error for that worker only.
    ///
    /// ```no_run
    /// #[rudask::task]
    /// fn pid() -> u32 { std::process::id() }
    ///
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// for (worker, result) in client.run(pid, ()).await? {
    ///     println!("{worker}: {}", result?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn run<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<BTreeMap<String, Result<F::Output>>> {
        self.run_request(None, task, args).await
    }

    /// Like [`Client::run`], on the workers named in `workers` (worker names
    /// or data addresses). An unknown name is an [`Error::InvalidArgument`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn pid() -> u32 { std::process::id() }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let on_w1 = client.run_on(&["w1"], pid, ()).await?;
    /// assert_eq!(on_w1.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn run_on<F: Task, A: IntoArgs<F::Args>>(
        &self,
        workers: &[&str],
        task: F,
        args: A,
    ) -> Result<BTreeMap<String, Result<F::Output>>> {
        let names = workers.iter().map(|w| w.to_string()).collect();
        self.run_request(Some(names), task, args).await
    }

    async fn run_request<F: Task, A: IntoArgs<F::Args>>(
        &self,
        workers: Option<Vec<String>>,
        task: F,
        args: A,
    ) -> Result<BTreeMap<String, Result<F::Output>>> {
        let args = plain_args(&task, args)?;
        let req = Request::Run { workers, func: Arc::from(task.id()), args };
        match self.inner.request(req).await? {
            Reply::Run(results) => Ok(results
                .into_iter()
                .map(|(worker, r)| {
                    let label = format!("{} on worker {worker}", task.name());
                    (worker, outcome(&label, r))
                })
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a registered function in the scheduler's process (off its event
    /// loop) and returns its result. The function must be linked into the
    /// binary the scheduler runs from; otherwise this is an
    /// [`Error::InvalidArgument`] saying so.
    ///
    /// ```no_run
    /// # #[rudask::task] fn pid() -> u32 { std::process::id() }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let scheduler_pid = client.run_on_scheduler(pid, ()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_on_scheduler<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<F::Output> {
        let args = plain_args(&task, args)?;
        let req = Request::RunOnScheduler { func: Arc::from(task.id()), args };
        match self.inner.request(req).await? {
            Reply::RunOnScheduler(r) => outcome(&format!("{} on the scheduler", task.name()), r),
            other => Err(unexpected(&other)),
        }
    }

    /// Restarts the cluster: the scheduler forgets every task, and every
    /// future of every client fails with [`Error::Restarted`]; worker
    /// processes replace themselves with a fresh process of the same binary
    /// and arguments (same pid), in-process workers drop their data and join
    /// again (a task already running on one of their threads finishes in the
    /// background; its result is dropped). Returns once as many workers as
    /// before are connected again, or
    /// [`Error::Timeout`] after 60 seconds.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let x = client.submit(inc, (1,))?;
    /// client.restart().await?;
    /// assert!(matches!(x.await, Err(rudask::Error::Restarted { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn restart(&self) -> Result<()> {
        let request = self.inner.request(Request::Restart);
        match tokio::time::timeout(RESTART_TIMEOUT, request).await {
            Ok(Ok(Reply::Done)) => Ok(()),
            Ok(Ok(other)) => Err(unexpected(&other)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout(RESTART_TIMEOUT)),
        }
    }

    /// Stops the scheduler and every worker. Afterwards this client's futures
    /// and requests fail with [`Error::Disconnected`].
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) -> Result<()> {
        match self.inner.request(Request::Shutdown).await {
            // The scheduler may close the connection before its answer is written.
            Ok(Reply::Done) | Err(Error::Disconnected(_)) => {
                self.inner.shared.disconnect("the cluster was shut down".into());
                Ok(())
            }
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        }
    }

    /// Resolves once at least `n` workers are connected (the scheduler
    /// answers as soon as that is true). With a `timeout`, gives up with
    /// [`Error::Timeout`]; a lost scheduler is an [`Error::Disconnected`].
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.wait_for_workers(2, Some(std::time::Duration::from_secs(30))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_workers(&self, n: usize, timeout: Option<Duration>) -> Result<()> {
        let request = self.inner.request(Request::WaitForWorkers { n });
        let reply = match timeout {
            Some(t) => tokio::time::timeout(t, request).await.map_err(|_| Error::Timeout(t))??,
            None => request.await?,
        };
        match reply {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends a file to every worker, which writes it (atomically) into its
    /// local directory ([`crate::local_directory`]) under the same file name.
    /// The scheduler keeps it, so workers that join later get it too. Tasks
    /// and runs submitted after this returns see the file.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.upload_file("config.toml").await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref().to_path_buf();
        let (name, data) = tokio::task::spawn_blocking(move || read_upload(&path))
            .await
            .map_err(|e| Error::Io(format!("reading the file to upload failed: {e}")))??;
        match self.inner.request(Request::UploadFile { name, data: Payload::from(data) }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

/// The file name and contents of a file to upload.
fn read_upload(path: &Path) -> Result<(String, Vec<u8>)> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::InvalidArgument(format!("cannot upload {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Error::InvalidArgument(format!(
            "cannot upload {}: it is not a regular file",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "cannot upload {}: its file name is not valid UTF-8",
                path.display()
            ))
        })?
        .to_string();
    let data = std::fs::read(path)
        .map_err(|e| Error::Io(format!("could not read {}: {e}", path.display())))?;
    Ok((name, data))
}

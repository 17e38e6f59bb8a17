//! A client without `async`: [`Client`] and [`Future`] mirror
//! [`crate::Client`] and [`crate::Future`], each method waiting for the async
//! one to finish.
//!
//! Made with [`Client::connect`], a client runs its connection on a runtime
//! of its own, so plain synchronous programs and tests can use it. Inside a
//! synchronous task, [`get_client`] and [`crate::worker_client`] give one
//! that runs on the worker's runtime instead.
//!
//! Blocking inside async code would stall the runtime that drives it (tokio
//! panics there); every blocking method checks first and returns
//! [`Error::Context`] instead. From async code, use the async client.
//!
//! ```no_run
//! #[rudask::task]
//! fn inc(x: i64) -> i64 { x + 1 }
//!
//! fn main() -> rudask::Result<()> {
//!     rudask::init();
//!     let client = rudask::blocking::Client::connect("tcp://127.0.0.1:8786")?;
//!     let x = client.submit(inc, (1,))?;
//!     let y = client.submit(inc, (&x,))?;
//!     assert_eq!(y.result()?, 3);
//!     let many = client.map(inc, (0..10).map(|i| (i,)))?;
//!     assert_eq!(client.gather(&many)?.iter().sum::<i64>(), 55);
//!     Ok(())
//! }
//! ```

mod completion;
mod ops;

pub use completion::{as_completed, fire_and_forget, progress, wait, AsCompleted, DoneAndPending};
pub use ops::ClientExecutor;

use crate::context;
use crate::error::{Error, Result};
use crate::future::Status;
use crate::runtime::slots::{self, Kind};
use crate::task::{ArgSlot, IntoArg, IntoArgs, Task, Value};
use rudask_core::protocol::{SchedulerInfo, WorkerInfo};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

/// Errs when waiting here would block a tokio runtime.
fn check_can_block() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(());
    }
    let running = slots::current();
    if let (Some(r), Some(ctx)) = (running.filter(|r| r.kind == Kind::Inline), context::current()) {
        return Err(crate::nested::inline_cannot_block(&ctx, r.func));
    }
    let hint = match running.map(|r| r.kind) {
        Some(Kind::Async) => {
            "in an async task, use rudask::get_client().await and rudask::secede()"
        }
        _ => "use the async rudask::Client and .await there",
    };
    Err(Error::Context(format!(
        "a blocking rudask call was made inside async code (a tokio runtime), where waiting \
         would stall the runtime; {hint}"
    )))
}

/// A runtime this client owns; shut down without waiting when the last user
/// drops it, which is allowed anywhere (dropping a runtime in async code is not).
#[derive(Debug)]
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Where blocking calls run their async counterparts.
#[derive(Clone, Debug)]
struct Runtime {
    handle: tokio::runtime::Handle,
    _owned: Option<Arc<OwnedRuntime>>,
}

impl Runtime {
    fn block_on<F: IntoFuture>(&self, fut: F) -> Result<F::Output> {
        check_can_block()?;
        Ok(self.handle.block_on(fut.into_future()))
    }
}

/// A blocking client: the operations of [`crate::Client`] without `async`.
///
/// More operations are one line away: [`Client::block_on`] waits for any
/// future of the async client ([`Client::as_async`]).
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # fn demo() -> rudask::Result<()> {
/// let client = rudask::blocking::Client::connect("tcp://127.0.0.1:8786")?;
/// let parts = client.block_on(client.as_async().scatter(vec![1i64, 2]).broadcast(true))??;
/// assert_eq!(parts.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
    runtime: Runtime,
}

impl Client {
    /// Connects to the scheduler at `addr` (`tcp://host:port` or
    /// `host:port`), on a runtime of the client's own.
    ///
    /// ```no_run
    /// let client = rudask::blocking::Client::connect("tcp://127.0.0.1:8786")?;
    /// println!("{} workers", client.workers().len());
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn connect(addr: &str) -> Result<Client> {
        Self::connect_with(addr, crate::Credentials::from_env()?)
    }

    /// Connects with a token and the cluster's CA; see [`crate::Client::connect_with`].
    ///
    /// ```no_run
    /// let file = rudask::ConnectionFile::read("/tmp/rudask-scheduler-8786/connection.json")?;
    /// let client = rudask::blocking::Client::connect_with(&file.address, file.credentials())?;
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn connect_with(addr: &str, credentials: crate::Credentials) -> Result<Client> {
        check_can_block()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rudask-blocking-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("could not start the client's runtime: {e}")))?;
        let runtime = Runtime { handle: rt.handle().clone(), _owned: None };
        let inner = runtime.block_on(crate::Client::connect_with(addr, credentials))??;
        let runtime = Runtime { _owned: Some(Arc::new(OwnedRuntime(Some(rt)))), ..runtime };
        Ok(Client { inner, runtime })
    }

    /// Wraps an async client whose connection runs on `runtime`, which must
    /// be driven by some thread (a multi-thread runtime, or one in `block_on`).
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) {
    /// let handle = tokio::runtime::Handle::current();
    /// std::thread::spawn(move || {
    ///     let blocking = rudask::blocking::Client::with_runtime(client, handle);
    ///     println!("{:?}", blocking.scheduler_info(&[]));
    /// });
    /// # }
    /// ```
    pub fn with_runtime(client: crate::Client, runtime: tokio::runtime::Handle) -> Client {
        Client { inner: client, runtime: Runtime { handle: runtime, _owned: None } }
    }

    /// The async client underneath.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let address = client.as_async().scheduler_address();
    /// # }
    /// ```
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// Waits for `fut` (anything `.await`able, e.g. an operation of
    /// [`Client::as_async`]) on this client's runtime.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let info = client.block_on(client.as_async().scheduler_info(&[]))??;
    /// # Ok(()) }
    /// ```
    pub fn block_on<F: IntoFuture>(&self, fut: F) -> Result<F::Output> {
        self.runtime.block_on(fut)
    }

    fn wrap<T>(&self, inner: crate::Future<T>) -> Future<T> {
        Future { inner, runtime: self.runtime.clone() }
    }

    /// The scheduler's address.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// assert!(client.scheduler_address().starts_with("tcp://"));
    /// # }
    /// ```
    pub fn scheduler_address(&self) -> &str {
        self.inner.scheduler_address()
    }

    /// The workers known to this client. See [`crate::Client::workers`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// for w in client.workers() { println!("{} at {}", w.name, w.data_addr); }
    /// # }
    /// ```
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.inner.workers()
    }

    /// Submits one task. See [`crate::Client::submit`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let x = client.submit(inc, (1,))?;
    /// assert_eq!(client.submit(inc, (&x,))?.result()?, 3);
    /// # Ok(()) }
    /// ```
    pub fn submit<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<Future<F::Output>> {
        Ok(self.wrap(self.inner.submit(task, args)?))
    }

    /// Submits one task per argument tuple. See [`crate::Client::map`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let fs = client.map(inc, (0..10).map(|i| (i,)))?;
    /// assert_eq!(fs.len(), 10);
    /// # Ok(()) }
    /// ```
    pub fn map<F, A, I>(&self, task: F, args: I) -> Result<Vec<Future<F::Output>>>
    where
        F: Task,
        A: IntoArgs<F::Args>,
        I: IntoIterator<Item = A>,
    {
        Ok(self.inner.map(task, args)?.into_iter().map(|f| self.wrap(f)).collect())
    }

    /// Waits for all futures and returns their values in order. See
    /// [`crate::Client::gather`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let fs = client.map(inc, (0..3).map(|i| (i,)))?;
    /// assert_eq!(client.gather(&fs)?, vec![1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn gather<T: Value>(&self, futures: &[Future<T>]) -> Result<Vec<T>> {
        let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
        self.block_on(self.inner.gather(&inner))?
    }

    /// Places values on workers, spread over them. See [`crate::Client::scatter`]
    /// (for its options, `client.block_on(client.as_async().scatter(..).broadcast(true))`).
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let parts = client.scatter(vec![vec![1.0f64; 100], vec![2.0; 100]])?;
    /// assert_eq!(parts[1].result()?[0], 2.0);
    /// # Ok(()) }
    /// ```
    pub fn scatter<T: Value>(&self, values: impl IntoIterator<Item = T>) -> Result<Vec<Future<T>>> {
        let futures = self.block_on(self.inner.scatter(values))??;
        Ok(futures.into_iter().map(|f| self.wrap(f)).collect())
    }

    /// A snapshot of the scheduler. See [`crate::Client::scheduler_info`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// println!("{} tasks", client.scheduler_info(&[])?.tasks);
    /// # Ok(()) }
    /// ```
    pub fn scheduler_info(&self, keys: &[&str]) -> Result<SchedulerInfo> {
        self.block_on(self.inner.scheduler_info(keys))?
    }

    /// Cancels the futures' keys. See [`crate::Client::cancel`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// client.cancel(&[f]);
    /// # Ok(()) }
    /// ```
    pub fn cancel<T>(&self, futures: &[Future<T>]) {
        let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
        self.inner.cancel(&inner);
    }

    /// Leaves the scheduler. See [`crate::Client::close`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// client.close();
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }
}

/// For a synchronous task: the worker's shared client (see
/// [`crate::get_client`]) as a blocking client. Waiting on tasks it submits,
/// the task should [`crate::secede`] first, or use [`crate::worker_client`],
/// which does both.
///
/// Errs with [`Error::Context`] outside a task and in async tasks.
///
/// ```
/// assert!(rudask::blocking::get_client().is_err(), "not inside a task here");
/// ```
pub fn get_client() -> Result<Client> {
    let ctx = context::current().ok_or_else(|| {
        Error::Context(
            "rudask::blocking::get_client() only works inside a task running on a rudask \
             worker; outside tasks, use rudask::blocking::Client::connect"
                .into(),
        )
    })?;
    let runtime = Runtime { handle: ctx.runtime.clone(), _owned: None };
    let inner = runtime.block_on(ctx.client())??;
    Ok(Client { inner, runtime })
}

/// A handle to a task's result, waited on by blocking: [`crate::Future`]
/// without `async`. Pass it (or a reference) as an argument to make a
/// dependency, as with the async future.
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let x = client.submit(inc, (1,))?;
/// let y = client.submit(inc, (&x,))?;
/// assert_eq!(y.result_timeout(std::time::Duration::from_secs(10))?, 3);
/// assert!(x.done());
/// # Ok(()) }
/// ```
pub struct Future<T> {
    inner: crate::Future<T>,
    runtime: Runtime,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future { inner: self.inner.clone(), runtime: self.runtime.clone() }
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> Future<T> {
    /// The key of the result.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// assert!(f.key().starts_with("inc-"));
    /// # Ok(()) }
    /// ```
    pub fn key(&self) -> &str {
        self.inner.key()
    }

    /// Where the task is now.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// println!("{:?}", f.status());
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> Status {
        self.inner.status()
    }

    /// True once the task finished, failed or was cancelled.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// f.result()?;
    /// assert!(f.done());
    /// # Ok(()) }
    /// ```
    pub fn done(&self) -> bool {
        self.inner.done()
    }

    /// Cancels the task for every client that wants it.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// f.cancel();
    /// # Ok(()) }
    /// ```
    pub fn cancel(&self) {
        self.inner.cancel()
    }

    /// Waits for the task and returns its error, if it failed.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// assert!(f.exception()?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn exception(&self) -> Result<Option<Error>> {
        self.runtime.block_on(self.inner.exception())
    }

    /// Waits for the task and returns the worker-side traceback, if it failed.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// assert!(f.traceback()?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn traceback(&self) -> Result<Option<String>> {
        self.runtime.block_on(self.inner.traceback())
    }

    /// The async future underneath.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// let same: &rudask::Future<i64> = f.as_async();
    /// # Ok(()) }
    /// ```
    pub fn as_async(&self) -> &crate::Future<T> {
        &self.inner
    }

    /// Turns it into the async future.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// let f: rudask::Future<i64> = f.into_async();
    /// # Ok(()) }
    /// ```
    pub fn into_async(self) -> crate::Future<T> {
        self.inner
    }
}

impl<T: Value> Future<T> {
    /// Waits for the result and fetches it.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// assert_eq!(f.result()?, 2);
    /// # Ok(()) }
    /// ```
    pub fn result(&self) -> Result<T> {
        self.runtime.block_on(self.inner.result())?
    }

    /// Like [`Future::result`], but gives up after `timeout` with [`Error::Timeout`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// assert_eq!(f.result_timeout(std::time::Duration::from_secs(5))?, 2);
    /// # Ok(()) }
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T> {
        self.runtime.block_on(self.inner.result_timeout(timeout))?
    }
}

impl<T> IntoArg<T> for &Future<T> {
    fn into_arg(self) -> Result<ArgSlot> {
        (&self.inner).into_arg()
    }
}

impl<T> IntoArg<T> for Future<T> {
    fn into_arg(self) -> Result<ArgSlot> {
        self.inner.into_arg()
    }
}

//! [`Future<T>`]: a typed handle to a result on the cluster.
//!
//! Every handle of one key shares a [`KeyState`] that the client's driver
//! updates as the scheduler reports; awaiting registers a waker there. The
//! handle's [`KeyRef`] is reference counted: when the last clone of every
//! future of a key drops, the client tells the scheduler it no longer wants it.

use crate::client::ClientInner;
use crate::error::{Error, Result};
use crate::task::Value;
use rudask_core::protocol::ClientMsg;
use rudask_core::{Key, Payload};
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

/// Where a future's task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not finished yet.
    Pending,
    /// The result is in memory on the cluster.
    Finished,
    /// The task (or a dependency) failed.
    Error,
    /// The key was cancelled.
    Cancelled,
}

#[derive(Debug)]
struct KeyInner {
    status: Status,
    value: Option<Payload>,
    workers: Vec<u64>,
    version: u64,
    error: Option<Error>,
    wakers: Vec<Waker>,
    // Run once, on the first settle after they were added.
    callbacks: Callbacks,
}

#[derive(Default)]
struct Callbacks(Vec<Box<dyn FnOnce() + Send>>);

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} callbacks", self.0.len())
    }
}

/// The client-side state of one key.
#[derive(Debug)]
pub(crate) struct KeyState {
    pub(crate) key: Key,
    inner: Mutex<KeyInner>,
}

/// What a waiter learns once a key is no longer pending.
#[derive(Debug)]
pub(crate) enum Outcome {
    Value(Payload),
    At { workers: Vec<u64>, version: u64 },
    Failed(Error),
}

impl KeyState {
    pub(crate) fn new(key: Key) -> Arc<KeyState> {
        Arc::new(KeyState {
            key,
            inner: Mutex::new(KeyInner {
                status: Status::Pending,
                value: None,
                workers: Vec::new(),
                version: 0,
                error: None,
                wakers: Vec::new(),
                callbacks: Callbacks::default(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settle(&self, f: impl FnOnce(&mut KeyInner)) {
        let (wakers, callbacks) = {
            let mut g = self.lock();
            f(&mut g);
            (std::mem::take(&mut g.wakers), std::mem::take(&mut g.callbacks.0))
        };
        wakers.into_iter().for_each(Waker::wake);
        for cb in callbacks {
            // A panicking user callback must not take down the connection
            // reader that delivers every other result.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(cb)).is_err() {
                tracing::error!(key = %self.key, "a done-callback panicked");
            }
        }
    }

    /// Runs `cb` once the key is no longer pending: now (on this thread) if it
    /// already is, else on the thread that settles it.
    pub(crate) fn on_done(&self, cb: Box<dyn FnOnce() + Send>) {
        let mut g = self.lock();
        if g.status == Status::Pending {
            g.callbacks.0.push(cb);
        } else {
            drop(g);
            cb();
        }
    }

    /// Back to pending after a failure, for a retry. False if it had not failed.
    fn reset_failed(&self) -> bool {
        let mut g = self.lock();
        if g.status != Status::Error {
            return false;
        }
        g.status = Status::Pending;
        g.error = None;
        true
    }

    pub(crate) fn set_memory(&self, value: Option<Payload>, workers: Vec<u64>) {
        self.settle(|g| {
            g.status = Status::Finished;
            g.value = value.or(g.value.take());
            g.workers = workers;
            g.version += 1;
            g.error = None;
        });
    }

    pub(crate) fn set_failed(&self, status: Status, error: Error) {
        self.settle(|g| {
            g.status = status;
            g.error = Some(error);
        });
    }

    /// Called after fetching from `worker` failed: forget that copy, and wait
    /// for the scheduler's news if no copy is left.
    pub(crate) fn drop_worker(&self, worker: u64, version: u64) {
        let mut g = self.lock();
        if g.version == version {
            g.workers.retain(|&w| w != worker);
            if g.workers.is_empty() && g.value.is_none() && g.status == Status::Finished {
                g.status = Status::Pending;
            }
        }
    }

    pub(crate) fn status(&self) -> Status {
        self.lock().status
    }

    pub(crate) async fn outcome(&self) -> Outcome {
        std::future::poll_fn(|cx| {
            let mut g = self.lock();
            match g.status {
                Status::Pending => {
                    if !g.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        g.wakers.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
                Status::Finished => Poll::Ready(match &g.value {
                    Some(v) => Outcome::Value(v.clone()),
                    None => Outcome::At { workers: g.workers.clone(), version: g.version },
                }),
                Status::Error | Status::Cancelled => Poll::Ready(Outcome::Failed(
                    g.error.clone().unwrap_or(Error::Cancelled { key: self.key.to_string() }),
                )),
            }
        })
        .await
    }
}

/// One counted reference to a key held by a client.
#[derive(Debug)]
pub struct KeyRef {
    pub(crate) state: Arc<KeyState>,
    /// `None` for an actor call's result, which the scheduler never sees.
    pub(crate) client: Option<Arc<ClientInner>>,
}

impl Drop for KeyRef {
    fn drop(&mut self) {
        if let Some(client) = &self.client {
            client.release(&self.state.key);
        }
    }
}

/// The client of a future, or the error for an actor call's result, which
/// has none.
fn client_of<'a>(r: &'a KeyRef, what: &str) -> Result<&'a Arc<ClientInner>> {
    r.client.as_ref().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{} is the result of an actor method call, which cannot be {what}; call the method again",
            r.state.key
        ))
    })
}

/// A handle to a task's result on the cluster. Await it for the value.
///
/// Clones share the key; when every handle is dropped, the cluster may forget
/// the result.
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let x: rudask::Future<i64> = client.submit(inc, (1,))?;
/// let y = client.submit(inc, (&x,))?;
/// assert_eq!(y.await?, 3);
/// # Ok(()) }
/// ```
pub struct Future<T> {
    r: Arc<KeyRef>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future { r: self.r.clone(), _t: PhantomData }
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Future({}, {:?})", self.r.state.key, self.status())
    }
}

impl<T> Future<T> {
    pub(crate) fn new(r: Arc<KeyRef>) -> Self {
        Future { r, _t: PhantomData }
    }

    /// The same key, read as another type.
    pub(crate) fn cast<U>(self) -> Future<U> {
        Future { r: self.r, _t: PhantomData }
    }

    pub(crate) fn key_ref(&self) -> &Arc<KeyRef> {
        &self.r
    }

    /// The key of the result.
    pub fn key(&self) -> &str {
        self.r.state.key.as_str()
    }

    /// Where the task is now.
    pub fn status(&self) -> Status {
        self.r.state.status()
    }

    /// True once the task finished, failed or was cancelled.
    pub fn done(&self) -> bool {
        self.status() != Status::Pending
    }

    /// Cancels the task for every client that wants it: every future of
    /// the key, in any client, ends [`Status::Cancelled`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let x = client.submit(inc, (1,))?;
    /// x.cancel();
    /// assert!(matches!(x.result().await, Err(rudask::Error::Cancelled { .. })));
    /// # Ok(()) }
    /// ```
    pub fn cancel(&self) {
        if let Some(client) = &self.r.client {
            client.cancel(vec![self.r.state.key.clone()]);
        }
    }

    /// Calls `f` with this future once it is done (finished, failed or
    /// cancelled); at once, on this thread, if it already is. `f` runs exactly
    /// once, on the thread that received the news (the client's connection
    /// reader), so keep it short and non-blocking; a panic in it is logged
    /// and does not reach the connection. Until it runs, `f` holds
    /// a handle to the future, which keeps the key wanted.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// client.submit(inc, (1,))?.add_done_callback(move |f| {
    ///     let _ = tx.send(f.status());
    /// });
    /// assert_eq!(rx.await.unwrap(), rudask::Status::Finished);
    /// # Ok(()) }
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(Future<T>) + Send + 'static)
    where
        T: 'static,
    {
        let this = self.clone();
        self.r.state.on_done(Box::new(move || f(this)));
    }

    /// Computes a failed future again, with the failed tasks it depends on.
    /// The future is pending afterwards (other clients' futures of the key
    /// stay failed until the new outcome arrives). Does nothing for a future
    /// that did not fail.
    ///
    /// Fails with [`Error::InvalidArgument`] for a cancelled future (submit
    /// the task again instead) and [`Error::Disconnected`] once the client is
    /// closed.
    ///
    /// ```no_run
    /// # #[rudask::task] fn flaky(x: i64) -> Result<i64, String> { Ok(x) }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let x = client.submit(flaky, (1,))?;
    /// if x.result().await.is_err() {
    ///     x.retry()?;
    ///     println!("second try: {:?}", x.result().await);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn retry(&self) -> Result<()> {
        match self.status() {
            Status::Pending | Status::Finished => return Ok(()),
            Status::Cancelled => {
                return Err(Error::InvalidArgument(format!(
                    "{} was cancelled and cannot be retried; submit the task again",
                    self.key()
                )))
            }
            Status::Error => {}
        }
        let client = client_of(&self.r, "retried")?;
        client.check_connected()?;
        if self.r.state.reset_failed() {
            client.send(ClientMsg::Retry { keys: vec![self.r.state.key.clone()] })?;
        }
        Ok(())
    }

    /// Waits for the task and returns its error, if it failed.
    pub async fn exception(&self) -> Option<Error> {
        match self.r.state.outcome().await {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Waits for the task and returns the worker-side traceback, if it failed.
    pub async fn traceback(&self) -> Option<String> {
        self.exception().await.and_then(|e| e.traceback().map(str::to_string))
    }
}

impl<T: Value> Future<T> {
    /// Waits for the result and fetches it.
    pub async fn result(&self) -> Result<T> {
        let payload = match &self.r.client {
            Some(client) => client.fetch(&self.r.state).await?,
            None => match self.r.state.outcome().await {
                Outcome::Value(p) => p,
                Outcome::Failed(e) => return Err(e),
                Outcome::At { .. } => {
                    return Err(Error::Io(format!("actor call {} has no value", self.key())))
                }
            },
        };
        crate::task::decode_value(self.key(), &payload)
    }

    /// Like [`Future::result`], but gives up after `timeout` with [`Error::Timeout`].
    pub async fn result_timeout(&self, timeout: Duration) -> Result<T> {
        tokio::time::timeout(timeout, self.result()).await.map_err(|_| Error::Timeout(timeout))?
    }
}

/// Makes the cluster run `future`'s task to completion even after every
/// handle of it is dropped and its client disconnects. The scheduler holds
/// the key until the task finishes or fails, then forgets it; its result is
/// not kept. Use it for tasks run for their side effects. Cancelling the key
/// still stops it.
///
/// Fails with [`Error::Disconnected`] once the client is closed.
///
/// ```no_run
/// # #[rudask::task] fn write_report(day: u32) -> u32 { day }
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let f = client.submit(write_report, (7,))?;
/// rudask::fire_and_forget(&f)?;
/// drop(f);
/// client.close(); // the task still runs
/// # Ok(()) }
/// ```
pub fn fire_and_forget<T>(future: &Future<T>) -> Result<()> {
    let client = client_of(&future.r, "fired and forgotten")?;
    client.check_connected()?;
    client.send(ClientMsg::FireAndForget { keys: vec![future.r.state.key.clone()] })
}

impl<T: Value> IntoFuture for Future<T> {
    type Output = Result<T>;
    type IntoFuture = futures::future::BoxFuture<'static, Result<T>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.result().await })
    }
}

impl<'a, T: Value> IntoFuture for &'a Future<T> {
    type Output = Result<T>;
    type IntoFuture = futures::future::BoxFuture<'a, Result<T>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.result())
    }
}

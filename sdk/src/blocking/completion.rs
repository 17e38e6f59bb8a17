//! Waiting on many blocking futures: [`as_completed`] as an iterator,
//! [`wait`], [`progress`], and the per-future [`fire_and_forget`],
//! [`Future::retry`] and [`Future::add_done_callback`].

use super::{check_can_block, Future, Runtime};
use crate::error::Result;
use crate::wait::Return;
use futures::StreamExt;
use std::time::Duration;

/// The futures' runtime, or `None` when there are no futures (nothing to wait for).
fn runtime_of<T>(futures: &[Future<T>]) -> Option<Runtime> {
    futures.first().map(|f| f.runtime.clone())
}

/// An iterator over futures in the order they complete: the blocking form of
/// [`crate::as_completed`]. Failed and cancelled futures are yielded too.
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let futs = client.map(inc, (0..100).map(|i| (i,)))?;
/// for f in rudask::blocking::as_completed(futs)? {
///     println!("{} -> {:?}", f.key(), f.result());
/// }
/// # Ok(()) }
/// ```
pub fn as_completed<T: 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
) -> Result<AsCompleted<T>> {
    check_can_block()?;
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    let runtime = runtime_of(&futures);
    let inner = crate::as_completed(futures.into_iter().map(Future::into_async));
    Ok(AsCompleted { inner, runtime })
}

/// Returned by [`as_completed`].
pub struct AsCompleted<T> {
    inner: crate::AsCompleted<T>,
    runtime: Option<Runtime>,
}

impl<T: 'static> AsCompleted<T> {
    /// Adds a future to the set, also while iterating.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let mut done = rudask::blocking::as_completed([client.submit(inc, (0,))?])?;
    /// while let Some(f) = done.next() {
    ///     let x = f.result()?;
    ///     if x < 10 {
    ///         done.add(client.submit(inc, (x,))?);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn add(&mut self, future: Future<T>) {
        self.runtime.get_or_insert_with(|| future.runtime.clone());
        self.inner.add(future.inner);
    }

    /// How many futures have not been yielded yet.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let done = rudask::blocking::as_completed(client.map(inc, [(1,), (2,)])?)?;
    /// assert_eq!(done.remaining(), 2);
    /// # Ok(()) }
    /// ```
    pub fn remaining(&self) -> usize {
        crate::AsCompleted::count(&self.inner)
    }

    /// True when every future has been yielded.
    ///
    /// ```no_run
    /// # fn demo() -> rudask::Result<()> {
    /// let none: Vec<rudask::blocking::Future<i64>> = Vec::new();
    /// assert!(rudask::blocking::as_completed(none)?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl<T> std::fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted").field("inner", &self.inner).finish()
    }
}

impl<T: 'static> Iterator for AsCompleted<T> {
    type Item = Future<T>;

    fn next(&mut self) -> Option<Future<T>> {
        let runtime = self.runtime.clone()?;
        // Completions arrive through callbacks, so this wait needs no runtime
        // context; `as_completed` already checked that blocking is allowed.
        let next = futures::executor::block_on(self.inner.next())?;
        Some(Future { inner: next, runtime })
    }
}

/// Futures split into `(done, not_done)` by [`wait`].
pub type DoneAndPending<T> = (Vec<Future<T>>, Vec<Future<T>>);

/// Waits until all (or the first) of the futures are done and splits them
/// into `(done, not_done)`: the blocking form of [`crate::wait`].
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// use rudask::Return;
/// let futs = client.map(inc, (0..10).map(|i| (i,)))?;
/// let (done, not_done) = rudask::blocking::wait(futs, Return::AllCompleted, None)?;
/// assert_eq!((done.len(), not_done.len()), (10, 0));
/// # Ok(()) }
/// ```
pub fn wait<T: 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
    until: Return,
    timeout: Option<Duration>,
) -> Result<DoneAndPending<T>> {
    check_can_block()?;
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    let Some(runtime) = runtime_of(&futures) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
    runtime.block_on(crate::wait(inner, until, timeout))??;
    Ok(futures.into_iter().partition(Future::done))
}

/// Shows a progress bar on a terminal until every future is done: the
/// blocking form of [`crate::progress`].
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let futs = client.map(inc, (0..1000).map(|i| (i,)))?;
/// rudask::blocking::progress(&futs)?;
/// # Ok(()) }
/// ```
pub fn progress<T: 'static>(futures: &[Future<T>]) -> Result<()> {
    check_can_block()?;
    let Some(runtime) = runtime_of(futures) else {
        return Ok(());
    };
    let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
    runtime.block_on(crate::progress(&inner))
}

/// Lets the future's task run to completion even after every handle is
/// dropped and the client is gone. See [`crate::fire_and_forget`].
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// rudask::blocking::fire_and_forget(&client.submit(inc, (1,))?)?;
/// # Ok(()) }
/// ```
pub fn fire_and_forget<T>(future: &Future<T>) -> Result<()> {
    crate::fire_and_forget(&future.inner)
}

impl<T> Future<T> {
    /// Computes a failed future again. See [`crate::Future::retry`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn flaky(x: i64) -> Result<i64, String> { Ok(x) }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let x = client.submit(flaky, (1,))?;
    /// if x.result().is_err() {
    ///     x.retry()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn retry(&self) -> Result<()> {
        self.inner.retry()
    }

    /// Calls `f` once the future is done (at once if it already is). See
    /// [`crate::Future::add_done_callback`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.submit(inc, (1,))?.add_done_callback(|f| println!("{} done", f.key()));
    /// # Ok(()) }
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(Future<T>) + Send + 'static)
    where
        T: 'static,
    {
        let runtime = self.runtime.clone();
        self.inner.add_done_callback(move |inner| f(Future { inner, runtime }));
    }
}

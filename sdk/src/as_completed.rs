//! [`as_completed`]: futures in the order they finish.
//!
//! Each added future gets a done-callback that pushes it onto a shared queue
//! and wakes the consumer, so a completion costs O(1) however many futures
//! are still pending; nothing polls the pending ones.

use crate::error::Result;
use crate::future::Future;
use crate::task::Value;
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct Ready<T> {
    done: VecDeque<Future<T>>,
    waker: Option<Waker>,
}

struct Queue<T> {
    ready: Mutex<Ready<T>>,
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, Ready<T>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, f: Future<T>) {
        let waker = {
            let mut g = self.lock();
            g.done.push_back(f);
            g.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A stream of futures in the order they complete; see [`as_completed`].
pub struct AsCompleted<T> {
    queue: Arc<Queue<T>>,
    // Added but not yet yielded.
    remaining: usize,
}

impl<T> std::fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted").field("remaining", &self.remaining).finish()
    }
}

/// Yields `futures` as they complete: finished, failed or cancelled (none is
/// left out). A [`futures::Stream`]; more futures can be [added](AsCompleted::add)
/// while iterating.
///
/// ```no_run
/// use futures::StreamExt;
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let futs = client.map(inc, (0..100).map(|i| (i,)))?;
/// let mut done = rudask::as_completed(futs);
/// while let Some(f) = done.next().await {
///     println!("{} -> {:?}", f.key(), f.result().await);
/// }
/// # Ok(()) }
/// ```
pub fn as_completed<T: 'static>(futures: impl IntoIterator<Item = Future<T>>) -> AsCompleted<T> {
    let mut ac = AsCompleted {
        queue: Arc::new(Queue { ready: Mutex::new(Ready { done: VecDeque::new(), waker: None }) }),
        remaining: 0,
    };
    for f in futures {
        ac.add(f);
    }
    ac
}

impl<T: 'static> AsCompleted<T> {
    /// Adds a future to the set, also while iterating.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let mut done = rudask::as_completed([client.submit(inc, (0,))?]);
    /// while let Some(f) = done.next().await {
    ///     let x = f.result().await?;
    ///     if x < 10 {
    ///         done.add(client.submit(inc, (x,))?);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn add(&mut self, future: Future<T>) {
        self.remaining += 1;
        let queue = self.queue.clone();
        future.add_done_callback(move |f| queue.push(f));
    }
}

impl<T> AsCompleted<T> {
    /// How many futures were added and not yet yielded. (With
    /// [`futures::StreamExt`] in scope, `ac.count()` resolves to the stream
    /// method; write `AsCompleted::count(&ac)`.)
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let done = rudask::as_completed(client.map(inc, (0..3).map(|i| (i,)))?);
    /// assert_eq!(done.count(), 3);
    /// # Ok(()) }
    /// ```
    pub fn count(&self) -> usize {
        self.remaining
    }

    /// True when every added future was yielded.
    ///
    /// ```
    /// let done = rudask::as_completed(Vec::<rudask::Future<i64>>::new());
    /// assert!(done.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Yields each completed future with its result, fetched as it completes.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let futs = client.map(inc, (0..10).map(|i| (i,)))?;
    /// let mut done = rudask::as_completed(futs).with_results();
    /// while let Some((f, r)) = done.next().await {
    ///     println!("{}: {:?}", f.key(), r);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_results(self) -> impl Stream<Item = (Future<T>, Result<T>)> + Send
    where
        T: Value,
    {
        // Values that are not inline are fetched from workers; a few fetches
        // in flight hide that latency while keeping the completion order.
        self.map(|f| async move {
            let r = f.result().await;
            (f, r)
        })
        .buffered(64)
    }

    /// Yields everything completed at once as one batch (never empty).
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let futs = client.map(inc, (0..1000).map(|i| (i,)))?;
    /// let mut batches = rudask::as_completed(futs).batches();
    /// while let Some(batch) = batches.next().await {
    ///     println!("{} more done", batch.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn batches(self) -> Batches<T> {
        Batches(self)
    }

    fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<Future<T>>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let mut g = self.queue.lock();
        if g.done.is_empty() {
            if !g.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                g.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let batch: Vec<Future<T>> = g.done.drain(..).collect();
        drop(g);
        self.remaining -= batch.len();
        Poll::Ready(Some(batch))
    }
}

impl<T> Stream for AsCompleted<T> {
    type Item = Future<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Future<T>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let mut g = this.queue.lock();
        match g.done.pop_front() {
            Some(f) => {
                drop(g);
                this.remaining -= 1;
                Poll::Ready(Some(f))
            }
            None => {
                if !g.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    g.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// Batches of completed futures; see [`AsCompleted::batches`].
#[derive(Debug)]
pub struct Batches<T>(AsCompleted<T>);

impl<T> Stream for Batches<T> {
    type Item = Vec<Future<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<Future<T>>>> {
        self.get_mut().0.poll_batch(cx)
    }
}

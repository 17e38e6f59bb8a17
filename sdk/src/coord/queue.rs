use super::{timed_out, unexpected, waiting, Storable};
use crate::client::{Client, Grant};
use crate::error::Result;
use rudask_core::protocol::{CoordReply, CoordRequest};
use std::marker::PhantomData;
use std::time::Duration;

/// A first-in, first-out queue on the scheduler, shared by name.
///
/// `maxsize` bounds it (0: unbounded): [`Queue::put`] waits while it is
/// full. It applies when the queue is created, i.e. while it is empty.
/// A `Queue<Future<T>>` keeps the results of the futures in it alive.
///
/// ```no_run
/// use rudask::coord::Queue;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let q: Queue<i64> = Queue::new(&client, "numbers", 0);
/// q.put(1, None).await?;
/// assert_eq!(q.get(None).await?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Queue<T> {
    client: Client,
    name: String,
    what: String,
    maxsize: u32,
    _t: PhantomData<fn() -> T>,
}

impl<T: Storable> Queue<T> {
    /// A handle on queue `name`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::Client) {
    /// let q: rudask::coord::Queue<String> = rudask::coord::Queue::new(&client, "jobs", 10);
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str, maxsize: u32) -> Self {
        Queue {
            client: client.clone(),
            name: name.to_string(),
            what: format!("queue {name}"),
            maxsize,
            _t: PhantomData,
        }
    }

    /// The queue's name.
    ///
    /// ```no_run
    /// # fn demo(q: rudask::coord::Queue<i64>) {
    /// println!("{}", q.name());
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends `value`, waiting up to `timeout` for room in a full queue
    /// ([`crate::Error::Timeout`] after that).
    ///
    /// ```no_run
    /// # async fn demo(q: rudask::coord::Queue<i64>) -> rudask::Result<()> {
    /// q.put(7, Some(std::time::Duration::from_secs(1))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn put(&self, value: T, timeout: Option<Duration>) -> Result<()> {
        let (wait, t) = waiting(timeout);
        let req = CoordRequest::QueuePut {
            name: self.name.clone(),
            maxsize: self.maxsize,
            value: value.to_wire()?,
            wait,
        };
        match self.client.inner().coord_wait(req, t, Grant::Nothing).await?.1 {
            CoordReply::Done => Ok(()),
            CoordReply::TimedOut => Err(timed_out(timeout)),
            other => Err(unexpected(other)),
        }
    }

    /// Takes the oldest item, waiting up to `timeout` for one
    /// ([`crate::Error::Timeout`] after that).
    ///
    /// ```no_run
    /// # async fn demo(q: rudask::coord::Queue<i64>) -> rudask::Result<()> {
    /// match q.get(Some(std::time::Duration::ZERO)).await {
    ///     Ok(n) => println!("got {n}"),
    ///     Err(rudask::Error::Timeout(_)) => println!("empty"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, timeout: Option<Duration>) -> Result<T> {
        let (wait, t) = waiting(timeout);
        let req = CoordRequest::QueueGet { name: self.name.clone(), wait };
        match self.client.inner().coord_wait(req, t, Grant::Nothing).await?.1 {
            CoordReply::Values(mut vs) if vs.len() == 1 => {
                T::from_wire(&self.client, vs.pop().expect("one"), &self.what)
            }
            CoordReply::TimedOut => Err(timed_out(timeout)),
            other => Err(unexpected(other)),
        }
    }

    /// Takes up to `n` items at once, without waiting (an empty `Vec` when
    /// the queue is empty).
    ///
    /// ```no_run
    /// # async fn demo(q: rudask::coord::Queue<i64>) -> rudask::Result<()> {
    /// let some = q.get_batch(100).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_batch(&self, n: usize) -> Result<Vec<T>> {
        let max = u32::try_from(n).unwrap_or(u32::MAX);
        let req = CoordRequest::QueueGetBatch { name: self.name.clone(), max };
        match self.client.inner().coord(req).await? {
            CoordReply::Values(vs) => {
                vs.into_iter().map(|v| T::from_wire(&self.client, v, &self.what)).collect()
            }
            other => Err(unexpected(other)),
        }
    }

    /// Number of items in the queue.
    ///
    /// ```no_run
    /// # async fn demo(q: rudask::coord::Queue<i64>) -> rudask::Result<()> {
    /// println!("{} waiting", q.qsize().await?);
    /// # Ok(()) }
    /// ```
    pub async fn qsize(&self) -> Result<usize> {
        match self.client.inner().coord(CoordRequest::QueueSize { name: self.name.clone() }).await?
        {
            CoordReply::Count(n) => Ok(n as usize),
            other => Err(unexpected(other)),
        }
    }
}

use super::{unexpected, Storable};
use crate::client::{Client, Received, SubBuffer};
use crate::error::{Error, Result};
use futures::Stream;
use rudask_core::protocol::{CoordReply, CoordRequest};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// How many unread messages a [`Sub`] keeps by default.
pub const DEFAULT_SUB_BUFFER: usize = 1_000;

/// Publishes messages on a topic: every [`Sub`] of the topic, on any client
/// or task, receives each message published after it subscribed, in the
/// order this publisher sent them.
///
/// ```no_run
/// use rudask::coord::{Pub, Sub};
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let mut sub: Sub<String> = Sub::new(&client, "news").await?;
/// let publisher: Pub<String> = Pub::new(&client, "news");
/// publisher.put("hello".to_string())?;
/// assert_eq!(sub.get(None).await?, "hello");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Pub<T> {
    client: Client,
    topic: String,
    _t: PhantomData<fn(T)>,
}

impl<T: Storable> Pub<T> {
    /// A publisher on `topic`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::Client) {
    /// let p: rudask::coord::Pub<u32> = rudask::coord::Pub::new(&client, "progress");
    /// # }
    /// ```
    pub fn new(client: &Client, topic: &str) -> Self {
        Pub { client: client.clone(), topic: topic.to_string(), _t: PhantomData }
    }

    /// Sends `value` to the topic's current subscribers, without waiting.
    ///
    /// ```no_run
    /// # fn demo(p: rudask::coord::Pub<u32>) -> rudask::Result<()> {
    /// p.put(42)?;
    /// # Ok(()) }
    /// ```
    pub fn put(&self, value: T) -> Result<()> {
        let req = CoordRequest::Publish { topic: self.topic.clone(), value: value.to_wire()? };
        self.client.inner().coord_notify(req)
    }
}

/// Receives the messages published on a topic from the moment it was made.
/// It is a [`Stream`] of `Result<T>`; unread messages wait in a bounded
/// buffer, and when a slow reader lets it overflow, the oldest messages are
/// dropped and the next item is [`Error::Lagged`] with their number. The
/// stream ends when the client disconnects.
///
/// ```no_run
/// use futures::StreamExt;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let mut sub: rudask::coord::Sub<u32> = rudask::coord::Sub::new(&client, "progress").await?;
/// while let Some(msg) = sub.next().await {
///     match msg {
///         Ok(n) => println!("{n}"),
///         Err(rudask::Error::Lagged { missed, .. }) => println!("missed {missed}"),
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Sub<T> {
    client: Client,
    topic: String,
    what: String,
    id: u64,
    buffer: Arc<SubBuffer>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Storable> Sub<T> {
    /// Subscribes to `topic` with a buffer of [`DEFAULT_SUB_BUFFER`] messages.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let sub: rudask::coord::Sub<u32> = rudask::coord::Sub::new(&client, "t").await?;
    /// # Ok(()) }
    /// ```
    pub async fn new(client: &Client, topic: &str) -> Result<Self> {
        Self::with_buffer(client, topic, DEFAULT_SUB_BUFFER).await
    }

    /// Subscribes to `topic`, keeping at most `capacity` unread messages.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let sub: rudask::coord::Sub<u32> = rudask::coord::Sub::with_buffer(&client, "t", 10).await?;
    /// # Ok(()) }
    /// ```
    pub async fn with_buffer(client: &Client, topic: &str, capacity: usize) -> Result<Self> {
        let buffer = SubBuffer::new(capacity);
        let id = client.inner().add_subscriber(buffer.clone());
        let sub = Sub {
            client: client.clone(),
            topic: topic.to_string(),
            what: format!("topic {topic}"),
            id,
            buffer,
            _t: PhantomData,
        };
        let req = CoordRequest::Subscribe { topic: topic.to_string(), sub: id };
        match client.inner().coord(req).await? {
            CoordReply::Done => Ok(sub),
            other => Err(unexpected(other)),
        }
    }

    /// The topic.
    ///
    /// ```no_run
    /// # fn demo(sub: rudask::coord::Sub<u32>) {
    /// println!("{}", sub.topic());
    /// # }
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message, waiting up to `timeout` for one
    /// ([`Error::Timeout`] after that; [`Error::Lagged`] if messages were
    /// dropped since the last read).
    ///
    /// ```no_run
    /// # async fn demo(mut sub: rudask::coord::Sub<u32>) -> rudask::Result<()> {
    /// let n = sub.get(Some(std::time::Duration::from_secs(1))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&mut self, timeout: Option<Duration>) -> Result<T> {
        let next = std::future::poll_fn(|cx| self.poll_item(cx));
        let item = match timeout {
            None => next.await,
            Some(t) => tokio::time::timeout(t, next).await.map_err(|_| Error::Timeout(t))?,
        };
        item.unwrap_or_else(|| {
            Err(Error::Disconnected(format!(
                "the client of the subscriber of {} disconnected",
                self.what
            )))
        })
    }

    fn poll_item(&self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        match self.buffer.poll(cx.waker()) {
            None => Poll::Pending,
            Some(Received::Value(v)) => {
                Poll::Ready(Some(T::from_wire(&self.client, v, &self.what)))
            }
            Some(Received::Lagged(missed)) => {
                self.client.inner().disown(self.buffer.take_unread_keys(false));
                Poll::Ready(Some(Err(Error::Lagged { topic: self.topic.clone(), missed })))
            }
            Some(Received::Closed) => Poll::Ready(None),
        }
    }
}

impl<T: Storable> Stream for Sub<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.poll_item(cx)
    }
}

impl<T> Drop for Sub<T> {
    fn drop(&mut self) {
        self.client.inner().remove_subscriber(&self.topic, self.id);
        self.client.inner().disown(self.buffer.take_unread_keys(true));
    }
}

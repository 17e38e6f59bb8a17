//! Events: values logged on named topics, kept (the last 10,000 per topic) by
//! the scheduler and pushed to the clients that subscribed to the topic.

use super::{lock, unexpected, Client, ClientInner};
use crate::error::{Error, Result};
use crate::task::{decode_value, Value};
use rudask_core::protocol::{Reply, Request};
use rudask_core::Payload;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// One event of a topic, as a subscription handler receives it.
///
/// ```
/// # fn handler(event: rudask::Event) -> rudask::Result<()> {
/// let value: String = event.decode()?;
/// println!("{} at {:?}: {value}", event.topic, event.time);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Event {
    /// The topic.
    pub topic: String,
    /// When it was logged (by the logging client's clock).
    pub time: SystemTime,
    data: Payload,
}

impl Event {
    /// The event's value as a `T`.
    ///
    /// ```
    /// # fn handler(event: rudask::Event) {
    /// let n: rudask::Result<i64> = event.decode();
    /// # }
    /// ```
    pub fn decode<T: Value>(&self) -> Result<T> {
        decode_value(&format!("event on topic {}", self.topic), &self.data)
    }
}

fn to_time(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(secs).unwrap_or_default()
}

type Handlers = Vec<(u64, mpsc::UnboundedSender<Event>)>;

/// This client's event handlers, by topic.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    topics: Mutex<FxHashMap<String, Handlers>>,
    next: AtomicU64,
}

impl Subscriptions {
    /// Hands a new event to the topic's handlers.
    pub(super) fn dispatch(&self, topic: String, time: f64, data: Payload) {
        let topics = lock(&self.topics);
        if let Some(handlers) = topics.get(&topic) {
            let event = Event { topic, time: to_time(time), data };
            for (_, tx) in handlers {
                let _ = tx.send(event.clone());
            }
        }
    }

    /// Adds a handler; true when it is the topic's first.
    fn add(&self, topic: &str, tx: mpsc::UnboundedSender<Event>) -> (u64, bool) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut topics = lock(&self.topics);
        let handlers = topics.entry(topic.to_string()).or_default();
        handlers.push((id, tx));
        (id, handlers.len() == 1)
    }

    /// Removes a handler; true when it was the topic's last.
    fn remove(&self, topic: &str, id: u64) -> bool {
        let mut topics = lock(&self.topics);
        let Some(handlers) = topics.get_mut(topic) else { return false };
        handlers.retain(|(h, _)| *h != id);
        let last = handlers.is_empty();
        if last {
            topics.remove(topic);
        }
        last
    }
}

/// A subscription to a topic: its handler is called until this is dropped
/// (or [`Client::unsubscribe_topic`] removes every handler of the topic).
///
/// ```no_run
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let sub = client.subscribe_topic("progress", |e| println!("{:?}", e.decode::<u32>())).await?;
/// drop(sub); // no more calls
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "the handler is removed when the subscription is dropped"]
pub struct Subscription {
    client: Arc<ClientInner>,
    topic: String,
    id: u64,
}

impl Subscription {
    /// The topic.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let sub = client.subscribe_topic("t", |_| {}).await?;
    /// assert_eq!(sub.topic(), "t");
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.client.shared.subscriptions.remove(&self.topic, self.id) {
            self.client.notify(Request::Unsubscribe { topic: self.topic.clone() });
        }
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Client {
    /// Records `msg` on `topic`: the scheduler keeps the last 10,000 events
    /// of each topic and passes new ones to every client subscribed to it.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.log_event("progress", 42u32).await?;
    /// # Ok(()) }
    /// ```
    pub async fn log_event(&self, topic: &str, msg: impl Serialize) -> Result<()> {
        let data = rudask_core::registry::encode_serde(&msg)
            .map_err(|e| Error::Serialization(format!("could not encode an event: {e}")))?;
        let req = Request::LogEvent { topic: topic.to_string(), time: now(), data };
        match self.inner.request(req).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Calls `handler` for every new event on `topic`, logged by any client,
    /// in order, on a task of its own (a slow handler delays only its own
    /// events). Must be called within a tokio runtime. The handler runs until
    /// the returned [`Subscription`] is dropped.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let _sub = client
    ///     .subscribe_topic("progress", move |e| { let _ = tx.send(e.decode::<u32>()); })
    ///     .await?;
    /// client.log_event("progress", 1u32).await?;
    /// assert_eq!(rx.recv().await.unwrap()?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_topic(
        &self,
        topic: &str,
        mut handler: impl FnMut(Event) + Send + 'static,
    ) -> Result<Subscription> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let (id, first) = self.inner.shared.subscriptions.add(topic, tx);
        let subscription =
            Subscription { client: self.inner.clone(), topic: topic.to_string(), id };
        if first {
            match self.inner.request(Request::Subscribe { topic: topic.to_string() }).await? {
                Reply::Done => {}
                other => return Err(unexpected(&other)),
            }
        }
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                handler(event);
            }
        });
        Ok(subscription)
    }

    /// Removes every handler of `topic` on this client; the scheduler stops
    /// sending its events here.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.unsubscribe_topic("progress").await?;
    /// # Ok(()) }
    /// ```
    pub async fn unsubscribe_topic(&self, topic: &str) -> Result<()> {
        lock(&self.inner.shared.subscriptions.topics).remove(topic);
        match self.inner.request(Request::Unsubscribe { topic: topic.to_string() }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// The events the scheduler holds for `topic` (the last 10,000), oldest
    /// first, with their values decoded as `T`.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// for (time, n) in client.get_events::<u32>("progress").await? {
    ///     println!("{time:?}: {n}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_events<T: Value>(&self, topic: &str) -> Result<Vec<(SystemTime, T)>> {
        match self.inner.request(Request::GetEvents { topic: topic.to_string() }).await? {
            Reply::Events(events) => events
                .into_iter()
                .map(|(time, data)| {
                    let label = format!("event on topic {topic}");
                    Ok((to_time(time), decode_value(&label, &data)?))
                })
                .collect(),
            other => Err(unexpected(&other)),
        }
    }
}

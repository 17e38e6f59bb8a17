use super::{unexpected, waiting};
use crate::client::{Client, Grant};
use crate::error::Result;
use rudask_core::protocol::{CoordReply, CoordRequest};
use std::time::Duration;

/// A named flag on the scheduler: [`Event::wait`] returns once it is set,
/// for every waiter.
///
/// ```no_run
/// use rudask::coord::Event;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let ready = Event::new(&client, "ready");
/// ready.set().await?;
/// assert!(ready.wait(None).await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Event {
    client: Client,
    name: String,
}

impl Event {
    /// A handle on event `name`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::Client) {
    /// let e = rudask::coord::Event::new(&client, "go");
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str) -> Self {
        Event { client: client.clone(), name: name.to_string() }
    }

    async fn simple(&self, req: CoordRequest) -> Result<CoordReply> {
        self.client.inner().coord(req).await
    }

    /// Sets the flag, waking every waiter.
    ///
    /// ```no_run
    /// # async fn demo(e: rudask::coord::Event) -> rudask::Result<()> {
    /// e.set().await?;
    /// # Ok(()) }
    /// ```
    pub async fn set(&self) -> Result<()> {
        match self.simple(CoordRequest::EventSet { name: self.name.clone() }).await? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Clears the flag.
    ///
    /// ```no_run
    /// # async fn demo(e: rudask::coord::Event) -> rudask::Result<()> {
    /// e.clear().await?;
    /// # Ok(()) }
    /// ```
    pub async fn clear(&self) -> Result<()> {
        match self.simple(CoordRequest::EventClear { name: self.name.clone() }).await? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Waits up to `timeout` for the flag to be set; false if it was not.
    ///
    /// ```no_run
    /// # async fn demo(e: rudask::coord::Event) -> rudask::Result<()> {
    /// let was_set = e.wait(Some(std::time::Duration::from_secs(1))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let (wait, t) = waiting(timeout);
        let req = CoordRequest::EventWait { name: self.name.clone(), wait };
        match self.client.inner().coord_wait(req, t, Grant::Nothing).await?.1 {
            CoordReply::Granted => Ok(true),
            CoordReply::TimedOut => Ok(false),
            other => Err(unexpected(other)),
        }
    }

    /// Whether the flag is set.
    ///
    /// ```no_run
    /// # async fn demo(e: rudask::coord::Event) -> rudask::Result<()> {
    /// println!("{}", e.is_set().await?);
    /// # Ok(()) }
    /// ```
    pub async fn is_set(&self) -> Result<bool> {
        match self.simple(CoordRequest::EventIsSet { name: self.name.clone() }).await? {
            CoordReply::Flag(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }
}

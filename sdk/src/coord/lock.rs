use super::{unexpected, waiting};
use crate::client::{Client, Grant};
use crate::error::{Error, Result};
use rudask_core::protocol::{CoordReply, CoordRequest};
use std::sync::Mutex;
use std::time::Duration;

/// A named mutual-exclusion lock on the scheduler. Waiters get it in the
/// order they asked. A handle holds it at most once (not reentrant); two
/// handles exclude each other even on the same client (e.g. two tasks of one
/// worker). A held lock is released when its handle is dropped or its
/// client disconnects.
///
/// ```no_run
/// use rudask::coord::Lock;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let lock = Lock::new(&client, "counter");
/// assert!(lock.acquire(None).await?);
/// // ... critical section ...
/// lock.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lock {
    client: Client,
    name: String,
    token: Mutex<Option<u64>>,
}

impl Lock {
    /// A handle on lock `name`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::Client) {
    /// let lock = rudask::coord::Lock::new(&client, "db");
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str) -> Self {
        Lock { client: client.clone(), name: name.to_string(), token: Mutex::new(None) }
    }

    fn token(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.token.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Acquires the lock, waiting up to `timeout` (`Some(Duration::ZERO)`:
    /// try once); false if it was not acquired in time.
    ///
    /// ```no_run
    /// # async fn demo(lock: rudask::coord::Lock) -> rudask::Result<()> {
    /// if lock.acquire(Some(std::time::Duration::ZERO)).await? {
    ///     lock.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.token().is_some() {
            return Err(Error::InvalidArgument(format!(
                "this handle already holds lock {}; release it first (locks are not reentrant)",
                self.name
            )));
        }
        let (wait, t) = waiting(timeout);
        let req = CoordRequest::LockAcquire { name: self.name.clone(), wait };
        match self.client.inner().coord_wait(req, t, Grant::Lock(&self.name)).await? {
            (id, CoordReply::Granted) => {
                *self.token() = Some(id);
                Ok(true)
            }
            (_, CoordReply::TimedOut) => Ok(false),
            (_, other) => Err(unexpected(other)),
        }
    }

    /// Releases the lock; an error if this handle does not hold it.
    ///
    /// ```no_run
    /// # async fn demo(lock: rudask::coord::Lock) -> rudask::Result<()> {
    /// lock.acquire(None).await?;
    /// lock.release().await?;
    /// assert!(lock.release().await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn release(&self) -> Result<()> {
        let token = self.token().take().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "lock {} is not held by this handle; release only a lock you acquired",
                self.name
            ))
        })?;
        let req = CoordRequest::LockRelease { name: self.name.clone(), token };
        match self.client.inner().coord(req).await? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Whether anyone holds the lock.
    ///
    /// ```no_run
    /// # async fn demo(lock: rudask::coord::Lock) -> rudask::Result<()> {
    /// println!("locked: {}", lock.locked().await?);
    /// # Ok(()) }
    /// ```
    pub async fn locked(&self) -> Result<bool> {
        Ok(self.holder().await?.is_some())
    }

    /// The name of the client holding the lock, if any.
    ///
    /// ```no_run
    /// # async fn demo(lock: rudask::coord::Lock) -> rudask::Result<()> {
    /// if let Some(who) = lock.holder().await? {
    ///     println!("held by {who}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn holder(&self) -> Result<Option<String>> {
        match self
            .client
            .inner()
            .coord(CoordRequest::LockHolder { name: self.name.clone() })
            .await?
        {
            CoordReply::Holders(mut names) => Ok(names.pop()),
            other => Err(unexpected(other)),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let token = self.token().take();
        if let Some(token) = token {
            let req = CoordRequest::LockRelease { name: std::mem::take(&mut self.name), token };
            let _ = self.client.inner().coord_notify(req);
        }
    }
}

use super::{unexpected, waiting};
use crate::client::{Client, Grant};
use crate::error::{Error, Result};
use rudask_core::protocol::{CoordReply, CoordRequest};
use std::sync::Mutex;
use std::time::Duration;

/// A named semaphore on the scheduler: at most `max_leases` leases are held
/// at a time. Leases belong to the acquiring handle and are freed when it is
/// dropped or its client disconnects (a killed worker process frees the
/// leases of its tasks at once).
///
/// ```no_run
/// use rudask::coord::Semaphore;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let db = Semaphore::new(&client, "db-connections", 4);
/// db.acquire(None).await?;
/// // ... at most 4 of these at once, cluster-wide ...
/// db.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Semaphore {
    client: Client,
    name: String,
    max_leases: u32,
    leases: Mutex<Vec<u64>>,
}

impl Semaphore {
    /// A handle on semaphore `name` with `max_leases` leases (which applies
    /// when nobody holds a lease of it).
    ///
    /// ```no_run
    /// # fn demo(client: rudask::Client) {
    /// let s = rudask::coord::Semaphore::new(&client, "s", 2);
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str, max_leases: u32) -> Self {
        Semaphore {
            client: client.clone(),
            name: name.to_string(),
            max_leases,
            leases: Mutex::new(Vec::new()),
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Acquires a lease, waiting up to `timeout` (`Some(Duration::ZERO)`:
    /// try once); false if none was free in time.
    ///
    /// ```no_run
    /// # async fn demo(s: rudask::coord::Semaphore) -> rudask::Result<()> {
    /// if s.acquire(Some(std::time::Duration::from_secs(1))).await? {
    ///     s.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        let (wait, t) = waiting(timeout);
        let req = CoordRequest::SemaphoreAcquire {
            name: self.name.clone(),
            max_leases: self.max_leases,
            wait,
        };
        match self.client.inner().coord_wait(req, t, Grant::Lease(&self.name)).await? {
            (id, CoordReply::Granted) => {
                self.leases().push(id);
                Ok(true)
            }
            (_, CoordReply::TimedOut) => Ok(false),
            (_, other) => Err(unexpected(other)),
        }
    }

    /// Gives back a lease of this handle; an error ("released too often")
    /// if it holds none.
    ///
    /// ```no_run
    /// # async fn demo(s: rudask::coord::Semaphore) -> rudask::Result<()> {
    /// s.acquire(None).await?;
    /// s.release().await?;
    /// assert!(s.release().await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn release(&self) -> Result<()> {
        let lease = self.leases().pop().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "semaphore {} released too often: this handle holds no lease",
                self.name
            ))
        })?;
        let req = CoordRequest::SemaphoreRelease { name: self.name.clone(), lease };
        match self.client.inner().coord(req).await? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Number of leases held, by anyone.
    ///
    /// ```no_run
    /// # async fn demo(s: rudask::coord::Semaphore) -> rudask::Result<()> {
    /// println!("{} in use", s.get_value().await?);
    /// # Ok(()) }
    /// ```
    pub async fn get_value(&self) -> Result<usize> {
        let req = CoordRequest::SemaphoreValue { name: self.name.clone() };
        match self.client.inner().coord(req).await? {
            CoordReply::Count(n) => Ok(n as usize),
            other => Err(unexpected(other)),
        }
    }

    /// Names of the clients holding leases, one entry per lease.
    ///
    /// ```no_run
    /// # async fn demo(s: rudask::coord::Semaphore) -> rudask::Result<()> {
    /// for who in s.holders().await? {
    ///     println!("{who}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn holders(&self) -> Result<Vec<String>> {
        let req = CoordRequest::SemaphoreHolders { name: self.name.clone() };
        match self.client.inner().coord(req).await? {
            CoordReply::Holders(names) => Ok(names),
            other => Err(unexpected(other)),
        }
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        for lease in std::mem::take(&mut *self.leases()) {
            let req = CoordRequest::SemaphoreRelease { name: self.name.clone(), lease };
            let _ = self.client.inner().coord_notify(req);
        }
    }
}

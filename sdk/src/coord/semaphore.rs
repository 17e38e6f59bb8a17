use super::{unexpected, waiting};
use crate::client::{Client, Grant};
use crate::error::{Error, Result};
use rudask_core::protocol::{CoordReply, CoordRequest};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A named semaphore on the scheduler: at most `max_leases` leases are held
/// at a time. Leases belong to the acquiring handle and are freed when it is
/// dropped or its client disconnects (a killed worker process frees the
/// leases of its tasks at once).
///
/// A client that stays connected but hangs (a frozen process, a stuck
/// event loop) keeps its leases, unless the handle was made with
/// [`Semaphore::with_lease_timeout`]: its leases are then refreshed in the
/// background and the scheduler frees those not refreshed in time.
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
    leases: Arc<Mutex<Vec<u64>>>,
    lease_timeout: Option<Duration>,
    // Refreshes the leases of a handle with a lease timeout, from its first
    // acquire (which runs in a runtime) until the handle is dropped.
    refresher: Mutex<Option<tokio::task::AbortHandle>>,
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
            leases: Arc::new(Mutex::new(Vec::new())),
            lease_timeout: None,
            refresher: Mutex::new(None),
        }
    }

    /// A handle on semaphore `name` whose leases expire when not refreshed
    /// within `lease_timeout`. The handle refreshes them (one message for
    /// all its leases every third of the timeout) while its process runs, so
    /// they expire only when it hangs while staying connected. An expired
    /// lease goes to the next waiter, and its later `release` errs saying
    /// it expired. The scheduler checks expiry on its tick (every second by
    /// default), so a lease is freed up to a tick after its timeout. A zero
    /// timeout makes `acquire` err.
    ///
    /// ```no_run
    /// use rudask::coord::Semaphore;
    /// use std::time::Duration;
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let db = Semaphore::with_lease_timeout(&client, "db-connections", 4, Duration::from_secs(30));
    /// db.acquire(None).await?;
    /// // ... a hung holder loses its lease after 30 s ...
    /// db.release().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_lease_timeout(
        client: &Client,
        name: &str,
        max_leases: u32,
        lease_timeout: Duration,
    ) -> Self {
        let mut s = Semaphore::new(client, name, max_leases);
        s.lease_timeout = Some(lease_timeout);
        s
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        lock(&self.leases)
    }

    fn start_refresher(&self, every: Duration) {
        let mut refresher = self.refresher.lock().unwrap_or_else(|p| p.into_inner());
        if refresher.is_some() {
            return;
        }
        let (client, name, leases) = (self.client.clone(), self.name.clone(), self.leases.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let held = lock(&leases).clone();
                if held.is_empty() {
                    continue;
                }
                let req = CoordRequest::SemaphoreRefresh { name: name.clone(), leases: held };
                if client.inner().coord_notify(req).is_err() {
                    return;
                }
            }
        });
        *refresher = Some(task.abort_handle());
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
            lease_timeout_us: self
                .lease_timeout
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        };
        match self.client.inner().coord_wait(req, t, Grant::Lease(&self.name)).await? {
            (id, CoordReply::Granted) => {
                self.leases().push(id);
                if let Some(timeout) = self.lease_timeout {
                    self.start_refresher(timeout / 3);
                }
                Ok(true)
            }
            (_, CoordReply::TimedOut) => Ok(false),
            (_, other) => Err(unexpected(other)),
        }
    }

    /// Gives back a lease of this handle; an error ("released too often")
    /// if it holds none, or saying the lease expired (with
    /// [`Semaphore::with_lease_timeout`]) if it was not refreshed in time.
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

fn lock(leases: &Mutex<Vec<u64>>) -> std::sync::MutexGuard<'_, Vec<u64>> {
    leases.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        if let Some(task) = self.refresher.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        for lease in std::mem::take(&mut *self.leases()) {
            let req = CoordRequest::SemaphoreRelease { name: self.name.clone(), lease };
            let _ = self.client.inner().coord_notify(req);
        }
    }
}

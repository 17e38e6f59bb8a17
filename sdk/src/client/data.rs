//! Where data lives on the cluster, and moving it: `who_has`, `has_what`,
//! `replicate`, `rebalance`; and where time goes: `profile`.

use super::{unexpected, Client};
use crate::error::Result;
use crate::future::{Future, Outcome};
use rudask_core::protocol::{Profile, Reply, Request};
use rudask_core::Key;
use std::collections::BTreeMap;

impl Client {
    /// For each future's key, the names of the workers holding its data
    /// (empty while it is not in memory).
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let x = client.submit(inc, (1,))?;
    /// x.result().await?;
    /// let holders = client.who_has(&[x.clone()]).await?;
    /// assert_eq!(holders[x.key()].len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn who_has<T>(&self, futures: &[Future<T>]) -> Result<BTreeMap<String, Vec<String>>> {
        let keys = keys_of(futures);
        match self.inner.request(Request::WhoHas { keys }).await? {
            Reply::WhoHas(holders) => {
                Ok(holders.into_iter().map(|(k, w)| (k.to_string(), w)).collect())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// For each connected worker (by name), the keys whose data it holds.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// for (worker, keys) in client.has_what().await? {
    ///     println!("{worker}: {} keys", keys.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn has_what(&self) -> Result<BTreeMap<String, Vec<String>>> {
        match self.inner.request(Request::HasWhat).await? {
            Reply::HasWhat(held) => Ok(held
                .into_iter()
                .map(|(w, keys)| (w, keys.iter().map(Key::to_string).collect()))
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    /// Copies each future's data to `n` workers in total (every worker when
    /// there are fewer than `n`), so it survives the loss of a holder and
    /// tasks find it nearby. Waits for the futures first, then for the
    /// copies; copies go directly between workers. Keys already on `n` or
    /// more workers are left as they are.
    ///
    /// Fails with a future's error when it failed, with
    /// [`crate::Error::InvalidArgument`] when `n` is 0, and with [`crate::Error::Scheduler`] when a copy could not be
    /// made (a worker left during the transfer); copies made stay.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> rudask::Result<()> {
    /// let cluster = rudask::LocalCluster::threads(3).await?;
    /// let client = cluster.client().await?;
    /// let data = client.scatter(vec![vec![1.0f64; 1000]]).workers(["local-0"]).await?;
    /// client.replicate(&data, 10).await?; // more than there are workers: all of them
    /// let holders = client.who_has(&data).await?;
    /// assert_eq!(holders[data[0].key()].len(), 3);
    /// assert_eq!(data[0].result().await?, vec![1.0; 1000]);
    /// # Ok(()) }
    /// ```
    pub async fn replicate<T>(&self, futures: &[Future<T>], n: usize) -> Result<()> {
        wait_all(futures).await?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match self.inner.request(Request::Replicate { keys: keys_of(futures), n }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Moves the futures' data between workers so that each worker holds
    /// about the same number of bytes: from workers above the mean to
    /// workers below it. Data is copied to its new worker before the old
    /// copy is dropped, so nothing is lost. Waits for the futures first, then
    /// for the moves. See [`Client::rebalance_all`] to move any data.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> rudask::Result<()> {
    /// let cluster = rudask::LocalCluster::threads(2).await?;
    /// let client = cluster.client().await?;
    /// let parts = client.scatter((0..8).map(|i| vec![i as f64; 1000])).workers(["local-0"]).await?;
    /// client.rebalance(&parts).await?;
    /// let held = client.has_what().await?;
    /// assert!(held.values().all(|keys| keys.len() == 4));
    /// assert_eq!(client.gather(&parts).await?[7], vec![7.0; 1000]);
    /// # Ok(()) }
    /// ```
    pub async fn rebalance<T>(&self, futures: &[Future<T>]) -> Result<()> {
        wait_all(futures).await?;
        self.rebalance_keys(Some(keys_of(futures))).await
    }

    /// Like [`Client::rebalance`], for every key in memory on the cluster.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.rebalance_all().await?;
    /// # Ok(()) }
    /// ```
    pub async fn rebalance_all(&self) -> Result<()> {
        self.rebalance_keys(None).await
    }

    async fn rebalance_keys(&self, keys: Option<Vec<Key>>) -> Result<()> {
        match self.inner.request(Request::Rebalance { keys }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// How many tasks of each function finished and how long they ran, in
    /// total and per worker, since the scheduler started.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// use rudask::Task;
    /// client.gather(&client.map(inc, (0..100).map(|i| (i,)))?).await?;
    /// let profile = client.profile().await?;
    /// let inc_runs = profile.function(inc.id()).expect("inc ran");
    /// assert_eq!(inc_runs.count, 100);
    /// println!("inc: {:?} on average", inc_runs.mean());
    /// # Ok(()) }
    /// ```
    pub async fn profile(&self) -> Result<Profile> {
        match self.inner.request(Request::Profile).await? {
            Reply::Profile(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }
}

fn keys_of<T>(futures: &[Future<T>]) -> Vec<Key> {
    futures.iter().map(|f| f.key_ref().state.key.clone()).collect()
}

/// Waits until every future is done; the first failure is returned.
async fn wait_all<T>(futures: &[Future<T>]) -> Result<()> {
    for f in futures {
        if let Outcome::Failed(e) = f.key_ref().state.outcome().await {
            return Err(e);
        }
    }
    Ok(())
}

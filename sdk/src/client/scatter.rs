//! [`Scatter`]: placing values on workers directly from the client.

use super::{lock, Client};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::task::{encode_value, Value};
use rudask_core::protocol::ScatteredKey;
use rudask_core::{Key, Payload};
use rustc_hash::FxHashMap;
use std::future::IntoFuture;

/// A pending scatter; set options, then `.await` it.
///
/// ```no_run
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let parts = client.scatter(vec![vec![1.0f64; 1000], vec![2.0; 1000]]).broadcast(true).await?;
/// assert_eq!(parts.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a scatter does nothing until awaited"]
pub struct Scatter<'a, T> {
    client: &'a Client,
    values: Vec<T>,
    workers: Option<Vec<String>>,
    broadcast: bool,
}

impl<'a, T: Value> Scatter<'a, T> {
    pub(super) fn new(client: &'a Client, values: Vec<T>) -> Self {
        Scatter { client, values, workers: None, broadcast: false }
    }

    /// Only these workers (by name or data address).
    pub fn workers<S: Into<String>>(mut self, workers: impl IntoIterator<Item = S>) -> Self {
        self.workers = Some(workers.into_iter().map(Into::into).collect());
        self
    }

    /// Every value to every chosen worker.
    pub fn broadcast(mut self, broadcast: bool) -> Self {
        self.broadcast = broadcast;
        self
    }

    async fn run(self) -> Result<Vec<Future<T>>> {
        let inner = self.client.inner().clone();
        let mut targets: Vec<(u64, String, String)> = lock(&inner.shared.workers)
            .values()
            .map(|w| (w.id, w.name.clone(), w.data_addr.clone()))
            .collect();
        targets.sort();
        if let Some(wanted) = &self.workers {
            for w in wanted {
                if !targets.iter().any(|(_, name, addr)| name == w || addr == w) {
                    return Err(Error::InvalidArgument(format!(
                        "no worker named {w:?} is connected"
                    )));
                }
            }
            targets.retain(|(_, name, addr)| wanted.iter().any(|w| w == name || w == addr));
        }
        if targets.is_empty() {
            return Err(Error::InvalidArgument(
                "no workers to scatter to; start some workers first".into(),
            ));
        }
        let type_name =
            std::any::type_name::<T>().rsplit("::").next().unwrap_or("data").trim_end_matches('>');
        let offset = fastrand::usize(..targets.len());
        let mut per_worker: FxHashMap<usize, Vec<(Key, Payload)>> = FxHashMap::default();
        let mut items = Vec::with_capacity(self.values.len());
        // In-process workers take the values as they are; others get them encoded.
        let in_process = targets.iter().all(|(_, _, addr)| addr.starts_with("inproc://"));
        for (i, v) in self.values.into_iter().enumerate() {
            let payload =
                if in_process { rudask_core::registry::hold(v) } else { encode_value(&v)? };
            let key = Key::random(&format!("scatter-{type_name}"), fastrand::u128(..));
            let chosen: Vec<usize> = if self.broadcast {
                (0..targets.len()).collect()
            } else {
                vec![(offset + i) % targets.len()]
            };
            for &t in &chosen {
                per_worker.entry(t).or_default().push((key.clone(), payload.clone()));
            }
            let workers = chosen.iter().map(|&t| targets[t].0).collect();
            items.push(ScatteredKey { key, nbytes: payload.len() as u64, workers });
        }
        let puts = per_worker.into_iter().map(|(t, data)| {
            let addr = targets[t].2.clone();
            let peers = inner.peers();
            async move { peers.put_data(&addr, data).await }
        });
        for r in futures::future::join_all(puts).await {
            r?;
        }
        Ok(inner.register_scattered(items)?.into_iter().map(Future::new).collect())
    }
}

impl<'a, T: Value> IntoFuture for Scatter<'a, T> {
    type Output = Result<Vec<Future<T>>>;
    type IntoFuture = futures::future::BoxFuture<'a, Self::Output>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

//! Published datasets: [`Client::publish_dataset`] names a collection or
//! futures on the scheduler, [`Client::get_dataset`] gets it back in any
//! client. The scheduler holds published keys like a client does, so their
//! data stays in memory after every client has left; with a dataset store,
//! it also survives a restart of the scheduler.

use super::{unexpected, Client};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::task::Value;
use rudask_core::collection::{Collection, CollectionMeta, Retain};
use rudask_core::graph::TaskGraph;
use rudask_core::protocol::{ClientMsg, DatasetInfo, Publication, Reply, Request};
use rudask_core::Key;
use std::future::IntoFuture;
use std::time::Duration;

/// What can be published: any [`Collection`] (persisted: its keys; not
/// persisted: its graph, which getters compute), a [`Future`], or a
/// [`Futures`] list.
pub trait Publish {
    /// The meta, keys and (for a graph) tasks to publish.
    fn publication(&self) -> Result<Publication>;
}

/// What can be gotten back from a dataset: the type it was published as.
pub trait FromDataset: Sized {
    /// The type tag a dataset must have to be gotten as `Self`.
    fn dataset_type() -> String;
    /// `Self` over the published keys, kept in memory by `held` (this
    /// client's futures of them).
    fn from_dataset(meta: &CollectionMeta, keys: Vec<Key>, held: Vec<Future<()>>) -> Result<Self>;
}

impl<C: Collection> Publish for C {
    fn publication(&self) -> Result<Publication> {
        Ok(Publication { meta: self.meta(), keys: self.keys(), graph: self.graph().into_tasks() })
    }
}

impl<C: Collection> FromDataset for C {
    fn dataset_type() -> String {
        C::type_tag()
    }
    fn from_dataset(meta: &CollectionMeta, keys: Vec<Key>, held: Vec<Future<()>>) -> Result<Self> {
        C::from_persisted(meta, keys, Retain::new(held)).map_err(Error::InvalidArgument)
    }
}

fn future_tag<T>() -> String {
    format!("rudask.Future<{}>", std::any::type_name::<T>())
}

impl<T: Value> Publish for Future<T> {
    fn publication(&self) -> Result<Publication> {
        Ok(Publication {
            meta: CollectionMeta::new(future_tag::<T>(), 1, &()).map_err(Error::Serialization)?,
            keys: vec![Key::from(self.key())],
            graph: Vec::new(),
        })
    }
}

impl<T: Value> FromDataset for Future<T> {
    fn dataset_type() -> String {
        future_tag::<T>()
    }
    fn from_dataset(_: &CollectionMeta, _: Vec<Key>, mut held: Vec<Future<()>>) -> Result<Self> {
        Ok(held.remove(0).cast())
    }
}

/// A list of futures published as one dataset.
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let fs = client.map(inc, (0..3).map(|i| (i,)))?;
/// client.publish_dataset("incs", &rudask::Futures(fs)).await?;
/// let again: rudask::Futures<i64> = client.get_dataset("incs").await?;
/// assert_eq!(client.gather(&again.0).await?, [1, 2, 3]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Futures<T>(pub Vec<Future<T>>);

fn futures_tag<T>() -> String {
    format!("rudask.Futures<{}>", std::any::type_name::<T>())
}

impl<T: Value> Publish for Futures<T> {
    fn publication(&self) -> Result<Publication> {
        Ok(Publication {
            meta: CollectionMeta::new(futures_tag::<T>(), self.0.len(), &())
                .map_err(Error::Serialization)?,
            keys: self.0.iter().map(|f| Key::from(f.key())).collect(),
            graph: Vec::new(),
        })
    }
}

impl<T: Value> FromDataset for Futures<T> {
    fn dataset_type() -> String {
        futures_tag::<T>()
    }
    fn from_dataset(_: &CollectionMeta, _: Vec<Key>, held: Vec<Future<()>>) -> Result<Self> {
        Ok(Futures(held.into_iter().map(Future::cast).collect()))
    }
}

/// A publication on its way: add more with [`PublishDatasets::and`], allow
/// replacing with [`PublishDatasets::override_existing`], then `.await` it.
/// All of its datasets are published, or none.
#[must_use = "nothing is published until it is awaited"]
#[derive(Debug)]
pub struct PublishDatasets<'a> {
    client: &'a Client,
    items: Result<Vec<(String, Publication)>>,
    override_existing: bool,
}

impl PublishDatasets<'_> {
    /// Publishes `value` as `name` too, in the same request.
    pub fn and(mut self, name: impl Into<String>, value: &impl Publish) -> Self {
        if let Ok(items) = &mut self.items {
            match value.publication() {
                Ok(p) => items.push((name.into(), p)),
                Err(e) => self.items = Err(e),
            }
        }
        self
    }

    /// Replace datasets of the same names (whose keys are then released,
    /// unless someone else holds them) instead of failing with
    /// [`Error::DatasetExists`].
    pub fn override_existing(mut self, yes: bool) -> Self {
        self.override_existing = yes;
        self
    }
}

impl<'a> IntoFuture for PublishDatasets<'a> {
    type Output = Result<()>;
    type IntoFuture = futures::future::BoxFuture<'a, Result<()>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let items = self.items?;
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let req =
                Request::PublishDatasets { items, override_existing: self.override_existing, time };
            match self.client.inner.request(req).await? {
                Reply::Done => Ok(()),
                other => Err(unexpected(&other)),
            }
        })
    }
}

impl Client {
    /// Publishes `value` under `name` for every client of the scheduler;
    /// `.await` it. The scheduler holds the data until the dataset is
    /// unpublished, also after every client has left.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client, other: rudask::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// client.publish_dataset("two", &f).await?;
    /// let g: rudask::Future<i64> = other.get_dataset("two").await?;
    /// assert_eq!(g.await?, 2);
    /// # Ok(()) }
    /// ```
    pub fn publish_dataset(
        &self,
        name: impl Into<String>,
        value: &impl Publish,
    ) -> PublishDatasets<'_> {
        PublishDatasets {
            client: self,
            items: value.publication().map(|p| vec![(name.into(), p)]),
            override_existing: false,
        }
    }

    /// The dataset `name` as a `C`: fails with [`Error::DatasetNotFound`]
    /// (listing the names there are) when nothing has that name, and with
    /// [`Error::Type`] when it was published as another type.
    pub async fn get_dataset<C: FromDataset>(&self, name: &str) -> Result<C> {
        self.fetch_dataset(name, false).await
    }

    /// [`Client::get_dataset`], or `default` when there is no such dataset.
    pub async fn get_dataset_or<C: FromDataset>(&self, name: &str, default: C) -> Result<C> {
        match self.fetch_dataset(name, false).await {
            Err(Error::DatasetNotFound { .. }) => Ok(default),
            other => other,
        }
    }

    /// [`Client::get_dataset`], waiting up to `timeout` for the name to be
    /// published; [`Error::Timeout`] after that.
    pub async fn get_dataset_timeout<C: FromDataset>(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<C> {
        tokio::time::timeout(timeout, self.fetch_dataset(name, true))
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    async fn fetch_dataset<C: FromDataset>(&self, name: &str, wait: bool) -> Result<C> {
        let req = Request::GetDataset { name: name.to_string(), wait };
        let p = match self.inner.request(req).await? {
            Reply::Dataset(p) => p,
            Reply::NoDataset(available) => {
                return Err(Error::DatasetNotFound { name: name.to_string(), available })
            }
            other => return Err(unexpected(&other)),
        };
        let expected = C::dataset_type();
        if p.meta.type_tag() != expected {
            return Err(Error::Type {
                what: format!("dataset {name:?}"),
                expected,
                found: p.meta.type_tag().to_string(),
            });
        }
        let held = if p.graph.is_empty() {
            self.hold_keys(&p.keys)?
        } else {
            self.submit_graph::<()>(&TaskGraph::from(p.graph), &p.keys)?
        };
        C::from_dataset(&p.meta, p.keys, held)
    }

    /// Futures of keys a dataset holds, now wanted by this client too.
    fn hold_keys(&self, keys: &[Key]) -> Result<Vec<Future<()>>> {
        let refs = self.inner.register(keys, ClientMsg::Want { keys: keys.to_vec() })?;
        Ok(refs.into_iter().map(Future::new).collect())
    }

    /// Every published dataset: type, partitions, size, and whether it is
    /// in memory, on disk, or damaged.
    pub async fn list_datasets(&self) -> Result<Vec<DatasetInfo>> {
        match self.inner.request(Request::ListDatasets).await? {
            Reply::Datasets(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes a dataset: its keys are released (unless someone else holds
    /// them) and its files deleted.
    pub async fn unpublish_dataset(&self, name: &str) -> Result<()> {
        match self.inner.request(Request::UnpublishDataset { name: name.to_string() }).await? {
            Reply::Done => Ok(()),
            Reply::NoDataset(available) => {
                Err(Error::DatasetNotFound { name: name.to_string(), available })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The published datasets as a mapping shared by every client of the
    /// scheduler.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let datasets = client.datasets();
    /// datasets.insert("x", &client.submit(inc, (1,))?).await?;
    /// assert!(datasets.contains("x").await?);
    /// let x: rudask::Future<i64> = datasets.get("x").await?;
    /// datasets.remove("x").await?;
    /// assert_eq!(datasets.len().await?, 0);
    /// # drop(x); Ok(()) }
    /// ```
    pub fn datasets(&self) -> Datasets {
        Datasets { client: self.clone() }
    }
}

/// The published datasets as a mapping: see [`Client::datasets`].
#[derive(Clone, Debug)]
pub struct Datasets {
    client: Client,
}

impl Datasets {
    /// Publishes `value` as `name`, replacing what had that name.
    pub async fn insert(&self, name: &str, value: &impl Publish) -> Result<()> {
        self.client.publish_dataset(name, value).override_existing(true).await
    }

    /// The dataset `name`; see [`Client::get_dataset`].
    pub async fn get<C: FromDataset>(&self, name: &str) -> Result<C> {
        self.client.get_dataset(name).await
    }

    /// Unpublishes `name`; see [`Client::unpublish_dataset`].
    pub async fn remove(&self, name: &str) -> Result<()> {
        self.client.unpublish_dataset(name).await
    }

    /// Whether a dataset is named `name`.
    pub async fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.keys().await?.iter().any(|n| n == name))
    }

    /// The names, sorted.
    pub async fn keys(&self) -> Result<Vec<String>> {
        Ok(self.client.list_datasets().await?.into_iter().map(|d| d.name).collect())
    }

    /// Number of datasets.
    pub async fn len(&self) -> Result<usize> {
        Ok(self.client.list_datasets().await?.len())
    }

    /// True when nothing is published.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Every dataset's description, in name order (iterate over it).
    pub async fn iter(&self) -> Result<std::vec::IntoIter<DatasetInfo>> {
        Ok(self.client.list_datasets().await?.into_iter())
    }
}

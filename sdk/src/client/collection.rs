//! Collections on the cluster: [`Client::persist`] runs a collection's graph
//! and keeps its partitions in memory, [`Client::compute`] runs it and
//! combines the partitions into one value.

use super::Client;
use crate::actor::{Actor, ActorType, Placement};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::task::{SubmitOptions, Value};
use rudask_core::collection::{Collection, Retain};
use rudask_core::graph::{TaskGraph, TaskOptions};
use rudask_core::Key;
use std::time::Duration;

/// Options of [`Client::persist_with`] and [`Client::compute_with`], applied
/// to every task of the collection's graph: dask's `persist` keywords.
///
/// ```
/// let opts = rudask::PersistOptions::new()
///     .workers(["w0"])
///     .allow_other_workers(true)
///     .retries(2)
///     .priority(10)
///     .resources([("GPU", 1)]);
/// # drop(opts);
/// ```
#[derive(Clone, Debug, Default)]
pub struct PersistOptions {
    submit: SubmitOptions,
    actors: bool,
}

impl PersistOptions {
    /// Anywhere, priority 0, no retries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only these workers (names or addresses) may run the tasks.
    pub fn workers<S: Into<String>>(mut self, workers: impl IntoIterator<Item = S>) -> Self {
        self.submit = self.submit.workers(workers);
        self
    }

    /// With [`PersistOptions::workers`]: other workers may run the tasks
    /// when the named ones cannot.
    pub fn allow_other_workers(mut self, allow: bool) -> Self {
        self.submit = self.submit.allow_other_workers(allow);
        self
    }

    /// Re-runs each failed task up to `n` times.
    pub fn retries(mut self, n: u32) -> Self {
        self.submit = self.submit.retries(n);
        self
    }

    /// Higher runs first.
    pub fn priority(mut self, priority: i32) -> Self {
        self.submit = self.submit.priority(priority);
        self
    }

    /// Each task holds these abstract resources while it runs.
    pub fn resources<S: Into<String>, A: Into<f64>>(
        mut self,
        resources: impl IntoIterator<Item = (S, A)>,
    ) -> Self {
        self.submit = self.submit.resources(resources);
        self
    }

    /// See [`SubmitOptions::fifo_timeout`].
    pub fn fifo_timeout(mut self, timeout: Duration) -> Self {
        self.submit = self.submit.fifo_timeout(timeout);
        self
    }

    /// dask's `actors=True`: each partition stays on the worker that made it
    /// as an actor, whose methods [`Client::actors_of`] handles call there.
    /// The partitions' type must be an actor type (its `impl` block marked
    /// `#[rudask::actor]`); a partition of another type fails its task with
    /// an error that says so. Tasks that take a partition as an argument get
    /// an [`Actor`] handle to it. An actor lost with its worker is made anew
    /// from its task when next needed, with fresh state; handles to the old
    /// one fail with [`Error::ActorLost`].
    ///
    /// ```
    /// let opts = rudask::PersistOptions::new().actors(true);
    /// # drop(opts);
    /// ```
    pub fn actors(mut self, actors: bool) -> Self {
        self.actors = actors;
        self
    }

    /// The collection's graph with these options on every task; with
    /// `actors`, the tasks of `outputs` make actors.
    fn apply(&self, graph: TaskGraph, outputs: &[Key]) -> Result<TaskGraph> {
        let options = self.submit.task_options();
        if options == Default::default() && !self.actors {
            return Ok(graph);
        }
        if self.actors {
            if let Some(k) = outputs.iter().find(|k| graph.get(k.as_str()).is_none()) {
                return Err(Error::InvalidArgument(format!(
                    "partition {k} is already on the cluster as a value, so it cannot become an \
                     actor; persist with actors a collection that was not persisted before"
                )));
            }
        }
        let outputs: std::collections::HashSet<&Key> =
            if self.actors { outputs.iter().collect() } else { Default::default() };
        Ok(graph
            .into_tasks()
            .into_iter()
            .map(|mut t| {
                t.options = TaskOptions { actor: outputs.contains(&t.key), ..options.clone() };
                t
            })
            .collect())
    }
}

impl Client {
    /// Runs `coll` on the cluster and returns the same collection backed by
    /// its partitions in memory there, which stay while the returned
    /// collection or anything derived from it lives.
    ///
    /// ```no_run
    /// # use rudask::core::collection::Collection;
    /// # async fn demo<C: Collection>(client: rudask::Client, coll: C) -> rudask::Result<()> {
    /// let persisted = client.persist(&coll)?;
    /// client.wait_collection(&persisted).await?;
    /// # Ok(()) }
    /// ```
    pub fn persist<C: Collection>(&self, coll: &C) -> Result<C> {
        self.persist_with(coll, &PersistOptions::default())
    }

    /// [`Client::persist`] with options.
    pub fn persist_with<C: Collection>(&self, coll: &C, options: &PersistOptions) -> Result<C> {
        Ok(self.persist_many_with(std::slice::from_ref(coll), options)?.remove(0))
    }

    /// Persists several collections in one submission, so tasks they share
    /// run once.
    pub fn persist_many<C: Collection>(&self, colls: &[C]) -> Result<Vec<C>> {
        self.persist_many_with(colls, &PersistOptions::default())
    }

    /// [`Client::persist_many`] with options.
    pub fn persist_many_with<C: Collection>(
        &self,
        colls: &[C],
        options: &PersistOptions,
    ) -> Result<Vec<C>> {
        let mut graph = TaskGraph::new();
        let mut keys = Vec::with_capacity(colls.len());
        for c in colls {
            graph.extend(c.graph());
            keys.push(c.keys());
        }
        let all: Vec<Key> = keys.iter().flatten().cloned().collect();
        let graph = options.apply(graph, &all)?;
        let mut futures = self.submit_graph::<()>(&graph, &all)?.into_iter();
        colls
            .iter()
            .zip(keys)
            .map(|(c, keys)| {
                let held: Vec<Future<()>> = futures.by_ref().take(keys.len()).collect();
                c.rebuild(keys, Retain::new(held)).map_err(Error::InvalidArgument)
            })
            .collect()
    }

    /// Runs `coll` on the cluster and combines its partitions into one value
    /// there (the collection's finalize task); await the future for it.
    ///
    /// ```no_run
    /// # use rudask::core::collection::Collection;
    /// # async fn demo<C: Collection>(client: rudask::Client, coll: C) -> rudask::Result<()>
    /// # where C::Output: rudask::Value {
    /// let output = client.compute(&coll)?.await?;
    /// # drop(output); Ok(()) }
    /// ```
    pub fn compute<C: Collection>(&self, coll: &C) -> Result<Future<C::Output>>
    where
        C::Output: Value,
    {
        self.compute_with(coll, &PersistOptions::default())
    }

    /// [`Client::compute`] with options.
    pub fn compute_with<C: Collection>(
        &self,
        coll: &C,
        options: &PersistOptions,
    ) -> Result<Future<C::Output>>
    where
        C::Output: Value,
    {
        let keys = coll.keys();
        let out = Key::pure(
            "rudask::finalize",
            "finalize",
            std::iter::once(C::type_tag().as_bytes())
                .chain(keys.iter().map(|k| k.as_str().as_bytes())),
        );
        if options.actors {
            return Err(Error::InvalidArgument(
                "compute gives one value, not actors: persist the collection with actors, then \
                 get its partitions' handles with Client::actors_of"
                    .into(),
            ));
        }
        let mut graph = coll.graph();
        graph.insert(coll.finalize(out.clone()));
        let graph = options.apply(graph, &[])?;
        Ok(self.submit_graph::<C::Output>(&graph, &[out])?.remove(0))
    }

    /// Handles to the actors of a collection persisted with
    /// [`PersistOptions::actors`], one per partition, in order, once all of
    /// them exist. Each handle keeps its actor, as the collection does.
    ///
    /// Fails with [`Error::Type`] when the partitions are actors of another
    /// type, and with [`Error::InvalidArgument`] when they are not actors.
    ///
    /// ```no_run
    /// # use rudask::core::collection::Collection;
    /// #[rudask::actor]
    /// #[derive(serde::Serialize)]
    /// pub struct Shard { items: Vec<i64> }
    /// #[rudask::actor]
    /// impl Shard {
    ///     pub fn len(&self) -> usize { self.items.len() }
    /// }
    /// # async fn demo<C: Collection>(client: rudask::Client, shards: C) -> rudask::Result<()> {
    /// // `shards`: a collection whose partitions are `Shard`s.
    /// let shards = client.persist_with(&shards, &rudask::PersistOptions::new().actors(true))?;
    /// for shard in client.actors_of::<Shard, _>(&shards).await? {
    ///     println!("{}", shard.len().await?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn actors_of<A: ActorType, C: Collection>(&self, coll: &C) -> Result<Vec<Actor<A>>> {
        let futures = self.submit_graph::<Placement>(&TaskGraph::new(), &coll.keys())?;
        let placements = self.gather(&futures).await.map_err(|e| match e {
            Error::Serialization(message) => Error::InvalidArgument(format!(
                "the partitions of this collection are not actors ({message}); persist it with \
                 PersistOptions::actors(true)"
            )),
            other => other,
        })?;
        placements
            .into_iter()
            .zip(&futures)
            .map(|(at, f)| {
                if at.type_name != A::NAME {
                    return Err(Error::Type {
                        what: format!("partition {}", at.key),
                        expected: format!("actor {}", A::NAME),
                        found: format!("actor {}", at.type_name),
                    });
                }
                Ok(Actor::placed(at.id, at.key, at.worker, at.addr, f.key_ref().clone()))
            })
            .collect()
    }

    /// Waits until every partition of a persisted collection is in memory,
    /// or one failed (its error is returned).
    pub async fn wait_collection<C: Collection>(&self, coll: &C) -> Result<()> {
        let futures = self.submit_graph::<()>(&TaskGraph::new(), &coll.keys())?;
        for f in &futures {
            if let Some(e) = f.exception().await {
                return Err(e);
            }
        }
        Ok(())
    }
}

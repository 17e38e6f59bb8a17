//! Collections on the cluster: [`Client::persist`] runs a collection's graph
//! and keeps its partitions in memory, [`Client::compute`] runs it and
//! combines the partitions into one value.

use super::Client;
use crate::error::{Error, Result};
use crate::future::Future;
use crate::task::{SubmitOptions, Value};
use rudask_core::collection::{Collection, Retain};
use rudask_core::graph::TaskGraph;
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

    /// dask's `actors=True`: the partitions would become actors. Partitions of
    /// collections are values here, so persisting with it set fails with
    /// [`Error::Unsupported`]; create actors with [`Client::submit_actor`].
    pub fn actors(mut self, actors: bool) -> Self {
        self.actors = actors;
        self
    }

    /// The collection's graph with these options on every task.
    fn apply(&self, graph: TaskGraph) -> Result<TaskGraph> {
        if self.actors {
            return Err(Error::Unsupported(
                "persist with actors: partitions of collections are values, not actors; \
                 create actors with Client::submit_actor and pass their handles to tasks"
                    .into(),
            ));
        }
        let options = self.submit.task_options();
        if options == Default::default() {
            return Ok(graph);
        }
        Ok(graph
            .into_tasks()
            .into_iter()
            .map(|mut t| {
                t.options = options.clone();
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
        let graph = options.apply(graph)?;
        let all: Vec<Key> = keys.iter().flatten().cloned().collect();
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
        let mut graph = coll.graph();
        graph.insert(coll.finalize(out.clone()));
        let graph = options.apply(graph)?;
        Ok(self.submit_graph::<C::Output>(&graph, &[out])?.remove(0))
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

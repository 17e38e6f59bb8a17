//! Task graphs: build a [`TaskGraph`] whose tasks name each other by key,
//! then run it with [`Client::submit_graph`] or [`Client::get`].

use super::{build_spec, lock, Client};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::task::{ArgSlot, IntoArg, IntoArgs, Task, Value};
use rudask_core::graph::TaskGraph;
use rudask_core::protocol::ClientMsg;
use rudask_core::Key;
use std::marker::PhantomData;

/// Builds a [`TaskGraph`] from registered tasks. Each argument of a task is a
/// value, a [`GraphKey`] of an earlier task of the graph, or a [`Future`]
/// already on the cluster (kept alive by the builder). Task options ride on
/// the task as with `submit`: `inc.key("x")` names the task's key.
///
/// ```
/// #[rudask::task]
/// fn inc(x: i64) -> i64 { x + 1 }
/// #[rudask::task]
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// # #[tokio::main] async fn main() -> rudask::Result<()> {
/// # let cluster = rudask::LocalCluster::threads(2).await?;
/// # let client = cluster.client().await?;
/// use rudask::TaskExt;
/// let ten = client.submit(inc, (9,))?;
/// let mut g = rudask::GraphBuilder::new();
/// let a = g.add(inc.key("a"), (1,))?;       // a value
/// let b = g.add(add, (&a, &ten))?;          // a task of the graph and a future
/// assert_eq!(client.get(&g, &[&b]).await?, vec![12]);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: TaskGraph,
    held: Vec<super::ArgHolds>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        GraphBuilder::default()
    }

    /// Adds a task and returns its key. A task with the same key replaces
    /// the earlier one.
    pub fn add<F: Task, A: IntoArgs<F::Args>>(
        &mut self,
        task: F,
        args: A,
    ) -> Result<GraphKey<F::Output>> {
        let options = task.options();
        let (spec, holds) = build_spec(&task, &options, args.into_args()?, options.key.clone())?;
        let key = spec.key.clone();
        self.graph.insert(spec);
        self.held.push(holds);
        Ok(GraphKey { key, _t: PhantomData })
    }

    /// The graph built so far.
    pub fn graph(&self) -> &TaskGraph {
        &self.graph
    }
}

impl AsRef<TaskGraph> for GraphBuilder {
    fn as_ref(&self) -> &TaskGraph {
        &self.graph
    }
}

/// The key of a task added to a [`GraphBuilder`], whose result has type `T`.
/// Pass it (by reference or value) as an argument of later tasks, or as an
/// output to [`Client::get`] / [`Client::submit_graph`].
///
/// ```
/// #[rudask::task]
/// fn inc(x: i64) -> i64 { x + 1 }
///
/// use rudask::TaskExt;
/// let mut g = rudask::GraphBuilder::new();
/// let a = g.add(inc.key("a"), (1,)).unwrap();
/// let b = g.add(inc, (&a,)).unwrap();
/// assert_eq!(a.key(), "a");
/// assert!(g.graph().contains(b.key()));
/// ```
pub struct GraphKey<T> {
    key: Key,
    _t: PhantomData<fn() -> T>,
}

impl<T> GraphKey<T> {
    /// The key.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }
}

impl<T> Clone for GraphKey<T> {
    fn clone(&self) -> Self {
        GraphKey { key: self.key.clone(), _t: PhantomData }
    }
}

impl<T> std::fmt::Debug for GraphKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GraphKey({})", self.key)
    }
}

impl<T> IntoArg<T> for &GraphKey<T> {
    fn into_arg(self) -> Result<ArgSlot> {
        Ok(ArgSlot::Key(self.key.clone()))
    }
}

impl<T> IntoArg<T> for GraphKey<T> {
    fn into_arg(self) -> Result<ArgSlot> {
        Ok(ArgSlot::Key(self.key))
    }
}

/// An output of a graph whose result has type `T`: a [`GraphKey<T>`], or a
/// plain key (`Key`, `&str`, `String`) of any type, named by the caller
/// (`client.get::<i64>(&graph, &["a"])`).
///
/// ```
/// use rudask::OutputKey;
/// assert_eq!(OutputKey::<i64>::output_key(&"a").as_str(), "a");
/// ```
pub trait OutputKey<T> {
    /// The key.
    fn output_key(&self) -> Key;
}

impl<T> OutputKey<T> for GraphKey<T> {
    fn output_key(&self) -> Key {
        self.key.clone()
    }
}

impl<T> OutputKey<T> for &GraphKey<T> {
    fn output_key(&self) -> Key {
        self.key.clone()
    }
}

impl<T> OutputKey<T> for Key {
    fn output_key(&self) -> Key {
        self.clone()
    }
}

impl<T> OutputKey<T> for &Key {
    fn output_key(&self) -> Key {
        (*self).clone()
    }
}

impl<T> OutputKey<T> for &str {
    fn output_key(&self) -> Key {
        Key::from(*self)
    }
}

impl<T> OutputKey<T> for String {
    fn output_key(&self) -> Key {
        Key::from(self.as_str())
    }
}

impl Client {
    /// Submits the tasks of `graph` needed for `outputs` and returns one
    /// future per output. Dependencies outside the graph must be futures
    /// this client holds (a [`GraphBuilder`] holds the ones it was given);
    /// anything else is an [`Error::InvalidArgument`] before anything is
    /// sent. A dependency cycle fails the tasks in it.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let mut g = rudask::GraphBuilder::new();
    /// let a = g.add(inc, (1,))?;
    /// let b = g.add(inc, (&a,))?;
    /// let futures = client.submit_graph(&g, &[&a, &b])?;
    /// assert_eq!(client.gather(&futures).await?, vec![2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn submit_graph<T: Value>(
        &self,
        graph: &impl AsRef<TaskGraph>,
        outputs: &[impl OutputKey<T>],
    ) -> Result<Vec<Future<T>>> {
        let outputs: Vec<Key> = outputs.iter().map(OutputKey::output_key).collect();
        if outputs.is_empty() {
            return Ok(Vec::new());
        }
        let graph = graph.as_ref().cull(&outputs);
        {
            let held = lock(&self.inner.shared.keys);
            if let Some(k) =
                outputs.iter().find(|k| !graph.contains(k.as_str()) && !held.contains_key(*k))
            {
                return Err(Error::InvalidArgument(format!(
                    "output {k} is neither a task of the graph nor a future held by this client"
                )));
            }
            for t in graph.tasks() {
                if let Some(d) =
                    t.dependencies().find(|d| !graph.contains(d.as_str()) && !held.contains_key(*d))
                {
                    return Err(Error::InvalidArgument(format!(
                        "task {} depends on {d}, which is neither a task of the graph nor a \
                         future held by this client; add its task to the graph, or keep its \
                         future until the graph is submitted",
                        t.key
                    )));
                }
            }
        }
        let refs = self.inner.register(
            &outputs,
            ClientMsg::UpdateGraph { tasks: graph.into_tasks(), wanted: outputs.clone() },
        )?;
        Ok(refs.into_iter().map(Future::new).collect())
    }

    /// Runs the tasks of `graph` needed for `outputs` and returns their
    /// values in order: [`Client::submit_graph`], then [`Client::gather`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// use rudask::TaskExt;
    /// let mut g = rudask::GraphBuilder::new();
    /// g.add(inc.key("x"), (1,))?;
    /// let graph: rudask::TaskGraph = g.graph().clone();
    /// assert_eq!(client.get::<i64>(&graph, &["x"]).await?, vec![2]);
    /// # Ok(()) }
    /// ```
    pub async fn get<T: Value>(
        &self,
        graph: &impl AsRef<TaskGraph>,
        outputs: &[impl OutputKey<T>],
    ) -> Result<Vec<T>> {
        let futures = self.submit_graph(graph, outputs)?;
        self.gather(&futures).await
    }
}

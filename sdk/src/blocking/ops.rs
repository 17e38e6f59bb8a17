//! The blocking client's cluster operations: data placement, task graphs,
//! administration and events, each waiting for its async counterpart.

use super::{Client, Future};
use crate::client::{Event, OutputKey, Subscription};
use crate::error::Result;
use crate::task::{IntoArgs, SubmitOptions, Task, Value};
use rudask_core::graph::TaskGraph;
use rudask_core::protocol::Profile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn unwrap_all<T>(futures: &[Future<T>]) -> Vec<crate::Future<T>> {
    futures.iter().map(|f| f.inner.clone()).collect()
}

/// Submits tasks with fixed [`SubmitOptions`]: the blocking form of
/// [`crate::ClientExecutor`], made by [`Client::get_executor`].
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let urgent = client.get_executor(rudask::SubmitOptions::new().priority(10));
/// assert_eq!(urgent.submit(inc, (1,))?.result()?, 2);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientExecutor {
    inner: crate::ClientExecutor,
    client: Client,
}

impl ClientExecutor {
    /// Submits one task with the executor's options.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let e = client.get_executor(rudask::SubmitOptions::new().retries(2));
    /// let f = e.submit(inc, (1,))?;
    /// # Ok(()) }
    /// ```
    pub fn submit<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<Future<F::Output>> {
        Ok(self.client.wrap(self.inner.submit(task, args)?))
    }

    /// Submits one task per argument tuple with the executor's options.
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let e = client.get_executor(rudask::SubmitOptions::new().pure(false));
    /// let fs = e.map(inc, (0..10).map(|i| (i,)))?;
    /// # Ok(()) }
    /// ```
    pub fn map<F, A, I>(&self, task: F, args: I) -> Result<Vec<Future<F::Output>>>
    where
        F: Task,
        A: IntoArgs<F::Args>,
        I: IntoIterator<Item = A>,
    {
        let futures = self.inner.map(task, args)?;
        Ok(futures.into_iter().map(|f| self.client.wrap(f)).collect())
    }

    /// The options it submits with.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let e = client.get_executor(rudask::SubmitOptions::new());
    /// println!("{:?}", e.options());
    /// # }
    /// ```
    pub fn options(&self) -> &SubmitOptions {
        self.inner.options()
    }
}

impl Client {
    /// An executor whose `submit` and `map` apply `options`. See
    /// [`crate::Client::get_executor`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let gpu = client.get_executor(rudask::SubmitOptions::new().resources([("GPU", 1)]));
    /// # }
    /// ```
    pub fn get_executor(&self, options: SubmitOptions) -> ClientExecutor {
        ClientExecutor { inner: self.inner.get_executor(options), client: self.clone() }
    }

    /// The task slots of each worker, by name. See [`crate::Client::nthreads`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let total: u32 = client.nthreads()?.values().sum();
    /// # Ok(()) }
    /// ```
    pub fn nthreads(&self) -> Result<BTreeMap<String, u32>> {
        self.block_on(self.inner.nthreads())?
    }

    /// Another name of [`Client::nthreads`], as in dask.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// assert_eq!(client.ncores()?, client.nthreads()?);
    /// # Ok(()) }
    /// ```
    pub fn ncores(&self) -> Result<BTreeMap<String, u32>> {
        self.nthreads()
    }

    /// For each key, the workers holding it. See [`crate::Client::who_has`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let f = client.submit(inc, (1,))?;
    /// let holders = client.who_has(&[f])?;
    /// # Ok(()) }
    /// ```
    pub fn who_has<T>(&self, futures: &[Future<T>]) -> Result<BTreeMap<String, Vec<String>>> {
        self.block_on(self.inner.who_has(&unwrap_all(futures)))?
    }

    /// For each worker, the keys it holds. See [`crate::Client::has_what`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// for (worker, keys) in client.has_what()? {
    ///     println!("{worker}: {} keys", keys.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn has_what(&self) -> Result<BTreeMap<String, Vec<String>>> {
        self.block_on(self.inner.has_what())?
    }

    /// Copies the futures' data to `n` workers. See [`crate::Client::replicate`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let parts = client.scatter(vec![1i64, 2, 3])?;
    /// client.replicate(&parts, 2)?;
    /// # Ok(()) }
    /// ```
    pub fn replicate<T>(&self, futures: &[Future<T>], n: usize) -> Result<()> {
        self.block_on(self.inner.replicate(&unwrap_all(futures), n))?
    }

    /// Evens out the bytes the futures' data takes on each worker. See
    /// [`crate::Client::rebalance`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let parts = client.scatter(vec![1i64, 2, 3, 4])?;
    /// client.rebalance(&parts)?;
    /// # Ok(()) }
    /// ```
    pub fn rebalance<T>(&self, futures: &[Future<T>]) -> Result<()> {
        self.block_on(self.inner.rebalance(&unwrap_all(futures)))?
    }

    /// Evens out the bytes of all data on the workers. See
    /// [`crate::Client::rebalance_all`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.rebalance_all()?;
    /// # Ok(()) }
    /// ```
    pub fn rebalance_all(&self) -> Result<()> {
        self.block_on(self.inner.rebalance_all())?
    }

    /// Counts and run times of finished tasks per function. See
    /// [`crate::Client::profile`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// for f in client.profile()?.functions {
    ///     println!("{}: {} runs", f.function, f.count);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn profile(&self) -> Result<Profile> {
        self.block_on(self.inner.profile())?
    }

    /// Submits the tasks of a graph needed for `outputs`. See
    /// [`crate::Client::submit_graph`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let mut g = rudask::GraphBuilder::new();
    /// let a = g.add(inc, (1,))?;
    /// let b = g.add(inc, (&a,))?;
    /// let futures = client.submit_graph(&g, &[&b])?;
    /// assert_eq!(futures[0].result()?, 3);
    /// # Ok(()) }
    /// ```
    pub fn submit_graph<T: Value>(
        &self,
        graph: &impl AsRef<TaskGraph>,
        outputs: &[impl OutputKey<T>],
    ) -> Result<Vec<Future<T>>> {
        let futures = self.inner.submit_graph(graph, outputs)?;
        Ok(futures.into_iter().map(|f| self.wrap(f)).collect())
    }

    /// Runs a graph and returns the values of `outputs`. See [`crate::Client::get`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let mut g = rudask::GraphBuilder::new();
    /// let a = g.add(inc, (1,))?;
    /// assert_eq!(client.get(&g, &[&a])?, vec![2]);
    /// # Ok(()) }
    /// ```
    pub fn get<T: Value>(
        &self,
        graph: &impl AsRef<TaskGraph>,
        outputs: &[impl OutputKey<T>],
    ) -> Result<Vec<T>> {
        self.block_on(self.inner.get(graph, outputs))?
    }

    /// Runs a registered function on every worker. See [`crate::Client::run`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn pid() -> u32 { std::process::id() }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// for (worker, result) in client.run(pid, ())? {
    ///     println!("{worker}: {}", result?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn run<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<BTreeMap<String, Result<F::Output>>> {
        self.block_on(self.inner.run(task, args))?
    }

    /// Runs a registered function on the named workers. See [`crate::Client::run_on`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn pid() -> u32 { std::process::id() }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let on_w1 = client.run_on(&["w1"], pid, ())?;
    /// # Ok(()) }
    /// ```
    pub fn run_on<F: Task, A: IntoArgs<F::Args>>(
        &self,
        workers: &[&str],
        task: F,
        args: A,
    ) -> Result<BTreeMap<String, Result<F::Output>>> {
        self.block_on(self.inner.run_on(workers, task, args))?
    }

    /// Runs a registered function in the scheduler's process. See
    /// [`crate::Client::run_on_scheduler`].
    ///
    /// ```no_run
    /// # #[rudask::task] fn pid() -> u32 { std::process::id() }
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let scheduler_pid = client.run_on_scheduler(pid, ())?;
    /// # Ok(()) }
    /// ```
    pub fn run_on_scheduler<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<F::Output> {
        self.block_on(self.inner.run_on_scheduler(task, args))?
    }

    /// Restarts every worker and forgets every task. See [`crate::Client::restart`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.restart()?;
    /// # Ok(()) }
    /// ```
    pub fn restart(&self) -> Result<()> {
        self.block_on(self.inner.restart())?
    }

    /// Stops the scheduler and every worker. See [`crate::Client::shutdown`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.shutdown()?;
    /// # Ok(()) }
    /// ```
    pub fn shutdown(&self) -> Result<()> {
        self.block_on(self.inner.shutdown())?
    }

    /// Waits until at least `n` workers are connected. See
    /// [`crate::Client::wait_for_workers`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.wait_for_workers(2, Some(std::time::Duration::from_secs(30)))?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for_workers(&self, n: usize, timeout: Option<Duration>) -> Result<()> {
        self.block_on(self.inner.wait_for_workers(n, timeout))?
    }

    /// Sends a file to every worker's local directory. See
    /// [`crate::Client::upload_file`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.upload_file("lookup.csv")?;
    /// # Ok(()) }
    /// ```
    pub fn upload_file(&self, path: impl AsRef<Path>) -> Result<()> {
        self.block_on(self.inner.upload_file(path))?
    }

    /// Records an event on a topic. See [`crate::Client::log_event`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.log_event("progress", 50u32)?;
    /// # Ok(()) }
    /// ```
    pub fn log_event(&self, topic: &str, msg: impl Serialize) -> Result<()> {
        self.block_on(self.inner.log_event(topic, msg))?
    }

    /// Calls `handler` for every new event of `topic` until the returned
    /// subscription drops. See [`crate::Client::subscribe_topic`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let _sub = client.subscribe_topic("progress", |e| println!("{:?}", e.decode::<u32>()))?;
    /// # Ok(()) }
    /// ```
    pub fn subscribe_topic(
        &self,
        topic: &str,
        handler: impl FnMut(Event) + Send + 'static,
    ) -> Result<Subscription> {
        self.block_on(self.inner.subscribe_topic(topic, handler))?
    }

    /// Removes every handler of `topic` on this client. See
    /// [`crate::Client::unsubscribe_topic`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.unsubscribe_topic("progress")?;
    /// # Ok(()) }
    /// ```
    pub fn unsubscribe_topic(&self, topic: &str) -> Result<()> {
        self.block_on(self.inner.unsubscribe_topic(topic))?
    }

    /// The recorded events of `topic`, oldest first. See
    /// [`crate::Client::get_events`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// for (time, value) in client.get_events::<u32>("progress")? {
    ///     println!("{time:?}: {value}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get_events<T: Value>(&self, topic: &str) -> Result<Vec<(SystemTime, T)>> {
        self.block_on(self.inner.get_events(topic))?
    }

    /// Starts the scheduler plugin registered as `name` with a JSON config.
    /// See [`crate::Client::register_scheduler_plugin`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.register_scheduler_plugin("task-stats", "{}")?;
    /// # Ok(()) }
    /// ```
    pub fn register_scheduler_plugin(&self, name: &str, config: &str) -> Result<()> {
        self.block_on(self.inner.register_scheduler_plugin(name, config))?
    }

    /// Closes and removes a scheduler plugin. See
    /// [`crate::Client::unregister_scheduler_plugin`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.unregister_scheduler_plugin("task-stats")?;
    /// # Ok(()) }
    /// ```
    pub fn unregister_scheduler_plugin(&self, name: &str) -> Result<()> {
        self.block_on(self.inner.unregister_scheduler_plugin(name))?
    }

    /// Asks a scheduler plugin a question (JSON in, JSON out). See
    /// [`crate::Client::plugin_query`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// println!("{}", client.plugin_query("task-stats", "{}")?);
    /// # Ok(()) }
    /// ```
    pub fn plugin_query(&self, name: &str, query: &str) -> Result<String> {
        self.block_on(self.inner.plugin_query(name, query))?
    }

    /// Sets up the worker plugin registered as `name` on every worker, now
    /// and later. See [`crate::Client::register_worker_plugin`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.register_worker_plugin("environ", r#"{"vars":{"MODE":"batch"}}"#)?;
    /// # Ok(()) }
    /// ```
    pub fn register_worker_plugin(&self, name: &str, config: &str) -> Result<()> {
        self.block_on(self.inner.register_worker_plugin(name, config))?
    }

    /// Tears down a worker plugin on every worker. See
    /// [`crate::Client::unregister_worker_plugin`].
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// client.unregister_worker_plugin("environ")?;
    /// # Ok(()) }
    /// ```
    pub fn unregister_worker_plugin(&self, name: &str) -> Result<()> {
        self.block_on(self.inner.unregister_worker_plugin(name))?
    }
}

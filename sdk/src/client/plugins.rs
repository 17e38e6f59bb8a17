//! Registering, removing and querying scheduler plugins from a client.

use super::{unexpected, Client};
use crate::error::Result;
use rudask_core::protocol::{Reply, Request};

impl Client {
    /// Builds the scheduler plugin type registered as `name` in the
    /// scheduler's binary from `config` (JSON), starts it and keeps it,
    /// replacing (after closing it) a plugin of the same name. A plugin whose
    /// `start` fails is not kept; its error comes back as
    /// [`Error::Scheduler`](crate::Error::Scheduler).
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.register_scheduler_plugin("event-log", r#"{"path":"events.jsonl"}"#).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register_scheduler_plugin(&self, name: &str, config: &str) -> Result<()> {
        let req = Request::RegisterSchedulerPlugin { name: name.into(), config: config.into() };
        match self.inner.request(req).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Closes and removes the scheduler plugin `name`.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.unregister_scheduler_plugin("event-log").await?;
    /// # Ok(()) }
    /// ```
    pub async fn unregister_scheduler_plugin(&self, name: &str) -> Result<()> {
        match self.inner.request(Request::UnregisterSchedulerPlugin { name: name.into() }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Asks the scheduler plugin `name` a question (JSON) and returns its
    /// answer (JSON), e.g. the statistics a plugin gathered.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let stats = client.plugin_query("task-stats", "{}").await?;
    /// println!("{stats}");
    /// # Ok(()) }
    /// ```
    pub async fn plugin_query(&self, name: &str, query: &str) -> Result<String> {
        let req = Request::PluginQuery { name: name.into(), query: query.into() };
        match self.inner.request(req).await? {
            Reply::PluginQuery(answer) => Ok(answer),
            other => Err(unexpected(&other)),
        }
    }
}

impl Client {
    /// Builds the worker plugin type registered as `name` in the workers'
    /// binary from `config` (JSON) and sets it up on every worker, replacing
    /// one of the same name; workers that join later get it too. If a
    /// worker's `setup` fails the plugin is removed again and its error comes
    /// back as [`Error::Scheduler`](crate::Error::Scheduler).
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.register_worker_plugin("environ", r#"{"vars":{"OMP_NUM_THREADS":"1"}}"#).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register_worker_plugin(&self, name: &str, config: &str) -> Result<()> {
        let req = Request::RegisterWorkerPlugin { name: name.into(), config: config.into() };
        match self.inner.request(req).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Tears down worker plugin `name` on every worker and forgets it.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// client.unregister_worker_plugin("environ").await?;
    /// # Ok(()) }
    /// ```
    pub async fn unregister_worker_plugin(&self, name: &str) -> Result<()> {
        match self.inner.request(Request::UnregisterWorkerPlugin { name: name.into() }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

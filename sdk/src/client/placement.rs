//! Placement from the client's side: executors that submit with fixed
//! options, and how many task slots each worker has.

use super::Client;
use crate::error::Result;
use crate::future::Future;
use crate::task::{IntoArgs, SubmitOptions, Task, WithOptions};
use std::collections::BTreeMap;

/// Submits tasks with a fixed set of [`SubmitOptions`], made by
/// [`Client::get_executor`]. The executor's options replace those set on the
/// task itself.
///
/// ```no_run
/// #[rudask::task]
/// fn render(frame: u32) -> Vec<u8> { vec![frame as u8] }
///
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let gpu = client.get_executor(rudask::SubmitOptions::new().resources([("GPU", 1)]));
/// let frames = gpu.map(render, (0..100).map(|f| (f,)))?;
/// let first = gpu.submit(render, (0,))?;
/// assert_eq!(first.await?, vec![0]);
/// # drop(frames); Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientExecutor {
    client: Client,
    options: SubmitOptions,
}

impl ClientExecutor {
    /// Submits one task with the executor's options (see [`Client::submit`]).
    pub fn submit<F: Task, A: IntoArgs<F::Args>>(
        &self,
        task: F,
        args: A,
    ) -> Result<Future<F::Output>> {
        self.client.submit(WithOptions::new(task, self.options.clone()), args)
    }

    /// Submits one task per argument tuple with the executor's options (see
    /// [`Client::map`]).
    pub fn map<F, A, I>(&self, task: F, args: I) -> Result<Vec<Future<F::Output>>>
    where
        F: Task,
        A: IntoArgs<F::Args>,
        I: IntoIterator<Item = A>,
    {
        self.client.map(WithOptions::new(task, self.options.clone()), args)
    }

    /// The options every submission of this executor carries.
    pub fn options(&self) -> &SubmitOptions {
        &self.options
    }

    /// The client it submits through.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// An executor whose `submit` and `map` apply `options` to every task, as
    /// dask's `Client.get_executor(**kwargs)`.
    ///
    /// ```no_run
    /// #[rudask::task]
    /// fn inc(x: i64) -> i64 { x + 1 }
    ///
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let urgent = client.get_executor(rudask::SubmitOptions::new().priority(100).pure(false));
    /// assert_eq!(urgent.submit(inc, (1,))?.await?, 2);
    /// # Ok(()) }
    /// ```
    pub fn get_executor(&self, options: SubmitOptions) -> ClientExecutor {
        ClientExecutor { client: self.clone(), options }
    }

    /// The task slots of each connected worker, by worker name, as the
    /// scheduler sees them now.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let slots: usize = client.nthreads().await?.values().map(|&n| n as usize).sum();
    /// println!("{slots} task slots in the cluster");
    /// # Ok(()) }
    /// ```
    pub async fn nthreads(&self) -> Result<BTreeMap<String, u32>> {
        let info = self.scheduler_info(&[]).await?;
        Ok(info.workers.into_iter().map(|w| (w.name, w.nthreads)).collect())
    }

    /// Another name of [`Client::nthreads`], as in dask.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// assert_eq!(client.ncores().await?, client.nthreads().await?);
    /// # Ok(()) }
    /// ```
    pub async fn ncores(&self) -> Result<BTreeMap<String, u32>> {
        self.nthreads().await
    }
}

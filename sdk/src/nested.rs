//! Tasks that submit tasks: the worker's shared client ([`get_client`]),
//! giving a slot back while waiting on other tasks ([`secede`], [`rejoin`]),
//! and both at once for synchronous tasks ([`worker_client`]).
//!
//! A task that waits on tasks it submitted holds a slot while it waits; with
//! every slot held that way, the tasks it waits on never start. Seceding
//! gives the slot back: the worker starts another task in its place and the
//! scheduler stops counting the waiting task toward the worker's load.

use crate::blocking;
use crate::client::Client;
use crate::context::{self, WorkerContext};
use crate::error::{Error, Result};
use crate::runtime::executor;
use crate::runtime::slots::{self, Kind, SlotEvent};

fn outside(what: &str) -> Error {
    Error::Context(format!(
        "{what} only works inside a task running on a rudask worker; outside tasks, connect a \
         client with rudask::Client::connect (or LocalCluster::client)"
    ))
}

/// The error for a task run inline on the worker's event loop that tries to
/// wait; its function runs on task threads from now on.
pub(crate) fn inline_cannot_block(ctx: &WorkerContext, func: &'static str) -> Error {
    let _ = ctx.slot_events.send(SlotEvent::NeedsThread { func });
    Error::Context(format!(
        "task function {func} was run inline on the worker's event loop, because its earlier \
         calls were very short, and cannot wait on other tasks there; it runs on task threads \
         from now on, so a retry succeeds (submit it with .retries(1))"
    ))
}

/// A client of the scheduler of the worker running the current task, to
/// submit tasks from inside a task. Every task of a worker shares one client,
/// connected the first time a task asks (over TCP for worker processes, through
/// channels for the in-process workers of [`crate::LocalCluster::threads`]).
///
/// Outside a task it returns [`Error::Context`]. A synchronous task uses
/// [`worker_client`] or [`blocking::get_client`] instead.
///
/// Waiting on the futures it submitted, a task should [`secede`] first, so its
/// slot can run them:
///
/// ```
/// #[rudask::task]
/// async fn fib(n: u64) -> rudask::Result<u64> {
///     if n < 2 {
///         return Ok(n);
///     }
///     let client = rudask::get_client().await?;
///     let a = client.submit(fib, (n - 1,))?;
///     let b = client.submit(fib, (n - 2,))?;
///     rudask::secede()?;
///     let sum = a.await? + b.await?;
///     rudask::rejoin()?;
///     Ok(sum)
/// }
///
/// # #[tokio::main] async fn main() -> rudask::Result<()> {
/// let cluster = rudask::LocalCluster::builder().workers(1).threads_per_worker(1).threads().await?;
/// let client = cluster.client().await?;
/// assert_eq!(client.submit(fib, (10,))?.await?, 55);
/// assert!(rudask::get_client().await.is_err(), "not inside a task here");
/// # Ok(()) }
/// ```
pub async fn get_client() -> Result<Client> {
    let ctx = context::current().ok_or_else(|| outside("rudask::get_client()"))?;
    ctx.client().await
}

/// Gives the current task's slot back while it waits on other tasks: the
/// worker may start another task, and the scheduler no longer counts this one
/// toward the worker's load. [`rejoin`] takes a slot again. Seceding twice is
/// the same as once.
///
/// In a synchronous task, another task thread takes this one's place. In an
/// async task, the slot is given back when the task next suspends.
///
/// Errors with [`Error::Context`] outside a task, and in a synchronous task
/// the worker ran inline because its earlier calls were very short (the
/// worker's event loop cannot wait on other tasks); such a function runs on a
/// task thread from then on, so a retry (`.retries(1)`) succeeds.
///
/// ```
/// assert!(rudask::secede().is_err(), "not inside a task here");
/// ```
pub fn secede() -> Result<()> {
    let ctx = context::current().ok_or_else(|| outside("rudask::secede()"))?;
    let running = slots::current().ok_or_else(|| outside("rudask::secede()"))?;
    if running.seceded {
        return Ok(());
    }
    match running.kind {
        Kind::Inline => return Err(inline_cannot_block(&ctx, running.func)),
        Kind::Thread => executor::leave_pool().map_err(Error::Io)?,
        Kind::Async => {}
    }
    slots::update(|r| {
        r.seceded = true;
        r.rejoining = false;
    });
    let _ = ctx.slot_events.send(SlotEvent::Seceded { task: running.task, func: running.func });
    Ok(())
}

/// Takes a slot again after [`secede`]. A synchronous task waits here until
/// a slot is free; an async task returns at once and waits for a slot before
/// it runs on after its next suspension. Without a prior `secede` it does
/// nothing.
///
/// ```
/// assert!(rudask::rejoin().is_err(), "not inside a task here");
/// ```
pub fn rejoin() -> Result<()> {
    let ctx = context::current().ok_or_else(|| outside("rudask::rejoin()"))?;
    let running = slots::current().ok_or_else(|| outside("rudask::rejoin()"))?;
    if !running.seceded {
        return Ok(());
    }
    match running.kind {
        Kind::Thread => executor::rejoin_pool(),
        Kind::Async | Kind::Inline => {}
    }
    slots::update(|r| {
        r.seceded = false;
        r.rejoining = r.kind == Kind::Async;
    });
    let _ = ctx.slot_events.send(SlotEvent::Rejoined { task: running.task });
    Ok(())
}

/// For a synchronous task: the worker's shared client as a
/// [`blocking::Client`], with the task seceded until the returned guard drops
/// (then it [`rejoin`]s). The task may submit tasks and wait on them without
/// holding a slot.
///
/// In an async task use [`get_client`] and [`secede`] instead (this function
/// blocks); there and outside tasks it errs with [`Error::Context`].
///
/// ```
/// #[rudask::task]
/// fn fib(n: u64) -> rudask::Result<u64> {
///     if n < 2 {
///         return Ok(n);
///     }
///     let client = rudask::worker_client()?;
///     let a = client.submit(fib, (n - 1,))?;
///     let b = client.submit(fib, (n - 2,))?;
///     Ok(a.result()? + b.result()?)
/// }
///
/// # #[tokio::main] async fn main() -> rudask::Result<()> {
/// let cluster = rudask::LocalCluster::builder().workers(1).threads_per_worker(1).threads().await?;
/// let client = cluster.client().await?;
/// assert_eq!(client.submit(fib, (10,))?.await?, 55);
/// assert!(rudask::worker_client().is_err(), "not inside a task here");
/// # Ok(()) }
/// ```
pub fn worker_client() -> Result<WorkerClient> {
    context::current().ok_or_else(|| outside("rudask::worker_client()"))?;
    secede()?;
    match blocking::get_client() {
        Ok(client) => Ok(WorkerClient { client }),
        Err(e) => {
            rejoin()?;
            Err(e)
        }
    }
}

/// The client of [`worker_client`]: a [`blocking::Client`] (it dereferences to
/// one) whose task rejoins when it drops.
///
/// ```no_run
/// #[rudask::task]
/// fn total(n: i64) -> rudask::Result<i64> {
///     let sum = {
///         let client = rudask::worker_client()?; // seceded from here...
///         let parts = client.map(square, (0..n).map(|i| (i,)))?;
///         client.gather(&parts)?.into_iter().sum()
///     }; // ...to here
///     Ok(sum)
/// }
/// # #[rudask::task] fn square(x: i64) -> i64 { x * x }
/// ```
#[derive(Debug)]
pub struct WorkerClient {
    client: blocking::Client,
}

impl std::ops::Deref for WorkerClient {
    type Target = blocking::Client;
    fn deref(&self) -> &blocking::Client {
        &self.client
    }
}

impl Drop for WorkerClient {
    fn drop(&mut self) {
        if let Err(e) = rejoin() {
            tracing::warn!(error = %e, "a task could not rejoin after its worker client");
        }
    }
}

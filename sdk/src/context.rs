//! The worker a task runs on, as the task sees it. The executor enters a
//! [`WorkerContext`] around every task call (task threads enter theirs once);
//! functions such as [`local_directory`] read it.

use crate::client::Client;
use crate::error::Result;
use crate::runtime::scheduler::SchedulerHandle;
use crate::runtime::slots::SlotEvent;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

/// How a task's worker reaches its scheduler.
#[derive(Clone, Debug)]
pub(crate) enum SchedulerLink {
    /// Over TCP, at this address, with the worker's credentials.
    Tcp(String, crate::security::Security),
    /// In this process.
    Local(SchedulerHandle),
}

/// What a running task knows about its worker.
#[derive(Debug)]
pub(crate) struct WorkerContext {
    /// The worker's name.
    pub(crate) name: String,
    /// The worker's data address.
    pub(crate) data_addr: String,
    /// The worker's scheduler.
    pub(crate) scheduler: SchedulerLink,
    /// A directory of this worker's own, removed when it stops.
    pub(crate) local_dir: PathBuf,
    /// The runtime of the worker's event loop.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Where tasks report that they seceded or rejoined.
    pub(crate) slot_events: tokio::sync::mpsc::UnboundedSender<SlotEvent>,
    /// The client tasks of this worker share, made by the first that asks.
    pub(crate) client: tokio::sync::OnceCell<Client>,
}

impl WorkerContext {
    /// The worker's shared client, connected on first use.
    pub(crate) async fn client(&self) -> Result<Client> {
        let client = self
            .client
            .get_or_try_init(|| async {
                match &self.scheduler {
                    SchedulerLink::Tcp(addr, security) => {
                        Client::connect_secured(addr, security.clone()).await
                    }
                    SchedulerLink::Local(handle) => Client::connect_local(handle).await,
                }
            })
            .await?;
        Ok(client.clone())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<WorkerContext>>> = const { RefCell::new(None) };
}

/// Restores the previous context when dropped.
pub(crate) struct Entered(Option<Arc<WorkerContext>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Makes `ctx` the current thread's context until the guard drops.
pub(crate) fn enter(ctx: &Arc<WorkerContext>) -> Entered {
    Entered(CURRENT.with(|c| c.borrow_mut().replace(ctx.clone())))
}

/// The context of the task running on this thread, if any.
pub(crate) fn current() -> Option<Arc<WorkerContext>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The local directory of the worker running the current task: scratch space
/// of its own, removed when the worker stops. `None` outside a task.
///
/// ```
/// #[rudask::task]
/// fn scratch() -> bool {
///     rudask::local_directory().is_some_and(|d| d.is_dir())
/// }
/// assert!(rudask::local_directory().is_none(), "not inside a task here");
/// ```
pub fn local_directory() -> Option<PathBuf> {
    CURRENT.with(|c| c.borrow().as_ref().map(|ctx| ctx.local_dir.clone()))
}

/// The name of the worker running the current task (`--name`, or its data
/// address when it was started without one). `None` outside a task.
///
/// ```
/// #[rudask::task]
/// fn where_am_i() -> String {
///     rudask::worker_name().unwrap_or_default()
/// }
/// assert!(rudask::worker_name().is_none(), "not inside a task here");
/// ```
pub fn worker_name() -> Option<String> {
    current().map(|ctx| ctx.name.clone())
}

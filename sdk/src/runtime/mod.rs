//! The async drivers: they own sockets, timers and threads, and call into the
//! sans-IO state machines of `rudask-core`.

pub(crate) mod actors;
mod admin;
pub(crate) mod conn;
mod dashboard;
mod dashboard_html;
pub(crate) mod dataset_store;
pub(crate) mod executor;
mod memory;
pub mod memory_limit;
pub(crate) mod metrics;
mod monitor;
pub(crate) mod nanny;
pub(crate) mod peer;
mod plugins;
pub mod scheduler;
pub(crate) mod slots;
pub(crate) mod span;
mod spill;
pub(crate) mod tls;
pub mod worker;

use tokio::sync::mpsc;

/// How a client or worker reaches the scheduler: through a TCP writer, or
/// straight into the scheduler's inbox when both live in one process.
#[derive(Debug)]
pub(crate) enum Uplink<M> {
    Tcp(mpsc::UnboundedSender<M>),
    Local {
        inbox: mpsc::UnboundedSender<scheduler::SchedEvent>,
        wrap: fn(u64, M) -> scheduler::SchedEvent,
        id: u64,
    },
}

impl<M> Uplink<M> {
    /// Queues a message; false when the scheduler is gone.
    pub(crate) fn send(&self, m: M) -> bool {
        match self {
            Uplink::Tcp(tx) => tx.send(m).is_ok(),
            Uplink::Local { inbox, wrap, id } => inbox.send(wrap(*id, m)).is_ok(),
        }
    }
}

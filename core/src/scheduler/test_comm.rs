//! [`TestComm`]: an outbox that records messages, for tests of the scheduler.

use super::{ClientId, Comm, WorkerId};
use crate::protocol::{CatalogChange, ToClient, ToWorker};

/// Records everything the scheduler sends.
///
/// ```
/// use rudask_core::scheduler::TestComm;
/// let mut comm = TestComm::default();
/// assert!(comm.take_workers().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct TestComm {
    /// Messages to clients, in order.
    pub clients: Vec<(ClientId, ToClient)>,
    /// Messages to workers, in order.
    pub workers: Vec<(WorkerId, ToWorker)>,
    /// Changes of the durable dataset catalog, in order.
    pub catalog: Vec<CatalogChange>,
}

impl TestComm {
    /// Takes the recorded client messages.
    pub fn take_clients(&mut self) -> Vec<(ClientId, ToClient)> {
        std::mem::take(&mut self.clients)
    }

    /// Takes the recorded worker messages.
    pub fn take_workers(&mut self) -> Vec<(WorkerId, ToWorker)> {
        std::mem::take(&mut self.workers)
    }
}

impl Comm for TestComm {
    fn send_client(&mut self, client: ClientId, msg: ToClient) {
        self.clients.push((client, msg));
    }

    fn send_worker(&mut self, worker: WorkerId, msg: ToWorker) {
        self.workers.push((worker, msg));
    }

    fn catalog(&mut self, change: CatalogChange) {
        self.catalog.push(change);
    }
}

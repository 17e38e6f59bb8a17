//! Client requests: questions that get exactly one reply, sent now or, for
//! requests that wait on the cluster, later with the same id.

use super::{ClientId, Comm, Scheduler};
use crate::protocol::{Reply, Request, RequestError, ToClient};

impl Scheduler {
    /// Answers (or starts answering) request `id` of client `c`.
    pub(super) fn on_request(&mut self, c: ClientId, id: u64, req: Request, comm: &mut impl Comm) {
        match req {
            Request::Info { keys } => reply(comm, c, id, Ok(Reply::Info(self.info(&keys)))),
            Request::WhoHas { keys } => reply(comm, c, id, Ok(Reply::WhoHas(self.who_has(&keys)))),
            Request::HasWhat => reply(comm, c, id, Ok(Reply::HasWhat(self.has_what()))),
            Request::Replicate { keys, n } => self.replicate(c, id, &keys, n, comm),
            Request::Rebalance { keys } => self.rebalance(c, id, keys.as_deref(), comm),
            Request::Profile => reply(comm, c, id, Ok(Reply::Profile(self.profile()))),
        }
    }
}

/// Sends the answer to request `id` of client `c`.
pub(super) fn reply(
    comm: &mut impl Comm,
    c: ClientId,
    id: u64,
    reply: Result<Reply, RequestError>,
) {
    comm.send_client(c, ToClient::Reply { id, reply });
}

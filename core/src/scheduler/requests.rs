//! Client requests: questions that get exactly one reply, sent now or, for
//! requests that wait on the cluster, later with the same id.

use super::{ClientId, Comm, Scheduler};
use crate::protocol::{Reply, Request, RequestError, RequestErrorKind, ToClient};

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
            Request::Run { workers, func, args } => self.on_run(c, id, workers, func, args, comm),
            Request::RunOnScheduler { .. } => {
                let message = "this scheduler runs without a driver that can call functions";
                reply(comm, c, id, Err(RequestError::new(RequestErrorKind::Failed, message)))
            }
            Request::Restart => self.on_restart(c, id, comm),
            Request::Shutdown => self.on_shutdown(c, id, comm),
            Request::WaitForWorkers { n } => self.on_wait_for_workers(c, id, n, comm),
            Request::UploadFile { name, data } => self.on_upload_file(c, id, name, data, comm),
            Request::LogEvent { topic, time, data } => {
                self.on_log_event(c, id, topic, time, data, comm)
            }
            Request::Subscribe { topic } => {
                self.on_subscribe(c, topic);
                reply(comm, c, id, Ok(Reply::Done))
            }
            Request::Unsubscribe { topic } => {
                self.on_unsubscribe(c, &topic);
                reply(comm, c, id, Ok(Reply::Done))
            }
            Request::GetEvents { topic } => {
                reply(comm, c, id, Ok(Reply::Events(self.events(&topic))))
            }
            Request::Coord(req) => self.on_coord(c, id, req, comm),
            Request::RegisterSchedulerPlugin { name, config } => {
                self.on_register_plugin(c, id, &name, &config, comm)
            }
            Request::UnregisterSchedulerPlugin { name } => {
                self.on_unregister_plugin(c, id, &name, comm)
            }
            Request::RegisterWorkerPlugin { name, config } => {
                self.on_register_worker_plugin(c, id, name, config, comm)
            }
            Request::UnregisterWorkerPlugin { name } => {
                self.on_unregister_worker_plugin(c, id, &name, comm)
            }
            Request::PluginQuery { name, query } => {
                self.on_plugin_query(c, id, &name, &query, comm)
            }
            Request::PublishDatasets { items, override_existing, time } => {
                self.on_publish(c, id, items, override_existing, time, comm)
            }
            Request::UnpublishDataset { name } => self.on_unpublish(c, id, name, comm),
            Request::ListDatasets => {
                reply(comm, c, id, Ok(Reply::Datasets(self.on_list_datasets())))
            }
            Request::GetDataset { name, wait } => self.on_get_dataset(c, id, name, wait, comm),
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

//! Worker plugins registered by clients: kept by name and configuration,
//! sent to every worker now and to every worker that joins later.

use super::requests::reply;
use super::{ClientId, Comm, Scheduler, WorkerId};
use crate::protocol::{Reply, RequestError, RequestErrorKind, ToWorker};
use rustc_hash::FxHashMap;

#[derive(Debug, Default)]
pub(super) struct WorkerPlugins {
    /// Name and configuration of each registered plugin.
    registered: Vec<(String, String)>,
    pending: FxHashMap<u64, Pending>,
    next_id: u64,
}

/// A registration waiting for workers to set the plugin up.
#[derive(Debug)]
struct Pending {
    client: ClientId,
    request: u64,
    name: String,
    waiting: Vec<WorkerId>,
    error: Option<String>,
}

impl Scheduler {
    pub(super) fn on_register_worker_plugin(
        &mut self,
        c: ClientId,
        request: u64,
        name: String,
        config: String,
        comm: &mut impl Comm,
    ) {
        let wp = &mut self.worker_plugins;
        wp.registered.retain(|(n, _)| *n != name);
        wp.registered.push((name.clone(), config.clone()));
        wp.next_id += 1;
        let id = wp.next_id;
        let waiting: Vec<WorkerId> = self.workers.keys().collect();
        for &w in &waiting {
            let msg = ToWorker::Plugin { id, name: name.clone(), config: Some(config.clone()) };
            comm.send_worker(w, msg);
        }
        wp.pending.insert(id, Pending { client: c, request, name, waiting, error: None });
        self.complete_worker_plugin(id, comm);
    }

    pub(super) fn on_unregister_worker_plugin(
        &mut self,
        c: ClientId,
        request: u64,
        name: &str,
        comm: &mut impl Comm,
    ) {
        let wp = &mut self.worker_plugins;
        let before = wp.registered.len();
        wp.registered.retain(|(n, _)| n != name);
        if wp.registered.len() == before {
            let known: Vec<&str> = wp.registered.iter().map(|(n, _)| n.as_str()).collect();
            let message =
                format!("no worker plugin named {name:?} is registered (registered: {known:?})");
            let e = RequestError::new(RequestErrorKind::InvalidArgument, message);
            return reply(comm, c, request, Err(e));
        }
        self.remove_worker_plugin_everywhere(name, comm);
        reply(comm, c, request, Ok(Reply::Done))
    }

    fn remove_worker_plugin_everywhere(&mut self, name: &str, comm: &mut impl Comm) {
        for w in self.workers.keys() {
            comm.send_worker(w, ToWorker::Plugin { id: 0, name: name.to_string(), config: None });
        }
    }

    pub(super) fn on_worker_plugin_result(
        &mut self,
        w: WorkerId,
        id: u64,
        error: Option<String>,
        comm: &mut impl Comm,
    ) {
        let worker = self.workers[w].info.name.clone();
        let Some(p) = self.worker_plugins.pending.get_mut(&id) else {
            if let Some(e) = error {
                tracing::error!(%worker, error = %e, "a worker plugin failed to set up on a joining worker");
            }
            return;
        };
        p.waiting.retain(|&x| x != w);
        if let Some(e) = error {
            p.error.get_or_insert(format!("worker {worker}: {e}"));
        }
        self.complete_worker_plugin(id, comm);
    }

    /// Answers registration `id` once no worker is left to answer.
    fn complete_worker_plugin(&mut self, id: u64, comm: &mut impl Comm) {
        if !self.worker_plugins.pending.get(&id).is_some_and(|p| p.waiting.is_empty()) {
            return;
        }
        let p = self.worker_plugins.pending.remove(&id).expect("checked");
        match p.error {
            None => reply(comm, p.client, p.request, Ok(Reply::Done)),
            Some(e) => {
                // Only drop the registration if no newer one replaced it.
                let newer = self.worker_plugins.pending.values().any(|q| q.name == p.name);
                if !newer {
                    self.worker_plugins.registered.retain(|(n, _)| *n != p.name);
                    self.remove_worker_plugin_everywhere(&p.name, comm);
                }
                let message = format!("worker plugin {:?} failed to set up: {e}", p.name);
                reply(
                    comm,
                    p.client,
                    p.request,
                    Err(RequestError::new(RequestErrorKind::Failed, message)),
                )
            }
        }
    }

    /// Worker `w` joined: it gets every registered worker plugin.
    pub(super) fn worker_plugins_joined(&mut self, w: WorkerId, comm: &mut impl Comm) {
        for (name, config) in &self.worker_plugins.registered {
            let msg = ToWorker::Plugin { id: 0, name: name.clone(), config: Some(config.clone()) };
            comm.send_worker(w, msg);
        }
    }

    /// Worker `w` left: registrations stop waiting for it.
    pub(super) fn worker_plugins_lost(&mut self, w: WorkerId, comm: &mut impl Comm) {
        let ids: Vec<u64> = self.worker_plugins.pending.keys().copied().collect();
        for id in ids {
            if let Some(p) = self.worker_plugins.pending.get_mut(&id) {
                p.waiting.retain(|&x| x != w);
            }
            self.complete_worker_plugin(id, comm);
        }
    }

    /// Registrations of client `c` that left need no answer.
    pub(super) fn worker_plugins_client_lost(&mut self, c: ClientId) {
        self.worker_plugins.pending.retain(|_, p| p.client != c);
    }
}

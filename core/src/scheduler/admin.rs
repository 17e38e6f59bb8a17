//! Cluster administration: running functions on workers outside the task
//! graph, waiting for workers, uploaded files, restart and shutdown.

use super::requests::reply;
use super::{ClientId, Comm, Scheduler, WireId, WorkerId};
use crate::error::{FailureKind, TaskFailure};
use crate::protocol::{Payload, Reply, RequestError, RequestErrorKind, ToClient, ToWorker};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Administration state of the scheduler.
#[derive(Debug, Default)]
pub(super) struct Admin {
    pub(super) runs: FxHashMap<u64, PendingRun>,
    next_run: u64,
    pub(super) waiters: Vec<Waiter>,
    files: Vec<(String, Payload)>,
    stopping: bool,
}

/// A [`crate::protocol::Request::Run`] waiting for workers' answers.
#[derive(Debug)]
pub(super) struct PendingRun {
    client: ClientId,
    request: u64,
    waiting: Vec<(WorkerId, String)>,
    results: Vec<(String, Result<Payload, TaskFailure>)>,
}

/// A request answered once at least `n` workers are connected.
#[derive(Debug)]
pub(super) struct Waiter {
    client: ClientId,
    request: u64,
    n: usize,
}

impl Scheduler {
    /// A worker by id, if connected.
    pub fn worker(&self, w: WorkerId) -> Option<&super::WorkerState> {
        self.workers.get(w)
    }

    /// True once a client asked the cluster to shut down: the driver stops.
    pub fn stopping(&self) -> bool {
        self.admin.stopping
    }

    /// The files uploaded so far, by name.
    pub fn uploaded_files(&self) -> impl Iterator<Item = (&str, &Payload)> {
        self.admin.files.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// Sends `func(args)` to the chosen workers (all when `names` is `None`).
    pub(super) fn on_run(
        &mut self,
        c: ClientId,
        request: u64,
        names: Option<Vec<String>>,
        func: Arc<str>,
        args: Vec<Payload>,
        comm: &mut impl Comm,
    ) {
        let mut targets: Vec<(WorkerId, String)> = Vec::new();
        match names {
            None => targets.extend(self.workers.iter().map(|(w, ws)| (w, ws.info.name.clone()))),
            Some(names) => {
                for name in names {
                    let found = self
                        .workers
                        .iter()
                        .find(|(_, ws)| ws.info.name == name || ws.info.data_addr == name);
                    match found {
                        Some((w, ws)) => {
                            if !targets.iter().any(|(t, _)| *t == w) {
                                targets.push((w, ws.info.name.clone()));
                            }
                        }
                        None => {
                            let mut known: Vec<&str> =
                                self.workers.values().map(|ws| ws.info.name.as_str()).collect();
                            known.sort_unstable();
                            let message = format!(
                                "no connected worker is named {name:?}; connected workers: {known:?}"
                            );
                            let err = RequestError::new(RequestErrorKind::InvalidArgument, message);
                            reply(comm, c, request, Err(err));
                            return;
                        }
                    }
                }
            }
        }
        if targets.is_empty() {
            reply(comm, c, request, Ok(Reply::Run(Vec::new())));
            return;
        }
        self.admin.next_run += 1;
        let id = self.admin.next_run;
        for (w, _) in &targets {
            comm.send_worker(*w, ToWorker::Run { id, func: func.clone(), args: args.clone() });
        }
        let run = PendingRun { client: c, request, waiting: targets, results: Vec::new() };
        self.admin.runs.insert(id, run);
    }

    /// Worker `w` answered run `id`.
    pub(super) fn on_run_result(
        &mut self,
        w: WorkerId,
        id: u64,
        result: Result<Payload, TaskFailure>,
        comm: &mut impl Comm,
    ) {
        let Some(run) = self.admin.runs.get_mut(&id) else { return };
        let Some(pos) = run.waiting.iter().position(|(x, _)| *x == w) else { return };
        let (_, name) = run.waiting.swap_remove(pos);
        run.results.push((name, result));
        self.complete_run(id, comm);
    }

    /// Answers run `id` once no worker is left to answer it.
    fn complete_run(&mut self, id: u64, comm: &mut impl Comm) {
        if self.admin.runs.get(&id).is_some_and(|r| r.waiting.is_empty()) {
            let mut run = self.admin.runs.remove(&id).expect("checked");
            run.results.sort_by(|a, b| a.0.cmp(&b.0));
            reply(comm, run.client, run.request, Ok(Reply::Run(run.results)));
        }
    }

    /// Worker `w` (named `name`) left: the runs waiting for it get an error for it.
    pub(super) fn admin_worker_lost(
        &mut self,
        w: WorkerId,
        why: &str,
        exit_code: Option<i32>,
        comm: &mut impl Comm,
    ) {
        let mut done = Vec::new();
        for (&id, run) in self.admin.runs.iter_mut() {
            if let Some(pos) = run.waiting.iter().position(|(x, _)| *x == w) {
                let (_, name) = run.waiting.swap_remove(pos);
                let failure = TaskFailure::new(
                    FailureKind::KilledWorker { worker: name.clone(), exit_code },
                    format!("worker {name} {why} before the function returned"),
                );
                run.results.push((name, Err(failure)));
                done.push(id);
            }
        }
        for id in done {
            self.complete_run(id, comm);
        }
    }

    /// Worker `w` joined: it gets every uploaded file, and waiters may be answered.
    pub(super) fn admin_worker_joined(&mut self, w: WorkerId, comm: &mut impl Comm) {
        for (name, data) in &self.admin.files {
            comm.send_worker(w, ToWorker::File { name: name.clone(), data: data.clone() });
        }
        self.answer_waiters(comm);
    }

    /// Client `c` left: its pending requests are dropped.
    pub(super) fn admin_client_lost(&mut self, c: ClientId) {
        self.admin.waiters.retain(|x| x.client != c);
        self.admin.runs.retain(|_, r| r.client != c);
        self.events_client_lost(c);
    }

    fn answer_waiters(&mut self, comm: &mut impl Comm) {
        let n = self.workers.len();
        self.admin.waiters.retain(|x| {
            if n >= x.n {
                reply(comm, x.client, x.request, Ok(Reply::Done));
                false
            } else {
                true
            }
        });
    }

    /// Answers `request` once at least `n` workers are connected.
    pub(super) fn on_wait_for_workers(
        &mut self,
        c: ClientId,
        request: u64,
        n: usize,
        comm: &mut impl Comm,
    ) {
        self.admin.waiters.push(Waiter { client: c, request, n });
        self.answer_waiters(comm);
    }

    /// Keeps a file and sends it to every worker.
    pub(super) fn on_upload_file(
        &mut self,
        c: ClientId,
        request: u64,
        name: String,
        data: Payload,
        comm: &mut impl Comm,
    ) {
        let bad =
            name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']);
        if bad {
            let message = format!(
                "{name:?} is not a valid file name; give a plain file name without directories"
            );
            let err = RequestError::new(RequestErrorKind::InvalidArgument, message);
            reply(comm, c, request, Err(err));
            return;
        }
        for w in self.workers.keys() {
            comm.send_worker(w, ToWorker::File { name: name.clone(), data: data.clone() });
        }
        match self.admin.files.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = data,
            None => self.admin.files.push((name, data)),
        }
        reply(comm, c, request, Ok(Reply::Done));
    }

    /// Forgets every task and restarts every worker. Every client's keys fail;
    /// the request is answered once as many workers as before are back.
    pub(super) fn on_restart(&mut self, c: ClientId, request: u64, comm: &mut impl Comm) {
        let n = self.workers.len();
        tracing::info!(workers = n, tasks = self.tasks.len(), "restarting the cluster");
        self.plugin_hook("restart", |p| p.restart());
        let workers: Vec<WorkerId> = self.workers.keys().collect();
        for &w in &workers {
            comm.send_worker(w, ToWorker::Restart);
            self.admin_worker_lost(w, "was restarted", None, comm);
            self.worker_plugins_lost(w, comm);
            let name = self.workers[w].info.name.clone();
            self.data_ops_worker_lost(w, &name, comm);
        }
        for (client, cs) in self.clients.iter_mut() {
            cs.wants.clear();
            comm.send_client(client, ToClient::Restarted);
            for &w in &workers {
                comm.send_client(client, ToClient::WorkerRemoved { id: w.to_wire() });
            }
        }
        self.workers.clear();
        self.tasks.clear();
        self.keys.clear();
        self.queue.clear();
        self.no_worker.clear();
        self.ready.clear();
        self.maybe_release.clear();
        self.dirty.clear();
        self.fire_and_forget.clear();
        self.coord_restarted();
        self.datasets_restarted(comm);
        self.on_wait_for_workers(c, request, n, comm);
    }

    /// Tells every worker to stop and the driver to stop after this message.
    pub(super) fn on_shutdown(&mut self, c: ClientId, request: u64, comm: &mut impl Comm) {
        reply(comm, c, request, Ok(Reply::Done));
        self.stop_cluster(comm);
    }

    /// Tells every worker to stop, and the driver to stop after this event.
    pub(super) fn stop_cluster(&mut self, comm: &mut impl Comm) {
        for w in self.workers.keys() {
            comm.send_worker(w, ToWorker::Shutdown);
        }
        self.admin.stopping = true;
    }
}

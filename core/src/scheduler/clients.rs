//! Clients: connecting, submitting graphs, wanting and releasing keys,
//! cancelling, scattering and leaving.

use super::task::{Task, TaskState};
use super::{ClientId, ClientState, Comm, Scheduler, TaskId, WireId, WorkerId};
use crate::error::{FailureKind, TaskFailure};
use crate::graph::Key;
use crate::protocol::{ClientMsg, ScatteredKey};
use std::cmp::Reverse;

impl Scheduler {
    /// A client completed its handshake.
    pub fn on_client_connected(&mut self, name: &str) -> ClientId {
        self.plugin_hook("add_client", |p| p.add_client(name));
        self.clients.insert(ClientState { name: name.to_string(), wants: Default::default() })
    }

    /// A client left or its connection dropped: everything it wanted is released.
    pub fn on_client_lost(&mut self, c: ClientId, comm: &mut impl Comm) {
        let Some(cs) = self.clients.remove(c) else {
            return;
        };
        self.admin_client_lost(c);
        self.coord_client_lost(c, comm);
        self.datasets_client_lost(c);
        self.plugin_hook("remove_client", |p| p.remove_client(&cs.name));
        self.worker_plugins_client_lost(c);
        for id in cs.wants {
            if let Some(t) = self.tasks.get_mut(id) {
                t.wants.retain(|&x| x != c);
                self.maybe_release.push(id);
            }
        }
        self.finish(comm);
    }

    /// A message from a client.
    pub fn on_client_message(&mut self, c: ClientId, msg: ClientMsg, comm: &mut impl Comm) {
        if !self.clients.contains_key(c) {
            return;
        }
        match msg {
            ClientMsg::UpdateGraph { tasks, wanted } => self.submit_tasks(c, tasks, wanted, comm),
            ClientMsg::Want { keys } => self.want_keys(c, keys, comm),
            ClientMsg::Release { keys } => {
                for k in keys {
                    if let Some(&id) = self.keys.get(&k) {
                        self.remove_want(c, id);
                    }
                }
            }
            ClientMsg::Cancel { keys } => {
                let ids = keys.iter().filter_map(|k| self.keys.get(k).copied()).collect();
                self.cancel(ids, comm);
            }
            ClientMsg::UpdateData { items } => self.on_update_data(c, items, comm),
            ClientMsg::Request { id, req } => self.on_request(c, id, req, comm),
            ClientMsg::Close => self.on_client_lost(c, comm),
            ClientMsg::Retry { keys } => self.retry(c, keys, comm),
            ClientMsg::FireAndForget { keys } => self.fire_and_forget(keys, comm),
        }
        self.finish(comm);
    }

    /// Adds tasks sent by client `c` (or a holder of the scheduler's own)
    /// and makes `c` want `wanted`.
    pub(super) fn submit_tasks(
        &mut self,
        c: ClientId,
        tasks: Vec<crate::graph::TaskSpec>,
        wanted: Vec<Key>,
        comm: &mut impl Comm,
    ) {
        if !self.plugins.is_empty() {
            let keys: Vec<Key> = tasks.iter().map(|t| t.key.clone()).collect();
            let name = self.clients[c].name.clone();
            self.plugin_hook("update_graph", |p| p.update_graph(&name, &keys));
        }
        let (new, unknown) = self.add_tasks(tasks);
        for (id, missing) in unknown {
            let failure = TaskFailure::new(
                FailureKind::MissingDependency,
                format!(
                    "dependency {missing} of task {} is not known to the scheduler (was it released?)",
                    self.tasks[id].key
                ),
            );
            self.fail(id, failure, comm);
        }
        let cyclic = self.cyclic(&new);
        self.unlink(&cyclic);
        for id in cyclic {
            let failure = TaskFailure::new(
                FailureKind::MissingDependency,
                format!("task {} is part of a dependency cycle", self.tasks[id].key),
            );
            self.fail(id, failure, comm);
        }
        self.want_keys(c, wanted, comm);
        // Tasks sent along that nothing wants or depends on are dropped.
        self.maybe_release.extend(new);
    }

    /// A snapshot of the scheduler's state, with the states of `keys`.
    pub fn info(&self, keys: &[Key]) -> crate::protocol::SchedulerInfo {
        crate::protocol::SchedulerInfo {
            workers: self.worker_infos(),
            tasks: self.tasks.len(),
            clients: self.client_count(),
            key_states: keys
                .iter()
                .map(|k| {
                    self.keys.get(k).map(|&id| format!("{:?}", self.tasks[id].state).to_lowercase())
                })
                .collect(),
            unrunnable: self.unrunnable(keys),
            primitives: self.coord_info(),
            plugin_failures: self.plugins.failures(),
        }
    }

    fn want_keys(&mut self, c: ClientId, keys: Vec<Key>, comm: &mut impl Comm) {
        for k in keys {
            match self.keys.get(&k) {
                Some(&id) => self.add_want(c, id, comm),
                None => comm.send_client(
                    c,
                    crate::protocol::ToClient::KeyErred {
                        key: k.clone(),
                        failure: TaskFailure::new(
                            FailureKind::MissingDependency,
                            format!("key {k} is not known to the scheduler; submit its task first"),
                        ),
                    },
                ),
            }
        }
    }

    /// Data the client placed on workers itself.
    fn on_update_data(&mut self, c: ClientId, items: Vec<ScatteredKey>, comm: &mut impl Comm) {
        for item in items {
            let holders: Vec<WorkerId> = item
                .workers
                .iter()
                .map(|&w| WorkerId::from_wire(w))
                .filter(|&w| self.workers.contains_key(w))
                .collect();
            let id = match self.keys.get(&item.key) {
                Some(&id) => id,
                None => {
                    self.seq += 1;
                    let id = self.tasks.insert(Task {
                        key: item.key.clone(),
                        state: TaskState::Released,
                        spec: None,
                        func: super::FuncIdx(u32::MAX),
                        deps: Vec::new(),
                        dependents: Vec::new(),
                        waiting_on: 0,
                        waiters: 0,
                        wants: Vec::new(),
                        who_has: Vec::new(),
                        processing_on: None,
                        proc_slot: 0,
                        nbytes: 0,
                        order: (0, Reverse(0), Reverse(self.seq)),
                        suspicious: 0,
                        retries_left: 0,
                        failure: None,
                        stealing_to: None,
                        long_running: false,
                    });
                    self.keys.insert(item.key.clone(), id);
                    id
                }
            };
            self.add_want(c, id, comm);
            self.store_scattered(id, item.nbytes, holders, comm);
        }
    }

    fn store_scattered(
        &mut self,
        id: TaskId,
        nbytes: u64,
        holders: Vec<WorkerId>,
        comm: &mut impl Comm,
    ) {
        if holders.is_empty() {
            let failure = TaskFailure::new(
                FailureKind::DataLost,
                format!("the workers given scattered data {} left before it was registered; scatter it again", self.tasks[id].key),
            );
            self.fail(id, failure, comm);
            return;
        }
        self.withdraw(id, comm);
        for w in holders {
            if !self.tasks[id].who_has.contains(&w) {
                self.tasks[id].who_has.push(w);
                self.workers[w].has_what.insert(id);
                self.workers[w].nbytes += nbytes;
            }
        }
        self.tasks[id].nbytes = nbytes;
        self.tasks[id].failure = None;
        self.set_state(id, TaskState::Memory);
        let t = &self.tasks[id];
        let workers = t.who_has.iter().map(|w| w.to_wire()).collect::<Vec<_>>();
        for &c in &t.wants {
            comm.send_client(
                c,
                crate::protocol::ToClient::KeyInMemory {
                    key: t.key.clone(),
                    nbytes,
                    workers: workers.clone(),
                    value: None,
                },
            );
        }
    }
}

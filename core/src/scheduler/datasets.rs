//! Published datasets: named collections or futures that every client can
//! get, held by the scheduler like a client holds its futures, so their data
//! stays in memory after every client has left.
//!
//! With a dataset store, publishing also asks the workers holding each
//! partition to write it to a file (the scheduler never relays data) and
//! hands every change of a dataset's record to the driver
//! ([`Comm::catalog`]), which keeps the durable catalog. A scheduler started
//! over a store gets the records back with [`Scheduler::restore_datasets`];
//! their partitions are loaded back onto workers, by ordinary tasks, on the
//! first get.

use super::task::TaskState;
use super::{ClientId, ClientState, Comm, Scheduler, TaskId};
use crate::graph::{Arg, Key, TaskSpec};
use crate::protocol::{
    check_dataset_name, CatalogChange, DatasetInfo, DatasetRecord, Publication, Reply,
    RequestError, RequestErrorKind, StoredPart, ToWorker,
};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

use super::requests::reply;

/// The registered id of the task that reads a stored partition back
/// (defined by the SDK, linked into every worker).
pub const LOAD_PART: &str = "rudask::dataset::load_part";

/// The scheduler's datasets.
#[derive(Debug, Default)]
pub(super) struct Datasets {
    records: BTreeMap<String, DatasetRecord>,
    /// The pseudo-client that wants the published keys.
    holder: Option<ClientId>,
    /// How many datasets hold each task.
    holds: FxHashMap<TaskId, u32>,
    /// Gets waiting for a name to be published: (client, request id, name).
    waiting: Vec<(ClientId, u64, String)>,
    /// The store's directory when datasets are written to disk.
    store: Option<String>,
    /// Keys to write once they are in memory, with their datasets.
    unstored: FxHashMap<Key, Vec<String>>,
    /// Tasks that reached memory or failed while some dataset waited on them.
    settled: Vec<TaskId>,
    dirs: u64,
}

fn failed(kind: RequestErrorKind, message: impl Into<String>) -> RequestError {
    RequestError::new(kind, message)
}

impl Scheduler {
    /// Writes published datasets to the store at `store` from now on, and
    /// takes back the records a previous scheduler left there (their keys
    /// load from disk on first get). Call before any client connects.
    pub fn restore_datasets(&mut self, store: String, records: Vec<DatasetRecord>) {
        self.datasets.store = Some(store);
        for r in records {
            self.datasets.records.insert(r.name.clone(), r);
        }
    }

    /// The names of the published datasets.
    pub fn dataset_names(&self) -> Vec<String> {
        self.datasets.records.keys().cloned().collect()
    }

    /// The pseudo-client holding published keys, if any key is held.
    pub(super) fn datasets_holder(&self) -> Option<ClientId> {
        self.datasets.holder
    }

    pub(super) fn on_publish(
        &mut self,
        c: ClientId,
        id: u64,
        items: Vec<(String, Publication)>,
        override_existing: bool,
        published_at: f64,
        comm: &mut impl Comm,
    ) {
        if let Err(e) = self.check_publish(&items, override_existing) {
            return reply(comm, c, id, Err(e));
        }
        let owner = self.clients[c].name.clone();
        for (name, publication) in items {
            if let Some(old) = self.datasets.records.remove(&name) {
                self.drop_record(old, comm);
            }
            let record = DatasetRecord {
                dir: self.fresh_dataset_dir(published_at),
                parts: vec![None; publication.keys.len()],
                name: name.clone(),
                publication,
                owner: owner.clone(),
                published_at,
                damaged: None,
            };
            if record.publication.graph.is_empty() {
                let ids: Vec<TaskId> =
                    record.publication.keys.iter().map(|k| self.keys[k]).collect();
                self.dataset_hold(&ids, comm);
                if self.datasets.store.is_some() {
                    for k in &record.publication.keys {
                        self.datasets.unstored.entry(k.clone()).or_default().push(name.clone());
                        self.datasets.settled.push(self.keys[k]);
                    }
                }
            }
            if self.datasets.store.is_some() {
                comm.catalog(CatalogChange::Put(record.clone()));
            }
            self.datasets.records.insert(name.clone(), record);
            let (answer, rest): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.datasets.waiting).into_iter().partition(|w| w.2 == name);
            self.datasets.waiting = rest;
            for (wc, wid, _) in answer {
                self.on_get_dataset(wc, wid, name.clone(), false, comm);
            }
        }
        reply(comm, c, id, Ok(Reply::Done));
    }

    /// A directory name no dataset uses, also across restarts of the
    /// scheduler over the same store.
    fn fresh_dataset_dir(&mut self, time: f64) -> String {
        loop {
            self.datasets.dirs += 1;
            let dir = format!("ds-{}-{}", (time * 1e3) as u64, self.datasets.dirs);
            if self.datasets.records.values().all(|r| r.dir != dir) {
                return dir;
            }
        }
    }

    /// All or none: every name valid, free (or overridden), every key of a
    /// persisted publication known.
    fn check_publish(
        &self,
        items: &[(String, Publication)],
        override_existing: bool,
    ) -> Result<(), RequestError> {
        let invalid = |m: String| failed(RequestErrorKind::InvalidArgument, m);
        for (i, (name, p)) in items.iter().enumerate() {
            check_dataset_name(name).map_err(invalid)?;
            if items[..i].iter().any(|(n, _)| n == name) {
                return Err(invalid(format!("dataset {name:?} is named twice in one publish")));
            }
            if !override_existing && self.datasets.records.contains_key(name) {
                return Err(failed(
                    RequestErrorKind::Exists,
                    format!(
                        "a dataset named {name:?} is already published; unpublish it first or \
                         publish with override_existing(true)"
                    ),
                ));
            }
            if p.meta.partitions() != p.keys.len() {
                return Err(invalid(format!(
                    "dataset {name:?}: its meta says {} partitions but it has {} keys",
                    p.meta.partitions(),
                    p.keys.len()
                )));
            }
            if p.graph.is_empty() {
                if let Some(k) = p.keys.iter().find(|k| !self.keys.contains_key(*k)) {
                    return Err(invalid(format!(
                        "dataset {name:?}: key {k} is not known to the scheduler; persist the \
                         collection (or keep its futures) until it is published"
                    )));
                }
            }
        }
        Ok(())
    }

    pub(super) fn on_unpublish(
        &mut self,
        c: ClientId,
        id: u64,
        name: String,
        comm: &mut impl Comm,
    ) {
        match self.datasets.records.remove(&name) {
            Some(record) => {
                self.drop_record(record, comm);
                reply(comm, c, id, Ok(Reply::Done));
            }
            None => reply(comm, c, id, Ok(Reply::NoDataset(self.dataset_names()))),
        }
    }

    /// Releases a record's keys and deletes it from the catalog.
    fn drop_record(&mut self, record: DatasetRecord, comm: &mut impl Comm) {
        if record.publication.graph.is_empty() {
            let ids: Vec<TaskId> =
                record.publication.keys.iter().filter_map(|k| self.keys.get(k).copied()).collect();
            self.dataset_unhold(&ids);
        }
        for k in &record.publication.keys {
            if let Some(names) = self.datasets.unstored.get_mut(k) {
                names.retain(|n| *n != record.name);
                if names.is_empty() {
                    self.datasets.unstored.remove(k);
                }
            }
        }
        if self.datasets.store.is_some() {
            comm.catalog(CatalogChange::Delete { name: record.name, dir: record.dir });
        }
    }

    pub(super) fn on_list_datasets(&self) -> Vec<DatasetInfo> {
        self.datasets
            .records
            .values()
            .map(|r| {
                let p = &r.publication;
                let in_memory = p.graph.is_empty()
                    && p.keys.iter().all(|k| {
                        self.keys.get(k).is_some_and(|&t| self.tasks[t].state == TaskState::Memory)
                    });
                let nbytes = if in_memory {
                    p.keys.iter().map(|k| self.tasks[self.keys[k]].nbytes).sum()
                } else {
                    r.parts.iter().flatten().map(|s| s.nbytes).sum()
                };
                DatasetInfo {
                    name: r.name.clone(),
                    type_tag: p.meta.type_tag().to_string(),
                    partitions: p.keys.len(),
                    nbytes,
                    in_memory,
                    on_disk: self.datasets.store.is_some() && !p.keys.is_empty() && r.durable(),
                    lazy: !p.graph.is_empty(),
                    damaged: r.damaged.clone(),
                    owner: r.owner.clone(),
                    published_at: r.published_at,
                }
            })
            .collect()
    }

    /// Answers a get with the dataset's keys (the getter then wants them);
    /// keys that only live on disk are loaded back first, by tasks the
    /// dataset holds.
    pub(super) fn on_get_dataset(
        &mut self,
        c: ClientId,
        id: u64,
        name: String,
        wait: bool,
        comm: &mut impl Comm,
    ) {
        let Some(record) = self.datasets.records.get(&name) else {
            if wait {
                self.datasets.waiting.push((c, id, name));
            } else {
                reply(comm, c, id, Ok(Reply::NoDataset(self.dataset_names())));
            }
            return;
        };
        if let Some(why) = &record.damaged {
            let message = format!("dataset {name:?} is damaged: {why}; unpublish it");
            return reply(comm, c, id, Err(failed(RequestErrorKind::Failed, message)));
        }
        let publication = record.publication.clone();
        if !publication.graph.is_empty() {
            return reply(comm, c, id, Ok(Reply::Dataset(publication)));
        }
        let mut loads = Vec::new();
        for (i, k) in publication.keys.iter().enumerate() {
            if self.keys.contains_key(k) {
                continue;
            }
            match (&self.datasets.store, &record.parts[i]) {
                (Some(store), Some(part)) => loads.push(load_spec(store, &record.dir, k, part)),
                _ => {
                    let message = format!(
                        "partition {k} of dataset {name:?} is gone: its worker left and it was \
                         not written to a dataset store; unpublish the dataset and publish it again"
                    );
                    return reply(comm, c, id, Err(failed(RequestErrorKind::Failed, message)));
                }
            }
        }
        if !loads.is_empty() {
            let keys: Vec<Key> = loads.iter().map(|t: &TaskSpec| t.key.clone()).collect();
            let holder = self.ensure_datasets_holder();
            self.submit_tasks(holder, loads, Vec::new(), comm);
            let ids: Vec<TaskId> = keys.iter().map(|k| self.keys[k]).collect();
            self.dataset_hold(&ids, comm);
        }
        reply(comm, c, id, Ok(Reply::Dataset(publication)));
    }

    fn ensure_datasets_holder(&mut self) -> ClientId {
        match self.datasets.holder {
            Some(h) => h,
            None => {
                let h = self.clients.insert(ClientState {
                    name: "published datasets".to_string(),
                    wants: Default::default(),
                });
                self.datasets.holder = Some(h);
                h
            }
        }
    }

    fn dataset_hold(&mut self, ids: &[TaskId], comm: &mut impl Comm) {
        if ids.is_empty() {
            return;
        }
        let holder = self.ensure_datasets_holder();
        for &id in ids {
            let n = self.datasets.holds.entry(id).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.add_want(holder, id, comm);
            }
        }
    }

    fn dataset_unhold(&mut self, ids: &[TaskId]) {
        let Some(holder) = self.datasets.holder else { return };
        for id in ids {
            let Some(n) = self.datasets.holds.get_mut(id) else { continue };
            *n -= 1;
            if *n == 0 {
                self.datasets.holds.remove(id);
                self.remove_want(holder, *id);
            }
        }
        if self.datasets.holds.is_empty() {
            self.datasets.holder = None;
            self.clients.remove(holder);
        }
    }

    /// Called by `set_state`: a task some dataset waits on settled.
    pub(super) fn dataset_task_settled(&mut self, id: TaskId) {
        if !self.datasets.unstored.is_empty() || !self.datasets.holds.is_empty() {
            self.datasets.settled.push(id);
        }
    }

    /// Asks workers to write the published keys that reached memory, and
    /// marks datasets whose partition could not be loaded back as damaged.
    pub(super) fn datasets_flush(&mut self, comm: &mut impl Comm) {
        if self.datasets.settled.is_empty() {
            return;
        }
        let Some(store) = self.datasets.store.clone() else {
            self.datasets.settled.clear();
            return;
        };
        let mut requests: BTreeMap<(super::WorkerId, String), Vec<(Key, String)>> = BTreeMap::new();
        for id in std::mem::take(&mut self.datasets.settled) {
            let Some(t) = self.tasks.get(id) else { continue };
            match t.state {
                TaskState::Memory => {
                    let Some(names) = self.datasets.unstored.remove(&t.key) else { continue };
                    let w = t.who_has[0];
                    for name in names {
                        let Some(r) = self.datasets.records.get(&name) else { continue };
                        let Some(i) = r.publication.keys.iter().position(|k| *k == t.key) else {
                            continue;
                        };
                        requests
                            .entry((w, r.dir.clone()))
                            .or_default()
                            .push((t.key.clone(), format!("part-{i:05}")));
                    }
                }
                TaskState::Erred => {
                    let loading = t.spec.as_ref().is_some_and(|s| &*s.func == LOAD_PART);
                    let Some(failure) = t.failure.clone().filter(|_| loading) else { continue };
                    let key = t.key.clone();
                    let damaged: Vec<DatasetRecord> = self
                        .datasets
                        .records
                        .values_mut()
                        .filter(|r| r.damaged.is_none() && r.publication.keys.contains(&key))
                        .map(|r| {
                            r.damaged = Some(format!("partition {key}: {}", failure.message));
                            r.clone()
                        })
                        .collect();
                    for r in damaged {
                        comm.catalog(CatalogChange::Put(r));
                    }
                }
                _ => {}
            }
        }
        for ((w, dir), parts) in requests {
            comm.send_worker(w, ToWorker::StoreParts { store: store.clone(), dir, parts });
        }
    }

    /// A worker wrote (or failed to write) partitions of the dataset in `dir`.
    pub(super) fn on_parts_stored(
        &mut self,
        dir: &str,
        results: Vec<(Key, Result<StoredPart, String>)>,
        comm: &mut impl Comm,
    ) {
        let Some(r) = self.datasets.records.values_mut().find(|r| r.dir == dir) else { return };
        for (key, result) in results {
            let Some(i) = r.publication.keys.iter().position(|k| *k == key) else { continue };
            match result {
                Ok(part) => r.parts[i] = Some(part),
                Err(e) => {
                    tracing::warn!(dataset = %r.name, %key, error = %e, "a partition could not be written to the dataset store")
                }
            }
        }
        comm.catalog(CatalogChange::Put(r.clone()));
    }

    /// Client `c` left: its waiting gets are dropped.
    pub(super) fn datasets_client_lost(&mut self, c: ClientId) {
        self.datasets.waiting.retain(|w| w.0 != c);
    }

    /// Every task was forgotten by a restart: durable datasets stay (their
    /// partitions load from disk on the next get), the others are gone.
    pub(super) fn datasets_restarted(&mut self, comm: &mut impl Comm) {
        self.datasets.holds.clear();
        self.datasets.unstored.clear();
        self.datasets.settled.clear();
        if let Some(h) = self.datasets.holder.take() {
            self.clients.remove(h);
        }
        let store = self.datasets.store.is_some();
        let (keep, lost): (BTreeMap<_, _>, BTreeMap<_, _>) =
            std::mem::take(&mut self.datasets.records)
                .into_iter()
                .partition(|(_, r)| !r.publication.graph.is_empty() || (store && r.durable()));
        self.datasets.records = keep;
        for r in lost.into_values() {
            tracing::warn!(dataset = %r.name, "the restart lost a dataset that was only in memory");
            if store {
                comm.catalog(CatalogChange::Delete { name: r.name, dir: r.dir });
            }
        }
    }

    /// Invariants of the datasets (for tests).
    pub(super) fn check_datasets(&self) {
        let d = &self.datasets;
        assert_eq!(d.holder.is_some(), !d.holds.is_empty(), "holder exists iff keys are held");
        if let Some(h) = d.holder {
            assert_eq!(self.clients[h].wants.len(), d.holds.len());
            for &id in d.holds.keys() {
                assert!(self.clients[h].wants.contains(&id));
            }
        }
    }
}

/// The task that reads partition `key` back from its file.
fn load_spec(store: &str, dir: &str, key: &Key, part: &StoredPart) -> TaskSpec {
    let path = format!("{store}/{dir}/{}", part.file);
    let value = |v: crate::protocol::Payload| Arg::Value(v);
    TaskSpec {
        key: key.clone(),
        func: LOAD_PART.into(),
        args: vec![
            value(crate::registry::encode(&path).expect("a string encodes")),
            value(crate::registry::encode(&part.checksum).expect("an integer encodes")),
            value(crate::registry::encode(&part.bin_body).expect("a bool encodes")),
        ],
        options: Default::default(),
    }
}

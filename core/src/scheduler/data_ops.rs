//! Data placement: who holds which keys, copying keys to more workers
//! (replicate) and evening out the bytes held per worker (rebalance).
//!
//! Data moves worker to worker: the scheduler plans transfers and tells each
//! receiving worker to fetch keys from a holder ([`ToWorker::Acquire`]). A
//! receiver counts as a holder once it confirms ([`WorkerMsg::Acquired`]);
//! only then does a rebalance free the sender's copy, so no key is ever
//! without a holder because of a move. A request is answered once all its
//! transfers succeeded, failed, or lost a worker.
//!
//! [`WorkerMsg::Acquired`]: crate::protocol::WorkerMsg::Acquired

use super::task::TaskState;
use super::{requests, ClientId, Comm, Scheduler, TaskId, WireId, WorkerId};
use crate::graph::Key;
use crate::protocol::{DepLocation, Reply, RequestError, RequestErrorKind, ToClient, ToWorker};
use rustc_hash::{FxHashMap, FxHashSet};

/// At most this many failed transfers are described in an error.
const ERRORS_SHOWN: usize = 3;

/// Requests being carried out and the transfers they wait on.
#[derive(Debug, Default)]
pub(super) struct DataOps {
    ops: FxHashMap<u64, Op>,
    /// Pending transfers by key and receiving worker.
    moves: FxHashMap<(Key, WorkerId), Move>,
    next_op: u64,
}

#[derive(Debug)]
struct Op {
    client: ClientId,
    request: u64,
    what: &'static str,
    total: usize,
    pending: usize,
    errors: Vec<String>,
}

#[derive(Debug)]
struct Move {
    source: WorkerId,
    /// The request waiting on this transfer.
    op: u64,
    /// Free the source's copy once the receiver holds it (rebalance).
    free_source: bool,
}

impl Scheduler {
    /// The names of the workers holding each key (none for keys not in memory).
    pub(super) fn who_has(&self, keys: &[Key]) -> Vec<(Key, Vec<String>)> {
        keys.iter()
            .map(|k| {
                let names = match self.keys.get(k).map(|&id| &self.tasks[id]) {
                    Some(t) => {
                        t.who_has.iter().map(|&w| self.workers[w].info.name.clone()).collect()
                    }
                    None => Vec::new(),
                };
                (k.clone(), names)
            })
            .collect()
    }

    /// Every worker's name and the keys it holds, sorted.
    pub(super) fn has_what(&self) -> Vec<(String, Vec<Key>)> {
        let mut out: Vec<(String, Vec<Key>)> = self
            .workers
            .values()
            .map(|ws| {
                let mut keys: Vec<Key> =
                    ws.has_what.iter().map(|&id| self.tasks[id].key.clone()).collect();
                keys.sort();
                (ws.info.name.clone(), keys)
            })
            .collect();
        out.sort();
        out
    }

    /// The tasks of `keys`, which must all be in memory.
    fn in_memory(&self, keys: &[Key], what: &str) -> Result<Vec<TaskId>, RequestError> {
        let mut seen = FxHashSet::default();
        let mut ids = Vec::with_capacity(keys.len());
        for k in keys {
            let Some(&id) = self.keys.get(k) else {
                return Err(RequestError::new(
                    RequestErrorKind::InvalidArgument,
                    format!("cannot {what} {k}: the scheduler does not know this key (was it released?)"),
                ));
            };
            let state = self.tasks[id].state;
            if state != TaskState::Memory {
                return Err(RequestError::new(
                    RequestErrorKind::InvalidArgument,
                    format!(
                        "cannot {what} {k}: it is not in memory but {}; wait for it to finish first",
                        format!("{state:?}").to_lowercase()
                    ),
                ));
            }
            if seen.insert(id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Copies each key to `n` workers in total (every worker if there are
    /// fewer), least loaded workers first. Keys already on `n` or more
    /// workers stay as they are.
    pub(super) fn replicate(
        &mut self,
        c: ClientId,
        request: u64,
        keys: &[Key],
        n: u32,
        comm: &mut impl Comm,
    ) {
        if n == 0 {
            let e = RequestError::new(
                RequestErrorKind::InvalidArgument,
                "replicate needs n >= 1 copies of each key",
            );
            return requests::reply(comm, c, request, Err(e));
        }
        let ids = match self.in_memory(keys, "replicate") {
            Ok(ids) => ids,
            Err(e) => return requests::reply(comm, c, request, Err(e)),
        };
        let target = (n as usize).min(self.workers.len());
        let mut incoming: FxHashMap<WorkerId, u64> = FxHashMap::default();
        let mut plan: Vec<(TaskId, WorkerId, WorkerId)> = Vec::new();
        for id in ids {
            let t = &self.tasks[id];
            let has = |w: WorkerId| {
                t.who_has.contains(&w) || self.data_ops.moves.contains_key(&(t.key.clone(), w))
            };
            let count = self.workers.keys().filter(|&w| has(w)).count();
            if count >= target {
                continue;
            }
            let mut candidates: Vec<(u64, WorkerId)> = self
                .workers
                .iter()
                .filter(|&(w, _)| !has(w))
                .map(|(w, ws)| (ws.nbytes + incoming.get(&w).copied().unwrap_or(0), w))
                .collect();
            candidates.sort();
            for (i, &(_, r)) in candidates.iter().take(target - count).enumerate() {
                let source = t.who_has[i % t.who_has.len()];
                *incoming.entry(r).or_default() += t.nbytes;
                plan.push((id, source, r));
            }
        }
        self.start_transfers(c, request, "replicate", plan, false, comm);
    }

    /// Moves keys from workers holding more than the mean number of bytes to
    /// workers holding less, largest keys of the most loaded workers first,
    /// as long as a move narrows the gap between sender and receiver.
    pub(super) fn rebalance(
        &mut self,
        c: ClientId,
        request: u64,
        keys: Option<&[Key]>,
        comm: &mut impl Comm,
    ) {
        let ids = match keys {
            Some(keys) => match self.in_memory(keys, "rebalance") {
                Ok(ids) => ids,
                Err(e) => return requests::reply(comm, c, request, Err(e)),
            },
            None => self
                .tasks
                .iter()
                .filter(|(_, t)| t.state == TaskState::Memory)
                .map(|(id, _)| id)
                .collect(),
        };
        let moving: FxHashSet<&Key> = self.data_ops.moves.keys().map(|(k, _)| k).collect();
        let mut movable: FxHashMap<WorkerId, Vec<TaskId>> = FxHashMap::default();
        for id in ids {
            let t = &self.tasks[id];
            if t.nbytes == 0 || moving.contains(&t.key) || is_actor(&t.key) {
                continue;
            }
            for &w in &t.who_has {
                movable.entry(w).or_default().push(id);
            }
        }
        let mut load: FxHashMap<WorkerId, u64> =
            self.workers.iter().map(|(w, ws)| (w, ws.nbytes)).collect();
        let mean = load.values().sum::<u64>() / (load.len().max(1) as u64);
        let mut senders: Vec<WorkerId> =
            load.iter().filter(|&(_, &b)| b > mean).map(|(&w, _)| w).collect();
        senders.sort_by_key(|w| std::cmp::Reverse(load[w]));
        let mut receiving: FxHashSet<(TaskId, WorkerId)> = FxHashSet::default();
        let mut plan = Vec::new();
        for s in senders {
            let mut candidates = movable.remove(&s).unwrap_or_default();
            candidates.sort_by_key(|&id| std::cmp::Reverse(self.tasks[id].nbytes));
            for id in candidates {
                if load[&s] <= mean {
                    break;
                }
                let t = &self.tasks[id];
                let b = t.nbytes;
                let receiver = load
                    .iter()
                    .filter(|&(&w, _)| !t.who_has.contains(&w) && !receiving.contains(&(id, w)))
                    .min_by_key(|&(&w, &bytes)| (bytes, w))
                    .map(|(&w, &bytes)| (w, bytes));
                let Some((r, r_load)) = receiver else { continue };
                if r_load + b > load[&s].saturating_sub(b) {
                    continue;
                }
                let sl = load.get_mut(&s).expect("sender");
                *sl = sl.saturating_sub(b);
                *load.get_mut(&r).expect("receiver") += b;
                receiving.insert((id, r));
                plan.push((id, s, r));
            }
        }
        self.start_transfers(c, request, "rebalance", plan, true, comm);
    }

    /// Registers request `request` of `c` waiting on `plan` (task, source,
    /// receiver) and sends the receivers their fetches; answers at once when
    /// there is nothing to do.
    fn start_transfers(
        &mut self,
        c: ClientId,
        request: u64,
        what: &'static str,
        plan: Vec<(TaskId, WorkerId, WorkerId)>,
        free_source: bool,
        comm: &mut impl Comm,
    ) {
        if plan.is_empty() {
            return requests::reply(comm, c, request, Ok(Reply::Done));
        }
        let op = self.data_ops.next_op;
        self.data_ops.next_op += 1;
        let mut per_receiver: FxHashMap<WorkerId, Vec<DepLocation>> = FxHashMap::default();
        for &(id, source, r) in &plan {
            let key = self.tasks[id].key.clone();
            // Planning skips keys already moving to a receiver, so each
            // transfer belongs to one request.
            self.data_ops.moves.insert((key.clone(), r), Move { source, op, free_source });
            per_receiver
                .entry(r)
                .or_default()
                .push(DepLocation { key, workers: vec![source.to_wire()] });
        }
        self.data_ops.ops.insert(
            op,
            Op {
                client: c,
                request,
                what,
                total: plan.len(),
                pending: plan.len(),
                errors: Vec::new(),
            },
        );
        let mut per_receiver: Vec<_> = per_receiver.into_iter().collect();
        per_receiver.sort_by_key(|(w, _)| *w);
        for (r, keys) in per_receiver {
            comm.send_worker(r, ToWorker::Acquire { keys });
        }
    }

    /// Worker `w` fetched `key` (`nbytes` is `Some`) or failed to.
    pub(super) fn on_acquired(
        &mut self,
        w: WorkerId,
        key: Key,
        nbytes: Option<u64>,
        comm: &mut impl Comm,
    ) {
        let mv = self.data_ops.moves.remove(&(key.clone(), w));
        let mut error = None;
        let live =
            self.keys.get(&key).copied().filter(|&id| self.tasks[id].state == TaskState::Memory);
        match (nbytes, live) {
            (Some(_), Some(id)) => {
                let nbytes = self.tasks[id].nbytes;
                if !self.tasks[id].who_has.contains(&w) {
                    self.tasks[id].who_has.push(w);
                    let ws = &mut self.workers[w];
                    ws.has_what.insert(id);
                    ws.nbytes += nbytes;
                }
                if let Some(m) = mv.as_ref().filter(|m| m.free_source && m.source != w) {
                    if let Some(pos) = self.tasks[id].who_has.iter().position(|&x| x == m.source) {
                        self.tasks[id].who_has.swap_remove(pos);
                        let ws = &mut self.workers[m.source];
                        ws.has_what.remove(&id);
                        ws.nbytes = ws.nbytes.saturating_sub(nbytes);
                        comm.send_worker(m.source, ToWorker::Free { keys: vec![key.clone()] });
                    }
                }
                self.announce_holders(id, comm);
            }
            // Nobody needs the key any more: the copy is not kept.
            (Some(_), None) => comm.send_worker(w, ToWorker::Free { keys: vec![key.clone()] }),
            (None, _) => {
                if let Some(m) = &mv {
                    error = Some(format!(
                        "worker {} could not fetch {key} from worker {}",
                        self.workers[w].info.name,
                        self.workers.get(m.source).map_or("(gone)", |s| s.info.name.as_str())
                    ));
                }
            }
        }
        if let Some(m) = mv {
            self.op_step(m.op, error, comm);
        }
    }

    /// Tells the clients that want a key where its data now is.
    fn announce_holders(&self, id: TaskId, comm: &mut impl Comm) {
        let t = &self.tasks[id];
        for &c in &t.wants {
            comm.send_client(
                c,
                ToClient::KeyInMemory {
                    key: t.key.clone(),
                    nbytes: t.nbytes,
                    workers: self.wire_workers(&t.who_has),
                    value: None,
                },
            );
        }
    }

    /// Worker `w` (already removed, named `name`) left: its transfers fail.
    pub(super) fn data_ops_worker_lost(&mut self, w: WorkerId, name: &str, comm: &mut impl Comm) {
        let lost: Vec<(Key, WorkerId)> = self
            .data_ops
            .moves
            .iter()
            .filter(|((_, r), m)| *r == w || m.source == w)
            .map(|(k, _)| k.clone())
            .collect();
        for (key, r) in lost {
            let m = self.data_ops.moves.remove(&(key.clone(), r)).expect("listed");
            let error = if r == w {
                format!("worker {name} left before it received {key}")
            } else {
                format!("worker {name} left while {key} was being copied from it")
            };
            self.op_step(m.op, Some(error), comm);
        }
    }

    /// One transfer of request `op` ended; answers the request after its last.
    fn op_step(&mut self, op: u64, error: Option<String>, comm: &mut impl Comm) {
        let Some(o) = self.data_ops.ops.get_mut(&op) else { return };
        o.pending -= 1;
        o.errors.extend(error);
        if o.pending > 0 {
            return;
        }
        let o = self.data_ops.ops.remove(&op).expect("present");
        if !self.clients.contains_key(o.client) {
            return;
        }
        let reply = if o.errors.is_empty() {
            Ok(Reply::Done)
        } else {
            let mut message = format!(
                "{}: {} of {} transfers failed: {}",
                o.what,
                o.errors.len(),
                o.total,
                o.errors[..o.errors.len().min(ERRORS_SHOWN)].join("; ")
            );
            if o.errors.len() > ERRORS_SHOWN {
                message.push_str("; ...");
            }
            message.push_str(" (the data that was moved stays where it is; try again)");
            Err(RequestError::new(RequestErrorKind::Failed, message))
        };
        requests::reply(comm, o.client, o.request, reply);
    }

    /// Panics when transfer bookkeeping is inconsistent. For tests.
    pub(super) fn check_data_ops(&self) {
        let mut waits: FxHashMap<u64, usize> = FxHashMap::default();
        for ((key, r), m) in &self.data_ops.moves {
            assert!(self.workers.contains_key(*r), "transfer of {key} to a worker that left");
            assert!(
                self.workers.contains_key(m.source),
                "transfer of {key} from a worker that left"
            );
            *waits.entry(m.op).or_default() += 1;
        }
        for (id, o) in &self.data_ops.ops {
            assert_eq!(
                waits.get(id).copied().unwrap_or(0),
                o.pending,
                "pending transfers of request {id}"
            );
        }
    }
}

/// An actor's key (`actor-...`, made by the SDK's `Client::submit_actor`)
/// stands for an object living on the worker that holds it: moving the key
/// would free the object there, so rebalancing leaves it in place.
fn is_actor(key: &Key) -> bool {
    key.as_str().starts_with("actor-")
}

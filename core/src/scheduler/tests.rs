//! Tests of the scheduler state machine: scenario tests driving it through a
//! small harness, regression tests for bugs those found, and a property test
//! running random operation sequences against a model of workers and clients.

use super::*;
use crate::error::{FailureKind, TaskFailure};
use crate::graph::{Arg, Key, TaskOptions, TaskSpec};
use crate::protocol::{
    ClientMsg, ComputeTask, Payload, Reply, Request, ScatteredKey, ToClient, ToWorker, WorkerHello,
    WorkerMsg,
};

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A scheduler and the outbox it writes to.
pub(super) struct H {
    pub(super) s: Scheduler,
    pub(super) comm: TestComm,
}

pub(super) fn spec(key: &str, func: &str, deps: &[&str]) -> TaskSpec {
    spec_opts(key, func, deps, 0, 0)
}

pub(super) fn spec_opts(
    key: &str,
    func: &str,
    deps: &[&str],
    priority: i32,
    retries: u32,
) -> TaskSpec {
    let mut args = vec![Arg::Value(Payload::from(key.as_bytes().to_vec()))];
    args.extend(deps.iter().map(|d| Arg::Dep(Key::from(*d))));
    TaskSpec {
        key: Key::from(key),
        func: Arc::from(func),
        args,
        options: TaskOptions { priority, retries, ..Default::default() },
    }
}

/// The default configuration, changed by `f`.
pub(super) fn tuned(f: impl FnOnce(&mut SchedulerConfig)) -> SchedulerConfig {
    let mut c = SchedulerConfig::default();
    f(&mut c);
    c
}

pub(super) fn keys(ks: &[&str]) -> Vec<Key> {
    ks.iter().map(|k| Key::from(*k)).collect()
}

pub(super) fn payload(b: &[u8]) -> Payload {
    Payload::from(b.to_vec())
}

pub(super) fn computes(msgs: &[(WorkerId, ToWorker)]) -> Vec<(WorkerId, ComputeTask)> {
    msgs.iter()
        .filter_map(|(w, m)| match m {
            ToWorker::Compute(ct) => Some((*w, (**ct).clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn compute_keys(msgs: &[(WorkerId, ToWorker)]) -> Vec<(WorkerId, String)> {
    computes(msgs).into_iter().map(|(w, ct)| (w, ct.spec.key.to_string())).collect()
}

pub(super) fn frees(msgs: &[(WorkerId, ToWorker)]) -> Vec<(WorkerId, String)> {
    let mut out = Vec::new();
    for (w, m) in msgs {
        if let ToWorker::Free { keys } = m {
            out.extend(keys.iter().map(|k| (*w, k.to_string())));
        }
    }
    out
}

pub(super) fn steals(msgs: &[(WorkerId, ToWorker)]) -> Vec<(WorkerId, u64)> {
    msgs.iter()
        .filter_map(|(w, m)| match m {
            ToWorker::Steal { task } => Some((*w, *task)),
            _ => None,
        })
        .collect()
}

pub(super) fn in_memory(msgs: &[(ClientId, ToClient)]) -> Vec<(ClientId, String)> {
    msgs.iter()
        .filter_map(|(c, m)| match m {
            ToClient::KeyInMemory { key, .. } => Some((*c, key.to_string())),
            _ => None,
        })
        .collect()
}

pub(super) fn erred(msgs: &[(ClientId, ToClient)]) -> Vec<(ClientId, String, TaskFailure)> {
    msgs.iter()
        .filter_map(|(c, m)| match m {
            ToClient::KeyErred { key, failure } => Some((*c, key.to_string(), failure.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn cancelled(msgs: &[(ClientId, ToClient)]) -> Vec<(ClientId, String)> {
    msgs.iter()
        .filter_map(|(c, m)| match m {
            ToClient::KeyCancelled { key } => Some((*c, key.to_string())),
            _ => None,
        })
        .collect()
}

impl H {
    pub(super) fn new() -> Self {
        Self::with_config(SchedulerConfig::default())
    }

    pub(super) fn with_config(config: SchedulerConfig) -> Self {
        H { s: Scheduler::new(config), comm: TestComm::default() }
    }

    pub(super) fn worker(&mut self, name: &str, nthreads: u32, catalog: &[&str]) -> WorkerId {
        let hello = WorkerHello {
            name: name.to_string(),
            data_addr: format!("mem://{name}"),
            nthreads,
            catalog: catalog.iter().map(|f| Arc::from(*f)).collect(),
            resources: Vec::new(),
        };
        let w = self.s.on_worker_connected(&hello, &mut self.comm).expect("worker accepted");
        self.s.check_invariants();
        w
    }

    pub(super) fn client(&mut self, name: &str) -> ClientId {
        let c = self.s.on_client_connected(name);
        self.s.check_invariants();
        c
    }

    pub(super) fn client_msg(&mut self, c: ClientId, msg: ClientMsg) {
        self.s.on_client_message(c, msg, &mut self.comm);
        self.s.check_invariants();
    }

    pub(super) fn submit(&mut self, c: ClientId, tasks: Vec<TaskSpec>, wanted: &[&str]) {
        self.client_msg(c, ClientMsg::UpdateGraph { tasks, wanted: keys(wanted) });
    }

    pub(super) fn release(&mut self, c: ClientId, ks: &[&str]) {
        self.client_msg(c, ClientMsg::Release { keys: keys(ks) });
    }

    pub(super) fn worker_msg(&mut self, w: WorkerId, msg: WorkerMsg) {
        self.s.on_worker_message(w, msg, &mut self.comm);
        self.s.check_invariants();
    }

    pub(super) fn finish(&mut self, w: WorkerId, task: u64, nbytes: u64, value: Option<Payload>) {
        self.worker_msg(w, WorkerMsg::TaskFinished { task, nbytes, value, duration_us: 500 });
    }

    /// Finishes the task of `key` on the worker the scheduler sent it to.
    pub(super) fn finish_key(&mut self, key: &str, nbytes: u64) -> WorkerId {
        let (id, t) = self.s.task_by_key(key).expect("known key");
        assert_eq!(t.state, TaskState::Processing, "{key} is not processing");
        let w = t.processing_on.expect("processing");
        self.finish(w, id.to_wire(), nbytes, None);
        w
    }

    pub(super) fn fail(&mut self, w: WorkerId, task: u64, message: &str) {
        self.worker_msg(
            w,
            WorkerMsg::TaskFailed { task, failure: TaskFailure::new(FailureKind::Error, message) },
        );
    }

    pub(super) fn lose_worker(&mut self, w: WorkerId, exit_code: Option<i32>) {
        self.s.on_worker_lost(w, exit_code, &mut self.comm);
        self.s.check_invariants();
    }

    pub(super) fn tick(&mut self) -> Vec<WorkerId> {
        let dead = self.s.on_tick(&mut self.comm);
        self.s.check_invariants();
        dead
    }

    pub(super) fn state(&self, key: &str) -> TaskState {
        self.s.task_by_key(key).expect("known key").1.state
    }

    pub(super) fn wire(&self, key: &str) -> u64 {
        self.s.task_by_key(key).expect("known key").0.to_wire()
    }

    pub(super) fn processing_on(&self, key: &str) -> Option<WorkerId> {
        self.s.task_by_key(key).expect("known key").1.processing_on
    }

    pub(super) fn count_in(&self, state: TaskState) -> usize {
        self.s.tasks.values().filter(|t| t.state == state).count()
    }
}

// ---------------------------------------------------------------------------
// 1. A single task
// ---------------------------------------------------------------------------

#[test]
fn single_task_computes_reports_and_is_forgotten_on_release() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);

    let msgs = h.comm.take_workers();
    let cs = computes(&msgs);
    assert_eq!(cs.len(), 1);
    let (to, ct) = &cs[0];
    assert_eq!(*to, w);
    assert_eq!(ct.spec.key.as_str(), "a");
    assert!(ct.deps.is_empty());
    assert_eq!(ct.task, h.wire("a"));
    assert_eq!(h.state("a"), TaskState::Processing);

    h.finish(w, ct.task, 3, Some(payload(b"abc")));
    let cm = h.comm.take_clients();
    assert_eq!(cm.len(), 1);
    match &cm[0] {
        (to, ToClient::KeyInMemory { key, nbytes, workers, value }) => {
            assert_eq!(*to, c);
            assert_eq!(key.as_str(), "a");
            assert_eq!(*nbytes, 3);
            assert_eq!(workers, &vec![w.to_wire()]);
            assert_eq!(value.as_ref(), Some(&payload(b"abc")));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(h.state("a"), TaskState::Memory);
    assert_eq!(h.s.workers[w].nbytes, 3);
    assert!(h.comm.take_workers().is_empty());

    h.release(c, &["a"]);
    assert_eq!(frees(&h.comm.take_workers()), vec![(w, "a".to_string())]);
    assert_eq!(h.s.task_count(), 0);
    assert_eq!(h.s.workers[w].nbytes, 0);
    assert!(h.s.workers[w].has_what.is_empty());
}

#[test]
fn finished_message_for_unknown_or_foreign_task_is_ignored() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    let cs = computes(&h.comm.take_workers());
    let (on, ct) = cs[0].clone();
    let other = if on == w1 { w2 } else { w1 };
    // Another worker claims the result: ignored.
    h.finish(other, ct.task, 1, None);
    assert_eq!(h.state("a"), TaskState::Processing);
    assert!(h.comm.take_clients().is_empty());
    // A task id that never existed: ignored.
    h.finish(on, 0xdead_beef, 1, None);
    assert_eq!(h.state("a"), TaskState::Processing);
    h.finish(on, ct.task, 1, None);
    assert_eq!(h.state("a"), TaskState::Memory);
    // A duplicate report changes nothing.
    h.finish(on, ct.task, 1, None);
    assert_eq!(h.s.task_by_key("a").unwrap().1.who_has, vec![on]);
    assert_eq!(in_memory(&h.comm.take_clients()).len(), 1);
}

// ---------------------------------------------------------------------------
// 2. Dependencies
// ---------------------------------------------------------------------------

#[test]
fn chain_runs_in_order_and_frees_intermediate_data() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let _w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("b", "f", &["a"]), spec("a", "f", &[])], &["a", "b"]);
    let msgs = h.comm.take_workers();
    let cs = computes(&msgs);
    assert_eq!(cs.len(), 1, "only the root is sent: {msgs:?}");
    assert_eq!(cs[0].1.spec.key.as_str(), "a");
    assert_eq!(h.state("b"), TaskState::Waiting);

    let wa = cs[0].0;
    h.finish(wa, cs[0].1.task, 100, None);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "a".to_string())]);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    let (wb, ctb) = cs[0].clone();
    assert_eq!(ctb.spec.key.as_str(), "b");
    assert_eq!(ctb.deps.len(), 1);
    assert_eq!(ctb.deps[0].key.as_str(), "a");
    assert_eq!(ctb.deps[0].workers, vec![wa.to_wire()]);
    assert_eq!(wb, wa, "placed where its input is");

    // The client drops `a`, but `b` still needs it.
    h.release(c, &["a"]);
    assert!(frees(&h.comm.take_workers()).is_empty());
    assert_eq!(h.state("a"), TaskState::Memory);

    h.finish(wb, ctb.task, 5, None);
    assert_eq!(frees(&h.comm.take_workers()), vec![(wa, "a".to_string())]);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "b".to_string())]);
    assert_eq!(h.state("b"), TaskState::Memory);
    assert_ne!(h.s.task_by_key("a").map(|t| t.1.state), Some(TaskState::Memory));

    h.release(c, &["b"]);
    assert_eq!(frees(&h.comm.take_workers()), vec![(wb, "b".to_string())]);
    assert_eq!(h.s.task_count(), 0);
    let _ = w1;
}

#[test]
fn dependency_wanted_by_nobody_is_freed_when_dependent_is_in_memory() {
    let mut h = H::new();
    let w = h.worker("w1", 2, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"]), spec("c", "f", &["b"])], &["c"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "a".into())]);
    h.finish_key("a", 1);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "b".into())]);
    assert!(h.comm.take_clients().is_empty(), "nobody wants a");
    h.finish_key("b", 1);
    let msgs = h.comm.take_workers();
    assert_eq!(frees(&msgs), vec![(w, "a".to_string())]);
    assert_eq!(compute_keys(&msgs), vec![(w, "c".into())]);
    h.finish_key("c", 1);
    assert_eq!(frees(&h.comm.take_workers()), vec![(w, "b".to_string())]);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "c".into())]);
    h.release(c, &["c"]);
    assert_eq!(h.s.task_count(), 0);
}

#[test]
fn want_of_key_already_in_memory_answers_at_once() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c1 = h.client("c1");
    let c2 = h.client("c2");
    h.submit(c1, vec![spec("a", "f", &[])], &["a"]);
    h.finish_key("a", 7);
    h.comm.take_clients();
    h.client_msg(c2, ClientMsg::Want { keys: keys(&["a"]) });
    let cm = h.comm.take_clients();
    assert_eq!(in_memory(&cm), vec![(c2, "a".into())]);
    match &cm[0].1 {
        ToClient::KeyInMemory { nbytes, workers, .. } => {
            assert_eq!(*nbytes, 7);
            assert_eq!(workers, &vec![w.to_wire()]);
        }
        other => panic!("{other:?}"),
    }
    // Unknown keys are refused.
    h.client_msg(c2, ClientMsg::Want { keys: keys(&["nope"]) });
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].2.kind, FailureKind::MissingDependency);
}

#[test]
fn unknown_dependency_errs_the_task() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("b", "f", &["ghost"])], &["b"]);
    assert!(computes(&h.comm.take_workers()).is_empty());
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].1, "b");
    assert_eq!(e[0].2.kind, FailureKind::MissingDependency);
}

#[test]
fn wanting_a_freed_intermediate_recomputes_it() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    h.finish_key("a", 1);
    h.finish_key("b", 1);
    assert_eq!(frees(&h.comm.take_workers()), vec![(w, "a".to_string())]);
    assert_eq!(h.state("a"), TaskState::Released);
    h.comm.take_clients();
    h.client_msg(c, ClientMsg::Want { keys: keys(&["a"]) });
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "a".into())]);
    h.finish_key("a", 1);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "a".into())]);
    assert!(frees(&h.comm.take_workers()).is_empty(), "a is wanted now");
}

#[test]
fn info_reports_key_states() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    h.comm.take_clients();
    let req = Request::Info { keys: keys(&["a", "b", "nope"]) };
    h.client_msg(c, ClientMsg::Request { id: 42, req });
    let cm = h.comm.take_clients();
    match &cm[..] {
        [(to, ToClient::Reply { id: 42, reply: Ok(Reply::Info(info)) })] => {
            assert_eq!(*to, c);
            assert_eq!(info.tasks, 2);
            assert_eq!(info.clients, 1);
            assert_eq!(info.workers.len(), 1);
            assert_eq!(info.workers[0].id, w.to_wire());
            assert_eq!(
                info.key_states,
                vec![Some("processing".to_string()), Some("waiting".to_string()), None]
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn joining_worker_is_announced_to_workers_and_clients() {
    let mut h = H::new();
    let w1 = h.worker("w1", 4, &["f"]);
    let c = h.client("c");
    h.comm.take_workers();
    let w2 = h.worker("w2", 2, &["f"]);
    let msgs = h.comm.take_workers();
    let added: Vec<(WorkerId, u64, u32)> = msgs
        .iter()
        .filter_map(|(to, m)| match m {
            ToWorker::WorkerAdded(info) => Some((*to, info.id, info.nthreads)),
            _ => None,
        })
        .collect();
    assert_eq!(added, vec![(w1, w2.to_wire(), 2)]);
    let cm = h.comm.take_clients();
    assert!(matches!(
        &cm[..],
        [(to, ToClient::WorkerAdded(info))] if *to == c && info.id == w2.to_wire() && info.name == "w2"
    ));
    let infos = h.s.worker_infos();
    assert_eq!(infos.len(), 2);
    assert!(infos.iter().any(|i| i.name == "w1" && i.nthreads == 4 && i.data_addr == "mem://w1"));
}

// ---------------------------------------------------------------------------
// 3. Pure keys are computed once
// ---------------------------------------------------------------------------

#[test]
fn same_key_submitted_twice_is_one_task() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c1 = h.client("c1");
    let c2 = h.client("c2");
    let k = Key::pure("f", "inc", [b"\x01".as_slice()]);
    let mk = || TaskSpec {
        key: k.clone(),
        func: Arc::from("f"),
        args: vec![Arg::Value(payload(b"\x01"))],
        options: TaskOptions::default(),
    };
    let wanted = vec![k.clone()];
    h.client_msg(c1, ClientMsg::UpdateGraph { tasks: vec![mk()], wanted: wanted.clone() });
    h.client_msg(c1, ClientMsg::UpdateGraph { tasks: vec![mk()], wanted: wanted.clone() });
    h.client_msg(c2, ClientMsg::UpdateGraph { tasks: vec![mk(), mk()], wanted });
    assert_eq!(h.s.task_count(), 1);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    h.finish(w, cs[0].1.task, 1, None);
    let mut got = in_memory(&h.comm.take_clients());
    got.sort();
    let mut expected = vec![(c1, k.to_string()), (c2, k.to_string())];
    expected.sort();
    assert_eq!(got, expected, "each client told once");

    h.release(c1, &[k.as_str()]);
    assert!(frees(&h.comm.take_workers()).is_empty(), "c2 still wants it");
    h.release(c2, &[k.as_str()]);
    assert_eq!(frees(&h.comm.take_workers()), vec![(w, k.to_string())]);
    assert_eq!(h.s.task_count(), 0);
}

// ---------------------------------------------------------------------------
// 4. Data locality
// ---------------------------------------------------------------------------

#[test]
fn dependent_runs_where_most_input_bytes_are_even_if_busier() {
    let mut h = H::new();
    let b = h.worker("b", 1, &["f"]);
    let c = h.client("c");
    h.submit(
        c,
        vec![spec("big", "f", &[]), spec("busy1", "f", &[]), spec("busy2", "f", &[])],
        &["big", "busy1", "busy2"],
    );
    assert_eq!(computes(&h.comm.take_workers()).len(), 3);
    h.finish_key("big", 1 << 20);
    let a = h.worker("a", 1, &["f"]);
    assert!(steals(&h.comm.take_workers()).is_empty());
    h.submit(c, vec![spec("small", "f", &[])], &["small"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(a, "small".into())]);
    h.finish_key("small", 10);
    h.comm.take_workers();
    assert!(h.s.workers[b].processing.len() > h.s.workers[a].processing.len());

    h.submit(c, vec![spec("dep", "f", &["big", "small"])], &["dep"]);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].0, b, "placed with the 1 MiB input, not on the idle worker");
    let locs: Vec<(String, Vec<u64>)> =
        cs[0].1.deps.iter().map(|d| (d.key.to_string(), d.workers.clone())).collect();
    assert_eq!(
        locs,
        vec![("big".to_string(), vec![b.to_wire()]), ("small".to_string(), vec![a.to_wire()])]
    );

    // A dependent of the small result only goes with it.
    h.submit(c, vec![spec("dep2", "f", &["small"])], &["dep2"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(a, "dep2".into())]);
}

#[test]
fn locality_ignores_holders_that_cannot_run_the_function() {
    let mut h = H::new();
    let a = h.worker("a", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("x", "f", &[])], &["x"]);
    h.finish_key("x", 1 << 20);
    let b = h.worker("b", 1, &["f", "g"]);
    h.comm.take_workers();
    h.submit(c, vec![spec("y", "g", &["x"])], &["y"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(b, "y".into())]);
    let _ = a;
}

// ---------------------------------------------------------------------------
// 5. Root-task queueing and priorities
// ---------------------------------------------------------------------------

#[test]
fn root_tasks_are_queued_beyond_capacity_and_released_one_by_one() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let cap = h.s.capacity(w);
    assert!(cap >= 2);
    let c = h.client("c");
    let n = cap + 4;
    let names: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.submit(c, names.iter().map(|k| spec(k, "f", &[])).collect(), &names);
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs.len(), cap, "at most capacity computes");
    assert_eq!(
        cs.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
        names[..cap],
        "in submission order"
    );
    assert_eq!(h.count_in(TaskState::Queued), n - cap);

    // Finishing one lets exactly one more in.
    h.finish_key(names[0], 1);
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs, vec![(w, names[cap].to_string())]);
    assert_eq!(h.s.workers[w].processing.len(), cap);
    assert_eq!(h.count_in(TaskState::Queued), n - cap - 1);

    // A failure frees a slot too.
    let id = h.wire(names[1]);
    h.fail(w, id, "boom");
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs, vec![(w, names[cap + 1].to_string())]);
}

#[test]
fn queued_root_tasks_start_by_priority_then_submission_order() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let cap = h.s.capacity(w);
    let c = h.client("c");
    let fill: Vec<String> = (0..cap).map(|i| format!("fill{i}")).collect();
    let fill: Vec<&str> = fill.iter().map(String::as_str).collect();
    h.submit(c, fill.iter().map(|k| spec(k, "f", &[])).collect(), &fill);
    assert_eq!(computes(&h.comm.take_workers()).len(), cap);

    h.submit(
        c,
        vec![
            spec_opts("lo", "f", &[], 0, 0),
            spec_opts("hi", "f", &[], 10, 0),
            spec_opts("mid1", "f", &[], 5, 0),
            spec_opts("mid2", "f", &[], 5, 0),
            spec_opts("neg", "f", &[], -3, 0),
        ],
        &["lo", "neg", "mid2", "hi", "mid1"],
    );
    assert!(computes(&h.comm.take_workers()).is_empty());
    let mut started = Vec::new();
    for k in &fill {
        h.finish_key(k, 1);
        started.extend(compute_keys(&h.comm.take_workers()).into_iter().map(|x| x.1));
    }
    assert_eq!(started, ["hi", "mid1", "mid2", "lo", "neg"]);
}

#[test]
fn queued_root_task_goes_to_a_worker_that_joins() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let cap = h.s.capacity(w1);
    let c = h.client("c");
    let names: Vec<String> = (0..cap + 1).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.submit(c, names.iter().map(|k| spec(k, "f", &[])).collect(), &names);
    assert_eq!(computes(&h.comm.take_workers()).len(), cap);
    let w2 = h.worker("w2", 1, &["f"]);
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs, vec![(w2, names[cap].to_string())]);
}

// ---------------------------------------------------------------------------
// 6. Work stealing
// ---------------------------------------------------------------------------

#[test]
fn idle_worker_steals_from_busy_one() {
    let mut h = H::new();
    let a = h.worker("a", 1, &["f"]);
    let cap = h.s.capacity(a);
    assert!(cap >= 4);
    let c = h.client("c");
    let names: Vec<String> = (0..cap).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.submit(c, names.iter().map(|k| spec(k, "f", &[])).collect(), &names);
    assert_eq!(computes(&h.comm.take_workers()).len(), cap);
    assert_eq!(h.count_in(TaskState::Queued), 0);

    let b = h.worker("b", 1, &["f"]);
    let msgs = h.comm.take_workers();
    assert!(computes(&msgs).is_empty());
    let st = steals(&msgs);
    assert_eq!(st.len(), (cap - 1) / 2, "half the excess");
    assert!(st.iter().all(|(v, _)| *v == a));
    let (yes, no) = (st[0].1, st[1].1);
    assert_ne!(yes, no);

    // Stolen: moves to the thief.
    h.worker_msg(a, WorkerMsg::StealResponse { task: yes, stolen: true });
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].0, b);
    assert_eq!(cs[0].1.task, yes);
    let t = h.s.task(TaskId::from_wire(yes)).unwrap();
    assert_eq!(t.processing_on, Some(b));
    assert_eq!(t.stealing_to, None);

    // Refused: stays.
    h.worker_msg(a, WorkerMsg::StealResponse { task: no, stolen: false });
    assert!(h.comm.take_workers().is_empty());
    let t = h.s.task(TaskId::from_wire(no)).unwrap();
    assert_eq!(t.processing_on, Some(a));
    assert_eq!(t.stealing_to, None);
    assert_eq!(h.s.workers[a].processing.len(), cap - 1);

    // A late or duplicate answer moves nothing.
    h.worker_msg(a, WorkerMsg::StealResponse { task: yes, stolen: true });
    assert!(h.comm.take_workers().is_empty());
    assert_eq!(h.s.task(TaskId::from_wire(yes)).unwrap().processing_on, Some(b));

    // The thief finishes and is idle again: it asks for more.
    h.finish(b, yes, 1, None);
    let st = steals(&h.comm.take_workers());
    assert!(!st.is_empty(), "idle thief steals again");
    assert!(st.iter().all(|(v, _)| *v == a));
    for (_, t) in &st {
        assert_eq!(h.s.task(TaskId::from_wire(*t)).unwrap().stealing_to, Some(b));
    }
}

#[test]
fn no_steal_when_victim_has_little_excess() {
    let mut h = H::new();
    let a = h.worker("a", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("r0", "f", &[]), spec("r1", "f", &[])], &["r0", "r1"]);
    assert_eq!(computes(&h.comm.take_workers()).len(), 2);
    h.worker("b", 1, &["f"]);
    assert!(steals(&h.comm.take_workers()).is_empty());
    let _ = a;
}

#[test]
fn steal_accepted_after_thief_died_reschedules() {
    let mut h = H::new();
    let a = h.worker("a", 1, &["f"]);
    let cap = h.s.capacity(a);
    let c = h.client("c");
    let names: Vec<String> = (0..cap).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.submit(c, names.iter().map(|k| spec(k, "f", &[])).collect(), &names);
    h.comm.take_workers();
    let b = h.worker("b", 1, &["f"]);
    let st = steals(&h.comm.take_workers());
    assert!(!st.is_empty());
    h.lose_worker(b, None);
    h.comm.take_workers();
    let task = st[0].1;
    assert_eq!(h.s.task(TaskId::from_wire(task)).unwrap().stealing_to, None);
    h.worker_msg(a, WorkerMsg::StealResponse { task, stolen: true });
    // Back on `a`, the only worker left (the root queue was empty).
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].0, a);
    assert_eq!(cs[0].1.task, task);
}

// ---------------------------------------------------------------------------
// 7. Failures and retries
// ---------------------------------------------------------------------------

#[test]
fn failure_errs_task_and_dependents_with_origin() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c1 = h.client("c1");
    let c2 = h.client("c2");
    h.submit(
        c1,
        vec![spec("a", "f", &[]), spec("b", "f", &["a"]), spec("c", "f", &["b"])],
        &["a", "c"],
    );
    h.client_msg(c2, ClientMsg::Want { keys: keys(&["b"]) });
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    h.fail(w, cs[0].1.task, "boom");
    assert!(computes(&h.comm.take_workers()).is_empty(), "no retry");
    let mut e = erred(&h.comm.take_clients());
    e.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        e.iter().map(|x| (x.0, x.1.as_str())).collect::<Vec<_>>(),
        vec![(c1, "a"), (c2, "b"), (c1, "c")]
    );
    for (_, key, f) in &e {
        assert_eq!(f.kind, FailureKind::Error);
        assert_eq!(f.message, "boom");
        if key != "a" {
            assert_eq!(f.origin.as_deref(), Some("a"), "{key} blames a");
        }
    }
    for k in ["a", "b", "c"] {
        assert_eq!(h.state(k), TaskState::Erred);
    }
    // Wanting an erred key again answers with the failure.
    let c3 = h.client("c3");
    h.client_msg(c3, ClientMsg::Want { keys: keys(&["c"]) });
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].2.origin.as_deref(), Some("a"));
    // Releasing everything forgets everything.
    h.release(c1, &["a", "c"]);
    h.release(c2, &["b"]);
    h.release(c3, &["c"]);
    assert_eq!(h.s.task_count(), 0);
}

#[test]
fn retries_resend_compute_before_erring() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec_opts("a", "f", &[], 0, 2)], &["a"]);
    let mut sent = 0;
    for attempt in 0..3 {
        let cs = computes(&h.comm.take_workers());
        assert_eq!(cs.len(), 1, "attempt {attempt}");
        assert_eq!(cs[0].1.spec.key.as_str(), "a");
        sent += 1;
        if attempt < 2 {
            h.fail(w, cs[0].1.task, "flaky");
            assert!(erred(&h.comm.take_clients()).is_empty());
        } else {
            h.fail(w, cs[0].1.task, "flaky");
        }
    }
    assert_eq!(sent, 3);
    assert!(computes(&h.comm.take_workers()).is_empty());
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].2.message, "flaky");
    assert_eq!(h.state("a"), TaskState::Erred);
}

#[test]
fn retry_then_success() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec_opts("a", "f", &[], 0, 1)], &["a"]);
    let cs = computes(&h.comm.take_workers());
    h.fail(w, cs[0].1.task, "flaky");
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    h.finish(w, cs[0].1.task, 1, None);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "a".into())]);
}

#[test]
fn failure_of_running_dependency_frees_processing_dependent_elsewhere() {
    // A dependent can be processing while its dependency is recomputed
    // (its input was lost after it was sent); when the dependency then
    // fails, the dependent is taken back from its worker.
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    h.finish_key("a", 1);
    let w2 = h.worker("w2", 1, &["g"]);
    h.comm.take_workers();
    h.submit(c, vec![spec("b", "g", &["a"])], &["b"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w2, "b".into())]);
    // w2 cannot fetch `a` from w1.
    let b = h.wire("b");
    h.worker_msg(w2, WorkerMsg::MissingData { task: b, key: Key::from("a"), worker: w1.to_wire() });
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs, vec![(w1, "a".into())]);
    assert_eq!(h.state("b"), TaskState::Waiting);
    let a = h.wire("a");
    h.fail(w1, a, "boom");
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 2);
    assert_eq!(h.state("b"), TaskState::Erred);
}

// ---------------------------------------------------------------------------
// 8. Worker loss
// ---------------------------------------------------------------------------

#[test]
fn processing_tasks_of_lost_worker_move_to_the_other() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w1, "a".into())]);
    let w2 = h.worker("w2", 1, &["f"]);
    h.comm.take_workers();
    h.comm.take_clients();
    h.lose_worker(w1, Some(1));
    let msgs = h.comm.take_workers();
    assert_eq!(compute_keys(&msgs), vec![(w2, "a".into())]);
    assert!(msgs.iter().any(
        |(w, m)| *w == w2 && matches!(m, ToWorker::WorkerRemoved { id } if *id == w1.to_wire())
    ));
    let cm = h.comm.take_clients();
    assert!(cm
        .iter()
        .any(|(to, m)| *to == c
            && matches!(m, ToClient::WorkerRemoved { id } if *id == w1.to_wire())));
    assert_eq!(h.s.task_by_key("a").unwrap().1.suspicious, 1);
    h.finish_key("a", 1);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "a".into())]);
}

#[test]
fn lost_result_needed_by_waiting_dependent_is_recomputed() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    // `a` and `c` are wanted only through `b`.
    h.submit(
        c,
        vec![spec("a", "f", &[]), spec("c", "f", &[]), spec("b", "f", &["a", "c"])],
        &["b"],
    );
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w1, "a".into()), (w1, "c".into())]);
    h.finish_key("a", 1);
    assert_eq!(h.state("a"), TaskState::Memory);
    assert_eq!(h.state("c"), TaskState::Processing);
    assert_eq!(h.state("b"), TaskState::Waiting);
    let w2 = h.worker("w2", 1, &["f"]);
    h.comm.take_workers();

    h.lose_worker(w1, None);
    let mut cs = compute_keys(&h.comm.take_workers());
    cs.sort();
    assert_eq!(cs, vec![(w2, "a".into()), (w2, "c".into())]);
    assert_eq!(h.state("b"), TaskState::Waiting);
    h.finish_key("a", 1);
    h.finish_key("c", 1);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].1.spec.key.as_str(), "b");
    assert!(cs[0].1.deps.iter().all(|d| d.workers == vec![w2.to_wire()]));
}

#[test]
fn lost_result_nobody_needs_is_forgotten_quietly() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    h.finish_key("a", 1);
    let wb = h.finish_key("b", 1);
    h.comm.take_workers();
    assert_eq!(h.state("b"), TaskState::Memory);
    let other = if wb == w1 { w2 } else { w1 };
    h.lose_worker(other, None);
    assert!(computes(&h.comm.take_workers()).is_empty());
    h.lose_worker(wb, None);
    // `b` is wanted: it and then `a` are recomputed once a worker joins.
    assert_eq!(h.state("b"), TaskState::Waiting);
    assert_eq!(h.state("a"), TaskState::NoWorker);
    let w3 = h.worker("w3", 1, &["f"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w3, "a".into())]);
}

#[test]
fn task_killing_three_workers_errs_with_killed_worker() {
    let mut h = H::new();
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    assert_eq!(h.state("a"), TaskState::NoWorker);
    let codes = [Some(9), None, Some(137)];
    for (i, code) in codes.iter().enumerate() {
        let name = format!("w{i}");
        let w = h.worker(&name, 1, &["f"]);
        assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "a".into())]);
        h.lose_worker(w, *code);
        if i < 2 {
            assert!(erred(&h.comm.take_clients()).is_empty());
            assert_eq!(h.state("a"), TaskState::NoWorker);
        }
    }
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].1, "b");
    assert_eq!(
        e[0].2.kind,
        FailureKind::KilledWorker { worker: "w2".to_string(), exit_code: Some(137) }
    );
    assert_eq!(e[0].2.origin.as_deref(), Some("a"));
    assert_eq!(h.state("a"), TaskState::Erred);
    // A new worker gets nothing.
    h.worker("w3", 1, &["f"]);
    assert!(computes(&h.comm.take_workers()).is_empty());
}

#[test]
fn allowed_failures_is_configurable() {
    let mut h = H::with_config(tuned(|c| c.allowed_failures = 1));
    let c = h.client("c");
    let w = h.worker("w", 1, &["f"]);
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    h.lose_worker(w, Some(3));
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert!(matches!(e[0].2.kind, FailureKind::KilledWorker { exit_code: Some(3), .. }));
}

#[test]
fn duplicate_worker_name_is_refused() {
    let mut h = H::new();
    h.worker("w", 1, &["f"]);
    let hello = WorkerHello {
        name: "w".into(),
        data_addr: "x".into(),
        nthreads: 1,
        catalog: vec![],
        resources: vec![],
    };
    assert!(h.s.on_worker_connected(&hello, &mut h.comm).is_err());
    assert_eq!(h.s.workers().count(), 1);
    h.s.check_invariants();
}

// ---------------------------------------------------------------------------
// 9. No worker
// ---------------------------------------------------------------------------

#[test]
fn function_no_worker_has_errs_no_worker() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "g", &[]), spec("b", "f", &["a"])], &["b"]);
    assert!(computes(&h.comm.take_workers()).is_empty());
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].1, "b");
    assert_eq!(e[0].2.kind, FailureKind::NoWorker);
    assert_eq!(e[0].2.origin.as_deref(), Some("a"));
    assert!(e[0].2.message.contains('g'));
}

#[test]
fn tasks_wait_for_a_first_worker() {
    let mut h = H::new();
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    assert_eq!(h.state("a"), TaskState::NoWorker);
    assert_eq!(h.state("b"), TaskState::Waiting);
    assert!(h.comm.take_workers().is_empty());
    assert!(h.comm.take_clients().is_empty());
    let w = h.worker("w1", 1, &["f"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "a".into())]);
    h.finish_key("a", 1);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "b".into())]);
}

#[test]
fn waiting_for_a_worker_that_cannot_run_it_errs() {
    let mut h = H::new();
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    h.worker("w1", 1, &["g"]);
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].2.kind, FailureKind::NoWorker);
}

#[test]
fn released_no_worker_task_is_forgotten() {
    let mut h = H::new();
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    h.release(c, &["a"]);
    assert_eq!(h.s.task_count(), 0);
    assert!(h.s.no_worker.is_empty());
    h.worker("w1", 1, &["f"]);
    assert!(computes(&h.comm.take_workers()).is_empty());
}

// ---------------------------------------------------------------------------
// 10. Cancel
// ---------------------------------------------------------------------------

#[test]
fn cancel_tells_every_client_and_frees_workers() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c1 = h.client("c1");
    let c2 = h.client("c2");
    h.submit(
        c1,
        vec![spec("a", "f", &[]), spec("b", "f", &["a"]), spec("z", "f", &[])],
        &["a", "b", "z"],
    );
    h.submit(c2, vec![spec("b", "f", &["a"])], &["b"]);
    h.comm.take_workers();
    h.client_msg(c2, ClientMsg::Cancel { keys: keys(&["a"]) });
    let mut got = cancelled(&h.comm.take_clients());
    got.sort();
    let mut expected = vec![(c1, "a".to_string()), (c1, "b".to_string()), (c2, "b".to_string())];
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(frees(&h.comm.take_workers()), vec![(w, "a".to_string())]);
    assert!(h.s.task_by_key("a").is_none());
    assert!(h.s.task_by_key("b").is_none());
    assert_eq!(h.state("z"), TaskState::Processing, "unrelated task untouched");
    assert!(h.s.clients[c1].wants.len() == 1 && h.s.clients[c2].wants.is_empty());
}

#[test]
fn cancel_of_dependent_keeps_shared_dependency() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["a", "b"]);
    h.finish_key("a", 1);
    h.comm.take_workers();
    h.client_msg(c, ClientMsg::Cancel { keys: keys(&["b"]) });
    let msgs = h.comm.take_workers();
    assert_eq!(frees(&msgs), vec![(w, "b".to_string())]);
    assert_eq!(cancelled(&h.comm.take_clients()), vec![(c, "b".into())]);
    assert_eq!(h.state("a"), TaskState::Memory);
    assert!(h.s.task_by_key("b").is_none());
}

// ---------------------------------------------------------------------------
// 11. Client loss
// ---------------------------------------------------------------------------

#[test]
fn lost_client_releases_its_keys() {
    let mut h = H::new();
    let w = h.worker("w1", 2, &["f"]);
    let c1 = h.client("c1");
    let c2 = h.client("c2");
    h.submit(c1, vec![spec("a", "f", &[]), spec("p", "f", &[])], &["a", "p"]);
    h.submit(c2, vec![spec("s", "f", &[])], &["s", "a"]);
    h.finish_key("a", 1);
    h.comm.take_workers();
    h.s.on_client_lost(c1, &mut h.comm);
    h.s.check_invariants();
    assert_eq!(frees(&h.comm.take_workers()), vec![(w, "p".to_string())]);
    assert!(h.s.task_by_key("p").is_none());
    assert_eq!(h.state("a"), TaskState::Memory, "c2 still wants a");
    assert_eq!(h.s.client_count(), 1);
    h.client_msg(c2, ClientMsg::Close);
    let mut f = frees(&h.comm.take_workers());
    f.sort();
    assert_eq!(f, vec![(w, "a".to_string()), (w, "s".to_string())]);
    assert_eq!(h.s.task_count(), 0);
    assert_eq!(h.s.client_count(), 0);
    // Messages from a gone client are ignored.
    h.submit(c2, vec![spec("x", "f", &[])], &["x"]);
    assert_eq!(h.s.task_count(), 0);
}

// ---------------------------------------------------------------------------
// 12. Heartbeats
// ---------------------------------------------------------------------------

#[test]
fn silent_worker_is_removed_after_heartbeat_ticks() {
    let mut h = H::with_config(tuned(|c| c.heartbeat_ticks = 3));
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    let on = h.processing_on("a").unwrap();
    let other = if on == w1 { w2 } else { w1 };
    h.comm.take_workers();
    for _ in 0..3 {
        assert!(h.tick().is_empty());
        h.worker_msg(other, WorkerMsg::Heartbeat);
    }
    // Any message counts as a heartbeat.
    h.worker_msg(on, WorkerMsg::StealResponse { task: 12345, stolen: false });
    for _ in 0..3 {
        assert!(h.tick().is_empty());
        h.worker_msg(other, WorkerMsg::Heartbeat);
    }
    assert_eq!(h.tick(), vec![on]);
    assert_eq!(h.s.workers().count(), 1);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(other, "a".into())]);
    // The survivor keeps its heartbeats going and stays.
    for _ in 0..10 {
        h.worker_msg(other, WorkerMsg::Heartbeat);
        assert!(h.tick().is_empty());
    }
}

// ---------------------------------------------------------------------------
// 13. Missing data
// ---------------------------------------------------------------------------

#[test]
fn missing_only_copy_is_recomputed_and_task_rescheduled() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f", "g"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    let wa = h.finish_key("a", 1);
    assert_eq!(wa, w1);
    h.comm.take_workers();
    h.submit(c, vec![spec("b", "g", &["a"])], &["b"]);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].0, w2);
    h.worker_msg(
        w2,
        WorkerMsg::MissingData { task: cs[0].1.task, key: Key::from("a"), worker: w1.to_wire() },
    );
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].1, "a", "recomputed");
    assert_eq!(h.state("b"), TaskState::Waiting);
    assert!(!h.s.workers[w1].has_what.contains(&h.s.task_by_key("a").unwrap().0));
    h.finish_key("a", 1);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].0, w2);
    assert_eq!(cs[0].1.spec.key.as_str(), "b");
}

#[test]
fn missing_copy_with_another_holder_only_reschedules() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    h.client_msg(
        c,
        ClientMsg::UpdateData {
            items: vec![ScatteredKey {
                key: Key::from("x"),
                nbytes: 8,
                workers: vec![w1.to_wire(), w2.to_wire()],
            }],
        },
    );
    h.submit(c, vec![spec("b", "f", &["x"])], &["b"]);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    let (wb, ct) = cs[0].clone();
    let other = if wb == w1 { w2 } else { w1 };
    h.worker_msg(
        wb,
        WorkerMsg::MissingData { task: ct.task, key: Key::from("x"), worker: other.to_wire() },
    );
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1, "only b again");
    assert_eq!(cs[0].1.spec.key.as_str(), "b");
    assert_eq!(cs[0].1.deps[0].workers, vec![wb.to_wire()]);
    assert_eq!(h.state("x"), TaskState::Memory);
    assert_eq!(h.s.task_by_key("x").unwrap().1.who_has, vec![wb]);
}

// ---------------------------------------------------------------------------
// 14. Scatter
// ---------------------------------------------------------------------------

fn scatter(h: &mut H, c: ClientId, key: &str, nbytes: u64, on: &[WorkerId]) {
    h.client_msg(
        c,
        ClientMsg::UpdateData {
            items: vec![ScatteredKey {
                key: Key::from(key),
                nbytes,
                workers: on.iter().map(|w| w.to_wire()).collect(),
            }],
        },
    );
}

#[test]
fn scattered_data_is_in_memory_and_usable() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    scatter(&mut h, c, "x", 1000, &[w2]);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "x".into())]);
    assert_eq!(h.state("x"), TaskState::Memory);
    assert_eq!(h.s.workers[w2].nbytes, 1000);
    h.submit(c, vec![spec("y", "f", &["x"])], &["y"]);
    let cs = computes(&h.comm.take_workers());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].0, w2, "locality");
    assert_eq!(cs[0].1.deps[0].workers, vec![w2.to_wire()]);
    h.finish_key("y", 1);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "y".into())]);
    h.release(c, &["x", "y"]);
    assert_eq!(h.s.task_count(), 0);
    let _ = w1;
}

#[test]
fn losing_only_holder_of_scattered_data_errs_data_lost() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c1 = h.client("c1");
    let c2 = h.client("c2");
    scatter(&mut h, c1, "x", 8, &[w1]);
    assert_eq!(h.s.workers[w1].nbytes, 8);
    scatter(&mut h, c1, "both", 8, &[w1, w2]);
    h.client_msg(c2, ClientMsg::Want { keys: keys(&["x"]) });
    h.submit(c2, vec![spec("y", "f", &["x"])], &["y"]);
    h.finish_key("y", 1);
    h.comm.take_clients();
    h.comm.take_workers();
    h.lose_worker(w1, None);
    let e = erred(&h.comm.take_clients());
    assert!(e.iter().all(|x| x.2.kind == FailureKind::DataLost), "{e:?}");
    assert!(e.iter().all(|x| x.2.origin.is_none() == (x.1 == "x")), "{e:?}");
    let mut got: Vec<(ClientId, String)> = e.into_iter().map(|(c, k, _)| (c, k)).collect();
    got.sort();
    // y ran next to x on w1, so it is lost too and cannot be recomputed.
    let mut expected = vec![(c1, "x".to_string()), (c2, "x".to_string()), (c2, "y".to_string())];
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(h.state("x"), TaskState::Erred);
    assert_eq!(h.state("y"), TaskState::Erred);
    assert_eq!(h.state("both"), TaskState::Memory, "second copy survives");
    assert_eq!(h.s.task_by_key("both").unwrap().1.who_has, vec![w2]);
    assert!(computes(&h.comm.take_workers()).is_empty());
}

#[test]
fn dependent_of_lost_scattered_data_errs() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["g"]);
    let c = h.client("c");
    scatter(&mut h, c, "x", 8, &[w1]);
    h.release(c, &["x"]);
    assert_eq!(h.s.task_count(), 0);
    scatter(&mut h, c, "x", 8, &[w1]);
    // Runs on w2 only, so it is processing there while x lives on w1.
    h.submit(c, vec![spec("y", "g", &["x"])], &["y"]);
    h.release(c, &["x"]);
    assert_eq!(h.processing_on("y"), Some(w2));
    h.comm.take_clients();
    h.comm.take_workers();
    h.lose_worker(w1, None);
    // x cannot be recomputed: y fails at once and its worker drops it.
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].1, "y");
    assert_eq!(e[0].2.kind, FailureKind::DataLost);
    assert_eq!(e[0].2.origin.as_deref(), Some("x"));
    assert_eq!(frees(&h.comm.take_workers()), vec![(w2, "y".to_string())]);
    assert_eq!(h.state("y"), TaskState::Erred);
    h.release(c, &["y"]);
    assert_eq!(h.s.task_count(), 0);
}

#[test]
fn scatter_to_gone_workers_errs() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.lose_worker(w, None);
    scatter(&mut h, c, "x", 8, &[w]);
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].2.kind, FailureKind::DataLost);
}

// ---------------------------------------------------------------------------
// Regressions: each of these once panicked or hung the scheduler
// ---------------------------------------------------------------------------

#[test]
fn worker_loss_failing_one_task_and_releasing_another_does_not_panic() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f", "g"]);
    let c = h.client("c");
    h.submit(
        c,
        vec![spec("z", "f", &["x", "y"]), spec("x", "g", &[]), spec("y", "f", &[])],
        &["z"],
    );
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w1, "x".into()), (w1, "y".into())]);
    // The new worker cannot run g.
    let w2 = h.worker("w2", 1, &["f"]);
    // x can no longer run anywhere: it fails with NoWorker, z fails with
    // it, and y is needed by nobody and released (this once panicked: y was
    // still marked Processing on the dead worker).
    h.lose_worker(w1, None);
    assert_eq!(h.state("z"), TaskState::Erred);
    assert!(computes(&h.comm.take_workers()).iter().all(|(w, _)| *w == w2));
}

#[test]
fn worker_loss_recomputing_result_whose_input_erred_does_not_panic() {
    let mut h = H::new();
    let w = h.worker("w1", 2, &["f"]);
    let c = h.client("c");
    h.submit(
        c,
        vec![
            spec("a", "f", &[]),
            spec("b", "f", &["a"]),
            spec("d", "f", &["b"]),
            spec("e", "f", &["b"]),
            spec("z", "f", &["d", "e"]),
        ],
        &["z"],
    );
    h.finish_key("a", 1);
    h.finish_key("b", 1);
    assert_eq!(h.state("a"), TaskState::Released, "a was freed");
    assert_eq!(h.state("d"), TaskState::Processing);
    assert_eq!(h.state("e"), TaskState::Processing);
    // Another graph needs a again; this time a fails. b stays in memory.
    h.submit(c, vec![spec("a2", "f", &["a"])], &["a2"]);
    let id = h.wire("a");
    h.fail(w, id, "boom");
    assert_eq!(h.state("b"), TaskState::Memory);
    // The worker dies: b is lost and d, e must run again. Recomputing b
    // fails at once (a erred), which fails e (this once panicked: e was
    // still marked Processing on the dead worker).
    h.lose_worker(w, None);
    assert_eq!(h.state("z"), TaskState::Erred);
}

#[test]
fn dependency_of_task_failed_during_compute_is_not_started() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("t0", "f", &[])], &["t0"]);
    let id = h.wire("t0");
    h.fail(w, id, "boom");
    h.comm.take_workers();
    // t6 needs t1 and t4; t4 needs the erred t0, so t6 errs at once and
    // nothing needs t1 (check_invariants: "t1 active for nobody").
    h.submit(
        c,
        vec![spec("t6", "f", &["t1", "t4"]), spec("t1", "f", &[]), spec("t4", "f", &["t0"])],
        &["t6"],
    );
    assert_eq!(h.state("t6"), TaskState::Erred);
    assert!(computes(&h.comm.take_workers()).is_empty(), "t1 computed for nobody");
}

#[test]
fn lost_scattered_sibling_does_not_leave_dependency_running_for_nobody() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    scatter(&mut h, c, "x", 8, &[w1]);
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a", "x"])], &["b"]);
    h.finish_key("a", 1);
    h.finish_key("b", 1);
    h.release(c, &["x"]);
    assert_eq!(h.state("b"), TaskState::Memory);
    // w1 held everything: b is recomputed, which needs a (recomputable) and
    // x (lost for good).
    let w2 = h.worker("w2", 1, &["f"]);
    h.comm.take_workers();
    h.lose_worker(w1, None);
    assert_eq!(h.state("b"), TaskState::Erred);
    assert!(computes(&h.comm.take_workers()).is_empty(), "a computed for nobody");
    let _ = w2;
}

#[test]
fn every_wanted_key_of_a_graph_gets_its_real_failure() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    // Wanting b fails a (nobody runs g), which fails c before c's want is
    // recorded; c is then forgotten and the client is told c is unknown.
    h.submit(
        c,
        vec![spec("a", "g", &[]), spec("b", "f", &["a"]), spec("c", "f", &["a"])],
        &["b", "c"],
    );
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 2, "{e:?}");
    for (_, key, f) in &e {
        assert_eq!(f.kind, FailureKind::NoWorker, "{key}: {f:?}");
        assert_eq!(f.origin.as_deref(), Some("a"));
    }
    assert_eq!(h.s.clients[c].wants.len(), 2);
}

#[test]
fn task_with_two_unknown_dependencies_does_not_panic() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("b", "f", &["ghost1", "ghost2"])], &["b"]);
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].2.kind, FailureKind::MissingDependency);
}

#[test]
fn chained_unknown_dependencies_do_not_panic() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("b", "f", &["ghost1"]), spec("d", "f", &["b", "ghost2"])], &["d"]);
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
}

#[test]
fn unknown_dependency_error_names_the_missing_key() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("b", "f", &["ghost"])], &["b"]);
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert!(e[0].2.message.contains("ghost"), "message hides the cause: {:?}", e[0].2.message);
    assert_eq!(h.s.task_by_key("b").map(|t| t.1.state), Some(TaskState::Erred));
}

#[test]
fn unwanted_submitted_task_is_forgotten() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    // `extra` is sent along but nobody wants it and nothing depends on it;
    // check_invariants (called by submit) flags it as a leak.
    h.submit(c, vec![spec("a", "f", &[]), spec("extra", "f", &[])], &["a"]);
    assert!(h.s.task_by_key("extra").is_none());
}

/// Fills `w` (nthreads 1) to capacity with root tasks `p0..`, and queues one
/// more root task `q`.
fn saturate(h: &mut H, c: ClientId, w: WorkerId) -> Vec<String> {
    let cap = h.s.capacity(w);
    let names: Vec<String> = (0..cap).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    h.submit(c, refs.iter().map(|k| spec(k, "f", &[])).collect(), &refs);
    h.submit(c, vec![spec("q", "f", &[])], &["q"]);
    assert_eq!(computes(&h.comm.take_workers()).len(), cap);
    assert_eq!(h.state("q"), TaskState::Queued);
    names
}

#[test]
fn releasing_processing_tasks_refills_worker_from_queue() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    let names = saturate(&mut h, c, w);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    h.release(c, &refs);
    let msgs = h.comm.take_workers();
    assert_eq!(frees(&msgs).len(), names.len());
    // The worker is idle and `q` is wanted: it must be sent now, as no other
    // event will come.
    assert_eq!(compute_keys(&msgs), vec![(w, "q".into())]);
    assert_eq!(h.s.workers[w].processing.len(), 1);
}

#[test]
fn cancelling_processing_tasks_refills_worker_from_queue() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    let names = saturate(&mut h, c, w);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    h.client_msg(c, ClientMsg::Cancel { keys: keys(&refs) });
    h.comm.take_workers();
    assert_eq!(h.s.workers[w].processing.len(), 1);
    assert_eq!(h.state("q"), TaskState::Processing, "idle worker, queued task");
}

#[test]
fn new_root_task_is_not_queued_behind_stale_entries_when_worker_idle() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    let names = saturate(&mut h, c, w);
    // `q` leaves the queue (as a stale entry) and so do the running tasks.
    h.release(c, &["q"]);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    h.release(c, &refs);
    h.comm.take_workers();
    assert_eq!(h.s.task_count(), 0);
    // A fresh submission to an idle cluster must run.
    h.submit(c, vec![spec("r", "f", &[])], &["r"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "r".into())]);
}

#[test]
fn queued_task_reaches_idle_worker_with_its_function() {
    let mut h = H::new();
    let wf = h.worker("wf", 1, &["f"]);
    let wg = h.worker("wg", 1, &["g"]);
    let c = h.client("c");
    let names = saturate(&mut h, c, wf);
    // `g` only runs on wg, which is idle, but the queue is not empty: wg
    // must get it at once, not after wf drains its queue.
    h.submit(c, vec![spec("g1", "g", &[])], &["g1"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(wg, "g1".into())]);
    assert_eq!(h.state("g1"), TaskState::Processing, "idle wg never gets g1");
    for k in names.iter().map(String::as_str).chain(["q"]) {
        h.finish_key(k, 1);
    }
    assert!(h.s.workers[wf].processing.is_empty());
}

#[test]
fn killed_worker_failure_with_dependent_on_same_worker_does_not_panic() {
    let mut h = H::new();
    let c = h.client("c");
    h.submit(c, vec![spec("x", "f", &[])], &["x"]);
    // x kills two workers.
    for name in ["d1", "d2"] {
        let w = h.worker(name, 1, &["f"]);
        h.comm.take_workers();
        h.lose_worker(w, None);
    }
    assert_eq!(h.s.task_by_key("x").unwrap().1.suspicious, 2);
    let w2 = h.worker("w2", 1, &["f"]);
    h.finish_key("x", 1);
    // y runs only on w1, so it does not go to w2 where x is.
    let w1 = h.worker("w1", 1, &["f", "g"]);
    h.submit(c, vec![spec("y", "g", &["x"])], &["y"]);
    assert_eq!(h.processing_on("y"), Some(w1));
    // x is lost and recomputed on w1 while y is still processing there.
    h.lose_worker(w2, None);
    assert_eq!(h.processing_on("x"), Some(w1));
    assert_eq!(h.processing_on("y"), Some(w1));
    // w1 dies: x reaches allowed_failures and fails, cascading to y.
    h.lose_worker(w1, Some(9));
    assert_eq!(h.state("x"), TaskState::Erred);
    assert_eq!(h.state("y"), TaskState::Erred);
}

#[test]
fn stale_missing_data_does_not_strand_wanted_key() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["g"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    h.finish_key("a", 1);
    h.submit(c, vec![spec("b", "g", &["a"])], &["b"]);
    let b = h.wire("b");
    assert_eq!(h.processing_on("b"), Some(w2));
    // The client drops b; concurrently w2 reports that it could not fetch a.
    h.release(c, &["b"]);
    h.comm.take_workers();
    h.worker_msg(w2, WorkerMsg::MissingData { task: b, key: Key::from("a"), worker: w1.to_wire() });
    // `a` is still wanted by the client: it must be in memory or being recomputed.
    let st = h.state("a");
    assert!(st != TaskState::Released, "wanted key a is {st:?} and nothing will compute it");
}

#[test]
fn missing_data_keeps_worker_nbytes_right() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["g"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    h.finish_key("a", 1000);
    assert_eq!(h.s.workers[w1].nbytes, 1000);
    h.submit(c, vec![spec("b", "g", &["a"])], &["b"]);
    let b = h.wire("b");
    h.worker_msg(w2, WorkerMsg::MissingData { task: b, key: Key::from("a"), worker: w1.to_wire() });
    assert!(h.s.workers[w1].has_what.is_empty());
    assert_eq!(h.s.workers[w1].nbytes, 0, "bytes of data it no longer holds");
}

// ---------------------------------------------------------------------------
// 15. Property test: random operations against a model of the cluster
// ---------------------------------------------------------------------------

mod prop {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    const MAX_WORKERS: usize = 3;
    const SCATTER_KEYS: usize = 3;

    #[derive(Clone, Debug)]
    struct TaskDef {
        deps: Vec<usize>,
        scatter_dep: Option<usize>,
        func_g: bool,
        priority: i32,
        retries: u32,
    }

    #[derive(Clone, Debug)]
    enum Op {
        Submit { client: usize, task: usize },
        SubmitBatch { client: usize, first: usize, count: usize },
        Want { client: usize, task: usize },
        Finish { pick: usize, nbytes: u64 },
        Fail { pick: usize },
        Missing { pick: usize },
        StaleReply { pick: usize, finished: bool },
        Release { client: usize, pick: usize },
        Cancel { task: usize },
        KillWorker { pick: usize, code: Option<i32> },
        AddWorker { nthreads: u32, with_g: bool },
        StealReply { pick: usize, stolen: bool },
        Tick,
        Heartbeat { pick: usize },
        Scatter { client: usize, key: usize, worker: usize },
        CloseClient { client: usize },
    }

    fn task_def() -> impl Strategy<Value = TaskDef> {
        (
            prop_oneof![4 => Just(0usize), 3 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)]
                .prop_flat_map(|n| proptest::collection::vec(any::<u16>(), n)),
            proptest::option::weighted(0.1, 0..SCATTER_KEYS),
            proptest::bool::weighted(0.15),
            0..3i32,
            prop_oneof![6 => Just(0u32), 1 => Just(1u32), 1 => Just(2u32)],
        )
            .prop_map(|(deps, scatter_dep, func_g, priority, retries)| TaskDef {
                deps: deps.into_iter().map(usize::from).collect(),
                scatter_dep,
                func_g,
                priority,
                retries,
            })
    }

    fn world() -> impl Strategy<Value = Vec<TaskDef>> {
        proptest::collection::vec(task_def(), 1..=30).prop_map(|mut defs| {
            for (i, d) in defs.iter_mut().enumerate() {
                let mut deps: Vec<usize> =
                    if i == 0 { Vec::new() } else { d.deps.iter().map(|r| r % i).collect() };
                deps.sort_unstable();
                deps.dedup();
                d.deps = deps;
            }
            defs
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        let c = 0..2usize;
        let p = any::<usize>();
        prop_oneof![
            10 => (c.clone(), p).prop_map(|(client, task)| Op::Submit { client, task }),
            3 => (c.clone(), p, 2..16usize)
                .prop_map(|(client, first, count)| Op::SubmitBatch { client, first, count }),
            1 => (c.clone(), p).prop_map(|(client, task)| Op::Want { client, task }),
            12 => (p, prop_oneof![Just(8u64), Just(1u64 << 20)])
                .prop_map(|(pick, nbytes)| Op::Finish { pick, nbytes }),
            2 => p.prop_map(|pick| Op::Fail { pick }),
            1 => p.prop_map(|pick| Op::Missing { pick }),
            1 => (p, any::<bool>()).prop_map(|(pick, finished)| Op::StaleReply { pick, finished }),
            3 => (c.clone(), p).prop_map(|(client, pick)| Op::Release { client, pick }),
            1 => p.prop_map(|task| Op::Cancel { task }),
            1 => (p, proptest::option::of(0..200i32))
                .prop_map(|(pick, code)| Op::KillWorker { pick, code }),
            2 => (1..4u32, any::<bool>())
                .prop_map(|(nthreads, with_g)| Op::AddWorker { nthreads, with_g }),
            3 => (p, any::<bool>()).prop_map(|(pick, stolen)| Op::StealReply { pick, stolen }),
            1 => Just(Op::Tick),
            2 => p.prop_map(|pick| Op::Heartbeat { pick }),
            1 => (c.clone(), 0..SCATTER_KEYS, p)
                .prop_map(|(client, key, worker)| Op::Scatter { client, key, worker }),
            1 => c.prop_map(|client| Op::CloseClient { client }),
        ]
    }

    /// A worker as the model sees it: the computes it was sent and has not
    /// given back, and the keys whose data it holds.
    #[derive(Debug)]
    struct MWorker {
        id: WorkerId,
        assigned: Vec<ComputeTask>,
        data: BTreeSet<Key>,
    }

    /// A client: the keys it wants, and whether it was told their outcome.
    #[derive(Debug)]
    struct MClient {
        id: ClientId,
        wants: BTreeMap<Key, bool>,
    }

    struct Sim {
        s: Scheduler,
        comm: TestComm,
        defs: Vec<TaskDef>,
        workers: Vec<MWorker>,
        clients: Vec<MClient>,
        steals: Vec<(WorkerId, u64)>,
        history: Vec<(WorkerId, u64)>,
        named: u32,
        /// Workers removed by the last `on_tick`: messages to them sent
        /// while the scheduler removed the others are dropped.
        ticked_out: Vec<WorkerId>,
    }

    fn task_key(i: usize) -> Key {
        Key::from(format!("t{i}"))
    }

    fn scatter_key(i: usize) -> Key {
        Key::from(format!("s{i}"))
    }

    impl Sim {
        fn new(defs: Vec<TaskDef>, small_capacity: bool) -> Self {
            let mut s = Scheduler::new(tuned(|c| {
                c.heartbeat_ticks = 2;
                // Small worker capacities make root tasks queue up; large
                // ones make more work to steal.
                c.buffer_us = if small_capacity { 1 } else { 2_000 };
            }));
            let clients = (0..2)
                .map(|i| MClient {
                    id: s.on_client_connected(&format!("c{i}")),
                    wants: BTreeMap::new(),
                })
                .collect();
            let mut sim = Sim {
                s,
                comm: TestComm::default(),
                defs,
                workers: Vec::new(),
                clients,
                steals: Vec::new(),
                history: Vec::new(),
                named: 0,
                ticked_out: Vec::new(),
            };
            sim.add_worker(1, true);
            sim
        }

        fn spec_of(&self, i: usize) -> TaskSpec {
            let d = &self.defs[i];
            let mut args = vec![Arg::Value(Payload::from(vec![i as u8]))];
            args.extend(d.deps.iter().map(|&j| Arg::Dep(task_key(j))));
            args.extend(d.scatter_dep.map(|j| Arg::Dep(scatter_key(j))));
            TaskSpec {
                key: task_key(i),
                func: Arc::from(if d.func_g { "g" } else { "f" }),
                args,
                options: TaskOptions {
                    priority: d.priority,
                    retries: d.retries,
                    ..Default::default()
                },
            }
        }

        /// Task `i` and everything it depends on, dependents first.
        fn closure(&self, i: usize) -> Vec<TaskSpec> {
            let mut seen = BTreeSet::new();
            let mut stack = vec![i];
            let mut out = Vec::new();
            while let Some(j) = stack.pop() {
                if seen.insert(j) {
                    out.push(self.spec_of(j));
                    stack.extend(self.defs[j].deps.iter().copied());
                }
            }
            out
        }

        fn add_worker(&mut self, nthreads: u32, with_g: bool) {
            self.named += 1;
            let catalog: Vec<Arc<str>> =
                if with_g { vec![Arc::from("f"), Arc::from("g")] } else { vec![Arc::from("f")] };
            let hello = WorkerHello {
                name: format!("w{}", self.named),
                data_addr: String::new(),
                nthreads,
                catalog,
                resources: Vec::new(),
            };
            let id = self.s.on_worker_connected(&hello, &mut self.comm).expect("unique name");
            self.workers.push(MWorker { id, assigned: Vec::new(), data: BTreeSet::new() });
        }

        fn worker_idx(&self, w: WorkerId) -> usize {
            self.workers
                .iter()
                .position(|m| m.id == w)
                .unwrap_or_else(|| panic!("message to a worker that is gone: {w:?}"))
        }

        fn client_idx(&self, c: ClientId) -> usize {
            self.clients
                .iter()
                .position(|m| m.id == c)
                .unwrap_or_else(|| panic!("message to a client that is gone: {c:?}"))
        }

        /// Delivers everything the scheduler sent to the model.
        fn pump(&mut self) {
            let ticked_out = std::mem::take(&mut self.ticked_out);
            for (w, msg) in self.comm.take_workers() {
                if ticked_out.contains(&w) {
                    continue;
                }
                let i = self.worker_idx(w);
                let mw = &mut self.workers[i];
                match msg {
                    ToWorker::Compute(ct) => {
                        assert!(
                            !mw.assigned.iter().any(|x| x.task == ct.task),
                            "compute of {} sent twice to the same worker",
                            ct.spec.key
                        );
                        self.history.push((w, ct.task));
                        mw.assigned.push(*ct);
                    }
                    ToWorker::Free { keys } => {
                        for k in keys {
                            mw.data.remove(&k);
                            mw.assigned.retain(|ct| ct.spec.key != k);
                        }
                    }
                    ToWorker::Steal { task } => self.steals.push((w, task)),
                    ToWorker::WorkerAdded(_)
                    | ToWorker::WorkerRemoved { .. }
                    | ToWorker::Shutdown
                    | ToWorker::Run { .. }
                    | ToWorker::File { .. }
                    | ToWorker::Restart
                    | ToWorker::Plugin { .. }
                    | ToWorker::StoreParts { .. } => {}
                    ToWorker::Acquire { .. } => panic!("the model never asks for transfers"),
                }
            }
            for (c, msg) in self.comm.take_clients() {
                let i = self.client_idx(c);
                let mc = &mut self.clients[i];
                match msg {
                    ToClient::KeyInMemory { key, .. } | ToClient::KeyErred { key, .. } => {
                        let told = mc
                            .wants
                            .get_mut(&key)
                            .unwrap_or_else(|| panic!("told about {key} it does not want"));
                        *told = true;
                    }
                    ToClient::KeyCancelled { key } => {
                        assert!(
                            mc.wants.remove(&key).is_some(),
                            "cancel of {key} it does not want"
                        );
                    }
                    _ => {}
                }
            }
        }

        /// Everything that must hold between any two events.
        fn check(&self) {
            self.s.check_invariants();
            // Scheduler and model agree on who wants what.
            for mc in &self.clients {
                let cs = &self.s.clients[mc.id];
                let mut theirs: Vec<Key> =
                    cs.wants.iter().map(|&t| self.s.tasks[t].key.clone()).collect();
                theirs.sort();
                let ours: Vec<Key> = mc.wants.keys().cloned().collect();
                assert_eq!(theirs, ours, "wants of {:?}", mc.id);
            }
            // A task processing on a worker is one that worker was sent and
            // still has; and the other way round.
            for (id, t) in &self.s.tasks {
                if t.state == TaskState::Processing {
                    let w = t.processing_on.expect("checked by invariants");
                    let mw = &self.workers[self.worker_idx(w)];
                    assert!(
                        mw.assigned.iter().any(|ct| ct.task == id.to_wire()),
                        "{} processing on a worker that does not have it",
                        t.key
                    );
                }
            }
            for mw in &self.workers {
                for ct in &mw.assigned {
                    let t = self
                        .s
                        .task(TaskId::from_wire(ct.task))
                        .unwrap_or_else(|| panic!("worker runs forgotten {}", ct.spec.key));
                    assert_eq!(t.state, TaskState::Processing, "{}", t.key);
                    assert_eq!(t.processing_on, Some(mw.id), "{}", t.key);
                }
            }
            // Results the scheduler counts on are really there.
            for t in self.s.tasks.values() {
                for &w in &t.who_has {
                    let mw = &self.workers[self.worker_idx(w)];
                    assert!(mw.data.contains(&t.key), "{} not held by {w:?}", t.key);
                }
            }
        }

        fn step_done(&mut self) {
            self.pump();
            self.check();
        }

        fn all_assigned(&self) -> Vec<(usize, usize)> {
            self.workers
                .iter()
                .enumerate()
                .flat_map(|(i, w)| (0..w.assigned.len()).map(move |j| (i, j)))
                .collect()
        }

        /// The worker runs one assigned task the way a real one would: it
        /// fetches the inputs from the holders it was told about and reports
        /// the first one it cannot get, or runs the task.
        fn run(&mut self, wi: usize, j: usize, nbytes: u64) {
            let ct = self.workers[wi].assigned.remove(j);
            let w = self.workers[wi].id;
            for dep in &ct.deps {
                if self.workers[wi].data.contains(&dep.key) {
                    continue;
                }
                let holder = dep
                    .workers
                    .iter()
                    .copied()
                    .find(|&h| self.workers.iter().any(|m| m.id.to_wire() == h));
                let ok = holder.is_some_and(|h| {
                    self.workers.iter().any(|m| m.id.to_wire() == h && m.data.contains(&dep.key))
                });
                if !ok {
                    let worker =
                        holder.or_else(|| dep.workers.first().copied()).unwrap_or(u64::MAX);
                    self.s.on_worker_message(
                        w,
                        WorkerMsg::MissingData { task: ct.task, key: dep.key.clone(), worker },
                        &mut self.comm,
                    );
                    return;
                }
            }
            self.workers[wi].data.insert(ct.spec.key.clone());
            self.s.on_worker_message(
                w,
                WorkerMsg::TaskFinished {
                    task: ct.task,
                    nbytes,
                    value: (nbytes <= 8).then(|| Payload::from(vec![0u8; nbytes as usize])),
                    duration_us: 500,
                },
                &mut self.comm,
            );
        }

        fn reply_steal(&mut self, k: usize, stolen: bool) {
            let (w, task) = self.steals.remove(k);
            let Some(wi) = self.workers.iter().position(|m| m.id == w) else {
                return;
            };
            let pos = self.workers[wi].assigned.iter().position(|ct| ct.task == task);
            let stolen = stolen && pos.is_some();
            if stolen {
                self.workers[wi].assigned.remove(pos.expect("checked"));
            }
            self.s.on_worker_message(w, WorkerMsg::StealResponse { task, stolen }, &mut self.comm);
        }

        fn remove_worker(&mut self, w: WorkerId) {
            let i = self.worker_idx(w);
            self.workers.remove(i);
            self.steals.retain(|(v, _)| *v != w);
        }

        /// One UpdateGraph wanting tasks `wanted`, with all they depend on.
        fn submit(&mut self, client: usize, wanted: &[usize]) {
            let mut tasks: Vec<TaskSpec> = Vec::new();
            for &i in wanted {
                for t in self.closure(i) {
                    if !tasks.iter().any(|x| x.key == t.key) {
                        tasks.push(t);
                    }
                }
            }
            let c = self.clients[client].id;
            let mut keys = Vec::new();
            for &i in wanted {
                let key = task_key(i);
                if !keys.contains(&key) {
                    self.clients[client].wants.entry(key.clone()).or_insert(false);
                    keys.push(key);
                }
            }
            self.s.on_client_message(
                c,
                ClientMsg::UpdateGraph { tasks, wanted: keys },
                &mut self.comm,
            );
        }

        fn apply(&mut self, op: &Op) {
            let n = self.defs.len();
            match *op {
                Op::Submit { client, task } => self.submit(client, &[task % n]),
                Op::SubmitBatch { client, first, count } => {
                    let wanted: Vec<usize> = (0..count).map(|k| (first + k) % n).collect();
                    self.submit(client, &wanted);
                }
                Op::Want { client, task } => {
                    let key = task_key(task % n);
                    if self.s.task_by_key(key.as_str()).is_none() {
                        return;
                    }
                    let c = self.clients[client].id;
                    self.clients[client].wants.entry(key.clone()).or_insert(false);
                    self.s.on_client_message(
                        c,
                        ClientMsg::Want { keys: vec![key] },
                        &mut self.comm,
                    );
                }
                Op::Finish { pick, nbytes } => {
                    // Pick a busy worker first, so that workers drain
                    // unevenly and idle ones steal.
                    let busy: Vec<usize> = (0..self.workers.len())
                        .filter(|&i| !self.workers[i].assigned.is_empty())
                        .collect();
                    if let Some(&wi) = busy.get(pick % busy.len().max(1)) {
                        let j = (pick / 7) % self.workers[wi].assigned.len();
                        self.run(wi, j, nbytes);
                    }
                }
                Op::Fail { pick } => {
                    let all = self.all_assigned();
                    if let Some(&(wi, j)) = all.get(pick % all.len().max(1)) {
                        let ct = self.workers[wi].assigned.remove(j);
                        let w = self.workers[wi].id;
                        self.s.on_worker_message(
                            w,
                            WorkerMsg::TaskFailed {
                                task: ct.task,
                                failure: TaskFailure::new(FailureKind::Error, "boom"),
                            },
                            &mut self.comm,
                        );
                    }
                }
                Op::Missing { pick } => {
                    // A worker claims an input was missing, true or not.
                    let all: Vec<(usize, usize)> = self
                        .all_assigned()
                        .into_iter()
                        .filter(|&(wi, j)| !self.workers[wi].assigned[j].deps.is_empty())
                        .collect();
                    if let Some(&(wi, j)) = all.get(pick % all.len().max(1)) {
                        let ct = self.workers[wi].assigned.remove(j);
                        let dep = &ct.deps[pick % ct.deps.len()];
                        let worker = dep.workers.first().copied().unwrap_or(u64::MAX);
                        let w = self.workers[wi].id;
                        self.s.on_worker_message(
                            w,
                            WorkerMsg::MissingData { task: ct.task, key: dep.key.clone(), worker },
                            &mut self.comm,
                        );
                    }
                }
                Op::StaleReply { pick, finished } => {
                    // A reply about a compute the worker no longer has
                    // (crossed a Free or a steal on the wire).
                    let stale: Vec<(WorkerId, u64)> = self
                        .history
                        .iter()
                        .copied()
                        .filter(|&(w, t)| {
                            self.workers
                                .iter()
                                .any(|m| m.id == w && !m.assigned.iter().any(|ct| ct.task == t))
                        })
                        .collect();
                    if let Some(&(w, task)) = stale.get(pick % stale.len().max(1)) {
                        let msg = if finished {
                            WorkerMsg::TaskFinished {
                                task,
                                nbytes: 8,
                                value: None,
                                duration_us: 500,
                            }
                        } else {
                            WorkerMsg::TaskFailed {
                                task,
                                failure: TaskFailure::new(FailureKind::Panic, "late"),
                            }
                        };
                        self.s.on_worker_message(w, msg, &mut self.comm);
                    }
                }
                Op::Release { client, pick } => {
                    let mc = &mut self.clients[client];
                    let ks: Vec<Key> = mc.wants.keys().cloned().collect();
                    if let Some(k) = ks.get(pick % ks.len().max(1)) {
                        mc.wants.remove(k);
                        let c = mc.id;
                        self.s.on_client_message(
                            c,
                            ClientMsg::Release { keys: vec![k.clone()] },
                            &mut self.comm,
                        );
                    }
                }
                Op::Cancel { task } => {
                    let c = self.clients[0].id;
                    self.s.on_client_message(
                        c,
                        ClientMsg::Cancel { keys: vec![task_key(task % n)] },
                        &mut self.comm,
                    );
                }
                Op::KillWorker { pick, code } => {
                    if let Some(w) = self.workers.get(pick % self.workers.len().max(1)) {
                        let w = w.id;
                        self.remove_worker(w);
                        self.s.on_worker_lost(w, code, &mut self.comm);
                    }
                }
                Op::AddWorker { nthreads, with_g } => {
                    if self.workers.len() < MAX_WORKERS {
                        self.add_worker(nthreads, with_g);
                    }
                }
                Op::StealReply { pick, stolen } => {
                    if !self.steals.is_empty() {
                        let k = pick % self.steals.len();
                        self.reply_steal(k, stolen);
                    }
                }
                Op::Tick => {
                    let dead = self.s.on_tick(&mut self.comm);
                    for &w in &dead {
                        self.remove_worker(w);
                    }
                    self.ticked_out = dead;
                }
                Op::Heartbeat { pick } => {
                    if let Some(w) = self.workers.get(pick % self.workers.len().max(1)) {
                        let w = w.id;
                        self.s.on_worker_message(w, WorkerMsg::Heartbeat, &mut self.comm);
                    }
                }
                Op::Scatter { client, key, worker } => {
                    if let Some(w) = self.workers.get_mut(worker % MAX_WORKERS.max(1)) {
                        let k = scatter_key(key);
                        w.data.insert(k.clone());
                        let wire = w.id.to_wire();
                        let c = self.clients[client].id;
                        self.clients[client].wants.entry(k.clone()).or_insert(false);
                        self.s.on_client_message(
                            c,
                            ClientMsg::UpdateData {
                                items: vec![ScatteredKey {
                                    key: k,
                                    nbytes: 16,
                                    workers: vec![wire],
                                }],
                            },
                            &mut self.comm,
                        );
                    }
                }
                Op::CloseClient { client } => {
                    let c = self.clients[client].id;
                    self.s.on_client_message(c, ClientMsg::Close, &mut self.comm);
                    self.clients[client] =
                        MClient { id: self.s.on_client_connected("again"), wants: BTreeMap::new() };
                }
            }
        }

        /// Lets the workers run everything they were given until nothing
        /// moves, then checks that every wanted key reached an outcome.
        fn settle(&mut self) {
            if self.workers.is_empty() {
                self.add_worker(2, true);
                self.step_done();
            }
            let mut budget = 10_000;
            loop {
                if !self.steals.is_empty() {
                    self.reply_steal(0, true);
                } else if let Some(&(wi, j)) = self.all_assigned().first() {
                    self.run(wi, j, 8);
                } else {
                    break;
                }
                self.step_done();
                budget -= 1;
                assert!(budget > 0, "the cluster never settles");
            }
            for mc in &self.clients {
                for (key, told) in &mc.wants {
                    let (_, t) = self.s.task_by_key(key.as_str()).expect("wanted key known");
                    assert!(
                        matches!(t.state, TaskState::Memory | TaskState::Erred),
                        "wanted {key} is stuck in {:?}",
                        t.state
                    );
                    assert!(*told, "client never told about {key}");
                }
            }
            for t in self.s.tasks.values() {
                assert!(!t.state.is_active(), "{} still {:?} in a settled cluster", t.key, t.state);
            }
        }
    }

    fn run_case(defs: Vec<TaskDef>, small_capacity: bool, ops: &[Op]) {
        let mut sim = Sim::new(defs, small_capacity);
        sim.step_done();
        for op in ops {
            sim.apply(op);
            sim.step_done();
        }
        sim.settle();
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Invariants after every step; at the end, every wanted key has
        /// an outcome its client was told about and nothing is left running.
        #[test]
        fn random_operations_keep_invariants_and_settle(
            defs in world(),
            small_capacity in any::<bool>(),
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            run_case(defs, small_capacity, &ops);
        }
    }
}

#[test]
fn dependency_cycles_err_and_are_forgotten() {
    let mut h = H::new();
    h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(
        c,
        vec![
            spec("a", "f", &["b"]),
            spec("b", "f", &["a"]),
            spec("s", "f", &["s"]),
            spec("d", "f", &["a"]),
        ],
        &["a", "b", "s", "d"],
    );
    assert!(computes(&h.comm.take_workers()).is_empty(), "nothing in a cycle runs");
    for k in ["a", "b", "s", "d"] {
        assert_eq!(h.state(k), TaskState::Erred, "{k}");
    }
    let errs = erred(&h.comm.take_clients());
    assert_eq!(errs.len(), 4);
    assert!(errs.iter().any(|(_, _, f)| f.message.contains("dependency cycle")));
    h.release(c, &["a", "b", "s", "d"]);
    assert_eq!(h.s.task_count(), 0);
}

//! Tests of the worker state machine: slots and priorities, fetching
//! dependencies from peers, frees, steals and results.

use super::*;
use crate::protocol::WorkerInfo;
use std::cmp::Reverse;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

const ME: u64 = 1;

fn p(b: &[u8]) -> Payload {
    Payload::from(b.to_vec())
}

fn key(k: &str) -> Key {
    Key::from(k)
}

/// A Compute for task `task` with key `k`, its arguments, where each
/// dependency lives, and its priority (the submission sequence is `task`).
fn compute(task: u64, k: &str, args: Vec<Arg>, deps: &[(&str, &[u64])], priority: i32) -> ToWorker {
    ToWorker::Compute(Box::new(ComputeTask {
        task,
        spec: TaskSpec { key: key(k), func: Arc::from("f"), args, options: Default::default() },
        deps: deps
            .iter()
            .map(|(k, ws)| DepLocation { key: key(k), workers: ws.to_vec() })
            .collect(),
        order: (priority, Reverse(0), Reverse(task)),
    }))
}

/// A task without dependencies.
fn root(task: u64, k: &str, priority: i32) -> ToWorker {
    compute(task, k, vec![Arg::Value(p(k.as_bytes()))], &[], priority)
}

fn dep(k: &str) -> Arg {
    Arg::Dep(key(k))
}

fn val(b: &[u8]) -> Arg {
    Arg::Value(p(b))
}

struct H {
    w: Worker,
    out: Outbox,
}

impl H {
    fn new(nthreads: usize) -> Self {
        let mut w = Worker::new(ME, nthreads);
        w.add_peer(2, "addr-2".into());
        w.add_peer(3, "addr-3".into());
        H { w, out: Outbox::default() }
    }

    fn msg(&mut self, m: ToWorker) {
        self.w.on_scheduler_message(m, &mut self.out);
        self.check();
    }

    fn fetched(&mut self, from: u64, items: Vec<(&str, Option<Payload>)>) {
        let items = items.into_iter().map(|(k, v)| (key(k), v)).collect();
        self.w.on_fetched(from, items, &mut self.out);
        self.check();
    }

    /// A task finished. Tasks in these tests are long (1 s), so the worker
    /// has no reason to hand out more than its slots because of them.
    fn done(&mut self, task: u64, result: TaskResult) {
        self.w.on_task_done(task, result, 1_000_000, &mut self.out);
        self.check();
    }

    fn check(&self) {
        let limit = self.w.execute_limit();
        assert!(limit >= self.w.nthreads, "limit {limit} below the slots");
        assert!(self.w.executing() <= limit, "{} handed out, limit {limit}", self.w.executing(),);
    }

    /// Sends root tasks `first..` until the executor is full; returns their ids.
    fn saturate(&mut self, first: u64) -> Vec<u64> {
        let mut ids = Vec::new();
        while self.w.executing() < self.w.execute_limit() {
            let t = first + ids.len() as u64;
            self.msg(root(t, &format!("busy{t}"), 0));
            ids.push(t);
            assert!(ids.len() < 1000);
        }
        assert_eq!(self.started(), ids);
        ids
    }

    /// Finishes handed-out tasks oldest first until none is left; returns
    /// the order in which tasks were handed out meanwhile.
    fn run_all(&mut self, mut running: Vec<u64>) -> Vec<u64> {
        let mut order = Vec::new();
        while !running.is_empty() {
            let t = running.remove(0);
            self.done(t, Ok(p(b"r")));
            let s = self.started();
            assert!(s.len() <= 1, "one slot freed, {s:?} handed out");
            order.extend(&s);
            running.extend(s);
        }
        order
    }

    fn take_executes(&mut self) -> Vec<Execute> {
        std::mem::take(&mut self.out.executes)
    }

    fn started(&mut self) -> Vec<u64> {
        self.take_executes().into_iter().map(|e| e.task).collect()
    }

    fn take_fetches(&mut self) -> Vec<Fetch> {
        std::mem::take(&mut self.out.fetches)
    }

    fn take_msgs(&mut self) -> Vec<WorkerMsg> {
        std::mem::take(&mut self.out.to_scheduler)
    }
}

fn finished(msgs: &[WorkerMsg]) -> Vec<(u64, u64, Option<Payload>)> {
    msgs.iter()
        .filter_map(|m| match m {
            WorkerMsg::TaskFinished { task, nbytes, value, .. } => {
                Some((*task, *nbytes, value.clone()))
            }
            _ => None,
        })
        .collect()
}

fn missing(msgs: &[WorkerMsg]) -> Vec<(u64, String, u64)> {
    msgs.iter()
        .filter_map(|m| match m {
            WorkerMsg::MissingData { task, key, worker } => Some((*task, key.to_string(), *worker)),
            _ => None,
        })
        .collect()
}

fn steal_answers(msgs: &[WorkerMsg]) -> Vec<(u64, bool)> {
    msgs.iter()
        .filter_map(|m| match m {
            WorkerMsg::StealResponse { task, stolen } => Some((*task, *stolen)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Slots and priorities
// ---------------------------------------------------------------------------

#[test]
fn never_more_tasks_handed_out_than_the_limit() {
    for nthreads in [1, 2, 3] {
        let mut h = H::new(nthreads);
        let limit = h.w.execute_limit();
        assert!(limit >= nthreads);
        let n = limit as u64 + 5;
        for t in 0..n {
            h.msg(root(t, &format!("k{t}"), 0));
        }
        let first = h.started();
        assert_eq!(first, (0..limit as u64).collect::<Vec<_>>());
        assert_eq!(h.w.executing(), limit);
        assert_eq!(h.w.task_count(), n as usize);
        let rest = h.run_all(first);
        assert_eq!(rest, (limit as u64..n).collect::<Vec<_>>(), "arrival order");
        assert_eq!(h.w.executing(), 0);
        assert_eq!(h.w.task_count(), 0);
        assert_eq!(finished(&h.take_msgs()).len(), n as usize);
    }
}

#[test]

fn long_tasks_are_not_handed_out_beyond_the_slots() {
    let mut h = H::new(2);
    for t in 0..20 {
        h.msg(root(t, &format!("k{t}"), 0));
    }
    let mut running = h.started();
    // A steady stream of 1 s tasks.
    for _ in 0..10 {
        let t = running.remove(0);
        h.done(t, Ok(p(b"r")));
        running.extend(h.started());
    }
    assert_eq!(h.w.execute_limit(), 2);
    assert_eq!(h.w.executing(), 2);
}

#[test]
fn waiting_tasks_start_by_priority() {
    let mut h = H::new(1);
    let busy = h.saturate(100);
    h.msg(root(2, "lo", 0));
    h.msg(root(3, "hi", 9));
    h.msg(root(4, "mid-a", 4));
    h.msg(root(5, "neg", -2));
    h.msg(root(6, "mid-b", 4));
    assert!(h.started().is_empty(), "the executor is full");
    assert_eq!(h.run_all(busy), vec![3, 4, 6, 2, 5]);
}

#[test]
fn zero_threads_means_one() {
    let h = H::new(0);
    assert_eq!(h.w.nthreads, 1);
    assert!(h.w.execute_limit() >= 1);
}

#[test]
fn execute_carries_function_key_and_values() {
    let mut h = H::new(1);
    h.msg(compute(7, "k", vec![val(b"x"), val(b"yy")], &[], 0));
    let ex = h.take_executes();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].task, 7);
    assert_eq!(ex[0].key.as_str(), "k");
    assert_eq!(&*ex[0].func, "f");
    assert_eq!(ex[0].args, vec![p(b"x"), p(b"yy")]);
}

// ---------------------------------------------------------------------------
// Dependencies and fetches
// ---------------------------------------------------------------------------

#[test]
fn dependencies_are_fetched_batched_per_peer_and_passed_in_argument_order() {
    let mut h = H::new(2);
    h.msg(compute(
        10,
        "t",
        vec![val(b"v0"), dep("x"), val(b"v1"), dep("z"), dep("y"), dep("x")],
        &[("x", &[2]), ("z", &[3]), ("y", &[2])],
        0,
    ));
    assert!(h.take_executes().is_empty());
    let mut f = h.take_fetches();
    f.sort_by_key(|f| f.worker);
    assert_eq!(f.len(), 2, "one fetch per peer: {f:?}");
    assert_eq!(f[0].worker, 2);
    assert_eq!(f[0].addr, "addr-2");
    let mut k0 = f[0].keys.clone();
    k0.sort();
    assert_eq!(k0, vec![key("x"), key("y")]);
    assert_eq!(f[1].worker, 3);
    assert_eq!(f[1].addr, "addr-3");
    assert_eq!(f[1].keys, vec![key("z")]);

    h.fetched(2, vec![("x", Some(p(b"X"))), ("y", Some(p(b"Y")))]);
    assert!(h.take_executes().is_empty(), "z still missing");
    h.fetched(3, vec![("z", Some(p(b"Z")))]);
    let ex = h.take_executes();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].task, 10);
    assert_eq!(ex[0].args, vec![p(b"v0"), p(b"X"), p(b"v1"), p(b"Z"), p(b"Y"), p(b"X")]);
    // Fetched inputs are not results of this worker.
    assert_eq!(h.w.get_data(&[key("x")])[0].1, None);
    h.done(10, Ok(p(b"T")));
    assert!(h.w.fetched.is_empty(), "inputs dropped with their last task");
    assert_eq!(h.w.get_data(&[key("t")])[0].1, Some(p(b"T")));
}

#[test]
fn local_data_is_not_fetched() {
    let mut h = H::new(1);
    h.w.put_data(vec![(key("x"), p(b"X"))]);
    h.msg(compute(1, "t", vec![dep("x")], &[("x", &[ME, 2])], 0));
    assert!(h.take_fetches().is_empty());
    let ex = h.take_executes();
    assert_eq!(ex[0].args, vec![p(b"X")]);
}

#[test]
fn result_of_an_earlier_task_feeds_the_next() {
    let mut h = H::new(1);
    h.msg(root(1, "a", 0));
    h.done(1, Ok(p(b"A")));
    h.msg(compute(2, "b", vec![dep("a")], &[("a", &[ME])], 0));
    assert!(h.take_fetches().is_empty());
    let ex = h.take_executes();
    assert_eq!(ex.last().unwrap().args, vec![p(b"A")]);
}

#[test]
fn one_fetch_serves_every_task_needing_the_key() {
    let mut h = H::new(2);
    h.msg(compute(1, "t1", vec![dep("x")], &[("x", &[2])], 0));
    h.msg(compute(2, "t2", vec![dep("x")], &[("x", &[2])], 0));
    let f = h.take_fetches();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].keys, vec![key("x")]);
    let busy = h.saturate(100);
    h.fetched(2, vec![("x", Some(p(b"X")))]);
    assert!(h.started().is_empty(), "executor full");
    for t in busy {
        h.done(t, Ok(p(b"r")));
    }
    let ex = h.take_executes();
    let mut started = ex.iter().map(|e| e.task).collect::<Vec<_>>();
    started.sort();
    assert_eq!(started, vec![1, 2]);
    assert!(ex.iter().all(|e| e.args == vec![p(b"X")]));
    h.done(1, Ok(p(b"r")));
    // A third task arriving while the input is held does not fetch again,
    // and keeps the input alive after t2 (its other user) is done.
    let busy = h.saturate(200);
    h.msg(compute(3, "t3", vec![dep("x")], &[("x", &[2])], 0));
    assert!(h.take_fetches().is_empty());
    assert!(h.started().is_empty(), "executor full");
    h.done(2, Ok(p(b"r")));
    for t in busy {
        h.done(t, Ok(p(b"r")));
    }
    let ex = h.take_executes();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].task, 3);
    assert_eq!(ex[0].args, vec![p(b"X")]);
    assert!(h.take_msgs().iter().all(|m| !matches!(m, WorkerMsg::MissingData { .. })));
    h.done(3, Ok(p(b"r")));
    assert!(h.w.fetched.is_empty(), "inputs dropped with their last task");
    assert!(h.w.in_flight.is_empty());
}

#[test]
fn failed_fetch_reports_missing_data_and_drops_the_task() {
    let mut h = H::new(1);
    h.msg(compute(
        5,
        "t",
        vec![dep("x"), dep("y"), dep("z")],
        &[("x", &[2]), ("y", &[2]), ("z", &[3])],
        0,
    ));
    h.take_fetches();
    h.w.on_fetch_failed(2, vec![key("x"), key("y")], &mut h.out);
    let msgs = h.take_msgs();
    assert_eq!(missing(&msgs), vec![(5, "x".to_string(), 2)], "once per task");
    assert_eq!(h.w.task_count(), 0);
    // The other input arriving later runs nothing and keeps nothing.
    h.fetched(3, vec![("z", Some(p(b"Z")))]);
    assert!(h.take_executes().is_empty());
    assert!(h.w.fetched.is_empty());
    assert!(h.take_msgs().is_empty());
}

#[test]
fn absent_item_reports_missing_data_for_every_waiting_task() {
    let mut h = H::new(1);
    h.msg(compute(1, "t1", vec![dep("x")], &[("x", &[2])], 0));
    h.msg(compute(2, "t2", vec![dep("x"), dep("y")], &[("x", &[2]), ("y", &[2])], 0));
    h.fetched(2, vec![("x", None), ("y", Some(p(b"Y")))]);
    let mut m = missing(&h.take_msgs());
    m.sort();
    assert_eq!(m, vec![(1, "x".to_string(), 2), (2, "x".to_string(), 2)]);
    assert_eq!(h.w.task_count(), 0);
    assert!(h.take_executes().is_empty());
    assert!(h.w.fetched.is_empty());
}

#[test]
fn input_held_by_no_known_peer_is_missing_at_once() {
    let mut h = H::new(1);
    h.msg(compute(1, "t", vec![dep("x")], &[("x", &[42])], 0));
    assert!(h.take_fetches().is_empty());
    assert_eq!(missing(&h.take_msgs()), vec![(1, "x".to_string(), 42)]);
    assert_eq!(h.w.task_count(), 0);
}

#[test]
fn peers_come_and_go_with_the_scheduler() {
    let mut h = H::new(1);
    h.msg(ToWorker::WorkerAdded(WorkerInfo {
        id: 7,
        name: "w7".into(),
        data_addr: "addr-7".into(),
        nthreads: 1,
        resources: Vec::new(),
        memory: 0,
        managed_bytes: 0,
        ..Default::default()
    }));
    h.msg(compute(1, "t", vec![dep("x")], &[("x", &[7])], 0));
    let f = h.take_fetches();
    assert_eq!(f, vec![Fetch { worker: 7, addr: "addr-7".into(), keys: vec![key("x")] }]);
    h.msg(ToWorker::WorkerRemoved { id: 7 });
    h.msg(compute(2, "u", vec![dep("y")], &[("y", &[7])], 0));
    assert!(h.take_fetches().is_empty());
    assert_eq!(missing(&h.take_msgs()), vec![(2, "y".to_string(), 7)]);
    // Being told about itself does not make it a peer.
    h.w.add_peer(ME, "me".into());
    assert!(!h.w.peers.contains_key(&ME));
}

#[test]
fn input_freed_before_start_is_reported_missing_here() {
    let mut h = H::new(1);
    h.w.put_data(vec![(key("x"), p(b"X"))]);
    let busy = h.saturate(100);
    h.msg(compute(2, "t", vec![dep("x")], &[("x", &[ME])], 0));
    assert!(h.started().is_empty());
    h.msg(ToWorker::Free { keys: vec![key("x")] });
    h.done(busy[0], Ok(p(b"r")));
    assert!(h.take_executes().is_empty());
    assert_eq!(missing(&h.take_msgs()), vec![(2, "x".to_string(), ME)]);
    assert_eq!(h.w.task_count(), busy.len() - 1);
}

// ---------------------------------------------------------------------------
// Free
// ---------------------------------------------------------------------------

#[test]
fn free_while_executing_drops_the_result() {
    let mut h = H::new(1);
    h.msg(root(1, "a", 0));
    assert_eq!(h.started(), vec![1]);
    h.msg(ToWorker::Free { keys: vec![key("a")] });
    assert_eq!(h.w.executing(), 1, "the thread is still busy");
    h.done(1, Ok(p(b"A")));
    assert!(h.take_msgs().is_empty(), "no TaskFinished");
    assert_eq!(h.w.get_data(&[key("a")])[0].1, None);
    assert_eq!(h.w.executing(), 0);
    assert_eq!(h.w.task_count(), 0);
}

#[test]
fn free_while_executing_drops_a_failure_too() {
    let mut h = H::new(1);
    h.msg(root(1, "a", 0));
    h.msg(ToWorker::Free { keys: vec![key("a")] });
    h.done(1, Err(TaskFailure::new(FailureKind::Error, "boom")));
    assert!(h.take_msgs().is_empty());
}

#[test]
fn free_of_a_waiting_task_drops_it() {
    let mut h = H::new(1);
    let busy = h.saturate(100);
    h.msg(root(2, "ready", 0));
    h.msg(compute(3, "fetching", vec![dep("x")], &[("x", &[2])], 0));
    assert!(h.started().is_empty());
    h.msg(ToWorker::Free { keys: vec![key("ready"), key("fetching")] });
    assert_eq!(h.w.task_count(), busy.len());
    h.fetched(2, vec![("x", Some(p(b"X")))]);
    assert!(h.run_all(busy).is_empty(), "freed tasks never start");
    assert!(h.w.fetched.is_empty());
    assert_eq!(h.w.task_count(), 0);
}

#[test]
fn free_removes_held_data() {
    let mut h = H::new(1);
    h.msg(root(1, "a", 0));
    h.done(1, Ok(p(b"AAAA")));
    h.w.put_data(vec![(key("s"), p(b"SS"))]);
    assert_eq!(h.w.nbytes(), 6);
    h.msg(ToWorker::Free { keys: vec![key("a"), key("unknown")] });
    assert_eq!(
        h.w.get_data(&[key("a"), key("s")]),
        vec![(key("a"), None), (key("s"), Some(p(b"SS")))]
    );
    assert_eq!(h.w.nbytes(), 2);
}

// ---------------------------------------------------------------------------
// Steal
// ---------------------------------------------------------------------------

#[test]
fn steal_of_a_ready_task_gives_it_up() {
    let mut h = H::new(1);
    let busy = h.saturate(100);
    h.msg(root(2, "ready", 0));
    assert!(h.started().is_empty());
    h.msg(ToWorker::Steal { task: 2 });
    assert_eq!(steal_answers(&h.take_msgs()), vec![(2, true)]);
    assert_eq!(h.w.task_count(), busy.len());
    assert!(h.run_all(busy).is_empty(), "a stolen task never runs here");
}

#[test]
fn steal_of_a_fetching_task_gives_it_up() {
    let mut h = H::new(1);
    h.msg(compute(1, "t", vec![dep("x")], &[("x", &[2])], 0));
    h.msg(ToWorker::Steal { task: 1 });
    assert_eq!(steal_answers(&h.take_msgs()), vec![(1, true)]);
    h.fetched(2, vec![("x", Some(p(b"X")))]);
    assert!(h.take_executes().is_empty());
    assert!(h.w.fetched.is_empty());
}

#[test]
fn steal_of_an_executing_or_unknown_task_is_refused() {
    let mut h = H::new(1);
    h.msg(root(1, "a", 0));
    h.msg(ToWorker::Steal { task: 1 });
    h.msg(ToWorker::Steal { task: 99 });
    assert_eq!(steal_answers(&h.take_msgs()), vec![(1, false), (99, false)]);
    h.done(1, Ok(p(b"A")));
    assert_eq!(finished(&h.take_msgs()).len(), 1, "it still reports");
}

#[test]
fn stolen_task_sent_back_runs_once() {
    let mut h = H::new(1);
    let busy = h.saturate(100);
    h.msg(root(2, "t", 0));
    h.msg(ToWorker::Steal { task: 2 });
    h.msg(root(2, "t", 0));
    assert!(h.started().is_empty());
    assert_eq!(h.run_all(busy), vec![2]);
    assert_eq!(h.w.executing(), 0);
    let f = finished(&h.take_msgs());
    assert_eq!(f.iter().filter(|f| f.0 == 2).count(), 1);
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

#[test]
fn small_results_travel_inline_large_ones_stay_here() {
    let mut h = H::new(3);
    h.msg(root(1, "small", 0));
    h.msg(root(2, "edge", 0));
    h.msg(root(3, "large", 0));
    let small = p(b"tiny");
    let edge = Payload::from(vec![7u8; DEFAULT_INLINE_RESULT]);
    let large = Payload::from(vec![9u8; DEFAULT_INLINE_RESULT + 1]);
    h.done(1, Ok(small.clone()));
    h.done(2, Ok(edge.clone()));
    h.done(3, Ok(large.clone()));
    let f = finished(&h.take_msgs());
    assert_eq!(
        f,
        vec![
            (1, 4, Some(small.clone())),
            (2, DEFAULT_INLINE_RESULT as u64, Some(edge.clone())),
            (3, DEFAULT_INLINE_RESULT as u64 + 1, None),
        ]
    );
    let held = h.w.get_data(&[key("small"), key("edge"), key("large")]);
    assert_eq!(held[0].1.as_ref(), Some(&small));
    assert_eq!(held[1].1.as_ref(), Some(&edge));
    assert_eq!(held[2].1.as_ref(), Some(&large));
    assert_eq!(h.w.nbytes(), 4 + 2 * DEFAULT_INLINE_RESULT + 1);
    assert_eq!(h.w.task_count(), 0);
}

#[test]
fn failure_is_reported_and_nothing_is_stored() {
    let mut h = H::new(1);
    h.msg(root(1, "a", 0));
    let failure = TaskFailure::new(FailureKind::Panic, "oops").with_traceback("here");
    h.done(1, Err(failure.clone()));
    let msgs = h.take_msgs();
    assert!(matches!(
        &msgs[..],
        [WorkerMsg::TaskFailed { task: 1, failure: f }] if *f == failure
    ));
    assert_eq!(h.w.get_data(&[key("a")])[0].1, None);
}

#[test]
fn duration_is_reported() {
    let mut w = Worker::new(ME, 1);
    let mut out = Outbox::default();
    w.on_scheduler_message(root(1, "a", 0), &mut out);
    w.on_task_done(1, Ok(p(b"A")), 1234, &mut out);
    assert!(matches!(out.to_scheduler[..], [WorkerMsg::TaskFinished { duration_us: 1234, .. }]));
}

#[test]
fn put_and_get_data() {
    let mut w = Worker::new(ME, 1);
    w.put_data(vec![(key("a"), p(b"1")), (key("b"), p(b"22"))]);
    w.put_data(vec![(key("a"), p(b"333"))]);
    assert_eq!(
        w.get_data(&[key("a"), key("b"), key("c")]),
        vec![(key("a"), Some(p(b"333"))), (key("b"), Some(p(b"22"))), (key("c"), None)]
    );
    assert_eq!(w.nbytes(), 5);
    let mut out = Outbox::default();
    w.on_scheduler_message(ToWorker::Shutdown, &mut out);
    assert!(out.to_scheduler.is_empty() && out.executes.is_empty());
}

#[test]

fn duplicate_compute_while_fetching_does_not_double_count() {
    // The scheduler can send the same task twice without a Free in
    // between when a steal answer crosses a Free and a new Compute.
    let mut h = H::new(1);
    h.msg(compute(1, "t", vec![dep("x")], &[("x", &[2])], 0));
    h.msg(compute(1, "t", vec![dep("x")], &[("x", &[2])], 0));
    h.fetched(2, vec![("x", Some(p(b"X")))]);
    assert_eq!(h.started(), vec![1]);
    h.done(1, Ok(p(b"T")));
    assert_eq!(finished(&h.take_msgs()).len(), 1);
    assert!(h.w.fetched.is_empty());
    assert_eq!(h.w.task_count(), 0);
}

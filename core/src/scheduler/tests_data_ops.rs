//! Tests of data placement (who_has, has_what, replicate, rebalance) and of
//! the run-time profile, driving the scheduler with no sockets.

use super::*;
use crate::error::{FailureKind, TaskFailure};
use crate::graph::{Arg, Key, TaskSpec};
use crate::protocol::{
    ClientMsg, DepLocation, Payload, Reply, Request, RequestError, RequestErrorKind, ScatteredKey,
    ToClient, ToWorker, WorkerHello, WorkerMsg,
};
use std::time::Duration;

struct H {
    s: Scheduler,
    comm: TestComm,
    c: ClientId,
    next_request: u64,
}

impl H {
    fn new(workers: &[&str]) -> (H, Vec<WorkerId>) {
        let mut s = Scheduler::new(SchedulerConfig::default());
        let mut comm = TestComm::default();
        let ids = workers
            .iter()
            .map(|name| {
                let hello = WorkerHello {
                    name: name.to_string(),
                    data_addr: format!("mem://{name}"),
                    nthreads: 1,
                    catalog: vec![Arc::from("f"), Arc::from("g")],
                    resources: Vec::new(),
                };
                s.on_worker_connected(&hello, &mut comm).expect("accepted")
            })
            .collect();
        let c = s.on_client_connected("c");
        comm.take_workers();
        (H { s, comm, c, next_request: 0 }, ids)
    }

    fn client_msg(&mut self, msg: ClientMsg) {
        self.s.on_client_message(self.c, msg, &mut self.comm);
        self.s.check_invariants();
    }

    fn worker_msg(&mut self, w: WorkerId, msg: WorkerMsg) {
        self.s.on_worker_message(w, msg, &mut self.comm);
        self.s.check_invariants();
    }

    /// Sends a request; returns its id.
    fn request(&mut self, req: Request) -> u64 {
        self.next_request += 1;
        let id = self.next_request;
        self.client_msg(ClientMsg::Request { id, req });
        id
    }

    /// The replies sent since the last call, by request id.
    fn replies(&mut self) -> Vec<(u64, Result<Reply, RequestError>)> {
        self.comm
            .take_clients()
            .into_iter()
            .filter_map(|(_, m)| match m {
                ToClient::Reply { id, reply } => Some((id, reply)),
                _ => None,
            })
            .collect()
    }

    /// Sends a request that is answered at once; returns the answer.
    fn ask(&mut self, req: Request) -> Result<Reply, RequestError> {
        let id = self.request(req);
        let mut r = self.replies();
        assert_eq!(r.len(), 1, "one immediate reply: {r:?}");
        let (rid, reply) = r.pop().expect("one");
        assert_eq!(rid, id);
        reply
    }

    /// Data of `nbytes` placed on `holders` by the client.
    fn scatter(&mut self, key: &str, nbytes: u64, holders: &[WorkerId]) {
        let item = ScatteredKey {
            key: Key::from(key),
            nbytes,
            workers: holders.iter().map(|w| w.to_wire()).collect(),
        };
        self.client_msg(ClientMsg::UpdateData { items: vec![item] });
        self.comm.take_clients();
    }

    fn who_has(&self, key: &str) -> Vec<WorkerId> {
        let mut w = self.s.task_by_key(key).expect("known").1.who_has.clone();
        w.sort();
        w
    }

    /// Acquire messages sent since the last call: (receiver, key, sources).
    fn acquires(&mut self) -> Vec<(WorkerId, String, Vec<u64>)> {
        let mut out = Vec::new();
        for (w, m) in self.comm.take_workers() {
            match m {
                ToWorker::Acquire { keys } => {
                    for DepLocation { key, workers } in keys {
                        out.push((w, key.to_string(), workers));
                    }
                }
                other => panic!("unexpected message to a worker: {other:?}"),
            }
        }
        out
    }

    fn acquired(&mut self, w: WorkerId, key: &str, nbytes: Option<u64>) {
        self.worker_msg(w, WorkerMsg::Acquired { key: Key::from(key), nbytes });
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn who_has_and_has_what_name_the_holders() {
    let (mut h, w) = H::new(&["a", "b"]);
    h.scatter("x", 8, &[w[0]]);
    h.scatter("y", 8, &[w[0], w[1]]);
    match h.ask(Request::WhoHas { keys: vec!["x".into(), "y".into(), "nope".into()] }) {
        Ok(Reply::WhoHas(r)) => {
            assert_eq!(r[0], (Key::from("x"), names(&["a"])));
            assert_eq!(r[1].0, Key::from("y"));
            let mut y = r[1].1.clone();
            y.sort();
            assert_eq!(y, names(&["a", "b"]));
            assert_eq!(r[2], (Key::from("nope"), vec![]));
        }
        other => panic!("{other:?}"),
    }
    match h.ask(Request::HasWhat) {
        Ok(Reply::HasWhat(r)) => assert_eq!(
            r,
            vec![
                ("a".to_string(), vec![Key::from("x"), Key::from("y")]),
                ("b".to_string(), vec![Key::from("y")]),
            ]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn replicate_beyond_the_worker_count_copies_to_every_worker() {
    let (mut h, w) = H::new(&["a", "b", "c"]);
    h.scatter("x", 10, &[w[0]]);
    let id = h.request(Request::Replicate { keys: vec!["x".into()], n: 10 });
    assert!(h.replies().is_empty(), "answered before the copies exist");
    let mut acq = h.acquires();
    acq.sort();
    let src = vec![w[0].to_wire()];
    assert_eq!(acq, vec![(w[1], "x".into(), src.clone()), (w[2], "x".into(), src)]);

    h.acquired(w[1], "x", Some(10));
    // The client learns the new holders; the request is not done yet.
    let msgs = h.comm.take_clients();
    assert!(
        msgs.iter()
            .any(|(_, m)| matches!(m, ToClient::KeyInMemory { workers, .. } if workers.len() == 2)),
        "{msgs:?}"
    );
    assert!(!msgs.iter().any(|(_, m)| matches!(m, ToClient::Reply { .. })));
    h.acquired(w[2], "x", Some(10));
    assert!(matches!(&h.replies()[..], [(rid, Ok(Reply::Done))] if *rid == id));
    assert_eq!(h.who_has("x"), {
        let mut all = w.clone();
        all.sort();
        all
    });
    for &wi in &w {
        assert_eq!(h.s.workers[wi].nbytes, 10);
    }
    assert!(h.comm.take_workers().is_empty(), "replicate frees nothing");

    // The original holder dies: the data is still in memory elsewhere.
    h.s.on_worker_lost(w[0], None, &mut h.comm);
    h.s.check_invariants();
    assert_eq!(h.s.task_by_key("x").unwrap().1.state, TaskState::Memory);
    assert_eq!(h.who_has("x").len(), 2);
    h.comm.take_workers();

    // Already on as many workers as asked: nothing to do.
    assert!(matches!(h.ask(Request::Replicate { keys: vec!["x".into()], n: 2 }), Ok(Reply::Done)));
    assert!(h.comm.take_workers().is_empty());
}

#[test]
fn replicate_to_n_picks_the_least_loaded_workers_and_spreads_sources() {
    let (mut h, w) = H::new(&["a", "b", "c", "d"]);
    h.scatter("big", 1000, &[w[1]]);
    h.scatter("x", 10, &[w[0], w[3]]);
    h.request(Request::Replicate { keys: vec!["x".into()], n: 3 });
    let acq = h.acquires();
    assert_eq!(acq.len(), 1);
    assert_eq!(acq[0].0, w[2], "the worker without data gets the copy, not the loaded one");
}

#[test]
fn bad_replicate_and_rebalance_requests_are_refused() {
    let (mut h, w) = H::new(&["a", "b"]);
    h.scatter("x", 10, &[w[0]]);
    let spec = TaskSpec {
        key: Key::from("t"),
        func: Arc::from("f"),
        args: vec![Arg::Value(Payload::from(vec![1u8]))],
        options: Default::default(),
    };
    h.client_msg(ClientMsg::UpdateGraph { tasks: vec![spec], wanted: vec!["t".into()] });
    h.comm.take_workers();
    let invalid = |r: Result<Reply, RequestError>, needle: &str| match r {
        Err(e) => {
            assert_eq!(e.kind, RequestErrorKind::InvalidArgument);
            assert!(e.message.contains(needle), "{needle:?} not in {:?}", e.message);
        }
        other => panic!("expected an error, got {other:?}"),
    };
    invalid(h.ask(Request::Replicate { keys: vec!["x".into()], n: 0 }), "n >= 1");
    invalid(h.ask(Request::Replicate { keys: vec!["nope".into()], n: 2 }), "does not know");
    invalid(h.ask(Request::Replicate { keys: vec!["t".into()], n: 2 }), "processing");
    invalid(h.ask(Request::Rebalance { keys: Some(vec!["t".into()]) }), "wait for it");
    assert!(h.comm.take_workers().is_empty());
}

#[test]
fn a_failed_or_lost_transfer_fails_the_request_with_names() {
    let (mut h, w) = H::new(&["a", "b", "c"]);
    h.scatter("x", 10, &[w[0]]);
    let id = h.request(Request::Replicate { keys: vec!["x".into()], n: 3 });
    h.acquires();
    h.acquired(w[1], "x", None);
    assert!(h.replies().is_empty());
    h.s.on_worker_lost(w[2], None, &mut h.comm);
    h.s.check_invariants();
    match &h.replies()[..] {
        [(rid, Err(e))] => {
            assert_eq!(*rid, id);
            assert_eq!(e.kind, RequestErrorKind::Failed);
            assert!(e.message.contains("2 of 2"), "{}", e.message);
            assert!(
                e.message.contains("worker b could not fetch x from worker a"),
                "{}",
                e.message
            );
            assert!(e.message.contains("worker c left"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.who_has("x"), vec![w[0]]);
    // A late report of a transfer nobody waits for still records the copy.
    h.acquired(w[1], "x", Some(10));
    assert_eq!(h.who_has("x").len(), 2);
}

#[test]
fn rebalance_moves_bytes_to_the_mean_and_frees_senders_only_after_receipt() {
    let (mut h, w) = H::new(&["a", "b", "c"]);
    for i in 0..12 {
        h.scatter(&format!("k{i}"), 100, &[w[0]]);
    }
    let id = h.request(Request::Rebalance { keys: None });
    let acq = h.acquires();
    assert_eq!(acq.len(), 8, "{acq:?}");
    assert_eq!(acq.iter().filter(|a| a.0 == w[1]).count(), 4);
    assert_eq!(acq.iter().filter(|a| a.0 == w[2]).count(), 4);
    assert!(acq.iter().all(|a| a.2 == vec![w[0].to_wire()]));
    for (i, (r, key, _)) in acq.iter().enumerate() {
        // Until the receiver confirms, the sender keeps its copy.
        assert!(h.who_has(key).contains(&w[0]));
        h.acquired(*r, key, Some(100));
        let msgs = h.comm.take_workers();
        assert_eq!(msgs.len(), 1);
        assert!(
            matches!(&msgs[0], (to, ToWorker::Free { keys }) if *to == w[0] && keys[0].as_str() == key)
        );
        assert_eq!(h.who_has(key), vec![*r]);
        let replies = h.replies();
        if i + 1 < acq.len() {
            assert!(replies.is_empty());
        } else {
            assert!(matches!(&replies[..], [(rid, Ok(Reply::Done))] if *rid == id));
        }
    }
    for &wi in &w {
        assert_eq!(h.s.workers[wi].nbytes, 400);
    }
    // Balanced now: nothing moves.
    assert!(matches!(h.ask(Request::Rebalance { keys: None }), Ok(Reply::Done)));
    assert!(h.comm.take_workers().is_empty());
}

#[test]
fn rebalance_of_some_keys_moves_only_those() {
    let (mut h, w) = H::new(&["a", "b"]);
    for i in 0..4 {
        h.scatter(&format!("k{i}"), 100, &[w[0]]);
    }
    h.request(Request::Rebalance { keys: Some(vec!["k3".into()]) });
    let acq = h.acquires();
    assert_eq!(acq.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(), ["k3"]);
}

#[test]
fn a_key_released_during_its_move_is_freed_on_the_receiver() {
    let (mut h, w) = H::new(&["a", "b"]);
    h.scatter("k0", 100, &[w[0]]);
    h.scatter("k1", 100, &[w[0]]);
    let id = h.request(Request::Rebalance { keys: None });
    let acq = h.acquires();
    assert_eq!(acq.len(), 1);
    let key = acq[0].1.clone();
    h.client_msg(ClientMsg::Release { keys: vec![Key::from(key.as_str())] });
    assert!(h.s.task_by_key(&key).is_none());
    h.comm.take_workers();
    h.acquired(w[1], &key, Some(100));
    let msgs = h.comm.take_workers();
    assert!(matches!(&msgs[..], [(to, ToWorker::Free { .. })] if *to == w[1]), "{msgs:?}");
    assert!(matches!(&h.replies()[..], [(rid, Ok(Reply::Done))] if *rid == id));
}

#[test]
fn profile_counts_finished_tasks_per_function_and_worker() {
    let (mut h, w) = H::new(&["a", "b"]);
    let spec = |key: &str, func: &str| TaskSpec {
        key: Key::from(key),
        func: Arc::from(func),
        args: vec![Arg::Value(Payload::from(key.as_bytes().to_vec()))],
        options: Default::default(),
    };
    let tasks = vec![spec("f1", "f"), spec("f2", "f"), spec("f3", "f"), spec("g1", "g")];
    let wanted = tasks.iter().map(|t| t.key.clone()).collect();
    h.client_msg(ClientMsg::UpdateGraph { tasks, wanted });
    let mut durations = [("f1", 100), ("f2", 200), ("f3", 300), ("g1", 5000)].into_iter();
    let mut failed_one = false;
    loop {
        let sent: Vec<_> = h
            .comm
            .take_workers()
            .into_iter()
            .filter_map(|(wk, m)| match m {
                ToWorker::Compute(ct) => Some((wk, ct.task, ct.spec.key.to_string())),
                _ => None,
            })
            .collect();
        if sent.is_empty() {
            break;
        }
        for (wk, task, key) in sent {
            if key == "f3" && !failed_one {
                // Failures carry no run time and are not counted.
                failed_one = true;
                let failure = TaskFailure::new(FailureKind::Error, "boom");
                h.worker_msg(wk, WorkerMsg::TaskFailed { task, failure });
                continue;
            }
            let (_, us) = durations.find(|(k, _)| *k == key).expect("known");
            h.worker_msg(
                wk,
                WorkerMsg::TaskFinished { task, nbytes: 1, value: None, duration_us: us },
            );
        }
    }
    let p = h.s.profile();
    assert_eq!(p.functions.len(), 2);
    assert_eq!(p.functions[0].function, "g", "most time first");
    let f = p.function("f").expect("f ran");
    assert_eq!(f.count, 2);
    assert_eq!(f.total, Duration::from_micros(300));
    assert_eq!(f.workers.iter().map(|x| x.count).sum::<u64>(), 2);
    assert_eq!(f.mean(), Duration::from_micros(150));
    let g = p.function("g").expect("g ran");
    assert_eq!((g.count, g.total), (1, Duration::from_millis(5)));
    assert_eq!(g.workers.len(), 1);

    // A worker that leaves stays in the profile.
    let g_worker = g.workers[0].worker.clone();
    let gone = if g_worker == "a" { w[0] } else { w[1] };
    h.s.on_worker_lost(gone, None, &mut h.comm);
    assert_eq!(h.s.profile().function("g").unwrap().workers[0].worker, g_worker);
    match h.ask(Request::Profile) {
        Ok(Reply::Profile(p)) => assert_eq!(p.function("f").map(|f| f.count), Some(2)),
        other => panic!("{other:?}"),
    }
}

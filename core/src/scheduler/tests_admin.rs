//! Sans-IO tests of cluster administration (runs on workers, waiting for
//! workers, uploaded files, restart, shutdown) and of events.

use super::tests::{computes, keys, payload, spec, H};
use super::*;
use crate::error::{FailureKind, TaskFailure};
use crate::protocol::{
    ClientMsg, Payload, Reply, Request, RequestError, RequestErrorKind, ToClient, ToWorker,
    WorkerMsg,
};

fn request(h: &mut H, c: ClientId, id: u64, req: Request) {
    h.client_msg(c, ClientMsg::Request { id, req });
}

/// The replies sent to `c`, by request id.
fn replies(msgs: &[(ClientId, ToClient)], c: ClientId) -> Vec<(u64, Result<Reply, RequestError>)> {
    msgs.iter()
        .filter(|(to, _)| *to == c)
        .filter_map(|(_, m)| match m {
            ToClient::Reply { id, reply } => Some((*id, reply.clone())),
            _ => None,
        })
        .collect()
}

fn runs(msgs: &[(WorkerId, ToWorker)]) -> Vec<(WorkerId, u64, String)> {
    msgs.iter()
        .filter_map(|(w, m)| match m {
            ToWorker::Run { id, func, .. } => Some((*w, *id, func.to_string())),
            _ => None,
        })
        .collect()
}

fn files(msgs: &[(WorkerId, ToWorker)]) -> Vec<(WorkerId, String, Payload)> {
    msgs.iter()
        .filter_map(|(w, m)| match m {
            ToWorker::File { name, data } => Some((*w, name.clone(), data.clone())),
            _ => None,
        })
        .collect()
}

fn run_reply(reply: &Result<Reply, RequestError>) -> Vec<(String, Result<Payload, TaskFailure>)> {
    match reply {
        Ok(Reply::Run(results)) => results.clone(),
        other => panic!("expected a run reply, got {other:?}"),
    }
}

fn run_req(workers: Option<&[&str]>) -> Request {
    Request::Run {
        workers: workers.map(|ws| ws.iter().map(|w| w.to_string()).collect()),
        func: Arc::from("f"),
        args: vec![payload(b"x")],
    }
}

#[test]
fn run_collects_every_workers_answer_and_errors_for_the_dead() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let w3 = h.worker("w3", 1, &["f"]);
    let c = h.client("c");
    h.comm.take_workers();
    request(&mut h, c, 7, run_req(None));
    let sent = runs(&h.comm.take_workers());
    assert_eq!(sent.len(), 3);
    let id = sent[0].1;
    assert!(sent.iter().all(|(_, i, f)| *i == id && f == "f"));
    assert!(h.comm.take_clients().is_empty(), "answered before the workers did");

    h.worker_msg(w2, WorkerMsg::RunResult { id, result: Ok(payload(b"2")) });
    let failure = TaskFailure::new(FailureKind::Panic, "boom");
    h.worker_msg(w1, WorkerMsg::RunResult { id, result: Err(failure.clone()) });
    // A duplicate or foreign answer changes nothing.
    h.worker_msg(w1, WorkerMsg::RunResult { id, result: Ok(payload(b"again")) });
    h.worker_msg(w2, WorkerMsg::RunResult { id: id + 100, result: Ok(payload(b"?")) });
    assert!(replies(&h.comm.take_clients(), c).is_empty());

    h.lose_worker(w3, Some(9));
    let r = replies(&h.comm.take_clients(), c);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, 7);
    let results = run_reply(&r[0].1);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], ("w1".to_string(), Err(failure)));
    assert_eq!(results[1], ("w2".to_string(), Ok(payload(b"2"))));
    assert_eq!(results[2].0, "w3");
    let dead = results[2].1.clone().unwrap_err();
    assert_eq!(dead.kind, FailureKind::KilledWorker { worker: "w3".into(), exit_code: Some(9) });
}

#[test]
fn run_on_chosen_workers_and_unknown_names() {
    let mut h = H::new();
    let _w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    h.comm.take_workers();
    request(&mut h, c, 1, run_req(Some(&["w2", "w2"])));
    let sent = runs(&h.comm.take_workers());
    assert_eq!(sent.iter().map(|s| s.0).collect::<Vec<_>>(), vec![w2]);
    h.worker_msg(w2, WorkerMsg::RunResult { id: sent[0].1, result: Ok(payload(b"ok")) });
    let r = replies(&h.comm.take_clients(), c);
    assert_eq!(run_reply(&r[0].1), vec![("w2".to_string(), Ok(payload(b"ok")))]);

    request(&mut h, c, 2, run_req(Some(&["w1", "nope"])));
    assert!(runs(&h.comm.take_workers()).is_empty(), "nothing runs when a name is wrong");
    match &replies(&h.comm.take_clients(), c)[..] {
        [(2, Err(e))] => {
            assert_eq!(e.kind, RequestErrorKind::InvalidArgument);
            assert!(e.message.contains("nope") && e.message.contains("w1"), "{}", e.message);
        }
        other => panic!("unexpected {other:?}"),
    }

    // No workers: an empty answer at once.
    let mut h = H::new();
    let c = h.client("c");
    request(&mut h, c, 3, run_req(None));
    assert_eq!(run_reply(&replies(&h.comm.take_clients(), c)[0].1), vec![]);
}

#[test]
fn run_of_a_client_that_left_is_dropped() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    request(&mut h, c, 1, run_req(None));
    let id = runs(&h.comm.take_workers())[0].1;
    h.client_msg(c, ClientMsg::Close);
    h.worker_msg(w, WorkerMsg::RunResult { id, result: Ok(payload(b"late")) });
    assert!(replies(&h.comm.take_clients(), c).is_empty());
    assert!(h.s.admin.runs.is_empty());
}

#[test]
fn wait_for_workers_answers_when_enough_joined() {
    let mut h = H::new();
    let c = h.client("c");
    request(&mut h, c, 1, Request::WaitForWorkers { n: 0 });
    assert_eq!(replies(&h.comm.take_clients(), c).len(), 1);
    request(&mut h, c, 2, Request::WaitForWorkers { n: 2 });
    request(&mut h, c, 3, Request::WaitForWorkers { n: 1 });
    h.worker("w1", 1, &[]);
    let r = replies(&h.comm.take_clients(), c);
    assert_eq!(r.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3]);
    h.worker("w2", 1, &[]);
    let r = replies(&h.comm.take_clients(), c);
    assert_eq!(r.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2]);
    assert!(matches!(r[0].1, Ok(Reply::Done)));

    // A waiter whose client left is forgotten.
    let d = h.client("d");
    request(&mut h, d, 4, Request::WaitForWorkers { n: 3 });
    h.client_msg(d, ClientMsg::Close);
    h.worker("w3", 1, &[]);
    assert!(replies(&h.comm.take_clients(), d).is_empty());
    assert!(h.s.admin.waiters.is_empty());
}

#[test]
fn uploaded_files_reach_current_and_later_workers() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &[]);
    let c = h.client("c");
    h.comm.take_workers();
    let upload =
        |name: &str, data: &[u8]| Request::UploadFile { name: name.into(), data: payload(data) };
    request(&mut h, c, 1, upload("a.txt", b"one"));
    assert_eq!(files(&h.comm.take_workers()), vec![(w1, "a.txt".into(), payload(b"one"))]);
    request(&mut h, c, 2, upload("b.txt", b"two"));
    request(&mut h, c, 3, upload("a.txt", b"uno"));
    h.comm.take_workers();
    assert!(replies(&h.comm.take_clients(), c).iter().all(|r| matches!(r.1, Ok(Reply::Done))));

    let w2 = h.worker("w2", 1, &[]);
    let got = files(&h.comm.take_workers());
    assert_eq!(
        got,
        vec![(w2, "a.txt".into(), payload(b"uno")), (w2, "b.txt".into(), payload(b"two"))],
        "a late worker gets every file, latest version"
    );

    for bad in ["", "..", "dir/x", "a\\b"] {
        request(&mut h, c, 9, upload(bad, b"x"));
        match &replies(&h.comm.take_clients(), c)[..] {
            [(9, Err(e))] => assert_eq!(e.kind, RequestErrorKind::InvalidArgument),
            other => panic!("name {bad:?}: unexpected {other:?}"),
        }
    }
    assert!(files(&h.comm.take_workers()).is_empty());
    assert_eq!(h.s.uploaded_files().count(), 2);
}

#[test]
fn restart_forgets_tasks_restarts_workers_and_answers_when_they_are_back() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("c");
    let other = h.client("other");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["a", "b"]);
    h.submit(other, vec![spec("x", "f", &[])], &["x"]);
    h.finish_key("a", 1);
    request(&mut h, c, 5, run_req(Some(&["w1"])));
    h.comm.take_workers();
    h.comm.take_clients();

    request(&mut h, c, 6, Request::Restart);
    assert_eq!(h.s.task_count(), 0);
    assert_eq!(h.s.workers().count(), 0);
    let to_workers = h.comm.take_workers();
    let mut restarted: Vec<WorkerId> = to_workers
        .iter()
        .filter(|(_, m)| matches!(m, ToWorker::Restart))
        .map(|(w, _)| *w)
        .collect();
    restarted.sort();
    let mut expected = vec![w1, w2];
    expected.sort();
    assert_eq!(restarted, expected);
    let msgs = h.comm.take_clients();
    for client in [c, other] {
        assert!(msgs.iter().any(|(to, m)| *to == client && matches!(m, ToClient::Restarted)));
    }
    // The pending run fails for its worker; the restart itself is not answered yet.
    let r = replies(&msgs, c);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, 5);
    assert!(run_reply(&r[0].1)[0].1.as_ref().unwrap_err().message.contains("restarted"));

    // Old workers' late messages are ignored.
    h.worker_msg(w1, WorkerMsg::TaskFinished { task: 1, nbytes: 1, value: None, duration_us: 1 });
    h.lose_worker(w2, None);

    h.worker("w1", 1, &["f"]);
    assert!(replies(&h.comm.take_clients(), c).is_empty());
    h.worker("w2", 1, &["f"]);
    let r = replies(&h.comm.take_clients(), c);
    assert_eq!(r.len(), 1);
    assert!(matches!(r[0], (6, Ok(Reply::Done))));

    // Work runs again; releases of forgotten keys are ignored.
    h.release(c, &["a", "b"]);
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    assert_eq!(computes(&h.comm.take_workers()).len(), 1);
    h.release(other, &["x"]);
    assert_eq!(h.s.client_count(), 2);
    let _ = keys(&["a"]);
}

#[test]
fn shutdown_stops_workers_and_the_scheduler() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &[]);
    let c = h.client("c");
    h.comm.take_workers();
    assert!(!h.s.stopping());
    request(&mut h, c, 1, Request::Shutdown);
    assert!(h.s.stopping());
    assert!(matches!(&h.comm.take_workers()[..], [(to, ToWorker::Shutdown)] if *to == w));
    assert!(matches!(replies(&h.comm.take_clients(), c)[..], [(1, Ok(Reply::Done))]));
}

#[test]
fn run_on_scheduler_without_a_driver_is_refused() {
    let mut h = H::new();
    let c = h.client("c");
    request(&mut h, c, 1, Request::RunOnScheduler { func: Arc::from("f"), args: vec![] });
    assert!(matches!(replies(&h.comm.take_clients(), c)[..], [(1, Err(_))]));
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

fn log(h: &mut H, c: ClientId, topic: &str, time: f64, data: &[u8]) {
    request(h, c, 0, Request::LogEvent { topic: topic.into(), time, data: payload(data) });
}

fn events_of(msgs: &[(ClientId, ToClient)], c: ClientId) -> Vec<(String, f64, Payload)> {
    msgs.iter()
        .filter(|(to, _)| *to == c)
        .filter_map(|(_, m)| match m {
            ToClient::Event { topic, time, data } => Some((topic.clone(), *time, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn events_go_to_subscribers_of_their_topic_only() {
    let mut h = H::new();
    let a = h.client("a");
    let b = h.client("b");
    request(&mut h, b, 1, Request::Subscribe { topic: "t".into() });
    request(&mut h, b, 2, Request::Subscribe { topic: "t".into() });
    h.comm.take_clients();
    log(&mut h, a, "t", 1.0, b"one");
    log(&mut h, a, "other", 2.0, b"two");
    log(&mut h, b, "t", 3.0, b"three");
    let msgs = h.comm.take_clients();
    assert!(events_of(&msgs, a).is_empty());
    assert_eq!(
        events_of(&msgs, b),
        vec![("t".into(), 1.0, payload(b"one")), ("t".into(), 3.0, payload(b"three"))],
        "one copy per event even after subscribing twice"
    );
    request(&mut h, b, 3, Request::Unsubscribe { topic: "t".into() });
    log(&mut h, a, "t", 4.0, b"four");
    assert!(events_of(&h.comm.take_clients(), b).is_empty());

    request(&mut h, a, 4, Request::GetEvents { topic: "t".into() });
    match &replies(&h.comm.take_clients(), a)[..] {
        [(4, Ok(Reply::Events(evs)))] => {
            assert_eq!(evs.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1.0, 3.0, 4.0])
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(h.s.events("never").is_empty());

    // A subscriber that leaves gets nothing more.
    request(&mut h, b, 5, Request::Subscribe { topic: "t".into() });
    h.client_msg(b, ClientMsg::Close);
    log(&mut h, a, "t", 5.0, b"five");
    assert!(events_of(&h.comm.take_clients(), b).is_empty());
}

#[test]
fn event_history_is_bounded() {
    let mut h = H::new();
    let a = h.client("a");
    for i in 0..EVENT_HISTORY + 5 {
        log(&mut h, a, "t", i as f64, b"x");
    }
    let evs = h.s.events("t");
    assert_eq!(evs.len(), EVENT_HISTORY);
    assert_eq!(evs[0].0, 5.0, "the oldest events are dropped first");
    assert_eq!(evs.last().unwrap().0, (EVENT_HISTORY + 4) as f64);
}

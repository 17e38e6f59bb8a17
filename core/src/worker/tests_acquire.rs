//! Tests of keys fetched to keep (replicate, rebalance): they go through the
//! peer-fetch machinery, end up held like results, and every key asked for
//! is answered exactly once.

use super::*;
use crate::protocol::{DepLocation, Payload, ToWorker, WorkerMsg};
use std::cmp::Reverse;

const ME: u64 = 1;

fn worker() -> Worker {
    let mut w = Worker::new(ME, 1);
    w.add_peer(2, "addr-2".into());
    w.add_peer(3, "addr-3".into());
    w
}

fn acquire(items: &[(&str, &[u64])]) -> ToWorker {
    ToWorker::Acquire {
        keys: items
            .iter()
            .map(|(k, ws)| DepLocation { key: Key::from(*k), workers: ws.to_vec() })
            .collect(),
    }
}

fn acquired(out: &mut Outbox) -> Vec<(String, Option<u64>)> {
    std::mem::take(&mut out.to_scheduler)
        .into_iter()
        .filter_map(|m| match m {
            WorkerMsg::Acquired { key, nbytes } => Some((key.to_string(), nbytes)),
            _ => None,
        })
        .collect()
}

fn p(b: &[u8]) -> Payload {
    Payload::from(b.to_vec())
}

#[test]
fn acquired_keys_are_fetched_from_the_named_peer_kept_and_reported() {
    let mut w = worker();
    let mut out = Outbox::default();
    w.on_scheduler_message(acquire(&[("x", &[3]), ("y", &[3]), ("z", &[2])]), &mut out);
    assert!(acquired(&mut out).is_empty(), "nothing fetched yet");
    let mut fetches = std::mem::take(&mut out.fetches);
    fetches.sort_by_key(|f| f.worker);
    assert_eq!(
        fetches,
        vec![
            Fetch { worker: 2, addr: "addr-2".into(), keys: vec!["z".into()] },
            Fetch { worker: 3, addr: "addr-3".into(), keys: vec!["x".into(), "y".into()] },
        ]
    );
    assert_eq!(w.acquiring(), 3);
    w.on_fetched(3, vec![("x".into(), Some(p(b"xx"))), ("y".into(), None)], &mut out);
    assert_eq!(acquired(&mut out), vec![("x".into(), Some(2)), ("y".into(), None)]);
    w.on_fetch_failed(2, vec!["z".into()], &mut out);
    assert_eq!(acquired(&mut out), vec![("z".into(), None)]);
    assert_eq!(w.acquiring(), 0);
    let held = w.get_data(&["x".into(), "y".into(), "z".into()]);
    assert_eq!(held[0].1, Some(p(b"xx")), "kept like a result");
    assert!(held[1].1.is_none() && held[2].1.is_none());
    // Held keys are freed like results.
    w.on_scheduler_message(ToWorker::Free { keys: vec!["x".into()] }, &mut out);
    assert!(w.get_data(&["x".into()])[0].1.is_none());
}

#[test]
fn keys_already_here_are_answered_at_once() {
    let mut w = worker();
    let mut out = Outbox::default();
    w.put_data(vec![("x".into(), p(b"abc"))]);
    w.on_scheduler_message(acquire(&[("x", &[2])]), &mut out);
    assert_eq!(acquired(&mut out), vec![("x".into(), Some(3))]);
    assert!(out.fetches.is_empty());
    // No known holder: answered as failed, nothing fetched.
    w.on_scheduler_message(acquire(&[("y", &[9])]), &mut out);
    assert_eq!(acquired(&mut out), vec![("y".into(), None)]);
    assert!(out.fetches.is_empty());
    assert_eq!(w.acquiring(), 0);
}

#[test]
fn an_acquire_shares_a_dependency_fetch_in_flight_and_keeps_its_data() {
    let mut w = worker();
    let mut out = Outbox::default();
    let ct = ComputeTask {
        task: 7,
        spec: TaskSpec {
            key: "t".into(),
            func: Arc::from("f"),
            args: vec![Arg::Dep("d".into())],
            options: Default::default(),
        },
        deps: vec![DepLocation { key: "d".into(), workers: vec![2] }],
        order: (0, Reverse(0), Reverse(7)),
    };
    w.on_scheduler_message(ToWorker::Compute(Box::new(ct)), &mut out);
    assert_eq!(std::mem::take(&mut out.fetches).len(), 1);
    w.on_scheduler_message(acquire(&[("d", &[3])]), &mut out);
    assert!(out.fetches.is_empty(), "the fetch in flight serves both");
    assert!(acquired(&mut out).is_empty());
    w.on_fetched(2, vec![("d".into(), Some(p(b"dd")))], &mut out);
    assert_eq!(acquired(&mut out), vec![("d".into(), Some(2))]);
    assert_eq!(out.executes.len(), 1, "the task got its dependency too");
    let e = out.executes.pop().expect("one");
    w.on_task_done(e.task, Ok(p(b"r")), 10, &mut out);
    assert_eq!(w.get_data(&["d".into()])[0].1, Some(p(b"dd")), "kept after the task");
}

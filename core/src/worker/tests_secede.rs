//! Tests of seceding: a running task that gives its slot back lets another
//! task start, is reported to the scheduler once, and takes a slot again on
//! rejoin.

use super::*;

fn root(task: u64) -> ToWorker {
    ToWorker::Compute(Box::new(ComputeTask {
        task,
        spec: TaskSpec {
            key: Key::from(format!("k{task}")),
            func: Arc::from("f"),
            args: vec![Arg::Value(Payload::from(vec![task as u8]))],
            options: Default::default(),
        },
        deps: Vec::new(),
        order: (0, std::cmp::Reverse(0), std::cmp::Reverse(task)),
    }))
}

/// A two-slot worker given tasks 0..n; returns it and the ids it started.
fn busy(n: u64) -> (Worker, Outbox, Vec<u64>) {
    let mut w = Worker::new(1, 2);
    let mut out = Outbox::default();
    for t in 0..n {
        w.on_scheduler_message(root(t), &mut out);
    }
    let started = out.executes.drain(..).map(|e| e.task).collect();
    (w, out, started)
}

fn started(out: &mut Outbox) -> Vec<u64> {
    out.executes.drain(..).map(|e| e.task).collect()
}

fn long_running(out: &mut Outbox) -> Vec<u64> {
    out.to_scheduler
        .drain(..)
        .filter_map(|m| match m {
            WorkerMsg::LongRunning { task } => Some(task),
            _ => None,
        })
        .collect()
}

const LONG: u64 = 1_000_000;

#[test]
fn seceding_starts_the_next_task_and_tells_the_scheduler_once() {
    let (mut w, mut out, s) = busy(5);
    assert_eq!(s, vec![0, 1]);
    w.on_secede(0, &mut out);
    assert_eq!(started(&mut out), vec![2], "the freed slot runs the next task");
    assert_eq!(long_running(&mut out), vec![0]);
    assert_eq!(w.executing(), 2);

    w.on_secede(0, &mut out);
    assert!(started(&mut out).is_empty(), "seceding twice frees one slot");
    assert!(long_running(&mut out).is_empty());

    // The seceded task ends: no slot was held, so none is freed.
    w.on_task_done(0, Ok(Payload::from(vec![0])), LONG, &mut out);
    assert!(started(&mut out).is_empty());
    assert_eq!(w.executing(), 2);
    assert!(matches!(out.to_scheduler.as_slice(), [WorkerMsg::TaskFinished { task: 0, .. }]));
}

#[test]
fn rejoining_takes_a_slot_again() {
    let (mut w, mut out, _) = busy(5);
    w.on_secede(0, &mut out);
    assert_eq!(started(&mut out), vec![2]);
    w.on_rejoin(0);
    assert_eq!(w.executing(), 3, "over the slots until a task ends");
    w.on_rejoin(0);
    assert_eq!(w.executing(), 3, "rejoining twice takes one slot");

    w.on_task_done(1, Ok(Payload::from(vec![1])), LONG, &mut out);
    assert!(started(&mut out).is_empty(), "still two running: 0 and 2");
    w.on_task_done(0, Ok(Payload::from(vec![0])), LONG, &mut out);
    assert_eq!(started(&mut out), vec![3], "the rejoined task's end frees its slot");
    assert_eq!(w.executing(), 2);
}

#[test]
fn secede_of_a_task_not_running_is_ignored() {
    let (mut w, mut out, _) = busy(5);
    w.on_secede(4, &mut out);
    w.on_secede(99, &mut out);
    w.on_rejoin(99);
    assert!(started(&mut out).is_empty());
    assert!(long_running(&mut out).is_empty());
    assert_eq!(w.executing(), 2);
}

#[test]
fn a_seceded_task_that_finishes_before_its_secede_arrives_counts_once() {
    // The completion and the secede travel on different channels.
    let (mut w, mut out, _) = busy(5);
    w.on_task_done(0, Ok(Payload::from(vec![0])), LONG, &mut out);
    assert_eq!(started(&mut out), vec![2]);
    w.on_secede(0, &mut out);
    w.on_rejoin(0);
    assert!(started(&mut out).is_empty());
    assert_eq!(w.executing(), 2);
}

#[test]
fn cancelled_seceded_task_still_frees_exactly_its_slot() {
    let (mut w, mut out, _) = busy(5);
    w.on_scheduler_message(ToWorker::Free { keys: vec![Key::from("k0")] }, &mut out);
    w.on_secede(0, &mut out);
    assert_eq!(started(&mut out), vec![2]);
    w.on_task_done(0, Ok(Payload::from(vec![0])), LONG, &mut out);
    assert!(started(&mut out).is_empty());
    assert_eq!(w.executing(), 2);
}

//! Tests of the worker under memory pressure: a paused worker starts no task
//! but keeps serving data and resumes where it stopped; spilled results are
//! read back for tasks and peers.

use super::*;
use bytes::Bytes;

fn task(task: u64, args: Vec<Arg>) -> ToWorker {
    ToWorker::Compute(Box::new(ComputeTask {
        task,
        spec: TaskSpec {
            key: Key::from(format!("k{task}")),
            func: Arc::from("f"),
            args,
            options: Default::default(),
        },
        deps: Vec::new(),
        order: (0, std::cmp::Reverse(0), std::cmp::Reverse(task)),
    }))
}

fn root(t: u64) -> ToWorker {
    task(t, vec![Arg::Value(Payload::from(vec![t as u8]))])
}

fn started(out: &mut Outbox) -> Vec<u64> {
    out.executes.drain(..).map(|e| e.task).collect()
}

fn paused_msgs(out: &mut Outbox) -> Vec<bool> {
    out.to_scheduler
        .drain(..)
        .filter_map(|m| match m {
            WorkerMsg::Paused { paused } => Some(paused),
            _ => None,
        })
        .collect()
}

#[test]
fn a_paused_worker_starts_nothing_and_resumes_on_unpause() {
    let mut w = Worker::new(1, 1);
    let mut out = Outbox::default();
    assert!(w.set_paused(true, &mut out));
    assert_eq!(paused_msgs(&mut out), vec![true]);
    assert!(!w.set_paused(true, &mut out), "pausing twice changes nothing");
    assert!(paused_msgs(&mut out).is_empty());
    w.on_scheduler_message(root(0), &mut out);
    w.on_scheduler_message(root(1), &mut out);
    assert!(started(&mut out).is_empty(), "nothing starts while paused");
    assert_eq!(w.task_count(), 2, "assigned tasks are kept");

    assert!(w.set_paused(false, &mut out));
    assert_eq!(started(&mut out), vec![0], "resuming starts what waited, up to the slots");
    assert_eq!(paused_msgs(&mut out), vec![false]);
}

#[test]
fn a_running_task_finishes_while_paused_and_the_next_waits() {
    let mut w = Worker::new(1, 1);
    let mut out = Outbox::default();
    w.on_scheduler_message(root(0), &mut out);
    w.on_scheduler_message(root(1), &mut out);
    assert_eq!(started(&mut out), vec![0]);
    w.set_paused(true, &mut out);
    w.on_task_done(0, Ok(Payload::from(vec![7u8])), 10, &mut out);
    assert!(started(&mut out).is_empty());
    assert!(out.to_scheduler.iter().any(|m| matches!(m, WorkerMsg::TaskFinished { task: 0, .. })));
    w.set_paused(false, &mut out);
    assert!(started(&mut out).contains(&1));
}

#[test]
fn a_paused_worker_serves_its_data() {
    let mut w = Worker::new(1, 1);
    let mut out = Outbox::default();
    w.put_data(vec![("x".into(), Payload::from(vec![1u8, 2]))]);
    w.set_paused(true, &mut out);
    assert_eq!(w.get_data(&["x".into()])[0].1.as_ref().map(Payload::len), Some(2));
}

/// Spilled data kept in a map.
#[derive(Debug, Default)]
struct Disk(FxHashMap<u64, Bytes>);

impl SpillBackend for Disk {
    fn write(&mut self, id: u64, data: &Bytes) -> Result<(), String> {
        self.0.insert(id, data.clone());
        Ok(())
    }
    fn read(&mut self, id: u64) -> Result<Bytes, String> {
        self.0.get(&id).cloned().ok_or_else(|| "missing".into())
    }
    fn remove(&mut self, id: u64) {
        self.0.remove(&id);
    }
}

#[test]
fn spilled_results_feed_tasks_peers_and_acquires() {
    let mut w = Worker::new(1, 1);
    w.store().set_backend(Box::new(Disk::default()));
    let mut out = Outbox::default();
    w.on_scheduler_message(root(0), &mut out);
    started(&mut out);
    w.on_task_done(0, Ok(Payload::from(vec![9u8; 100])), 10, &mut out);
    w.put_data(vec![("y".into(), Payload::from(vec![3u8; 50]))]);
    assert_eq!(w.store().spill_until(0, u64::MAX).keys, 2);
    assert_eq!(w.nbytes(), 0);

    // A dependent task gets the spilled result as its argument.
    let mut dependent = task(1, vec![Arg::Dep("k0".into())]);
    if let ToWorker::Compute(ct) = &mut dependent {
        ct.deps = vec![DepLocation { key: "k0".into(), workers: vec![1] }];
    }
    w.on_scheduler_message(dependent, &mut out);
    assert!(out.fetches.is_empty(), "a spilled key is held here, not fetched");
    let e = out.executes.pop().expect("the dependent starts");
    assert_eq!(e.args[0].as_bytes().map(|b| b.to_vec()), Some(vec![9u8; 100]));

    // A peer gets the other one.
    let got = w.get_data(&["y".into()]);
    assert_eq!(
        got[0].1.as_ref().and_then(|p| p.as_bytes()).map(|b| b.to_vec()),
        Some(vec![3u8; 50])
    );
    assert_eq!(w.store().spilled_count(), 0);

    // Freeing a spilled key drops it from disk.
    w.store().spill_until(0, u64::MAX);
    w.on_scheduler_message(ToWorker::Free { keys: vec!["k0".into(), "y".into()] }, &mut out);
    assert!(w.store().is_empty());
    assert_eq!(w.store().spilled_bytes(), 0);

    // An acquire of a spilled key answers with its size without reading it.
    w.put_data(vec![("z".into(), Payload::from(vec![1u8; 30]))]);
    w.store().spill_until(0, u64::MAX);
    w.on_scheduler_message(
        ToWorker::Acquire { keys: vec![DepLocation { key: "z".into(), workers: vec![2] }] },
        &mut out,
    );
    assert!(out
        .to_scheduler
        .iter()
        .any(|m| matches!(m, WorkerMsg::Acquired { nbytes: Some(30), .. })));
    assert!(w.store().is_spilled(&"z".into()));
}

//! Tests of the worker's resource accounting: tasks needing resources start
//! only while the totals leave room, in priority order, without holding back
//! other tasks, and give their resources back however they end.

use super::*;
use crate::graph::Restrictions;
use crate::protocol::ComputeTask;
use std::cmp::Reverse;

fn task(id: u64, priority: i32, gpus: f64) -> ToWorker {
    let mut spec = TaskSpec {
        key: Key::from(format!("t{id}")),
        func: Arc::from("f"),
        args: vec![Arg::Value(Payload::from(vec![1u8]))],
        options: Default::default(),
    };
    if gpus > 0.0 {
        spec.options.restrictions = Some(Arc::new(Restrictions {
            resources: vec![("GPU".into(), gpus)],
            ..Default::default()
        }));
    }
    ToWorker::Compute(Box::new(ComputeTask {
        task: id,
        spec,
        deps: Vec::new(),
        order: (priority, Reverse(0), Reverse(id)),
    }))
}

struct H {
    w: Worker,
    out: Outbox,
}

impl H {
    fn new(nthreads: usize, gpus: f64) -> H {
        let mut w = Worker::new(1, nthreads);
        w.set_resources(vec![("GPU".into(), gpus)]);
        H { w, out: Outbox::default() }
    }

    fn msg(&mut self, m: ToWorker) -> Vec<u64> {
        self.w.on_scheduler_message(m, &mut self.out);
        self.started()
    }

    fn done(&mut self, task: u64, ok: bool) -> Vec<u64> {
        let result = if ok {
            Ok(Payload::from(vec![1u8]))
        } else {
            Err(TaskFailure::new(FailureKind::Error, "x"))
        };
        self.w.on_task_done(task, result, 1_000_000, &mut self.out);
        self.started()
    }

    fn started(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.out.executes).into_iter().map(|e| e.task).collect()
    }

    fn gpus_in_use(&self) -> f64 {
        self.w.resources_in_use()[0].1
    }
}

#[test]
fn resource_tasks_wait_for_free_resources_without_blocking_others() {
    let mut h = H::new(4, 1.0);
    assert_eq!(h.msg(task(1, 0, 1.0)), vec![1]);
    assert_eq!(h.gpus_in_use(), 1.0);
    assert!(h.msg(task(2, 5, 1.0)).is_empty(), "the GPU is taken");
    assert!(h.msg(task(3, 0, 1.0)).is_empty());
    assert_eq!(h.msg(task(4, 0, 0.0)), vec![4], "plain tasks still start");
    // The freed GPU goes to the higher priority one first.
    assert_eq!(h.done(1, true), vec![2]);
    assert_eq!(h.gpus_in_use(), 1.0);
    assert_eq!(h.done(2, false), vec![3], "a failure frees the GPU too");
    assert_eq!(h.done(3, true), Vec::<u64>::new());
    assert_eq!(h.gpus_in_use(), 0.0);
}

#[test]
fn fractional_needs_share_a_resource() {
    let mut h = H::new(8, 1.0);
    let mut started = Vec::new();
    for id in 1..=5 {
        started.extend(h.msg(task(id, 0, 0.25)));
    }
    assert_eq!(started, vec![1, 2, 3, 4]);
    assert_eq!(h.done(2, true), vec![5]);
}

#[test]
fn cancelled_and_stolen_resource_tasks_give_back_what_they_hold() {
    let mut h = H::new(2, 1.0);
    assert_eq!(h.msg(task(1, 0, 1.0)), vec![1]);
    assert!(h.msg(task(2, 0, 1.0)).is_empty());
    assert!(h.msg(task(3, 0, 1.0)).is_empty());
    // Stealing a waiting task takes it out of the line.
    h.msg(ToWorker::Steal { task: 2 });
    assert!(matches!(
        h.out.to_scheduler.pop(),
        Some(WorkerMsg::StealResponse { task: 2, stolen: true })
    ));
    // The running one is released by the scheduler while it runs: it keeps
    // the GPU until it actually ends.
    h.msg(ToWorker::Free { keys: vec![Key::from("t1")] });
    assert_eq!(h.gpus_in_use(), 1.0);
    assert_eq!(h.done(1, true), vec![3]);
    assert!(h.out.to_scheduler.is_empty(), "a cancelled run reports nothing");
}

#[test]
fn task_needing_more_than_the_worker_offers_fails_at_once() {
    let mut h = H::new(2, 1.0);
    assert!(h.msg(task(1, 0, 2.0)).is_empty());
    match h.out.to_scheduler.pop() {
        Some(WorkerMsg::TaskFailed { task: 1, failure }) => {
            assert!(failure.message.contains("GPU"), "{}", failure.message)
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(h.msg(task(2, 0, 1.0)), vec![2], "nothing is held back by it");
}

//! Tests of the transition record worker plugins see: one task's full life
//! in order, and nothing recorded when tracking is off.

use super::WorkerTaskState::*;
use super::*;
use std::cmp::Reverse;

fn key(k: &str) -> Key {
    Key::from(k)
}

fn p(b: &[u8]) -> Payload {
    Payload::from(b.to_vec())
}

fn compute(task: u64, k: &str, deps: &[(&str, u64)]) -> ToWorker {
    let mut args: Vec<Arg> = deps.iter().map(|(d, _)| Arg::Dep(key(d))).collect();
    args.push(Arg::Value(p(k.as_bytes())));
    ToWorker::Compute(Box::new(ComputeTask {
        task,
        spec: TaskSpec { key: key(k), func: Arc::from("f"), args, options: Default::default() },
        deps: deps.iter().map(|(d, w)| DepLocation { key: key(d), workers: vec![*w] }).collect(),
        order: (0, Reverse(0), Reverse(task)),
    }))
}

struct H {
    w: Worker,
    out: Outbox,
}

impl H {
    fn new() -> Self {
        let mut w = Worker::new(1, 1);
        w.add_peer(2, "addr-2".into());
        H { w, out: Outbox::default() }
    }

    fn msg(&mut self, m: ToWorker) {
        self.w.on_scheduler_message(m, &mut self.out);
    }

    fn fetched(&mut self, from: u64, items: Vec<(&str, Option<Payload>)>) {
        let items = items.into_iter().map(|(k, v)| (key(k), v)).collect();
        self.w.on_fetched(from, items, &mut self.out);
    }

    fn done(&mut self, task: u64, result: TaskResult) {
        self.w.on_task_done(task, result, 1_000_000, &mut self.out);
    }
}

fn transitions(h: &mut H) -> Vec<(String, WorkerTaskState, WorkerTaskState)> {
    h.out.transitions.drain(..).map(|(k, f, t)| (k.to_string(), f, t)).collect()
}

#[test]
fn full_life_of_a_task_with_a_remote_dependency() {
    let mut h = H::new();
    h.w.set_track_transitions(true);
    h.msg(compute(10, "y", &[("x", 2)]));
    assert_eq!(transitions(&mut h), vec![("y".into(), Received, Fetching)]);
    h.fetched(2, vec![("x", Some(p(b"x")))]);
    assert_eq!(
        transitions(&mut h),
        vec![("y".into(), Fetching, Ready), ("y".into(), Ready, Executing)]
    );
    h.done(10, Ok(p(b"y")));
    assert_eq!(transitions(&mut h), vec![("y".into(), Executing, Memory)]);
    h.msg(ToWorker::Free { keys: vec![key("y")] });
    assert_eq!(transitions(&mut h), vec![("y".into(), Memory, Released)]);
}

#[test]
fn failures_steals_and_cancels_are_recorded() {
    let mut h = H::new();
    h.w.set_track_transitions(true);
    h.msg(compute(1, "a", &[]));
    h.msg(compute(2, "b", &[]));
    h.msg(ToWorker::Steal { task: 2 });
    h.msg(ToWorker::Free { keys: vec![key("a")] });
    h.done(1, Ok(p(b"a")));
    assert_eq!(
        transitions(&mut h),
        vec![
            ("a".into(), Received, Ready),
            ("a".into(), Ready, Executing),
            ("b".into(), Received, Ready),
            ("b".into(), Ready, Released),
            ("a".into(), Executing, Released),
        ]
    );
    h.msg(compute(3, "c", &[]));
    h.done(3, Err(TaskFailure::new(FailureKind::Error, "boom")));
    assert_eq!(transitions(&mut h).last().unwrap(), &("c".into(), Executing, Error));
}

#[test]
fn nothing_is_recorded_without_tracking() {
    let mut h = H::new();
    h.msg(compute(1, "a", &[]));
    h.done(1, Ok(p(b"a")));
    h.msg(ToWorker::Free { keys: vec![key("a")] });
    assert!(h.out.transitions.is_empty());
}

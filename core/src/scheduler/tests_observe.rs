//! Sans-IO tests of the scheduler's observation: counts by state and by
//! function, the transition counter, and the bounded task stream.

use super::tests::*;
use super::*;

#[test]
fn observe_counts_tasks_by_state_and_by_function() {
    let mut h = H::new();
    h.worker("w1", 1, &["f", "g"]);
    let c = h.client("c");
    h.submit(
        c,
        vec![spec("a", "f", &[]), spec("b", "f", &[]), spec("c", "g", &["a"])],
        &["b", "c"],
    );
    h.comm.take_workers();
    h.s.set_now(10_000);
    h.finish_key("a", 8);
    let o = h.s.observe(10);
    assert_eq!(o.tasks.memory, 1);
    assert_eq!(o.tasks.processing, 2, "b and c run now");
    assert_eq!(o.clients, 1);
    let f = o.functions.iter().find(|p| p.function == "f").expect("f");
    assert_eq!((f.done, f.states.memory, f.states.processing), (1, 1, 1));
    let g = o.functions.iter().find(|p| p.function == "g").expect("g");
    assert_eq!((g.done, g.states.processing), (0, 1));
    assert_eq!(o.workers.len(), 1);
    assert_eq!(
        (o.workers[0].name.as_str(), o.workers[0].keys, o.workers[0].managed_bytes),
        ("w1", 1, 8)
    );
    assert_eq!(o.stream.len(), 1);
    let r = &o.stream[0];
    // The test harness reports 500 µs per task.
    assert_eq!(
        (r.function.as_str(), r.worker.as_str(), r.start_us, r.stop_us),
        ("f", "w1", 9_500, 10_000)
    );
    let before = o.transitions;
    assert!(before >= 5, "{before}");
    h.finish_key("b", 8);
    assert!(h.s.observe(10).transitions > before);
}

#[test]
fn the_task_stream_keeps_only_the_most_recent_tasks() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let n = STREAM_CAPACITY as u64 + 5;
    for i in 0..n {
        s.set_now(1_000 + i);
        s.stream_finished(WorkerId::default(), FuncIdx(0), 0);
    }
    let o = s.observe(usize::MAX);
    assert_eq!(o.stream.len(), STREAM_CAPACITY);
    assert_eq!(o.stream.last().unwrap().stop_us, 1_000 + n - 1);
    assert_eq!(o.stream[0].stop_us, 1_000 + 5, "the oldest five were dropped");
    assert_eq!(s.observe(3).stream.len(), 3);
    assert_eq!(s.observe(3).stream[2].stop_us, 1_000 + n - 1, "the most recent ones");
}

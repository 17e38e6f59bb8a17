//! Tests of seceded (long-running) tasks: they stop counting toward their
//! worker's occupancy, so the tasks they wait on can run on the same worker.

use super::*;
use crate::graph::{Arg, Key, TaskOptions, TaskSpec};
use crate::protocol::{ClientMsg, Payload, ToWorker, WorkerMsg};
use task::TaskState;

struct H {
    s: Scheduler,
    comm: TestComm,
}

impl H {
    fn new() -> Self {
        H { s: Scheduler::new(SchedulerConfig::default()), comm: TestComm::default() }
    }

    fn worker(&mut self, name: &str, nthreads: u32) -> WorkerId {
        let hello = WorkerHello {
            name: name.into(),
            data_addr: format!("mem://{name}"),
            nthreads,
            catalog: vec![Arc::from("f")],
            resources: Vec::new(),
        };
        let w = self.s.on_worker_connected(&hello, &mut self.comm).expect("accepted");
        self.s.check_invariants();
        w
    }

    fn submit(&mut self, c: ClientId, names: &[String]) {
        let tasks = names
            .iter()
            .map(|k| TaskSpec {
                key: Key::from(k.as_str()),
                func: Arc::from("f"),
                args: vec![Arg::Value(Payload::from(k.as_bytes().to_vec()))],
                options: TaskOptions::default(),
            })
            .collect();
        let wanted = names.iter().map(|k| Key::from(k.as_str())).collect();
        self.s.on_client_message(c, ClientMsg::UpdateGraph { tasks, wanted }, &mut self.comm);
        self.s.check_invariants();
    }

    fn msg(&mut self, w: WorkerId, m: WorkerMsg) {
        self.s.on_worker_message(w, m, &mut self.comm);
        self.s.check_invariants();
    }

    fn wire(&self, key: &str) -> u64 {
        self.s.task_by_key(key).expect("known").0.to_wire()
    }

    fn state(&self, key: &str) -> TaskState {
        self.s.task_by_key(key).expect("known").1.state
    }

    /// Keys sent to workers since the last call.
    fn computes(&mut self) -> Vec<(WorkerId, String)> {
        self.comm
            .take_workers()
            .into_iter()
            .filter_map(|(w, m)| match m {
                ToWorker::Compute(ct) => Some((w, ct.spec.key.to_string())),
                _ => None,
            })
            .collect()
    }

    fn steals(&mut self) -> usize {
        self.comm.workers.iter().filter(|(_, m)| matches!(m, ToWorker::Steal { .. })).count()
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn seceded_task_frees_its_slot_for_a_queued_task() {
    let mut h = H::new();
    let w = h.worker("w", 1);
    let cap = h.s.capacity(w);
    let c = h.s.on_client_connected("c");
    let ks = names("r", cap + 3);
    h.submit(c, &ks);
    assert_eq!(h.computes().len(), cap);
    assert_eq!(h.s.busy(w), cap);

    h.msg(w, WorkerMsg::LongRunning { task: h.wire("r0") });
    assert_eq!(h.computes(), vec![(w, ks[cap].clone())], "the freed slot is refilled at once");
    assert_eq!(h.state("r0"), TaskState::Processing, "a seceded task still runs");
    assert_eq!(h.s.workers[w].long_running, 1);
    assert_eq!(h.s.busy(w), cap);

    // Reported twice: counted once.
    h.msg(w, WorkerMsg::LongRunning { task: h.wire("r0") });
    assert!(h.computes().is_empty());
    assert_eq!(h.s.workers[w].long_running, 1);

    // When it finishes, the count drops with it and no slot is freed twice.
    h.msg(
        w,
        WorkerMsg::TaskFinished { task: h.wire("r0"), nbytes: 1, value: None, duration_us: 500 },
    );
    assert_eq!(h.s.workers[w].long_running, 0);
    assert!(h.computes().is_empty(), "finishing a seceded task frees no slot");
    assert_eq!(h.s.busy(w), cap);
}

#[test]
fn a_chain_of_seceded_tasks_never_starves_a_one_slot_worker() {
    // Like a recursive Fibonacci: every task submits the next one and secedes
    // to wait for it. With one slot, each must still start.
    let mut h = H::new();
    let w = h.worker("w", 1);
    let c = h.s.on_client_connected("c");
    let depth = h.s.capacity(w) * 3;
    for i in 0..depth {
        let k = format!("n{i}");
        h.submit(c, std::slice::from_ref(&k));
        assert_eq!(h.computes(), vec![(w, k.clone())], "level {i} starts");
        h.msg(w, WorkerMsg::LongRunning { task: h.wire(&k) });
    }
    assert_eq!(h.s.workers[w].long_running, depth);
    assert_eq!(h.s.busy(w), 0);
}

#[test]
fn long_running_for_a_task_not_processing_there_is_ignored() {
    let mut h = H::new();
    let a = h.worker("a", 1);
    let b = h.worker("b", 1);
    let c = h.s.on_client_connected("c");
    h.submit(c, &names("x", 1));
    let (on, _) = h.computes()[0].clone();
    let other = if on == a { b } else { a };
    h.msg(other, WorkerMsg::LongRunning { task: h.wire("x0") });
    assert_eq!(h.s.workers[on].long_running + h.s.workers[other].long_running, 0);
    h.msg(on, WorkerMsg::LongRunning { task: 12345 });
    assert_eq!(h.s.workers[on].long_running, 0);
}

#[test]
fn seceded_tasks_are_not_stolen_nor_make_a_worker_a_victim() {
    let mut h = H::new();
    let a = h.worker("a", 1);
    let c = h.s.on_client_connected("c");
    let cap = h.s.capacity(a);
    let ks = names("r", cap);
    h.submit(c, &ks);
    assert_eq!(h.computes().len(), cap);
    for k in &ks {
        h.msg(a, WorkerMsg::LongRunning { task: h.wire(k) });
    }
    h.comm.take_workers();
    h.worker("b", 1);
    assert_eq!(h.steals(), 0, "nothing to steal: every task on a runs already");
}

#[test]
fn seceded_task_of_a_lost_worker_runs_again_elsewhere_without_the_flag() {
    let mut h = H::new();
    let a = h.worker("a", 1);
    let c = h.s.on_client_connected("c");
    h.submit(c, &names("x", 1));
    h.computes();
    h.msg(a, WorkerMsg::LongRunning { task: h.wire("x0") });
    let b = h.worker("b", 1);
    h.s.on_worker_lost(a, None, &mut h.comm);
    h.s.check_invariants();
    assert_eq!(h.computes(), vec![(b, "x0".to_string())]);
    assert_eq!(h.s.workers[b].long_running, 0);
    assert!(!h.s.task_by_key("x0").expect("known").1.long_running);
}

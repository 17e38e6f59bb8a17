//! Tests of paused workers: the scheduler assigns them nothing new while
//! paused and resumes assigning when they unpause.

use super::*;
use crate::graph::{Arg, Key, TaskOptions, TaskSpec};
use crate::protocol::{ClientMsg, MemoryReport, Payload, ToWorker, WorkerMsg};
use task::TaskState;

struct H {
    s: Scheduler,
    comm: TestComm,
}

impl H {
    fn new() -> Self {
        H { s: Scheduler::new(SchedulerConfig::default()), comm: TestComm::default() }
    }

    fn worker(&mut self, name: &str) -> WorkerId {
        let hello = WorkerHello {
            name: name.into(),
            data_addr: format!("mem://{name}"),
            nthreads: 1,
            catalog: vec![Arc::from("f")],
            resources: Vec::new(),
        };
        let w = self.s.on_worker_connected(&hello, &mut self.comm).expect("accepted");
        self.s.check_invariants();
        w
    }

    fn submit(&mut self, c: ClientId, key: &str, deps: &[&str]) {
        self.submit_on(c, key, deps, None);
    }

    fn submit_on(&mut self, c: ClientId, key: &str, deps: &[&str], only: Option<&str>) {
        let mut args = vec![Arg::Value(Payload::from(key.as_bytes().to_vec()))];
        args.extend(deps.iter().map(|d| Arg::Dep(Key::from(*d))));
        let task = TaskSpec {
            key: Key::from(key),
            func: Arc::from("f"),
            args,
            options: TaskOptions {
                restrictions: only.map(|w| {
                    Arc::new(crate::graph::Restrictions {
                        workers: vec![w.to_string()],
                        ..Default::default()
                    })
                }),
                ..TaskOptions::default()
            },
        };
        let msg = ClientMsg::UpdateGraph { tasks: vec![task], wanted: vec![Key::from(key)] };
        self.s.on_client_message(c, msg, &mut self.comm);
        self.s.check_invariants();
    }

    fn msg(&mut self, w: WorkerId, m: WorkerMsg) {
        self.s.on_worker_message(w, m, &mut self.comm);
        self.s.check_invariants();
    }

    fn finish(&mut self, w: WorkerId, key: &str) {
        let task = self.s.task_by_key(key).expect("known").0.to_wire();
        self.msg(w, WorkerMsg::TaskFinished { task, nbytes: 8, value: None, duration_us: 10 });
    }

    fn state(&self, key: &str) -> TaskState {
        self.s.task_by_key(key).expect("known").1.state
    }

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
}

#[test]
fn a_paused_worker_gets_no_root_tasks_until_it_resumes() {
    let mut h = H::new();
    let a = h.worker("a");
    let c = h.s.on_client_connected("c");
    h.msg(a, WorkerMsg::Paused { paused: true });
    assert!(h.s.worker_infos()[0].paused);
    h.submit(c, "r", &[]);
    assert!(h.computes().is_empty(), "nothing goes to a paused worker");
    assert_eq!(h.state("r"), TaskState::Queued);

    h.msg(a, WorkerMsg::Paused { paused: false });
    assert_eq!(h.computes(), vec![(a, "r".to_string())], "resuming refills it");
    assert!(!h.s.worker_infos()[0].paused);
}

#[test]
fn root_tasks_go_to_the_running_worker_while_another_is_paused() {
    let mut h = H::new();
    let a = h.worker("a");
    let b = h.worker("b");
    let c = h.s.on_client_connected("c");
    h.msg(a, WorkerMsg::Paused { paused: true });
    for i in 0..6 {
        h.submit(c, &format!("r{i}"), &[]);
    }
    let sent = h.computes();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|(w, _)| *w == b), "all to b: {sent:?}");

    h.msg(a, WorkerMsg::Paused { paused: false });
    let sent = h.computes();
    assert!(sent.iter().any(|(w, _)| *w == a), "a takes queued tasks again: {sent:?}");
}

#[test]
fn a_dependent_waits_for_its_paused_holder_or_goes_elsewhere() {
    let mut h = H::new();
    let a = h.worker("a");
    let c = h.s.on_client_connected("c");
    h.submit(c, "x", &[]);
    assert_eq!(h.computes(), vec![(a, "x".to_string())]);
    h.finish(a, "x");
    h.msg(a, WorkerMsg::Paused { paused: true });

    h.submit(c, "y", &["x"]);
    assert!(h.computes().is_empty(), "the only worker is paused");
    assert_eq!(h.state("y"), TaskState::NoWorker);
    let info = h.s.info(&[Key::from("y")]);
    assert!(info.unrunnable[0].reason.contains("paused"), "{:?}", info.unrunnable);

    h.msg(a, WorkerMsg::Paused { paused: false });
    assert_eq!(h.computes(), vec![(a, "y".to_string())]);
    assert_eq!(h.state("y"), TaskState::Processing);

    // With a running worker available, data locality loses to the pause.
    let b = h.worker("b");
    h.comm.take_workers();
    h.msg(a, WorkerMsg::Paused { paused: true });
    h.submit(c, "z", &["x"]);
    assert_eq!(h.computes(), vec![(b, "z".to_string())]);
}

#[test]
fn a_memory_report_shows_in_the_worker_info() {
    let mut h = H::new();
    let a = h.worker("a");
    let report = MemoryReport {
        process: 500,
        limit: 1000,
        managed: 200,
        spilled_bytes: 300,
        spilled_keys: 3,
    };
    h.msg(a, WorkerMsg::Memory(report));
    let info = &h.s.worker_infos()[0];
    assert_eq!(
        (
            info.memory,
            info.memory_limit,
            info.managed_in_memory,
            info.spilled_bytes,
            info.spilled_keys
        ),
        (500, 1000, 200, 300, 3)
    );
    assert_eq!(info.unmanaged_memory(), 300);
}

#[test]
fn a_task_restricted_to_a_paused_worker_waits_for_it() {
    let mut h = H::new();
    let a = h.worker("a");
    h.worker("b");
    let c = h.s.on_client_connected("c");
    h.comm.take_workers();
    h.msg(a, WorkerMsg::Paused { paused: true });
    h.submit_on(c, "r", &[], Some("a"));
    assert!(h.computes().is_empty(), "not to b, not to the paused a");
    assert_eq!(h.state("r"), TaskState::NoWorker);
    let info = h.s.info(&[Key::from("r")]);
    assert!(info.unrunnable[0].reason.contains("paused"), "{:?}", info.unrunnable);
    h.msg(a, WorkerMsg::Paused { paused: false });
    assert_eq!(h.computes(), vec![(a, "r".to_string())]);
}

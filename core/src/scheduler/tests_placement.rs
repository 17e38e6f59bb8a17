//! Tests of placement restrictions, resources and priority generations: the
//! scheduler alone through the harness of `tests.rs`, and the scheduler
//! driving sans-IO workers, to check resource totals hold end to end.

use super::tests::{compute_keys, computes, erred, in_memory, keys, spec, spec_opts, steals, H};
use super::*;
use crate::error::{FailureKind, TaskFailure};
use crate::graph::{Restrictions, TaskSpec, DEFAULT_FIFO_TIMEOUT_US};
use crate::protocol::{ClientMsg, Payload, Reply, Request, SchedulerInfo, ToWorker, WorkerMsg};
use crate::worker::{Outbox, Worker};

fn restricted(key: &str, workers: &[&str], loose: bool, resources: &[(&str, f64)]) -> TaskSpec {
    let mut s = spec(key, "f", &[]);
    s.options.restrictions = Some(Arc::new(Restrictions {
        workers: workers.iter().map(|w| w.to_string()).collect(),
        allow_other_workers: loose,
        resources: resources.iter().map(|(n, a)| (n.to_string(), *a)).collect(),
    }));
    s
}

fn on_workers(key: &str, workers: &[&str]) -> TaskSpec {
    restricted(key, workers, false, &[])
}

fn needing(key: &str, resources: &[(&str, f64)]) -> TaskSpec {
    restricted(key, &[], false, resources)
}

impl H {
    fn worker_with(&mut self, name: &str, nthreads: u32, resources: &[(&str, f64)]) -> WorkerId {
        let hello = WorkerHello {
            name: name.to_string(),
            data_addr: format!("mem://{name}"),
            nthreads,
            catalog: vec![Arc::from("f")],
            resources: resources.iter().map(|(n, a)| (n.to_string(), *a)).collect(),
        };
        let w = self.s.on_worker_connected(&hello, &mut self.comm).expect("worker accepted");
        self.s.check_invariants();
        w
    }

    fn info(&mut self, c: ClientId, ks: &[&str]) -> SchedulerInfo {
        self.client_msg(c, ClientMsg::Request { id: 1, req: Request::Info { keys: keys(ks) } });
        match self.comm.take_clients().pop() {
            Some((_, ToClient::Reply { reply: Ok(Reply::Info(info)), .. })) => info,
            other => panic!("expected an info reply, got {other:?}"),
        }
    }

    fn reason(&mut self, c: ClientId, key: &str) -> String {
        let info = self.info(c, &[key]);
        info.unrunnable
            .iter()
            .find(|u| u.key.as_str() == key)
            .unwrap_or_else(|| panic!("{key} not reported unrunnable: {info:?}"))
            .reason
            .clone()
    }
}

// ---------------------------------------------------------------------------
// Worker restrictions
// ---------------------------------------------------------------------------

#[test]
fn strict_restriction_runs_only_on_the_listed_workers() {
    let mut h = H::new();
    let _a = h.worker_with("a", 1, &[]);
    let b = h.worker_with("b", 1, &[]);
    let c = h.worker_with("c", 1, &[]);
    let cl = h.client("cl");
    let names: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.submit(cl, names.iter().map(|k| on_workers(k, &["b"])).collect(), &names);
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs.len(), 12, "restricted tasks are assigned at once, not queued");
    assert!(cs.iter().all(|(w, _)| *w == b), "{cs:?}");

    // By data address, and a list of two.
    h.submit(cl, vec![on_workers("addr", &["mem://c"])], &["addr"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(c, "addr".into())]);
    h.submit(cl, vec![on_workers("two", &["b", "c"])], &["two"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(c, "two".into())], "the idler one");
}

#[test]
fn strict_restriction_to_absent_worker_waits_visibly_and_runs_when_it_joins() {
    let mut h = H::new();
    h.worker_with("a", 1, &[]);
    let cl = h.client("cl");
    h.submit(cl, vec![on_workers("t", &["gpu-box"])], &["t"]);
    assert!(computes(&h.comm.take_workers()).is_empty());
    assert_eq!(h.state("t"), TaskState::NoWorker);
    let reason = h.reason(cl, "t");
    assert_eq!(reason, r#"restricted to workers ["gpu-box"] which are not connected"#);
    assert_eq!(h.info(cl, &["t"]).key_states, vec![Some("noworker".to_string())]);

    // Another unrelated worker joining changes nothing.
    h.worker_with("b", 1, &[]);
    assert!(computes(&h.comm.take_workers()).is_empty());
    assert_eq!(h.state("t"), TaskState::NoWorker);

    let g = h.worker_with("gpu-box", 1, &[]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(g, "t".into())]);
    h.finish_key("t", 1);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(cl, "t".into())]);
    assert!(h.info(cl, &["t"]).unrunnable.is_empty());
}

#[test]
fn restricted_task_whose_worker_dies_waits_for_it_to_come_back() {
    let mut h = H::new();
    let a = h.worker_with("a", 1, &[]);
    h.worker_with("b", 1, &[]);
    let cl = h.client("cl");
    h.submit(cl, vec![on_workers("t", &["a"])], &["t"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(a, "t".into())]);
    h.lose_worker(a, None);
    assert!(computes(&h.comm.take_workers()).is_empty(), "never moved to b");
    assert_eq!(h.state("t"), TaskState::NoWorker);
    let a2 = h.worker_with("a", 1, &[]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(a2, "t".into())]);
}

#[test]
fn loose_restriction_prefers_listed_workers_and_falls_back_to_others() {
    let mut h = H::new();
    let a = h.worker_with("a", 1, &[]);
    let b = h.worker_with("b", 1, &[]);
    let cl = h.client("cl");
    // b is busier than a, but listed.
    h.submit(cl, vec![spec("busy", "f", &[])], &["busy"]);
    let busy_on = compute_keys(&h.comm.take_workers())[0].0;
    let (listed, other) = if busy_on == a { ("a", b) } else { ("b", a) };
    h.submit(cl, vec![restricted("pref", &[listed], true, &[])], &["pref"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(busy_on, "pref".into())]);

    // None of the listed workers is connected: any worker runs it.
    h.submit(cl, vec![restricted("ghost", &["nobody"], true, &[])], &["ghost"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(other, "ghost".into())]);
}

#[test]
fn loose_restriction_without_workers_is_invalid() {
    let mut h = H::new();
    h.worker_with("a", 1, &[]);
    let cl = h.client("cl");
    h.submit(cl, vec![restricted("t", &[], true, &[])], &["t"]);
    let e = erred(&h.comm.take_clients());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].2.kind, FailureKind::BadArgument);
    assert!(e[0].2.message.contains("allow_other_workers"), "{}", e[0].2.message);
}

#[test]
fn stealing_moves_only_tasks_the_thief_may_run() {
    let mut h = H::new();
    let a = h.worker_with("a", 1, &[("GPU", 1.0)]);
    let cl = h.client("cl");
    let strict: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    let loose: Vec<String> = (0..6).map(|i| format!("l{i}")).collect();
    let gpu: Vec<String> = (0..6).map(|i| format!("g{i}")).collect();
    let mut specs = Vec::new();
    specs.extend(strict.iter().map(|k| on_workers(k, &["a"])));
    specs.extend(loose.iter().map(|k| restricted(k, &["a"], true, &[])));
    specs.extend(gpu.iter().map(|k| needing(k, &[("GPU", 1.0)])));
    let all: Vec<&str> = strict.iter().chain(&loose).chain(&gpu).map(String::as_str).collect();
    h.submit(cl, specs, &all);
    assert_eq!(computes(&h.comm.take_workers()).len(), 18);

    // An idle worker without GPU may steal only the loose tasks.
    let b = h.worker_with("b", 1, &[]);
    let st = steals(&h.comm.take_workers());
    assert!(!st.is_empty(), "b steals something");
    for (victim, task) in &st {
        assert_eq!(*victim, a);
        let key = h.s.task(TaskId::from_wire(*task)).unwrap().key.to_string();
        assert!(key.starts_with('l'), "{key} must not be stolen by b");
        h.worker_msg(a, WorkerMsg::StealResponse { task: *task, stolen: true });
    }
    assert!(computes(&h.comm.take_workers()).iter().all(|(w, _)| *w == b));

    // A worker with a GPU may steal GPU tasks too, never strict ones.
    h.worker_with("c", 1, &[("GPU", 4.0)]);
    let st = steals(&h.comm.take_workers());
    assert!(!st.is_empty(), "c steals something");
    for (_, task) in &st {
        let key = h.s.task(TaskId::from_wire(*task)).unwrap().key.to_string();
        assert!(!key.starts_with('s'), "{key} is restricted to a");
    }
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

#[test]
fn resource_tasks_go_only_to_workers_that_have_enough() {
    let mut h = H::new();
    h.worker_with("plain", 4, &[]);
    let small = h.worker_with("small", 1, &[("GPU", 1.0)]);
    let big = h.worker_with("big", 1, &[("GPU", 2.0), ("MEM", 8e9)]);
    let cl = h.client("cl");
    let names: Vec<String> = (0..8).map(|i| format!("one{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    h.submit(cl, names.iter().map(|k| needing(k, &[("GPU", 1.0)])).collect(), &names);
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs.len(), 8);
    assert!(cs.iter().all(|(w, _)| *w == small || *w == big), "{cs:?}");
    assert!(cs.iter().any(|(w, _)| *w == small) && cs.iter().any(|(w, _)| *w == big));

    h.submit(
        cl,
        vec![needing("two", &[("GPU", 2.0)]), needing("both", &[("GPU", 1.0), ("MEM", 1e9)])],
        &["two", "both"],
    );
    let cs = compute_keys(&h.comm.take_workers());
    assert_eq!(cs, vec![(big, "two".into()), (big, "both".into())]);
}

#[test]
fn resource_no_worker_has_waits_with_a_reason_until_one_joins() {
    let mut h = H::new();
    h.worker_with("a", 2, &[("GPU", 1.0)]);
    let cl = h.client("cl");
    h.submit(
        cl,
        vec![needing("tpu", &[("TPU", 1.0)]), needing("gpus", &[("GPU", 3.0)])],
        &["tpu", "gpus"],
    );
    assert!(computes(&h.comm.take_workers()).is_empty());
    let reason = h.reason(cl, "tpu");
    assert!(reason.contains("needs resource TPU=1"), "{reason}");
    assert!(reason.contains("--resources TPU=1"), "{reason}");
    let reason = h.reason(cl, "gpus");
    assert!(reason.contains("GPU=3") && reason.contains("no connected worker"), "{reason}");

    let t = h.worker_with("t", 1, &[("TPU", 1.0)]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(t, "tpu".into())]);
    assert_eq!(h.state("gpus"), TaskState::NoWorker);
}

#[test]
fn strict_restriction_and_resources_combine_in_the_reason() {
    let mut h = H::new();
    h.worker_with("a", 1, &[]);
    h.worker_with("b", 1, &[("GPU", 1.0)]);
    let cl = h.client("cl");
    h.submit(cl, vec![restricted("t", &["a"], false, &[("GPU", 1.0)])], &["t"]);
    assert_eq!(h.state("t"), TaskState::NoWorker);
    let reason = h.reason(cl, "t");
    assert!(reason.contains(r#"none of workers ["a"]"#), "{reason}");
}

#[test]
fn worker_offering_invalid_resources_is_refused() {
    let mut h = H::new();
    for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY] {
        let hello = WorkerHello {
            name: "w".into(),
            data_addr: "x".into(),
            nthreads: 1,
            catalog: vec![],
            resources: vec![("GPU".into(), bad)],
        };
        let err = h.s.on_worker_connected(&hello, &mut h.comm).unwrap_err();
        assert!(err.contains("GPU="), "{err}");
    }
    assert_eq!(h.s.workers().count(), 0);
}

#[test]
fn worker_metrics_and_managed_bytes_show_in_info() {
    let mut h = H::new();
    let w = h.worker_with("a", 3, &[("GPU", 2.0)]);
    let cl = h.client("cl");
    h.submit(cl, vec![spec("x", "f", &[])], &["x"]);
    h.finish_key("x", 4096);
    h.worker_msg(w, WorkerMsg::Metrics { memory: 123_456_789 });
    let info = h.info(cl, &[]);
    let wi = &info.workers[0];
    assert_eq!(wi.nthreads, 3);
    assert_eq!(wi.memory, 123_456_789);
    assert_eq!(wi.managed_bytes, 4096);
    assert_eq!(wi.resources, vec![("GPU".to_string(), 2.0)]);
}

// ---------------------------------------------------------------------------
// Priority generations (fifo_timeout)
// ---------------------------------------------------------------------------

/// Fills a one-slot worker's capacity with `fill*` tasks, so later root tasks queue.
fn fill(h: &mut H, c: ClientId, w: WorkerId) -> Vec<String> {
    let cap = h.s.capacity(w);
    let fill: Vec<String> = (0..cap).map(|i| format!("fill{i}")).collect();
    let refs: Vec<&str> = fill.iter().map(String::as_str).collect();
    h.submit(c, refs.iter().map(|k| spec(k, "f", &[])).collect(), &refs);
    assert_eq!(computes(&h.comm.take_workers()).len(), cap);
    fill
}

/// Finishes tasks one at a time, oldest first, and returns the keys started meanwhile.
fn run_all(h: &mut H, mut running: Vec<String>) -> Vec<String> {
    let mut started = Vec::new();
    while !running.is_empty() {
        let k = running.remove(0);
        h.finish_key(&k, 1);
        let new: Vec<String> =
            compute_keys(&h.comm.take_workers()).into_iter().map(|(_, k)| k).collect();
        running.extend(new.iter().cloned());
        started.extend(new);
    }
    started
}

fn batch(prefix: &str, n: usize, fifo_us: Option<u64>, priority: i32) -> Vec<TaskSpec> {
    (0..n)
        .map(|i| {
            let mut s = spec_opts(&format!("{prefix}{i}"), "f", &[], priority, 0);
            s.options.fifo_timeout_us = fifo_us;
            s
        })
        .collect()
}

fn submit_batch(h: &mut H, c: ClientId, specs: Vec<TaskSpec>) {
    let ks: Vec<String> = specs.iter().map(|s| s.key.to_string()).collect();
    let ks: Vec<&str> = ks.iter().map(String::as_str).collect();
    h.submit(c, specs, &ks);
}

#[test]
fn submissions_within_the_fifo_timeout_share_a_generation_and_interleave() {
    let mut h = H::new();
    let w = h.worker_with("w", 1, &[]);
    let c = h.client("c");
    h.s.set_now(1_000_000);
    let running = fill(&mut h, c, w);
    h.s.set_now(1_000_000 + DEFAULT_FIFO_TIMEOUT_US / 2);
    submit_batch(&mut h, c, batch("a", 3, None, 0));
    h.s.set_now(1_000_000 + DEFAULT_FIFO_TIMEOUT_US - 1);
    submit_batch(&mut h, c, batch("b", 3, None, 0));
    let started: Vec<String> =
        run_all(&mut h, running).into_iter().filter(|k| !k.starts_with("fill")).collect();
    assert_eq!(started, ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn a_later_generation_runs_after_earlier_ones_unless_its_priority_is_higher() {
    let mut h = H::new();
    let w = h.worker_with("w", 1, &[]);
    let c = h.client("c");
    h.s.set_now(5_000_000);
    let running = fill(&mut h, c, w);
    h.s.set_now(5_000_000 + DEFAULT_FIFO_TIMEOUT_US);
    submit_batch(&mut h, c, batch("a", 3, None, 0));
    h.s.set_now(5_000_000 + 2 * DEFAULT_FIFO_TIMEOUT_US);
    submit_batch(&mut h, c, batch("b", 3, None, 0));
    submit_batch(&mut h, c, batch("hi", 1, None, 1));
    let started: Vec<String> =
        run_all(&mut h, running).into_iter().filter(|k| !k.starts_with("fill")).collect();
    assert_eq!(started, ["hi0", "a0", "a1", "a2", "b0", "b1", "b2"]);
}

#[test]
fn fifo_timeout_is_per_submission() {
    let mut h = H::new();
    let w = h.worker_with("w", 1, &[]);
    let c = h.client("c");
    h.s.set_now(0);
    let running = fill(&mut h, c, w);
    // Zero: a new generation even at the same instant.
    submit_batch(&mut h, c, batch("a", 2, Some(0), 0));
    submit_batch(&mut h, c, batch("b", 2, Some(0), 0));
    // Ten seconds later, with a longer timeout: joins b's generation.
    h.s.set_now(10_000_000);
    submit_batch(&mut h, c, batch("c", 2, Some(60_000_000), 0));
    let started: Vec<String> =
        run_all(&mut h, running).into_iter().filter(|k| !k.starts_with("fill")).collect();
    assert_eq!(started, ["a0", "a1", "b0", "c0", "b1", "c1"]);
}

// ---------------------------------------------------------------------------
// The scheduler and sans-IO workers together: resource totals always hold
// ---------------------------------------------------------------------------

/// A sans-IO worker and the tasks it has handed to its (simulated) executor.
struct Sim {
    id: WorkerId,
    name: String,
    worker: Worker,
    gpus: f64,
    running: Vec<(u64, String)>,
}

struct World {
    h: H,
    sims: Vec<Sim>,
    need: rustc_hash::FxHashMap<String, f64>,
    peak: rustc_hash::FxHashMap<String, f64>,
    stolen: usize,
}

impl World {
    fn add(&mut self, name: &str, nthreads: u32, gpus: f64) {
        let res: Vec<(&str, f64)> = if gpus > 0.0 { vec![("GPU", gpus)] } else { vec![] };
        let id = self.h.worker_with(name, nthreads, &res);
        let mut worker = Worker::new(id.to_wire(), nthreads as usize);
        worker.set_resources(res.iter().map(|(n, a)| (n.to_string(), *a)).collect());
        self.sims.push(Sim { id, name: name.into(), worker, gpus, running: Vec::new() });
        self.pump();
    }

    /// Delivers messages both ways until nothing moves, checking the totals.
    fn pump(&mut self) {
        loop {
            let msgs = self.h.comm.take_workers();
            if msgs.is_empty() {
                break;
            }
            for (to, msg) in msgs {
                let Some(i) = self.sims.iter().position(|s| s.id == to) else { continue };
                self.stolen += usize::from(matches!(msg, ToWorker::Steal { .. }));
                let mut out = Outbox::default();
                self.sims[i].worker.on_scheduler_message(msg, &mut out);
                self.deliver(i, out);
            }
        }
    }

    fn deliver(&mut self, i: usize, out: Outbox) {
        assert!(out.fetches.is_empty(), "root tasks fetch nothing");
        let sim = &mut self.sims[i];
        sim.running.extend(out.executes.into_iter().map(|e| (e.task, e.key.to_string())));
        let held: f64 = sim.running.iter().map(|(_, k)| self.need[k]).sum();
        assert!(held <= sim.gpus, "{} runs tasks holding {held} GPUs of {}", sim.name, sim.gpus);
        assert_eq!(sim.worker.resources_in_use().iter().map(|r| r.1).sum::<f64>(), held);
        let peak = self.peak.entry(sim.name.clone()).or_default();
        *peak = peak.max(held);
        let id = sim.id;
        for m in out.to_scheduler {
            self.h.worker_msg(id, m);
        }
    }

    /// Completes the `nth` running task of worker `i`, failing it when `fail`.
    fn complete(&mut self, i: usize, nth: usize, fail: bool) {
        let (task, _) = self.sims[i].running.remove(nth);
        let result = if fail {
            Err(TaskFailure::new(FailureKind::Error, "flaky"))
        } else {
            Ok(Payload::from(vec![1u8]))
        };
        let mut out = Outbox::default();
        self.sims[i].worker.on_task_done(task, result, 50_000, &mut out);
        self.deliver(i, out);
        self.pump();
    }

    fn lose(&mut self, name: &str) {
        let i = self.sims.iter().position(|s| s.name == name).expect("known worker");
        let sim = self.sims.remove(i);
        self.h.lose_worker(sim.id, None);
        self.pump();
    }
}

#[test]
fn resource_totals_hold_through_finish_failure_steal_and_worker_loss() {
    let mut w = World {
        h: H::new(),
        sims: Vec::new(),
        need: Default::default(),
        peak: Default::default(),
        stolen: 0,
    };
    w.add("a", 4, 2.0);
    w.add("b", 2, 1.0);
    w.add("cpu", 4, 0.0);
    let c = w.h.client("c");
    let mut specs = Vec::new();
    for i in 0..24 {
        let (key, need) = if i % 3 == 0 { (format!("p{i}"), 0.0) } else { (format!("g{i}"), 1.0) };
        let mut s = if need > 0.0 { needing(&key, &[("GPU", need)]) } else { spec(&key, "f", &[]) };
        s.options.retries = 1;
        w.need.insert(key, need);
        specs.push(s);
    }
    // Two GPU tasks holding both GPUs of `a` at once.
    let mut s = needing("gg", &[("GPU", 2.0)]);
    s.options.retries = 1;
    w.need.insert("gg".into(), 2.0);
    specs.push(s);
    let all: Vec<String> = specs.iter().map(|s| s.key.to_string()).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    w.h.submit(c, specs, &all);
    w.pump();

    let mut step = 0usize;
    let mut done = rustc_hash::FxHashSet::default();
    while done.len() < all.len() {
        step += 1;
        assert!(step < 1000, "no progress: {:?}", w.h.s.info(&keys(&all)).key_states);
        match step {
            5 => w.add("late", 1, 1.0),
            9 => w.lose("b"),
            14 => w.add("b", 2, 1.0),
            _ => {}
        }
        let Some(i) = (0..w.sims.len())
            .map(|k| (k + step) % w.sims.len())
            .find(|&k| !w.sims[k].running.is_empty())
        else {
            panic!("nothing runs but {} of {} keys are done", done.len(), all.len());
        };
        let nth = step % w.sims[i].running.len();
        w.complete(i, nth, step % 4 == 0);
        let msgs = w.h.comm.take_clients();
        done.extend(in_memory(&msgs).into_iter().map(|(_, k)| k));
        done.extend(erred(&msgs).into_iter().map(|(_, k, _)| k));
    }
    assert_eq!(w.peak.get("cpu").copied(), Some(0.0), "no GPU task ran on the worker without GPUs");
    assert_eq!(w.peak["a"], 2.0, "a used both of its GPUs");
    assert!(w.peak.get("late").copied().unwrap_or(0.0) <= 1.0);
    assert!(w.stolen > 0, "the joining workers stole work");
}

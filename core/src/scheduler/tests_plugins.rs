//! Scheduler plugins: the hooks they see over a task's life, and isolation
//! of failing hooks.

use super::tests::*;
use super::*;
use crate::graph::Key;
use crate::plugin::{PluginError, PluginResult, SchedulerPlugin, TransitionCtx};
use std::sync::Mutex;

#[derive(Debug)]
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    panic_on_transition: bool,
}

impl Recorder {
    fn new(name: &'static str) -> (Self, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (Recorder { name, log: log.clone(), panic_on_transition: false }, log)
    }
    fn push(&self, s: String) -> PluginResult {
        self.log.lock().unwrap().push(s);
        Ok(())
    }
}

impl SchedulerPlugin for Recorder {
    fn name(&self) -> &str {
        self.name
    }
    fn start(&mut self) -> PluginResult {
        self.push("start".into())
    }
    fn close(&mut self) -> PluginResult {
        self.push("close".into())
    }
    fn update_graph(&mut self, client: &str, keys: &[Key]) -> PluginResult {
        self.push(format!("graph {client} {}", keys.len()))
    }
    fn transition(
        &mut self,
        key: &str,
        from: TaskState,
        to: TaskState,
        ctx: &TransitionCtx<'_>,
    ) -> PluginResult {
        if self.panic_on_transition {
            panic!("hook bug");
        }
        let mut s = format!("{key} {from:?}->{to:?}");
        if let Some(w) = ctx.worker {
            s += &format!(" on {w}");
        }
        if let Some(d) = ctx.duration_us {
            s += &format!(" {d}us");
        }
        if let Some(e) = ctx.error {
            s += &format!(" err {}", e.message);
        }
        self.push(s)
    }
    fn add_worker(&mut self, worker: &str) -> PluginResult {
        self.push(format!("+worker {worker}"))
    }
    fn remove_worker(&mut self, worker: &str) -> PluginResult {
        self.push(format!("-worker {worker}"))
    }
    fn add_client(&mut self, client: &str) -> PluginResult {
        self.push(format!("+client {client}"))
    }
    fn remove_client(&mut self, client: &str) -> PluginResult {
        self.push(format!("-client {client}"))
    }
}

fn entries(log: &Mutex<Vec<String>>, prefix: &str) -> Vec<String> {
    log.lock().unwrap().iter().filter(|s| s.starts_with(prefix)).cloned().collect()
}

#[test]
fn hooks_follow_a_task_through_its_whole_life() {
    let mut h = H::new();
    let (p, log) = Recorder::new("rec");
    h.s.add_plugin(Box::new(p)).unwrap();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("alice");
    h.submit(c, vec![spec("x", "f", &[]), spec("y", "f", &["x"])], &["y"]);
    h.finish_key("x", 8);
    h.finish_key("y", 8);
    h.release(c, &["y"]);
    assert_eq!(
        entries(&log, "y "),
        vec![
            "y Released->Waiting",
            "y Waiting->Processing on w1",
            "y Processing->Memory on w1 500us",
            "y Memory->Released",
            "y Released->Forgotten",
        ]
    );
    assert_eq!(entries(&log, "x Released->Forgotten").len(), 1);
    h.s.on_client_lost(c, &mut h.comm);
    h.lose_worker(w, None);
    let log = log.lock().unwrap();
    assert_eq!(log[..4], ["start", "+worker w1", "+client alice", "graph alice 2"]);
    assert_eq!(log[log.len() - 2..], ["-client alice", "-worker w1"]);
}

#[test]
fn failed_task_carries_its_error() {
    let mut h = H::new();
    let (p, log) = Recorder::new("rec");
    h.s.add_plugin(Box::new(p)).unwrap();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("alice");
    h.submit(c, vec![spec("x", "f", &[])], &["x"]);
    let id = h.wire("x");
    h.fail(w, id, "boom");
    assert_eq!(entries(&log, "x Released->Erred"), vec!["x Released->Erred err boom"]);
}

#[test]
fn panicking_hook_is_counted_and_tasks_still_run() {
    let mut h = H::new();
    let (mut p, _) = Recorder::new("bad");
    p.panic_on_transition = true;
    h.s.add_plugin(Box::new(p)).unwrap();
    h.worker("w1", 1, &["f"]);
    let c = h.client("alice");
    h.submit(c, vec![spec("x", "f", &[])], &["x"]);
    h.finish_key("x", 8);
    assert_eq!(h.state("x"), TaskState::Memory);
    assert_eq!(in_memory(&h.comm.take_clients()).len(), 1);
    assert!(h.s.plugin_failures() >= 2);
    assert_eq!(h.s.info(&[]).plugin_failures, h.s.plugin_failures());
}

#[test]
fn same_name_replaces_after_closing_and_failing_start_rejects() {
    let mut h = H::new();
    let (a, log_a) = Recorder::new("rec");
    let (b, log_b) = Recorder::new("rec");
    h.s.add_plugin(Box::new(a)).unwrap();
    h.s.add_plugin(Box::new(b)).unwrap();
    assert_eq!(*log_a.lock().unwrap(), ["start", "close"]);
    assert_eq!(*log_b.lock().unwrap(), ["start"]);
    assert_eq!(h.s.plugin_names(), ["rec"]);

    #[derive(Debug)]
    struct Refuses;
    impl SchedulerPlugin for Refuses {
        fn name(&self) -> &str {
            "refuses"
        }
        fn start(&mut self) -> PluginResult {
            Err(PluginError::new("missing path"))
        }
    }
    assert_eq!(h.s.add_plugin(Box::new(Refuses)).unwrap_err().message, "missing path");
    assert_eq!(h.s.plugin_names(), ["rec"]);
    assert!(h.s.remove_plugin("rec"));
    assert_eq!(log_b.lock().unwrap().last().unwrap(), "close");
    assert!(h.s.plugin_names().is_empty());
}

//! Scheduler plugins: the hooks they see over a task's life, and isolation
//! of failing hooks.

use super::tests::*;
use super::*;
use crate::graph::Key;
use crate::plugin::{PluginError, PluginResult, SchedulerPlugin, TransitionCtx};
use crate::protocol::{ClientMsg, Reply, Request, RequestError, ToClient, ToWorker, WorkerMsg};
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

fn plugin_msgs(h: &mut H) -> Vec<(WorkerId, u64, String, Option<String>)> {
    h.comm
        .take_workers()
        .into_iter()
        .filter_map(|(w, m)| match m {
            ToWorker::Plugin { id, name, config } => Some((w, id, name, config)),
            _ => None,
        })
        .collect()
}

fn reply_of(h: &mut H, c: ClientId) -> Option<Result<Reply, RequestError>> {
    h.comm.take_clients().into_iter().find_map(|(to, m)| match m {
        ToClient::Reply { reply, .. } if to == c => Some(reply),
        _ => None,
    })
}

#[test]
fn worker_plugin_waits_for_every_worker_and_reaches_late_joiners() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("alice");
    let req = Request::RegisterWorkerPlugin { name: "env".into(), config: "{}".into() };
    h.client_msg(c, ClientMsg::Request { id: 7, req });
    let sent = plugin_msgs(&mut h);
    assert_eq!(sent.len(), 2);
    let id = sent[0].1;
    h.worker_msg(w1, WorkerMsg::PluginResult { id, error: None });
    assert!(reply_of(&mut h, c).is_none(), "answered before every worker set it up");
    h.worker_msg(w2, WorkerMsg::PluginResult { id, error: None });
    assert!(matches!(reply_of(&mut h, c), Some(Ok(Reply::Done))));

    h.worker("late", 1, &["f"]);
    let sent = plugin_msgs(&mut h);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].2.as_str(), sent[0].3.as_deref()), ("env", Some("{}")));
}

#[test]
fn worker_plugin_failing_setup_is_reported_and_removed() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let w2 = h.worker("w2", 1, &["f"]);
    let c = h.client("alice");
    let req = Request::RegisterWorkerPlugin { name: "env".into(), config: "{}".into() };
    h.client_msg(c, ClientMsg::Request { id: 7, req });
    let id = plugin_msgs(&mut h)[0].1;
    h.worker_msg(w1, WorkerMsg::PluginResult { id, error: Some("no such dir".into()) });
    // The other worker dies instead of answering: the request is still answered.
    h.lose_worker(w2, None);
    let err = reply_of(&mut h, c).unwrap().unwrap_err();
    assert!(err.message.contains("w1") && err.message.contains("no such dir"), "{err:?}");
    // Removed from the remaining worker and not sent to joiners.
    let removed = plugin_msgs(&mut h);
    assert!(removed.iter().all(|(_, _, _, config)| config.is_none()));
    h.worker("late", 1, &["f"]);
    assert!(plugin_msgs(&mut h).is_empty());
}

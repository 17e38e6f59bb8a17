//! Scheduler plugins over real processes: registered from the command line
//! and from clients, replaced by name, rejected when `start` fails, and
//! isolated when a hook panics; the ready-made `task-stats` and `event-log`.

mod common;

use common::{within, Cluster};
use rudask::Error;
use rudask::TaskExt;
use rudask_tests::{fail, getenv, inc, read_local_file};
use serde_json::Value;

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rudask-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_stats_counts_runs_and_failures_per_function() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    within(client.register_scheduler_plugin("task-stats", "{}")).await.unwrap();
    let futs: Vec<_> = (0..5).map(|i| client.submit(inc, (i,)).unwrap()).collect();
    for f in &futs {
        within(f).await.unwrap();
    }
    let bad = client.submit(fail, ("nope".to_string(),)).unwrap();
    assert!(within(&bad).await.is_err());
    let stats: Value =
        serde_json::from_str(&within(client.plugin_query("task-stats", "{}")).await.unwrap())
            .unwrap();
    let inc_stats = stats.as_object().unwrap().iter().find(|(k, _)| k.contains("inc")).unwrap().1;
    assert_eq!(inc_stats["finished"], 5);
    assert_eq!(inc_stats["failed"], 0);
    assert_eq!(
        inc_stats["histogram"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        5
    );
    let fail_stats = stats.as_object().unwrap().iter().find(|(k, _)| k.contains("fail")).unwrap().1;
    assert_eq!(fail_stats["failed"], 1);

    // Registering the same name again replaces the instance: counts start over.
    within(client.register_scheduler_plugin("task-stats", "{}")).await.unwrap();
    assert_eq!(within(client.plugin_query("task-stats", "{}")).await.unwrap(), "{}");

    within(client.unregister_scheduler_plugin("task-stats")).await.unwrap();
    let err = within(client.plugin_query("task-stats", "{}")).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("task-stats")), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_start_rejects_the_registration_with_its_message() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let err =
        within(client.register_scheduler_plugin("example", r#"{"fail_start":"disk is full"}"#))
            .await
            .unwrap_err();
    assert!(matches!(&err, Error::Scheduler(m) if m.contains("disk is full")), "{err:?}");
    // Not kept: it cannot be queried or removed.
    let err = within(client.unregister_scheduler_plugin("example")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    let err = within(client.register_scheduler_plugin("no-such-plugin", "{}")).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("no-such-plugin")), "{err:?}");
    let err = within(client.register_scheduler_plugin("event-log", "not json")).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("event-log")), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_hook_is_counted_and_tasks_still_run() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    within(client.register_scheduler_plugin("example", r#"{"panic":true}"#)).await.unwrap();
    let a = client.submit(inc, (1,)).unwrap();
    let b = client.submit(inc, (a.clone(),)).unwrap();
    assert_eq!(within(&b).await.unwrap(), 3);
    let info = within(client.scheduler_info(&[])).await.unwrap();
    assert!(info.plugin_failures >= 3, "{}", info.plugin_failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_log_enabled_on_the_command_line_writes_transitions() {
    let path = temp_path("cli-events.jsonl");
    let _ = std::fs::remove_file(&path);
    let arg = format!(r#"event-log:{{"path":{:?}}}"#, path.to_str().unwrap());
    let mut cluster = Cluster::scheduler_with(&["--plugin", &arg]).await;
    cluster.spawn_worker("w0", 1);
    let client = cluster.client().await;
    let f = client.submit(inc, (41,)).unwrap();
    assert_eq!(within(&f).await.unwrap(), 42);
    let key = f.key().to_string();
    within(client.log_event("datasets", "published")).await.unwrap();
    // The log is written out when the plugin closes.
    within(client.unregister_scheduler_plugin("event-log")).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["key"] == key.as_str())
        .map(|l| (l["from"].as_str().unwrap().to_string(), l["to"].as_str().unwrap().to_string()))
        .collect();
    assert!(steps.contains(&("processing".into(), "memory".into())), "{steps:?}");
    let done = lines.iter().find(|l| l["key"] == key.as_str() && l["to"] == "memory").unwrap();
    assert_eq!(done["worker"], "w0");
    assert!(lines.iter().any(|l| l["topic"] == "datasets"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_log_rotates_by_size() {
    let path = temp_path("rotating.jsonl");
    for p in [path.clone(), path.with_extension("jsonl.1"), path.with_extension("jsonl.2")] {
        let _ = std::fs::remove_file(p);
    }
    let (_cluster, client) = Cluster::start(1, 1).await;
    let config = format!(r#"{{"path":{:?},"max_bytes":200,"keep":1}}"#, path.to_str().unwrap());
    within(client.register_scheduler_plugin("event-log", &config)).await.unwrap();
    let futs: Vec<_> = (0..20).map(|i| client.submit(inc, (i,)).unwrap()).collect();
    for f in &futs {
        within(f).await.unwrap();
    }
    within(client.unregister_scheduler_plugin("event-log")).await.unwrap();
    let rotated = std::fs::metadata(path.with_extension("jsonl.1")).unwrap().len();
    assert!(rotated >= 200, "{rotated}");
    assert!(!path.with_extension("jsonl.2").exists(), "keeps one rotated file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_plugins_from_the_command_line() {
    let mut cluster = Cluster::scheduler().await;
    cluster.spawn_worker_with(
        "env",
        1,
        &["--plugin", r#"environ:{"vars":{"RUDASK_PLUGIN_TEST":"hello"}}"#],
    );
    cluster.spawn_worker_with("broken", 1, &["--plugin", r#"example-worker:{"panic":true}"#]);
    let client = cluster.client().await;
    common::wait_for_workers(&client, 2).await;
    let seen = client.submit(getenv.workers(["env"]), ("RUDASK_PLUGIN_TEST".to_string(),)).unwrap();
    assert_eq!(within(&seen).await.unwrap().as_deref(), Some("hello"));
    // Hooks that panic or err on every task leave the worker running its tasks.
    let futs: Vec<_> =
        (0..5).map(|i| client.submit(inc.workers(["broken"]), (i,)).unwrap()).collect();
    for (i, f) in futs.iter().enumerate() {
        assert_eq!(within(f).await.unwrap(), i as i64 + 1);
    }

    // A failing setup keeps the worker from starting, with the plugin's message.
    let (ok, stderr) =
        cluster.run_worker_to_exit(&["--plugin", r#"environ:{"vars":{"A=B":"x"}}"#]).await;
    assert!(!ok);
    assert!(stderr.contains("environ") && stderr.contains("A=B"), "{stderr}");
}

async fn env_on(client: &rudask::Client, worker: &str, var: &str) -> Option<String> {
    let f = client.submit(getenv.workers([worker]).pure(false), (var.to_string(),)).unwrap();
    within(&f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_plugins_registered_by_a_client_reach_late_joiners() {
    let (mut cluster, client) = Cluster::start(1, 1).await;
    let config = r#"{"vars":{"RUDASK_FROM_CLIENT":"one"}}"#;
    within(client.register_worker_plugin("environ", config)).await.unwrap();
    assert_eq!(env_on(&client, "w0", "RUDASK_FROM_CLIENT").await.as_deref(), Some("one"));

    cluster.spawn_worker("late", 1);
    common::wait_for_workers(&client, 2).await;
    assert_eq!(env_on(&client, "late", "RUDASK_FROM_CLIENT").await.as_deref(), Some("one"));

    // The same name again replaces the plugin everywhere.
    let config = r#"{"vars":{"RUDASK_FROM_CLIENT":"two"}}"#;
    within(client.register_worker_plugin("environ", config)).await.unwrap();
    for w in ["w0", "late"] {
        assert_eq!(env_on(&client, w, "RUDASK_FROM_CLIENT").await.as_deref(), Some("two"));
    }

    // A failing setup rejects the registration with the plugin's message.
    let err = within(client.register_worker_plugin("environ", r#"{"vars":{"A=B":"x"}}"#))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Scheduler(m) if m.contains("A=B")), "{err:?}");
    let err = within(client.unregister_worker_plugin("environ")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = within(client.register_worker_plugin("no-such-plugin", "{}")).await.unwrap_err();
    assert!(matches!(&err, Error::Scheduler(m) if m.contains("no-such-plugin")), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_shutdown_stops_the_cluster_once_nobody_uses_it() {
    let mut cluster =
        Cluster::scheduler_with(&["--plugin", r#"idle-shutdown:{"timeout_s":0.5}"#]).await;
    cluster.spawn_worker("w0", 1);
    let client = cluster.client().await;
    common::wait_for_workers(&client, 1).await;
    let f = client.submit(inc, (1,)).unwrap();
    assert_eq!(within(&f).await.unwrap(), 2);
    assert!(cluster.scheduler_alive(), "stopped while a client was connected");
    drop(f);
    drop(client);
    common::eventually("the idle scheduler exits", || {
        let alive = cluster.scheduler_alive();
        async move { (!alive).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_plugins_see_a_tasks_full_life_in_order() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let log = temp_path("worker-transitions.log");
    let config = serde_json::json!({ "log": log }).to_string();
    within(client.register_worker_plugin("example-worker", &config)).await.unwrap();
    let f = client.submit(inc, (1,)).unwrap();
    assert_eq!(within(&f).await.unwrap(), 2);
    let key = f.key().to_string();
    drop(f);
    let expected: Vec<String> =
        ["Received Ready", "Ready Executing", "Executing Memory", "Memory Released"]
            .iter()
            .map(|t| format!("{key} {t}"))
            .collect();
    let seen = common::eventually("the worker plugin sees the key released", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> =
            text.lines().filter(|l| l.starts_with(&format!("{key} "))).map(String::from).collect();
        async move { lines.last().is_some_and(|l| l.ends_with("Released")).then_some(lines) }
    })
    .await;
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_directory_reaches_every_worker_and_late_joiners() {
    let dir = temp_path("upload-src").join("assets");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("top.txt"), "top").unwrap();
    std::fs::write(dir.join("sub").join("deep.txt"), "deep\n").unwrap();
    let config = rudask_plugins::UploadDirectory::config_for(&dir).unwrap();

    let (mut cluster, client) = Cluster::start(2, 1).await;
    within(client.register_worker_plugin("upload-directory", &config)).await.unwrap();
    cluster.spawn_worker("late", 1);
    common::wait_for_workers(&client, 3).await;
    for w in ["w0", "w1", "late"] {
        for (file, text) in [("assets/top.txt", "top"), ("assets/sub/deep.txt", "deep\n")] {
            let f = client
                .submit(read_local_file.workers([w]).pure(false), (file.to_string(),))
                .unwrap();
            assert_eq!(within(&f).await.unwrap().as_deref(), Some(text), "{file} on {w}");
        }
    }

    let bad = r#"{"name":"x","files":{"../escape":"00"}}"#;
    let err = within(client.register_worker_plugin("upload-directory", bad)).await.unwrap_err();
    assert!(matches!(&err, Error::Scheduler(m) if m.contains("../escape")), "{err:?}");
    let err = rudask_plugins::UploadDirectory::config_for(temp_path("no-such-dir")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

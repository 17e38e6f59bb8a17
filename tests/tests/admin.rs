//! Cluster administration over real processes: running functions on workers
//! and on the scheduler, restart, shutdown, waiting for workers, uploading files.

mod common;

use common::{eventually, within, within_for, Cluster, LIMIT};
use rudask::core::FailureKind;
use rudask::{Error, Status, TaskExt};
use rudask_tests::{
    abort_in_pid, inc, panic_in_pid, panics, process_identity, read_local_file, slow, where_am_i,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Linked into this test binary only, not into the scheduler's.
#[rudask::task]
fn only_in_this_test() -> u32 {
    7
}

fn pids(cluster: &Cluster) -> BTreeMap<String, u32> {
    cluster.workers.iter().map(|w| (w.name.clone(), w.pid)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reaches_every_worker_and_isolates_failures() {
    let (mut cluster, client) = Cluster::start(3, 1).await;
    let expected = pids(&cluster);

    let ids = within(client.run(process_identity, ())).await.unwrap();
    let got: BTreeMap<String, u32> =
        ids.iter().map(|(w, r)| (w.clone(), r.as_ref().unwrap().0)).collect();
    assert_eq!(got, expected, "each worker answers from its own process");
    let info = within(client.scheduler_info(&[])).await.unwrap();
    assert_eq!(info.tasks, 0, "run made tasks on the scheduler");

    // A panic on one worker is that worker's error; the others answer.
    let w1 = cluster.worker_pid("w1");
    let out = within(client.run(panic_in_pid, (w1, "run-boom"))).await.unwrap();
    assert_eq!(out.len(), 3);
    match &out["w1"] {
        Err(Error::Task { failure, .. }) => {
            assert_eq!(failure.kind, FailureKind::Panic);
            assert!(failure.message.contains("run-boom"), "{}", failure.message);
        }
        other => panic!("w1: expected a panic, got {other:?}"),
    }
    assert_eq!(out["w0"].as_ref().unwrap(), &expected["w0"]);
    assert_eq!(out["w2"].as_ref().unwrap(), &expected["w2"]);

    // Chosen workers only; unknown names and futures as arguments are refused.
    let only = within(client.run_on(&["w2"], process_identity, ())).await.unwrap();
    assert_eq!(only.keys().collect::<Vec<_>>(), vec!["w2"]);
    match within(client.run_on(&["w0", "nobody"], process_identity, ())).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("nobody") && m.contains("w0"), "{m}"),
        other => panic!("unknown worker: expected InvalidArgument, got {other:?}"),
    }
    let fut = client.submit(inc, (1,)).unwrap();
    match within(client.run(inc, (&fut,))).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("not futures"), "{m}"),
        other => panic!("future argument: expected InvalidArgument, got {other:?}"),
    }

    // A worker that dies while running the function: an error for it, no hang.
    let w0 = cluster.worker_pid("w0");
    let out = within(client.run(abort_in_pid, (w0, 100))).await.unwrap();
    assert!(
        matches!(&out["w0"], Err(Error::KilledWorker { worker, .. }) if worker == "w0"),
        "w0: {:?}",
        out["w0"]
    );
    assert_eq!(out["w1"].as_ref().unwrap(), &expected["w1"]);
    assert_eq!(out["w2"].as_ref().unwrap(), &expected["w2"]);
    eventually("w0's process is gone", || {
        let alive = cluster.worker_alive("w0");
        async move { (!alive).then_some(()) }
    })
    .await;
    assert_eq!(within(client.submit(inc, (41,)).unwrap()).await.unwrap(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_scheduler_runs_in_the_scheduler_process() {
    let (cluster, client) = Cluster::start(1, 1).await;
    let (in_worker, pid) = within(client.run_on_scheduler(where_am_i, ())).await.unwrap();
    assert!(!in_worker, "an async function on the scheduler saw a worker's local directory");
    assert_ne!(pid, std::process::id());
    assert_ne!(pid, cluster.worker_pid("w0"));
    let (sync_pid, _) = within(client.run_on_scheduler(process_identity, ())).await.unwrap();
    assert_eq!(sync_pid, pid, "sync and async functions run in the same scheduler process");

    match within(client.run_on_scheduler(panics, ("sched-boom",))).await {
        Err(Error::Task { failure, .. }) => {
            assert_eq!(failure.kind, FailureKind::Panic);
            assert!(failure.message.contains("sched-boom"));
        }
        other => panic!("panic on the scheduler: expected Error::Task, got {other:?}"),
    }
    match within(client.run_on_scheduler(only_in_this_test, ())).await {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("scheduler's binary") && m.contains("only_in_this_test"), "{m}")
        }
        other => panic!("unregistered function: expected InvalidArgument, got {other:?}"),
    }
    // The scheduler is still fine.
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_worker_processes_and_fails_every_future() {
    let (mut cluster, a) = Cluster::start(2, 1).await;
    let b = cluster.client().await;
    let before = within(a.run(process_identity, ())).await.unwrap();

    let done = a.submit(inc, (1,)).unwrap();
    assert_eq!(within(&done).await.unwrap(), 2);
    let running = a.submit(slow, (20_000, 1)).unwrap();
    let other = b.submit(slow.pure(false), (20_000, 2)).unwrap();
    eventually("the slow tasks are running", || async {
        let states = common::key_states(&a, &[running.key(), other.key()]).await;
        states.iter().all(|s| s.as_deref() == Some("processing")).then_some(())
    })
    .await;

    within(a.restart()).await.unwrap();
    let info = within(a.scheduler_info(&[])).await.unwrap();
    assert_eq!(info.workers.len(), 2, "restart returned before the workers were back");
    assert_eq!(info.tasks, 0, "the scheduler kept tasks across a restart");
    for (name, f) in [("finished", &done), ("running", &running)] {
        match within(f).await {
            Err(Error::Restarted { key }) => assert_eq!(key, f.key()),
            other => panic!("{name} future of the restarting client: got {other:?}"),
        }
        assert_eq!(f.status(), Status::Cancelled);
    }
    assert!(matches!(within(&other).await, Err(Error::Restarted { .. })), "other client's future");

    // Same processes (pids), fresh runs of the binary (new nonces).
    let after = within(a.run(process_identity, ())).await.unwrap();
    assert_eq!(after.len(), 2);
    for (name, r) in &after {
        let (pid, nonce) = r.as_ref().unwrap();
        let (old_pid, old_nonce) = before[name].as_ref().unwrap();
        assert_eq!(pid, old_pid, "{name} changed pid");
        assert_eq!(pid, &cluster.worker_pid(name));
        assert_ne!(nonce, old_nonce, "{name} was not replaced by a fresh process");
        assert!(cluster.worker_alive(name));
    }
    // Tasks run again, for both clients, including the same pure key.
    assert_eq!(within(a.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
    assert_eq!(within(b.submit(inc, (10,)).unwrap()).await.unwrap(), 11);
    let tree = common::tree_sum(&a, a.map(inc, (0..20).map(|i| (i,))).unwrap());
    assert_eq!(within(tree).await.unwrap(), 210);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resets_in_process_workers() {
    let cluster = rudask::LocalCluster::threads(2).await.unwrap();
    let client = cluster.client().await.unwrap();
    let x = client.submit(inc, (1,)).unwrap();
    assert_eq!(within(&x).await.unwrap(), 2);
    let stuck = client.submit(slow, (1_000, 5)).unwrap();
    within(client.restart()).await.unwrap();
    assert!(matches!(within(&x).await, Err(Error::Restarted { .. })));
    assert!(matches!(within(&stuck).await, Err(Error::Restarted { .. })));
    let info = within(client.scheduler_info(&[])).await.unwrap();
    assert_eq!(info.workers.len(), 2);
    assert_eq!(within(client.submit(inc, (2,)).unwrap()).await.unwrap(), 3);
    let here = within(client.run(where_am_i, ())).await.unwrap();
    assert_eq!(here.len(), 2);
    for r in here.values() {
        assert_eq!(r.as_ref().unwrap(), &(true, std::process::id()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_scheduler_and_every_worker() {
    let (mut cluster, a) = Cluster::start(2, 1).await;
    let b = cluster.client().await;
    let pending = a.submit(slow, (20_000, 1)).unwrap();
    let other = b.submit(slow.pure(false), (20_000, 2)).unwrap();
    within(a.shutdown()).await.unwrap();
    assert!(matches!(within(&pending).await, Err(Error::Disconnected(_))));
    assert!(matches!(within(&other).await, Err(Error::Disconnected(_))), "other client");
    assert!(matches!(a.submit(inc, (1,)), Err(Error::Disconnected(_))));
    eventually("the scheduler and workers exit", || {
        let all_gone = !cluster.scheduler_alive()
            && !cluster.worker_alive("w0")
            && !cluster.worker_alive("w1");
        async move { all_gone.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_workers_answers_when_they_join() {
    let mut cluster = Cluster::scheduler().await;
    let client = cluster.client().await;
    within(client.wait_for_workers(0, None)).await.unwrap();

    let mut wait = Box::pin(client.wait_for_workers(2, None));
    assert!(futures::poll!(&mut wait).is_pending());
    cluster.spawn_worker("w0", 1);
    common::wait_for_workers(&client, 1).await;
    // The scheduler answers in order: a premature answer would be here already.
    assert!(futures::poll!(&mut wait).is_pending(), "answered with one worker of two");
    cluster.spawn_worker("w1", 1);
    within(wait).await.unwrap();

    match within(client.wait_for_workers(3, Some(Duration::from_millis(200)))).await {
        Err(Error::Timeout(t)) => assert_eq!(t, Duration::from_millis(200)),
        other => panic!("expected a timeout, got {other:?}"),
    }

    // The scheduler going away ends the wait with an error.
    let waiter = client.clone();
    let pending = tokio::spawn(async move { waiter.wait_for_workers(10, None).await });
    let admin = cluster.client().await;
    within(admin.shutdown()).await.unwrap();
    match within_for(LIMIT, pending).await.unwrap() {
        Err(Error::Disconnected(_)) => {}
        other => panic!("waiting on a stopped scheduler: expected Disconnected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_files_reach_every_worker_including_later_ones() {
    let (mut cluster, client) = Cluster::start(2, 1).await;
    let dir = std::env::temp_dir().join(format!("rudask-upload-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("settings.txt");
    std::fs::write(&path, "first").unwrap();

    within(client.upload_file(&path)).await.unwrap();
    let got = within(client.run(read_local_file, ("settings.txt",))).await.unwrap();
    assert_eq!(got.len(), 2);
    for (w, r) in &got {
        assert_eq!(r.as_ref().unwrap().as_deref(), Some("first"), "{w}");
    }

    std::fs::write(&path, "second").unwrap();
    within(client.upload_file(&path)).await.unwrap();
    cluster.spawn_worker("w2", 1);
    within(client.wait_for_workers(3, Some(LIMIT))).await.unwrap();
    let got = within(client.run(read_local_file, ("settings.txt",))).await.unwrap();
    assert_eq!(got.len(), 3);
    for (w, r) in &got {
        assert_eq!(r.as_ref().unwrap().as_deref(), Some("second"), "{w}");
    }

    // Restarted workers get the files again.
    within(client.restart()).await.unwrap();
    let got = within(client.run(read_local_file, ("settings.txt",))).await.unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.values().all(|r| r.as_ref().unwrap().as_deref() == Some("second")));

    match within(client.upload_file(dir.join("missing.txt"))).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("missing.txt"), "{m}"),
        other => panic!("missing file: expected InvalidArgument, got {other:?}"),
    }
    match within(client.upload_file(&dir)).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("not a regular file"), "{m}"),
        other => panic!("directory: expected InvalidArgument, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

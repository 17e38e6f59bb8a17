//! Failures over real worker processes: tasks that fail or panic, workers
//! killed in the middle of a graph, and tasks that kill their workers.

mod common;

use common::{eventually, key_states, tree_sum, wait_for_workers, within, Cluster};
use rudask::core::FailureKind;
use rudask::{Error, Status};
use rudask_tests::{abort_process, fail, fail_after, inc, panics, slow};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_errors_and_panics_are_reported() {
    let (mut cluster, client) = Cluster::start(1, 1).await;

    // Err(..) from the task.
    let bad = client.submit(fail, ("boom",)).unwrap();
    match within(&bad).await {
        Err(Error::Task { key, failure }) => {
            assert_eq!(key, bad.key());
            assert_eq!(failure.kind, FailureKind::Error);
            assert!(failure.message.contains("boom"), "message: {:?}", failure.message);
        }
        other => panic!("failing task: expected Error::Task, got {other:?}"),
    }
    assert_eq!(bad.status(), Status::Error);
    assert!(matches!(within(bad.exception()).await, Some(Error::Task { .. })));
    let err = within(&bad).await.unwrap_err();
    assert!(err.to_string().contains("boom"), "display: {err}");
    assert!(err.traceback().is_some());

    // A panic.
    let p = client.submit(panics, ("kaboom",)).unwrap();
    match within(&p).await {
        Err(Error::Task { key, failure }) => {
            assert_eq!(key, p.key());
            assert_eq!(failure.kind, FailureKind::Panic);
            assert!(failure.message.contains("kaboom"), "message: {:?}", failure.message);
            assert!(!failure.traceback.trim().is_empty(), "a panic came back without a traceback");
        }
        other => panic!("panicking task: expected Error::Task, got {other:?}"),
    }
    let tb = within(p.traceback()).await.expect("a traceback");
    assert!(!tb.trim().is_empty());

    // A dependent submitted with the failing task, before it failed.
    let late = client.submit(fail_after, (500, "late boom")).unwrap();
    let dep = client.submit(inc, (&late,)).unwrap();
    let dep2 = client.submit(inc, (&dep,)).unwrap();
    for (f, name) in [(&dep, "dependent"), (&dep2, "dependent of the dependent")] {
        match within(f).await {
            Err(Error::Task { key, failure }) => {
                assert_eq!(key, f.key());
                assert_eq!(failure.kind, FailureKind::Error);
                assert!(
                    failure.message.contains("late boom"),
                    "{name} message: {:?}",
                    failure.message
                );
                assert_eq!(failure.origin.as_deref(), Some(late.key()), "origin of the {name}");
            }
            other => panic!("{name} of a failed task: expected Error::Task, got {other:?}"),
        }
    }
    assert!(matches!(within(&late).await, Err(Error::Task { .. })));

    // The worker survived all of it and still computes.
    assert!(cluster.worker_alive("w0"), "a failing task took its worker down");
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
    assert_eq!(within(client.scheduler_info(&[])).await.unwrap().workers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependent_of_an_already_failed_task_names_the_origin() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let bad = client.submit(fail, ("boom",)).unwrap();
    assert!(within(&bad).await.is_err());
    let dep = client.submit(inc, (&bad,)).unwrap();
    match within(&dep).await {
        Err(Error::Task { key, failure }) => {
            assert_eq!(key, dep.key());
            assert!(failure.message.contains("boom"), "message: {:?}", failure.message);
            assert_eq!(failure.origin.as_deref(), Some(bad.key()), "origin of the late dependent");
        }
        other => panic!("dependent of a failed task: expected Error::Task, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_in_the_middle_of_a_graph() {
    let (mut cluster, client) = Cluster::start(3, 1).await;

    let leaves = client.map(slow, (0..60).map(|i| (50, i))).unwrap();
    let total = tree_sum(&client, leaves.clone());
    let keys: Vec<String> = leaves.iter().map(|f| f.key().to_string()).collect();

    // Kill a worker once part of the leaves are done and others still run.
    eventually("some leaves are in memory and some are processing", || {
        let (client, keys) = (&client, &keys);
        async move {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let states = key_states(client, &refs).await;
            let count = |s: &str| states.iter().filter(|x| x.as_deref() == Some(s)).count();
            (count("memory") >= 6 && count("processing") >= 1).then_some(())
        }
    })
    .await;
    assert!(!total.done(), "the graph finished before the kill; the test would prove nothing");
    cluster.kill_worker("w0").await;
    wait_for_workers(&client, 2).await;

    assert_eq!(within(&total).await.unwrap(), (0..60).sum::<i64>());
    assert_eq!(within(client.gather(&leaves)).await.unwrap(), (0..60).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_that_kills_its_workers_errs_with_killed_worker() {
    let (cluster, client) = Cluster::start(4, 1).await;
    let names: Vec<String> = cluster.workers.iter().map(|w| w.name.clone()).collect();

    let f = client.submit(abort_process, (1,)).unwrap();
    match within(&f).await {
        Err(Error::KilledWorker { key, worker, message, .. }) => {
            assert_eq!(key, f.key());
            assert!(names.contains(&worker), "KilledWorker names {worker:?}, not one of {names:?}");
            assert!(!message.is_empty());
        }
        other => panic!("task aborting its workers: expected Error::KilledWorker, got {other:?}"),
    }
    assert_eq!(f.status(), Status::Error);

    // The workers it did not run on are still there and compute.
    let info = within(client.scheduler_info(&[])).await.unwrap();
    assert!(!info.workers.is_empty(), "no worker left");
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}

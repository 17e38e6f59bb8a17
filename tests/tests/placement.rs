//! Where and in what order tasks run, across real processes: worker
//! restrictions (strict and loose), resources, priorities, priority
//! generations (fifo_timeout), retries, executors with fixed options, and
//! what the scheduler reports about its workers.

mod common;

use common::{eventually, wait_for_workers, within, Cluster};
use rudask::{Client, Error, Future, SubmitOptions, TaskExt};
use rudask_tests::{flaky, gpu_job, inc, make_tracked, ticket, worker_of};
use std::collections::BTreeMap;
use std::time::Duration;

/// Values of the futures, in order.
async fn all<T: rudask::Value>(client: &Client, futures: &[Future<T>]) -> Vec<T> {
    within(client.gather(futures)).await.expect("gathering results")
}

/// Waits until the scheduler reports `key` in the no-worker state; returns the reason.
async fn unrunnable_reason(client: &Client, key: &str) -> String {
    eventually(&format!("{key} is reported unrunnable"), || async move {
        let info = within(client.scheduler_info(&[key])).await.expect("scheduler_info");
        let state = info.key_states[0].as_deref();
        let reason = info.unrunnable.iter().find(|u| u.key.as_str() == key);
        match (state, reason) {
            (Some("noworker"), Some(u)) => Some(u.reason.clone()),
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_tasks_run_only_on_the_named_worker() {
    let (cluster, client) = Cluster::start(3, 1).await;
    let on_w1 = client.map(worker_of.workers(["w1"]), (0..20).map(|i| (i,))).unwrap();
    for (name, _) in all(&client, &on_w1).await {
        assert_eq!(name, "w1");
    }

    // A worker's data address works as well as its name.
    let w2 = client.workers().into_iter().find(|w| w.name == "w2").expect("w2 is known");
    let by_addr = client.map(worker_of.workers([w2.data_addr]), (100..110).map(|i| (i,))).unwrap();
    for (name, _) in all(&client, &by_addr).await {
        assert_eq!(name, "w2");
    }
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strictly_restricted_task_waits_for_its_worker_and_runs_there() {
    let (mut cluster, client) = Cluster::start(1, 1).await;
    let f = client.submit(worker_of.workers(["late"]), (1,)).unwrap();
    let reason = unrunnable_reason(&client, f.key()).await;
    assert_eq!(reason, r#"restricted to workers ["late"] which are not connected"#);

    cluster.spawn_worker("late", 1);
    assert_eq!(within(f).await.unwrap(), ("late".to_string(), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_other_workers_prefers_the_listed_worker_but_does_not_require_it() {
    let (cluster, client) = Cluster::start(2, 1).await;
    let preferred =
        client.submit(worker_of.workers(["w1"]).allow_other_workers(true), (1,)).unwrap();
    assert_eq!(within(preferred).await.unwrap().0, "w1");

    let anywhere =
        client.map(worker_of.workers(["ghost"]).allow_other_workers(true), (10..16).map(|i| (i,)));
    for (name, _) in all(&client, &anywhere.unwrap()).await {
        assert!(name == "w0" || name == "w1", "{name}");
    }

    // The same without allow_other_workers does not run.
    let stuck = client.submit(worker_of.workers(["ghost"]), (20,)).unwrap();
    let reason = unrunnable_reason(&client, stuck.key()).await;
    assert!(reason.contains("ghost"), "{reason}");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_limit_where_and_how_many_tasks_run_at_once() {
    let mut cluster = Cluster::scheduler().await;
    cluster.spawn_worker_with("gpu", 4, &["--resources", "GPU=2"]);
    cluster.spawn_worker("cpu", 4);
    let client = cluster.client().await;
    wait_for_workers(&client, 2).await;

    let jobs = client.map(gpu_job.resources([("GPU", 1)]), (0..10).map(|i| (150, i))).unwrap();
    let results = all(&client, &jobs).await;
    let peak = results.iter().map(|(_, n)| *n).max().unwrap();
    assert!(results.iter().all(|(w, _)| w == "gpu"), "{results:?}");
    assert!(peak <= 2, "{peak} GPU jobs ran at once on a worker with GPU=2");

    // Unrestricted jobs are not held back by the resource: all four slots.
    let free = client.map(gpu_job.workers(["gpu"]), (0..8).map(|i| (300, i))).unwrap();
    let peak = all(&client, &free).await.iter().map(|(_, n)| *n).max().unwrap();
    assert!(peak > 2, "plain tasks ran at most {peak} at once on four slots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_no_worker_has_waits_with_a_reason_until_a_worker_offers_it() {
    let (mut cluster, client) = Cluster::start(1, 1).await;
    let f = client.submit(gpu_job.resources([("TPU", 1)]), (10, 1)).unwrap();
    let reason = unrunnable_reason(&client, f.key()).await;
    assert!(reason.contains("needs resource TPU=1"), "{reason}");
    assert!(reason.contains("--resources TPU=1"), "{reason}");

    cluster.spawn_worker_with("tpu", 1, &["--resources", "TPU=1"]);
    assert_eq!(within(f).await.unwrap().0, "tpu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resources_are_refused_with_a_clear_error() {
    let (cluster, client) = Cluster::start(1, 1).await;
    match client.submit(inc.resources([("GPU", -1)]), (1,)) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("GPU=-1"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    match client.submit(inc.allow_other_workers(true), (1,)) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("workers("), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let (ok, stderr) = cluster.run_worker_to_exit(&["--resources", "GPU"]).await;
    assert!(!ok);
    assert!(stderr.contains("--resources") && stderr.contains("NAME=AMOUNT"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_timeout_decides_whether_quick_submissions_interleave() {
    let (cluster, client) = Cluster::start(1, 1).await;
    let labelled =
        |prefix: &str| (0..4).map(move |i| (30u64, format!("{prefix}{i}"))).collect::<Vec<_>>();
    let tickets = |r: Vec<(u64, String)>| r.into_iter().map(|(t, _)| t).collect::<Vec<_>>();

    // fifo_timeout zero: each submission is a generation of its own, so all
    // of a runs before any of b.
    let block = client.submit(ticket.pure(false), (300, "block".to_string())).unwrap();
    let sep = ticket.pure(false).fifo_timeout(Duration::ZERO);
    let a = client.map(sep.clone(), labelled("a")).unwrap();
    let b = client.map(sep, labelled("b")).unwrap();
    let (ta, tb) = (tickets(all(&client, &a).await), tickets(all(&client, &b).await));
    assert!(ta.iter().max() < tb.iter().min(), "a {ta:?} then b {tb:?}");
    within(block).await.unwrap();

    // A long fifo_timeout: both join the generation, and interleave by
    // position in their own submission.
    let block = client.submit(ticket.pure(false), (300, "block".to_string())).unwrap();
    let joint = ticket.pure(false).fifo_timeout(Duration::from_secs(60));
    let a = client.map(joint.clone(), labelled("a")).unwrap();
    let b = client.map(joint, labelled("b")).unwrap();
    let (ta, tb) = (tickets(all(&client, &a).await), tickets(all(&client, &b).await));
    assert!(tb.iter().min() < ta.iter().max(), "a {ta:?} and b {tb:?} interleave");
    within(block).await.unwrap();
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_runs_first_on_a_one_slot_worker() {
    let (cluster, client) = Cluster::start(1, 1).await;
    // Once the scheduler has seen how long tasks take, it hands a worker
    // only about one task per slot beyond those it runs; the rest wait in
    // the scheduler's queue, which is where priorities decide.
    within(client.submit(ticket.pure(false), (50, "warm-up".to_string())).unwrap()).await.unwrap();
    let block = client.submit(ticket.pure(false), (300, "block".to_string())).unwrap();
    let low = client.map(ticket.pure(false).priority(-1), (0..8).map(|i| (50, format!("low{i}"))));
    let high = client.map(ticket.pure(false).priority(5), (0..3).map(|i| (50, format!("high{i}"))));
    let low: Vec<u64> = all(&client, &low.unwrap()).await.into_iter().map(|t| t.0).collect();
    let high: Vec<u64> = all(&client, &high.unwrap()).await.into_iter().map(|t| t.0).collect();
    // The worker may already have started a low one it held when the high
    // ones arrived; every other low one waits for them.
    let last_high = high.iter().max().unwrap();
    let lows_before = low.iter().filter(|t| *t < last_high).count();
    assert!(lows_before <= 1, "high {high:?} should run before low {low:?}");
    within(block).await.unwrap();
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_rerun_a_failing_task_on_the_cluster() {
    let (cluster, client) = Cluster::start(2, 1).await;
    let dir = std::env::temp_dir().join(format!(
        "rudask-flaky-{}-{}",
        std::process::id(),
        unique_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();

    let enough = client.submit(flaky.retries(2), (path("enough"), 2)).unwrap();
    assert_eq!(within(enough).await.unwrap(), 3, "two failures, then the third run succeeds");

    let short = client.submit(flaky.retries(1), (path("short"), 2)).unwrap();
    match within(short).await {
        Err(Error::Task { failure, .. }) => {
            assert_eq!(failure.message, "flaky failure on run 2")
        }
        other => panic!("expected the second failure, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(path("short")).unwrap(), "2", "ran exactly twice");
    std::fs::remove_dir_all(&dir).unwrap();
    drop(cluster);
}

/// A number that differs between test runs, for scratch file names.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_applies_its_options_to_every_submission() {
    let (cluster, client) = Cluster::start(2, 1).await;
    let on_w1 = client.get_executor(SubmitOptions::new().workers(["w1"]).pure(false));
    let x = on_w1.submit(worker_of, (1,)).unwrap();
    let y = on_w1.submit(worker_of, (1,)).unwrap();
    assert_ne!(x.key(), y.key(), "pure(false) from the executor");
    assert_eq!(within(x).await.unwrap().0, "w1");
    assert_eq!(within(y).await.unwrap().0, "w1");
    let many = on_w1.map(worker_of, (0..8).map(|i| (i,))).unwrap();
    assert!(all(&client, &many).await.iter().all(|(w, _)| w == "w1"));
    assert_eq!(on_w1.client().scheduler_address(), client.scheduler_address());

    let bad = client.get_executor(SubmitOptions::new().allow_other_workers(true));
    assert!(matches!(bad.submit(inc, (1,)), Err(Error::InvalidArgument(_))));
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nthreads_and_ncores_give_the_slots_of_each_worker() {
    let mut cluster = Cluster::scheduler().await;
    cluster.spawn_worker("w0", 2);
    cluster.spawn_worker("w1", 3);
    let client = cluster.client().await;
    wait_for_workers(&client, 2).await;
    let expected = BTreeMap::from([("w0".to_string(), 2), ("w1".to_string(), 3)]);
    assert_eq!(within(client.nthreads()).await.unwrap(), expected);
    assert_eq!(within(client.ncores()).await.unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_info_reports_memory_managed_bytes_and_resources() {
    let mut cluster = Cluster::scheduler().await;
    cluster.spawn_worker_with("g", 2, &["--resources", "GPU=2 MEM=1e9"]);
    let client = cluster.client().await;
    let info = wait_for_workers(&client, 1).await;
    let w = &info.workers[0];
    assert_eq!(w.nthreads, 2);
    assert_eq!(w.resources, vec![("GPU".to_string(), 2.0), ("MEM".to_string(), 1e9)]);

    eventually("the worker reports its memory", || async {
        let info = within(client.scheduler_info(&[])).await.unwrap();
        (info.workers[0].memory > 1 << 20).then_some(())
    })
    .await;

    let big = client.submit(make_tracked, (100_000,)).unwrap();
    within(&big).await.unwrap();
    let info = within(client.scheduler_info(&[])).await.unwrap();
    assert!(info.workers[0].managed_bytes >= 100_000, "{:?}", info.workers[0]);
    drop(big);
    eventually("the released result no longer counts", || async {
        let info = within(client.scheduler_info(&[])).await.unwrap();
        (info.workers[0].managed_bytes == 0).then_some(())
    })
    .await;
}

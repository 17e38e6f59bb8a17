//! Data and lifetimes over real worker processes: scatter, cancel, and
//! releasing keys when their last future is dropped.

mod common;

use common::{eventually, key_states, wait_for_workers, within, Cluster};
use rudask::{Error, Status, TaskExt};
use rudask_tests::{inc, pid_with, slow, sum};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_big_value_then_compute_and_gather() {
    let (_cluster, client) = Cluster::start(2, 1).await;

    let big: Vec<f64> = (0..1_000_000).map(|i| (i % 1000) as f64).collect();
    let expected: f64 = big.iter().sum();
    let mut scattered = within(client.scatter(vec![big.clone()])).await.unwrap();
    assert_eq!(scattered.len(), 1);
    let data = scattered.remove(0);
    assert_eq!(data.status(), Status::Finished);

    let total = client.submit(sum, (&data,)).unwrap();
    assert_eq!(within(&total).await.unwrap(), expected);
    let back = within(client.gather(std::slice::from_ref(&data))).await.unwrap();
    assert!(back[0] == big, "gathered value differs from the scattered one");
    assert!(within(&data).await.unwrap() == big);

    // Several values at once keep their order.
    let parts = within(client.scatter((0..5).map(|i| vec![i as f64; 10]))).await.unwrap();
    let sums = client.map(sum, parts.iter().map(|p| (p,))).unwrap();
    assert_eq!(within(client.gather(&sums)).await.unwrap(), [0.0, 10.0, 20.0, 30.0, 40.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_to_named_worker_and_broadcast() {
    let (mut cluster, client) = Cluster::start(2, 1).await;

    // To a named worker: a task reading it runs where the data is.
    for name in ["w0", "w1"] {
        let data = within(client.scatter(vec![vec![1.0f64; 1000]]).workers([name]))
            .await
            .unwrap()
            .remove(0);
        let probe = client.submit(pid_with, (&data,)).unwrap();
        let (pid, len) = within(probe).await.unwrap();
        assert_eq!(len, 1000);
        assert_eq!(
            pid,
            cluster.worker_pid(name),
            "a task on data scattered to {name} ran elsewhere"
        );
    }
    match within(client.scatter(vec![1i64]).workers(["nobody"])).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("nobody"), "{m}"),
        other => panic!("scatter to an unknown worker: expected InvalidArgument, got {other:?}"),
    }

    // Broadcast: every worker holds a copy, so the value survives losing one.
    let values: Vec<f64> = (0..10_000).map(f64::from).collect();
    let expected: f64 = values.iter().sum();
    let shared =
        within(client.scatter(vec![values.clone()]).broadcast(true)).await.unwrap().remove(0);
    // Tasks reading it run on both workers, each on its own copy.
    let probes = client.map(pid_with.pure(false), (0..10).map(|_| (&shared,))).unwrap();
    let ran_on: std::collections::BTreeSet<u32> =
        within(client.gather(&probes)).await.unwrap().into_iter().map(|(pid, _)| pid).collect();
    let expected_pids: std::collections::BTreeSet<u32> =
        ["w0", "w1"].map(|n| cluster.worker_pid(n)).into();
    assert_eq!(ran_on, expected_pids, "tasks on broadcast data did not run on every worker");
    cluster.kill_worker("w0").await;
    wait_for_workers(&client, 1).await;
    let total = client.submit(sum, (&shared,)).unwrap();
    assert_eq!(
        within(&total).await.unwrap(),
        expected,
        "broadcast data lost with one of its workers"
    );
    assert!(within(&shared).await.unwrap() == values);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_slow_task_and_its_dependent() {
    let (_cluster, client) = Cluster::start(2, 1).await;

    let slow_one = client.submit(slow, (2_000, 1)).unwrap();
    let dependent = client.submit(inc, (&slow_one,)).unwrap();
    // Wait until it really runs, so the cancel hits a processing task.
    let key = slow_one.key().to_string();
    eventually("the slow task is processing", || {
        let (client, key) = (&client, key.as_str());
        async move {
            (key_states(client, &[key]).await[0].as_deref() == Some("processing")).then_some(())
        }
    })
    .await;
    client.cancel(std::slice::from_ref(&slow_one));

    match within(&slow_one).await {
        Err(Error::Cancelled { key }) => assert_eq!(key, slow_one.key()),
        other => panic!("cancelled future: expected Error::Cancelled, got {other:?}"),
    }
    match within(&dependent).await {
        Err(Error::Cancelled { key }) => assert_eq!(key, dependent.key()),
        other => {
            panic!("dependent of a cancelled future: expected Error::Cancelled, got {other:?}")
        }
    }
    assert_eq!(slow_one.status(), Status::Cancelled);
    assert_eq!(dependent.status(), Status::Cancelled);
    match within(client.gather(std::slice::from_ref(&dependent))).await {
        Err(Error::Cancelled { .. }) => {}
        other => panic!("gather of a cancelled future: expected Error::Cancelled, got {other:?}"),
    }

    // Future::cancel behaves the same.
    let other = client.submit(slow, (2_000, 2)).unwrap();
    other.cancel();
    assert!(matches!(within(&other).await, Err(Error::Cancelled { .. })));

    // The cluster still computes.
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_future_releases_the_key() {
    let (_cluster, client) = Cluster::start(1, 1).await;

    let x = client.submit(inc, (1,)).unwrap();
    assert_eq!(within(&x).await.unwrap(), 2);
    let key = x.key().to_string();
    assert_eq!(key_states(&client, &[&key]).await[0].as_deref(), Some("memory"));

    // A clone keeps the key alive.
    let clone = x.clone();
    drop(x);
    let info = within(client.scheduler_info(&[&key])).await.unwrap();
    assert_eq!(info.key_states[0].as_deref(), Some("memory"), "released while a clone was alive");
    drop(clone);
    forgotten(&client, &[&key]).await;

    // A chain: the dependency stays as long as the dependent needs it, and
    // everything goes once the last handle is dropped.
    let a = client.submit(slow, (200, 5)).unwrap();
    let b = client.submit(inc, (&a,)).unwrap();
    let (ka, kb) = (a.key().to_string(), b.key().to_string());
    drop(a);
    assert_eq!(within(&b).await.unwrap(), 6);
    drop(b);
    forgotten(&client, &[&ka, &kb]).await;

    // Many keys at once.
    let many = client.map(inc, (0..100).map(|i| (i,))).unwrap();
    within(client.gather(&many)).await.unwrap();
    let keys: Vec<String> = many.iter().map(|f| f.key().to_string()).collect();
    drop(many);
    forgotten(&client, &keys.iter().map(String::as_str).collect::<Vec<_>>()).await;
}

/// Waits until the scheduler forgot `keys` and holds no task at all.
async fn forgotten(client: &rudask::Client, keys: &[&str]) {
    eventually(&format!("the scheduler forgets {keys:?} and holds no tasks"), || async move {
        let info = within(client.scheduler_info(keys)).await.unwrap();
        (info.key_states.iter().all(Option::is_none) && info.tasks == 0).then_some(())
    })
    .await;
}

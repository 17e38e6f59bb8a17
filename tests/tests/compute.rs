//! Computing over real worker processes: submit, map, gather, dependencies
//! between workers, pure keys; and the in-process cluster.

mod common;

use common::{tree_sum, within, Cluster};
use rudask::{Status, TaskExt};
use rudask_tests::{add, describe, fingerprint, inc, spin, sum};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_map_gather() {
    let (cluster, client) = Cluster::start(2, 1).await;

    let mut names: Vec<String> = client.workers().into_iter().map(|w| w.name).collect();
    names.sort();
    assert_eq!(names, ["w0", "w1"]);
    assert!(client.workers().iter().all(|w| w.nthreads == 1));

    let one = client.submit(inc, (41,)).unwrap();
    assert_eq!(within(&one).await.unwrap(), 42);
    assert_eq!(one.status(), Status::Finished);
    assert!(one.done());
    assert_eq!(within(one.result_timeout(std::time::Duration::from_secs(20))).await.unwrap(), 42);

    let futures = client.map(inc, (0..1000).map(|i| (i,))).unwrap();
    assert_eq!(futures.len(), 1000);
    let results = within(client.gather(&futures)).await.unwrap();
    assert_eq!(results, (1..=1000).collect::<Vec<i64>>());

    // Awaiting a future by value works too.
    let last = futures.last().unwrap().clone();
    assert_eq!(within(last).await.unwrap(), 1000);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_across_workers() {
    let (_cluster, client) = Cluster::start(2, 1).await;

    // A tree reduction over 200 leaves (values 1..=200).
    let leaves = client.map(inc, (0..200).map(|i| (i,))).unwrap();
    let total = tree_sum(&client, leaves);
    assert_eq!(within(&total).await.unwrap(), 200 * 201 / 2);

    // Two inputs that live on different workers force a transfer.
    let a = within(client.scatter(vec![20i64]).workers(["w0"])).await.unwrap().remove(0);
    let b = within(client.scatter(vec![22i64]).workers(["w1"])).await.unwrap().remove(0);
    let ab = client.submit(add, (&a, &b)).unwrap();
    assert_eq!(within(&ab).await.unwrap(), 42);
    let ab2 = client.submit(add, (&ab, &a)).unwrap();
    assert_eq!(within(&ab2).await.unwrap(), 62);

    // A String and a Vec<f64> argument, given as values and as a future.
    let xs = vec![0.5, 1.5, 2.0];
    let d = client.submit(describe, ("floats", xs.clone())).unwrap();
    assert_eq!(within(&d).await.unwrap(), "floats: n=3 sum=4");
    let label = within(client.scatter(vec!["remote".to_string()])).await.unwrap().remove(0);
    let d2 = client.submit(describe, (&label, xs)).unwrap();
    assert_eq!(within(&d2).await.unwrap(), "remote: n=3 sum=4");
    let s = client.submit(sum, (vec![1.0, 2.0, 3.5],)).unwrap();
    assert_eq!(within(s).await.unwrap(), 6.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pure_keys_run_once() {
    let (_cluster, client) = Cluster::start(2, 1).await;

    // Submitted twice while the first run is still going: one key, one run.
    let a = client.submit(fingerprint, (7,)).unwrap();
    let b = client.submit(fingerprint, (7,)).unwrap();
    assert_eq!(a.key(), b.key());
    let (ra, rb) = within(async { (a.result().await, b.result().await) }).await;
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra, rb, "two submissions of one pure call ran twice");
    assert_eq!(ra.2, 7);

    // Submitted again after it finished, while a handle is alive: the stored result.
    let c = client.submit(fingerprint, (7,)).unwrap();
    assert_eq!(c.key(), a.key());
    assert_eq!(within(&c).await.unwrap(), ra);

    // Different arguments: a different key.
    let other = client.submit(fingerprint, (8,)).unwrap();
    assert_ne!(other.key(), a.key());

    // Impure submissions get fresh keys and run every time.
    let x = client.submit(fingerprint.pure(false), (7,)).unwrap();
    let y = client.submit(fingerprint.pure(false), (7,)).unwrap();
    assert_ne!(x.key(), y.key());
    assert_ne!(x.key(), a.key());
    let (rx, ry) = within(async { (x.result().await, y.result().await) }).await;
    let (rx, ry) = (rx.unwrap(), ry.unwrap());
    assert_ne!(rx, ry, "impure submissions shared a run");
    assert_ne!(rx, ra);

    // An explicit key is used as given.
    let k = client.submit(inc.key("my-key"), (1,)).unwrap();
    assert_eq!(k.key(), "my-key");
    assert_eq!(within(&k).await.unwrap(), 2);
    let mapped = client.map(inc.key("batch"), (0..3).map(|i| (i,))).unwrap();
    let keys: Vec<&str> = mapped.iter().map(|f| f.key()).collect();
    assert_eq!(keys, ["batch-0", "batch-1", "batch-2"]);
    assert_eq!(within(client.gather(&mapped)).await.unwrap(), [1, 2, 3]);
    assert_eq!(within(other).await.unwrap().2, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_cluster() {
    let cluster = within(rudask::LocalCluster::threads(2)).await.unwrap();
    let client = within(cluster.client()).await.unwrap();
    let futures = client.map(inc, (0..100).map(|i| (i,))).unwrap();
    assert_eq!(within(client.gather(&futures)).await.unwrap(), (1..=100).collect::<Vec<i64>>());
    let total = tree_sum(&client, futures);
    assert_eq!(within(&total).await.unwrap(), 5050);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_cluster_passes_values_without_encoding() {
    use rudask_tests::{make_tracked, sum_tracked, Tracked, TRACKED_ENCODES};
    use std::sync::atomic::Ordering;
    let cluster = within(rudask::LocalCluster::threads(2)).await.unwrap();
    let client = within(cluster.client()).await.unwrap();
    let before = TRACKED_ENCODES.load(Ordering::SeqCst);
    // A big value (past the inline limit) made by a task, consumed by tasks
    // on both workers, and gathered; then one scattered by the client.
    let made = client.submit(make_tracked, (100_000u64,)).unwrap();
    let sums = client.map(sum_tracked.pure(false), (0..4).map(|_| (&made,))).unwrap();
    let expected = Tracked(vec![(0..100_000u64).sum()]);
    assert_eq!(within(client.gather(&sums)).await.unwrap(), vec![expected.clone(); 4]);
    assert_eq!(within(&made).await.unwrap().0.len(), 100_000);
    let scattered = within(client.scatter([Tracked((0..100_000).collect())])).await.unwrap();
    let from_scatter = client.submit(sum_tracked, (&scattered[0],)).unwrap();
    assert_eq!(within(&from_scatter).await.unwrap(), expected);
    assert_eq!(
        TRACKED_ENCODES.load(Ordering::SeqCst) - before,
        0,
        "values were encoded inside an in-process cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_tasks_complete_on_multi_slot_workers() {
    let (_cluster, client) = Cluster::start(1, 2).await;
    // 120 us: long enough for the other slot's thread to block in recv, short
    // enough for the batching path, and too long to be run inline.
    for i in 0..20 {
        let f = client.submit(spin.pure(false), (120,)).unwrap();
        match tokio::time::timeout(std::time::Duration::from_secs(10), f.result()).await {
            Ok(r) => assert_eq!(r.unwrap(), 120, "round {i}"),
            Err(_) => panic!("a 120 us task submitted in round {i} never completed"),
        }
    }
}

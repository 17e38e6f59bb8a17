//! Data placement, task graphs and the profile over real worker processes:
//! who_has / has_what, replicate (surviving a SIGKILLed holder), rebalance,
//! submit_graph / get, and per-function run times.

mod common;

use common::{key_states, wait_for_workers, within, Cluster};
use rudask::core::graph::{Arg, Key, TaskGraph, TaskSpec};
use rudask::{Error, GraphBuilder, Task, TaskExt};
use rudask_tests::{add, inc, spin, sum};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicate_beyond_the_worker_count_survives_a_killed_holder() {
    let (mut cluster, client) = Cluster::start(3, 1).await;
    let values: Vec<f64> = (0..20_000).map(f64::from).collect();
    let expected: f64 = values.iter().sum();
    let data = within(client.scatter(vec![values.clone()]).workers(["w0"])).await.unwrap();
    let key = data[0].key().to_string();

    let holders = within(client.who_has(&data)).await.unwrap();
    assert_eq!(holders, BTreeMap::from([(key.clone(), vec!["w0".to_string()])]));

    within(client.replicate(&data, 10)).await.unwrap();
    let mut holders = within(client.who_has(&data)).await.unwrap().remove(&key).unwrap();
    holders.sort();
    assert_eq!(holders, ["w0", "w1", "w2"], "replicate with n > workers copies to all");
    let held = within(client.has_what()).await.unwrap();
    assert_eq!(held.len(), 3);
    for (worker, keys) in &held {
        assert_eq!(keys.as_slice(), std::slice::from_ref(&key), "{worker} holds {keys:?}");
    }

    // The only original holder dies; the replicas serve the data.
    cluster.kill_worker("w0").await;
    wait_for_workers(&client, 2).await;
    assert_eq!(key_states(&client, &[&key]).await[0].as_deref(), Some("memory"));
    let mut holders = within(client.who_has(&data)).await.unwrap().remove(&key).unwrap();
    holders.sort();
    assert_eq!(holders, ["w1", "w2"]);
    assert!(within(data[0].result()).await.unwrap() == values, "data lost with w0");
    let total = client.submit(sum, (&data[0],)).unwrap();
    assert_eq!(within(total).await.unwrap(), expected);

    // Bad input: clear errors, nothing changes.
    match within(client.replicate(&data, 0)).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("n >= 1"), "{m}"),
        other => panic!("replicate with n = 0: expected InvalidArgument, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_evens_out_bytes_and_keeps_every_value() {
    let (_cluster, client) = Cluster::start(3, 1).await;
    let values: Vec<Vec<f64>> = (0..12).map(|i| vec![f64::from(i); 5_000]).collect();
    let parts = within(client.scatter(values.clone()).workers(["w0"])).await.unwrap();
    let counts = |held: &BTreeMap<String, Vec<String>>| {
        held.iter().map(|(w, k)| (w.clone(), k.len())).collect::<Vec<_>>()
    };
    let before = within(client.has_what()).await.unwrap();
    assert_eq!(counts(&before), [("w0".into(), 12), ("w1".into(), 0), ("w2".into(), 0)]);

    within(client.rebalance(&parts)).await.unwrap();
    // Equal-sized values: equal bytes means equal counts.
    let after = within(client.has_what()).await.unwrap();
    assert_eq!(
        counts(&after),
        [("w0".into(), 4), ("w1".into(), 4), ("w2".into(), 4)],
        "bytes per worker not even after rebalance: {after:?}"
    );
    // Moved, not copied: every key has exactly one holder.
    let holders = within(client.who_has(&parts)).await.unwrap();
    assert!(holders.values().all(|w| w.len() == 1), "{holders:?}");
    // Already balanced: nothing moves.
    within(client.rebalance_all()).await.unwrap();
    let again = within(client.has_what()).await.unwrap();
    assert_eq!(counts(&again), counts(&after));
    assert_eq!(within(client.gather(&parts)).await.unwrap(), values, "a value was lost");
    let sums = client.map(sum, parts.iter().map(|p| (p,))).unwrap();
    let expected: Vec<f64> = (0..12).map(|i| f64::from(i) * 5_000.0).collect();
    assert_eq!(within(client.gather(&sums)).await.unwrap(), expected);

    // Rebalancing a future that failed reports its failure.
    let failed = client.submit(rudask_tests::fail, ("no".to_string(),)).unwrap();
    match within(client.rebalance(&[failed])).await {
        Err(Error::Task { failure, .. }) => assert!(failure.message.contains("no")),
        other => panic!("rebalance of a failed future: expected its error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphs_of_values_keys_and_futures_run() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let ten = client.submit(inc, (9,)).unwrap();

    let mut g = GraphBuilder::new();
    let a = g.add(inc.key("graph-a"), (1,)).unwrap();
    let b = g.add(add, (&a, &ten)).unwrap();
    let c = g.add(add, (&a, &b)).unwrap();
    drop(ten); // the builder keeps the future's key alive
    assert_eq!(a.key(), "graph-a");
    assert_eq!(within(client.get(&g, &[&c, &a])).await.unwrap(), [14, 2]);
    let futures = client.submit_graph(&g, &[&b]).unwrap();
    assert_eq!(within(&futures[0]).await.unwrap(), 12);

    // A graph of specs, as collections emit it, with keys named by the caller.
    let arg = |v: i64| Arg::Value(rudask::core::registry::encode(&v).unwrap());
    let spec = |key: &str, func: &str, args: Vec<Arg>| TaskSpec {
        key: Key::from(key),
        func: func.into(),
        args,
        options: Default::default(),
    };
    let graph: TaskGraph = [
        spec("x", inc.id(), vec![arg(1)]),
        spec("y", add.id(), vec![Arg::Dep("x".into()), arg(5)]),
        spec("unused", inc.id(), vec![Arg::Dep("missing".into())]),
    ]
    .into_iter()
    .collect();
    assert_eq!(within(client.get::<i64>(&graph, &["y", "x"])).await.unwrap(), [7, 2]);

    // A dependency neither in the graph nor held: refused before submitting.
    match client.get::<i64>(&graph, &["unused"]).await {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("missing") && m.contains("unused"), "{m}")
        }
        other => {
            panic!("graph with an unknown dependency: expected InvalidArgument, got {other:?}")
        }
    }
    match client.submit_graph::<i64>(&graph, &["nope"]) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("nope"), "{m}"),
        other => panic!("unknown output: expected InvalidArgument, got {other:?}"),
    }

    // A cycle fails its tasks in the scheduler.
    let cyclic: TaskGraph = [
        spec("p", inc.id(), vec![Arg::Dep("q".into())]),
        spec("q", inc.id(), vec![Arg::Dep("p".into())]),
    ]
    .into_iter()
    .collect();
    match within(client.get::<i64>(&cyclic, &["p"])).await {
        Err(Error::Task { failure, .. }) => assert!(failure.message.contains("cycle"), "{failure}"),
        other => panic!("cyclic graph: expected a task error, got {other:?}"),
    }

    // The cluster is fine afterwards.
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_counts_tasks_and_time_per_function_and_worker() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let spins = client.map(spin, (0..20u64).map(|i| (2_000 + i,))).unwrap();
    let incs = client.map(inc, (0..10).map(|i| (i,))).unwrap();
    within(client.gather(&spins)).await.unwrap();
    within(client.gather(&incs)).await.unwrap();

    let profile = within(client.profile()).await.unwrap();
    let s = profile.function(spin.id()).expect("spin in the profile");
    assert_eq!(s.count, 20);
    // Each spin busy-waits at least 2 ms, so the measured time is at least that.
    assert!(s.total >= Duration::from_millis(40), "spin total {:?}", s.total);
    assert_eq!(s.workers.iter().map(|w| w.count).sum::<u64>(), 20);
    assert_eq!(s.workers.iter().map(|w| w.total).sum::<Duration>(), s.total);
    assert!(s.workers.iter().all(|w| w.worker == "w0" || w.worker == "w1"), "{:?}", s.workers);
    assert_eq!(profile.function(inc.id()).map(|f| f.count), Some(10));
    assert_eq!(profile.functions[0].function, spin.id(), "most time first");
}

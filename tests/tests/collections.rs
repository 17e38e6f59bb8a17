//! The `Collection` machinery end to end over TCP with worker processes:
//! persist keeps partitions on the cluster, compute finalizes on a worker,
//! options reach every task.

mod common;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use common::{within, Cluster};
use rudask::{Collection, PersistOptions};
use rudask_collections::DataFrame;
use std::sync::Arc;

fn accounts(rows: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "name",
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("n{}", i % 7)))) as _,
        ),
        ("balance", Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i - rows / 2))) as _),
    ])
    .unwrap()
}

/// Where each partition of a persisted collection is, by key.
async fn who_has<C: Collection>(
    client: &rudask::Client,
    coll: &C,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let futures =
        client.submit_graph::<()>(&rudask::TaskGraph::new(), &coll.keys()).expect("held keys");
    within(client.who_has(&futures)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_then_compute_gives_back_the_same_rows() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts(1000);
    let df = DataFrame::from_batches(vec![batch.clone()], 4).unwrap();
    let persisted = client.persist(&df).unwrap();
    assert_eq!(persisted.keys(), df.keys(), "same partitions, now held");
    within(client.wait_collection(&persisted)).await.unwrap();
    assert_eq!(who_has(&client, &persisted).await.len(), 4);
    let table = within(client.compute(&persisted).unwrap()).await.unwrap();
    assert_eq!(table.into_inner(), batch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_options_restrict_where_partitions_live() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let df = DataFrame::from_batches(vec![accounts(100)], 3).unwrap();
    let opts = PersistOptions::new().workers(["w1"]).retries(1).priority(5);
    let persisted = client.persist_with(&df, &opts).unwrap();
    within(client.wait_collection(&persisted)).await.unwrap();
    let who = who_has(&client, &persisted).await;
    assert_eq!(who.len(), 3);
    assert!(who.values().all(|ws| ws.len() == 1 && ws[0].contains("w1")), "{who:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_with_actors_keeps_each_partition_as_an_actor_on_its_worker() {
    use rudask_tests::bag::Bag;
    use rudask_tests::shards::{shard_sum, Shard, Shards};
    let (_cluster, client) = Cluster::start(2, 1).await;
    let shards = Shards::of(&Bag::from_vec((0..40).collect(), 4));
    let shards = client.persist_with(&shards, &PersistOptions::new().actors(true)).unwrap();
    let handles = within(client.actors_of::<Shard, _>(&shards)).await.unwrap();
    assert_eq!(handles.len(), 4);
    let who = who_has(&client, &shards).await;
    assert_eq!(who.values().flatten().collect::<std::collections::BTreeSet<_>>().len(), 2);

    // Calls change each actor's state in place, on its worker.
    let sums: Vec<i64> = (0..4).map(|p| (p * 10..p * 10 + 10).sum()).collect();
    for (h, sum) in handles.iter().zip(&sums) {
        assert_eq!(within(h.sum()).await.unwrap(), *sum);
        assert_eq!(within(h.push(1000)).await.unwrap(), 11);
        assert_eq!(within(h.attr_pushed()).await.unwrap(), 1);
    }
    // Handles got again reach the same actors.
    let again = within(client.actors_of::<Shard, _>(&shards)).await.unwrap();
    assert_eq!(within(again[2].sum()).await.unwrap(), sums[2] + 1000);
    // A task taking a partition gets a handle to its actor.
    let key = shards.keys()[1].clone();
    let part: rudask::Future<rudask::Actor<Shard>> =
        client.submit_graph(&rudask::TaskGraph::new(), &[key]).unwrap().remove(0);
    let f = client.submit(shard_sum, (&part,)).unwrap();
    assert_eq!(within(f).await.unwrap(), sums[1] + 1000);

    // The actors live while the collection or a handle does.
    drop((shards, again, part));
    assert_eq!(within(handles[0].sum()).await.unwrap(), sums[0] + 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_with_actors_errors_name_the_problem() {
    use rudask_tests::bag::Bag;
    use rudask_tests::shards::{Shard, Shards};
    let (_cluster, client) = Cluster::start(1, 1).await;
    let actors = PersistOptions::new().actors(true);
    // Partitions that are not of an actor type fail their tasks.
    let bag = client.persist_with(&Bag::from_vec((0..10).collect(), 2), &actors).unwrap();
    let err = within(client.wait_collection(&bag)).await.unwrap_err();
    assert!(err.to_string().contains("not an actor type"), "{err}");
    // Asking for another actor type, or for actors of a collection of values.
    let shards = client.persist_with(&Shards::of(&Bag::from_vec(vec![1], 1)), &actors).unwrap();
    let err = within(client.actors_of::<rudask_tests::TestCounter, _>(&shards)).await.unwrap_err();
    assert!(matches!(&err, rudask::Error::Type { .. }), "{err}");
    assert!(err.to_string().contains("Shard"), "{err}");
    let values = client.persist(&Shards::of(&Bag::from_vec(vec![1], 1))).unwrap();
    let err = within(client.actors_of::<Shard, _>(&values)).await.unwrap_err();
    assert!(err.to_string().contains("actors(true)"), "{err}");
    // A persisted partition is a value already; compute gives one value.
    let err = client.persist_with(&values, &actors).unwrap_err();
    assert!(err.to_string().contains("already on the cluster"), "{err}");
    let err = client.compute_with(&values, &actors).unwrap_err();
    assert!(err.to_string().contains("actors_of"), "{err}");
    // Without actors, the same collection computes as values.
    assert_eq!(within(client.compute(&values).unwrap()).await.unwrap(), vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_collection_persists_computes_and_publishes() {
    use rudask_tests::bag::{double, Bag};
    let (cluster, client) = Cluster::start(2, 1).await;
    let items: Vec<i64> = (0..1000).collect();
    let bag = client.persist(&Bag::from_vec(items.clone(), 5).map_partitions(double)).unwrap();
    let doubled: Vec<i64> = items.iter().map(|x| x * 2).collect();
    assert_eq!(within(client.compute(&bag).unwrap()).await.unwrap(), doubled);
    within(client.publish_dataset("bag", &bag)).await.unwrap();
    let other = cluster.client().await;
    let got: Bag = within(other.get_dataset("bag")).await.unwrap();
    assert_eq!(within(other.compute(&got).unwrap()).await.unwrap(), doubled);
    let err = within(other.get_dataset::<DataFrame>("bag")).await.unwrap_err();
    assert!(err.to_string().contains("rudask_tests.Bag<i64>"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_with_actors_works_in_process_too() {
    use rudask_tests::bag::Bag;
    use rudask_tests::shards::{Shard, Shards};
    let cluster = rudask::LocalCluster::threads(2).await.unwrap();
    let client = cluster.client().await.unwrap();
    let shards = Shards::of(&Bag::from_vec((0..6).collect(), 3));
    let shards = client.persist_with(&shards, &PersistOptions::new().actors(true)).unwrap();
    let handles = within(client.actors_of::<Shard, _>(&shards)).await.unwrap();
    let mut sums = Vec::new();
    for h in &handles {
        within(h.push(10)).await.unwrap();
        sums.push(within(h.sum()).await.unwrap());
    }
    assert_eq!(sums, vec![11, 15, 19]);
}

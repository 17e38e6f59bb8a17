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
async fn persist_with_actors_is_a_clear_unsupported_error() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let df = DataFrame::from_batches(vec![accounts(10)], 1).unwrap();
    let err = client.persist_with(&df, &PersistOptions::new().actors(true)).unwrap_err();
    assert!(matches!(err, rudask::Error::Unsupported(_)), "{err}");
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

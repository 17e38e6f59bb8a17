//! Published datasets end to end over TCP with worker processes: publish,
//! list, get and unpublish across clients; the mapping handle; data that
//! outlives its clients; the durable store across a scheduler killed with
//! SIGKILL; damaged partitions; concurrent publishers.

mod common;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use common::{eventually, within, Cluster};
use rudask::{Collection, Error, Future, Futures};
use rudask_collections::{Array, DataFrame};
use std::path::PathBuf;
use std::sync::Arc;

fn accounts(rows: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "name",
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("n{}", i % 13)))) as _,
        ),
        (
            "balance",
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i * 7 % 101 - 50))) as _,
        ),
    ])
    .unwrap()
}

/// A fresh directory for a dataset store, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("rudask-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        TempDir(d)
    }
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_dataframe_outlives_its_client_and_any_client_gets_it() {
    let (cluster, first) = Cluster::start(2, 1).await;
    let batch = accounts(2000);
    let df = first.persist(&DataFrame::from_batches(vec![batch.clone()], 4).unwrap()).unwrap();
    within(first.wait_collection(&df)).await.unwrap();
    let total = first.submit(rudask_tests::inc, (41,)).unwrap();
    first
        .publish_dataset("accounts", &df)
        .and("answer", &total)
        .and("many", &Futures(vec![total.clone(), total.clone()]))
        .await
        .unwrap();
    drop((df, total));
    first.close();

    let second = cluster.client().await;
    let names: Vec<String> =
        within(second.list_datasets()).await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["accounts", "answer", "many"]);
    let info = within(second.list_datasets()).await.unwrap().remove(0);
    assert_eq!((info.partitions, info.in_memory, info.on_disk), (4, true, false));
    assert!(
        info.nbytes > 20_000 && info.type_tag == "rudask.DataFrame",
        "real data size: {info:?}"
    );

    let got: DataFrame = within(second.get_dataset("accounts")).await.unwrap();
    let table = within(second.compute(&got).unwrap()).await.unwrap();
    assert_eq!(table.into_inner(), batch);
    let answer: Future<i64> = within(second.get_dataset("answer")).await.unwrap();
    assert_eq!(within(answer).await.unwrap(), 42);
    let many: Futures<i64> = within(second.get_dataset("many")).await.unwrap();
    assert_eq!(within(second.gather(&many.0)).await.unwrap(), [42, 42]);

    within(second.unpublish_dataset("accounts")).await.unwrap();
    assert!(matches!(
        within(second.get_dataset::<DataFrame>("accounts")).await,
        Err(Error::DatasetNotFound { available, .. }) if available == ["answer", "many"]
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_published_unpersisted_is_computed_by_its_getters() {
    let (cluster, first) = Cluster::start(2, 1).await;
    let batch = accounts(1000);
    let lazy = DataFrame::from_batches(vec![batch.clone()], 3).unwrap();
    within(first.publish_dataset("lazy", &lazy)).await.unwrap();
    let info = within(first.list_datasets()).await.unwrap().remove(0);
    assert!(info.lazy && !info.in_memory, "{info:?}");
    first.close();
    let second = cluster.client().await;
    let got: DataFrame = within(second.get_dataset("lazy")).await.unwrap();
    assert_eq!(within(second.compute(&got).unwrap()).await.unwrap().into_inner(), batch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_types_and_missing_datasets_are_clear_errors() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let f = client.submit(rudask_tests::inc, (1,)).unwrap();
    within(client.publish_dataset("x", &f)).await.unwrap();
    let err = within(client.publish_dataset("x", &f)).await.unwrap_err();
    assert!(
        matches!(&err, Error::DatasetExists(m) if m.contains("\"x\"") && m.contains("override")),
        "{err}"
    );
    for bad in [String::new(), "n".repeat(1000)] {
        let err = within(client.publish_dataset(bad, &f)).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    let err = within(client.get_dataset::<DataFrame>("x")).await.unwrap_err();
    match &err {
        Error::Type { expected, found, .. } => {
            assert_eq!(expected, "rudask.DataFrame");
            assert!(found.starts_with("rudask.Future<"), "{found}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("rudask.DataFrame"));
    let err = within(client.get_dataset::<Future<i64>>("nope")).await.unwrap_err();
    assert!(err.to_string().contains("nope") && err.to_string().contains("[x]"), "{err}");
    let default = client.submit(rudask_tests::inc, (9,)).unwrap();
    let got = within(client.get_dataset_or("nope", default)).await.unwrap();
    assert_eq!(within(got).await.unwrap(), 10);
    let timeout = std::time::Duration::from_millis(100);
    let err =
        within(client.get_dataset_timeout::<Future<i64>>("later", timeout)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert!(matches!(
        within(client.unpublish_dataset("nope")).await,
        Err(Error::DatasetNotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_waits_for_the_name_and_the_mapping_is_shared() {
    let (cluster, a) = Cluster::start(1, 1).await;
    let b = cluster.client().await;
    let waiting = tokio::spawn(async move {
        b.get_dataset_timeout::<Future<i64>>("soon", common::LIMIT)
            .await
            .map(|f| f.key().to_string())
    });
    let f = a.submit(rudask_tests::inc, (5,)).unwrap();
    let map = a.datasets();
    within(map.insert("soon", &f)).await.unwrap();
    assert_eq!(within(waiting).await.unwrap().unwrap(), f.key());
    within(map.insert("soon", &f)).await.unwrap();
    assert!(within(map.contains("soon")).await.unwrap());
    assert_eq!(within(map.keys()).await.unwrap(), ["soon"]);
    assert_eq!(within(map.len()).await.unwrap(), 1);
    let c = cluster.client().await;
    let got: Future<i64> = within(c.datasets().get("soon")).await.unwrap();
    assert_eq!(within(got).await.unwrap(), 6);
    within(c.datasets().remove("soon")).await.unwrap();
    assert!(within(map.is_empty()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_releases_the_old_keys() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let old = client.submit(rudask_tests::inc, (1,)).unwrap();
    let old_key = old.key().to_string();
    within(&old).await.unwrap();
    within(client.publish_dataset("d", &old)).await.unwrap();
    drop(old);
    let states = common::key_states(&client, &[&old_key]).await;
    assert_eq!(states[0].as_deref(), Some("memory"), "held by the dataset");
    let new = client.submit(rudask_tests::inc, (2,)).unwrap();
    within(client.publish_dataset("d", &new).override_existing(true)).await.unwrap();
    eventually("the old key is released", || {
        let client = client.clone();
        let old_key = old_key.clone();
        async move { (common::key_states(&client, &[&old_key]).await[0].is_none()).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_of_one_name_exactly_one_wins() {
    let (cluster, a) = Cluster::start(1, 1).await;
    let b = cluster.client().await;
    let fa = a.submit(rudask_tests::inc, (1,)).unwrap();
    let fb = b.submit(rudask_tests::inc, (2,)).unwrap();
    let (ra, rb) = tokio::join!(
        within(a.publish_dataset("race", &fa)),
        within(b.publish_dataset("race", &fb))
    );
    assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "{ra:?} {rb:?}");
    assert!(matches!(ra.err().or(rb.err()), Some(Error::DatasetExists(_))));
}

async fn wait_on_disk(client: &rudask::Client, n: usize) {
    eventually("every dataset is written to the store", || async move {
        let infos = within(client.list_datasets()).await.unwrap();
        (infos.len() == n && infos.iter().all(|d| d.on_disk)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_survive_a_scheduler_killed_with_sigkill() {
    let store = TempDir::new("durable");
    let args = ["--dataset-store", store.arg()];
    let mut cluster = Cluster::scheduler_with(&args).await;
    cluster.spawn_worker("w0", 1);
    cluster.spawn_worker("w1", 1);
    let client = cluster.client().await;
    common::wait_for_workers(&client, 2).await;
    let batch = accounts(3000);
    let df = client.persist(&DataFrame::from_batches(vec![batch.clone()], 3).unwrap()).unwrap();
    let f = client.submit(rudask_tests::inc, (99,)).unwrap();
    let fs = Futures(vec![client.submit(rudask_tests::inc, (1,)).unwrap(), f.clone()]);
    let matrix = ndarray::Array::from_shape_fn((30, 20), |(i, j)| (i * 20 + j) as f64 / 7.0);
    let array = client.persist(&Array::from_ndarray(matrix.clone(), &[10, 8]).unwrap()).unwrap();
    within(client.wait_collection(&array)).await.unwrap();
    let publish = client.publish_dataset("df", &df).and("one", &f).and("two", &fs);
    within(publish.and("matrix", &array)).await.unwrap();
    wait_on_disk(&client, 4).await;
    let files: Vec<_> = std::fs::read_dir(&store.0).unwrap().flatten().collect();
    assert!(files.len() >= 5, "catalog + one directory per dataset: {files:?}");
    client.close();
    cluster.kill_all().await;

    let mut cluster = Cluster::scheduler_with(&args).await;
    let client = cluster.client().await;
    let infos = within(client.list_datasets()).await.unwrap();
    assert_eq!(infos.len(), 4);
    assert!(infos.iter().all(|d| d.on_disk && !d.in_memory && d.nbytes > 0), "{infos:?}");
    cluster.spawn_worker("w2", 1);
    common::wait_for_workers(&client, 1).await;
    let got: DataFrame = within(client.get_dataset("df")).await.unwrap();
    let table = within(client.compute(&got).unwrap()).await.unwrap();
    assert_eq!(table.into_inner(), batch);
    let got: Array<f64> = within(client.get_dataset("matrix")).await.unwrap();
    assert_eq!(got.chunks(), [vec![10, 10, 10], vec![8, 8, 4]]);
    let back = within(client.compute(&got).unwrap()).await.unwrap();
    assert_eq!(back.into_inner(), matrix.into_dyn());
    let one: Future<i64> = within(client.get_dataset("one")).await.unwrap();
    assert_eq!(within(one).await.unwrap(), 100);
    let two: Futures<i64> = within(client.get_dataset("two")).await.unwrap();
    assert_eq!(within(client.gather(&two.0)).await.unwrap(), [2, 100]);
    let infos = within(client.list_datasets()).await.unwrap();
    assert!(infos.iter().all(|d| d.in_memory), "loaded back: {infos:?}");

    let dirs_before = std::fs::read_dir(&store.0).unwrap().count();
    within(client.unpublish_dataset("df")).await.unwrap();
    assert_eq!(std::fs::read_dir(&store.0).unwrap().count(), dirs_before - 1, "files deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_partition_marks_its_dataset_damaged_and_leaves_the_others() {
    let store = TempDir::new("damaged");
    let args = ["--dataset-store", store.arg()];
    let mut cluster = Cluster::scheduler_with(&args).await;
    cluster.spawn_worker("w0", 1);
    let client = cluster.client().await;
    common::wait_for_workers(&client, 1).await;
    let good = client.submit(rudask_tests::inc, (1,)).unwrap();
    let bad = client.persist(&DataFrame::from_batches(vec![accounts(500)], 2).unwrap()).unwrap();
    within(client.publish_dataset("good", &good).and("bad", &bad)).await.unwrap();
    wait_on_disk(&client, 2).await;
    client.close();
    cluster.kill_all().await;
    // Flip one byte of one partition file of "bad": same size, wrong checksum.
    let part = walk(&store.0).into_iter().find(|p| {
        p.file_name().is_some_and(|n| n == "part-00001")
            && std::fs::metadata(p).unwrap().len() > 100
    });
    let part = part.expect("a partition file of the dataframe");
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&part, bytes).unwrap();

    let mut cluster = Cluster::scheduler_with(&args).await;
    cluster.spawn_worker("w1", 1);
    let client = cluster.client().await;
    common::wait_for_workers(&client, 1).await;
    let got: Future<i64> = within(client.get_dataset("good")).await.unwrap();
    assert_eq!(within(got).await.unwrap(), 2);
    let df: DataFrame = within(client.get_dataset("bad")).await.unwrap();
    let err = within(client.compute(&df).unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    drop(df);
    let damaged = eventually("the dataset is reported damaged", || async {
        let infos = within(client.list_datasets()).await.unwrap();
        infos.into_iter().find(|d| d.name == "bad").and_then(|d| d.damaged)
    })
    .await;
    assert!(damaged.contains("checksum"), "{damaged}");
    let err = within(client.get_dataset::<DataFrame>("bad")).await.unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    let info = within(client.list_datasets()).await.unwrap();
    assert!(info.iter().any(|d| d.name == "good" && d.damaged.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_stops_the_scheduler_at_start_up() {
    let file = TempDir::new("store-is-a-file");
    std::fs::write(&file.0, b"not a directory").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rudask-test-worker"))
        .args(["scheduler", "--port", "0", "--dataset-store", file.arg()])
        .output();
    let out = within(out).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dataset store") && stderr.contains("--no-dataset-store"), "{stderr}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[allow(dead_code)]
fn keys_of<C: Collection>(c: &C) -> Vec<String> {
    c.keys().iter().map(|k| k.to_string()).collect()
}

//! `DataFrame::groupby` end to end over TCP with worker processes, checked
//! against what pandas computes on the same CSV (the files in
//! tests/fixtures/accounts, written by make.py there) and against a direct
//! computation in this process.

mod common;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use common::{within, Cluster};
use rudask_collections::dataframe::Agg;
use rudask_collections::DataFrame;
use std::collections::BTreeMap;
use std::sync::Arc;

const ALL: [Agg; 5] = [Agg::Sum, Agg::Mean, Agg::Count, Agg::Min, Agg::Max];

/// A CSV of the accounts fixture, read with arrow's reader into one batch
/// (empty cells are nulls, as they are missing values for pandas).
fn fixture(file: &str, columns: &[(&str, DataType)]) -> RecordBatch {
    let path = format!("{}/fixtures/accounts/{file}", env!("CARGO_MANIFEST_DIR"));
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>(),
    ));
    let reader = ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

fn accounts() -> RecordBatch {
    fixture(
        "accounts.csv",
        &[
            ("name", DataType::Utf8),
            ("city", DataType::Utf8),
            ("balance", DataType::Int64),
            ("score", DataType::Float64),
        ],
    )
}

/// `got` has `expected`'s columns (by name) and rows: integers and strings
/// equal, floats within a relative 1e-9 (pandas sums floats with Kahan
/// compensation), nulls where pandas has an empty cell.
fn assert_matches(got: &RecordBatch, expected: &RecordBatch) {
    assert_eq!(got.num_rows(), expected.num_rows(), "rows");
    for field in expected.schema().fields() {
        let want = expected.column_by_name(field.name()).unwrap();
        let have = got
            .column_by_name(field.name())
            .unwrap_or_else(|| panic!("no column {}", field.name()));
        if field.data_type() == &DataType::Float64 {
            let have = arrow::compute::cast(have, &DataType::Float64).unwrap();
            let pairs =
                have.as_primitive::<Float64Type>().iter().zip(want.as_primitive::<Float64Type>());
            for (row, (h, w)) in pairs.enumerate() {
                let same = match (h, w) {
                    (Some(h), Some(w)) => (h - w).abs() <= 1e-9 * w.abs().max(1.0),
                    (h, w) => h == w,
                };
                assert!(same, "{} row {row}: {h:?} but pandas says {w:?}", field.name());
            }
        } else {
            assert_eq!(have.as_ref(), want.as_ref(), "column {}", field.name());
        }
    }
}

/// groupby(name) sums of balance, by hand.
fn balance_sums_by_hand(batch: &RecordBatch) -> BTreeMap<String, i64> {
    let (names, balances) =
        (batch.column(0).as_string::<i32>(), batch.column(2).as_primitive::<Int64Type>());
    let mut sums = BTreeMap::new();
    for (name, balance) in names.iter().zip(balances) {
        if let Some(name) = name {
            *sums.entry(name.to_string()).or_default() += balance.unwrap_or(0);
        }
    }
    sums
}

fn pairs(table: &RecordBatch) -> Vec<(String, i64)> {
    let names = table.column(0).as_string::<i32>();
    let sums = table.column(1).as_primitive::<Int64Type>();
    names.iter().zip(sums).map(|(n, s)| (n.unwrap().to_string(), s.unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groupby_name_with_every_aggregation_matches_pandas() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let df = DataFrame::from_batches(vec![accounts()], 8).unwrap();
    let aggs = ["balance", "score"].into_iter().flat_map(|c| ALL.map(|a| (c, a)));
    let stats = df.groupby(["name"]).unwrap().agg(aggs).unwrap();
    assert_eq!(stats.npartitions(), 1);
    let got = within(client.compute(&stats).unwrap()).await.unwrap().into_inner();
    let expected = fixture(
        "by_name.csv",
        &[
            ("name", DataType::Utf8),
            ("balance_sum", DataType::Int64),
            ("balance_mean", DataType::Float64),
            ("balance_count", DataType::Int64),
            ("balance_min", DataType::Int64),
            ("balance_max", DataType::Int64),
            ("score_sum", DataType::Float64),
            ("score_mean", DataType::Float64),
            ("score_count", DataType::Int64),
            ("score_min", DataType::Float64),
            ("score_max", DataType::Float64),
        ],
    );
    assert_eq!(got.schema(), stats.schema(), "the schema announced when the graph was built");
    assert_eq!(got.num_columns(), expected.num_columns());
    assert_matches(&got, &expected);
    // The name that never has a score: sum 0, count 0, mean/min/max missing.
    let ghost = (0..got.num_rows())
        .find(|&i| got.column(0).as_string::<i32>().value(i) == "ghost")
        .unwrap();
    assert_eq!(
        got.column_by_name("score_count").unwrap().as_primitive::<Int64Type>().value(ghost),
        0
    );
    assert!(got.column_by_name("score_mean").unwrap().is_null(ghost));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groupby_city_and_name_matches_pandas() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    // More partitions than one combine task takes: a two-level tree.
    let df = DataFrame::from_batches(vec![accounts()], 20).unwrap();
    let sums = df.groupby(["city", "name"]).unwrap().sum("balance").unwrap();
    let got = within(client.compute(&sums).unwrap()).await.unwrap().into_inner();
    let expected = fixture(
        "by_city_name.csv",
        &[("city", DataType::Utf8), ("name", DataType::Utf8), ("balance_sum", DataType::Int64)],
    );
    assert_eq!(got.num_columns(), 3);
    assert_matches(&got, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortcuts_on_persisted_input_match_a_direct_computation() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts();
    let df = DataFrame::from_batches(vec![batch.clone()], 16).unwrap();
    let persisted = client.persist(&df).unwrap();
    within(client.wait_collection(&persisted)).await.unwrap();
    let by_name = persisted.groupby(["name"]).unwrap();

    let sums = within(client.compute(&by_name.sum("balance").unwrap()).unwrap()).await.unwrap();
    assert_eq!(sums.schema().field(1).name(), "balance_sum");
    assert_eq!(pairs(&sums), balance_sums_by_hand(&batch).into_iter().collect::<Vec<_>>());

    // Every shortcut gives the column agg gives for it.
    let all = within(client.compute(&by_name.agg(ALL.map(|a| ("score", a))).unwrap()).unwrap())
        .await
        .unwrap();
    let shortcuts = [
        by_name.sum("score"),
        by_name.mean("score"),
        by_name.count("score"),
        by_name.min("score"),
        by_name.max("score"),
    ];
    for (agg, one) in ALL.iter().zip(shortcuts) {
        let one = within(client.compute(&one.unwrap()).unwrap()).await.unwrap();
        let column = format!("score_{}", agg.name());
        assert_eq!(one.schema().field(1).name(), &column);
        assert_eq!(one.column(0), all.column(0));
        assert_eq!(one.column(1), all.column_by_name(&column).unwrap(), "{column}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_keys_match_a_direct_computation() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts();
    // A small integer key: the balance's hundreds.
    let hundreds: ArrayRef = arrow::compute::kernels::numeric::div(
        batch.column(2),
        &arrow::array::Int64Array::new_scalar(100),
    )
    .unwrap();
    let with_key = RecordBatch::try_from_iter([
        ("hundreds", hundreds.clone()),
        ("balance", batch.column(2).clone()),
    ])
    .unwrap();
    let df = DataFrame::from_batches(vec![with_key], 6).unwrap();
    let got =
        within(client.compute(&df.groupby(["hundreds"]).unwrap().sum("balance").unwrap()).unwrap())
            .await
            .unwrap();
    let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
    for (k, b) in hundreds
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .zip(batch.column(2).as_primitive::<Int64Type>().values())
    {
        *expected.entry(*k).or_default() += b;
    }
    let keys = got.column(0).as_primitive::<Int64Type>().values().to_vec();
    let sums = got.column(1).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(
        keys.into_iter().zip(sums).collect::<Vec<_>>(),
        expected.into_iter().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_columns_are_errors_before_anything_runs() {
    let df = DataFrame::from_batches(vec![accounts()], 2).unwrap();
    let unknown = df.groupby(["nmae"]).unwrap_err();
    assert!(matches!(unknown, rudask::Error::InvalidArgument(_)), "{unknown}");
    assert!(unknown.to_string().contains("name, city, balance, score"), "{unknown}");
    let by_float = df.groupby(["score"]).unwrap_err().to_string();
    assert!(by_float.contains("score") && by_float.contains("Float64"), "{by_float}");
    let by_name = df.groupby(["name"]).unwrap();
    let text = by_name.mean("city").unwrap_err().to_string();
    assert!(text.contains("\"city\"") && text.contains("Utf8"), "{text}");
    let text = by_name.agg([("balance", Agg::Sum), ("balanse", Agg::Max)]).unwrap_err().to_string();
    assert!(text.contains("\"balanse\"") && text.contains("name, city, balance, score"), "{text}");
}

//! DataFrame operations and IO end to end over TCP with worker processes,
//! each compared with the same computation done directly with arrow on the
//! whole batch.

mod common;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::kernels::{boolean, cmp, numeric};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use common::{within, Cluster};
use rudask::Error;
use rudask_collections::dataframe::{col, lit};
use rudask_collections::{DataFrame, Table};
use rudask_tests::dataframe_tasks::{double_balance, only_balance};
use std::sync::Arc;

/// `rows` accounts: a name (null every 11th row), a balance (null every
/// 13th), a float score and a small int.
fn accounts(rows: i64) -> RecordBatch {
    let name =
        StringArray::from_iter((0..rows).map(|i| (i % 11 != 5).then(|| format!("n{}", i % 7))));
    let balance =
        Int64Array::from_iter((0..rows).map(|i| (i % 13 != 3).then_some(i * 7 % 101 - 50)));
    let score = Float64Array::from_iter_values((0..rows).map(|i| (i % 17) as f64 * 0.25 - 1.0));
    let small = Int32Array::from_iter_values((0..rows).map(|i| (i % 5) as i32));
    RecordBatch::try_from_iter([
        ("name", Arc::new(name) as ArrayRef),
        ("balance", Arc::new(balance) as _),
        ("score", Arc::new(score) as _),
        ("small", Arc::new(small) as _),
    ])
    .unwrap()
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column(b.schema().index_of(name).unwrap())
}

async fn compute(client: &rudask::Client, df: &DataFrame) -> RecordBatch {
    within(client.compute(df).unwrap()).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_equal_arrow_filters() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts(1000);
    let df = DataFrame::from_batches(vec![batch.clone()], 4).unwrap();
    let balance = column(&batch, "balance");
    let name = column(&batch, "name");
    let score = column(&batch, "score");

    let negative = cmp::lt(balance, &Int64Array::new_scalar(0)).unwrap();
    let got = compute(&client, &df.filter(col("balance").lt(0)).unwrap()).await;
    assert_eq!(got, filter_record_batch(&batch, &negative).unwrap());
    assert!(got.num_rows() > 100);

    let n3 = cmp::eq(name, &StringArray::new_scalar("n3")).unwrap();
    let both = boolean::and_kleene(&negative, &n3).unwrap();
    let got =
        compute(&client, &df.filter(col("balance").lt(0) & col("name").eq("n3")).unwrap()).await;
    assert_eq!(got, filter_record_batch(&batch, &both).unwrap());

    let high = cmp::gt_eq(score, &Float64Array::new_scalar(2.0)).unwrap();
    let either = boolean::or_kleene(&boolean::not(&negative).unwrap(), &high).unwrap();
    let e = (!col("balance").lt(0)).or(col("score").ge(2));
    let got = compute(&client, &df.filter(e).unwrap()).await;
    assert_eq!(got, filter_record_batch(&batch, &either).unwrap());

    let nulls = boolean::is_null(name).unwrap();
    let got = compute(&client, &df.filter(col("name").is_null()).unwrap()).await;
    assert_eq!(got, filter_record_batch(&batch, &nulls).unwrap());
    assert_eq!(got.num_rows(), name.null_count());

    // A column against a column, with an int column against a float one.
    let small = arrow::compute::cast(column(&batch, "small"), &DataType::Float64).unwrap();
    let lt = cmp::lt(score, &small).unwrap();
    let got = compute(&client, &df.filter(col("score").lt(col("small"))).unwrap()).await;
    assert_eq!(got, filter_record_batch(&batch, &lt).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_filtered_frame_computes_to_arrows_filter() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts(2000);
    let df = DataFrame::from_batches(vec![batch.clone()], 8).unwrap();
    let filtered = client.persist(&df.filter(col("balance").lt(0)).unwrap()).unwrap();
    within(client.wait_collection(&filtered)).await.unwrap();
    let mask = cmp::lt(column(&batch, "balance"), &Int64Array::new_scalar(0)).unwrap();
    let expected = filter_record_batch(&batch, &mask).unwrap();
    assert_eq!(compute(&client, &filtered).await, expected);
    let rows = within(client.compute(&filtered.len()).unwrap()).await.unwrap();
    assert_eq!(rows, expected.num_rows() as u64);
    // Operations on the persisted frame build on the partitions in memory.
    let positive_score = filtered.filter(col("score").gt(0)).unwrap();
    let mask = cmp::gt(column(&expected, "score"), &Float64Array::new_scalar(0.0)).unwrap();
    assert_eq!(
        compute(&client, &positive_score).await,
        filter_record_batch(&expected, &mask).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_and_with_column_equal_arrow_kernels() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts(500);
    let df = DataFrame::from_batches(vec![batch.clone()], 3).unwrap();

    let got = compute(&client, &df.select(["score", "name"]).unwrap()).await;
    assert_eq!(got, batch.project(&[2, 0]).unwrap());

    let df2 = df
        .with_column("total", col("balance") * 2 + col("small"))
        .unwrap()
        .with_column("score", col("score") / 2)
        .unwrap()
        .with_column("ratio", col("balance") / (col("small") + 1))
        .unwrap();
    assert_eq!(df2.columns(), ["name", "balance", "score", "small", "total", "ratio"]);
    let got = compute(&client, &df2).await;
    let balance = column(&batch, "balance");
    let small64 = arrow::compute::cast(column(&batch, "small"), &DataType::Int64).unwrap();
    let total = numeric::add(&numeric::mul(balance, &Int64Array::new_scalar(2)).unwrap(), &small64)
        .unwrap();
    assert_eq!(column(&got, "total").as_ref(), total.as_ref());
    let half = numeric::div(column(&batch, "score"), &Float64Array::new_scalar(2.0)).unwrap();
    assert_eq!(column(&got, "score").as_ref(), half.as_ref());
    let as_f64 = |a: &ArrayRef| arrow::compute::cast(a, &DataType::Float64).unwrap();
    let small_plus_1 = numeric::add(column(&batch, "small"), &Int32Array::new_scalar(1)).unwrap();
    let ratio = numeric::div(&as_f64(balance), &as_f64(&small_plus_1)).unwrap();
    assert_eq!(column(&got, "ratio").as_ref(), ratio.as_ref());
    assert_eq!(got.schema(), df2.schema());
    assert_eq!(column(&got, "name"), column(&batch, "name"));

    let flagged = df.with_column("rich", col("balance").gt(40)).unwrap();
    let got = compute(&client, &flagged).await;
    let rich = cmp::gt(balance, &Int64Array::new_scalar(40)).unwrap();
    assert_eq!(column(&got, "rich").as_boolean(), &rich);
    let constant = compute(&client, &df.with_column("one", lit(1)).unwrap()).await;
    assert_eq!(
        column(&constant, "one").as_primitive::<Int64Type>().values().iter().sum::<i64>(),
        500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_partitions_runs_a_registered_task_and_checks_its_schema() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts(300);
    let df = DataFrame::from_batches(vec![batch.clone()], 3).unwrap();

    let got = compute(&client, &df.map_partitions(double_balance)).await;
    let doubled = numeric::mul(column(&batch, "balance"), &Int64Array::new_scalar(2)).unwrap();
    assert_eq!(column(&got, "balance").as_ref(), doubled.as_ref());
    assert_eq!(column(&got, "name"), column(&batch, "name"));

    let schema = Arc::new(Schema::new(vec![Field::new("balance", DataType::Int64, true)]));
    let only = df.map_partitions_with_schema(only_balance, schema.clone());
    assert_eq!(only.schema(), schema);
    assert_eq!(compute(&client, &only).await, batch.project(&[1]).unwrap());

    let err = within(client.compute(&df.map_partitions(only_balance)).unwrap()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Task { .. }), "{err:?}");
    assert!(msg.contains("only_balance") && msg.contains("map_partitions_with_schema"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_len() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts(100);
    let df = DataFrame::from_batches(vec![batch.clone()], 4).unwrap();
    let len = within(client.compute(&df.len()).unwrap()).await.unwrap();
    assert_eq!(len, 100);
    // 60 rows come from the first three partitions of 25.
    let head = df.head(60);
    assert_eq!(head.npartitions(), 1);
    assert_eq!(compute(&client, &head).await, batch.slice(0, 60));
    assert_eq!(compute(&client, &df.head(3)).await, batch.slice(0, 3));
    assert_eq!(compute(&client, &df.head(1000)).await, batch);
    assert_eq!(compute(&client, &df.head(0)).await.num_rows(), 0);
    // Through a filter whose first partitions are short.
    let filtered = df.filter(col("balance").gt(30)).unwrap();
    let mask = cmp::gt(column(&batch, "balance"), &Int64Array::new_scalar(30)).unwrap();
    let expected = filter_record_batch(&batch, &mask).unwrap();
    let n = expected.num_rows() * 2 / 3;
    assert_eq!(compute(&client, &filtered.head(n)).await, expected.slice(0, n));
    let len = within(client.compute(&filtered.len()).unwrap()).await.unwrap();
    assert_eq!(len, expected.num_rows() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_statistics_equal_arrow_aggregates() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batch = accounts(1000);
    let df = DataFrame::from_batches(vec![batch.clone()], 7).unwrap();
    let stat = |s: rudask_collections::Scalar<Table>| {
        let client = client.clone();
        async move { within(client.compute(&s).unwrap()).await.unwrap().into_inner() }
    };
    let balance = column(&batch, "balance").as_primitive::<Int64Type>();
    let score = column(&batch, "score").as_primitive::<Float64Type>();
    let small = column(&batch, "small").as_primitive::<arrow::datatypes::Int32Type>();

    let count = stat(df.count()).await;
    assert_eq!(count.schema().fields().len(), 4);
    let counts: Vec<u64> = count
        .columns()
        .iter()
        .map(|c| c.as_primitive::<arrow::datatypes::UInt64Type>().value(0))
        .collect();
    let expected: Vec<u64> =
        batch.columns().iter().map(|c| (c.len() - c.null_count()) as u64).collect();
    assert_eq!(counts, expected);

    let sum = stat(df.sum()).await;
    let names: Vec<String> = sum.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["balance", "score", "small"], "numeric columns only");
    assert_eq!(
        column(&sum, "balance").as_primitive::<Int64Type>().value(0),
        arrow::compute::sum(balance).unwrap()
    );
    let score_sum = column(&sum, "score").as_primitive::<Float64Type>().value(0);
    assert!((score_sum - arrow::compute::sum(score).unwrap()).abs() < 1e-9);
    let small_sum: i64 = small.values().iter().map(|&v| i64::from(v)).sum();
    assert_eq!(column(&sum, "small").as_primitive::<Int64Type>().value(0), small_sum);

    let mean = stat(df.mean()).await;
    let balance_mean = arrow::compute::sum(balance).unwrap() as f64
        / (balance.len() - balance.null_count()) as f64;
    let got = column(&mean, "balance").as_primitive::<Float64Type>().value(0);
    assert!(
        (got - balance_mean).abs() < 1e-12,
        "{got} vs {balance_mean}: sum over count, not a mean of means"
    );

    let min = stat(df.min()).await;
    let max = stat(df.max()).await;
    assert_eq!(
        column(&min, "balance").as_primitive::<Int64Type>().value(0),
        arrow::compute::min(balance).unwrap()
    );
    assert_eq!(
        column(&max, "balance").as_primitive::<Int64Type>().value(0),
        arrow::compute::max(balance).unwrap()
    );
    assert_eq!(
        column(&min, "score").as_primitive::<Float64Type>().value(0),
        arrow::compute::min(score).unwrap()
    );
    assert_eq!(column(&max, "small").data_type(), &DataType::Int32, "min/max keep the column type");
    assert_eq!(column(&max, "small").as_primitive::<arrow::datatypes::Int32Type>().value(0), 4);

    // A filter that leaves no rows: counts 0, sums 0, the rest null.
    let none = df.filter(col("balance").gt(1_000_000)).unwrap();
    let min = stat(none.min()).await;
    assert!(column(&min, "balance").is_null(0));
    assert_eq!(column(&stat(none.sum()).await, "balance").as_primitive::<Int64Type>().value(0), 0);
}

#[test]
fn bad_expressions_fail_when_the_graph_is_built() {
    let df = DataFrame::from_batches(vec![accounts(10)], 2).unwrap();
    let err = df.filter(col("name").lt(0)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"name\"") && msg.contains("Utf8") && msg.contains("literal 0"), "{msg}");

    let msg = df.filter(col("balanse").lt(0)).unwrap_err().to_string();
    assert!(msg.contains("\"balanse\"") && msg.contains("name, balance, score, small"), "{msg}");
    let msg = df.select(["name", "nope"]).unwrap_err().to_string();
    assert!(msg.contains("select") && msg.contains("\"nope\"") && msg.contains("balance"), "{msg}");
    let msg = df.with_column("x", col("name") * 2).unwrap_err().to_string();
    assert!(msg.contains("with_column") && msg.contains("\"name\""), "{msg}");
    let msg = df.filter(col("balance") + 1).unwrap_err().to_string();
    assert!(msg.contains("not booleans"), "{msg}");
    let msg = df.filter(col("small").and(col("balance").lt(0))).unwrap_err().to_string();
    assert!(msg.contains("\"small\"") && msg.contains("Int32"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_chain_over_many_partitions() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let batches: Vec<RecordBatch> = (0..3).map(|_| accounts(400)).collect();
    let all = concat_batches(&batches[0].schema(), &batches).unwrap();
    let df = DataFrame::from_batches(batches, 16).unwrap();
    let out = df
        .filter(col("balance").is_not_null() & col("small").ne(0))
        .unwrap()
        .with_column("b2", col("balance") - col("small"))
        .unwrap()
        .select(["b2", "name"])
        .unwrap();
    let got = compute(&client, &out).await;
    let mask = boolean::and_kleene(
        &boolean::is_not_null(column(&all, "balance")).unwrap(),
        &cmp::neq(column(&all, "small"), &Int32Array::new_scalar(0)).unwrap(),
    )
    .unwrap();
    let kept = filter_record_batch(&all, &mask).unwrap();
    let small64 = arrow::compute::cast(column(&kept, "small"), &DataType::Int64).unwrap();
    let b2 = numeric::sub(column(&kept, "balance"), &small64).unwrap();
    assert_eq!(column(&got, "b2").as_ref(), b2.as_ref());
    assert_eq!(column(&got, "name"), column(&kept, "name"));
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let unique =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir =
            std::env::temp_dir().join(format!("rudask-{what}-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Accounts with no nulls in the string column (CSV writes a null string
/// and an empty one alike) and only types CSV inference gives back.
fn csv_accounts(rows: i64, offset: i64) -> RecordBatch {
    let name = StringArray::from_iter_values((0..rows).map(|i| format!("n{}", (i + offset) % 7)));
    let balance = Int64Array::from_iter(
        (0..rows).map(|i| ((i + offset) % 13 != 3).then_some((i + offset) * 7 % 101 - 50)),
    );
    let score =
        Float64Array::from_iter_values((0..rows).map(|i| ((i + offset) % 17) as f64 * 0.25 - 1.0));
    RecordBatch::try_from_iter_with_nullable([
        ("name", Arc::new(name) as ArrayRef, true),
        ("balance", Arc::new(balance) as _, true),
        ("score", Arc::new(score) as _, true),
    ])
    .unwrap()
}

fn write_csv(path: &str, batch: &RecordBatch, delimiter: u8, header: bool) {
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        arrow::csv::WriterBuilder::new().with_delimiter(delimiter).with_header(header).build(file);
    w.write(batch).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_files_read_on_the_workers_equal_the_written_batches() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let dir = TempDir::new("csv");
    let parts: Vec<RecordBatch> = (0..3).map(|i| csv_accounts(200 + i * 50, i * 1000)).collect();
    // Written out of order: partitions follow the sorted paths.
    for i in [2, 0, 1] {
        write_csv(&dir.path(&format!("accounts-{i}.csv")), &parts[i], b',', true);
    }
    let df = DataFrame::read_csv(&dir.path("accounts-*.csv")).unwrap();
    assert_eq!(df.npartitions(), 3);
    assert_eq!(df.schema(), parts[0].schema(), "inferred: Utf8, Int64, Float64");
    let got = df.to_batches(&client).await.unwrap();
    assert_eq!(got, parts);
    let all = concat_batches(&parts[0].schema(), &parts).unwrap();
    assert_eq!(compute(&client, &df).await, all);

    let filtered = df.filter(col("balance").lt(0)).unwrap();
    let mask = cmp::lt(column(&all, "balance"), &Int64Array::new_scalar(0)).unwrap();
    assert_eq!(compute(&client, &filtered).await, filter_record_batch(&all, &mask).unwrap());

    // Split into byte ranges: more partitions, the same rows.
    let opts = rudask_collections::dataframe::CsvOptions::new().blocksize(Some(1000));
    let split = DataFrame::read_csv_with(&dir.path("accounts-*.csv"), &opts).unwrap();
    let sizes: u64 = (0..3)
        .map(|i| std::fs::metadata(dir.path(&format!("accounts-{i}.csv"))).unwrap().len())
        .sum();
    assert!(split.npartitions() as u64 >= sizes / 1000, "{} partitions", split.npartitions());
    assert_eq!(compute(&client, &split).await, all);
    let rows = within(client.compute(&split.len()).unwrap()).await.unwrap();
    assert_eq!(rows, all.num_rows() as u64);

    // Semicolons, no header, an explicit schema.
    let schema = Arc::new(Schema::new(vec![
        Field::new("who", DataType::Utf8, true),
        Field::new("amount", DataType::Int64, true),
        Field::new("score", DataType::Float64, true),
    ]));
    write_csv(&dir.path("plain.txt"), &parts[1], b';', false);
    let opts = rudask_collections::dataframe::CsvOptions::new()
        .delimiter(b';')
        .header(false)
        .schema(schema.clone());
    let df = DataFrame::read_csv_with(&dir.path("plain.txt"), &opts).unwrap();
    let got = compute(&client, &df).await;
    assert_eq!(got, RecordBatch::try_new(schema, parts[1].columns().to_vec()).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_errors_name_the_file_and_the_line() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let dir = TempDir::new("csv-bad");
    let err = DataFrame::read_csv(&dir.path("*.csv")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(
        err.to_string().contains("no file matches") && err.to_string().contains(&dir.path("*.csv")),
        "{err}"
    );

    // Unreadable as CSV (not UTF-8) or empty: the first file is looked at
    // on the client, so the error comes when the graph is built.
    let binary = dir.path("0.csv");
    std::fs::write(&binary, b"a,b\n\xff\xfe\x00,\x80\n").unwrap();
    let err = DataFrame::read_csv(&dir.path("*.csv")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains(&binary), "{err}");
    std::fs::write(&binary, b"").unwrap();
    let err = DataFrame::read_csv(&dir.path("*.csv")).unwrap_err();
    assert!(err.to_string().contains(&binary) && err.to_string().contains("no columns"), "{err}");
    std::fs::remove_file(&binary).unwrap();

    let good = dir.path("a.csv");
    let bad = dir.path("b.csv");
    write_csv(&good, &csv_accounts(20, 0), b',', true);
    std::fs::write(&bad, "name,balance,score\nx,1,0.5\ny,2,1.5\nz,lots,2.5\n").unwrap();
    let df = DataFrame::read_csv(&dir.path("*.csv")).unwrap();
    let err = within(client.compute(&df).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::Task { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&bad) && msg.contains("line 4") && msg.contains("lots"), "{msg}");

    // In a split file, the line is still counted from the top of the file.
    let mut text = String::from("name,balance,score\n");
    for i in 0..200 {
        text.push_str(if i == 150 { "z,lots,2.5\n" } else { "abc,12,0.25\n" });
    }
    std::fs::write(&bad, text).unwrap();
    let opts = rudask_collections::dataframe::CsvOptions::new().blocksize(Some(256));
    let df = DataFrame::read_csv_with(&dir.path("*.csv"), &opts).unwrap();
    assert!(df.npartitions() > 4);
    let msg = within(client.compute(&df).unwrap()).await.unwrap_err().to_string();
    assert!(msg.contains(&bad) && msg.contains("line 152") && msg.contains("lots"), "{msg}");

    std::fs::write(&bad, "name,balance,score\nx,1,0.5\ny,2\n").unwrap();
    let df = DataFrame::read_csv(&dir.path("*.csv")).unwrap();
    let msg = within(client.compute(&df).unwrap()).await.unwrap_err().to_string();
    assert!(msg.contains(&bad) && msg.contains("line 3"), "{msg}");

    // A file that goes away after the graph is built fails on the worker.
    std::fs::write(&bad, "name,balance,score\nx,1,0.5\n").unwrap();
    let df = DataFrame::read_csv(&dir.path("*.csv")).unwrap();
    std::fs::remove_file(&bad).unwrap();
    let msg = within(client.compute(&df).unwrap()).await.unwrap_err().to_string();
    assert!(msg.contains("cannot open") && msg.contains(&bad), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_round_trip_through_the_workers() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let dir = TempDir::new("parquet");
    let batch = accounts(1000);
    let df = DataFrame::from_batches(vec![batch.clone()], 4).unwrap();
    let out = dir.path("out");
    let rows =
        within(client.compute(&df.filter(col("balance").ge(0)).unwrap().to_parquet(&out)).unwrap())
            .await
            .unwrap();
    let mask = cmp::gt_eq(column(&batch, "balance"), &Int64Array::new_scalar(0)).unwrap();
    let expected = filter_record_batch(&batch, &mask).unwrap();
    assert_eq!(rows, expected.num_rows() as u64);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "part-00003.parquet"],
        "no temporary files left"
    );

    let back = DataFrame::read_parquet(&format!("{out}/*.parquet")).unwrap();
    assert_eq!(back.npartitions(), 4);
    assert_eq!(back.schema(), batch.schema());
    assert_eq!(compute(&client, &back).await, expected);
    let batches = back.to_batches(&client).await.unwrap();
    assert_eq!(concat_batches(&batch.schema(), &batches).unwrap(), expected);
    let len = within(client.compute(&back.len()).unwrap()).await.unwrap();
    assert_eq!(len, expected.num_rows() as u64);
}

/// The compression of the first column chunk of a Parquet file.
fn compression_of(path: &str) -> parquet::basic::Compression {
    use parquet::file::reader::FileReader;
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(path).unwrap())
            .unwrap();
    reader.metadata().row_group(0).column(0).compression()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_files_compressed_with_snappy_and_zstd_are_read() {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let (_cluster, client) = Cluster::start(2, 1).await;
    let dir = TempDir::new("parquet-codecs");
    let parts = [accounts(300), accounts(500)];
    let codecs = [Compression::SNAPPY, Compression::ZSTD(ZstdLevel::default())];
    for (i, (part, codec)) in parts.iter().zip(codecs).enumerate() {
        let path = dir.path(&format!("p{i}.parquet"));
        let props = WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(128))
            .build();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), part.schema(), Some(props))
                .unwrap();
        w.write(part).unwrap();
        w.close().unwrap();
        assert_eq!(compression_of(&path), codec);
    }
    let df = DataFrame::read_parquet(&dir.path("*.parquet")).unwrap();
    assert_eq!(df.to_batches(&client).await.unwrap(), parts);

    // And the sink writes either.
    let zstd = dir.path("zstd");
    let write = df.to_parquet_with(&zstd, rudask_collections::dataframe::ParquetCompression::Zstd);
    assert_eq!(within(client.compute(&write).unwrap()).await.unwrap(), 800);
    assert!(matches!(compression_of(&format!("{zstd}/part-00001.parquet")), Compression::ZSTD(_)));
    let snappy = dir.path("snappy");
    within(client.compute(&df.to_parquet(&snappy)).unwrap()).await.unwrap();
    assert_eq!(compression_of(&format!("{snappy}/part-00000.parquet")), Compression::SNAPPY);
    let back = DataFrame::read_parquet(&format!("{zstd}/*.parquet")).unwrap();
    assert_eq!(back.to_batches(&client).await.unwrap(), parts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_parquet_files_are_clear_errors() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let dir = TempDir::new("parquet-bad");
    let err = DataFrame::read_parquet(&dir.path("*.parquet")).unwrap_err();
    assert!(err.to_string().contains("no file matches"), "{err}");

    let garbage = dir.path("a.parquet");
    std::fs::write(&garbage, b"this is not parquet at all").unwrap();
    let err = DataFrame::read_parquet(&dir.path("*.parquet")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains(&garbage), "{err}");

    // The first file is fine, a later one is not: the worker says which.
    std::fs::remove_file(&garbage).unwrap();
    let df = DataFrame::from_batches(vec![accounts(50)], 1).unwrap();
    within(client.compute(&df.to_parquet(dir.path("ok"))).unwrap()).await.unwrap();
    std::fs::rename(dir.path("ok/part-00000.parquet"), dir.path("a.parquet")).unwrap();
    let later = dir.path("b.parquet");
    std::fs::write(&later, b"PAR1 garbage").unwrap();
    let df = DataFrame::read_parquet(&dir.path("*.parquet")).unwrap();
    let err = within(client.compute(&df).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::Task { .. }), "{err:?}");
    assert!(err.to_string().contains(&later), "{err}");

    // Another file with other columns.
    let other = DataFrame::from_batches(vec![accounts(10).project(&[1, 0]).unwrap()], 1).unwrap();
    within(client.compute(&other.to_parquet(dir.path("other"))).unwrap()).await.unwrap();
    std::fs::rename(dir.path("other/part-00000.parquet"), &later).unwrap();
    let df = DataFrame::read_parquet(&dir.path("*.parquet")).unwrap();
    let msg = within(client.compute(&df).unwrap()).await.unwrap_err().to_string();
    assert!(msg.contains(&later) && msg.contains("differ"), "{msg}");
}

/// A numeric value of a one-row statistics table as f64.
fn stat_value(t: &RecordBatch, name: &str) -> f64 {
    let c = arrow::compute::cast(column(t, name), &DataType::Float64).unwrap();
    c.as_primitive::<Float64Type>().value(0)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// tests/fixtures/pandas holds a CSV and what pandas computes on it
/// (make_expected.py made both): filters, arithmetic and column
/// statistics over the CSV read in byte ranges equal pandas' results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_equal_pandas() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pandas");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let csv = dir.join("accounts.csv");
    let opts = rudask_collections::dataframe::CsvOptions::new().blocksize(Some(8 << 10));
    let df = DataFrame::read_csv_with(csv.to_str().unwrap(), &opts).unwrap();
    assert!(df.npartitions() >= 7, "{} partitions", df.npartitions());

    let filters = [
        ("balance_lt_0", col("balance").lt(0)),
        ("negative_n7", col("balance").lt(0) & col("name").eq("n7")),
        ("score_missing_or_high", col("score").is_null() | col("score").gt(50.5)),
        (
            "not_small_ge_2_and_score_le_balance",
            !col("small").ge(2) & col("score").le(col("balance")),
        ),
    ];
    for (name, predicate) in filters {
        let got = compute(&client, &df.filter(predicate).unwrap()).await;
        let ids: Vec<i64> = column(&got, "id").as_primitive::<Int64Type>().values().to_vec();
        let want: Vec<i64> = expected["filters"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(ids, want, "filter {name}");
    }
    let len = within(client.compute(&df.filter(col("balance").lt(0)).unwrap().len()).unwrap())
        .await
        .unwrap();
    assert_eq!(len, expected["len_negative"].as_u64().unwrap());

    let derived = df
        .with_column("total", col("balance") * 2 + col("small"))
        .unwrap()
        .with_column("ratio", col("balance") / (col("small") + 1))
        .unwrap();
    let sums = within(client.compute(&derived.select(["total", "ratio"]).unwrap().sum()).unwrap())
        .await
        .unwrap();
    assert_eq!(stat_value(&sums, "total"), expected["total_sum"].as_i64().unwrap() as f64);
    assert!(close(stat_value(&sums, "ratio"), expected["ratio_sum"].as_f64().unwrap()));
    let head = compute(&client, &derived.head(20)).await;
    let total: Vec<i64> = column(&head, "total").as_primitive::<Int64Type>().values().to_vec();
    let want: Vec<i64> =
        expected["total_head"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(total, want);

    let count = within(client.compute(&df.count()).unwrap()).await.unwrap();
    for (name, n) in expected["count"].as_object().unwrap() {
        assert_eq!(stat_value(&count, name), n.as_f64().unwrap(), "count of {name}");
    }
    for stat in ["sum", "mean", "min", "max"] {
        let scalar = match stat {
            "sum" => df.sum(),
            "mean" => df.mean(),
            "min" => df.min(),
            _ => df.max(),
        };
        let got = within(client.compute(&scalar).unwrap()).await.unwrap();
        let want = expected[stat].as_object().unwrap();
        assert_eq!(got.num_columns(), want.len(), "{stat}: the numeric columns");
        for (name, v) in want {
            let (g, w) = (stat_value(&got, name), v.as_f64().unwrap());
            assert!(close(g, w), "{stat} of {name}: {g} vs pandas {w}");
        }
    }
}

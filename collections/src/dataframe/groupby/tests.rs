//! The groupby kernels and graphs, run in this process through the task
//! catalog (what a worker would look up), against a naive computation.

use super::*;
use arrow::array::{Array, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Float64Type, Int64Type};
use rudask::core::protocol::Payload;
use rudask::core::registry::{decode, Catalog, TaskCall};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// `rows` accounts: 37 names (every 13th null), 3 cities, a balance that
/// is sometimes null, a score that is sometimes null and sometimes NaN.
fn accounts(rows: usize) -> RecordBatch {
    let name = StringArray::from_iter(
        (0..rows).map(|i| (i % 13 != 5).then(|| format!("name{:02}", (i * 7 + i / 3) % 37))),
    );
    let city = StringArray::from_iter_values((0..rows).map(|i| ["x", "y", "z"][i % 3]));
    let balance = Int64Array::from_iter(
        (0..rows).map(|i| (i % 11 != 3).then(|| (i as i64 * 7919) % 2001 - 1000)),
    );
    let score = Float64Array::from_iter((0..rows).map(|i| match i % 17 {
        0 => None,
        1 => Some(f64::NAN),
        _ => Some((i % 100) as f64 / 4.0 - 3.0),
    }));
    let flag = BooleanArray::from_iter((0..rows).map(|i| Some(i % 4 == 0)));
    RecordBatch::try_from_iter([
        ("name", Arc::new(name) as ArrayRef),
        ("city", Arc::new(city) as _),
        ("balance", Arc::new(balance) as _),
        ("score", Arc::new(score) as _),
        ("flag", Arc::new(flag) as _),
    ])
    .unwrap()
}

/// Computes `key` of `graph` here, each task through the catalog.
fn eval(graph: &TaskGraph, key: &Key, memo: &mut HashMap<Key, Payload>) -> Payload {
    if let Some(p) = memo.get(key) {
        return p.clone();
    }
    let spec = graph.get(key.as_str()).unwrap();
    let args = spec
        .args
        .iter()
        .map(|a| match a {
            Arg::Value(p) => p.clone(),
            Arg::Dep(k) => eval(graph, k, memo),
        })
        .collect();
    let def =
        Catalog::global().get(&spec.func).unwrap_or_else(|| panic!("{} registered", spec.func));
    let TaskCall::Sync(call) = (def.prepare)(TaskArgs::new("test", args)) else {
        panic!("kernels are synchronous")
    };
    let out = call().unwrap_or_else(|e| panic!("{}: {e:?}", spec.func));
    memo.insert(key.clone(), out.clone());
    out
}

/// The one partition of a groupby result, computed here.
fn run(df: &DataFrame) -> RecordBatch {
    let keys = Collection::keys(df);
    assert_eq!(keys.len(), 1, "a groupby gives one partition");
    let t: Table = decode(&eval(df.parts().0, &keys[0], &mut HashMap::new())).unwrap();
    assert_eq!(t.schema(), df.schema(), "the schema announced at build time");
    t.into_inner()
}

/// pandas' groupby(name) of `column` by hand: (sum, count, min, max) of the
/// values present (not null, not NaN) per non-null name.
fn by_hand(batch: &RecordBatch, column: &str) -> BTreeMap<String, (f64, i64, f64, f64)> {
    let names = batch.column_by_name("name").unwrap().as_string::<i32>();
    let values =
        arrow::compute::cast(batch.column_by_name(column).unwrap(), &DataType::Float64).unwrap();
    let values = values.as_primitive::<Float64Type>();
    let mut out = BTreeMap::new();
    for (name, v) in names.iter().zip(values.iter()) {
        let Some(name) = name else { continue };
        let e = out.entry(name.to_string()).or_insert((0.0, 0, f64::INFINITY, f64::NEG_INFINITY));
        if let Some(v) = v.filter(|v| !v.is_nan()) {
            *e = (e.0 + v, e.1 + 1, e.2.min(v), e.3.max(v));
        }
    }
    out
}

fn f64s(a: &ArrayRef) -> Vec<Option<f64>> {
    arrow::compute::cast(a, &DataType::Float64)
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

fn check_against_hand(result: &RecordBatch, batch: &RecordBatch, column: &str) {
    let expected = by_hand(batch, column);
    let names: Vec<&str> = result.column(0).as_string::<i32>().iter().map(Option::unwrap).collect();
    assert_eq!(names, expected.keys().map(String::as_str).collect::<Vec<_>>(), "sorted names");
    let col = |agg: &str| f64s(result.column_by_name(&format!("{column}_{agg}")).unwrap());
    let (sum, mean, count, min, max) =
        (col("sum"), col("mean"), col("count"), col("min"), col("max"));
    for (i, (s, c, lo, hi)) in expected.values().enumerate() {
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(sum[i], *s) && count[i] == Some(*c as f64), "row {i}");
        if *c == 0 {
            assert_eq!((mean[i], min[i], max[i]), (None, None, None), "row {i}");
        } else {
            assert!(
                close(mean[i], s / *c as f64) && min[i] == Some(*lo) && max[i] == Some(*hi),
                "row {i}"
            );
        }
    }
}

const ALL: [Agg; 5] = [Agg::Sum, Agg::Mean, Agg::Count, Agg::Min, Agg::Max];

#[test]
fn every_aggregation_matches_a_computation_by_hand_for_any_partitioning() {
    let batch = accounts(5000);
    for parts in [1, 3, 8, 9, 16, 70] {
        let df = DataFrame::from_batches(vec![batch.clone()], parts).unwrap();
        let aggs = ALL.iter().flat_map(|&a| [("balance", a), ("score", a)]);
        let result = run(&df.groupby(["name"]).unwrap().agg(aggs).unwrap());
        check_against_hand(&result, &batch, "balance");
        check_against_hand(&result, &batch, "score");
        assert_eq!(result.column_by_name("balance_sum").unwrap().data_type(), &DataType::Int64);
        assert_eq!(result.column_by_name("balance_min").unwrap().data_type(), &DataType::Int64);
    }
}

#[test]
fn sixteen_partitions_make_sixteen_chunks_two_combines_and_the_aggregate() {
    let df = DataFrame::from_batches(vec![accounts(100)], 16).unwrap();
    let sums = df.groupby(["name"]).unwrap().sum("balance").unwrap();
    let funcs: Vec<&str> = sums.parts().0.tasks().iter().map(|t| &*t.func).collect();
    let count = |f: &str| funcs.iter().filter(|&&g| g == f).count();
    assert_eq!(count(groupby_chunk.id()), 16);
    assert_eq!(count(COMBINE), 2);
    assert_eq!(count(AGGREGATE), 1);
    let root = sums.parts().0.get(Collection::keys(&sums)[0].as_str()).unwrap();
    assert_eq!((&*root.func, root.args.len()), (AGGREGATE, 3), "the plan and two combines");
    // The same groupby twice has the same keys; another aggregation does not.
    assert_eq!(
        Collection::keys(&df.groupby(["name"]).unwrap().sum("balance").unwrap()),
        Collection::keys(&sums)
    );
    assert_ne!(
        Collection::keys(&df.groupby(["name"]).unwrap().max("balance").unwrap()),
        Collection::keys(&sums)
    );
}

#[test]
fn several_keys_go_through_the_row_format_and_sort_by_every_key() {
    let batch = accounts(3000);
    let df = DataFrame::from_batches(vec![batch.clone()], 5).unwrap();
    let result = run(&df.groupby(["city", "name"]).unwrap().agg([("balance", Agg::Sum)]).unwrap());
    let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    let (city, name) = (batch.column(1).as_string::<i32>(), batch.column(0).as_string::<i32>());
    let balance = batch.column(2).as_primitive::<Int64Type>();
    for i in 0..batch.num_rows() {
        if name.is_valid(i) {
            let b = if balance.is_valid(i) { balance.value(i) } else { 0 };
            *expected.entry((city.value(i).into(), name.value(i).into())).or_default() += b;
        }
    }
    let got: Vec<((String, String), i64)> = (0..result.num_rows())
        .map(|i| {
            let key = (
                result.column(0).as_string::<i32>().value(i),
                result.column(1).as_string::<i32>().value(i),
            );
            ((key.0.into(), key.1.into()), result.column(2).as_primitive::<Int64Type>().value(i))
        })
        .collect();
    assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
}

#[test]
fn integer_and_boolean_keys_group_by_value() {
    let batch = accounts(1000);
    let df = DataFrame::from_batches(vec![batch.clone()], 4).unwrap();
    let by_flag = run(&df.groupby(["flag"]).unwrap().count("score").unwrap());
    let flags: Vec<Option<bool>> = by_flag.column(0).as_boolean().iter().collect();
    assert_eq!(flags, [Some(false), Some(true)]);
    let counts = by_flag.column(1).as_primitive::<Int64Type>();
    let score = batch.column(3).as_primitive::<Float64Type>();
    let present = |flag: bool| {
        (0..1000)
            .filter(|&i| (i % 4 == 0) == flag && score.is_valid(i) && !score.value(i).is_nan())
            .count()
    };
    assert_eq!(counts.values(), &[present(false) as i64, present(true) as i64]);

    let by_balance = run(&df.groupby(["balance"]).unwrap().count("score").unwrap());
    let keys = by_balance.column(0).as_primitive::<Int64Type>();
    assert_eq!(keys.null_count(), 0, "null balances are dropped");
    assert!(keys.values().windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
    let mut distinct: Vec<i64> =
        batch.column(2).as_primitive::<Int64Type>().iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(keys.values().to_vec(), distinct);
}

#[test]
fn an_empty_frame_gives_an_empty_result_with_the_schema() {
    let df = DataFrame::from_batches(vec![accounts(0)], 2).unwrap();
    let result = run(&df.groupby(["city", "name"]).unwrap().agg([("score", Agg::Mean)]).unwrap());
    assert_eq!(result.num_rows(), 0);
    assert_eq!(result.schema().fields().len(), 3);
}

#[test]
fn bad_columns_are_build_time_errors_that_say_what_is_wrong() {
    let df = DataFrame::from_batches(vec![accounts(10)], 2).unwrap();
    let msg = |r: Result<DataFrame>| match r {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected an InvalidArgument error, got {other:?}"),
    };
    let unknown = df.groupby(["nmae"]).unwrap_err().to_string();
    assert!(
        unknown.contains("\"nmae\"") && unknown.contains("name, city, balance, score, flag"),
        "{unknown}"
    );
    let by_float = df.groupby(["score"]).unwrap_err().to_string();
    assert!(by_float.contains("\"score\"") && by_float.contains("Float64"), "{by_float}");
    assert!(df.groupby(["name", "name"]).is_err());
    assert!(df.groupby(Vec::<String>::new()).is_err());
    let g = df.groupby(["name"]).unwrap();
    let text = msg(g.sum("city"));
    assert!(text.contains("\"city\"") && text.contains("Utf8") && text.contains("sum"), "{text}");
    assert!(msg(g.max("flag")).contains("Boolean"));
    assert!(msg(g.mean("balanse")).contains("balance, score"));
    assert!(msg(g.agg([("balance", Agg::Sum), ("balance", Agg::Sum)])).contains("balance_sum"));
    assert!(msg(g.agg(Vec::<(&str, Agg)>::new())).contains("at least one"));
}

#[test]
fn kernels_report_tables_that_do_not_fit_the_plan_as_errors() {
    let df = DataFrame::from_batches(vec![accounts(10)], 1).unwrap();
    let sums = df.groupby(["name"]).unwrap().sum("score").unwrap();
    let graph = sums.parts().0;
    let root = graph.get(Collection::keys(&sums)[0].as_str()).unwrap();
    let Arg::Value(p) = &root.args[0] else { panic!("the plan comes first") };
    let plan: Plan = decode(p).unwrap();
    let narrow =
        RecordBatch::try_from_iter([("name", Arc::new(StringArray::from(vec!["a"])) as ArrayRef)])
            .unwrap();
    assert!(chunk(&narrow, &plan).unwrap_err().to_string().contains("columns"));
    let wrong_type = RecordBatch::try_from_iter([
        ("name", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("x", Arc::new(StringArray::from(vec!["b"])) as _),
        ("y", Arc::new(StringArray::from(vec!["b"])) as _),
        ("score", Arc::new(StringArray::from(vec!["c"])) as _),
    ])
    .unwrap();
    assert!(chunk(&wrong_type, &plan).is_err());
    assert!(finish(&[], &plan).is_err());
}

/// The fastest of 50 runs of `f` after a warm-up run (which also lets the
/// allocator keep the memory it maps), in milliseconds: the fastest, since
/// the machines this runs on are shared.
fn measure(mut f: impl FnMut()) -> f64 {
    f();
    (0..50)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// The chunk kernel on the benchmark's partitions: 125,000 rows (2M in 16
/// partitions), `name` one of 1,000 short strings, `balance` an int64.
/// Run with `cargo test -p rudask-collections --release -- --ignored
/// --nocapture chunk_speed`.
#[test]
#[ignore = "a measurement, not a check; run it in release mode"]
fn chunk_speed() {
    let rows = 125_000usize;
    let mut rng = fastrand::Rng::with_seed(7);
    let name = StringArray::from_iter_values((0..rows).map(|_| rng.u32(0..1000).to_string()));
    let balance = Int64Array::from_iter_values((0..rows).map(|_| rng.i64(-1000..1000)));
    let batch = RecordBatch::try_from_iter([
        ("name", Arc::new(name) as ArrayRef),
        ("balance", Arc::new(balance) as _),
    ])
    .unwrap();
    let keys = [batch.column(0).clone()];
    let ms = measure(|| drop(std::hint::black_box(group::group(&keys).unwrap())));
    println!("grouping {rows} rows: {ms:.3} ms");
    let df = DataFrame::from_batches(vec![batch.clone()], 1).unwrap();
    for aggs in [&[("balance", Agg::Sum)][..], &ALL.map(|a| ("balance", a))] {
        let result = df.groupby(["name"]).unwrap().agg(aggs.iter().copied()).unwrap();
        let root = result.parts().0.get(Collection::keys(&result)[0].as_str()).unwrap();
        let Arg::Value(p) = &root.args[0] else { panic!("the plan comes first") };
        let plan: Plan = decode(p).unwrap();
        let ms = measure(|| drop(std::hint::black_box(chunk(&batch, &plan).unwrap())));
        println!("chunk of {rows} rows, {aggs:?}: {ms:.3} ms");
        let partials: Vec<RecordBatch> = (0..8).map(|_| chunk(&batch, &plan).unwrap()).collect();
        let ms = measure(|| drop(std::hint::black_box(finish(&partials, &plan).unwrap())));
        println!("aggregate of 8 partial tables: {ms:.3} ms");
    }
}

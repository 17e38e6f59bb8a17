//! `Array` end to end over TCP with worker processes: every operation is
//! computed on the cluster and compared with the same computation done by
//! ndarray on the whole array, for several element types; bad input is a
//! clear error.

mod common;

use common::{within, Cluster};
use ndarray::{Array2, ArrayD, Axis, IxDyn};
use rudask::{Client, Collection, Error, Value};
use rudask_collections::array::{Array, Element, Number};
use rudask_collections::Scalar;
use rudask_tests::array_tasks::{drop_first_row, is_even, square};

/// Computes an array on the cluster.
async fn get<T: Element>(client: &Client, a: &Array<T>) -> ArrayD<T> {
    within(client.compute(a).unwrap()).await.unwrap().into_inner()
}

/// Computes a scalar on the cluster.
async fn value<T: Value>(client: &Client, s: &Scalar<T>) -> T {
    within(client.compute(s).unwrap()).await.unwrap()
}

/// A `rows x cols` array whose elements come from their position.
fn grid<T: Element>(rows: usize, cols: usize, f: impl Fn(usize, usize) -> T) -> ArrayD<T> {
    ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |i| f(i[0], i[1]))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn all_close(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(&x, &y)| close(x, y))
}

/// Every elementwise operation, with a scalar and with another array, equals
/// ndarray's.
async fn check_arithmetic<T: Number>(client: &Client, a: ArrayD<T>, b: ArrayD<T>, s: T) {
    let (x, y) = (
        Array::from_ndarray(a.clone(), &[4, 3]).unwrap(),
        Array::from_ndarray(b.clone(), &[4, 3]).unwrap(),
    );
    let want = |f: fn(T, T) -> T| ndarray::Zip::from(&a).and(&b).map_collect(|&p, &q| f(p, q));
    let div = |p, q| T::div(p, q).unwrap();
    assert_eq!(get(client, &(&x + s)).await, a.mapv(|p| T::add(p, s)), "{} + s", T::DTYPE);
    assert_eq!(get(client, &(&x - s)).await, a.mapv(|p| T::sub(p, s)), "{} - s", T::DTYPE);
    assert_eq!(get(client, &(&x * s)).await, a.mapv(|p| T::mul(p, s)), "{} * s", T::DTYPE);
    assert_eq!(get(client, &(x.clone() / s)).await, a.mapv(|p| div(p, s)), "{} / s", T::DTYPE);
    assert_eq!(get(client, &(&x + &y).unwrap()).await, want(T::add), "{} a + b", T::DTYPE);
    assert_eq!(get(client, &(&x - &y).unwrap()).await, want(T::sub), "{} a - b", T::DTYPE);
    assert_eq!(get(client, &x.mul(&y).unwrap()).await, want(T::mul), "{} a * b", T::DTYPE);
    assert_eq!(get(client, &(x / y).unwrap()).await, want(div), "{} a / b", T::DTYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elementwise_arithmetic_matches_ndarray_for_each_numeric_dtype() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let f = |i: usize, j: usize| i as f64 * 1.25 - j as f64;
    check_arithmetic(&client, grid(10, 7, f), grid(10, 7, |i, j| 1.0 + (i * j) as f64), 0.5).await;
    check_arithmetic(
        &client,
        grid(10, 7, |i, j| f(i, j) as f32),
        grid(10, 7, |i, _| i as f32 + 0.5),
        3.0f32,
    )
    .await;
    check_arithmetic(
        &client,
        grid(10, 7, |i, j| i as i64 * 100 - j as i64),
        grid(10, 7, |i, j| (i + j + 1) as i64),
        7i64,
    )
    .await;
    check_arithmetic(
        &client,
        grid(10, 7, |i, j| (i * j) as i32 - 20),
        grid(10, 7, |i, j| if j % 2 == 0 { -(i as i32) - 1 } else { j as i32 }),
        -3i32,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reductions_over_all_elements_and_along_an_axis_match_ndarray() {
    let (_cluster, client) = Cluster::start(2, 1).await;

    let a = grid(13, 9, |i, j| (i as f64 - 6.0) * 0.37 + j as f64 * 1.1);
    let x = Array::from_ndarray(a.clone(), &[4, 2]).unwrap();
    assert!(close(value(&client, &x.sum()).await, a.sum()));
    assert!(close(value(&client, &x.mean()).await, a.mean().unwrap()));
    assert_eq!(
        value(&client, &x.min().unwrap()).await,
        a.iter().copied().fold(f64::INFINITY, f64::min)
    );
    assert_eq!(
        value(&client, &x.max().unwrap()).await,
        a.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    for axis in 0..2 {
        assert!(all_close(
            &get(&client, &x.sum_axis(axis).unwrap()).await,
            &a.sum_axis(Axis(axis))
        ));
        assert!(all_close(
            &get(&client, &x.mean_axis(axis).unwrap()).await,
            &a.mean_axis(Axis(axis)).unwrap()
        ));
        let min = a.fold_axis(Axis(axis), f64::INFINITY, |m, &v| m.min(v));
        assert_eq!(get(&client, &x.min_axis(axis).unwrap()).await, min);
        let max = a.fold_axis(Axis(axis), f64::NEG_INFINITY, |m, &v| m.max(v));
        assert_eq!(get(&client, &x.max_axis(axis).unwrap()).await, max);
    }

    // 40 chunks: the tree has two levels, and the integer mean is exact.
    let b =
        ArrayD::from_shape_fn(IxDyn(&[20, 6, 5]), |i| (i[0] * 30 + i[1] * 5 + i[2]) as i64 - 250);
    let y = Array::from_ndarray(b.clone(), &[1, 3, 5]).unwrap();
    assert_eq!(y.npartitions(), 40);
    assert_eq!(value(&client, &y.sum()).await, b.sum());
    assert_eq!(value(&client, &y.mean()).await, b.sum() as f64 / b.len() as f64);
    assert_eq!(value(&client, &y.min().unwrap()).await, -250);
    assert_eq!(value(&client, &y.max().unwrap()).await, 349);
    for axis in 0..3 {
        assert_eq!(
            get(&client, &y.sum_axis(axis).unwrap()).await,
            b.sum_axis(Axis(axis)),
            "axis {axis}"
        );
        let min = b.fold_axis(Axis(axis), i64::MAX, |m, &v| *m.min(&v));
        assert_eq!(get(&client, &y.min_axis(axis).unwrap()).await, min, "axis {axis}");
        let mean = b.mapv(|v| v as f64).mean_axis(Axis(axis)).unwrap();
        assert!(all_close(&get(&client, &y.mean_axis(axis).unwrap()).await, &mean), "axis {axis}");
    }

    let c = grid(7, 4, |i, j| (i * 4 + j) as i32 % 11 - 5);
    let z = Array::from_ndarray(c.clone(), &[3, 3]).unwrap();
    assert_eq!(value(&client, &z.sum()).await, c.sum());
    assert_eq!(
        get(&client, &z.max_axis(1).unwrap()).await,
        c.fold_axis(Axis(1), i32::MIN, |m, &v| *m.max(&v))
    );
    let f = grid(7, 4, |i, j| (i * 4 + j) as f32 * 0.5);
    let w = Array::from_ndarray(f.clone(), &[2, 4]).unwrap();
    assert!((value(&client, &w.sum()).await - f.sum()).abs() < 1e-3);
    assert!(close(value(&client, &w.mean()).await, f.mapv(f64::from).mean().unwrap()));

    let flags = grid(6, 5, |i, j| (i + j) % 3 != 0);
    let v = Array::from_ndarray(flags.clone(), &[4, 2]).unwrap();
    assert!(!value(&client, &v.min().unwrap()).await);
    assert!(value(&client, &v.max().unwrap()).await);
    let all = flags.map_axis(Axis(0), |lane| lane.iter().all(|&b| b));
    assert_eq!(get(&client, &v.min_axis(0).unwrap()).await, all);
    let any = flags.map_axis(Axis(1), |lane| lane.iter().any(|&b| b));
    assert_eq!(get(&client, &v.max_axis(1).unwrap()).await, any);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matmul_matches_ndarray_dot() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let a: Array2<f64> = Array2::from_shape_fn((9, 7), |(i, j)| i as f64 - 0.5 * j as f64);
    let b: Array2<f64> = Array2::from_shape_fn((7, 5), |(i, j)| (i * j) as f64 * 0.25 + 1.0);
    let x = Array::from_ndarray(a.clone(), &[4, 3]).unwrap();
    let y = Array::from_ndarray(b.clone(), &[3, 2]).unwrap();
    let product = x.matmul(&y).unwrap();
    assert_eq!(product.chunks(), &[vec![4, 4, 1], vec![2, 2, 1]]);
    assert!(all_close(&get(&client, &product).await, &a.dot(&b).into_dyn()));

    let a: Array2<i64> = Array2::from_shape_fn((6, 8), |(i, j)| (i * 8 + j) as i64 - 20);
    let b: Array2<i64> = Array2::from_shape_fn((8, 3), |(i, j)| (i + 2 * j) as i64 - 4);
    let x = Array::from_ndarray(a.clone(), &[6, 3]).unwrap();
    let y = Array::from_ndarray(b.clone(), &[3, 3]).unwrap();
    assert_eq!(get(&client, &x.matmul(&y).unwrap()).await, a.dot(&b).into_dyn());
    let t = x.transpose().matmul(&x).unwrap();
    assert_eq!(get(&client, &t).await, a.t().dot(&a).into_dyn());

    let a: Array2<f32> = Array2::from_shape_fn((5, 4), |(i, j)| (i + j) as f32);
    let x = Array::from_ndarray(a.clone(), &[2, 2]).unwrap();
    let got = get(&client, &x.matmul(&x.transpose()).unwrap()).await;
    assert_eq!(got, a.dot(&a.t()).into_dyn());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rechunk_slice_and_transpose_match_ndarray() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let a = ArrayD::from_shape_fn(IxDyn(&[11, 6, 4]), |i| (i[0] * 24 + i[1] * 4 + i[2]) as i32);
    let x = Array::from_ndarray(a.clone(), &[3, 4, 4]).unwrap();

    let r = x.rechunk(&[5, 5, 1]).unwrap();
    assert_eq!(r.chunks(), &[vec![5, 5, 1], vec![5, 1], vec![1, 1, 1, 1]]);
    assert_eq!(get(&client, &r).await, a);
    let r = x.rechunk_to(vec![vec![1, 10], vec![6], vec![2, 2]]).unwrap();
    assert_eq!(get(&client, &r).await, a);
    assert_eq!(get(&client, &x.rechunk(&[11, 6, 4]).unwrap()).await, a);

    let s = x.slice(&[2..9, 1..5]).unwrap();
    assert_eq!(
        (s.shape(), s.chunks()),
        (&[7, 4, 4][..], &[vec![1, 3, 3], vec![3, 1], vec![4]][..])
    );
    assert_eq!(
        get(&client, &s).await,
        a.slice(ndarray::s![2..9, 1..5, ..]).into_owned().into_dyn()
    );
    let empty = x.slice_axis(0, 4..4).unwrap();
    assert_eq!(get(&client, &empty).await.shape(), &[0, 6, 4]);
    let s = r.slice(&[10..11, 0..6, 1..3]).unwrap();
    assert_eq!(
        get(&client, &s).await,
        a.slice(ndarray::s![10..11, .., 1..3]).into_owned().into_dyn()
    );

    let t = x.transpose();
    assert_eq!(t.shape(), &[4, 6, 11]);
    assert_eq!(get(&client, &t).await, a.t().into_owned());
    let sum = t.sum_axis(2).unwrap().add_scalar(1);
    assert_eq!(get(&client, &sum).await, a.t().sum_axis(Axis(2)).mapv(|v| v + 1));
    let back = get(&client, &t.rechunk(&[2, 6, 6]).unwrap().transpose()).await;
    assert_eq!(back, a);

    let flags = grid(5, 8, |i, j| (i * j) % 3 == 1);
    let f = Array::from_ndarray(flags.clone(), &[2, 3]).unwrap();
    assert_eq!(get(&client, &f.transpose()).await, flags.t().into_owned());
    let sliced = f.slice(&[1..4, 2..8]).unwrap().rechunk(&[3, 2]).unwrap();
    assert_eq!(
        get(&client, &sliced).await,
        flags.slice(ndarray::s![1..4, 2..8]).into_owned().into_dyn()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constructors_make_their_chunks_on_the_workers() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let z = Array::<f64>::zeros(&[5, 3], &[2, 2]).unwrap();
    assert!(z.graph().tasks().iter().all(|t| t
        .args
        .iter()
        .all(|a| matches!(a, rudask::core::Arg::Value(p) if p.as_object().is_none()))));
    assert_eq!(get(&client, &z).await, ArrayD::<f64>::zeros(IxDyn(&[5, 3])));
    assert_eq!(
        get(&client, &Array::<i32>::ones(&[4], &[3]).unwrap()).await,
        ArrayD::<i32>::ones(IxDyn(&[4]))
    );
    assert_eq!(
        get(&client, &Array::<bool>::ones(&[2, 2], &[1, 1]).unwrap()).await,
        ArrayD::from_elem(IxDyn(&[2, 2]), true)
    );
    assert_eq!(
        get(&client, &Array::full(&[3, 1, 2], &[2, 1, 1], -7i64).unwrap()).await,
        ArrayD::from_elem(IxDyn(&[3, 1, 2]), -7)
    );
    let r = Array::<i64>::arange(23, 5).unwrap();
    assert_eq!(r.npartitions(), 5);
    assert_eq!(get(&client, &r).await, ndarray::Array1::from_iter(0..23i64).into_dyn());
    let r = Array::<f32>::arange(10, 4).unwrap();
    assert_eq!(
        get(&client, &r).await,
        ndarray::Array1::from_iter((0..10).map(|i| i as f32)).into_dyn()
    );
    assert_eq!(value(&client, &Array::<i64>::arange(100, 30).unwrap().sum()).await, 4950);
    let point = Array::from_ndarray(ndarray::arr0(2.5f64), &[]).unwrap();
    assert_eq!(get(&client, &(&point * 2.0)).await, ndarray::arr0(5.0).into_dyn());
    let line = Array::<i32>::arange(7, 3).unwrap().sum_axis(0).unwrap();
    assert_eq!((line.shape(), get(&client, &line).await), (&[][..], ndarray::arr0(21).into_dyn()));
    let empty = Array::<f64>::zeros(&[0, 4], &[3, 3]).unwrap();
    assert_eq!(empty.chunks(), &[vec![0], vec![3, 1]]);
    assert_eq!(get(&client, &empty).await.shape(), &[0, 4]);
    assert_eq!(value(&client, &empty.sum()).await, 0.0);
    assert!(value(&client, &empty.mean()).await.is_nan());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_blocks_runs_a_registered_task_on_every_chunk() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let a = grid(9, 4, |i, j| i as f64 - j as f64 * 0.5);
    let x = Array::from_ndarray(a.clone(), &[4, 3]).unwrap();
    assert_eq!(get(&client, &x.map_blocks(&square)).await, a.mapv(|v| v * v));
    let n = Array::<i64>::arange(11, 4).unwrap();
    let even = n.map_blocks(&is_even);
    assert_eq!(
        get(&client, &even).await,
        ndarray::Array1::from_iter((0..11).map(|i| i % 2 == 0)).into_dyn()
    );
    assert!(!value(&client, &even.min().unwrap()).await);

    // A task that changes a chunk's shape breaks the array: the tasks that
    // assemble it say so.
    let broken = x.map_blocks(&drop_first_row);
    let err = within(client.compute(&broken).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::Task { .. }) && err.to_string().contains("map_blocks"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_arrays_compute_from_the_chunks_on_the_cluster() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let a = grid(12, 10, |i, j| (i * 10 + j) as f64);
    let x = Array::from_ndarray(a.clone(), &[5, 4]).unwrap();
    let y = (&(&x * 2.0) - &x.transpose().transpose()).unwrap();
    let persisted = client.persist(&y).unwrap();
    assert_eq!(persisted.keys(), y.keys());
    assert!(persisted.graph().is_empty(), "a persisted array is its chunks");
    within(client.wait_collection(&persisted)).await.unwrap();
    let futures = client.submit_graph::<()>(&rudask::TaskGraph::new(), &persisted.keys()).unwrap();
    let who = within(client.who_has(&futures)).await.unwrap();
    assert_eq!(who.len(), 9, "every chunk is in memory: {who:?}");

    assert_eq!(get(&client, &persisted).await, a);
    assert!(close(value(&client, &persisted.mean()).await, a.mean().unwrap()));
    let col = persisted.slice(&[0..12, 3..4]).unwrap().sum_axis(1).unwrap();
    assert_eq!(get(&client, &col).await, a.index_axis(Axis(1), 3).to_owned());
    let twice = client.persist(&persisted.add_scalar(1.0)).unwrap();
    assert_eq!(get(&client, &twice.rechunk(&[12, 10]).unwrap()).await, a.mapv(|v| v + 1.0));
}

fn invalid(r: rudask::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error() {
    let a = Array::<f64>::ones(&[6, 4], &[3, 2]).unwrap();
    let other = a.rechunk(&[2, 4]).unwrap();
    let m = invalid(a.add(&other));
    assert!(
        m.contains("[[3, 3], [2, 2]]") && m.contains("[[2, 2, 2], [4]]") && m.contains("rechunk"),
        "{m}"
    );
    assert!(invalid(&a * &Array::ones(&[6, 5], &[3, 2]).unwrap()).contains("shapes differ"));

    let m = invalid(a.matmul(&a));
    assert!(m.contains("[6, 4] and [6, 4]"), "{m}");
    let b = Array::<f64>::ones(&[4, 3], &[4, 3]).unwrap();
    let m = invalid(a.matmul(&b));
    assert!(m.contains("[2, 2]") && m.contains("[4]") && m.contains("rechunk"), "{m}");
    assert!(invalid(Array::<f64>::ones(&[4], &[2]).unwrap().matmul(&b)).contains("2-D"));

    let m = invalid(a.slice_axis(0, 2..7));
    assert!(m.contains("2..7") && m.contains("axis 0") && m.contains("length 6"), "{m}");
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = a.slice(&[0..6, 3..1]);
    assert!(invalid(backwards).contains("axis 1"));
    assert!(invalid(a.slice(&[0..1, 0..1, 0..1])).contains("3 ranges"));
    assert!(invalid(a.slice_axis(2, 0..1)).contains("axis 2"));

    assert!(invalid(Array::<i32>::zeros(&[5], &[0])).contains("chunk length 0"));
    assert!(invalid(Array::<i32>::zeros(&[5, 5], &[2])).contains("1 axes"));
    assert!(invalid(Array::from_ndarray(Array2::<i64>::zeros((3, 3)), &[1, 0])).contains("axis 1"));
    assert!(invalid(a.rechunk_to(vec![vec![3, 2], vec![4]])).contains("axis 0"));
    assert!(invalid(a.rechunk(&[1, 1, 1])).contains("3 axes"));
    assert!(invalid(Array::<f64>::arange(10, 0)).contains("chunk length 0"));

    assert!(invalid(a.sum_axis(2)).contains("axis 2"));
    assert!(invalid(a.mean_axis(5)).contains("axis 5"));
    assert!(invalid(Array::<f64>::zeros(&[0, 2], &[1, 1]).unwrap().max()).contains("empty"));
    assert!(invalid(Array::<f64>::zeros(&[0, 2], &[1, 1]).unwrap().min_axis(0)).contains("empty"));

    // Errors only the data shows come from the task that meets them.
    let (_cluster, client) = Cluster::start(2, 1).await;
    let n = Array::<i64>::arange(6, 4).unwrap();
    let err = within(client.compute(&(&n / 0)).unwrap()).await.unwrap_err();
    assert!(
        matches!(err, Error::Task { .. }) && err.to_string().contains("division by zero"),
        "{err}"
    );
    let err = within(client.compute(&n.div(&n).unwrap()).unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("i64 division by zero"), "{err}");
}

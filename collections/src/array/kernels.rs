//! The tasks an [`super::Array`]'s graph is made of. Each is registered once
//! per element type it applies to, with an id such as
//! `rudask_collections::array::assemble<f64>` ([`id`] builds it), so a
//! worker knows the element type of the chunks it decodes before it decodes
//! them.
//!
//! Kernels check what they rely on (shapes of the chunks they combine, axis
//! numbers, ranges) and fail the task with a message rather than panic: a
//! `map_blocks` task may have returned a chunk of another shape.

use super::chunk::{Element, NdArray, Number};
use crate::kernel::{task_result, variadic_kernel, TaskArgs};
use ndarray::{ArrayD, ArrayView2, ArrayViewD, Axis, Ix2, IxDyn, Slice, Zip};
use rudask::core::registry::TaskResult;
use rudask::core::{FailureKind, TaskFailure};
use serde::{Deserialize, Serialize};

/// The id of kernel `op` for element type `T`.
pub(crate) fn id<T: Element>(op: &str) -> String {
    format!("rudask_collections::array::{op}<{}>", T::DTYPE)
}

/// An elementwise arithmetic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
        }
    }

    /// `a op b`; `None` for an integer division by zero or overflow.
    fn apply<T: Number>(self, a: T, b: T) -> Option<T> {
        match self {
            Op::Add => Some(T::add(a, b)),
            Op::Sub => Some(T::sub(a, b)),
            Op::Mul => Some(T::mul(a, b)),
            Op::Div => T::div(a, b),
        }
    }
}

/// Which extreme a min/max kernel looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Extreme {
    Min,
    Max,
}

impl Extreme {
    fn pick<T: Element>(self, a: T, b: T) -> T {
        match self {
            Extreme::Min => T::min2(a, b),
            Extreme::Max => T::max2(a, b),
        }
    }
}

/// How an output chunk is cut from input chunks: its shape and, per input
/// chunk (the task's dependencies, in order), the part of it that lands
/// where.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) shape: Vec<usize>,
    pub(crate) pieces: Vec<Piece>,
}

/// One input chunk's part of a [`Plan`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Piece {
    /// The shape the input chunk must have.
    pub(crate) block: Vec<usize>,
    /// Per axis, where the part starts in the input chunk.
    pub(crate) src: Vec<usize>,
    /// Per axis, where it starts in the output.
    pub(crate) dst: Vec<usize>,
    /// Per axis, its length.
    pub(crate) len: Vec<usize>,
}

fn failure(msg: impl Into<String>) -> TaskFailure {
    TaskFailure::new(FailureKind::Error, msg.into())
}

/// The elements of an integer division by zero (or overflow) make the task
/// fail rather than wrap into a made-up number.
fn division_failure<T: Element>() -> TaskFailure {
    failure(format!("{} division by zero (or overflow) in an array chunk", T::DTYPE))
}

fn axis_check<T: Element>(chunk: &ArrayD<T>, axis: usize) -> Result<(), TaskFailure> {
    if axis < chunk.ndim() {
        Ok(())
    } else {
        Err(failure(format!("axis {axis} of a chunk of shape {:?}", chunk.shape())))
    }
}

/// Passes a chunk shipped with the graph through, into the cluster's memory.
fn source(args: TaskArgs) -> TaskResult {
    args.payload(0).cloned().ok_or_else(|| failure("source takes one chunk"))
}
pub(crate) const SOURCE: &str = "rudask_collections::array::source";
variadic_kernel!(SOURCE, source);

/// `(shape, value)`: a chunk filled with `value`.
fn fill<T: Element>(args: TaskArgs) -> TaskResult {
    let shape: Vec<usize> = args.get(0, "shape")?;
    let value: T = args.get(1, "value")?;
    task_result(NdArray::new(ArrayD::from_elem(IxDyn(&shape), value)))
}

/// `(start, len)`: the 1-D chunk `start, start + 1, ..`.
fn arange<T: Number>(args: TaskArgs) -> TaskResult {
    let start: usize = args.get(0, "start")?;
    let len: usize = args.get(1, "len")?;
    let v: Vec<T> = (start..start + len).map(T::from_index).collect();
    task_result(NdArray::new(ArrayD::from_shape_vec(IxDyn(&[len]), v).expect("1-D of its length")))
}

/// `(chunk, op, x)`: `chunk op x` elementwise, in place when the chunk is
/// not shared.
fn scalar_op<T: Number>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    let op: Op = args.get(1, "op")?;
    let x: T = args.get(2, "x")?;
    let mut ok = true;
    let mut f = |a: T| {
        op.apply(a, x).unwrap_or_else(|| {
            ok = false;
            T::zero()
        })
    };
    let out = match std::sync::Arc::try_unwrap(chunk.into_arc()) {
        Ok(mut a) => {
            a.mapv_inplace(&mut f);
            a
        }
        Err(shared) => shared.mapv(&mut f),
    };
    if !ok {
        return Err(division_failure::<T>());
    }
    task_result(NdArray::new(out))
}

/// `(a, b, op)`: `a op b` elementwise, for chunks of one shape.
fn binary_op<T: Number>(args: TaskArgs) -> TaskResult {
    let a: NdArray<T> = args.get(0, "a")?;
    let b: NdArray<T> = args.get(1, "b")?;
    let op: Op = args.get(2, "op")?;
    if a.shape() != b.shape() {
        return Err(failure(format!(
            "elementwise {}: chunks of shapes {:?} and {:?}",
            op.symbol(),
            a.shape(),
            b.shape()
        )));
    }
    let mut ok = true;
    let out = Zip::from(&*a).and(&*b).map_collect(|&x, &y| {
        op.apply(x, y).unwrap_or_else(|| {
            ok = false;
            T::zero()
        })
    });
    if !ok {
        return Err(division_failure::<T>());
    }
    task_result(NdArray::new(out))
}

/// `(chunk)`: the sum of its elements.
fn sum_all<T: Number>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    task_result(chunk.iter().fold(T::zero(), |s, &x| T::add(s, x)))
}

/// `(partial sums..)`: their sum.
fn sum_combine<T: Number>(args: TaskArgs) -> TaskResult {
    let parts: Vec<T> = args.get_rest(0, "partial sums")?;
    task_result(parts.into_iter().fold(T::zero(), T::add))
}

/// `(chunk)`: the sum of its elements as `f64`.
fn mean_all<T: Number>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    task_result(chunk.iter().fold(0.0, |s, &x| s + x.to_f64()))
}

/// `(sum, n)`: `sum / n`, the last step of a mean.
fn divide(args: TaskArgs) -> TaskResult {
    let sum: f64 = args.get(0, "sum")?;
    let n: f64 = args.get(1, "n")?;
    task_result(sum / n)
}
pub(crate) const DIVIDE: &str = "rudask_collections::array::divide";
variadic_kernel!(DIVIDE, divide);

/// `(sums, n)`: `sums / n` elementwise, the last step of a mean along an
/// axis.
fn divide_chunk(args: TaskArgs) -> TaskResult {
    let sums: NdArray<f64> = args.get(0, "sums")?;
    let n: f64 = args.get(1, "n")?;
    let mut sums = sums.into_inner();
    sums.mapv_inplace(|s| s / n);
    task_result(NdArray::new(sums))
}
variadic_kernel!("rudask_collections::array::divide_chunk<f64>", divide_chunk);

/// `(chunk, extreme)`: its smallest or largest element.
fn extreme_all<T: Element>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    let e: Extreme = args.get(1, "extreme")?;
    let mut it = chunk.iter().copied();
    let first = it.next().ok_or_else(|| failure("min/max of an empty chunk"))?;
    task_result(it.fold(first, |m, x| e.pick(m, x)))
}

/// `(extreme, partials..)`: the extreme of the partial results.
fn extreme_combine<T: Element>(args: TaskArgs) -> TaskResult {
    let e: Extreme = args.get(0, "extreme")?;
    let parts: Vec<T> = args.get_rest(1, "partial results")?;
    let mut it = parts.into_iter();
    let first = it.next().ok_or_else(|| failure("min/max of no partial results"))?;
    task_result(it.fold(first, |m, x| e.pick(m, x)))
}

/// Folds `chunk` along `axis` with `f`, starting from its first slice
/// along the axis (which must exist).
fn fold_axis<T: Element, U: Element>(
    chunk: &ArrayViewD<'_, T>,
    axis: usize,
    init: impl Fn(T) -> U,
    f: impl Fn(U, T) -> U,
) -> ArrayD<U> {
    let mut lanes = chunk.axis_iter(Axis(axis));
    let first = lanes.next().expect("a non-empty axis");
    let mut acc = first.mapv(&init);
    for lane in lanes {
        Zip::from(&mut acc).and(&lane).for_each(|a, &x| *a = f(*a, x));
    }
    acc
}

/// `(chunk, axis)`: its sums along `axis`.
fn sum_axis<T: Number>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    let axis: usize = args.get(1, "axis")?;
    axis_check(&chunk, axis)?;
    if chunk.len_of(Axis(axis)) == 0 {
        return task_result(NdArray::new(ArrayD::from_elem(
            chunk.view().index_axis_move(Axis(axis), 0).raw_dim(),
            T::zero(),
        )));
    }
    task_result(NdArray::new(fold_axis(&chunk.view(), axis, |x| x, T::add)))
}

/// `(chunk, axis)`: its sums along `axis` as `f64`.
fn mean_axis<T: Number>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    let axis: usize = args.get(1, "axis")?;
    axis_check(&chunk, axis)?;
    if chunk.len_of(Axis(axis)) == 0 {
        return Err(failure("mean along an axis of length 0"));
    }
    task_result(NdArray::new(fold_axis(&chunk.view(), axis, T::to_f64, |s, x| s + x.to_f64())))
}

/// `(chunk, axis, extreme)`: its minima or maxima along `axis`.
fn extreme_axis<T: Element>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    let axis: usize = args.get(1, "axis")?;
    let e: Extreme = args.get(2, "extreme")?;
    axis_check(&chunk, axis)?;
    if chunk.len_of(Axis(axis)) == 0 {
        return Err(failure("min/max along an axis of length 0"));
    }
    task_result(NdArray::new(fold_axis(&chunk.view(), axis, |x| x, |m, x| e.pick(m, x))))
}

/// Combines chunks of one shape elementwise with `f`.
fn combine_chunks<T: Element>(
    parts: Vec<NdArray<T>>,
    f: impl Fn(T, T) -> T,
) -> Result<ArrayD<T>, TaskFailure> {
    let mut it = parts.into_iter();
    let mut acc = it.next().ok_or_else(|| failure("combine of no chunks"))?.into_inner();
    for p in it {
        if p.shape() != acc.shape() {
            return Err(failure(format!(
                "combining chunks of shapes {:?} and {:?}",
                acc.shape(),
                p.shape()
            )));
        }
        Zip::from(&mut acc).and(&*p).for_each(|a, &x| *a = f(*a, x));
    }
    Ok(acc)
}

/// `(chunks..)`: their elementwise sum.
fn add_combine<T: Number>(args: TaskArgs) -> TaskResult {
    let parts: Vec<NdArray<T>> = args.get_rest(0, "partial sums")?;
    task_result(NdArray::new(combine_chunks(parts, T::add)?))
}

/// `(extreme, chunks..)`: their elementwise extreme.
fn extreme_chunks<T: Element>(args: TaskArgs) -> TaskResult {
    let e: Extreme = args.get(0, "extreme")?;
    let parts: Vec<NdArray<T>> = args.get_rest(1, "partial results")?;
    task_result(NdArray::new(combine_chunks(parts, |a, b| e.pick(a, b))?))
}

fn matrix<'a, T: Element>(
    chunk: &'a NdArray<T>,
    what: &str,
) -> Result<ArrayView2<'a, T>, TaskFailure> {
    chunk.view().into_dimensionality::<Ix2>().map_err(|_| {
        failure(format!("matmul: a chunk of {what} has shape {:?}, not 2-D", chunk.shape()))
    })
}

/// `(n, a_0..a_{n-1}, b_0..b_{n-1})`: `Σ a_k · b_k`, one output chunk of a
/// matrix product from a row of chunks of the left matrix and a column of
/// the right one.
fn matmul<T: Number>(args: TaskArgs) -> TaskResult {
    let n: usize = args.get(0, "n")?;
    let chunks: Vec<NdArray<T>> = args.get_rest(1, "chunks")?;
    if n == 0 || chunks.len() != 2 * n {
        return Err(failure(format!("matmul of {n} pairs given {} chunks", chunks.len())));
    }
    let (a, b) = chunks.split_at(n);
    let rows = matrix(&a[0], "the left matrix")?.nrows();
    let cols = matrix(&b[0], "the right matrix")?.ncols();
    let mut c = ndarray::Array2::from_elem((rows, cols), T::zero());
    for (a, b) in a.iter().zip(b) {
        let (a, b) = (matrix(a, "the left matrix")?, matrix(b, "the right matrix")?);
        if a.nrows() != rows || b.ncols() != cols || a.ncols() != b.nrows() {
            return Err(failure(format!(
                "matmul: chunks of shapes {:?} and {:?} into an output chunk of {rows}x{cols}",
                a.shape(),
                b.shape()
            )));
        }
        T::matmul_acc(&mut c.view_mut(), &a, &b);
    }
    task_result(NdArray::new(c.into_dyn()))
}

/// `(plan, chunks..)`: an output chunk cut from input chunks (rechunking,
/// slicing, and assembling the whole array).
fn assemble<T: Element>(args: TaskArgs) -> TaskResult {
    let plan: Plan = args.get(0, "plan")?;
    let chunks: Vec<NdArray<T>> = args.get_rest(1, "chunks")?;
    if chunks.len() != plan.pieces.len() {
        return Err(failure(format!(
            "assemble: {} chunks for a plan of {}",
            chunks.len(),
            plan.pieces.len()
        )));
    }
    for (i, (c, p)) in chunks.iter().zip(&plan.pieces).enumerate() {
        if c.shape() != p.block.as_slice() {
            return Err(failure(format!(
                "chunk {i} has shape {:?} where the array's chunks say {:?} \
                 (a map_blocks task must return chunks of the shape it was given)",
                c.shape(),
                p.block
            )));
        }
        let fits = |v: &[usize], at: &[usize], dims: &[usize]| {
            v.len() == dims.len() && v.iter().zip(at).zip(dims).all(|((&s, &l), &d)| s + l <= d)
        };
        if p.len.len() != plan.shape.len()
            || !fits(&p.src, &p.len, c.shape())
            || !fits(&p.dst, &p.len, &plan.shape)
        {
            return Err(failure(format!("assemble: piece {i} is out of bounds: {p:?}")));
        }
    }
    if let ([c], [p]) = (chunks.as_slice(), plan.pieces.as_slice()) {
        if c.shape() == plan.shape.as_slice() && p.len == plan.shape {
            return task_result(c.clone());
        }
    }
    let mut out = ArrayD::from_elem(IxDyn(&plan.shape), T::zero());
    for (c, p) in chunks.iter().zip(&plan.pieces) {
        let src = c.slice_each_axis(|ax| {
            let (s, l) = (p.src[ax.axis.index()], p.len[ax.axis.index()]);
            Slice::from(s..s + l)
        });
        out.slice_each_axis_mut(|ax| {
            let (s, l) = (p.dst[ax.axis.index()], p.len[ax.axis.index()]);
            Slice::from(s..s + l)
        })
        .assign(&src);
    }
    task_result(NdArray::new(out))
}

/// `(chunk)`: the chunk with its axes reversed, copied once into row-major
/// order so that the tasks and transfers after it read contiguous memory.
fn transpose<T: Element>(args: TaskArgs) -> TaskResult {
    let chunk: NdArray<T> = args.get(0, "chunk")?;
    task_result(NdArray::new(chunk.view().reversed_axes().as_standard_layout().into_owned()))
}

/// Registers kernel `$f` as `$op<dtype>` for each dtype.
macro_rules! per_dtype {
    ($op:literal, $f:ident, [$($t:ident),*]) => {
        $(
            variadic_kernel!(
                concat!("rudask_collections::array::", $op, "<", stringify!($t), ">"),
                $f::<$t>
            );
        )*
    };
}

per_dtype!("fill", fill, [f64, f32, i64, i32, bool]);
per_dtype!("arange", arange, [f64, f32, i64, i32]);
per_dtype!("scalar_op", scalar_op, [f64, f32, i64, i32]);
per_dtype!("binary_op", binary_op, [f64, f32, i64, i32]);
per_dtype!("sum_all", sum_all, [f64, f32, i64, i32]);
per_dtype!("sum_combine", sum_combine, [f64, f32, i64, i32]);
per_dtype!("mean_all", mean_all, [f64, f32, i64, i32]);
per_dtype!("extreme_all", extreme_all, [f64, f32, i64, i32, bool]);
per_dtype!("extreme_combine", extreme_combine, [f64, f32, i64, i32, bool]);
per_dtype!("sum_axis", sum_axis, [f64, f32, i64, i32]);
per_dtype!("mean_axis", mean_axis, [f64, f32, i64, i32]);
per_dtype!("extreme_axis", extreme_axis, [f64, f32, i64, i32, bool]);
per_dtype!("add_combine", add_combine, [f64, f32, i64, i32]);
per_dtype!("extreme_chunks", extreme_chunks, [f64, f32, i64, i32, bool]);
per_dtype!("matmul", matmul, [f64, f32, i64, i32]);
per_dtype!("assemble", assemble, [f64, f32, i64, i32, bool]);
per_dtype!("transpose", transpose, [f64, f32, i64, i32, bool]);

#[cfg(test)]
mod tests {
    use super::*;
    use rudask::core::registry::{decode, encode, Catalog};

    fn call(id: &str, args: Vec<rudask::core::Payload>) -> TaskResult {
        let def = Catalog::global().get(id).unwrap_or_else(|| panic!("{id} is registered"));
        match (def.prepare)(TaskArgs::new(def.id, args)) {
            rudask::core::registry::TaskCall::Sync(f) => f(),
            rudask::core::registry::TaskCall::Async(_) => unreachable!("array kernels are sync"),
        }
    }

    #[test]
    fn every_kernel_is_registered_under_the_id_graphs_use() {
        for op in ["fill", "extreme_all", "assemble", "transpose"] {
            assert!(Catalog::global().get(&id::<bool>(op)).is_some(), "{op}");
        }
        for op in ["arange", "matmul", "mean_axis", "add_combine", "sum_combine"] {
            assert!(Catalog::global().get(&id::<i32>(op)).is_some(), "{op}");
        }
    }

    #[test]
    fn integer_division_by_zero_fails_the_task() {
        let a = NdArray::new(ArrayD::from_elem(IxDyn(&[2]), 4i64));
        let z = NdArray::new(ArrayD::from_elem(IxDyn(&[2]), 0i64));
        let args = vec![encode(&a).unwrap(), encode(&z).unwrap(), encode(&Op::Div).unwrap()];
        let err = call(&id::<i64>("binary_op"), args).unwrap_err();
        assert!(err.to_string().contains("division by zero"), "{err}");
    }

    #[test]
    fn a_chunk_of_an_unexpected_shape_fails_assembly() {
        let c = NdArray::new(ArrayD::from_elem(IxDyn(&[3]), 1.0f64));
        let plan = Plan {
            shape: vec![2],
            pieces: vec![Piece { block: vec![2], src: vec![0], dst: vec![0], len: vec![2] }],
        };
        let err = call(&id::<f64>("assemble"), vec![encode(&plan).unwrap(), encode(&c).unwrap()])
            .unwrap_err();
        assert!(err.to_string().contains("map_blocks"), "{err}");
        let ok = Plan {
            shape: vec![2],
            pieces: vec![Piece { block: vec![3], src: vec![1], dst: vec![0], len: vec![2] }],
        };
        let out = call(&id::<f64>("assemble"), vec![encode(&ok).unwrap(), encode(&c).unwrap()]);
        let out: NdArray<f64> = decode(&out.unwrap()).unwrap();
        assert_eq!(out.shape(), &[2]);
    }
}

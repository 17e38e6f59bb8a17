//! [`Array`]: a lazy, chunked n-dimensional array whose chunks are
//! `ndarray::ArrayD`s ([`NdArray`]s on the wire), in the spirit of
//! `dask.array`.
//!
//! An `Array<T>` is a shape, its chunking (dask-style: the chunk lengths
//! along each axis), the keys of its chunks in row-major order of the chunk
//! grid and the task graph that computes them. Every operation returns a
//! new `Array` (or a [`Scalar`]) whose graph extends its input's; nothing
//! runs until `client.persist(&a)` or `client.compute(&a)`. Shapes, axes,
//! ranges and chunkings are checked while the graph is built, so a mistake
//! fails at the call that made it with [`Error::InvalidArgument`].
//!
//! Reductions (`sum`, `mean`, `min`, `max`, over all elements or along one
//! axis) reduce each chunk, then combine the partial results in a tree, at
//! most [`SPLIT_EVERY`] at a time; `mean` divides the sum of the whole array
//! by its count rather than averaging chunk means, so it is the same for any
//! chunking.

mod chunk;
mod kernels;

pub use chunk::{CodecError, Element, NdArray, Number};

use crate::scalar::{tree_reduce, Scalar};
use crate::token::Token;
use kernels::{id, Extreme, Op, Piece, Plan};
use ndarray::{Dimension, Slice};
use rudask::core::collection::{Collection, CollectionMeta, Retain};
use rudask::core::graph::{Arg, Key, TaskGraph, TaskSpec};
use rudask::core::registry::{encode, hold};
use rudask::{Error, Result, Task};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

/// The tasks of a reduction along an axis: each is a function id and the
/// parameters it is given.
struct Steps {
    chunk: (String, Vec<Arg>),
    combine: (String, Vec<Arg>),
    finish: Option<(String, Vec<Arg>)>,
}

/// How many partial results a reduction combines in one task.
pub const SPLIT_EVERY: usize = 8;

/// A lazy, chunked n-dimensional array of `T` (`f64`, `f32`, `i64`, `i32`
/// or `bool`). Cloning is cheap (the graph is shared).
///
/// ```no_run
/// use ndarray::{ArrayD, IxDyn};
/// use rudask_collections::Array;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let a = ArrayD::from_shape_fn(IxDyn(&[100, 60]), |i| (i[0] * 60 + i[1]) as f64);
/// let x = Array::from_ndarray(a.clone(), &[25, 20])?;   // 4 x 3 chunks
/// let y = (&(&x * 2.0) + &x.transpose().transpose())?;  // lazy
/// let y = client.persist(&y)?;                          // runs, stays on the cluster
/// let total: f64 = client.compute(&y.sum())?.await?;
/// let whole = client.compute(&y)?.await?.into_inner();  // an ArrayD<f64>
/// assert_eq!(whole, &a * 3.0);
/// # let _ = total; Ok(()) }
/// ```
pub struct Array<T: Element> {
    shape: Arc<[usize]>,
    chunks: Arc<[Vec<usize>]>,
    keys: Arc<[Key]>,
    token: Token,
    graph: Arc<TaskGraph>,
    retain: Retain,
    _t: PhantomData<fn() -> T>,
}

impl<T: Element> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            shape: self.shape.clone(),
            chunks: self.chunks.clone(),
            keys: self.keys.clone(),
            token: self.token,
            graph: self.graph.clone(),
            retain: self.retain.clone(),
            _t: PhantomData,
        }
    }
}

/// The type-specific part of an `Array`'s meta.
#[derive(Serialize, Deserialize)]
struct Spec {
    dtype: String,
    shape: Vec<usize>,
    chunks: Vec<Vec<usize>>,
}

/// Every combination of one item from each list, the last list varying
/// fastest (row-major order); one empty combination for no lists.
fn product<X: Clone>(lists: &[Vec<X>]) -> Vec<Vec<X>> {
    lists.iter().fold(vec![Vec::new()], |acc, list| {
        acc.iter()
            .flat_map(|prefix| {
                list.iter().map(move |x| {
                    let mut v = prefix.clone();
                    v.push(x.clone());
                    v
                })
            })
            .collect()
    })
}

/// Where each chunk of an axis starts.
fn offsets(chunks: &[usize]) -> Vec<usize> {
    chunks
        .iter()
        .scan(0, |at, &c| {
            let start = *at;
            *at += c;
            Some(start)
        })
        .collect()
}

/// The row-major index of the chunk at grid position `idx`.
fn flat(idx: &[usize], chunks: &[Vec<usize>]) -> usize {
    idx.iter().zip(chunks).fold(0, |f, (&i, c)| f * c.len() + i)
}

/// The chunking of `shape` into chunks of `chunk` elements per axis (the
/// last chunk of an axis may be shorter).
fn regular_chunks(shape: &[usize], chunk: &[usize], op: &str) -> Result<Vec<Vec<usize>>> {
    if chunk.len() != shape.len() {
        return Err(Error::InvalidArgument(format!(
            "{op}: chunk shape {chunk:?} has {} axes but the array's shape {shape:?} has {}",
            chunk.len(),
            shape.len()
        )));
    }
    shape
        .iter()
        .zip(chunk)
        .enumerate()
        .map(|(axis, (&d, &c))| match (d, c) {
            (0, _) => Ok(vec![0]),
            (_, 0) => Err(Error::InvalidArgument(format!(
                "{op}: chunk length 0 on axis {axis} (of length {d}); chunk lengths are >= 1"
            ))),
            _ => Ok((0..d).step_by(c).map(|s| c.min(d - s)).collect()),
        })
        .collect()
}

/// Checks an explicit chunking of `shape`: per axis, lengths >= 1 that add
/// up to the axis length (`[0]` for an empty axis).
fn check_chunks(shape: &[usize], chunks: &[Vec<usize>], op: &str) -> Result<()> {
    if chunks.len() != shape.len() {
        return Err(Error::InvalidArgument(format!(
            "{op}: chunks {chunks:?} have {} axes but the shape {shape:?} has {}",
            chunks.len(),
            shape.len()
        )));
    }
    for (axis, (&d, c)) in shape.iter().zip(chunks).enumerate() {
        let ok = if d == 0 {
            c.as_slice() == [0]
        } else {
            !c.is_empty() && c.iter().all(|&n| n > 0) && c.iter().sum::<usize>() == d
        };
        if !ok {
            return Err(Error::InvalidArgument(format!(
                "{op}: chunks {c:?} of axis {axis} do not split its length {d} \
                 (chunk lengths are >= 1 and add up to it; an empty axis has chunks [0])"
            )));
        }
    }
    Ok(())
}

/// The parts of an axis's chunks that cover `start..end`: (chunk index,
/// start in the chunk, start in the range, length).
fn overlaps(chunks: &[usize], start: usize, end: usize) -> Vec<(usize, usize, usize, usize)> {
    offsets(chunks)
        .into_iter()
        .zip(chunks)
        .enumerate()
        .filter_map(|(i, (off, &len))| {
            let (s, e) = (start.max(off), end.min(off + len));
            (s < e).then(|| (i, s - off, s - start, e - s))
        })
        .collect()
}

impl<T: Element> Array<T> {
    /// An array over `graph` plus one task per chunk, `task(block index)`
    /// giving its function and arguments.
    fn build<U: Element>(
        mut graph: TaskGraph,
        retain: Retain,
        token: Token,
        op: &str,
        shape: Vec<usize>,
        chunks: Vec<Vec<usize>>,
        mut task: impl FnMut(&[usize]) -> (String, Vec<Arg>),
    ) -> Array<U> {
        let grid: Vec<Vec<usize>> = chunks.iter().map(|c| (0..c.len()).collect()).collect();
        let keys: Vec<Key> = product(&grid)
            .iter()
            .enumerate()
            .map(|(i, idx)| {
                let key = token.key(op, i);
                let (func, args) = task(idx);
                crate::kernel::add_task(&mut graph, key, &func, args)
            })
            .collect();
        Array {
            shape: shape.into(),
            chunks: chunks.into(),
            keys: keys.into(),
            token,
            graph: Arc::new(graph),
            retain,
            _t: PhantomData,
        }
    }

    /// An array with one task per chunk of this one: `func(chunk, params..)`
    /// giving the chunk of the same position. `param_token` must differ
    /// whenever `params` do.
    fn blockwise<U: Element>(
        &self,
        op: &str,
        func: String,
        params: Vec<Arg>,
        param_token: &[u8],
    ) -> Array<U> {
        let token = Token::of(op, [self.token.bytes().as_slice(), func.as_bytes(), param_token]);
        Array::<T>::build(
            TaskGraph::clone(&self.graph),
            self.retain.clone(),
            token,
            op,
            self.shape.to_vec(),
            self.chunks.to_vec(),
            |idx| {
                let mut args = vec![Arg::Dep(self.keys[flat(idx, &self.chunks)].clone())];
                args.extend(params.iter().cloned());
                (func.clone(), args)
            },
        )
    }

    /// An array of `a` cut into chunks of `chunks` elements per axis (the
    /// last chunk of an axis may be shorter). The chunks travel to the
    /// cluster with the graph.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use rudask_collections::Array;
    /// let a = Array::from_ndarray(Array2::<f64>::zeros((10, 7)), &[4, 7]).unwrap();
    /// assert_eq!(a.chunks(), &[vec![4, 4, 2], vec![7]]);
    /// assert!(Array::from_ndarray(Array2::<f64>::zeros((10, 7)), &[0, 7]).is_err());
    /// ```
    pub fn from_ndarray<D: Dimension>(a: ndarray::Array<T, D>, chunks: &[usize]) -> Result<Self> {
        let a = a.into_dyn();
        let chunks = regular_chunks(a.shape(), chunks, "Array::from_ndarray")?;
        let offsets: Vec<Vec<usize>> = chunks.iter().map(|c| offsets(c)).collect();
        Ok(Array::<T>::build(
            TaskGraph::new(),
            Retain::none(),
            Token::random(),
            "from_ndarray",
            a.shape().to_vec(),
            chunks.clone(),
            |idx| {
                let block = a.slice_each_axis(|ax| {
                    let (i, n) = (ax.axis.index(), idx[ax.axis.index()]);
                    let start = offsets[i][n];
                    Slice::from(start..start + chunks[i][n])
                });
                (kernels::SOURCE.into(), vec![Arg::Value(hold(NdArray::new(block.to_owned())))])
            },
        ))
    }

    /// An array of `shape` filled with `value`, chunked `chunks` elements per
    /// axis; the chunks are made on the workers.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::full(&[5, 5], &[2, 5], true).unwrap();
    /// assert_eq!((a.shape(), a.npartitions()), (&[5, 5][..], 3));
    /// ```
    pub fn full(shape: &[usize], chunks: &[usize], value: T) -> Result<Self> {
        let chunks = regular_chunks(shape, chunks, "Array::full")?;
        let value_bytes = T::le_bytes(&[value]).into_owned();
        let spec = format!("{shape:?}{chunks:?}");
        let token =
            Token::of("full", [T::DTYPE.as_bytes(), spec.as_bytes(), value_bytes.as_slice()]);
        let value = encode(&value).map_err(Error::InvalidArgument)?;
        Ok(Array::<T>::build(
            TaskGraph::new(),
            Retain::none(),
            token,
            "full",
            shape.to_vec(),
            chunks.clone(),
            |idx| {
                let block: Vec<usize> = idx.iter().zip(&chunks).map(|(&i, c)| c[i]).collect();
                let block = encode(&block).expect("a vector of lengths encodes");
                (id::<T>("fill"), vec![Arg::Value(block), Arg::Value(value.clone())])
            },
        ))
    }

    /// An array of `shape` of zeros (`false` for `bool`).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i32>::zeros(&[10], &[3]).unwrap();
    /// assert_eq!(a.chunks(), &[vec![3, 3, 3, 1]]);
    /// ```
    pub fn zeros(shape: &[usize], chunks: &[usize]) -> Result<Self> {
        Self::full(shape, chunks, T::zero())
    }

    /// An array of `shape` of ones (`true` for `bool`).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// assert!(Array::<f32>::ones(&[4, 4], &[2]).is_err(), "one chunk length per axis");
    /// ```
    pub fn ones(shape: &[usize], chunks: &[usize]) -> Result<Self> {
        Self::full(shape, chunks, T::one())
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The chunk lengths along each axis.
    pub fn chunks(&self) -> &[Vec<usize>] {
        &self.chunks
    }

    /// Number of chunks.
    pub fn npartitions(&self) -> usize {
        self.keys.len()
    }

    /// The element type's name (`"f64"`).
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }

    /// Applies the registered task `task` to every chunk. The task must
    /// return a chunk of the same shape as its argument (its element type
    /// may differ); a chunk of another shape fails the tasks that assemble
    /// or combine it.
    ///
    /// ```no_run
    /// use rudask_collections::array::{Array, NdArray};
    /// #[rudask::task]
    /// fn square(c: NdArray<f64>) -> NdArray<f64> {
    ///     NdArray::new(c.mapv(|x| x * x))
    /// }
    /// # fn demo(a: Array<f64>) {
    /// let squares = a.map_blocks(&square);
    /// # }
    /// ```
    pub fn map_blocks<U, F>(&self, task: &F) -> Array<U>
    where
        U: Element,
        F: Task<Args = (NdArray<T>,), Output = NdArray<U>>,
    {
        self.blockwise("map_blocks", task.id().into(), Vec::new(), &[])
    }

    /// The same elements in chunks of `chunks` elements per axis.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::zeros(&[6, 6], &[2, 3]).unwrap().rechunk(&[3, 6]).unwrap();
    /// assert_eq!(a.chunks(), &[vec![3, 3], vec![6]]);
    /// ```
    pub fn rechunk(&self, chunks: &[usize]) -> Result<Self> {
        let chunks = regular_chunks(&self.shape, chunks, "rechunk")?;
        self.rechunk_to(chunks)
    }

    /// The same elements in the explicit chunking `chunks` (per axis, chunk
    /// lengths adding up to its length).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::zeros(&[6], &[2]).unwrap();
    /// assert_eq!(a.rechunk_to(vec![vec![1, 5]]).unwrap().npartitions(), 2);
    /// assert!(a.rechunk_to(vec![vec![1, 4]]).is_err());
    /// ```
    pub fn rechunk_to(&self, chunks: Vec<Vec<usize>>) -> Result<Self> {
        check_chunks(&self.shape, &chunks, "rechunk")?;
        if chunks.as_slice() == &*self.chunks {
            return Ok(self.clone());
        }
        Ok(self.regrid("rechunk", vec![0; self.ndim()], self.shape.to_vec(), chunks))
    }

    /// The elements in `ranges`, one per axis from the first (axes without a
    /// range are kept whole). Chunks keep their boundaries, cut to the ranges.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i64>::zeros(&[10, 4], &[4, 4]).unwrap();
    /// let s = a.slice(&[3..9, 0..4]).unwrap();
    /// assert_eq!((s.shape(), s.chunks()), (&[6, 4][..], &[vec![1, 4, 1], vec![4]][..]));
    /// assert!(a.slice(&[3..11, 0..4]).is_err());
    /// ```
    pub fn slice(&self, ranges: &[Range<usize>]) -> Result<Self> {
        if ranges.len() > self.ndim() {
            return Err(Error::InvalidArgument(format!(
                "slice: {} ranges for an array of {} axes (shape {:?})",
                ranges.len(),
                self.ndim(),
                self.shape
            )));
        }
        let mut origin = Vec::with_capacity(self.ndim());
        let mut shape = Vec::with_capacity(self.ndim());
        let mut chunks = Vec::with_capacity(self.ndim());
        for (axis, &d) in self.shape.iter().enumerate() {
            let r = ranges.get(axis).cloned().unwrap_or(0..d);
            if r.start > r.end || r.end > d {
                return Err(Error::InvalidArgument(format!(
                    "slice: range {r:?} is out of bounds for axis {axis} of length {d} \
                     (shape {:?})",
                    self.shape
                )));
            }
            let c: Vec<usize> =
                overlaps(&self.chunks[axis], r.start, r.end).iter().map(|o| o.3).collect();
            origin.push(r.start);
            shape.push(r.len());
            chunks.push(if c.is_empty() { vec![0] } else { c });
        }
        Ok(self.regrid("slice", origin, shape, chunks))
    }

    /// The elements in `range` along `axis`, every other axis whole (see
    /// [`Array::slice`]).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::zeros(&[10, 4], &[4, 4]).unwrap();
    /// assert_eq!(a.slice_axis(1, 1..3).unwrap().shape(), &[10, 2]);
    /// assert!(a.slice_axis(2, 0..1).is_err());
    /// ```
    pub fn slice_axis(&self, axis: usize, range: Range<usize>) -> Result<Self> {
        self.axis_len("slice_axis", axis)?;
        let mut ranges: Vec<Range<usize>> = self.shape.iter().map(|&d| 0..d).collect();
        ranges[axis] = range;
        self.slice(&ranges)
    }

    /// The array of `shape` chunked `chunks` whose element at `i` is this
    /// one's at `origin + i`: each output chunk is assembled from the parts
    /// of the input chunks it covers.
    fn regrid(
        &self,
        op: &str,
        origin: Vec<usize>,
        shape: Vec<usize>,
        chunks: Vec<Vec<usize>>,
    ) -> Self {
        let spec = format!("{origin:?}{chunks:?}");
        let token = Token::of(op, [self.token.bytes().as_slice(), spec.as_bytes()]);
        let out_offsets: Vec<Vec<usize>> = chunks.iter().map(|c| offsets(c)).collect();
        let func = id::<T>("assemble");
        Array::<T>::build(
            TaskGraph::clone(&self.graph),
            self.retain.clone(),
            token,
            op,
            shape,
            chunks.clone(),
            |idx| {
                let (plan, deps) = self.plan(&origin, &out_offsets, &chunks, idx);
                let mut args = vec![Arg::Value(encode(&plan).expect("a plan encodes"))];
                args.extend(deps.into_iter().map(Arg::Dep));
                (func.clone(), args)
            },
        )
    }

    /// How the output chunk at `idx` of a regridding is cut from this
    /// array's chunks, and their keys.
    fn plan(
        &self,
        origin: &[usize],
        out_offsets: &[Vec<usize>],
        out_chunks: &[Vec<usize>],
        idx: &[usize],
    ) -> (Plan, Vec<Key>) {
        let per_axis: Vec<Vec<(usize, usize, usize, usize)>> = (0..self.ndim())
            .map(|a| {
                let start = origin[a] + out_offsets[a][idx[a]];
                overlaps(&self.chunks[a], start, start + out_chunks[a][idx[a]])
            })
            .collect();
        let shape: Vec<usize> = idx.iter().zip(out_chunks).map(|(&i, c)| c[i]).collect();
        let mut pieces = Vec::new();
        let mut deps = Vec::new();
        for parts in product(&per_axis) {
            let block: Vec<usize> = parts.iter().map(|p| p.0).collect();
            deps.push(self.keys[flat(&block, &self.chunks)].clone());
            pieces.push(Piece {
                block: block.iter().zip(self.chunks.iter()).map(|(&b, c)| c[b]).collect(),
                src: parts.iter().map(|p| p.1).collect(),
                dst: parts.iter().map(|p| p.2).collect(),
                len: parts.iter().map(|p| p.3).collect(),
            });
        }
        (Plan { shape, pieces }, deps)
    }

    /// The array with its axes reversed (`a.t()` in ndarray).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let t = Array::<bool>::zeros(&[4, 6, 2], &[2, 3, 2]).unwrap().transpose();
    /// assert_eq!((t.shape(), t.chunks()), (&[2, 6, 4][..], &[vec![2], vec![3, 3], vec![2, 2]][..]));
    /// ```
    pub fn transpose(&self) -> Self {
        let token = Token::of("transpose", [self.token.bytes().as_slice()]);
        let shape: Vec<usize> = self.shape.iter().rev().copied().collect();
        let chunks: Vec<Vec<usize>> = self.chunks.iter().rev().cloned().collect();
        Array::<T>::build(
            TaskGraph::clone(&self.graph),
            self.retain.clone(),
            token,
            "transpose",
            shape,
            chunks,
            |idx| {
                let src: Vec<usize> = idx.iter().rev().copied().collect();
                (id::<T>("transpose"), vec![Arg::Dep(self.keys[flat(&src, &self.chunks)].clone())])
            },
        )
    }

    /// The smallest element (`false` if any for `bool`; a NaN if any for
    /// floats). An empty array has none: that is an error.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// assert!(Array::<f64>::zeros(&[0, 3], &[1, 3]).unwrap().min().is_err());
    /// ```
    pub fn min(&self) -> Result<Scalar<T>> {
        self.extreme(Extreme::Min, "min")
    }

    /// The largest element (see [`Array::min`]).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let m = Array::<i32>::ones(&[3, 3], &[2, 2]).unwrap().max().unwrap();
    /// # drop(m);
    /// ```
    pub fn max(&self) -> Result<Scalar<T>> {
        self.extreme(Extreme::Max, "max")
    }

    fn extreme(&self, e: Extreme, op: &str) -> Result<Scalar<T>> {
        if self.shape.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "{op} of an empty array (shape {:?}) has no value",
                self.shape
            )));
        }
        let e_arg = Arg::Value(encode(&e).expect("an enum encodes"));
        let chunks =
            self.blockwise::<T>(op, id::<T>("extreme_all"), vec![e_arg.clone()], op.as_bytes());
        Ok(chunks.reduce_to_scalar(op, &id::<T>("extreme_combine"), &[e_arg]))
    }

    /// Tree-reduces this array's chunks (each one partial result, of any
    /// type) to one value with `combine(params.., partials..)`.
    fn reduce_to_scalar<R>(&self, op: &str, combine: &str, params: &[Arg]) -> Scalar<R> {
        let mut graph = TaskGraph::clone(&self.graph);
        let token = Token::of(op, [self.token.bytes().as_slice(), combine.as_bytes()]);
        let root =
            tree_reduce(&mut graph, token, op, self.keys.to_vec(), combine, params, SPLIT_EVERY);
        Scalar::new(graph, root, self.retain.clone())
    }

    /// The length of `axis`, or an error for `op` if there is no such axis.
    fn axis_len(&self, op: &str, axis: usize) -> Result<usize> {
        self.shape.get(axis).copied().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{op}: axis {axis} is out of range for an array of {} axes (shape {:?})",
                self.ndim(),
                self.shape
            ))
        })
    }

    /// Reduces along `axis` (checked by the caller) with the chunk task
    /// `(chunk, axis, params..)`, then a tree of combine tasks `(params..,
    /// partials..)` along the axis for each output chunk, then the finish
    /// task `(root, params..)` if there is one.
    fn reduce_axis<U: Element>(&self, op: &str, axis: usize, steps: Steps) -> Array<U> {
        let Steps { chunk: (chunk_func, chunk_params), combine: (combine, params), finish } = steps;
        let mut all_params = vec![Arg::Value(encode(&axis).expect("an integer encodes"))];
        all_params.extend(chunk_params);
        let partials: Array<U> =
            self.blockwise(&format!("{op}.chunk"), chunk_func, all_params, &axis.to_le_bytes());
        let token = Token::of(op, [partials.token.bytes().as_slice(), combine.as_bytes()]);
        let mut shape = self.shape.to_vec();
        let mut chunks = self.chunks.to_vec();
        shape.remove(axis);
        let along = chunks.remove(axis).len();
        let mut graph = TaskGraph::clone(&partials.graph);
        let grid: Vec<Vec<usize>> = chunks.iter().map(|c| (0..c.len()).collect()).collect();
        let keys: Vec<Key> = product(&grid)
            .into_iter()
            .enumerate()
            .map(|(i, idx)| {
                let inputs: Vec<Key> = (0..along)
                    .map(|j| {
                        let mut full = idx.clone();
                        full.insert(axis, j);
                        partials.keys[flat(&full, &self.chunks)].clone()
                    })
                    .collect();
                let block_token = Token::of(op, [token.bytes().as_slice(), &i.to_le_bytes()]);
                let root = tree_reduce(
                    &mut graph,
                    block_token,
                    op,
                    inputs,
                    &combine,
                    &params,
                    SPLIT_EVERY,
                );
                match &finish {
                    None => root,
                    Some((func, params)) => {
                        let key = token.key(&format!("{op}.finish"), i);
                        let mut args = vec![Arg::Dep(root)];
                        args.extend(params.iter().cloned());
                        crate::kernel::add_task(&mut graph, key, func.as_str(), args)
                    }
                }
            })
            .collect();
        Array {
            shape: shape.into(),
            chunks: chunks.into(),
            keys: keys.into(),
            token,
            graph: Arc::new(graph),
            retain: self.retain.clone(),
            _t: PhantomData,
        }
    }

    /// The minima along `axis` (an array with that axis removed). An axis
    /// of length 0 has none: that is an error.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f32>::zeros(&[4, 3], &[2, 2]).unwrap();
    /// assert_eq!(a.min_axis(0).unwrap().shape(), &[3]);
    /// assert!(a.min_axis(2).is_err());
    /// ```
    pub fn min_axis(&self, axis: usize) -> Result<Self> {
        self.extreme_axis(Extreme::Min, "min_axis", axis)
    }

    /// The maxima along `axis` (see [`Array::min_axis`]).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<bool>::zeros(&[4, 3], &[2, 2]).unwrap();
    /// assert_eq!(a.max_axis(1).unwrap().chunks(), &[vec![2, 2]]);
    /// ```
    pub fn max_axis(&self, axis: usize) -> Result<Self> {
        self.extreme_axis(Extreme::Max, "max_axis", axis)
    }

    fn extreme_axis(&self, e: Extreme, op: &str, axis: usize) -> Result<Self> {
        if self.axis_len(op, axis)? == 0 {
            return Err(Error::InvalidArgument(format!(
                "{op}: axis {axis} of shape {:?} is empty, so it has no {op}",
                self.shape
            )));
        }
        let e_arg = Arg::Value(encode(&e).expect("an enum encodes"));
        let steps = Steps {
            chunk: (id::<T>("extreme_axis"), vec![e_arg.clone()]),
            combine: (id::<T>("extreme_chunks"), vec![e_arg]),
            finish: None,
        };
        Ok(self.reduce_axis(op, axis, steps))
    }
}

impl<T: Number> Array<T> {
    /// The 1-D array `0, 1, .., n - 1` in chunks of `chunk`, made on the
    /// workers.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i64>::arange(10, 4).unwrap();
    /// assert_eq!(a.chunks(), &[vec![4, 4, 2]]);
    /// ```
    pub fn arange(n: usize, chunk: usize) -> Result<Self> {
        let chunks = regular_chunks(&[n], &[chunk], "Array::arange")?;
        let token =
            Token::of("arange", [T::DTYPE.as_bytes(), &n.to_le_bytes(), &chunk.to_le_bytes()]);
        let starts = offsets(&chunks[0]);
        Ok(Array::<T>::build(
            TaskGraph::new(),
            Retain::none(),
            token,
            "arange",
            vec![n],
            chunks.clone(),
            |idx| {
                let arg = |v: usize| Arg::Value(encode(&v).expect("an integer encodes"));
                (id::<T>("arange"), vec![arg(starts[idx[0]]), arg(chunks[0][idx[0]])])
            },
        ))
    }

    fn scalar_op(&self, op: Op, x: T) -> Self {
        let x_bytes = T::le_bytes(&[x]).into_owned();
        let mut param_token = vec![op as u8];
        param_token.extend_from_slice(&x_bytes);
        let params = vec![
            Arg::Value(encode(&op).expect("an enum encodes")),
            Arg::Value(encode(&x).expect("a number encodes")),
        ];
        self.blockwise("scalar_op", id::<T>("scalar_op"), params, &param_token)
    }

    fn binary_op(&self, other: &Self, op: Op) -> Result<Self> {
        let what = format!("a {} b", op.symbol());
        if self.shape != other.shape {
            return Err(Error::InvalidArgument(format!(
                "{what}: the shapes differ: {:?} and {:?}",
                self.shape, other.shape
            )));
        }
        if self.chunks != other.chunks {
            return Err(Error::InvalidArgument(format!(
                "{what}: the arrays are chunked differently: {:?} and {:?}; \
                 rechunk one like the other first (b.rechunk_to(a.chunks().to_vec()))",
                self.chunks, other.chunks
            )));
        }
        let token = Token::of(
            "binary_op",
            [self.token.bytes().as_slice(), &other.token.bytes(), &[op as u8]],
        );
        let (graph, retain) = self.joined(other);
        let op_arg = Arg::Value(encode(&op).expect("an enum encodes"));
        Ok(Array::<T>::build(
            graph,
            retain,
            token,
            "binary_op",
            self.shape.to_vec(),
            self.chunks.to_vec(),
            |idx| {
                let i = flat(idx, &self.chunks);
                let args = vec![
                    Arg::Dep(self.keys[i].clone()),
                    Arg::Dep(other.keys[i].clone()),
                    op_arg.clone(),
                ];
                (id::<T>("binary_op"), args)
            },
        ))
    }

    /// `self + other` elementwise, for arrays of the same shape and
    /// chunking (otherwise an error that shows both chunkings).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::ones(&[6], &[3]).unwrap();
    /// assert!(a.add(&a).is_ok());
    /// let err = a.add(&a.rechunk(&[2]).unwrap()).unwrap_err();
    /// assert!(err.to_string().contains("[[3, 3]] and [[2, 2, 2]]"));
    /// ```
    pub fn add(&self, other: &Self) -> Result<Self> {
        self.binary_op(other, Op::Add)
    }

    /// `self - other` elementwise (see [`Array::add`]).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i32>::ones(&[6], &[3]).unwrap();
    /// assert!(a.sub(&Array::ones(&[5], &[3]).unwrap()).is_err(), "shapes differ");
    /// ```
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.binary_op(other, Op::Sub)
    }

    /// `self * other` elementwise (see [`Array::add`]).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f32>::ones(&[6], &[3]).unwrap();
    /// assert_eq!(a.mul(&a).unwrap().shape(), &[6]);
    /// ```
    pub fn mul(&self, other: &Self) -> Result<Self> {
        self.binary_op(other, Op::Mul)
    }

    /// `self / other` elementwise (see [`Array::add`]); an integer division
    /// by zero fails the task.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::ones(&[6], &[3]).unwrap();
    /// assert_eq!(a.div(&a).unwrap().chunks(), &[vec![3, 3]]);
    /// ```
    pub fn div(&self, other: &Self) -> Result<Self> {
        self.binary_op(other, Op::Div)
    }

    /// `self + x` elementwise (also `&a + x`).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i64>::arange(6, 3).unwrap().add_scalar(10);
    /// assert_eq!(a.shape(), &[6]);
    /// ```
    pub fn add_scalar(&self, x: T) -> Self {
        self.scalar_op(Op::Add, x)
    }

    /// `self - x` elementwise (also `&a - x`).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i64>::arange(6, 3).unwrap().sub_scalar(1);
    /// # drop(a);
    /// ```
    pub fn sub_scalar(&self, x: T) -> Self {
        self.scalar_op(Op::Sub, x)
    }

    /// `self * x` elementwise (also `&a * x`).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::arange(6, 3).unwrap().mul_scalar(0.5);
    /// # drop(a);
    /// ```
    pub fn mul_scalar(&self, x: T) -> Self {
        self.scalar_op(Op::Mul, x)
    }

    /// `self / x` elementwise (also `&a / x`); an integer division by zero
    /// fails the task.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::arange(6, 3).unwrap().div_scalar(4.0);
    /// # drop(a);
    /// ```
    pub fn div_scalar(&self, x: T) -> Self {
        self.scalar_op(Op::Div, x)
    }

    /// The sum of all elements (integers wrap on overflow).
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// use rudask_collections::Array;
    /// let total: i64 = client.compute(&Array::<i64>::arange(100, 30)?.sum())?.await?;
    /// assert_eq!(total, 4950);
    /// # Ok(()) }
    /// ```
    pub fn sum(&self) -> Scalar<T> {
        let partials: Array<T> = self.blockwise("sum", id::<T>("sum_all"), Vec::new(), &[]);
        partials.reduce_to_scalar("sum", &id::<T>("sum_combine"), &[])
    }

    /// The mean of all elements as `f64` (NaN for an empty array).
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// use rudask_collections::Array;
    /// let mean: f64 = client.compute(&Array::<i32>::arange(10, 3)?.mean())?.await?;
    /// assert_eq!(mean, 4.5);
    /// # Ok(()) }
    /// ```
    pub fn mean(&self) -> Scalar<f64> {
        let n = self.shape.iter().product::<usize>() as f64;
        let partials: Array<f64> = self.blockwise("mean", id::<T>("mean_all"), Vec::new(), &[]);
        let sum: Scalar<f64> = partials.reduce_to_scalar("mean", &id::<f64>("sum_combine"), &[]);
        let mut graph = sum.graph();
        let key = partials.token.key("mean.divide", 0);
        graph.insert(TaskSpec {
            key: key.clone(),
            func: kernels::DIVIDE.into(),
            args: vec![
                Arg::Dep(sum.key().clone()),
                Arg::Value(encode(&n).expect("a float encodes")),
            ],
            options: Default::default(),
        });
        Scalar::new(graph, key, self.retain.clone())
    }

    /// The sums along `axis` (an array with that axis removed).
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i64>::ones(&[4, 6], &[2, 3]).unwrap();
    /// assert_eq!(a.sum_axis(1).unwrap().chunks(), &[vec![2, 2]]);
    /// assert!(a.sum_axis(2).unwrap_err().to_string().contains("axis 2"));
    /// ```
    pub fn sum_axis(&self, axis: usize) -> Result<Self> {
        self.axis_len("sum_axis", axis)?;
        let steps = Steps {
            chunk: (id::<T>("sum_axis"), Vec::new()),
            combine: (id::<T>("add_combine"), Vec::new()),
            finish: None,
        };
        Ok(self.reduce_axis("sum_axis", axis, steps))
    }

    /// The means along `axis`, as `f64`. An axis of length 0 has none:
    /// that is an error.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<i32>::ones(&[4, 6], &[2, 3]).unwrap();
    /// assert_eq!(a.mean_axis(0).unwrap().shape(), &[6]);
    /// ```
    pub fn mean_axis(&self, axis: usize) -> Result<Array<f64>> {
        let len = self.axis_len("mean_axis", axis)?;
        if len == 0 {
            return Err(Error::InvalidArgument(format!(
                "mean_axis: axis {axis} of shape {:?} is empty, so it has no mean",
                self.shape
            )));
        }
        let n = Arg::Value(encode(&(len as f64)).expect("a float encodes"));
        let steps = Steps {
            chunk: (id::<T>("mean_axis"), Vec::new()),
            combine: (id::<f64>("add_combine"), Vec::new()),
            finish: Some((id::<f64>("divide_chunk"), vec![n])),
        };
        Ok(self.reduce_axis("mean_axis", axis, steps))
    }

    /// Both arrays' graphs, and what keeps both arrays' persisted inputs:
    /// the start of an operation on two arrays.
    fn joined<U: Element>(&self, other: &Array<U>) -> (TaskGraph, Retain) {
        let mut graph = TaskGraph::clone(&self.graph);
        graph.extend(TaskGraph::clone(&other.graph));
        (graph, Retain::new((self.retain.clone(), other.retain.clone())))
    }

    /// The matrix product of two 2-D arrays: `self`'s columns must match
    /// `other`'s rows in length and chunking. Each output chunk is the sum
    /// of the products of a row of `self`'s chunks and a column of
    /// `other`'s.
    ///
    /// ```
    /// use rudask_collections::Array;
    /// let a = Array::<f64>::ones(&[4, 6], &[2, 3]).unwrap();
    /// let b = Array::<f64>::ones(&[6, 5], &[3, 5]).unwrap();
    /// assert_eq!(a.matmul(&b).unwrap().chunks(), &[vec![2, 2], vec![5]]);
    /// assert!(a.matmul(&a).unwrap_err().to_string().contains("[4, 6] and [4, 6]"));
    /// ```
    pub fn matmul(&self, other: &Self) -> Result<Self> {
        if self.ndim() != 2 || other.ndim() != 2 {
            return Err(Error::InvalidArgument(format!(
                "matmul multiplies 2-D arrays; the shapes are {:?} and {:?}",
                self.shape, other.shape
            )));
        }
        if self.shape[1] != other.shape[0] {
            return Err(Error::InvalidArgument(format!(
                "matmul: shapes {:?} and {:?} do not fit: the left has {} columns, \
                 the right {} rows",
                self.shape, other.shape, self.shape[1], other.shape[0]
            )));
        }
        if self.chunks[1] != other.chunks[0] {
            return Err(Error::InvalidArgument(format!(
                "matmul: the left's column chunks {:?} differ from the right's row chunks {:?}; \
                 rechunk one like the other first",
                self.chunks[1], other.chunks[0]
            )));
        }
        let inner = self.chunks[1].len();
        let token =
            Token::of("matmul", [self.token.bytes().as_slice(), other.token.bytes().as_slice()]);
        let (graph, retain) = self.joined(other);
        let n = Arg::Value(encode(&inner).expect("an integer encodes"));
        Ok(Array::<T>::build(
            graph,
            retain,
            token,
            "matmul",
            vec![self.shape[0], other.shape[1]],
            vec![self.chunks[0].clone(), other.chunks[1].clone()],
            |idx| {
                let mut args = vec![n.clone()];
                args.extend(
                    (0..inner)
                        .map(|k| Arg::Dep(self.keys[flat(&[idx[0], k], &self.chunks)].clone())),
                );
                args.extend(
                    (0..inner)
                        .map(|k| Arg::Dep(other.keys[flat(&[k, idx[1]], &other.chunks)].clone())),
                );
                (id::<T>("matmul"), args)
            },
        ))
    }
}

macro_rules! arithmetic {
    ($trait:ident, $method:ident, $scalar:ident) => {
        /// Elementwise with a scalar.
        impl<T: Number> std::ops::$trait<T> for &Array<T> {
            type Output = Array<T>;
            fn $method(self, x: T) -> Array<T> {
                self.$scalar(x)
            }
        }

        /// Elementwise with a scalar.
        impl<T: Number> std::ops::$trait<T> for Array<T> {
            type Output = Array<T>;
            fn $method(self, x: T) -> Array<T> {
                self.$scalar(x)
            }
        }

        /// Elementwise, for arrays of the same shape and chunking.
        impl<T: Number> std::ops::$trait<&Array<T>> for &Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, other: &Array<T>) -> Result<Array<T>> {
                Array::$method(self, other)
            }
        }

        /// Elementwise, for arrays of the same shape and chunking.
        impl<T: Number> std::ops::$trait<Array<T>> for Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, other: Array<T>) -> Result<Array<T>> {
                Array::$method(&self, &other)
            }
        }
    };
}

arithmetic!(Add, add, add_scalar);
arithmetic!(Sub, sub, sub_scalar);
arithmetic!(Mul, mul, mul_scalar);
arithmetic!(Div, div, div_scalar);

impl<T: Element> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape)
            .field("chunks", &self.chunks)
            .field("tasks", &self.graph.len())
            .field("persisted", &self.retain.is_some())
            .finish()
    }
}

impl<T: Element> Collection for Array<T> {
    type Output = NdArray<T>;

    fn type_tag() -> String {
        format!("rudask.Array<{}>", T::DTYPE)
    }

    fn graph(&self) -> TaskGraph {
        TaskGraph::clone(&self.graph)
    }

    fn keys(&self) -> Vec<Key> {
        self.keys.to_vec()
    }

    fn meta(&self) -> CollectionMeta {
        let spec = Spec {
            dtype: T::DTYPE.into(),
            shape: self.shape.to_vec(),
            chunks: self.chunks.to_vec(),
        };
        CollectionMeta::new(Self::type_tag(), self.keys.len(), &spec).expect("vectors encode")
    }

    fn from_persisted(
        meta: &CollectionMeta,
        keys: Vec<Key>,
        retain: Retain,
    ) -> std::result::Result<Self, String> {
        meta.expect_type(&Self::type_tag())?;
        meta.expect_partitions(&keys)?;
        let spec: Spec = meta.spec()?;
        if spec.dtype != T::DTYPE {
            return Err(format!("expected an array of {}, found one of {}", T::DTYPE, spec.dtype));
        }
        check_chunks(&spec.shape, &spec.chunks, "the meta of an Array")
            .map_err(|e| e.to_string())?;
        let blocks: usize = spec.chunks.iter().map(Vec::len).product();
        if blocks != keys.len() {
            return Err(format!(
                "an array chunked {:?} has {blocks} chunks, not {}",
                spec.chunks,
                keys.len()
            ));
        }
        let token = Token::of("persisted", keys.iter().map(|k| k.as_str().as_bytes()));
        Ok(Array {
            shape: spec.shape.into(),
            chunks: spec.chunks.into(),
            keys: keys.into(),
            token,
            graph: Arc::default(),
            retain,
            _t: PhantomData,
        })
    }

    fn finalize(&self, out: Key) -> TaskSpec {
        let whole: Vec<Vec<usize>> = self.shape.iter().map(|&d| vec![d]).collect();
        let out_offsets: Vec<Vec<usize>> = whole.iter().map(|_| vec![0]).collect();
        let (plan, deps) =
            self.plan(&vec![0; self.ndim()], &out_offsets, &whole, &vec![0; self.ndim()]);
        let mut args = vec![Arg::Value(encode(&plan).expect("a plan encodes"))];
        args.extend(deps.into_iter().map(Arg::Dep));
        TaskSpec { key: out, func: id::<T>("assemble").into(), args, options: Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_chunks_cover_each_axis_and_reject_zero_lengths() {
        assert_eq!(
            regular_chunks(&[10, 3, 0], &[4, 5, 2], "t").unwrap(),
            [vec![4, 4, 2], vec![3], vec![0]]
        );
        assert!(regular_chunks(&[10], &[0], "t").unwrap_err().to_string().contains("axis 0"));
        assert!(regular_chunks(&[10], &[2, 2], "t").is_err());
        assert!(check_chunks(&[5], &[vec![2, 3]], "t").is_ok());
        assert!(check_chunks(&[5], &[vec![2, 0, 3]], "t").is_err());
        assert!(check_chunks(&[0], &[vec![]], "t").is_err());
    }

    #[test]
    fn overlaps_cut_chunks_to_a_range() {
        assert_eq!(overlaps(&[4, 4, 2], 3, 9), [(0, 3, 0, 1), (1, 0, 1, 4), (2, 0, 5, 1)]);
        assert!(overlaps(&[4, 4, 2], 5, 5).is_empty());
        assert_eq!(
            product(&[vec![0, 1], vec![5, 6]]),
            [vec![0, 5], vec![0, 6], vec![1, 5], vec![1, 6]]
        );
    }

    #[test]
    fn a_rebuilt_array_keeps_shape_and_chunks_and_rejects_other_metas() {
        let a = Array::<f64>::zeros(&[5, 4], &[2, 4]).unwrap();
        let b = a.rebuild(a.keys(), Retain::none()).unwrap();
        assert_eq!((b.shape(), b.chunks()), (a.shape(), a.chunks()));
        assert!(Array::<i64>::from_persisted(&a.meta(), a.keys(), Retain::none())
            .unwrap_err()
            .contains("rudask.Array<f64>"));
        assert!(a.rebuild(a.keys()[..2].to_vec(), Retain::none()).is_err());
    }

    #[test]
    fn the_same_operation_names_the_same_keys() {
        let a = Array::<i32>::arange(10, 3).unwrap();
        assert_eq!(a.add_scalar(1).keys(), a.add_scalar(1).keys());
        assert_ne!(a.add_scalar(1).keys(), a.add_scalar(2).keys());
        assert_ne!(a.min().unwrap().key(), a.max().unwrap().key());
        assert_ne!(a.sum_axis(0).unwrap().keys(), a.mean_axis(0).unwrap().keys());
    }
}

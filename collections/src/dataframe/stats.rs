//! Column statistics of a [`DataFrame`] (`count`, `sum`, `mean`, `min`,
//! `max`), like pandas' `df.sum()`: each partition is summarised where it
//! lives into a small partial state (count, sum, min, max of every column),
//! the states are combined in a tree, and the root becomes a one-row table.
//! All five statistics share the per-partition and combine tasks, so
//! computing several of them together reads each partition once.

use super::{DataFrame, SchemaArg, Table};
use crate::kernel::{task_result, variadic_kernel, TaskArgs};
use crate::scalar::{tree_reduce, Scalar};
use crate::token::Token;
use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch,
    RecordBatchOptions, UInt64Array,
};
use arrow::compute::{cast, max, min, sum};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, UInt64Type};
use rudask::core::graph::{Arg, TaskGraph, TaskSpec};
use rudask::core::registry::{hold, TaskResult};
use rudask::Task;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The id of the kernel that merges partial states.
const COMBINE: &str = "rudask_collections::dataframe::stats_combine";

/// Which statistic a finishing task gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stat {
    Count,
    Sum,
    Mean,
    Min,
    Max,
}

impl Stat {
    fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Mean => "mean",
            Stat::Min => "min",
            Stat::Max => "max",
        }
    }
}

impl DataFrame {
    /// The number of non-null values of every column: a one-row table with
    /// one `UInt64` column per column of the frame (like pandas'
    /// `df.count()`).
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let counts = client.compute(&df.count())?.await?;
    /// assert_eq!(counts.num_rows(), 1);
    /// # Ok(()) }
    /// ```
    pub fn count(&self) -> Scalar<Table> {
        self.stat(Stat::Count)
    }

    /// The sum of every numeric (integer or float) column, nulls skipped: a
    /// one-row table with one column per numeric column, `Int64` for signed
    /// integers, `UInt64` for unsigned ones (integer sums wrap on overflow,
    /// like numpy's) and `Float64` for floats. A column with no values sums
    /// to 0.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let sums = client.compute(&df.sum())?.await?;
    /// # Ok(()) }
    /// ```
    pub fn sum(&self) -> Scalar<Table> {
        self.stat(Stat::Sum)
    }

    /// The mean of every numeric column, nulls skipped: a one-row table of
    /// `Float64` columns, null where a column has no values. It is the
    /// total sum over the total count, not a mean of partition means.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let means = client.compute(&df.mean())?.await?;
    /// # Ok(()) }
    /// ```
    pub fn mean(&self) -> Scalar<Table> {
        self.stat(Stat::Mean)
    }

    /// The minimum of every numeric column, nulls skipped: a one-row table
    /// whose columns keep their types, null where a column has no values.
    /// NaN counts as greater than every number.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let mins = client.compute(&df.min())?.await?;
    /// # Ok(()) }
    /// ```
    pub fn min(&self) -> Scalar<Table> {
        self.stat(Stat::Min)
    }

    /// The maximum of every numeric column, nulls skipped: a one-row table
    /// whose columns keep their types, null where a column has no values.
    /// NaN counts as greater than every number.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let maxs = client.compute(&df.max())?.await?;
    /// # Ok(()) }
    /// ```
    pub fn max(&self) -> Scalar<Table> {
        self.stat(Stat::Max)
    }

    fn stat(&self, stat: Stat) -> Scalar<Table> {
        let token = Token::of("stats", [self.token().bytes().as_slice()]);
        let (graph, retain) = self.parts();
        let mut graph = TaskGraph::clone(graph);
        let chunks = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let key = token.key("stats-chunk", i);
                crate::kernel::add_task(
                    &mut graph,
                    key,
                    stats_chunk.id(),
                    vec![Arg::Dep(input.clone())],
                )
            })
            .collect();
        let root =
            tree_reduce(&mut graph, token, "stats", chunks, COMBINE, &[], super::ops::SPLIT_EVERY);
        let columns: Vec<usize> = (0..self.schema.fields().len())
            .filter(|&i| {
                stat == Stat::Count || numeric_kind(self.schema.field(i).data_type()).is_some()
            })
            .collect();
        let fields: Vec<Field> = columns
            .iter()
            .map(|&i| {
                let f = self.schema.field(i);
                Field::new(f.name(), output_type(stat, f.data_type()), true)
            })
            .collect();
        let key = token.key(stat.name(), 0);
        graph.insert(TaskSpec {
            key: key.clone(),
            func: stats_finish.id().into(),
            args: vec![
                Arg::Value(hold(stat)),
                Arg::Value(hold(SchemaArg(Arc::new(Schema::new(fields))))),
                Arg::Value(hold(columns.into_iter().map(|i| i as u64).collect::<Vec<u64>>())),
                Arg::Dep(root),
            ],
            options: Default::default(),
        });
        Scalar::new(graph, key, retain.clone())
    }
}

/// How a numeric column is accumulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    UInt,
    Float,
}

fn numeric_kind(t: &DataType) -> Option<Kind> {
    if t.is_signed_integer() {
        Some(Kind::Int)
    } else if t.is_unsigned_integer() {
        Some(Kind::UInt)
    } else if t.is_floating() {
        Some(Kind::Float)
    } else {
        None
    }
}

fn wide_type(kind: Kind) -> DataType {
    match kind {
        Kind::Int => DataType::Int64,
        Kind::UInt => DataType::UInt64,
        Kind::Float => DataType::Float64,
    }
}

/// The type of `stat` of a column of type `t` (numeric, except for count).
fn output_type(stat: Stat, t: &DataType) -> DataType {
    match (stat, numeric_kind(t)) {
        (Stat::Count, _) | (_, None) => DataType::UInt64,
        (Stat::Mean, _) => DataType::Float64,
        (Stat::Sum, Some(kind)) => wide_type(kind),
        (Stat::Min | Stat::Max, _) => t.clone(),
    }
}

/// The accumulated values of one column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Acc {
    /// Not numeric: only counted.
    Other,
    Int {
        sum: i64,
        min: Option<i64>,
        max: Option<i64>,
    },
    UInt {
        sum: u64,
        min: Option<u64>,
        max: Option<u64>,
    },
    Float {
        sum: f64,
        min: Option<f64>,
        max: Option<f64>,
    },
}

/// The partial state of one column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ColumnState {
    count: u64,
    acc: Acc,
}

/// The partial state of every column of some partitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Partial(Vec<ColumnState>);

fn merge_opt<T: Copy>(a: Option<T>, b: Option<T>, pick: fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

impl ColumnState {
    fn of(column: &ArrayRef) -> Result<ColumnState, String> {
        let count = (column.len() - column.null_count()) as u64;
        let Some(kind) = numeric_kind(column.data_type()) else {
            return Ok(ColumnState { count, acc: Acc::Other });
        };
        // Narrow types are widened first so that sums do not wrap at their
        // width (an Int8 column summing past 127).
        let wide = cast(column, &wide_type(kind)).map_err(|e| e.to_string())?;
        let acc = match kind {
            Kind::Int => {
                let a = wide.as_primitive::<Int64Type>();
                Acc::Int { sum: sum(a).unwrap_or(0), min: min(a), max: max(a) }
            }
            Kind::UInt => {
                let a = wide.as_primitive::<UInt64Type>();
                Acc::UInt { sum: sum(a).unwrap_or(0), min: min(a), max: max(a) }
            }
            Kind::Float => {
                let a = wide.as_primitive::<Float64Type>();
                Acc::Float { sum: sum(a).unwrap_or(0.0), min: min(a), max: max(a) }
            }
        };
        Ok(ColumnState { count, acc })
    }

    fn merge(&mut self, other: &ColumnState) -> Result<(), String> {
        self.count += other.count;
        match (&mut self.acc, &other.acc) {
            (Acc::Other, Acc::Other) => {}
            (Acc::Int { sum, min, max }, Acc::Int { sum: s, min: lo, max: hi }) => {
                *sum = sum.wrapping_add(*s);
                *min = merge_opt(*min, *lo, i64::min);
                *max = merge_opt(*max, *hi, i64::max);
            }
            (Acc::UInt { sum, min, max }, Acc::UInt { sum: s, min: lo, max: hi }) => {
                *sum = sum.wrapping_add(*s);
                *min = merge_opt(*min, *lo, u64::min);
                *max = merge_opt(*max, *hi, u64::max);
            }
            (Acc::Float { sum, min, max }, Acc::Float { sum: s, min: lo, max: hi }) => {
                *sum += s;
                // Like arrow's min/max: NaN is greater than every number.
                *min = merge_opt(*min, *lo, |a, b| if a.total_cmp(&b).is_le() { a } else { b });
                *max = merge_opt(*max, *hi, |a, b| if a.total_cmp(&b).is_ge() { a } else { b });
            }
            (a, b) => {
                return Err(format!("partitions disagree on a column's type: {a:?} and {b:?}"))
            }
        }
        Ok(())
    }

    fn mean(&self, total: f64) -> ArrayRef {
        Arc::new(Float64Array::from(vec![(self.count > 0).then(|| total / self.count as f64)]))
    }

    /// `stat` of this column as a one-element array of type `t`.
    fn finish(&self, stat: Stat, t: &DataType) -> Result<ArrayRef, String> {
        let value: ArrayRef = match (stat, &self.acc) {
            (Stat::Count, _) => Arc::new(UInt64Array::from(vec![self.count])),
            (_, Acc::Other) => return Ok(new_null_array(t, 1)),
            (Stat::Mean, Acc::Int { sum, .. }) => self.mean(*sum as f64),
            (Stat::Mean, Acc::UInt { sum, .. }) => self.mean(*sum as f64),
            (Stat::Mean, Acc::Float { sum, .. }) => self.mean(*sum),
            (stat, Acc::Int { sum, min, max }) => {
                Arc::new(Int64Array::from(vec![pick(stat, *sum, *min, *max)]))
            }
            (stat, Acc::UInt { sum, min, max }) => {
                Arc::new(UInt64Array::from(vec![pick(stat, *sum, *min, *max)]))
            }
            (stat, Acc::Float { sum, min, max }) => {
                Arc::new(Float64Array::from(vec![pick(stat, *sum, *min, *max)]))
            }
        };
        cast(&value, t).map_err(|e| e.to_string())
    }
}

fn pick<T>(stat: Stat, sum: T, min: Option<T>, max: Option<T>) -> Option<T> {
    match stat {
        Stat::Min => min,
        Stat::Max => max,
        _ => Some(sum),
    }
}

/// The partial state of every column of `t`.
#[rudask::task]
fn stats_chunk(t: Table) -> Result<Partial, String> {
    t.columns().iter().map(ColumnState::of).collect::<Result<_, _>>().map(Partial)
}

/// `(partials..)` merged into one.
fn stats_combine(args: TaskArgs) -> TaskResult {
    let parts: Vec<Partial> = args.get_rest(0, "partials")?;
    let mut parts = parts.into_iter();
    let mut acc = parts.next().unwrap_or(Partial(Vec::new()));
    for p in parts {
        if p.0.len() != acc.0.len() {
            return Err(rudask::core::TaskFailure::new(
                rudask::core::FailureKind::Error,
                format!("partitions have {} and {} columns", acc.0.len(), p.0.len()),
            ));
        }
        for (a, b) in acc.0.iter_mut().zip(&p.0) {
            a.merge(b)
                .map_err(|e| rudask::core::TaskFailure::new(rudask::core::FailureKind::Error, e))?;
        }
    }
    task_result(acc)
}
variadic_kernel!(COMBINE, stats_combine);

/// The one-row table of `stat` over the columns at `columns` (whose output
/// fields `schema` has).
#[rudask::task]
fn stats_finish(
    stat: Stat,
    schema: SchemaArg,
    columns: Vec<u64>,
    partial: Partial,
) -> Result<Table, String> {
    let schema = schema.0;
    let arrays = columns
        .iter()
        .zip(schema.fields())
        .map(|(&i, f)| {
            let state = partial
                .0
                .get(i as usize)
                .ok_or_else(|| format!("{}: no column {i}", stat.name()))?;
            state
                .finish(stat, f.data_type())
                .map_err(|e| format!("{} of {}: {e}", stat.name(), f.name()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        schema,
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .map(Table)
    .map_err(|e| format!("{}: {e}", stat.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, Int8Array, StringArray};

    fn partial(b: &RecordBatch) -> Partial {
        stats_chunk::call(Table(b.clone())).unwrap()
    }

    #[test]
    fn partial_states_merge_into_the_states_of_the_whole() {
        let b = RecordBatch::try_from_iter([
            ("s", Arc::new(StringArray::from(vec![Some("a"), None, Some("c"), Some("d")])) as _),
            ("i", Arc::new(Int8Array::from(vec![Some(100), Some(100), None, Some(-3)])) as _),
            ("f", Arc::new(Float32Array::from(vec![1.5, -2.0, 4.0, 0.25])) as _),
        ])
        .unwrap();
        let whole = partial(&b);
        let mut merged = partial(&b.slice(0, 1));
        for (a, s) in merged.0.iter_mut().zip(&partial(&b.slice(1, 3)).0) {
            a.merge(s).unwrap();
        }
        assert_eq!(merged, whole);
        assert_eq!(
            whole.0[1],
            ColumnState { count: 3, acc: Acc::Int { sum: 197, min: Some(-3), max: Some(100) } },
            "no wrap at i8"
        );
        assert_eq!(whole.0[0].count, 3);
        let min = whole.0[2].finish(Stat::Min, &DataType::Float32).unwrap();
        assert_eq!(min.as_primitive::<arrow::datatypes::Float32Type>().value(0), -2.0);
        let mean = whole.0[1].finish(Stat::Mean, &DataType::Float64).unwrap();
        assert!((mean.as_primitive::<Float64Type>().value(0) - 197.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn empty_columns_give_nulls_and_zero_sums() {
        let b =
            RecordBatch::try_from_iter([("i", Arc::new(Int64Array::from(vec![None, None])) as _)])
                .unwrap();
        let p = partial(&b);
        assert!(p.0[0].finish(Stat::Min, &DataType::Int64).unwrap().is_null(0));
        assert!(p.0[0].finish(Stat::Mean, &DataType::Float64).unwrap().is_null(0));
        assert_eq!(
            p.0[0]
                .finish(Stat::Sum, &DataType::Int64)
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(0),
            0
        );
    }
}

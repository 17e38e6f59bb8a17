//! [`GroupBy`]: `df.groupby(keys)?.agg([(column, Agg::Sum), ..])?`, a
//! lazy one-partition [`DataFrame`] of per-group sums, means, counts,
//! minima and maxima with pandas' semantics.
//!
//! The graph is the usual chunk → combine → aggregate tree:
//! - chunk (one task per partition): groups the partition's rows and keeps,
//!   per group, the partial states the aggregations need (sum, count, min,
//!   max of each value column) — a small table of distinct keys;
//! - combine (tasks of up to [`SPLIT_EVERY`] inputs, as many levels as it
//!   takes): concatenates partial tables and groups them again, adding sums
//!   and counts and keeping the extremes;
//! - aggregate (the root, also merging its inputs): turns the states into
//!   the requested columns (mean = sum / count) and sorts by the keys.

mod accumulate;
mod group;
#[cfg(test)]
mod tests;

use super::{table, DataFrame, Table};
use crate::kernel::{error_failure, task_result, variadic_kernel, TaskArgs};
use crate::token::Token;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{lexsort_to_indices, take, SortColumn};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use bytes::Bytes;
use rudask::core::collection::Collection;
use rudask::core::graph::{Arg, Key, TaskGraph};
use rudask::core::registry::{hold, TaskResult};
use rudask::{Error, Result, Task};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// How many partial tables one combine task merges.
const SPLIT_EVERY: usize = 8;

/// The id of the kernel that merges partial tables.
const COMBINE: &str = "rudask_collections::dataframe::groupby::combine";

/// The id of the kernel that merges partial tables into the result.
const AGGREGATE: &str = "rudask_collections::dataframe::groupby::aggregate";

/// An aggregation of a value column per group.
///
/// The result column is named `<column>_<name>`, e.g. `balance_sum`, with
/// [`Agg::name`] giving the suffix. Missing values (null, and NaN in float
/// columns) are skipped, as pandas skips them.
///
/// ```
/// use rudask_collections::dataframe::Agg;
/// assert_eq!(Agg::Mean.name(), "mean");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Agg {
    /// The sum: int64 for signed integer columns, uint64 for unsigned ones,
    /// float64 for floats (wrapping on overflow, as numpy does); 0 for a
    /// group without values.
    Sum,
    /// The mean, float64; null for a group without values.
    Mean,
    /// The number of values present, int64.
    Count,
    /// The smallest value, of the column's type; null for a group without
    /// values.
    Min,
    /// The largest value, of the column's type; null for a group without
    /// values.
    Max,
}

impl Agg {
    /// The suffix of the result column's name: `sum`, `mean`, `count`,
    /// `min` or `max`.
    ///
    /// ```
    /// assert_eq!(rudask_collections::dataframe::Agg::Count.name(), "count");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Mean => "mean",
            Agg::Count => "count",
            Agg::Min => "min",
            Agg::Max => "max",
        }
    }

    /// The partial states computing this aggregation needs.
    fn states(self) -> &'static [State] {
        match self {
            Agg::Sum => &[State::Sum],
            Agg::Mean => &[State::Sum, State::Count],
            Agg::Count => &[State::Count],
            Agg::Min => &[State::Min],
            Agg::Max => &[State::Max],
        }
    }
}

/// A lazy grouping of a [`DataFrame`]'s rows by the values of key columns,
/// made by [`DataFrame::groupby`]; aggregating it gives a `DataFrame`.
///
/// ```no_run
/// use rudask_collections::dataframe::Agg;
/// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
/// let by_name = df.groupby(["name"])?;
/// let stats = by_name.agg([("balance", Agg::Sum), ("balance", Agg::Mean)])?;
/// assert_eq!(stats.columns(), ["name", "balance_sum", "balance_mean"]);
/// let table = client.compute(&stats)?.await?; // one row per name, sorted by name
/// let sums = by_name.sum("balance")?; // columns name, balance_sum
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GroupBy {
    df: DataFrame,
    keys: Vec<usize>,
}

impl DataFrame {
    /// Groups the rows by the values of the `keys` columns (one or more;
    /// strings, integers or booleans), for aggregations with
    /// [`GroupBy::agg`] or its shortcuts. Rows with a null in any key are
    /// left out, as pandas does by default.
    ///
    /// ```
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// let total_by_city_and_name = df.groupby(["city", "name"])?.sum("balance")?;
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn groupby<I>(&self, keys: I) -> Result<GroupBy>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut indices = Vec::new();
        for name in keys {
            let name = name.as_ref();
            let i = self.column_index(name, "groupby")?;
            let data_type = self.schema.field(i).data_type();
            if !group::is_key_type(data_type) {
                return Err(Error::InvalidArgument(format!(
                    "groupby: column {name:?} is of type {data_type}; group keys must be \
                     strings (Utf8, LargeUtf8), integers or booleans"
                )));
            }
            if indices.contains(&i) {
                return Err(Error::InvalidArgument(format!(
                    "groupby: column {name:?} is given twice as a key"
                )));
            }
            indices.push(i);
        }
        if indices.is_empty() {
            return Err(Error::InvalidArgument("groupby needs at least one key column".into()));
        }
        Ok(GroupBy { df: self.clone(), keys: indices })
    }
}

impl GroupBy {
    /// The names of the key columns.
    ///
    /// ```
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// assert_eq!(df.groupby(["name"])?.keys(), ["name"]);
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|&i| self.df.schema.field(i).name().clone()).collect()
    }

    /// A one-partition `DataFrame` with the key columns, then one column
    /// per `(column, aggregation)` named `<column>_<agg>` (see [`Agg`]),
    /// one row per group, sorted by the keys. Value columns must be
    /// integers or floats.
    ///
    /// ```
    /// use rudask_collections::dataframe::Agg;
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// let stats = df.groupby(["name"])?.agg([("balance", Agg::Min), ("score", Agg::Count)])?;
    /// assert_eq!(stats.columns(), ["name", "balance_min", "score_count"]);
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn agg<I, S>(&self, aggs: I) -> Result<DataFrame>
    where
        I: IntoIterator<Item = (S, Agg)>,
        S: AsRef<str>,
    {
        let input = &self.df.schema;
        let mut fields: Vec<Field> = self.keys.iter().map(|&i| input.field(i).clone()).collect();
        let mut values: Vec<ValueStates> = Vec::new();
        let mut out = Vec::new();
        for (name, agg) in aggs {
            let name = name.as_ref();
            let column = self.df.column_index(name, "groupby.agg")?;
            let data_type = input.field(column).data_type();
            let Some(sum_type) = accumulate::sum_type(data_type) else {
                return Err(Error::InvalidArgument(format!(
                    "groupby.agg: cannot take the {} of column {name:?} of type {data_type}; \
                     aggregated columns must be integers or floats",
                    agg.name()
                )));
            };
            let out_name = format!("{name}_{}", agg.name());
            if fields.iter().any(|f| f.name() == &out_name) {
                return Err(Error::InvalidArgument(format!(
                    "groupby.agg: two result columns would be named {out_name:?}"
                )));
            }
            fields.push(match agg {
                Agg::Sum => Field::new(out_name, sum_type, false),
                Agg::Mean => Field::new(out_name, DataType::Float64, true),
                Agg::Count => Field::new(out_name, DataType::Int64, false),
                Agg::Min | Agg::Max => Field::new(out_name, data_type.clone(), true),
            });
            let v = match values.iter().position(|v| v.column == column) {
                Some(v) => v,
                None => {
                    values.push(ValueStates { column, states: Vec::new() });
                    values.len() - 1
                }
            };
            values[v].add(agg.states());
            out.push((v, agg));
        }
        if out.is_empty() {
            return Err(Error::InvalidArgument(
                "groupby.agg needs at least one (column, aggregation)".into(),
            ));
        }
        let schema = Arc::new(Schema::new(fields));
        let schema_ipc = table::schema_to_ipc(&schema)
            .map_err(|e| Error::InvalidArgument(format!("groupby.agg: {e}")))?;
        let plan = Plan { keys: self.keys.clone(), values, aggs: out, schema: schema_ipc.into() };
        Ok(self.build(plan, schema))
    }

    /// The per-group sums of `column` (see [`GroupBy::agg`]): columns keys
    /// then `<column>_sum`.
    ///
    /// ```
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// assert_eq!(df.groupby(["name"])?.sum("balance")?.columns(), ["name", "balance_sum"]);
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn sum(&self, column: &str) -> Result<DataFrame> {
        self.agg([(column, Agg::Sum)])
    }

    /// The per-group means of `column` (see [`GroupBy::agg`]): columns keys
    /// then `<column>_mean`.
    ///
    /// ```
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// assert_eq!(df.groupby(["name"])?.mean("balance")?.columns(), ["name", "balance_mean"]);
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn mean(&self, column: &str) -> Result<DataFrame> {
        self.agg([(column, Agg::Mean)])
    }

    /// The per-group counts of values present in `column` (see
    /// [`GroupBy::agg`]): columns keys then `<column>_count`.
    ///
    /// ```
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// assert_eq!(df.groupby(["name"])?.count("balance")?.columns(), ["name", "balance_count"]);
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn count(&self, column: &str) -> Result<DataFrame> {
        self.agg([(column, Agg::Count)])
    }

    /// The per-group minima of `column` (see [`GroupBy::agg`]): columns keys
    /// then `<column>_min`.
    ///
    /// ```
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// assert_eq!(df.groupby(["name"])?.min("balance")?.columns(), ["name", "balance_min"]);
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn min(&self, column: &str) -> Result<DataFrame> {
        self.agg([(column, Agg::Min)])
    }

    /// The per-group maxima of `column` (see [`GroupBy::agg`]): columns keys
    /// then `<column>_max`.
    ///
    /// ```
    /// # use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use std::sync::Arc;
    /// # let batch = RecordBatch::try_from_iter([
    /// #     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
    /// #     ("city", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    /// #     ("balance", Arc::new(Int64Array::from(vec![1, 2])) as _),
    /// #     ("score", Arc::new(Float64Array::from(vec![0.5, 1.5])) as _),
    /// # ]).unwrap();
    /// # let df = rudask_collections::DataFrame::from_batches(vec![batch], 2)?;
    /// assert_eq!(df.groupby(["name"])?.max("balance")?.columns(), ["name", "balance_max"]);
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn max(&self, column: &str) -> Result<DataFrame> {
        self.agg([(column, Agg::Max)])
    }

    /// The graph: a chunk task per partition, combine levels until at most
    /// [`SPLIT_EVERY`] tables are left, and the aggregate task over those.
    /// The root merges too (as dask's tree reductions do), rather than
    /// following a `tree_reduce` whose root combine would cost one more
    /// task and scheduling round trip.
    fn build(&self, plan: Plan, schema: SchemaRef) -> DataFrame {
        let (input_graph, retain) = self.df.parts();
        let token =
            Token::of("groupby", [self.df.token().bytes().as_slice(), plan.describe().as_bytes()]);
        let plan_arg = Arg::Value(hold(plan));
        let mut graph = TaskGraph::clone(input_graph);
        let mut add = |key: Key, func: &str, deps: &mut dyn Iterator<Item = Key>| {
            let mut args = vec![plan_arg.clone()];
            args.extend(deps.map(Arg::Dep));
            crate::kernel::add_task(&mut graph, key, func, args)
        };
        let mut inputs: Vec<Key> = Collection::keys(&self.df)
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                add(token.key("groupby-chunk", i), groupby_chunk.id(), &mut std::iter::once(part))
            })
            .collect();
        let mut level = 0;
        while inputs.len() > SPLIT_EVERY {
            inputs = inputs
                .chunks(SPLIT_EVERY)
                .enumerate()
                .map(|(i, group)| {
                    let key = token.key(&format!("groupby-combine.{level}"), i);
                    add(key, COMBINE, &mut group.iter().cloned())
                })
                .collect();
            level += 1;
        }
        let root = add(token.key("groupby", 0), AGGREGATE, &mut inputs.into_iter());
        DataFrame {
            schema,
            keys: vec![root].into(),
            token,
            graph: Arc::new(graph),
            retain: retain.clone(),
        }
    }
}

impl fmt::Debug for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupBy").field("keys", &self.keys()).field("frame", &self.df).finish()
    }
}

/// A partial state kept per group and value column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum State {
    Sum,
    Count,
    Min,
    Max,
}

/// A value column and the partial states kept of it, in `State` order.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ValueStates {
    column: usize,
    states: Vec<State>,
}

impl ValueStates {
    fn add(&mut self, states: &[State]) {
        for s in states {
            if let Err(at) = self.states.binary_search(s) {
                self.states.insert(at, *s);
            }
        }
    }
}

/// What every task of one groupby needs to know.
///
/// A partial table (what chunk and combine tasks give) has the key
/// columns, then each value column's states in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Plan {
    /// The key columns' indices in the input.
    keys: Vec<usize>,
    /// The value columns, each once.
    values: Vec<ValueStates>,
    /// The result columns after the keys: (index into `values`, agg).
    aggs: Vec<(usize, Agg)>,
    /// The result's schema, as an Arrow IPC stream.
    schema: Bytes,
}

impl Plan {
    /// The states of a partial table after the key columns, in order.
    fn states(&self) -> impl Iterator<Item = State> + '_ {
        self.values.iter().flat_map(|v| v.states.iter().copied())
    }

    /// The column of a partial table holding `state` of value `value`.
    fn state_column(&self, value: usize, state: State) -> Result<usize, ArrowError> {
        let before: usize = self.values[..value].iter().map(|v| v.states.len()).sum();
        self.values[value]
            .states
            .iter()
            .position(|s| *s == state)
            .map(|at| self.keys.len() + before + at)
            .ok_or_else(|| ArrowError::InvalidArgumentError(format!("no {state:?} state kept")))
    }

    /// What names the tasks (the schema follows from the input).
    fn describe(&self) -> String {
        format!("{:?} {:?} {:?}", self.keys, self.values, self.aggs)
    }
}

fn column(batch: &RecordBatch, i: usize) -> Result<&ArrayRef, ArrowError> {
    batch.columns().get(i).ok_or_else(|| {
        ArrowError::InvalidArgumentError(format!(
            "groupby: the table has {} columns, not the {} expected",
            batch.num_columns(),
            i + 1
        ))
    })
}

/// A partition's partial table.
fn chunk(part: &RecordBatch, plan: &Plan) -> Result<RecordBatch, ArrowError> {
    let keys: Vec<ArrayRef> =
        plan.keys.iter().map(|&i| column(part, i).cloned()).collect::<Result<_, _>>()?;
    let groups = group::group(&keys)?;
    let (slots, n) = (&groups.slots, groups.nslots());
    let schema = part.schema();
    let mut fields: Vec<Field> = plan.keys.iter().map(|&i| schema.field(i).clone()).collect();
    let mut columns = groups.keys(&keys)?;
    for (v, value) in plan.values.iter().enumerate() {
        let a = column(part, value.column)?;
        for &state in &value.states {
            let states = match state {
                State::Sum => accumulate::sum(a, slots, n, true)?,
                State::Count => accumulate::count(a, slots, n, true)?,
                State::Min => accumulate::min(a, slots, n, true)?,
                State::Max => accumulate::max(a, slots, n, true)?,
            };
            let nullable = matches!(state, State::Min | State::Max);
            fields.push(Field::new(format!("{v}.{state:?}"), states.data_type().clone(), nullable));
            columns.push(states);
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// One partial table of the groups in `partials`.
fn merge(partials: &[RecordBatch], plan: &Plan) -> Result<RecordBatch, ArrowError> {
    let all = match partials {
        [] => return Err(ArrowError::InvalidArgumentError("nothing to merge".into())),
        [one] => return Ok(one.clone()),
        [first, ..] => arrow::compute::concat_batches(&first.schema(), partials)?,
    };
    let nkeys = plan.keys.len();
    let keys: Vec<ArrayRef> =
        (0..nkeys).map(|i| column(&all, i).cloned()).collect::<Result<_, _>>()?;
    let groups = group::group(&keys)?;
    let (slots, n) = (&groups.slots, groups.nslots());
    let mut columns = groups.keys(&keys)?;
    for (j, state) in plan.states().enumerate() {
        let a = column(&all, nkeys + j)?;
        columns.push(match state {
            State::Sum | State::Count => accumulate::sum(a, slots, n, false)?,
            State::Min => accumulate::min(a, slots, n, false)?,
            State::Max => accumulate::max(a, slots, n, false)?,
        });
    }
    RecordBatch::try_new(all.schema(), columns)
}

/// The result: merged states turned into the aggregations, sorted by keys.
fn finish(partials: &[RecordBatch], plan: &Plan) -> Result<RecordBatch, ArrowError> {
    let merged = merge(partials, plan)?;
    let nkeys = plan.keys.len();
    let sort: Vec<SortColumn> = (0..nkeys)
        .map(|i| Ok(SortColumn { values: column(&merged, i)?.clone(), options: None }))
        .collect::<Result<_, ArrowError>>()?;
    let order = lexsort_to_indices(&sort, None)?;
    let mut columns: Vec<ArrayRef> =
        sort.iter().map(|c| take(&c.values, &order, None)).collect::<Result<_, _>>()?;
    for &(v, agg) in &plan.aggs {
        let state = |s| plan.state_column(v, s).and_then(|i| column(&merged, i));
        let result = match agg {
            Agg::Sum => state(State::Sum)?.clone(),
            Agg::Count => state(State::Count)?.clone(),
            Agg::Min => state(State::Min)?.clone(),
            Agg::Max => state(State::Max)?.clone(),
            Agg::Mean => accumulate::mean(state(State::Sum)?, state(State::Count)?)?,
        };
        columns.push(take(&result, &order, None)?);
    }
    RecordBatch::try_new(table::schema_from_ipc(&plan.schema)?, columns)
}

/// The chunk step: a partition's partial table. Every groupby task takes
/// the plan first.
#[rudask::task]
fn groupby_chunk(plan: Plan, part: Table) -> Result<Table, ArrowError> {
    chunk(&part, &plan).map(Table)
}

/// Decodes `(plan, partial tables..)` and runs `f` on them.
fn with_partials(
    args: TaskArgs,
    f: fn(&[RecordBatch], &Plan) -> Result<RecordBatch, ArrowError>,
) -> TaskResult {
    let plan: Plan = args.get(0, "plan")?;
    let partials: Vec<RecordBatch> =
        args.get_rest::<Table>(1, "partials")?.into_iter().map(Table::into_inner).collect();
    f(&partials, &plan).map(Table).map_err(|e| error_failure(&e)).and_then(task_result)
}

fn combine(args: TaskArgs) -> TaskResult {
    with_partials(args, merge)
}
variadic_kernel!(COMBINE, combine);

fn aggregate(args: TaskArgs) -> TaskResult {
    with_partials(args, finish)
}
variadic_kernel!(AGGREGATE, aggregate);

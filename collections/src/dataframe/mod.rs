//! [`DataFrame`]: a lazy, partitioned table whose partitions are Arrow
//! `RecordBatch`es ([`Table`]s on the wire).
//!
//! A `DataFrame` is a schema, the keys of its partitions and the task graph
//! that computes them. Every operation returns a new `DataFrame` whose graph
//! extends its input's; nothing runs until `client.persist(&df)` or
//! `client.compute(&df)`. Column names and types are checked while the graph
//! is built, so a typo fails at the call that made it, not on a worker.
//!
//! - Sources: [`DataFrame::from_batches`], [`DataFrame::read_csv`],
//!   [`DataFrame::read_parquet`].
//! - Partition-wise: [`DataFrame::filter`] and [`DataFrame::with_column`]
//!   with [`Expr`]essions ([`col`], [`lit`]), [`DataFrame::select`],
//!   [`DataFrame::map_partitions`].
//! - Whole-frame: [`DataFrame::head`], [`DataFrame::len`], and
//!   [`DataFrame::count`], [`DataFrame::sum`], [`DataFrame::mean`],
//!   [`DataFrame::min`], [`DataFrame::max`] (one-row tables, like pandas'
//!   per-column results).
//! - Sinks: [`DataFrame::to_parquet`] (lazy) and [`DataFrame::to_batches`].
//!
//! ```no_run
//! use rudask_collections::dataframe::col;
//! use rudask_collections::DataFrame;
//! # async fn demo(client: rudask::Client) -> rudask::Result<()> {
//! let df = DataFrame::read_csv("/data/accounts-*.csv")?;
//! let overdrawn = client.persist(&df.filter(col("balance").lt(0))?)?;
//! let rows: u64 = client.compute(&overdrawn.len())?.await?;
//! let mean = client.compute(&overdrawn.select(["balance"])?.mean())?.await?;
//! client.compute(&overdrawn.to_parquet("/data/overdrawn"))?.await?;
//! # Ok(()) }
//! ```

mod expr;
mod groupby;
mod io;
mod ops;
mod stats;
mod table;

pub use expr::{col, lit, BinaryOp, Expr, Literal};
pub use groupby::{Agg, GroupBy};
pub use io::{CsvOptions, ParquetCompression};
pub use table::Table;

use crate::kernel::{error_failure, task_result, variadic_kernel, TaskArgs};
use crate::token::Token;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rudask::core::collection::{Collection, CollectionMeta, Retain};
use rudask::core::graph::{Arg, Key, TaskGraph, TaskSpec};
use rudask::core::registry::{hold, TaskResult};
use rudask::{Error, Result, Task};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The type tag of `DataFrame` metas.
const TYPE_TAG: &str = "rudask.DataFrame";

/// The id of the kernel that concatenates partitions (the finalize task).
const CONCAT: &str = "rudask_collections::dataframe::concat";

/// A lazy, partitioned table. Cloning is cheap (the graph is shared).
///
/// ```no_run
/// use arrow::array::{Int64Array, RecordBatch};
/// use rudask_collections::DataFrame;
/// use std::sync::Arc;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)]).unwrap();
/// let df = DataFrame::from_batches(vec![batch], 2)?;
/// let df = client.persist(&df)?;
/// let table = client.compute(&df)?.await?;
/// assert_eq!(table.num_rows(), 3);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DataFrame {
    schema: SchemaRef,
    keys: Arc<[Key]>,
    token: Token,
    graph: Arc<TaskGraph>,
    retain: Retain,
}

/// The type-specific part of a `DataFrame`'s meta.
#[derive(Serialize, Deserialize)]
struct Spec {
    /// The schema as an Arrow IPC stream with no batches.
    schema: Vec<u8>,
}

impl DataFrame {
    /// A `DataFrame` of `batches` (which must share one schema), re-cut into
    /// `npartitions` partitions of nearly equal row counts. The data travels
    /// to the cluster with the graph.
    pub fn from_batches(
        batches: impl IntoIterator<Item = RecordBatch>,
        npartitions: usize,
    ) -> Result<DataFrame> {
        let batches: Vec<RecordBatch> = batches.into_iter().collect();
        let Some(first) = batches.first() else {
            return Err(Error::InvalidArgument(
                "DataFrame::from_batches needs at least one batch (its schema is the frame's)"
                    .into(),
            ));
        };
        if npartitions == 0 {
            return Err(Error::InvalidArgument(
                "DataFrame::from_batches needs npartitions >= 1".into(),
            ));
        }
        let schema = first.schema();
        if let Some(b) = batches.iter().find(|b| b.schema() != schema) {
            return Err(Error::InvalidArgument(format!(
                "DataFrame::from_batches: batches have different schemas: {schema} and {}",
                b.schema()
            )));
        }
        let all = if batches.len() == 1 {
            batches.into_iter().next().expect("one batch")
        } else {
            arrow::compute::concat_batches(&schema, &batches)
                .map_err(|e| Error::InvalidArgument(format!("DataFrame::from_batches: {e}")))?
        };
        let rows = all.num_rows();
        let id = partition.id();
        let parts = (0..npartitions).map(|i| {
            let (start, end) = (rows * i / npartitions, rows * (i + 1) / npartitions);
            (id, vec![Arg::Value(hold(Table(all.slice(start, end - start))))])
        });
        Ok(DataFrame::from_tasks(
            schema,
            Token::random(),
            "from_batches",
            TaskGraph::new(),
            parts,
            Retain::none(),
        ))
    }

    /// A frame whose partition `i` is the task `op-<token>-i` running the
    /// `i`-th `(func, args)` of `tasks`, added to `graph` (which holds what
    /// they depend on); `retain` keeps persisted inputs.
    pub(crate) fn from_tasks<'a>(
        schema: SchemaRef,
        token: Token,
        op: &str,
        mut graph: TaskGraph,
        tasks: impl IntoIterator<Item = (&'a str, Vec<Arg>)>,
        retain: Retain,
    ) -> DataFrame {
        let keys: Vec<Key> = tasks
            .into_iter()
            .enumerate()
            .map(|(i, (func, args))| {
                crate::kernel::add_task(&mut graph, token.key(op, i), func, args)
            })
            .collect();
        DataFrame { schema, keys: keys.into(), token, graph: Arc::new(graph), retain }
    }

    /// The schema every partition has.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Number of partitions.
    pub fn npartitions(&self) -> usize {
        self.keys.len()
    }

    /// The index of column `name`, or an error for `op` that lists the
    /// columns there are.
    pub(crate) fn column_index(&self, name: &str, op: &str) -> Result<usize> {
        self.schema.index_of(name).map_err(|_| {
            Error::InvalidArgument(format!(
                "{op}: unknown column {name:?}; the columns are {}",
                self.columns().join(", ")
            ))
        })
    }

    /// A `DataFrame` with one task per partition: `func(partition, params..)`
    /// giving partitions of `schema`. `param_token` must differ whenever
    /// `params` do (it names the new partitions).
    pub(crate) fn partitionwise(
        &self,
        op: &str,
        func: &str,
        params: &[Arg],
        param_token: &[u8],
        schema: SchemaRef,
    ) -> DataFrame {
        let token = Token::of(op, [self.token.bytes().as_slice(), func.as_bytes(), param_token]);
        let tasks = self.keys.iter().map(|input| {
            let mut args = Vec::with_capacity(params.len() + 1);
            args.push(Arg::Dep(input.clone()));
            args.extend(params.iter().cloned());
            (func, args)
        });
        let graph = TaskGraph::clone(&self.graph);
        DataFrame::from_tasks(schema, token, op, graph, tasks, self.retain.clone())
    }

    /// The token naming this frame's partitions (for derived operations).
    pub(crate) fn token(&self) -> Token {
        self.token
    }

    /// The graph and what keeps persisted inputs alive (for derived
    /// collections of other shapes, such as reductions).
    pub(crate) fn parts(&self) -> (&Arc<TaskGraph>, &Retain) {
        (&self.graph, &self.retain)
    }
}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFrame")
            .field("columns", &self.columns())
            .field("npartitions", &self.keys.len())
            .field("tasks", &self.graph.len())
            .field("persisted", &self.retain.is_some())
            .finish()
    }
}

impl Collection for DataFrame {
    type Output = Table;

    fn type_tag() -> String {
        TYPE_TAG.into()
    }

    fn graph(&self) -> TaskGraph {
        TaskGraph::clone(&self.graph)
    }

    fn keys(&self) -> Vec<Key> {
        self.keys.to_vec()
    }

    fn meta(&self) -> CollectionMeta {
        let schema = table::schema_to_ipc(&self.schema).expect("an in-memory schema encodes");
        CollectionMeta::new(TYPE_TAG, self.keys.len(), &Spec { schema })
            .expect("a byte vector encodes")
    }

    fn from_persisted(
        meta: &CollectionMeta,
        keys: Vec<Key>,
        retain: Retain,
    ) -> std::result::Result<Self, String> {
        meta.expect_type(TYPE_TAG)?;
        meta.expect_partitions(&keys)?;
        let spec: Spec = meta.spec()?;
        let schema = table::schema_from_ipc(&spec.schema)
            .map_err(|e| format!("the schema in a DataFrame's meta does not decode: {e}"))?;
        let token = Token::of("persisted", keys.iter().map(|k| k.as_str().as_bytes()));
        Ok(DataFrame { schema, keys: keys.into(), token, graph: Arc::default(), retain })
    }

    fn finalize(&self, out: Key) -> TaskSpec {
        let mut args = vec![Arg::Value(hold(SchemaArg(self.schema.clone())))];
        args.extend(self.keys.iter().cloned().map(Arg::Dep));
        TaskSpec { key: out, func: CONCAT.into(), args, options: Default::default() }
    }
}

/// Passes a source partition through: the task that puts data shipped with
/// the graph into the cluster's memory.
#[rudask::task]
fn partition(t: Table) -> Table {
    t
}

/// A schema as a task argument (an IPC stream with no batches), so that a
/// concatenation of zero rows still has its columns.
#[derive(Clone, Debug)]
struct SchemaArg(SchemaRef);

impl Serialize for SchemaArg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&table::schema_to_ipc(&self.0).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for SchemaArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let bytes = serde_bytes_buf(d)?;
        table::schema_from_ipc(&bytes).map(SchemaArg).map_err(serde::de::Error::custom)
    }
}

fn serde_bytes_buf<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<u8>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
    }
    d.deserialize_bytes(V)
}

/// The finalize task: `(schema, partitions..)` concatenated into one table.
fn concat(args: TaskArgs) -> TaskResult {
    let schema: SchemaArg = args.get(0, "schema")?;
    let parts: Vec<Table> = args.get_rest(1, "partitions")?;
    let batches: Vec<RecordBatch> = parts.into_iter().map(Table::into_inner).collect();
    match arrow::compute::concat_batches(&schema.0, &batches) {
        Ok(b) => task_result(Table(b)),
        Err(e) => Err(error_failure(&e)),
    }
}
variadic_kernel!(CONCAT, concat);

//! Partition-wise operations of [`DataFrame`] (filter, select, with_column,
//! map_partitions), `head` and `len`, with the kernels that run them on the
//! workers.

use super::{DataFrame, Expr, SchemaArg, Table};
use crate::kernel::{error_failure, task_result, variadic_kernel, TaskArgs};
use crate::scalar::{tree_reduce, Scalar};
use crate::token::Token;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rudask::core::graph::{Arg, TaskGraph};
use rudask::core::registry::{hold, TaskResult};
use rudask::{Error, Result, Task};
use std::sync::Arc;

/// How many partial results a tree reduction combines at a time.
pub(crate) const SPLIT_EVERY: usize = 8;

/// The id of the kernel that adds `u64`s (row counts).
pub(crate) const SUM_U64: &str = "rudask_collections::dataframe::sum_u64";

/// The id of the kernel that concatenates the first rows of partitions.
const HEAD: &str = "rudask_collections::dataframe::head";

impl DataFrame {
    /// The rows where `predicate` is true (rows where it is null are
    /// dropped, as in SQL). The predicate is type-checked now: an unknown
    /// column or a comparison of mismatched types is an
    /// `Error::InvalidArgument` naming them.
    ///
    /// ```no_run
    /// use rudask_collections::dataframe::col;
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let overdrawn = df.filter(col("balance").lt(0))?;
    /// let rows = client.compute(&overdrawn)?.await?;
    /// # Ok(()) }
    /// ```
    pub fn filter(&self, predicate: Expr) -> Result<DataFrame> {
        let t = predicate.data_type(&self.schema, "filter")?;
        if t != DataType::Boolean {
            return Err(Error::InvalidArgument(format!(
                "filter: the predicate {predicate} gives {t}, not booleans; compare it with \
                 something (e.g. .gt(0))"
            )));
        }
        let token = expr_token(&predicate);
        Ok(self.partitionwise(
            "filter",
            filter_partition.id(),
            &[Arg::Value(hold(predicate))],
            &token,
            self.schema.clone(),
        ))
    }

    /// The frame with only `columns`, in that order. An unknown column is an
    /// error listing the columns there are.
    ///
    /// ```no_run
    /// # async fn demo(df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let names = df.select(["name"])?;
    /// assert_eq!(names.columns(), ["name"]);
    /// # Ok(()) }
    /// ```
    pub fn select<S: AsRef<str>>(&self, columns: impl IntoIterator<Item = S>) -> Result<DataFrame> {
        let indices = columns
            .into_iter()
            .map(|c| self.column_index(c.as_ref(), "select"))
            .collect::<Result<Vec<usize>>>()?;
        let schema = Arc::new(
            self.schema
                .project(&indices)
                .map_err(|e| Error::InvalidArgument(format!("select: {e}")))?,
        );
        let indices: Vec<u64> = indices.into_iter().map(|i| i as u64).collect();
        let token: Vec<u8> = indices.iter().flat_map(|i| i.to_le_bytes()).collect();
        Ok(self.partitionwise(
            "select",
            select_partition.id(),
            &[Arg::Value(hold(indices))],
            &token,
            schema,
        ))
    }

    /// The frame with column `name` set to `expr`: replaced in place if
    /// there is one, appended otherwise. The new column is nullable.
    ///
    /// ```no_run
    /// use rudask_collections::dataframe::col;
    /// # async fn demo(df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let df = df.with_column("balance_k", col("balance") / 1000)?;
    /// # Ok(()) }
    /// ```
    pub fn with_column(&self, name: impl Into<String>, expr: Expr) -> Result<DataFrame> {
        let name = name.into();
        let t = expr.data_type(&self.schema, &format!("with_column({name:?})"))?;
        let schema = with_column_schema(&self.schema, &name, t);
        let mut token = expr_token(&expr);
        token.extend_from_slice(name.as_bytes());
        Ok(self.partitionwise(
            "with_column",
            with_column_partition.id(),
            &[Arg::Value(hold(name)), Arg::Value(hold(expr))],
            &token,
            schema,
        ))
    }

    /// Applies the registered task `task` (`#[rudask::task] fn(Table) ->
    /// Table`, or `-> Result<Table, E>`) to every partition. Its output
    /// must have this frame's columns and types (checked on the worker: a
    /// mismatch fails the partition with an error naming both); use
    /// [`DataFrame::map_partitions_with_schema`] when it changes them.
    ///
    /// ```no_run
    /// use rudask_collections::Table;
    ///
    /// /// Drops the first row of each partition.
    /// #[rudask::task]
    /// fn skip_first(t: Table) -> Table {
    ///     Table(t.slice(1.min(t.num_rows()), t.num_rows().saturating_sub(1)))
    /// }
    /// # fn demo(df: rudask_collections::DataFrame) {
    /// let trimmed = df.map_partitions(skip_first);
    /// # }
    /// ```
    pub fn map_partitions<T: Task<Args = (Table,), Output = Table>>(&self, task: T) -> DataFrame {
        self.map_partitions_with_schema(task, self.schema.clone())
    }

    /// Applies the registered task `task` to every partition, giving
    /// partitions of `schema` (checked on the worker).
    ///
    /// ```no_run
    /// use arrow::datatypes::{DataType, Field, Schema};
    /// use rudask_collections::Table;
    /// use std::sync::Arc;
    ///
    /// /// Keeps the first column.
    /// #[rudask::task]
    /// fn first_column(t: Table) -> Result<Table, arrow::error::ArrowError> {
    ///     Ok(Table(t.project(&[0])?))
    /// }
    /// # fn demo(df: rudask_collections::DataFrame) {
    /// let schema = Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, true)]));
    /// let names = df.map_partitions_with_schema(first_column, schema);
    /// # }
    /// ```
    pub fn map_partitions_with_schema<T: Task<Args = (Table,), Output = Table>>(
        &self,
        task: T,
        schema: SchemaRef,
    ) -> DataFrame {
        let id = task.id();
        let mapped = self.partitionwise("map_partitions", id, &[], id.as_bytes(), schema.clone());
        let ipc = super::table::schema_to_ipc(&schema).expect("an in-memory schema encodes");
        mapped.partitionwise(
            "checked",
            check_schema.id(),
            &[Arg::Value(hold(SchemaArg(schema))), Arg::Value(hold(id.to_string()))],
            &ipc,
            mapped.schema.clone(),
        )
    }

    /// A one-partition frame of the first `n` rows, taken from as many
    /// leading partitions as needed. Each partition gives at most `n` rows
    /// (a zero-copy slice where it lives), so at most `n` rows per
    /// partition move.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let first = client.compute(&df.head(5))?.await?;
    /// assert!(first.num_rows() <= 5);
    /// # Ok(()) }
    /// ```
    pub fn head(&self, n: usize) -> DataFrame {
        let n = n as u64;
        let firsts = self.partitionwise(
            "head-chunk",
            head_partition.id(),
            &[Arg::Value(hold(n))],
            &n.to_le_bytes(),
            self.schema.clone(),
        );
        let mut args = vec![Arg::Value(hold(n)), Arg::Value(hold(SchemaArg(self.schema.clone())))];
        args.extend(firsts.keys.iter().cloned().map(Arg::Dep));
        DataFrame::from_tasks(
            self.schema.clone(),
            Token::of("head", [firsts.token.bytes().as_slice()]),
            "head",
            TaskGraph::clone(&firsts.graph),
            [(HEAD, args)],
            self.retain.clone(),
        )
    }

    /// The number of rows: each partition is counted where it is (no data
    /// moves) and the counts are added in a tree.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let rows: u64 = client.compute(&df.len())?.await?;
    /// # Ok(()) }
    /// ```
    // A lazy frame has no cheap `is_empty`: it would be `len() == 0`, a
    // computation like this one.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Scalar<u64> {
        let counts =
            self.partitionwise("len-chunk", count_rows.id(), &[], &[], self.schema.clone());
        let mut graph = TaskGraph::clone(&counts.graph);
        let root = tree_reduce(
            &mut graph,
            counts.token,
            "len",
            counts.keys.to_vec(),
            SUM_U64,
            &[],
            SPLIT_EVERY,
        );
        Scalar::new(graph, root, self.retain.clone())
    }
}

/// Bytes that identify an expression in partition names (msgpack keeps
/// every float apart, NaN and infinities included).
fn expr_token(e: &Expr) -> Vec<u8> {
    rudask::core::registry::encode_serde(e)
        .and_then(|p| p.encoded())
        .expect("an expression encodes")
        .to_vec()
}

/// `schema` with column `name` of type `t` replaced or appended.
fn with_column_schema(schema: &Schema, name: &str, t: DataType) -> SchemaRef {
    let field = Arc::new(Field::new(name, t, true));
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    match schema.index_of(name) {
        Ok(i) => fields[i] = field,
        Err(_) => fields.push(field),
    }
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The rows of `t` where `predicate` holds.
#[rudask::task]
fn filter_partition(t: Table, predicate: Expr) -> Result<Table, String> {
    let mask = predicate.evaluate(&t).map_err(|e| format!("filter {predicate}: {e}"))?;
    let mask = mask
        .as_boolean_opt()
        .ok_or_else(|| format!("filter {predicate}: gives {}, not booleans", mask.data_type()))?;
    arrow::compute::filter_record_batch(&t, mask)
        .map(Table)
        .map_err(|e| format!("filter {predicate}: {e}"))
}

/// The columns of `t` at `indices`.
#[rudask::task]
fn select_partition(t: Table, indices: Vec<u64>) -> Result<Table, String> {
    let indices: Vec<usize> = indices.into_iter().map(|i| i as usize).collect();
    t.project(&indices).map(Table).map_err(|e| format!("select: {e}"))
}

/// `t` with column `name` set to `expr`.
#[rudask::task]
fn with_column_partition(t: Table, name: String, expr: Expr) -> Result<Table, String> {
    let fail = |e: &dyn std::fmt::Display| format!("with_column({name:?}, {expr}): {e}");
    let values = expr.evaluate(&t).map_err(|e| fail(&e))?;
    let schema = with_column_schema(&t.schema(), &name, values.data_type().clone());
    let mut columns = t.columns().to_vec();
    match t.schema().index_of(&name) {
        Ok(i) => columns[i] = values,
        Err(_) => columns.push(values),
    }
    RecordBatch::try_new(schema, columns).map(Table).map_err(|e| fail(&e))
}

/// `t` relabelled with `schema` when its columns have the same names and
/// types; an error naming both otherwise (`task` made `t`).
#[rudask::task]
fn check_schema(t: Table, schema: SchemaArg, task: String) -> Result<Table, String> {
    let expected = schema.0;
    let same = t.num_columns() == expected.fields().len()
        && t.schema()
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    let columns = |s: &Schema| -> String {
        s.fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !same {
        return Err(format!(
            "map_partitions: task {task} gave columns [{}] but the frame expects [{}]; pass the \
             output schema with map_partitions_with_schema",
            columns(&t.schema()),
            columns(&expected)
        ));
    }
    RecordBatch::try_new(expected, t.0.columns().to_vec())
        .map(Table)
        .map_err(|e| format!("map_partitions: the output of task {task}: {e}"))
}

/// The first `n` rows of `t` (a zero-copy slice).
#[rudask::task]
fn head_partition(t: Table, n: u64) -> Table {
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(t.num_rows());
    Table(t.slice(0, n))
}

/// The number of rows of `t`.
#[rudask::task]
fn count_rows(t: Table) -> u64 {
    t.num_rows() as u64
}

/// `(n, schema, firsts..)`: the first `n` rows of the partitions' first
/// rows, in order.
fn head(args: TaskArgs) -> TaskResult {
    let n: u64 = args.get(0, "n")?;
    let schema: SchemaArg = args.get(1, "schema")?;
    let mut left = usize::try_from(n).unwrap_or(usize::MAX);
    let mut taken = Vec::new();
    for i in 2..args.len() {
        if left == 0 {
            break;
        }
        let t: Table = args.get(i, "partition")?;
        let rows = t.num_rows().min(left);
        left -= rows;
        taken.push(t.0.slice(0, rows));
    }
    match arrow::compute::concat_batches(&schema.0, &taken) {
        Ok(b) => task_result(Table(b)),
        Err(e) => Err(error_failure(&e)),
    }
}
variadic_kernel!(HEAD, head);

/// The sum of its `u64` arguments.
fn sum_u64(args: TaskArgs) -> TaskResult {
    let parts: Vec<u64> = args.get_rest(0, "counts")?;
    task_result(parts.into_iter().sum::<u64>())
}
variadic_kernel!(SUM_U64, sum_u64);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataframe::{col, lit};

    #[test]
    fn different_expressions_name_different_partitions() {
        let tokens: Vec<Vec<u8>> = [
            col("x").lt(f64::NAN),
            col("x").lt(f64::INFINITY),
            col("x").lt(0),
            col("x").lt(0.0),
            col("x").lt(lit("0")),
            col("y").lt(0),
        ]
        .iter()
        .map(expr_token)
        .collect();
        for (i, a) in tokens.iter().enumerate() {
            assert!(tokens[i + 1..].iter().all(|b| a != b), "expression {i} shares its token");
        }
        assert_eq!(expr_token(&col("x").lt(0)), expr_token(&col("x").lt(0)));
    }
}

//! Tasks that the DataFrame tests map over partitions (`map_partitions`):
//! they are registered in the test worker binary.

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow::error::ArrowError;
use rudask_collections::Table;
use std::sync::Arc;

/// The `balance` column (Int64) doubled, other columns as they are.
#[rudask::task]
pub fn double_balance(t: Table) -> Result<Table, ArrowError> {
    let i = t.schema().index_of("balance")?;
    let doubled: Int64Array = t
        .column(i)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| ArrowError::InvalidArgumentError("balance is not Int64".into()))?
        .unary::<_, Int64Type>(|v| v * 2);
    let mut columns = t.columns().to_vec();
    columns[i] = Arc::new(doubled);
    Ok(Table(RecordBatch::try_new(t.schema(), columns)?))
}

/// Only the `balance` column (changes the schema).
#[rudask::task]
pub fn only_balance(t: Table) -> Result<Table, ArrowError> {
    let i = t.schema().index_of("balance")?;
    Ok(Table(t.project(&[i])?))
}

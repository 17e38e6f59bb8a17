//! [`Table`]: one partition of a [`super::DataFrame`], an Arrow `RecordBatch`
//! that crosses processes as an Arrow IPC stream. Decoding keeps the
//! columns' buffers inside the received frame instead of copying them.

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// One partition of a [`super::DataFrame`], and what computing a whole
/// `DataFrame` gives: an Arrow [`RecordBatch`] that encodes as Arrow IPC.
///
/// ```
/// use arrow::array::{Int64Array, RecordBatch};
/// use rudask_collections::dataframe::Table;
/// use std::sync::Arc;
/// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1, 2])) as _)]).unwrap();
/// let table = Table::from(batch.clone());
/// assert_eq!(table.num_rows(), 2); // derefs to the RecordBatch
/// let bytes = table.to_ipc().unwrap();
/// assert_eq!(Table::from_ipc(bytes.into()).unwrap().into_inner(), batch);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Table(pub RecordBatch);

impl Table {
    /// The record batch.
    pub fn into_inner(self) -> RecordBatch {
        self.0
    }

    /// The batch as an Arrow IPC stream (schema, one batch, end marker).
    pub fn to_ipc(&self) -> Result<Vec<u8>, ArrowError> {
        let mut out = Vec::with_capacity(self.0.get_array_memory_size() + 1024);
        let mut w = StreamWriter::try_new(&mut out, &self.0.schema())?;
        w.write(&self.0)?;
        w.finish()?;
        drop(w);
        Ok(out)
    }

    /// Reads an Arrow IPC stream of one batch; the columns keep pointing
    /// into `bytes` (unless a buffer is misaligned, then it is copied).
    pub fn from_ipc(bytes: Bytes) -> Result<Table, ArrowError> {
        let mut buffer = Buffer::from(bytes);
        let mut decoder = StreamDecoder::new();
        let mut batch = None;
        while !buffer.is_empty() {
            if let Some(b) = decoder.decode(&mut buffer)? {
                if batch.replace(b).is_some() {
                    return Err(ArrowError::IpcError("a table holds one record batch".into()));
                }
            }
        }
        decoder.finish()?;
        batch
            .map(Table)
            .ok_or_else(|| ArrowError::IpcError("the stream holds no record batch".into()))
    }
}

impl Deref for Table {
    type Target = RecordBatch;
    fn deref(&self) -> &RecordBatch {
        &self.0
    }
}

impl From<RecordBatch> for Table {
    fn from(b: RecordBatch) -> Self {
        Table(b)
    }
}

impl From<Table> for RecordBatch {
    fn from(t: Table) -> Self {
        t.0
    }
}

impl Serialize for Table {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_ipc().map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Table;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an Arrow IPC stream")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Table, E> {
                Table::from_ipc(rudask::core::registry::shared_bytes(v)).map_err(E::custom)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Table, E> {
                Table::from_ipc(Bytes::copy_from_slice(v)).map_err(E::custom)
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Table, E> {
                Table::from_ipc(Bytes::from(v)).map_err(E::custom)
            }
        }
        d.deserialize_bytes(V)
    }
}

inventory::submit! {
    rudask::core::registry::SizeOf {
        type_id: std::any::TypeId::of::<Table>,
        size: |v| v.downcast_ref::<Table>().map(Table::data_size),
    }
}

impl Table {
    /// Bytes of column data this table covers: for a slice of a larger
    /// batch, the slice's share, not the whole shared buffers.
    fn data_size(&self) -> usize {
        self.columns()
            .iter()
            .map(|c| {
                let data = c.to_data();
                data.get_slice_memory_size().unwrap_or_else(|_| c.get_array_memory_size())
            })
            .sum()
    }
}

/// A schema as an Arrow IPC stream with no batches (how a `DataFrame`'s meta
/// stores it).
pub(crate) fn schema_to_ipc(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    StreamWriter::try_new(&mut out, schema)?.finish()?;
    Ok(out)
}

/// The schema of an IPC stream written by [`schema_to_ipc`].
pub(crate) fn schema_from_ipc(bytes: &[u8]) -> Result<SchemaRef, ArrowError> {
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(Arc::clone(&reader.schema()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("name", Arc::new(StringArray::from(vec!["a", "bb", "ccc"])) as _),
            ("balance", Arc::new(Int64Array::from(vec![-1, 0, 5])) as _),
        ])
        .unwrap()
    }

    #[test]
    fn tables_round_trip_through_the_task_codec() {
        let t = Table(batch());
        let p = rudask::core::registry::encode(&t).unwrap();
        let back: Table = rudask::core::registry::decode(&p).unwrap();
        assert_eq!(back, t);
        let sliced = Table(batch().slice(1, 2));
        let p = rudask::core::registry::encode(&sliced).unwrap();
        assert_eq!(rudask::core::registry::decode::<Table>(&p).unwrap(), sliced);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Table::from_ipc(Bytes::from_static(b"not arrow at all")).is_err());
        assert!(Table::from_ipc(Bytes::new()).is_err());
        let p = rudask::core::registry::encode(&"text".to_string()).unwrap();
        assert!(rudask::core::registry::decode::<Table>(&p).is_err());
    }

    #[test]
    fn a_slice_reports_its_share_of_the_data() {
        let whole = Table(batch());
        let part = Table(batch().slice(0, 1));
        assert!(part.data_size() < whole.data_size() && part.data_size() > 0);
        let held = rudask::core::registry::hold(whole.clone());
        assert_eq!(held.len(), whole.data_size(), "a held table reports its data size");
    }

    #[test]
    fn schemas_round_trip() {
        let s = batch().schema();
        assert_eq!(schema_from_ipc(&schema_to_ipc(&s).unwrap()).unwrap(), s);
    }
}

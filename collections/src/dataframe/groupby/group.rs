//! The group table: which group each row of a batch belongs to.
//!
//! One string or integer key column goes through a hash table that looks
//! the key up where it lies in the column (no per-row allocation, no
//! conversion); other key sets (several columns, booleans) are first turned
//! into `arrow::row` byte strings, whose equality is the keys' equality.

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, GenericStringArray, OffsetSizeTrait,
    PrimitiveArray, UInt32Array,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::{BuildHasher, Hash};

/// The rows of a batch sorted into groups.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Groups {
    /// The group slot of every row: 0 for a row whose key is null (pandas
    /// drops those), `g + 1` for a row of group `g`. Slot 0 lets the
    /// accumulators add every row without a branch and discard slot 0.
    pub(super) slots: Vec<u32>,
    /// For each group, in order of first appearance, a row holding its key.
    pub(super) first: Vec<u32>,
}

impl Groups {
    /// The number of accumulator slots: the groups plus the null slot.
    pub(super) fn nslots(&self) -> usize {
        self.first.len() + 1
    }

    /// The key columns of the groups (one row per group), taken from the
    /// batch's key columns.
    pub(super) fn keys(&self, columns: &[ArrayRef]) -> Result<Vec<ArrayRef>, ArrowError> {
        let rows = UInt32Array::from(self.first.clone());
        columns.iter().map(|c| arrow::compute::take(c, &rows, None)).collect()
    }
}

/// Whether a column of `data_type` can be a group key.
pub(super) fn is_key_type(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Boolean)
}

/// Sorts the rows of the key columns `keys` (all of one length) into
/// groups.
pub(super) fn group(keys: &[ArrayRef]) -> Result<Groups, ArrowError> {
    let Some(first) = keys.first() else {
        return Err(ArrowError::InvalidArgumentError("grouping needs a key column".into()));
    };
    if u32::try_from(first.len()).is_err() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "a partition of {} rows is too large to group (at most {} rows)",
            first.len(),
            u32::MAX
        )));
    }
    if keys.len() > 1 {
        return by_rows(keys);
    }
    Ok(match first.data_type() {
        DataType::Utf8 => by_string(first.as_string::<i32>()),
        DataType::LargeUtf8 => by_string(first.as_string::<i64>()),
        DataType::Int8 => by_integer(first.as_primitive::<Int8Type>()),
        DataType::Int16 => by_integer(first.as_primitive::<Int16Type>()),
        DataType::Int32 => by_integer(first.as_primitive::<Int32Type>()),
        DataType::Int64 => by_integer(first.as_primitive::<Int64Type>()),
        DataType::UInt8 => by_integer(first.as_primitive::<UInt8Type>()),
        DataType::UInt16 => by_integer(first.as_primitive::<UInt16Type>()),
        DataType::UInt32 => by_integer(first.as_primitive::<UInt32Type>()),
        DataType::UInt64 => by_integer(first.as_primitive::<UInt64Type>()),
        _ => by_rows(keys)?,
    })
}

/// A key of at most 15 bytes as two integers: its bytes in the low end,
/// its length in the top byte. Two such keys are equal exactly when their
/// packings are, so most string keys hash and compare as integers.
type Packed = [u64; 2];

/// The packing of every key longer than [`pack`] packs (its top byte is
/// beyond any length): equal marks say nothing, the bytes must be compared.
const LONG: Packed = [u64::MAX; 2];

/// `LOW_BYTES[n]` keeps the low `n` bytes of a u64.
const LOW_BYTES: [u64; 9] = {
    let mut masks = [0u64; 9];
    let mut n = 1;
    while n < 9 {
        masks[n] = masks[n - 1] << 8 | 0xff;
        n += 1;
    }
    masks
};

/// Packs the key `buffer[start..end]`. Loading the 16 bytes from `start`
/// at once (when the buffer has them) and masking beats copying a few.
#[inline]
fn pack(buffer: &[u8], start: usize, end: usize) -> Packed {
    let len = end - start;
    if len > 15 {
        return LONG;
    }
    let window = match buffer.get(start..).and_then(<[u8]>::first_chunk::<16>) {
        Some(window) => *window,
        None => {
            let mut window = [0u8; 16];
            window[..len].copy_from_slice(&buffer[start..end]);
            window
        }
    };
    let w = u128::from_le_bytes(window);
    let (lo, hi) = (w as u64, (w >> 64) as u64);
    let (lo, hi) = if len <= 8 { (lo & LOW_BYTES[len], 0) } else { (lo, hi & LOW_BYTES[len - 8]) };
    [lo, hi | (len as u64) << 56]
}

/// The hash of a packed key: a folded multiply of its halves.
#[inline]
fn hash_packed([lo, hi]: Packed) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let full = u128::from(lo ^ K).wrapping_mul(u128::from(hi ^ K.rotate_left(32)));
    full as u64 ^ (full >> 64) as u64
}

/// Groups byte-string keys: `key(i)` gives row `i`'s key as
/// `(buffer, start, end)`. The table holds `(packing, group, row)`; a
/// probe compares packings, and the bytes in the group's first row only
/// for long keys.
fn by_bytes<'a>(
    len: usize,
    nulls: Option<&NullBuffer>,
    key: impl Fn(usize) -> (&'a [u8], usize, usize),
) -> Groups {
    let long_hasher = DefaultHashBuilder::default();
    let bytes = |i: usize| {
        let (buffer, start, end) = key(i);
        &buffer[start..end]
    };
    let hash = |p: Packed, row: usize| {
        if p == LONG {
            long_hasher.hash_one(bytes(row))
        } else {
            hash_packed(p)
        }
    };
    let mut table: HashTable<(Packed, u32, u32)> = HashTable::new();
    let mut first = Vec::new();
    let mut slots = Vec::with_capacity(len);
    for i in 0..len {
        if nulls.is_some_and(|n| n.is_null(i)) {
            slots.push(0);
            continue;
        }
        let (buffer, start, end) = key(i);
        let p = pack(buffer, start, end);
        let h = hash(p, i);
        // Most rows find their group: probe without preparing an insertion.
        let found = table.find(h, |&(q, _, row)| {
            q == p && (p != LONG || bytes(row as usize) == &buffer[start..end])
        });
        let g = match found {
            Some(&(_, g, _)) => g,
            None => {
                // Fewer groups than rows, and rows fit in u32 (checked).
                let g = first.len() as u32;
                table.insert_unique(h, (p, g, i as u32), |&(q, _, row)| hash(q, row as usize));
                first.push(i as u32);
                g
            }
        };
        slots.push(g + 1);
    }
    Groups { slots, first }
}

fn by_string<O: OffsetSizeTrait>(a: &GenericStringArray<O>) -> Groups {
    let offsets = a.value_offsets();
    let data = a.value_data();
    by_bytes(a.len(), a.nulls(), |i| (data, offsets[i].as_usize(), offsets[i + 1].as_usize()))
}

fn by_integer<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>) -> Groups
where
    T::Native: Hash + Eq,
{
    let hasher = DefaultHashBuilder::default();
    let mut map: hashbrown::HashMap<T::Native, u32, DefaultHashBuilder> =
        hashbrown::HashMap::with_hasher(hasher);
    let mut first = Vec::new();
    let mut slots = Vec::with_capacity(a.len());
    let nulls = a.nulls();
    for (i, &v) in a.values().iter().enumerate() {
        if nulls.is_some_and(|n| n.is_null(i)) {
            slots.push(0);
            continue;
        }
        let g = *map.entry(v).or_insert_with(|| {
            first.push(i as u32);
            first.len() as u32 - 1
        });
        slots.push(g + 1);
    }
    Groups { slots, first }
}

/// Any key set: each row's keys encoded as one `arrow::row` byte string.
/// A row with a null in any key column goes to the null slot.
fn by_rows(keys: &[ArrayRef]) -> Result<Groups, ArrowError> {
    let fields = keys.iter().map(|k| SortField::new(k.data_type().clone())).collect();
    let rows = RowConverter::new(fields)?.convert_columns(keys)?;
    let nulls = keys
        .iter()
        .fold(None, |acc, k| NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref()));
    Ok(by_bytes(rows.num_rows(), nulls.as_ref(), |i| {
        let row = rows.row(i).data();
        (row, 0, row.len())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Int32Array, LargeStringArray, StringArray};
    use std::sync::Arc;

    fn check(keys: &[ArrayRef], slots: &[u32], first: &[u32]) {
        let g = group(keys).unwrap();
        assert_eq!((g.slots.as_slice(), g.first.as_slice()), (slots, first));
    }

    #[test]
    fn strings_group_by_value_and_nulls_go_to_slot_0() {
        let a: ArrayRef =
            Arc::new(StringArray::from(vec![Some("b"), None, Some("a"), Some("b"), Some("")]));
        check(std::slice::from_ref(&a), &[1, 0, 2, 1, 3], &[0, 2, 4]);
        let large: ArrayRef = Arc::new(LargeStringArray::from(vec![Some("x"), Some("x"), None]));
        check(&[large], &[1, 1, 0], &[0]);
        let keys = group(std::slice::from_ref(&a)).unwrap().keys(&[a]).unwrap();
        assert_eq!(
            keys[0].as_string::<i32>().iter().collect::<Vec<_>>(),
            [Some("b"), Some("a"), Some("")]
        );
    }

    #[test]
    fn packings_are_equal_exactly_when_keys_are() {
        let data = b"abcdefghijklmnopabcdefghijklmnop\0\0";
        let all: Vec<(usize, usize)> =
            (0..=16).flat_map(|s| (s..=s + 16).map(move |e| (s, e))).collect();
        for &(s, e) in &all {
            // The same bytes at the end of a buffer (copied, not loaded).
            let tail = &data[s..e];
            assert_eq!(pack(data, s, e), pack(tail, 0, tail.len()), "{s}..{e}");
            for &(t, f) in &all {
                // Long keys all share one packing (their bytes decide).
                let same = data[s..e] == data[t..f] || (e - s > 15 && f - t > 15);
                assert_eq!(pack(data, s, e) == pack(data, t, f), same, "{s}..{e} vs {t}..{f}");
            }
        }
        assert_eq!(pack(data, 0, 16), LONG);
        assert_ne!(pack(b"a\0", 0, 1), pack(b"a\0", 0, 2), "a trailing NUL is part of the key");
    }

    #[test]
    fn long_keys_compare_their_bytes() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            "a key longer than fifteen bytes",
            "a key longer than fifteen bytez",
            "a key longer than fifteen bytes",
            "short",
        ]));
        check(&[a], &[1, 2, 1, 3], &[0, 1, 3]);
    }

    #[test]
    fn integers_group_by_value() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(7), Some(-1), None, Some(7)]));
        check(&[a], &[1, 2, 0, 1], &[0, 1]);
    }

    #[test]
    fn several_keys_and_booleans_group_by_their_row_encoding() {
        let city: ArrayRef =
            Arc::new(StringArray::from(vec![Some("x"), Some("x"), Some("y"), Some("x"), None]));
        let flag: ArrayRef = Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            Some(true),
            Some(true),
            Some(true),
        ]));
        check(&[city.clone(), flag.clone()], &[1, 2, 3, 1, 0], &[0, 1, 2]);
        check(std::slice::from_ref(&flag), &[1, 2, 1, 1, 1], &[0, 1]);
        // A null in either key drops the row, as pandas' dropna does.
        let flag_null: ArrayRef =
            Arc::new(BooleanArray::from(vec![None, Some(false), None, None, None]));
        check(&[city, flag_null], &[0, 1, 0, 0, 0], &[1]);
    }

    #[test]
    fn many_groups_survive_the_table_growing() {
        let a: ArrayRef =
            Arc::new(StringArray::from_iter_values((0..10_000).map(|i| format!("k{}", i % 3000))));
        let g = group(&[a]).unwrap();
        assert_eq!(g.first.len(), 3000);
        assert!(g.slots.iter().enumerate().all(|(i, &s)| s as usize == i % 3000 + 1));
    }
}

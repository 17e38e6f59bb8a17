//! Per-group sums, counts, minima and maxima of a numeric column, given
//! each row's group slot (see [`super::group::Groups`]). Slot 0 collects
//! the rows with a null key and is dropped from every result.
//!
//! Missing values are skipped as pandas skips them: nulls always, and NaN
//! too when `skip_nan` (reading user data; the partial states that combine
//! steps merge hold no NaN but a sum that overflowed to one).

use arrow::array::{Array, ArrayRef, ArrowPrimitiveType, AsArray, Int64Array, PrimitiveArray};
use arrow::buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowNativeTypeOp, DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::error::ArrowError;
use std::sync::Arc;

/// A column type that groups can be aggregated over.
pub(super) trait Numeric: ArrowPrimitiveType {
    /// The type of its sums: 64-bit of the same kind, as pandas sums.
    type Sum: ArrowPrimitiveType;
    /// Whether values can be NaN.
    const FLOAT: bool;
    fn widen(v: Self::Native) -> <Self::Sum as ArrowPrimitiveType>::Native;
    fn is_nan(v: Self::Native) -> bool;
}

macro_rules! numeric {
    ($($t:ty => $sum:ty, $float:expr;)*) => {$(
        impl Numeric for $t {
            type Sum = $sum;
            const FLOAT: bool = $float;
            #[inline]
            fn widen(v: Self::Native) -> <$sum as ArrowPrimitiveType>::Native {
                v.into()
            }
            #[inline]
            #[allow(clippy::float_cmp, clippy::eq_op)]
            fn is_nan(v: Self::Native) -> bool {
                // Only NaN differs from itself; integers never do.
                v != v
            }
        }
    )*};
}

numeric! {
    Int8Type => Int64Type, false;
    Int16Type => Int64Type, false;
    Int32Type => Int64Type, false;
    Int64Type => Int64Type, false;
    UInt8Type => UInt64Type, false;
    UInt16Type => UInt64Type, false;
    UInt32Type => UInt64Type, false;
    UInt64Type => UInt64Type, false;
    Float32Type => Float64Type, true;
    Float64Type => Float64Type, true;
}

/// Runs `$body` with `$t` the arrow type of `$dt` when it is [`Numeric`],
/// else evaluates `$other`.
macro_rules! with_numeric {
    ($dt:expr, $t:ident => $body:expr, $other:expr) => {
        match $dt {
            DataType::Int8 => {
                type $t = Int8Type;
                $body
            }
            DataType::Int16 => {
                type $t = Int16Type;
                $body
            }
            DataType::Int32 => {
                type $t = Int32Type;
                $body
            }
            DataType::Int64 => {
                type $t = Int64Type;
                $body
            }
            DataType::UInt8 => {
                type $t = UInt8Type;
                $body
            }
            DataType::UInt16 => {
                type $t = UInt16Type;
                $body
            }
            DataType::UInt32 => {
                type $t = UInt32Type;
                $body
            }
            DataType::UInt64 => {
                type $t = UInt64Type;
                $body
            }
            DataType::Float32 => {
                type $t = Float32Type;
                $body
            }
            DataType::Float64 => {
                type $t = Float64Type;
                $body
            }
            _ => $other,
        }
    };
}

/// The type of the per-group sums of a column of `data_type`, or `None`
/// when groups cannot be aggregated over such a column.
pub(super) fn sum_type(data_type: &DataType) -> Option<DataType> {
    with_numeric!(data_type, T => Some(<T as Numeric>::Sum::DATA_TYPE), None)
}

fn not_numeric(a: &dyn Array) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("cannot aggregate a column of type {}", a.data_type()))
}

/// Drops slot 0 from per-slot accumulators, without copying.
fn groups_of<T: ArrowPrimitiveType>(acc: Vec<T::Native>, nulls: Option<NullBuffer>) -> ArrayRef {
    let len = acc.len() - 1;
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::new(Buffer::from_vec(acc), 1, len), nulls))
}

/// Calls `f(slot, value)` for every row whose value is present.
#[inline(always)]
fn each<T: Numeric>(
    a: &PrimitiveArray<T>,
    slots: &[u32],
    skip_nan: bool,
    mut f: impl FnMut(usize, T::Native),
) {
    let values = &a.values()[..slots.len()];
    match a.nulls().filter(|n| n.null_count() > 0) {
        None if !(T::FLOAT && skip_nan) => {
            for (&s, &v) in slots.iter().zip(values) {
                f(s as usize, v);
            }
        }
        None => {
            for (&s, &v) in slots.iter().zip(values) {
                if !T::is_nan(v) {
                    f(s as usize, v);
                }
            }
        }
        Some(nulls) => {
            for i in nulls.valid_indices() {
                let v = values[i];
                if !(T::FLOAT && skip_nan && T::is_nan(v)) {
                    f(slots[i] as usize, v);
                }
            }
        }
    }
}

fn sum_of<T: Numeric>(
    a: &PrimitiveArray<T>,
    slots: &[u32],
    nslots: usize,
    skip_nan: bool,
) -> ArrayRef {
    let mut acc = vec![<T::Sum as ArrowPrimitiveType>::Native::default(); nslots];
    each(a, slots, skip_nan, |s, v| acc[s] = acc[s].add_wrapping(T::widen(v)));
    groups_of::<T::Sum>(acc, None)
}

fn count_of<T: Numeric>(
    a: &PrimitiveArray<T>,
    slots: &[u32],
    nslots: usize,
    skip_nan: bool,
) -> ArrayRef {
    let mut acc = vec![0i64; nslots];
    each(a, slots, skip_nan, |s, _| acc[s] += 1);
    groups_of::<Int64Type>(acc, None)
}

fn extreme_of<T: Numeric>(
    a: &PrimitiveArray<T>,
    slots: &[u32],
    nslots: usize,
    skip_nan: bool,
    better: impl Fn(T::Native, T::Native) -> bool,
) -> ArrayRef {
    let mut acc = vec![T::Native::default(); nslots];
    let mut seen = vec![false; nslots];
    each(a, slots, skip_nan, |s, v| {
        if !seen[s] || better(v, acc[s]) {
            acc[s] = v;
            seen[s] = true;
        }
    });
    let nulls = seen[1..].contains(&false).then(|| NullBuffer::from(&seen[1..]));
    groups_of::<T>(acc, nulls)
}

/// The per-group sums of `a` (0 for a group without values, as pandas).
pub(super) fn sum(
    a: &dyn Array,
    slots: &[u32],
    nslots: usize,
    skip_nan: bool,
) -> Result<ArrayRef, ArrowError> {
    with_numeric!(a.data_type(), T => Ok(sum_of(a.as_primitive::<T>(), slots, nslots, skip_nan)), Err(not_numeric(a)))
}

/// The per-group counts of the values of `a` that are present.
pub(super) fn count(
    a: &dyn Array,
    slots: &[u32],
    nslots: usize,
    skip_nan: bool,
) -> Result<ArrayRef, ArrowError> {
    with_numeric!(a.data_type(), T => Ok(count_of(a.as_primitive::<T>(), slots, nslots, skip_nan)), Err(not_numeric(a)))
}

/// The per-group minima of `a` (null for a group without values).
pub(super) fn min(
    a: &dyn Array,
    slots: &[u32],
    nslots: usize,
    skip_nan: bool,
) -> Result<ArrayRef, ArrowError> {
    with_numeric!(
        a.data_type(),
        T => Ok(extreme_of(a.as_primitive::<T>(), slots, nslots, skip_nan, |v, m| v.is_lt(m))),
        Err(not_numeric(a))
    )
}

/// The per-group maxima of `a` (null for a group without values).
pub(super) fn max(
    a: &dyn Array,
    slots: &[u32],
    nslots: usize,
    skip_nan: bool,
) -> Result<ArrayRef, ArrowError> {
    with_numeric!(
        a.data_type(),
        T => Ok(extreme_of(a.as_primitive::<T>(), slots, nslots, skip_nan, |v, m| v.is_gt(m))),
        Err(not_numeric(a))
    )
}

/// `sum / count` per group as float64, null where the count is 0.
pub(super) fn mean(sum: &dyn Array, count: &dyn Array) -> Result<ArrayRef, ArrowError> {
    let sum = arrow::compute::cast(sum, &DataType::Float64)?;
    let count: &Int64Array = count
        .as_primitive_opt()
        .ok_or_else(|| ArrowError::InvalidArgumentError("partial counts must be int64".into()))?;
    let means = sum
        .as_primitive::<Float64Type>()
        .values()
        .iter()
        .zip(count.values())
        .map(|(&s, &c)| (c > 0).then(|| s / c as f64));
    Ok(Arc::new(PrimitiveArray::<Float64Type>::from_iter(means)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int32Array, UInt8Array};

    // Slots: rows 0 and 3 are group 0, rows 1 and 4 group 1, row 2 has a null key.
    const SLOTS: [u32; 5] = [1, 2, 0, 1, 2];

    #[test]
    fn integer_sums_widen_and_skip_nulls_and_null_keys() {
        let a = Int32Array::from(vec![Some(i32::MAX), None, Some(100), Some(1), Some(-4)]);
        let s = sum(&a, &SLOTS, 3, true).unwrap();
        assert_eq!(s.as_primitive::<Int64Type>().values(), &[i64::from(i32::MAX) + 1, -4]);
        let c = count(&a, &SLOTS, 3, true).unwrap();
        assert_eq!(c.as_primitive::<Int64Type>().values(), &[2, 1]);
        let u = UInt8Array::from(vec![200, 200, 1, 200, 1]);
        assert_eq!(
            sum(&u, &SLOTS, 3, true).unwrap().as_primitive::<UInt64Type>().values(),
            &[400, 201]
        );
    }

    #[test]
    fn float_nan_is_skipped_when_reading_data_only() {
        let a = Float64Array::from(vec![Some(f64::NAN), Some(2.0), Some(9.0), Some(1.5), None]);
        let s = sum(&a, &SLOTS, 3, true).unwrap();
        assert_eq!(s.as_primitive::<Float64Type>().values(), &[1.5, 2.0]);
        assert_eq!(
            count(&a, &SLOTS, 3, true).unwrap().as_primitive::<Int64Type>().values(),
            &[1, 1]
        );
        assert!(sum(&a, &SLOTS, 3, false).unwrap().as_primitive::<Float64Type>().value(0).is_nan());
    }

    #[test]
    fn extremes_are_null_for_groups_without_values() {
        let a = Int32Array::from(vec![Some(5), None, Some(-100), Some(-2), None]);
        let lo = min(&a, &SLOTS, 3, true).unwrap();
        let hi = max(&a, &SLOTS, 3, true).unwrap();
        assert_eq!(lo.as_primitive::<Int32Type>().iter().collect::<Vec<_>>(), [Some(-2), None]);
        assert_eq!(hi.as_primitive::<Int32Type>().iter().collect::<Vec<_>>(), [Some(5), None]);
        let full = Int32Array::from(vec![5, 7, 0, -2, 9]);
        assert_eq!(max(&full, &SLOTS, 3, true).unwrap().null_count(), 0);
    }

    #[test]
    fn means_divide_and_are_null_without_values() {
        let m = mean(&Int64Array::from(vec![7, 0]), &Int64Array::from(vec![2, 0])).unwrap();
        assert_eq!(m.as_primitive::<Float64Type>().iter().collect::<Vec<_>>(), [Some(3.5), None]);
    }

    #[test]
    fn other_types_are_errors() {
        let s = arrow::array::StringArray::from(vec!["a"; 5]);
        assert!(sum(&s, &SLOTS, 3, true).is_err());
        assert_eq!(sum_type(&DataType::Utf8), None);
        assert_eq!(sum_type(&DataType::UInt16), Some(DataType::UInt64));
        assert_eq!(sum_type(&DataType::Float32), Some(DataType::Float64));
    }
}

//! [`NdArray`]: one chunk of an [`super::Array`] (and what computing a whole
//! `Array` gives), an `ndarray::ArrayD` that crosses processes as its raw
//! little-endian elements behind a small header; and [`Element`], the
//! element types an `Array` can hold.
//!
//! On the wire a chunk is a msgpack array of two `bin`s: the header (dtype
//! code, number of axes, each axis length as a little-endian `u64`) and the
//! elements in row-major order. Encoding a contiguous chunk writes its
//! memory as is; decoding is one copy into a new aligned buffer, after
//! checking the dtype and that the byte length matches the shape.

use ndarray::{ArrayD, ArrayView2, ArrayViewMut2, IxDyn, Zip};
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

mod sealed {
    /// Keeps [`super::Element`] to the types this crate implements it for.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

/// Why bytes are not a chunk.
///
/// ```
/// use rudask_collections::array::{CodecError, NdArray};
/// let err = NdArray::<f64>::from_bytes(&[7]).unwrap_err();
/// assert!(matches!(err, CodecError::Truncated { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than the header needs.
    #[error("truncated chunk header: {have} bytes, the header needs {need}")]
    Truncated {
        /// Bytes there are.
        have: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// The chunk holds another element type.
    #[error("expected a chunk of {expected}, found a chunk of {found}")]
    DType {
        /// The type asked for.
        expected: &'static str,
        /// The type in the header.
        found: String,
    },
    /// The element bytes do not match the shape in the header.
    #[error("a chunk of shape {shape:?} and dtype {dtype} needs {expected} bytes of elements, found {found}")]
    Length {
        /// The shape in the header.
        shape: Vec<usize>,
        /// The element type.
        dtype: &'static str,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes there are.
        found: usize,
    },
    /// A byte that is neither 0 nor 1 in a chunk of `bool`.
    #[error("byte {value} at element {index} of a bool chunk is neither 0 nor 1")]
    Bool {
        /// Index of the element.
        index: usize,
        /// Its byte.
        value: u8,
    },
    /// The header or element bytes are malformed otherwise.
    #[error("malformed chunk: {0}")]
    Malformed(String),
}

/// An element type of an [`super::Array`]: `f64`, `f32`, `i64`, `i32` or
/// `bool` (the trait is sealed).
///
/// ```
/// use rudask_collections::array::Element;
/// assert_eq!(<f32 as Element>::DTYPE, "f32");
/// assert!(<bool as Element>::max2(false, true));
/// ```
pub trait Element:
    sealed::Sealed
    + Copy
    + Default
    + PartialEq
    + fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The name of the type (`"f64"`), used in type tags and kernel ids.
    const DTYPE: &'static str;
    /// Its code in chunk headers.
    const CODE: u8;
    /// Size of one element in bytes.
    const SIZE: usize;
    /// The additive identity (`false` for `bool`).
    fn zero() -> Self;
    /// The multiplicative identity (`true` for `bool`).
    fn one() -> Self;
    /// The smaller of two values; a NaN wins (as in numpy).
    fn min2(a: Self, b: Self) -> Self;
    /// The larger of two values; a NaN wins (as in numpy).
    fn max2(a: Self, b: Self) -> Self;
    /// The elements' little-endian bytes (borrowed on little-endian hosts).
    fn le_bytes(data: &[Self]) -> Cow<'_, [u8]>;
    /// Elements from little-endian bytes (`raw.len()` is a multiple of
    /// [`Element::SIZE`]).
    fn from_le_bytes(raw: &[u8]) -> Result<Vec<Self>, CodecError>;
}

/// A numeric [`Element`] (every one but `bool`): arithmetic, sums and
/// means. Integers wrap on overflow (as numpy's do); integer division by
/// zero is an error, not a panic.
///
/// ```
/// use rudask_collections::array::Number;
/// assert_eq!(<i32 as Number>::add(i32::MAX, 1), i32::MIN);
/// assert_eq!(<i64 as Number>::div(1, 0), None);
/// assert_eq!(<f64 as Number>::div(1.0, 0.0), Some(f64::INFINITY));
/// ```
pub trait Number: Element {
    /// `a + b`.
    fn add(a: Self, b: Self) -> Self;
    /// `a - b`.
    fn sub(a: Self, b: Self) -> Self;
    /// `a * b`.
    fn mul(a: Self, b: Self) -> Self;
    /// `a / b`; `None` for an integer division by zero or overflow.
    fn div(a: Self, b: Self) -> Option<Self>;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// The value of the integer `i` (for `arange`).
    fn from_index(i: usize) -> Self;
    /// `c += a · b` for matrices of matching shapes.
    fn matmul_acc(
        c: &mut ArrayViewMut2<'_, Self>,
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
    );
}

macro_rules! numeric_bytes {
    ($t:ty) => {
        fn le_bytes(data: &[Self]) -> Cow<'_, [u8]> {
            if cfg!(target_endian = "little") {
                Cow::Borrowed(zerocopy::IntoBytes::as_bytes(data))
            } else {
                Cow::Owned(data.iter().flat_map(|x| x.to_le_bytes()).collect())
            }
        }
        fn from_le_bytes(raw: &[u8]) -> Result<Vec<Self>, CodecError> {
            // A zeroed vector is fresh pages from the allocator, so this is
            // one copy of the bytes.
            let mut v: Vec<$t> = vec![0 as $t; raw.len() / Self::SIZE];
            if cfg!(target_endian = "little") {
                zerocopy::IntoBytes::as_mut_bytes(v.as_mut_slice()).copy_from_slice(raw);
            } else {
                for (x, c) in v.iter_mut().zip(raw.chunks_exact(Self::SIZE)) {
                    *x = <$t>::from_le_bytes(c.try_into().expect("exact chunk"));
                }
            }
            Ok(v)
        }
    };
}

macro_rules! float {
    ($t:ident, $code:expr) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: &'static str = stringify!($t);
            const CODE: u8 = $code;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn zero() -> Self {
                0.0
            }
            fn one() -> Self {
                1.0
            }
            fn min2(a: Self, b: Self) -> Self {
                if a.is_nan() || a <= b {
                    a
                } else {
                    b
                }
            }
            fn max2(a: Self, b: Self) -> Self {
                if a.is_nan() || a >= b {
                    a
                } else {
                    b
                }
            }
            numeric_bytes!($t);
        }
        impl Number for $t {
            fn add(a: Self, b: Self) -> Self {
                a + b
            }
            fn sub(a: Self, b: Self) -> Self {
                a - b
            }
            fn mul(a: Self, b: Self) -> Self {
                a * b
            }
            fn div(a: Self, b: Self) -> Option<Self> {
                Some(a / b)
            }
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            fn from_index(i: usize) -> Self {
                i as $t
            }
            fn matmul_acc(
                c: &mut ArrayViewMut2<'_, Self>,
                a: &ArrayView2<'_, Self>,
                b: &ArrayView2<'_, Self>,
            ) {
                ndarray::linalg::general_mat_mul(1.0, a, b, 1.0, c);
            }
        }
    };
}

macro_rules! integer {
    ($t:ident, $code:expr) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: &'static str = stringify!($t);
            const CODE: u8 = $code;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn zero() -> Self {
                0
            }
            fn one() -> Self {
                1
            }
            fn min2(a: Self, b: Self) -> Self {
                a.min(b)
            }
            fn max2(a: Self, b: Self) -> Self {
                a.max(b)
            }
            numeric_bytes!($t);
        }
        impl Number for $t {
            fn add(a: Self, b: Self) -> Self {
                a.wrapping_add(b)
            }
            fn sub(a: Self, b: Self) -> Self {
                a.wrapping_sub(b)
            }
            fn mul(a: Self, b: Self) -> Self {
                a.wrapping_mul(b)
            }
            fn div(a: Self, b: Self) -> Option<Self> {
                a.checked_div(b)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_index(i: usize) -> Self {
                i as $t
            }
            fn matmul_acc(
                c: &mut ArrayViewMut2<'_, Self>,
                a: &ArrayView2<'_, Self>,
                b: &ArrayView2<'_, Self>,
            ) {
                // ndarray's generic product overflows with a panic in debug
                // builds; integers wrap here, row by row (i-k-j order).
                for (mut c_row, a_row) in c.rows_mut().into_iter().zip(a.rows()) {
                    for (&aik, b_row) in a_row.iter().zip(b.rows()) {
                        Zip::from(&mut c_row)
                            .and(&b_row)
                            .for_each(|c, &b| *c = c.wrapping_add(aik.wrapping_mul(b)));
                    }
                }
            }
        }
    };
}

float!(f64, 1);
float!(f32, 2);
integer!(i64, 3);
integer!(i32, 4);

impl sealed::Sealed for bool {}
impl Element for bool {
    const DTYPE: &'static str = "bool";
    const CODE: u8 = 5;
    const SIZE: usize = 1;
    fn zero() -> Self {
        false
    }
    fn one() -> Self {
        true
    }
    fn min2(a: Self, b: Self) -> Self {
        a & b
    }
    fn max2(a: Self, b: Self) -> Self {
        a | b
    }
    fn le_bytes(data: &[Self]) -> Cow<'_, [u8]> {
        Cow::Borrowed(zerocopy::IntoBytes::as_bytes(data))
    }
    fn from_le_bytes(raw: &[u8]) -> Result<Vec<Self>, CodecError> {
        if let Some(index) = raw.iter().position(|&b| b > 1) {
            return Err(CodecError::Bool { index, value: raw[index] });
        }
        Ok(raw.iter().map(|&b| b == 1).collect())
    }
}

/// The name of the dtype with header code `code`.
fn dtype_name(code: u8) -> String {
    match code {
        1 => "f64".into(),
        2 => "f32".into(),
        3 => "i64".into(),
        4 => "i32".into(),
        5 => "bool".into(),
        c => format!("an unknown dtype (code {c})"),
    }
}

/// An n-dimensional array of an [`super::Array`]: one chunk (the argument
/// and result type of `map_blocks` tasks), or the whole array that
/// computing an `Array` gives. It derefs to the `ndarray::ArrayD`; clones
/// share it.
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use rudask_collections::array::NdArray;
/// let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), (0..6).map(f64::from).collect()).unwrap();
/// let chunk = NdArray::from(a.clone());
/// assert_eq!(chunk.shape(), &[2, 3]);
/// let back = NdArray::<f64>::from_bytes(&chunk.to_bytes()).unwrap();
/// assert_eq!(back.into_inner(), a);
/// ```
#[derive(Clone, PartialEq)]
pub struct NdArray<T: Element>(Arc<ArrayD<T>>);

impl<T: Element> NdArray<T> {
    /// Wraps an array.
    pub fn new(a: ArrayD<T>) -> Self {
        NdArray(Arc::new(a))
    }

    /// The array (copied only if a clone of this still shares it).
    pub fn into_inner(self) -> ArrayD<T> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| ArrayD::clone(&shared))
    }

    /// The shared array (kernels update it in place when nothing else
    /// holds it).
    pub(crate) fn into_arc(self) -> Arc<ArrayD<T>> {
        self.0
    }

    /// The header: dtype code, number of axes, axis lengths.
    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(2 + 8 * self.0.ndim());
        h.push(T::CODE);
        h.push(self.0.ndim() as u8);
        for &d in self.0.shape() {
            h.extend_from_slice(&(d as u64).to_le_bytes());
        }
        h
    }

    /// The elements in row-major order as little-endian bytes, borrowed
    /// when the array is contiguous in that order.
    fn element_bytes(&self) -> Cow<'_, [u8]> {
        match self.0.as_slice() {
            Some(s) => T::le_bytes(s),
            None => {
                let v: Vec<T> = self.0.iter().copied().collect();
                Cow::Owned(T::le_bytes(&v).into_owned())
            }
        }
    }

    /// Header and elements as one buffer (the same bytes as on the wire,
    /// without the msgpack framing).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.element_bytes());
        out
    }

    /// Reads what [`NdArray::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let shape = parse_header::<T>(bytes)?;
        Self::from_parts(shape.clone(), &bytes[2 + 8 * shape.len()..])
    }

    /// A chunk of `shape` from its element bytes, after checking that
    /// their length matches.
    fn from_parts(shape: Vec<usize>, raw: &[u8]) -> Result<Self, CodecError> {
        let expected =
            shape.iter().try_fold(T::SIZE, |n, &d| n.checked_mul(d)).ok_or_else(|| {
                CodecError::Malformed(format!("shape {shape:?} overflows the address space"))
            })?;
        if raw.len() != expected {
            return Err(CodecError::Length { shape, dtype: T::DTYPE, expected, found: raw.len() });
        }
        let data = T::from_le_bytes(raw)?;
        ArrayD::from_shape_vec(IxDyn(&shape), data)
            .map(NdArray::new)
            .map_err(|e| CodecError::Malformed(e.to_string()))
    }
}

/// The shape in a header, after checking its dtype and length.
fn parse_header<T: Element>(h: &[u8]) -> Result<Vec<usize>, CodecError> {
    if h.len() < 2 {
        return Err(CodecError::Truncated { have: h.len(), need: 2 });
    }
    if h[0] != T::CODE {
        return Err(CodecError::DType { expected: T::DTYPE, found: dtype_name(h[0]) });
    }
    let ndim = usize::from(h[1]);
    let need = 2 + 8 * ndim;
    if h.len() < need {
        return Err(CodecError::Truncated { have: h.len(), need });
    }
    h[2..need]
        .chunks_exact(8)
        .map(|c| {
            let d = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            usize::try_from(d)
                .map_err(|_| CodecError::Malformed(format!("axis length {d} is too large")))
        })
        .collect()
}

impl<T: Element> Deref for NdArray<T> {
    type Target = ArrayD<T>;
    fn deref(&self) -> &ArrayD<T> {
        &self.0
    }
}

impl<T: Element> From<ArrayD<T>> for NdArray<T> {
    fn from(a: ArrayD<T>) -> Self {
        NdArray::new(a)
    }
}

impl<T: Element> From<NdArray<T>> for ArrayD<T> {
    fn from(a: NdArray<T>) -> Self {
        a.into_inner()
    }
}

impl<T: Element> fmt::Debug for NdArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NdArray<{}>{:?}", T::DTYPE, self.0.shape())
    }
}

/// Bytes written as a msgpack `bin`.
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<T: Element> Serialize for NdArray<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.ndim() > usize::from(u8::MAX) {
            return Err(serde::ser::Error::custom("a chunk has at most 255 axes"));
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&Bin(&self.header()))?;
        t.serialize_element(&Bin(&self.element_bytes()))?;
        t.end()
    }
}

/// Bytes borrowed from the input when the deserializer can, owned
/// otherwise.
struct CowBytes<'de>(Cow<'de, [u8]>);

impl<'de> Deserialize<'de> for CowBytes<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowBytes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(CowBytes(Cow::Borrowed(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(CowBytes(Cow::Owned(v.to_vec())))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                Ok(CowBytes(Cow::Owned(v)))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl<'de, T: Element> Deserialize<'de> for NdArray<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Element> Visitor<'de> for V<T> {
            type Value = NdArray<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a chunk of {} (header and element bytes)", T::DTYPE)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NdArray<T>, A::Error> {
                let missing = || de::Error::custom("a chunk is a header and element bytes");
                let header: CowBytes<'de> = seq.next_element()?.ok_or_else(missing)?;
                let raw: CowBytes<'de> = seq.next_element()?.ok_or_else(missing)?;
                let shape = parse_header::<T>(&header.0).map_err(de::Error::custom)?;
                if header.0.len() != 2 + 8 * shape.len() {
                    return Err(de::Error::custom(CodecError::Malformed(format!(
                        "a header of {} axes has {} bytes",
                        shape.len(),
                        header.0.len()
                    ))));
                }
                NdArray::from_parts(shape, &raw.0).map_err(de::Error::custom)
            }
        }
        d.deserialize_tuple(2, V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rudask::core::registry::{decode, encode};
    use rudask::core::Payload;

    fn round_trip<T: Element>(a: ArrayD<T>) {
        let chunk = NdArray::new(a.clone());
        let p = encode(&chunk).unwrap();
        let back: NdArray<T> = decode(&p).unwrap();
        assert_eq!(back.into_inner(), a);
        assert_eq!(NdArray::<T>::from_bytes(&chunk.to_bytes()).unwrap().into_inner(), a);
    }

    #[test]
    fn chunks_of_every_dtype_round_trip_through_the_task_codec() {
        let shape = IxDyn(&[3, 4]);
        round_trip(ArrayD::from_shape_fn(shape.clone(), |i| i[0] as f64 * 1.5 - i[1] as f64));
        round_trip(ArrayD::from_shape_fn(shape.clone(), |i| i[0] as f32 / 3.0));
        round_trip(ArrayD::from_shape_fn(shape.clone(), |i| i64::MIN + (i[0] * 4 + i[1]) as i64));
        round_trip(ArrayD::from_shape_fn(shape.clone(), |i| -(i[1] as i32)));
        round_trip(ArrayD::from_shape_fn(shape, |i| (i[0] + i[1]) % 2 == 0));
        round_trip(ArrayD::<f64>::zeros(IxDyn(&[0, 5])));
        round_trip(ArrayD::from_elem(IxDyn(&[]), 7i64));
    }

    #[test]
    fn non_contiguous_chunks_encode_in_row_major_order() {
        let a = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (i[0] * 3 + i[1]) as i32);
        let t = a.clone().reversed_axes();
        assert!(t.as_slice().is_none());
        let back: NdArray<i32> = decode(&encode(&NdArray::new(t.clone())).unwrap()).unwrap();
        assert_eq!(back.into_inner(), t);
    }

    #[test]
    fn truncated_or_garbage_bytes_are_errors_not_panics() {
        let bytes = NdArray::new(ArrayD::from_elem(IxDyn(&[2, 2]), 1.0f64)).to_bytes();
        for cut in 0..bytes.len() {
            assert!(NdArray::<f64>::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            NdArray::<f64>::from_bytes(&longer),
            Err(CodecError::Length { expected: 32, found: 33, .. })
        ));
        let err = NdArray::<i32>::from_bytes(&bytes).unwrap_err();
        assert_eq!(err.to_string(), "expected a chunk of i32, found a chunk of f64");
        let mut huge = vec![1u8, 2];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(NdArray::<f64>::from_bytes(&huge).is_err());
        assert!(matches!(
            NdArray::<bool>::from_bytes(&[5, 1, 1, 0, 0, 0, 0, 0, 0, 0, 7]),
            Err(CodecError::Bool { index: 0, value: 7 })
        ));
        assert!(NdArray::<f64>::from_bytes(&[99, 0])
            .unwrap_err()
            .to_string()
            .contains("unknown dtype"));
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        let p = encode(&"text".to_string()).unwrap();
        assert!(decode::<NdArray<f64>>(&p).is_err());
        let p = encode(&(vec![1u8, 1, 9], vec![0u8; 3])).unwrap();
        assert!(decode::<NdArray<f64>>(&p).is_err());
        let mut wire = encode(&NdArray::new(ArrayD::from_elem(IxDyn(&[4]), 2.0f32)))
            .unwrap()
            .encoded()
            .unwrap()
            .to_vec();
        wire.truncate(wire.len() - 3);
        assert!(decode::<NdArray<f32>>(&Payload::from(wire)).is_err());
    }
}

/// Registers the in-memory size of chunks of each element type, so a worker
/// reports a held chunk's real size.
macro_rules! chunk_sizes {
    ($($t:ty),*) => {
        $(
            inventory::submit! {
                rudask::core::registry::SizeOf {
                    type_id: std::any::TypeId::of::<NdArray<$t>>,
                    size: |v| v.downcast_ref::<NdArray<$t>>().map(|c| c.len() * std::mem::size_of::<$t>()),
                }
            }
        )*
    };
}
chunk_sizes!(f64, f32, i64, i32, bool);

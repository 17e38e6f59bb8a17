//! The value codec: how task arguments and results become bytes.
//!
//! Values are msgpack, except vectors of primitive numbers, which are the
//! bulk of large payloads: they are written as one msgpack `ext` holding the
//! raw little-endian elements (a type tag tells which primitive), so a 200 MB
//! `Vec<f64>` costs one pass instead of 25 million msgpack items. `Vec<u8>`
//! is a plain msgpack `bin`. Decoding a fast-path vector also accepts the
//! ordinary msgpack array form, and a vector of another element type is a
//! clear error naming both types.

use crate::protocol::{Object, Payload};
use bytes::{BufMut, Bytes};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};

/// msgpack `ext 32` marker.
const EXT32: u8 = 0xc9;

macro_rules! primitives {
    ($($t:ty => $tag:expr),* $(,)?) => {
        fn encode_fast(v: &dyn Any) -> Option<Payload> {
            $(
                if let Some(v) = v.downcast_ref::<Vec<$t>>() {
                    let width = std::mem::size_of::<$t>();
                    let mut out = crate::mem::bytes_with_capacity(6 + v.len() * width);
                    out.put_u8(EXT32);
                    out.put_u32((v.len() * width) as u32);
                    out.put_i8($tag);
                    out.resize(6 + v.len() * width, 0);
                    for (chunk, x) in out[6..].chunks_exact_mut(width).zip(v) {
                        chunk.copy_from_slice(&x.to_le_bytes());
                    }
                    return Some(Payload::from(out.freeze()));
                }
            )*
            if let Some(v) = v.downcast_ref::<Vec<u8>>() {
                let mut out = crate::mem::bytes_with_capacity(5 + v.len());
                out.put_u8(0xc6);
                out.put_u32(v.len() as u32);
                out.put_slice(v);
                return Some(Payload::from(out.freeze()));
            }
            None
        }

        /// Size of a primitive vector's elements, if `v` is one.
        fn vector_bytes(v: &dyn Any) -> Option<usize> {
            $(
                if let Some(v) = v.downcast_ref::<Vec<$t>>() {
                    return Some(v.len() * std::mem::size_of::<$t>());
                }
            )*
            v.downcast_ref::<Vec<u8>>().map(Vec::len)
        }

        fn tag_name(tag: i8) -> &'static str {
            match tag {
                $($tag => stringify!($t),)*
                _ => "an unknown type",
            }
        }

        fn decode_fast<T: Any>(p: &Bytes) -> Option<Result<T, String>> {
            let t = TypeId::of::<T>();
            $(
                if t == TypeId::of::<Vec<$t>>() {
                    let raw = ext_body(p, $tag, stringify!($t))?;
                    let v: Result<Vec<$t>, String> = raw.map(|raw| {
                        let mut v = crate::mem::vec_with_capacity(raw.len() / std::mem::size_of::<$t>());
                        v.extend(
                            raw.chunks_exact(std::mem::size_of::<$t>())
                                .map(|c| <$t>::from_le_bytes(c.try_into().expect("exact chunk"))),
                        );
                        v
                    });
                    return Some(v.map(|v| *(Box::new(v) as Box<dyn Any>).downcast::<T>().expect("same type")));
                }
            )*
            None
        }
    };
}

primitives! { f64 => 1, f32 => 2, i64 => 3, i32 => 4, u64 => 5, u32 => 6, i16 => 7, u16 => 8, i8 => 9 }

/// The body of a fast-path ext of element type `tag`; `None` if the payload
/// is not an ext at all (then it is an ordinary msgpack value).
fn ext_body<'a>(p: &'a Bytes, tag: i8, name: &str) -> Option<Result<&'a [u8], String>> {
    if p.first() != Some(&EXT32) {
        return None;
    }
    if p.len() < 6 {
        return Some(Err("truncated vector payload".into()));
    }
    let len = u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as usize;
    let found = p[5] as i8;
    if found != tag {
        return Some(Err(format!(
            "expected a vector of {name}, found a vector of {}",
            tag_name(found)
        )));
    }
    let body = &p[6..];
    if body.len() != len {
        return Some(Err(format!("vector payload says {len} bytes but has {}", body.len())));
    }
    Some(Ok(body))
}

/// Encodes a value the way task arguments and results are encoded.
///
/// ```
/// let p = rudask_core::registry::encode(&vec![1.5f64, 2.5]).unwrap();
/// let v: Vec<f64> = rudask_core::registry::decode(&p).unwrap();
/// assert_eq!(v, vec![1.5, 2.5]);
/// ```
pub fn encode<T: Serialize + Any>(v: &T) -> Result<Payload, String> {
    match encode_fast(v) {
        Some(p) => Ok(p),
        None => encode_serde(v),
    }
}

/// Encodes with plain msgpack, for values that are not `'static` types.
pub fn encode_serde<T: Serialize + ?Sized>(v: &T) -> Result<Payload, String> {
    rmp_serde::to_vec(v).map(Payload::from).map_err(|e| e.to_string())
}

/// Decodes a value encoded by [`encode`], or clones it out of an in-memory
/// payload made by [`hold`].
///
/// ```
/// let p = rudask_core::registry::encode(&vec![1i64, 2]).unwrap();
/// let wrong: Result<Vec<f64>, String> = rudask_core::registry::decode(&p);
/// assert!(wrong.unwrap_err().contains("found a vector of i64"));
/// ```
pub fn decode<T: DeserializeOwned + Clone + Any>(p: &Payload) -> Result<T, String> {
    if let Some(o) = p.as_object() {
        if let Some(held) = o.as_any().downcast_ref::<Held<T>>() {
            return Ok(held.value.clone());
        }
        // Another type: decode its encoding, which reports the mismatch.
        return decode_bytes(&o.encode()?);
    }
    decode_bytes(p.as_bytes().expect("not an object"))
}

fn decode_bytes<T: DeserializeOwned + Any>(p: &Bytes) -> Result<T, String> {
    if let Some(r) = decode_fast::<T>(p) {
        return r;
    }
    if p.first() == Some(&EXT32) {
        let tag = p.get(5).map_or(0, |&t| t as i8);
        return Err(format!(
            "found a vector of {}, not a {}",
            tag_name(tag),
            std::any::type_name::<T>()
        ));
    }
    let previous = DECODING.with(|d| d.replace(Some(p.clone())));
    let r = rmp_serde::from_slice(p).map_err(|e| e.to_string());
    DECODING.with(|d| d.replace(previous));
    r
}

thread_local! {
    /// The buffer being decoded by [`decode`] on this thread, so that
    /// [`shared_bytes`] can hand out slices of it instead of copies.
    static DECODING: std::cell::RefCell<Option<Bytes>> = const { std::cell::RefCell::new(None) };
}

/// `slice` as [`Bytes`]: a zero-copy slice of the buffer being decoded when
/// `slice` lies inside it (as the bytes a `Deserialize` impl borrows with
/// `visit_borrowed_bytes` do), a copy otherwise. Large values such as Arrow
/// IPC partitions use it to keep their buffers in the received frame.
///
/// ```
/// let p = rudask_core::registry::encode(&"not borrowed".to_string()).unwrap();
/// let b = rudask_core::registry::shared_bytes(b"abc");
/// assert_eq!(&b[..], b"abc");
/// # drop(p);
/// ```
pub fn shared_bytes(slice: &[u8]) -> Bytes {
    DECODING.with(|d| match &*d.borrow() {
        Some(src)
            if src.as_ptr() <= slice.as_ptr()
                && slice.as_ptr() as usize + slice.len() <= src.as_ptr() as usize + src.len() =>
        {
            src.slice_ref(slice)
        }
        _ => Bytes::copy_from_slice(slice),
    })
}

/// A value kept in memory, with its encoding made at most once.
struct Held<T> {
    value: T,
    encoded: OnceLock<Result<Bytes, String>>,
}

impl<T: Serialize + Any + Send + Sync> Object for Held<T> {
    fn encode(&self) -> Result<Bytes, String> {
        self.encoded.get_or_init(|| encode(&self.value).and_then(|p| p.encoded())).clone()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn size_hint(&self) -> usize {
        match self.encoded.get() {
            Some(Ok(b)) => b.len(),
            _ => vector_bytes(&self.value)
                .or_else(|| registered_size(&self.value))
                .unwrap_or(std::mem::size_of::<T>()),
        }
    }

    fn value_type(&self) -> TypeId {
        TypeId::of::<T>()
    }

    fn take_into(self: Arc<Self>, slot: &mut dyn Any) -> Result<(), Arc<dyn Object>> {
        let Some(slot) = slot.downcast_mut::<Option<T>>() else { return Err(self) };
        *slot = Some(Arc::try_unwrap(self).map_err(|held| held as Arc<dyn Object>)?.value);
        Ok(())
    }
}

/// How many bytes a value of one type holds, for types kept in memory
/// whose size the codec cannot see (anything but vectors of primitives):
/// the size a worker reports for a result, which memory accounting and
/// placement use. Register with `inventory::submit!`.
///
/// ```
/// use rudask_core::registry::SizeOf;
/// struct Blob(Vec<u8>);
/// inventory::submit! {
///     SizeOf { type_id: std::any::TypeId::of::<Blob>, size: |v| v.downcast_ref::<Blob>().map(|b| b.0.len()) }
/// }
/// ```
#[derive(Debug)]
pub struct SizeOf {
    /// The type's id.
    pub type_id: fn() -> TypeId,
    /// The size of a value of that type (`None` if `v` is another type).
    pub size: fn(&dyn Any) -> Option<usize>,
}

inventory::collect!(SizeOf);

fn registered_size(v: &dyn Any) -> Option<usize> {
    type Sizes = rustc_hash::FxHashMap<TypeId, fn(&dyn Any) -> Option<usize>>;
    static SIZES: OnceLock<Sizes> = OnceLock::new();
    let sizes = SIZES.get_or_init(|| {
        inventory::iter::<SizeOf>.into_iter().map(|s| ((s.type_id)(), s.size)).collect()
    });
    sizes.get(&v.type_id()).and_then(|size| size(v))
}

/// Keeps a value in memory as a payload; [`decode`] clones it back out and
/// it is encoded only if it has to leave the process.
///
/// ```
/// let p = rudask_core::registry::hold(vec![1.0f64, 2.0]);
/// assert!(p.as_object().is_some());
/// let v: Vec<f64> = rudask_core::registry::decode(&p).unwrap();
/// assert_eq!(v, vec![1.0, 2.0]);
/// ```
pub fn hold<T: Serialize + Any + Send + Sync>(value: T) -> Payload {
    Payload::object(Arc::new(Held { value, encoded: OnceLock::new() }))
}

/// The type of the value `p` holds in memory (see [`hold`]), if it holds one.
///
/// ```
/// let p = rudask_core::registry::hold(7u32);
/// assert_eq!(rudask_core::registry::held_type(&p), Some(std::any::TypeId::of::<u32>()));
/// ```
pub fn held_type(p: &Payload) -> Option<TypeId> {
    p.as_object().map(|o| o.value_type())
}

/// Takes the value of type `T` that `p` holds, without a copy or a decode;
/// gives `p` back when it holds another type, is encoded, or is shared.
///
/// ```
/// let p = rudask_core::registry::hold(String::from("x"));
/// assert_eq!(rudask_core::registry::take_held::<String>(p).unwrap(), "x");
/// let shared = rudask_core::registry::hold(1u8);
/// let _other = shared.clone();
/// assert!(rudask_core::registry::take_held::<u8>(shared).is_err());
/// ```
pub fn take_held<T: Any>(p: Payload) -> Result<T, Payload> {
    let mut slot: Option<T> = None;
    p.into_object()?.take_into(&mut slot).map_err(Payload::object)?;
    slot.ok_or_else(Payload::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<
        T: Serialize + DeserializeOwned + Any + Clone + Send + Sync + PartialEq + std::fmt::Debug,
    >(
        v: T,
    ) {
        let p = encode(&v).unwrap();
        assert_eq!(decode::<T>(&p).unwrap(), v);
        let held = hold(v.clone());
        assert_eq!(decode::<T>(&held).unwrap(), v);
        assert_eq!(held.encoded().unwrap(), p.encoded().unwrap(), "same encoding either way");
    }

    #[test]
    fn values_round_trip() {
        roundtrip(vec![1.0f64, -2.5, f64::MAX]);
        roundtrip(vec![1.0f32, 3.5]);
        roundtrip(vec![i64::MIN, 0, i64::MAX]);
        roundtrip(vec![1i32, -7]);
        roundtrip(vec![0u8, 255, 3]);
        roundtrip(Vec::<f64>::new());
        roundtrip(42i64);
        roundtrip(("a".to_string(), 3u8, vec![1.0f64]));
        roundtrip(Some(vec![2u64]));
    }

    #[test]
    fn plain_msgpack_vectors_still_decode() {
        let p = encode_serde(&vec![1.0f64, 2.0]).unwrap();
        assert_eq!(decode::<Vec<f64>>(&p).unwrap(), vec![1.0, 2.0]);
    }

    #[test]
    fn mismatched_types_are_errors() {
        let p = encode(&vec![1.0f64]).unwrap();
        assert!(decode::<Vec<i64>>(&p)
            .unwrap_err()
            .contains("expected a vector of i64, found a vector of f64"));
        assert!(decode::<String>(&p).unwrap_err().contains("found a vector of f64"));
        let p = encode(&"text".to_string()).unwrap();
        assert!(decode::<i64>(&p).is_err());
    }

    #[test]
    fn held_values_of_another_type_report_the_mismatch() {
        let p = hold(vec![1.0f64]);
        assert!(decode::<Vec<i64>>(&p).unwrap_err().contains("found a vector of f64"));
        assert!(decode::<String>(&hold(3i64)).is_err());
    }

    /// Bytes that decode as slices of the payload they came from.
    #[derive(Clone)]
    struct Shared(Bytes);

    impl<'de> serde::Deserialize<'de> for Shared {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Shared;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Shared, E> {
                    Ok(Shared(shared_bytes(v)))
                }
            }
            d.deserialize_bytes(V)
        }
    }

    #[test]
    fn borrowed_bytes_are_slices_of_the_payload_not_copies() {
        let body = vec![7u8; 10_000];
        let p = encode(&body).unwrap();
        let raw = p.as_bytes().unwrap().clone();
        let got: Shared = decode(&p).unwrap();
        assert_eq!(&got.0[..], &body[..]);
        let inside = raw.as_ptr() <= got.0.as_ptr()
            && got.0.as_ptr() as usize + got.0.len() <= raw.as_ptr() as usize + raw.len();
        assert!(inside, "the decoded bytes point into the payload");
        assert_eq!(&shared_bytes(b"outside")[..], b"outside", "outside a decode it copies");
    }

    #[test]
    fn truncated_vectors_are_errors() {
        let mut p = encode(&vec![1.0f64, 2.0]).unwrap().encoded().unwrap().to_vec();
        p.pop();
        assert!(decode::<Vec<f64>>(&Payload::from(p)).is_err());
    }
}

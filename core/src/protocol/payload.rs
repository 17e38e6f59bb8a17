//! [`Payload`]: opaque bytes inside a message that are never re-encoded.
//!
//! A message header is msgpack. Small payloads sit inside the header as
//! msgpack `bin`; on decode they become slices of the received buffer (no
//! copy). Large payloads travel as separate binary frames after the header:
//! while a message is encoded, a payload above [`INLINE_MAX`] is moved to the
//! frame list and only its index is written; while decoding, that index is
//! resolved back to the frame. Both happen through a thread-local context set
//! by [`super::codec`] around one encode or decode call, so message types can
//! hold `Payload` fields like any other field.

use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

/// Payloads longer than this go into their own frame instead of the header.
pub const INLINE_MAX: usize = 4096;

/// A value inside a message: encoded bytes, or — between parties in one
/// process — the value itself, shared and never encoded unless it has to
/// cross a socket.
///
/// ```
/// use rudask_core::Payload;
/// let p = Payload::from(vec![1u8, 2, 3]);
/// assert_eq!(p.len(), 3);
/// assert_eq!(p.as_bytes().map(|b| b.len()), Some(3));
/// ```
#[derive(Clone, Default)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Bytes(Bytes),
    Object(Arc<dyn Object>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Bytes(Bytes::new())
    }
}

/// A value held in memory as itself. Implemented by the registry's value
/// wrapper; encoding is done at most once, when first needed.
pub trait Object: Any + Send + Sync {
    /// The value's encoding (as [`crate::registry::encode`] would produce it).
    fn encode(&self) -> Result<Bytes, String>;
    /// The value, for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// Approximate size in bytes.
    fn size_hint(&self) -> usize;
    /// The held value's own type (`as_any` may give a wrapper).
    fn value_type(&self) -> std::any::TypeId;
    /// Moves the value into `slot`, an `Option` of the value's type, when
    /// this is its only reference; gives the object back otherwise.
    fn take_into(self: Arc<Self>, slot: &mut dyn Any) -> Result<(), Arc<dyn Object>>;
}

impl Payload {
    /// Wraps an in-memory value.
    pub fn object(value: Arc<dyn Object>) -> Payload {
        Payload(Repr::Object(value))
    }

    /// Size in bytes (an estimate for in-memory values).
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Bytes(b) => b.len(),
            Repr::Object(o) => o.size_hint(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when this payload is encoded.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Bytes(b) => Some(b),
            Repr::Object(_) => None,
        }
    }

    /// The in-memory value, when this payload is one.
    pub fn as_object(&self) -> Option<&dyn Object> {
        match &self.0 {
            Repr::Bytes(_) => None,
            Repr::Object(o) => Some(o.as_ref()),
        }
    }

    /// The encoded bytes, encoding an in-memory value if needed.
    pub fn encoded(&self) -> Result<Bytes, String> {
        match &self.0 {
            Repr::Bytes(b) => Ok(b.clone()),
            Repr::Object(o) => o.encode(),
        }
    }

    /// The held value, when this payload holds one.
    pub fn into_object(self) -> Result<Arc<dyn Object>, Payload> {
        match self.0 {
            Repr::Object(o) => Ok(o),
            Repr::Bytes(_) => Err(self),
        }
    }

    /// This payload in encoded form.
    pub fn into_encoded(self) -> Result<Payload, String> {
        match self.0 {
            Repr::Bytes(_) => Ok(self),
            Repr::Object(o) => o.encode().map(Payload::from),
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Object(a), Repr::Object(b)) => Arc::ptr_eq(a, b),
            _ => self.encoded().ok() == other.encoded().ok(),
        }
    }
}

impl Eq for Payload {}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload(Repr::Bytes(b))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload(Repr::Bytes(Bytes::from(v)))
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Bytes(b) => write!(f, "Payload({} bytes)", b.len()),
            Repr::Object(o) => write!(f, "Payload(in-memory value of ~{} bytes)", o.size_hint()),
        }
    }
}

thread_local! {
    static ENCODE_FRAMES: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
    static DECODE_CTX: RefCell<Option<DecodeCtx>> = const { RefCell::new(None) };
}

struct DecodeCtx {
    header: Bytes,
    frames: Vec<Option<Bytes>>,
}

/// Runs `f` with large payloads diverted into the returned frame list.
pub(crate) fn with_encode_frames<R>(f: impl FnOnce() -> R) -> (R, Vec<Bytes>) {
    ENCODE_FRAMES.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let r = f();
    let frames = ENCODE_FRAMES.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (r, frames)
}

/// Runs `f` with payload references resolved against `header` and `frames`.
pub(crate) fn with_decode_ctx<R>(
    header: Bytes,
    frames: Vec<Bytes>,
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    let view = header.clone();
    DECODE_CTX.with(|c| {
        *c.borrow_mut() = Some(DecodeCtx { header, frames: frames.into_iter().map(Some).collect() })
    });
    let r = f(&view);
    DECODE_CTX.with(|c| c.borrow_mut().take());
    r
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.encoded().map_err(serde::ser::Error::custom)?;
        if bytes.len() > INLINE_MAX {
            let index = ENCODE_FRAMES.with(|c| {
                c.borrow_mut().as_mut().map(|frames| {
                    frames.push(bytes.clone());
                    frames.len() as u64 - 1
                })
            });
            if let Some(i) = index {
                return s.serialize_u64(i);
            }
        }
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("binary data or a frame index")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Payload, E> {
        let sliced = DECODE_CTX.with(|c| {
            c.borrow().as_ref().and_then(|ctx| {
                let base = ctx.header.as_ptr() as usize;
                let start = v.as_ptr() as usize;
                (start >= base && start + v.len() <= base + ctx.header.len())
                    .then(|| ctx.header.slice(start - base..start - base + v.len()))
            })
        });
        Ok(Payload::from(sliced.unwrap_or_else(|| Bytes::copy_from_slice(v))))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Payload, E> {
        Ok(Payload::from(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload::from(Bytes::from(v)))
    }

    fn visit_u64<E: de::Error>(self, i: u64) -> Result<Payload, E> {
        DECODE_CTX
            .with(|c| {
                c.borrow_mut()
                    .as_mut()
                    .and_then(|ctx| ctx.frames.get_mut(i as usize).and_then(Option::take))
            })
            .map(Payload::from)
            .ok_or_else(|| E::custom(format!("payload refers to missing frame {i}")))
    }
}

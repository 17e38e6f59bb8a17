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
use std::cell::RefCell;
use std::fmt;

/// Payloads longer than this go into their own frame instead of the header.
pub const INLINE_MAX: usize = 4096;

/// Opaque binary data carried by a message (an encoded value, Arrow IPC, ...).
///
/// ```
/// use rudask_core::Payload;
/// let p = Payload::from(vec![1u8, 2, 3]);
/// assert_eq!(p.len(), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(pub Bytes);

impl Payload {
    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload(b)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload(Bytes::from(v))
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
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
    let frames = ENCODE_FRAMES
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
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
        *c.borrow_mut() = Some(DecodeCtx {
            header,
            frames: frames.into_iter().map(Some).collect(),
        })
    });
    let r = f(&view);
    DECODE_CTX.with(|c| c.borrow_mut().take());
    r
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.len() > INLINE_MAX {
            let index = ENCODE_FRAMES.with(|c| {
                c.borrow_mut().as_mut().map(|frames| {
                    frames.push(self.0.clone());
                    frames.len() as u64 - 1
                })
            });
            if let Some(i) = index {
                return s.serialize_u64(i);
            }
        }
        s.serialize_bytes(&self.0)
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
        Ok(Payload(sliced.unwrap_or_else(|| Bytes::copy_from_slice(v))))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Payload, E> {
        Ok(Payload(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload(Bytes::from(v)))
    }

    fn visit_u64<E: de::Error>(self, i: u64) -> Result<Payload, E> {
        DECODE_CTX
            .with(|c| {
                c.borrow_mut()
                    .as_mut()
                    .and_then(|ctx| ctx.frames.get_mut(i as usize).and_then(Option::take))
            })
            .map(Payload)
            .ok_or_else(|| E::custom(format!("payload refers to missing frame {i}")))
    }
}

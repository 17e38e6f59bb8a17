//! Framing: how one message becomes bytes on a stream and back.
//!
//! A message on the wire is one length-delimited frame (u32 big-endian length
//! prefix, bounded by a maximum frame size):
//!
//! ```text
//! u32 header_len | u32 n_frames | u64 frame_len * n_frames | header (msgpack) | frames...
//! ```
//!
//! [`EncodeBuffer`] encodes many messages into one write: small messages are
//! appended to a contiguous buffer and large payload frames are kept as their
//! own [`Bytes`] chunks, so they are written without being copied.

use super::payload::{with_decode_ctx, with_encode_frames};
use super::ProtocolError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::LengthDelimitedCodec;

/// Default upper bound of one message on the wire (1 GiB + headroom is not
/// needed: larger values should be split by the application).
pub const DEFAULT_MAX_FRAME: usize = 1 << 30;

/// Chunks larger than this are written as their own slice instead of being
/// copied into the coalescing buffer.
const COPY_MAX: usize = 64 * 1024;

/// The codec that splits a byte stream into message frames.
///
/// It is a length-delimited codec that, for a large frame, first moves the
/// read buffer into one allocation of the frame's full size (advised to use
/// huge pages), so the frame is read in place with no regrowth and few page
/// faults.
///
/// ```
/// use tokio_util::codec::Decoder;
/// let mut codec = rudask_core::protocol::codec::frame_codec(1024);
/// let mut buf = bytes::BytesMut::from(&b"\x00\x00\x00\x02hi"[..]);
/// assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"hi");
/// ```
pub fn frame_codec(max_frame: usize) -> FrameCodec {
    FrameCodec {
        inner: LengthDelimitedCodec::builder()
            .length_field_type::<u32>()
            .max_frame_length(max_frame)
            .new_codec(),
        max_frame,
    }
}

/// See [`frame_codec`].
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
    max_frame: usize,
}

impl FrameCodec {
    /// Changes the largest frame accepted from now on, e.g. raises it once
    /// the peer has been authenticated.
    ///
    /// ```
    /// let mut codec = rudask_core::protocol::codec::frame_codec(1024);
    /// codec.set_max_frame(1 << 20);
    /// assert_eq!(codec.max_frame(), 1 << 20);
    /// ```
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.inner.set_max_frame_length(max_frame);
        self.max_frame = max_frame;
    }

    /// The largest frame accepted.
    ///
    /// ```
    /// assert_eq!(rudask_core::protocol::codec::frame_codec(1024).max_frame(), 1024);
    /// ```
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, std::io::Error> {
        if src.len() >= 4 {
            let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
            let needed = len.saturating_add(4);
            if len >= crate::mem::LARGE && len <= self.max_frame && src.capacity() < needed {
                let mut big = crate::mem::bytes_with_capacity(needed);
                big.extend_from_slice(src);
                *src = big;
            }
        }
        self.inner.decode(src)
    }
}

/// Messages encoded and waiting to be written, as a list of chunks.
#[derive(Debug, Default)]
pub struct EncodeBuffer {
    buf: BytesMut,
    chunks: Vec<Bytes>,
    max_frame: usize,
    /// Where each message's header is serialized before it is framed,
    /// reused so that a small message costs no allocation.
    header: Vec<u8>,
}

impl EncodeBuffer {
    /// An empty buffer enforcing `max_frame` per message.
    pub fn new(max_frame: usize) -> Self {
        EncodeBuffer {
            buf: BytesMut::with_capacity(64 * 1024),
            chunks: Vec::new(),
            max_frame,
            header: Vec::with_capacity(1024),
        }
    }

    /// Appends one message.
    ///
    /// ```
    /// use rudask_core::protocol::codec::{EncodeBuffer, decode};
    /// let mut b = EncodeBuffer::new(1 << 20);
    /// b.push(&("hello", 7u32)).unwrap();
    /// let chunks = b.take_chunks();
    /// let body = bytes::Bytes::copy_from_slice(&chunks[0][4..]);
    /// let m: (String, u32) = decode(body).unwrap();
    /// assert_eq!(m.1, 7);
    /// ```
    pub fn push<M: Serialize>(&mut self, msg: &M) -> Result<(), ProtocolError> {
        let mut header = std::mem::take(&mut self.header);
        header.clear();
        let (written, frames) =
            with_encode_frames(|| rmp_serde::encode::write_named(&mut header, msg));
        let framed = written
            .map_err(|e| ProtocolError::Encode(e.to_string()))
            .and_then(|()| self.frame(&header, frames));
        // A huge header (a large graph) is not worth keeping.
        if header.capacity() <= 1 << 20 {
            self.header = header;
        }
        framed
    }

    /// Appends one message whose header is serialized already.
    fn frame(&mut self, header: &[u8], frames: Vec<Bytes>) -> Result<(), ProtocolError> {
        let body_len =
            8 + 8 * frames.len() + header.len() + frames.iter().map(Bytes::len).sum::<usize>();
        if body_len > self.max_frame {
            return Err(ProtocolError::FrameTooLarge { size: body_len, max: self.max_frame });
        }
        self.buf.reserve(4 + 8 + 8 * frames.len() + header.len());
        self.buf.put_u32(body_len as u32);
        self.buf.put_u32(header.len() as u32);
        self.buf.put_u32(frames.len() as u32);
        for f in &frames {
            self.buf.put_u64(f.len() as u64);
        }
        self.buf.put_slice(header);
        for f in frames {
            if f.len() > COPY_MAX {
                if !self.buf.is_empty() {
                    self.chunks.push(self.buf.split().freeze());
                }
                self.chunks.push(f);
            } else {
                self.buf.put_slice(&f);
            }
        }
        Ok(())
    }

    /// True when nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.chunks.is_empty()
    }

    /// Takes the encoded chunks, in write order.
    pub fn take_chunks(&mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.chunks.push(self.buf.split().freeze());
        }
        std::mem::take(&mut self.chunks)
    }
}

/// Decodes one frame body (without its length prefix) into a message.
pub fn decode<M: DeserializeOwned>(mut body: Bytes) -> Result<M, ProtocolError> {
    let malformed = |what: &str| ProtocolError::Malformed(what.to_string());
    if body.len() < 8 {
        return Err(malformed("frame shorter than its fixed header"));
    }
    let header_len = body.get_u32() as usize;
    let n_frames = body.get_u32() as usize;
    if n_frames > body.len() / 8 {
        return Err(malformed("frame count exceeds frame size"));
    }
    let mut lens = Vec::with_capacity(n_frames);
    for _ in 0..n_frames {
        lens.push(body.get_u64() as usize);
    }
    if header_len > body.len() {
        return Err(malformed("header length exceeds frame size"));
    }
    let header = body.split_to(header_len);
    let mut frames = Vec::with_capacity(n_frames);
    for len in lens {
        if len > body.len() {
            return Err(malformed("payload length exceeds frame size"));
        }
        frames.push(body.split_to(len));
    }
    with_decode_ctx(header, frames, |h| rmp_serde::from_slice(h))
        .map_err(|e| ProtocolError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Payload;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Msg {
        a: Payload,
        b: Payload,
        n: u64,
    }

    fn roundtrip(msg: &Msg) -> Msg {
        let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
        buf.push(msg).unwrap();
        let mut all = BytesMut::new();
        for c in buf.take_chunks() {
            all.extend_from_slice(&c);
        }
        let mut all = all.freeze();
        let len = all.get_u32() as usize;
        assert_eq!(len, all.len());
        decode(all).unwrap()
    }

    #[test]
    fn small_and_large_payloads_round_trip() {
        let big = Payload::from(vec![7u8; 200_000]);
        let msg = Msg { a: Payload::from(vec![1, 2, 3]), b: big.clone(), n: 9 };
        assert_eq!(roundtrip(&msg), msg);
    }

    #[test]
    fn large_payload_is_not_copied_into_coalescing_buffer() {
        let big = Bytes::from(vec![1u8; 1 << 20]);
        let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
        buf.push(&Msg { a: Payload::from(big.clone()), b: Payload::default(), n: 0 }).unwrap();
        let chunks = buf.take_chunks();
        assert!(chunks.iter().any(|c| c.as_ptr() == big.as_ptr()));
    }

    #[test]
    fn oversized_message_is_refused() {
        let mut buf = EncodeBuffer::new(1000);
        let err = buf
            .push(&Msg { a: Payload::from(vec![0; 5000]), b: Payload::default(), n: 0 })
            .unwrap_err();
        assert!(matches!(err, ProtocolError::FrameTooLarge { .. }));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"\x00\x00\x00\x10\x00\x00\x00\x00",
            b"\x00\x00\x00\x00\xff\xff\xff\xff",
            b"\x00\x00\x00\x01\x00\x00\x00\x00\xc1",
        ] {
            assert!(decode::<Msg>(Bytes::copy_from_slice(body)).is_err());
        }
    }

    #[test]
    fn inline_payload_is_a_slice_of_the_header() {
        let msg = Msg { a: Payload::from(vec![5u8; 100]), b: Payload::default(), n: 1 };
        let back = roundtrip(&msg);
        assert_eq!(back.a, msg.a);
    }
}

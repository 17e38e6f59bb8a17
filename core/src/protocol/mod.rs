//! The wire protocol: handshake, messages for each pair of roles, and framing.
//!
//! Every connection starts with a [`Hello`] from the connecting side and a
//! [`HelloReply`] from the accepting side. After that, each direction carries
//! one message enum: [`ClientMsg`] / [`ToClient`] between a client and the
//! scheduler, [`WorkerMsg`] / [`ToWorker`] between a worker and the scheduler,
//! and [`PeerRequest`] / [`PeerResponse`] between anyone and a worker's data
//! port (worker-to-worker transfers, client gather and scatter).

mod coalesce;
pub mod codec;
mod coord;
mod datasets;
mod messages;
mod payload;
mod profile;

pub use coalesce::Coalesce;
pub use coord::{CoordReply, CoordRequest, CoordValue, PrimitiveInfo};
pub use datasets::{
    check_dataset_name, CatalogChange, DatasetInfo, DatasetRecord, Publication, StoredPart,
    MAX_DATASET_NAME,
};
pub use messages::*;
pub use payload::{Object, Payload, INLINE_MAX};
pub use profile::{FunctionProfile, Profile, WorkerTime};

/// The protocol version spoken by this build. Peers must match exactly.
pub const PROTOCOL_VERSION: u32 = 2;

/// Written in every [`Hello`] so a stray peer is told apart from a rudask peer
/// of another version.
pub const MAGIC: &str = "rudask";

/// A problem with bytes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A message is larger than the configured maximum frame size.
    #[error("message of {size} bytes exceeds the maximum frame size of {max} bytes")]
    FrameTooLarge {
        /// Size of the message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The frame's layout is broken.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The header could not be decoded into the expected message.
    #[error("could not decode message: {0}")]
    Decode(String),
    /// A message could not be encoded.
    #[error("could not encode message: {0}")]
    Encode(String),
}

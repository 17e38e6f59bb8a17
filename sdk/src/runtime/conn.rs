//! TCP connections: the handshake, a reader task that decodes frames, and a
//! writer task that batches — it writes as soon as a message is queued and
//! coalesces whatever queues up while a write is in flight.

use crate::error::{Error, Result};
use futures::StreamExt;
use rudask_core::protocol::codec::{
    decode, frame_codec, EncodeBuffer, FrameCodec, DEFAULT_MAX_FRAME,
};
use rudask_core::protocol::{Coalesce, Hello, HelloReply, Role, Welcome, MAGIC, PROTOCOL_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

/// How long connecting plus the handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type FrameReader = FramedRead<OwnedReadHalf, FrameCodec>;

/// The crate version, exchanged in the handshake.
pub(crate) const BUILD: &str = env!("CARGO_PKG_VERSION");

/// `tcp://host:port` or `host:port` → `host:port`.
pub(crate) fn socket_addr(addr: &str) -> &str {
    addr.strip_prefix("tcp://").unwrap_or(addr)
}

async fn write_one<M: Serialize>(w: &mut OwnedWriteHalf, msg: &M) -> Result<()> {
    let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
    buf.push(msg)?;
    for chunk in buf.take_chunks() {
        w.write_all(&chunk).await?;
    }
    Ok(())
}

/// Reads one message, counting its frame's bytes into `received`.
async fn read_one<M: DeserializeOwned>(
    reader: &mut FrameReader,
    received: &metrics::Counter,
) -> Result<Option<M>> {
    match reader.next().await {
        None => Ok(None),
        Some(Ok(frame)) => {
            received.increment(frame.len() as u64);
            Ok(Some(decode(frame.freeze())?))
        }
        Some(Err(e)) => {
            Err(Error::Protocol(rudask_core::protocol::ProtocolError::Malformed(e.to_string())))
        }
    }
}

/// Connects and performs the handshake as `role`.
pub(crate) async fn connect(
    addr: &str,
    role: Role,
) -> Result<(FrameReader, OwnedWriteHalf, Welcome)> {
    let fail = |message: String| Error::Connect { addr: addr.to_string(), message };
    let stream = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        TcpStream::connect(socket_addr(addr)),
    )
    .await
    {
        Err(_) => {
            return Err(fail(format!(
                "no answer within {HANDSHAKE_TIMEOUT:?}; is the address right and reachable?"
            )))
        }
        Ok(Err(e)) => {
            return Err(fail(format!("{e}; is a rudask scheduler or worker listening there?")))
        }
        Ok(Ok(s)) => s,
    };
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut reader = FramedRead::new(r, frame_codec(DEFAULT_MAX_FRAME));
    let hello = Hello {
        magic: MAGIC.to_string(),
        protocol: PROTOCOL_VERSION,
        build: BUILD.to_string(),
        role,
    };
    let exchange = async {
        write_one(&mut w, &hello).await?;
        read_one::<HelloReply>(&mut reader, &metrics::Counter::noop()).await
    };
    let reply = match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
        Err(_) => {
            return Err(fail(
                "the peer did not answer the handshake; is it a rudask scheduler or worker?".into(),
            ))
        }
        Ok(Err(e)) => {
            return Err(fail(format!(
                "handshake failed: {e}; is it a rudask peer of a compatible version?"
            )))
        }
        Ok(Ok(None)) => {
            return Err(fail("the peer closed the connection during the handshake".into()))
        }
        Ok(Ok(Some(r))) => r,
    };
    match reply {
        HelloReply::Welcome(welcome) if welcome.protocol == PROTOCOL_VERSION => {
            Ok((reader, w, welcome))
        }
        HelloReply::Welcome(welcome) => Err(Error::Refused {
            addr: addr.to_string(),
            reason: format!(
                "peer speaks protocol {} (build {}), we speak {PROTOCOL_VERSION} (build {BUILD})",
                welcome.protocol, welcome.build
            ),
        }),
        HelloReply::Refused { reason } => Err(Error::Refused { addr: addr.to_string(), reason }),
    }
}

/// Reads and checks the peer's [`Hello`]; refuses mismatched peers.
pub(crate) async fn accept(stream: TcpStream) -> Result<(Hello, FrameReader, OwnedWriteHalf)> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let (r, mut w) = stream.into_split();
    let mut reader = FramedRead::new(r, frame_codec(DEFAULT_MAX_FRAME));
    let hello = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_one::<Hello>(&mut reader, &metrics::Counter::noop()),
    )
    .await
    {
        Err(_) => {
            return Err(Error::Protocol(rudask_core::protocol::ProtocolError::Malformed(format!(
                "{peer} sent no handshake"
            ))))
        }
        Ok(Err(e)) => {
            let reason =
                format!("could not read the handshake ({e}); is this a rudask client or worker?");
            let _ = write_one(&mut w, &HelloReply::Refused { reason: reason.clone() }).await;
            return Err(Error::Protocol(rudask_core::protocol::ProtocolError::Malformed(format!(
                "{peer}: {reason}"
            ))));
        }
        Ok(Ok(None)) => {
            return Err(Error::Disconnected(format!("{peer} closed during the handshake")))
        }
        Ok(Ok(Some(h))) => h,
    };
    let refusal = if hello.magic != MAGIC {
        Some("not a rudask peer".to_string())
    } else if hello.protocol != PROTOCOL_VERSION {
        Some(format!(
            "protocol version mismatch: peer speaks {} (build {}), this side speaks {PROTOCOL_VERSION} (build {BUILD}); run the same rudask version everywhere",
            hello.protocol, hello.build
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        tracing::warn!(%peer, %reason, "refused connection");
        let _ = write_one(&mut w, &HelloReply::Refused { reason: reason.clone() }).await;
        return Err(Error::Refused { addr: peer, reason });
    }
    Ok((hello, reader, w))
}

/// Sends the reply to a handshake.
pub(crate) async fn reply(w: &mut OwnedWriteHalf, reply: &HelloReply) -> Result<()> {
    write_one(w, reply).await
}

/// Starts the batching writer; messages sent to the returned channel are
/// written in order. The task ends when every sender is dropped or a write fails.
pub(crate) fn spawn_writer<M: Serialize + Coalesce + Send + 'static>(
    w: OwnedWriteHalf,
) -> mpsc::UnboundedSender<M> {
    let (tx, rx) = mpsc::unbounded_channel::<M>();
    spawn_writer_from(w, rx);
    tx
}

/// Like [`spawn_writer`], for a channel made earlier (so messages can queue
/// before the handshake reply is written).
pub(crate) fn spawn_writer_from<M: Serialize + Coalesce + Send + 'static>(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<M>,
) {
    let sent = super::metrics::bytes_sent();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(1024);
        let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
        let encode = |buf: &mut EncodeBuffer, m: &M| {
            if let Err(e) = buf.push(m) {
                tracing::error!(error = %e, "dropping a message that cannot be encoded");
            }
        };
        while rx.recv_many(&mut batch, 4096).await > 0 {
            let mut pending: Option<M> = None;
            for m in batch.drain(..) {
                match pending.as_mut() {
                    None => pending = Some(m),
                    Some(p) => {
                        if let Err(m) = p.absorb(m) {
                            encode(&mut buf, p);
                            pending = Some(m);
                        }
                    }
                }
            }
            if let Some(p) = pending {
                encode(&mut buf, &p);
            }
            for chunk in buf.take_chunks() {
                if let Err(e) = w.write_all(&chunk).await {
                    tracing::debug!(error = %e, "connection closed while writing");
                    return;
                }
                sent.increment(chunk.len() as u64);
            }
        }
        let _ = w.shutdown().await;
    });
}

/// Starts the reader: each decoded message goes to `on_msg` until it returns
/// false or the stream ends; then `on_close` gets the error, if any.
pub(crate) fn spawn_reader<M, F, C>(mut reader: FrameReader, mut on_msg: F, on_close: C)
where
    M: DeserializeOwned + Send + 'static,
    F: FnMut(M) -> bool + Send + 'static,
    C: FnOnce(Option<Error>) + Send + 'static,
{
    let received = super::metrics::bytes_received();
    tokio::spawn(async move {
        loop {
            match read_one::<M>(&mut reader, &received).await {
                Ok(Some(m)) => {
                    if !on_msg(m) {
                        on_close(None);
                        return;
                    }
                }
                Ok(None) => {
                    on_close(None);
                    return;
                }
                Err(e) => {
                    on_close(Some(e));
                    return;
                }
            }
        }
    });
}

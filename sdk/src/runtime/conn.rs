//! Connections: TCP, or TLS over TCP; the handshake, with the token check;
//! a reader task that decodes frames, and a writer task that batches — it
//! writes as soon as a message is queued and coalesces whatever queues up
//! while a write is in flight.
//!
//! Both plain and TLS connections split the socket into its owned halves,
//! which share no lock; [`super::tls`] protects the records of each half.

use super::tls::{TlsReader, TlsWriter};
use crate::error::{Error, Result};
use crate::security::Security;
use futures::StreamExt;
use rudask_core::protocol::codec::{
    decode, frame_codec, EncodeBuffer, FrameCodec, DEFAULT_MAX_FRAME,
};
use rudask_core::protocol::{Coalesce, Hello, HelloReply, Role, Welcome, MAGIC, PROTOCOL_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

/// How long connecting plus the handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest frame accepted from a peer before it is authenticated: a
/// stranger cannot make a server reserve more than this.
pub(crate) const HANDSHAKE_MAX_FRAME: usize = 1 << 20;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// The reading half of a connection.
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(Box<TlsReader>),
}

/// The writing half of a connection.
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(Box<TlsWriter>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            WriteHalf::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WriteHalf::Tcp(w) => w.is_write_vectored(),
            WriteHalf::Tls(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

fn split_tcp(stream: TcpStream) -> (ReadHalf, WriteHalf) {
    let (r, w) = stream.into_split();
    (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
}

pub(crate) type FrameReader = FramedRead<ReadHalf, FrameCodec>;

/// The crate version, exchanged in the handshake.
pub(crate) const BUILD: &str = env!("CARGO_PKG_VERSION");

/// `tcp://host:port`, `tls://host:port` or `host:port` → `host:port`.
pub(crate) fn socket_addr(addr: &str) -> &str {
    addr.strip_prefix("tcp://").or_else(|| addr.strip_prefix("tls://")).unwrap_or(addr)
}

/// Whether connecting to `addr` uses TLS: `tls://` does, `tcp://` does not,
/// and an address without a scheme does when a CA is configured.
pub(crate) fn uses_tls(addr: &str, security: &Security) -> bool {
    if addr.starts_with("tls://") {
        true
    } else if addr.starts_with("tcp://") {
        false
    } else {
        security.connector.is_some()
    }
}

/// The address of a listener at `local`, with the scheme of its security.
pub(crate) fn listen_addr(local: std::net::SocketAddr, security: &Security) -> String {
    let scheme = if security.serves_tls() { "tls" } else { "tcp" };
    format!("{scheme}://{local}")
}

async fn write_one<M: Serialize>(w: &mut WriteHalf, msg: &M) -> Result<()> {
    let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
    buf.push(msg)?;
    for chunk in buf.take_chunks() {
        w.write_all(&chunk).await?;
    }
    w.flush().await?;
    Ok(())
}

/// Reads one message, counting its frame's bytes into `received`.
async fn read_one<M: DeserializeOwned>(
    reader: &mut FrameReader,
    received: &metrics::Counter,
) -> Result<Option<M>> {
    match reader.next().await {
        None => Ok(None),
        // A TLS peer that exits without saying goodbye (close_notify), or a
        // peer process that died (reset), has left like a TCP peer that
        // closes: a frame it cut off midway is dropped with the connection
        // either way.
        Some(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(None)
        }
        Some(Ok(frame)) => {
            received.increment(frame.len() as u64);
            Ok(Some(decode(frame.freeze())?))
        }
        Some(Err(e)) => {
            Err(Error::Protocol(rudask_core::protocol::ProtocolError::Malformed(e.to_string())))
        }
    }
}

/// Explains a failed TLS handshake with `addr` to the user.
fn tls_failure(addr: &str, e: &std::io::Error) -> String {
    let plain = format!("tcp://{}", socket_addr(addr));
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(cert)) => format!(
            "TLS handshake failed: the peer's certificate is not trusted ({cert:?}); the CA you \
             gave is not this cluster's: use the connection file this scheduler wrote \
             (--connection-file, RUDASK_CONNECTION_FILE) or its ca.pem"
        ),
        Some(other) => format!(
            "TLS handshake failed: {other}; is the peer a rudask scheduler with TLS? An \
             --insecure scheduler is reached at {plain}"
        ),
        None => format!(
            "TLS handshake failed: {e}; the peer closed the connection: if it is an --insecure \
             scheduler, connect to {plain}"
        ),
    }
}

/// Connects and performs the handshake as `role`.
pub(crate) async fn connect(
    addr: &str,
    role: Role,
    security: &Security,
) -> Result<(FrameReader, WriteHalf, Welcome)> {
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
    let tls = uses_tls(addr, security);
    let (r, mut w) = if tls {
        let Some(connector) = &security.connector else {
            return Err(fail(
                "this address uses TLS but no cluster CA was given: pass the connection file \
                 the scheduler wrote (--connection-file, RUDASK_CONNECTION_FILE, \
                 Client::from_connection_file) or the CA (--tls-ca, RUDASK_TLS_CA)"
                    .into(),
            ));
        };
        let host = socket_addr(addr).rsplit_once(':').map_or("rudask", |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap_or_else(|_| {
            rustls::pki_types::ServerName::try_from("rudask").expect("a DNS name")
        });
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream)).await {
            Err(_) => return Err(fail(
                "the peer did not answer the TLS handshake; is it a rudask scheduler or worker?"
                    .into(),
            )),
            Ok(Err(e)) => return Err(fail(tls_failure(addr, &e))),
            Ok(Ok((r, w))) => (ReadHalf::Tls(Box::new(r)), WriteHalf::Tls(Box::new(w))),
        }
    } else {
        split_tcp(stream)
    };
    let mut reader = FramedRead::new(r, frame_codec(DEFAULT_MAX_FRAME));
    let hello = Hello {
        magic: MAGIC.to_string(),
        protocol: PROTOCOL_VERSION,
        build: BUILD.to_string(),
        role,
        // Never in clear text: only TLS peers check it.
        token: if tls { security.token.as_deref().map(str::to_string) } else { None },
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

/// Refuses a connection before it is split: `reason` goes back as a plain
/// handshake reply.
async fn refuse_plain(stream: TcpStream, peer: &str, reason: String) -> Error {
    tracing::warn!(%peer, %reason, "refused connection");
    let (_, mut w) = split_tcp(stream);
    let _ = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        write_one(&mut w, &HelloReply::Refused { reason: reason.clone() }),
    )
    .await;
    Error::Refused { addr: peer.to_string(), reason }
}

/// Sets up TLS on an accepted stream if this side serves it, telling apart
/// peers that speak plain TCP to a TLS port (and the other way round).
async fn accept_stream(
    stream: TcpStream,
    peer: &str,
    security: &Security,
) -> Result<(ReadHalf, WriteHalf)> {
    let mut first = [0u8; 1];
    let peeked = match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Err(_) => {
            return Err(Error::Protocol(rudask_core::protocol::ProtocolError::Malformed(format!(
                "{peer} sent no handshake"
            ))))
        }
        Ok(r) => r?,
    };
    if peeked == 0 {
        return Err(Error::Disconnected(format!("{peer} closed during the handshake")));
    }
    let Some(acceptor) = &security.acceptor else {
        if first[0] == TLS_HANDSHAKE_BYTE {
            let reason = "a TLS client connected to a plain (--insecure) port; connect to \
                          tcp://HOST:PORT without a CA";
            tracing::warn!(%peer, reason, "refused connection");
            return Err(Error::Refused { addr: peer.to_string(), reason: reason.into() });
        }
        return Ok(split_tcp(stream));
    };
    if first[0] != TLS_HANDSHAKE_BYTE {
        let reason = "this cluster requires TLS: connect to its tls:// address with the cluster's \
                      CA and token, e.g. from the connection file the scheduler wrote \
                      (--connection-file, RUDASK_CONNECTION_FILE, Client::from_connection_file)"
            .to_string();
        return Err(refuse_plain(stream, peer, reason).await);
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Err(_) => Err(Error::Protocol(rudask_core::protocol::ProtocolError::Malformed(format!(
            "{peer} did not finish the TLS handshake"
        )))),
        Ok(Err(e)) => Err(Error::Io(format!("TLS handshake with {peer} failed: {e}"))),
        Ok(Ok((r, w))) => Ok((ReadHalf::Tls(Box::new(r)), WriteHalf::Tls(Box::new(w)))),
    }
}

/// Reads and checks the peer's [`Hello`] (including its token); refuses
/// mismatched or unauthenticated peers.
pub(crate) async fn accept(
    stream: TcpStream,
    security: &Security,
) -> Result<(Hello, FrameReader, WriteHalf)> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let (r, mut w) = accept_stream(stream, &peer, security).await?;
    let mut reader = FramedRead::new(r, frame_codec(HANDSHAKE_MAX_FRAME));
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
    } else if !security.admits(hello.token.as_deref()) {
        let what = if hello.token.is_some() { "the token is wrong" } else { "no token was given" };
        Some(format!(
            "this cluster requires its token and {what}: pass the connection file the scheduler \
             wrote (--connection-file, RUDASK_CONNECTION_FILE, Client::from_connection_file) or \
             the token (--token, RUDASK_TOKEN)"
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        tracing::warn!(%peer, %reason, "refused connection");
        let _ = write_one(&mut w, &HelloReply::Refused { reason: reason.clone() }).await;
        return Err(Error::Refused { addr: peer, reason });
    }
    reader.decoder_mut().set_max_frame(DEFAULT_MAX_FRAME);
    Ok((hello, reader, w))
}

/// Sends the reply to a handshake.
pub(crate) async fn reply(w: &mut WriteHalf, reply: &HelloReply) -> Result<()> {
    write_one(w, reply).await
}

/// Starts the batching writer; messages sent to the returned channel are
/// written in order. The task ends when every sender is dropped or a write fails.
pub(crate) fn spawn_writer<M: Serialize + Coalesce + Send + 'static>(
    w: WriteHalf,
) -> mpsc::UnboundedSender<M> {
    let (tx, rx) = mpsc::unbounded_channel::<M>();
    spawn_writer_from(w, rx);
    tx
}

/// Like [`spawn_writer`], for a channel made earlier (so messages can queue
/// before the handshake reply is written).
pub(crate) fn spawn_writer_from<M: Serialize + Coalesce + Send + 'static>(
    mut w: WriteHalf,
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
            // A no-op on plain TCP; under TLS it sends what is buffered.
            if let Err(e) = w.flush().await {
                tracing::debug!(error = %e, "connection closed while writing");
                return;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_decides_tls_and_a_ca_decides_for_bare_addresses() {
        let plain = Security::default();
        let pki = crate::security::generate_pki().unwrap();
        let with_ca = Security {
            connector: Some(crate::security::connector(&pki.ca_pem).unwrap()),
            ..Default::default()
        };
        assert!(uses_tls("tls://127.0.0.1:1", &plain));
        assert!(!uses_tls("tcp://127.0.0.1:1", &with_ca));
        assert!(uses_tls("127.0.0.1:1", &with_ca));
        assert!(!uses_tls("127.0.0.1:1", &plain));
        assert_eq!(socket_addr("tls://h:1"), "h:1");
        assert_eq!(socket_addr("tcp://h:1"), "h:1");
    }
}

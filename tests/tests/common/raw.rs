//! Hand-driven protocol connections, plain or TLS, for sending what a
//! client never would.

use super::within;
use rudask::core::protocol::codec::{decode, EncodeBuffer, DEFAULT_MAX_FRAME};
use rudask::core::protocol::{Hello, HelloReply, Role, MAGIC, PROTOCOL_VERSION};
use serde::Serialize;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A byte stream to a scheduler or data port.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Frames longer than this are not read back (the tests never expect one).
const MAX_REPLY: usize = 16 << 20;

/// A raw connection.
pub(crate) struct Raw {
    pub(crate) io: Box<dyn Io>,
}

/// `host:port` of a `tcp://` or `tls://` address.
pub(crate) fn host_port(addr: &str) -> &str {
    addr.strip_prefix("tcp://").or_else(|| addr.strip_prefix("tls://")).unwrap_or(addr)
}

/// A TLS connector trusting `ca_pem` only.
pub(crate) fn connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).expect("a usable CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

impl Raw {
    /// Plain TCP to `addr`.
    pub(crate) async fn plain(addr: &str) -> Raw {
        let stream = within(TcpStream::connect(host_port(addr))).await.expect("connecting");
        Raw { io: Box::new(stream) }
    }

    /// TLS to `addr`, trusting `ca_pem` (the cluster certificate is valid for `localhost`).
    pub(crate) async fn tls(addr: &str, ca_pem: &str) -> Raw {
        let stream = within(TcpStream::connect(host_port(addr))).await.expect("connecting");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a DNS name");
        let tls = within(connector(ca_pem).connect(name, stream)).await.expect("TLS handshake");
        Raw { io: Box::new(tls) }
    }

    /// Sends one message as a frame.
    pub(crate) async fn send<M: Serialize>(&mut self, msg: &M) {
        let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
        buf.push(msg).expect("encoding");
        for chunk in buf.take_chunks() {
            let _ = self.io.write_all(&chunk).await;
        }
        let _ = self.io.flush().await;
    }

    /// Writes bytes; the peer may already have closed, which is fine.
    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.io.write_all(bytes).await;
        let _ = self.io.flush().await;
    }

    /// The next handshake reply, or `None` at the end of the stream or on garbage.
    pub(crate) async fn recv_reply(&mut self) -> Option<HelloReply> {
        let len = within(self.io.read_u32()).await.ok()? as usize;
        if len > MAX_REPLY {
            return None;
        }
        let mut body = vec![0; len];
        within(self.io.read_exact(&mut body)).await.ok()?;
        decode(body.into()).ok()
    }

    /// Reads until the peer closes the connection (fails the test if it never does).
    pub(crate) async fn expect_closed(&mut self) {
        let mut sink = Vec::new();
        let _ = within(self.io.read_to_end(&mut sink)).await;
    }

    /// Ends the sending side, then reads until the peer closes (fails the
    /// test if it never does).
    pub(crate) async fn finish(&mut self) {
        let _ = self.io.shutdown().await;
        self.expect_closed().await;
    }

    /// Sends a well-formed hello as `role` with `token`, and reads the reply.
    pub(crate) async fn hello(&mut self, role: Role, token: Option<&str>) -> Option<HelloReply> {
        let hello = Hello {
            magic: MAGIC.into(),
            protocol: PROTOCOL_VERSION,
            build: "raw-test".into(),
            role,
            token: token.map(str::to_string),
        };
        self.send(&hello).await;
        self.recv_reply().await
    }
}

//! TLS 1.3 connections. rustls runs the handshake (certificates, key
//! exchange, alerts); once it is done, each direction of the connection
//! protects its own records with its traffic keys, as RFC 8446 §5 defines
//! them and as kernel TLS offload does.
//!
//! Why not rustls' own streams: they hand over plaintext one record at a
//! time, copy it three times on the way in, and their two halves share one
//! lock. Here the two halves share no lock, only a flag for a KeyUpdate the
//! peer asked for: the reader decrypts records in place in one large
//! buffer, and the writer encrypts straight into the buffer it gives the
//! socket. Compared with plain TCP, a large value costs one extra copy and
//! one pass of AES-GCM per side.
//!
//! The records are ordinary TLS 1.3, so a stock rustls peer interoperates
//! (the tests use one). Each side replaces its sending key with a KeyUpdate
//! long before AES-GCM's per-key record limit, and follows the peer's.

use ring::{aead, hkdf};
use rustls::pki_types::ServerName;
use rustls::{ConnectionTrafficSecrets, KeyLog};
use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// Record header: content type, legacy version, length.
const HEADER: usize = 5;
/// The most plaintext one record carries.
const MAX_PLAINTEXT: usize = 1 << 14;
/// The longest protected record body a peer may send (RFC 8446 §5.2).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
/// Every protected record's outer type; the real one is encrypted inside.
const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const KEY_UPDATE: u8 = 24;
const NEW_SESSION_TICKET: u8 = 4;
const CLOSE_NOTIFY: u8 = 0;
/// Records sealed under one key before it is replaced: far below AES-GCM's
/// limit of 2^24.5 records per key (RFC 8446 §5.5).
const RECORDS_PER_KEY: u64 = 1 << 23;
/// The reader's buffer starts this small and doubles up to [`READ_BUFFER`]
/// while reads fill it, so idle connections stay cheap.
const FIRST_READ_BUFFER: usize = 64 * 1024;
const READ_BUFFER: usize = 512 * 1024;
/// The most plaintext one write seals.
const WRITE_BUFFER: usize = 256 * 1024;
/// Sealed records wait for a flush (which ends every batch of messages)
/// until there are this many bytes of them, so a batch written in several
/// pieces goes out in one system call.
const SEND_AT: usize = 64 * 1024;

const CLIENT_SECRET: &str = "CLIENT_TRAFFIC_SECRET_0";
const SERVER_SECRET: &str = "SERVER_TRAFFIC_SECRET_0";

fn invalid(message: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Connects to TLS servers that the client configuration trusts.
#[derive(Clone, Debug)]
pub(crate) struct Connector(Arc<rustls::ClientConfig>);

impl Connector {
    pub(crate) fn new(mut config: rustls::ClientConfig) -> Self {
        config.enable_secret_extraction = true;
        Connector(Arc::new(config))
    }

    /// Runs the client handshake on `stream`.
    pub(crate) async fn connect(
        &self,
        name: ServerName<'static>,
        stream: TcpStream,
    ) -> io::Result<(TlsReader, TlsWriter)> {
        let secrets = Arc::new(TrafficSecrets::default());
        let mut config = (*self.0).clone();
        config.key_log = secrets.clone();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(invalid)?;
        establish(conn.into(), stream, &secrets).await
    }
}

/// Accepts TLS clients with the server configuration's certificate.
#[derive(Clone, Debug)]
pub(crate) struct Acceptor(Arc<rustls::ServerConfig>);

impl Acceptor {
    pub(crate) fn new(mut config: rustls::ServerConfig) -> Self {
        config.enable_secret_extraction = true;
        Acceptor(Arc::new(config))
    }

    /// Runs the server handshake on `stream`.
    pub(crate) async fn accept(&self, stream: TcpStream) -> io::Result<(TlsReader, TlsWriter)> {
        let secrets = Arc::new(TrafficSecrets::default());
        let mut config = (*self.0).clone();
        config.key_log = secrets.clone();
        let conn = rustls::ServerConnection::new(Arc::new(config)).map_err(invalid)?;
        establish(conn.into(), stream, &secrets).await
    }
}

/// Catches one connection's first application traffic secrets, from which
/// the keys after each KeyUpdate are derived.
#[derive(Default)]
struct TrafficSecrets(Mutex<[Option<Secret>; 2]>);

impl fmt::Debug for TrafficSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrafficSecrets(..)")
    }
}

impl KeyLog for TrafficSecrets {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        let slot = match label {
            CLIENT_SECRET => 0,
            SERVER_SECRET => 1,
            _ => return,
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner())[slot] =
            Some(Zeroizing::new(secret.to_vec()));
    }

    fn will_log(&self, label: &str) -> bool {
        label == CLIENT_SECRET || label == SERVER_SECRET
    }
}

/// The length of the complete record at the start of `buf`, or `None` if
/// it has not all arrived.
fn complete_record(buf: &[u8]) -> io::Result<Option<usize>> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if len > MAX_CIPHERTEXT {
        return Err(invalid(format!("TLS record of {len} bytes is longer than TLS allows")));
    }
    Ok((buf.len() >= HEADER + len).then_some(HEADER + len))
}

async fn send_tls(conn: &mut rustls::Connection, stream: &mut TcpStream) -> io::Result<()> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    stream.write_all(&out).await
}

/// Drives the handshake, feeding rustls one whole record at a time so that
/// it never takes application data; then takes over the record layer.
async fn establish(
    mut conn: rustls::Connection,
    mut stream: TcpStream,
    secrets: &TrafficSecrets,
) -> io::Result<(TlsReader, TlsWriter)> {
    let mut input = Vec::with_capacity(FIRST_READ_BUFFER);
    loop {
        send_tls(&mut conn, &mut stream).await?;
        if !conn.is_handshaking() {
            break;
        }
        let len = loop {
            if let Some(len) = complete_record(&input)? {
                break len;
            }
            if stream.read_buf(&mut input).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
        };
        let mut record = &input[..len];
        while !record.is_empty() {
            // rustls takes nothing more once the peer has said close_notify;
            // without this check the loop would never end.
            if conn.read_tls(&mut record)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the TLS session during the handshake",
                ));
            }
        }
        if let Err(e) = conn.process_new_packets() {
            // Tell the peer why (rustls queued an alert), then fail.
            let _ = send_tls(&mut conn, &mut stream).await;
            return Err(invalid(e));
        }
        input.drain(..len);
    }
    let client = matches!(conn, rustls::Connection::Client(_));
    let extracted = conn.dangerous_extract_secrets().map_err(invalid)?;
    let [client_secret, server_secret] =
        std::mem::take(&mut *secrets.0.lock().unwrap_or_else(|e| e.into_inner()));
    let (Some(client_secret), Some(server_secret)) = (client_secret, server_secret) else {
        return Err(invalid("TLS handshake finished without application traffic secrets"));
    };
    let (tx_secret, rx_secret) =
        if client { (client_secret, server_secret) } else { (server_secret, client_secret) };
    let tx = Keys::take_over(tx_secret, extracted.tx)?;
    let rx = Keys::take_over(rx_secret, extracted.rx)?;
    let (read, write) = stream.into_split();
    let update_requested = Arc::new(AtomicBool::new(false));
    let end = input.len();
    input.resize(input.capacity().max(FIRST_READ_BUFFER), 0);
    Ok((
        TlsReader {
            io: read,
            keys: rx,
            buf: input,
            start: 0,
            end,
            plain: 0..0,
            closed: false,
            error: None,
            update_requested: update_requested.clone(),
        },
        TlsWriter {
            io: write,
            keys: tx,
            out: Vec::with_capacity(SEND_AT + WRITE_BUFFER + WRITE_BUFFER / 32),
            sent: 0,
            closing: false,
            update_requested,
            records_per_key: RECORDS_PER_KEY,
        },
    ))
}

/// Key material, wiped from memory when dropped.
type Secret = Zeroizing<Vec<u8>>;

/// The length of a key derived from a secret, for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
fn expand_label(alg: hkdf::Algorithm, secret: &[u8], label: &[u8], len: usize) -> Secret {
    let prk = hkdf::Prk::new_less_safe(alg, secret);
    let length = (len as u16).to_be_bytes();
    let label_len = [(b"tls13 ".len() + label.len()) as u8];
    let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
    let mut out = Zeroizing::new(vec![0; len]);
    prk.expand(&info, Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .expect("TLS key lengths are far below HKDF's limit");
    out
}

/// One direction's keys: the traffic secret, the AEAD key and IV derived
/// from it, and the next record's sequence number.
struct Keys {
    aead: &'static aead::Algorithm,
    hkdf: hkdf::Algorithm,
    secret: Secret,
    key: aead::LessSafeKey,
    iv: [u8; aead::NONCE_LEN],
    seq: u64,
}

impl Keys {
    fn derive(
        aead: &'static aead::Algorithm,
        hkdf: hkdf::Algorithm,
        secret: Secret,
        seq: u64,
    ) -> (Self, Secret) {
        let key_bytes = expand_label(hkdf, &secret, b"key", aead.key_len());
        let iv = expand_label(hkdf, &secret, b"iv", aead::NONCE_LEN);
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(aead, &key_bytes).expect("the key has the algorithm's length"),
        );
        let iv = iv[..].try_into().expect("the IV has the nonce's length");
        (Keys { aead, hkdf, secret, key, iv, seq }, key_bytes)
    }

    /// The keys rustls finished the handshake with, re-derived from the
    /// logged secret and checked against the ones it hands over.
    fn take_over(
        secret: Secret,
        (seq, extracted): (u64, ConnectionTrafficSecrets),
    ) -> io::Result<Self> {
        let (aead, hkdf, key, iv) = match &extracted {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                (&aead::AES_128_GCM, hkdf::HKDF_SHA256, key, iv)
            }
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
                (&aead::AES_256_GCM, hkdf::HKDF_SHA384, key, iv)
            }
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, hkdf::HKDF_SHA256, key, iv)
            }
            _ => return Err(invalid("the TLS peer chose a cipher suite rudask does not support")),
        };
        let (keys, key_bytes) = Keys::derive(aead, hkdf, secret, seq);
        if key_bytes[..] != *key.as_ref() || keys.iv[..] != *iv.as_ref() {
            return Err(invalid("TLS keys derived from the handshake do not match rustls' keys"));
        }
        Ok(keys)
    }

    /// The keys after a KeyUpdate (RFC 8446 §7.2).
    fn next(&self) -> Self {
        let len = self.hkdf.hmac_algorithm().digest_algorithm().output_len();
        let secret = expand_label(self.hkdf, &self.secret, b"traffic upd", len);
        Keys::derive(self.aead, self.hkdf, secret, 0).0
    }

    fn nonce(&mut self) -> aead::Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[aead::NONCE_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        aead::Nonce::assume_unique_for_key(nonce)
    }
}

/// The reading half of a TLS connection.
pub(crate) struct TlsReader {
    io: OwnedReadHalf,
    keys: Keys,
    /// Records read from the socket are in `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Decrypted application data not yet handed out, inside `buf`.
    plain: Range<usize>,
    /// The peer sent close_notify, or a record was bad.
    closed: bool,
    /// A bad record found after some data was handed out, for the next read.
    error: Option<io::Error>,
    update_requested: Arc<AtomicBool>,
}

impl fmt::Debug for TlsReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReader").field("buffered", &(self.end - self.start)).finish()
    }
}

impl TlsReader {
    /// Decrypts the next record if it has all arrived; false if it has not.
    fn open_next(&mut self) -> io::Result<bool> {
        let at = self.start;
        let Some(len) = complete_record(&self.buf[at..self.end])? else {
            if self.end - at >= 1 && self.buf[at] != APPLICATION_DATA {
                return Err(invalid(format!(
                    "unexpected TLS record of type {} after the handshake",
                    self.buf[at]
                )));
            }
            return Ok(false);
        };
        let header: [u8; HEADER] = self.buf[at..at + HEADER].try_into().expect("a header's length");
        if header[0] != APPLICATION_DATA {
            return Err(invalid(format!(
                "unexpected TLS record of type {} after the handshake",
                header[0]
            )));
        }
        self.start = at + len;
        let nonce = self.keys.nonce();
        let body = at + HEADER;
        let inner = self
            .keys
            .key
            .open_in_place(nonce, aead::Aad::from(header), &mut self.buf[body..at + len])
            .map_err(|_| {
                invalid("a TLS record failed authentication (bad_record_mac): the data was corrupted or tampered with on the way")
            })?
            .len();
        let Some(type_at) = self.buf[body..body + inner].iter().rposition(|&b| b != 0) else {
            return Err(invalid("a TLS record carried no content type"));
        };
        let content = body..body + type_at;
        if content.len() > MAX_PLAINTEXT {
            return Err(invalid("a TLS record carried more than TLS allows"));
        }
        match self.buf[body + type_at] {
            APPLICATION_DATA => self.plain = content,
            ALERT => match &self.buf[content] {
                [_, CLOSE_NOTIFY] => self.closed = true,
                [_, code] => {
                    return Err(invalid(format!("the TLS peer sent alert {code} and closed")))
                }
                _ => return Err(invalid("a malformed TLS alert")),
            },
            HANDSHAKE => self.on_handshake(content)?,
            other => return Err(invalid(format!("unexpected TLS content type {other}"))),
        }
        Ok(true)
    }

    /// Post-handshake messages: KeyUpdate switches the receiving key;
    /// session tickets are of no use (connections are never resumed).
    fn on_handshake(&mut self, mut msgs: Range<usize>) -> io::Result<()> {
        while !msgs.is_empty() {
            let m = &self.buf[msgs.clone()];
            if m.len() < 4 {
                return Err(invalid("a truncated TLS handshake message"));
            }
            let len = usize::from(m[1]) << 16 | usize::from(m[2]) << 8 | usize::from(m[3]);
            if m.len() < 4 + len {
                return Err(invalid("a TLS handshake message split across records"));
            }
            match (m[0], &m[4..4 + len]) {
                (KEY_UPDATE, [request]) if *request <= 1 => {
                    self.keys = self.keys.next();
                    if *request == 1 {
                        self.update_requested.store(true, Ordering::Relaxed);
                    }
                }
                (NEW_SESSION_TICKET, _) => {}
                (kind, _) => {
                    return Err(invalid(format!(
                        "unexpected TLS handshake message {kind} after the handshake"
                    )))
                }
            }
            msgs.start += 4 + len;
        }
        Ok(())
    }

    /// Makes room after `end` for at least one whole record, growing the
    /// buffer while the socket fills it.
    fn make_room(&mut self) {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.end == self.buf.len() && self.buf.len() < READ_BUFFER {
            self.buf.resize((self.buf.len() * 2).min(READ_BUFFER), 0);
        }
        if self.buf.len() - self.end < HEADER + MAX_CIPHERTEXT {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
    }
}

impl AsyncRead for TlsReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            return Poll::Ready(Err(e));
        }
        let before = out.filled().len();
        loop {
            if !this.plain.is_empty() {
                let n = this.plain.len().min(out.remaining());
                out.put_slice(&this.buf[this.plain.start..this.plain.start + n]);
                this.plain.start += n;
                if out.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            if this.closed {
                return Poll::Ready(Ok(()));
            }
            match this.open_next() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    // Nothing more is read from a broken connection.
                    this.closed = true;
                    if out.filled().len() == before {
                        return Poll::Ready(Err(e));
                    }
                    // What arrived intact goes out first, the error next.
                    this.error = Some(e);
                    return Poll::Ready(Ok(()));
                }
            }
            // What is decrypted goes out now rather than after another read.
            if out.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
            this.make_room();
            let mut space = ReadBuf::new(&mut this.buf[this.end..]);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut space))?;
            let n = space.filled().len();
            if n == 0 {
                if this.start < this.end {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection in the middle of a TLS record",
                    )));
                }
                // Closed without close_notify: the frames above notice a cut.
                this.closed = true;
                return Poll::Ready(Ok(()));
            }
            this.end += n;
        }
    }
}

/// The writing half of a TLS connection.
pub(crate) struct TlsWriter {
    io: OwnedWriteHalf,
    keys: Keys,
    /// Sealed records; `out[sent..]` is not yet written.
    out: Vec<u8>,
    sent: usize,
    closing: bool,
    update_requested: Arc<AtomicBool>,
    records_per_key: u64,
}

impl fmt::Debug for TlsWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsWriter").field("unsent", &(self.out.len() - self.sent)).finish()
    }
}

impl TlsWriter {
    /// Seals `data` as records of `content` type, switching keys first when
    /// the peer asked for it or the key has sealed its share.
    fn seal(&mut self, content: u8, data: &[u8]) -> io::Result<()> {
        for piece in data.chunks(MAX_PLAINTEXT) {
            if self.keys.seq >= self.records_per_key
                || self.update_requested.swap(false, Ordering::Relaxed)
            {
                self.seal_record(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0])?;
                self.keys = self.keys.next();
            }
            self.seal_record(content, piece)?;
        }
        Ok(())
    }

    fn seal_record(&mut self, content: u8, piece: &[u8]) -> io::Result<()> {
        let len = piece.len() + 1 + self.keys.aead.tag_len();
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        self.out.extend_from_slice(&header);
        let body = self.out.len();
        self.out.extend_from_slice(piece);
        self.out.push(content);
        let nonce = self.keys.nonce();
        let tag = self
            .keys
            .key
            .seal_in_place_separate_tag(nonce, aead::Aad::from(header), &mut self.out[body..])
            .map_err(|_| invalid("TLS encryption failed"))?;
        self.out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Writes the sealed records out.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TlsWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() - this.sent >= SEND_AT {
            ready!(this.poll_send(cx))?;
        }
        let n = data.len().min(WRITE_BUFFER);
        this.seal(APPLICATION_DATA, &data[..n])?;
        // Enough to send starts going out now; whatever the socket does not
        // take yet goes with the next write or flush.
        if this.out.len() - this.sent >= SEND_AT {
            if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            ready!(this.poll_send(cx))?;
            this.seal(ALERT, &[1, CLOSE_NOTIFY])?;
            this.closing = true;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{acceptor, connector, generate_pki};
    use tokio::net::TcpListener;

    fn ends() -> (Connector, Acceptor) {
        let pki = generate_pki().unwrap();
        (connector(&pki.ca_pem).unwrap(), acceptor(&pki.identity).unwrap())
    }

    fn name() -> ServerName<'static> {
        ServerName::try_from("rudask").unwrap()
    }

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        (client, listener.accept().await.unwrap().0)
    }

    /// Our client and server ends, connected over loopback.
    async fn connected(
        connector: &Connector,
        acceptor: &Acceptor,
    ) -> ((TlsReader, TlsWriter), (TlsReader, TlsWriter)) {
        let (c, s) = tcp_pair().await;
        let (client, server) = tokio::join!(connector.connect(name(), c), acceptor.accept(s));
        (client.unwrap(), server.unwrap())
    }

    /// Writes `data` in pieces of varied sizes with a flush after some,
    /// then shuts down.
    async fn send_all<W: AsyncWrite + Unpin>(mut w: W, data: Vec<u8>) -> W {
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = fastrand::usize(1..=rest.len().min(100_000));
            w.write_all(&rest[..n]).await.unwrap();
            if fastrand::bool() {
                w.flush().await.unwrap();
            }
            rest = &rest[n..];
        }
        w.shutdown().await.unwrap();
        w
    }

    /// Reads to the end into buffers of varied sizes.
    async fn recv_all<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0; 70_000];
        loop {
            let want = fastrand::usize(1..=buf.len());
            match r.read(&mut buf[..want]).await.unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn random_bytes(len: usize) -> Vec<u8> {
        std::iter::repeat_with(|| fastrand::u8(..)).take(len).collect()
    }

    #[tokio::test]
    async fn data_crosses_both_ways_intact_through_many_key_updates() {
        let (connector, acceptor) = ends();
        let ((cr, mut cw), (sr, mut sw)) = connected(&connector, &acceptor).await;
        cw.records_per_key = 5;
        sw.records_per_key = 7;
        let (up, down) = (random_bytes(3 << 20), random_bytes(1 << 20));
        let sends = tokio::spawn(futures::future::join(
            send_all(cw, up.clone()),
            send_all(sw, down.clone()),
        ));
        let (at_server, at_client) = tokio::join!(recv_all(sr), recv_all(cr));
        sends.await.unwrap();
        assert!(at_server == up, "client → server data differs");
        assert!(at_client == down, "server → client data differs");
    }

    #[tokio::test]
    async fn a_stock_rustls_client_interoperates_and_its_key_updates_are_followed() {
        let (connector, acceptor) = ends();
        let (c, s) = tcp_pair().await;
        let stock = tokio_rustls::TlsConnector::from(connector.0.clone());
        let (client, server) = tokio::join!(stock.connect(name(), c), acceptor.accept(s));
        let (mut client, (sr, mut sw)) = (client.unwrap(), server.unwrap());
        // Only the client's requests make the server replace its key.
        sw.records_per_key = u64::MAX;
        let first_secret = sw.keys.secret.clone();
        let up = random_bytes(1 << 20);
        let down = random_bytes(1 << 20);
        let server_side = tokio::spawn({
            let down = down.clone();
            async move {
                let got = recv_all(sr).await;
                let sw = send_all(sw, down).await;
                (got, sw.keys.secret != first_secret)
            }
        });
        for (i, piece) in up.chunks(100_000).enumerate() {
            if i % 3 == 1 {
                // A KeyUpdate that asks the server to update its key too.
                client.get_mut().1.refresh_traffic_keys().unwrap();
            }
            client.write_all(piece).await.unwrap();
        }
        client.shutdown().await.unwrap();
        let mut at_client = Vec::new();
        client.read_to_end(&mut at_client).await.unwrap();
        let (at_server, server_updated) = server_side.await.unwrap();
        assert!(at_server == up, "stock client → server data differs");
        assert!(server_updated, "the server did not answer the requested KeyUpdate");
        assert!(at_client == down, "server → stock client data differs");
    }

    #[tokio::test]
    async fn a_stock_rustls_server_interoperates() {
        let (connector, acceptor) = ends();
        let (c, s) = tcp_pair().await;
        let stock = tokio_rustls::TlsAcceptor::from(acceptor.0.clone());
        let (client, server) = tokio::join!(connector.connect(name(), c), stock.accept(s));
        let ((cr, mut cw), server) = (client.unwrap(), server.unwrap());
        cw.records_per_key = 4;
        let data = random_bytes(1 << 20);
        let (mut sr, mut sw) = tokio::io::split(server);
        let echo = tokio::spawn(async move {
            tokio::io::copy(&mut sr, &mut sw).await.unwrap();
            sw.shutdown().await.unwrap();
        });
        let (_, echoed) = tokio::join!(send_all(cw, data.clone()), recv_all(cr));
        echo.await.unwrap();
        assert!(echoed == data, "the echo differs");
    }

    #[tokio::test]
    async fn a_tampered_record_is_an_error_not_a_panic() {
        let (connector, acceptor) = ends();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = listener.local_addr().unwrap();
        let (to_proxy, proxy) = tcp_pair().await;
        // Forwards both ways, flipping one byte well past the handshake.
        tokio::spawn(async move {
            let upstream = TcpStream::connect(server_addr).await.unwrap();
            let (mut pr, mut pw) = proxy.into_split();
            let (mut ur, mut uw) = upstream.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut ur, &mut pw).await });
            let mut buf = vec![0u8; 4096];
            let mut forwarded = 0usize;
            loop {
                let n = pr.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                if forwarded <= 40_000 && forwarded + n > 40_000 {
                    buf[40_000 - forwarded] ^= 0x20;
                }
                forwarded += n;
                if uw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        let accepted = async { acceptor.accept(listener.accept().await.unwrap().0).await };
        let (client, server) = tokio::join!(connector.connect(name(), to_proxy), accepted);
        let ((_cr, cw), (mut sr, _sw)) = (client.unwrap(), server.unwrap());
        tokio::spawn(send_all(cw, random_bytes(100_000)));
        let mut got = Vec::new();
        let err = sr.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("bad_record_mac"), "{err}");
        assert!(got.len() < 40_000);
    }

    #[tokio::test]
    async fn random_bytes_beneath_the_record_layer_are_an_error_or_an_end_never_a_panic() {
        let (connector, acceptor) = ends();
        for round in 0..40 {
            let ((_cr, mut cw), (mut sr, _sw)) = connected(&connector, &acceptor).await;
            let mut junk = random_bytes(fastrand::usize(1..40_000));
            if round % 2 == 0 {
                // A well-formed header, so the body reaches decryption.
                let len = fastrand::u16(..=MAX_CIPHERTEXT as u16);
                junk.splice(0..0, [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8]);
            }
            cw.io.write_all(&junk).await.unwrap();
            cw.io.shutdown().await.unwrap();
            let mut got = Vec::new();
            match sr.read_to_end(&mut got).await {
                Ok(_) => assert!(got.is_empty(), "junk decrypted into data"),
                Err(e) => assert!(
                    matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof),
                    "{e}"
                ),
            }
        }
    }

    #[tokio::test]
    async fn records_that_are_not_tls_are_refused() {
        let (connector, acceptor) = ends();
        let ((_cr, mut cw), (mut sr, _sw)) = connected(&connector, &acceptor).await;
        // Raw bytes written beneath the record layer.
        cw.io.write_all(b"\x16\x03\x03\x00\x02hi").await.unwrap();
        let err = sr.read(&mut [0u8; 64]).await.unwrap_err();
        assert!(err.to_string().contains("unexpected TLS record of type 22"), "{err}");
        assert!(complete_record(b"\x17\x03\x03\xff\xff").is_err(), "an oversized record");
    }
}

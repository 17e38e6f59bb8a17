//! Security of cluster connections: TLS on every connection and a token in
//! the handshake.
//!
//! # Design
//!
//! - A cluster has its own certificate authority (CA). `rudask scheduler`
//!   generates one on first start (self-signed, with [`rcgen`]) plus a
//!   certificate for the cluster signed by it, and a random token; they live
//!   in the scheduler's work directory and are reused when it starts over the
//!   same directory. `--tls-cert/--tls-key/--tls-ca` bring your own instead.
//! - Clients and workers trust the cluster's CA and nothing else, and check
//!   that the peer's certificate chains to it. They do not check the host
//!   name in it: workers' data ports listen on addresses nobody knows in
//!   advance, and the per-cluster CA, not a host name, is what identifies the
//!   cluster.
//! - Workers' data ports serve TLS with the **cluster certificate**: the
//!   scheduler hands its certificate and key to each worker in the handshake
//!   reply, only after the worker proved the token over a TLS connection whose
//!   server it verified. A worker holds the token anyway, which already lets
//!   it read every result and run any task, so sharing the cluster key with it
//!   grants nothing more; in exchange a worker needs only the token and the CA
//!   (no certificate of its own, no shared files). A worker given
//!   `--tls-cert/--tls-key` serves with those instead.
//! - Every accepting side (scheduler and data ports) checks the token in the
//!   [`Hello`](rudask_core::protocol::Hello) in constant time and refuses a
//!   peer without it, with a reason that says how to get it.
//! - Until a peer is authenticated, its frames are bounded to a small size,
//!   so a stranger cannot make a server allocate much.
//! - rustls (TLS 1.3 only, ring) runs the handshake; then the runtime's
//!   `tls` module protects each direction's records itself, which keeps
//!   large transfers nearly as fast as plain TCP (see there).
//! - The connection file (JSON, mode 0600, like Jupyter's) carries the
//!   address, the token and the CA certificate: all a client or worker needs.
//!
//! `--insecure` (or [`SchedulerSecurity::Insecure`]) turns TLS and the token
//! off for trusted networks. TLS addresses are `tls://host:port`; plain ones
//! `tcp://host:port`.

use crate::error::{Error, Result};
use crate::runtime::tls::{Acceptor, Connector};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variable naming a connection file.
pub const ENV_CONNECTION_FILE: &str = "RUDASK_CONNECTION_FILE";
/// Environment variable holding the cluster token.
pub const ENV_TOKEN: &str = "RUDASK_TOKEN";
/// Environment variable holding the cluster CA: a PEM file's path, or the PEM text itself.
pub const ENV_TLS_CA: &str = "RUDASK_TLS_CA";

/// Name of the connection file in a scheduler's work directory.
pub const CONNECTION_FILE_NAME: &str = "connection.json";

/// What a client or worker needs to join a secured cluster: the token and
/// the cluster's CA certificate. Empty credentials join `--insecure` clusters.
///
/// ```
/// let creds = rudask::Credentials::new()
///     .token("0123abcd")
///     .tls_ca_pem("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n");
/// assert!(creds.has_token());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    token: Option<String>,
    ca_pem: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("tls_ca", &self.ca_pem.is_some())
            .finish()
    }
}

impl Credentials {
    /// No token, no CA (for `--insecure` clusters).
    ///
    /// ```
    /// assert!(!rudask::Credentials::new().has_token());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the cluster token.
    ///
    /// ```
    /// assert!(rudask::Credentials::new().token("abc").has_token());
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets the cluster CA certificate, as PEM text.
    ///
    /// ```
    /// let c = rudask::Credentials::new().tls_ca_pem("-----BEGIN CERTIFICATE-----\n");
    /// assert!(c.has_tls_ca());
    /// ```
    pub fn tls_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Sets the cluster CA certificate from a PEM file.
    ///
    /// ```no_run
    /// let c = rudask::Credentials::new().tls_ca_file("/tmp/rudask-scheduler-8786/ca.pem")?;
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn tls_ca_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path).map_err(|e| {
            Error::InvalidArgument(format!(
                "could not read the TLS CA file {}: {e}",
                path.display()
            ))
        })?;
        Ok(self.tls_ca_pem(pem))
    }

    pub(crate) fn token_str(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub(crate) fn tls_ca_str(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// True when a token is set.
    ///
    /// ```
    /// assert!(!rudask::Credentials::new().has_token());
    /// ```
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// True when a CA is set, so connections use TLS.
    ///
    /// ```
    /// assert!(!rudask::Credentials::new().has_tls_ca());
    /// ```
    pub fn has_tls_ca(&self) -> bool {
        self.ca_pem.is_some()
    }

    /// Credentials from the environment: `RUDASK_CONNECTION_FILE`, then
    /// `RUDASK_TOKEN` and `RUDASK_TLS_CA` (a path or PEM text) on top of it.
    /// Empty when none is set.
    ///
    /// ```
    /// let creds = rudask::Credentials::from_env()?;
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn from_env() -> Result<Self> {
        let mut creds = match std::env::var_os(ENV_CONNECTION_FILE) {
            Some(path) if !path.is_empty() => ConnectionFile::read(path)?.credentials(),
            _ => Credentials::new(),
        };
        if let Some(token) = std::env::var(ENV_TOKEN).ok().filter(|t| !t.is_empty()) {
            creds.token = Some(token);
        }
        if let Some(ca) = std::env::var(ENV_TLS_CA).ok().filter(|c| !c.is_empty()) {
            creds = creds.tls_ca(&ca)?;
        }
        Ok(creds)
    }

    /// Sets the CA from `value`: PEM text if it looks like PEM, else a path.
    pub(crate) fn tls_ca(self, value: &str) -> Result<Self> {
        if value.trim_start().starts_with("-----BEGIN") {
            Ok(self.tls_ca_pem(value))
        } else {
            self.tls_ca_file(value)
        }
    }

    /// The runtime form: a TLS connector (when a CA is set) and the token.
    pub(crate) fn security(&self) -> Result<Security> {
        let connector = match &self.ca_pem {
            Some(pem) => Some(connector(pem)?),
            None => None,
        };
        Ok(Security {
            token: self.token.as_deref().map(Arc::from),
            connector,
            acceptor: None,
            identity: None,
        })
    }
}

/// The connection file a scheduler writes: everything a client or worker
/// needs to join it.
///
/// ```no_run
/// let file = rudask::ConnectionFile::read("/tmp/rudask-scheduler-8786/connection.json")?;
/// println!("scheduler at {}", file.address);
/// # Ok::<(), rudask::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionFile {
    /// The scheduler's address (`tls://host:port`, or `tcp://` when insecure).
    pub address: String,
    /// The cluster token, if the scheduler checks one.
    pub token: Option<String>,
    /// The cluster CA certificate (PEM), if the scheduler uses TLS.
    pub tls_ca: Option<String>,
    /// Where the CA certificate is stored, for tools that want a file.
    pub tls_ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ConnectionFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionFile")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

impl ConnectionFile {
    /// Reads a connection file.
    ///
    /// ```no_run
    /// let file = rudask::ConnectionFile::read("connection.json")?;
    /// # Ok::<(), rudask::Error>(())
    /// ```
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::InvalidArgument(format!(
                "could not read the connection file {}: {e}; the scheduler prints its path when it starts",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::InvalidArgument(format!(
                "{} is not a rudask connection file: {e}",
                path.display()
            ))
        })
    }

    /// The token and CA in this file.
    ///
    /// ```
    /// let file = rudask::ConnectionFile {
    ///     address: "tls://127.0.0.1:8786".into(),
    ///     token: Some("abc".into()),
    ///     tls_ca: None,
    ///     tls_ca_file: None,
    /// };
    /// assert!(file.credentials().has_token());
    /// ```
    pub fn credentials(&self) -> Credentials {
        Credentials { token: self.token.clone(), ca_pem: self.tls_ca.clone() }
    }

    /// Writes the file readable by its owner only (it holds the token).
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Io(format!("could not encode the connection file: {e}")))?;
        write_private(path, text.as_bytes())
    }
}

/// How a scheduler secures its connections.
///
/// ```
/// let opts = rudask::SchedulerOptions {
///     port: 0,
///     security: rudask::SchedulerSecurity::Insecure,
///     ..Default::default()
/// };
/// ```
#[derive(Clone, Debug, Default)]
pub enum SchedulerSecurity {
    /// Generate a CA, cluster certificate and token in memory (the default
    /// for schedulers started from code; [`crate::SchedulerHandle::credentials`]
    /// gives them to clients and workers).
    #[default]
    Generate,
    /// Generate them into this directory on first start, reuse them on later
    /// starts, and write the connection file there (what `rudask scheduler` does).
    WorkDir(PathBuf),
    /// Use these PEM files; a token is generated unless given.
    Files {
        /// The scheduler's certificate chain.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
        /// The CA clients and workers trust.
        ca: PathBuf,
        /// The token; generated when `None`.
        token: Option<String>,
        /// Where to write the connection file, if anywhere.
        work_dir: Option<PathBuf>,
    },
    /// No TLS and no token: anyone who can reach the port controls the cluster.
    Insecure,
}

pub(crate) use rudask_core::protocol::TlsIdentity as Identity;

/// Reads a certificate chain and key from PEM files.
pub(crate) fn identity_from_files(cert: &Path, key: &Path) -> Result<Identity> {
    Ok(Identity {
        cert_pem: read_text(cert, "TLS certificate")?,
        key_pem: read_text(key, "TLS private key")?,
    })
}

fn ambient_slot() -> &'static std::sync::RwLock<Security> {
    static AMBIENT: std::sync::OnceLock<std::sync::RwLock<Security>> = std::sync::OnceLock::new();
    AMBIENT.get_or_init(Default::default)
}

/// Makes `security` what connections without an owner use: those to actors'
/// workers, which any client or task of this process may make. The last
/// worker or client that joined a cluster over TCP sets it.
pub(crate) fn set_ambient(security: &Security) {
    *ambient_slot().write().unwrap_or_else(|p| p.into_inner()) = security.clone();
}

/// See [`set_ambient`].
pub(crate) fn ambient() -> Security {
    ambient_slot().read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The security of one side of connections, ready to use.
#[derive(Clone, Default)]
pub(crate) struct Security {
    /// Token sent when connecting and required when accepting.
    pub(crate) token: Option<Arc<str>>,
    /// TLS towards `tls://` addresses.
    pub(crate) connector: Option<Connector>,
    /// TLS for accepted connections.
    pub(crate) acceptor: Option<Acceptor>,
    /// The cluster certificate the scheduler hands to workers.
    pub(crate) identity: Option<Arc<Identity>>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("token", &self.token.is_some())
            .field("tls_client", &self.connector.is_some())
            .field("tls_server", &self.acceptor.is_some())
            .finish()
    }
}

impl Security {
    /// True when this side serves TLS.
    pub(crate) fn serves_tls(&self) -> bool {
        self.acceptor.is_some()
    }

    /// Serves TLS with `identity` from now on.
    pub(crate) fn with_identity(mut self, identity: &Identity) -> Result<Self> {
        self.acceptor = Some(acceptor(identity)?);
        Ok(self)
    }

    /// Whether `offered` is the token this side requires (always when none is
    /// required). Constant-time in the token's contents.
    pub(crate) fn admits(&self, offered: Option<&str>) -> bool {
        match &self.token {
            None => true,
            Some(required) => offered.is_some_and(|o| tokens_equal(required, o)),
        }
    }
}

/// Compares tokens without a timing side channel on their contents.
pub(crate) fn tokens_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite;
    Arc::new(CryptoProvider {
        // TLS 1.3 only (both ends are rudask), AES-128-GCM first: as safe
        // here as AES-256, and faster on bulk data.
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    })
}

/// The TLS versions spoken.
const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{what}: {e}"))
}

/// A random token: 32 bytes from the system's secure generator, as hex.
pub(crate) fn generate_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| Error::Io("the system's secure random generator failed".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The PEM of a new CA, and of a cluster certificate and key signed by it.
pub(crate) struct GeneratedPki {
    pub(crate) ca_pem: String,
    pub(crate) ca_key_pem: String,
    pub(crate) identity: Identity,
}

/// Generates a self-signed CA and a cluster certificate signed by it.
pub(crate) fn generate_pki() -> Result<GeneratedPki> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let fail = |e: rcgen::Error| Error::Io(format!("could not generate TLS certificates: {e}"));
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.distinguished_name.push(DnType::CommonName, "rudask cluster CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(vec!["rudask".to_string(), "localhost".to_string()])
        .map_err(fail)?;
    leaf.distinguished_name.push(DnType::CommonName, "rudask cluster");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(fail)?;
    Ok(GeneratedPki {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        identity: Identity { cert_pem: cert.pem(), key_pem: key.serialize_pem() },
    })
}

fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&format!("could not read the {what}"), e))?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!("the {what} holds no PEM certificate")));
    }
    Ok(certs)
}

/// A connector trusting only the CA(s) in `ca_pem`.
pub(crate) fn connector(ca_pem: &str) -> Result<Connector> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_pem, "TLS CA certificate")? {
        roots.add(cert).map_err(|e| tls_error("the TLS CA certificate is not usable", e))?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| tls_error("the TLS CA certificate is not usable", e))?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| tls_error("TLS setup failed", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ClusterVerifier(inner)))
        .with_no_client_auth();
    Ok(Connector::new(config))
}

/// An acceptor serving `identity`.
pub(crate) fn acceptor(identity: &Identity) -> Result<Acceptor> {
    let certs = parse_certs(&identity.cert_pem, "TLS certificate")?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| tls_error("could not read the TLS private key", e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| tls_error("TLS setup failed", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("the TLS certificate and key do not fit together", e))?;
    // Connections are long-lived and never resumed.
    config.send_tls13_tickets = 0;
    Ok(Acceptor::new(config))
}

/// Checks that the server's certificate chains to the cluster CA, whatever
/// name it is for (see the module documentation).
#[derive(Debug)]
struct ClusterVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ClusterVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // The name is checked after the chain, so this error means the chain
        // to the cluster CA is valid.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Writes `bytes` to `path`, readable and writable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| Error::Io(format!("could not write {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::InvalidArgument(format!("could not read the {what} {}: {e}", path.display()))
    })
}

/// A scheduler's security, set up: what it serves with, and what it tells
/// clients and workers.
#[derive(Debug)]
pub(crate) struct SchedulerSetup {
    pub(crate) security: Security,
    pub(crate) credentials: Credentials,
    /// The directory the connection file goes to, if any.
    pub(crate) work_dir: Option<PathBuf>,
    /// Where the CA certificate is stored, if on disk.
    pub(crate) ca_file: Option<PathBuf>,
}

impl SchedulerSetup {
    /// Writes the connection file into the work directory, if there is one,
    /// and returns its path.
    pub(crate) fn write_connection_file(&self, address: &str) -> Result<Option<PathBuf>> {
        let Some(dir) = &self.work_dir else { return Ok(None) };
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
            Error::Io(format!("could not create the work directory {}: {e}", dir.display()))
        })?;
        let path = dir.join(CONNECTION_FILE_NAME);
        let file = ConnectionFile {
            address: address.to_string(),
            token: self.credentials.token.clone(),
            tls_ca: self.credentials.ca_pem.clone(),
            tls_ca_file: self.ca_file.clone(),
        };
        file.write(&path)?;
        Ok(Some(path))
    }
}

impl SchedulerSecurity {
    /// Generates or loads the scheduler's certificates and token.
    pub(crate) fn setup(&self) -> Result<SchedulerSetup> {
        let (ca_pem, identity, token, work_dir, ca_file) = match self {
            SchedulerSecurity::Insecure => {
                tracing::warn!(
                    "TLS and token authentication are OFF (insecure): anyone who can reach the \
                     scheduler's port can run code on the cluster; use only on trusted networks"
                );
                return Ok(SchedulerSetup {
                    security: Security::default(),
                    credentials: Credentials::new(),
                    work_dir: None,
                    ca_file: None,
                });
            }
            SchedulerSecurity::Generate => {
                let pki = generate_pki()?;
                (pki.ca_pem, pki.identity, generate_token()?, None, None)
            }
            SchedulerSecurity::WorkDir(dir) => {
                let (ca_pem, identity, token) = load_or_generate(dir)?;
                (ca_pem, identity, token, Some(dir.clone()), Some(dir.join("ca.pem")))
            }
            SchedulerSecurity::Files { cert, key, ca, token, work_dir } => {
                let identity = identity_from_files(cert, key)?;
                let token = match token {
                    Some(t) => t.clone(),
                    None => generate_token()?,
                };
                (
                    read_text(ca, "TLS CA certificate")?,
                    identity,
                    token,
                    work_dir.clone(),
                    Some(ca.clone()),
                )
            }
        };
        let credentials = Credentials::new().token(token).tls_ca_pem(ca_pem);
        let mut security = credentials.security()?.with_identity(&identity)?;
        security.identity = Some(Arc::new(identity));
        Ok(SchedulerSetup { security, credentials, work_dir, ca_file })
    }
}

/// Loads the CA, cluster certificate and token from `dir`, generating (and
/// storing) them on first use.
fn load_or_generate(dir: &Path) -> Result<(String, Identity, String)> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
        Error::Io(format!("could not create the scheduler's work directory {}: {e}", dir.display()))
    })?;
    let (ca, cert, key, token) =
        (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"), dir.join("token"));
    if [&ca, &cert, &key, &token].iter().all(|p| p.exists()) {
        let identity = identity_from_files(&cert, &key)?;
        let token = read_text(&token, "token file")?.trim().to_string();
        return Ok((read_text(&ca, "TLS CA certificate")?, identity, token));
    }
    let pki = generate_pki()?;
    let token_text = generate_token()?;
    write_private(&dir.join("ca-key.pem"), pki.ca_key_pem.as_bytes())?;
    write_private(&ca, pki.ca_pem.as_bytes())?;
    write_private(&cert, pki.identity.cert_pem.as_bytes())?;
    write_private(&key, pki.identity.key_pem.as_bytes())?;
    write_private(&token, token_text.as_bytes())?;
    tracing::info!(dir = %dir.display(), "generated a cluster CA, certificate and token");
    Ok((pki.ca_pem, pki.identity, token_text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("", "a"));
        let s = Security { token: Some("secret".into()), ..Default::default() };
        assert!(s.admits(Some("secret")));
        assert!(!s.admits(Some("secreT")));
        assert!(!s.admits(None));
        assert!(Security::default().admits(None));
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (a, b) = (generate_token().unwrap(), generate_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn generated_certificates_load_and_chain_to_their_ca() {
        let pki = generate_pki().unwrap();
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        acceptor(&pki.identity).unwrap();
        connector(&pki.ca_pem).unwrap();
        let roots = {
            let mut r = RootCertStore::empty();
            r.add(parse_certs(&pki.ca_pem, "ca").unwrap().remove(0)).unwrap();
            Arc::new(r)
        };
        let verifier = ClusterVerifier(
            WebPkiServerVerifier::builder_with_provider(roots, provider()).build().unwrap(),
        );
        let leaf = parse_certs(&pki.identity.cert_pem, "cert").unwrap().remove(0);
        let name = ServerName::try_from("10.1.2.3").unwrap();
        verifier.verify_server_cert(&leaf, &[], &name, &[], UnixTime::now()).unwrap();
        // A certificate of another cluster does not chain to this CA.
        let other = generate_pki().unwrap();
        let foreign = parse_certs(&other.identity.cert_pem, "cert").unwrap().remove(0);
        assert!(verifier.verify_server_cert(&foreign, &[], &name, &[], UnixTime::now()).is_err());
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let err = connector("not pem").err().unwrap().to_string();
        assert!(err.contains("CA"), "{err}");
        let bad = Identity { cert_pem: "x".into(), key_pem: "y".into() };
        assert!(acceptor(&bad).is_err());
    }

    #[test]
    fn work_dir_keeps_its_credentials_across_starts() {
        let dir =
            std::env::temp_dir().join(format!("rudask-sec-test-{}", generate_token().unwrap()));
        let first = SchedulerSecurity::WorkDir(dir.clone()).setup().unwrap();
        let second = SchedulerSecurity::WorkDir(dir.clone()).setup().unwrap();
        assert_eq!(first.credentials, second.credentials);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is private");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! TLS for the QUIC connection: the host's and the client's self-signed identities, the
//! client's pinned check of the host, and the host's certificate request to the client.
//!
//! Owns certificate generation and storage, and the rustls configurations (TLS 1.3 only,
//! ALPN `kumo`). Both sides present a certificate (mutual TLS). The host asks for the
//! client's but does not require one here: whether a client is paired is decided after the
//! handshake (`peer_fingerprint`), so that a refusal can be a readable `Reject`, not a bare TLS
//! alert. It must not offer a silent way around verification: skipping the host check takes
//! an explicit `Verify::InsecureSkip`, which logs a warning every time it is used.

pub use crate::core::trust::Fingerprint;
use crate::core::wire::ALPN;
use crate::net::files;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("could not make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("QUIC does not accept this TLS setup: {0}")]
    Quic(String),
    #[error(
        "could not {action} the {role} identity in {}: {source}; check that the folder is writable by this user (a host can use another with --identity)",
        dir.display()
    )]
    Identity { action: &'static str, role: &'static str, dir: std::path::PathBuf, source: std::io::Error },
    #[error(
        "the {role} identity in {} is damaged ({reason}); move the folder away to make a new one (its peers must then pair again)",
        dir.display()
    )]
    BadIdentity { role: &'static str, dir: std::path::PathBuf, reason: String },
    #[error(transparent)]
    BadFingerprint(#[from] crate::core::trust::BadFingerprint),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which side an identity belongs to: its files are named after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Host,
    Client,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Client => "client",
        }
    }
}

/// A TLS identity: a self-signed certificate and its key, fresh or kept in a folder so that a
/// restarted host keeps its fingerprint (and clients reconnect to it), and a client stays the
/// one its hosts paired with.
#[derive(Clone)]
pub struct Identity {
    pub fingerprint: Fingerprint,
    cert: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.fingerprint.to_string()).finish_non_exhaustive()
    }
}

impl Identity {
    pub fn generate(role: Role) -> Result<Self, TlsError> {
        let certified = rcgen::generate_simple_self_signed(vec![format!("kumo-{}", role.name())])?;
        let cert = certified.cert.der().clone();
        Ok(Self { fingerprint: Fingerprint::of(&cert), cert, key_pkcs8: certified.signing_key.serialize_der() })
    }

    /// The identity kept in `dir` (`host-cert.der` and `host-key.der`, or `client-…`), made and
    /// saved there on first use. The key file is readable by its owner only.
    pub fn load_or_create(dir: &std::path::Path, role: Role) -> Result<Self, TlsError> {
        let name = role.name();
        let io = |action, source| TlsError::Identity { action, role: name, dir: dir.to_owned(), source };
        if let Some(found) = Self::load(dir, role)? {
            return Ok(found);
        }
        // Made under a lock, so two processes starting at once (a kiosk and `kumo pair`) end
        // with one identity, not the key of one and the certificate of the other.
        files::create_private_dir(dir).map_err(|e| io("create", e))?;
        let lock = files::open_lock(&dir.join(format!("{name}.lock"))).map_err(|e| io("lock", e))?;
        lock.lock().map_err(|e| io("lock", e))?;
        if let Some(found) = Self::load(dir, role)? {
            return Ok(found);
        }
        let identity = Self::generate(role)?;
        let (cert_path, key_path) = (dir.join(format!("{name}-cert.der")), dir.join(format!("{name}-key.der")));
        files::write_private(&key_path, &identity.key_pkcs8).map_err(|e| io("save", e))?;
        files::write_private(&cert_path, &identity.cert).map_err(|e| io("save", e))?;
        Ok(identity)
    }

    /// The identity kept in `dir`, or `None` if there is none yet.
    fn load(dir: &std::path::Path, role: Role) -> Result<Option<Self>, TlsError> {
        let name = role.name();
        let (cert_path, key_path) = (dir.join(format!("{name}-cert.der")), dir.join(format!("{name}-key.der")));
        let io = |action, source| TlsError::Identity { action, role: name, dir: dir.to_owned(), source };
        match (std::fs::read(&cert_path), std::fs::read(&key_path)) {
            (Ok(cert), Ok(key_pkcs8)) => {
                files::warn_if_others_can_read(&key_path);
                let bad = |reason: String| TlsError::BadIdentity { role: name, dir: dir.to_owned(), reason };
                // Parse the key to find damage now, not at the first client.
                ring::signature::EcdsaKeyPair::from_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &key_pkcs8,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| bad(format!("the key does not parse: {e}")))
                .and_then(|pair| {
                    use ring::signature::KeyPair as _;
                    // The certificate carries the key's public half (in its SubjectPublicKeyInfo).
                    let public = pair.public_key().as_ref();
                    if cert.len() < 64 || cert[0] != 0x30 {
                        Err(bad("the certificate is not DER".into()))
                    } else if !cert.windows(public.len()).any(|w| w == public) {
                        Err(bad("the certificate is not the key's".into()))
                    } else {
                        Ok(())
                    }
                })?;
                Ok(Some(Self { fingerprint: Fingerprint::of(&cert), cert: CertificateDer::from(cert), key_pkcs8 }))
            }
            (Err(a), Err(_)) if a.kind() == std::io::ErrorKind::NotFound => Ok(None),
            (Err(e), _) | (_, Err(e)) => Err(io("read", e)),
        }
    }

    /// The QUIC server settings with this identity, `transport` for every connection.
    pub fn server_config(&self, transport: Arc<quinn::TransportConfig>) -> Result<quinn::ServerConfig, TlsError> {
        let key = self.key();
        let provider = provider();
        let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(AnyClientCert { provider }))
            .with_single_cert(vec![self.cert.clone()], key)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        config.transport_config(transport);
        // What a caller may send before its handshake is accepted is kept unread: a little
        // each, a little in all (quinn's defaults are 10 MiB and 100 MiB).
        config.incoming_buffer_size(INCOMING_BUFFER).incoming_buffer_size_total(INCOMING_BUFFER_TOTAL);
        Ok(config)
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// Early data a caller may send before its connection is accepted, each and in all.
const INCOMING_BUFFER: u64 = 64 * 1024;
const INCOMING_BUFFER_TOTAL: u64 = 4 * 1024 * 1024;

/// The fingerprint of the certificate the peer presented on `conn` (`None`: it presented none).
pub fn peer_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let chain = conn.peer_identity()?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    chain.first().map(|cert| Fingerprint::of(cert))
}

/// The host's check of client certificates during the handshake: well-formed, and the client
/// proves it holds the key. Whether the client is paired is the host's decision afterwards.
/// Not mandatory, so a client with none still gets a readable refusal.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        rustls::server::ParsedCertificate::try_from(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("kumo speaks TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// How the client checks the host's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The certificate's SHA-256 must equal this.
    Pinned(Fingerprint),
    /// Accept any certificate. Explicit, and logged loudly.
    InsecureSkip,
}

/// What the verifier saw, so a failed connection can say why in a sentence.
#[derive(Debug, Default)]
pub struct SeenCertificate(Mutex<Option<Fingerprint>>);

impl SeenCertificate {
    pub fn get(&self) -> Option<Fingerprint> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the client's verifier does with the host's certificate: check it, or (pairing only,
/// where the PIN proves the host instead) record it. Pairing's mode is not a `Verify`, so no
/// streaming connection can select it.
#[derive(Debug, Clone, Copy)]
enum Check {
    Verify(Verify),
    Pairing,
}

#[derive(Debug)]
struct PinnedVerifier {
    check: Check,
    seen: Arc<SeenCertificate>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        *self.seen.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(got);
        match self.check {
            Check::Verify(Verify::Pinned(want)) if want == got => Ok(ServerCertVerified::assertion()),
            Check::Verify(Verify::Pinned(want)) => Err(rustls::Error::General(format!(
                "host certificate fingerprint {got} does not match the expected {want}"
            ))),
            // The pairing run proves the host with the PIN before anything is trusted.
            Check::Pairing => Ok(ServerCertVerified::assertion()),
            Check::Verify(Verify::InsecureSkip) => {
                tracing::warn!(%got, "NOT verifying the host's certificate (--insecure-skip-verify)");
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("kumo speaks TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The handshake is still proven: the host must hold the pinned certificate's key.
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration that checks the host as `verify` says and presents `identity` (if
/// any) to the host; `seen` records the certificate the host presented.
pub fn client_config(
    verify: Verify,
    identity: Option<&Identity>,
    transport: Arc<quinn::TransportConfig>,
) -> Result<(quinn::ClientConfig, Arc<SeenCertificate>), TlsError> {
    make_client_config(Check::Verify(verify), identity, transport)
}

/// The configuration of a pairing run: it presents `identity` and accepts the host's
/// certificate for now, recording it in `seen`; the PIN then proves which host it was.
pub fn pairing_client_config(
    identity: &Identity,
    transport: Arc<quinn::TransportConfig>,
) -> Result<(quinn::ClientConfig, Arc<SeenCertificate>), TlsError> {
    make_client_config(Check::Pairing, Some(identity), transport)
}

fn make_client_config(
    check: Check,
    identity: Option<&Identity>,
    transport: Arc<quinn::TransportConfig>,
) -> Result<(quinn::ClientConfig, Arc<SeenCertificate>), TlsError> {
    let provider = provider();
    let seen = Arc::new(SeenCertificate::default());
    let verifier = PinnedVerifier { check, seen: seen.clone(), provider: provider.clone() };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut tls = match identity {
        Some(id) => builder.with_client_auth_cert(vec![id.cert.clone()], id.key())?,
        None => builder.with_no_client_auth(),
    };
    if matches!(check, Check::Pairing) {
        tls.resumption = rustls::client::Resumption::disabled();
    }
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport);
    Ok((config, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_identity_keeps_its_fingerprint_and_its_key_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kumo-identity-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let first = Identity::load_or_create(&dir.join("host"), Role::Host).unwrap();
        let again = Identity::load_or_create(&dir.join("host"), Role::Host).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "a restarted host must keep its certificate");
        assert_ne!(first.fingerprint, Identity::generate(Role::Host).unwrap().fingerprint);
        let mode = std::fs::metadata(dir.join("host/host-key.der")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key must be readable by its owner only");
        again.server_config(crate::net::transport()).expect("the kept key still signs");
        // A certificate that is not the key's (two processes raced) is reported too.
        let other = Identity::generate(Role::Host).unwrap();
        std::fs::write(dir.join("host/host-cert.der"), &*other.cert).unwrap();
        let err = Identity::load_or_create(&dir.join("host"), Role::Host).expect_err("a mismatched pair is an error");
        assert!(err.to_string().contains("not the key's"), "{err}");
        // A damaged key is reported, not replaced behind the user's back.
        std::fs::write(dir.join("host/host-key.der"), b"garbage").unwrap();
        let err = Identity::load_or_create(&dir.join("host"), Role::Host).expect_err("a damaged key is an error");
        assert!(err.to_string().contains("damaged"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

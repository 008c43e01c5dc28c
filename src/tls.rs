//! TLS for the QUIC connection: the host's self-signed identity and the client's pinned
//! fingerprint check.
//!
//! Owns certificate generation, fingerprints, and the rustls configurations (TLS 1.3 only,
//! ALPN `kumo`). It must not offer a silent way around verification: skipping it takes an
//! explicit `Verify::InsecureSkip`, which logs a warning every time it is used.

use crate::core::wire::ALPN;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("could not make the host certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("QUIC does not accept this TLS setup: {0}")]
    Quic(String),
    #[error(
        "could not {action} the host identity in {}: {source}; check that the folder is writable by this user, or pass another with --identity",
        dir.display()
    )]
    Identity { action: &'static str, dir: std::path::PathBuf, source: std::io::Error },
    #[error(
        "the host identity in {} is damaged ({reason}); move the folder away to make a new one (clients must then trust the new fingerprint)",
        dir.display()
    )]
    BadIdentity { dir: std::path::PathBuf, reason: String },
    #[error(
        "'{0}' is not a SHA-256 fingerprint: expected 64 hex digits (colons allowed), as `kumo host` prints at start"
    )]
    BadFingerprint(String),
}

/// A SHA-256 certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Parses 64 hex digits, with or without colons, in either case.
    pub fn parse(text: &str) -> Result<Self, TlsError> {
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        let bad = || TlsError::BadFingerprint(text.to_owned());
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::with_capacity(95);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            write!(s, "{b:02X}").ok();
        }
        f.write_str(&s)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The host's TLS identity: a self-signed certificate, fresh or kept in a folder so that a
/// restarted host keeps its fingerprint (and clients reconnect to it).
pub struct HostIdentity {
    pub fingerprint: Fingerprint,
    cert: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
}

impl HostIdentity {
    pub fn generate() -> Result<Self, TlsError> {
        let certified = rcgen::generate_simple_self_signed(vec!["kumo-host".to_owned()])?;
        let cert = certified.cert.der().clone();
        Ok(Self { fingerprint: Fingerprint::of(&cert), cert, key_pkcs8: certified.signing_key.serialize_der() })
    }

    /// The identity kept in `dir` (`host-cert.der`, `host-key.der`), made and saved there on
    /// first use. The key file is readable by its owner only.
    pub fn load_or_create(dir: &std::path::Path) -> Result<Self, TlsError> {
        let (cert_path, key_path) = (dir.join("host-cert.der"), dir.join("host-key.der"));
        let io = |action, source| TlsError::Identity { action, dir: dir.to_owned(), source };
        match (std::fs::read(&cert_path), std::fs::read(&key_path)) {
            (Ok(cert), Ok(key_pkcs8)) => {
                let bad = |reason: String| TlsError::BadIdentity { dir: dir.to_owned(), reason };
                // Parse the key to find damage now, not at the first client.
                ring::signature::EcdsaKeyPair::from_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &key_pkcs8,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| bad(format!("the key does not parse: {e}")))?;
                if cert.len() < 64 || cert[0] != 0x30 {
                    return Err(bad("the certificate is not DER".into()));
                }
                Ok(Self { fingerprint: Fingerprint::of(&cert), cert: CertificateDer::from(cert), key_pkcs8 })
            }
            (Err(a), Err(_)) if a.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::generate()?;
                create_private_dir(dir).map_err(|e| io("create", e))?;
                write_private(&key_path, &identity.key_pkcs8).map_err(|e| io("save", e))?;
                write_private(&cert_path, &identity.cert).map_err(|e| io("save", e))?;
                Ok(identity)
            }
            (Err(e), _) | (_, Err(e)) => Err(io("read", e)),
        }
    }

    pub fn server_config(&self, transport: Arc<quinn::TransportConfig>) -> Result<quinn::ServerConfig, TlsError> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        config.transport_config(transport);
        Ok(config)
    }
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes a file readable by its owner only, whole or not at all (a temporary file renamed
/// into place, so two hosts starting at once never see half a key).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
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

#[derive(Debug)]
struct PinnedVerifier {
    verify: Verify,
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
        match self.verify {
            Verify::Pinned(want) if want == got => Ok(ServerCertVerified::assertion()),
            Verify::Pinned(want) => Err(rustls::Error::General(format!(
                "host certificate fingerprint {got} does not match the expected {want}"
            ))),
            Verify::InsecureSkip => {
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

/// A client configuration that checks the host as `verify` says; `seen` records the
/// certificate the host presented.
pub fn client_config(
    verify: Verify,
    transport: Arc<quinn::TransportConfig>,
) -> Result<(quinn::ClientConfig, Arc<SeenCertificate>), TlsError> {
    let provider = provider();
    let seen = Arc::new(SeenCertificate::default());
    let verifier = PinnedVerifier { verify, seen: seen.clone(), provider: provider.clone() };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
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
    fn fingerprints_print_and_parse() {
        let fp = Fingerprint::of(b"certificate");
        let text = fp.to_string();
        assert_eq!(text.len(), 95);
        assert_eq!(Fingerprint::parse(&text).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&text.replace(':', "").to_lowercase()).unwrap(), fp);
        assert!(Fingerprint::parse("AB:CD").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_kept_identity_keeps_its_fingerprint_and_its_key_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kumo-identity-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let first = HostIdentity::load_or_create(&dir.join("host")).unwrap();
        let again = HostIdentity::load_or_create(&dir.join("host")).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "a restarted host must keep its certificate");
        assert_ne!(first.fingerprint, HostIdentity::generate().unwrap().fingerprint);
        let mode = std::fs::metadata(dir.join("host/host-key.der")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key must be readable by its owner only");
        again.server_config(crate::net::transport()).expect("the kept key still signs");
        // A damaged key is reported, not replaced behind the user's back.
        std::fs::write(dir.join("host/host-key.der"), b"garbage").unwrap();
        let err = HostIdentity::load_or_create(&dir.join("host")).err().expect("a damaged key is an error");
        assert!(err.to_string().contains("damaged"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

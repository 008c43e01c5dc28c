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

/// The host's TLS identity: a fresh self-signed certificate (pairing will persist it).
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
}

//! Pairing (`kumo pair HOST` and `kumo host --pair`): a client and a host that share a short
//! PIN prove it to each other without sending it, and each then keeps the other's certificate
//! fingerprint. docs/design/pairing.md has the reasoning; in short:
//!
//! - the run happens inside a TLS 1.3 connection in which both present their certificates; the
//!   client cannot check the host's yet, so the PIN must prove it;
//! - SPAKE2 (Ed25519 group) turns the PIN into a shared key; an active attacker learns one
//!   guess per run, only through the confirmation, so the host counts a try when it checks a
//!   client's proof (3 per PIN), and runs abandoned before it cost nothing;
//! - both SPAKE2 identities carry the certificate fingerprints each side saw, and the
//!   confirmation tags cover a transcript salted with the TLS exporter, so a relay that
//!   terminates TLS on both sides makes the keys differ and the run fail;
//! - the client proves the key first; the host stores the client, then proves it too, and only
//!   then does the client keep the host.
//!
//! The pure rules (PIN, window, records) are `core::trust`; storage is `trust`.

use crate::core::trust::{Closed, Fingerprint, PairingWindow, Pin};
use crate::core::wire::{Control, PAIR_TAG_LEN, PAKE_MESSAGE_LEN, PROTOCOL_VERSION, RejectReason};
use crate::net::tls::{self, Identity};
use crate::net::trust::ClientStore;
use crate::net::{self, NetError, close};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use ring::hmac;
use spake2::{Ed25519Group, Identity as PakeId, Password, Spake2};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The TLS exporter label binding a run to its connection (RFC 8446 §7.5).
const EXPORTER_LABEL: &[u8] = b"EXPORTER-kumo-pair-v1";

#[derive(Debug, Error)]
pub enum PairError {
    #[error("host {addr} did not answer within {secs} s; is `kumo host` running there, and is UDP port {port} reachable?", port = addr.port())]
    Unreachable { addr: SocketAddr, secs: u64 },
    #[error("could not connect to host {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("host {addr} says: {message}")]
    WrongPin { addr: SocketAddr, message: String },
    #[error("host {addr} is not pairing: {message}")]
    Closed { addr: SocketAddr, message: String },
    #[error("host {addr} is busy: {message}")]
    Busy { addr: SocketAddr, message: String },
    #[error("host {addr} refused to pair: {message}")]
    Refused { addr: SocketAddr, message: String },
    #[error(
        "host {addr} could not prove that it knows the PIN, so something between this client and it may be impersonating it; nothing was saved. Pair again, on a network you trust"
    )]
    HostNotProven { addr: SocketAddr },
    #[error("pairing with host {addr} failed: {reason}")]
    Protocol { addr: SocketAddr, reason: String },
    #[error("could not open a UDP socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// What a client learns from a successful pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    pub host_name: String,
    pub host_fingerprint: Fingerprint,
}

/// The keying material both ends of `conn` share, different for each leg of a relay.
pub fn exporter(conn: &Connection) -> Result<[u8; 32], String> {
    let mut out = [0; 32];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"").map_err(|e| format!("{e:?}"))?;
    Ok(out)
}

/// The SPAKE2 identities: each side's certificate as the client and the host saw it.
fn pake_ids(client: Fingerprint, host: Fingerprint) -> (PakeId, PakeId) {
    (
        PakeId::new(&[b"kumo-client ".as_slice(), &client.0].concat()),
        PakeId::new(&[b"kumo-host ".as_slice(), &host.0].concat()),
    )
}

/// Everything both sides agree on, hashed: the connection, both certificates, both SPAKE2
/// messages and both names.
struct Transcript<'a> {
    exporter: [u8; 32],
    client: Fingerprint,
    host: Fingerprint,
    client_name: &'a str,
    host_name: &'a str,
}

impl Transcript<'_> {
    fn digest(&self, pake_a: &[u8], pake_b: &[u8]) -> ring::digest::Digest {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"kumo-pair-v1");
        ctx.update(&self.exporter);
        ctx.update(&self.client.0);
        ctx.update(&self.host.0);
        ctx.update(pake_a);
        ctx.update(pake_b);
        for name in [self.client_name, self.host_name] {
            ctx.update(&(name.len() as u64).to_le_bytes());
            ctx.update(name.as_bytes());
        }
        ctx.finish()
    }
}

/// The confirmation keys (client's, host's) from the SPAKE2 key, salted with the exporter.
fn confirmation_keys(key: &[u8], exporter: &[u8; 32]) -> Option<(hmac::Key, hmac::Key)> {
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, exporter).extract(key);
    let expand = |info: &'static [u8]| prk.expand(&[info], hmac::HMAC_SHA256).ok().map(hmac::Key::from);
    Some((expand(b"kumo pair client")?, expand(b"kumo pair host")?))
}

fn tag(key: &hmac::Key, transcript: &[u8]) -> [u8; PAIR_TAG_LEN] {
    let mut out = [0; PAIR_TAG_LEN];
    out.copy_from_slice(hmac::sign(key, transcript).as_ref());
    out
}

/// The client's half of a pairing run, in steps, so that tests can drive the wire by hand.
pub struct ClientRun {
    spake: Spake2<Ed25519Group>,
    request: [u8; PAKE_MESSAGE_LEN],
    exporter: [u8; 32],
    client: Fingerprint,
    host: Fingerprint,
    client_name: String,
}

/// What the client expects the host to prove at the end of a run.
pub struct HostProof {
    key: hmac::Key,
    transcript: Vec<u8>,
}

impl HostProof {
    /// Whether `tag` is the host's proof (compared in constant time).
    pub fn check(&self, tag: &[u8; PAIR_TAG_LEN]) -> bool {
        hmac::verify(&self.key, &self.transcript, tag).is_ok()
    }
}

impl ClientRun {
    /// Starts a run with `pin` on a connection with `exporter`, where this client presented
    /// `client` and the host `host`: the run and its `PairRequest`.
    pub fn start(
        pin: Pin,
        client_name: &str,
        client: Fingerprint,
        host: Fingerprint,
        exporter: [u8; 32],
    ) -> (Self, Control) {
        let (id_a, id_b) = pake_ids(client, host);
        let (spake, message) = Spake2::<Ed25519Group>::start_a(&Password::new(pin.secret()), &id_a, &id_b);
        let mut request = [0; PAKE_MESSAGE_LEN];
        request.copy_from_slice(&message);
        let msg =
            Control::PairRequest { version: PROTOCOL_VERSION, client_name: client_name.to_owned(), pake: request };
        (Self { spake, request, exporter, client, host, client_name: client_name.to_owned() }, msg)
    }

    /// Answers the host's `PairChallenge`: the `PairConfirm` to send, and the proof to expect.
    pub fn confirm(self, host_name: &str, challenge: &[u8; PAKE_MESSAGE_LEN]) -> Result<(Control, HostProof), String> {
        let key = self.spake.finish(challenge).map_err(|e| format!("the host's key exchange message is bad: {e:?}"))?;
        let transcript = Transcript {
            exporter: self.exporter,
            client: self.client,
            host: self.host,
            client_name: &self.client_name,
            host_name,
        }
        .digest(&self.request, challenge);
        let (client_key, host_key) = confirmation_keys(&key, &self.exporter).ok_or("key derivation failed")?;
        let confirm = Control::PairConfirm { tag: tag(&client_key, transcript.as_ref()) };
        Ok((confirm, HostProof { key: host_key, transcript: transcript.as_ref().to_vec() }))
    }
}

/// Pairs this client (`identity`, called `name`) with the host at `addr` using `pin`.
pub async fn pair(
    addr: SocketAddr,
    identity: &Identity,
    name: &str,
    pin: Pin,
    timeout: Duration,
) -> Result<Paired, PairError> {
    let endpoint = Endpoint::client(net::any_port_for(addr))?;
    let (quic, seen) = tls::pairing_client_config(identity, net::transport())?;
    let connecting = endpoint
        .connect_with(quic, addr, "kumo-host")
        .map_err(|e| PairError::Connect { addr, reason: e.to_string() })?;
    let conn = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => return Err(PairError::Unreachable { addr, secs: timeout.as_secs().max(1) }),
        Ok(Err(err)) => return Err(PairError::Connect { addr, reason: err.to_string() }),
        Ok(Ok(conn)) => conn,
    };
    // The host gives a run `PAIRING_RUN`: waiting as long hears whatever it answers.
    let run_time = timeout.max(crate::core::trust::PAIRING_RUN);
    let result = tokio::time::timeout(run_time, run_client(&conn, identity, name, pin, seen.get()))
        .await
        .unwrap_or_else(|_| Err(PairError::Protocol { addr, reason: "the host stopped answering".into() }));
    conn.close(close::FINISHED, b"pairing done");
    tokio::time::timeout(CLOSE_WAIT, endpoint.wait_idle()).await.ok();
    result
}

async fn run_client(
    conn: &Connection,
    identity: &Identity,
    name: &str,
    pin: Pin,
    host: Option<Fingerprint>,
) -> Result<Paired, PairError> {
    let addr = conn.remote_address();
    let protocol = |reason: String| PairError::Protocol { addr, reason };
    let host = host.ok_or_else(|| protocol("the host presented no certificate".into()))?;
    let exporter = exporter(conn).map_err(protocol)?;
    let (run, request) = ClientRun::start(pin, name, identity.fingerprint, host, exporter);
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| protocol(e.to_string()))?;
    let net = |e: NetError| protocol(e.to_string());
    net::write_control(&mut send, &request).await.map_err(net)?;
    let (host_name, challenge) = match net::read_control(&mut recv).await.map_err(net)? {
        Control::PairChallenge { host_name, pake } => (host_name, pake),
        other => return Err(refusal(addr, other)),
    };
    let (confirm, proof) = run.confirm(&host_name, &challenge).map_err(protocol)?;
    net::write_control(&mut send, &confirm).await.map_err(net)?;
    match net::read_control(&mut recv).await.map_err(net)? {
        Control::Paired { tag } if proof.check(&tag) => {
            Ok(Paired { host_name: crate::core::trust::printable(&host_name), host_fingerprint: host })
        }
        Control::Paired { .. } => Err(PairError::HostNotProven { addr }),
        other => Err(refusal(addr, other)),
    }
}

/// The error for a message that is not the next step of a run. The host has not proven the
/// PIN yet, so its words are shown as its claim, made printable.
fn refusal(addr: SocketAddr, msg: Control) -> PairError {
    let unproven = |message: &str| {
        format!(
            "\"{}\" (its own words: it has not proven that it knows the PIN)",
            crate::core::trust::printable(message)
        )
    };
    match msg {
        Control::Reject { reason: RejectReason::WrongPin, message, .. } => {
            PairError::WrongPin { addr, message: unproven(&message) }
        }
        Control::Reject { reason: RejectReason::PairingClosed, message, .. } => {
            PairError::Closed { addr, message: unproven(&message) }
        }
        Control::Reject { reason: RejectReason::Busy, message, .. } => {
            PairError::Busy { addr, message: unproven(&message) }
        }
        Control::Reject { message, .. } => PairError::Refused { addr, message: unproven(&message) },
        other => PairError::Protocol { addr, reason: format!("unexpected message {other:?}") },
    }
}

/// A host's pairing offer: the PIN window, if one is open, on the host's clock.
pub struct Offer {
    window: Mutex<Option<PairingWindow<IpAddr>>>,
    epoch: Instant,
}

impl Default for Offer {
    fn default() -> Self {
        Self { window: Mutex::new(None), epoch: Instant::now() }
    }
}

impl Offer {
    /// Offers `pin` for the next 5 minutes (replacing any offer before).
    pub fn open(&self, pin: Pin) {
        *self.lock() = Some(PairingWindow::open(pin, self.epoch.elapsed()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<PairingWindow<IpAddr>>> {
        self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn begin(&self, from: IpAddr) -> Result<Pin, Closed> {
        self.lock().as_mut().ok_or(Closed::NotOpen)?.begin(self.epoch.elapsed(), from)
    }

    fn check(&self) -> Result<(), Closed> {
        self.lock().as_mut().ok_or(Closed::NotOpen)?.check(self.epoch.elapsed())
    }

    fn end(&self, from: IpAddr, paired: bool) -> u32 {
        self.lock().as_mut().map_or(0, |w| w.end(from, paired))
    }
}

/// What the host needs to answer a `PairRequest`.
pub(crate) struct HostSide<'a> {
    pub name: &'a str,
    pub fingerprint: Fingerprint,
    pub offer: &'a Offer,
    pub clients: &'a ClientStore,
}

/// A client's `PairRequest`, as read.
pub struct Request {
    pub version: u16,
    pub client_name: String,
    /// SPAKE2's first message.
    pub pake: [u8; PAKE_MESSAGE_LEN],
}

/// Answers a pairing run whose `PairRequest` was read from `recv`'s stream.
pub(crate) async fn answer(
    conn: &Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    request: Request,
    host: HostSide<'_>,
) -> Result<(), NetError> {
    let Request { version, client_name, pake: pake_a } = request;
    let remote = conn.remote_address();
    if version != PROTOCOL_VERSION {
        let message = format!(
            "this host speaks kumo protocol v{PROTOCOL_VERSION} and the client v{version}; install the same kumo version on both"
        );
        return net::refuse(conn, &mut send, RejectReason::VersionMismatch, message, close::VERSION_MISMATCH).await;
    }
    let Some(client) = tls::peer_fingerprint(conn) else {
        let message = "pairing needs the client's certificate, and this client sent none".to_owned();
        return net::refuse(conn, &mut send, RejectReason::BadRequest, message, close::PAIRING_FAILED).await;
    };
    let shown = crate::core::trust::printable(&client_name);
    let pin = match host.offer.begin(remote.ip()) {
        Ok(pin) => pin,
        Err(closed) => {
            let reason = if closed == Closed::Busy { RejectReason::Busy } else { RejectReason::PairingClosed };
            tracing::info!(%remote, client = %shown, ?closed, "refused a pairing request");
            return net::refuse(conn, &mut send, reason, closed.explain(host.name), close::PAIRING_FAILED).await;
        }
    };
    let run = async {
        let exporter = exporter(conn).map_err(|_| RunFailure::Broken)?;
        let (id_a, id_b) = pake_ids(client, host.fingerprint);
        let (spake, pake_b) = Spake2::<Ed25519Group>::start_b(&Password::new(pin.secret()), &id_a, &id_b);
        let key = spake.finish(&pake_a).map_err(|_| RunFailure::Broken)?;
        let mut challenge = [0; PAKE_MESSAGE_LEN];
        challenge.copy_from_slice(&pake_b);
        net::write_control(&mut send, &Control::PairChallenge { host_name: host.name.to_owned(), pake: challenge })
            .await
            .map_err(|_| RunFailure::Broken)?;
        let Control::PairConfirm { tag: client_tag } =
            net::read_control(&mut recv).await.map_err(|_| RunFailure::Broken)?
        else {
            return Err(RunFailure::Broken);
        };
        let transcript =
            Transcript { exporter, client, host: host.fingerprint, client_name: &client_name, host_name: host.name }
                .digest(&pake_a, &challenge);
        let (client_key, host_key) = confirmation_keys(&key, &exporter).ok_or(RunFailure::Broken)?;
        // Checking the proof tests the client's guess: it costs a try, if one is left.
        host.offer.check().map_err(RunFailure::Closed)?;
        hmac::verify(&client_key, transcript.as_ref(), &client_tag).map_err(|_| RunFailure::WrongPin)?;
        Ok(tag(&host_key, transcript.as_ref()))
    };
    let result = tokio::time::timeout(crate::core::trust::PAIRING_RUN, run).await.unwrap_or(Err(RunFailure::Broken));
    let host_tag = match result {
        Ok(tag) => tag,
        Err(outcome) => {
            let left = host.offer.end(remote.ip(), false);
            tracing::warn!(%remote, client = %shown, ?outcome, tries_left = left, "a pairing run failed");
            let reason = if matches!(outcome, RunFailure::Closed(_)) {
                RejectReason::PairingClosed
            } else {
                RejectReason::WrongPin
            };
            let message = match (outcome, left) {
                (RunFailure::Broken, _) => {
                    conn.close(close::PROTOCOL_ERROR, b"pairing run broken");
                    return Ok(());
                }
                (RunFailure::Closed(closed), _) => closed.explain(host.name),
                (RunFailure::WrongPin, 0) => {
                    "wrong PIN, and that was the last try: press Enter in the host's terminal (or send it SIGUSR1) for a new PIN"
                        .to_owned()
                }
                (RunFailure::WrongPin, 1) => "wrong PIN; 1 try left".to_owned(),
                (RunFailure::WrongPin, n) => format!("wrong PIN; {n} tries left"),
            };
            return net::refuse(conn, &mut send, reason, message, close::PAIRING_FAILED).await;
        }
    };
    let stored = match host.clients.add(&client_name, client) {
        Ok(stored) => stored,
        Err(err) => {
            host.offer.end(remote.ip(), false);
            tracing::error!("could not save a paired client: {err}");
            let message = format!("the host could not save the pairing: {err}");
            return net::refuse(conn, &mut send, RejectReason::BadRequest, message, close::PAIRING_FAILED).await;
        }
    };
    host.offer.end(remote.ip(), true);
    tracing::info!(%remote, client = %stored.name, fingerprint = %client, "paired with a client");
    net::write_control(&mut send, &Control::Paired { tag: host_tag }).await?;
    send.finish().ok();
    tokio::time::timeout(PAIRED_WAIT, conn.closed()).await.ok();
    Ok(())
}

/// How long the client lets its close reach the host before the endpoint goes: one round
/// trip on a LAN, with room for a lost packet.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long the host waits for the client to close after `Paired` (the client closes once it
/// has read it and checked the host's proof), so the answer is not cut off by a close.
const PAIRED_WAIT: Duration = Duration::from_secs(2);

/// Why a host's side of a run ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunFailure {
    /// The client's proof did not match: it does not know the PIN (or a relay is in between).
    WrongPin,
    /// The connection or the messages broke.
    Broken,
    /// The PIN stopped being good while the run went on (another run paired, or spent the
    /// last try, or it expired).
    Closed(Closed),
}

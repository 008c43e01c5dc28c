//! The reference host (`kumo host`, and the host half of `kumo demo`).
//!
//! Owns the server endpoint and one streaming session at a time: it answers the handshake,
//! runs the encoder thread for the agreed size, rate and bitrate, sends each frame on its own
//! stream, and serves control requests (IDR, bitrate, ping, goodbye). A second client gets a
//! clear refusal, except the same client coming back on a new connection after a network
//! fault: its `Hello` carries the session's resume token, and the old connection hands the
//! session (and the game as it was) over to the new one. Unless it is open to any client, it
//! streams only to clients whose certificate it paired with (`pair`, `trust`), and answers
//! pairing runs while a PIN is offered. It must not let a slow or silent client grow its memory:
//! frames in flight are capped by the send window (`core::video::pacing::SendWindow`), which
//! holds capture slots back while the path queues, so no frame is encoded without room for it;
//! the encoder thread drops a frame and makes the next an IDR only if its queue is full anyway.

pub mod app;
pub mod audio;
pub mod desktop;
pub mod encode;
pub mod pulse;
pub mod uinput;
pub mod voice;
pub mod x11;

use crate::clock;
use crate::core::input::MAX_PADS;
use crate::core::session::admission::{self, ADMISSION_DEADLINE, Crowded, Door, Doorman, Refusal, Trust};
use crate::core::session::host::{
    self as session, Agreed, HostEnding, HostOutput, HostSession, HostTransmit, PathStats, SessionSound,
};
use crate::core::video::assemble::Frame;
use crate::core::video::fec::FecMode;
use crate::core::video::ladder::Rung;
use crate::core::wire::ClockReply;
use crate::core::wire::{Capabilities, Control, GoodbyeReason, Hello, RejectReason, Welcome};
use crate::host::desktop::{Desktop, DesktopInput, Source};
use crate::host::encode::{EncoderSettings, GameLink, Picture};
use crate::net::pair::{self, Offer};
use crate::net::tls;
use crate::net::tls::{Fingerprint, Identity, Role, TlsError};
use crate::net::trust::ClientStore;
use crate::net::{self, NetError, close};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, watch};

#[derive(Debug, Error)]
pub enum HostError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("could not listen on {addr}: {source}; is another `kumo host` using that port? Pick another with --listen")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// No H.264 code to encode with (`crate::h264`): said before any client connects.
    #[error("{0}")]
    NoCodec(String),
}

/// Host settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub listen: SocketAddr,
    pub name: String,
    /// Highest frame rate a client may ask for.
    pub max_fps: u16,
    /// Encoder threads (0: one per core, at most 4).
    pub encoder_threads: u16,
    /// The folder keeping the host's certificate and key, so that its fingerprint survives a
    /// restart; `None`: a fresh certificate each run.
    pub identity: Option<std::path::PathBuf>,
    /// Who may stream, and the pairing PIN on offer.
    pub trust: HostTrust,
    /// Parity sent beside each frame (forward error correction, `core::video::fec`).
    pub fec: FecMode,
    /// What it streams: the synthetic scene, an X display, or a program per session.
    pub source: Source,
    /// Share copied text with a client that asks, on a desktop session's display
    /// (`--clipboard`; never for the synthetic scene, which has no clipboard).
    pub clipboard: bool,
    /// Play a client's microphone into a virtual microphone ("kumo-mic") for a desktop
    /// session's programs, when the client sends one (`--no-mic` turns it off).
    pub mic: bool,
}

/// Which clients a host streams to.
#[derive(Clone)]
pub struct HostTrust {
    /// The clients it paired with.
    pub clients: Arc<ClientStore>,
    /// Stream only to paired clients (`kumo host`'s default); `false`: to any client (the
    /// loud `--allow-unpaired`, and tests of other things).
    pub require_pairing: bool,
    /// A PIN to offer for pairing from the start (5 minutes, 3 tries).
    pub pin: Option<crate::core::trust::Pin>,
}

impl HostTrust {
    /// Any client may stream; no pairing on offer; nothing stored.
    pub fn open() -> Self {
        Self { clients: Arc::new(ClientStore::in_memory(Vec::new())), require_pairing: false, pin: None }
    }

    /// Only the clients in `clients` may stream.
    pub fn paired(clients: ClientStore) -> Self {
        Self { clients: Arc::new(clients), require_pairing: true, pin: None }
    }
}

impl std::fmt::Debug for HostTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTrust").field("require_pairing", &self.require_pairing).finish_non_exhaustive()
    }
}

/// Encoded frames waiting for the network task. The network task only spawns a writer per
/// frame, so 4 is plenty; when full the encoder skips capture slots until there is room.
/// (Frames in flight after it are bounded by the send window: `encode::SendGate`.)
const ENCODED_QUEUE: usize = 4;

/// Control messages waiting for the session loop; when full the reader waits (backpressure
/// on the control stream, which carries only a few messages per second).
const CONTROL_QUEUE: usize = 16;

/// A listening reference host.
pub struct Host {
    endpoint: Endpoint,
    fingerprint: Fingerprint,
    config: HostConfig,
    game: Arc<GameLink>,
    offer: Arc<Offer>,
}

impl Host {
    /// Binds the endpoint. Must run inside a tokio runtime.
    pub fn bind(config: HostConfig) -> Result<Self, HostError> {
        crate::h264::source().map_err(HostError::NoCodec)?;
        let identity = match &config.identity {
            Some(dir) => Identity::load_or_create(dir, Role::Host)?,
            None => Identity::generate(Role::Host)?,
        };
        let server = identity.server_config(net::host_transport())?;
        let endpoint = Endpoint::server(server, config.listen)
            .map_err(|source| HostError::Bind { addr: config.listen, source })?;
        if matches!(config.source, Source::App(_)) {
            pulse::unload_stale_sinks();
        }
        let offer = Arc::new(Offer::default());
        if let Some(pin) = config.trust.pin {
            offer.open(pin);
        }
        Ok(Self { endpoint, fingerprint: identity.fingerprint, config, game: Arc::default(), offer })
    }

    /// The host's pairing offer, to open (again) while it serves.
    pub fn pairing(&self) -> Arc<Offer> {
        self.offer.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().unwrap_or(self.config.listen)
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The game's input slot and report, for watching the game from outside (tests, tools).
    pub fn game(&self) -> Arc<GameLink> {
        self.game.clone()
    }

    /// Serves clients until `stop` turns true.
    pub async fn serve(self, mut stop: watch::Receiver<bool>) {
        // The parity code's tables, before the first session's first key frame needs them.
        tokio::task::spawn_blocking(crate::core::video::fec::prepare).await.ok();
        let busy = Arc::new(Slot::default());
        let door = Arc::new(std::sync::Mutex::new(Doorman::default()));
        let host = Arc::new(Shared { config: self.config, fingerprint: self.fingerprint, offer: self.offer });
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let Some((waiting, incoming)) = Waiting::enter(&door, incoming) else { continue };
                    let (busy, host, stop, game) = (busy.clone(), host.clone(), stop.clone(), self.game.clone());
                    tokio::spawn(async move { serve_connection(incoming, waiting, &host, &busy, stop, game).await });
                }
                _ = stop.changed() => break,
            }
        }
        self.endpoint.close(close::HOST_SHUTDOWN, b"host shutting down");
        tokio::time::timeout(SHUTDOWN_WAIT, self.endpoint.wait_idle()).await.ok();
    }
}

/// How long a host shutting down waits for its connections to take the close: long enough
/// for a client to hear why, short enough that stopping the host feels prompt.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// A connection let in at the door and not yet admitted; it leaves the door when dropped.
struct Waiting {
    door: Arc<std::sync::Mutex<Doorman<std::net::IpAddr>>>,
    from: std::net::IpAddr,
}

impl Waiting {
    /// Asks the door about `incoming`: let in (waiting), or asked to prove its address, or
    /// refused (`None`).
    fn enter(
        door: &Arc<std::sync::Mutex<Doorman<std::net::IpAddr>>>,
        incoming: quinn::Incoming,
    ) -> Option<(Self, quinn::Incoming)> {
        let remote = incoming.remote_address();
        let mut doorman = door.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let answer = doorman.knock(remote.ip(), incoming.remote_address_validated());
        match answer {
            Door::Accept => return Some((Self { door: door.clone(), from: remote.ip() }, incoming)),
            // A flood is logged as it grows (1, 2, 4, 8… turned away), not line by line.
            Door::Refuse(crowded) if doorman.refused.is_power_of_two() => {
                let why = match crowded {
                    Crowded::Total => "too many connections are waiting to be admitted",
                    Crowded::Address => "too many connections from its address are waiting to be admitted",
                };
                tracing::warn!(%remote, turned_away = doorman.refused, waiting = doorman.waiting(), "turned a connection away: {why}");
            }
            Door::Refuse(_) | Door::Retry => {}
        }
        drop(doorman);
        turn_away(incoming, answer);
        None
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.door.lock().unwrap_or_else(std::sync::PoisonError::into_inner).left(self.from);
    }
}

/// Carries out the door's answer on `incoming` when it was not let in.
fn turn_away(incoming: quinn::Incoming, door: Door) {
    match door {
        Door::Accept => {}
        Door::Retry if incoming.may_retry() => {
            incoming.retry().ok();
        }
        Door::Retry | Door::Refuse(_) => incoming.refuse(),
    }
}

/// One connection, from its first packet: admitted within `ADMISSION_DEADLINE` (the handshake,
/// its first message, and the host's answer, writes included) or closed; then, if it asked to
/// stream, the session.
async fn serve_connection(
    incoming: quinn::Incoming,
    waiting: Waiting,
    host: &Shared,
    busy: &Slot,
    stop: watch::Receiver<bool>,
    game: Arc<GameLink>,
) {
    let remote = incoming.remote_address();
    let deadline = tokio::time::Instant::now() + ADMISSION_DEADLINE;
    let conn = match tokio::time::timeout_at(deadline, incoming).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => return tracing::info!(%remote, "connection attempt failed: {err}"),
        Err(_) => return tracing::debug!(%remote, "connection attempt timed out before its handshake ended"),
    };
    let admitted = match tokio::time::timeout_at(deadline, admit_connection(&conn, host, busy, &game)).await {
        Ok(Ok(Some(admitted))) => admitted,
        Ok(Ok(None)) => return,
        Ok(Err(err)) => return tracing::info!(%remote, "connection ended before a session: {err:#}"),
        Err(_) => {
            tracing::info!(%remote, "closing a connection that was not admitted within {} s", ADMISSION_DEADLINE.as_secs());
            conn.close(close::PROTOCOL_ERROR, b"not admitted in time");
            return;
        }
    };
    drop(waiting);
    if let Err(err) = stream(&conn, host, admitted, stop, game).await {
        tracing::info!(%remote, "session ended: {err:#}");
    }
}

/// What every connection's task shares.
struct Shared {
    config: HostConfig,
    fingerprint: Fingerprint,
    offer: Arc<Offer>,
}

/// How long a reconnecting client waits for its old connection to hand the session over
/// (the old session stops its encoder: one frame's encode).
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

/// The host's single session: who holds it, and how to ask them to hand it over.
#[derive(Default)]
struct Slot {
    held: std::sync::Mutex<Option<Held>>,
    freed: tokio::sync::Notify,
    /// An `--app` session's program, kept across a hand-over for the connection that resumes
    /// the session.
    parked: std::sync::Mutex<Option<crate::host::app::App>>,
}

struct Held {
    token: u64,
    handover: Arc<tokio::sync::Notify>,
    /// The certificate of the client holding it: only the same client may resume it.
    client: Option<Fingerprint>,
}

/// A claimed session slot: released when the session ends, however it ends.
struct Claim<'a> {
    slot: &'a Slot,
    token: u64,
    handover: Arc<tokio::sync::Notify>,
    /// Whether this session took over one the same client lost (the game goes on).
    resumed: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut held = self.slot.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.as_ref().is_some_and(|h| h.token == self.token) {
            *held = None;
        }
        drop(held);
        self.slot.freed.notify_waiters();
    }
}

impl Slot {
    /// Keeps a handed-over session's program for the connection taking the session over.
    fn park(&self, app: crate::host::app::App) {
        let old = self.parked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(app);
        // Only one session at a time: an older parked program has no session left.
        drop(old);
    }

    /// The program a handed-over session left, if any.
    fn take_parked(&self) -> Option<crate::host::app::App> {
        self.parked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Claims the slot for a new session, or for the session named by `resume` (non-zero)
    /// after its connection hands it over, if `client` (its certificate) is the one holding
    /// it; `None`: another client holds it.
    async fn claim(&self, resume: u64, client: Option<Fingerprint>) -> Option<Claim<'_>> {
        let deadline = tokio::time::Instant::now() + HANDOVER_WAIT;
        let mut resumed = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a release in between is not missed.
            freed.as_mut().enable();
            {
                let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match &*held {
                    None => {
                        let token = random_token();
                        let handover = Arc::new(tokio::sync::Notify::new());
                        *held = Some(Held { token, handover: handover.clone(), client });
                        return Some(Claim { slot: self, token, handover, resumed });
                    }
                    Some(h) if resume != 0 && h.token == resume && h.client == client => {
                        h.handover.notify_one();
                        resumed = true;
                    }
                    Some(_) => return None,
                }
            }
            tokio::time::timeout_at(deadline, freed).await.ok()?;
        }
    }
}

/// A session's name for resuming it: random, never 0.
fn random_token() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok();
    u64::from_le_bytes(bytes).max(1)
}

/// A client admitted to stream: its control stream, its claim on the session slot, and the
/// encoder started for it (the `Welcome` is sent).
struct Admitted<'a> {
    send: SendStream,
    recv: RecvStream,
    claim: Claim<'a>,
    hello: Hello,
    welcome: Welcome,
    client: Option<Fingerprint>,
    worker: encode::Worker,
    gate: Arc<encode::SendGate>,
    frames: mpsc::Receiver<encode::Encoded>,
    /// The display it streams, when it is not the synthetic scene.
    desktop: Option<Desktop>,
    /// The display's clipboard, when both sides share it.
    clipboard: Option<crate::clipboard::X11Clipboard>,
}

/// Reads a new connection's first message and answers it: a region probe, a pairing run, or
/// a `Hello` refused or admitted (`Some`). The caller bounds it in time.
async fn admit_connection<'a>(
    conn: &Connection,
    host: &Shared,
    busy: &'a Slot,
    game: &Arc<GameLink>,
) -> Result<Option<Admitted<'a>>, NetError> {
    let remote = conn.remote_address();
    let (mut send, mut recv) = conn.accept_bi().await?;
    let hello = match net::read_control(&mut recv).await? {
        Control::Hello(hello) => hello,
        // A probe (region choice): pongs, and no claim on the session slot.
        Control::Ping { id, client_micros } => {
            answer_region_probe(conn, send, recv, ProbePing { id, client_micros }).await?;
            return Ok(None);
        }
        Control::PairRequest { version, client_name, pake } => {
            let side = pair::HostSide {
                name: &host.config.name,
                fingerprint: host.fingerprint,
                offer: &host.offer,
                clients: &host.config.trust.clients,
            };
            pair::answer(conn, send, recv, pair::Request { version, client_name, pake }, side).await?;
            return Ok(None);
        }
        _ => {
            conn.close(close::PROTOCOL_ERROR, b"expected Hello");
            return Ok(None);
        }
    };
    let refuse = |mut send: SendStream, reason, message, code| async move {
        net::refuse(conn, &mut send, reason, message, code).await.map(|()| None)
    };
    let client = tls::peer_fingerprint(conn);
    let trust = trust_of(&host.config.trust, client);
    if let Err(Refusal { reason, message }) = admission::admit(hello.version, &trust, &host.config.name) {
        let name = crate::core::trust::printable(&hello.client_name);
        tracing::warn!(%remote, client = %name, client_version = hello.version, fingerprint = ?client.map(|f| f.to_string()), ?reason, "refusing a client");
        let code = if reason == RejectReason::VersionMismatch { close::VERSION_MISMATCH } else { close::NOT_PAIRED };
        return refuse(send, reason, message, code).await;
    }
    let config = &host.config;
    let Some(claim) = busy.claim(hello.resume_token, client).await else {
        let message =
            format!("host '{}' is already streaming to another client; try again when that session ends", config.name);
        return refuse(send, RejectReason::Busy, message, close::BUSY).await;
    };
    let (mut desktop, agreed) = match prepare(config, &hello, claim.resumed, busy).await {
        Ok(prepared) => prepared,
        Err(message) => return refuse(send, RejectReason::BadRequest, message, close::PROTOCOL_ERROR).await,
    };
    let settings = EncoderSettings::agreed(agreed, config.encoder_threads);
    let (frames_tx, frames) = mpsc::channel(ENCODED_QUEUE);
    let gate = encode::SendGate::new(settings.fps);
    // The game starts over unless the same client resumed its session.
    if !claim.resumed {
        game.reset();
    }
    let picture = match desktop.as_mut().and_then(|d| Some((d.capture.take()?, d.input.applied.clone()))) {
        Some((mut capture, applied)) => {
            capture.scale_to(settings.width, settings.height);
            let still = hello.capabilities.contains(Capabilities::STILL);
            Picture::Desktop { capture: Box::new(capture), applied, still }
        }
        None => Picture::Scene,
    };
    let worker = match encode::spawn(settings, frames_tx, game.clone(), gate.clone(), picture) {
        // Built for the rate asked, the most a target may be; the first frames at the
        // client's start (the queue is empty: this is its first command).
        Ok(w) if agreed.start_kbps < agreed.bitrate_kbps => {
            w.send(session::EncoderRequest::SetBitrate { kbps: agreed.start_kbps });
            w
        }
        Ok(w) => w,
        Err(err) => {
            let message = format!("the host could not start its encoder: {err}");
            return refuse(send, RejectReason::BadRequest, message, close::PROTOCOL_ERROR).await;
        }
    };
    let sound = match &desktop {
        None => SessionSound::Scene,
        Some(Desktop { sound: Some(_), .. }) => SessionSound::Captured,
        Some(_) => SessionSound::Silent,
    };
    let mut welcome = session::welcome(agreed, hello.audio_channels, sound, &config.name, claim.token);
    // The clipboard is offered only once its display answers: a peer's copies must never go
    // to streams nobody reads.
    let clipboard = (config.clipboard && hello.capabilities.contains(Capabilities::CLIPBOARD))
        .then(|| open_clipboard(config, desktop.as_ref()))
        .flatten();
    if clipboard.is_none() {
        welcome.capabilities = welcome.capabilities.without(Capabilities::CLIPBOARD);
    }
    if !config.mic {
        welcome.capabilities = welcome.capabilities.without(Capabilities::MICROPHONE);
    }
    net::write_control(&mut send, &Control::Welcome(welcome.clone())).await?;
    Ok(Some(Admitted { send, recv, claim, hello, welcome, client, worker, gate, frames, desktop, clipboard }))
}

/// What the session streams and at what size: its display (attached, started, or taken over
/// from the session it resumes) and what was agreed; the refusal's sentence otherwise.
async fn prepare(
    config: &HostConfig,
    hello: &Hello,
    resumed: bool,
    busy: &Slot,
) -> Result<(Option<Desktop>, Agreed), String> {
    let name = &config.name;
    let mut desktop = match &config.source {
        Source::Display { display, monitor } => {
            let (display, monitor) = (display.clone(), *monitor);
            match tokio::task::spawn_blocking(move || Desktop::attach(&display, monitor)).await {
                Ok(Ok(desktop)) => Some(desktop),
                Ok(Err(err)) => {
                    tracing::error!("{err}");
                    return Err(format!("host '{name}' cannot show its display: {err}"));
                }
                Err(err) => return Err(format!("host '{name}' failed opening its display: {err}")),
            }
        }
        Source::Scene | Source::App(_) => None,
    };
    let native = desktop.as_ref().and_then(Desktop::size);
    let agreed = session::negotiate(hello, config.max_fps, native)?;
    if let Source::App(app) = &config.source {
        // The same client resuming finds its program as it left it.
        let parked = if resumed { busy.take_parked() } else { None };
        let started = match parked {
            Some(app) => Desktop::resume(app).await,
            None => Desktop::launch(app, agreed.width, agreed.height).await,
        };
        match started {
            Ok(started) => desktop = Some(started),
            Err(err) => {
                tracing::error!("could not start the session's program: {err}");
                return Err(format!("host '{name}' could not start its program: {err}"));
            }
        }
    }
    Ok((desktop, agreed))
}

/// The clipboard of the session's display (read whenever a program there copies): a program
/// of the session's own (`--app`) on its own server, or the display streamed; none, with a
/// sentence, when there is no display or it cannot be reached.
fn open_clipboard(config: &HostConfig, desktop: Option<&Desktop>) -> Option<crate::clipboard::X11Clipboard> {
    let (display, cookie) = match (desktop.and_then(|d| d.app.as_ref()), &config.source) {
        (Some(app), _) => (app.display.clone(), Some(app.cookie)),
        (None, Source::Display { display, .. }) => (display.clone(), None),
        _ => return None,
    };
    crate::clipboard::X11Clipboard::start_with(Some(&display), cookie.as_ref(), true)
        .inspect_err(|err| tracing::warn!("{err}; the session goes on without a shared clipboard"))
        .ok()
}

/// Streams to an admitted client until the session ends, then stops its workers.
async fn stream(
    conn: &Connection,
    host: &Shared,
    admitted: Admitted<'_>,
    stop: watch::Receiver<bool>,
    game: Arc<GameLink>,
) -> Result<(), NetError> {
    let Admitted { send, recv, claim, hello, welcome, client, worker, gate, frames, desktop, clipboard } = admitted;
    let (input, mut app, recorded) = match desktop {
        Some(Desktop { input, app, sound, .. }) => (Some(input), app, sound),
        None => (None, None, None),
    };
    let config = &host.config;
    // The display's clipboard (`open_clipboard`, when both sides announced it), linked with
    // the client.
    let clipboard = clipboard.map(|x11| net::clipboard::ClipboardLink::spawn(conn.clone(), x11, "client"));
    let name = crate::core::trust::printable(&hello.client_name);
    tracing::info!(
        "streaming {}x{} at {} fps to {name} at {}{}",
        welcome.width,
        welcome.height,
        welcome.fps,
        conn.remote_address(),
        if claim.resumed { ", resuming its session" } else { "" }
    );
    let capabilities = welcome.capabilities.both(hello.capabilities).bits();
    tracing::debug!(capabilities, "the session's capabilities (what both sides announced)");
    let source = match recorded {
        Some(capture) => audio::SoundSource::Captured(capture),
        None => audio::SoundSource::Scene(game.clone()),
    };
    let audio = welcome.audio.and_then(|format| match audio::spawn(conn.clone(), format, source) {
        Ok(worker) => Some(worker),
        Err(err) => {
            tracing::error!("the host could not start its audio: {err}; streaming without sound");
            None
        }
    });
    // A paired client's standing is looked at again while it streams: revoking it ends the
    // session within a second.
    let revocable = client.filter(|_| config.trust.require_pairing).map(|fp| (&config.trust, fp));
    // Loading the virtual microphone runs pactl and opens a sound server connection: off the
    // network's threads.
    let voice = if welcome.capabilities.both(hello.capabilities).contains(Capabilities::MICROPHONE) {
        let tag = claim.token.to_string();
        tokio::task::spawn_blocking(move || crate::host::voice::Voice::start(&tag))
            .await
            .map_err(|e| e.to_string())
            .flatten()
            .inspect(|_| {
                tracing::info!("the player's microphone plays into the source \"{}\"", crate::host::voice::SOURCE);
            })
            .inspect_err(|err| tracing::warn!("{err}; the session goes on without the player's microphone"))
            .ok()
    } else {
        None
    };
    let hears_voice = voice.is_some();
    let streaming = Streaming {
        voice: voice.as_ref(),
        conn,
        worker: &worker,
        gate: &gate,
        game: &game,
        desktop: input.as_ref(),
        revocable,
        handover: &claim.handover,
        session: {
            let mut session = HostSession::new(session::parity_mode(config.fec, hello.capabilities));
            session.start_at(session::start_kbps(&hello, welcome.bitrate_kbps));
            if hears_voice {
                session.hear_voice();
            }
            if welcome.capabilities.both(hello.capabilities).contains(Capabilities::ADAPTS_SIZE) {
                session.adapt_picture(
                    Rung { width: welcome.width, height: welcome.height, fps: welcome.fps },
                    Duration::ZERO,
                );
            }
            session
        },
    };
    let (result, handed_over) = streaming.run(send, recv, frames, stop, app.as_mut()).await;
    // Let go of every key held before anything else happens to the display; the clipboard
    // lets go of it before its server may end.
    drop(input);
    drop(clipboard);
    // Stopping the voice joins its thread and unloads its modules (pactl): off the network's
    // threads too.
    if let Some(voice) = voice {
        tokio::task::spawn_blocking(move || drop(voice)).await.ok();
    }
    if let Some(app) = app {
        if handed_over {
            claim.slot.park(app);
        } else {
            app.end().await;
        }
    }
    // Joining waits for at most one encode; keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        worker.stop();
        if let Some(audio) = audio {
            audio.stop();
        }
    })
    .await
    .ok();
    result
}

/// What the host knows of the certificate `client` presented.
fn trust_of(trust: &HostTrust, client: Option<Fingerprint>) -> Trust {
    if !trust.require_pairing {
        return Trust::Open;
    }
    let Some(fp) = client else { return Trust::NoCertificate };
    match trust.clients.standing(fp) {
        Ok(standing) => Trust::Standing(standing),
        Err(err) => {
            tracing::error!("could not read the paired clients: {err}");
            Trust::Unreadable
        }
    }
}

/// How often a streaming client's pairing is looked at again.
const REVOCATION_CHECK: Duration = Duration::from_secs(1);

/// Pings a probe may send, and how long it may take.
const PROBE_PINGS: u32 = 64;
const PROBE_TIME: Duration = Duration::from_secs(10);

/// A probe's ping: what its pong echoes.
struct ProbePing {
    id: u32,
    client_micros: u64,
}

/// Answers a probe's pings (the first already read) with pongs, then closes.
async fn answer_region_probe(
    conn: &Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    first: ProbePing,
) -> Result<(), NetError> {
    let answer = async {
        let mut ping = first;
        for _ in 0..PROBE_PINGS {
            let pong =
                Control::Pong { id: ping.id, client_micros: ping.client_micros, host_micros: clock::now_micros() };
            net::write_control(&mut send, &pong).await?;
            match net::read_control(&mut recv).await? {
                Control::Ping { id, client_micros } => ping = ProbePing { id, client_micros },
                _ => break,
            }
        }
        Ok::<_, NetError>(())
    };
    // A probe that ends (or closes its connection) is done either way.
    tokio::time::timeout(PROBE_TIME, answer).await.ok();
    conn.close(close::FINISHED, b"probe answered");
    Ok(())
}

/// The buzz the game asks for on a collision: the strong and weak motors (of 65535), and how
/// long it lasts.
const COLLISION_STRONG: u16 = 40_000;
const COLLISION_WEAK: u16 = 20_000;
const COLLISION_MS: u16 = 150;

/// A collision in the game: a short, strong buzz on each pad (slot bit) that caused one.
fn send_rumble(writer: &net::ControlWriter, slots: u8) -> Result<(), NetError> {
    let (strong, weak, duration_ms) = (COLLISION_STRONG, COLLISION_WEAK, COLLISION_MS);
    for pad in (0..MAX_PADS as u8).filter(|p| slots & (1 << p) != 0) {
        writer.send(Control::Rumble { pad, strong, weak, duration_ms })?;
    }
    Ok(())
}

/// Sends the rumble a desktop session's program asked of its virtual pads to the player.
fn send_pad_rumble(writer: &net::ControlWriter, desktop: Option<&DesktopInput>) -> Result<(), NetError> {
    for (pad, r) in desktop.map(DesktopInput::take_rumble).unwrap_or_default() {
        writer.send(Control::Rumble { pad, strong: r.strong, weak: r.weak, duration_ms: r.duration_ms })?;
    }
    Ok(())
}

/// Sends a frame on its own stream from a task of its own, with `parity_share` of it as
/// parity datagrams, and holds the frame's place in the send window until the client has
/// acknowledged all of it, rebuilt it from parity, or stopped the stream. The encoder admitted
/// the frame into the window, so the tasks are bounded by it.
pub fn send_frame(conn: &Connection, frame: Frame, gate: &Arc<encode::SendGate>, parity_share: f64) {
    let (conn, gate) = (conn.clone(), gate.clone());
    tokio::spawn(async move {
        let number = frame.header.frame_number;
        let delivered = match net::send_frame(&conn, &frame, parity_share).await {
            // `stopped` yields `None` once the client acknowledged every byte of the stream,
            // and the recovered code once it rebuilt the frame from parity: delivered either way.
            Ok(stream) => matches!(stream.stopped().await, Ok(None | Some(net::STREAM_RECOVERED))),
            Err(err) => {
                tracing::debug!(frame = frame.header.frame_number, "frame not sent: {err}");
                false
            }
        };
        let path = conn.stats().path;
        gate.path(conn.rtt(), path.min_rtt, path.lost_packets);
        if delivered { gate.acked(number) } else { gate.released(number) }
    });
}

/// Control messages waiting to be written to a streaming client, at most: far more than a
/// client that reads ever leaves waiting (pongs, a rumble now and then); a full queue means the
/// client stopped reading, and ends its session.
const CONTROL_WRITES: usize = 64;

/// How long a session's last word (a `Goodbye`) may take before the host closes anyway; a
/// close needs no stream credit, so a client that does not read cannot hold the session.
const GOODBYE_WAIT: Duration = Duration::from_millis(500);

/// How a streaming session ends, as the host sees it.
enum Ending {
    /// Closed already (by either side), or handed over.
    Closed,
    /// The host ends it with a word to the client, then closes with `code`.
    Goodbye {
        reason: GoodbyeReason,
        message: String,
        code: quinn::VarInt,
    },
    Failed(NetError),
}

/// How the session's program ended, when it does (never, without one).
async fn program_exit(app: Option<&mut crate::host::app::App>) -> String {
    match app {
        Some(app) => app.exited().await,
        None => std::future::pending().await,
    }
}

/// Says goodbye to the client (what is queued first), waits a moment for it to close, then
/// closes; `GOODBYE_WAIT` at most in all.
async fn say_goodbye(
    conn: &Connection,
    writer: net::ControlWriter,
    reason: GoodbyeReason,
    message: String,
    code: quinn::VarInt,
) {
    let deadline = tokio::time::Instant::now() + GOODBYE_WAIT;
    writer.send(Control::Goodbye { reason, message }).ok();
    writer.finish(GOODBYE_WAIT).await;
    tokio::time::timeout_at(deadline, conn.closed()).await.ok();
    conn.close(code, b"goodbye");
}

/// A streaming session's shell: the connection, the encoder and the game it serves, and the
/// sans-IO session (`core::session::host`) that decides.
struct Streaming<'a> {
    conn: &'a Connection,
    worker: &'a encode::Worker,
    gate: &'a Arc<encode::SendGate>,
    game: &'a GameLink,
    /// The display's input, when the host streams one (else the input goes to the game).
    desktop: Option<&'a crate::host::desktop::DesktopInput>,
    /// A paired client's host trust and certificate, looked at again every second.
    revocable: Option<(&'a HostTrust, Fingerprint)>,
    /// Notified when the client resumed the session on a new connection.
    handover: &'a tokio::sync::Notify,
    session: HostSession,
    /// The virtual microphone the player's voice plays into, when both sides want it.
    voice: Option<&'a crate::host::voice::Voice>,
}

impl Streaming<'_> {
    /// Streams until the client leaves, the session is handed over or revoked, or the host
    /// stops. The loop only moves things: what happened goes to the session with the time, and
    /// what it decided is carried out.
    async fn run(
        mut self,
        send: SendStream,
        recv: RecvStream,
        mut frames: mpsc::Receiver<encode::Encoded>,
        mut stop: watch::Receiver<bool>,
        mut app: Option<&mut crate::host::app::App>,
    ) -> (Result<(), NetError>, bool) {
        let conn = self.conn;
        let writer = net::ControlWriter::spawn(send, CONTROL_WRITES);
        let mut handed_over = false;
        let mut standing_check = tokio::time::interval(REVOCATION_CHECK);
        let start = std::time::Instant::now();
        let (control_tx, mut control) = mpsc::channel(CONTROL_QUEUE);
        let reader = tokio::spawn(net::read_controls(recv, control_tx));
        let ending = loop {
            tokio::select! {
                encoded = frames.recv() => {
                    if let Some(ending) = self.forward(encoded, &writer, start.elapsed()) {
                        break ending;
                    }
                }
                datagram = conn.read_datagram() => match datagram {
                    Ok(bytes) => self.session.handle_datagram(&bytes, start.elapsed(), clock::now_micros()),
                    Err(err) => break Ending::Failed(NetError::Connection(err)),
                },
                msg = control.recv() => match msg {
                    Some(Ok(msg)) => self.session.handle_control(msg, start.elapsed()),
                    Some(Err(err)) => break Ending::Failed(err),
                    None => break Ending::Closed,
                },
                _ = standing_check.tick(), if self.revocable.is_some() => {
                    let now = self.revocable.map(|(trust, fp)| trust_of(trust, Some(fp)));
                    if let Some(message) = now.as_ref().and_then(admission::no_longer_admitted) {
                        tracing::info!(%message, "ending a session: the client is no longer paired");
                        break Ending::Goodbye { reason: GoodbyeReason::Revoked, message, code: close::NOT_PAIRED };
                    }
                }
                () = self.handover.notified() => {
                    tracing::info!(remote = %conn.remote_address(), "the client reconnected on a new connection; handing the session over");
                    conn.close(close::SUPERSEDED, b"resumed on a new connection");
                    handed_over = true;
                    break Ending::Closed;
                }
                message = program_exit(app.as_deref_mut()) => {
                    tracing::info!(%message, "ending the session: its program ended");
                    break Ending::Goodbye { reason: GoodbyeReason::Finished, message, code: close::FINISHED };
                }
                _ = stop.changed() => {
                    let message = "the host is shutting down".to_owned();
                    break Ending::Goodbye { reason: GoodbyeReason::HostShutdown, message, code: close::HOST_SHUTDOWN };
                }
            }
            match self.carry_out(&writer) {
                Ok(false) => {}
                Ok(true) => break Ending::Closed,
                Err(err) => break Ending::Failed(err),
            }
        };
        let (unknown_datagrams, unknown_controls) = (self.session.unknown_datagrams, self.session.unknown_controls);
        if unknown_datagrams + unknown_controls > 0 {
            tracing::info!(
                unknown_datagrams,
                unknown_controls,
                "skipped datagrams and control messages of kinds this build does not know (a newer client's)"
            );
        }
        let result = match ending {
            Ending::Closed => {
                reader.abort();
                Ok(())
            }
            Ending::Goodbye { reason, message, code } => {
                // The client's control stream stays open (its reader alive) until the goodbye
                // is read: dropping it first would stop the stream, and a client writing a ping
                // at that moment would see the connection fail instead of the reason (a race
                // the pairing test's revocation hit).
                say_goodbye(conn, writer, reason, message, code).await;
                reader.abort();
                Ok(())
            }
            Ending::Failed(err) => {
                reader.abort();
                if matches!(err, NetError::PeerNotReading(_)) {
                    conn.close(close::PROTOCOL_ERROR, b"control stream not read");
                }
                writer.finish(Duration::ZERO).await;
                Err(err)
            }
        };
        (result, handed_over)
    }

    /// Passes on what the encoder thread handed over at `now`: a frame on its stream (with
    /// the rumble since the last), or a still word as a datagram; `Some` ends the session
    /// (the encoder stopped: the player is told why).
    fn forward(
        &mut self,
        encoded: Option<encode::Encoded>,
        writer: &net::ControlWriter,
        now: Duration,
    ) -> Option<Ending> {
        let conn = self.conn;
        let frame = match encoded {
            Some(encode::Encoded::Frame(frame)) => frame,
            // A datagram: nothing to repair if it is lost, the next comes in 100 ms.
            Some(encode::Encoded::Still(still)) => {
                conn.send_datagram(still.encode().into()).ok();
                return send_pad_rumble(writer, self.desktop).err().map(Ending::Failed);
            }
            None => {
                // The encoder thread stopped by itself: tell the player why.
                let Some(why) = self.worker.failure() else { return Some(Ending::Failed(NetError::EncoderGone)) };
                let message = format!("the host stopped streaming: {why}");
                return Some(Ending::Goodbye { reason: GoodbyeReason::Finished, message, code: close::FINISHED });
            }
        };
        if let Err(err) =
            send_rumble(writer, self.game.take_rumble()).and_then(|()| send_pad_rumble(writer, self.desktop))
        {
            return Some(Ending::Failed(err));
        }
        let path = conn.stats().path;
        let path = PathStats {
            sent_packets: path.sent_packets,
            lost_packets: path.lost_packets,
            rtt: path.rtt,
            min_rtt: path.min_rtt,
        };
        let share = self.session.parity_share(frame.header.kind, frame.payload.len(), path, now);
        send_frame(conn, frame, self.gate, share);
        None
    }

    /// Does what the session decided; whether the session ended.
    fn carry_out(&mut self, writer: &net::ControlWriter) -> Result<bool, NetError> {
        while let Some(transmit) = self.session.poll_transmit() {
            match transmit {
                HostTransmit::Pong { id, client_micros } => {
                    writer.send(Control::Pong { id, client_micros, host_micros: clock::now_micros() })?;
                }
                // A datagram that does not fit (datagrams disabled) is lost, as datagrams may be.
                HostTransmit::InputAck(ack) => {
                    self.conn.send_datagram(ack.encode().into()).ok();
                }
                HostTransmit::ClockReply { id, t1, t2 } => {
                    let reply = ClockReply { id, t1, t2, t3: clock::now_micros() };
                    self.conn.send_datagram(reply.encode().into()).ok();
                }
            }
        }
        while let Some(output) = self.session.poll_output() {
            match output {
                HostOutput::Encoder(request) => {
                    self.worker.send(request);
                }
                HostOutput::Voice { packet, arrival_micros } => {
                    if let Some(voice) = &self.voice {
                        voice.packet(packet, arrival_micros);
                    }
                }
                HostOutput::Input(input) => match self.desktop {
                    Some(desktop) => desktop.state(input),
                    None => self.game.put(input),
                },
                HostOutput::Presses(presses) => match self.desktop {
                    Some(desktop) => desktop.presses(presses),
                    None => self.game.push_presses(&presses),
                },
                HostOutput::PictureChanged { rung, limited, target_kbps } => {
                    let why = if limited { "the path is too narrow for more" } else { "back to the size asked for" };
                    tracing::info!(
                        "streaming {}x{} at {} fps now: {why} ({target_kbps} kbit/s)",
                        rung.width,
                        rung.height,
                        rung.fps
                    );
                }
                HostOutput::ParityChanged { share, loss } => {
                    tracing::debug!(
                        "parity now {:.0} % of each frame (packet loss {:.1} % over 2 s)",
                        share * 100.0,
                        loss * 100.0
                    );
                }
                HostOutput::Ended(HostEnding::Goodbye(message)) => {
                    let message = crate::core::trust::printable(&message);
                    tracing::info!("the client ended the session ({message})");
                    self.conn.close(close::FINISHED, b"goodbye");
                    return Ok(true);
                }
                HostOutput::Ended(HostEnding::Unexpected(what)) => {
                    tracing::warn!(%what, "unexpected control message; ending the session");
                    self.conn.close(close::PROTOCOL_ERROR, b"unexpected control message");
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

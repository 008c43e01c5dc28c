//! The client's network shell: connect, handshake, then receive frames and feed the decode
//! thread.
//!
//! Owns the QUIC connection and moves bytes; what to do with them is decided by the sans-IO
//! session (`core::session::client`). Each frame stream is read by a task of its own and
//! reassembled by `core::video::assemble`; the session orders the frames and decides what
//! reaches the bounded decode queue, and turns losses into recovery requests. The shell
//! reports to the stats channel and never blocks on the decoder: when the decode queue is full
//! the frame is dropped and the session told (an unbounded queue would turn a slow decoder
//! into ever-growing latency).

pub mod alsa;
pub mod audio;
pub mod decode;
pub mod headless;
pub mod input;
pub mod mic;
pub mod overlay;
pub mod pads;
pub mod present;
pub mod record;
pub mod window;

use crate::client::audio::{AudioInput, AudioPlayer, AvClock};
use crate::client::decode::{AccessUnit, FrameSlot};
use crate::client::input::{InputHandle, PRESS_QUEUE, take_event_time};
use crate::client::pads::Rumble;
use crate::clock;
use crate::core::input::script::{Player, Script};
use crate::core::input::{InputState, Press};
use crate::core::session::client::{
    ClientEnding, ClientOutput, ClientSession, ClientTransmit, HelloRefused, answer_to_hello,
};
use crate::core::session::reconnect::{ATTEMPT_TIMEOUT, RedialAction, Redialer};
use crate::core::stats;
use crate::core::video::abr;
use crate::core::video::assemble::Frame;
use crate::core::wire::{Capabilities, Control, GoodbyeReason, Hello, PROTOCOL_VERSION, Welcome};
use crate::net::tls::{self, Fingerprint, SeenCertificate, Verify};
use crate::net::{self, NetError, close};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, watch};

/// Access units waiting for the decoder: 8 frames (133 ms at 60 fps). A decoder decodes a
/// frame in a fraction of its interval (4 ms for busy 1080p on one core), so after a stall
/// (another process took the cores) it catches up at several times real time; a frame dropped
/// here instead breaks the reference chain and costs a repair round trip and a freeze. A
/// decoder that stays this far behind is too slow for the stream, and drops then are right.
const DECODE_QUEUE: usize = 8;
/// Long-term references waiting to be confirmed to the host (two a second are usual); when
/// full the newest is dropped, and a later recovery refers to an older one.
const LTR_QUEUE: usize = 8;
/// Stats events waiting for their reader: ~20 s of events at 60 fps. When full (the reader
/// stalled), events are dropped rather than stalling the session.
const STATS_QUEUE: usize = 4096;
/// Whole frames from stream readers to the session loop (backpressure: a reader waits).
const FRAME_QUEUE: usize = 64;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("host {addr} did not answer within {secs} s; is `kumo host` running there, and is UDP port {port} reachable?", port = addr.port())]
    Unreachable { addr: SocketAddr, secs: u64 },
    #[error(
        "host {addr} presented certificate {got}, but this client expects {want} (from pairing or --host-fingerprint); if the host's identity was reset, pair again (`kumo pair {addr}`) or use the fingerprint it now prints"
    )]
    FingerprintMismatch { addr: SocketAddr, got: Fingerprint, want: Fingerprint },
    #[error("could not connect to host {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("protocol version mismatch: {message} (this client speaks v{ours}, the host v{host})")]
    VersionMismatch { ours: u16, host: u16, message: String },
    #[error("host {addr} refused the session: {message}")]
    Refused { addr: SocketAddr, message: String },
    #[error("host {addr} refused this client: {message}")]
    NotPaired { addr: SocketAddr, message: String },
    #[error("host {addr} broke the handshake: {reason}")]
    Handshake { addr: SocketAddr, reason: String },
    #[error("lost the connection to host {addr}: {source}")]
    Lost { addr: SocketAddr, source: NetError },
    #[error(
        "host {addr} has not come back for {secs} s ({last}); it may have shut down, or the network is down. Check both, then connect again (--reconnect-timeout waits longer; 0 waits for ever)"
    )]
    GaveUp { addr: SocketAddr, secs: u64, last: String },
    #[error("the decoder could not start: {0}")]
    Decoder(#[from] decode::DecodeError),
    #[error("could not open a UDP socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("{0}; this is a bug in kumo: please report it with the log")]
    Internal(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// What to ask the host for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRequest {
    pub width: u16,
    pub height: u16,
    pub fps: u16,
    /// The bitrate to start at, and the most adaptive bitrate will go to.
    pub bitrate_kbps: u32,
    /// Adaptive bitrate's floor; `None`: a fixed bitrate, no adaptation.
    pub min_bitrate_kbps: Option<u32>,
    /// Let the host lower the encoded size and frame rate below the asked ones when the path
    /// cannot carry them (`Capabilities::ADAPTS_SIZE`; `--adapt-size=false` turns it off).
    pub adapt_size: bool,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub host: SocketAddr,
    pub verify: Verify,
    /// The certificate this client presents, which hosts know it by once paired (`None`: none,
    /// which only a host open to any client accepts).
    pub identity: Option<tls::Identity>,
    pub request: StreamRequest,
    pub name: String,
    pub connect_timeout: Duration,
    /// The protocol version announced in the handshake: `PROTOCOL_VERSION` except in tests
    /// that check how a mismatch is reported.
    pub protocol_version: u16,
    /// Played into the session's input from the start of streaming (`--input-script`).
    pub input_script: Option<Script>,
    /// Read gamepads (gilrs, on the "kumo-pads" thread) into the session's input.
    pub gamepads: bool,
    /// Extra SDL game-controller mappings (config file).
    pub gamepad_mappings: Vec<String>,
    /// Ask for sound and play it (`--no-audio` turns it off).
    pub audio: bool,
    /// Speakers to ask the host for (2, 6 or 8), instead of what the output device says
    /// (sound servers report stereo whatever the speakers are).
    pub speakers: Option<u8>,
    /// How long to keep reconnecting after the connection is lost before giving up with an
    /// error; `None`: for ever (kiosks).
    pub reconnect_timeout: Option<Duration>,
    /// The latency lab's watched region (`kumo latency --watch`): each decoded picture's mean
    /// luma there goes into its `Decoded` report.
    pub watch: Option<crate::core::sim::lab::Region>,
    /// Record the stream as it arrives into this Matroska file, with each frame's times
    /// beside it (`--record`; `client::record`).
    pub record: Option<std::path::PathBuf>,
    /// Keep the last this long of the stream in memory for the save-replay hotkey
    /// (`--replay-seconds`); the client then asks the host for an IDR every third of it.
    pub replay: Option<Duration>,
    /// Share copied text with the host through `$DISPLAY`'s clipboard (`--clipboard`; a
    /// windowed client that is not a kiosk): the host's copies are put there, and the
    /// window asks for this side's copy when it gains focus ([`Session::clipboard`]).
    pub clipboard: bool,
    /// Send the player's voice to a host that plays it into its virtual microphone (`--mic`;
    /// `client::mic`).
    pub mic: Option<MicConfig>,
}

/// The microphone a session sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicConfig {
    /// The capture device ("default": the system's).
    pub device: String,
    /// Push-to-talk: it starts muted, and the window unmutes it while the chord is held.
    pub push_to_talk: bool,
}

/// Adaptive bitrate's floor unless told otherwise (`--min-bitrate-kbps`, the config file).
pub const ABR_FLOOR_KBPS: u32 = crate::core::video::abr::FLOOR_KBPS;

impl Default for StreamRequest {
    /// 1280×720 at 60 fps, 10 Mbit/s, adaptive down to 0.5 Mbit/s: what `kumo connect` asks
    /// for unless told otherwise.
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 60,
            bitrate_kbps: 10_000,
            min_bitrate_kbps: Some(ABR_FLOOR_KBPS),
            adapt_size: true,
        }
    }
}

impl ClientConfig {
    /// A client of `host`, checked by `verify`, with everything else at its default: no
    /// certificate, the default request, this build's protocol, no script, no gamepads, sound
    /// on, the device's own speakers, and reconnecting for [`RECONNECT_TIMEOUT`]. Change the
    /// rest with struct update syntax.
    pub fn new(host: SocketAddr, verify: Verify) -> Self {
        Self {
            host,
            verify,
            identity: None,
            request: StreamRequest::default(),
            name: "kumo client".into(),
            connect_timeout: CONNECT_TIMEOUT,
            protocol_version: PROTOCOL_VERSION,
            input_script: None,
            gamepads: false,
            gamepad_mappings: Vec::new(),
            audio: true,
            speakers: None,
            reconnect_timeout: Some(RECONNECT_TIMEOUT),
            watch: None,
            record: None,
            replay: None,
            clipboard: false,
            mic: None,
        }
    }
}

/// The default for [`ClientConfig::connect_timeout`] and `kumo pair`'s: a host on the LAN
/// answers in milliseconds, one across the internet in well under a second.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default for [`ClientConfig::reconnect_timeout`].
pub const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::core::session::client::SILENCE;

/// Connects and completes the handshake, and has the decode thread call `notify` after
/// every picture it decodes (the window wakes its event loop with it). Must run inside a
/// tokio runtime.
pub async fn connect_notifying(config: ClientConfig, notify: decode::Notify) -> Result<Session, ClientError> {
    open(config, Some(notify)).await
}

/// Builds the parity code's tables off the async workers, once per process (`fec::prepare`).
async fn prepare_parity() {
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_init(|| async {
            tokio::task::spawn_blocking(crate::core::video::fec::prepare).await.ok();
        })
        .await;
}

/// How a session went, headless or windowed: its figures and how it ended.
#[derive(Debug)]
pub struct SessionReport {
    pub summary: stats::Summary,
    /// How the session ended: stopped, ended by the host, or lost.
    pub end: Result<End, ClientError>,
}

/// How a session ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client stopped it.
    Stopped,
    /// The host ended it with this message.
    HostEnded(String),
}

/// A running session.
pub struct Session {
    pub welcome: Welcome,
    /// Everything the session reports; closes when the session and decode thread are over.
    pub events: Receiver<stats::Event>,
    /// The latest decoded picture.
    pub slot: Arc<FrameSlot>,
    /// The player's input as it is now: devices (and a script) write it, the session sends
    /// it to the host as datagrams.
    pub input: Arc<InputHandle>,
    /// Rumble requests from the host, when no gamepad thread took them (`gamepads` off).
    pub rumble: Option<Receiver<Rumble>>,
    /// The video's latest latencies: the presenter reports what it shows here, for A/V sync.
    pub av: Arc<AvClock>,
    audio: Option<AudioPlayer>,
    recording: Option<record::Recording>,
    host: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<End, ClientError>>,
    decode_thread: JoinHandle<()>,
    /// The client's QUIC endpoint (its UDP socket), for moving the session to a new socket.
    endpoint: Endpoint,
    /// Asks the shared clipboard to read this side's copy (the window, on gaining focus);
    /// none when the clipboard is not shared.
    clipboard: Option<crate::clipboard::ReadAsker>,
    /// The microphone, when one is sent.
    mic: Option<mic::Microphone>,
}

impl Session {
    /// The microphone, when the session sends one (the window mutes it).
    pub fn mic(&self) -> Option<&mic::Microphone> {
        self.mic.as_ref()
    }

    /// The shared clipboard, when both sides share it: the window asks it to read this
    /// side's copy when it gains focus, so what the player copied elsewhere reaches the host.
    pub fn clipboard(&self) -> Option<&crate::clipboard::ReadAsker> {
        self.clipboard.as_ref()
    }

    /// The recording (`--record`), if one is under way: the presenter reports what it shows
    /// here.
    pub fn record(&self) -> Option<&record::Tap> {
        self.recording.as_ref().map(record::Recording::tap)
    }

    /// A sentence from the recording for the player (a replay saved, or why not), if any.
    pub fn notice(&self) -> Option<String> {
        self.recording.as_ref().and_then(record::Recording::notice)
    }

    /// Asks the session to end (says goodbye to the host).
    pub fn stop(&self) {
        self.stop.send(true).ok();
    }

    /// Moves the session to a new UDP socket (a new local port), as when a laptop changes
    /// network: QUIC migrates the connection, and the stream goes on without a new handshake.
    /// Returns the new local address. Must run inside a tokio runtime.
    pub fn rebind(&self) -> std::io::Result<SocketAddr> {
        let ip: std::net::IpAddr = if self.host.is_ipv6() {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        let socket = std::net::UdpSocket::bind((ip, 0))?;
        self.endpoint.rebind(socket)?;
        self.endpoint.local_addr()
    }

    /// The client's local UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Waits for the session and its decode thread to end.
    pub async fn finish(self) -> Result<End, ClientError> {
        let result = match self.task.await {
            Ok(r) => r,
            Err(err) => Err(ClientError::Internal(format!("the session's task ended abnormally: {err}"))),
        };
        // The task dropped the decode and audio queues' senders, so those threads are
        // finishing their last frame and packet.
        let thread = self.decode_thread;
        let audio = self.audio;
        let recording = self.recording;
        tokio::task::spawn_blocking(move || {
            thread.join().ok();
            if let Some(audio) = audio {
                audio.join();
            }
            // Last: everything decoded and played is queued to it by now.
            if let Some(recording) = recording {
                recording.finish();
            }
        })
        .await
        .ok();
        result
    }
}

/// Connects and completes the handshake. Must run inside a tokio runtime.
pub async fn connect(config: ClientConfig) -> Result<Session, ClientError> {
    open(config, None).await
}

async fn open(config: ClientConfig, notify: Option<decode::Notify>) -> Result<Session, ClientError> {
    prepare_parity().await;
    let addr = config.host;
    let endpoint = Endpoint::client(net::any_port_for(addr))?;
    let (quic, seen) = tls::client_config(config.verify, config.identity.as_ref(), net::transport())?;
    let connecting = endpoint
        .connect_with(quic.clone(), addr, "kumo-host")
        .map_err(|e| ClientError::Connect { addr, reason: e.to_string() })?;
    let conn = match tokio::time::timeout(config.connect_timeout, connecting).await {
        Err(_) => return Err(ClientError::Unreachable { addr, secs: config.connect_timeout.as_secs().max(1) }),
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => return Err(connect_error(addr, config.verify, &seen, &err)),
    };
    let (events_tx, events) = std::sync::mpsc::sync_channel(STATS_QUEUE);
    let av = Arc::new(AvClock::default());
    let audio = if config.audio {
        let (stats, av) = (events_tx.clone(), av.clone());
        // Looking at the sound device can block for a moment: off the async workers.
        match tokio::task::spawn_blocking(move || AudioPlayer::spawn(stats, av)).await {
            Ok(Ok(player)) => Some(player),
            Ok(Err(err)) => {
                tracing::warn!("could not start the audio thread: {err}; streaming without sound");
                None
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let abr =
        config.request.min_bitrate_kbps.map(|min_kbps| abr::Limits { min_kbps, max_kbps: config.request.bitrate_kbps });
    // The clipboard is offered only once this side's display answers (a Wayland session
    // without X has none): the host's copies must never go to streams nobody reads.
    let clipboard = config.clipboard.then(open_clipboard).flatten();
    let hello = Hello {
        version: config.protocol_version,
        width: config.request.width,
        height: config.request.height,
        fps: config.request.fps,
        bitrate_kbps: config.request.bitrate_kbps,
        max_width: crate::core::sim::scene::MAX_WIDTH as u16,
        max_height: crate::core::sim::scene::MAX_HEIGHT as u16,
        client_name: config.name.clone(),
        audio_channels: audio.as_ref().map_or(0, |a| config.speakers.unwrap_or(a.device_channels.clamp(2, 8) as u8)),
        resume_token: 0,
        capabilities: Capabilities::THIS_BUILD
            .without(if config.request.adapt_size { Capabilities::NONE } else { Capabilities::ADAPTS_SIZE })
            .without(if clipboard.is_some() { Capabilities::NONE } else { Capabilities::CLIPBOARD })
            .without(if config.mic.is_some() { Capabilities::NONE } else { Capabilities::MICROPHONE }),
        // With adaptive bitrate the stream starts lower and climbs (`abr::Controller::starting`).
        start_kbps: abr.map_or(0, abr::start_kbps),
    };
    let (send, recv, welcome) = handshake(&conn, &hello, addr).await?;
    tracing::debug!(
        capabilities = welcome.capabilities.both(hello.capabilities).bits(),
        "the session's capabilities (what both sides announced)"
    );
    let sources = Sources { script: config.input_script, gamepads: config.gamepads.then_some(config.gamepad_mappings) };
    let record = Keep { file: config.record, replay: config.replay };
    let media = Media {
        events: (events_tx, events),
        av,
        audio,
        notify,
        watch: config.watch,
        record,
        mic: config.mic,
        clipboard,
    };
    let redial = Redial { endpoint, quic, seen, verify: config.verify, hello, timeout: config.reconnect_timeout, abr };
    start(Handshaken { conn, welcome, send, recv }, redial, sources, media)
}

/// Why a QUIC connection attempt failed, in a sentence: a certificate that is not the pinned
/// one is named as such.
fn connect_error(
    addr: SocketAddr,
    verify: Verify,
    seen: &SeenCertificate,
    err: &quinn::ConnectionError,
) -> ClientError {
    if let (Verify::Pinned(want), Some(got)) = (verify, seen.get())
        && got != want
    {
        return ClientError::FingerprintMismatch { addr, got, want };
    }
    ClientError::Connect { addr, reason: err.to_string() }
}

/// How long a host may take to answer `Hello`: it answers once it has opened the session's
/// display or started its program.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Says `hello` on a new control stream and reads the host's answer.
async fn handshake(
    conn: &Connection,
    hello: &Hello,
    addr: SocketAddr,
) -> Result<(SendStream, RecvStream, Welcome), ClientError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| ClientError::Lost { addr, source: e.into() })?;
    let handshake = async {
        net::write_control(&mut send, &Control::Hello(hello.clone())).await?;
        net::read_control(&mut recv).await
    };
    let reply = tokio::time::timeout(HELLO_TIMEOUT, handshake)
        .await
        .map_err(|_| {
            let reason = format!("no answer to Hello within {} s", HELLO_TIMEOUT.as_secs());
            ClientError::Handshake { addr, reason }
        })?
        .map_err(|e| ClientError::Handshake { addr, reason: e.to_string() })?;
    let ours = hello.version;
    let refused = match answer_to_hello(reply, ours) {
        Ok(welcome) => return Ok((send, recv, welcome)),
        Err(refused) => refused,
    };
    let (code, reason): (_, &[u8]) = match &refused {
        HelloRefused::VersionMismatch { .. } => (close::VERSION_MISMATCH, b"version mismatch"),
        HelloRefused::NotPaired(_) | HelloRefused::Refused(_) => (close::FINISHED, b"refused"),
        HelloRefused::Unexpected(_) => (close::PROTOCOL_ERROR, b"expected Welcome"),
    };
    conn.close(code, reason);
    Err(match refused {
        HelloRefused::VersionMismatch { host, message } => ClientError::VersionMismatch { ours, host, message },
        HelloRefused::NotPaired(message) => ClientError::NotPaired { addr, message },
        HelloRefused::Refused(message) => ClientError::Refused { addr, message },
        HelloRefused::Unexpected(reason) => ClientError::Handshake { addr, reason },
    })
}

/// What reconnecting needs: the endpoint (the same socket, so the host sees the same client),
/// the TLS setup, the `Hello` to say again, and how long to keep trying.
struct Redial {
    endpoint: Endpoint,
    quic: quinn::ClientConfig,
    seen: Arc<SeenCertificate>,
    verify: Verify,
    hello: Hello,
    timeout: Option<Duration>,
    /// Adaptive bitrate's limits (`None`: fixed bitrate).
    abr: Option<abr::Limits>,
}

/// A connection whose handshake is done: the host's `Welcome` and the control stream.
struct Handshaken {
    conn: Connection,
    welcome: Welcome,
    send: SendStream,
    recv: RecvStream,
}

/// The session's input sources besides the window: a script (`--input-script`) and the
/// gamepads, with their extra mappings (`None`: gamepads off).
struct Sources {
    script: Option<Script>,
    gamepads: Option<Vec<String>>,
}

/// The session's outputs, made before the handshake: the stats channel, the A/V clock, the
/// audio thread (which looked at the device to ask for the right layout) and the window's
/// wake-up.
struct Media {
    events: (SyncSender<stats::Event>, Receiver<stats::Event>),
    av: Arc<AvClock>,
    audio: Option<AudioPlayer>,
    notify: Option<decode::Notify>,
    /// The latency lab's watched region.
    watch: Option<crate::core::sim::lab::Region>,
    /// What to keep of the stream.
    record: Keep,
    /// The microphone to send (`--mic`).
    mic: Option<MicConfig>,
    /// This side's clipboard, when it is shared.
    clipboard: Option<crate::clipboard::X11Clipboard>,
}

/// What to keep of the stream: a file (`--record`), a replay buffer (`--replay-seconds`).
struct Keep {
    file: Option<std::path::PathBuf>,
    replay: Option<Duration>,
}

/// Starts streaming after the handshake: the decode thread, the input sources and the
/// session task.
fn start(handshaken: Handshaken, redial: Redial, sources: Sources, media: Media) -> Result<Session, ClientError> {
    let Handshaken { conn, welcome, send, recv } = handshaken;
    let Sources { script: input_script, gamepads } = sources;
    let addr = conn.remote_address();
    tracing::info!(
        "streaming {}x{} at {} fps from {addr}, up to {} kbit/s",
        welcome.width,
        welcome.height,
        welcome.fps,
        welcome.bitrate_kbps
    );
    let Media { events: (events_tx, events), av, audio, notify, watch: watch_region, record, mic, clipboard } = media;
    let recording = start_recording(record, &welcome, audio.is_some(), notify.is_some());
    let record_tap = recording.as_ref().map(|r| r.tap().clone());
    let (audio, audio_input) = start_audio(audio, &welcome, record_tap.clone());
    // The queue holds at most what the audio thread reported so far: this cannot be full.
    events_tx
        .try_send(stats::Event::Stream {
            width: welcome.width,
            height: welcome.height,
            fps: welcome.fps,
            bitrate_kbps: welcome.bitrate_kbps,
            host_name: welcome.host_name.clone(),
        })
        .ok();
    let (decode_tx, decode_rx) = std::sync::mpsc::sync_channel(DECODE_QUEUE);
    // One pending loss report is enough: the sequencer asks for one IDR per loss anyway.
    let (losses_tx, losses_rx) = mpsc::channel(1);
    let (ltr_tx, ltr_marks) = mpsc::channel(LTR_QUEUE);
    let idr_pic_id = Arc::new(std::sync::atomic::AtomicU32::new(decode::NO_IDR_PIC_ID));
    let slot = Arc::new(FrameSlot::new());
    let decode_thread = decode::spawn(
        decode_rx,
        decode::Outputs {
            stats: events_tx.clone(),
            markers: !welcome.capabilities.contains(Capabilities::UNMARKED_PICTURES),
            watch: watch_region,
            losses: losses_tx,
            ltr_marks: ltr_tx,
            idr_pic_id: idr_pic_id.clone(),
            slot: slot.clone(),
            notify,
            av: av.clone(),
            record: record_tap.clone(),
        },
    )?;
    let (stop, stop_rx) = watch::channel(false);
    let (state, input_rx) = watch::channel(InputState::default());
    let (presses, presses_rx) = mpsc::channel(PRESS_QUEUE);
    let event_micros = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let input = Arc::new(InputHandle::new(state, presses, event_micros.clone()));
    if let Some(script) = input_script {
        tokio::spawn(play_script(script, input.clone(), stop_rx.clone()));
    }
    // Rumble is advisory: when 8 are waiting for the pad thread, newer ones are dropped.
    let (rumble_tx, rumble_rx) = std::sync::mpsc::sync_channel(8);
    let rumble = if let Some(mappings) = gamepads {
        crate::client::pads::spawn(input.clone(), rumble_rx, mappings)?;
        None
    } else {
        Some(rumble_rx)
    };
    let endpoint = redial.endpoint.clone();
    let both = welcome.capabilities.both(redial.hello.capabilities);
    let (clipboard, clipboard_asker) = share_clipboard(&conn, both, clipboard);
    let (mic, voice) = start_mic(mic.filter(|_| both.contains(Capabilities::MICROPHONE)));
    let link = Link {
        conn,
        addr,
        send,
        events: events_tx,
        decode: decode_tx,
        rumble: rumble_tx,
        audio: audio_input,
        audio_format: welcome.audio,
        event_micros,
        token: welcome.resume_token,
        session: new_session(redial.abr, &welcome, recording.as_ref().and_then(record::Recording::key_frames_every)),
        redial,
        start: Instant::now(),
        ltr_marks,
        idr_pic_id,
        record: record_tap.clone(),
        clipboard,
        voice,
    };
    let task = tokio::spawn(link.run(recv, losses_rx, Inputs { state: input_rx, presses: presses_rx }, stop_rx));
    Ok(Session {
        welcome,
        events,
        slot,
        input,
        rumble,
        av,
        audio,
        recording,
        host: addr,
        stop,
        task,
        decode_thread,
        endpoint,
        clipboard: clipboard_asker,
        mic,
    })
}

/// The microphone `mic` (muted at first with push-to-talk), when the session sends one, and
/// the queue its packets come through; none, with a sentence, when its thread cannot start.
fn start_mic(
    mic: Option<MicConfig>,
) -> (Option<mic::Microphone>, Option<mpsc::Receiver<crate::core::wire::MicPacket>>) {
    let Some(mic) = mic else { return (None, None) };
    let (tx, rx) = mpsc::channel(mic::QUEUE);
    match mic::Microphone::start(&mic.device, mic.push_to_talk, tx) {
        Ok(mic) => (Some(mic), Some(rx)),
        Err(err) => {
            tracing::warn!("{err}; the session goes on without the microphone");
            (None, None)
        }
    }
}

/// `$DISPLAY`'s clipboard, read when the window gains focus; none, with a sentence, when the
/// display cannot be reached (the stream goes on without a shared clipboard).
fn open_clipboard() -> Option<crate::clipboard::X11Clipboard> {
    crate::clipboard::X11Clipboard::start(None, false)
        .inspect_err(|err| tracing::warn!("{err}; the stream goes on without a shared clipboard"))
        .ok()
}

/// `x11` linked with the host over `conn`, when the session's capabilities (`both` sides')
/// have the clipboard; and the handle that asks it to read.
fn share_clipboard(
    conn: &Connection,
    both: Capabilities,
    x11: Option<crate::clipboard::X11Clipboard>,
) -> (Option<net::clipboard::ClipboardLink>, Option<crate::clipboard::ReadAsker>) {
    match x11.filter(|_| both.contains(Capabilities::CLIPBOARD)) {
        Some(x11) => {
            let asker = x11.asker();
            (Some(net::clipboard::ClipboardLink::spawn(conn.clone(), x11, "host")), Some(asker))
        }
        None => (None, None),
    }
}

/// The session's decisions, for a stream `welcome` described: adaptive bitrate within
/// `abr`, climbing to the bitrate agreed from a quarter of it, and an IDR asked for every `key_frames` (a replay buffer's).
fn new_session(abr: Option<abr::Limits>, welcome: &Welcome, key_frames: Option<Duration>) -> ClientSession {
    let abr = abr.map(abr::Controller::starting);
    let mut session = ClientSession::new(abr, Duration::ZERO);
    session.handle_welcome(welcome.capabilities);
    session.ask_key_frames_every(key_frames, Duration::ZERO);
    session
}

/// Starts the audio thread's playback of what the host sends (with each packet played going
/// to `record`); none when the host sends no sound.
fn start_audio(
    audio: Option<AudioPlayer>,
    welcome: &Welcome,
    record: Option<record::Tap>,
) -> (Option<AudioPlayer>, Option<AudioInput>) {
    match (audio, welcome.audio) {
        (Some(mut player), Some(format)) => {
            let input = player.start(format, record);
            (Some(player), input)
        }
        (Some(player), None) => {
            tracing::info!("the host sends no audio");
            // Dropping it ends the thread (no waiting on an async worker).
            drop(player);
            (None, None)
        }
        (None, _) => (None, None),
    }
}

/// Starts the recording thread when the stream is to be kept (with its sound when `sound`,
/// waiting for the presenter when `presents`); a file that cannot be made is said, and the
/// stream goes on.
fn start_recording(keep: Keep, welcome: &Welcome, sound: bool, presents: bool) -> Option<record::Recording> {
    if keep.file.is_none() && keep.replay.is_none() {
        return None;
    }
    let target = record::Target {
        path: keep.file,
        replay: keep.replay.map(|keep| record::Replay { keep, folder: record::videos_folder() }),
        fps: welcome.fps,
        audio: welcome.audio.filter(|_| sound),
        presents,
    };
    record::Recording::start(target).inspect_err(|sentence| tracing::warn!("{sentence}")).ok()
}

/// The session's network half, owned by its task.
struct Link {
    conn: Connection,
    addr: SocketAddr,
    send: SendStream,
    events: SyncSender<stats::Event>,
    decode: SyncSender<AccessUnit>,
    rumble: SyncSender<Rumble>,
    /// The audio thread's queue (no audio: none).
    audio: Option<AudioInput>,
    /// The audio stream the audio thread was started for.
    audio_format: Option<crate::core::audio::AudioFormat>,
    /// Device event times of input changes not yet sent (shared with the `InputHandle`).
    event_micros: Arc<std::sync::atomic::AtomicU64>,
    /// The host's name for this session, presented when reconnecting.
    token: u64,
    /// How to reconnect (and the endpoint, kept alive as long as the session).
    redial: Redial,
    /// The session's epoch: input pacing and the sequencer's timers count from it.
    start: Instant,
    /// Every decision while streaming: frame order, input, pings, clock sync, adaptive
    /// bitrate, silence (`core::session::client`).
    session: ClientSession,
    /// Long-term references the decoder marked, to confirm to the host.
    ltr_marks: mpsc::Receiver<decode::LtrMark>,
    /// The decoder's IDR period, which a recovery request names.
    idr_pic_id: Arc<std::sync::atomic::AtomicU32>,
    /// The recording, which gets the clock-sync estimate for its frame times.
    record: Option<record::Tap>,
    /// The shared clipboard's link, moved to each new connection.
    clipboard: Option<net::clipboard::ClipboardLink>,
    /// The microphone's packets, to send as datagrams.
    voice: Option<mpsc::Receiver<crate::core::wire::MicPacket>>,
}

/// What the input sources write, for the session task: the whole state (latest wins) and the
/// transitions for the reliable path.
struct Inputs {
    state: watch::Receiver<InputState>,
    presses: mpsc::Receiver<Press>,
}

/// What the streaming loop saw, handed to the session once the wait is over (`Bytes`: a
/// datagram, as quinn hands it).
enum Happened<Bytes> {
    /// The input changed (`false`: its sender is gone).
    Input(bool),
    /// This many key and button transitions came (0: their sender is gone).
    Presses(usize),
    Datagram(Result<Bytes, quinn::ConnectionError>),
    /// A frame, its arrival on the wall clock and the shards rebuilt from parity (`None`: the
    /// frame streams' acceptor ended with the connection).
    Frame(Option<(Frame, u64, usize)>),
    /// The session's timer.
    Timeout,
    /// The decoder failed on this frame.
    DecoderLoss(u64),
    LtrMark(decode::LtrMark),
    Control(Option<Result<Control, NetError>>),
    /// A packet of the player's voice.
    Voice(crate::core::wire::MicPacket),
}

/// The microphone's next packet; never, without one.
async fn next_voice(
    voice: &mut Option<mpsc::Receiver<crate::core::wire::MicPacket>>,
) -> Option<crate::core::wire::MicPacket> {
    match voice {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Why streaming on a connection stopped, when it was not the end of the session.
enum Fault {
    /// The connection is gone but the host may come back: reconnect.
    Retry(String),
    /// Reconnecting cannot help (a protocol error, the decoder gone, another version).
    Fatal(ClientError),
}

/// The connection error inside a network error, if that is what it is.
fn connection_error(err: &NetError) -> Option<&quinn::ConnectionError> {
    match err {
        NetError::Connection(e)
        | NetError::Write(quinn::WriteError::ConnectionLost(e))
        | NetError::Read(quinn::ReadError::ConnectionLost(e))
        | NetError::ReadExact(quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e))) => Some(e),
        _ => None,
    }
}

impl Link {
    fn report(&self, event: stats::Event) {
        if let (Some(record), stats::Event::ClockSync { offset_micros, .. }) = (&self.record, &event) {
            record.clock(*offset_micros);
        }
        self.events.try_send(event).ok();
    }

    async fn run(
        mut self,
        mut recv: RecvStream,
        mut losses: mpsc::Receiver<u64>,
        mut inputs: Inputs,
        mut stop: watch::Receiver<bool>,
    ) -> Result<End, ClientError> {
        loop {
            let why = match self.stream(recv, &mut losses, &mut inputs, &mut stop).await {
                Ok(end) => return Ok(end),
                Err(Fault::Fatal(err)) => return Err(err),
                Err(Fault::Retry(why)) => why,
            };
            recv = match self.reconnect(why, &mut stop).await? {
                Some(recv) => recv,
                None => return Ok(End::Stopped),
            };
        }
    }

    /// Streams on the current connection until the session ends or the connection fails. The
    /// loop only moves things: what happened goes to the session with the time, and what the
    /// session decided is carried out.
    async fn stream(
        &mut self,
        recv: RecvStream,
        losses: &mut mpsc::Receiver<u64>,
        inputs: &mut Inputs,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<End, Fault> {
        let mut batch = Vec::with_capacity(Press::MAX_PER_MESSAGE);
        let (mut presses_open, mut input_open) = (true, true);
        let (frames_tx, mut frames) = mpsc::channel(FRAME_QUEUE);
        // Parity datagrams of this connection's frame streams (stream numbers restart with it).
        let parity = Arc::new(net::ParityTable::default());
        let acceptor = tokio::spawn(accept_frames(self.conn.clone(), frames_tx, parity.clone()));
        let (control_tx, mut control) = mpsc::channel(16);
        let reader = tokio::spawn(net::read_controls(recv, control_tx));
        let start = self.start;
        self.session.handle_reconnected(start.elapsed());
        let result = loop {
            let wake = start + self.session.poll_timeout();
            let happened = tokio::select! {
                changed = inputs.state.changed(), if input_open => Happened::Input(changed.is_ok()),
                n = inputs.presses.recv_many(&mut batch, Press::MAX_PER_MESSAGE), if presses_open => Happened::Presses(n),
                datagram = self.conn.read_datagram() => Happened::Datagram(datagram),
                frame = frames.recv() => Happened::Frame(frame),
                () = tokio::time::sleep_until(wake.into()) => Happened::Timeout,
                Some(n) = losses.recv() => Happened::DecoderLoss(n),
                Some(mark) = self.ltr_marks.recv() => Happened::LtrMark(mark),
                msg = control.recv() => Happened::Control(msg),
                Some(packet) = next_voice(&mut self.voice) => Happened::Voice(packet),
                _ = stop.changed() => {
                    self.say_goodbye().await;
                    break Ok(End::Stopped);
                }
            };
            let (now, now_micros) = (start.elapsed(), clock::now_micros());
            // The decoder's IDR period, which a recovery request names.
            let idr_pic_id = self.idr_pic_id.load(std::sync::atomic::Ordering::Acquire);
            self.session.handle_decoder_idr(u16::try_from(idr_pic_id).ok());
            match happened {
                Happened::Input(true) => {
                    let state = *inputs.state.borrow_and_update();
                    self.session.handle_input(&state, take_event_time(&self.event_micros, now_micros));
                }
                Happened::Input(false) => input_open = false,
                Happened::Presses(n) => {
                    presses_open = n > 0;
                    self.session.handle_presses(std::mem::take(&mut batch));
                }
                Happened::Datagram(Ok(bytes)) => self.session.handle_datagram(&bytes, now, now_micros),
                Happened::Datagram(Err(err)) => break Err(self.fault(err.into())),
                Happened::Frame(Some((frame, received_micros, rebuilt))) => {
                    self.session.handle_frame(frame, received_micros, rebuilt, now);
                }
                Happened::Frame(None) | Happened::Control(None) => {
                    break Err(self.fault(self.conn.closed().await.into()));
                }
                Happened::Timeout => self.session.handle_timeout(now, now_micros),
                Happened::DecoderLoss(n) => self.session.handle_decoder_loss(n, now),
                Happened::LtrMark(mark) => self.session.handle_ltr_mark(mark.idr_pic_id, mark.frame_num),
                Happened::Control(Some(Ok(msg))) => self.session.handle_control(msg, now, now_micros),
                Happened::Control(Some(Err(err))) => break Err(self.fault(err)),
                Happened::Voice(packet) => self.session.handle_voice(packet),
            }
            if let Some(end) = self.carry_out(&parity).await {
                break end;
            }
        };
        acceptor.abort();
        reader.abort();
        result
    }

    /// Does what the session decided: sends, hands frames to the decoder, packets to the audio
    /// thread and parity to the frame streams' readers. `Some` ends streaming on this
    /// connection.
    async fn carry_out(&mut self, parity: &net::ParityTable) -> Option<Result<End, Fault>> {
        if self.record.as_ref().is_some_and(record::Tap::take_key_frame_wanted) {
            self.session.ask_key_frame();
        }
        loop {
            while let Some(transmit) = self.session.poll_transmit() {
                match transmit {
                    ClientTransmit::Control(msg) => {
                        if let Err(err) = net::write_control(&mut self.send, &msg).await {
                            return Some(Err(self.fault(err)));
                        }
                    }
                    // A datagram that does not fit or finds the connection closed is lost, as
                    // datagrams may be; a closed connection shows up on the next read.
                    ClientTransmit::Datagram(datagram) => {
                        self.conn.send_datagram(datagram.encode().into()).ok();
                    }
                }
            }
            match self.session.poll_output()? {
                ClientOutput::Report(event) => self.report(event),
                ClientOutput::Decode(frame) => {
                    let number = frame.header.frame_number;
                    let unit = AccessUnit { header: frame.header, data: frame.payload, queued_at: Instant::now() };
                    match self.decode.try_send(unit) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            self.session.handle_decode_queue_full(number, self.start.elapsed());
                        }
                        Err(TrySendError::Disconnected(_)) => return Some(Err(self.fault(NetError::DecoderGone))),
                    }
                }
                ClientOutput::Audio { packet, arrival_micros } => {
                    if let Some(audio) = &self.audio {
                        audio.packet(packet, arrival_micros);
                    }
                }
                ClientOutput::Parity(p) => parity.insert(p),
                ClientOutput::Rumble { slot, strong, weak, duration_ms } => {
                    self.rumble.try_send(Rumble { slot, strong, weak, duration_ms }).ok();
                }
                ClientOutput::Ended(ending) => return Some(self.ended(ending)),
            }
        }
    }

    /// Closes the connection as the session's ending says, and tells the loop what next.
    fn ended(&mut self, ending: ClientEnding) -> Result<End, Fault> {
        match ending {
            ClientEnding::Retry(why) => {
                tracing::info!("{why}");
                Err(Fault::Retry(why))
            }
            ClientEnding::Revoked(message) => {
                tracing::warn!(%message, "the host revoked this client");
                self.conn.close(close::FINISHED, b"goodbye");
                Err(Fault::Fatal(ClientError::NotPaired { addr: self.addr, message }))
            }
            ClientEnding::HostEnded(message) => {
                tracing::info!("the host ended the session ({message})");
                self.conn.close(close::FINISHED, b"goodbye");
                Ok(End::HostEnded(message))
            }
        }
    }

    /// Ends the session: a goodbye, a moment for it to arrive, then the close.
    async fn say_goodbye(&mut self) {
        let bye = Control::Goodbye { reason: GoodbyeReason::Finished, message: "client finished".into() };
        net::write_control(&mut self.send, &bye).await.ok();
        self.send.finish().ok();
        tokio::time::timeout(Duration::from_millis(200), self.conn.closed()).await.ok();
        self.conn.close(close::FINISHED, b"client finished");
    }

    /// Whether a failed connection is worth reconnecting for: the peer timed out, was reset
    /// (a restarted host on the same port) or shut down. A protocol error, or the session's
    /// own decoder gone, is not.
    fn fault(&self, source: NetError) -> Fault {
        use quinn::ConnectionError as E;
        match connection_error(&source) {
            Some(E::TimedOut | E::Reset) => Fault::Retry(source.to_string()),
            Some(E::ApplicationClosed(close)) if close.error_code == close::HOST_SHUTDOWN => {
                Fault::Retry("the host shut down".into())
            }
            _ => Fault::Fatal(ClientError::Lost { addr: self.addr, source }),
        }
    }

    /// Reconnects after the connection failed for `why`: new QUIC connections from the same
    /// socket, paced by `RETRY_*`, until one completes a handshake that resumes the session
    /// (its token lets the host hand the old one over), `stop` turns true (`None`), or the
    /// reconnect timeout passes.
    async fn reconnect(
        &mut self,
        why: String,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<RecvStream>, ClientError> {
        let began = Instant::now();
        tracing::warn!(host = %self.addr, "{why}; reconnecting");
        self.report(stats::Event::Reconnecting { attempt: 0, reason: why.clone() });
        let mut redialer = Redialer::new(Duration::ZERO, self.redial.timeout);
        let mut attempts = tokio::task::JoinSet::new();
        let mut last = why;
        loop {
            // Only the pacing's timer wakes this loop besides attempts ending (and `stop`).
            let wake = redialer.poll_timeout().map_or(began + Duration::from_hours(24 * 365), |t| began + t);
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => {
                    while let Some(action) = redialer.handle_timeout(began.elapsed()) {
                        let attempt = match action {
                            RedialAction::Attempt(n) => n,
                            RedialAction::GiveUp => {
                                let secs = self.redial.timeout.unwrap_or_default().as_secs();
                                tracing::error!(host = %self.addr, secs, "giving up reconnecting: {last}");
                                return Err(ClientError::GaveUp { addr: self.addr, secs, last });
                            }
                        };
                        self.report(stats::Event::Reconnecting { attempt, reason: last.clone() });
                        match self.redial.endpoint.connect_with(self.redial.quic.clone(), self.addr, "kumo-host") {
                            Ok(connecting) => {
                                attempts.spawn(tokio::time::timeout(ATTEMPT_TIMEOUT, connecting));
                            }
                            Err(err) => {
                                redialer.handle_attempt_failed();
                                last = err.to_string();
                            }
                        }
                    }
                }
                Some(done) = attempts.join_next() => {
                    let failed = match done {
                        Ok(Ok(Ok(conn))) => {
                            // Only the first connection says Hello: a second resume would take
                            // the session from the first.
                            attempts.abort_all();
                            match self.resume(conn).await {
                                Ok(recv) => {
                                    let outage_micros = redialer.outage(began.elapsed()).as_micros() as u64;
                                    let attempt = redialer.attempts();
                                    tracing::info!(host = %self.addr, attempt, outage_ms = outage_micros / 1000, "reconnected");
                                    self.report(stats::Event::Reconnected { outage_micros });
                                    return Ok(Some(recv));
                                }
                                Err(Fault::Fatal(err)) => return Err(err),
                                Err(Fault::Retry(why)) => why,
                            }
                        }
                        Ok(Ok(Err(err))) => connect_error(self.addr, self.redial.verify, &self.redial.seen, &err).to_string(),
                        Ok(Err(_)) => format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                        Err(_) => last.clone(),
                    };
                    // Each attempt ends here once, the ones aborted after a failed resume too.
                    redialer.handle_attempt_failed();
                    last = failed;
                }
                _ = stop.changed() => return Ok(None),
            }
        }
    }

    /// Says Hello again on a new connection, presenting the session's token (and starting at
    /// the bitrate adaptive bitrate had come to).
    async fn resume(&mut self, conn: Connection) -> Result<RecvStream, Fault> {
        let mut hello = Hello { resume_token: self.token, ..self.redial.hello.clone() };
        // The encoder is built for the rate asked (the most a target may be: a host that
        // built it for the target could never climb back), starting at the target.
        if let Some(kbps) = self.session.target_kbps() {
            hello.start_kbps = kbps;
        }
        let (send, recv, welcome) = match handshake(&conn, &hello, self.addr).await {
            Ok(answer) => answer,
            Err(err @ (ClientError::VersionMismatch { .. } | ClientError::NotPaired { .. })) => {
                return Err(Fault::Fatal(err));
            }
            Err(err) => return Err(Fault::Retry(err.to_string())),
        };
        if welcome.audio != self.audio_format && self.audio.take().is_some() {
            tracing::warn!("the host now sends another audio format; going on without sound");
        }
        self.report(stats::Event::Stream {
            width: welcome.width,
            height: welcome.height,
            fps: welcome.fps,
            bitrate_kbps: welcome.bitrate_kbps,
            host_name: welcome.host_name.clone(),
        });
        self.token = welcome.resume_token;
        if let Some(clipboard) = &self.clipboard {
            clipboard.reconnected(conn.clone());
        }
        // Voice captured during the outage is too late to play: the new connection starts
        // with what is said from now on.
        if let Some(voice) = &mut self.voice {
            while voice.try_recv().is_ok() {}
        }
        self.conn = conn;
        self.send = send;
        Ok(recv)
    }
}

/// Plays an input script into the session's input, timed from the start of streaming.
async fn play_script(script: Script, input: Arc<InputHandle>, mut stop: watch::Receiver<bool>) {
    let start = Instant::now();
    let mut player = Player::new(script);
    while let Some(next) = player.next_at() {
        tokio::select! {
            () = tokio::time::sleep_until((start + next).into()) => {}
            _ = stop.changed() => return,
        }
        while let Some(change) = player.next_due(start.elapsed()) {
            input.modify(|state| change.apply(state));
        }
    }
}

/// Reads every frame stream; hands each whole frame on with the moment it was whole (its last
/// byte arrived, or parity rebuilt it) and the data shards parity rebuilt.
async fn accept_frames(conn: Connection, frames: mpsc::Sender<(Frame, u64, usize)>, parity: Arc<net::ParityTable>) {
    while let Ok(stream) = conn.accept_uni().await {
        let (frames, parity) = (frames.clone(), parity.clone());
        tokio::spawn(async move {
            match net::receive_frame(stream, &parity).await {
                Ok(got) => {
                    frames.send((got.frame, clock::now_micros(), got.rebuilt_shards)).await.ok();
                }
                Err(err) => tracing::debug!("dropping a frame stream: {err}"),
            }
        });
    }
}

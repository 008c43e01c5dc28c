//! The host's session, sans IO: what the host agrees to stream for a client's `Hello`, and
//! every decision while it streams: inputs accepted and acknowledged, clock probes answered,
//! repair and bitrate requests passed to the encoder within their rate limits, parity's share
//! of each frame, and how a session ends on the client's word. The shell (`host`) feeds it what
//! happened with the time (`handle_*`), does what `poll_transmit` and `poll_output` say, and
//! owns the connection, the encoder thread and the game.

use crate::audio::{AudioFormat, PACKET_FRAMES, SpeakerLayout};
use crate::input::{InputReceiver, Press, Verdict};
use crate::rate::TokenBucket;
use crate::sim::scene;
use crate::video::fec::{FecMode, Protection};
use crate::video::ladder::{Ladder, Rung};
use crate::view::color::ColorSpace;
use crate::wire::{
    Capabilities, Control, Datagram, DatagramError, DatagramKind, FrameKind, Hello, InputAck, InputDatagram, MicPacket,
    PROTOCOL_VERSION, Welcome, WireError,
};
use std::collections::VecDeque;
use std::time::Duration;

/// Bounds on the bitrate a client may ask for.
pub const MIN_BITRATE_KBPS: u32 = 100;
pub const MAX_BITRATE_KBPS: u32 = 200_000;
/// Clock probes answered at most: a burst of 16, then 50 a second (a client sends 4); the rest
/// are ignored, so a flood costs no more than that.
const PROBE_BURST: f64 = 16.0;
const PROBE_RATE: f64 = 50.0;
/// Pings answered at most: a burst of 8, then 8 a second (a client sends 4, one every
/// `client::PING_INTERVAL`). A client flooding pings gets no more pongs than that, so its
/// flood cannot fill its own control stream with the host's answers.
const PING_BURST: f64 = 8.0;
const PING_RATE: f64 = 8.0;
/// Repairs granted at most: a burst of 2, then 10 a second. A repair (an IDR, several times a
/// frame's size, or a recovery frame) already coming answers every request sent before it
/// arrives; more would only make the encoder send key frames back to back.
const REPAIR_BURST: f64 = 2.0;
const REPAIR_RATE: f64 = 10.0;
/// How long after a size change the client's word on long-term references is taken to be
/// about the encoder before it: a round trip and then some.
const RESIZE_GUARD: Duration = Duration::from_secs(1);

/// What the host streams for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    pub width: u16,
    pub height: u16,
    pub fps: u16,
    /// The most a target may be: the encoder is built for it.
    pub bitrate_kbps: u32,
    /// Where the client's adaptive bitrate starts (`Hello::start_kbps`), at most the above.
    pub start_kbps: u32,
}

/// What the host will stream for a client's `Hello`, at most `max_fps`: the size the client
/// asked for within what it can show; for a display of its own size (`display`), that
/// display's size, or scaled down (aspect kept) to fit what the client asked for; or why none
/// can be streamed.
pub fn negotiate(hello: &Hello, max_fps: u16, display: Option<(u16, u16)>) -> Result<Agreed, String> {
    let (max_width, max_height) = (hello.max_width.max(1), hello.max_height.max(1));
    let asked = (hello.width.min(max_width), hello.height.min(max_height));
    let (width, height) = match display {
        Some(native) => fit(native, asked),
        None => asked,
    };
    scene::check_size(width.into(), height.into()).map_err(|e| e.to_string())?;
    let bitrate_kbps = clamp_bitrate(hello.bitrate_kbps);
    Ok(Agreed {
        width,
        height,
        fps: hello.fps.clamp(1, max_fps),
        bitrate_kbps,
        start_kbps: start_kbps(hello, bitrate_kbps),
    })
}

/// Where the stream starts for `hello`, whose agreed bitrate is `agreed_kbps`: the client's
/// start rate, at most the agreed rate; the agreed rate when it gave none.
pub fn start_kbps(hello: &Hello, agreed_kbps: u32) -> u32 {
    if hello.start_kbps == 0 { agreed_kbps } else { clamp_bitrate(hello.start_kbps).min(agreed_kbps) }
}

/// A display of `native` size within `room`: as it is if it fits, else scaled down with its
/// aspect kept, to even sizes (never up: upscaling adds bits and no detail).
pub fn fit(native: (u16, u16), room: (u16, u16)) -> (u16, u16) {
    let (nw, nh) = (u32::from(native.0.max(2)), u32::from(native.1.max(2)));
    let (rw, rh) = (u32::from(room.0), u32::from(room.1));
    if nw <= rw && nh <= rh {
        return native;
    }
    // The smaller of the two ratios, in integers: width-bound when rw/nw < rh/nh.
    let (w, h) = if rw * nh <= rh * nw { (rw, nh * rw / nw) } else { (nw * rh / nh, rh) };
    let even = |v: u32| u16::try_from(v & !1).unwrap_or(u16::MAX);
    (even(w), even(h))
}

/// A bitrate a client asked for, within what the host allows.
pub fn clamp_bitrate(kbps: u32) -> u32 {
    kbps.clamp(MIN_BITRATE_KBPS, MAX_BITRATE_KBPS)
}

/// The audio stream for a client whose device has `channels` speakers (0: no audio): the
/// largest layout that fits, 128 kbit/s for the front pair and 64 for each further pair, 5 ms
/// packets, each repeating the previous one (another 128–320 kbit/s, a few percent of the
/// video, for one lost datagram in a row repaired instead of concealed).
pub fn audio_format(channels: u8) -> Option<AudioFormat> {
    (channels > 0).then(|| {
        let layout = SpeakerLayout::fitting(channels.into());
        let bitrate_kbps = 128 + 64 * (layout.streams() as u16 - 1);
        AudioFormat { layout, packet_frames: PACKET_FRAMES, bitrate_kbps, redundancy: true }
    })
}

/// What a session's sound is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSound {
    /// The synthetic game's.
    Scene,
    /// A desktop's, recorded (stereo).
    Captured,
    /// A desktop whose sound cannot be recorded.
    Silent,
}

/// What the host tells a client it will stream: what was `agreed`, for a device with
/// `audio_channels` speakers, with the session's `sound`.
pub fn welcome(agreed: Agreed, audio_channels: u8, sound: SessionSound, host_name: &str, resume_token: u64) -> Welcome {
    let desktop = sound != SessionSound::Scene;
    Welcome {
        version: PROTOCOL_VERSION,
        width: agreed.width,
        height: agreed.height,
        fps: agreed.fps,
        bitrate_kbps: agreed.bitrate_kbps,
        host_name: host_name.to_owned(),
        // The scene is drawn in BT.601 limited range, a desktop converted to BT.709 limited
        // range; openh264 passes either through untouched.
        color: if desktop { ColorSpace::DESKTOP } else { ColorSpace::HOST_DEFAULT },
        audio: match sound {
            SessionSound::Scene => audio_format(audio_channels),
            // A desktop's sound is recorded in stereo.
            SessionSound::Captured => audio_format(audio_channels.min(2)),
            SessionSound::Silent => None,
        },
        resume_token,
        capabilities: if desktop { Capabilities::THIS_BUILD } else { Capabilities::HOST_SCENE },
    }
}

/// The parity a session sends: what the host is set to, if the client reads this build's
/// parity ([`Capabilities::PARITY_RS16`]); none for a client that would misread it.
pub fn parity_mode(configured: FecMode, client: Capabilities) -> FecMode {
    if client.contains(Capabilities::PARITY_RS16) { configured } else { FecMode::Off }
}

/// Something to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTransmit {
    /// An input acknowledgement datagram.
    InputAck(InputAck),
    /// A clock probe's answer: the shell stamps `t3` as it sends, so the reply says when it
    /// left. `t2` is when the probe arrived.
    ClockReply { id: u32, t1: u64, t2: u64 },
    /// A ping's answer on the control stream, stamped likewise as it is sent.
    Pong { id: u32, client_micros: u64 },
}

/// A request for the encoder thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderRequest {
    ForceIdr,
    SetBitrate {
        kbps: u32,
    },
    /// The client lost frames: repair from a confirmed long-term reference.
    RecoverLtr {
        idr_pic_id: u16,
    },
    /// The client holds this long-term reference.
    LtrConfirmed {
        idr_pic_id: u16,
        frame_num: u32,
    },
    /// Encode at this size and rate from the next frame (a rung of the ladder); `skip_frames`:
    /// openh264 may drop frames to hold the bitrate (the lowest rung only).
    SetPicture {
        width: u16,
        height: u16,
        fps: u16,
        skip_frames: bool,
    },
}

/// Something for the shell to do besides sending.
#[derive(Debug, Clone, PartialEq)]
pub enum HostOutput {
    /// For the encoder thread.
    Encoder(EncoderRequest),
    /// An input state to apply to the game.
    Input(InputDatagram),
    /// Key and button transitions for the game.
    Presses(Vec<Press>),
    /// Parity's share of each frame changed, following the path's loss: worth a line in the
    /// log.
    ParityChanged { share: f64, loss: f64 },
    /// The ladder moved the picture to `rung` (`limited`: below the session's size and rate
    /// for want of bitrate): worth a line in the log.
    PictureChanged { rung: Rung, limited: bool, target_kbps: u32 },
    /// The player's voice, for the virtual microphone (a session that hears it).
    Voice { packet: MicPacket, arrival_micros: u64 },
    /// The session is over.
    Ended(HostEnding),
}

/// How the client ended the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEnding {
    /// It said goodbye.
    Goodbye(String),
    /// It sent a message a client must not send mid-session: a protocol error.
    Unexpected(String),
}

/// What the path looks like to QUIC, for parity's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStats {
    pub sent_packets: u64,
    pub lost_packets: u64,
    pub rtt: Duration,
    pub min_rtt: Duration,
}

/// A streaming session's decisions.
#[derive(Debug)]
pub struct HostSession {
    inputs: InputReceiver,
    probes: TokenBucket,
    pings: TokenBucket,
    repairs: TokenBucket,
    protection: Protection,
    /// Datagrams and control messages of kinds this build does not know, skipped.
    pub unknown_datagrams: u64,
    pub unknown_controls: u64,
    ended: bool,
    transmits: VecDeque<HostTransmit>,
    outputs: VecDeque<HostOutput>,
    /// The picture ladder, for a client that takes size changes (`adapt_picture`).
    ladder: Option<Ladder>,
    /// Whether the player's voice is played (both sides announced `MICROPHONE`).
    hears_voice: bool,
    /// The client's latest bitrate target, once it sent one.
    target_kbps: Option<u32>,
    /// When the picture last changed size: confirmations and repairs in flight name long-term
    /// references of the encoder before it, which is gone.
    resized_at: Option<Duration>,
}

impl HostSession {
    /// A session whose parity follows `fec`.
    pub fn new(fec: FecMode) -> Self {
        Self {
            inputs: InputReceiver::default(),
            probes: TokenBucket::new(PROBE_BURST, PROBE_RATE),
            pings: TokenBucket::new(PING_BURST, PING_RATE),
            repairs: TokenBucket::new(REPAIR_BURST, REPAIR_RATE),
            protection: Protection::new(fec),
            unknown_datagrams: 0,
            unknown_controls: 0,
            ended: false,
            transmits: VecDeque::new(),
            outputs: VecDeque::new(),
            ladder: None,
            hears_voice: false,
            target_kbps: None,
            resized_at: None,
        }
    }

    /// Lets the picture follow the path down the ladder under `ceiling` (what was agreed),
    /// for a client that announced `Capabilities::ADAPTS_SIZE`.
    pub fn adapt_picture(&mut self, ceiling: Rung, now: Duration) {
        self.ladder = Some(Ladder::starting(ceiling, now));
    }

    /// The encoder's first target (`Agreed::start_kbps`): what the ladder judges until the
    /// client's first `SetBitrate`.
    pub fn start_at(&mut self, kbps: u32) {
        self.target_kbps = Some(kbps);
    }

    /// Plays the player's voice from now on (both sides announced `MICROPHONE`); before
    /// this, and without it, microphone datagrams are dropped.
    pub fn hear_voice(&mut self) {
        self.hears_voice = true;
    }

    /// Times the picture changed, and whether it is below the ceiling now.
    pub fn picture_changes(&self) -> (u32, bool) {
        self.ladder.as_ref().map_or((0, false), |l| (l.changes(), l.limited()))
    }

    /// The ladder's decision at `now` for the latest target.
    fn step_ladder(&mut self, now: Duration) {
        let (Some(ladder), Some(target_kbps)) = (self.ladder.as_mut(), self.target_kbps) else { return };
        let (was, was_bottom) = (ladder.current(), ladder.at_bottom());
        let Some(rung) = ladder.on_target(now, target_kbps) else { return };
        // A new size, or frame skipping turned on or off, builds a new encoder.
        if (rung.width, rung.height) != (was.width, was.height) || ladder.at_bottom() != was_bottom {
            self.resized_at = Some(now);
        }
        let skip_frames = ladder.at_bottom();
        let limited = ladder.limited();
        let (width, height, fps) = (rung.width, rung.height, rung.fps);
        self.outputs.push_back(HostOutput::Encoder(EncoderRequest::SetPicture { width, height, fps, skip_frames }));
        self.outputs.push_back(HostOutput::PictureChanged { rung, limited, target_kbps });
    }

    /// Whether `now` is soon after a size change, when long-term references named by the
    /// client belong to the encoder before it.
    fn just_resized(&self, now: Duration) -> bool {
        self.resized_at.is_some_and(|at| now.saturating_sub(at) < RESIZE_GUARD)
    }

    /// A datagram from the client arrived at `now` (`now_micros` on the host's wall clock):
    /// an input (applied and acknowledged), a clock probe (answered), or a kind this build
    /// does not know (counted and skipped).
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Duration, now_micros: u64) {
        match Datagram::decode(bytes) {
            Ok(Datagram::Input(input)) => self.on_input(Ok(input), now, now_micros),
            Err(DatagramError::Bad { kind: DatagramKind::Input, error }) => self.on_input(Err(error), now, now_micros),
            // A damaged probe falls to the last arm, so junk costs no token.
            Ok(Datagram::ClockProbe(probe)) => {
                if self.probes.take(now) {
                    self.transmits.push_back(HostTransmit::ClockReply { id: probe.id, t1: probe.t1, t2: now_micros });
                }
            }
            Ok(Datagram::Mic(packet)) => {
                if self.hears_voice {
                    self.outputs.push_back(HostOutput::Voice { packet, arrival_micros: now_micros });
                }
            }
            Err(DatagramError::Unknown(_)) => self.unknown_datagrams += 1,
            // Kinds only a host sends, and damaged datagrams: a peer's bad bytes, dropped.
            Ok(
                Datagram::InputAck(_)
                | Datagram::Audio(_)
                | Datagram::ClockReply(_)
                | Datagram::Parity(_)
                | Datagram::Still(_),
            )
            | Err(_) => {}
        }
    }

    fn on_input(&mut self, decoded: Result<InputDatagram, WireError>, now: Duration, now_micros: u64) {
        let client_micros = match self.inputs.on_input(decoded, now) {
            Verdict::Apply(input) => {
                self.outputs.push_back(HostOutput::Input(input));
                input.client_micros
            }
            // Re-sent or reordered: acknowledge what is applied so the client stops.
            Verdict::Stale { .. } => 0,
            Verdict::RateLimited | Verdict::Invalid(_) => return,
        };
        let inputs = &self.inputs;
        let ack = InputAck { seq: inputs.newest(), accepted: inputs.accepted, client_micros, host_micros: now_micros };
        self.transmits.push_back(HostTransmit::InputAck(ack));
    }

    /// A control message from the client arrived at `now`.
    pub fn handle_control(&mut self, msg: Control, now: Duration) {
        self.on_control(msg, now);
        // Every message (pings come four times a second) lets the ladder look again: a step
        // up waits for the target to stay high, which sends no new message.
        self.step_ladder(now);
    }

    fn on_control(&mut self, msg: Control, now: Duration) {
        let request = match msg {
            Control::RequestIdr { .. } | Control::RecoverLtr { .. } if !self.repairs.take(now) => {
                // Within the rate limit: a repair is already on its way.
                return;
            }
            Control::RequestIdr { .. } => EncoderRequest::ForceIdr,
            // Soon after a size change, a repair may name a reference of the old encoder: the
            // new one's IDR is the repair.
            Control::RecoverLtr { .. } if self.just_resized(now) => EncoderRequest::ForceIdr,
            Control::RecoverLtr { idr_pic_id, .. } => EncoderRequest::RecoverLtr { idr_pic_id },
            // A confirmation in flight across a size change names a reference that is gone.
            Control::LtrAck { .. } if self.just_resized(now) => return,
            Control::LtrAck { idr_pic_id, frame_num } => EncoderRequest::LtrConfirmed { idr_pic_id, frame_num },
            Control::SetBitrate { bitrate_kbps } => {
                let kbps = clamp_bitrate(bitrate_kbps);
                self.target_kbps = Some(kbps);
                EncoderRequest::SetBitrate { kbps }
            }
            Control::Presses(presses) => {
                self.outputs.push_back(HostOutput::Presses(presses));
                return;
            }
            Control::Ping { id, client_micros } => {
                if self.pings.take(now) {
                    self.transmits.push_back(HostTransmit::Pong { id, client_micros });
                }
                return;
            }
            Control::Goodbye { message, .. } => {
                self.end(HostEnding::Goodbye(message));
                return;
            }
            Control::Unknown { .. } => {
                self.unknown_controls += 1;
                return;
            }
            other => {
                self.end(HostEnding::Unexpected(format!("{other:?}")));
                return;
            }
        };
        self.outputs.push_back(HostOutput::Encoder(request));
    }

    /// A frame of `kind` and `len` bytes is about to be sent at `now`: the share of it to send
    /// as parity, after what QUIC says of the path.
    pub fn parity_share(&mut self, kind: FrameKind, len: usize, path: PathStats, now: Duration) -> f64 {
        self.protection.on_path(now, path.sent_packets, path.lost_packets, path.rtt, path.min_rtt);
        if let Some(share) = self.protection.changed() {
            self.outputs.push_back(HostOutput::ParityChanged { share, loss: self.protection.loss() });
        }
        self.protection.share_for(kind, len)
    }

    /// The next thing to send.
    pub fn poll_transmit(&mut self) -> Option<HostTransmit> {
        self.transmits.pop_front()
    }

    /// The next thing to do besides sending.
    pub fn poll_output(&mut self) -> Option<HostOutput> {
        self.outputs.pop_front()
    }

    fn end(&mut self, ending: HostEnding) {
        if !self.ended {
            self.ended = true;
            self.outputs.push_back(HostOutput::Ended(ending));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::InputState;
    use crate::wire::{ClockProbe, GoodbyeReason};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn drain(s: &mut HostSession) -> (Vec<HostTransmit>, Vec<HostOutput>) {
        (std::iter::from_fn(|| s.poll_transmit()).collect(), std::iter::from_fn(|| s.poll_output()).collect())
    }

    fn pictures(outputs: &[HostOutput]) -> Vec<EncoderRequest> {
        outputs
            .iter()
            .filter_map(|o| match o {
                HostOutput::Encoder(r @ EncoderRequest::SetPicture { .. }) => Some(*r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_picture_follows_the_target_down_and_back_up_and_references_of_the_old_encoder_are_not_used() {
        let ceiling = Rung { width: 1280, height: 720, fps: 60 };
        let mut s = HostSession::new(FecMode::Off);
        s.adapt_picture(ceiling, ms(0));
        // A target too low for 720p60: 360p60, said once, frame skipping still off.
        s.handle_control(Control::SetBitrate { bitrate_kbps: 1200 }, ms(1000));
        let (_, out) = drain(&mut s);
        assert_eq!(
            pictures(&out),
            [EncoderRequest::SetPicture { width: 640, height: 360, fps: 60, skip_frames: false }]
        );
        assert!(out.contains(&HostOutput::Encoder(EncoderRequest::SetBitrate { kbps: 1200 })));
        assert!(out.iter().any(|o| matches!(o, HostOutput::PictureChanged { limited: true, .. })));
        assert_eq!(s.picture_changes(), (1, true));
        // Just after the change, the client's word on long-term references is about the old
        // encoder: a confirmation is dropped, a recovery becomes an IDR.
        s.handle_control(Control::LtrAck { idr_pic_id: 3, frame_num: 7 }, ms(1100));
        s.handle_control(Control::RecoverLtr { idr_pic_id: 3, last_good_frame: 7 }, ms(1200));
        let (_, out) = drain(&mut s);
        assert_eq!(out, [HostOutput::Encoder(EncoderRequest::ForceIdr)]);
        // A second later they are the new encoder's and pass.
        s.handle_control(Control::LtrAck { idr_pic_id: 0, frame_num: 2 }, ms(2100));
        let (_, out) = drain(&mut s);
        assert_eq!(out, [HostOutput::Encoder(EncoderRequest::LtrConfirmed { idr_pic_id: 0, frame_num: 2 })]);
        // Far too low: the last rung, where openh264 may skip frames.
        s.handle_control(Control::SetBitrate { bitrate_kbps: 300 }, ms(3000));
        let (_, out) = drain(&mut s);
        assert_eq!(
            pictures(&out),
            [EncoderRequest::SetPicture { width: 640, height: 360, fps: 30, skip_frames: true }]
        );
        // Plenty again: pings alone carry the ladder up, after the wait, to the ceiling.
        s.handle_control(Control::SetBitrate { bitrate_kbps: 10_000 }, ms(4000));
        let mut rungs = Vec::new();
        for i in 1..=40u64 {
            s.handle_control(Control::Ping { id: i as u32, client_micros: 0 }, ms(4000 + i * 250));
            let (_, out) = drain(&mut s);
            rungs.extend(pictures(&out));
        }
        let heights: Vec<(u16, u16)> = rungs
            .iter()
            .map(|r| match r {
                EncoderRequest::SetPicture { height, fps, .. } => (*height, *fps),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(heights, [(720, 60)]);
        assert_eq!(s.picture_changes(), (3, false));
    }

    #[test]
    fn a_client_that_does_not_take_size_changes_keeps_its_size() {
        let mut s = HostSession::new(FecMode::Off);
        s.handle_control(Control::SetBitrate { bitrate_kbps: 300 }, ms(1000));
        let (_, out) = drain(&mut s);
        assert!(pictures(&out).is_empty(), "{out:?}");
        assert_eq!(s.picture_changes(), (0, false));
    }

    #[test]
    fn a_client_that_cannot_read_this_builds_parity_gets_none() {
        let set = FecMode::Fixed(0.2);
        assert_eq!(parity_mode(set, Capabilities::THIS_BUILD), set);
        assert_eq!(parity_mode(set, Capabilities::SKIPS_UNKNOWN), FecMode::Off);
        assert_eq!(parity_mode(FecMode::Off, Capabilities::THIS_BUILD), FecMode::Off);
    }

    #[test]
    fn the_audio_layout_follows_the_clients_speakers() {
        assert_eq!(audio_format(0), None, "no audio asked for");
        let stereo = audio_format(2).unwrap();
        assert_eq!((stereo.layout, stereo.bitrate_kbps, stereo.packet_frames), (SpeakerLayout::Stereo, 128, 240));
        assert_eq!(audio_format(6).unwrap().layout, SpeakerLayout::Surround51);
        let wide = audio_format(8).unwrap();
        assert_eq!((wide.layout, wide.bitrate_kbps), (SpeakerLayout::Surround71, 320));
        assert!(wide.redundancy);
    }

    #[test]
    fn the_welcome_follows_what_the_session_streams() {
        let agreed = Agreed { width: 1280, height: 720, fps: 60, bitrate_kbps: 20_000, start_kbps: 20_000 };
        let scene = welcome(agreed, 6, SessionSound::Scene, "den", 7);
        assert_eq!((scene.width, scene.height, scene.fps, scene.bitrate_kbps), (1280, 720, 60, 20_000));
        assert_eq!((scene.host_name.as_str(), scene.resume_token), ("den", 7));
        assert_eq!(scene.color, ColorSpace::HOST_DEFAULT);
        assert_eq!(scene.capabilities, Capabilities::HOST_SCENE);
        assert_eq!(scene.audio.map(|a| a.layout), Some(SpeakerLayout::Surround51), "the scene fills 5.1");
        let captured = welcome(agreed, 6, SessionSound::Captured, "den", 7);
        assert_eq!(captured.color, ColorSpace::DESKTOP);
        assert_eq!(captured.capabilities, Capabilities::THIS_BUILD);
        assert_eq!(captured.audio.map(|a| a.layout), Some(SpeakerLayout::Stereo), "a desktop is recorded in stereo");
        assert_eq!(welcome(agreed, 0, SessionSound::Captured, "den", 7).audio, None, "no audio asked for");
        assert_eq!(welcome(agreed, 2, SessionSound::Silent, "den", 7).audio, None);
    }

    #[test]
    fn inputs_are_applied_once_and_always_acknowledged() {
        let mut s = HostSession::new(FecMode::Off);
        let input = |seq| InputDatagram { seq, client_micros: 100 + seq, state: InputState::default() }.encode();
        s.handle_datagram(&input(2), ms(1), 5_000);
        s.handle_datagram(&input(1), ms(2), 5_001);
        let (sent, out) = drain(&mut s);
        assert_eq!(out.len(), 1, "only the newer input is applied: {out:?}");
        assert_eq!(
            sent,
            [
                HostTransmit::InputAck(InputAck { seq: 2, accepted: 1, client_micros: 102, host_micros: 5_000 }),
                HostTransmit::InputAck(InputAck { seq: 2, accepted: 1, client_micros: 0, host_micros: 5_001 }),
            ]
        );
    }

    #[test]
    fn probes_are_answered_within_their_rate_and_unknown_kinds_counted() {
        let mut s = HostSession::new(FecMode::Off);
        let probe = ClockProbe { id: 9, t1: 77 }.encode();
        for _ in 0..100 {
            s.handle_datagram(&probe, ms(10), 1_000);
        }
        let (sent, _) = drain(&mut s);
        assert_eq!(sent.len(), PROBE_BURST as usize, "a flood gets the burst, no more");
        assert_eq!(sent[0], HostTransmit::ClockReply { id: 9, t1: 77, t2: 1_000 });
        s.handle_datagram(b"KZ newer", ms(11), 0);
        s.handle_control(Control::Unknown { tag: 99 }, ms(11));
        assert_eq!((s.unknown_datagrams, s.unknown_controls), (1, 1));
        assert!(drain(&mut s).1.is_empty(), "unknown kinds never end a session");
    }

    #[test]
    fn the_encoder_is_built_for_the_rate_asked_and_starts_at_the_clients_start() {
        let hello = |bitrate_kbps, start_kbps| Hello {
            version: crate::wire::PROTOCOL_VERSION,
            width: 1280,
            height: 720,
            fps: 60,
            bitrate_kbps,
            max_width: 1920,
            max_height: 1080,
            client_name: "c".into(),
            audio_channels: 0,
            resume_token: 0,
            capabilities: crate::wire::Capabilities::NONE,
            start_kbps,
        };
        let agreed = |b, s| negotiate(&hello(b, s), 60, None).map(|a| (a.bitrate_kbps, a.start_kbps));
        assert_eq!(agreed(10_000, 2_500), Ok((10_000, 2_500)));
        // None given (an older client, or a fixed bitrate): the rate asked.
        assert_eq!(agreed(10_000, 0), Ok((10_000, 10_000)));
        // Never above the rate asked, never under the host's floor.
        assert_eq!(agreed(10_000, 50_000), Ok((10_000, 10_000)));
        assert_eq!(agreed(10_000, 1), Ok((10_000, MIN_BITRATE_KBPS)));
        // The ladder judges the start until the client's first target: held for its first
        // second, then a start too low for 720p60 steps the picture down.
        let mut s = HostSession::new(FecMode::Off);
        s.adapt_picture(Rung { width: 1280, height: 720, fps: 60 }, ms(0));
        s.start_at(1_200);
        s.handle_control(Control::Ping { id: 1, client_micros: 0 }, ms(500));
        assert!(pictures(&drain(&mut s).1).is_empty(), "held while the bitrate climbs");
        s.handle_control(Control::SetBitrate { bitrate_kbps: 1_200 }, ms(1_100));
        assert_eq!(pictures(&drain(&mut s).1).len(), 1);
    }

    #[test]
    fn a_display_is_streamed_at_its_size_or_scaled_down_to_what_was_asked() {
        assert_eq!(fit((1280, 720), (1920, 1080)), (1280, 720), "never scaled up");
        assert_eq!(fit((1920, 1080), (1280, 720)), (1280, 720));
        assert_eq!(fit((800, 600), (640, 360)), (480, 360), "height-bound");
        assert_eq!(fit((400, 600), (640, 360)), (240, 360));
        assert_eq!(fit((2560, 1080), (1280, 720)), (1280, 540), "width-bound");
        assert_eq!(fit((1366, 768), (1280, 720)), (1280, 718), "even sizes");
    }

    #[test]
    fn a_ping_flood_gets_a_bounded_number_of_pongs() {
        let mut s = HostSession::new(FecMode::Off);
        // 10 000 pings over one second: the burst, then the rate.
        for i in 0..10_000u32 {
            s.handle_control(Control::Ping { id: i, client_micros: 0 }, Duration::from_micros(u64::from(i) * 100));
        }
        let (sent, _) = drain(&mut s);
        let pongs = sent.iter().filter(|t| matches!(t, HostTransmit::Pong { .. })).count();
        assert!((15..=16).contains(&pongs), "{pongs} pongs");
        // A client pinging at its own pace is answered every time.
        for i in 0..20u64 {
            s.handle_control(Control::Ping { id: 0, client_micros: 0 }, ms(2_000 + i * 250));
            assert_eq!(drain(&mut s).0.len(), 1);
        }
    }

    #[test]
    fn repairs_are_rate_limited_and_the_client_ends_the_session() {
        let mut s = HostSession::new(FecMode::Off);
        for _ in 0..5 {
            s.handle_control(Control::RequestIdr { last_good_frame: 1 }, ms(0));
        }
        s.handle_control(Control::SetBitrate { bitrate_kbps: 1 }, ms(0));
        let (_, out) = drain(&mut s);
        assert_eq!(
            out,
            [
                HostOutput::Encoder(EncoderRequest::ForceIdr),
                HostOutput::Encoder(EncoderRequest::ForceIdr),
                HostOutput::Encoder(EncoderRequest::SetBitrate { kbps: MIN_BITRATE_KBPS }),
            ]
        );
        s.handle_control(Control::Goodbye { reason: GoodbyeReason::Finished, message: "bye".into() }, ms(1));
        s.handle_control(Control::Goodbye { reason: GoodbyeReason::Finished, message: "again".into() }, ms(2));
        assert_eq!(drain(&mut s).1, [HostOutput::Ended(HostEnding::Goodbye("bye".into()))]);
        let mut s = HostSession::new(FecMode::Off);
        s.handle_control(Control::Welcome(crate::wire::Welcome::sample()), ms(0));
        assert!(matches!(drain(&mut s).1[..], [HostOutput::Ended(HostEnding::Unexpected(_))]));
    }
}

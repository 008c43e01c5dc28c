//! The client's session, sans IO: every decision the client makes while streaming on a
//! connection, as a state machine in quinn-proto's style. The shell (`client::Link`) feeds it
//! what happened with the time (`handle_*`), asks it what to do (`poll_transmit`,
//! `poll_output`) and when to call again (`poll_timeout`), and only moves bytes, frames and
//! timers itself.
//!
//! It owns the frame order and recovery requests (`core::video::sequence`), the input schedule
//! (`core::input::InputSender`), clock sync, adaptive bitrate, the ping schedule and the
//! silence that calls a connection lost. Two clocks come in: `now`, the session's monotonic
//! time since it started, for every timer; and `now_micros`, the wall clock that stamps
//! captures, which pings and arrivals are measured on.

use crate::clocksync::ClockSync;
use crate::input::{InputSender, InputState, Press, SendPolicy};
use crate::stats::{self, micros_between};
use crate::video::abr;
use crate::video::assemble::Frame;
use crate::video::sequence::{self, DownstreamLoss, DropReason, Sequencer};
use crate::wire::{AudioPacket, Capabilities, Control, Datagram, DatagramError, GoodbyeReason, Parity};
use std::collections::VecDeque;
use std::time::Duration;

/// How long the host may be silent while streaming before the connection is called lost. The
/// host sends ~60 frames, 200 audio datagrams and 4 pongs a second, so a second of nothing is
/// a fault (a blackout, or the host gone), not a lull.
pub const SILENCE: Duration = Duration::from_secs(1);
/// A ping (RTT) and a clock probe this often.
pub const PING_INTERVAL: Duration = Duration::from_millis(250);
/// How often adaptive bitrate decides.
pub const ABR_TICK: Duration = Duration::from_millis(100);
/// Losses one report may count towards adaptive bitrate (a burst is one congestion signal).
pub(crate) const MAX_LOSSES_PER_REPORT: u64 = 64;

/// Something to send to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTransmit {
    /// On the control stream, reliable and in order.
    Control(Control),
    /// As a datagram: lost rather than late.
    Datagram(Datagram),
}

/// Something for the shell to do besides sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutput {
    /// For the stats owner.
    Report(stats::Event),
    /// The next frame for the decoder, in order. If the decode queue is full, say so with
    /// [`ClientSession::handle_decode_queue_full`].
    Decode(Frame),
    /// An audio packet for the audio thread, with its arrival on the wall clock.
    Audio { packet: AudioPacket, arrival_micros: u64 },
    /// A parity shard for the frame streams' readers.
    Parity(Parity),
    /// The host asked for a rumble on the pad in `slot`.
    Rumble { slot: u8, strong: u16, weak: u16, duration_ms: u16 },
    /// Streaming on this connection is over.
    Ended(ClientEnding),
}

/// Why streaming on a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEnding {
    /// The host ended the session with this message: close the connection; do not reconnect.
    HostEnded(String),
    /// The host revoked this client: close the connection; do not reconnect.
    Revoked(String),
    /// The connection is gone but the host may come back (it shut down, or went silent):
    /// reconnect.
    Retry(String),
}

/// The session's state that outlives a connection, and the state of the current one.
#[derive(Debug)]
pub struct ClientSession {
    inputs: InputSender,
    sync: ClockSync,
    abr: Option<abr::Controller>,
    /// The decoder's IDR period, which a recovery request names (`None`: nothing decoded yet).
    idr_pic_id: Option<u16>,
    link: LinkState,
    transmits: VecDeque<ClientTransmit>,
    outputs: VecDeque<ClientOutput>,
    /// The sequencer's events, reused.
    events: Vec<sequence::Event>,
    /// Whether the host's parity is this build's code (see [`ClientSession::handle_welcome`]).
    reads_parity: bool,
    /// Ask for an IDR this often (a replay buffer's starting points; `None`: never).
    key_frames_every: Option<Duration>,
}

/// What belongs to one connection: a new one starts afresh.
#[derive(Debug)]
struct LinkState {
    sequencer: Sequencer,
    /// The newest input sequence the host acknowledged.
    acked: u64,
    ping_id: u32,
    next_ping: Duration,
    next_abr: Duration,
    last_heard: Duration,
    ended: bool,
    /// When to ask for the next key frame, while [`ClientSession::key_frames_every`] is set.
    next_key_frame: Option<Duration>,
}

impl LinkState {
    fn new(now: Duration) -> Self {
        Self {
            sequencer: Sequencer::new(sequence::Config::default()),
            acked: 0,
            ping_id: 0,
            next_ping: now,
            next_abr: now,
            last_heard: now,
            ended: false,
            next_key_frame: None,
        }
    }
}

impl ClientSession {
    /// A session whose first connection starts at `now`; `abr` adapts the bitrate (`None`: a
    /// fixed bitrate), starting from its own first target.
    pub fn new(abr: Option<abr::Controller>, now: Duration) -> Self {
        let mut outputs = VecDeque::new();
        // A controller at its start is below the rate agreed: the `Hello` asked the host to
        // start there (`abr::Controller::starting`).
        if let Some(abr) = abr.as_ref().filter(|a| a.ramping()) {
            outputs.push_back(ClientOutput::Report(stats::Event::BitrateStarted { kbps: abr.target_kbps() }));
        }
        Self {
            inputs: InputSender::new(SendPolicy::default()),
            sync: ClockSync::new(),
            abr,
            idr_pic_id: None,
            link: LinkState::new(now),
            transmits: VecDeque::new(),
            outputs,
            events: Vec::new(),
            reads_parity: true,
            key_frames_every: None,
        }
    }

    /// Asks the host for one IDR now, not as a repair (no frame is named as the last good
    /// one): the live stream decodes on, but the recording needs a key frame to go on from
    /// (it left a picture out, or its replay buffer needs a starting point).
    pub fn ask_key_frame(&mut self) {
        self.transmits.push_back(ClientTransmit::Control(Control::RequestIdr { last_good_frame: 0 }));
    }

    /// Asks the host for an IDR every `every` from `now` on (`None`: stops): a replay buffer
    /// can only start a file at one, and kumo's host sends none on its own.
    pub fn ask_key_frames_every(&mut self, every: Option<Duration>, now: Duration) {
        self.key_frames_every = every;
        self.link.next_key_frame = every.map(|e| now + e);
    }

    /// What the host's `Welcome` announced: parity from a host without
    /// [`Capabilities::PARITY_RS16`] is another code's, and is ignored (it would rebuild wrong bytes).
    pub fn handle_welcome(&mut self, host: Capabilities) {
        self.reads_parity = host.contains(Capabilities::PARITY_RS16);
    }

    /// A new connection took the session over at `now` (a reconnect): frame order, pings and
    /// silence start afresh, and clock sync too (a restarted host has another clock). Input
    /// and adaptive bitrate carry on; the mouse's totals count from here for the new host.
    pub fn handle_reconnected(&mut self, now: Duration) {
        self.link = LinkState::new(now);
        self.link.next_key_frame = self.key_frames_every.map(|e| now + e);
        self.sync = ClockSync::new();
        self.transmits.clear();
        self.inputs.on_new_connection();
    }

    /// The bitrate to ask for when reconnecting: where adaptive bitrate had come to.
    pub fn target_kbps(&self) -> Option<u32> {
        self.abr.as_ref().map(abr::Controller::target_kbps)
    }

    /// A packet of the player's voice (`client::mic`): sent as it is, a datagram.
    pub fn handle_voice(&mut self, packet: crate::wire::MicPacket) {
        self.transmits.push_back(ClientTransmit::Datagram(Datagram::Mic(packet)));
    }

    /// The decoder's current IDR period (`None` until it decoded one).
    pub fn handle_decoder_idr(&mut self, idr_pic_id: Option<u16>) {
        self.idr_pic_id = idr_pic_id;
    }

    /// The player's input changed; `read_micros` is when its device event happened.
    pub fn handle_input(&mut self, state: &InputState, read_micros: u64) {
        self.inputs.update(state, read_micros);
    }

    /// Key and button transitions, for the reliable path.
    pub fn handle_presses(&mut self, presses: Vec<Press>) {
        if !presses.is_empty() {
            self.transmits.push_back(ClientTransmit::Control(Control::Presses(presses)));
        }
    }

    /// A datagram from the host arrived at `now` (`now_micros` on the wall clock).
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Duration, now_micros: u64) {
        self.link.last_heard = now;
        let decoded = Datagram::decode(bytes);
        // Sound and parity share the video's path: the bitrate budget counts them.
        if let (Some(abr), Ok(Datagram::Parity(_) | Datagram::Audio(_))) = (&mut self.abr, &decoded) {
            abr.on_overhead(now, bytes.len() as u64);
        }
        match decoded {
            Ok(Datagram::Parity(p)) => {
                if self.reads_parity {
                    self.outputs.push_back(ClientOutput::Parity(p));
                }
            }
            Ok(Datagram::ClockReply(reply)) => {
                self.sync.add(reply.probe(now_micros));
                if let Some(e) = self.sync.estimate(now_micros) {
                    let (offset_micros, error_micros) = (e.offset_micros.round() as i64, e.error_micros.round() as u64);
                    self.report(stats::Event::ClockSync { offset_micros, error_micros });
                }
            }
            Ok(Datagram::Audio(packet)) => {
                self.outputs.push_back(ClientOutput::Audio { packet, arrival_micros: now_micros });
            }
            Ok(Datagram::InputAck(ack)) => {
                self.inputs.on_ack(ack.seq);
                if ack.seq > self.link.acked {
                    self.link.acked = ack.seq;
                    // Host stamp minus client stamp, signed: the clocks may differ.
                    let latency = (ack.client_micros != 0).then(|| micros_between(ack.client_micros, ack.host_micros));
                    self.report(stats::Event::InputAcked {
                        accepted: ack.accepted,
                        seq: ack.seq,
                        host_micros: ack.host_micros,
                        to_host_micros: latency,
                    });
                }
            }
            // The host's picture is still current: if it is the one the client has, nothing is
            // missing and nothing is stalled; a word about a frame still on its way says nothing.
            Ok(Datagram::Still(still)) => {
                if self.link.sequencer.is_current(still.frame_number) {
                    if let Some(abr) = &mut self.abr {
                        abr.on_still(now);
                    }
                    self.report(stats::Event::Still { at_micros: now_micros, host_micros: still.host_micros });
                }
            }
            Err(DatagramError::Unknown(_)) => self.report(stats::Event::Skipped(stats::Skipped::Datagram)),
            // Kinds only a client sends (a confused or hostile host's), and damaged datagrams:
            // a peer's bad bytes are dropped, never trusted.
            Ok(Datagram::Input(_) | Datagram::ClockProbe(_) | Datagram::Mic(_)) | Err(_) => {}
        }
    }

    /// A whole frame arrived at `now`, its last byte at `received_micros` on the wall clock;
    /// `rebuilt` of its data shards came from parity.
    pub fn handle_frame(&mut self, frame: Frame, received_micros: u64, rebuilt: usize, now: Duration) {
        self.link.last_heard = now;
        let h = frame.header;
        self.report(stats::Event::Received(stats::FrameReceived {
            frame_number: h.frame_number,
            bytes: frame.payload.len() as u64,
            encode_micros: h.encode_micros,
            capture_micros: h.capture_micros,
            input_seq: h.input_seq,
            held_back: h.held_back,
            received_micros,
            width: h.width,
            height: h.height,
        }));
        if rebuilt > 0 {
            self.report(stats::Event::FecRepaired { shards: rebuilt as u32 });
        }
        if let Some(abr) = &mut self.abr {
            // The host's stamps are a peer's numbers: any value, so no arithmetic that can overflow.
            let transit = micros_between(h.capture_micros.saturating_add(u64::from(h.encode_micros)), received_micros);
            abr.on_frame(now, frame.payload.len() as u64, transit);
            abr.on_held_back(now, h.held_back);
        }
        let mut events = std::mem::take(&mut self.events);
        self.link.sequencer.on_frame(frame, now, &mut events);
        self.carry_out(events, now);
    }

    /// A control message from the host arrived at `now`.
    pub fn handle_control(&mut self, msg: Control, now: Duration, now_micros: u64) {
        self.link.last_heard = now;
        match msg {
            Control::Pong { client_micros, .. } => {
                let rtt_micros = now_micros.saturating_sub(client_micros);
                self.link.sequencer.set_rtt(Duration::from_micros(rtt_micros));
                if let Some(abr) = &mut self.abr {
                    abr.set_rtt(Duration::from_micros(rtt_micros));
                }
                self.report(stats::Event::Rtt { rtt_micros });
            }
            Control::Rumble { pad, strong, weak, duration_ms } => {
                self.report(stats::Event::Rumble);
                self.outputs.push_back(ClientOutput::Rumble { slot: pad, strong, weak, duration_ms });
            }
            Control::Goodbye { reason: GoodbyeReason::HostShutdown, message } => {
                self.end(ClientEnding::Retry(format!("the host shut down ({message})")));
            }
            Control::Goodbye { reason: GoodbyeReason::Revoked, message } => self.end(ClientEnding::Revoked(message)),
            Control::Goodbye { message, .. } => self.end(ClientEnding::HostEnded(message)),
            Control::Unknown { .. } => self.report(stats::Event::Skipped(stats::Skipped::ControlMessage)),
            // Messages a host has no reason to send mid-session: ignored.
            _ => {}
        }
    }

    /// The decoder failed on `frame_number` (it needs an IDR).
    pub fn handle_decoder_loss(&mut self, frame_number: u64, now: Duration) {
        let mut events = std::mem::take(&mut self.events);
        self.link.sequencer.on_downstream_loss(frame_number, DownstreamLoss::Failed, now, &mut events);
        self.carry_out(events, now);
    }

    /// The decode queue was full for `frame_number`, which is dropped: a gap the decoder will
    /// skip past to a recovery point.
    pub fn handle_decode_queue_full(&mut self, frame_number: u64, now: Duration) {
        self.report(stats::Event::Dropped { reason: DropReason::Queue, count: 1 });
        let mut events = std::mem::take(&mut self.events);
        self.link.sequencer.on_downstream_loss(frame_number, DownstreamLoss::Skipped, now, &mut events);
        self.carry_out(events, now);
    }

    /// The decoder holds long-term reference `frame_num` of IDR period `idr_pic_id`: the host
    /// may repair from it.
    pub fn handle_ltr_mark(&mut self, idr_pic_id: u16, frame_num: u32) {
        self.transmits.push_back(ClientTransmit::Control(Control::LtrAck { idr_pic_id, frame_num }));
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Duration {
        let link = &self.link;
        let mut at = (link.last_heard + SILENCE).min(link.next_ping);
        let abr = self.abr.as_ref().map(|_| link.next_abr);
        for due in [link.sequencer.poll_timeout(), self.inputs.due_at(), abr, link.next_key_frame] {
            at = due.map_or(at, |due| at.min(due));
        }
        at
    }

    /// Time passed: whatever is due at `now` is done.
    pub fn handle_timeout(&mut self, now: Duration, now_micros: u64) {
        if self.link.ended {
            return;
        }
        if now >= self.link.last_heard + SILENCE {
            self.end(ClientEnding::Retry(format!("nothing from the host for {} s", SILENCE.as_secs_f32())));
            return;
        }
        if self.inputs.due_at().is_some_and(|due| now >= due)
            && let Some(datagram) = self.inputs.poll(now)
        {
            let (seq, read_micros, held) = (datagram.seq, datagram.client_micros, datagram.state.held());
            self.transmits.push_back(ClientTransmit::Datagram(Datagram::Input(datagram)));
            self.report(stats::Event::InputSent { seq, read_micros, sent_micros: now_micros, held });
        }
        if self.link.sequencer.poll_timeout().is_some_and(|due| now >= due) {
            let mut events = std::mem::take(&mut self.events);
            self.link.sequencer.on_timeout(now, &mut events);
            self.carry_out(events, now);
        }
        if now >= self.link.next_ping {
            self.link.next_ping = next_tick(self.link.next_ping, PING_INTERVAL, now);
            self.link.ping_id = self.link.ping_id.wrapping_add(1);
            let id = self.link.ping_id;
            // A clock probe as a datagram (a lost one is just skipped), and a ping on the
            // control stream for the round trip.
            let probe = crate::wire::ClockProbe { id, t1: now_micros };
            self.transmits.push_back(ClientTransmit::Datagram(Datagram::ClockProbe(probe)));
            self.transmits.push_back(ClientTransmit::Control(Control::Ping { id, client_micros: now_micros }));
        }
        if let (Some(every), Some(due)) = (self.key_frames_every, self.link.next_key_frame)
            && now >= due
        {
            self.link.next_key_frame = Some(next_tick(due, every, now));
            self.ask_key_frame();
        }
        if let Some(abr) = &mut self.abr
            && now >= self.link.next_abr
        {
            self.link.next_abr = next_tick(self.link.next_abr, ABR_TICK, now);
            if let Some((kbps, reason)) = abr.tick(now) {
                let congested = reason == abr::Reason::Congested;
                self.outputs.push_back(ClientOutput::Report(stats::Event::BitrateChanged { kbps, congested }));
                self.transmits.push_back(ClientTransmit::Control(Control::SetBitrate { bitrate_kbps: kbps }));
            }
        }
    }

    /// The next thing to send.
    pub fn poll_transmit(&mut self) -> Option<ClientTransmit> {
        self.transmits.pop_front()
    }

    /// The next thing to do besides sending.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.outputs.pop_front()
    }

    fn report(&mut self, event: stats::Event) {
        self.outputs.push_back(ClientOutput::Report(event));
    }

    fn end(&mut self, ending: ClientEnding) {
        if !self.link.ended {
            self.link.ended = true;
            self.outputs.push_back(ClientOutput::Ended(ending));
        }
    }

    /// Turns what the sequencer decided into outputs and transmits.
    fn carry_out(&mut self, mut events: Vec<sequence::Event>, now: Duration) {
        for event in events.drain(..) {
            match event {
                sequence::Event::Deliver(frame) => self.outputs.push_back(ClientOutput::Decode(frame)),
                sequence::Event::Dropped { reason, count } => {
                    if let (DropReason::Network, Some(abr)) = (reason, &mut self.abr) {
                        for _ in 0..count.min(MAX_LOSSES_PER_REPORT) {
                            abr.on_loss(now);
                        }
                    }
                    self.report(stats::Event::Dropped { reason, count });
                }
                sequence::Event::RequestIdr { last_good_frame } => {
                    self.report(stats::Event::IdrRequested);
                    self.transmits.push_back(ClientTransmit::Control(Control::RequestIdr { last_good_frame }));
                }
                sequence::Event::RequestRecovery { last_good_frame } => {
                    let msg = if let Some(idr_pic_id) = self.idr_pic_id {
                        self.report(stats::Event::LtrRequested);
                        Control::RecoverLtr { idr_pic_id, last_good_frame }
                    } else {
                        // Nothing decoded yet: only an IDR helps.
                        self.report(stats::Event::IdrRequested);
                        Control::RequestIdr { last_good_frame }
                    };
                    self.transmits.push_back(ClientTransmit::Control(msg));
                }
                sequence::Event::Repaired { how, after } => {
                    self.report(stats::Event::Repaired { how, after_micros: after.as_micros() as u64 });
                }
            }
        }
        self.events = events;
    }
}

/// How the host answered a `Hello`, when it did not welcome the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloRefused {
    /// It speaks another major version (`host`).
    VersionMismatch { host: u16, message: String },
    /// It does not stream to this client's certificate (never paired, or revoked).
    NotPaired(String),
    /// Busy, or the request cannot be streamed.
    Refused(String),
    /// It sent something that is not an answer to `Hello`.
    Unexpected(String),
}

/// Reads the host's answer to a `Hello` of version `ours`.
pub fn answer_to_hello(reply: Control, ours: u16) -> Result<crate::wire::Welcome, HelloRefused> {
    use crate::wire::RejectReason;
    match reply {
        Control::Welcome(w) if w.version == ours => Ok(w),
        Control::Welcome(w) => Err(HelloRefused::VersionMismatch {
            host: w.version,
            message: "the host answered with another protocol version".into(),
        }),
        Control::Reject { reason: RejectReason::VersionMismatch, host_version, message } => {
            Err(HelloRefused::VersionMismatch { host: host_version, message })
        }
        Control::Reject { reason: RejectReason::NotPaired | RejectReason::Revoked, message, .. } => {
            Err(HelloRefused::NotPaired(message))
        }
        Control::Reject { message, .. } => Err(HelloRefused::Refused(message)),
        other => Err(HelloRefused::Unexpected(format!("expected Welcome, got {other:?}"))),
    }
}

/// The tick after `last` every `period`, skipping ticks missed before `now`: a loop that
/// stalled sends one ping when it wakes, not a burst of them.
fn next_tick(last: Duration, period: Duration, now: Duration) -> Duration {
    let next = last + period;
    if next > now { next } else { now + period }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameHeader, FrameKind, InputAck, RejectReason, Welcome};

    #[test]
    fn a_session_that_adapts_its_bitrate_says_where_it_starts_and_sends_nothing_for_it() {
        let limits = abr::Limits { min_kbps: 500, max_kbps: 10_000 };
        let mut s = ClientSession::new(Some(abr::Controller::starting(limits)), Duration::ZERO);
        assert_eq!(s.target_kbps(), Some(abr::start_kbps(limits)));
        assert_eq!(s.poll_output(), Some(ClientOutput::Report(stats::Event::BitrateStarted { kbps: 2_500 })));
        assert_eq!(s.poll_transmit(), None, "the Hello carried the start");
        // A fixed bitrate, or a controller that starts where it was asked: nothing to say.
        let mut fixed = ClientSession::new(Some(abr::Controller::new(limits, 10_000)), Duration::ZERO);
        assert_eq!(fixed.poll_output(), None);
    }

    #[test]
    fn the_answer_to_hello_is_a_welcome_of_our_version_or_a_reason() {
        let welcome = Welcome { version: 5, ..Welcome::sample() };
        assert_eq!(answer_to_hello(Control::Welcome(welcome.clone()), 5), Ok(welcome.clone()));
        assert!(matches!(
            answer_to_hello(Control::Welcome(welcome), 6),
            Err(HelloRefused::VersionMismatch { host: 5, .. })
        ));
        let reject = |reason| Control::Reject { reason, host_version: 7, message: "no".into() };
        assert!(matches!(
            answer_to_hello(reject(RejectReason::VersionMismatch), 5),
            Err(HelloRefused::VersionMismatch { host: 7, .. })
        ));
        assert_eq!(answer_to_hello(reject(RejectReason::Revoked), 5), Err(HelloRefused::NotPaired("no".into())));
        assert_eq!(answer_to_hello(reject(RejectReason::NotPaired), 5), Err(HelloRefused::NotPaired("no".into())));
        assert_eq!(answer_to_hello(reject(RejectReason::Busy), 5), Err(HelloRefused::Refused("no".into())));
        assert!(matches!(
            answer_to_hello(Control::Ping { id: 1, client_micros: 0 }, 5),
            Err(HelloRefused::Unexpected(_))
        ));
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn frame(number: u64, kind: FrameKind) -> Frame {
        let header = FrameHeader {
            frame_number: number,
            capture_micros: 1_000,
            encode_micros: 10,
            kind,
            width: 64,
            height: 64,
            payload_len: 3,
            input_seq: 0,
            held_back: 0,
            host_behind: 0,
        };
        Frame { header, payload: vec![0, 0, 1] }
    }

    fn drain(s: &mut ClientSession) -> (Vec<ClientTransmit>, Vec<ClientOutput>) {
        (std::iter::from_fn(|| s.poll_transmit()).collect(), std::iter::from_fn(|| s.poll_output()).collect())
    }

    #[test]
    fn parity_is_used_only_from_a_host_that_computes_it_with_this_builds_code() {
        let parity = crate::video::fec::protect(1, &[7u8; 3000], 512, |_| 2).remove(0);
        let bytes = Datagram::Parity(parity).encode();
        let parities = |s: &mut ClientSession| {
            s.handle_datagram(&bytes, ms(1), 1_000);
            drain(s).1.iter().filter(|o| matches!(o, ClientOutput::Parity(_))).count()
        };
        let mut s = ClientSession::new(None, ms(0));
        s.handle_welcome(Capabilities::THIS_BUILD);
        assert_eq!(parities(&mut s), 1);
        // An older host's parity is another code's: rebuilding with it would give wrong bytes.
        s.handle_welcome(Capabilities::SKIPS_UNKNOWN);
        assert_eq!(parities(&mut s), 0);
    }

    #[test]
    fn a_replay_buffer_asks_for_a_key_frame_on_its_interval_and_again_after_a_reconnect() {
        let asks = |s: &mut ClientSession| {
            drain(s)
                .0
                .iter()
                .filter(|t| matches!(t, ClientTransmit::Control(Control::RequestIdr { last_good_frame: 0 })))
                .count()
        };
        let mut s = ClientSession::new(None, ms(0));
        s.ask_key_frames_every(Some(ms(2000)), ms(0));
        assert!(s.poll_timeout() <= ms(2000));
        // Heard from the host all along (a stream), in 100 ms steps.
        let run = |s: &mut ClientSession, from: u64, to: u64| {
            let still = Datagram::Still(crate::wire::Still { frame_number: 0, host_micros: 0 }).encode();
            let mut total = 0;
            for t in (from..=to).step_by(100) {
                s.handle_datagram(&still, ms(t), 0);
                s.handle_timeout(ms(t), 0);
                total += asks(s);
            }
            total
        };
        assert_eq!(run(&mut s, 100, 10_000), 5);
        // The recording's own ask (a picture it left out): one IDR, not a repair.
        s.ask_key_frame();
        assert_eq!(asks(&mut s), 1);
        s.handle_reconnected(ms(10_050));
        assert_eq!(run(&mut s, 10_100, 12_000), 0, "a new connection waits its own interval");
        assert_eq!(run(&mut s, 12_100, 12_100), 1);
        s.ask_key_frames_every(None, ms(12_200));
        assert_eq!(run(&mut s, 12_300, 20_000), 0);
    }

    #[test]
    fn frames_go_to_the_decoder_in_order_and_a_gap_asks_for_recovery() {
        let mut s = ClientSession::new(None, ms(0));
        s.handle_frame(frame(0, FrameKind::Idr), 2_000, 0, ms(1));
        s.handle_frame(frame(2, FrameKind::Inter), 2_000, 0, ms(30));
        let (_, out) = drain(&mut s);
        let decoded: Vec<_> = out
            .iter()
            .filter_map(|o| if let ClientOutput::Decode(f) = o { Some(f.header.frame_number) } else { None })
            .collect();
        assert_eq!(decoded, [0], "frame 2 waits for frame 1");
        s.handle_decoder_idr(Some(7));
        // The gap outlives its wait: frame 1 is declared lost, and a recovery frame asked for.
        let wake = s.poll_timeout();
        assert!(wake <= ms(200), "{wake:?}");
        s.handle_timeout(ms(200), 3_000);
        let (sent, _) = drain(&mut s);
        assert!(
            sent.iter().any(|t| matches!(
                t,
                ClientTransmit::Control(Control::RecoverLtr { idr_pic_id: 7, last_good_frame: 0 })
            )),
            "{sent:?}"
        );
    }

    #[test]
    fn a_silent_host_ends_the_connection_once_and_pings_go_out_on_schedule() {
        let mut s = ClientSession::new(None, ms(0));
        s.handle_timeout(ms(0), 1_000_000);
        let (sent, _) = drain(&mut s);
        assert!(
            sent.iter()
                .any(|t| matches!(t, ClientTransmit::Control(Control::Ping { id: 1, client_micros: 1_000_000 })))
        );
        assert!(sent.iter().any(|t| matches!(t, ClientTransmit::Datagram(Datagram::ClockProbe(_)))));
        assert_eq!(s.poll_timeout(), PING_INTERVAL);
        s.handle_control(Control::Pong { id: 1, client_micros: 1_000_000, host_micros: 5 }, ms(20), 1_020_000);
        let (_, out) = drain(&mut s);
        assert!(out.contains(&ClientOutput::Report(stats::Event::Rtt { rtt_micros: 20_000 })));
        // Nothing more from the host: a second after the pong the connection is lost, once.
        for t in [300, 600, 900, 1019] {
            s.handle_timeout(ms(t), 0);
        }
        assert!(!drain(&mut s).1.iter().any(|o| matches!(o, ClientOutput::Ended(_))));
        s.handle_timeout(ms(1020), 0);
        s.handle_timeout(ms(1500), 0);
        let ended: Vec<_> = drain(&mut s).1.into_iter().filter(|o| matches!(o, ClientOutput::Ended(_))).collect();
        assert_eq!(ended.len(), 1);
        assert!(
            matches!(&ended[0], ClientOutput::Ended(ClientEnding::Retry(why)) if why.contains("nothing from the host"))
        );
        // A new connection starts afresh.
        s.handle_reconnected(ms(2000));
        assert_eq!(s.poll_timeout(), ms(2000));
    }

    #[test]
    fn input_is_sent_acknowledged_and_unknown_messages_are_counted() {
        let mut s = ClientSession::new(None, ms(0));
        let mut state = InputState::default();
        state.keys[0] = 1 << 4;
        s.handle_input(&state, 500);
        s.handle_timeout(ms(1), 600);
        let (sent, out) = drain(&mut s);
        let Some(ClientTransmit::Datagram(Datagram::Input(d))) =
            sent.iter().find(|t| matches!(t, ClientTransmit::Datagram(Datagram::Input(_))))
        else {
            panic!("no input datagram in {sent:?}");
        };
        assert_eq!((d.state, d.client_micros), (state, 500));
        assert!(out.iter().any(|o| matches!(
            o,
            ClientOutput::Report(stats::Event::InputSent { read_micros: 500, sent_micros: 600, .. })
        )));
        let ack = InputAck { seq: d.seq, accepted: 1, client_micros: 500, host_micros: 900 }.encode();
        s.handle_datagram(&ack, ms(5), 700);
        s.handle_datagram(b"KZ from a newer host", ms(6), 701);
        s.handle_control(Control::Unknown { tag: 200 }, ms(7), 702);
        let (_, out) = drain(&mut s);
        assert!(
            out.iter()
                .any(|o| matches!(o, ClientOutput::Report(stats::Event::InputAcked { to_host_micros: Some(400), .. })))
        );
        assert!(out.contains(&ClientOutput::Report(stats::Event::Skipped(stats::Skipped::Datagram))));
        assert!(out.contains(&ClientOutput::Report(stats::Event::Skipped(stats::Skipped::ControlMessage))));
        assert!(!out.iter().any(|o| matches!(o, ClientOutput::Ended(_))), "unknown messages never end a session");
    }

    #[test]
    fn goodbyes_end_streaming_as_the_host_meant() {
        for (reason, want) in [
            (GoodbyeReason::Finished, ClientEnding::HostEnded("bye".into())),
            (GoodbyeReason::Revoked, ClientEnding::Revoked("bye".into())),
            (GoodbyeReason::HostShutdown, ClientEnding::Retry("the host shut down (bye)".into())),
        ] {
            let mut s = ClientSession::new(None, ms(0));
            s.handle_control(Control::Goodbye { reason, message: "bye".into() }, ms(1), 0);
            assert_eq!(drain(&mut s).1, [ClientOutput::Ended(want)]);
        }
    }
}

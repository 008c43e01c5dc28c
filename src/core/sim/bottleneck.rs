//! A stream through a bottleneck, simulated on a virtual clock: seeded, deterministic, a
//! minute of stream in milliseconds of CPU.
//!
//! The decisions are kumo's own code: the host's session (its picture ladder,
//! `core::session::host`), its capture clock and send window (`core::video::pacing`), and the
//! client's bitrate controller (`core::video::abr`). Around them, models: an encoder whose
//! frames carry the target's bits but never fewer than openh264's floor for the rung
//! (`core::video::ladder::floor_kbps`, measured), ±20 % per frame; an IDR of twice the
//! target's frame, at most 3.5 frames at that floor (openh264's rate control sizes it so:
//! [`IDR_FLOOR_FRAMES`]); each frame's encode taking a time that follows its size and bits,
//! spread about it, an encode longer than a slot costing the host the next slot; parity as
//! the host's session decides it (`core::video::fec`: its share follows the loss QUIC counts,
//! in 512-byte shards, at least four a block), each shard a datagram of its own; sound
//! at a constant rate; and a router: a first-in-first-out queue of `queue` worth of bytes at
//! `rate_bps` (dropping what does not fit), `delay` each way, random loss. A lost packet is
//! sent again a round trip later, as QUIC does; a frame is whole when its data arrived, or
//! enough of it and of its parity (a lost packet spoils 1.4 packets' worth of shards). The
//! client's controller counts sound and parity in its budget, and its sequencer
//! (`core::video::sequence`) puts whole frames in order, declares a frame lost when its wait
//! runs out and asks for a recovery frame (one and a half inter frames' worth) or an IDR, which
//! the host's session passes on. A frame counts when the sequencer delivers it, as a real
//! client decodes it, and its capture-to-decoded time counts the encode before the frame
//! leaves the host and the decode after the client has it ([`ENCODE_MS`], [`DECODE_MS`],
//! fitted to real runs), and what a size change costs at both ends ([`REBUILD_MS`],
//! [`KEY_DECODE_MS`]). Acknowledgements and control messages travel back without queueing.
//! Between the host and the router, quinn's side: a congestion window (BBR's first window of
//! 200 packets, which its start-up never shrinks while the stream is application-limited, or
//! kumo's floor over it) with the packets it holds waiting at the sender, lost ones first,
//! and after a loss a round trip of recovery (the window what is still in flight, as BBR
//! outside its start-up and the loss-based controllers do: without it, retransmissions into
//! the full queue of a path quartered at 30 ms round trips were dropped again and again, and
//! seed 1 of the 200 froze 0.45 s; with it 0.18 s). Time moves in 0.25 ms steps. What is not
//! modelled: BBR's `ProbeRTT` (kumo's floor keeps the window through it) and pacing inside a
//! 2 ms burst.

use std::collections::VecDeque;
use std::time::Duration;

use crate::session::client::MAX_LOSSES_PER_REPORT;
use crate::session::host::{EncoderRequest, HostOutput, HostSession, PathStats};
use crate::sim::rng::XorShift;
use crate::stats::histogram::Histogram;
use crate::video::abr::{Controller, Limits};
use crate::video::assemble::Frame as WholeFrame;
use crate::video::fec::{self, FecMode};
use crate::video::ladder::{Rung, floor_kbps};
use crate::video::pacing::{CaptureClock, DeliveryFloor, SendWindow, Tick};
use crate::video::sequence::{self, DropReason, Sequencer};
use crate::wire::parity::{PARITY_HEADER_LEN, ShardLayout};
use crate::wire::{Control, FrameHeader, FrameKind};

/// Payload bytes in a packet.
const PACKET: u64 = 1200;
/// What each packet carries besides its payload: IPv4 (20), UDP (8) and QUIC's short header,
/// frame headers and authentication tag (about 27).
const OVERHEAD: u64 = 55;
/// An IDR's size: twice an inter frame's share of the target, but at most this many frames at
/// the rung's floor. openh264's first IDR on the demo scene was 14.8 KB at 720p60 asked for
/// 10 Mbit/s (`tests/codec.rs`; the floor's frame is 4.4 KB, the target's 20.8 KB), and in
/// `scripts/bottleneck.sh`'s records 10.5 KB at 720p60 started at 2.5 Mbit/s (the target's
/// frame 5.2 KB), 21.2 KB at 1080p60 started at 5 Mbit/s (10.4 KB), 6.1 KB at 360p60 after a
/// step down at 1.5 Mbit/s (3.1 KB; the floor's 1.6 KB).
const IDR_FLOOR_FRAMES: f64 = 3.5;
const IDR_TARGET_FRAMES: f64 = 2.0;
/// A lost packet spoils this many packets' worth of parity shards (`core::video::fec`).
const SPOIL: f64 = 1.4;
/// The simulation's step: a quarter of a millisecond, so that a round trip on the kernel
/// queue's path (0.3–0.5 ms measured) is not made 2 ms by the step (with 1 ms steps, the
/// model's frames waited at the sender for acknowledgements that real ones do not).
const STEP: Duration = Duration::from_micros(250);

/// Whether `t`, a multiple of [`STEP`], is a multiple of `period`.
fn every(t: Duration, period: Duration) -> bool {
    t.as_nanos().is_multiple_of(period.as_nanos())
}
/// Encoding and decoding a frame take time, in milliseconds: a fixed part and a part per
/// million pixels, and for encoding a part per kilobit the frame carries. Fitted to the
/// medians `scripts/bottleneck.sh` runs reported on this project's 2-core machine with host
/// and client side by side (docs/robustness.md): openh264 encoding 2.2 ms at 640x360 and
/// 2.2 Mbit/s, 5.5 and 6.4 ms at 1280x720 and 4 and 7.7 Mbit/s, 8.9 and 13.0 ms at
/// 1920x1080 and 5.5 and 16 Mbit/s (least squares, within 0.4 ms of each); decoding 1.1 ms
/// at 640x360 and 4.6 ms at 1920x1080. Without them the model's median was 1 ms where the
/// real one was 4–21 ms.
const ENCODE_MS: (f64, f64) = (0.88, 2.93);
const ENCODE_MS_PER_KBIT: f64 = 0.0227;
/// Each frame's encode and decode take their median times this spread: a log-normal factor,
/// σ 0.3 (the real runs' p95 was 1.4–1.7 times their p50 at one size). An encode longer than
/// a capture slot makes the host miss the next slot, as the real host falls behind its
/// capture clock at 1080p60 on this machine (42–51 frames a second where 60 were asked).
const CODEC_SPREAD: f64 = 0.3;
const DECODE_MS: (f64, f64) = (0.66, 1.90);
/// A new picture size costs more at both ends (per-frame records of real runs through the
/// kernel queue, `--record`'s `FILE.frames.csv`, on the same machine): the host rebuilds its
/// encoder before the size's first key frame, capture slots going by meanwhile (the capture
/// gap was 19.5 ms at 360p, 45.5 ms at 720p, 38.5 ms at 900p and 65 ms at 1080p where a slot
/// is 16.7 ms: about 22 ms per million pixels more), and the client decodes that key frame in
/// far more time than an inter frame (4.7 ms at 360p, 20.6 and 29.3 ms at 720p, 33.7 ms at
/// 900p, 30.7 ms at 1080p: fitted, 19.6 ms per million pixels). Without them the
/// model's longest freezes at 8 Mbit/s were 23–40 ms where the real ones, each at a size
/// change, were 59–107 ms.
const REBUILD_MS: (f64, f64) = (0.0, 22.0);
const KEY_DECODE_MS: (f64, f64) = (0.66, 19.6);

/// How long a picture of `width` × `height` takes, by `cost` ([`ENCODE_MS`], [`DECODE_MS`]).
fn codec_time(cost: (f64, f64), width: u16, height: u16) -> Duration {
    let mpx = f64::from(width) * f64::from(height) / 1e6;
    Duration::from_secs_f64((cost.0 + cost.1 * mpx) / 1000.0)
}

/// How long encoding a frame of `bytes` at `rung` takes, its median ([`ENCODE_MS`]).
fn encode_time(rung: Rung, bytes: u64) -> Duration {
    let kbit = bytes as f64 * 8.0 / 1000.0;
    codec_time(ENCODE_MS, rung.width, rung.height) + Duration::from_secs_f64(ENCODE_MS_PER_KBIT * kbit / 1000.0)
}

/// A codec time's spread about its median ([`CODEC_SPREAD`]): exp(σ·z), z standard normal
/// (Box–Muller).
fn spread(rng: &mut XorShift) -> f64 {
    let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (CODEC_SPREAD * z).exp()
}

/// One simulated session.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The bottleneck's rate, and changes to it: (from, bits per second).
    pub rate_bps: u64,
    pub schedule: Vec<(Duration, u64)>,
    /// One-way delay, and the router's queue in time (at each rate of the schedule).
    pub delay: Duration,
    pub queue: Duration,
    /// Packets lost at random, 0–1.
    pub loss: f64,
    /// The router's token bucket, bytes: 0 serialises every packet at the rate (kumo's relay);
    /// `tbf`'s `burst` (`scripts/bottleneck.sh` uses 16 KB) lets that much through at once.
    pub burst: u64,
    /// What the session asked for: the ladder's ceiling, the bitrate to start at (the most),
    /// and the controller's floor.
    pub ceiling: Rung,
    pub start_kbps: u32,
    pub min_kbps: u32,
    /// Sound, kbit/s (with its redundancy copy).
    pub audio_kbps: u32,
    /// Let the picture follow the path.
    pub adapt_size: bool,
    /// The host's parity (`--fec`).
    pub fec: FecMode,
    pub duration: Duration,
    pub seed: u64,
}

impl Scenario {
    /// 720p60 asked at 10 Mbit/s (the controller's floor, 500 kbit/s), sound in 5.1 with its
    /// redundancy copy (512 kbit/s), the ladder on, through `rate_bps` with 1 ms each way and a
    /// 100 ms queue, no loss, for 25 s.
    pub fn stream_720p60(rate_bps: u64, seed: u64) -> Self {
        Self {
            rate_bps,
            schedule: Vec::new(),
            delay: Duration::from_millis(1),
            queue: Duration::from_millis(100),
            loss: 0.0,
            burst: 0,
            ceiling: Rung { width: 1280, height: 720, fps: 60 },
            start_kbps: 10_000,
            min_kbps: crate::video::abr::FLOOR_KBPS,
            audio_kbps: 512,
            adapt_size: true,
            fec: FecMode::Auto,
            duration: Duration::from_secs(25),
            seed,
        }
    }
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Capture to the frame's delivery to the decoder (its last packet, or its turn in order).
    pub latency: Histogram,
    /// The longest time without a new decoded picture, from the first one on.
    pub longest_freeze: Duration,
    /// When the picture that ended it was decoded.
    pub longest_freeze_at: Duration,
    pub frames: u64,
    /// Capture slots the host missed, its encoder still at the frame before.
    pub host_behind: u64,
    /// Frames the sequencer gave up on (lost, undecodable after a loss, late).
    pub dropped: u64,
    /// Recovery frames and IDRs the client asked for.
    pub repairs_asked: u64,
    pub size_changes: u32,
    pub last_rung: Rung,
    /// Frames made whole with the help of parity.
    pub repaired: u64,
    /// Bytes the host sent, of video and of parity (each with the packets' headers).
    pub video_bytes: u64,
    pub parity_bytes: u64,
    /// (time, wait) of each frame's first packet: from the encoder's output until it went on
    /// the bottleneck's wire, at the sender (quinn's window) and in the router's queue. What
    /// the path made the frame wait for traffic ahead of it; the frame's own sending time
    /// after it is not a queue.
    pub queueing: Vec<(Duration, Duration)>,
    /// Bytes that reached the client (video, parity, sound, with their headers), per
    /// [`RATE_BUCKET`].
    pub delivered: Vec<u64>,
    /// (when, how long) of each freeze over 100 ms, the first [`MAX_FREEZES`].
    pub freezes: Vec<(Duration, Duration)>,
    /// (time, the controller's target) at each change.
    pub targets: Vec<(Duration, u32)>,
    /// (time, the rung the host changed to) at each size or rate change.
    pub rungs: Vec<(Duration, Rung)>,
}

impl Outcome {
    /// When the stream was last back at `ceiling` after `since` (a path that widened again):
    /// how long after `since`, if it got there.
    pub fn back_at(&self, ceiling: Rung, since: Duration) -> Option<Duration> {
        let last = self.rungs.iter().rev().find(|r| r.0 >= since)?;
        (last.1 == ceiling).then(|| last.0.saturating_sub(since))
    }
}

/// The buckets of [`Outcome::delivered`].
pub const RATE_BUCKET: Duration = Duration::from_millis(100);
/// Freezes kept in [`Outcome::freezes`], at most.
const MAX_FREEZES: usize = 1000;

struct Packet {
    /// The frame it carries data or (`parity`) a parity shard of; none for sound.
    frame: Option<u64>,
    parity: bool,
    /// The frame's first data packet.
    first: bool,
    bytes: u64,
    queued_at: Duration,
}

struct Frame {
    number: u64,
    kind: FrameKind,
    /// The size it was encoded at (frames in flight keep theirs across a size change).
    rung: Rung,
    /// When it left the encoder; it was captured its `encode` before.
    captured: Duration,
    encode: Duration,
    bytes: u64,
    /// Payload bytes still to arrive, and parity's (discounted by [`SPOIL`]) that arrived.
    missing: u64,
    parity: u64,
    held_back: u32,
}

impl Frame {
    fn whole(&self) -> bool {
        self.missing == 0 || (self.missing as f64) * SPOIL <= self.parity as f64
    }
}

/// The router: a queue of at most `limit` bytes, sent at `rate`, each packet arriving a
/// `delay` after it left; what it drops or loses is sent again a round trip later.
struct Router {
    rate: u64,
    limit: u64,
    delay: Duration,
    loss: f64,
    queue: VecDeque<Packet>,
    queued_bytes: u64,
    /// With `burst` 0: when the link is free again (each packet serialised at `rate`, as
    /// kumo's relay does). Otherwise a token bucket of `burst` bytes, as Linux's `tbf`: a packet
    /// leaves at once while the bucket holds its size, tokens coming back at `rate`.
    free_at: Duration,
    burst: u64,
    tokens: f64,
    tokens_at: Duration,
    in_flight: VecDeque<(Duration, Packet)>,
    resend: VecDeque<(Duration, Packet)>,
    sent_packets: u64,
    lost_packets: u64,
    /// The sender's side (quinn): packets wait here while the congestion window is full,
    /// a retransmission ahead of new data.
    sender: VecDeque<Packet>,
    /// Bytes sent and not yet acknowledged or declared lost; acknowledgements on their way
    /// back (when they reach the sender, bytes).
    outstanding: u64,
    acks: VecDeque<(Duration, u64)>,
    /// What the path delivered, for the window: kumo's floor under BBR's (`DeliveryFloor`), the
    /// same measure as BBR's own target (twice the bandwidth-delay product).
    delivered: DeliveryFloor,
    /// Loss recovery: until when, and the window meanwhile (what was in flight when the loss
    /// was noticed, less what was lost since, plus what was acknowledged).
    recovery: Option<(Duration, u64)>,
}

/// quinn's BBR: its first window (200 packets), and the least it keeps (4 packets).
const INITIAL_WINDOW: u64 = 200 * 1200;
const MIN_WINDOW: u64 = 4 * 1200;

impl Router {
    /// A packet from the host: into the sender's queue.
    fn send(&mut self, p: Packet) {
        self.sender.push_back(p);
    }

    /// The congestion window at `now`: BBR's first window, or kumo's floor over it when the
    /// path has shown it carries more (twice what it delivered per round trip at its busiest
    /// in the last 2 s). quinn's BBR stays in its start-up while the stream is limited by what
    /// the application sends, as a video stream is, and start-up never shrinks the window.
    fn window(&self, now: Duration) -> u64 {
        // The lowest round trip: both ways' delay and a packet's time on the wire (about
        // 0.1 ms), at least the round trip the model's step makes (an acknowledgement reaches
        // the sender two steps after its packet left, at the soonest).
        let rtt = (2 * self.delay + Duration::from_micros(100)).max(2 * STEP);
        let window = self.delivered.bytes(now, rtt).max(INITIAL_WINDOW);
        match self.recovery {
            Some((until, recovery)) if now < until => window.min(recovery),
            _ => window,
        }
    }

    /// The sender's step: acknowledgements that came back, lost packets sent again first, then
    /// what the window lets go into the router.
    fn release(&mut self, now: Duration) {
        while let Some(&(at, bytes)) = self.acks.front().filter(|a| a.0 <= now) {
            self.acks.pop_front();
            self.outstanding = self.outstanding.saturating_sub(bytes);
            self.delivered.on_acked(at, bytes);
            if let Some((_, window)) = &mut self.recovery {
                *window += bytes;
            }
        }
        // Lost packets left flight when declared lost; they go out again ahead of new data,
        // in the order they were lost.
        let due = self.resend.iter().take_while(|r| r.0 <= now).count();
        let mut lost = 0;
        for (_, mut p) in self.resend.drain(..due).rev() {
            self.outstanding = self.outstanding.saturating_sub(p.bytes);
            lost += p.bytes;
            p.queued_at = now;
            self.sender.push_front(p);
        }
        // A loss noticed: recovery for a round trip, the window what is still in flight (as
        // quinn's BBR outside its start-up, and its loss-based controllers, do); a loss
        // noticed during recovery takes its bytes off the window.
        if lost > 0 {
            let round_trip = 2 * self.delay + self.queue_delay() + Duration::from_micros(100);
            self.recovery = match self.recovery {
                Some((until, window)) if now < until => Some((until, window.saturating_sub(lost).max(MIN_WINDOW))),
                _ => Some((now + round_trip, self.outstanding.max(MIN_WINDOW))),
            };
        }
        let window = self.window(now);
        while let Some(p) = self.sender.front() {
            if self.outstanding > 0 && self.outstanding + p.bytes > window {
                break;
            }
            let Some(p) = self.sender.pop_front() else { break };
            self.outstanding += p.bytes;
            self.enqueue(p, now);
        }
    }

    fn enqueue(&mut self, p: Packet, now: Duration) {
        self.sent_packets += 1;
        if self.queued_bytes + p.bytes > self.limit.max(PACKET * 4) {
            self.lost_packets += 1;
            self.resend.push_back((now + self.loss_detected(), p));
            return;
        }
        self.queued_bytes += p.bytes;
        self.queue.push_back(p);
    }

    /// Sends what the rate allows by `now`; records each video packet's wait in `waits`.
    fn step(&mut self, now: Duration, rng: &mut XorShift, waits: &mut Vec<(Duration, Duration)>) {
        self.release(now);
        if self.burst > 0 {
            self.step_bucket(now, rng, waits);
            return;
        }
        // Every packet whose turn on the wire starts within this step.
        while self.free_at < now + STEP {
            let Some(p) = self.queue.pop_front() else { break };
            self.queued_bytes -= p.bytes;
            let start = self.free_at.max(now);
            self.free_at = start + Duration::from_nanos(p.bytes * 8 * 1_000_000_000 / self.rate.max(1));
            let arrival = self.free_at + self.delay;
            self.depart(p, start, arrival, now, rng, waits);
        }
    }

    /// `p` goes on the wire at `start`: its wait is recorded (video data only), and it is lost
    /// at random (sent again once QUIC notices) or arrives at `arrival`.
    fn depart(
        &mut self,
        p: Packet,
        start: Duration,
        arrival: Duration,
        now: Duration,
        rng: &mut XorShift,
        waits: &mut Vec<(Duration, Duration)>,
    ) {
        if p.first {
            waits.push((start, start.saturating_sub(p.queued_at)));
        }
        if rng.unit() < self.loss {
            self.lost_packets += 1;
            self.resend.push_back((now + self.loss_detected(), p));
            return;
        }
        self.in_flight.push_back((arrival, p));
    }

    /// When QUIC sends a lost packet again: it declares it lost 9/8 of a round trip after it
    /// was sent (at least its 1 ms timer granularity).
    fn loss_detected(&self) -> Duration {
        (2 * self.delay).mul_f64(9.0 / 8.0).max(Duration::from_millis(1))
    }

    /// The token bucket's step: what its tokens allow leaves now.
    fn step_bucket(&mut self, now: Duration, rng: &mut XorShift, waits: &mut Vec<(Duration, Duration)>) {
        let depth = self.burst.max(PACKET + OVERHEAD) as f64;
        let refill = now.saturating_sub(self.tokens_at).as_secs_f64() * self.rate as f64 / 8.0;
        self.tokens = (self.tokens + refill).min(depth);
        self.tokens_at = now;
        while self.queue.front().is_some_and(|p| p.bytes as f64 <= self.tokens) {
            let Some(p) = self.queue.pop_front() else { break };
            self.queued_bytes -= p.bytes;
            self.tokens -= p.bytes as f64;
            self.depart(p, now, now + self.delay, now, rng, waits);
        }
    }

    /// The queue's wait for a packet joining it now.
    fn queue_delay(&self) -> Duration {
        let waiting = if self.burst > 0 { self.queued_bytes as f64 - self.tokens } else { self.queued_bytes as f64 };
        Duration::from_secs_f64(waiting.max(0.0) * 8.0 / self.rate.max(1) as f64)
    }
}

/// The host: its session's decisions, capture clock, send window and encoder model.
struct Host {
    session: HostSession,
    rung: Rung,
    target_kbps: u32,
    idr_next: bool,
    recovery_next: bool,
    clock: CaptureClock,
    window: SendWindow,
    next_number: u64,
    held: u32,
    size_changes: u32,
    /// While the encoder is rebuilt for a new size: no capture.
    busy_until: Duration,
    /// When the last frame left the encoder.
    encoded_at: Duration,
}

impl Host {
    fn new(s: &Scenario) -> Self {
        let mut session = HostSession::new(s.fec);
        if s.adapt_size {
            session.adapt_picture(s.ceiling, Duration::ZERO);
        }
        // As the real host: the encoder's first frames at the client's start rate.
        let start = crate::video::abr::start_kbps(Limits { min_kbps: s.min_kbps, max_kbps: s.start_kbps });
        session.start_at(start);
        Self {
            session,
            rung: s.ceiling,
            target_kbps: start,
            idr_next: true,
            recovery_next: false,
            clock: CaptureClock::new(s.ceiling.fps.into(), Duration::ZERO),
            window: SendWindow::new(s.ceiling.fps.into(), 2, 16),
            next_number: 0,
            held: 0,
            size_changes: 0,
            busy_until: Duration::ZERO,
            encoded_at: Duration::ZERO,
        }
    }

    /// Carries out what the session decided.
    fn apply_outputs(&mut self, now: Duration, rungs: &mut Vec<(Duration, Rung)>) {
        while let Some(output) = self.session.poll_output() {
            match output {
                HostOutput::Encoder(EncoderRequest::SetBitrate { kbps }) => self.target_kbps = kbps,
                HostOutput::Encoder(EncoderRequest::ForceIdr) => self.idr_next = true,
                HostOutput::Encoder(EncoderRequest::RecoverLtr { .. }) => self.recovery_next = true,
                HostOutput::Encoder(EncoderRequest::SetPicture { width, height, fps, .. }) => {
                    let next = Rung { width, height, fps };
                    if (next.width, next.height) != (self.rung.width, self.rung.height) {
                        self.idr_next = true;
                        self.busy_until = now + codec_time(REBUILD_MS, width, height);
                    }
                    if next.fps != self.rung.fps {
                        self.clock = CaptureClock::new(next.fps.into(), now);
                    }
                    self.rung = next;
                    self.size_changes += 1;
                    rungs.push((now, next));
                }
                _ => {}
            }
        }
    }

    /// A capture slot at `now`: a frame into the router, or a slot held back.
    fn capture(
        &mut self,
        now: Duration,
        rng: &mut XorShift,
        router: &mut Router,
        frames: &mut VecDeque<Frame>,
        out: &mut Outcome,
    ) {
        let Tick::Capture { .. } = self.clock.poll(now) else { return };
        // The slot goes by while the encoder is rebuilt (the capture clock skips, never bursts).
        if now < self.busy_until {
            return;
        }
        if self.window.is_full(now) {
            self.held += 1;
            return;
        }
        let kbps = f64::from(self.target_kbps).max(floor_kbps(self.rung));
        let noise = 0.8 + 0.4 * rng.unit();
        let mut bytes = (kbps * 1000.0 / 8.0 / f64::from(self.rung.fps) * noise) as u64;
        // The encoder still at the last frame when this one's encode would have begun: the
        // slot goes by, as the real host falls behind its capture clock.
        let encode = encode_time(self.rung, bytes).mul_f64(spread(rng));
        if self.next_number > 0 && now.saturating_sub(encode) < self.encoded_at {
            out.host_behind += 1;
            return;
        }
        let kind = if std::mem::take(&mut self.idr_next) {
            let frames = (kbps * IDR_TARGET_FRAMES).min(floor_kbps(self.rung) * IDR_FLOOR_FRAMES);
            bytes = (frames * 1000.0 / 8.0 / f64::from(self.rung.fps) * noise) as u64;
            FrameKind::Idr
        } else if std::mem::take(&mut self.recovery_next) {
            bytes = bytes * 3 / 2;
            FrameKind::Recovery
        } else {
            FrameKind::Inter
        };
        let bytes = bytes.max(100);
        let packets = bytes.div_ceil(PACKET);
        for i in 0..packets {
            let size = OVERHEAD + if i + 1 == packets { bytes - i * PACKET } else { PACKET };
            let p = Packet { frame: Some(self.next_number), parity: false, first: i == 0, bytes: size, queued_at: now };
            router.send(p);
        }
        out.video_bytes += bytes + packets * OVERHEAD;
        // Parity as the host decides it, after what the path looks like to QUIC.
        let path = PathStats {
            sent_packets: router.sent_packets,
            lost_packets: router.lost_packets,
            rtt: 2 * router.delay + router.queue_delay(),
            min_rtt: 2 * router.delay,
        };
        let share = self.session.parity_share(kind, bytes as usize, path, now);
        let len = bytes as usize;
        let layout =
            ShardLayout { stream_len: len, shard_len: fec::shard_len_for(len, PACKET as usize - PARITY_HEADER_LEN) };
        let parity: usize = (0..layout.blocks()).map(|b| fec::parity_for(share, layout.block_shards(b))).sum();
        for _ in 0..parity {
            let size = OVERHEAD + (layout.shard_len + PARITY_HEADER_LEN) as u64;
            router.send(Packet {
                frame: Some(self.next_number),
                parity: true,
                first: false,
                bytes: size,
                queued_at: now,
            });
            out.parity_bytes += size;
        }
        self.window.on_sent(self.next_number, now, bytes);
        let held_back = std::mem::take(&mut self.held);
        frames.push_back(Frame {
            number: self.next_number,
            kind,
            rung: self.rung,
            captured: now,
            encode,
            bytes,
            missing: bytes,
            parity: 0,
            held_back,
        });
        self.next_number += 1;
        self.encoded_at = now;
    }
}

/// The client: its bitrate controller and sequencer, and what goes back to the host a
/// `delay` later (acknowledgements by frame number, control messages).
struct Client {
    abr: Controller,
    seq: Sequencer,
    events: Vec<sequence::Event>,
    last_decoded: Option<Duration>,
    /// The decoder works on one frame at a time: when it is free.
    decoder_free: Duration,
    delay: Duration,
    acks: VecDeque<(Duration, u64)>,
    controls: VecDeque<(Duration, Control)>,
}

impl Client {
    fn new(s: &Scenario) -> Self {
        let mut seq = Sequencer::new(sequence::Config::default());
        seq.set_rtt(2 * s.delay);
        let mut abr = Controller::starting(Limits { min_kbps: s.min_kbps, max_kbps: s.start_kbps });
        abr.set_rtt(2 * s.delay);
        Self {
            abr,
            seq,
            events: Vec::new(),
            last_decoded: None,
            decoder_free: Duration::ZERO,
            delay: s.delay,
            acks: VecDeque::new(),
            controls: VecDeque::new(),
        }
    }

    /// Packets arrive at `t`: a frame is whole when its data did, or enough parity.
    fn receive(&mut self, t: Duration, router: &mut Router, frames: &mut VecDeque<Frame>, out: &mut Outcome) {
        while router.in_flight.front().is_some_and(|f| f.0 <= t) {
            let Some((_, p)) = router.in_flight.pop_front() else { break };
            // Its acknowledgement reaches the sender a `delay` later.
            router.acks.push_back((t + router.delay, p.bytes));
            let bucket = (t.as_nanos() / RATE_BUCKET.as_nanos()) as usize;
            if out.delivered.len() <= bucket {
                out.delivered.resize(bucket + 1, 0);
            }
            out.delivered[bucket] += p.bytes;
            let payload = p.bytes - OVERHEAD;
            if p.parity || p.frame.is_none() {
                self.abr.on_overhead(t, payload);
            }
            let Some(frame) = p.frame.and_then(|n| frames.iter_mut().find(|f| f.number == n && !f.whole())) else {
                continue;
            };
            if p.parity {
                frame.parity += payload;
            } else {
                frame.missing = frame.missing.saturating_sub(payload);
            }
            if !frame.whole() {
                continue;
            }
            out.repaired += u64::from(frame.missing > 0);
            let transit = t.saturating_sub(frame.captured);
            self.abr.on_frame(t, frame.bytes, transit.as_micros() as i64);
            if frame.held_back > 0 {
                self.abr.on_held_back(t, frame.held_back);
            }
            self.acks.push_back((t + self.delay, frame.number));
            // As the real host's header: capture time, and the encode after it.
            let header = FrameHeader {
                frame_number: frame.number,
                capture_micros: frame.captured.saturating_sub(frame.encode).as_micros() as u64,
                encode_micros: frame.encode.as_micros() as u32,
                kind: frame.kind,
                width: frame.rung.width,
                height: frame.rung.height,
                payload_len: 0,
                input_seq: 0,
                held_back: frame.held_back,
                host_behind: 0,
            };
            self.seq.on_frame(WholeFrame { header, payload: Vec::new() }, t, &mut self.events);
        }
        frames.retain(|f| !f.whole() && t.saturating_sub(f.captured) < Duration::from_secs(5));
    }

    /// The sequencer's and the controller's decisions at `t`.
    fn decide(&mut self, t: Duration, rng: &mut XorShift, out: &mut Outcome) {
        if self.seq.poll_timeout().is_some_and(|due| due <= t) {
            self.seq.on_timeout(t, &mut self.events);
        }
        let back = t + self.delay;
        for event in self.events.drain(..) {
            match event {
                sequence::Event::Deliver(frame) => {
                    // Capture to decoded: the capture stamp to delivery, and the decode (a key
                    // frame's takes longer), one frame at a time.
                    let (w, h) = (frame.header.width, frame.header.height);
                    let cost = if frame.header.kind == FrameKind::Idr { KEY_DECODE_MS } else { DECODE_MS };
                    let decoded = t.max(self.decoder_free) + codec_time(cost, w, h).mul_f64(spread(rng));
                    self.decoder_free = decoded;
                    let transit = decoded.saturating_sub(Duration::from_micros(frame.header.capture_micros));
                    out.frames += 1;
                    out.latency.record(transit.as_micros() as u64);
                    // As kumo's figures count it: from the first picture on.
                    if let Some(last) = self.last_decoded {
                        let gap = decoded.saturating_sub(last);
                        if gap > out.longest_freeze {
                            out.longest_freeze = gap;
                            out.longest_freeze_at = decoded;
                        }
                        if gap > Duration::from_millis(100) && out.freezes.len() < MAX_FREEZES {
                            out.freezes.push((decoded, gap));
                        }
                    }
                    self.last_decoded = Some(decoded);
                }
                sequence::Event::Dropped { reason, count } => {
                    out.dropped += count;
                    if reason == DropReason::Network {
                        (0..count.min(MAX_LOSSES_PER_REPORT)).for_each(|_| self.abr.on_loss(t));
                    }
                }
                sequence::Event::RequestRecovery { last_good_frame } => {
                    out.repairs_asked += 1;
                    self.controls.push_back((back, Control::RecoverLtr { idr_pic_id: 0, last_good_frame }));
                }
                sequence::Event::RequestIdr { last_good_frame } => {
                    out.repairs_asked += 1;
                    self.controls.push_back((back, Control::RequestIdr { last_good_frame }));
                }
                sequence::Event::Repaired { .. } => {}
            }
        }
        if let Some((kbps, _)) = every(t, Duration::from_millis(100)).then(|| self.abr.tick(t)).flatten() {
            out.targets.push((t, kbps));
            self.controls.push_back((back, Control::SetBitrate { bitrate_kbps: kbps }));
        }
        if every(t, Duration::from_millis(250)) {
            self.controls.push_back((back, Control::Ping { id: 0, client_micros: 0 }));
        }
    }
}

/// Runs `s` to its end.
pub fn run(s: &Scenario) -> Outcome {
    let mut rng = XorShift::seeded(s.seed);
    let mut host = Host::new(s);
    let mut client = Client::new(s);
    let mut router = Router {
        rate: s.rate_bps,
        limit: (s.rate_bps / 8).saturating_mul(s.queue.as_millis() as u64) / 1000,
        delay: s.delay,
        loss: s.loss,
        queue: VecDeque::new(),
        queued_bytes: 0,
        free_at: Duration::ZERO,
        burst: s.burst,
        tokens: s.burst as f64,
        tokens_at: Duration::ZERO,
        in_flight: VecDeque::new(),
        resend: VecDeque::new(),
        sent_packets: 0,
        lost_packets: 0,
        sender: VecDeque::new(),
        outstanding: 0,
        acks: VecDeque::new(),
        delivered: DeliveryFloor::new(),
        recovery: None,
    };
    let mut frames: VecDeque<Frame> = VecDeque::new();
    let mut out = Outcome {
        latency: Histogram::new(),
        longest_freeze: Duration::ZERO,
        longest_freeze_at: Duration::ZERO,
        frames: 0,
        host_behind: 0,
        dropped: 0,
        repairs_asked: 0,
        size_changes: 0,
        last_rung: s.ceiling,
        repaired: 0,
        video_bytes: 0,
        parity_bytes: 0,
        queueing: Vec::new(),
        delivered: Vec::new(),
        freezes: Vec::new(),
        targets: Vec::new(),
        rungs: Vec::new(),
    };
    let mut t = Duration::ZERO;
    while t < s.duration {
        if let Some(&(_, bps)) = s.schedule.iter().find(|c| c.0 == t) {
            // The queue keeps its length in time, as `scripts/bottleneck.sh` changes tbf's
            // limit with its rate (a fixed byte limit made 600 ms of queue at 5 of 30 Mbit/s).
            router.rate = bps;
            router.limit = (bps / 8).saturating_mul(s.queue.as_millis() as u64) / 1000;
        }
        while let Some(&(_, number)) = client.acks.front().filter(|a| a.0 <= t) {
            client.acks.pop_front();
            host.window.on_acked(number, t);
        }
        while let Some((_, msg)) = client.controls.front().filter(|c| c.0 <= t).cloned() {
            client.controls.pop_front();
            host.session.handle_control(msg, t);
        }
        host.apply_outputs(t, &mut out.rungs);
        if every(t, Duration::from_millis(100)) {
            host.window.on_path(t, 2 * s.delay + router.queue_delay(), 2 * s.delay, router.lost_packets);
        }
        host.capture(t, &mut rng, &mut router, &mut frames, &mut out);
        if every(t, Duration::from_millis(5)) && s.audio_kbps > 0 {
            let bytes = OVERHEAD + u64::from(s.audio_kbps) * 5 / 8;
            router.send(Packet { frame: None, parity: false, first: false, bytes, queued_at: t });
        }
        router.step(t, &mut rng, &mut out.queueing);
        client.receive(t, &mut router, &mut frames, &mut out);
        client.decide(t, &mut rng, &mut out);
        t += STEP;
    }
    out.size_changes = host.size_changes;
    out.last_rung = host.rung;
    out
}

/// The properties of one session whose path drops at `schedule[0]` and comes back at
/// `schedule[1]` (the 200 seeded sessions' shape).
#[derive(Debug, Clone, Copy)]
pub struct Properties {
    /// The queue's p95 once settled ([`SETTLE`] after the start, to the drop).
    pub settled_queue_p95: Duration,
    /// How long after the drop the queue fell under a frame interval: the p95 of the next
    /// second's frames.
    pub drained_after_drop: Option<Duration>,
    /// The least share of the path's rate (or of what the stream asks for, when that is
    /// less) that reached the client in any second from 3 s after the start to the drop, and
    /// from 3 s after the drop to the return.
    pub rate_share_before: f64,
    pub rate_share_low: f64,
    /// How long after the return a second first carried 70 % of the path's rate again (or of
    /// what the stream asks for).
    pub climbed_back_after: Option<Duration>,
    /// The longest freeze over 100 ms away from the drop (none: zero), and the longest that
    /// ended within [`DROP_SPAN`] of it.
    pub steady_freeze: Duration,
    pub drop_freeze: Duration,
}

/// A freeze that ends this soon after the path's rate drops is the drop's: the frames already
/// on their way when it came (a router's queue at the old rate, four times the wait at a quarter
/// of it) and the losses of a queue that overflowed, which no sender can call back.
pub const DROP_SPAN: Duration = Duration::from_secs(2);

/// When a session counts as settled: its start's climb and first size changes are over.
pub const SETTLE: Duration = Duration::from_secs(5);
/// A second's share of the path's rate that counts as using it.
pub const RATE_SHARE: f64 = 0.7;

impl Properties {
    /// The properties of `o`, a run of `s`.
    pub fn of(o: &Outcome, s: &Scenario) -> Self {
        let interval = Duration::from_secs(1) / u32::from(s.ceiling.fps.max(1));
        let (drop_at, low) = s.schedule.first().copied().unwrap_or((s.duration, s.rate_bps));
        let back_at = s.schedule.get(1).map_or(s.duration, |b| b.0);
        let settled_queue_p95 =
            p95(o.queueing.iter().filter(|q| q.0 >= SETTLE && q.0 < drop_at).map(|q| q.1).collect())
                .unwrap_or_default();
        // The first moment after the drop from which the frames of the next second waited
        // less than a frame interval, their p95 (the settled queue's measure).
        let after: Vec<&(Duration, Duration)> = o.queueing.iter().filter(|q| q.0 >= drop_at).collect();
        let drained_after_drop = after.iter().enumerate().find_map(|(i, q)| {
            let next = after[i..].iter().take_while(|r| r.0 < q.0 + Duration::from_secs(1)).map(|r| r.1).collect();
            let calm = p95(next).is_none_or(|p95| p95 < interval);
            calm.then(|| q.0.saturating_sub(drop_at))
        });
        // What the stream asks for at most: its bitrate and its sound.
        let asked = u64::from(s.start_kbps + s.audio_kbps) * 1000;
        let share = |end: Duration, rate: u64| o.second_before(end) as f64 / rate.min(asked).max(1) as f64;
        let least = |from: Duration, to: Duration, rate: u64| {
            let seconds = Duration::from_secs(1);
            let ends = (from + seconds).as_millis()..=to.as_millis();
            ends.step_by(RATE_BUCKET.as_millis() as usize)
                .map(|ms| share(Duration::from_millis(ms as u64), rate))
                .fold(f64::INFINITY, f64::min)
        };
        let three = Duration::from_secs(3);
        let longest = |at_drop: bool| {
            o.freezes.iter().filter(|f| (drop_at..drop_at + DROP_SPAN).contains(&f.0) == at_drop).map(|f| f.1).max()
        };
        let climbed_back_after = (back_at < s.duration)
            .then(|| {
                let ends = (back_at + RATE_BUCKET).as_millis()..=s.duration.as_millis();
                ends.step_by(RATE_BUCKET.as_millis() as usize)
                    .map(|ms| Duration::from_millis(ms as u64))
                    .find(|&end| share(end, s.rate_bps) >= RATE_SHARE)
                    .map(|end| end.saturating_sub(back_at))
            })
            .flatten();
        Self {
            settled_queue_p95,
            drained_after_drop,
            rate_share_before: least(three, drop_at, s.rate_bps),
            rate_share_low: least(drop_at + three, back_at, low),
            climbed_back_after,
            steady_freeze: longest(false).unwrap_or_default(),
            drop_freeze: longest(true).unwrap_or_default(),
        }
    }
}

/// The 95th percentile of `waits` (`None` when empty).
fn p95(mut waits: Vec<Duration>) -> Option<Duration> {
    waits.sort_unstable();
    waits.get(waits.len() * 95 / 100).copied()
}

impl Outcome {
    /// Bits that reached the client in the second before `end`.
    pub fn second_before(&self, end: Duration) -> u64 {
        let last = (end.as_nanos() / RATE_BUCKET.as_nanos()) as usize;
        let first = last.saturating_sub((Duration::from_secs(1).as_nanos() / RATE_BUCKET.as_nanos()) as usize);
        self.delivered.get(first..last.min(self.delivered.len())).map_or(0, |b| b.iter().sum::<u64>() * 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_mbit(adapt_size: bool, seed: u64) -> Scenario {
        Scenario { adapt_size, ..Scenario::stream_720p60(3_000_000, seed) }
    }

    fn p(o: &Outcome, q: f64) -> f64 {
        o.latency.quantile_micros(q).unwrap_or(0.0) / 1000.0
    }

    #[test]
    fn the_same_seed_gives_the_same_session() {
        let (a, b) = (run(&three_mbit(true, 7)), run(&three_mbit(true, 7)));
        assert_eq!((a.frames, a.size_changes, a.targets.clone()), (b.frames, b.size_changes, b.targets.clone()));
        assert_ne!(run(&three_mbit(true, 8)).targets, a.targets, "another seed, another session");
    }

    #[test]
    fn on_a_path_under_720p60s_floor_the_ladder_takes_the_standing_queue_away() {
        // 2 Mbit/s: openh264's 720p60 floor alone (2.1 Mbit/s) does not fit.
        let narrow = |adapt_size| Scenario { rate_bps: 2_000_000, ..three_mbit(adapt_size, 1) };
        let (off, on) = (run(&narrow(false)), run(&narrow(true)));
        eprintln!(
            "sim 2 Mbit/s 720p60: off p50 {:.1} p99 {:.1} freeze {:?} frames {}; on p50 {:.1} p99 {:.1} freeze {:?} frames {} rung {}",
            p(&off, 0.5),
            p(&off, 0.99),
            off.longest_freeze,
            off.frames,
            p(&on, 0.5),
            p(&on, 0.99),
            on.longest_freeze,
            on.frames,
            on.last_rung
        );
        for rate_bps in [3_000_000, 8_000_000] {
            let at = |adapt_size| run(&Scenario { rate_bps, ..three_mbit(adapt_size, 1) });
            let (off, on) = (at(false), at(true));
            eprintln!(
                "sim {} Mbit/s 720p60: off p50 {:.1} p99 {:.1}; on p50 {:.1} p99 {:.1} rung {}",
                rate_bps / 1_000_000,
                p(&off, 0.5),
                p(&off, 0.99),
                p(&on, 0.5),
                p(&on, 0.99),
                on.last_rung
            );
        }
        assert_eq!(off.size_changes, 0);
        assert!(on.size_changes >= 1 && on.last_rung.height < 720, "{}", on.last_rung);
        assert!(p(&on, 0.5) < p(&off, 0.5) / 2.0, "the ladder did not shorten the queue");
    }
}

//! The host's pacing: when the next frame is due, and whether the path has room for it.
//!
//! [`CaptureClock`] owns the decision of when to capture and what to do when the host falls
//! behind. A game renders on a fixed clock, so frames are captured on schedule, not as fast as
//! the encoder can go; when the host is late by more than a frame interval it skips the missed
//! slots (never bursts to catch up, which would only queue latency).
//!
//! [`SendWindow`] decides whether a due frame is worth encoding at all. It counts the frames
//! the client has not yet acknowledged (QUIC acknowledged all of a frame's stream) and allows
//! as many as fit in the path's empty-queue acknowledgement time plus [`HEADROOM`]. When the
//! path slows down (a bandwidth drop, a queue filling), acknowledgements slow down, the window
//! fills, and the host skips capture slots until it drains: the client sees a lower frame rate
//! for a moment instead of frames stuck behind each other, and since a skipped slot is never
//! encoded, nothing refers to it and nothing needs repair. Pure: time is a parameter.

use crate::video::fec::QUEUE_LOSS;
use std::collections::VecDeque;
use std::time::Duration;

/// What the capture loop should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing is due before this time.
    WaitUntil(Duration),
    /// Capture a frame now. `slot` counts schedule slots since the start (the scene's clock);
    /// `skipped` is how many slots were missed since the previous capture.
    Capture { slot: u64, skipped: u64 },
}

#[derive(Debug, Clone)]
pub struct CaptureClock {
    start: Duration,
    interval: Duration,
    next_slot: u64,
}

impl CaptureClock {
    /// A schedule at `fps` frames per second whose first slot is at `start`.
    pub fn new(fps: u32, start: Duration) -> Self {
        let interval = Duration::from_secs(1) / fps.max(1);
        Self { start, interval, next_slot: 0 }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When `slot` is due, from the schedule's start.
    pub fn due(&self, slot: u64) -> Duration {
        // In u128 nanoseconds: `interval * slot as u32` would wrap after 2^32 slots (828 days
        // at 60 fps).
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(slot));
        self.start.saturating_add(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    pub fn poll(&mut self, now: Duration) -> Tick {
        let due = self.due(self.next_slot);
        if now < due {
            return Tick::WaitUntil(due);
        }
        // The latest slot that is already due.
        let latest = now.saturating_sub(self.start).as_nanos() / self.interval.as_nanos().max(1);
        let latest = latest as u64;
        let skipped = latest.saturating_sub(self.next_slot);
        self.next_slot = latest + 1;
        Tick::Capture { slot: latest, skipped }
    }
}

/// How often a still display's host says its picture is still current (`core::wire::Still`):
/// well inside the client's "no new picture" banner (500 ms), a few datagrams a second.
pub const STILL_EVERY: Duration = Duration::from_millis(100);

/// What a real display's capture loop should do now ([`DrawnClock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawTick {
    /// Nothing to do before `until`; with `or_drawn`, also as soon as the display draws.
    WaitUntil { until: Duration, or_drawn: bool },
    /// Capture and encode now.
    Capture,
    /// Say that the last picture sent is still current.
    Still,
}

/// When to capture a real display. A program draws on its own clock, not the host's: a
/// capture on a fixed 60 Hz tick waits for the tick, half an interval on average, and a still
/// display costs a re-encode each tick. So the capture follows the drawing (the DAMAGE
/// extension reports it): the first picture at once, then a capture as soon as something was
/// drawn, at most one per frame interval (the negotiated rate is a cap); while nothing is
/// drawn, no capture and no encode, and every [`STILL_EVERY`] a word that the picture is
/// still current. A repair (an IDR or a recovery frame the client asked for) is encoded even
/// from a still display. Without still words (a client that cannot read them) every
/// interval is captured, drawn or not.
#[derive(Debug, Clone)]
pub struct DrawnClock {
    interval: Duration,
    still_words: bool,
    last_capture: Option<Duration>,
    /// When the last frame or still word went out.
    last_word: Duration,
    drawn: bool,
    repair: bool,
}

impl DrawnClock {
    /// A clock for a display streamed at `fps` at most; `still_words`: whether the session
    /// says "still" instead of encoding an unchanged picture.
    pub fn new(fps: u32, still_words: bool) -> Self {
        let interval = Duration::from_secs(1) / fps.max(1);
        Self { interval, still_words, last_capture: None, last_word: Duration::ZERO, drawn: false, repair: false }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The display drew since the last capture.
    pub fn on_drawn(&mut self) {
        self.drawn = true;
    }

    /// The client asked for a repair: the next capture is due even if nothing was drawn.
    pub fn on_repair(&mut self) {
        self.repair = true;
    }

    pub fn poll(&mut self, now: Duration) -> DrawTick {
        let due = self.last_capture.map_or(now, |t| t + self.interval);
        if self.drawn || self.repair || self.last_capture.is_none() || !self.still_words {
            return if now < due { DrawTick::WaitUntil { until: due, or_drawn: false } } else { DrawTick::Capture };
        }
        let word_due = self.last_word + STILL_EVERY;
        if now >= word_due {
            self.last_word = now;
            return DrawTick::Still;
        }
        DrawTick::WaitUntil { until: word_due, or_drawn: true }
    }

    /// A picture was captured and sent at `now`.
    pub fn on_captured(&mut self, now: Duration) {
        self.last_capture = Some(now);
        self.last_word = now;
        self.drawn = false;
        self.repair = false;
    }

    /// The capture due at `now` was held back (the path had no room): try again an interval
    /// later, with what was drawn still pending.
    pub fn on_held_back(&mut self, now: Duration) {
        self.last_capture = Some(now);
    }
}

/// Queueing the send window allows above the path's empty-queue acknowledgement time. It must
/// cover a retransmitted packet (about one RTT more for that frame) and the client's delayed
/// acknowledgements, so random loss does not read as congestion, and stay under the buffers of
/// real bottlenecks (100 ms and more), so the window fills before they overflow.
pub const HEADROOM: Duration = Duration::from_millis(50);
/// Acknowledgement time assumed before the first frame is acknowledged.
const FIRST_GUESS: Duration = Duration::from_millis(100);
/// How long the lowest acknowledgement time is remembered.
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// The delivery rate is of the bytes acknowledged in this last stretch.
const RATE_WINDOW: Duration = Duration::from_millis(200);
/// Samples kept for the windowed minimum and the delivery rate, at most each.
const MAX_SAMPLES: usize = 4096;
/// How long after QUIC last declared a packet lost the path counts as losing packets.
const LOSS_MEMORY: Duration = Duration::from_secs(1);
/// A frame in flight this long is forgotten: its acknowledgement or release was lost to a
/// bug, and a window that never frees would stop the stream for good. (A live path
/// acknowledges within a second; a dead one ends the connection.)
const FORGET_AFTER: Duration = Duration::from_secs(3);

/// Frames sent and not yet acknowledged, and whether another may go.
///
/// Like BBR's in-flight cap: bytes in flight may reach the delivery rate (bytes acknowledged
/// in the last 200 ms) times the empty-queue acknowledgement time plus [`HEADROOM`]. While
/// the path keeps up, frames are acknowledged in about the base time and the window never
/// fills. When it slows down, acknowledgements take longer; at `base + HEADROOM` the window
/// is full, so the queue the host builds anywhere on the path stays within the headroom
/// whatever the path's rate. One frame waiting for a retransmission adds its bytes for one
/// round trip, well within; while QUIC is declaring packets lost (random loss makes most
/// large frames wait for one) the budget grows by the time a retransmission takes, so loss
/// is not read as a queue. Until acknowledgements have come in for 200 ms the window is
/// counted in frames; it is always at least `min_frames` and at most `max_frames` frames.
#[derive(Debug, Clone)]
pub struct SendWindow {
    interval: Duration,
    min_frames: usize,
    max_frames: usize,
    /// (frame number, sent at, bytes), oldest first.
    in_flight: VecDeque<(u64, Duration, u64)>,
    in_flight_bytes: u64,
    first_ack: Option<Duration>,
    /// QUIC's smoothed and lowest RTT, its count of lost packets, and when that count last
    /// grew.
    rtt: Duration,
    min_rtt: Duration,
    lost_packets: u64,
    last_loss: Option<Duration>,
    /// (acknowledged at, bytes) of the last `RATE_WINDOW`.
    delivered: VecDeque<(Duration, u64)>,
    /// (acknowledged at, acknowledgement time), increasing in both: the front is the minimum
    /// of the last `BASE_WINDOW`.
    lows: VecDeque<(Duration, Duration)>,
}

impl SendWindow {
    /// A window for a stream at `fps`, between `min_frames` and `max_frames` frames.
    pub fn new(fps: u32, min_frames: usize, max_frames: usize) -> Self {
        let max_frames = max_frames.max(1);
        Self {
            interval: Duration::from_secs(1) / fps.max(1),
            min_frames: min_frames.clamp(1, max_frames),
            max_frames,
            in_flight: VecDeque::with_capacity(max_frames),
            in_flight_bytes: 0,
            first_ack: None,
            rtt: Duration::ZERO,
            min_rtt: Duration::ZERO,
            lost_packets: 0,
            last_loss: None,
            delivered: VecDeque::new(),
            lows: VecDeque::new(),
        }
    }

    /// The lowest acknowledgement time of the last 10 s: the path's round trip with an empty
    /// queue, plus a frame's serialisation and the client's acknowledgement delay.
    pub fn base(&self) -> Option<Duration> {
        self.lows.front().map(|&(_, ack)| ack)
    }

    /// How long frames may take to be acknowledged at `now` before the path counts as
    /// queueing: the base and the headroom, and while the path is losing packets, the time a
    /// retransmission takes (3 round trips: detection after 9/8 RTT, the copy, its
    /// acknowledgement), since then most frames wait for one and that is not a queue. The
    /// round trip is the lower of QUIC's smoothed RTT and the base: a queue that makes the
    /// losses (a bottleneck's buffer overflowing) also inflates the smoothed RTT, and must
    /// not widen the window that is there to keep it short.
    fn budget(&self, now: Duration) -> Duration {
        let base = self.base().unwrap_or(FIRST_GUESS);
        // Losses while QUIC's RTT stands above its lowest are a queue overflowing (a rate
        // drop), not random loss: more in flight would only overflow it more.
        let overflowing = self.rtt.saturating_sub(self.min_rtt) > QUEUE_LOSS;
        let losing = !overflowing && self.last_loss.is_some_and(|at| now.saturating_sub(at) <= LOSS_MEMORY);
        let allowance = if losing { self.rtt.min(base) * 3 } else { Duration::ZERO };
        base + HEADROOM + allowance
    }

    /// What QUIC says of the path at `now`: its smoothed and lowest RTT and the packets it has
    /// declared lost so far on this connection.
    pub fn on_path(&mut self, now: Duration, rtt: Duration, min_rtt: Duration, lost_packets: u64) {
        self.rtt = rtt;
        self.min_rtt = min_rtt;
        if lost_packets > self.lost_packets {
            self.last_loss = Some(now);
        }
        self.lost_packets = self.lost_packets.max(lost_packets);
    }

    /// Bytes acknowledged per second over the last 200 ms; `None` until acknowledgements
    /// have come in for that long (a shorter stretch would read a slow start as a slow path).
    pub fn delivery_rate(&self, now: Duration) -> Option<f64> {
        if now.saturating_sub(self.first_ack?) < RATE_WINDOW {
            return None;
        }
        let bytes: u64 =
            self.delivered.iter().filter(|&&(at, _)| now.saturating_sub(at) <= RATE_WINDOW).map(|d| d.1).sum();
        Some(bytes as f64 / RATE_WINDOW.as_secs_f64())
    }

    /// Bytes allowed in flight now; `None` while the window is counted in frames.
    pub fn limit_bytes(&self, now: Duration) -> Option<u64> {
        Some((self.delivery_rate(now)? * self.budget(now).as_secs_f64()) as u64)
    }

    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    pub fn outstanding_bytes(&self) -> u64 {
        self.in_flight_bytes
    }

    /// Whether a frame captured at `now` would have to wait behind the ones in flight. A frame
    /// in flight for 3 s is forgotten first.
    pub fn is_full(&mut self, now: Duration) -> bool {
        while self.in_flight.front().is_some_and(|&(_, sent, _)| now.saturating_sub(sent) > FORGET_AFTER) {
            self.remove_at(0);
        }
        let frames = self.in_flight.len();
        if frames < self.min_frames {
            return false;
        }
        if frames >= self.max_frames {
            return true;
        }
        // Frames already waiting past the budget: the path slowed down faster than the
        // delivery rate shows. (One alone is a retransmission, which others do not wait for.)
        if self.in_flight.get(1).is_some_and(|&(_, sent, _)| now.saturating_sub(sent) > self.budget(now)) {
            return true;
        }
        if let Some(limit) = self.limit_bytes(now) {
            return self.in_flight_bytes >= limit;
        }
        let guess = self.budget(now).as_nanos().div_ceil(self.interval.as_nanos().max(1));
        frames as u128 >= guess
    }

    /// Frame `frame` of `bytes` went out at `now`. Past `max_frames` the oldest is forgotten
    /// (only if the caller ignores `is_full`).
    pub fn on_sent(&mut self, frame: u64, now: Duration, bytes: u64) {
        if self.in_flight.len() == self.max_frames {
            self.remove_at(0);
        }
        self.in_flight.push_back((frame, now, bytes));
        self.in_flight_bytes += bytes;
    }

    /// The client acknowledged all of `frame` at `now`.
    pub fn on_acked(&mut self, frame: u64, now: Duration) {
        let Some((sent, bytes)) = self.remove(frame) else { return };
        let took = now.saturating_sub(sent);
        self.first_ack.get_or_insert(now);
        while self.lows.back().is_some_and(|&(_, ack)| ack >= took) {
            self.lows.pop_back();
        }
        if self.lows.len() == MAX_SAMPLES {
            self.lows.pop_front();
        }
        self.lows.push_back((now, took));
        while self.lows.front().is_some_and(|&(at, _)| now.saturating_sub(at) > BASE_WINDOW) {
            self.lows.pop_front();
        }
        if self.delivered.len() == MAX_SAMPLES {
            self.delivered.pop_front();
        }
        self.delivered.push_back((now, bytes));
        while self.delivered.front().is_some_and(|&(at, _)| now.saturating_sub(at) > RATE_WINDOW) {
            self.delivered.pop_front();
        }
    }

    /// `frame` left flight unacknowledged: the client stopped its stream (too late to show) or
    /// the connection failed.
    pub fn on_released(&mut self, frame: u64) {
        self.remove(frame);
    }

    fn remove(&mut self, frame: u64) -> Option<(Duration, u64)> {
        let index = self.in_flight.iter().position(|&(f, _, _)| f == frame)?;
        self.remove_at(index)
    }

    fn remove_at(&mut self, index: usize) -> Option<(Duration, u64)> {
        let (_, sent, bytes) = self.in_flight.remove(index)?;
        self.in_flight_bytes -= bytes;
        Some((sent, bytes))
    }
}

/// Width of the bins [`DeliveryFloor`] counts acknowledged bytes in.
const FLOOR_BIN: Duration = Duration::from_millis(100);
/// How long [`DeliveryFloor`] remembers its busiest bin.
const FLOOR_MEMORY: Duration = Duration::from_secs(2);
/// Round trips' worth of the peak delivery rate the floor keeps open.
const FLOOR_GAIN: f64 = 2.0;

/// The least congestion window a video stream keeps: twice what the path delivered per
/// round trip at its busiest in the last 2 s (in 100 ms bins).
///
/// quinn's BBR enters `ProbeRTT` the first time the connection is not application-limited,
/// and again 10 s later whenever it is not: it then caps the window at three quarters of its
/// bandwidth-delay estimate, which early in a connection is a few packets, for at least
/// 200 ms. A 60 fps stream stalls behind that (seen here: the window fell from 320 KB to
/// 5.8 KB three frames into a 1080p stream, and frames then took 210 ms to arrive instead of
/// 25). The floor keeps what the stream itself has shown the path can carry, so BBR can only
/// slow the stream below that through the host's own send window (which answers queueing)
/// and the bitrate controller. A path that really slowed down stops raising the floor, which
/// falls back to BBR's window 2 s later. Pure: time is a parameter.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFloor {
    /// (bin number since the start, bytes acknowledged in it), oldest first.
    bins: VecDeque<(u64, u64)>,
}

impl DeliveryFloor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bin `now` falls in, and the oldest bin still remembered then.
    fn bins_at(now: Duration) -> (u64, u64) {
        let bin = (now.as_nanos() / FLOOR_BIN.as_nanos()) as u64;
        let kept = (FLOOR_MEMORY.as_nanos() / FLOOR_BIN.as_nanos()) as u64;
        (bin, bin.saturating_sub(kept))
    }

    /// `bytes` were acknowledged at `now`.
    pub fn on_acked(&mut self, now: Duration, bytes: u64) {
        let (bin, oldest) = Self::bins_at(now);
        match self.bins.back_mut() {
            Some((last, total)) if *last == bin => *total += bytes,
            _ => self.bins.push_back((bin, bytes)),
        }
        while self.bins.front().is_some_and(|&(b, _)| b < oldest) {
            self.bins.pop_front();
        }
    }

    /// The floor at `now`, for a path whose lowest round trip is `min_rtt`: 0 until something
    /// was acknowledged, and again once nothing was for 2 s.
    pub fn bytes(&self, now: Duration, min_rtt: Duration) -> u64 {
        let (_, oldest) = Self::bins_at(now);
        let peak = self.bins.iter().filter(|&&(b, _)| b >= oldest).map(|&(_, bytes)| bytes).max().unwrap_or(0);
        let rate = peak as f64 / FLOOR_BIN.as_secs_f64();
        (FLOOR_GAIN * rate * min_rtt.as_secs_f64()) as u64
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_capture_clock_runs_past_two_to_the_thirty_two_slots() {
        // 828 days at 60 fps: a slot count that no longer fits a u32.
        let mut clock = CaptureClock::new(60, Duration::ZERO);
        let slot = u64::from(u32::MAX) + 5;
        let now = clock.due(slot);
        assert!(now > Duration::from_hours(828 * 24), "{now:?}");
        assert_eq!(clock.poll(now), Tick::Capture { slot, skipped: slot });
        assert!(matches!(clock.poll(now), Tick::WaitUntil(next) if next == clock.due(slot + 1)));
        assert_eq!(clock.poll(clock.due(slot + 1)), Tick::Capture { slot: slot + 1, skipped: 0 });
    }

    #[test]
    fn a_display_is_captured_when_it_draws_at_most_once_an_interval() {
        let ms = Duration::from_millis;
        let mut clock = DrawnClock::new(60, true);
        assert_eq!(clock.poll(ms(0)), DrawTick::Capture, "the first picture at once");
        clock.on_captured(ms(0));
        // Nothing drawn: no capture, a still word every 100 ms.
        assert_eq!(clock.poll(ms(5)), DrawTick::WaitUntil { until: ms(100), or_drawn: true });
        assert_eq!(clock.poll(ms(100)), DrawTick::Still);
        assert_eq!(clock.poll(ms(101)), DrawTick::WaitUntil { until: ms(200), or_drawn: true });
        // Drawing at 130 ms is captured at once (the last capture is long past).
        clock.on_drawn();
        assert_eq!(clock.poll(ms(130)), DrawTick::Capture);
        clock.on_captured(ms(130));
        // Drawing again 4 ms later waits for the interval: the rate is a cap.
        clock.on_drawn();
        let cap = ms(130) + Duration::from_secs(1) / 60;
        assert_eq!(clock.poll(ms(134)), DrawTick::WaitUntil { until: cap, or_drawn: false });
        assert_eq!(clock.poll(cap), DrawTick::Capture);
        // Held back: retried an interval later, the drawing still pending.
        clock.on_held_back(cap);
        assert!(matches!(clock.poll(cap + ms(1)), DrawTick::WaitUntil { or_drawn: false, .. }));
        assert_eq!(clock.poll(cap * 2), DrawTick::Capture);
        clock.on_captured(cap * 2);
        // A repair is encoded from a still display.
        clock.on_repair();
        assert_eq!(clock.poll(cap * 3), DrawTick::Capture);
    }

    #[test]
    fn without_still_words_every_interval_is_captured() {
        let ms = Duration::from_millis;
        let mut clock = DrawnClock::new(50, false);
        assert_eq!(clock.poll(ms(0)), DrawTick::Capture);
        clock.on_captured(ms(0));
        assert_eq!(clock.poll(ms(10)), DrawTick::WaitUntil { until: ms(20), or_drawn: false });
        assert_eq!(clock.poll(ms(20)), DrawTick::Capture);
    }

    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn both_clocks_tick_at_the_rate_asked() {
        for fps in [30, 50, 60, 144] {
            let interval = Duration::from_secs(1) / fps;
            assert_eq!(CaptureClock::new(fps, ms(7)).interval(), interval);
            assert_eq!(DrawnClock::new(fps, true).interval(), interval);
        }
        // A rate of 0 (a corrupt setting) is read as 1 fps, not a division by zero.
        assert_eq!(CaptureClock::new(0, ms(0)).interval(), Duration::from_secs(1));
        assert_eq!(DrawnClock::new(0, false).interval(), Duration::from_secs(1));
    }

    #[test]
    fn on_time_captures_every_slot() {
        let mut c = CaptureClock::new(50, ms(100));
        assert_eq!(c.poll(ms(90)), Tick::WaitUntil(ms(100)));
        assert_eq!(c.poll(ms(100)), Tick::Capture { slot: 0, skipped: 0 });
        assert_eq!(c.poll(ms(101)), Tick::WaitUntil(ms(120)));
        assert_eq!(c.poll(ms(121)), Tick::Capture { slot: 1, skipped: 0 });
    }

    #[test]
    fn late_host_skips_instead_of_bursting() {
        let mut c = CaptureClock::new(50, ms(0));
        assert_eq!(c.poll(ms(0)), Tick::Capture { slot: 0, skipped: 0 });
        // 75 ms late: slots 1, 2 and 3 are due; capture slot 3 once, skip 1 and 2.
        assert_eq!(c.poll(ms(75)), Tick::Capture { slot: 3, skipped: 2 });
        assert_eq!(c.poll(ms(76)), Tick::WaitUntil(ms(80)));
    }

    /// Sends frame `n` of 10 KB at `at` and has it acknowledged `took` later.
    fn round_trip(w: &mut SendWindow, n: u64, at: Duration, took: Duration) {
        w.on_sent(n, at, 10_000);
        w.on_acked(n, at + took);
    }

    #[test]
    fn the_window_is_the_delivery_rate_times_the_empty_queue_ack_time_plus_headroom() {
        let mut w = SendWindow::new(60, 2, 16);
        // Before any acknowledgement it is counted in frames: 100 + 50 ms at 16.7 ms a frame
        // (9.000001, rounded up).
        for n in 0..10 {
            assert!(!w.is_full(ms(0)), "frame {n}");
            w.on_sent(n, ms(0), 50_000);
        }
        assert!(w.is_full(ms(0)));
        assert_eq!((w.outstanding(), w.outstanding_bytes()), (10, 500_000));
        assert_eq!(w.limit_bytes(ms(0)), None);
        for n in 0..10 {
            w.on_released(n);
        }
        assert_eq!((w.outstanding(), w.outstanding_bytes()), (0, 0));
        // Ten 10 KB frames acknowledged 30 ms after they went out, in 200 ms: 500 KB/s, and a
        // window of 500 KB/s × (30 + 50) ms = 40 KB. Until the acknowledgements span 200 ms
        // the rate is not trusted (a start reads slow) and the window stays in frames.
        for n in 0..10 {
            round_trip(&mut w, n, ms(1000 + 20 * n), ms(30));
        }
        assert_eq!(w.delivery_rate(ms(1210)), None);
        let now = ms(1230);
        assert_eq!(w.base(), Some(ms(30)));
        assert_eq!(w.delivery_rate(now), Some(500_000.0));
        assert_eq!(w.limit_bytes(now), Some(40_000));
        for n in 10..14 {
            assert!(!w.is_full(now));
            w.on_sent(n, now, 10_000);
        }
        assert!(w.is_full(now), "40 KB in flight");
        // A slower acknowledgement does not raise the base; a faster one lowers it.
        w.on_acked(10, now + ms(80));
        assert_eq!(w.base(), Some(ms(30)));
        w.on_acked(11, now + ms(20));
        assert_eq!(w.base(), Some(ms(20)));
        // The minimum is of the last 10 s only: after the 20 ms sample ages out, the slower
        // ones after it set the base.
        round_trip(&mut w, 20, ms(4960), ms(40));
        round_trip(&mut w, 21, ms(11_450), ms(50));
        assert_eq!(w.base(), Some(ms(40)));
        // Acknowledging a frame twice, or one never sent, changes nothing.
        let before = (w.outstanding(), w.outstanding_bytes());
        w.on_acked(21, ms(11_600));
        w.on_acked(99, ms(11_600));
        assert_eq!((w.outstanding(), w.outstanding_bytes()), before);
        // Nothing acknowledged for 200 ms: no delivery rate, so only `min_frames` may fly.
        let later = ms(12_000);
        assert_eq!(w.limit_bytes(later), Some(0));
        w.on_released(12);
        w.on_released(13);
        assert_eq!(w.outstanding(), 0);
        w.on_sent(30, later, 10_000);
        assert!(!w.is_full(later));
        w.on_sent(31, later, 10_000);
        assert!(w.is_full(later));
        // And never more than `max_frames`, whatever the rate.
        let mut fast = SendWindow::new(60, 2, 4);
        round_trip(&mut fast, 0, ms(0), ms(1));
        for n in 1..5 {
            fast.on_sent(n, ms(2), 1);
        }
        assert!(fast.is_full(ms(2)));
    }

    /// The path of a simulation: a bottleneck of `rate` bytes a second, then a fixed 20 ms of
    /// round trip, and retransmissions (`retransmit` more each) for the frames numbered in
    /// `lost` (twice for those numbered in `lost_twice`). QUIC reports its losses (and the
    /// RTT) to the window when `reported`.
    struct Path {
        rate: f64,
        lost: Vec<u64>,
        lost_twice: Vec<u64>,
        retransmit: Duration,
        reported: bool,
    }

    impl Path {
        fn clean(rate: f64) -> Self {
            Self { rate, lost: Vec::new(), lost_twice: Vec::new(), retransmit: ms(25), reported: true }
        }
    }

    /// What a simulated run did.
    #[derive(Debug)]
    struct Run {
        sent: u64,
        skipped: u64,
        /// The longest a frame waited in the bottleneck's queue: in the first second, and after.
        longest_queue: (Duration, Duration),
        /// The longest time between two frames reaching the client.
        longest_gap: Duration,
    }

    /// A 60 fps sender of `bytes`-byte frames for `frames` slots from `start`, through `path`.
    fn run(w: &mut SendWindow, start: Duration, frames: u64, bytes: u64, path: &Path) -> Run {
        let (delay, interval) = (ms(20), Duration::from_micros(16_667));
        // QUIC's count is for the connection: it goes on from run to run.
        let mut lost_packets = w.lost_packets;
        let drain = Duration::from_secs_f64(bytes as f64 / path.rate);
        let mut r = Run { sent: 0, skipped: 0, longest_queue: Default::default(), longest_gap: Duration::ZERO };
        let mut bottleneck_free = start;
        let mut acks: VecDeque<(Duration, u64)> = VecDeque::new();
        for slot in 0..frames {
            let now = start + interval * slot as u32;
            acks.make_contiguous().sort_unstable();
            while acks.front().is_some_and(|&(at, _)| at <= now) {
                let (at, n) = acks.pop_front().unwrap();
                w.on_acked(n, at);
            }
            if w.is_full(now) {
                r.skipped += 1;
                continue;
            }
            let n = start.as_millis() as u64 * 1000 + slot;
            w.on_sent(n, now, bytes);
            r.sent += 1;
            let begins = bottleneck_free.max(now);
            let queue = if slot < 60 { &mut r.longest_queue.0 } else { &mut r.longest_queue.1 };
            *queue = (*queue).max(begins.saturating_sub(now));
            if r.sent > 1 {
                r.longest_gap = r.longest_gap.max((begins + drain).saturating_sub(bottleneck_free));
            }
            bottleneck_free = begins + drain;
            let retransmissions = u32::from(path.lost.contains(&slot)) + u32::from(path.lost_twice.contains(&slot));
            lost_packets += u64::from(retransmissions);
            if path.reported {
                // QUIC's smoothed RTT carries the queue the frame found.
                w.on_path(now, delay + begins.saturating_sub(now), delay, lost_packets);
            }
            acks.push_back((bottleneck_free + delay + path.retransmit * retransmissions, n));
        }
        for (at, n) in acks {
            w.on_acked(n, at);
        }
        r
    }

    #[test]
    fn losses_from_an_overflowing_queue_do_not_widen_the_window() {
        let ms = Duration::from_millis;
        let mut w = SendWindow::new(60, 2, 16);
        // 20 KB frames acknowledged in 20 ms for a second: a base and a delivery rate.
        for i in 0..60u64 {
            let now = ms(i * 16);
            w.on_sent(i, now, 20_000);
            w.on_acked(i, now + ms(20));
        }
        let now = ms(1000);
        w.on_path(now, ms(20), ms(20), 0);
        let clean = w.limit_bytes(now).unwrap();
        // Random loss, the RTT at its lowest: the budget allows a retransmission's time.
        w.on_path(now, ms(20), ms(20), 3);
        let random = w.limit_bytes(now).unwrap();
        assert!(random > clean, "{random} vs {clean}");
        // Losses while the RTT stands 60 ms above its lowest: a queue overflowing, no more.
        w.on_path(now, ms(80), ms(20), 6);
        assert_eq!(w.limit_bytes(now).unwrap(), clean);
        // Exactly QUEUE_LOSS above its lowest is not yet a queue: the losses still widen it.
        w.on_path(now, ms(20) + QUEUE_LOSS, ms(20), 9);
        assert_eq!(w.limit_bytes(now).unwrap(), random);
    }

    #[test]
    fn a_clean_path_and_random_losses_never_skip() {
        let mut w = SendWindow::new(60, 2, 16);
        // 12 Mbit/s of 25 KB frames on a 30 Mbit/s path.
        let clean = Path::clean(3_750_000.0);
        let r = run(&mut w, ms(0), 600, 25_000, &clean);
        assert_eq!((r.sent, r.skipped), (600, 0), "{r:?}");
        assert!(r.longest_queue.0.max(r.longest_queue.1) < ms(1), "{r:?}");
        // Then one frame in 5 loses a packet and waits a retransmission: still nothing skipped.
        let lossy = Path { lost: (0..600).filter(|n| n % 5 == 3).collect(), ..Path::clean(3_750_000.0) };
        let r = run(&mut w, ms(10_000), 600, 25_000, &lossy);
        assert_eq!((r.sent, r.skipped), (600, 0), "losses alone must not read as congestion: {r:?}");
        // Heavy loss, as 10 % of packets lost does to 30-packet frames: every frame waits for
        // a retransmission (the loss is detected 9/8 RTT after later packets come back, then
        // the copy crosses: ~45 ms at 20 ms RTT) and one in 7 for two. Nothing skipped,
        // because QUIC's loss reports widen the budget...
        let heavy = Path {
            lost: (0..600).collect(),
            lost_twice: (0..600).filter(|n| n % 7 == 0).collect(),
            retransmit: ms(45),
            ..Path::clean(3_750_000.0)
        };
        let r = run(&mut w, ms(20_000), 600, 25_000, &heavy);
        assert_eq!((r.sent, r.skipped), (600, 0), "heavy random loss is not a queue: {r:?}");
        // ... which it needs: without them, a good part of the stream would be held back.
        let mut blind = SendWindow::new(60, 2, 16);
        run(&mut blind, ms(0), 120, 25_000, &Path::clean(3_750_000.0));
        let r = run(&mut blind, ms(2_000), 600, 25_000, &Path { reported: false, ..heavy });
        assert!(r.skipped > 60, "{r:?}");
    }

    #[test]
    fn a_slower_path_is_paced_with_a_bounded_queue() {
        let mut w = SendWindow::new(60, 2, 16);
        let fast = Path::clean(3_750_000.0);
        run(&mut w, ms(0), 120, 25_000, &fast);
        // The path falls to a sixth (5 Mbit/s: 40 ms a frame). The frames sent before the
        // first slow acknowledgement queue up (a round trip's worth, at six times the rate the
        // path drains); then the host sends what drains, the queue stays within the headroom
        // and a frame, and the client gets a frame every 40 ms or so throughout.
        let slow = Path::clean(625_000.0);
        let r = run(&mut w, ms(2_000), 600, 25_000, &slow);
        assert!(r.sent >= 200 && r.sent <= 260, "the path carries 25 frames a second: {r:?}");
        assert!(r.longest_queue.0 <= ms(150), "{r:?}");
        assert!(r.longest_queue.1 <= HEADROOM + ms(40), "{r:?}");
        assert!(r.longest_gap <= ms(85), "{r:?}");
        // Back to full speed: every frame goes again.
        let r = run(&mut w, ms(12_000), 600, 25_000, &fast);
        assert!(r.skipped <= 10, "{r:?}");
    }

    #[test]
    fn losses_from_a_slower_path_do_not_widen_the_window_by_its_queue() {
        let mut w = SendWindow::new(60, 2, 16);
        run(&mut w, ms(0), 120, 25_000, &Path::clean(3_750_000.0));
        // The path falls to 5 Mbit/s and its buffer overflows now and then (one frame in 10
        // loses a packet), so QUIC reports losses all along, with a smoothed RTT swollen by
        // the queue. The window widens only by round trips of the empty path: the queue stays
        // within the headroom, a retransmission's allowance and a frame.
        let slow = Path { lost: (0..600).filter(|n| n % 10 == 0).collect(), ..Path::clean(625_000.0) };
        let r = run(&mut w, ms(2_000), 600, 25_000, &slow);
        let allowance = w.base().unwrap() * 3;
        assert!(r.longest_queue.1 <= HEADROOM + allowance + ms(40), "{r:?}, allowance {allowance:?}");
        assert!(r.sent >= 200 && r.sent <= 260, "{r:?}");
    }

    #[test]
    fn a_frame_never_accounted_for_is_forgotten_after_3_s() {
        let mut w = SendWindow::new(60, 2, 16);
        round_trip(&mut w, 0, ms(0), ms(10));
        // Two frames whose acknowledgement never comes (a lost report would be a bug, but it
        // must not stop the stream for good).
        w.on_sent(1, ms(300), 10_000);
        w.on_sent(2, ms(317), 10_000);
        assert!(w.is_full(ms(1000)));
        assert!(w.is_full(ms(3200)));
        // Exactly 3 s in flight is kept; a moment more is not.
        assert!(w.is_full(ms(3300)));
        assert_eq!(w.outstanding(), 2);
        assert!(!w.is_full(ms(3301)));
        assert_eq!((w.outstanding(), w.outstanding_bytes()), (1, 10_000));
        assert!(!w.is_full(ms(3400)));
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn a_second_frame_waiting_exactly_the_budget_is_not_yet_a_queue() {
        let mut w = SendWindow::new(60, 2, 16);
        // A base of 10 ms, so a budget of 60 ms; no delivery rate yet (under 200 ms of
        // acknowledgements), so the window counts frames: 4 fit in 60 ms at 60 fps.
        round_trip(&mut w, 0, ms(0), ms(10));
        w.on_sent(1, ms(100), 10_000);
        w.on_sent(2, ms(100), 10_000);
        assert!(!w.is_full(ms(160)), "waiting exactly the budget");
        assert!(w.is_full(ms(161)), "two frames waiting past the budget: the path slowed down");
    }

    #[test]
    fn the_delivery_rate_counts_what_is_exactly_200_ms_old_and_keeps_nothing_older() {
        let mut w = SendWindow::new(60, 2, 16);
        // Acknowledged at 10 ms and 210 ms: at 210 ms the first is exactly 200 ms old, in.
        round_trip(&mut w, 0, ms(0), ms(10));
        round_trip(&mut w, 1, ms(200), ms(10));
        assert_eq!(w.delivery_rate(ms(210)), Some(100_000.0));
        assert_eq!(w.delivery_rate(ms(211)), Some(50_000.0));
        // After a pause, an acknowledgement leaves only itself among the samples.
        round_trip(&mut w, 2, ms(1_000), ms(10));
        assert_eq!(w.delivered.len(), 1);
    }

    #[test]
    fn the_delivery_floor_counts_the_oldest_bin_it_remembers_and_nothing_older() {
        let mut f = DeliveryFloor::new();
        // 100 KB in the first bin, 1 KB in the bin 2 s later: the first is still remembered
        // (1 MB/s at its busiest, times two round trips of 10 ms).
        f.on_acked(ms(50), 100_000);
        f.on_acked(ms(2_050), 1_000);
        assert_eq!(f.bytes(ms(2_050), ms(10)), 20_000);
        assert_eq!(f.bins.len(), 2);
        // After a pause of seconds, an acknowledgement leaves only its own bin.
        f.on_acked(ms(6_000), 1_000);
        assert_eq!(f.bins.len(), 1);
        assert_eq!(f.bytes(ms(6_000), ms(10)), 200);
    }

    #[test]
    fn the_delivery_floor_keeps_two_round_trips_of_the_busiest_rate_for_2_s() {
        let mut f = DeliveryFloor::new();
        assert_eq!(f.bytes(ms(0), ms(20)), 0, "nothing delivered yet");
        // 60 fps of 35 KB frames: 6 frames in a 100 ms bin, 2.1 MB/s; at 20 ms of round trip,
        // 42 KB a round trip, so a floor of 84 KB.
        for n in 0..120u64 {
            f.on_acked(Duration::from_micros(n * 16_667), 35_000);
        }
        let at = ms(2_000);
        assert!((f.bytes(at, ms(20)) as i64 - 84_000).abs() <= 14_000, "{}", f.bytes(at, ms(20)));
        // The rate falls to a sixth: the peak is remembered for 2 s, then the floor follows.
        let slow = |f: &mut DeliveryFloor, slots: std::ops::Range<u64>| {
            for n in slots {
                f.on_acked(at + Duration::from_micros(n * 16_667), 35_000 / 6);
            }
        };
        slow(&mut f, 0..90);
        assert!(f.bytes(at + ms(1_500), ms(20)) >= 70_000);
        slow(&mut f, 90..180);
        let later = at + ms(3_000);
        assert!(f.bytes(later, ms(20)) <= 15_000, "{}", f.bytes(later, ms(20)));
        // Nothing acknowledged for over 2 s: no floor.
        assert_eq!(f.bytes(later + ms(2_500), ms(20)), 0);
        // Memory is bounded by the bins of 2 s, whatever the number of acknowledgements.
        for n in 0..100_000u64 {
            f.on_acked(later + Duration::from_micros(n * 100), 1_200);
        }
        assert!(f.bins.len() <= 22, "{}", f.bins.len());
    }
}

//! Adaptive bitrate: the client's controller that keeps the video stream inside what the path
//! delivers.
//!
//! Two signals, both from frames as they arrive. **Queueing delay**: each frame's transit
//! (client arrival minus host capture and encode, so the clock offset is a constant that the
//! windowed minimum takes out) above the lowest transit of the last 10 s; a path whose queue
//! fills shows it within a few frames, long before loss. **Delivery rate**: the bytes that
//! arrived in the last half second, the video's and those of what shares its path (sound and
//! parity, `on_overhead`). When the queue grows past `CONGESTED` the whole stream drops at once
//! to 85 % of what was delivered (what the path carries, with room to drain its queue), at
//! most every 300 ms: the target, which is the video's, gets that less what sound and parity
//! took. When the queue stays under `CLEAR` for a second the target probes up every half
//! second, by 12 % and then, while each step finds no queue, by 24, 48 and 50 % (×10 in 3 s: a
//! path back to 12 Mbit/s after a stretch at 3 is found within seconds; 12 % steps took ten).
//! A queue over `CLEAR`, a queue 5 ms above the one at the step, or a held-back slot, within
//! 2 s of a step takes that step back at once (to 95 % of the target before it), long before
//! the queue reaches `CONGESTED`: the step found the path's knee; so does a queue over `CLEAR`
//! that stands for a second. For 1 s no step goes past the knee, then steps are 4 % up to
//! 10 % over it, for 10 s (on a 3 Mbit/s path each 12 % step past the knee had raised the
//! queue to 60 ms before the decrease answered it).
//! Heavy frame loss (over 10 % of frames in a second) counts as congestion; light random loss
//! does not, since lowering the bitrate would not cure it. **Held-back slots**: the host
//! paces (`core::video::pacing::SendWindow`), so a path too slow for the stream shows as capture
//! slots the host skipped, more than as a growing queue. Over 5 % of the last second's slots
//! held back counts as congestion, and so do two or more while a queue shows (over `CLEAR`:
//! the stream sits just above what the path carries); any at all stops probing. Only slots
//! held back since the last decrease count (the host goes on holding back until the smaller
//! frames reach it), so one episode is answered once.
//!
//! **The start** ([`Controller::starting`]): a stream that began at the rate asked met a path
//! a third as wide with a full router queue within 40 ms (10 Mbit/s into 3, a 37.5 KB queue),
//! before anything could be measured, and lost frames in its first second. So a session starts
//! at a quarter of the rate asked and climbs by half every 100 ms (a round trip and three
//! frames when that is longer, so each step is judged by frames made at its rate) while the
//! newest three frames arrive with no queue behind them (their median: the 250 ms median
//! answers too late for steps this fast, and one large key frame is not a queue); the first
//! queue, or a slot the host held back, ends the climb and takes its last step back, as a step
//! up does later. On a clear path the stream is at the rate asked within about 500 ms. Pure:
//! time is an argument.

use std::collections::VecDeque;
use std::time::Duration;

/// Queueing delay that means the path is full.
pub const CONGESTED: Duration = Duration::from_millis(40);
/// Queueing delay under which the path counts as clear for probing up.
pub const CLEAR: Duration = Duration::from_millis(15);
/// Shortest time between two decreases: a decrease needs a round trip and a few frames to show.
const DECREASE_HOLD: Duration = Duration::from_millis(300);
/// How long the path must stay clear before the first step up, and between steps.
const PROBE_AFTER: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_millis(500);
const PROBE_STEP: f64 = 1.12;
/// Each step up in a row that found no queue doubles the next one's increase, up to the
/// start's [`RAMP_STEP`]: 12, 24, 48 and then 50 %. A path that widened again (a
/// path back to 12 Mbit/s after a stretch at 3) is found within seconds, where 12 % steps took
/// ten; a step near a knee the path showed stays small ([`KNEE_STEP`]).
const PROBE_GROWTH: f64 = 2.0;
/// A queue (over `CLEAR`, or a slot held back) within this long of a step up takes the step
/// back at once, before the queue reaches `CONGESTED`: the step found the path's knee.
const PROBE_UNDO: Duration = Duration::from_secs(2);
/// So does a queue that rose this much since the step, even under `CLEAR`. A step makes each
/// frame larger, and so longer to send, by at most the step's share of a frame interval (a
/// 12 % step at 60 fps: 2 ms, and only on a path the stream nearly fills); a queue behind a
/// path that cannot carry the step keeps growing. Taken back at 5 ms of rise, not 15 ms of
/// queue, a step past the knee costs the frames behind it a third of the wait. (On 2 000
/// simulated sessions with 4 % knee steps: the settled queue within a frame interval in
/// 1 835 where 1 650, and no property worse; docs/robustness.md.)
const STEP_RISE: Duration = Duration::from_millis(5);
/// Taken back to this share of the target before the step: that target may itself have sat
/// just above the path (a queue that grows slowly), and the queue must drain.
const UNDO_TO: f64 = 0.95;
/// A queue over `CLEAR` that stays this long, not answered by a decrease, is a stream just
/// above its path: the target goes down by [`UNDO_TO`] too.
const STANDING: Duration = Duration::from_secs(1);
/// For this long after, no step goes past the knee; then the path may have grown and steps
/// may cross it again, smaller ones ([`KNEE_STEP`]) while the target is under 110 % of it,
/// until [`KNEE_FORGET`]. Short: a path that widens again must be found within seconds.
const KNEE_HOLD: Duration = Duration::from_secs(1);
const KNEE_STEP: f64 = 1.04;
const KNEE_FORGET: Duration = Duration::from_secs(10);
const BACKOFF: f64 = 0.85;
/// The start: this share of the rate asked...
const START_SHARE: f64 = 0.25;
/// ...climbing by this factor every [`RAMP_EVERY`] while the newest [`RAMP_FRAMES`] frames
/// arrive with a queue under [`CLEAR`] (their median).
const RAMP_STEP: f64 = 1.5;
const RAMP_EVERY: Duration = Duration::from_millis(100);
const RAMP_FRAMES: usize = 3;
/// Their median: the middle one of them, in order of transit.
const RAMP_MEDIAN: usize = RAMP_FRAMES / 2;
/// Window of the delivery rate, and of the queueing estimate (its median).
const RATE_WINDOW: Duration = Duration::from_millis(500);
const QUEUE_WINDOW: Duration = Duration::from_millis(250);
/// Window of the lowest transit: the path's empty-queue delay.
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// Frames kept, at most (10 s at 240 fps).
const MAX_FRAMES: usize = 2400;
/// The other datagrams' bytes are summed in buckets this long...
const OVERHEAD_BUCKET: Duration = Duration::from_millis(10);
/// ...of which the rate window holds this many (a bucket more, at most, while it turns).
const MAX_OVERHEAD_BUCKETS: usize = 64;

/// The controller's floor unless the session sets another (`--min-bitrate-kbps`), kbit/s. The
/// picture ladder's lowest rung (360p at 30 fps) needs about 630 kbit/s
/// (`core::video::ladder::needed_kbps`); with sound and its redundancy copy (about 600 kbit/s
/// with their headers) and parity, a floor of 1000 left a 2 Mbit/s path a standing queue (the
/// simulation's 200 sessions: the stream pinned at its floor for the 20 s the path was narrow).
pub const FLOOR_KBPS: u32 = 500;

/// The controller's limits and starting point, kbit/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min_kbps: u32,
    pub max_kbps: u32,
}

/// Why the target changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The path's queue grew (or frames were being lost): down to what it delivers.
    Congested,
    /// The path stayed clear: a careful step up.
    Probe,
}

/// Where a session whose bitrate adapts within `limits` starts: a quarter of the rate asked
/// (`limits.max_kbps`), not under the floor.
pub fn start_kbps(limits: Limits) -> u32 {
    let asked = limits.max_kbps;
    ((f64::from(asked) * START_SHARE) as u32).clamp(limits.min_kbps.min(asked), asked)
}

#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Duration,
    bytes: u64,
    transit_micros: i64,
}

#[derive(Debug, Clone)]
pub struct Controller {
    limits: Limits,
    target_kbps: u32,
    frames: VecDeque<Arrival>,
    /// Bytes of what else shares the path with the video (sound, parity): (bucket's start, bytes).
    overhead: VecDeque<(Duration, u64)>,
    losses: VecDeque<Duration>,
    /// When the host held back a capture slot, one entry per slot.
    held: VecDeque<Duration>,
    last_decrease: Option<Duration>,
    /// Held-back slots up to here were answered by a decrease: not counted again.
    answered_until: Duration,
    /// The queueing delay when the target was last lowered: while the queue drains below
    /// it, the last decrease is working and another would overshoot.
    queue_at_decrease: Duration,
    /// Since when the path has been clear (no queue, no heavy loss).
    clear_since: Option<Duration>,
    last_probe: Duration,
    /// The last step up.
    probed: Option<Step>,
    /// Steps up in a row that found no queue, since the last queue or decrease: each makes
    /// the next larger ([`PROBE_GROWTH`]).
    streak: u32,
    /// The target a step up found a queue at, and when.
    knee: Option<(Duration, u32)>,
    /// Since when the queue has been over `CLEAR`.
    queued_since: Option<Duration>,
    /// When the host last said its picture is still current: until a frame comes after it,
    /// the path is idle, not clear and not congested.
    still_at: Option<Duration>,
    /// The first frame's arrival, or the first after the last still stretch: the delivery
    /// rate counts from here, since bytes not sent say nothing of what the path carries.
    active_since: Duration,
    /// Whether a frame arrived yet.
    started: bool,
    /// While the stream climbs to the rate asked at its start: that rate.
    ramp: Option<u32>,
    /// The path's round trip, as the session last measured it.
    rtt: Duration,
}

/// A step up: when it was taken, the target before it, and the queue then (`None` for the
/// start's climb, which judges its steps by the newest frames instead).
#[derive(Debug, Clone, Copy)]
struct Step {
    at: Duration,
    before: u32,
    queue: Option<Duration>,
}

impl Controller {
    pub fn new(limits: Limits, start_kbps: u32) -> Self {
        let limits = Limits { min_kbps: limits.min_kbps.min(limits.max_kbps), ..limits };
        Self {
            limits,
            target_kbps: start_kbps.clamp(limits.min_kbps, limits.max_kbps),
            frames: VecDeque::new(),
            overhead: VecDeque::new(),
            losses: VecDeque::new(),
            held: VecDeque::new(),
            last_decrease: None,
            answered_until: Duration::ZERO,
            queue_at_decrease: Duration::ZERO,
            clear_since: None,
            last_probe: Duration::ZERO,
            probed: None,
            streak: 0,
            knee: None,
            queued_since: None,
            still_at: None,
            active_since: Duration::ZERO,
            started: false,
            ramp: None,
            rtt: Duration::ZERO,
        }
    }

    /// A controller for a new session that asked for `limits.max_kbps`: it starts at
    /// [`start_kbps`] and climbs while the path shows no queue (the module's "The start").
    /// The client asks the host for that first rate in its `Hello`, so the first frames are
    /// made at it.
    pub fn starting(limits: Limits) -> Self {
        let mut c = Self::new(limits, limits.max_kbps);
        let (first, goal) = (start_kbps(limits), c.target_kbps);
        if first < goal {
            c.target_kbps = first;
            c.ramp = Some(goal);
        }
        c
    }

    /// The path's round trip, measured by the session (its pings): a step of the climb waits
    /// for it.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// How long a step of the climb waits before the next: [`RAMP_EVERY`], or a round trip and
    /// [`RAMP_FRAMES`] frames when that is longer, so that the frames the step is judged by were
    /// made at its rate (the request's way to the host, and the frames' way back).
    fn ramp_wait(&self) -> Duration {
        // The frame interval over the newest arrivals (at most 100 ms: a still picture sends
        // none).
        let (len, span) = (self.frames.len(), self.frames.len().min(RAMP_FRAMES + 1));
        let interval = match (self.frames.get(len - span), self.frames.back()) {
            (Some(oldest), Some(newest)) if span > 1 => {
                (newest.at.saturating_sub(oldest.at) / (span - 1) as u32).min(Duration::from_millis(100))
            }
            _ => Duration::ZERO,
        };
        RAMP_EVERY.max(self.rtt + interval * RAMP_FRAMES as u32)
    }

    /// Whether the stream is still climbing to the rate asked at its start.
    pub fn ramping(&self) -> bool {
        self.ramp.is_some()
    }

    /// The newest frames' queueing delay, their median (`None` with too few): one large frame
    /// (the first key frame, whose own sending time reads as queue) does not end the climb,
    /// two frames with a queue do.
    fn newest_queue(&self) -> Option<Duration> {
        let base = self.frames.iter().map(|f| f.transit_micros).min()?;
        if self.frames.len() < RAMP_FRAMES {
            return None;
        }
        let mut newest: Vec<i64> = self.frames.iter().rev().take(RAMP_FRAMES).map(|f| f.transit_micros).collect();
        newest.sort_unstable();
        Some(Duration::from_micros((newest[RAMP_MEDIAN] - base).max(0) as u64))
    }

    /// The start's climb at `now`: a step while the newest frames show no queue; the first
    /// queue, or a slot the host held back, ends it and takes the last step back. (A lost
    /// frame does not: light random loss is not the path's width.)
    fn climb(&mut self, now: Duration, goal: u32) -> Option<(u32, Reason)> {
        let newest = self.newest_queue()?;
        if newest > CLEAR || !self.held.is_empty() {
            self.ramp = None;
            let before = self.probed.take().map_or(self.target_kbps, |step| step.before);
            let next = ((f64::from(before) * UNDO_TO) as u32).clamp(self.limits.min_kbps, self.limits.max_kbps);
            self.knee = Some((now, next));
            self.last_decrease = Some(now);
            // Slots held back until now are answered by this step back.
            self.answered_until = now;
            self.queue_at_decrease = newest;
            return self.set(next, Reason::Congested);
        }
        // Steps wait for 100 ms of frames (the delivery rate's window), and 100 ms after the
        // last step, or a round trip and the frames that show the step when that is longer.
        self.rate_window(now)?;
        let wait = self.ramp_wait();
        if self.probed.is_some_and(|step| now.saturating_sub(step.at) < wait) {
            return None;
        }
        let grown = (f64::from(self.target_kbps) * RAMP_STEP).ceil() as u32;
        let next = grown.max(self.target_kbps + 1).min(goal);
        if next >= goal {
            self.ramp = None;
        }
        self.last_probe = now;
        self.probed = Some(Step { at: now, before: self.target_kbps, queue: None });
        self.clear_since = Some(now);
        self.set(next, Reason::Probe)
    }

    pub fn target_kbps(&self) -> u32 {
        self.target_kbps
    }

    /// A whole frame of `bytes` arrived at `now`; `transit_micros` is its arrival (client
    /// clock) minus its capture and encode time (host clock): any constant offset is fine.
    pub fn on_frame(&mut self, now: Duration, bytes: u64, transit_micros: i64) {
        if self.still_at.take().is_some() || !self.started {
            self.active_since = now;
            self.started = true;
        }
        if self.frames.len() >= MAX_FRAMES {
            self.frames.pop_front();
        }
        self.frames.push_back(Arrival { at: now, bytes, transit_micros });
        while self.frames.front().is_some_and(|f| now.saturating_sub(f.at) > BASE_WINDOW) {
            self.frames.pop_front();
        }
    }

    /// A datagram of `bytes` that shares the path with the video (sound, parity) arrived at
    /// `now`. The budget is the path's: a decrease leaves the video what the path carried
    /// less what these took.
    pub fn on_overhead(&mut self, now: Duration, bytes: u64) {
        match self.overhead.back_mut() {
            Some(bucket) if now.saturating_sub(bucket.0) < OVERHEAD_BUCKET => bucket.1 += bytes,
            _ => {
                if self.overhead.len() >= MAX_OVERHEAD_BUCKETS {
                    self.overhead.pop_front();
                }
                self.overhead.push_back((now, bytes));
            }
        }
        while self.overhead.front().is_some_and(|b| now.saturating_sub(b.0) > RATE_WINDOW) {
            self.overhead.pop_front();
        }
    }

    /// The host said at `now` that its picture is still current: it sends nothing because
    /// nothing changed. No decision is taken on an idle path (a stale queue is not a queue,
    /// and a path that carries nothing has shown no headroom).
    pub fn on_still(&mut self, now: Duration) {
        self.still_at = Some(now);
        self.clear_since = None;
    }

    /// A frame was lost on the network at `now`.
    pub fn on_loss(&mut self, now: Duration) {
        Self::record(&mut self.losses, now, 1);
    }

    /// The host skipped `slots` capture slots before a frame that arrived at `now`, for
    /// want of room on the path.
    pub fn on_held_back(&mut self, now: Duration, slots: u32) {
        Self::record(&mut self.held, now, slots.min(MAX_FRAMES as u32));
    }

    fn record(times: &mut VecDeque<Duration>, now: Duration, count: u32) {
        for _ in 0..count {
            if times.len() >= MAX_FRAMES {
                times.pop_front();
            }
            times.push_back(now);
        }
    }

    /// The queueing delay now: the median transit of the last 250 ms above the lowest of the
    /// last 10 s. `None` before there are frames.
    pub fn queueing(&self, now: Duration) -> Option<Duration> {
        let base = self.frames.iter().map(|f| f.transit_micros).min()?;
        let mut recent: Vec<i64> = self
            .frames
            .iter()
            .rev()
            .take_while(|f| now.saturating_sub(f.at) <= QUEUE_WINDOW)
            .map(|f| f.transit_micros)
            .collect();
        if recent.is_empty() {
            // Nothing arrived lately: the newest frame's transit, however old.
            recent.push(self.frames.back()?.transit_micros);
        }
        recent.sort_unstable();
        Some(Duration::from_micros((recent[recent.len() / 2] - base).max(0) as u64))
    }

    /// What arrived in the last 500 ms, kbit/s; over the time since the stream last resumed
    /// from a still picture when that is shorter, and 0 (unknown) when that is under 100 ms.
    pub fn delivered_kbps(&self, now: Duration) -> u32 {
        let Some(window) = self.rate_window(now) else { return 0 };
        let bytes: u64 =
            self.frames.iter().rev().take_while(|f| now.saturating_sub(f.at) <= window).map(|f| f.bytes).sum();
        (bytes * 8 / window.as_millis() as u64) as u32
    }

    /// The window rates are measured over: the last 500 ms, or the time since the stream
    /// started or resumed when that is shorter; `None` while that is under 100 ms (unknown).
    fn rate_window(&self, now: Duration) -> Option<Duration> {
        let window = RATE_WINDOW.min(now.saturating_sub(self.active_since));
        (window >= RATE_WINDOW / 5).then_some(window)
    }

    /// What the other datagrams took over the same window as [`Controller::delivered_kbps`],
    /// kbit/s.
    pub fn overhead_kbps(&self, now: Duration) -> u32 {
        let Some(window) = self.rate_window(now) else { return 0 };
        let bytes: u64 =
            self.overhead.iter().rev().take_while(|b| now.saturating_sub(b.0) <= window).map(|b| b.1).sum();
        (bytes * 8 / window.as_millis() as u64) as u32
    }

    /// Over 10 % of the frames of the last second were lost.
    fn heavy_loss(&mut self, now: Duration) -> bool {
        let second_ago = now.saturating_sub(Duration::from_secs(1));
        for times in [&mut self.losses, &mut self.held] {
            while times.front().is_some_and(|&t| t < second_ago) {
                times.pop_front();
            }
        }
        let frames = self.frames.iter().rev().take_while(|f| f.at >= second_ago).count();
        let sent = frames + self.losses.len();
        // A handful of frames says nothing yet.
        sent >= 20 && self.losses.len() * 10 > sent
    }

    /// Slots the host held back since the last decrease, in the last second, and whether
    /// they are over 5 % of that second's slots.
    fn held_back(&self, now: Duration) -> (usize, bool) {
        let second_ago = now.saturating_sub(Duration::from_secs(1));
        let since = self.answered_until.max(second_ago);
        let held = self.held.iter().filter(|&&t| t > since).count();
        let frames = self.frames.iter().rev().take_while(|f| f.at > since).count();
        (held, frames + held >= 20 && held * 20 > frames + held)
    }

    /// Decides at `now` (call every 100 ms or so); returns the new target when it changed.
    pub fn tick(&mut self, now: Duration) -> Option<(u32, Reason)> {
        if self.still_at.is_some() {
            return None;
        }
        if let Some(goal) = self.ramp {
            return self.climb(now, goal);
        }
        let queue = self.queueing(now)?;
        let (held, short) = self.held_back(now);
        let heavy_loss = self.heavy_loss(now) || short || (held >= 2 && queue > CLEAR);
        if queue >= CONGESTED || heavy_loss {
            self.clear_since = None;
            // What the path carries is not known yet (the stream's first 100 ms): a decrease
            // now would be a guess, too deep or too shallow.
            self.rate_window(now)?;
            if self.last_decrease.is_some_and(|t| now.saturating_sub(t) < DECREASE_HOLD) {
                return None;
            }
            // Draining since the last decrease: let it work.
            if self.last_decrease.is_some() && queue < self.queue_at_decrease && !heavy_loss {
                return None;
            }
            self.queue_at_decrease = queue;
            let delivered = self.delivered_kbps(now);
            let basis = if delivered > 0 { delivered.min(self.target_kbps) } else { self.target_kbps };
            // The whole stream down to 85 % of what the path carried; the video gets that
            // less what sound and parity take.
            let overhead = if delivered > 0 { f64::from(self.overhead_kbps(now)) } else { 0.0 };
            let video = (f64::from(basis) + overhead) * BACKOFF - overhead;
            let next = (video.max(0.0) as u32).clamp(self.limits.min_kbps, self.limits.max_kbps);
            self.last_decrease = Some(now);
            self.answered_until = now;
            self.probed = None;
            self.streak = 0;
            return self.set(next, Reason::Congested);
        }
        let rose = self.probed.is_some_and(|step| {
            now.saturating_sub(step.at) <= PROBE_UNDO && step.queue.is_some_and(|at_step| queue > at_step + STEP_RISE)
        });
        if queue > CLEAR || held > 0 || rose {
            self.clear_since = None;
            self.streak = 0;
            let queued_since = *self.queued_since.get_or_insert(now);
            // A queue right after a step up: the step went past what the path carries. A
            // queue that stands: the stream sits just above it.
            let before = match self.probed.take() {
                Some(step) if now.saturating_sub(step.at) <= PROBE_UNDO => step.before,
                _ if now.saturating_sub(queued_since) >= STANDING
                    && self.last_decrease.is_none_or(|t| now.saturating_sub(t) >= STANDING) =>
                {
                    self.last_decrease = Some(now);
                    self.queued_since = Some(now);
                    self.target_kbps
                }
                _ => return None,
            };
            let next = ((f64::from(before) * UNDO_TO) as u32).clamp(self.limits.min_kbps, self.limits.max_kbps);
            self.knee = Some((now, next));
            return self.set(next, Reason::Congested);
        }
        self.queued_since = None;
        self.last_decrease = None;
        let since = *self.clear_since.get_or_insert(now);
        if now.saturating_sub(since) >= PROBE_AFTER && now.saturating_sub(self.last_probe) >= PROBE_EVERY {
            let growth = PROBE_GROWTH.powi(self.streak.min(8) as i32);
            let mut step = (1.0 + (PROBE_STEP - 1.0) * growth).min(RAMP_STEP);
            let mut cap = self.limits.max_kbps;
            match self.knee {
                Some((at, _)) if now.saturating_sub(at) >= KNEE_FORGET => self.knee = None,
                Some((at, knee)) if now.saturating_sub(at) < KNEE_HOLD => cap = cap.min(knee),
                Some((_, knee)) if f64::from(self.target_kbps) < f64::from(knee) * 1.1 => step = KNEE_STEP,
                _ => {}
            }
            let next = ((f64::from(self.target_kbps) * step).ceil() as u32).min(cap);
            if next <= self.target_kbps {
                // No step (held under the knee, or at the rate asked): nothing was found, so
                // the streak does not grow.
                return None;
            }
            // Only a full step found room worth growing on.
            self.streak = if step >= PROBE_STEP { self.streak + 1 } else { 0 };
            self.last_probe = now;
            self.probed = Some(Step { at: now, before: self.target_kbps, queue: Some(queue) });
            return self.set(next, Reason::Probe);
        }
        None
    }

    fn set(&mut self, kbps: u32, reason: Reason) -> Option<(u32, Reason)> {
        (kbps != self.target_kbps).then(|| {
            self.target_kbps = kbps;
            (kbps, reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// A simulated path: a bottleneck of `rate_kbps` with a FIFO queue, 10 ms one way, and
    /// an encoder that makes 60 frames a second at the controller's target.
    struct Path {
        now: Duration,
        rate_kbps: u32,
        /// When the bottleneck is free again.
        busy_until: Duration,
    }

    impl Path {
        /// Sends one frame at `self.now`; returns (arrival, bytes), or `None` when the
        /// bottleneck's queue (100 ms, as the relay's) is full and the frame is lost.
        fn send(&mut self, kbps: u32) -> Option<(Duration, u64)> {
            let bytes = u64::from(kbps) * 1000 / 8 / 60;
            if self.busy_until > self.now + ms(100) {
                return None;
            }
            let start = self.busy_until.max(self.now);
            self.busy_until = start + Duration::from_micros(bytes * 8 * 1000 / u64::from(self.rate_kbps));
            Some((self.busy_until + ms(10), bytes))
        }
    }

    /// Runs `secs` seconds; returns the target after each second.
    fn run(c: &mut Controller, path: &mut Path, secs: u64, mut rate_at: impl FnMut(Duration) -> u32) -> Vec<u32> {
        let mut per_second = Vec::new();
        let mut in_flight: VecDeque<(Duration, u64, Duration)> = VecDeque::new();
        let end = path.now + Duration::from_secs(secs);
        let mut next_frame = path.now;
        let mut next_tick = path.now;
        while path.now < end {
            path.rate_kbps = rate_at(path.now);
            if path.now >= next_frame {
                match path.send(c.target_kbps()) {
                    Some((arrival, bytes)) => in_flight.push_back((arrival, bytes, path.now)),
                    None => c.on_loss(path.now),
                }
                next_frame += Duration::from_micros(16_667);
            }
            while in_flight.front().is_some_and(|f| f.0 <= path.now) {
                let (arrival, bytes, captured) = in_flight.pop_front().unwrap();
                c.on_frame(arrival, bytes, arrival.saturating_sub(captured).as_micros() as i64 + 7_000_000);
            }
            if path.now >= next_tick {
                c.tick(path.now);
                next_tick += ms(100);
            }
            path.now += ms(1);
            if path.now.as_millis().is_multiple_of(1000) {
                per_second.push(c.target_kbps());
            }
        }
        per_second
    }

    #[test]
    fn a_rate_drop_is_followed_within_two_seconds_and_the_rate_recovers_within_ten() {
        let mut c = Controller::new(Limits { min_kbps: 1000, max_kbps: 30_000 }, 25_000);
        let mut path = Path { now: Duration::ZERO, rate_kbps: 30_000, busy_until: Duration::ZERO };
        let before = run(&mut c, &mut path, 5, |_| 30_000);
        assert!(*before.last().unwrap() >= 25_000, "a clear path keeps its rate: {before:?}");
        // The path drops to 5 Mbit/s.
        let drop = path.now;
        let mut fitted = None;
        let after = run(&mut c, &mut path, 4, |_| 5_000);
        for (i, kbps) in after.iter().enumerate() {
            if *kbps <= 5_000 && fitted.is_none() {
                fitted = Some(i + 1);
            }
        }
        assert!(fitted.is_some_and(|s| s <= 2), "fits within 2 s: {after:?}");
        let queue = c.queueing(path.now).unwrap();
        assert!(queue < CLEAR * 2, "the queue drained: {queue:?} ({after:?})");
        assert!(path.now.saturating_sub(drop) >= Duration::from_secs(4));
        // The path comes back: within 10 s the target is near the maximum again.
        let back = run(&mut c, &mut path, 10, |_| 30_000);
        assert!(*back.last().unwrap() >= 25_000, "recovered within 10 s: {back:?}");
        assert!(back.iter().all(|&k| k <= 30_000));
    }

    #[test]
    fn a_path_that_widens_again_is_climbed_in_steps_that_grow_while_they_find_no_queue() {
        // Settled on a 3 Mbit/s path for 20 s (steps there found its knee), then it is 12.
        let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 12_000 }, 2500);
        let mut path = Path { now: Duration::ZERO, rate_kbps: 3000, busy_until: Duration::ZERO };
        let narrow = run(&mut c, &mut path, 20, |_| 3000);
        assert!(narrow[15..].iter().all(|&k| (2000..=3300).contains(&k)), "settled at the path: {narrow:?}");
        let wide = run(&mut c, &mut path, 8, |_| 12_000);
        // 70 % of the wider path within 5 s (12 % steps every half second took 9).
        assert!(wide[4] >= 8400, "climbed back within 5 s: {wide:?}");
        // Never more than two steps of 50 % a second, and never past what was asked.
        let mut before = narrow[19];
        for &k in &wide {
            assert!(f64::from(k) <= f64::from(before) * RAMP_STEP * RAMP_STEP + 1.0, "{before} → {k}: {wide:?}");
            before = k;
        }
        assert!(wide.iter().all(|&k| k <= 12_000));
    }

    #[test]
    fn the_start_climbs_to_the_rate_asked_on_a_wide_path_and_stops_short_of_a_narrow_ones_queue() {
        let limits = Limits { min_kbps: 500, max_kbps: 10_000 };
        // A wide path: at the rate asked within a second, never past it.
        let mut c = Controller::starting(limits);
        assert_eq!(c.target_kbps(), 2_500);
        assert!(c.ramping());
        let mut path = Path { now: Duration::ZERO, rate_kbps: 30_000, busy_until: Duration::ZERO };
        let wide = run(&mut c, &mut path, 2, |_| 30_000);
        assert_eq!(wide, [10_000, 10_000]);
        assert!(!c.ramping());
        // A path of 3 Mbit/s: the climb stops at the first queue, takes its step back, and
        // no frame is lost to the router's queue (the old start, at 10 Mbit/s, filled it at
        // once).
        let mut c = Controller::starting(limits);
        let mut path = Path { now: Duration::ZERO, rate_kbps: 3_000, busy_until: Duration::ZERO };
        let narrow = run(&mut c, &mut path, 3, |_| 3_000);
        assert!(c.losses.is_empty(), "frames lost at the start: {narrow:?}");
        assert!(narrow.iter().all(|&k| k <= 3_000), "{narrow:?}");
        assert!(c.knee.is_some(), "the climb found the path's knee");
        let mut old = Controller::new(limits, 10_000);
        let mut path = Path { now: Duration::ZERO, rate_kbps: 3_000, busy_until: Duration::ZERO };
        run(&mut old, &mut path, 1, |_| 3_000);
        assert!(!old.losses.is_empty(), "the model does not show the old start's losses");
    }

    #[test]
    fn a_climb_step_waits_for_a_round_trip_and_the_frames_made_at_its_rate() {
        // Frames every 16 ms with no queue at all; when do the climb's steps come? (From a
        // quarter of the rate asked, four steps reach it.)
        let steps = |rtt_ms: u64| {
            let mut c = Controller::starting(Limits { min_kbps: 500, max_kbps: 100_000 });
            c.set_rtt(ms(rtt_ms));
            let mut at = Vec::new();
            for t in 0..3_000u64 {
                if t % 16 == 0 {
                    c.on_frame(ms(t), 1_000, 10_000);
                }
                if let Some((_, Reason::Probe)) = c.tick(ms(t)) {
                    at.push(t);
                }
            }
            at.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        };
        // A short path: every 100 ms, as before.
        let short = steps(20);
        assert!(short.len() >= 3 && short.iter().all(|&d| (100..=116).contains(&d)), "{short:?}");
        // 200 ms of round trip: each step waits for it and three frames (48 ms).
        let long = steps(200);
        assert!(long.len() >= 3 && long.iter().all(|&d| (248..=264).contains(&d)), "{long:?}");
    }

    #[test]
    fn a_decrease_leaves_the_video_what_the_path_carried_less_sound_and_parity() {
        // 3 Mbit/s arrive: 2 of video, 1 of sound and parity; then a queue builds.
        let decrease = |overhead_bytes: u64| {
            let mut c = Controller::new(Limits { min_kbps: 300, max_kbps: 10_000 }, 10_000);
            for i in 0..60u64 {
                let at = ms(i * 10);
                c.on_frame(at, 2_500, 20_000 + if i > 40 { 60_000 } else { 0 });
                c.on_overhead(at, overhead_bytes);
                c.on_overhead(at + ms(5), overhead_bytes);
            }
            let at = ms(600);
            assert_eq!(c.delivered_kbps(at), 2_000);
            assert_eq!(c.overhead_kbps(at), (overhead_bytes * 2 * 100 * 8 / 1000) as u32);
            c.tick(at).map(|(kbps, _)| kbps)
        };
        assert_eq!(decrease(0), Some(1_700), "85 % of the video alone");
        // The whole stream to 85 % of 3 Mbit/s (2550), less the 1000 the others take.
        assert_eq!(decrease(625), Some(1_550));
        // Others that take most of the path leave the video its floor.
        assert_eq!(decrease(10_000), Some(300));
    }

    #[test]
    fn the_overhead_it_keeps_is_bounded_and_counts_every_byte_in_its_window() {
        let mut c = Controller::new(Limits { min_kbps: 300, max_kbps: 10_000 }, 10_000);
        c.on_frame(ms(0), 1000, 0);
        // 100 000 datagrams within 500 ms: buckets, not entries.
        for i in 0..100_000u64 {
            c.on_overhead(Duration::from_micros(i * 5), 100);
        }
        assert!(c.overhead.len() <= MAX_OVERHEAD_BUCKETS, "{}", c.overhead.len());
        assert_eq!(c.overhead_kbps(ms(500)), 160_000, "10 MB in 500 ms");
        assert_eq!(c.overhead_kbps(ms(1100)), 0, "gone after the window");
    }

    #[test]
    fn a_step_up_that_brings_a_queue_is_taken_back_before_the_queue_reaches_congested() {
        // A path of 3 Mbit/s, settled a little under it: the probes find the knee.
        let mut c = Controller::new(Limits { min_kbps: 300, max_kbps: 10_000 }, 2_500);
        let mut path = Path { now: Duration::ZERO, rate_kbps: 3_000, busy_until: Duration::ZERO };
        let mut in_flight: VecDeque<(Duration, u64, Duration)> = VecDeque::new();
        let (mut worst_queue, mut undone, mut over_knee) = (Duration::ZERO, 0, 0);
        let mut knee = None;
        while path.now < Duration::from_secs(30) {
            if path.now.as_micros() % 16_667 < 1000
                && let Some((arrival, bytes)) = path.send(c.target_kbps())
            {
                in_flight.push_back((arrival, bytes, path.now));
            }
            while in_flight.front().is_some_and(|f| f.0 <= path.now) {
                let (arrival, bytes, captured) = in_flight.pop_front().unwrap();
                c.on_frame(arrival, bytes, arrival.saturating_sub(captured).as_micros() as i64);
            }
            if path.now.as_millis().is_multiple_of(100) {
                let before = c.target_kbps();
                match c.tick(path.now) {
                    Some((kbps, Reason::Congested)) if kbps < before && c.knee.is_some() => {
                        undone += 1;
                        knee = c.knee;
                    }
                    Some((kbps, Reason::Probe))
                        if knee.is_some_and(|(at, k)| path.now < at + KNEE_HOLD && kbps > k) =>
                    {
                        over_knee += 1;
                    }
                    _ => {}
                }
                if path.now > Duration::from_secs(3) {
                    worst_queue = worst_queue.max(c.queueing(path.now).unwrap_or_default());
                }
            }
            path.now += ms(1);
        }
        eprintln!(
            "3 Mbit/s model path: {undone} steps taken back, worst queue {worst_queue:?}, target {}",
            c.target_kbps()
        );
        assert!(undone >= 2, "the probes found the knee: {undone}");
        assert_eq!(over_knee, 0, "no step past a knee found within 2 s");
        assert!(worst_queue < CONGESTED, "the queue stayed under {CONGESTED:?}: {worst_queue:?}");
        assert!(c.target_kbps() >= 2_400, "the target stays near the path: {}", c.target_kbps());
    }

    #[test]
    fn the_first_decrease_follows_what_the_path_carried_since_the_stream_began() {
        // The session's clock was at 5 s when the first frame came (the handshake, the
        // window): 150 ms of a 3 Mbit/s path, then a queue of 60 ms. The rate counts from
        // the first frame, not over a window of which two thirds carried nothing.
        let mut c = Controller::new(Limits { min_kbps: 300, max_kbps: 10_000 }, 10_000);
        let start = ms(5000);
        for i in 0..10u64 {
            let at = start + ms(i * 15);
            c.on_frame(at, 5_625, 20_000 + if i > 3 { 60_000 } else { 0 });
            if at < start + ms(100) {
                assert_eq!(c.tick(at), None, "no decision before 100 ms of stream");
            }
        }
        let (kbps, reason) = c.tick(start + ms(150)).expect("a decrease");
        assert_eq!(reason, Reason::Congested);
        // 56 KB in 150 ms: 3 Mbit/s, and 85 % of it.
        assert!((2_400..=2_700).contains(&kbps), "{kbps}");
    }

    #[test]
    fn light_random_loss_does_not_lower_the_rate_but_heavy_loss_does() {
        let mut c = Controller::new(Limits { min_kbps: 1000, max_kbps: 20_000 }, 20_000);
        for i in 0..120u64 {
            let at = ms(i * 16);
            c.on_frame(at, 40_000, 20_000);
            if i % 50 == 0 {
                c.on_loss(at);
            }
            c.tick(at);
        }
        assert_eq!(c.target_kbps(), 20_000, "2 % of frames lost: not congestion");
        for i in 120..180u64 {
            let at = ms(i * 16);
            c.on_frame(at, 40_000, 20_000);
            if i % 4 == 0 {
                c.on_loss(at);
            }
            c.tick(at);
        }
        assert!(c.target_kbps() < 20_000, "25 % of frames lost: back off");
    }

    #[test]
    fn slots_the_host_held_back_lower_the_rate_once() {
        // The host paces: its queue stays short (transit flat), but one slot in four is held
        // back because the path does not carry 12 Mbit/s.
        let mut c = Controller::new(Limits { min_kbps: 1000, max_kbps: 12_000 }, 12_000);
        let mut changes = Vec::new();
        for i in 0..120u64 {
            let at = ms(i * 17);
            c.on_frame(at, 25_000, 20_000);
            // Held back until the first smaller frame reaches the host (a round trip later).
            let answered = changes.first().is_some_and(|&(t, _)| at > t + ms(40));
            if i >= 60 && i % 3 == 0 && !answered {
                c.on_held_back(at, 1);
            }
            if let Some(change) = c.tick(at) {
                changes.push((at, change));
            }
        }
        assert_eq!(changes.len(), 1, "{changes:?}");
        let (at, (kbps, reason)) = changes[0];
        assert_eq!(reason, Reason::Congested);
        assert!(at < ms(60 * 17 + 500), "answered within half a second: {at:?}");
        // 85 % of what arrived (25 KB every 17 ms: 11.8 Mbit/s).
        assert!((9_500..=10_200).contains(&kbps), "{kbps}");
        // The frames at the new rate all go through: no second decrease for the held-back
        // slots that were already answered.
        for i in 120..180u64 {
            let at = ms(i * 17);
            c.on_frame(at, 20_000, 20_000);
            assert_ne!(c.tick(at).map(|(_, r)| r), Some(Reason::Congested), "at {at:?}");
        }
        assert!(c.target_kbps() >= kbps, "one episode, one decrease (then probing up on a clear path)");
    }

    #[test]
    fn a_still_picture_is_an_idle_path_neither_congested_nor_clear() {
        let limits = Limits { min_kbps: 1000, max_kbps: 10_000 };
        // Two seconds of a clear 60 fps stream at 10 Mbit/s, then one frame that queued 60 ms,
        // then five seconds of nothing drawn.
        let stream = |c: &mut Controller| {
            for i in 0..120u64 {
                c.on_frame(ms(i * 16), 20_000, 5_000);
                c.tick(ms(i * 16));
            }
            c.on_frame(ms(1920), 20_000, 65_000);
        };
        let mut without = Controller::new(limits, 10_000);
        stream(&mut without);
        for t in (2000..7000).step_by(100) {
            without.tick(ms(t));
        }
        assert_eq!(without.target_kbps(), 1000, "without still words a stale queue reads as congestion");

        let mut c = Controller::new(limits, 10_000);
        stream(&mut c);
        for t in (2000..7000).step_by(100) {
            c.on_still(ms(t));
            assert_eq!(c.tick(ms(t)), None, "at {t} ms");
        }
        assert_eq!(c.target_kbps(), 10_000);
        // The display draws again, a big picture that queues: the decrease waits for 100 ms
        // of delivery, and is from the target, not from the few bytes the idle path delivered.
        c.on_frame(ms(7010), 150_000, 60_000);
        assert_eq!(c.tick(ms(7020)), None);
        assert_eq!(c.tick(ms(7110)), Some((8500, Reason::Congested)));
    }

    #[test]
    fn a_session_asked_at_its_floor_starts_there_and_does_not_climb() {
        let c = Controller::starting(Limits { min_kbps: 2000, max_kbps: 2000 });
        assert_eq!(c.target_kbps(), 2000);
        assert!(!c.ramping(), "nothing to climb to");
        let c = Controller::starting(Limits { min_kbps: 2000, max_kbps: 2001 });
        assert_eq!(c.target_kbps(), 2000);
        assert!(c.ramping(), "one kbit/s to climb");
    }

    #[test]
    fn the_climb_judges_the_newest_three_frames_by_their_median() {
        let mut c = Controller::starting(Limits { min_kbps: 500, max_kbps: 10_000 });
        c.on_frame(ms(0), 1000, 10_000);
        c.on_frame(ms(16), 1000, 10_000);
        assert_eq!(c.newest_queue(), None, "two frames say nothing yet");
        // Before three frames no step waits on them: 100 ms, or the round trip when longer.
        assert_eq!(c.ramp_wait(), RAMP_EVERY);
        c.set_rtt(ms(150));
        assert_eq!(c.ramp_wait(), ms(150) + ms(16) * 3, "a round trip and three frames");
        // One frame alone has no interval: the wait is the round trip's.
        let mut one = Controller::starting(Limits { min_kbps: 500, max_kbps: 10_000 });
        one.on_frame(ms(0), 1000, 10_000);
        one.set_rtt(ms(150));
        assert_eq!(one.ramp_wait(), ms(150));
        // The third frame: its median is the middle one, above the lowest transit.
        c.on_frame(ms(32), 1000, 40_000);
        assert_eq!(c.newest_queue(), Some(Duration::ZERO), "one frame with a queue is not a queue");
        c.on_frame(ms(48), 1000, 25_000);
        assert_eq!(c.newest_queue(), Some(ms(15)), "the median of 10, 40 and 25 ms over 10");
    }

    #[test]
    fn the_climb_goes_on_at_a_queue_of_exactly_clear_and_ends_above_it() {
        let climb = |queue_micros: i64| {
            let mut c = Controller::starting(Limits { min_kbps: 500, max_kbps: 10_000 });
            c.on_frame(ms(0), 1000, 10_000);
            for i in 1..10u64 {
                c.on_frame(ms(i * 16), 2000, 10_000 + queue_micros);
            }
            c.tick(ms(150))
        };
        assert_eq!(climb(15_000), Some((3750, Reason::Probe)), "15 ms is clear");
        assert_eq!(climb(15_001), Some((2375, Reason::Congested)), "over 15 ms: the start's 2500 less 5 %");
    }

    #[test]
    fn a_climb_from_nothing_still_moves() {
        // Asked for 3 kbit/s with no floor: a quarter is 0, and half of 0 more is 0. Each step
        // is at least one kbit/s, so the climb ends at the rate asked, not at zero for ever.
        let mut c = Controller::starting(Limits { min_kbps: 0, max_kbps: 3 });
        assert_eq!(c.target_kbps(), 0);
        let mut steps = Vec::new();
        for i in 0..100u64 {
            c.on_frame(ms(i * 16), 10, 10_000);
            steps.extend(c.tick(ms(i * 16)).map(|(kbps, _)| kbps));
        }
        assert_eq!(steps, [1, 2, 3]);
        assert!(!c.ramping());
    }

    #[test]
    fn what_is_older_than_its_window_is_let_go_and_what_is_exactly_that_old_is_kept() {
        let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 10_000 }, 5000);
        // The lowest transit of the last 10 s: a frame 10 s old still counts, one older not.
        c.on_frame(ms(0), 1000, 1_000);
        c.on_frame(ms(1000), 1000, 5_000);
        c.on_frame(ms(11_000), 1000, 25_000);
        assert_eq!(c.frames.len(), 2);
        assert_eq!(c.queueing(ms(11_000)), Some(ms(20)), "over the frame of 1 s, 10 s before");
        // What else shares the path, in 10 ms buckets over the last 500 ms.
        c.on_overhead(ms(0), 100);
        c.on_overhead(ms(100), 100);
        c.on_overhead(ms(600), 100);
        assert_eq!(c.overhead.len(), 2, "the bucket of 500 ms before is kept, the older one not");
    }

    #[test]
    fn heavy_loss_is_over_a_tenth_of_the_last_second_counted_from_exactly_a_second_ago() {
        let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 10_000 }, 5000);
        // 18 frames in the last second, the first exactly a second before; 2 lost.
        for i in 0..18u64 {
            c.on_frame(ms(1000 + i * 50), 1000, 10_000);
        }
        c.on_loss(ms(1000));
        c.on_loss(ms(1500));
        assert!(!c.heavy_loss(ms(2000)), "2 of 20 is a tenth, not over it");
        c.on_loss(ms(1900));
        assert!(c.heavy_loss(ms(2000)), "3 of 21, the one of exactly a second ago among them");
        assert!(!c.heavy_loss(ms(2001)), "a millisecond later that one is gone: 2 of 19");
    }

    #[test]
    fn held_back_slots_count_from_after_the_last_decrease_when_over_a_twentieth() {
        let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 10_000 }, 5000);
        for i in 0..19u64 {
            c.on_frame(ms(1050 + i * 50), 1000, 10_000);
        }
        c.on_held_back(ms(1500), 1);
        assert_eq!(c.held_back(ms(2000)), (1, false), "1 of 20 slots is a twentieth, not over it");
        c.on_held_back(ms(1600), 1);
        assert_eq!(c.held_back(ms(2000)), (2, true), "2 of 21");
        c.on_held_back(ms(1000), 1);
        assert_eq!(c.held_back(ms(2000)).0, 2, "a slot held back exactly a second ago is not in the last second");
        // A decrease at 1.6 s answered the slots held back until then, its own instant's too.
        c.answered_until = ms(1600);
        assert_eq!(c.held_back(ms(2000)), (0, false));
        // The slots of the last second: a frame of exactly a second ago is not among them.
        // 2 held back beside 37 frames is over a twentieth; beside 38 it would not be.
        let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 10_000 }, 5000);
        for i in 0..38u64 {
            c.on_frame(ms(1000 + i * 25), 1000, 10_000);
        }
        c.on_held_back(ms(1500), 2);
        assert_eq!(c.held_back(ms(2000)), (2, true));
    }

    #[test]
    fn a_decrease_lets_a_draining_queue_drain_and_answers_one_that_grows() {
        let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 10_000 }, 8000);
        // 5 KB every 10 ms (4 Mbit/s): half a second with no queue, then 60 ms of queue.
        for i in 0..80u64 {
            c.on_frame(ms(i * 10), 5000, if i < 50 { 10_000 } else { 70_000 });
        }
        assert_eq!(c.tick(ms(800)), Some((3400, Reason::Congested)), "85 % of the 4 Mbit/s delivered");
        // Still congested, but less than at the decrease: it is working.
        for i in 80..110u64 {
            c.on_frame(ms(i * 10), 5000, 60_000);
        }
        assert_eq!(c.tick(ms(1100)), None, "draining: 50 ms, from 60");
        // More than at the decrease: it was not enough.
        for i in 110..140u64 {
            c.on_frame(ms(i * 10), 5000, 80_000);
        }
        assert_eq!(c.tick(ms(1400)).map(|(_, r)| r), Some(Reason::Congested), "growing: 70 ms, from 60");
    }

    #[test]
    fn a_decrease_after_half_a_second_with_nothing_delivered_is_from_the_target() {
        // The last frames queued 60 ms, then nothing arrives for 600 ms (a blackout): what
        // the path carried is unknown, so the target itself goes down, and the sound and
        // parity that still arrive are not taken off it.
        let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 10_000 }, 8000);
        for i in 0..80u64 {
            c.on_frame(ms(i * 10), 5000, if i < 50 { 10_000 } else { 70_000 });
        }
        for i in 0..=10u64 {
            c.on_overhead(ms(1300 + i * 10), 1000);
        }
        assert_eq!(c.delivered_kbps(ms(1400)), 0);
        assert!(c.overhead_kbps(ms(1400)) > 100);
        assert_eq!(c.tick(ms(1400)), Some((6800, Reason::Congested)), "85 % of the target, 8000");
    }

    #[test]
    fn held_back_slots_with_a_queue_of_exactly_clear_are_not_congestion_and_over_it_are() {
        let decide = |queue_micros: i64| {
            let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 10_000 }, 8000);
            // A second of frames, the last 300 ms with the queue given; two slots held back
            // (2 of 102: too few to count alone).
            for i in 0..100u64 {
                c.on_frame(ms(i * 10), 5000, if i < 70 { 10_000 } else { 10_000 + queue_micros });
            }
            c.on_held_back(ms(950), 2);
            c.tick(ms(1000))
        };
        assert_eq!(decide(15_000), None, "a queue of 15 ms with two slots held back: watched, not answered");
        assert_eq!(decide(15_001), Some((3400, Reason::Congested)), "over 15 ms: congested");
    }

    #[test]
    fn a_step_whose_queue_rises_5_ms_is_taken_back_even_under_clear() {
        // Frames every 16 ms with a queue of 4 ms (clear), so a step after a second; then
        // 300 ms of frames whose queue rose by `rise` µs. Returns the step and what followed.
        let after_step = |rise: i64| {
            let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 20_000 }, 4000);
            c.on_frame(ms(0), 8000, 10_000);
            let mut t = 16;
            let step = loop {
                c.on_frame(ms(t), 8000, 14_000);
                if let Some(change) = c.tick(ms(t)) {
                    break (t, change);
                }
                t += 16;
            };
            let end = t + 300;
            while t < end {
                t += 16;
                c.on_frame(ms(t), 8000, 14_000 + rise);
                if let Some(change) = c.tick(ms(t)) {
                    return (step, Some(change));
                }
            }
            (step, None)
        };
        let (step, _) = after_step(0);
        assert_eq!(step, (1024, (4480, Reason::Probe)), "a 12 % step once clear for a second");
        assert_eq!(after_step(0).1, None, "the queue that was there at the step is not the step's");
        assert_eq!(after_step(5000).1, None, "a rise of exactly 5 ms: a larger frame's sending time");
        assert_eq!(after_step(5001).1, Some((3800, Reason::Congested)), "a queue 9 ms and growing: back to 95 %");
        assert!(Duration::from_micros(14_000 + 5001 - 10_000) < CLEAR, "all under CLEAR");
    }

    #[test]
    fn after_a_knee_no_step_crosses_it_for_a_second_then_steps_stay_small_to_a_tenth_over_it() {
        // A step found the path's knee at 5000 kbit/s at 0.9 s; the path is clear since.
        let first_step = |target: u32| {
            let mut c = Controller::new(Limits { min_kbps: 500, max_kbps: 20_000 }, target);
            c.knee = Some((ms(900), 5000));
            for i in 0..30u64 {
                for j in 0..6u64 {
                    c.on_frame(ms(i * 100 + j * 16), 1000, 10_000);
                }
                let at = ms(i * 100 + 99);
                if let Some(change) = c.tick(at) {
                    return Some((at, change));
                }
            }
            None
        };
        // Clear for a second from 0.1 s, but the knee holds every step until 1.9 s; then a
        // small one (4 %).
        assert_eq!(first_step(5000), Some((ms(1999), (5200, Reason::Probe))));
        // At a tenth over the knee, a whole step again (12 %).
        assert_eq!(first_step(5500), Some((ms(1999), (6161, Reason::Probe))));
        assert_eq!(first_step(5499), Some((ms(1999), (5719, Reason::Probe))), "just under it: 4 %");
    }

    #[test]
    fn limits_hold_and_nothing_changes_without_frames() {
        let mut c = Controller::new(Limits { min_kbps: 2000, max_kbps: 8000 }, 50_000);
        assert_eq!(c.target_kbps(), 8000, "the start is clamped");
        assert_eq!(c.tick(ms(100)), None, "no frames, no signal");
        // A huge queue, again and again: never under the minimum.
        for i in 0..200u64 {
            c.on_frame(ms(i * 16), 1000, if i == 0 { 0 } else { 500_000 });
            c.tick(ms(i * 16));
        }
        assert_eq!(c.target_kbps(), 2000);
    }
}

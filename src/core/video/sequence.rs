//! Puts whole frames back in order and decides what the decoder may see.
//!
//! Frames travel on independent QUIC streams, so they can complete out of order, and a lost
//! packet delays only the frame it belongs to. This module owns the client's view of the
//! frame sequence: it delivers frames in frame-number order, waits a short, bounded time for
//! a missing frame, then declares it lost. After a loss every inter frame is undecodable
//! until a recovery point, so it drops them and asks the host for the cheapest one: a
//! recovery frame that refers only to a long-term reference the decoder holds (about a P
//! frame's size), falling back to an IDR when that does not come in time or the decoder
//! itself failed. Pure: time is a parameter; nothing here reads a clock.

use crate::video::assemble::Frame;
use crate::wire::FrameKind;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a frame never reached the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Never arrived before its wait ran out.
    Network,
    /// Arrived, but a frame it depends on was lost, so it could not be decoded.
    Undecodable,
    /// Arrived after a newer frame had already been delivered.
    Late,
    /// The decode queue was full (the decoder falls behind).
    Queue,
}

/// Tuning of the [`Sequencer`].
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How long a gap may stay open before the missing frame is declared lost. Two frame
    /// intervals at 60 fps: long enough for a stream that lost one packet to be repaired on
    /// loopback or a LAN, short enough to cost at most about two frames of stutter.
    pub gap_timeout: Duration,
    /// Frames held while waiting for a gap; when exceeded the gap is declared lost at once.
    pub max_pending: usize,
    /// How long to wait for an IDR before asking again (a request or the IDR itself can be
    /// delayed by a congested link; 250 ms is several RTTs on any network kumo targets).
    pub idr_retry: Duration,
    /// Ask for a recovery frame (from a long-term reference) first; `false`: IDRs only.
    pub ltr: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            gap_timeout: Duration::from_millis(33),
            max_pending: 8,
            idr_retry: Duration::from_millis(250),
            ltr: true,
        }
    }
}

/// How a loss was repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// A recovery frame from a long-term reference.
    Ltr,
    Idr,
}

/// What the network shell must do after feeding the sequencer.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Hand this frame to the decoder.
    Deliver(Frame),
    /// These frames will not be decoded.
    Dropped { reason: DropReason, count: u64 },
    /// Ask the host for a recovery frame from a long-term reference.
    RequestRecovery { last_good_frame: u64 },
    /// Ask the host for an IDR.
    RequestIdr { last_good_frame: u64 },
    /// A loss was repaired: the decoder has a picture again, `after` the loss was detected
    /// (declared lost, or the decode shell reported it).
    Repaired { how: Repair, after: Duration },
}

/// What the decoder can take next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Anything, in order.
    Nothing,
    /// After a loss: a recovery frame or an IDR (the decoder's own state is whole; only the
    /// chain after the loss is broken).
    RecoveryPoint,
    /// Only an IDR: nothing was decoded yet, or the decoder failed.
    Idr,
}

/// Why the decode shell lost a frame the sequencer had delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownstreamLoss {
    /// It never reached the decoder (the decode queue was full): a gap, as on the network.
    Skipped,
    /// The decoder failed on it: openh264 then needs an IDR.
    Failed,
}

/// In-order delivery with loss detection.
#[derive(Debug)]
pub struct Sequencer {
    config: Config,
    /// Next frame number the decoder can take. The host numbers frames from 0.
    next: u64,
    wait: Wait,
    /// Since when a loss is being repaired (so the next recovery point counts as a repair).
    repairing_since: Option<Duration>,
    /// When the outstanding request (recovery or IDR) was sent; `None` while none is.
    last_request: Option<Duration>,
    /// Whether that request asked for an IDR (a recovery request escalates to one).
    asked_idr: bool,
    /// Frames newer than `next`, waiting for a gap to close. Never holds `next` itself
    /// between calls: that one is delivered at once.
    pending: BTreeMap<u64, Frame>,
    /// When the current gap opened.
    gap_since: Option<Duration>,
    /// The wait for a gap, following the path's round trip (see [`Sequencer::set_rtt`]).
    gap_timeout: Duration,
    /// The wait for a recovery frame before asking for an IDR instead.
    recovery_timeout: Duration,
}

/// Longest wait for a missing frame, whatever the round trip: past this a freeze costs more
/// than an IDR.
const MAX_GAP_TIMEOUT: Duration = Duration::from_millis(200);
/// The wait before the first RTT sample: the stream's first IDR is its biggest frame and
/// crosses a path whose congestion window is still opening.
const FIRST_GAP_TIMEOUT: Duration = Duration::from_millis(100);
/// The wait for a recovery frame: the request's round trip, an encode and a frame's transfer
/// (2 RTT + 50 ms), within these bounds.
const MIN_RECOVERY_TIMEOUT: Duration = Duration::from_millis(80);
const FIRST_RECOVERY_TIMEOUT: Duration = Duration::from_millis(150);

impl Sequencer {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            next: 0,
            wait: Wait::Idr,
            repairing_since: None,
            last_request: None,
            asked_idr: false,
            pending: BTreeMap::new(),
            gap_since: None,
            gap_timeout: config.gap_timeout.max(FIRST_GAP_TIMEOUT),
            recovery_timeout: FIRST_RECOVERY_TIMEOUT.min(config.idr_retry),
        }
    }

    /// Tells the sequencer the path's round trip. A frame that lost a packet is repaired by
    /// QUIC after about 9/8 of an RTT plus the one-way trip of the copy, and a lost last packet
    /// only after a probe timeout (an RTT plus the peer's ACK delay); declaring it lost sooner
    /// trades a short wait for a recovery round trip and a bigger frame, which itself loses
    /// packets. So the wait is 2 RTT plus two frame intervals (33 ms), at least the configured
    /// one, at most 200 ms.
    pub fn set_rtt(&mut self, rtt: Duration) {
        let follow = rtt.mul_f64(2.0) + Duration::from_millis(33);
        self.gap_timeout = follow.max(self.config.gap_timeout).min(MAX_GAP_TIMEOUT);
        let recovery = rtt.mul_f64(2.0) + Duration::from_millis(50);
        self.recovery_timeout = recovery.max(MIN_RECOVERY_TIMEOUT).min(self.config.idr_retry);
    }

    /// Whether the decoder can take only a recovery point (an IDR, or after a loss a recovery
    /// frame) now.
    pub fn awaiting_recovery_point(&self) -> bool {
        self.wait != Wait::Nothing
    }

    /// Whether the decoder has had every frame up to `last_sent` (the host's newest, which a
    /// still word names) and needs nothing: then the picture on screen is the host's.
    pub fn is_current(&self, last_sent: u64) -> bool {
        self.wait == Wait::Nothing && self.pending.is_empty() && self.next == last_sent.saturating_add(1)
    }

    /// A whole frame arrived at `now`.
    pub fn on_frame(&mut self, frame: Frame, now: Duration, out: &mut Vec<Event>) {
        let number = frame.header.frame_number;
        if number < self.next {
            out.push(Event::Dropped { reason: DropReason::Late, count: 1 });
            return;
        }
        let is_idr = frame.header.kind == FrameKind::Idr;
        if self.pending.insert(number, frame).is_some() {
            // The host never repeats a frame number; keep the newer copy and count the other.
            out.push(Event::Dropped { reason: DropReason::Late, count: 1 });
        }
        if is_idr && number > self.next {
            // An IDR needs nothing before it: whatever is older is obsolete now.
            self.skip_to(number, out);
        }
        self.drain(now, out);
    }

    /// The decode shell lost `frame_number`: skipped (a gap the decoder will skip past to a
    /// recovery point) or failed on (the decoder needs an IDR).
    pub fn on_downstream_loss(&mut self, frame_number: u64, why: DownstreamLoss, now: Duration, out: &mut Vec<Event>) {
        let last_good = frame_number.saturating_sub(1);
        match why {
            DownstreamLoss::Skipped => self.lost(last_good, now, out),
            DownstreamLoss::Failed => {
                self.repairing_since.get_or_insert(now);
                let asked = self.wait == Wait::Idr && self.last_request.is_some();
                self.wait = Wait::Idr;
                if !asked {
                    self.request(true, last_good, now, out);
                }
            }
        }
    }

    /// When [`Self::on_timeout`] should next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let gap = self.gap_since.map(|t| t + self.gap_timeout);
        let retry = self.last_request.filter(|_| self.wait != Wait::Nothing).map(|t| t + self.retry_after());
        match (gap, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How long the outstanding request may go unanswered.
    fn retry_after(&self) -> Duration {
        if self.asked_idr { self.config.idr_retry } else { self.recovery_timeout }
    }

    /// Time passed: expire gaps and repeat unanswered requests, a recovery request as an IDR
    /// request (the recovery frame or the request was lost, or the host has no confirmed
    /// long-term reference).
    pub fn on_timeout(&mut self, now: Duration, out: &mut Vec<Event>) {
        if let Some(since) = self.gap_since
            && now >= since + self.gap_timeout
        {
            self.declare_gap_lost(now, out);
            self.drain(now, out);
        }
        if self.wait != Wait::Nothing
            && let Some(at) = self.last_request
            && now >= at + self.retry_after()
        {
            self.request(true, self.next.saturating_sub(1), now, out);
        }
    }

    fn drain(&mut self, now: Duration, out: &mut Vec<Event>) {
        while let Some((&first, _)) = self.pending.first_key_value() {
            if first > self.next {
                // Awaiting a recovery point, nothing before one is decodable, so there is
                // nothing to wait for; and a gap holding too many frames back is not worth
                // waiting for either.
                if self.wait != Wait::Nothing || self.pending.len() > self.config.max_pending {
                    self.declare_gap_lost(now, out);
                } else {
                    self.gap_since.get_or_insert(now);
                    return;
                }
                continue;
            }
            let Some((_, frame)) = self.pending.pop_first() else { break };
            self.next = first + 1;
            self.gap_since = None;
            let repair = match (self.wait, frame.header.kind) {
                (Wait::Nothing, _) => None,
                (_, FrameKind::Idr) => Some(Repair::Idr),
                (Wait::RecoveryPoint, FrameKind::Recovery) => Some(Repair::Ltr),
                _ => {
                    out.push(Event::Dropped { reason: DropReason::Undecodable, count: 1 });
                    if self.last_request.is_none() {
                        let idr = self.wait == Wait::Idr;
                        self.request(idr, first.saturating_sub(1), now, out);
                    }
                    continue;
                }
            };
            if let Some(how) = repair {
                if let Some(since) = self.repairing_since.take() {
                    out.push(Event::Repaired { how, after: now.saturating_sub(since) });
                }
                self.wait = Wait::Nothing;
                self.last_request = None;
            }
            out.push(Event::Deliver(frame));
        }
        self.gap_since = None;
    }

    /// Gives up on the frames missing before the oldest pending one.
    fn declare_gap_lost(&mut self, now: Duration, out: &mut Vec<Event>) {
        self.gap_since = None;
        let Some((&first, _)) = self.pending.first_key_value() else { return };
        if first > self.next {
            out.push(Event::Dropped { reason: DropReason::Network, count: first - self.next });
        }
        let last_good = self.next.saturating_sub(1);
        self.next = first;
        self.lost(last_good, now, out);
    }

    /// Frames after `last_good` will not be decoded: wait for a recovery point and ask for
    /// one (unless already waiting).
    fn lost(&mut self, last_good: u64, now: Duration, out: &mut Vec<Event>) {
        if self.wait == Wait::Nothing {
            self.wait = Wait::RecoveryPoint;
            self.repairing_since.get_or_insert(now);
            self.request(!self.config.ltr, last_good, now, out);
        }
    }

    /// Jumps to the IDR numbered `number`: pending frames before it are dropped as
    /// undecodable and the numbers never received as lost on the network.
    fn skip_to(&mut self, number: u64, out: &mut Vec<Event>) {
        let newer = self.pending.split_off(&number);
        let older = std::mem::replace(&mut self.pending, newer).len() as u64;
        if older > 0 {
            out.push(Event::Dropped { reason: DropReason::Undecodable, count: older });
        }
        let missing = number - self.next - older;
        if missing > 0 {
            out.push(Event::Dropped { reason: DropReason::Network, count: missing });
        }
        self.next = number;
        self.gap_since = None;
    }

    fn request(&mut self, idr: bool, last_good_frame: u64, now: Duration, out: &mut Vec<Event>) {
        self.last_request = Some(now);
        self.asked_idr = idr;
        out.push(if idr { Event::RequestIdr { last_good_frame } } else { Event::RequestRecovery { last_good_frame } });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameHeader;
    use proptest::prelude::*;

    fn f(number: u64, kind: FrameKind) -> Frame {
        Frame {
            header: FrameHeader {
                frame_number: number,
                capture_micros: 0,
                encode_micros: 0,
                kind,
                width: 16,
                height: 16,
                payload_len: 0,
                input_seq: 0,
                held_back: 0,
                host_behind: 0,
            },
            payload: Vec::new(),
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn delivered(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Deliver(f) => Some(f.header.frame_number),
                _ => None,
            })
            .collect()
    }

    fn dropped(events: &[Event], reason: DropReason) -> u64 {
        events
            .iter()
            .map(|e| match e {
                Event::Dropped { reason: r, count } if *r == reason => *count,
                _ => 0,
            })
            .sum()
    }

    fn idr_requests(events: &[Event]) -> usize {
        events.iter().filter(|e| matches!(e, Event::RequestIdr { .. })).count()
    }

    fn recovery_requests(events: &[Event]) -> usize {
        events.iter().filter(|e| matches!(e, Event::RequestRecovery { .. })).count()
    }

    fn idr_only() -> Config {
        Config { ltr: false, ..Config::default() }
    }

    #[test]
    fn in_order_stream_is_delivered_unchanged() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        for n in 1..100 {
            s.on_frame(f(n, FrameKind::Inter), ms(n * 16), &mut out);
        }
        assert_eq!(delivered(&out), (0..100).collect::<Vec<_>>());
        assert_eq!(out.len(), 100);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn the_wait_for_a_missing_frame_follows_the_round_trip() {
        for (rtt, wait) in [(0, 33), (40, 113), (10, 53), (1000, 200)] {
            let mut s = Sequencer::new(Config::default());
            s.set_rtt(ms(rtt));
            let mut out = Vec::new();
            s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
            // Frame 1 is missing; frame 2 opens the gap at 32 ms.
            s.on_frame(f(2, FrameKind::Inter), ms(32), &mut out);
            assert_eq!(s.poll_timeout(), Some(ms(32 + wait)), "rtt {rtt} ms");
            // Repaired just inside the wait: nothing lost, no IDR asked for.
            s.on_frame(f(1, FrameKind::Inter), ms(32 + wait - 1), &mut out);
            assert_eq!(delivered(&out), vec![0, 1, 2], "rtt {rtt} ms");
            assert!(!out.iter().any(|e| matches!(e, Event::RequestIdr { .. })));
        }
    }

    #[test]
    fn a_still_word_is_current_only_when_every_frame_up_to_it_arrived() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        assert!(!s.is_current(0), "nothing decoded yet");
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        s.on_frame(f(1, FrameKind::Inter), ms(16), &mut out);
        assert!(s.is_current(1));
        assert!(!s.is_current(2), "frame 2 is still on its way");
        assert!(!s.is_current(0), "a word older than the picture shown");
        s.on_frame(f(3, FrameKind::Inter), ms(48), &mut out);
        assert!(!s.is_current(3), "2 is missing");
        s.on_timeout(ms(48) + Config::default().gap_timeout, &mut out);
        assert!(!s.is_current(3), "waiting for a recovery point");
        assert!(!s.is_current(u64::MAX), "no overflow on a peer's number");
    }

    #[test]
    fn reordered_frames_are_put_back_in_order() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        for n in [0, 2, 1, 4, 3, 5] {
            let kind = if n == 0 { FrameKind::Idr } else { FrameKind::Inter };
            s.on_frame(f(n, kind), ms(n), &mut out);
        }
        assert_eq!(delivered(&out), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(idr_requests(&out), 0);
    }

    #[test]
    fn a_lost_frame_drops_until_the_next_idr_and_asks_for_one() {
        let mut s = Sequencer::new(idr_only());
        assert_eq!(s.gap_timeout, FIRST_GAP_TIMEOUT, "before the first RTT sample");
        s.set_rtt(Duration::ZERO);
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        s.on_frame(f(1, FrameKind::Inter), ms(16), &mut out);
        // 2 is lost
        s.on_frame(f(3, FrameKind::Inter), ms(48), &mut out);
        assert_eq!(s.poll_timeout(), Some(ms(48) + Config::default().gap_timeout));
        s.on_timeout(ms(48) + Config::default().gap_timeout, &mut out);
        assert_eq!(dropped(&out, DropReason::Network), 1);
        assert_eq!(dropped(&out, DropReason::Undecodable), 1);
        assert_eq!(idr_requests(&out), 1);
        assert!(out.contains(&Event::RequestIdr { last_good_frame: 1 }));
        s.on_frame(f(4, FrameKind::Inter), ms(90), &mut out);
        assert_eq!(dropped(&out, DropReason::Undecodable), 2);
        // The request goes unanswered: it is repeated.
        s.on_timeout(ms(81) + Config::default().idr_retry + ms(1), &mut out);
        assert_eq!(idr_requests(&out), 2);
        s.on_frame(f(5, FrameKind::Idr), ms(400), &mut out);
        s.on_frame(f(6, FrameKind::Inter), ms(416), &mut out);
        assert_eq!(delivered(&out), vec![0, 1, 5, 6]);
        assert!(!s.awaiting_recovery_point());
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn an_idr_skips_an_open_gap_at_once() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        s.on_frame(f(2, FrameKind::Inter), ms(20), &mut out);
        s.on_frame(f(3, FrameKind::Idr), ms(21), &mut out);
        assert_eq!(delivered(&out), vec![0, 3]);
        assert_eq!(dropped(&out, DropReason::Undecodable), 1);
        assert_eq!(dropped(&out, DropReason::Network), 1);
        s.on_frame(f(1, FrameKind::Inter), ms(22), &mut out);
        assert_eq!(dropped(&out, DropReason::Late), 1);
    }

    #[test]
    fn too_many_pending_frames_end_the_wait_early() {
        let config = Config::default();
        let mut s = Sequencer::new(config);
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        for n in 2..(3 + config.max_pending as u64) {
            s.on_frame(f(n, FrameKind::Inter), ms(1), &mut out);
        }
        assert_eq!(dropped(&out, DropReason::Network), 1);
        assert_eq!(recovery_requests(&out), 1);
    }

    #[test]
    fn a_stream_that_starts_without_its_idr_asks_for_one() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        s.on_frame(f(1, FrameKind::Inter), ms(0), &mut out);
        s.on_frame(f(2, FrameKind::Inter), ms(16), &mut out);
        assert_eq!(delivered(&out), Vec::<u64>::new());
        assert_eq!(idr_requests(&out), 1);
        s.on_frame(f(3, FrameKind::Idr), ms(32), &mut out);
        assert_eq!(delivered(&out), vec![3]);
    }

    #[test]
    fn a_decoder_loss_waits_for_an_idr() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        s.on_downstream_loss(0, DownstreamLoss::Failed, ms(1), &mut out);
        s.on_downstream_loss(0, DownstreamLoss::Failed, ms(2), &mut out);
        assert_eq!(idr_requests(&out), 1);
        // A failed decoder cannot use a recovery frame.
        s.on_frame(f(1, FrameKind::Recovery), ms(16), &mut out);
        s.on_frame(f(2, FrameKind::Idr), ms(32), &mut out);
        assert_eq!(delivered(&out), vec![0, 2]);
        assert!(out.iter().any(|e| matches!(e, Event::Repaired { how: Repair::Idr, .. })));
    }

    #[test]
    fn a_loss_is_repaired_by_a_recovery_frame_or_escalates_to_an_idr() {
        let mut s = Sequencer::new(Config::default());
        s.set_rtt(ms(20));
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        assert!(!out.iter().any(|e| matches!(e, Event::Repaired { .. })), "the first IDR repairs nothing");
        // 1 is lost; 2 and 3 refer to it.
        s.on_frame(f(2, FrameKind::Inter), ms(32), &mut out);
        let declared = ms(32) + s.gap_timeout;
        s.on_timeout(declared, &mut out);
        assert!(out.contains(&Event::RequestRecovery { last_good_frame: 0 }));
        assert_eq!(idr_requests(&out), 0, "a recovery frame is asked for first");
        s.on_frame(f(3, FrameKind::Inter), declared + ms(5), &mut out);
        assert_eq!(dropped(&out, DropReason::Undecodable), 2);
        // The recovery frame refers only to a long-term reference: decodable. The repair
        // counts from the loss's detection.
        s.on_frame(f(4, FrameKind::Recovery), declared + ms(21), &mut out);
        s.on_frame(f(5, FrameKind::Inter), declared + ms(37), &mut out);
        assert_eq!(delivered(&out), vec![0, 4, 5]);
        assert!(out.contains(&Event::Repaired { how: Repair::Ltr, after: ms(21) }), "{out:?}");
        assert_eq!(s.poll_timeout(), None);

        // Another loss whose recovery frame does not come: after 2 RTT + 50 ms, an IDR.
        let mut out = Vec::new();
        s.on_frame(f(7, FrameKind::Inter), ms(112), &mut out);
        s.on_timeout(ms(112) + s.gap_timeout, &mut out);
        let asked = ms(112) + s.gap_timeout;
        assert_eq!(recovery_requests(&out), 1);
        assert_eq!(s.poll_timeout(), Some(asked + ms(90)));
        s.on_timeout(asked + ms(90), &mut out);
        assert_eq!(idr_requests(&out), 1, "the recovery frame did not come: an IDR");
        // Either answer repairs it: here the IDR.
        s.on_frame(f(20, FrameKind::Idr), ms(400), &mut out);
        assert!(out.contains(&Event::Repaired { how: Repair::Idr, after: ms(400).saturating_sub(asked) }), "{out:?}");
        assert_eq!(delivered(&out), vec![20]);
    }

    #[test]
    fn a_recovery_frame_does_not_start_a_stream() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Recovery), ms(0), &mut out);
        assert_eq!(delivered(&out), Vec::<u64>::new());
        assert_eq!(idr_requests(&out), 1);
    }

    #[test]
    fn a_skipped_frame_downstream_asks_for_a_recovery_frame() {
        let mut s = Sequencer::new(Config::default());
        let mut out = Vec::new();
        s.on_frame(f(0, FrameKind::Idr), ms(0), &mut out);
        s.on_downstream_loss(1, DownstreamLoss::Skipped, ms(16), &mut out);
        assert!(out.contains(&Event::RequestRecovery { last_good_frame: 0 }));
        s.on_frame(f(1, FrameKind::Inter), ms(17), &mut out);
        s.on_frame(f(2, FrameKind::Recovery), ms(32), &mut out);
        assert_eq!(delivered(&out), vec![0, 2]);
    }

    proptest! {
        /// Whatever the order, loss and duplication, frames are delivered in strictly
        /// increasing order, and every frame number is accounted for at most once as
        /// delivered.
        #[test]
        fn delivery_is_strictly_increasing(
            arrivals in proptest::collection::vec((0u64..60, any::<bool>()), 0..200),
        ) {
            let mut s = Sequencer::new(Config::default());
            let mut out = Vec::new();
            for (i, (number, idr)) in arrivals.into_iter().enumerate() {
                let kind = if idr { FrameKind::Idr } else if number % 5 == 0 { FrameKind::Recovery } else { FrameKind::Inter };
                let now = ms(i as u64 * 5);
                s.on_timeout(now, &mut out);
                s.on_frame(f(number, kind), now, &mut out);
            }
            let d = delivered(&out);
            prop_assert!(d.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(s.pending.len() <= Config::default().max_pending + 1);
        }
    }
}

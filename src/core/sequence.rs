//! Puts whole frames back in order and decides what the decoder may see.
//!
//! Frames travel on independent QUIC streams, so they can complete out of order, and a lost
//! packet delays only the frame it belongs to. This module owns the client's view of the
//! frame sequence: it delivers frames in frame-number order, waits a short, bounded time for
//! a missing frame, then declares it lost. After a loss every inter frame is undecodable
//! until the next IDR, so it drops them and asks the host for an IDR (again if the first
//! request goes unanswered). Pure: time is a parameter; nothing here reads a clock.

use super::assemble::Frame;
use super::wire::FrameKind;
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
}

impl Default for Config {
    fn default() -> Self {
        Self { gap_timeout: Duration::from_millis(33), max_pending: 8, idr_retry: Duration::from_millis(250) }
    }
}

/// What the network shell must do after feeding the sequencer.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Hand this frame to the decoder.
    Deliver(Frame),
    /// These frames will not be decoded.
    Dropped { reason: DropReason, count: u64 },
    /// Ask the host for an IDR.
    RequestIdr { last_good_frame: u64 },
}

/// In-order delivery with loss detection.
#[derive(Debug)]
pub struct Sequencer {
    config: Config,
    /// Next frame number the decoder can take. The host numbers frames from 0.
    next: u64,
    /// Nothing decodable yet, or a loss happened: only an IDR can be decoded now.
    awaiting_idr: bool,
    /// When the current IDR request was sent; `None` while none is outstanding.
    last_idr_request: Option<Duration>,
    /// Frames newer than `next`, waiting for a gap to close. Never holds `next` itself
    /// between calls: that one is delivered at once.
    pending: BTreeMap<u64, Frame>,
    /// When the current gap opened.
    gap_since: Option<Duration>,
    /// The wait for a gap, following the path's round trip (see [`Sequencer::set_rtt`]).
    gap_timeout: Duration,
}

/// Longest wait for a missing frame, whatever the round trip: past this a freeze costs more
/// than an IDR.
const MAX_GAP_TIMEOUT: Duration = Duration::from_millis(200);
/// The wait before the first RTT sample: the stream's first IDR is its biggest frame and
/// crosses a path whose congestion window is still opening.
const FIRST_GAP_TIMEOUT: Duration = Duration::from_millis(100);

impl Sequencer {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            next: 0,
            awaiting_idr: true,
            last_idr_request: None,
            pending: BTreeMap::new(),
            gap_since: None,
            gap_timeout: config.gap_timeout.max(FIRST_GAP_TIMEOUT),
        }
    }

    /// Tells the sequencer the path's round trip. A frame that lost a packet is repaired by
    /// QUIC after about 9/8 of an RTT plus the one-way trip of the copy, and a lost last packet
    /// only after a probe timeout (an RTT plus the peer's ACK delay); declaring it lost sooner
    /// trades a short wait for an IDR round trip and a big frame, which itself loses packets.
    /// So the wait is 2 RTT plus two frame intervals (33 ms), at least the configured one, at
    /// most 200 ms.
    pub fn set_rtt(&mut self, rtt: Duration) {
        let follow = rtt.mul_f64(2.0) + Duration::from_millis(33);
        self.gap_timeout = follow.max(self.config.gap_timeout).min(MAX_GAP_TIMEOUT);
    }

    /// Whether the decoder can take only an IDR now.
    pub fn awaiting_idr(&self) -> bool {
        self.awaiting_idr
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

    /// The decode shell could not take or decode `frame_number`: the reference chain is
    /// broken until the next IDR.
    pub fn on_downstream_loss(&mut self, frame_number: u64, now: Duration, out: &mut Vec<Event>) {
        if !self.awaiting_idr {
            self.awaiting_idr = true;
            self.request_idr(frame_number.saturating_sub(1), now, out);
        }
    }

    /// When [`Self::on_timeout`] should next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let gap = self.gap_since.map(|t| t + self.gap_timeout);
        let idr = self.last_idr_request.filter(|_| self.awaiting_idr).map(|t| t + self.config.idr_retry);
        match (gap, idr) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: expire gaps and repeat unanswered IDR requests.
    pub fn on_timeout(&mut self, now: Duration, out: &mut Vec<Event>) {
        if let Some(since) = self.gap_since
            && now >= since + self.gap_timeout
        {
            self.declare_gap_lost(now, out);
            self.drain(now, out);
        }
        if self.awaiting_idr
            && let Some(at) = self.last_idr_request
            && now >= at + self.config.idr_retry
        {
            self.request_idr(self.next.saturating_sub(1), now, out);
        }
    }

    fn drain(&mut self, now: Duration, out: &mut Vec<Event>) {
        while let Some((&first, _)) = self.pending.first_key_value() {
            if first > self.next {
                // Awaiting an IDR, nothing before one is decodable, so there is nothing to wait
                // for; and a gap holding too many frames back is not worth waiting for either.
                if self.awaiting_idr || self.pending.len() > self.config.max_pending {
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
            if self.awaiting_idr && frame.header.kind != FrameKind::Idr {
                out.push(Event::Dropped { reason: DropReason::Undecodable, count: 1 });
                if self.last_idr_request.is_none() {
                    self.request_idr(first.saturating_sub(1), now, out);
                }
            } else {
                self.awaiting_idr = false;
                self.last_idr_request = None;
                out.push(Event::Deliver(frame));
            }
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
        if !self.awaiting_idr {
            self.awaiting_idr = true;
            self.request_idr(last_good, now, out);
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

    fn request_idr(&mut self, last_good_frame: u64, now: Duration, out: &mut Vec<Event>) {
        self.last_idr_request = Some(now);
        out.push(Event::RequestIdr { last_good_frame });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::wire::FrameHeader;
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
        let mut s = Sequencer::new(Config::default());
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
        assert!(!s.awaiting_idr());
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
        assert_eq!(idr_requests(&out), 1);
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
        s.on_downstream_loss(0, ms(1), &mut out);
        s.on_downstream_loss(0, ms(2), &mut out);
        assert_eq!(idr_requests(&out), 1);
        s.on_frame(f(1, FrameKind::Inter), ms(16), &mut out);
        s.on_frame(f(2, FrameKind::Idr), ms(32), &mut out);
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
                let kind = if idr { FrameKind::Idr } else { FrameKind::Inter };
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

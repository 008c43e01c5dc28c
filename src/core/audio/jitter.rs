//! The audio jitter buffer: packets in, in network order and time; one packet (or "conceal
//! this one") out per playout slot, in device time.
//!
//! Owns the playout policy of the audio path:
//! - **Adaptive delay.** It measures each packet's transit (arrival minus capture stamp) and
//!   keeps the spread between the fastest and the 95th-percentile transit of the last 200
//!   packets; the target depth is that spread plus one packet, in whole packets, from 2 to 20
//!   (10–100 ms of 5 ms packets): two packets, so that a packet arriving a little after the
//!   device asks for it is not lost to phase alone. It starts playing once that much is
//!   buffered. The shell may raise the target (a floor) to hold audio back for A/V sync.
//! - **Loss and lateness.** A slot whose packet has not arrived is concealed (the shell runs
//!   Opus packet-loss concealment, or FEC from the next packet when it has it); a packet that
//!   arrives after its slot is dropped and counted as late.
//! - **Learning from lateness.** A late packet means playout runs ahead of the stream,
//!   whatever the cause (a host or device that works in bursts, a stall that moved the
//!   stream later, a starved thread), and transit alone may not show it. Each late packet
//!   adds one packet to the target (decaying by one every 2 s without lateness), and the
//!   buffer stretches at once: the next slots are concealment that consumes no packet
//!   until the depth is back at target, rather than waiting for the slow rate correction.
//! - **Clock drift.** The host's and the device's clocks differ (0.1 % is common). The buffer
//!   tells the shell a playout rate near 1.0, from a smoothed depth error, for a small
//!   resampling, so the depth neither grows without bound nor runs dry; a depth far over target
//!   (a burst after a stall) is cut by dropping the oldest packets.
//!
//! Pure: the payload is opaque, and time comes in as arguments.

use std::collections::BTreeMap;
use std::time::Duration;

/// Packets held at most (beyond that the oldest is dropped): 640 ms of 10 ms packets.
pub const MAX_PACKETS: usize = 64;
/// Transit samples the delay estimate looks at.
const WINDOW: usize = 200;
/// Consecutive empty slots after which the buffer waits to refill before playing again.
const REPRIME_AFTER: u32 = 5;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Staleness {
    Fresh,
    Late,
    Restarted,
}

/// Packets over target at which the buffer is cut back to target at once (a stall); below
/// that the playout rate drains the excess, inaudibly.
const CUT_EXCESS: usize = 10;
/// Most packets of target added for lateness.
const MAX_LATE_BOOST: usize = 10;
/// Time without a late packet after which the lateness boost drops by one packet.
const LATE_BOOST_DECAY_MICROS: u64 = 2_000_000;
/// Late packets closer together than this are one event (a stall makes many late at once):
/// one packet of boost for all of them.
const LATE_EVENT_MICROS: u64 = 100_000;
/// Largest playout-rate correction: ±0.5 % (inaudible as pitch, corrects 5 ms a second).
pub const MAX_RATE_CORRECTION: f64 = 0.005;

/// What to play in the next slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout<T> {
    /// This packet.
    Play { seq: u64, payload: T },
    /// The packet for `seq` is missing: conceal it.
    Conceal { seq: u64 },
    /// Playout is ahead of the stream: play concealment (an extension of what was played)
    /// without using up a packet, to deepen the buffer.
    Stretch,
    /// Not started (or refilling after the stream stopped): play silence, nothing is lost.
    Wait,
}

/// Counters of the buffer's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub concealed: u64,
    /// Slots with nothing buffered at all after playing had started.
    pub underruns: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Dropped to cut an overfull buffer.
    pub dropped: u64,
    /// Slots of concealment inserted to deepen the buffer after late packets.
    pub stretched: u64,
}

/// The jitter buffer.
#[derive(Debug, Clone)]
pub struct JitterBuffer<T> {
    packet: Duration,
    /// Packets by sequence, with their capture stamps.
    pending: BTreeMap<u64, (u64, T)>,
    next_seq: Option<u64>,
    /// The last slot handed out (played or concealed) and the capture stamp of its audio,
    /// kept across re-priming: a packet for a slot already filled is late, not played again,
    /// unless its audio is newer (the sender restarted its numbering).
    handed_out: Option<(u64, u64)>,
    playing: bool,
    empty_slots: u32,
    transits: Vec<i64>,
    transit_next: usize,
    target: usize,
    /// Least target the shell asked for (A/V sync holding audio back), in packets.
    floor: usize,
    /// Smoothed depth minus target, in packets.
    error: f64,
    /// Packets of target added because packets came late, and when the last one did.
    late_boost: usize,
    last_late_micros: u64,
    /// Slots of stretch still to insert.
    stretch: usize,
    pub stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    /// A buffer for packets of `packet` duration each.
    pub fn new(packet: Duration) -> Self {
        Self {
            packet,
            pending: BTreeMap::new(),
            next_seq: None,
            handed_out: None,
            playing: false,
            empty_slots: 0,
            transits: Vec::with_capacity(WINDOW),
            transit_next: 0,
            target: 2,
            floor: 0,
            error: 0.0,
            late_boost: 0,
            last_late_micros: 0,
            stretch: 0,
            stats: JitterStats::default(),
        }
    }

    /// A packet arrived at `arrival_micros` (client clock) that the host captured at
    /// `capture_micros` (host clock; only differences matter).
    pub fn push(&mut self, seq: u64, capture_micros: u64, arrival_micros: u64, payload: T) {
        self.stats.received += 1;
        let transit = (arrival_micros as i64).wrapping_sub(capture_micros as i64);
        if self.transits.len() < WINDOW {
            self.transits.push(transit);
        } else {
            self.transits[self.transit_next] = transit;
        }
        self.transit_next = (self.transit_next + 1) % WINDOW;
        if self.late_boost > 0 && arrival_micros.saturating_sub(self.last_late_micros) >= LATE_BOOST_DECAY_MICROS {
            self.late_boost -= 1;
            self.last_late_micros = arrival_micros;
        }
        self.update_target();
        match self.staleness(seq, capture_micros) {
            Staleness::Fresh => {}
            Staleness::Late => {
                self.stats.late += 1;
                if self.late_boost == 0 || arrival_micros.saturating_sub(self.last_late_micros) >= LATE_EVENT_MICROS {
                    self.late_boost = (self.late_boost + 1).min(MAX_LATE_BOOST);
                }
                self.last_late_micros = arrival_micros;
                self.update_target();
                if self.playing {
                    self.stretch = self.target.saturating_sub(self.depth());
                }
                return;
            }
            Staleness::Restarted => {
                // The sender started its numbering again: forget the old stream.
                self.pending.clear();
                self.playing = false;
                self.next_seq = None;
                self.handed_out = None;
            }
        }
        if self.pending.contains_key(&seq) {
            self.stats.duplicates += 1;
            return;
        }
        self.pending.insert(seq, (capture_micros, payload));
        while self.pending.len() > MAX_PACKETS {
            if let Some((dropped, _)) = self.pending.pop_first()
                && self.next_seq.is_some_and(|next| dropped >= next)
            {
                // The packet due next is gone: move on rather than conceal buffered audio.
                self.next_seq = Some(dropped.saturating_add(1));
            }
            self.stats.dropped += 1;
        }
    }

    /// A redundant copy of packet `seq` (carried by a later datagram). It fills the slot only
    /// if that packet is missing and not yet due-and-gone; returns whether it did. It does
    /// not count as received, nor enter the delay estimate.
    pub fn insert_redundant(&mut self, seq: u64, capture_micros: u64, payload: T) -> bool {
        if self.staleness(seq, capture_micros) != Staleness::Fresh || self.pending.contains_key(&seq) {
            return false;
        }
        if self.next_seq.is_none()
            && self.pending.first_key_value().is_some_and(|(&first, _)| seq.saturating_add(1) < first)
        {
            // Before playout starts, nothing older than right before the first packet helps.
            return false;
        }
        if self.pending.len() >= MAX_PACKETS {
            return false;
        }
        self.pending.insert(seq, (capture_micros, payload));
        true
    }

    /// Holds playout at least `packets` deep (at most 20): the shell's A/V sync holds audio
    /// back this way when it would otherwise play before its picture.
    pub fn set_floor(&mut self, packets: usize) {
        self.floor = packets.min(20);
        self.update_target();
    }

    /// Whether a packet for `seq` (captured at `capture_micros`) comes after its slot was
    /// handed out. A lower number with newer audio than what was handed out means the sender
    /// started its numbering again.
    fn staleness(&self, seq: u64, capture_micros: u64) -> Staleness {
        let Some((handed, handed_capture)) = self.handed_out else { return Staleness::Fresh };
        let next = self.next_seq.unwrap_or(handed.saturating_add(1));
        if seq >= next {
            Staleness::Fresh
        } else if capture_micros > handed_capture.saturating_add(self.packet.as_micros() as u64) {
            Staleness::Restarted
        } else {
            Staleness::Late
        }
    }

    /// The target the network alone asks for (without the A/V floor): the transit spread's,
    /// plus what late packets added. A/V sync builds its floor on this, so it must include the
    /// lateness boost, or a floor step could land below the depth the buffer already keeps.
    pub fn network_target(&self) -> usize {
        (self.target_from_transits() + self.late_boost).min(20)
    }

    fn update_target(&mut self) {
        self.target = self.network_target().max(self.floor);
    }

    fn target_from_transits(&self) -> usize {
        let mut sorted = self.transits.clone();
        sorted.sort_unstable();
        let Some(&min) = sorted.first() else { return 2 };
        let p95 = sorted[(sorted.len() - 1) * 95 / 100];
        let spread = p95.saturating_sub(min).max(0) as f64;
        let packet = self.packet.as_micros().max(1) as f64;
        ((spread + packet) / packet).ceil().clamp(2.0, 20.0) as usize
    }

    /// The packet (or concealment) for the next playout slot. Call once per packet duration
    /// of device time.
    pub fn pop(&mut self) -> Playout<T> {
        let depth = self.depth();
        if !self.playing {
            if depth < self.target.max(1) {
                return Playout::Wait;
            }
            self.playing = true;
            self.next_seq = self.pending.first_key_value().map(|(s, _)| *s);
        }
        // A buffer far over target (a burst after a stall, or a device that started late) is
        // cut to the target at once: play the newest audio rather than stay late.
        let cut_to = if self.depth() > self.target + CUT_EXCESS { self.target } else { usize::MAX };
        while self.depth() > cut_to {
            if let Some((seq, _)) = self.pending.pop_first() {
                self.stats.dropped += 1;
                self.next_seq = Some(seq.saturating_add(1));
            }
        }
        if self.stretch > 0 {
            self.stretch -= 1;
            if self.depth() < self.target {
                self.stats.stretched += 1;
                return Playout::Stretch;
            }
            self.stretch = 0;
        }
        self.error = self.error * 0.98 + (self.depth() as f64 - self.target as f64) * 0.02;
        let Some(seq) = self.next_seq else { return Playout::Wait };
        self.next_seq = Some(seq.saturating_add(1));
        let packet = self.packet.as_micros() as u64;
        let expected_capture = self.handed_out.map_or(0, |(_, c)| c.saturating_add(packet));
        if let Some((capture, payload)) = self.pending.remove(&seq) {
            self.handed_out = Some((seq, capture));
            self.empty_slots = 0;
            self.stats.played += 1;
            return Playout::Play { seq, payload };
        }
        self.handed_out = Some((seq, expected_capture));
        self.stats.concealed += 1;
        if self.pending.is_empty() {
            self.stats.underruns += 1;
            self.empty_slots += 1;
            if self.empty_slots >= REPRIME_AFTER {
                // The stream stopped: wait to refill rather than conceal forever, from whatever
                // sequence the sender resumes with.
                self.playing = false;
                self.empty_slots = 0;
                self.next_seq = None;
            }
        }
        Playout::Conceal { seq }
    }

    /// Packets buffered at or after the next slot.
    pub fn depth(&self) -> usize {
        match self.next_seq {
            Some(next) => self.pending.range(next..).count(),
            None => self.pending.len(),
        }
    }

    /// The target depth in packets.
    pub fn target(&self) -> usize {
        self.target
    }

    /// How fast the device should consume audio relative to its clock: above 1.0 when the
    /// buffer runs deep (the host's clock is fast), below when it runs shallow. The shell
    /// resamples by this ratio.
    pub fn playout_rate(&self) -> f64 {
        1.0 + (self.error * 0.002).clamp(-MAX_RATE_CORRECTION, MAX_RATE_CORRECTION)
    }

    /// The audio buffered, as a duration.
    pub fn buffered(&self) -> Duration {
        self.packet * self.depth() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::XorShift;

    const PACKET_US: u64 = 10_000;

    struct Simulated {
        stats: JitterStats,
        max_depth: usize,
        final_target: usize,
        depth_after_warmup: Vec<usize>,
    }

    /// Runs `seconds` of audio: the host sends packet `i` at `i * packet * host_rate`, it
    /// arrives `transit(i)` later (None: lost); the device pulls one packet per
    /// `packet / playout_rate` of its own time.
    fn simulate(seconds: u64, host_rate: f64, mut transit: impl FnMut(u64) -> Option<u64>) -> Simulated {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        let n = seconds * 1_000_000 / PACKET_US;
        let mut arrivals: Vec<(u64, u64, u64)> = (0..n)
            .filter_map(|i| {
                let capture = (i as f64 * PACKET_US as f64 * host_rate) as u64;
                transit(i).map(|t| (capture + t, i, capture))
            })
            .collect();
        arrivals.sort_unstable();
        let mut next_arrival = 0;
        let mut device_time = 0.0f64;
        let mut out =
            Simulated { stats: JitterStats::default(), max_depth: 0, final_target: 0, depth_after_warmup: Vec::new() };
        // Stop with the last arrival: past it the stream is simply over.
        let end = ((n * PACKET_US) as f64).min(arrivals.last().map_or(0.0, |a| a.0 as f64));
        while device_time < end {
            while next_arrival < arrivals.len() && arrivals[next_arrival].0 as f64 <= device_time {
                let (at, seq, capture) = arrivals[next_arrival];
                jb.push(seq, capture, at, ());
                next_arrival += 1;
            }
            jb.pop();
            out.max_depth = out.max_depth.max(jb.depth());
            if device_time > 5_000_000.0 {
                out.depth_after_warmup.push(jb.depth());
            }
            device_time += PACKET_US as f64 / jb.playout_rate();
        }
        out.stats = jb.stats;
        out.final_target = jb.target();
        out
    }

    #[test]
    fn steady_network_plays_everything_with_a_small_delay() {
        let o = simulate(60, 1.0, |_| Some(20_000));
        assert_eq!(o.stats.concealed, 0, "{:?}", o.stats);
        assert_eq!(o.final_target, 2, "the smallest target: 20 ms");
        assert!(o.max_depth <= 4, "max depth {}", o.max_depth);
    }

    #[test]
    fn jitter_raises_the_target_just_enough() {
        let mut rng = XorShift::from_state(7);
        let o = simulate(60, 1.0, |_| Some(20_000 + rng.next_u64() % 30_000));
        // 30 ms of spread: about 3-4 packets of target, and almost nothing concealed.
        assert!((4..=5).contains(&o.final_target), "target {}", o.final_target);
        assert!(o.stats.concealed * 100 < o.stats.played, "{:?}", o.stats);
        assert!(o.max_depth <= o.final_target + 5, "max depth {}", o.max_depth);
    }

    #[test]
    fn bursts_are_smoothed_out() {
        // Packets held back and released five at a time (a Wi-Fi burst every 50 ms).
        let o = simulate(60, 1.0, |i| Some(20_000 + (4 - i % 5) * PACKET_US));
        assert!((5..=6).contains(&o.final_target), "target {}", o.final_target);
        assert!(o.stats.concealed * 200 < o.stats.played, "{:?}", o.stats);
        assert!(o.max_depth <= 12, "max depth {}", o.max_depth);
    }

    #[test]
    fn a_device_that_pulls_in_bursts_deepens_the_buffer_once() {
        // Transit is steady, so transit alone asks for 2 packets; but the device takes 4
        // packets at a time every 40 ms (a large device period), so the last of each burst
        // is due before it arrives. Late packets must deepen the buffer, not keep coming.
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        let (mut seq, mut late_after_20_s) = (0u64, 0);
        for tick in 0..30_000u64 {
            // 1 ms ticks: a packet arrives every 10 ms (20 ms after capture)...
            let now = tick * 1_000;
            if now >= 20_000 && (now - 20_000) % PACKET_US == 0 {
                jb.push(seq, seq * PACKET_US, now, ());
                seq += 1;
            }
            // ...and the device takes 4 slots every 40 ms, just before the next arrival.
            if now % 40_000 == 35_000 {
                for _ in 0..4 {
                    jb.pop();
                }
            }
            if tick == 20_000 {
                late_after_20_s = jb.stats.late;
            }
        }
        assert!(jb.stats.late <= 10, "late packets keep coming: {:?}", jb.stats);
        assert_eq!(jb.stats.late, late_after_20_s, "still late after 20 s: {:?}", jb.stats);
        assert!(jb.stats.stretched > 0, "{:?}", jb.stats);
    }

    #[test]
    fn lateness_boost_decays_without_late_packets() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        for seq in 0..3 {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US + 1_000, ());
        }
        for _ in 0..4 {
            jb.pop();
        }
        // Packet 3's slot was concealed: it is late, and the target grows by one packet,
        // with stretch slots to get there.
        jb.push(3, 3 * PACKET_US, 4 * PACKET_US + 1_000, ());
        assert_eq!(jb.stats.late, 1);
        assert_eq!(jb.target(), 3);
        assert_eq!(jb.network_target(), 3, "A/V sync's floor must start above the boost");
        assert_eq!(jb.pop(), Playout::Stretch);
        // Steady packets for 5 s: the boost is gone.
        for seq in 4..504 {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US + 1_000, ());
            jb.pop();
        }
        assert_eq!(jb.target(), 2);
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        // Every other pair arrives swapped.
        let o = simulate(30, 1.0, |i| Some(if i % 4 == 0 { 20_000 + PACKET_US + 1 } else { 20_000 }));
        assert!(o.stats.concealed <= 1, "{:?}", o.stats);
        assert_eq!(o.stats.late, 0);
    }

    #[test]
    fn loss_is_concealed_and_counted() {
        let mut rng = XorShift::from_state(99);
        let o = simulate(60, 1.0, |_| (rng.next_u64() % 100 >= 5).then_some(20_000));
        let sent = 6000;
        let lost = sent - o.stats.received;
        assert!((200..400).contains(&lost), "lost {lost}");
        // Every lost packet is concealed (give or take the slots at the very start and end).
        assert!(o.stats.concealed.abs_diff(lost) <= 3, "concealed {} lost {lost}", o.stats.concealed);
        assert_eq!(o.stats.late, 0);
    }

    #[test]
    fn a_redundant_copy_fills_a_lost_packet_but_never_a_played_or_present_one() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        for seq in [0, 1, 3] {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US + 20_000, seq);
        }
        // Packet 4 arrives carrying 3 again (present: ignored) and packet 2's loss is repaired
        // by packet 3's copy.
        assert!(!jb.insert_redundant(3, 3 * PACKET_US, 33));
        assert!(jb.insert_redundant(2, 2 * PACKET_US, 22));
        let played: Vec<_> = (0..4).map(|_| jb.pop()).collect();
        assert_eq!(
            played,
            [
                Playout::Play { seq: 0, payload: 0 },
                Playout::Play { seq: 1, payload: 1 },
                Playout::Play { seq: 2, payload: 22 },
                Playout::Play { seq: 3, payload: 3 },
            ]
        );
        assert_eq!(jb.stats.concealed, 0);
        assert_eq!(jb.stats.received, 3, "a copy is not a received packet");
        // Too late for a slot already played.
        assert!(!jb.insert_redundant(1, PACKET_US, 11));
    }

    #[test]
    fn after_a_stall_packets_for_concealed_slots_are_late_not_replayed() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        for seq in 0..4 {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US + 1_000, ());
        }
        let mut handed = Vec::new();
        // Play 0..4, then the link stalls: 5 slots concealed, and the buffer re-primes.
        for _ in 0..9 {
            match jb.pop() {
                Playout::Play { seq, .. } | Playout::Conceal { seq } => handed.push(seq),
                Playout::Wait | Playout::Stretch => {}
            }
        }
        assert_eq!(handed, (0..9).collect::<Vec<_>>());
        // The stalled packets arrive in a burst: those for slots already concealed are late.
        for seq in 4..16 {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US + 1_000, ());
        }
        assert_eq!(jb.stats.late, 5, "{:?}", jb.stats);
        assert!(!jb.insert_redundant(8, 8 * PACKET_US, ()), "a copy for a concealed slot is late too");
        let first = (0..20).find_map(|_| match jb.pop() {
            Playout::Play { seq, .. } => Some(seq),
            _ => None,
        });
        assert_eq!(first, Some(9), "playout resumes where it was, nothing replayed");
    }

    #[test]
    fn a_floor_holds_playout_deeper_for_av_sync() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        jb.set_floor(6);
        assert_eq!(jb.target(), 6);
        for seq in 0..5 {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US + 1_000, ());
            assert_eq!(jb.pop(), Playout::Wait, "waits for 6 packets, not 2");
        }
        jb.push(5, 5 * PACKET_US, 5 * PACKET_US + 1_000, ());
        assert!(matches!(jb.pop(), Playout::Play { seq: 0, .. }));
        jb.set_floor(0);
        assert_eq!(jb.target(), 2, "the network's own need again");
    }

    #[test]
    fn late_packets_are_dropped_not_played_out_of_order() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        for seq in 0..3 {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US + 1000, seq);
        }
        assert_eq!(jb.pop(), Playout::Play { seq: 0, payload: 0 });
        assert_eq!(jb.pop(), Playout::Play { seq: 1, payload: 1 });
        jb.push(4, 4 * PACKET_US, 4 * PACKET_US + 1000, 4);
        assert_eq!(jb.pop(), Playout::Play { seq: 2, payload: 2 });
        assert_eq!(jb.pop(), Playout::Conceal { seq: 3 });
        jb.push(3, 3 * PACKET_US, 6 * PACKET_US, 3);
        assert_eq!(jb.stats.late, 1);
        // Lateness deepens the buffer: two slots of stretch before packet 4.
        assert_eq!(jb.pop(), Playout::Stretch);
        assert_eq!(jb.pop(), Playout::Stretch);
        assert_eq!(jb.pop(), Playout::Play { seq: 4, payload: 4 });
        jb.push(4, 0, 0, 4);
        assert_eq!(jb.stats.late, 2, "a copy of a played packet is late too");
    }

    #[test]
    fn host_clock_drift_neither_grows_nor_drains_the_buffer() {
        for host_rate in [1.0 / 1.001, 1.001] {
            // Host 0.1 % fast (packets come in quicker than they are played), then slow.
            let o = simulate(300, host_rate, |_| Some(20_000));
            let worst = o.depth_after_warmup.iter().copied().max().unwrap_or(0);
            assert!(worst <= o.final_target + 2, "rate {host_rate}: depth reached {worst}, target {}", o.final_target);
            assert!(o.stats.underruns <= 2, "rate {host_rate}: {:?}", o.stats);
            assert!(o.stats.dropped <= 2, "rate {host_rate}: {:?}", o.stats);
        }
    }

    #[test]
    fn a_stopped_stream_waits_to_refill_instead_of_concealing_forever() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        for seq in 0..3 {
            jb.push(seq, seq * PACKET_US, seq * PACKET_US, ());
        }
        let mut concealed = 0;
        for _ in 0..50 {
            if matches!(jb.pop(), Playout::Conceal { .. }) {
                concealed += 1;
            }
        }
        assert_eq!(concealed, REPRIME_AFTER as usize);
        assert_eq!(jb.pop(), Playout::Wait);
        // A sender that restarts its numbering (newer audio, lower numbers) is heard again,
        // not rejected as late.
        for seq in 0..3 {
            jb.push(seq, 1_000_000 + seq * PACKET_US, 1_000_000 + seq * PACKET_US, ());
        }
        assert_eq!(jb.pop(), Playout::Play { seq: 0, payload: () });
        assert_eq!(jb.stats.late, 0);
    }

    #[test]
    fn extreme_stamps_and_sequence_numbers_do_not_panic() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        jb.push(u64::MAX, u64::MAX, 0, ());
        jb.push(u64::MAX - 1, 0, u64::MAX, ());
        jb.push(0, 1 << 63, 5, ());
        for _ in 0..10 {
            jb.pop();
        }
    }

    #[test]
    fn memory_is_bounded_whatever_arrives() {
        let mut jb = JitterBuffer::new(Duration::from_micros(PACKET_US));
        for seq in (0..10_000u64).rev() {
            jb.push(seq * 7, 0, 0, vec![0u8; 10]);
        }
        assert!(jb.pending.len() <= MAX_PACKETS);
        assert!(jb.stats.dropped > 0);
    }
}

//! Clock sync between client and host: NTP's on-wire maths over kumo's probe datagrams
//! (`core::wire::ClockProbe`, `ClockReply`).
//!
//! Each probe gives four stamps: the client's send time `t1`, the host's receive time `t2`
//! and send time `t3` (host clock), and the client's receive time `t4`. As in RFC 5905, the
//! offset (host minus client) is `((t2 - t1) + (t3 - t4)) / 2` and the round-trip delay
//! `(t4 - t1) - (t3 - t2)`; the true offset lies within half the delay of the estimate,
//! whatever the asymmetry of the path. The estimator keeps the samples of a sliding window,
//! trusts those with the least delay (least queueing, so least asymmetry), and fits the drift
//! between the two clocks by least squares over the window (tens of seconds), so the offset
//! can be read for any moment in between probes. Pure: every time is a parameter.

use std::collections::VecDeque;

/// One probe's four stamps, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Client clock: probe sent.
    pub t1: u64,
    /// Host clock: probe received.
    pub t2: u64,
    /// Host clock: answer sent.
    pub t3: u64,
    /// Client clock: answer received.
    pub t4: u64,
}

impl Probe {
    /// Host minus client, µs (RFC 5905 θ).
    pub fn offset(&self) -> f64 {
        let (t1, t2, t3, t4) = (self.t1 as f64, self.t2 as f64, self.t3 as f64, self.t4 as f64);
        f64::midpoint(t2 - t1, t3 - t4)
    }

    /// Round-trip delay without the host's turnaround, µs (RFC 5905 δ); never negative.
    pub fn delay(&self) -> f64 {
        let (t1, t2, t3, t4) = (self.t1 as f64, self.t2 as f64, self.t3 as f64, self.t4 as f64);
        ((t4 - t1) - (t3 - t2)).max(0.0)
    }
}

/// The estimate at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Host clock minus client clock, µs.
    pub offset_micros: f64,
    /// The true offset is within this of the estimate (half the best delay), µs.
    pub error_micros: f64,
    /// Host clock rate relative to the client's, parts per million (positive: host fast).
    pub drift_ppm: f64,
    /// Probes the estimate rests on.
    pub samples: usize,
}

/// Samples kept: the window the drift is fitted over.
const WINDOW: usize = 64;
/// Of those, the fraction with the least delay that the fit uses.
const BEST_FRACTION: f64 = 0.25;
/// Fewest samples for a drift fit; below that the offset is the best sample's.
const MIN_FIT: usize = 8;

/// The clock-offset estimator.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    /// (client time of the sample's midpoint, offset, delay), oldest first.
    samples: VecDeque<(f64, f64, f64)>,
}

impl ClockSync {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a probe's stamps. Probes whose stamps are out of order (a broken clock or a
    /// forged answer) are ignored.
    pub fn add(&mut self, probe: Probe) {
        if probe.t4 < probe.t1 || probe.t3 < probe.t2 {
            return;
        }
        let mid = f64::midpoint(probe.t1 as f64, probe.t4 as f64);
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back((mid, probe.offset(), probe.delay()));
    }

    /// The offset at client time `at_micros`, or `None` before the first probe.
    pub fn estimate(&self, at_micros: u64) -> Option<Estimate> {
        let min_delay = self.samples.iter().map(|s| s.2).fold(f64::INFINITY, f64::min);
        if !min_delay.is_finite() {
            return None;
        }
        let mut best: Vec<&(f64, f64, f64)> = self.samples.iter().collect();
        best.sort_by(|a, b| a.2.total_cmp(&b.2));
        let keep = ((best.len() as f64 * BEST_FRACTION).ceil() as usize).max(MIN_FIT.min(best.len()));
        best.truncate(keep);
        let at = at_micros as f64;
        let (offset, drift) = if best.len() >= MIN_FIT { fit(&best, at) } else { (best[0].1, 0.0) };
        Some(Estimate {
            offset_micros: offset,
            error_micros: min_delay / 2.0,
            drift_ppm: drift * 1e6,
            samples: best.len(),
        })
    }

    /// Converts a host-clock stamp to the client's clock at that moment.
    pub fn host_to_client(&self, host_micros: u64) -> Option<f64> {
        // The offset changes by ppm; evaluating it at the host stamp is close enough.
        self.estimate(host_micros).map(|e| host_micros as f64 - e.offset_micros)
    }
}

/// Least-squares line through (time, offset): the offset at `at` and the slope.
fn fit(samples: &[&(f64, f64, f64)], at: f64) -> (f64, f64) {
    let n = samples.len() as f64;
    // Centre the times for numerical stability (they are ~1.7e15 µs).
    let t0 = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let o0 = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for s in samples {
        let (dt, d_o) = (s.0 - t0, s.1 - o0);
        sxy += dt * d_o;
        sxx += dt * dt;
    }
    // A window of under a second says nothing about drift.
    let slope = if sxx > 1e12 { sxy / sxx } else { 0.0 };
    (o0 + slope * (at - t0), slope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::XorShift;

    /// A simulated link: the host clock is `offset` µs ahead and runs `ppm` fast; the path
    /// takes `up(i)` µs to the host and `down(i)` µs back.
    fn simulate(
        offset: f64,
        ppm: f64,
        probes: u64,
        mut up: impl FnMut(u64) -> f64,
        mut down: impl FnMut(u64) -> f64,
    ) -> (ClockSync, impl Fn(f64) -> f64) {
        let host_at = move |client: f64| client + offset + (client - 1e15) * ppm / 1e6;
        let mut sync = ClockSync::new();
        for i in 0..probes {
            let t1 = 1e15 + i as f64 * 500_000.0;
            let arrive = t1 + up(i);
            let t2 = host_at(arrive);
            let t3 = t2 + 50.0;
            let leave = arrive + 50.0;
            let t4 = leave + down(i);
            sync.add(Probe { t1: t1 as u64, t2: t2 as u64, t3: t3 as u64, t4: t4 as u64 });
        }
        (sync, move |client: f64| host_at(client) - client)
    }

    /// A uniform fraction in 0..1 in steps of a millionth, as these schedules were made.
    fn unit(rng: &mut XorShift) -> f64 {
        (rng.next_u64() % 1_000_000) as f64 / 1_000_000.0
    }

    #[test]
    fn the_on_wire_maths_is_rfc_5905s() {
        // Host 1000 µs ahead, 300 µs each way, 50 µs turnaround.
        let p = Probe { t1: 10_000, t2: 11_300, t3: 11_350, t4: 10_650 };
        assert_eq!(p.offset(), 1000.0);
        assert_eq!(p.delay(), 600.0);
    }

    #[test]
    fn a_known_offset_is_recovered_within_the_bound_on_an_asymmetric_link() {
        // 3 ms up, 1 ms down (plus queueing jitter up to 4 ms either way): the naive
        // half-RTT assumption is 1 ms off, and the bound must cover it.
        let mut rng = XorShift::from_state(5);
        let mut rng2 = XorShift::from_state(9);
        let (sync, truth) = simulate(
            -2_500_000.0,
            0.0,
            60,
            |_| 3_000.0 + unit(&mut rng) * 4_000.0,
            |_| 1_000.0 + unit(&mut rng2) * 4_000.0,
        );
        let at = 1e15 + 30e6;
        let e = sync.estimate(at as u64).unwrap();
        let err = (e.offset_micros - truth(at)).abs();
        assert!(err <= e.error_micros, "off by {err} µs, bound {} µs", e.error_micros);
        assert!(e.error_micros < 2_600.0, "the bound comes from the least-delayed probes: {}", e.error_micros);
    }

    #[test]
    fn drift_is_tracked_over_tens_of_seconds() {
        // Host 100 ppm fast (8.6 s a day, a poor crystal), symmetric 2 ms ± 1 ms paths.
        let mut rng = XorShift::from_state(11);
        let mut rng2 = XorShift::from_state(12);
        let (sync, truth) = simulate(
            40_000.0,
            100.0,
            64,
            |_| 2_000.0 + unit(&mut rng) * 1_000.0,
            |_| 2_000.0 + unit(&mut rng2) * 1_000.0,
        );
        let last = 1e15 + 63.0 * 500_000.0;
        let e = sync.estimate(last as u64).unwrap();
        assert!((e.drift_ppm - 100.0).abs() < 25.0, "drift {} ppm", e.drift_ppm);
        let err = (e.offset_micros - truth(last)).abs();
        assert!(err <= e.error_micros, "off by {err} µs, bound {} µs", e.error_micros);
        // Read 5 s past the last probe, the fit still holds (a flat estimate would be 500 µs
        // behind by then).
        let later = last + 5e6;
        let e = sync.estimate(later as u64).unwrap();
        assert!(
            (e.offset_micros - truth(later)).abs() < 300.0,
            "extrapolated off by {}",
            e.offset_micros - truth(later)
        );
    }

    #[test]
    fn nonsense_stamps_are_ignored_and_nothing_panics() {
        let mut sync = ClockSync::new();
        assert!(sync.estimate(0).is_none());
        sync.add(Probe { t1: 100, t2: 0, t3: 0, t4: 50 });
        sync.add(Probe { t1: 0, t2: 100, t3: 50, t4: 10 });
        assert!(sync.estimate(0).is_none(), "out-of-order stamps are not samples");
        sync.add(Probe { t1: 0, t2: u64::MAX, t3: u64::MAX, t4: u64::MAX });
        sync.add(Probe { t1: u64::MAX - 1, t2: 0, t3: 0, t4: u64::MAX });
        let e = sync.estimate(u64::MAX).unwrap();
        assert!(e.offset_micros.is_finite() && e.error_micros.is_finite());
        for i in 0..200 {
            sync.add(Probe { t1: i, t2: i, t3: i, t4: i });
        }
        assert_eq!(sync.samples.len(), WINDOW, "bounded");
    }
}

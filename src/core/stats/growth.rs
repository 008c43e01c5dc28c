//! How fast a quantity grows over a long run (live heap bytes, resident memory): samples kept
//! in a bounded ring, and a growth rate that a few spikes cannot fake. Pure: times are
//! arguments.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;

/// Samples kept at most (a day at one a second would be 86 400; the oldest after warm-up are
/// thinned instead of dropped, see [`Growth::record`]).
pub const MAX_SAMPLES: usize = 4096;

/// Samples of one quantity over time.
#[derive(Debug, Clone)]
pub struct Growth {
    samples: VecDeque<(Duration, u64)>,
}

impl Default for Growth {
    /// Room for every sample from the start: a store that grew as it filled would itself read
    /// as heap growth (its doublings showed as about 150 kB an hour in a 10-minute soak).
    fn default() -> Self {
        Self { samples: VecDeque::with_capacity(MAX_SAMPLES) }
    }
}

/// What a run's live heap did, for `--stats-json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeapFigures {
    /// Bytes and allocations live at the end.
    pub live_bytes: u64,
    pub live_allocations: u64,
    /// Growth after the warm-up, bytes per hour (`None`: too short a run to say).
    pub growth_bytes_per_hour: Option<f64>,
    pub samples: usize,
    /// The C allocator's view over the same samples (`None` where it cannot be read: not
    /// glibc).
    pub malloc: Option<MallocFigures>,
}

/// What the process's C allocator (glibc's malloc, which Rust's system allocator calls too)
/// had at the end, and its growth after the warm-up. It sees every allocation, the C
/// libraries' (Mesa, libxcb, openh264, `PulseAudio`) as well as kumo's, which the counting
/// allocator alone cannot: in use growing where the live heap does not is a C library's;
/// held growing where in use does not is memory freed but kept (fragmentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MallocFigures {
    /// Bytes in allocations now (chunks in the arenas and those mapped alone).
    pub in_use_bytes: u64,
    /// Bytes the allocator has from the kernel for them: in use, and free but kept.
    pub held_bytes: u64,
    pub in_use_growth_bytes_per_hour: Option<f64>,
    pub held_growth_bytes_per_hour: Option<f64>,
}

impl Growth {
    /// A sample taken at `at` (time since the start). When the ring is full, every second
    /// sample of its older half is dropped, so a long run keeps its whole span at a coarser
    /// step.
    pub fn record(&mut self, at: Duration, value: u64) {
        if self.samples.len() >= MAX_SAMPLES {
            let half = self.samples.len() / 2;
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i > half || i % 2 == 1
            });
        }
        self.samples.push_back((at, value));
    }

    /// From the first sample to the last.
    pub fn span(&self) -> Duration {
        match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) => last.0.saturating_sub(first.0),
            _ => Duration::ZERO,
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Growth per hour after `warmup`: the change from the median of the first third of the
    /// samples to the median of the last third, over the time between those thirds' middles.
    /// Medians, so that a burst (a key frame's buffers, a reconnect) does not read as growth.
    /// `None` with fewer than 6 samples after the warm-up, or under 30 s of them.
    pub fn per_hour(&self, warmup: Duration) -> Option<f64> {
        let after: Vec<(Duration, u64)> = self.samples.iter().copied().filter(|(t, _)| *t >= warmup).collect();
        let third = after.len() / 3;
        if third < 2 || after.last()?.0.saturating_sub(after.first()?.0) < Duration::from_secs(30) {
            return None;
        }
        let median = |part: &[(Duration, u64)]| {
            let mut values: Vec<u64> = part.iter().map(|s| s.1).collect();
            values.sort_unstable();
            values[values.len() / 2] as f64
        };
        let middle = |part: &[(Duration, u64)]| part[part.len() / 2].0.as_secs_f64();
        let (first, last) = (&after[..third], &after[after.len() - third..]);
        let span = middle(last) - middle(first);
        (span > 0.0).then(|| (median(last) - median(first)) / span * 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_leak_shows_and_spikes_and_warm_up_do_not() {
        let s = Duration::from_secs;
        let mut flat = Growth::default();
        let mut leaking = Growth::default();
        for t in 0..600u64 {
            // Warm-up growth in the first 30 s, then flat with a spike every 50 s.
            let base = 1_000_000 + t.min(30) * 10_000;
            let spike = if t % 50 == 0 { 400_000 } else { 0 };
            flat.record(s(t), base + spike + (t * 7919) % 3000);
            leaking.record(s(t), base + spike + t * 1024);
        }
        let flat_rate = flat.per_hour(s(60)).unwrap();
        assert!(flat_rate.abs() < 50_000.0, "{flat_rate}");
        let leak_rate = leaking.per_hour(s(60)).unwrap();
        assert!((leak_rate - 1024.0 * 3600.0).abs() < 0.05 * 1024.0 * 3600.0, "{leak_rate}");
        assert_eq!(flat.per_hour(s(590)), None, "too few samples after the warm-up");
    }

    #[test]
    fn a_long_run_is_thinned_not_cut() {
        let mut g = Growth::default();
        for t in 0..20_000u64 {
            g.record(Duration::from_secs(t), t * 10);
        }
        assert!(g.len() <= MAX_SAMPLES);
        assert_eq!(g.samples.front().map(|s| s.0), Some(Duration::ZERO), "the start is kept");
        let rate = g.per_hour(Duration::from_mins(1)).unwrap();
        assert!((rate - 36_000.0).abs() < 100.0, "{rate}");
    }
}

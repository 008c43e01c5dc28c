//! A fixed-size log-bucket histogram of durations in microseconds.
//!
//! Owns latency samples for a whole session in constant memory (no sample list grows with
//! session length). Buckets are 1 % wide, so a reported percentile is within 1 % of the exact
//! value: finer than the noise of any timing kumo measures.

/// Bucket growth factor: each bucket is 1 % wider than the one before.
const GROWTH: f64 = 1.01;
/// Bucket `i` holds values up to 1.01^i µs; 2048 buckets reach 1.01^2048 µs ≈ 12 minutes,
/// far beyond any latency kumo measures (larger values land in the last bucket).
const BUCKETS: usize = 2048;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum_micros: u128,
    min_micros: u64,
    max_micros: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    ((micros as f64).ln() / GROWTH.ln()).ceil().min((BUCKETS - 1) as f64) as usize
}

/// Upper bound of a bucket in microseconds.
fn bucket_top(index: usize) -> f64 {
    GROWTH.powi(index as i32)
}

impl Histogram {
    pub fn new() -> Self {
        Self { counts: Box::new([0; BUCKETS]), count: 0, sum_micros: 0, min_micros: u64::MAX, max_micros: 0 }
    }

    pub fn record(&mut self, micros: u64) {
        self.counts[bucket_of(micros)] += 1;
        self.count += 1;
        self.sum_micros += u128::from(micros);
        self.min_micros = self.min_micros.min(micros);
        self.max_micros = self.max_micros.max(micros);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn min_micros(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min_micros)
    }

    pub fn max_micros(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max_micros)
    }

    pub fn mean_micros(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_micros as f64 / self.count as f64)
    }

    /// The value below which `q` (0..=1) of the samples lie, in microseconds; `None` when empty.
    pub fn quantile_micros(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        // Nearest-rank definition: the smallest sample with at least q·n samples at or below.
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // Report the bucket's upper bound, clamped to the exact extremes.
                return Some(bucket_top(i).clamp(self.min_micros as f64, self.max_micros as f64));
            }
        }
        Some(self.max_micros as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_has_no_quantiles() {
        let h = Histogram::new();
        assert_eq!(h.quantile_micros(0.5), None);
        assert_eq!(h.mean_micros(), None);
    }

    #[test]
    fn single_value_is_exact() {
        let mut h = Histogram::new();
        h.record(4321);
        assert_eq!(h.quantile_micros(0.5), Some(4321.0));
        assert_eq!(h.quantile_micros(0.99), Some(4321.0));
    }

    proptest! {
        #[test]
        fn quantiles_are_within_one_percent(
            mut samples in proptest::collection::vec(1u64..10_000_000, 1..500),
            q in 0.0f64..=1.0,
        ) {
            let mut h = Histogram::new();
            for &s in &samples {
                h.record(s);
            }
            samples.sort_unstable();
            let rank = ((q * samples.len() as f64).ceil() as usize).max(1);
            let exact = samples[rank - 1] as f64;
            let got = h.quantile_micros(q).unwrap();
            prop_assert!((got - exact).abs() <= exact * 0.0101 + 1.0, "q={q} exact={exact} got={got}");
        }
    }
}

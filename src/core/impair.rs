//! Network impairment for the project's UDP relay (issues 6 and 7): which packets to drop and
//! when to release the rest.
//!
//! Seeded, so a run is reproducible: the same seed and the same packet arrivals give the same
//! losses and delays. Jitter is uniform around the base delay and may reorder packets, as
//! real jitter does. Pure: arrival times come in as arguments.

use std::time::Duration;

/// What the relay does to each packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Added one-way delay.
    pub delay: Duration,
    /// Each packet's delay varies uniformly by up to this either way (never below zero).
    pub jitter: Duration,
    /// Fraction of packets dropped, 0.0..=1.0.
    pub loss: f64,
    pub seed: u64,
}

impl Default for Impairment {
    fn default() -> Self {
        Self { delay: Duration::ZERO, jitter: Duration::ZERO, loss: 0.0, seed: 1 }
    }
}

impl Impairment {
    pub fn is_none(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.loss <= 0.0
    }
}

/// Decides each packet's fate.
#[derive(Debug, Clone)]
pub struct Impairer {
    config: Impairment,
    state: u64,
    pub dropped: u64,
    pub passed: u64,
}

impl Impairer {
    pub fn new(config: Impairment) -> Self {
        // xorshift must not start at zero.
        Self { config, state: config.seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, dropped: 0, passed: 0 }
    }

    fn unit(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A packet arrived at `now`: `None` to drop it, else when to send it on.
    pub fn on_packet(&mut self, now: Duration) -> Option<Duration> {
        if self.unit() < self.config.loss {
            self.dropped += 1;
            return None;
        }
        self.passed += 1;
        let jitter = self.config.jitter.as_secs_f64() * (self.unit() * 2.0 - 1.0);
        let delay = (self.config.delay.as_secs_f64() + jitter).max(0.0);
        Some(now + Duration::from_secs_f64(delay))
    }
}

/// Parses "20ms", "1.5s", "500us" or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1e-3)
    };
    let v: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a duration (like 20ms or 1.5s)"))?;
    if !(0.0..=60.0).contains(&(v * scale)) {
        return Err(format!("`{text}` is outside 0..60 s"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Parses "5%" or "0.05" as a fraction.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v =
        if let Some(p) = t.strip_suffix('%') { p.trim().parse::<f64>().map(|v| v / 100.0) } else { t.parse::<f64>() }
            .map_err(|_| format!("`{text}` is not a fraction (like 5% or 0.05)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{text}` is outside 0..100 %"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_and_delays_follow_the_settings_and_the_seed() {
        let config =
            Impairment { delay: Duration::from_millis(20), jitter: Duration::from_millis(5), loss: 0.05, seed: 42 };
        let run = || {
            let mut imp = Impairer::new(config);
            (0..10_000u64).map(|i| imp.on_packet(Duration::from_millis(i))).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same fate");
        let dropped = a.iter().filter(|r| r.is_none()).count();
        assert!((400..600).contains(&dropped), "{dropped} of 10000 dropped at 5 %");
        for (i, r) in a.iter().enumerate() {
            if let Some(at) = r {
                let d = at.saturating_sub(Duration::from_millis(i as u64));
                assert!(d >= Duration::from_millis(15) && d <= Duration::from_millis(25), "{d:?}");
            }
        }
        let other = Impairer::new(Impairment { seed: 43, ..config });
        let b: Vec<_> = {
            let mut imp = other;
            (0..10_000u64).map(|i| imp.on_packet(Duration::from_millis(i))).collect()
        };
        assert_ne!(a, b, "another seed, another run");
    }

    #[test]
    fn no_impairment_passes_everything_at_once() {
        let mut imp = Impairer::new(Impairment::default());
        assert!(Impairment::default().is_none());
        for i in 0..100 {
            assert_eq!(imp.on_packet(Duration::from_millis(i)), Some(Duration::from_millis(i)));
        }
    }

    #[test]
    fn settings_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_millis(7)));
        assert!(parse_duration("fast").is_err() && parse_duration("-3ms").is_err() && parse_duration("2h").is_err());
        assert_eq!(parse_fraction("5%"), Ok(0.05));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("150%").is_err() && parse_fraction("lots").is_err());
    }
}

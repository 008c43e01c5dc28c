//! Network impairment for the project's UDP relay (the latency lab's and the robustness
//! tests'): which packets to drop and when to release the rest.
//!
//! Seeded, so a run is reproducible: the same seed and the same packet arrivals give the same
//! losses and delays. Jitter is uniform around the base delay and may reorder packets, as
//! real jitter does; `reorder` holds a fraction of packets 5 ms longer so later ones overtake
//! them. A rate limit serialises packets at the link's rate behind a queue of at most 100 ms
//! (a full queue drops, as a router's does). A schedule changes the path during a run: a
//! blackout drops everything for a while, and rate, loss and delay can change at set times.
//! Pure: arrival times come in as arguments.

use crate::sim::rng::XorShift;
use std::time::Duration;

/// What the relay does to each packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Impairment {
    /// Added one-way delay.
    pub delay: Duration,
    /// Each packet's delay varies uniformly by up to this either way (never below zero).
    pub jitter: Duration,
    /// Fraction of packets dropped, 0.0..=1.0.
    pub loss: f64,
    /// Fraction of packets held `REORDER_HOLD` longer, so later ones overtake them.
    pub reorder: f64,
    /// Link rate in bits per second (`None`: unlimited).
    pub rate_bps: Option<u64>,
    /// Changes during the run, in time order.
    pub schedule: Vec<(Duration, Change)>,
    pub seed: u64,
}

/// A change to the path at a set time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Drop everything for this long.
    Blackout(Duration),
    /// A new link rate (bits per second; 0: unlimited).
    Rate(u64),
    Loss(f64),
    Delay(Duration),
}

/// How much longer a reordered packet is held.
pub const REORDER_HOLD: Duration = Duration::from_millis(5);
/// The rate limiter's queue, in time at the link's rate.
pub const QUEUE: Duration = Duration::from_millis(100);

impl Default for Impairment {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            reorder: 0.0,
            rate_bps: None,
            schedule: Vec::new(),
            seed: 1,
        }
    }
}

impl Impairment {
    pub fn is_none(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss <= 0.0
            && self.reorder <= 0.0
            && self.rate_bps.is_none()
            && self.schedule.is_empty()
    }
}

/// Decides each packet's fate.
#[derive(Debug, Clone)]
pub struct Impairer {
    config: Impairment,
    rng: XorShift,
    /// Schedule entries applied so far.
    applied: usize,
    blackout_until: Duration,
    /// When the rate-limited link is free again.
    link_free: Duration,
    pub dropped: u64,
    pub passed: u64,
}

impl Impairer {
    pub fn new(config: Impairment) -> Self {
        Self {
            rng: XorShift::seeded(config.seed),
            config,
            applied: 0,
            blackout_until: Duration::ZERO,
            link_free: Duration::ZERO,
            dropped: 0,
            passed: 0,
        }
    }

    /// Applies the schedule's changes due by `now`.
    fn follow_schedule(&mut self, now: Duration) {
        while let Some(&(at, change)) = self.config.schedule.get(self.applied)
            && at <= now
        {
            match change {
                Change::Blackout(d) => self.blackout_until = at + d,
                Change::Rate(bps) => self.config.rate_bps = (bps > 0).then_some(bps),
                Change::Loss(l) => self.config.loss = l,
                Change::Delay(d) => self.config.delay = d,
            }
            self.applied += 1;
        }
    }

    /// A packet of `bytes` arrived at `now`: `None` to drop it, else when to send it on.
    pub fn on_packet(&mut self, now: Duration, bytes: usize) -> Option<Duration> {
        self.follow_schedule(now);
        let lost = self.rng.unit() < self.config.loss;
        if now < self.blackout_until || lost {
            self.dropped += 1;
            return None;
        }
        // The link: a packet leaves when the ones before it have, at the link's rate.
        let mut out = now;
        if let Some(bps) = self.config.rate_bps {
            let start = self.link_free.max(now);
            if start.saturating_sub(now) > QUEUE {
                self.dropped += 1;
                return None;
            }
            self.link_free = start + Duration::from_secs_f64(bytes as f64 * 8.0 / bps as f64);
            out = self.link_free;
        }
        self.passed += 1;
        let jitter = self.config.jitter.as_secs_f64() * (self.rng.unit() * 2.0 - 1.0);
        let mut delay = (self.config.delay.as_secs_f64() + jitter).max(0.0);
        if self.config.reorder > 0.0 && self.rng.unit() < self.config.reorder {
            delay += REORDER_HOLD.as_secs_f64();
        }
        Some(out + Duration::from_secs_f64(delay))
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

/// Parses "20mbit", "500kbit", "1gbit" or a bare number of bits per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (number, scale) = if let Some(n) = t.strip_suffix("gbit") {
        (n, 1e9)
    } else if let Some(n) = t.strip_suffix("mbit") {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix("kbit") {
        (n, 1e3)
    } else {
        (t.as_str(), 1.0)
    };
    let v: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a rate (like 20mbit)"))?;
    if !(v * scale >= 1000.0 && v * scale <= 100e9) {
        return Err(format!("`{text}` is outside 1 kbit/s..100 Gbit/s"));
    }
    Ok((v * scale) as u64)
}

/// Parses a schedule: entries separated by `;`, each `AT what value`, e.g.
/// `10s blackout 5s; 20s rate 5mbit; 30s rate 0; 40s loss 2%; 50s delay 40ms`.
pub fn parse_schedule(text: &str) -> Result<Vec<(Duration, Change)>, String> {
    let mut out = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let words: Vec<&str> = entry.split_whitespace().collect();
        let [at, what, value] = words[..] else {
            return Err(format!("`{entry}`: expected `TIME what VALUE`, like `10s blackout 5s`"));
        };
        let at = parse_duration_long(at)?;
        let change = match what {
            "blackout" => Change::Blackout(parse_duration_long(value)?),
            "rate" if value == "0" => Change::Rate(0),
            "rate" => Change::Rate(parse_rate(value)?),
            "loss" => Change::Loss(parse_fraction(value)?),
            "delay" => Change::Delay(parse_duration(value)?),
            other => return Err(format!("`{entry}`: `{other}` is not blackout, rate, loss or delay")),
        };
        out.push((at, change));
    }
    out.sort_by_key(|e| e.0);
    Ok(out)
}

/// A time in a schedule: like `parse_duration`, up to an hour.
fn parse_duration_long(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Some(n) = t.strip_suffix('s')
        && !n.ends_with('m')
        && !n.ends_with('u')
        && let Ok(v) = n.parse::<f64>()
        && (0.0..=3600.0).contains(&v)
    {
        return Ok(Duration::from_secs_f64(v));
    }
    parse_duration(t)
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
        let config = Impairment {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            loss: 0.05,
            seed: 42,
            ..Impairment::default()
        };
        let run = || {
            let mut imp = Impairer::new(config.clone());
            (0..10_000u64).map(|i| imp.on_packet(Duration::from_millis(i), 1200)).collect::<Vec<_>>()
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
        let other = Impairer::new(Impairment { seed: 43, ..config.clone() });
        let b: Vec<_> = {
            let mut imp = other;
            (0..10_000u64).map(|i| imp.on_packet(Duration::from_millis(i), 1200)).collect()
        };
        assert_ne!(a, b, "another seed, another run");
    }

    #[test]
    fn no_impairment_passes_everything_at_once() {
        let mut imp = Impairer::new(Impairment::default());
        assert!(Impairment::default().is_none());
        for i in 0..100 {
            assert_eq!(imp.on_packet(Duration::from_millis(i), 1200), Some(Duration::from_millis(i)));
        }
    }

    #[test]
    fn a_rate_limit_spaces_packets_and_drops_past_its_queue() {
        // 1 Mbit/s: a 1250-byte packet takes 10 ms on the wire.
        let mut imp = Impairer::new(Impairment { rate_bps: Some(1_000_000), ..Impairment::default() });
        let out: Vec<_> = (0..20).map(|_| imp.on_packet(Duration::ZERO, 1250)).collect();
        assert_eq!(out[0], Some(Duration::from_millis(10)));
        assert_eq!(out[4], Some(Duration::from_millis(50)));
        // A burst of 20 at once: the queue holds 100 ms, the rest is dropped.
        assert_eq!(out.iter().filter(|o| o.is_none()).count(), 9, "{out:?}");
    }

    #[test]
    fn reordered_packets_are_overtaken() {
        let mut imp = Impairer::new(Impairment { reorder: 0.5, seed: 3, ..Impairment::default() });
        let out: Vec<_> = (0..100u64).map(|i| imp.on_packet(Duration::from_millis(i), 100).unwrap()).collect();
        let overtaken = out.windows(2).filter(|w| w[1] < w[0]).count();
        assert!((15..40).contains(&overtaken), "{overtaken} of 99 pairs swapped");
    }

    #[test]
    fn a_schedule_blacks_out_and_changes_the_path() {
        let schedule = parse_schedule("1s blackout 500ms; 2s delay 40ms; 3s rate 1mbit").unwrap();
        let mut imp = Impairer::new(Impairment { schedule, ..Impairment::default() });
        let at = |imp: &mut Impairer, ms: u64| imp.on_packet(Duration::from_millis(ms), 1250);
        assert_eq!(at(&mut imp, 900), Some(Duration::from_millis(900)));
        assert_eq!(at(&mut imp, 1000), None, "blackout starts");
        assert_eq!(at(&mut imp, 1499), None);
        assert_eq!(at(&mut imp, 1500), Some(Duration::from_millis(1500)), "and ends");
        assert_eq!(at(&mut imp, 2000), Some(Duration::from_millis(2040)), "delay from 2 s");
        assert_eq!(at(&mut imp, 3000), Some(Duration::from_millis(3050)), "1 Mbit/s from 3 s");
    }

    #[test]
    fn settings_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_rate("20mbit"), Ok(20_000_000));
        assert_eq!(parse_rate("500kbit"), Ok(500_000));
        assert!(parse_rate("fast").is_err() && parse_rate("1bit").is_err());
        assert_eq!(
            parse_schedule("10s blackout 5s; 20s rate 5mbit"),
            Ok(vec![
                (Duration::from_secs(10), Change::Blackout(Duration::from_secs(5))),
                (Duration::from_secs(20), Change::Rate(5_000_000))
            ])
        );
        assert!(parse_schedule("10s nap 5s").is_err() && parse_schedule("blackout").is_err());
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

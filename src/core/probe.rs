//! Region choice: which of several hosts to stream from, by what a few QUIC pings measured.
//!
//! Owns the scoring: a host's score is its median round trip plus a penalty for the
//! packets the probe lost (each percent of loss costs as much as 10 ms of round trip, since a
//! lost packet costs a stream a retransmission or a recovery frame); hosts that did not
//! answer are never chosen; ties go to the first listed. Also the table `kumo probe` prints.
//! Pure: the shell measures, this judges.

use std::fmt::Write as _;
use std::time::Duration;

/// Pings per probe.
pub const PINGS: u32 = 10;
/// Milliseconds of round trip that one percent of loss is worth.
pub const LOSS_PENALTY_MS_PER_PERCENT: f64 = 10.0;
/// The fewest packets a loss rate is taken over: a probe sends only ~25, where one unlucky
/// loss would read as 4 % (40 ms of penalty). Counted over at least 100, one loss is 1 %.
pub const MIN_LOSS_SAMPLE: u64 = 100;

/// What probing one host found.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeResult {
    Answered(Measured),
    /// No usable answer (unreachable, refused, wrong certificate): why, in a sentence.
    Failed(String),
}

/// The figures of a host that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The QUIC handshake's duration.
    pub handshake: Duration,
    /// Each ping's round trip.
    pub rtts: Vec<Duration>,
    /// QUIC packets sent and declared lost on the probe's connection.
    pub packets_sent: u64,
    pub packets_lost: u64,
}

impl Measured {
    pub fn median_rtt(&self) -> Duration {
        let mut sorted = self.rtts.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or(self.handshake)
    }

    pub fn min_rtt(&self) -> Duration {
        self.rtts.iter().min().copied().unwrap_or(self.handshake)
    }

    /// Lost packets as a percentage of those sent.
    pub fn loss_percent(&self) -> f64 {
        if self.packets_sent == 0 { 0.0 } else { self.packets_lost as f64 * 100.0 / self.packets_sent as f64 }
    }

    /// Lower is better: median round trip in ms plus the loss penalty, the loss taken over at
    /// least `MIN_LOSS_SAMPLE` packets.
    pub fn score(&self) -> f64 {
        let lost = self.packets_lost.min(self.packets_sent) as f64;
        let loss_percent = lost * 100.0 / self.packets_sent.max(MIN_LOSS_SAMPLE) as f64;
        self.median_rtt().as_secs_f64() * 1000.0 + loss_percent * LOSS_PENALTY_MS_PER_PERCENT
    }
}

/// The index of the best host, if any answered.
pub fn choose(outcomes: &[ProbeResult]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, o) in outcomes.iter().enumerate() {
        if let ProbeResult::Answered(m) = o
            && best.is_none_or(|(_, score)| m.score() < score)
        {
            best = Some((i, m.score()));
        }
    }
    best.map(|(i, _)| i)
}

/// The probe table: one line per host (`names`, in the order probed), the chosen one marked.
pub fn table(names: &[String], outcomes: &[ProbeResult]) -> String {
    let chosen = choose(outcomes);
    let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
    let mut out = format!(
        "  {:<width$}  {:>9}  {:>9}  {:>9}  {:>6}  {:>7}\n",
        "host", "handshake", "rtt min", "rtt p50", "loss", "score"
    );
    for (i, (name, outcome)) in names.iter().zip(outcomes).enumerate() {
        let mark = if chosen == Some(i) { '*' } else { ' ' };
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        match outcome {
            // Writing to a String cannot fail.
            ProbeResult::Answered(m) => drop(writeln!(
                out,
                "{mark} {name:<width$}  {:>9}  {:>9}  {:>9}  {:>5.1}%  {:>7.1}",
                ms(m.handshake),
                ms(m.min_rtt()),
                ms(m.median_rtt()),
                m.loss_percent(),
                m.score()
            )),
            ProbeResult::Failed(why) => drop(writeln!(out, "{mark} {name:<width$}  failed: {why}")),
        }
    }
    match chosen {
        Some(i) => drop(writeln!(out, "chosen: {} (lowest score)", names[i])),
        None => out.push_str("no host answered\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(rtts_ms: &[u64], sent: u64, lost: u64) -> ProbeResult {
        ProbeResult::Answered(Measured {
            handshake: Duration::from_millis(rtts_ms[0] * 2),
            rtts: rtts_ms.iter().map(|&ms| Duration::from_millis(ms)).collect(),
            packets_sent: sent,
            packets_lost: lost,
        })
    }

    #[test]
    fn the_lowest_median_wins_and_one_spike_does_not_decide() {
        let outcomes = [
            measured(&[30, 31, 30, 32, 30], 20, 0),
            // Faster, with one slow ping: its median still wins.
            measured(&[12, 11, 150, 12, 13], 20, 0),
            measured(&[60, 60, 61, 60, 60], 20, 0),
        ];
        assert_eq!(choose(&outcomes), Some(1));
    }

    #[test]
    fn loss_costs_as_much_as_latency() {
        // 20 ms with 10 % loss scores 120; 40 ms clean scores 40.
        let outcomes = [measured(&[20, 20, 20], 100, 10), measured(&[40, 40, 40], 100, 0)];
        assert_eq!(choose(&outcomes), Some(1));
    }

    #[test]
    fn one_unlucky_loss_in_a_short_probe_costs_little() {
        // 25 packets, one lost: 10 ms (1 % of 100), not 40 ms (4 % of 25).
        let one_lost = measured(&[20, 20, 20], 25, 1);
        let ProbeResult::Answered(m) = &one_lost else { unreachable!() };
        assert!((m.score() - 30.0).abs() < 1e-9, "{}", m.score());
        // So a host 15 ms nearer still wins despite it.
        assert_eq!(choose(&[measured(&[35, 35, 35], 25, 0), one_lost]), Some(1));
    }

    #[test]
    fn hosts_that_did_not_answer_are_never_chosen() {
        let outcomes = [ProbeResult::Failed("no answer within 2 s".into()), measured(&[90], 5, 0)];
        assert_eq!(choose(&outcomes), Some(1));
        assert_eq!(choose(&[ProbeResult::Failed("refused".into())]), None);
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn ties_go_to_the_first_listed() {
        let outcomes = [measured(&[20], 5, 0), measured(&[20], 5, 0)];
        assert_eq!(choose(&outcomes), Some(0));
    }

    #[test]
    fn the_table_marks_the_choice_and_says_why_others_failed() {
        let names = vec!["eu-west".to_owned(), "us-east".to_owned()];
        let outcomes =
            [measured(&[25, 26, 25], 20, 1), ProbeResult::Failed("the certificate is not the pinned one".into())];
        let t = table(&names, &outcomes);
        assert!(t.contains("* eu-west"), "{t}");
        assert!(t.contains("25.0 ms"), "{t}");
        assert!(t.contains("5.0%"), "{t}");
        assert!(t.contains("us-east  failed: the certificate is not the pinned one"), "{t}");
        assert!(t.ends_with("chosen: eu-west (lowest score)\n"), "{t}");
    }
}

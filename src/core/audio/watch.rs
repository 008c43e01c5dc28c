//! Whether an output stream that reported an error is dead, or played on.
//!
//! Some errors pass: ALSA's `PulseAudio` plugin (alsa-plugins 1.2.7, Debian 12) answers
//! `snd_pcm_avail_delay` with an I/O error whenever the server's timing figures for the stream
//! are not there yet (it compares `pa_stream_get_latency`'s `-PA_ERR_NODATA` with the
//! positive code), which a loaded machine sees several times a second; the stream plays on
//! at the next poll. Reopening the device on each of those lost a tenth of a second of sound
//! every time. A dead stream (unplugged, server gone) stops calling back for good. So an error
//! is judged by what follows it: callbacks again, and it passed; none for [`GRACE_MICROS`],
//! and the stream is dead.

/// How long a stream may go without a callback after an error before it counts as dead:
/// several device periods, and well under what a player notices as a gap being repaired.
pub const GRACE_MICROS: u64 = 300_000;

/// What the watch concluded at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No error, or one whose outcome is not known yet.
    Fine,
    /// An error came, and callbacks went on after it.
    Passed,
    /// An error came, and no callback since for [`GRACE_MICROS`].
    Dead,
}

/// Follows one output stream's error and callback counts (both only grow).
#[derive(Debug, Default)]
pub struct StreamWatch {
    errors_seen: u64,
    /// Since an error not yet judged: when it was seen, and the callback count then.
    pending: Option<(u64, u64)>,
}

impl StreamWatch {
    /// One look at the stream's counts at `now_micros`.
    pub fn check(&mut self, errors: u64, callbacks: u64, now_micros: u64) -> Verdict {
        if errors > self.errors_seen {
            self.errors_seen = errors;
            // A newer error keeps the first one's time: errors on every poll with no
            // callback between them are a dead stream, however many there are.
            if self.pending.is_none() {
                self.pending = Some((now_micros, callbacks));
                return Verdict::Fine;
            }
        }
        let Some((since, callbacks_then)) = self.pending else { return Verdict::Fine };
        // One callback may have been under way when the error was counted: two mean the
        // device asked for sound again after it.
        if callbacks >= callbacks_then + 2 {
            self.pending = None;
            return Verdict::Passed;
        }
        if now_micros.saturating_sub(since) >= GRACE_MICROS { Verdict::Dead } else { Verdict::Fine }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_followed_by_callbacks_passed() {
        let mut w = StreamWatch::default();
        assert_eq!(w.check(0, 10, 0), Verdict::Fine);
        assert_eq!(w.check(1, 10, 1_000), Verdict::Fine);
        assert_eq!(w.check(1, 11, 5_000), Verdict::Fine, "one callback may have been under way");
        assert_eq!(w.check(1, 12, 10_000), Verdict::Passed);
        // Judged once; the stream is fine after it.
        assert_eq!(w.check(1, 20, 900_000), Verdict::Fine);
        // A later error is judged on its own.
        assert_eq!(w.check(2, 20, 1_000_000), Verdict::Fine);
        assert_eq!(w.check(2, 20, 1_000_000 + GRACE_MICROS - 1), Verdict::Fine);
        assert_eq!(w.check(2, 20, 1_000_000 + GRACE_MICROS), Verdict::Dead);
    }

    #[test]
    fn errors_on_every_poll_with_no_callback_are_a_dead_stream() {
        let mut w = StreamWatch::default();
        for i in 1..=10u64 {
            let now = i * 40_000;
            let v = w.check(i, 5, now);
            // The first error's time counts, not the newest one's.
            assert_eq!(v, if now - 40_000 >= GRACE_MICROS { Verdict::Dead } else { Verdict::Fine }, "at {now}");
        }
    }

    #[test]
    fn no_error_is_always_fine() {
        let mut w = StreamWatch::default();
        for t in 0..100u64 {
            assert_eq!(w.check(0, t / 3, t * 100_000), Verdict::Fine);
        }
    }
}

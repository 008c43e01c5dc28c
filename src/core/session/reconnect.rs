//! The client's reconnection pacing, sans IO: when to start a new connection attempt after
//! the connection failed, how many may be under way, and when to give up.
//!
//! The first attempt starts at once, then one every 200 ms growing by half up to every
//! 500 ms, each living 2 s (so about 4 under way, a few Initial packets each). A new attempt,
//! not a retransmission, is what catches the path coming back: an attempt's own Initial
//! retransmissions back off to a second and more. So the session is back within about half a
//! second plus two round trips of the network returning.

use std::time::Duration;

pub const RETRY_FIRST: Duration = Duration::from_millis(200);
pub const RETRY_CAP: Duration = Duration::from_millis(500);
/// How long one attempt may take to complete its handshake.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts under way at once, at most.
pub const MAX_ATTEMPTS: usize = 8;

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedialAction {
    /// Start attempt number `n` (from 1).
    Attempt(u32),
    /// The reconnect timeout passed: the session is lost.
    GiveUp,
}

/// One outage's reconnection schedule, on the session's clock.
#[derive(Debug, Clone)]
pub struct Redialer {
    began: Duration,
    give_up: Option<Duration>,
    next_attempt: Duration,
    interval: Duration,
    in_flight: usize,
    attempts: u32,
}

impl Redialer {
    /// The connection failed at `now`; keep trying for `timeout` (`None`: for ever).
    pub fn new(now: Duration, timeout: Option<Duration>) -> Self {
        Self {
            began: now,
            give_up: timeout.map(|t| now + t),
            next_attempt: now,
            interval: RETRY_FIRST,
            in_flight: 0,
            attempts: 0,
        }
    }

    /// When to call [`Self::handle_timeout`] next: the next attempt (if there is room for one)
    /// or the give-up time, whichever comes first; `None`: nothing until an attempt ends.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let attempt = (self.in_flight < MAX_ATTEMPTS).then_some(self.next_attempt);
        match (attempt, self.give_up) {
            (Some(a), Some(g)) => Some(a.min(g)),
            (a, g) => a.or(g),
        }
    }

    /// The time came (or passed): what to do, if anything. Call again until `None`.
    pub fn handle_timeout(&mut self, now: Duration) -> Option<RedialAction> {
        if self.give_up.is_some_and(|g| now >= g) {
            return Some(RedialAction::GiveUp);
        }
        if self.in_flight >= MAX_ATTEMPTS || now < self.next_attempt {
            return None;
        }
        self.attempts += 1;
        self.in_flight += 1;
        self.next_attempt = now + self.interval;
        self.interval = (self.interval * 3 / 2).min(RETRY_CAP);
        Some(RedialAction::Attempt(self.attempts))
    }

    /// An attempt ended without resuming the session (it failed, timed out, or could not be
    /// started).
    pub fn handle_attempt_failed(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long the session has been without a connection at `now`.
    pub fn outage(&self, now: Duration) -> Duration {
        now.saturating_sub(self.began)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Runs the schedule with every attempt failing after `fails_after`, for `until`.
    fn starts(fails_after: Duration, until: Duration) -> Vec<Duration> {
        let mut r = Redialer::new(Duration::ZERO, Some(until));
        let (mut started, mut ends) = (Vec::new(), Vec::new());
        let mut now = Duration::ZERO;
        loop {
            while let Some(action) = r.handle_timeout(now) {
                match action {
                    RedialAction::Attempt(_) => {
                        started.push(now);
                        ends.push(now + fails_after);
                    }
                    RedialAction::GiveUp => return started,
                }
            }
            let next_end = ends.iter().copied().min();
            now = match (r.poll_timeout(), next_end) {
                (Some(t), Some(e)) => t.min(e),
                (t, e) => t.or(e).expect("something is always due"),
            };
            ends.retain(|&e| {
                let done = e <= now;
                if done {
                    r.handle_attempt_failed();
                }
                !done
            });
        }
    }

    #[test]
    fn attempts_start_at_once_then_every_200_to_500_ms() {
        let started = starts(ATTEMPT_TIMEOUT, ms(3_000));
        assert_eq!(&started[..5], &[ms(0), ms(200), ms(500), ms(950), ms(1_450)]);
        let gaps: Vec<_> = started.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
        assert!(gaps.iter().all(|&g| g >= RETRY_FIRST && g <= RETRY_CAP), "{gaps:?}");
    }

    #[test]
    fn attempts_under_way_are_capped_and_the_session_is_given_up_on_time() {
        // Attempts that never end by themselves: at most MAX_ATTEMPTS, then only the give-up.
        let mut r = Redialer::new(ms(1_000), Some(ms(10_000)));
        let mut now = ms(1_000);
        let mut attempts = 0;
        while let Some(t) = r.poll_timeout() {
            now = t;
            match r.handle_timeout(now) {
                Some(RedialAction::Attempt(_)) => attempts += 1,
                Some(RedialAction::GiveUp) => break,
                None => {}
            }
        }
        assert_eq!(attempts, MAX_ATTEMPTS);
        assert_eq!(now, ms(11_000));
        assert_eq!(r.outage(now), ms(10_000));
        // Without a timeout, it never gives up: it waits for an attempt to end.
        let mut r = Redialer::new(Duration::ZERO, None);
        for _ in 0..MAX_ATTEMPTS {
            let t = r.poll_timeout().unwrap();
            assert!(matches!(r.handle_timeout(t), Some(RedialAction::Attempt(_))));
        }
        assert_eq!(r.poll_timeout(), None);
        r.handle_attempt_failed();
        assert!(r.poll_timeout().is_some());
    }
}

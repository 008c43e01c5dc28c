//! The host's capture schedule: when the next frame is due.
//!
//! Owns the decision of when to capture and what to do when the host falls behind. A game
//! renders on a fixed clock, so frames are captured on schedule, not as fast as the encoder
//! can go; when the host is late by more than a frame interval it skips the missed slots
//! (never bursts to catch up, which would only queue latency). Pure: time is a parameter.

use std::time::Duration;

/// What the capture loop should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing is due before this time.
    WaitUntil(Duration),
    /// Capture a frame now. `slot` counts schedule slots since the start (the scene's clock);
    /// `skipped` is how many slots were missed since the previous capture.
    Capture { slot: u64, skipped: u64 },
}

#[derive(Debug, Clone)]
pub struct CaptureClock {
    start: Duration,
    interval: Duration,
    next_slot: u64,
}

impl CaptureClock {
    /// A schedule at `fps` frames per second whose first slot is at `start`.
    pub fn new(fps: u32, start: Duration) -> Self {
        let interval = Duration::from_secs(1) / fps.max(1);
        Self { start, interval, next_slot: 0 }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn due(&self, slot: u64) -> Duration {
        self.start + self.interval * slot as u32
    }

    pub fn poll(&mut self, now: Duration) -> Tick {
        let due = self.due(self.next_slot);
        if now < due {
            return Tick::WaitUntil(due);
        }
        // The latest slot that is already due.
        let latest = now.saturating_sub(self.start).as_nanos() / self.interval.as_nanos().max(1);
        let latest = latest as u64;
        let skipped = latest - self.next_slot;
        self.next_slot = latest + 1;
        Tick::Capture { slot: latest, skipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn on_time_captures_every_slot() {
        let mut c = CaptureClock::new(50, ms(100));
        assert_eq!(c.poll(ms(90)), Tick::WaitUntil(ms(100)));
        assert_eq!(c.poll(ms(100)), Tick::Capture { slot: 0, skipped: 0 });
        assert_eq!(c.poll(ms(101)), Tick::WaitUntil(ms(120)));
        assert_eq!(c.poll(ms(121)), Tick::Capture { slot: 1, skipped: 0 });
    }

    #[test]
    fn late_host_skips_instead_of_bursting() {
        let mut c = CaptureClock::new(50, ms(0));
        assert_eq!(c.poll(ms(0)), Tick::Capture { slot: 0, skipped: 0 });
        // 75 ms late: slots 1, 2 and 3 are due; capture slot 3 once, skip 1 and 2.
        assert_eq!(c.poll(ms(75)), Tick::Capture { slot: 3, skipped: 2 });
        assert_eq!(c.poll(ms(76)), Tick::WaitUntil(ms(80)));
    }
}

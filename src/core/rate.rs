//! Rate limits, with time as a parameter.

use std::time::Duration;

/// A token bucket: `burst` at once, refilled at `rate` a second; time is a parameter.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    rate: f64,
    tokens: f64,
    last_refill: Duration,
}

impl TokenBucket {
    pub fn new(burst: f64, rate: f64) -> Self {
        Self { burst, rate, tokens: burst, last_refill: Duration::ZERO }
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last_refill).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last_refill = self.last_refill.max(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

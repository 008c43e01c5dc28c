//! The clock that stamps captures and decodes: microseconds of wall time since the UNIX epoch.
//!
//! Host and client on one machine read the same clock, so capture→decoded latency needs no
//! offset on loopback; across machines the offset is a parameter of the stats (clock sync
//! comes with the latency lab). Intervals inside one process use `Instant` instead.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall time now, in microseconds since the UNIX epoch (0 if the clock is set before 1970).
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

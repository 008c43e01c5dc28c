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

/// Now in UTC as `2026-12-07T07-55-12Z`: a file name's stamp (no colons, sorts by time).
pub fn utc_stamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    stamp_of(secs)
}

/// `secs` since the epoch as `YYYY-MM-DDTHH-MM-SSZ`.
fn stamp_of(secs: u64) -> String {
    let rest = secs % 86_400;
    let date = crate::core::trust::date(secs);
    format!("{date}T{:02}-{:02}-{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_read_as_the_civil_date() {
        assert_eq!(super::stamp_of(0), "1970-01-01T00-00-00Z");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(super::stamp_of(1_709_210_096), "2024-02-29T12-34-56Z");
        assert_eq!(super::stamp_of(1_796_628_623), "2026-12-07T07-30-23Z");
    }
}

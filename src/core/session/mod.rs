//! The sessions' decisions, sans IO, in quinn-proto's style: events come in with the time
//! (`handle_*`), decisions go out (`poll_transmit`, `poll_output`, `poll_timeout`), and the
//! async loops around them in `client` and `host` only move bytes, frames and timers.

pub mod admission;
pub mod client;
pub mod host;
pub mod reconnect;

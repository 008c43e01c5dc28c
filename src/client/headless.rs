//! Runs a client session without a window: the stats owner for `--headless`.
//!
//! Owns the session's [`Stats`] on the calling thread: it drains the session's events until
//! the time limit, an interrupt, or the session's own end, then stops the session and returns
//! the summary. The window takes this role on the winit thread, draining the same events each
//! frame instead of blocking.

use crate::client::{self, ClientConfig, ClientError, SessionReport};
use crate::core::stats::Stats;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Connects, streams until `duration` passes (or forever when `None`) or `interrupted` is
/// set, and returns the summary. Fails only if the session could not start.
pub fn run(
    rt: &Runtime,
    config: ClientConfig,
    duration: Option<Duration>,
    interrupted: &Arc<AtomicBool>,
) -> Result<SessionReport, ClientError> {
    let session = rt.block_on(client::connect(config))?;
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut stats = Stats::new(0);
    let mut stopping = false;
    // A session told to stop ends within a second; do not wait forever for a stuck one.
    let mut give_up = None;
    loop {
        match session.events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => stats.apply(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        let time_up = deadline.is_some_and(|d| now >= d);
        if !stopping && (time_up || interrupted.load(Ordering::Relaxed)) {
            session.stop();
            stopping = true;
            give_up = Some(now + Duration::from_secs(3));
        }
        if give_up.is_some_and(|g| now >= g) {
            break;
        }
    }
    let elapsed = deadline.map_or_else(|| started.elapsed(), |d| d.min(Instant::now()) - started);
    let end = rt.block_on(session.finish());
    Ok(SessionReport { summary: stats.summary(elapsed), end })
}

//! Runs a client session without a window: the stats owner for `--headless`.
//!
//! Owns the session's [`Stats`] on the calling thread: it drains the session's events until
//! the time limit, an interrupt, or the session's own end, then stops the session and returns
//! the summary. The window takes this role on the winit thread, draining the same events each
//! frame instead of blocking.

use crate::client::{self, ClientConfig, ClientError, SessionReport};
use crate::core::stats::Stats;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// A summary of each period of a session, besides the whole session's (`--stats-every`): how
/// long a period is, and the file that gets one JSON line per period.
#[derive(Debug, Clone)]
pub struct Periods {
    pub every: Duration,
    pub path: PathBuf,
}

/// The figures of the period going on, and where they go when it ends.
struct Period<'a> {
    periods: &'a Periods,
    stats: Stats,
    began: Instant,
    /// Whether anything happened in this period (an empty last period is not written).
    eventful: bool,
    /// Whether the file could not be written (said once; the session goes on).
    failed: bool,
}

impl Period<'_> {
    /// Ends the period if it is over (or `last`): its summary is appended to the file.
    fn maybe_end(&mut self, now: Instant, last: bool) {
        let length = now.saturating_duration_since(self.began);
        if length < self.periods.every && !last {
            return;
        }
        let stats = std::mem::replace(&mut self.stats, Stats::new(0));
        self.began = now;
        self.eventful = false;
        let line = serde_json::to_string(&stats.summary(length)).unwrap_or_default();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.periods.path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(err) = written
            && !self.failed
        {
            self.failed = true;
            tracing::warn!("could not write the period's figures to {}: {err}", self.periods.path.display());
        }
    }
}

/// Connects, streams until `duration` passes (or forever when `None`) or `interrupted` is
/// set, and returns the summary; with `periods`, each period's summary goes to its file as the
/// session runs. Fails only if the session could not start.
pub fn run(
    rt: &Runtime,
    config: ClientConfig,
    duration: Option<Duration>,
    interrupted: &Arc<AtomicBool>,
    periods: Option<&Periods>,
) -> Result<SessionReport, ClientError> {
    let session = rt.block_on(client::connect(config))?;
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut stats = Stats::new(0);
    let mut period =
        periods.map(|periods| Period { periods, stats: Stats::new(0), began: started, eventful: false, failed: false });
    let mut stopping = false;
    // A session told to stop ends within a second; do not wait forever for a stuck one.
    let mut give_up = None;
    loop {
        match session.events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => {
                if let Some(period) = &mut period {
                    period.stats.apply(event.clone());
                    period.eventful = true;
                }
                stats.apply(event);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if let Some(period) = &mut period
            && !stopping
        {
            period.maybe_end(now, false);
        }
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
    if let Some(period) = &mut period {
        // The last, shorter period, unless the session ended on a period's edge and nothing
        // came after it (the periods add up to the whole session).
        if period.eventful {
            period.maybe_end(deadline.map_or_else(Instant::now, |d| d.min(Instant::now())), true);
        }
    }
    let end = rt.block_on(session.finish());
    Ok(SessionReport { summary: stats.summary(elapsed), end })
}

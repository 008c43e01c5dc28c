//! What the window shows when it is not simply showing video: the session's visible state.
//!
//! Owns the rules for the state screen and the title: before the first picture the window
//! says it is connecting or waiting for the host, with the time spent so far; when pictures
//! stop (a lost frame waiting for its recovery IDR, or a stalled host) it keeps the last
//! picture and says so over it, so the player never sees garbage or a frozen black. Pure:
//! every method takes the time since the window opened.

use std::time::Duration;

/// How long without a new picture, while streaming, before the window says the stream stalled.
pub const STALL_AFTER: Duration = Duration::from_millis(500);
/// How long after an IDR request before "waiting for a recovery frame" shows (a recovery
/// usually lands within a frame or two and should not flash a banner).
pub const RECOVERY_BANNER_AFTER: Duration = Duration::from_millis(150);
/// How long a notice ("saved 30 s to …") stays over the video.
pub const NOTICE_FOR: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Connecting,
    /// Handshake done, no picture yet.
    WaitingForFirstFrame,
    Streaming,
    Ended(String),
    Failed(String),
}

/// The session as the window sees it.
#[derive(Debug, Clone)]
pub struct Screen {
    host: String,
    phase: Phase,
    /// When the current phase began.
    since: Duration,
    last_picture: Option<Duration>,
    /// An IDR request not yet answered by a picture.
    recovery_since: Option<Duration>,
    /// The connection was lost: since when, the attempt under way, and what went wrong last.
    /// Cleared by the first picture of the resumed stream.
    reconnecting: Option<(Duration, u32, String)>,
    /// A sentence for the player and when it came: shown over the video for [`NOTICE_FOR`].
    notice: Option<(String, Duration)>,
}

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// Just the video.
    Video,
    /// A full state screen (no picture to show): a headline, a detail line, and seconds spent.
    Status { headline: String, detail: String, elapsed_secs: f64 },
    /// The last picture, with a banner over it.
    VideoWithBanner { text: String, elapsed_secs: f64 },
    /// The video, with a short notice over it (no clock: it is news, not a wait).
    VideoWithNotice { text: String },
}

impl Screen {
    pub fn new(host: impl Into<String>, now: Duration) -> Self {
        Self {
            host: host.into(),
            phase: Phase::Connecting,
            since: now,
            last_picture: None,
            recovery_since: None,
            reconnecting: None,
            notice: None,
        }
    }

    /// A sentence for the player (a replay saved, or why it was not).
    pub fn on_notice(&mut self, text: &str, now: Duration) {
        self.notice = Some((text.to_owned(), now));
    }

    fn enter(&mut self, phase: Phase, now: Duration) {
        if self.phase != phase {
            self.phase = phase;
            self.since = now;
        }
    }

    /// The handshake completed.
    pub fn on_connected(&mut self, host_name: &str, now: Duration) {
        if !host_name.is_empty() {
            host_name.clone_into(&mut self.host);
        }
        self.enter(Phase::WaitingForFirstFrame, now);
    }

    /// A new picture was presented.
    pub fn on_picture(&mut self, now: Duration) {
        self.last_picture = Some(now);
        self.recovery_since = None;
        self.reconnecting = None;
        if matches!(self.phase, Phase::Connecting | Phase::WaitingForFirstFrame) {
            self.enter(Phase::Streaming, now);
        }
    }

    /// The host said the picture shown is still current (nothing was drawn): not a stall.
    pub fn on_still(&mut self, now: Duration) {
        if self.phase == Phase::Streaming && self.last_picture.is_some() {
            self.last_picture = Some(now);
        }
    }

    /// The client asked the host for an IDR (a frame was lost).
    pub fn on_recovery_requested(&mut self, now: Duration) {
        self.recovery_since.get_or_insert(now);
    }

    /// The connection was lost and the client is reconnecting (`attempt` 0: just noticed).
    pub fn on_reconnecting(&mut self, attempt: u32, reason: &str, now: Duration) {
        let since = self.reconnecting.as_ref().map_or(now, |r| r.0);
        self.reconnecting = Some((since, attempt, reason.to_owned()));
    }

    pub fn on_ended(&mut self, message: &str, now: Duration) {
        self.reconnecting = None;
        self.enter(Phase::Ended(message.to_owned()), now);
    }

    pub fn on_failed(&mut self, message: &str, now: Duration) {
        self.reconnecting = None;
        self.enter(Phase::Failed(message.to_owned()), now);
    }

    pub fn is_streaming(&self) -> bool {
        self.phase == Phase::Streaming
    }

    /// Whether the window should redraw periodically (a clock is on screen).
    pub fn animating(&self, now: Duration) -> bool {
        !matches!(self.view(now), View::Video)
    }

    pub fn view(&self, now: Duration) -> View {
        let secs = |since: Duration| now.saturating_sub(since).as_secs_f64();
        if let Some((since, attempt, reason)) = &self.reconnecting {
            let tries = if *attempt == 0 { String::new() } else { format!(" (attempt {attempt})") };
            return if self.last_picture.is_some() {
                View::VideoWithBanner {
                    text: format!("Connection lost: reconnecting to {}…{tries}", self.host),
                    elapsed_secs: secs(*since),
                }
            } else {
                View::Status {
                    headline: format!("Reconnecting to {}…{tries}", self.host),
                    detail: format!("The connection was lost: {reason}."),
                    elapsed_secs: secs(*since),
                }
            };
        }
        match &self.phase {
            Phase::Connecting => View::Status {
                headline: format!("Connecting to {}…", self.host),
                detail: "Setting up an encrypted QUIC session.".into(),
                elapsed_secs: secs(self.since),
            },
            Phase::WaitingForFirstFrame => View::Status {
                headline: format!("Waiting for {}…", self.host),
                detail: "Connected; the host is starting its stream.".into(),
                elapsed_secs: secs(self.since),
            },
            Phase::Ended(message) => View::Status {
                headline: "The session ended".into(),
                detail: message.clone(),
                elapsed_secs: secs(self.since),
            },
            Phase::Failed(message) => View::Status {
                headline: "Could not stream".into(),
                detail: message.clone(),
                elapsed_secs: secs(self.since),
            },
            Phase::Streaming => {
                let last = self.last_picture.unwrap_or(self.since);
                if let Some(since) = self.recovery_since
                    && now.saturating_sub(since) >= RECOVERY_BANNER_AFTER
                {
                    return View::VideoWithBanner {
                        text: "A frame was lost: waiting for a recovery frame…".into(),
                        elapsed_secs: secs(since),
                    };
                }
                if now.saturating_sub(last) >= STALL_AFTER {
                    return View::VideoWithBanner {
                        text: format!("Waiting for {}… (no new picture)", self.host),
                        elapsed_secs: secs(last),
                    };
                }
                match &self.notice {
                    Some((text, at)) if now.saturating_sub(*at) < NOTICE_FOR => {
                        View::VideoWithNotice { text: text.clone() }
                    }
                    _ => View::Video,
                }
            }
        }
    }

    /// The window title: the host and the state in words.
    pub fn title(&self, now: Duration) -> String {
        let state = match (&self.phase, self.view(now)) {
            _ if self.reconnecting.is_some() => "reconnecting",
            (Phase::Connecting, _) => "connecting",
            (Phase::WaitingForFirstFrame, _) => "waiting for the stream",
            (Phase::Ended(_), _) => "ended",
            (Phase::Failed(_), _) => "failed",
            (Phase::Streaming, View::Video | View::VideoWithNotice { .. }) => "streaming",
            (Phase::Streaming, _) => "stalled",
        };
        format!("kumo — {} — {state}", self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn connecting_then_waiting_then_video() {
        let mut s = Screen::new("127.0.0.1:4433", ms(0));
        match s.view(ms(1500)) {
            View::Status { headline, elapsed_secs, .. } => {
                assert!(headline.starts_with("Connecting to 127.0.0.1:4433"), "{headline}");
                assert_eq!(elapsed_secs, 1.5);
            }
            other => panic!("{other:?}"),
        }
        assert!(s.title(ms(10)).contains("connecting"));
        s.on_connected("demo host", ms(2000));
        assert!(
            matches!(s.view(ms(2100)), View::Status { ref headline, elapsed_secs, .. } if headline.contains("demo host") && (elapsed_secs - 0.1).abs() < 1e-9)
        );
        s.on_picture(ms(2200));
        assert_eq!(s.view(ms(2210)), View::Video);
        assert!(s.is_streaming());
        assert_eq!(s.title(ms(2210)), "kumo — demo host — streaming");
        assert!(!s.animating(ms(2210)));
    }

    #[test]
    fn recovery_banner_only_after_a_while() {
        let mut s = Screen::new("h", ms(0));
        s.on_connected("h", ms(0));
        s.on_picture(ms(100));
        s.on_recovery_requested(ms(110));
        assert_eq!(s.view(ms(200)), View::Video, "a quick recovery shows no banner");
        match s.view(ms(400)) {
            View::VideoWithBanner { text, elapsed_secs } => {
                assert!(text.contains("recovery"), "{text}");
                assert!((elapsed_secs - 0.29).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }
        s.on_picture(ms(420));
        assert_eq!(s.view(ms(430)), View::Video);
    }

    #[test]
    fn a_still_word_keeps_the_stall_banner_away() {
        let mut s = Screen::new("h", ms(0));
        s.on_connected("h", ms(0));
        s.on_still(ms(50));
        assert!(matches!(s.view(ms(60)), View::Status { .. }), "a word is no first picture");
        s.on_picture(ms(100));
        for t in (200..=10_000).step_by(100) {
            s.on_still(ms(t));
            assert_eq!(s.view(ms(t + 50)), View::Video, "at {t} ms");
        }
        assert!(s.title(ms(10_400)).ends_with("streaming"));
        assert!(s.title(ms(10_600)).ends_with("stalled"), "the words stopped: a stall");
    }

    #[test]
    fn stall_shows_over_the_last_picture() {
        let mut s = Screen::new("h", ms(0));
        s.on_connected("h", ms(0));
        s.on_picture(ms(100));
        assert_eq!(s.view(ms(599)), View::Video);
        assert!(matches!(s.view(ms(700)), View::VideoWithBanner { .. }));
        assert!(s.title(ms(700)).ends_with("stalled"));
        assert!(s.animating(ms(700)));
    }

    #[test]
    fn a_lost_connection_says_reconnecting_with_the_time_since_until_a_new_picture() {
        let mut s = Screen::new("h", ms(0));
        s.on_connected("demo host", ms(0));
        s.on_picture(ms(100));
        s.on_reconnecting(0, "nothing from the host for 1 s", ms(1100));
        s.on_reconnecting(3, "no answer within 3 s", ms(2600));
        match s.view(ms(3100)) {
            View::VideoWithBanner { text, elapsed_secs } => {
                assert_eq!(text, "Connection lost: reconnecting to demo host… (attempt 3)");
                assert!((elapsed_secs - 2.0).abs() < 1e-9, "counted from the first notice: {elapsed_secs}");
            }
            other => panic!("{other:?}"),
        }
        assert!(s.title(ms(3100)).ends_with("reconnecting"));
        assert!(s.animating(ms(3100)), "the elapsed time ticks");
        s.on_picture(ms(3200));
        assert_eq!(s.view(ms(3210)), View::Video, "the resumed stream clears the banner");
        // Lost before any picture: a full status screen that says why.
        let mut s = Screen::new("h", ms(0));
        s.on_connected("h", ms(0));
        s.on_reconnecting(1, "the host shut down", ms(500));
        assert!(
            matches!(s.view(ms(900)), View::Status { ref headline, ref detail, .. } if headline.starts_with("Reconnecting to h") && detail.contains("shut down"))
        );
    }

    #[test]
    fn end_and_failure_say_why() {
        let mut s = Screen::new("h", ms(0));
        s.on_failed("host h did not answer within 5 s", ms(5000));
        assert!(matches!(s.view(ms(6000)), View::Status { ref detail, .. } if detail.contains("did not answer")));
        s.on_ended("the host shut down", ms(7000));
        assert!(s.title(ms(7000)).ends_with("ended"));
    }
}

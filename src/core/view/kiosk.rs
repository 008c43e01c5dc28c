//! Kiosk mode's rules: a client with no one at the keyboard who can fix anything.
//!
//! Owns what the kiosk does on its own: it connects by itself at start; any failure
//! (the host down, refused, gone for good, a session that stalls) shows the "reconnecting"
//! screen and tries again, for ever; a session that sees no input for the idle timeout, or
//! that the host ends, returns to the attract screen, which starts a fresh session on any
//! key or click (or by itself after a while, for kiosks that have only gamepads); a session
//! that shows no picture for the watchdog's time while connected is restarted. The ordinary
//! quit shortcuts do nothing; only the admin combination exits, after a PIN when one is set.
//! Pure: the window shell reports what happened with the time since it opened and does what
//! the returned [`Command`] says.

use crate::input::PadState;
use std::time::Duration;

/// Idle time before a session is ended for the next player, by default.
pub const IDLE_TIMEOUT: Duration = Duration::from_mins(5);
/// No picture for this long while connected restarts the session, by default.
pub const WATCHDOG: Duration = Duration::from_secs(10);
/// Wait between tries while the host cannot be reached.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);
/// The attract screen starts a new session by itself after this long.
pub const ATTRACT_FOR: Duration = Duration::from_secs(15);
/// The admin PIN prompt closes after this long without a key.
pub const PIN_PROMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Wrong PINs in a row before the prompt locks.
pub const PIN_TRIES: u32 = 3;
/// How long the prompt stays locked after too many wrong PINs.
pub const PIN_LOCKOUT: Duration = Duration::from_mins(1);
/// Longest PIN accepted (digits).
pub const PIN_MAX_DIGITS: usize = 12;

/// The kiosk's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// End a session with no input for this long (None: never).
    pub idle_timeout: Option<Duration>,
    /// Restart a connected session that shows no picture for this long.
    pub watchdog: Duration,
    /// The admin exit asks for this PIN first (digits; None: exits at once).
    pub admin_pin: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self { idle_timeout: Some(IDLE_TIMEOUT), watchdog: WATCHDOG, admin_pin: None }
    }
}

/// What the window must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start a session.
    Connect,
    /// Stop the running session (then report [`Kiosk::on_session_over`]).
    EndSession(EndReason),
    /// Close kumo (the admin asked).
    Exit,
}

/// Why the kiosk ends a session by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// No input for the idle timeout: back to the attract screen for the next player.
    Idle,
    /// Connected but no picture for the watchdog's time: start again.
    Watchdog,
}

/// A key as the admin PIN prompt sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKey {
    Digit(u8),
    Backspace,
    Enter,
    Escape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// A session is being set up.
    Connecting { attempt: u32 },
    /// A session runs (its own reconnects included).
    Connected { since: Duration, last_picture: Option<Duration>, reconnecting: bool },
    /// Stopping a session the kiosk ended; then `next`.
    Ending { reason: EndReason },
    /// Try `attempt` failed; the next starts at `at`.
    Retrying { at: Duration, attempt: u32, error: String },
    /// Waiting for the next player.
    Attract { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Prompt {
    typed: String,
    last_key: Duration,
    /// The last entry was wrong.
    wrong: bool,
}

/// What the kiosk shows over (or instead of) the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum KioskView {
    /// The stream, or the session's own state screen (connecting, reconnecting banner).
    Session,
    /// A full screen of the kiosk's own: the attract screen or the retry screen.
    Screen { headline: String, detail: String, elapsed_secs: f64 },
}

/// The admin prompt, when open: what to draw over everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinView {
    pub digits: usize,
    pub message: String,
}

/// The kiosk's state.
#[derive(Debug, Clone)]
pub struct Kiosk {
    policy: Policy,
    host: String,
    phase: Phase,
    since: Duration,
    last_input: Duration,
    prompt: Option<Prompt>,
    wrong_pins: u32,
    locked_until: Option<Duration>,
}

impl Kiosk {
    /// A kiosk that will show `host`'s stream; call [`Kiosk::start`] once the window is up.
    pub fn new(policy: Policy, host: impl Into<String>) -> Self {
        Self {
            policy,
            host: host.into(),
            phase: Phase::Connecting { attempt: 1 },
            since: Duration::ZERO,
            last_input: Duration::ZERO,
            prompt: None,
            wrong_pins: 0,
            locked_until: None,
        }
    }

    fn enter(&mut self, phase: Phase, now: Duration) {
        self.phase = phase;
        self.since = now;
    }

    /// The window is up: connect by itself.
    pub fn start(&mut self, now: Duration) -> Command {
        self.enter(Phase::Connecting { attempt: 1 }, now);
        Command::Connect
    }

    /// The session is up.
    pub fn on_connected(&mut self, now: Duration) {
        self.last_input = now;
        self.enter(Phase::Connected { since: now, last_picture: None, reconnecting: false }, now);
    }

    /// A session could not be started, or failed (gave up reconnecting, refused): try again.
    pub fn on_failed(&mut self, error: &str, now: Duration) {
        let attempt = match &self.phase {
            Phase::Connecting { attempt } | Phase::Retrying { attempt, .. } => *attempt,
            _ => 1,
        };
        self.enter(Phase::Retrying { at: now + RETRY_AFTER, attempt, error: error.to_owned() }, now);
    }

    /// The session ended without an error: by the host (`message`), or because the kiosk
    /// stopped it.
    pub fn on_session_over(&mut self, message: Option<&str>, now: Duration) -> Option<Command> {
        match self.phase.clone() {
            Phase::Ending { reason: EndReason::Watchdog } => {
                self.enter(Phase::Connecting { attempt: 1 }, now);
                Some(Command::Connect)
            }
            Phase::Ending { reason: EndReason::Idle } => {
                let message = "The last session ended after a while without input.".to_owned();
                self.enter(Phase::Attract { message }, now);
                None
            }
            _ => {
                let message = match message {
                    Some(m) if !m.is_empty() => format!("The host ended the last session: {m}."),
                    _ => "The last session ended.".to_owned(),
                };
                self.enter(Phase::Attract { message }, now);
                None
            }
        }
    }

    /// A picture was shown.
    pub fn on_picture(&mut self, now: Duration) {
        if let Phase::Connected { last_picture, reconnecting, .. } = &mut self.phase {
            *last_picture = Some(now);
            *reconnecting = false;
        }
    }

    /// The host said the picture shown is still current: the session is alive, as if a
    /// picture was shown (a still desktop is not a hung session).
    pub fn on_still(&mut self, now: Duration) {
        if let Phase::Connected { last_picture: last @ Some(_), .. } = &mut self.phase {
            *last = Some(now);
        }
    }

    /// The session lost its connection and is getting it back: the watchdog waits until it
    /// has (a kiosk's session reconnects for ever; its screen says so meanwhile).
    pub fn on_reconnecting(&mut self) {
        if let Phase::Connected { reconnecting, .. } = &mut self.phase {
            *reconnecting = true;
        }
    }

    /// The session has its connection back: the watchdog watches again, from now.
    pub fn on_reconnected(&mut self, now: Duration) {
        if let Phase::Connected { since, last_picture, reconnecting } = &mut self.phase {
            (*since, *last_picture, *reconnecting) = (now, None, false);
        }
    }

    /// A player pressed a key, a button, or moved the mouse; on the attract screen, that
    /// starts a session.
    pub fn on_input(&mut self, now: Duration) -> Option<Command> {
        self.last_input = now;
        if matches!(self.phase, Phase::Attract { .. }) {
            self.enter(Phase::Connecting { attempt: 1 }, now);
            return Some(Command::Connect);
        }
        None
    }

    /// Time passes: retries, the attract screen's own restart, the idle timeout, the
    /// watchdog, and the PIN prompt's timeout.
    pub fn tick(&mut self, now: Duration) -> Option<Command> {
        if self.prompt.as_ref().is_some_and(|p| now.saturating_sub(p.last_key) >= PIN_PROMPT_TIMEOUT) {
            self.prompt = None;
        }
        if self.locked_until.is_some_and(|t| now >= t) {
            self.locked_until = None;
            self.wrong_pins = 0;
        }
        match self.phase.clone() {
            Phase::Retrying { at, attempt, .. } if now >= at => {
                self.enter(Phase::Connecting { attempt: attempt + 1 }, now);
                Some(Command::Connect)
            }
            Phase::Attract { .. } if now.saturating_sub(self.since) >= ATTRACT_FOR => {
                self.enter(Phase::Connecting { attempt: 1 }, now);
                Some(Command::Connect)
            }
            Phase::Connected { since, last_picture, reconnecting } => {
                if self.policy.idle_timeout.is_some_and(|idle| now.saturating_sub(self.last_input) >= idle) {
                    self.enter(Phase::Ending { reason: EndReason::Idle }, now);
                    return Some(Command::EndSession(EndReason::Idle));
                }
                let quiet_since = last_picture.unwrap_or(since);
                if !reconnecting && now.saturating_sub(quiet_since) >= self.policy.watchdog {
                    self.enter(Phase::Ending { reason: EndReason::Watchdog }, now);
                    return Some(Command::EndSession(EndReason::Watchdog));
                }
                None
            }
            _ => None,
        }
    }

    /// The admin combination was pressed.
    pub fn on_admin_combo(&mut self, now: Duration) -> Option<Command> {
        if self.policy.admin_pin.is_none() {
            return Some(Command::Exit);
        }
        self.prompt = Some(Prompt { typed: String::new(), last_key: now, wrong: false });
        None
    }

    /// Whether keys go to the PIN prompt (not to the game).
    pub fn prompt_open(&self) -> bool {
        self.prompt.is_some()
    }

    /// A key while the prompt is open.
    pub fn on_pin_key(&mut self, key: PinKey, now: Duration) -> Option<Command> {
        let locked = self.locked_until.is_some();
        let pin = self.policy.admin_pin.clone()?;
        let prompt = self.prompt.as_mut()?;
        prompt.last_key = now;
        match key {
            PinKey::Digit(d) if d <= 9 && prompt.typed.len() < PIN_MAX_DIGITS => {
                prompt.typed.push(char::from(b'0' + d));
                prompt.wrong = false;
            }
            PinKey::Digit(_) => {}
            PinKey::Backspace => {
                prompt.typed.pop();
            }
            PinKey::Escape => self.prompt = None,
            PinKey::Enter if locked => prompt.typed.clear(),
            PinKey::Enter => {
                if prompt.typed == pin {
                    self.prompt = None;
                    return Some(Command::Exit);
                }
                prompt.typed.clear();
                prompt.wrong = true;
                self.wrong_pins += 1;
                if self.wrong_pins >= PIN_TRIES {
                    self.locked_until = Some(now + PIN_LOCKOUT);
                }
            }
        }
        None
    }

    /// The admin prompt, if open.
    pub fn pin_view(&self, now: Duration) -> Option<PinView> {
        let prompt = self.prompt.as_ref()?;
        let message = match self.locked_until {
            Some(t) => format!("Too many wrong PINs: try again in {} s.", t.saturating_sub(now).as_secs().max(1)),
            None if prompt.wrong => "Wrong PIN. Enter the admin PIN, then Enter (Esc cancels).".to_owned(),
            None => "Enter the admin PIN, then Enter (Esc cancels).".to_owned(),
        };
        Some(PinView { digits: prompt.typed.len(), message })
    }

    /// What to show.
    pub fn view(&self, now: Duration) -> KioskView {
        let elapsed_secs = now.saturating_sub(self.since).as_secs_f64();
        match &self.phase {
            Phase::Retrying { attempt, error, .. } => KioskView::Screen {
                headline: format!("Reconnecting to {}…", self.host),
                detail: format!("Attempt {attempt} failed: {error}. Trying again."),
                elapsed_secs,
            },
            Phase::Attract { message } => KioskView::Screen {
                headline: "Press any key to play".to_owned(),
                detail: message.clone(),
                elapsed_secs,
            },
            Phase::Ending { .. } => {
                KioskView::Screen { headline: "Starting again…".to_owned(), detail: String::new(), elapsed_secs }
            }
            Phase::Connecting { .. } | Phase::Connected { .. } => KioskView::Session,
        }
    }

    /// Whether a session should be running (the window passes input to it only then).
    pub fn in_session(&self) -> bool {
        matches!(self.phase, Phase::Connected { .. })
    }
}

/// Stick travel that counts as a player's input (of ±32767): a worn stick drifts by less
/// than this, so a drifting pad does not keep a kiosk from going idle.
pub const STICK_ACTIVITY: i32 = 4096;
/// Trigger travel that counts as input (of 65535).
pub const TRIGGER_ACTIVITY: i32 = 8192;

/// Whether the pads went from `before` to `after` by a player's hand: a button, a pad
/// connected or gone, or a stick or trigger moved further than drift does. Compare against
/// the state at the last activity, so that drift cannot add up unnoticed step by step but a
/// slow, real movement still counts once it has travelled far enough.
pub fn pad_activity(before: &[PadState], after: &[PadState]) -> bool {
    before.iter().zip(after).any(|(b, a)| {
        let far = |x: i16, y: i16| (i32::from(x) - i32::from(y)).abs() >= STICK_ACTIVITY;
        b.connected != a.connected
            || b.buttons != a.buttons
            || (0..2).any(|i| far(b.left[i], a.left[i]) || far(b.right[i], a.right[i]))
            || (0..2).any(|i| (i32::from(b.triggers[i]) - i32::from(a.triggers[i])).abs() >= TRIGGER_ACTIVITY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn streaming_kiosk(policy: Policy) -> Kiosk {
        let mut k = Kiosk::new(policy, "arcade-1");
        assert_eq!(k.start(s(0.0)), Command::Connect);
        k.on_connected(s(0.5));
        k.on_picture(s(0.6));
        k
    }

    #[test]
    fn failures_are_retried_for_ever_with_the_reason_on_screen() {
        let mut k = Kiosk::new(Policy::default(), "arcade-1");
        assert_eq!(k.start(s(0.0)), Command::Connect);
        let mut now = 0.0;
        for attempt in 1..=50 {
            k.on_failed("the host did not answer", s(now));
            match k.view(s(now + 0.5)) {
                KioskView::Screen { headline, detail, .. } => {
                    assert_eq!(headline, "Reconnecting to arcade-1…");
                    assert!(detail.contains(&format!("Attempt {attempt} failed: the host did not answer")), "{detail}");
                }
                KioskView::Session => panic!("no retry screen"),
            }
            assert_eq!(k.tick(s(now + 1.0)), None, "not before the retry delay");
            now += RETRY_AFTER.as_secs_f64();
            assert_eq!(k.tick(s(now)), Some(Command::Connect));
        }
        k.on_connected(s(now + 0.1));
        assert_eq!(k.view(s(now + 0.2)), KioskView::Session);
    }

    #[test]
    fn an_idle_session_ends_and_the_attract_screen_waits_for_a_key() {
        let policy = Policy { idle_timeout: Some(s(60.0)), ..Policy::default() };
        let mut k = streaming_kiosk(policy);
        for t in 1..60 {
            k.on_picture(s(f64::from(t)));
            if t == 30 {
                assert_eq!(k.on_input(s(30.0)), None);
            }
            assert_eq!(k.tick(s(f64::from(t))), None);
        }
        // 60 s after the last input at 30 s.
        k.on_picture(s(89.9));
        assert_eq!(k.tick(s(89.9)), None);
        assert_eq!(k.tick(s(90.0)), Some(Command::EndSession(EndReason::Idle)));
        assert_eq!(k.on_session_over(None, s(90.5)), None);
        match k.view(s(91.0)) {
            KioskView::Screen { headline, detail, .. } => {
                assert_eq!(headline, "Press any key to play");
                assert!(detail.contains("without input"), "{detail}");
            }
            KioskView::Session => panic!("no attract screen"),
        }
        assert!(!k.in_session());
        assert_eq!(k.tick(s(95.0)), None);
        assert_eq!(k.on_input(s(96.0)), Some(Command::Connect));
    }

    #[test]
    fn the_attract_screen_starts_a_session_by_itself_for_pad_only_kiosks() {
        let mut k = streaming_kiosk(Policy::default());
        assert_eq!(k.on_session_over(Some("the game was closed"), s(10.0)), None);
        match k.view(s(10.0)) {
            KioskView::Screen { detail, .. } => assert!(detail.contains("the game was closed"), "{detail}"),
            KioskView::Session => panic!("no attract screen"),
        }
        assert_eq!(k.tick(s(10.0 + ATTRACT_FOR.as_secs_f64() - 0.1)), None);
        assert_eq!(k.tick(s(10.0) + ATTRACT_FOR), Some(Command::Connect));
    }

    #[test]
    fn a_still_desktop_is_not_a_hung_session() {
        let mut k = streaming_kiosk(Policy { idle_timeout: None, ..Policy::default() });
        k.on_picture(s(5.0));
        for t in 6..60 {
            k.on_still(s(f64::from(t)));
            assert_eq!(k.tick(s(f64::from(t) + 0.5)), None, "at {t} s");
        }
        // The words stop (the host hung): the watchdog counts from the last one.
        assert_eq!(k.tick(s(69.0)), Some(Command::EndSession(EndReason::Watchdog)));
    }

    #[test]
    fn the_watchdog_restarts_a_session_without_pictures_but_not_while_it_reconnects() {
        let mut k = streaming_kiosk(Policy { idle_timeout: None, ..Policy::default() });
        k.on_picture(s(5.0));
        // Reconnecting: the session's own timeout applies, not the watchdog.
        k.on_reconnecting();
        assert_eq!(k.tick(s(30.0)), None);
        k.on_picture(s(31.0));
        assert_eq!(k.tick(s(40.9)), None);
        // Reconnected but no picture since: the watchdog counts from the reconnection.
        k.on_reconnecting();
        k.on_reconnected(s(35.0));
        assert_eq!(k.tick(s(44.9)), None);
        assert_eq!(k.tick(s(45.0)), Some(Command::EndSession(EndReason::Watchdog)));
        assert_eq!(k.on_session_over(None, s(45.1)), Some(Command::Connect));
        k.on_connected(s(31.0));
        k.on_picture(s(31.0));
        assert_eq!(k.tick(s(41.0)), Some(Command::EndSession(EndReason::Watchdog)));
        // Once stopped, it connects again at once (no attract screen).
        assert_eq!(k.on_session_over(None, s(41.2)), Some(Command::Connect));
        // A session that never shows a picture is restarted too.
        k.on_connected(s(42.0));
        assert_eq!(k.tick(s(51.9)), None);
        assert_eq!(k.tick(s(52.0)), Some(Command::EndSession(EndReason::Watchdog)));
    }

    #[test]
    fn the_admin_combo_exits_at_once_without_a_pin() {
        let mut k = streaming_kiosk(Policy::default());
        assert_eq!(k.on_admin_combo(s(3.0)), Some(Command::Exit));
    }

    #[test]
    fn the_admin_pin_is_asked_for_and_locks_after_wrong_tries() {
        let mut k = streaming_kiosk(Policy { admin_pin: Some("2468".into()), ..Policy::default() });
        let type_pin = |k: &mut Kiosk, pin: &str, now: f64| {
            for c in pin.bytes() {
                assert_eq!(k.on_pin_key(PinKey::Digit(c - b'0'), s(now)), None);
            }
            k.on_pin_key(PinKey::Enter, s(now))
        };
        assert_eq!(k.on_admin_combo(s(1.0)), None);
        assert!(k.prompt_open());
        assert_eq!(k.pin_view(s(1.0)).unwrap().digits, 0);
        k.on_pin_key(PinKey::Digit(2), s(1.1));
        assert_eq!(k.pin_view(s(1.1)).unwrap().digits, 1);
        // Escape closes it; keys go to the game again.
        k.on_pin_key(PinKey::Escape, s(1.2));
        assert!(!k.prompt_open());
        // Two wrong PINs, then the right one.
        k.on_admin_combo(s(2.0));
        assert_eq!(type_pin(&mut k, "1111", 2.1), None);
        assert!(k.pin_view(s(2.1)).unwrap().message.starts_with("Wrong PIN"));
        assert_eq!(type_pin(&mut k, "2467", 2.2), None);
        k.on_pin_key(PinKey::Digit(9), s(2.3));
        k.on_pin_key(PinKey::Backspace, s(2.3));
        assert_eq!(type_pin(&mut k, "2468", 2.4), Some(Command::Exit));
    }

    #[test]
    fn three_wrong_pins_lock_the_prompt_even_against_the_right_one() {
        let mut k = streaming_kiosk(Policy { admin_pin: Some("2468".into()), ..Policy::default() });
        k.on_admin_combo(s(1.0));
        for _ in 0..PIN_TRIES {
            for d in [1, 2, 3, 4] {
                k.on_pin_key(PinKey::Digit(d), s(1.0));
            }
            k.on_pin_key(PinKey::Enter, s(1.0));
        }
        assert!(k.pin_view(s(1.0)).unwrap().message.starts_with("Too many wrong PINs"));
        for d in [2, 4, 6, 8] {
            k.on_pin_key(PinKey::Digit(d), s(2.0));
        }
        assert_eq!(k.on_pin_key(PinKey::Enter, s(2.0)), None, "locked");
        // The lockout ends; the prompt timed out meanwhile.
        k.tick(s(1.0) + PIN_LOCKOUT);
        assert!(!k.prompt_open());
        k.on_admin_combo(s(70.0));
        for d in [2, 4, 6, 8] {
            k.on_pin_key(PinKey::Digit(d), s(70.0));
        }
        assert_eq!(k.on_pin_key(PinKey::Enter, s(70.0)), Some(Command::Exit));
    }

    #[test]
    fn the_prompt_closes_by_itself() {
        let mut k = streaming_kiosk(Policy { admin_pin: Some("1".into()), ..Policy::default() });
        k.on_admin_combo(s(1.0));
        k.tick(s(1.0 + PIN_PROMPT_TIMEOUT.as_secs_f64() - 0.1));
        assert!(k.prompt_open());
        k.tick(s(1.0) + PIN_PROMPT_TIMEOUT);
        assert!(!k.prompt_open());
    }

    #[test]
    fn drift_is_not_a_player() {
        let still = [PadState { connected: true, left: [1000, -800], ..PadState::default() }];
        let mut drifted = still;
        drifted[0].left = [1000 + 3000, -800 - 2000];
        drifted[0].triggers = [4000, 0];
        assert!(!pad_activity(&still, &drifted), "drift kept the kiosk awake");
        let mut pushed = still;
        pushed[0].left[0] = 20_000;
        assert!(pad_activity(&still, &pushed));
        let mut pressed = still;
        pressed[0].buttons = 1;
        assert!(pad_activity(&still, &pressed));
        let mut gone = still;
        gone[0].connected = false;
        assert!(pad_activity(&still, &gone));
        let mut trigger = still;
        trigger[0].triggers[1] = 30_000;
        assert!(pad_activity(&still, &trigger));
    }
}

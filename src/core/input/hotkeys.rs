//! The window's hotkeys: which key combination does what, and how a player changes them.
//!
//! Moonlight's defaults, so players' habits carry over: Ctrl+Alt+Shift with S (overlay),
//! X (fullscreen), Z (release / regain keyboard and mouse) and Q (quit), plus F11 for
//! fullscreen and R to save the replay buffer (kumo's own), and Back + Start + both bumpers on a pad for the overlay. Every one can be
//! rebound in the config file (`[hotkeys]`), written the way menus write them:
//! `"Ctrl+Alt+Shift+S"`, `"F11"`, `"Ctrl+F5"`. Pure: the window shell reduces a key press to a
//! [`KeyPress`] and asks for the [`Action`].

use crate::input::button;
use std::fmt;

/// A key press, reduced to what hotkeys look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPress {
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
    pub key: Key,
}

/// The keys hotkeys can use (physical positions, US layout, so layouts do not move them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// 'A'..='Z'.
    Letter(char),
    /// 0..=9.
    Digit(u8),
    /// F1..=F12.
    F(u8),
    Other,
}

/// A key with its modifiers; a hotkey matches only its exact modifiers.
pub type Chord = KeyPress;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ToggleOverlay,
    ToggleFullscreen,
    /// Release the keyboard and mouse to the desktop, or take them back for the game.
    ToggleCapture,
    Quit,
    /// Save the replay buffer's last seconds to a file (`--replay-seconds`).
    SaveReplay,
    /// Mute the microphone, or turn it back on (`--mic`).
    MuteMic,
    /// Held: the microphone is on while the chord is down, muted otherwise (bound only in the
    /// config file: `hotkeys.push_to_talk`).
    PushToTalk,
}

/// Why a hotkey could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a hotkey: {why} (write it like \"Ctrl+Alt+Shift+S\" or \"F11\")")]
pub struct ChordError {
    pub text: String,
    pub why: &'static str,
}

/// Parses "Ctrl+Alt+Shift+S", "F11", "ctrl+f5".
pub fn parse_chord(text: &str) -> Result<Chord, ChordError> {
    let err = |why| ChordError { text: text.to_owned(), why };
    let mut press = KeyPress { ctrl: false, alt: false, shift: false, key: Key::Other };
    let parts: Vec<&str> = text.split('+').map(str::trim).collect();
    let (key, modifiers) = parts.split_last().ok_or_else(|| err("it is empty"))?;
    for m in modifiers {
        match m.to_ascii_lowercase().as_str() {
            "ctrl" | "control" => press.ctrl = true,
            "alt" => press.alt = true,
            "shift" => press.shift = true,
            _ => return Err(err("modifiers are Ctrl, Alt and Shift")),
        }
    }
    let upper = key.to_ascii_uppercase();
    press.key = match upper.as_bytes() {
        [c @ b'A'..=b'Z'] => Key::Letter(char::from(*c)),
        [c @ b'0'..=b'9'] => Key::Digit(c - b'0'),
        _ => match upper.strip_prefix('F').and_then(|n| n.parse::<u8>().ok()) {
            Some(n @ 1..=12) => Key::F(n),
            _ => return Err(err("the key must be a letter, a digit or F1-F12")),
        },
    };
    if !press.ctrl && !press.alt && matches!(press.key, Key::Letter(_) | Key::Digit(_)) {
        return Err(err("a letter or digit needs Ctrl or Alt, or it would steal the game's key"));
    }
    Ok(press)
}

impl fmt::Display for KeyPress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, name) in [(self.ctrl, "Ctrl+"), (self.alt, "Alt+"), (self.shift, "Shift+")] {
            if on {
                f.write_str(name)?;
            }
        }
        match self.key {
            Key::Letter(c) => write!(f, "{c}"),
            Key::Digit(d) => write!(f, "{d}"),
            Key::F(n) => write!(f, "F{n}"),
            Key::Other => f.write_str("?"),
        }
    }
}

/// Parses a pad combo from button names (`["Back", "Start", "LB", "RB"]`).
pub fn parse_pad_combo(names: &[String]) -> Result<u32, String> {
    let mut bits = 0;
    for name in names {
        let bit =
            button::NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, b)| b).ok_or_else(|| {
                format!("unknown pad button `{name}` (A B X Y LB RB Back Start Guide LS RS Up Down Left Right)")
            })?;
        bits |= bit;
    }
    if bits.count_ones() < 2 {
        return Err("a pad combo needs at least two buttons, or it would steal the game's button".into());
    }
    Ok(bits)
}

/// The bindings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hotkeys {
    pub bindings: Vec<(Chord, Action)>,
    /// Pad buttons that, held together on one pad, toggle the overlay.
    pub pad_overlay: u32,
}

impl Default for Hotkeys {
    fn default() -> Self {
        let chord = |c| KeyPress { ctrl: true, alt: true, shift: true, key: Key::Letter(c) };
        Self {
            bindings: vec![
                (chord('S'), Action::ToggleOverlay),
                (chord('X'), Action::ToggleFullscreen),
                (KeyPress { ctrl: false, alt: false, shift: false, key: Key::F(11) }, Action::ToggleFullscreen),
                (chord('Z'), Action::ToggleCapture),
                (chord('Q'), Action::Quit),
                (chord('R'), Action::SaveReplay),
                (chord('M'), Action::MuteMic),
            ],
            pad_overlay: button::BACK | button::START | button::LEFT_BUMPER | button::RIGHT_BUMPER,
        }
    }
}

impl Hotkeys {
    /// Replaces every binding of `action` with `chord`.
    pub fn bind(&mut self, action: Action, chord: Chord) {
        self.bindings.retain(|(_, a)| *a != action);
        self.bindings.push((chord, action));
    }

    /// The action a press triggers, if any.
    pub fn action(&self, press: KeyPress) -> Option<Action> {
        self.bindings.iter().find(|(chord, _)| *chord == press).map(|&(_, action)| action)
    }

    /// Whether a pad's buttons hold the overlay combo.
    pub fn pad_combo(&self, buttons: u32) -> bool {
        self.pad_overlay != 0 && buttons & self.pad_overlay == self.pad_overlay
    }

    /// The chord bound to an action, for help texts.
    pub fn chord_of(&self, action: Action) -> Option<Chord> {
        self.bindings.iter().find(|(_, a)| *a == action).map(|&(c, _)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(ctrl: bool, alt: bool, shift: bool, key: Key) -> KeyPress {
        KeyPress { ctrl, alt, shift, key }
    }

    #[test]
    fn moonlight_defaults() {
        let h = Hotkeys::default();
        assert_eq!(h.action(press(true, true, true, Key::Letter('S'))), Some(Action::ToggleOverlay));
        assert_eq!(h.action(press(true, true, true, Key::Letter('X'))), Some(Action::ToggleFullscreen));
        assert_eq!(h.action(press(true, true, true, Key::Letter('Q'))), Some(Action::Quit));
        assert_eq!(h.action(press(true, true, true, Key::Letter('Z'))), Some(Action::ToggleCapture));
        assert_eq!(h.action(press(true, true, true, Key::Letter('R'))), Some(Action::SaveReplay));
        assert_eq!(h.action(press(false, false, false, Key::F(11))), Some(Action::ToggleFullscreen));
    }

    #[test]
    fn game_keys_stay_with_the_game() {
        let h = Hotkeys::default();
        // Without the whole chord, S is a game's "move back", and Ctrl+Shift+Q may be a game's too.
        assert_eq!(h.action(press(false, false, false, Key::Letter('S'))), None);
        assert_eq!(h.action(press(true, false, true, Key::Letter('Q'))), None);
        assert_eq!(h.action(press(true, true, true, Key::Other)), None);
        assert_eq!(h.action(press(false, true, false, Key::F(11))), None);
    }

    #[test]
    fn chords_parse_print_and_rebind() {
        let c = parse_chord("ctrl+alt+shift+s").unwrap();
        assert_eq!(c, press(true, true, true, Key::Letter('S')));
        assert_eq!(c.to_string(), "Ctrl+Alt+Shift+S");
        assert_eq!(parse_chord("F5").unwrap().key, Key::F(5));
        assert_eq!(parse_chord("Alt+3").unwrap().key, Key::Digit(3));
        for bad in ["", "Hyper+S", "Ctrl+F13", "Ctrl+Enter", "S", "Shift+S"] {
            assert!(parse_chord(bad).is_err(), "{bad}");
        }
        let mut h = Hotkeys::default();
        h.bind(Action::ToggleOverlay, parse_chord("Ctrl+F1").unwrap());
        assert_eq!(h.action(press(true, false, false, Key::F(1))), Some(Action::ToggleOverlay));
        assert_eq!(h.action(press(true, true, true, Key::Letter('S'))), None, "the old binding is gone");
        assert_eq!(h.chord_of(Action::ToggleOverlay).unwrap().to_string(), "Ctrl+F1");
    }

    #[test]
    fn the_pad_combo_needs_all_its_buttons() {
        use crate::input::button::{A, BACK, LEFT_BUMPER, RIGHT_BUMPER, START};
        let h = Hotkeys::default();
        assert!(h.pad_combo(BACK | START | LEFT_BUMPER | RIGHT_BUMPER));
        assert!(h.pad_combo(BACK | START | LEFT_BUMPER | RIGHT_BUMPER | A));
        assert!(!h.pad_combo(BACK | START | LEFT_BUMPER));
        assert_eq!(parse_pad_combo(&["Guide".into(), "a".into()]), Ok(button::GUIDE | A));
        assert!(parse_pad_combo(&["A".into()]).is_err());
        assert!(parse_pad_combo(&["Turbo".into(), "A".into()]).is_err());
    }
}

//! The window's hotkeys: which key combination does what.
//!
//! Moonlight's defaults, so players' habits carry over: Ctrl+Alt+Shift with S (overlay),
//! X (fullscreen), Z (release / regain keyboard and mouse) and Q (quit), plus F11 for
//! fullscreen. Pure: the window shell reduces a
//! key press to a [`Press`] and asks for the [`Action`]. Issue 4 makes them configurable.

/// A key press, reduced to what hotkeys look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
    pub key: Key,
}

/// The keys hotkeys use (physical positions, so layouts do not move them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A letter key, by its US-layout position: 'A'..='Z'.
    Letter(char),
    F11,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ToggleOverlay,
    ToggleFullscreen,
    /// Release the keyboard and mouse to the desktop, or take them back for the game.
    ToggleCapture,
    Quit,
}

/// The action a press triggers, if any.
pub fn action(press: Press) -> Option<Action> {
    let chord = press.ctrl && press.alt && press.shift;
    match press.key {
        Key::Letter('S') if chord => Some(Action::ToggleOverlay),
        Key::Letter('X') if chord => Some(Action::ToggleFullscreen),
        Key::Letter('Q') if chord => Some(Action::Quit),
        Key::Letter('Z') if chord => Some(Action::ToggleCapture),
        Key::F11 if !press.ctrl && !press.alt && !press.shift => Some(Action::ToggleFullscreen),
        _ => None,
    }
}

/// Whether a pad's buttons hold the overlay combo: Back + Start + both bumpers (a chord no
/// game uses on its own).
pub fn pad_combo(buttons: u32) -> bool {
    use super::input::button::{BACK, LEFT_BUMPER, RIGHT_BUMPER, START};
    let combo = BACK | START | LEFT_BUMPER | RIGHT_BUMPER;
    buttons & combo == combo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(ctrl: bool, alt: bool, shift: bool, key: Key) -> Press {
        Press { ctrl, alt, shift, key }
    }

    #[test]
    fn moonlight_defaults() {
        assert_eq!(action(press(true, true, true, Key::Letter('S'))), Some(Action::ToggleOverlay));
        assert_eq!(action(press(true, true, true, Key::Letter('X'))), Some(Action::ToggleFullscreen));
        assert_eq!(action(press(true, true, true, Key::Letter('Q'))), Some(Action::Quit));
        assert_eq!(action(press(true, true, true, Key::Letter('Z'))), Some(Action::ToggleCapture));
        assert_eq!(action(press(false, false, false, Key::F11)), Some(Action::ToggleFullscreen));
    }

    #[test]
    fn the_pad_combo_needs_all_four_buttons() {
        use crate::core::input::button::{A, BACK, LEFT_BUMPER, RIGHT_BUMPER, START};
        assert!(pad_combo(BACK | START | LEFT_BUMPER | RIGHT_BUMPER));
        assert!(pad_combo(BACK | START | LEFT_BUMPER | RIGHT_BUMPER | A));
        assert!(!pad_combo(BACK | START | LEFT_BUMPER));
        assert!(!pad_combo(START));
    }

    #[test]
    fn game_keys_stay_with_the_game() {
        // Without the whole chord, S is a game's "move back", and Ctrl+Shift+Q may be a game's too.
        assert_eq!(action(press(false, false, false, Key::Letter('S'))), None);
        assert_eq!(action(press(true, false, true, Key::Letter('Q'))), None);
        assert_eq!(action(press(true, true, true, Key::Other)), None);
        assert_eq!(action(press(false, true, false, Key::F11)), None);
    }
}

//! winit's keyboard and mouse to kumo's input: physical key codes to USB HID usage ids (the
//! keyboard's wire form), mouse buttons to their bits, and wheel and raw motion to whole counts.
//!
//! Physical codes name a key by its position (US layout), so a French AZERTY player's "Z" key
//! is still the game's "W": layouts do not break games. Keys without a HID usage here are not
//! sent.

use crate::core::input::hotkeys::Key;
use crate::core::input::mouse_button;
use winit::event::{MouseButton, MouseScrollDelta};
use winit::keyboard::KeyCode;

/// The bit of a mouse button in the input state (0: a button kumo does not send).
pub fn mouse_bit(button: MouseButton) -> u8 {
    match button {
        MouseButton::Left => mouse_button::LEFT,
        MouseButton::Right => mouse_button::RIGHT,
        MouseButton::Middle => mouse_button::MIDDLE,
        MouseButton::Back => mouse_button::BACK,
        MouseButton::Forward => mouse_button::FORWARD,
        MouseButton::Other(_) => 0,
    }
}

/// Touchpad pixels that make one wheel step.
const PIXELS_PER_STEP: f64 = 40.0;

/// The fractions of wheel steps and motion counts not sent yet: high-resolution mice,
/// touchpads and scaled desktops report less than one at a time, and the rest carries over.
#[derive(Debug, Default)]
pub struct MouseRest {
    scroll: f64,
    motion: (f64, f64),
}

impl MouseRest {
    /// Whole wheel steps to send for this wheel event.
    pub fn wheel(&mut self, delta: MouseScrollDelta) -> i32 {
        self.scroll += match delta {
            MouseScrollDelta::LineDelta(_, y) => f64::from(y),
            MouseScrollDelta::PixelDelta(p) => p.y / PIXELS_PER_STEP,
        };
        let steps = self.scroll.trunc();
        self.scroll -= steps;
        steps as i32
    }

    /// Whole motion counts to send for this raw motion.
    pub fn motion(&mut self, dx: f64, dy: f64) -> (i32, i32) {
        let (rx, ry) = (self.motion.0 + dx, self.motion.1 + dy);
        let (sx, sy) = (rx.trunc(), ry.trunc());
        self.motion = (rx - sx, ry - sy);
        (sx as i32, sy as i32)
    }
}

/// The HID usage id of a physical key, if kumo sends it.
pub fn hid_usage(code: KeyCode) -> Option<u8> {
    use KeyCode as K;
    let letters = [
        K::KeyA,
        K::KeyB,
        K::KeyC,
        K::KeyD,
        K::KeyE,
        K::KeyF,
        K::KeyG,
        K::KeyH,
        K::KeyI,
        K::KeyJ,
        K::KeyK,
        K::KeyL,
        K::KeyM,
        K::KeyN,
        K::KeyO,
        K::KeyP,
        K::KeyQ,
        K::KeyR,
        K::KeyS,
        K::KeyT,
        K::KeyU,
        K::KeyV,
        K::KeyW,
        K::KeyX,
        K::KeyY,
        K::KeyZ,
    ];
    if let Some(i) = letters.iter().position(|&k| k == code) {
        return Some(0x04 + i as u8);
    }
    let digits =
        [K::Digit1, K::Digit2, K::Digit3, K::Digit4, K::Digit5, K::Digit6, K::Digit7, K::Digit8, K::Digit9, K::Digit0];
    if let Some(i) = digits.iter().position(|&k| k == code) {
        return Some(0x1E + i as u8);
    }
    let functions = [K::F1, K::F2, K::F3, K::F4, K::F5, K::F6, K::F7, K::F8, K::F9, K::F10, K::F11, K::F12];
    if let Some(i) = functions.iter().position(|&k| k == code) {
        return Some(0x3A + i as u8);
    }
    Some(match code {
        K::Enter => 0x28,
        K::Escape => 0x29,
        K::Backspace => 0x2A,
        K::Tab => 0x2B,
        K::Space => 0x2C,
        K::Minus => 0x2D,
        K::Equal => 0x2E,
        K::BracketLeft => 0x2F,
        K::BracketRight => 0x30,
        K::Backslash => 0x31,
        K::Semicolon => 0x33,
        K::Quote => 0x34,
        K::Backquote => 0x35,
        K::Comma => 0x36,
        K::Period => 0x37,
        K::Slash => 0x38,
        K::CapsLock => 0x39,
        K::PrintScreen => 0x46,
        K::ScrollLock => 0x47,
        K::Pause => 0x48,
        K::Insert => 0x49,
        K::Home => 0x4A,
        K::PageUp => 0x4B,
        K::Delete => 0x4C,
        K::End => 0x4D,
        K::PageDown => 0x4E,
        K::ArrowRight => 0x4F,
        K::ArrowLeft => 0x50,
        K::ArrowDown => 0x51,
        K::ArrowUp => 0x52,
        K::ControlLeft => 0xE0,
        K::ShiftLeft => 0xE1,
        K::AltLeft => 0xE2,
        K::SuperLeft => 0xE3,
        K::ControlRight => 0xE4,
        K::ShiftRight => 0xE5,
        K::AltRight => 0xE6,
        K::SuperRight => 0xE7,
        _ => return None,
    })
}

/// The key as hotkeys name it (letters, digits, F1-F12), from its HID usage.
pub fn hotkey_key(code: KeyCode) -> Key {
    match hid_usage(code) {
        Some(u @ 0x04..=0x1D) => Key::Letter(char::from(b'A' + (u - 0x04))),
        Some(u @ 0x1E..=0x26) => Key::Digit(u - 0x1E + 1),
        Some(0x27) => Key::Digit(0),
        Some(u @ 0x3A..=0x45) => Key::F(u - 0x3A + 1),
        _ => Key::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::input::key;

    #[test]
    fn matches_the_names_scripts_use() {
        assert_eq!(hid_usage(KeyCode::KeyW), Some(key::W));
        assert_eq!(hid_usage(KeyCode::KeyA), key::from_name("A"));
        assert_eq!(hid_usage(KeyCode::KeyZ), key::from_name("Z"));
        assert_eq!(hid_usage(KeyCode::Digit0), key::from_name("0"));
        assert_eq!(hid_usage(KeyCode::Digit1), key::from_name("1"));
        assert_eq!(hid_usage(KeyCode::F12), key::from_name("F12"));
        assert_eq!(hid_usage(KeyCode::Space), Some(key::SPACE));
        assert_eq!(hid_usage(KeyCode::ArrowUp), key::from_name("Up"));
        assert_eq!(hid_usage(KeyCode::ShiftLeft), key::from_name("LeftShift"));
        assert_eq!(hid_usage(KeyCode::Fn), None);
    }

    #[test]
    fn hotkey_keys() {
        assert_eq!(hotkey_key(KeyCode::KeyS), Key::Letter('S'));
        assert_eq!(hotkey_key(KeyCode::Digit0), Key::Digit(0));
        assert_eq!(hotkey_key(KeyCode::Digit9), Key::Digit(9));
        assert_eq!(hotkey_key(KeyCode::F11), Key::F(11));
        assert_eq!(hotkey_key(KeyCode::Enter), Key::Other);
    }

    #[test]
    fn fractions_of_wheel_steps_and_motion_carry_over() {
        use winit::dpi::PhysicalPosition;
        let mut rest = MouseRest::default();
        let px = |y| MouseScrollDelta::PixelDelta(PhysicalPosition::new(0.0, y));
        assert_eq!([rest.wheel(px(15.0)), rest.wheel(px(15.0)), rest.wheel(px(15.0))], [0, 0, 1], "40 pixels a step");
        assert_eq!(rest.wheel(MouseScrollDelta::LineDelta(0.0, -2.0)), -1, "the 5 pixels left over count");
        assert_eq!([rest.motion(0.6, -0.4), rest.motion(0.6, -0.4), rest.motion(0.6, -0.4)], [(0, 0), (1, 0), (0, -1)]);
        assert_eq!((mouse_bit(MouseButton::Right), mouse_bit(MouseButton::Other(9))), (mouse_button::RIGHT, 0));
    }
}

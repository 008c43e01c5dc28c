//! What to inject into a real program, sans IO: the player's input (whole states from the
//! datagrams, transitions from the reliable path) turned into the events a display server
//! takes (key and button downs and ups, pointer moves, wheel steps), each exactly once.
//!
//! The injector keeps what it has injected. A state injects what differs from it; a press
//! injects its transition unless the state already did, so a tap that falls between two
//! datagrams still reaches the program, and nothing is pressed twice. Keys are named by their
//! physical position: a USB HID usage maps to an XKB key name (`<AC01>` is the key right of
//! Caps Lock, `A` on QWERTY and `Q` on AZERTY), which the shell looks up in the server's
//! keymap, so every key works whatever the host's layout.

use crate::input::{InputState, MouseState, PadState, Press, mouse_button};
use std::collections::VecDeque;

/// One event for the display server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectEvent {
    /// A key by USB HID usage.
    Key { usage: u8, down: bool },
    /// A mouse button by X's numbering (1 left, 2 middle, 3 right, 8 back, 9 forward).
    Button { button: u8, down: bool },
    /// The pointer to a position over the picture, 0..=65535 on each axis.
    MoveTo { x: u16, y: u16 },
    /// Relative motion, in mouse counts.
    MoveBy { dx: i32, dy: i32 },
    /// Wheel steps (positive: away from the player, X's button 4).
    Wheel { steps: i32 },
}

/// Events waiting at most: a state can differ in every key and button at once (256 keys,
/// five buttons and three motions); more than that means the shell stopped taking them.
const MAX_PENDING: usize = 512;

/// The input injected so far, and the events still to inject.
#[derive(Debug, Default)]
pub struct Injection {
    held: InputState,
    /// Whether a pointer position was injected yet (the first state moves it).
    placed: bool,
    events: VecDeque<InjectEvent>,
}

impl Injection {
    /// A newer input state arrived: inject what differs from what is held.
    pub fn handle_state(&mut self, state: &InputState) {
        for usage in 0..=255u8 {
            let down = state.key_down(usage);
            if down != self.held.key_down(usage) {
                self.key(usage, down);
            }
        }
        for bit in 0..5u8 {
            let mask = 1 << bit;
            let down = state.mouse.buttons & mask != 0;
            if down != (self.held.mouse.buttons & mask != 0) {
                self.button(mask, down);
            }
        }
        // Totals count from the connection's start (the client rebases them on each one), as
        // the fresh injection's do.
        let (m, held) = (state.mouse, self.held.mouse);
        if !self.placed || (m.x, m.y) != (held.x, held.y) {
            self.placed = true;
            self.push(InjectEvent::MoveTo { x: m.x, y: m.y });
        }
        // Totals wrap: their difference is the motion since the last state.
        let (dx, dy) = (m.dx_total.wrapping_sub(held.dx_total), m.dy_total.wrapping_sub(held.dy_total));
        if (dx, dy) != (0, 0) {
            self.push(InjectEvent::MoveBy { dx, dy });
        }
        let steps = m.scroll_total.wrapping_sub(held.scroll_total);
        if steps != 0 {
            self.push(InjectEvent::Wheel { steps });
        }
        // Buttons were set above, as their events went out.
        self.held.mouse = MouseState { buttons: self.held.mouse.buttons, ..m };
    }

    /// A key or button transition from the reliable path.
    pub fn handle_press(&mut self, press: Press) {
        match press.device {
            Press::KEYBOARD if self.held.key_down(press.code) != press.down => self.key(press.code, press.down),
            Press::MOUSE if press.code < 5 => {
                let mask = 1 << press.code;
                if (self.held.mouse.buttons & mask != 0) != press.down {
                    self.button(mask, press.down);
                }
            }
            // Pads go to virtual pads, not to the display server.
            _ => {}
        }
    }

    /// Lets go of every key and button held (the client left): nothing stays stuck in the
    /// program.
    pub fn release_all(&mut self) {
        for usage in 0..=255u8 {
            if self.held.key_down(usage) {
                self.key(usage, false);
            }
        }
        for bit in 0..5u8 {
            let mask = 1 << bit;
            if self.held.mouse.buttons & mask != 0 {
                self.button(mask, false);
            }
        }
    }

    /// The next event to inject.
    pub fn poll_event(&mut self) -> Option<InjectEvent> {
        self.events.pop_front()
    }

    fn key(&mut self, usage: u8, down: bool) {
        self.held.set_key(usage, down);
        self.push(InjectEvent::Key { usage, down });
    }

    fn button(&mut self, mask: u8, down: bool) {
        if down {
            self.held.mouse.buttons |= mask;
        } else {
            self.held.mouse.buttons &= !mask;
        }
        self.push(InjectEvent::Button { button: x_button(mask), down });
    }

    fn push(&mut self, event: InjectEvent) {
        if self.events.len() == MAX_PENDING {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

/// X's number for a `mouse_button` bit.
fn x_button(mask: u8) -> u8 {
    match mask {
        mouse_button::LEFT => 1,
        mouse_button::MIDDLE => 2,
        mouse_button::RIGHT => 3,
        mouse_button::BACK => 8,
        _ => 9,
    }
}

/// A position over the picture (0..=65535) on a screen axis `size` pixels long.
pub fn to_pixels(position: u16, size: u16) -> i16 {
    let last = u32::from(size.max(1) - 1);
    ((u32::from(position) * last + 32_767) / 65_535).min(i16::MAX as u32) as i16
}

/// The XKB key name at the physical position of USB HID usage `usage` (HID Usage Tables,
/// keyboard page 0x07; the names are those of XKB's `keycodes/evdev`), if it has one.
pub fn xkb_key_name(usage: u8) -> Option<&'static str> {
    const LETTERS: [&str; 26] = [
        "AC01", "AB05", "AB03", "AC03", "AD03", "AC04", "AC05", "AC06", "AD08", "AC07", "AC08", "AC09", "AB07", "AB06",
        "AD09", "AD10", "AD01", "AD04", "AC02", "AD05", "AD07", "AB04", "AD02", "AB02", "AD06", "AB01",
    ];
    const DIGITS: [&str; 10] = ["AE01", "AE02", "AE03", "AE04", "AE05", "AE06", "AE07", "AE08", "AE09", "AE10"];
    const FROM_ENTER: [&str; 29] = [
        "RTRN", "ESC", "BKSP", "TAB", "SPCE", "AE11", "AE12", "AD11", "AD12", "BKSL", "AC12", "AC10", "AC11", "TLDE",
        "AB08", "AB09", "AB10", "CAPS", "FK01", "FK02", "FK03", "FK04", "FK05", "FK06", "FK07", "FK08", "FK09", "FK10",
        "FK11",
    ];
    const FROM_F12: [&str; 30] = [
        "FK12", "PRSC", "SCLK", "PAUS", "INS", "HOME", "PGUP", "DELE", "END", "PGDN", "RGHT", "LEFT", "DOWN", "UP",
        "NMLK", "KPDV", "KPMU", "KPSU", "KPAD", "KPEN", "KP1", "KP2", "KP3", "KP4", "KP5", "KP6", "KP7", "KP8", "KP9",
        "KP0",
    ];
    const MODIFIERS: [&str; 8] = ["LCTL", "LFSH", "LALT", "LWIN", "RCTL", "RTSH", "RALT", "RWIN"];
    let u = usize::from(usage);
    Some(match usage {
        0x04..=0x1d => LETTERS[u - 0x04],
        0x1e..=0x27 => DIGITS[u - 0x1e],
        0x28..=0x44 => FROM_ENTER[u - 0x28],
        0x45..=0x62 => FROM_F12[u - 0x45],
        0x63 => "KPDL",
        0x64 => "LSGT",
        0x65 => "MENU",
        0x67 => "KPEQ",
        0x68..=0x73 => return FUNCTION_13_24.get(u - 0x68).copied(),
        0xe0..=0xe7 => MODIFIERS[u - 0xe0],
        _ => return None,
    })
}

/// Linux input event codes (`linux/input-event-codes.h`) of a virtual Xbox 360-style pad: what
/// SDL and games expect from one.
pub mod pad_codes {
    pub const BTN_SOUTH: u16 = 0x130;
    pub const BTN_EAST: u16 = 0x131;
    pub const BTN_NORTH: u16 = 0x133;
    pub const BTN_WEST: u16 = 0x134;
    pub const BTN_TL: u16 = 0x136;
    pub const BTN_TR: u16 = 0x137;
    pub const BTN_SELECT: u16 = 0x13a;
    pub const BTN_START: u16 = 0x13b;
    pub const BTN_MODE: u16 = 0x13c;
    pub const BTN_THUMBL: u16 = 0x13d;
    pub const BTN_THUMBR: u16 = 0x13e;
    pub const ABS_X: u16 = 0x00;
    pub const ABS_Y: u16 = 0x01;
    pub const ABS_Z: u16 = 0x02;
    pub const ABS_RX: u16 = 0x03;
    pub const ABS_RY: u16 = 0x04;
    pub const ABS_RZ: u16 = 0x05;
    pub const ABS_HAT0X: u16 = 0x10;
    pub const ABS_HAT0Y: u16 = 0x11;
    /// Triggers go from 0 to this (as an Xbox 360 pad's driver reports them).
    pub const TRIGGER_MAX: i32 = 1023;
    /// Every button a virtual pad has, with the pad bit it follows.
    pub const BUTTONS: [(u32, u16); 11] = [
        (crate::input::button::A, BTN_SOUTH),
        (crate::input::button::B, BTN_EAST),
        (crate::input::button::X, BTN_NORTH),
        (crate::input::button::Y, BTN_WEST),
        (crate::input::button::LEFT_BUMPER, BTN_TL),
        (crate::input::button::RIGHT_BUMPER, BTN_TR),
        (crate::input::button::BACK, BTN_SELECT),
        (crate::input::button::START, BTN_START),
        (crate::input::button::GUIDE, BTN_MODE),
        (crate::input::button::LEFT_STICK, BTN_THUMBL),
        (crate::input::button::RIGHT_STICK, BTN_THUMBR),
    ];
}

/// One change for a virtual pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtualPadEvent {
    Button { code: u16, down: bool },
    Axis { code: u16, value: i32 },
}

/// What a virtual pad must be told to go from `before` to `after` (sticks as they are, y
/// down as Linux has it; triggers scaled to `TRIGGER_MAX`; the d-pad as a hat).
pub fn pad_events(before: &PadState, after: &PadState, out: &mut Vec<VirtualPadEvent>) {
    use crate::input::button;
    for (bit, code) in pad_codes::BUTTONS {
        if (before.buttons ^ after.buttons) & bit != 0 {
            out.push(VirtualPadEvent::Button { code, down: after.buttons & bit != 0 });
        }
    }
    let hat =
        |p: &PadState, minus: u32, plus: u32| i32::from(p.buttons & plus != 0) - i32::from(p.buttons & minus != 0);
    let trigger = |v: u16| i32::from(v) * pad_codes::TRIGGER_MAX / 65_535;
    let axes = |p: &PadState| {
        [
            (pad_codes::ABS_X, i32::from(p.left[0])),
            (pad_codes::ABS_Y, i32::from(p.left[1])),
            (pad_codes::ABS_RX, i32::from(p.right[0])),
            (pad_codes::ABS_RY, i32::from(p.right[1])),
            (pad_codes::ABS_Z, trigger(p.triggers[0])),
            (pad_codes::ABS_RZ, trigger(p.triggers[1])),
            (pad_codes::ABS_HAT0X, hat(p, button::DPAD_LEFT, button::DPAD_RIGHT)),
            (pad_codes::ABS_HAT0Y, hat(p, button::DPAD_UP, button::DPAD_DOWN)),
        ]
    };
    for ((code, old), (_, new)) in axes(before).into_iter().zip(axes(after)) {
        if old != new {
            out.push(VirtualPadEvent::Axis { code, value: new });
        }
    }
}

/// Rumble effects a game uploaded to one virtual pad, at most `MAX_EFFECTS` (what the pad
/// announces), and what playing one asks of the player's pad.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    slots: [Option<RumbleEffect>; MAX_EFFECTS],
}

/// Effects a virtual pad holds at once.
pub const MAX_EFFECTS: usize = 16;

/// A rumble: the heavy and light motors' strength and how long, ms (0: until stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RumbleEffect {
    pub strong: u16,
    pub weak: u16,
    pub duration_ms: u16,
}

impl Effects {
    /// The game uploaded `rumble` as effect `id`; false when the id is out of range.
    pub fn upload(&mut self, id: i16, rumble: RumbleEffect) -> bool {
        match usize::try_from(id).ok().and_then(|i| self.slots.get_mut(i)) {
            Some(slot) => {
                *slot = Some(rumble);
                true
            }
            None => false,
        }
    }

    pub fn erase(&mut self, id: u32) {
        if let Some(slot) = usize::try_from(id).ok().and_then(|i| self.slots.get_mut(i)) {
            *slot = None;
        }
    }

    /// The game played effect `id` (`count` > 0) or stopped it (0): what the player's pad
    /// should do, if the effect exists.
    pub fn play(&self, id: u16, count: i32) -> Option<RumbleEffect> {
        let rumble = (*self.slots.get(usize::from(id))?)?;
        Some(if count > 0 { rumble } else { RumbleEffect::default() })
    }
}

/// The X keysyms (unshifted, shifted) a US keyboard has at HID usage `usage`: what a key the
/// display's keymap lacks is given, on a spare keycode, so that it still types.
pub fn us_keysyms(usage: u8) -> Option<[u32; 2]> {
    const DIGITS: &[u8; 10] = b"1234567890";
    const DIGITS_SHIFTED: &[u8; 10] = b"!@#$%^&*()";
    // Usages 0x2d..=0x38, skipping 0x32 (the non-US hash key).
    const PUNCTUATION: [(u8, u8, u8); 11] = [
        (0x2d, b'-', b'_'),
        (0x2e, b'=', b'+'),
        (0x2f, b'[', b'{'),
        (0x30, b']', b'}'),
        (0x31, b'\\', b'|'),
        (0x33, b';', b':'),
        (0x34, b'\'', b'"'),
        (0x35, b'`', b'~'),
        (0x36, b',', b'<'),
        (0x37, b'.', b'>'),
        (0x38, b'/', b'?'),
    ];
    let same = |k: u32| Some([k, k]);
    match usage {
        0x04..=0x1d => {
            let lower = u32::from(b'a' + (usage - 0x04));
            Some([lower, lower - 0x20])
        }
        0x1e..=0x27 => {
            let i = usize::from(usage - 0x1e);
            Some([u32::from(DIGITS[i]), u32::from(DIGITS_SHIFTED[i])])
        }
        0x28 => same(0xff0d),
        0x29 => same(0xff1b),
        0x2a => same(0xff08),
        0x2b => same(0xff09),
        0x2c => same(0x20),
        0x39 => same(0xffe5),
        // F1..F12, then F13..F24: consecutive keysyms from F1.
        0x3a..=0x45 => same(0xffbe + u32::from(usage - 0x3a)),
        0x68..=0x73 => same(0xffbe + 12 + u32::from(usage - 0x68)),
        0x49 => same(0xff63),
        0x4a => same(0xff50),
        0x4b => same(0xff55),
        0x4c => same(0xffff),
        0x4d => same(0xff57),
        0x4e => same(0xff56),
        0x4f => same(0xff53),
        0x50 => same(0xff51),
        0x51 => same(0xff54),
        0x52 => same(0xff52),
        0xe0..=0xe7 => {
            same([0xffe3, 0xffe1, 0xffe9, 0xffeb, 0xffe4, 0xffe2, 0xffea, 0xffec][usize::from(usage - 0xe0)])
        }
        _ => PUNCTUATION.iter().find(|p| p.0 == usage).map(|p| [u32::from(p.1), u32::from(p.2)]),
    }
}

const FUNCTION_13_24: [&str; 12] =
    ["FK13", "FK14", "FK15", "FK16", "FK17", "FK18", "FK19", "FK20", "FK21", "FK22", "FK23", "FK24"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pads_changes_become_the_events_of_a_virtual_pad() {
        use crate::input::button;
        let before = PadState { connected: true, ..PadState::default() };
        let after = PadState {
            connected: true,
            buttons: button::A | button::DPAD_LEFT | button::DPAD_DOWN,
            left: [1000, -32767],
            right: [0, 0],
            triggers: [65535, 0],
        };
        let mut out = Vec::new();
        pad_events(&before, &after, &mut out);
        assert_eq!(
            out,
            [
                VirtualPadEvent::Button { code: pad_codes::BTN_SOUTH, down: true },
                VirtualPadEvent::Axis { code: pad_codes::ABS_X, value: 1000 },
                VirtualPadEvent::Axis { code: pad_codes::ABS_Y, value: -32767 },
                VirtualPadEvent::Axis { code: pad_codes::ABS_Z, value: pad_codes::TRIGGER_MAX },
                VirtualPadEvent::Axis { code: pad_codes::ABS_HAT0X, value: -1 },
                VirtualPadEvent::Axis { code: pad_codes::ABS_HAT0Y, value: 1 },
            ]
        );
        out.clear();
        pad_events(&after, &after, &mut out);
        assert!(out.is_empty(), "no change, no event");
        pad_events(&after, &before, &mut out);
        assert!(out.contains(&VirtualPadEvent::Button { code: pad_codes::BTN_SOUTH, down: false }));
        assert!(out.contains(&VirtualPadEvent::Axis { code: pad_codes::ABS_HAT0X, value: 0 }));
    }

    #[test]
    fn uploaded_effects_play_and_stop_and_bad_ids_are_refused() {
        let mut e = Effects::default();
        let rumble = RumbleEffect { strong: 40_000, weak: 1000, duration_ms: 300 };
        assert!(e.upload(3, rumble));
        assert!(!e.upload(-1, rumble));
        assert!(!e.upload(i16::try_from(MAX_EFFECTS).unwrap(), rumble));
        assert_eq!(e.play(3, 1), Some(rumble));
        assert_eq!(e.play(3, 0), Some(RumbleEffect::default()), "stopped");
        assert_eq!(e.play(4, 1), None, "never uploaded");
        assert_eq!(e.play(u16::MAX, 1), None);
        e.erase(3);
        e.erase(u32::MAX);
        assert_eq!(e.play(3, 1), None);
    }

    #[test]
    fn a_us_keyboard_s_keysyms_by_position() {
        assert_eq!(us_keysyms(0x04), Some([u32::from(b'a'), u32::from(b'A')]));
        assert_eq!(us_keysyms(0x1e), Some([u32::from(b'1'), u32::from(b'!')]));
        assert_eq!(us_keysyms(0x27), Some([u32::from(b'0'), u32::from(b')')]));
        assert_eq!(us_keysyms(0x36), Some([u32::from(b','), u32::from(b'<')]));
        assert_eq!(us_keysyms(0x3a), Some([0xffbe; 2]), "F1");
        assert_eq!(us_keysyms(0x73), Some([0xffbe + 23; 2]), "F24");
        assert_eq!(us_keysyms(0xe1), Some([0xffe1; 2]), "left shift");
        assert_eq!(us_keysyms(0x32), None, "the non-US hash key has no US symbol");
        // Every usage with a US symbol has a position name too.
        for usage in 0..=255u8 {
            if us_keysyms(usage).is_some() {
                assert!(xkb_key_name(usage).is_some(), "{usage:#x}");
            }
        }
    }

    fn drain(i: &mut Injection) -> Vec<InjectEvent> {
        std::iter::from_fn(|| i.poll_event()).collect()
    }

    #[test]
    fn keys_are_named_by_position() {
        assert_eq!(xkb_key_name(0x04), Some("AC01"), "a");
        assert_eq!(xkb_key_name(0x14), Some("AD01"), "q");
        assert_eq!(xkb_key_name(0x1d), Some("AB01"), "z");
        assert_eq!(xkb_key_name(0x27), Some("AE10"), "0");
        assert_eq!(xkb_key_name(0x2c), Some("SPCE"));
        assert_eq!(xkb_key_name(0x38), Some("AB10"), "slash");
        assert_eq!(xkb_key_name(0x45), Some("FK12"));
        assert_eq!(xkb_key_name(0x52), Some("UP"));
        assert_eq!(xkb_key_name(0x62), Some("KP0"));
        assert_eq!(xkb_key_name(0x73), Some("FK24"));
        assert_eq!(xkb_key_name(0xe1), Some("LFSH"));
        assert_eq!(xkb_key_name(0x00), None);
        assert_eq!(xkb_key_name(0x66), None);
        // Every usage either has a name or none; no panic anywhere.
        assert!((0..=255u8).filter_map(xkb_key_name).count() > 100);
    }

    #[test]
    fn a_state_injects_its_differences_once() {
        let mut i = Injection::default();
        let mut s = InputState::default();
        s.set_key(0x04, true);
        s.mouse.x = 65_535;
        s.mouse.buttons = mouse_button::LEFT;
        i.handle_state(&s);
        assert_eq!(
            drain(&mut i),
            [
                InjectEvent::Key { usage: 0x04, down: true },
                InjectEvent::Button { button: 1, down: true },
                InjectEvent::MoveTo { x: 65_535, y: 0 },
            ]
        );
        i.handle_state(&s);
        assert_eq!(drain(&mut i), [], "the same state again injects nothing");
        s.set_key(0x04, false);
        s.mouse.dx_total = -3;
        s.mouse.scroll_total = 2;
        i.handle_state(&s);
        assert_eq!(
            drain(&mut i),
            [
                InjectEvent::Key { usage: 0x04, down: false },
                InjectEvent::MoveBy { dx: -3, dy: 0 },
                InjectEvent::Wheel { steps: 2 },
            ]
        );
    }

    #[test]
    fn mouse_totals_wrap_and_their_difference_is_the_motion() {
        let mut i = Injection::default();
        let mut s = InputState::default();
        s.mouse.dx_total = 7;
        i.handle_state(&s);
        assert_eq!(drain(&mut i), [InjectEvent::MoveTo { x: 0, y: 0 }, InjectEvent::MoveBy { dx: 7, dy: 0 }]);
        // Past i32::MAX the totals wrap, and the motion is still the difference.
        s.mouse.dx_total = i32::MAX - 2;
        i.handle_state(&s);
        drain(&mut i);
        s.mouse.dx_total = s.mouse.dx_total.wrapping_add(10);
        s.mouse.scroll_total -= 1;
        i.handle_state(&s);
        assert_eq!(drain(&mut i), [InjectEvent::MoveBy { dx: 10, dy: 0 }, InjectEvent::Wheel { steps: -1 }]);
    }

    #[test]
    fn a_tap_between_states_arrives_by_its_presses_and_nothing_doubles() {
        let mut i = Injection::default();
        i.handle_state(&InputState::default());
        drain(&mut i);
        let press = |code, down| Press { device: Press::KEYBOARD, code, down };
        i.handle_press(press(0x2c, true));
        i.handle_press(press(0x2c, false));
        assert_eq!(
            drain(&mut i),
            [InjectEvent::Key { usage: 0x2c, down: true }, InjectEvent::Key { usage: 0x2c, down: false }]
        );
        // The state saw the key down first; its press then adds nothing.
        let mut s = InputState::default();
        s.set_key(0x05, true);
        i.handle_state(&s);
        i.handle_press(press(0x05, true));
        assert_eq!(drain(&mut i), [InjectEvent::Key { usage: 0x05, down: true }]);
        // The client leaves with the key held: it is let go.
        i.handle_press(Press { device: Press::MOUSE, code: 1, down: true });
        i.release_all();
        assert_eq!(
            drain(&mut i),
            [
                InjectEvent::Button { button: 3, down: true },
                InjectEvent::Key { usage: 0x05, down: false },
                InjectEvent::Button { button: 3, down: false },
            ]
        );
    }

    #[test]
    fn positions_scale_to_any_screen() {
        assert_eq!(to_pixels(0, 1920), 0);
        assert_eq!(to_pixels(65_535, 1920), 1919);
        assert_eq!(to_pixels(32_768, 1280), 640);
        assert_eq!(to_pixels(65_535, 0), 0);
    }
}

//! The whole current state of every input device: pads, keys and mouse, the presses between
//! two states, and the dead-zone and axis maths that turn a device's reading into it.

/// Pads a session carries; each has a stable slot number.
pub const MAX_PADS: usize = 4;

/// Pad buttons, one bit each.
pub mod button {
    pub const A: u32 = 1 << 0;
    pub const B: u32 = 1 << 1;
    pub const X: u32 = 1 << 2;
    pub const Y: u32 = 1 << 3;
    pub const LEFT_BUMPER: u32 = 1 << 4;
    pub const RIGHT_BUMPER: u32 = 1 << 5;
    pub const BACK: u32 = 1 << 6;
    pub const START: u32 = 1 << 7;
    pub const GUIDE: u32 = 1 << 8;
    pub const LEFT_STICK: u32 = 1 << 9;
    pub const RIGHT_STICK: u32 = 1 << 10;
    pub const DPAD_UP: u32 = 1 << 11;
    pub const DPAD_DOWN: u32 = 1 << 12;
    pub const DPAD_LEFT: u32 = 1 << 13;
    pub const DPAD_RIGHT: u32 = 1 << 14;
    /// Every defined bit; others are rejected on decode.
    pub const ALL: u32 = (1 << 15) - 1;

    /// Names as input scripts and logs write them.
    pub const NAMES: [(&str, u32); 15] = [
        ("A", A),
        ("B", B),
        ("X", X),
        ("Y", Y),
        ("LB", LEFT_BUMPER),
        ("RB", RIGHT_BUMPER),
        ("Back", BACK),
        ("Start", START),
        ("Guide", GUIDE),
        ("LS", LEFT_STICK),
        ("RS", RIGHT_STICK),
        ("Up", DPAD_UP),
        ("Down", DPAD_DOWN),
        ("Left", DPAD_LEFT),
        ("Right", DPAD_RIGHT),
    ];
}

/// Mouse buttons, one bit each.
pub mod mouse_button {
    pub const LEFT: u8 = 1 << 0;
    pub const RIGHT: u8 = 1 << 1;
    pub const MIDDLE: u8 = 1 << 2;
    pub const BACK: u8 = 1 << 3;
    pub const FORWARD: u8 = 1 << 4;
    pub const ALL: u8 = (1 << 5) - 1;
}

/// One gamepad. Sticks are -32767..=32767 with x to the right and y down; triggers
/// 0..=65535. Dead zones are applied on the client before the state is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PadState {
    pub connected: bool,
    pub buttons: u32,
    pub left: [i16; 2],
    pub right: [i16; 2],
    pub triggers: [u16; 2],
}

/// The mouse: buttons, the absolute position over the video (0..=65535 on each axis), and
/// running totals of relative motion and wheel steps (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MouseState {
    pub buttons: u8,
    pub x: u16,
    pub y: u16,
    pub dx_total: i32,
    pub dy_total: i32,
    pub scroll_total: i32,
}

/// Everything the player is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputState {
    pub pads: [PadState; MAX_PADS],
    /// Keys down, by USB HID usage id (physical position, so layouts do not move them).
    pub keys: [u64; 4],
    pub mouse: MouseState,
}

impl InputState {
    pub fn set_key(&mut self, usage: u8, down: bool) {
        let (word, bit) = (usize::from(usage / 64), usage % 64);
        if down {
            self.keys[word] |= 1 << bit;
        } else {
            self.keys[word] &= !(1 << bit);
        }
    }

    /// How many keys and buttons (keyboard, mouse, pads) are held: a press makes it grow.
    pub fn held(&self) -> u32 {
        let keys: u32 = self.keys.iter().map(|w| w.count_ones()).sum();
        let pads: u32 = self.pads.iter().map(|p| p.buttons.count_ones()).sum();
        keys + pads + self.mouse.buttons.count_ones()
    }

    pub fn key_down(&self, usage: u8) -> bool {
        self.keys[usize::from(usage / 64)] & (1 << (usage % 64)) != 0
    }

    /// Releases every key and button and centres every stick (focus lost, capture released):
    /// nothing may stay stuck on the host. Motion totals are kept (they are positions).
    pub fn release_all(&mut self) {
        self.keys = [0; 4];
        self.mouse.buttons = 0;
        for pad in &mut self.pads {
            *pad = PadState { connected: pad.connected, ..PadState::default() };
        }
    }
}

/// USB HID keyboard usage ids of the keys kumo names (letters, digits and the usual extras).
pub mod key {
    pub const A: u8 = 0x04;
    pub const D: u8 = 0x07;
    pub const S: u8 = 0x16;
    pub const W: u8 = 0x1A;
    pub const SPACE: u8 = 0x2C;

    /// A key's usage id from its name in input scripts: `A`..`Z`, `0`..`9`, `Space`, `Enter`,
    /// `Escape`, `Tab`, `Backspace`, `Up`, `Down`, `Left`, `Right`, `LeftShift`, `LeftCtrl`,
    /// `LeftAlt`, `F1`..`F12`. Case does not matter.
    pub fn from_name(name: &str) -> Option<u8> {
        let upper = name.to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() == 1 {
            return match bytes[0] {
                c @ b'A'..=b'Z' => Some(A + (c - b'A')),
                b'0' => Some(0x27),
                c @ b'1'..=b'9' => Some(0x1E + (c - b'1')),
                _ => None,
            };
        }
        if let Some(n) = upper.strip_prefix('F').and_then(|n| n.parse::<u8>().ok())
            && (1..=12).contains(&n)
        {
            return Some(0x3A + n - 1);
        }
        Some(match upper.as_str() {
            "ENTER" => 0x28,
            "ESCAPE" => 0x29,
            "BACKSPACE" => 0x2A,
            "TAB" => 0x2B,
            "SPACE" => SPACE,
            "RIGHT" => 0x4F,
            "LEFT" => 0x50,
            "DOWN" => 0x51,
            "UP" => 0x52,
            "MINUS" => 0x2D,
            "EQUAL" => 0x2E,
            "LEFTBRACKET" => 0x2F,
            "RIGHTBRACKET" => 0x30,
            "BACKSLASH" => 0x31,
            "SEMICOLON" => 0x33,
            "APOSTROPHE" => 0x34,
            "GRAVE" => 0x35,
            "COMMA" => 0x36,
            "PERIOD" => 0x37,
            "SLASH" => 0x38,
            "DELETE" => 0x4C,
            "HOME" => 0x4A,
            "END" => 0x4D,
            "LEFTCTRL" => 0xE0,
            "LEFTSHIFT" => 0xE1,
            "LEFTALT" => 0xE2,
            "RIGHTCTRL" => 0xE4,
            "RIGHTSHIFT" => 0xE5,
            "RIGHTALT" => 0xE6,
            _ => return None,
        })
    }
}

/// A stick's position after a radial dead zone: inside `inner` (fraction of full deflection)
/// it is centred, beyond `outer` it is full, and between the two it is rescaled so motion
/// starts smoothly at the dead zone's edge. Inputs and outputs are -1..=1 per axis.
pub fn radial_dead_zone(x: f32, y: f32, inner: f32, outer: f32) -> (f32, f32) {
    let (x, y) = (finite(x).clamp(-1.0, 1.0), finite(y).clamp(-1.0, 1.0));
    let magnitude = x.hypot(y);
    if magnitude <= inner || outer <= inner {
        return (0.0, 0.0);
    }
    let scaled = ((magnitude - inner) / (outer - inner)).min(1.0);
    let (nx, ny) = ((x / magnitude * scaled).clamp(-1.0, 1.0), (y / magnitude * scaled).clamp(-1.0, 1.0));
    (nx, ny)
}

/// A trigger after its dead zone: below `threshold` released, then rescaled to 0..=1.
pub fn trigger_dead_zone(value: f32, threshold: f32) -> f32 {
    let value = finite(value).clamp(0.0, 1.0);
    if value <= threshold || threshold >= 1.0 { 0.0 } else { (value - threshold) / (1.0 - threshold) }
}

fn finite(v: f32) -> f32 {
    if v.is_finite() { v } else { 0.0 }
}

/// -1..=1 to the wire's stick range.
pub fn stick_axis(v: f32) -> i16 {
    (finite(v).clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// 0..=1 to the wire's trigger range.
pub fn trigger_axis(v: f32) -> u16 {
    (finite(v).clamp(0.0, 1.0) * 65535.0).round() as u16
}

/// A discrete change (a key, mouse button or pad button going down or up): what the
/// reliable path carries so a tap shorter than a datagram's life is never lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    /// 0 keyboard, 1 mouse, 2..=5 pad slots 0..=3.
    pub device: u8,
    /// Keyboard: HID usage; mouse and pads: the button's bit index.
    pub code: u8,
    pub down: bool,
}

impl Press {
    pub const KEYBOARD: u8 = 0;
    pub const MOUSE: u8 = 1;
    pub const FIRST_PAD: u8 = 2;
    /// Most presses in one control message.
    pub const MAX_PER_MESSAGE: usize = 64;

    pub fn is_valid(&self) -> bool {
        match self.device {
            Self::KEYBOARD => true,
            Self::MOUSE => self.code < 5,
            d => d < Self::FIRST_PAD + MAX_PADS as u8 && self.code < 15,
        }
    }
}

/// Calls `each` for every key and button that changed from `before` to `after`, in a fixed
/// order (keyboard by usage, mouse, pads by slot).
pub fn transitions(before: &InputState, after: &InputState, mut each: impl FnMut(Press)) {
    let mut bits = |device: u8, base: u8, old: u64, new: u64| {
        let mut changed = old ^ new;
        while changed != 0 {
            let bit = changed.trailing_zeros() as u8;
            changed &= changed - 1;
            each(Press { device, code: base + bit, down: new & (1 << bit) != 0 });
        }
    };
    for (i, (old, new)) in before.keys.iter().zip(&after.keys).enumerate() {
        bits(Press::KEYBOARD, i as u8 * 64, *old, *new);
    }
    bits(Press::MOUSE, 0, u64::from(before.mouse.buttons), u64::from(after.mouse.buttons));
    for (slot, (old, new)) in before.pads.iter().zip(&after.pads).enumerate() {
        bits(Press::FIRST_PAD + slot as u8, 0, u64::from(old.buttons), u64::from(new.buttons));
    }
}

/// A state with something on every device, for tests.
#[cfg(test)]
pub(crate) fn busy_state() -> InputState {
    let mut s = InputState::default();
    s.pads[1] = PadState {
        connected: true,
        buttons: button::A | button::DPAD_LEFT,
        left: [32767, -32767],
        right: [-5, 7],
        triggers: [0, 65535],
    };
    s.set_key(key::W, true);
    s.set_key(0xE1, true);
    s.mouse = MouseState {
        buttons: mouse_button::LEFT,
        x: 100,
        y: 65535,
        dx_total: -3,
        dy_total: i32::MAX,
        scroll_total: -1,
    };
    s
}

//! Player input: the full state of every device, its datagram encoding, and the rules for
//! sending it (client) and accepting it (host).
//!
//! Input travels as the *whole current state* (pads, keys, mouse) with a sequence number and
//! the client's timestamp, so the newest datagram alone says everything: a lost one costs
//! nothing once the next arrives. Relative mouse motion and scrolling are sent as running
//! totals for the same reason (the host takes differences). The client re-sends its latest
//! state until the host acknowledges it; the host ignores anything older than what it has and
//! rate-limits floods. Pure: time is a parameter, bytes in and out.

pub mod hotkeys;
pub mod pads;
pub mod script;

use crate::core::wire::WireError;
use std::time::Duration;

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
            "LEFTCTRL" => 0xE0,
            "LEFTSHIFT" => 0xE1,
            "LEFTALT" => 0xE2,
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

/// One input datagram: the state, its sequence number and when the client read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputDatagram {
    pub seq: u64,
    /// Client clock, µs.
    pub client_micros: u64,
    pub state: InputState,
}

/// The host's acknowledgement: the newest sequence it applied, how many datagrams it has
/// accepted in the session, and the client stamp of that sequence echoed with its own
/// receive time (for input→host latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputAck {
    pub seq: u64,
    pub accepted: u64,
    pub client_micros: u64,
    /// Host clock, µs: when the datagram arrived.
    pub host_micros: u64,
}

const INPUT_MAGIC: [u8; 2] = *b"KI";
const ACK_MAGIC: [u8; 2] = *b"KA";
/// Layout version of input datagrams (the protocol version covers the rest).
const INPUT_LAYOUT: u8 = 1;
const PAD_BYTES: usize = 1 + 4 + 8 + 4;
/// Size of an input datagram: magic, layout, seq, micros, 4 pads, keys, mouse.
pub const INPUT_DATAGRAM_BYTES: usize = 2 + 1 + 8 + 8 + MAX_PADS * PAD_BYTES + 32 + 17;
pub const ACK_DATAGRAM_BYTES: usize = 2 + 8 * 4;

impl InputDatagram {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(INPUT_DATAGRAM_BYTES);
        b.extend_from_slice(&INPUT_MAGIC);
        b.push(INPUT_LAYOUT);
        b.extend_from_slice(&self.seq.to_le_bytes());
        b.extend_from_slice(&self.client_micros.to_le_bytes());
        for pad in &self.state.pads {
            b.push(u8::from(pad.connected));
            b.extend_from_slice(&pad.buttons.to_le_bytes());
            for v in pad.left.iter().chain(&pad.right) {
                b.extend_from_slice(&v.to_le_bytes());
            }
            for v in &pad.triggers {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        for word in &self.state.keys {
            b.extend_from_slice(&word.to_le_bytes());
        }
        let m = &self.state.mouse;
        b.push(m.buttons);
        b.extend_from_slice(&m.x.to_le_bytes());
        b.extend_from_slice(&m.y.to_le_bytes());
        for v in [m.dx_total, m.dy_total, m.scroll_total] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        debug_assert_eq!(b.len(), INPUT_DATAGRAM_BYTES);
        b
    }

    /// Decodes and validates: exact size, known layout, no undefined button bits, sticks in
    /// range. Never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() != INPUT_DATAGRAM_BYTES {
            return Err(WireError::Invalid("input datagram of the wrong size"));
        }
        if bytes[..2] != INPUT_MAGIC {
            return Err(WireError::Invalid("not an input datagram"));
        }
        if bytes[2] != INPUT_LAYOUT {
            return Err(WireError::UnknownCode { what: "input layout", code: bytes[2] });
        }
        let mut r = Reader { bytes, pos: 3 };
        let seq = r.u64();
        let client_micros = r.u64();
        let mut state = InputState::default();
        for pad in &mut state.pads {
            pad.connected = match r.u8() {
                0 => false,
                1 => true,
                _ => return Err(WireError::Invalid("pad connected flag")),
            };
            pad.buttons = r.u32();
            if pad.buttons & !button::ALL != 0 {
                return Err(WireError::Invalid("undefined pad button"));
            }
            for v in pad.left.iter_mut().chain(pad.right.iter_mut()) {
                *v = r.i16();
                if *v == i16::MIN {
                    return Err(WireError::Invalid("stick axis out of range"));
                }
            }
            for v in &mut pad.triggers {
                *v = r.u16();
            }
            if !pad.connected && *pad != PadState::default() {
                return Err(WireError::Invalid("input on a pad that is not connected"));
            }
        }
        for word in &mut state.keys {
            *word = r.u64();
        }
        let m = &mut state.mouse;
        m.buttons = r.u8();
        if m.buttons & !mouse_button::ALL != 0 {
            return Err(WireError::Invalid("undefined mouse button"));
        }
        m.x = r.u16();
        m.y = r.u16();
        m.dx_total = r.u32() as i32;
        m.dy_total = r.u32() as i32;
        m.scroll_total = r.u32() as i32;
        Ok(Self { seq, client_micros, state })
    }
}

impl InputAck {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(ACK_DATAGRAM_BYTES);
        b.extend_from_slice(&ACK_MAGIC);
        for v in [self.seq, self.accepted, self.client_micros, self.host_micros] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() != ACK_DATAGRAM_BYTES || bytes[..2] != ACK_MAGIC {
            return Err(WireError::Invalid("not an input acknowledgement"));
        }
        let mut r = Reader { bytes, pos: 2 };
        Ok(Self { seq: r.u64(), accepted: r.u64(), client_micros: r.u64(), host_micros: r.u64() })
    }
}

/// Reads fixed-size fields from a buffer whose length was checked up front.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        if let Some(src) = self.bytes.get(self.pos..self.pos + N) {
            out.copy_from_slice(src);
        }
        self.pos += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn i16(&mut self) -> i16 {
        i16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

/// When the client sends its input state.
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    /// A changed state goes out at once, but no sooner than this after the previous datagram
    /// (caps the rate at 1000 / ms per second however fast a mouse reports).
    pub min_interval: Duration,
    /// While the host has not acknowledged the newest state, it is sent again this often.
    pub resend_interval: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self { min_interval: Duration::from_millis(2), resend_interval: Duration::from_millis(20) }
    }
}

/// The client's side: numbers states and decides when a datagram goes out.
#[derive(Debug, Clone)]
pub struct InputSender {
    policy: SendPolicy,
    seq: u64,
    state: InputState,
    /// Client clock, µs: when the current state was read.
    read_micros: u64,
    /// The state of `seq` differs from what was last sent.
    dirty: bool,
    last_sent: Option<Duration>,
    acked: u64,
    sent: u64,
}

impl InputSender {
    pub fn new(policy: SendPolicy) -> Self {
        Self {
            policy,
            seq: 0,
            state: InputState::default(),
            read_micros: 0,
            dirty: false,
            last_sent: None,
            acked: 0,
            sent: 0,
        }
    }

    /// The player's state as read at `read_micros` (client clock); unchanged states are
    /// ignored. Every datagram of this state, re-sends included, carries that read time, so
    /// the host's latency figures include any loss recovery.
    pub fn update(&mut self, state: &InputState, read_micros: u64) {
        if *state != self.state {
            self.state = *state;
            self.read_micros = read_micros;
            self.seq += 1;
            self.dirty = true;
        }
    }

    /// The host acknowledged `seq`.
    pub fn on_ack(&mut self, seq: u64) {
        self.acked = self.acked.max(seq.min(self.seq));
    }

    /// The datagram to send at `now`, if one is due.
    pub fn poll(&mut self, now: Duration) -> Option<InputDatagram> {
        let due = self.due_at()?;
        if now < due {
            return None;
        }
        self.dirty = false;
        self.last_sent = Some(now);
        self.sent += 1;
        Some(InputDatagram { seq: self.seq, client_micros: self.read_micros, state: self.state })
    }

    /// When the next datagram is due, if one is.
    pub fn due_at(&self) -> Option<Duration> {
        let last = self.last_sent;
        if self.dirty {
            return Some(last.map_or(Duration::ZERO, |t| t + self.policy.min_interval));
        }
        (self.seq > self.acked).then(|| last.map_or(Duration::ZERO, |t| t + self.policy.resend_interval))
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// What the host does with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Newer than anything before: apply it and acknowledge.
    Apply(InputDatagram),
    /// Not newer than the state already applied (reordered or re-sent): acknowledge only.
    Stale {
        seq: u64,
    },
    /// Over the rate limit: dropped unread.
    RateLimited,
    Invalid(WireError),
}

/// A token bucket: `burst` at once, refilled at `rate` a second; time is a parameter.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    rate: f64,
    tokens: f64,
    last_refill: Duration,
}

impl TokenBucket {
    pub fn new(burst: f64, rate: f64) -> Self {
        Self { burst, rate, tokens: burst, last_refill: Duration::ZERO }
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last_refill).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last_refill = self.last_refill.max(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// The host's side: validation, stale rejection and a token-bucket rate limit, so a flood of
/// datagrams costs bounded work and no memory.
#[derive(Debug, Clone)]
pub struct InputReceiver {
    newest: u64,
    bucket: TokenBucket,
    pub accepted: u64,
    pub stale: u64,
    pub rate_limited: u64,
    pub invalid: u64,
}

/// Datagrams a burst may hold, and the sustained rate allowed per second.
const BUCKET: f64 = 64.0;
const RATE_PER_SEC: f64 = 1000.0;

impl Default for InputReceiver {
    fn default() -> Self {
        Self {
            newest: 0,
            bucket: TokenBucket::new(BUCKET, RATE_PER_SEC),
            accepted: 0,
            stale: 0,
            rate_limited: 0,
            invalid: 0,
        }
    }
}

impl InputReceiver {
    pub fn on_datagram(&mut self, bytes: &[u8], now: Duration) -> Verdict {
        if !self.bucket.take(now) {
            self.rate_limited += 1;
            return Verdict::RateLimited;
        }
        match InputDatagram::decode(bytes) {
            Err(err) => {
                self.invalid += 1;
                Verdict::Invalid(err)
            }
            Ok(d) if d.seq <= self.newest => {
                self.stale += 1;
                Verdict::Stale { seq: d.seq }
            }
            Ok(d) => {
                self.newest = d.seq;
                self.accepted += 1;
                Verdict::Apply(d)
            }
        }
    }

    /// The newest sequence applied.
    pub fn newest(&self) -> u64 {
        self.newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn busy_state() -> InputState {
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

    #[test]
    fn datagrams_round_trip_and_have_a_fixed_size() {
        let d = InputDatagram { seq: u64::MAX - 1, client_micros: 123_456, state: busy_state() };
        let bytes = d.encode();
        assert_eq!(bytes.len(), INPUT_DATAGRAM_BYTES);
        assert!(bytes.len() <= 1200, "fits any QUIC datagram");
        assert_eq!(InputDatagram::decode(&bytes), Ok(d));
        let ack = InputAck { seq: 9, accepted: 8, client_micros: 7, host_micros: 6 };
        assert_eq!(InputAck::decode(&ack.encode()), Ok(ack));
    }

    #[test]
    fn invalid_datagrams_are_named_not_applied() {
        let good = InputDatagram { seq: 1, client_micros: 0, state: busy_state() }.encode();
        let mut bad_button = good.clone();
        bad_button[19 + 17 + 4] = 0x80; // pad 1's buttons, a bit past the defined ones
        assert!(InputDatagram::decode(&bad_button).is_err());
        let mut ghost_pad = good.clone();
        ghost_pad[19 + 1] = 1; // pad 0 not connected but pressing a button
        assert!(InputDatagram::decode(&ghost_pad).is_err());
        let mut min_axis = good.clone();
        min_axis[19 + 17 + 5..19 + 17 + 7].copy_from_slice(&i16::MIN.to_le_bytes());
        assert!(InputDatagram::decode(&min_axis).is_err());
        assert!(InputDatagram::decode(&good[..good.len() - 1]).is_err());
        assert!(InputAck::decode(&good).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            InputDatagram::decode(&bytes).ok();
            InputAck::decode(&bytes).ok();
            let mut r = InputReceiver::default();
            r.on_datagram(&bytes, Duration::ZERO);
        }

        #[test]
        fn dead_zones_stay_in_range(x in -2.0f32..2.0, y in -2.0f32..2.0, t in -1.0f32..2.0) {
            let (dx, dy) = radial_dead_zone(x, y, 0.15, 0.95);
            prop_assert!((-1.0..=1.0).contains(&dx) && (-1.0..=1.0).contains(&dy));
            prop_assert!((0.0..=1.0).contains(&trigger_dead_zone(t, 0.1)));
        }
    }

    #[test]
    fn dead_zone_centres_small_deflections_and_rescales_the_rest() {
        assert_eq!(radial_dead_zone(0.1, -0.1, 0.15, 0.95), (0.0, 0.0));
        let (x, y) = radial_dead_zone(1.0, 0.0, 0.15, 0.95);
        assert!((x - 1.0).abs() < 1e-6 && y == 0.0);
        // Just outside the dead zone is just above zero, not a jump to 15 %.
        let (x, _) = radial_dead_zone(0.16, 0.0, 0.15, 0.95);
        assert!(x > 0.0 && x < 0.02, "{x}");
        // Direction is kept.
        let (x, y) = radial_dead_zone(0.5, 0.5, 0.15, 0.95);
        assert!((x - y).abs() < 1e-6 && x > 0.0);
        assert_eq!(radial_dead_zone(f32::NAN, 0.0, 0.1, 0.9), (0.0, 0.0));
        assert_eq!(trigger_dead_zone(0.05, 0.1), 0.0);
        assert!((trigger_dead_zone(1.0, 0.1) - 1.0).abs() < 1e-6);
        assert_eq!(stick_axis(-1.0), -32767);
        assert_eq!(trigger_axis(2.0), 65535);
    }

    #[test]
    fn sender_sends_changes_at_once_and_resends_until_acked() {
        let mut s = InputSender::new(SendPolicy::default());
        assert_eq!(s.poll(ms(0)), None, "nothing to say yet");
        let mut state = InputState::default();
        state.set_key(key::W, true);
        s.update(&state, 9_000);
        let first = s.poll(ms(10)).unwrap();
        assert_eq!((first.seq, first.client_micros), (1, 9_000));
        assert_eq!(s.poll(ms(11)), None);
        // Unacknowledged: re-sent after the resend interval, same sequence and read time.
        assert_eq!(s.poll(ms(30)).map(|d| (d.seq, d.client_micros)), Some((1, 9_000)));
        s.on_ack(1);
        assert_eq!(s.poll(ms(100)), None, "acknowledged: quiet");
        // Same state again is not a change.
        s.update(&state, 99_000);
        assert_eq!(s.due_at(), None);
        // A change right after a send waits for the minimum interval.
        state.set_key(key::W, false);
        s.update(&state, 200_000);
        s.poll(ms(200)).unwrap();
        state.set_key(key::A, true);
        s.update(&state, 201_000);
        assert_eq!(s.poll(ms(201)), None);
        assert_eq!(s.poll(ms(202)).unwrap().seq, 3);
        assert_eq!(s.sent(), 4);
        // An ack from the future (a confused host) cannot silence newer states.
        s.on_ack(1000);
        state.set_key(key::D, true);
        s.update(&state, 300_000);
        assert!(s.poll(ms(300)).is_some());
        assert!(s.due_at().is_some(), "the new state is not acknowledged yet: it will be sent again");
    }

    #[test]
    fn receiver_applies_newest_only_and_limits_floods() {
        let mut r = InputReceiver::default();
        let d = |seq| InputDatagram { seq, client_micros: 0, state: busy_state() }.encode();
        assert!(matches!(r.on_datagram(&d(2), ms(0)), Verdict::Apply(x) if x.seq == 2));
        assert_eq!(r.on_datagram(&d(1), ms(0)), Verdict::Stale { seq: 1 });
        assert_eq!(r.on_datagram(&d(2), ms(0)), Verdict::Stale { seq: 2 });
        assert!(matches!(r.on_datagram(&d(5), ms(0)), Verdict::Apply(_)));
        assert!(matches!(r.on_datagram(b"junk", ms(0)), Verdict::Invalid(_)));
        // A flood at one instant: the bucket empties, then everything is refused unread.
        let mut limited = 0;
        for seq in 6..1000 {
            if r.on_datagram(&d(seq), ms(1)) == Verdict::RateLimited {
                limited += 1;
            }
        }
        assert!(limited > 900, "{limited}");
        assert!(r.accepted < 70);
        // Time refills it.
        assert!(matches!(r.on_datagram(&d(2000), ms(100)), Verdict::Apply(_)));
    }

    #[test]
    fn release_all_lets_go_of_everything_but_keeps_positions() {
        let mut s = busy_state();
        s.release_all();
        assert_eq!(s.keys, [0; 4]);
        assert_eq!(s.mouse.buttons, 0);
        assert!(s.pads[1].connected && s.pads[1].buttons == 0 && s.pads[1].left == [0, 0]);
        assert_eq!(s.mouse.dy_total, i32::MAX);
    }

    #[test]
    fn transitions_list_every_change_in_order() {
        let before = busy_state();
        let mut after = before;
        after.set_key(key::W, false);
        after.set_key(key::SPACE, true);
        after.mouse.buttons = mouse_button::RIGHT;
        after.pads[1].buttons = button::A | button::B;
        let mut seen = Vec::new();
        transitions(&before, &after, |p| seen.push(p));
        assert_eq!(
            seen,
            [
                Press { device: Press::KEYBOARD, code: key::W, down: false },
                Press { device: Press::KEYBOARD, code: key::SPACE, down: true },
                Press { device: Press::MOUSE, code: 0, down: false },
                Press { device: Press::MOUSE, code: 1, down: true },
                Press { device: Press::FIRST_PAD + 1, code: 1, down: true },
                Press { device: Press::FIRST_PAD + 1, code: 13, down: false },
            ]
        );
        assert!(seen.iter().all(Press::is_valid));
        assert!(!Press { device: 6, code: 0, down: true }.is_valid());
        assert!(!Press { device: Press::MOUSE, code: 5, down: true }.is_valid());
    }

    #[test]
    fn key_names() {
        assert_eq!(key::from_name("w"), Some(key::W));
        assert_eq!(key::from_name("A"), Some(key::A));
        assert_eq!(key::from_name("1"), Some(0x1E));
        assert_eq!(key::from_name("0"), Some(0x27));
        assert_eq!(key::from_name("F12"), Some(0x45));
        assert_eq!(key::from_name("space"), Some(key::SPACE));
        assert_eq!(key::from_name("F13"), None);
        assert_eq!(key::from_name("Hyper"), None);
    }
}

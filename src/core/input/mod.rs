//! Player input: the full state of every device (`state`), and the rules for sending it
//! (client) and accepting it (host). Its datagram is `core::wire::InputDatagram`.
//!
//! Input travels as the *whole current state* (pads, keys, mouse) with a sequence number and
//! the client's timestamp, so the newest datagram alone says everything: a lost one costs
//! nothing once the next arrives. Relative mouse motion and scrolling are sent as running
//! totals for the same reason (the host takes differences). The client re-sends its latest
//! state until the host acknowledges it; the host ignores anything older than what it has and
//! rate-limits floods. Pure: time is a parameter, bytes in and out.

pub mod hotkeys;
pub mod inject;
pub mod pads;
pub mod script;
mod state;

pub use state::*;

use crate::rate::TokenBucket;
use crate::wire::{InputDatagram, WireError};
use std::time::Duration;

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
    /// The mouse's totals when the current connection began: the wire carries totals from
    /// there, since each connection's host starts counting at 0 (a reconnect would otherwise
    /// move the pointer by everything the mouse did before it).
    origin: MouseTotals,
}

/// A mouse's running totals: motion in counts, and wheel steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MouseTotals {
    dx: i32,
    dy: i32,
    scroll: i32,
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
            origin: MouseTotals::default(),
        }
    }

    /// A new connection began (a reconnect): its host counts the mouse from here, and gets the
    /// current state at once.
    pub fn on_new_connection(&mut self) {
        let m = self.state.mouse;
        self.origin = MouseTotals { dx: m.dx_total, dy: m.dy_total, scroll: m.scroll_total };
        // Nothing read yet: nothing to tell.
        self.dirty = self.seq > 0;
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
        let mut state = self.state;
        let (m, o) = (&mut state.mouse, self.origin);
        (m.dx_total, m.dy_total, m.scroll_total) =
            (m.dx_total.wrapping_sub(o.dx), m.dy_total.wrapping_sub(o.dy), m.scroll_total.wrapping_sub(o.scroll));
        Some(InputDatagram { seq: self.seq, client_micros: self.read_micros, state })
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
    /// Over the rate limit: dropped.
    RateLimited,
    Invalid(WireError),
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
    /// An input datagram arrived at `now`, read (`Err`: damaged). Damaged ones spend a token
    /// too, so junk floods no faster than good input.
    pub fn on_input(&mut self, decoded: Result<InputDatagram, WireError>, now: Duration) -> Verdict {
        if !self.bucket.take(now) {
            self.rate_limited += 1;
            return Verdict::RateLimited;
        }
        match decoded {
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

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            InputDatagram::decode(&bytes).ok();
            let mut r = InputReceiver::default();
            r.on_input(InputDatagram::decode(&bytes), Duration::ZERO);
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
    fn a_new_connection_counts_the_mouse_from_its_start() {
        let mut s = InputSender::new(SendPolicy::default());
        let mut state = InputState::default();
        state.mouse.dx_total = i32::MAX - 1;
        state.mouse.scroll_total = 40;
        s.update(&state, 1);
        assert_eq!(s.poll(ms(0)).unwrap().state.mouse.dx_total, i32::MAX - 1, "the first connection from 0");
        // A reconnect: the new host hears the state at once, with no motion in it.
        s.on_new_connection();
        let sent = s.poll(ms(5)).expect("the current state goes to the new host");
        assert_eq!((sent.state.mouse.dx_total, sent.state.mouse.scroll_total), (0, 0));
        // Motion after it is counted from there, across the wrap of the totals.
        state.mouse.dx_total = state.mouse.dx_total.wrapping_add(5);
        state.mouse.scroll_total -= 2;
        s.update(&state, 2);
        let sent = s.poll(ms(30)).unwrap();
        assert_eq!((sent.state.mouse.dx_total, sent.state.mouse.scroll_total), (5, -2));
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
        let d = |seq| Ok(InputDatagram { seq, client_micros: 0, state: busy_state() });
        assert!(matches!(r.on_input(d(2), ms(0)), Verdict::Apply(x) if x.seq == 2));
        assert_eq!(r.on_input(d(1), ms(0)), Verdict::Stale { seq: 1 });
        assert_eq!(r.on_input(d(2), ms(0)), Verdict::Stale { seq: 2 });
        assert!(matches!(r.on_input(d(5), ms(0)), Verdict::Apply(_)));
        assert!(matches!(r.on_input(InputDatagram::decode(b"junk"), ms(0)), Verdict::Invalid(_)));
        // A flood at one instant: the bucket empties, then everything is refused.
        let mut limited = 0;
        for seq in 6..1000 {
            if r.on_input(d(seq), ms(1)) == Verdict::RateLimited {
                limited += 1;
            }
        }
        assert!(limited > 900, "{limited}");
        assert!(r.accepted < 70);
        // Time refills it.
        assert!(matches!(r.on_input(d(2000), ms(100)), Verdict::Apply(_)));
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

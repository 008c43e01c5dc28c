//! Gamepads as the session sees them: stable slots, dead zones, events into the input state.
//!
//! Owns the rules between a gamepad library's events and [`InputState`]: the first free of the
//! four slots goes to a pad when it connects and stays its own until it disconnects (the host
//! sees slot numbers, never device ids); sticks get a radial dead zone, triggers a threshold;
//! a disconnect clears the slot so nothing stays held. Pure: the gilrs shell reduces its
//! events to [`PadEvent`]s, and tests drive this directly (gilrs has no virtual device).

use crate::input::{InputState, MAX_PADS, PadState, radial_dead_zone, stick_axis, trigger_axis, trigger_dead_zone};

/// An analogue control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadAxis {
    LeftX,
    /// Up is negative (screen convention), whatever the device reports.
    LeftY,
    RightX,
    RightY,
    LeftTrigger,
    RightTrigger,
}

/// A gamepad event, by the library's device id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadEvent {
    Connected { device: usize },
    Disconnected { device: usize },
    Button { device: usize, button: u32, down: bool },
    Axis { device: usize, axis: PadAxis, value: f32 },
}

/// Dead zones, as fractions of full deflection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeadZones {
    pub stick_inner: f32,
    pub stick_outer: f32,
    pub trigger: f32,
}

impl Default for DeadZones {
    fn default() -> Self {
        Self { stick_inner: 0.1, stick_outer: 0.98, trigger: 0.05 }
    }
}

/// Raw stick and trigger values of one slot, before dead zones.
#[derive(Debug, Clone, Copy, Default)]
struct Raw {
    left: (f32, f32),
    right: (f32, f32),
    triggers: (f32, f32),
}

/// The slot table and the raw values behind each slot.
#[derive(Debug, Clone, Default)]
pub struct Pads {
    slots: [Option<usize>; MAX_PADS],
    raw: [Raw; MAX_PADS],
    zones: DeadZones,
}

impl Pads {
    pub fn new(zones: DeadZones) -> Self {
        Self { zones, ..Self::default() }
    }

    /// The slot a device holds.
    pub fn slot_of(&self, device: usize) -> Option<usize> {
        self.slots.iter().position(|s| *s == Some(device))
    }

    /// The device in a slot.
    pub fn device_in(&self, slot: usize) -> Option<usize> {
        self.slots.get(slot).copied().flatten()
    }

    /// Applies an event to `state`; returns whether the state changed. Events of devices
    /// without a slot (a fifth pad) are ignored.
    pub fn apply(&mut self, event: PadEvent, state: &mut InputState) -> bool {
        let before = *state;
        match event {
            PadEvent::Connected { device } => {
                if self.slot_of(device).is_none()
                    && let Some(slot) = self.slots.iter().position(Option::is_none)
                {
                    self.slots[slot] = Some(device);
                    self.raw[slot] = Raw::default();
                    state.pads[slot] = PadState { connected: true, ..PadState::default() };
                }
            }
            PadEvent::Disconnected { device } => {
                if let Some(slot) = self.slot_of(device) {
                    self.slots[slot] = None;
                    state.pads[slot] = PadState::default();
                }
            }
            PadEvent::Button { device, button, down } => {
                if let Some(slot) = self.slot_of(device) {
                    let pad = &mut state.pads[slot];
                    if down {
                        pad.buttons |= button;
                    } else {
                        pad.buttons &= !button;
                    }
                }
            }
            PadEvent::Axis { device, axis, value } => {
                if let Some(slot) = self.slot_of(device) {
                    let raw = &mut self.raw[slot];
                    match axis {
                        PadAxis::LeftX => raw.left.0 = value,
                        PadAxis::LeftY => raw.left.1 = value,
                        PadAxis::RightX => raw.right.0 = value,
                        PadAxis::RightY => raw.right.1 = value,
                        PadAxis::LeftTrigger => raw.triggers.0 = value,
                        PadAxis::RightTrigger => raw.triggers.1 = value,
                    }
                    let z = self.zones;
                    let stick = |(x, y): (f32, f32)| {
                        let (x, y) = radial_dead_zone(x, y, z.stick_inner, z.stick_outer);
                        [stick_axis(x), stick_axis(y)]
                    };
                    let pad = &mut state.pads[slot];
                    pad.left = stick(raw.left);
                    pad.right = stick(raw.right);
                    pad.triggers = [
                        trigger_axis(trigger_dead_zone(raw.triggers.0, z.trigger)),
                        trigger_axis(trigger_dead_zone(raw.triggers.1, z.trigger)),
                    ];
                }
            }
        }
        *state != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::button;

    #[test]
    fn slots_are_stable_and_a_fifth_pad_waits() {
        let mut pads = Pads::default();
        let mut s = InputState::default();
        for device in [10, 11, 12, 13, 14] {
            pads.apply(PadEvent::Connected { device }, &mut s);
        }
        assert_eq!((pads.slot_of(10), pads.slot_of(13), pads.slot_of(14)), (Some(0), Some(3), None));
        assert!(s.pads.iter().all(|p| p.connected));
        // The fifth pad's input goes nowhere.
        assert!(!pads.apply(PadEvent::Button { device: 14, button: button::A, down: true }, &mut s));
        // Pad 11 leaves: its slot is cleared (nothing stays held), the others keep theirs.
        pads.apply(PadEvent::Button { device: 11, button: button::B, down: true }, &mut s);
        pads.apply(PadEvent::Disconnected { device: 11 }, &mut s);
        assert_eq!(s.pads[1], PadState::default());
        assert_eq!(pads.slot_of(12), Some(2));
        // The next pad to connect takes the free slot.
        pads.apply(PadEvent::Connected { device: 14 }, &mut s);
        assert_eq!(pads.slot_of(14), Some(1));
        assert_eq!(pads.device_in(1), Some(14));
    }

    #[test]
    fn sticks_and_triggers_get_their_dead_zones() {
        let mut pads = Pads::new(DeadZones::default());
        let mut s = InputState::default();
        pads.apply(PadEvent::Connected { device: 1 }, &mut s);
        // Drift inside the dead zone changes nothing.
        assert!(!pads.apply(PadEvent::Axis { device: 1, axis: PadAxis::LeftX, value: 0.05 }, &mut s));
        pads.apply(PadEvent::Axis { device: 1, axis: PadAxis::LeftY, value: -1.0 }, &mut s);
        // Full up, with the earlier drift now part of the direction (radial dead zone).
        assert!(s.pads[0].left[1] < -32_000 && s.pads[0].left[0] < 2_000, "{:?}", s.pads[0].left);
        pads.apply(PadEvent::Axis { device: 1, axis: PadAxis::RightTrigger, value: 0.5 }, &mut s);
        assert!(s.pads[0].triggers[1] > 30_000 && s.pads[0].triggers[1] < 35_000, "{:?}", s.pads[0].triggers);
        pads.apply(PadEvent::Axis { device: 1, axis: PadAxis::LeftTrigger, value: 0.01 }, &mut s);
        assert_eq!(s.pads[0].triggers[0], 0);
        pads.apply(PadEvent::Button { device: 1, button: button::START, down: true }, &mut s);
        assert_eq!(s.pads[0].buttons, button::START);
    }
}

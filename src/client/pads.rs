//! The gilrs shell: gamepads on their own thread, "kumo-pads".
//!
//! Owns the gilrs context (hotplug, the SDL game-controller mapping database gilrs ships,
//! plus user mappings from the config file and `SDL_GAMECONTROLLERCONFIG`). It reduces gilrs events to
//! `core::input::pads::PadEvent`s, lets `core::input::pads::Pads` put them in the session's input state
//! (slots, dead zones), and plays rumble the host asks for through gilrs force feedback. It
//! ends when the session drops its input receiver. Without gamepad support (no udev, a
//! sandbox) it says so once and ends: keyboard and mouse still work.

use crate::client::input::InputHandle;
use crate::core::input::button;
use crate::core::input::pads::{DeadZones, PadAxis, PadEvent, Pads};
use gilrs::ff::{BaseEffect, BaseEffectType, EffectBuilder, Replay, Ticks};
use gilrs::{Axis, Button, EventType, GamepadId, Gilrs, GilrsBuilder};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A rumble the host asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rumble {
    pub slot: u8,
    pub strong: u16,
    pub weak: u16,
    pub duration_ms: u16,
}

/// How long the thread waits for a gamepad event before looking at rumble and shutdown.
const POLL: Duration = Duration::from_millis(20);

/// Starts the gamepad thread.
pub fn spawn(
    input: Arc<InputHandle>,
    rumble: Receiver<Rumble>,
    mappings: Vec<String>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("kumo-pads".into()).spawn(move || run(&input, &rumble, &mappings))
}

/// The process's one `Gilrs`, between sessions: each `Gilrs` starts a hotplug thread and
/// opens a udev socket that outlive it, so a kiosk that built one a session gained a thread and
/// descriptors every session (found by `scripts/churn.sh`'s kiosk part). A session takes it,
/// and gives it back when it ends; the first builds it with that session's mappings.
static KEPT: std::sync::Mutex<Option<Gilrs>> = std::sync::Mutex::new(None);

fn run(input: &InputHandle, rumble: &Receiver<Rumble>, mappings: &[String]) {
    let kept = KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let mut gilrs = if let Some(g) = kept {
        g
    } else {
        let mut builder = GilrsBuilder::new().add_included_mappings(true).add_env_mappings(true);
        for mapping in mappings {
            builder = builder.add_mappings(mapping);
        }
        match builder.build() {
            Ok(g) => g,
            Err(err) => {
                tracing::warn!("gamepads are unavailable ({err}); keyboard and mouse still work");
                return;
            }
        }
    };
    serve(&mut gilrs, input, rumble);
    *KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(gilrs);
}

fn serve(gilrs: &mut Gilrs, input: &InputHandle, rumble: &Receiver<Rumble>) {
    let mut pads = Pads::new(DeadZones::default());
    let mut ids: Vec<GamepadId> = Vec::new();
    let connected: Vec<GamepadId> = gilrs.gamepads().map(|(id, _)| id).collect();
    for id in connected {
        let device = device_number(&mut ids, id);
        input.modify(|state| {
            pads.apply(PadEvent::Connected { device }, state);
        });
    }
    // Effects play until dropped: keep each slot's newest until it has run its course.
    let mut playing: Vec<(u8, gilrs::ff::Effect, Instant)> = Vec::new();
    while !input.is_closed() {
        // A bounded batch per turn, so a busy stick cannot starve rumble or the exit check.
        let mut batch = 0;
        while batch < 64
            && let Some(event) = gilrs.next_event_blocking(Some(POLL))
        {
            batch += 1;
            let name = gilrs.gamepad(event.id).name().to_owned();
            match event.event {
                EventType::Connected => tracing::info!(pad = %name, "gamepad connected"),
                EventType::Disconnected => tracing::info!(pad = %name, "gamepad disconnected"),
                _ => {}
            }
            if let Some(e) = reduce(event.event, device_number(&mut ids, event.id)) {
                // gilrs stamps each event when the device reported it: input latency counts
                // from there.
                let at = event.time.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_micros() as u64);
                input.modify_at(at, |state| {
                    pads.apply(e, state);
                });
            }
        }
        playing.retain(|(_, _, until)| Instant::now() < *until);
        while let Ok(r) = rumble.try_recv() {
            let Some(id) = pads.device_in(usize::from(r.slot)).and_then(|d| ids.get(d)).copied() else {
                continue;
            };
            match play(gilrs, id, r) {
                Ok(effect) => {
                    playing.retain(|(slot, _, _)| *slot != r.slot);
                    let until = Instant::now() + Duration::from_millis(u64::from(r.duration_ms));
                    playing.push((r.slot, effect, until));
                }
                Err(err) => tracing::debug!(slot = r.slot, "no rumble: {err}"),
            }
        }
    }
}

/// A small stable number for a gilrs id (its index among the pads seen this session).
fn device_number(ids: &mut Vec<GamepadId>, id: GamepadId) -> usize {
    ids.iter().position(|&known| known == id).unwrap_or_else(|| {
        ids.push(id);
        ids.len() - 1
    })
}

/// A gilrs event of `device` as a pad event.
fn reduce(event: EventType, device: usize) -> Option<PadEvent> {
    Some(match event {
        EventType::Connected => PadEvent::Connected { device },
        EventType::Disconnected => PadEvent::Disconnected { device },
        EventType::ButtonPressed(b, _) => PadEvent::Button { device, button: bit(b)?, down: true },
        EventType::ButtonReleased(b, _) => PadEvent::Button { device, button: bit(b)?, down: false },
        EventType::ButtonChanged(Button::LeftTrigger2, v, _) => {
            PadEvent::Axis { device, axis: PadAxis::LeftTrigger, value: v }
        }
        EventType::ButtonChanged(Button::RightTrigger2, v, _) => {
            PadEvent::Axis { device, axis: PadAxis::RightTrigger, value: v }
        }
        EventType::AxisChanged(axis, v, _) => {
            // gilrs reports stick Y up-positive; the wire is down-positive.
            let (axis, value) = match axis {
                Axis::LeftStickX => (PadAxis::LeftX, v),
                Axis::LeftStickY => (PadAxis::LeftY, -v),
                Axis::RightStickX => (PadAxis::RightX, v),
                Axis::RightStickY => (PadAxis::RightY, -v),
                _ => return None,
            };
            PadEvent::Axis { device, axis, value }
        }
        _ => return None,
    })
}

fn bit(b: Button) -> Option<u32> {
    Some(match b {
        Button::South => button::A,
        Button::East => button::B,
        Button::West => button::X,
        Button::North => button::Y,
        Button::LeftTrigger => button::LEFT_BUMPER,
        Button::RightTrigger => button::RIGHT_BUMPER,
        Button::Select => button::BACK,
        Button::Start => button::START,
        Button::Mode => button::GUIDE,
        Button::LeftThumb => button::LEFT_STICK,
        Button::RightThumb => button::RIGHT_STICK,
        Button::DPadUp => button::DPAD_UP,
        Button::DPadDown => button::DPAD_DOWN,
        Button::DPadLeft => button::DPAD_LEFT,
        Button::DPadRight => button::DPAD_RIGHT,
        _ => return None,
    })
}

fn play(gilrs: &mut Gilrs, id: GamepadId, r: Rumble) -> Result<gilrs::ff::Effect, gilrs::ff::Error> {
    let replay = Replay { play_for: Ticks::from_ms(u32::from(r.duration_ms)), ..Replay::default() };
    let effect = EffectBuilder::new()
        .add_effect(BaseEffect {
            kind: BaseEffectType::Strong { magnitude: r.strong },
            scheduling: replay,
            ..BaseEffect::default()
        })
        .add_effect(BaseEffect {
            kind: BaseEffectType::Weak { magnitude: r.weak },
            scheduling: replay,
            ..BaseEffect::default()
        })
        .gamepads(&[id])
        .finish(gilrs)?;
    effect.play()?;
    Ok(effect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_button_has_a_distinct_bit() {
        let buttons = [
            Button::South,
            Button::East,
            Button::West,
            Button::North,
            Button::LeftTrigger,
            Button::RightTrigger,
            Button::Select,
            Button::Start,
            Button::Mode,
            Button::LeftThumb,
            Button::RightThumb,
            Button::DPadUp,
            Button::DPadDown,
            Button::DPadLeft,
            Button::DPadRight,
        ];
        let bits: u32 = buttons.iter().map(|&b| bit(b).unwrap()).fold(0, |all, b| {
            assert_eq!(all & b, 0, "{b:#x} used twice");
            all | b
        });
        assert_eq!(bits, button::ALL);
        assert_eq!(bit(Button::South), Some(button::A));
        assert_eq!(bit(Button::C), None);
        // Analogue triggers arrive as axes, not buttons.
        assert_eq!(bit(Button::LeftTrigger2), None);
    }
}

//! The uinput shell (the evdev crate): a virtual Xbox 360-style pad per pad the player
//! connects, fed from the input states the session receives (`core::input::inject::pad_events`),
//! with the rumble a game asks of it sent back to the player's pad.
//!
//! Needs `/dev/uinput` writable by the host's user; where it is not, the session goes on
//! without pads and the host says why, once. The pads are made when the player's pad
//! connects and removed with it or with the session.

use crate::core::input::MAX_PADS;
use crate::core::input::PadState;
use crate::core::input::inject::{Effects, RumbleEffect, VirtualPadEvent, pad_codes, pad_events};
use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode, AttributeSet, BusType, EventSummary, EventType, FFEffectCode, FFEffectKind, InputEvent,
    InputId, KeyCode, UInputCode, UinputAbsSetup,
};

/// The player's pads as virtual ones.
pub struct VirtualPads {
    slots: [Option<Pad>; MAX_PADS],
    events: Vec<VirtualPadEvent>,
}

struct Pad {
    device: VirtualDevice,
    last: PadState,
    effects: Effects,
}

/// Why pads cannot be made here, in a sentence with what to do; `None` when they can.
pub fn unavailable() -> Option<String> {
    let uinput = std::path::Path::new("/dev/uinput");
    if !uinput.exists() {
        return Some("this machine has no /dev/uinput (load the module: `sudo modprobe uinput`)".into());
    }
    if let Err(err) = std::fs::OpenOptions::new().write(true).open(uinput) {
        return Some(format!(
            "this user may not write /dev/uinput ({err}; add it to the group that owns it, often `input`)"
        ));
    }
    None
}

impl VirtualPads {
    pub fn new() -> Self {
        Self { slots: std::array::from_fn(|_| None), events: Vec::new() }
    }

    /// Whether any virtual pad exists (then its rumble must be looked for).
    pub fn any(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    /// Brings the virtual pads to `pads`: made on connect, removed on disconnect, fed the
    /// changes. An error is the uinput device's: the caller stops using pads.
    pub fn apply(&mut self, pads: &[PadState; MAX_PADS]) -> std::io::Result<()> {
        for (slot, (pad, state)) in self.slots.iter_mut().zip(pads).enumerate() {
            if !state.connected {
                *pad = None;
            } else if pad.is_none() {
                let last = PadState { connected: true, ..PadState::default() };
                *pad = Some(Pad { device: make(slot)?, last, effects: Effects::default() });
            }
            let Some(pad) = pad.as_mut() else { continue };
            self.events.clear();
            pad_events(&pad.last, state, &mut self.events);
            pad.last = *state;
            if self.events.is_empty() {
                continue;
            }
            let events: Vec<InputEvent> = self
                .events
                .iter()
                .map(|e| match *e {
                    VirtualPadEvent::Button { code, down } => InputEvent::new(EventType::KEY.0, code, i32::from(down)),
                    VirtualPadEvent::Axis { code, value } => InputEvent::new(EventType::ABSOLUTE.0, code, value),
                })
                .collect();
            // `emit` ends the batch with a SYN_REPORT.
            pad.device.emit(&events)?;
        }
        Ok(())
    }

    /// Handles what games asked of the pads since the last call (uploading, erasing and
    /// playing rumble effects); returns the rumbles to send to the player, by pad slot.
    pub fn rumble(&mut self, out: &mut Vec<(u8, RumbleEffect)>) {
        for (slot, pad) in self.slots.iter_mut().enumerate() {
            let Some(pad) = pad else { continue };
            // Non-blocking: `WouldBlock` when nothing is waiting.
            let Ok(events) = pad.device.fetch_events() else { continue };
            let events: Vec<InputEvent> = events.collect();
            for event in events {
                match EventSummary::from(event) {
                    EventSummary::UInput(ev, UInputCode::UI_FF_UPLOAD, _) => {
                        if let Ok(mut upload) = pad.device.process_ff_upload(ev) {
                            let effect = upload.effect();
                            let accepted = match effect.kind {
                                FFEffectKind::Rumble { strong_magnitude, weak_magnitude } => {
                                    let rumble = RumbleEffect {
                                        strong: strong_magnitude,
                                        weak: weak_magnitude,
                                        duration_ms: effect.replay.length,
                                    };
                                    pad.effects.upload(upload.effect_id(), rumble)
                                }
                                _ => false,
                            };
                            // 0 tells the game the effect is held; EINVAL that it is not.
                            upload.set_retval(if accepted { 0 } else { -22 });
                        }
                    }
                    EventSummary::UInput(ev, UInputCode::UI_FF_ERASE, _) => {
                        if let Ok(erase) = pad.device.process_ff_erase(ev) {
                            pad.effects.erase(erase.effect_id());
                        }
                    }
                    EventSummary::ForceFeedback(_, code, count) => {
                        if let Some(rumble) = pad.effects.play(code.0, count) {
                            out.push((slot as u8, rumble));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

impl Default for VirtualPads {
    fn default() -> Self {
        Self::new()
    }
}

/// A virtual pad for the player's pad `slot`, with an Xbox 360 pad's identity (so SDL and
/// games map it without asking), its buttons and axes, and rumble; its descriptor set
/// non-blocking for [`VirtualPads::rumble`].
fn make(slot: usize) -> std::io::Result<VirtualDevice> {
    let mut keys = AttributeSet::<KeyCode>::new();
    for (_, code) in pad_codes::BUTTONS {
        keys.insert(KeyCode::new(code));
    }
    let stick = AbsInfo::new(0, -32768, 32767, 16, 128, 0);
    let trigger = AbsInfo::new(0, 0, pad_codes::TRIGGER_MAX, 0, 0, 0);
    let hat = AbsInfo::new(0, -1, 1, 0, 0, 0);
    let mut ff = AttributeSet::<FFEffectCode>::new();
    ff.insert(FFEffectCode::FF_RUMBLE);
    let name = format!("kumo virtual pad {}", slot + 1);
    let mut builder = VirtualDevice::builder()?
        .name(&name)
        .input_id(InputId::new(BusType::BUS_USB, 0x045e, 0x028e, 0x0110))
        .with_keys(&keys)?
        .with_ff(&ff)?
        .with_ff_effects_max(crate::core::input::inject::MAX_EFFECTS as u32);
    for (code, info) in [
        (pad_codes::ABS_X, stick),
        (pad_codes::ABS_Y, stick),
        (pad_codes::ABS_RX, stick),
        (pad_codes::ABS_RY, stick),
        (pad_codes::ABS_Z, trigger),
        (pad_codes::ABS_RZ, trigger),
        (pad_codes::ABS_HAT0X, hat),
        (pad_codes::ABS_HAT0Y, hat),
    ] {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(AbsoluteAxisCode(code), info))?;
    }
    let device = builder.build()?;
    rustix::io::ioctl_fionbio(&device, true)?;
    Ok(device)
}

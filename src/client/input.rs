//! The session's input handle: what every input source (window, gamepads, script) writes, and
//! the session loop reads and sends.

use crate::core::input::{InputState, Press, transitions};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Key and button transitions waiting for the reliable path. A person presses at most tens of
/// keys a second; when 256 are waiting (the session loop stalled) newer ones are dropped, and
/// the held state still arrives with the next datagram.
pub(crate) const PRESS_QUEUE: usize = 256;

/// The session's input, shared by every source (window, gamepads, script): the whole current
/// state, which datagrams carry, and the key and button transitions, which the control stream
/// carries reliably and in order.
pub struct InputHandle {
    state: watch::Sender<InputState>,
    presses: mpsc::Sender<Press>,
    /// The earliest device event time (client clock, µs) of the changes not yet sent; 0:
    /// none. The datagram carrying them is stamped with it, so input latency counts from the
    /// device's event, not from when the session loop read the state.
    event_micros: Arc<std::sync::atomic::AtomicU64>,
    /// While set, every source's changes are dropped (a kiosk's PIN prompt is open).
    muted: std::sync::atomic::AtomicBool,
}

impl InputHandle {
    pub(crate) fn new(
        state: watch::Sender<InputState>,
        presses: mpsc::Sender<Press>,
        event_micros: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self { state, presses, event_micros, muted: false.into() }
    }

    /// Mutes or unmutes every input source (window, gamepads, script). Muting lets go of
    /// everything held first, so nothing stays stuck on the host.
    pub fn set_muted(&self, muted: bool) {
        use std::sync::atomic::Ordering;
        if muted && !self.muted.load(Ordering::Acquire) {
            self.modify(InputState::release_all);
        }
        self.muted.store(muted, Ordering::Release);
    }

    /// Changes the input state; returns whether it changed. Call once per device event, so a
    /// tap's press and release are two calls and both reach the host.
    pub fn modify(&self, change: impl FnOnce(&mut InputState)) -> bool {
        self.modify_at(None, change)
    }

    /// As [`InputHandle::modify`], for a device that says when its event happened (gilrs
    /// does; winit does not): `event_micros` on the client's clock.
    pub fn modify_at(&self, event_micros: Option<u64>, change: impl FnOnce(&mut InputState)) -> bool {
        if self.muted.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        self.state.send_if_modified(|state| {
            let before = *state;
            change(state);
            transitions(&before, state, |press| {
                self.presses.try_send(press).ok();
            });
            let changed = *state != before;
            // Recorded before the session loop is woken, so the datagram gets it.
            if changed && let Some(at) = event_micros {
                use std::sync::atomic::Ordering;
                self.event_micros
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                        Some(if old == 0 { at } else { old.min(at) })
                    })
                    .ok();
            }
            changed
        })
    }

    /// The state as it is now.
    pub fn current(&self) -> InputState {
        *self.state.borrow()
    }

    /// Whether the session is over (nobody reads the input any more).
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }
}

/// When the input changes not yet sent happened: the earliest device event time recorded in
/// `event_micros`, or now.
pub(crate) fn take_event_time(event_micros: &std::sync::atomic::AtomicU64, now_micros: u64) -> u64 {
    match event_micros.swap(0, std::sync::atomic::Ordering::AcqRel) {
        0 => now_micros,
        at => at.min(now_micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_muted_input_lets_go_and_takes_nothing() {
        let (state, watch) = watch::channel(InputState::default());
        let (presses, mut sent) = mpsc::channel(PRESS_QUEUE);
        let input = InputHandle { state, presses, event_micros: Arc::default(), muted: false.into() };
        assert!(input.modify(|s| s.keys[0] = 1 << 4), "a key goes down");
        input.set_muted(true);
        assert_eq!(*watch.borrow(), InputState::default(), "muting lets go of the key");
        assert!(!input.modify_at(Some(5), |s| s.pads[0].buttons = 1), "a pad is ignored while muted");
        assert_eq!(*watch.borrow(), InputState::default());
        input.set_muted(false);
        assert!(input.modify(|s| s.keys[0] = 1 << 5), "unmuted, input flows again");
        let mut downs_and_ups = Vec::new();
        while let Ok(p) = sent.try_recv() {
            downs_and_ups.push((p.code, p.down));
        }
        assert_eq!(downs_and_ups, [(4, true), (4, false), (5, true)], "the release reached the host too");
    }
}

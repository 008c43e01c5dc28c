//! The input datagram (client → host: the whole current input state, numbered and stamped) and
//! its acknowledgement (host → client).

use crate::input::{InputState, MAX_PADS, PadState, button, mouse_button};
use crate::wire::codec::{Reader, WireError, Writer};
use crate::wire::kind::DatagramKind;

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

/// Layout version of input datagrams (the protocol version covers the rest).
const INPUT_LAYOUT: u8 = 1;
const PAD_BYTES: usize = 1 + 4 + 8 + 4;
/// Size of an input datagram: magic, layout, seq, micros, 4 pads, keys, mouse.
pub const INPUT_DATAGRAM_BYTES: usize = 2 + 1 + 8 + 8 + MAX_PADS * PAD_BYTES + 32 + 17;
pub const ACK_DATAGRAM_BYTES: usize = 2 + 8 * 4;

impl InputDatagram {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(INPUT_DATAGRAM_BYTES);
        let mut w = Writer(&mut b);
        w.bytes(&DatagramKind::Input.magic());
        w.u8(INPUT_LAYOUT);
        w.u64(self.seq);
        w.u64(self.client_micros);
        for pad in &self.state.pads {
            w.u8(u8::from(pad.connected));
            w.u32(pad.buttons);
            for v in pad.left.iter().chain(&pad.right) {
                w.i16(*v);
            }
            for v in &pad.triggers {
                w.u16(*v);
            }
        }
        for word in &self.state.keys {
            w.u64(*word);
        }
        let m = &self.state.mouse;
        w.u8(m.buttons);
        w.u16(m.x);
        w.u16(m.y);
        for v in [m.dx_total, m.dy_total, m.scroll_total] {
            w.u32(v as u32);
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
        let mut r = Reader::new(bytes);
        if r.array()? != DatagramKind::Input.magic() {
            return Err(WireError::Invalid("not an input datagram"));
        }
        let layout = r.u8()?;
        if layout != INPUT_LAYOUT {
            return Err(WireError::UnknownCode { what: "input layout", code: layout });
        }
        let seq = r.u64()?;
        let client_micros = r.u64()?;
        let mut state = InputState::default();
        for pad in &mut state.pads {
            *pad = read_pad(&mut r)?;
        }
        for word in &mut state.keys {
            *word = r.u64()?;
        }
        let m = &mut state.mouse;
        m.buttons = r.u8()?;
        if m.buttons & !mouse_button::ALL != 0 {
            return Err(WireError::Invalid("undefined mouse button"));
        }
        m.x = r.u16()?;
        m.y = r.u16()?;
        m.dx_total = r.u32()? as i32;
        m.dy_total = r.u32()? as i32;
        m.scroll_total = r.u32()? as i32;
        Ok(Self { seq, client_micros, state })
    }
}

fn read_pad(r: &mut Reader<'_>) -> Result<PadState, WireError> {
    let mut pad = PadState {
        connected: match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(WireError::Invalid("pad connected flag")),
        },
        buttons: r.u32()?,
        ..PadState::default()
    };
    if pad.buttons & !button::ALL != 0 {
        return Err(WireError::Invalid("undefined pad button"));
    }
    for v in pad.left.iter_mut().chain(pad.right.iter_mut()) {
        *v = r.i16()?;
        if *v == i16::MIN {
            return Err(WireError::Invalid("stick axis out of range"));
        }
    }
    for v in &mut pad.triggers {
        *v = r.u16()?;
    }
    if !pad.connected && pad != PadState::default() {
        return Err(WireError::Invalid("input on a pad that is not connected"));
    }
    Ok(pad)
}

impl InputAck {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(ACK_DATAGRAM_BYTES);
        let mut w = Writer(&mut b);
        w.bytes(&DatagramKind::InputAck.magic());
        for v in [self.seq, self.accepted, self.client_micros, self.host_micros] {
            w.u64(v);
        }
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        if bytes.len() != ACK_DATAGRAM_BYTES || r.array()? != DatagramKind::InputAck.magic() {
            return Err(WireError::Invalid("not an input acknowledgement"));
        }
        Ok(Self { seq: r.u64()?, accepted: r.u64()?, client_micros: r.u64()?, host_micros: r.u64()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::busy_state;
    use proptest::prelude::*;

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
        }
    }
}

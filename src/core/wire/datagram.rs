//! Every datagram kumo sends, told apart by its first two bytes (`kind`'s one table of kinds
//! and magics): one enum, one place that parses. A datagram whose magic this build does not know
//! is [`DatagramError::Unknown`]: a newer peer's kind, which the receiver counts and skips,
//! never reads as another kind and never ends a session over.

use crate::wire::audio::AudioPacket;
use crate::wire::clock::{ClockProbe, ClockReply};
use crate::wire::codec::WireError;
use crate::wire::input::{InputAck, InputDatagram};
use crate::wire::kind::DatagramKind;
use crate::wire::mic::MicPacket;
use crate::wire::parity::Parity;
use crate::wire::still::Still;
use thiserror::Error;

impl DatagramKind {
    /// The kind a datagram's first two bytes announce.
    pub fn of(bytes: &[u8]) -> Result<Self, DatagramError> {
        let magic: [u8; 2] = bytes.get(..2).and_then(|m| m.try_into().ok()).ok_or(DatagramError::Empty)?;
        Self::from_magic(magic).ok_or(DatagramError::Unknown(magic))
    }
}

/// Why a datagram was not read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatagramError {
    #[error("datagram too short to say its kind")]
    Empty,
    /// A kind this build does not know: a newer peer's, to be counted and skipped.
    #[error("datagram of a kind this build does not know (magic {:02x} {:02x})", .0[0], .0[1])]
    Unknown([u8; 2]),
    #[error("bad {} datagram: {error}", .kind.name())]
    Bad { kind: DatagramKind, error: WireError },
}

/// Any datagram, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    Input(InputDatagram),
    InputAck(InputAck),
    Audio(AudioPacket),
    ClockProbe(ClockProbe),
    ClockReply(ClockReply),
    Parity(Parity),
    Still(Still),
    Mic(MicPacket),
}

impl Datagram {
    /// Reads a datagram of any kind; each kind checks its own lengths and fields.
    pub fn decode(bytes: &[u8]) -> Result<Self, DatagramError> {
        let kind = DatagramKind::of(bytes)?;
        let bad = |error| DatagramError::Bad { kind, error };
        Ok(match kind {
            DatagramKind::Input => Self::Input(InputDatagram::decode(bytes).map_err(bad)?),
            DatagramKind::InputAck => Self::InputAck(InputAck::decode(bytes).map_err(bad)?),
            DatagramKind::Audio => Self::Audio(AudioPacket::decode(bytes).map_err(bad)?),
            DatagramKind::ClockProbe => Self::ClockProbe(ClockProbe::decode(bytes).map_err(bad)?),
            DatagramKind::ClockReply => Self::ClockReply(ClockReply::decode(bytes).map_err(bad)?),
            DatagramKind::Parity => Self::Parity(Parity::decode(bytes).map_err(bad)?),
            DatagramKind::Still => Self::Still(Still::decode(bytes).map_err(bad)?),
            DatagramKind::Mic => Self::Mic(MicPacket::decode(bytes).map_err(bad)?),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Input(d) => d.encode(),
            Self::InputAck(a) => a.encode(),
            Self::Audio(p) => p.encode(),
            Self::ClockProbe(p) => p.encode(),
            Self::ClockReply(r) => r.encode(),
            Self::Parity(p) => p.encode(),
            Self::Still(s) => s.encode(),
            Self::Mic(m) => m.encode(),
        }
    }

    pub fn kind(&self) -> DatagramKind {
        match self {
            Self::Input(_) => DatagramKind::Input,
            Self::InputAck(_) => DatagramKind::InputAck,
            Self::Audio(_) => DatagramKind::Audio,
            Self::ClockProbe(_) => DatagramKind::ClockProbe,
            Self::ClockReply(_) => DatagramKind::ClockReply,
            Self::Parity(_) => DatagramKind::Parity,
            Self::Still(_) => DatagramKind::Still,
            Self::Mic(_) => DatagramKind::Mic,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kind_is_named_never_read_as_another() {
        assert_eq!(Datagram::decode(b"KZ whatever a newer peer sends"), Err(DatagramError::Unknown(*b"KZ")));
        assert_eq!(Datagram::decode(b"K"), Err(DatagramError::Empty));
        assert_eq!(Datagram::decode(&[]), Err(DatagramError::Empty));
        // An input acknowledgement's size with another magic is not an acknowledgement.
        let mut ack = InputAck { seq: 1, accepted: 1, client_micros: 2, host_micros: 3 }.encode();
        ack[1] = b'Q';
        assert_eq!(Datagram::decode(&ack), Err(DatagramError::Unknown(*b"KQ")));
        let short = &DatagramKind::Audio.magic()[..];
        assert!(matches!(Datagram::decode(short), Err(DatagramError::Bad { kind: DatagramKind::Audio, .. })));
    }
}

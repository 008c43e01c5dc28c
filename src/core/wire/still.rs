//! The host's word that its picture is still current (host → client): sent while the program
//! on a real display draws nothing, instead of re-encoding the same picture, so the client
//! neither shows "no new picture" nor counts the quiet as a freeze or an idle path.

use crate::wire::codec::{Reader, WireError, Writer};
use crate::wire::kind::DatagramKind;

/// Bytes of a still datagram: magic, the last frame number sent, the host's time.
pub const STILL_BYTES: usize = 2 + 8 + 8;

/// Frame `frame_number`, the last the host sent, is still what its display shows at
/// `host_micros` (the host's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Still {
    pub frame_number: u64,
    pub host_micros: u64,
}

impl Still {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(STILL_BYTES);
        let mut w = Writer(&mut b);
        w.bytes(&DatagramKind::Still.magic());
        w.u64(self.frame_number);
        w.u64(self.host_micros);
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        if bytes.len() != STILL_BYTES || r.array()? != DatagramKind::Still.magic() {
            return Err(WireError::Invalid("not a still notice"));
        }
        Ok(Self { frame_number: r.u64()?, host_micros: r.u64()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_lengths() {
        let still = Still { frame_number: 41, host_micros: 1_700_000_000_000_000 };
        let bytes = still.encode();
        assert_eq!(bytes.len(), STILL_BYTES);
        assert_eq!(Still::decode(&bytes), Ok(still));
        assert!(Still::decode(&bytes[..STILL_BYTES - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Still::decode(&longer).is_err());
    }
}

//! The microphone datagram (client → host, behind `Capabilities::MICROPHONE`): one 20 ms Opus
//! frame of the player's voice (mono), and the previous one again, stamped on the client's
//! clock with a sequence, as the host's sound is the other way.

use crate::wire::audio::MAX_OPUS_FRAME;
use crate::wire::codec::{Reader, WireError, Writer};
use crate::wire::kind::DatagramKind;

/// Largest microphone datagram accepted (two frames of a voice stream are far smaller).
pub const MAX_MIC_DATAGRAM: usize = 1200;
/// Magic, sequence, capture time, the two frames' lengths.
const HEADER: usize = 2 + 8 + 8 + 2 + 2;

/// One microphone datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicPacket {
    pub seq: u64,
    /// When its first sample was captured, on the client's clock, in microseconds.
    pub capture_micros: u64,
    /// The Opus frame.
    pub coded: Vec<u8>,
    /// The previous packet's (`seq - 1`) frame again; empty for the first.
    pub previous: Vec<u8>,
}

impl MicPacket {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER + self.coded.len() + self.previous.len());
        let mut w = Writer(&mut b);
        w.bytes(&DatagramKind::Mic.magic());
        w.u64(self.seq);
        w.u64(self.capture_micros);
        w.u16(self.coded.len() as u16);
        w.u16(self.previous.len() as u16);
        w.bytes(&self.coded);
        w.bytes(&self.previous);
        b
    }

    /// Decodes a datagram from the network: both lengths checked against Opus's limit and
    /// the datagram before anything is copied.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_MIC_DATAGRAM {
            return Err(WireError::TooLarge { what: "microphone datagram", len: bytes.len(), max: MAX_MIC_DATAGRAM });
        }
        let mut r = Reader::new(bytes);
        if r.array()? != DatagramKind::Mic.magic() {
            return Err(WireError::BadMagic);
        }
        let (seq, capture_micros) = (r.u64()?, r.u64()?);
        let (coded_len, previous_len) = (usize::from(r.u16()?), usize::from(r.u16()?));
        for len in [coded_len, previous_len] {
            if len > MAX_OPUS_FRAME {
                return Err(WireError::TooLarge { what: "Opus frame", len, max: MAX_OPUS_FRAME });
            }
        }
        if coded_len == 0 {
            return Err(WireError::Invalid("empty microphone frame"));
        }
        let coded = r.take(coded_len)?.to_vec();
        let previous = r.take(previous_len)?.to_vec();
        Ok(Self { seq, capture_micros, coded, previous })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet() -> MicPacket {
        MicPacket { seq: 9, capture_micros: 1_700_000_000_000_000, coded: vec![7; 60], previous: vec![6; 58] }
    }

    #[test]
    fn datagrams_round_trip_and_bad_ones_are_refused() {
        let p = packet();
        let bytes = p.encode();
        assert!(bytes.starts_with(b"KV"));
        assert_eq!(MicPacket::decode(&bytes), Ok(p.clone()));
        let first = MicPacket { previous: Vec::new(), ..p };
        assert_eq!(MicPacket::decode(&first.encode()), Ok(first));
        for cut in 0..bytes.len() {
            assert!(MicPacket::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut huge = bytes.clone();
        huge[18..20].copy_from_slice(&2000u16.to_le_bytes());
        assert!(matches!(MicPacket::decode(&huge), Err(WireError::TooLarge { .. })));
        assert!(matches!(MicPacket::decode(&vec![0; MAX_MIC_DATAGRAM + 1]), Err(WireError::TooLarge { .. })));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
            let mut b = bytes;
            if b.len() >= 2 { b[..2].copy_from_slice(&DatagramKind::Mic.magic()); }
            MicPacket::decode(&b).ok();
        }
    }
}

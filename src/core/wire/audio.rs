//! The audio datagram: one packet's Opus frames (one per coupled stream of the layout), and
//! optionally the previous packet's, stamped on the host's capture clock.

use crate::audio::SpeakerLayout;
use crate::wire::codec::{Reader, WireError, Writer};
use crate::wire::kind::DatagramKind;

/// Largest Opus frame (RFC 6716, 3.4).
pub const MAX_OPUS_FRAME: usize = 1275;
/// Largest audio datagram accepted: QUIC datagrams fit one UDP packet, about 1200 bytes.
pub const MAX_AUDIO_DATAGRAM: usize = 1200;
/// Magic, sequence, capture time, channels, frames, redundancy flag.
const HEADER: usize = 2 + 8 + 8 + 1 + 2 + 1;

/// One audio datagram: a packet's Opus frames (one per stream of the layout), and optionally
/// the previous packet's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    pub seq: u64,
    /// When the packet's first sample was made, on the host clock (the same clock as video
    /// frames' capture stamps), in microseconds.
    pub capture_micros: u64,
    pub layout: SpeakerLayout,
    pub frames: u16,
    pub coded: Vec<Vec<u8>>,
    /// The previous packet (`seq - 1`), when the host sends redundancy; may be empty.
    pub previous: Vec<Vec<u8>>,
}

impl AudioPacket {
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.coded.iter().chain(&self.previous).map(|f| f.len() + 2).sum();
        let mut b = Vec::with_capacity(HEADER + size);
        let mut w = Writer(&mut b);
        w.bytes(&DatagramKind::Audio.magic());
        w.u64(self.seq);
        w.u64(self.capture_micros);
        w.u8(self.layout.channels());
        w.u16(self.frames);
        w.u8(u8::from(!self.previous.is_empty()));
        for frame in self.coded.iter().chain(&self.previous) {
            w.u16(frame.len() as u16);
            w.bytes(frame);
        }
        b
    }

    /// Decodes a datagram from the network: every length is checked against the datagram and
    /// against Opus's own limits before anything is copied.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_AUDIO_DATAGRAM {
            return Err(WireError::TooLarge { what: "audio datagram", len: bytes.len(), max: MAX_AUDIO_DATAGRAM });
        }
        if bytes.len() < HEADER {
            return Err(WireError::Truncated { needed: HEADER - bytes.len() });
        }
        let mut r = Reader::new(bytes);
        if r.array()? != DatagramKind::Audio.magic() {
            return Err(WireError::BadMagic);
        }
        let seq = r.u64()?;
        let capture_micros = r.u64()?;
        let code = r.u8()?;
        let layout = SpeakerLayout::from_channels(code).ok_or(WireError::UnknownCode { what: "audio layout", code })?;
        let frames = r.u16()?;
        if frames == 0 || frames > 2880 {
            return Err(WireError::Invalid("audio frames per packet"));
        }
        let with_previous = match r.u8()? {
            0 => false,
            1 => true,
            code => return Err(WireError::UnknownCode { what: "audio redundancy flag", code }),
        };
        let mut take = || -> Result<Vec<u8>, WireError> {
            let len = usize::from(r.u16()?);
            if len > MAX_OPUS_FRAME {
                return Err(WireError::TooLarge { what: "Opus frame", len, max: MAX_OPUS_FRAME });
            }
            Ok(r.take(len)?.to_vec())
        };
        let coded = (0..layout.streams()).map(|_| take()).collect::<Result<Vec<_>, _>>()?;
        let previous = if with_previous {
            (0..layout.streams()).map(|_| take()).collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(Self { seq, capture_micros, layout, frames, coded, previous })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::PACKET_FRAMES;
    use proptest::prelude::*;

    fn packet(layout: SpeakerLayout, previous: bool) -> AudioPacket {
        let frames = |k: u8| (0..layout.streams()).map(|s| vec![k + s as u8; 40 + s]).collect::<Vec<_>>();
        AudioPacket {
            seq: 77,
            capture_micros: 123_456_789,
            layout,
            frames: PACKET_FRAMES,
            coded: frames(1),
            previous: if previous { frames(9) } else { Vec::new() },
        }
    }

    #[test]
    fn datagrams_round_trip_for_every_layout() {
        for layout in [SpeakerLayout::Stereo, SpeakerLayout::Surround51, SpeakerLayout::Surround71] {
            for previous in [false, true] {
                let p = packet(layout, previous);
                let bytes = p.encode();
                assert!(bytes.starts_with(&DatagramKind::Audio.magic()));
                assert_eq!(AudioPacket::decode(&bytes), Ok(p));
            }
        }
    }

    #[test]
    fn bad_datagrams_are_refused_not_trusted() {
        let bytes = packet(SpeakerLayout::Surround71, true).encode();
        for cut in 0..bytes.len() {
            assert!(AudioPacket::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut bad = bytes.clone();
        bad[18] = 3;
        assert_eq!(AudioPacket::decode(&bad), Err(WireError::UnknownCode { what: "audio layout", code: 3 }));
        let mut huge = bytes.clone();
        huge[22..24].copy_from_slice(&2000u16.to_le_bytes());
        assert!(matches!(AudioPacket::decode(&huge), Err(WireError::TooLarge { .. })));
        assert!(matches!(AudioPacket::decode(&vec![0; MAX_AUDIO_DATAGRAM + 1]), Err(WireError::TooLarge { .. })));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
            let mut b = bytes;
            if b.len() >= 2 { b[..2].copy_from_slice(&DatagramKind::Audio.magic()); }
            AudioPacket::decode(&b).ok();
        }
    }
}

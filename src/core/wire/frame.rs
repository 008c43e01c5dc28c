//! The header in front of every encoded frame, on the frame's own unidirectional stream.

use crate::wire::codec::{Reader, WireError, Writer};
use crate::wire::{FRAME_HEADER_LEN, MAX_FRAME_BYTES, MAX_FRAME_HEADER_LEN, PROTOCOL_VERSION, SENT_FRAME_HEADER_LEN};

const FRAME_MAGIC: [u8; 2] = *b"KF";

/// Whether a frame can be decoded on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Instantaneous decoder refresh: decodable without any earlier frame.
    Idr,
    /// Predicted from earlier frames.
    Inter,
    /// Predicted only from a long-term reference the client confirmed: decodable after
    /// frames before it were lost (the host's answer to `RecoverLtr`).
    Recovery,
}

impl FrameKind {
    fn code(self) -> u8 {
        match self {
            Self::Idr => 0,
            Self::Inter => 1,
            Self::Recovery => 2,
        }
    }

    fn from_code(code: u8) -> Result<Self, WireError> {
        match code {
            0 => Ok(Self::Idr),
            1 => Ok(Self::Inter),
            2 => Ok(Self::Recovery),
            other => Err(WireError::UnknownFrameKind(other)),
        }
    }
}

/// Header in front of each encoded frame on its own unidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Host's frame counter: consecutive, starting at 0 for a session.
    pub frame_number: u64,
    /// When the host captured the picture, on the host clock, in microseconds.
    pub capture_micros: u64,
    /// How long the host's encoder took for this frame.
    pub encode_micros: u32,
    pub kind: FrameKind,
    pub width: u16,
    pub height: u16,
    /// Length of the H.264 access unit that follows the header.
    pub payload_len: u32,
    /// The newest input sequence number the host had applied when it captured this frame
    /// (0: none yet). The latency lab pairs inputs with the frames that show them.
    pub input_seq: u64,
    /// Capture slots the host skipped just before this frame because the path had no room
    /// (its send window was full): congestion the client's bitrate controller must answer.
    /// A reserved field (0) before; hosts that do not pace send 0.
    pub held_back: u32,
    /// Capture slots the host has skipped so far in this session because it fell behind
    /// its own schedule (its encoder or its machine was too slow), a running total: the
    /// host's share of a freeze, which the client keeps apart from the path's. An
    /// extension after the fixed part; 0 from a host that does not send it.
    pub host_behind: u32,
}

impl FrameHeader {
    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.bytes(&FRAME_MAGIC);
        w.u16(PROTOCOL_VERSION);
        w.u8(self.kind.code());
        w.u8(0); // flags, reserved
        w.u16(SENT_FRAME_HEADER_LEN as u16);
        w.u64(self.frame_number);
        w.u64(self.capture_micros);
        w.u32(self.encode_micros);
        w.u16(self.width);
        w.u16(self.height);
        w.u32(self.payload_len);
        w.u32(self.held_back);
        w.u64(self.input_seq);
        w.u32(self.host_behind);
    }

    /// Length of the whole header (fixed part plus any extension), read from its first
    /// bytes. Needs at least 8 bytes.
    pub fn peek_len(bytes: &[u8]) -> Result<usize, WireError> {
        let mut r = Reader::new(bytes);
        if r.take(2)? != FRAME_MAGIC {
            return Err(WireError::BadMagic);
        }
        let version = r.u16()?;
        if version != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion { got: version });
        }
        r.u8()?;
        r.u8()?;
        let len = r.u16()? as usize;
        if !(FRAME_HEADER_LEN..=MAX_FRAME_HEADER_LEN).contains(&len) {
            return Err(WireError::BadHeaderLength { got: len });
        }
        Ok(len)
    }

    /// Decodes a header from the start of `bytes`; returns it and the header's full length.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), WireError> {
        let len = Self::peek_len(bytes)?;
        if bytes.len() < len {
            return Err(WireError::Truncated { needed: len - bytes.len() });
        }
        let mut r = Reader::new(&bytes[4..]);
        let kind = FrameKind::from_code(r.u8()?)?;
        r.u8()?; // flags
        r.u16()?; // header length, checked above
        let mut header = Self {
            frame_number: r.u64()?,
            capture_micros: r.u64()?,
            encode_micros: r.u32()?,
            kind,
            width: r.u16()?,
            height: r.u16()?,
            payload_len: r.u32()?,
            held_back: r.u32()?,
            input_seq: r.u64()?,
            host_behind: 0,
        };
        // Extensions: present when the header is long enough, skipped when unknown.
        if len >= SENT_FRAME_HEADER_LEN {
            header.host_behind = r.u32()?;
        }
        if header.payload_len > MAX_FRAME_BYTES {
            return Err(WireError::TooLarge {
                what: "frame payload",
                len: header.payload_len as usize,
                max: MAX_FRAME_BYTES as usize,
            });
        }
        Ok((header, len))
    }
}

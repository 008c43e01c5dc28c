//! Reassembles one frame from the chunks of its QUIC stream.
//!
//! Owns the bytes of a frame in flight. The network shell feeds it whatever chunks quinn
//! hands over, in order; this module decides when a frame is whole and rejects anything that
//! is malformed or longer than its header said. It never allocates more than the bytes that
//! actually arrived (plus a small first reservation), so a header that claims a huge payload
//! costs nothing until the data is really sent.

use crate::wire::{FrameHeader, MAX_FRAME_HEADER_LEN, WireError};
use thiserror::Error;

/// First reservation for a payload; grows with the data actually received.
const INITIAL_PAYLOAD_CAPACITY: usize = 64 * 1024;

/// A whole encoded frame as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    /// One H.264 access unit, Annex-B.
    pub payload: Vec<u8>,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AssembleError {
    #[error("bad frame header: {0}")]
    Header(#[from] WireError),
    #[error("stream carried {extra} bytes after the {expected}-byte payload its header announced")]
    TrailingBytes { expected: usize, extra: usize },
    #[error("stream ended after {got} of {expected} payload bytes")]
    Truncated { got: usize, expected: usize },
    #[error("stream ended inside the frame header")]
    TruncatedHeader,
}

/// Incremental frame parser for one stream.
#[derive(Debug, Default)]
pub struct Assembler {
    header_bytes: Vec<u8>,
    header: Option<FrameHeader>,
    payload: Vec<u8>,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the stream.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<(), AssembleError> {
        while self.header.is_none() {
            // The first 8 bytes say how long the whole header is; then read the rest of it.
            let want = if self.header_bytes.len() < 8 { 8 } else { FrameHeader::peek_len(&self.header_bytes)? };
            if self.header_bytes.len() < want {
                if chunk.is_empty() {
                    return Ok(());
                }
                let take = (want - self.header_bytes.len()).min(chunk.len());
                self.header_bytes.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                continue;
            }
            debug_assert!(self.header_bytes.len() <= MAX_FRAME_HEADER_LEN);
            let (header, _) = FrameHeader::decode(&self.header_bytes)?;
            self.payload = Vec::with_capacity((header.payload_len as usize).min(INITIAL_PAYLOAD_CAPACITY));
            self.header = Some(header);
        }
        let Some(header) = self.header else { return Ok(()) };
        let expected = header.payload_len as usize;
        let room = expected - self.payload.len();
        if chunk.len() > room {
            return Err(AssembleError::TrailingBytes { expected, extra: chunk.len() - room });
        }
        self.payload.extend_from_slice(chunk);
        Ok(())
    }

    /// Called when the stream ended: returns the frame if it is whole.
    pub fn finish(self) -> Result<Frame, AssembleError> {
        let Some(header) = self.header else { return Err(AssembleError::TruncatedHeader) };
        let expected = header.payload_len as usize;
        if self.payload.len() != expected {
            return Err(AssembleError::Truncated { got: self.payload.len(), expected });
        }
        Ok(Frame { header, payload: self.payload })
    }

    /// Payload bytes received so far.
    pub fn payload_received(&self) -> usize {
        self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameKind, MAX_FRAME_BYTES};
    use proptest::prelude::*;

    fn frame(payload_len: usize) -> (FrameHeader, Vec<u8>) {
        let header = FrameHeader {
            frame_number: 7,
            capture_micros: 11,
            encode_micros: 13,
            kind: FrameKind::Idr,
            width: 1280,
            height: 720,
            payload_len: payload_len as u32,
            input_seq: 0,
            held_back: 0,
            host_behind: 0,
        };
        let mut bytes = Vec::new();
        header.encode(&mut bytes);
        bytes.extend((0..payload_len).map(|i| i as u8));
        (header, bytes)
    }

    proptest! {
        #[test]
        fn any_chunking_reassembles(len in 0usize..5000, cuts in proptest::collection::vec(0usize..5100, 0..20)) {
            let (header, bytes) = frame(len);
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < bytes.len()).collect();
            cuts.sort_unstable();
            let mut a = Assembler::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                a.push(&bytes[last..c]).unwrap();
                last = c;
            }
            let f = a.finish().unwrap();
            prop_assert_eq!(f.header, header);
            prop_assert_eq!(&f.payload[..], &bytes[bytes.len() - len..]);
        }

        #[test]
        fn garbage_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut a = Assembler::new();
            for c in &chunks {
                if a.push(c).is_err() {
                    return Ok(());
                }
            }
            a.finish().ok();
        }
    }

    #[test]
    fn short_stream_is_truncated() {
        let (_, bytes) = frame(100);
        let mut a = Assembler::new();
        a.push(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(a.finish(), Err(AssembleError::Truncated { got: 99, expected: 100 }));
        let mut a = Assembler::new();
        a.push(&bytes[..20]).unwrap();
        assert_eq!(a.finish(), Err(AssembleError::TruncatedHeader));
    }

    #[test]
    fn extra_bytes_are_rejected() {
        let (_, mut bytes) = frame(10);
        bytes.push(0);
        let mut a = Assembler::new();
        assert_eq!(a.push(&bytes), Err(AssembleError::TrailingBytes { expected: 10, extra: 1 }));
    }

    #[test]
    fn huge_claim_allocates_only_what_arrives() {
        let (_, bytes) = frame(0);
        let mut claim = bytes.clone();
        claim[32..36].copy_from_slice(&MAX_FRAME_BYTES.to_le_bytes());
        let mut a = Assembler::new();
        a.push(&claim).unwrap();
        assert!(a.payload.capacity() <= INITIAL_PAYLOAD_CAPACITY);
        a.push(&[1, 2, 3]).unwrap();
        assert_eq!(a.payload_received(), 3);
    }
}

//! The head of a shared clipboard's stream: a copied text crosses on a bidirectional QUIC
//! stream of its own, opened by the side that copied it, as a kind byte, the text's length and
//! the text; then the stream ends. A megabyte on the control stream would hold every press,
//! ping and repair request behind it (about 3 s on a 3 Mbit/s path); a stream of its own, at
//! the lowest priority, holds nothing up. Streams are opened only when both sides announced
//! `Capabilities::CLIPBOARD`.

use crate::clipboard::MAX_BYTES;
use crate::wire::codec::{Reader, WireError, Writer};

/// The stream carries one copied text (UTF-8).
pub const KIND_TEXT: u8 = 1;
/// Bytes of the head: the kind and a `u32` length.
pub const HEAD_LEN: usize = 5;

/// A text stream's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipboardHead {
    /// The text's length in bytes, at most [`MAX_BYTES`].
    pub len: u32,
}

impl ClipboardHead {
    pub fn encode(self) -> [u8; HEAD_LEN] {
        let mut out = Vec::with_capacity(HEAD_LEN);
        let mut w = Writer(&mut out);
        w.u8(KIND_TEXT);
        w.u32(self.len);
        let mut head = [0; HEAD_LEN];
        head.copy_from_slice(&out);
        head
    }

    /// Reads a head; a kind this build does not know, or a length over the cap, is an error
    /// before anything is allocated for the text.
    pub fn decode(bytes: &[u8; HEAD_LEN]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let kind = r.u8()?;
        if kind != KIND_TEXT {
            return Err(WireError::UnknownCode { what: "clipboard stream kind", code: kind });
        }
        let len = r.u32()?;
        if len as usize > MAX_BYTES {
            return Err(WireError::TooLarge { what: "copied text", len: len as usize, max: MAX_BYTES });
        }
        Ok(Self { len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_round_trips_and_an_oversized_or_unknown_one_is_refused() {
        let head = ClipboardHead { len: 1234 };
        assert_eq!(ClipboardHead::decode(&head.encode()), Ok(head));
        assert_eq!(head.encode(), [KIND_TEXT, 0xD2, 0x04, 0, 0]);
        let max = ClipboardHead { len: MAX_BYTES as u32 };
        assert_eq!(ClipboardHead::decode(&max.encode()), Ok(max));
        let over = ClipboardHead { len: MAX_BYTES as u32 + 1 }.encode();
        assert!(matches!(ClipboardHead::decode(&over), Err(WireError::TooLarge { .. })));
        assert!(matches!(ClipboardHead::decode(&[9, 1, 0, 0, 0]), Err(WireError::UnknownCode { code: 9, .. })));
    }
}

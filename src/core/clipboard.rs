//! A shared clipboard's rules (text only): what may cross, and when.
//!
//! - **What.** UTF-8 text of at most [`MAX_BYTES`]; anything else is refused with a reason the
//!   shell logs (never the text itself: a clipboard holds passwords).
//! - **When.** Only a change: the text one side last took from the other, or last sent, is
//!   not sent again. Taking the selection for the peer's text makes the local clipboard report
//!   a new owner, whose text is that same text: it is recognised and not echoed back, so the
//!   two sides never ping-pong, and nothing travels while nothing changes.
//!
//! Pure: the shells (`crate::clipboard` on X11, the sessions on the wire) feed it bytes.

use std::hash::{Hash as _, Hasher as _};

/// The largest text that crosses (1 MiB).
pub const MAX_BYTES: usize = 1 << 20;

/// Why a text did not cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a copied text of {len} bytes is over the shared clipboard's {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("a copied text is not UTF-8 (at byte {at})")]
    NotUtf8 { at: usize },
}

/// Checks `bytes` as a clipboard text.
pub fn check(bytes: &[u8]) -> Result<&str, Refused> {
    if bytes.len() > MAX_BYTES {
        return Err(Refused::TooLarge { len: bytes.len(), max: MAX_BYTES });
    }
    std::str::from_utf8(bytes).map_err(|e| Refused::NotUtf8 { at: e.valid_up_to() })
}

/// One side's memory of the shared text: a digest of the last text that crossed either way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SharedClipboard {
    last: Option<u64>,
}

fn digest(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl SharedClipboard {
    /// Text copied on this side: the text to send, `None` when it is what crossed last (an
    /// echo of the peer's, or sent already).
    pub fn copied_here<'a>(&mut self, bytes: &'a [u8]) -> Result<Option<&'a str>, Refused> {
        let text = check(bytes)?;
        let d = digest(text);
        if self.last == Some(d) {
            return Ok(None);
        }
        self.last = Some(d);
        Ok(Some(text))
    }

    /// Text from the peer: the text to put in this side's clipboard.
    pub fn from_peer<'a>(&mut self, bytes: &'a [u8]) -> Result<&'a str, Refused> {
        let text = check(bytes)?;
        self.last = Some(digest(text));
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_cross_and_the_peers_text_is_not_echoed() {
        let mut s = SharedClipboard::default();
        assert_eq!(s.copied_here(b"hello"), Ok(Some("hello")));
        assert_eq!(s.copied_here(b"hello"), Ok(None), "the same copy again: nothing to send");
        assert_eq!(s.from_peer("grüße".as_bytes()), Ok("grüße"));
        // Taking the selection for it reports it as copied here: not sent back.
        assert_eq!(s.copied_here("grüße".as_bytes()), Ok(None));
        assert_eq!(s.copied_here(b"hello"), Ok(Some("hello")), "a real change crosses again");
    }

    #[test]
    fn too_large_and_not_utf8_are_refused_with_a_reason() {
        let mut s = SharedClipboard::default();
        let big = vec![b'a'; MAX_BYTES + 1];
        assert_eq!(s.copied_here(&big), Err(Refused::TooLarge { len: MAX_BYTES + 1, max: MAX_BYTES }));
        assert_eq!(s.from_peer(&[b'o', b'k', 0xFF, 0xFE]), Err(Refused::NotUtf8 { at: 2 }));
        assert!(check(&vec![b'a'; MAX_BYTES]).is_ok(), "exactly the cap crosses");
        // A refusal leaves the memory as it was.
        assert_eq!(s.copied_here(b"x"), Ok(Some("x")));
        let message = Refused::NotUtf8 { at: 2 }.to_string();
        assert!(!message.contains("ok"), "a refusal never carries the text: {message}");
    }
}

//! The byte reader and writer every kumo message is coded with, and the error every decoder
//! returns. All integers are little-endian.

use crate::wire::{FRAME_HEADER_LEN, MAX_FRAME_HEADER_LEN, MAX_TEXT_BYTES, PROTOCOL_VERSION};
use thiserror::Error;

/// Why bytes from a peer could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("message truncated: needed {needed} more bytes")]
    Truncated { needed: usize },
    #[error("not a kumo frame header (bad magic)")]
    BadMagic,
    #[error("frame header from protocol version {got}, this build speaks version {PROTOCOL_VERSION}")]
    UnsupportedVersion { got: u16 },
    #[error("frame header length {got} is outside {FRAME_HEADER_LEN}..={MAX_FRAME_HEADER_LEN}")]
    BadHeaderLength { got: usize },
    #[error("unknown frame kind {0}")]
    UnknownFrameKind(u8),
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("unknown {what} code {code}")]
    UnknownCode { what: &'static str, code: u8 },
    #[error("text field is not valid UTF-8")]
    BadText,
    #[error("empty control message")]
    Empty,
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Little-endian writer over a growable buffer.
pub(crate) struct Writer<'a>(pub(crate) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn i16(&mut self, v: i16) {
        self.bytes(&v.to_le_bytes());
    }
    /// Writes a `u16` length and the text, cut at a character boundary to `MAX_TEXT_BYTES`.
    pub(crate) fn text(&mut self, s: &str) {
        let mut end = s.len().min(MAX_TEXT_BYTES);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.bytes(&s.as_bytes()[..end]);
    }
}

/// Bounds-checked little-endian reader: the one every message and datagram decodes with.
/// Reading past the end is always `WireError::Truncated`, never a panic or a filled-in zero.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated { needed: n - self.rest.len() });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_le_bytes(self.array()?))
    }
    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }
    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
    pub(crate) fn text(&mut self) -> Result<String, WireError> {
        let len = self.u16()? as usize;
        if len > MAX_TEXT_BYTES {
            return Err(WireError::TooLarge { what: "text field", len, max: MAX_TEXT_BYTES });
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| WireError::BadText)
    }
}

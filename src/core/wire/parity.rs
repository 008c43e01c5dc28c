//! The parity datagram: one Reed-Solomon parity shard of a frame stream (`core::video::fec`
//! computes and uses it), with the shard layout it announces, checked on arrival.

use crate::wire::codec::{Reader, WireError};
use crate::wire::kind::DatagramKind;
use crate::wire::{MAX_FRAME_BYTES, MAX_FRAME_HEADER_LEN};
use std::ops::Range;

/// Bytes of a parity datagram before its shard: magic, stream, stream length, shard length,
/// block, data shards, parity shards, index.
pub const PARITY_HEADER_LEN: usize = 2 + 8 + 4 + 2 + 2 + 1 + 1 + 1;
/// Data shards in one block, at most; parity shards likewise: as many as the datagram's
/// one-byte counts hold. The code (reed-solomon-simd's) would take far more, and fewer, larger
/// blocks are what it is fast at: each rebuild has a fixed cost of about 0.3 ms (the error
/// locator over all of GF(2^16)), so a 200 KB key frame rebuilds in two blocks, not four.
/// (Builds before `Capabilities::PARITY_RS16` cut blocks of 128.)
pub const MAX_DATA_SHARDS: usize = 255;
pub const MAX_PARITY_SHARDS: usize = 255;
/// Shard lengths a parity datagram may announce (a datagram fits one UDP packet).
pub const MIN_SHARD_LEN: usize = 64;
pub const MAX_SHARD_LEN: usize = 1400;
/// The longest frame stream: the largest header and the largest payload.
pub const MAX_STREAM_LEN: usize = MAX_FRAME_HEADER_LEN + MAX_FRAME_BYTES as usize;

/// How one stream is cut into shards and blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLayout {
    pub stream_len: usize,
    pub shard_len: usize,
}

impl ShardLayout {
    pub fn shards(&self) -> usize {
        self.stream_len.div_ceil(self.shard_len)
    }

    pub fn blocks(&self) -> usize {
        self.shards().div_ceil(MAX_DATA_SHARDS)
    }

    /// Data shards in `block`.
    pub fn block_shards(&self, block: usize) -> usize {
        self.shards().saturating_sub(block * MAX_DATA_SHARDS).min(MAX_DATA_SHARDS)
    }

    /// The stream bytes of data shard `shard` (the last one may be short).
    pub(crate) fn shard(&self, shard: usize) -> Range<usize> {
        let start = shard * self.shard_len;
        start..(start + self.shard_len).min(self.stream_len)
    }
}

/// One parity shard, as a datagram carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parity {
    /// The QUIC stream's index among the host's unidirectional streams.
    pub stream: u64,
    pub stream_len: u32,
    pub shard_len: u16,
    pub block: u16,
    /// Data shards in this block, and parity shards sent for it.
    pub data_shards: u8,
    pub parity_shards: u8,
    /// Which of the block's parity shards this is.
    pub index: u8,
    pub bytes: Vec<u8>,
}

impl Parity {
    pub fn layout(&self) -> ShardLayout {
        ShardLayout { stream_len: self.stream_len as usize, shard_len: usize::from(self.shard_len) }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PARITY_HEADER_LEN + self.bytes.len());
        out.extend_from_slice(&DatagramKind::Parity.magic());
        out.extend_from_slice(&self.stream.to_le_bytes());
        out.extend_from_slice(&self.stream_len.to_le_bytes());
        out.extend_from_slice(&self.shard_len.to_le_bytes());
        out.extend_from_slice(&self.block.to_le_bytes());
        out.extend_from_slice(&[self.data_shards, self.parity_shards, self.index]);
        out.extend_from_slice(&self.bytes);
        out
    }

    /// Decodes and checks a parity datagram: its shard must be whole, and its block and counts
    /// must agree with the stream length it announces.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > PARITY_HEADER_LEN + MAX_SHARD_LEN {
            let max = PARITY_HEADER_LEN + MAX_SHARD_LEN;
            return Err(WireError::TooLarge { what: "parity datagram", len: bytes.len(), max });
        }
        if bytes.len() < PARITY_HEADER_LEN {
            return Err(WireError::Truncated { needed: PARITY_HEADER_LEN - bytes.len() });
        }
        let mut r = Reader::new(bytes);
        if r.array()? != DatagramKind::Parity.magic() {
            return Err(WireError::BadMagic);
        }
        let parity = Self {
            stream: r.u64()?,
            stream_len: r.u32()?,
            shard_len: r.u16()?,
            block: r.u16()?,
            data_shards: r.u8()?,
            parity_shards: r.u8()?,
            index: r.u8()?,
            bytes: r.rest().to_vec(),
        };
        parity.check()?;
        Ok(parity)
    }

    /// Whether the shard is whole and its block and counts agree with its stream length.
    pub(crate) fn check(&self) -> Result<(), WireError> {
        let (parity, layout) = (self, self.layout());
        if !(MIN_SHARD_LEN..=MAX_SHARD_LEN).contains(&layout.shard_len) {
            return Err(WireError::Invalid("parity shard length"));
        }
        if !layout.shard_len.is_multiple_of(2) {
            // reed-solomon-simd works on pairs of bytes (GF(2^16)).
            return Err(WireError::Invalid("parity shard length (odd)"));
        }
        if parity.bytes.len() != layout.shard_len {
            return Err(WireError::Invalid("parity shard (not its announced length)"));
        }
        if layout.stream_len == 0 || layout.stream_len > MAX_STREAM_LEN {
            return Err(WireError::Invalid("parity stream length"));
        }
        let block = usize::from(parity.block);
        if block >= layout.blocks() || usize::from(parity.data_shards) != layout.block_shards(block) {
            return Err(WireError::Invalid("parity block"));
        }
        if parity.parity_shards == 0
            || usize::from(parity.parity_shards) > MAX_PARITY_SHARDS
            || parity.index >= parity.parity_shards
        {
            return Err(WireError::Invalid("parity shard count"));
        }
        Ok(())
    }
}

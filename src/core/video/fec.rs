//! Forward error correction for frame streams: parity that repairs a frame without a round trip.
//!
//! A frame travels on a QUIC stream of its own, and QUIC repairs a lost packet by sending it
//! again: a round trip and more after the loss (at 10 % loss about one 1080p frame in four loses
//! a packet twice, 60–80 ms late at 20 ms RTT). Beside the stream the host sends parity
//! datagrams. The stream's bytes (frame header and payload) are cut into shards of `shard_len`
//! bytes, in blocks of at most [`MAX_DATA_SHARDS`]; each block of `k` data shards gets `m` parity
//! shards of a systematic Reed-Solomon code (reed-solomon-simd: GF(2^16), O(n log n), SIMD; any
//! `k` of the block's `k + m` shards give back all `k`). The client reads the stream out of order
//! ([`Recovery`]); once every block lacks no more shards than it has parity for, it rebuilds the
//! frame and stops the stream, and neither waits for QUIC's retransmission nor lets it be sent.
//! Parity that is lost, or too little, costs only its bytes: the stream still delivers.
//!
//! A lost QUIC packet (about 1400 bytes of stream) spoils the shards it overlaps: with 512-byte
//! shards three or four, about 1400 + 512 bytes of parity to repair it. Smaller shards would
//! repair a loss with fewer parity bytes but cost more datagrams; 512 is near the balance.
//!
//! How much parity to send is [`Protection`]'s call: a share of each block that follows the
//! path's recent random loss, held at a low floor when the loss comes with a growing queue (an
//! overflowing bottleneck, which more bytes would only make worse: adaptive bitrate answers
//! that), and a quarter at least for key frames. Pure: time and QUIC's counters come in as arguments.

use crate::video::assemble::{AssembleError, Assembler, Frame};
use crate::wire::parity::{
    MAX_DATA_SHARDS, MAX_PARITY_SHARDS, MAX_SHARD_LEN, MAX_STREAM_LEN, MIN_SHARD_LEN, Parity, ShardLayout,
};
use crate::wire::{FrameHeader, FrameKind, WireError};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::time::Duration;

/// The host's shard length for frames of up to one block (about 130 KB).
pub const SHARD_LEN: usize = 512;

/// The shard length for a stream of `len` bytes whose datagrams hold `max` bytes of shard:
/// [`SHARD_LEN`], or longer for a stream that would need more than one block of those, so
/// that it fits in one (each block's rebuild has a fixed cost of about 0.3 ms: a 200 KB key
/// frame in one block of 786-byte shards rebuilds in half the time of two blocks of 512);
/// never more than `max` or [`MAX_SHARD_LEN`], and even (the code works on pairs of bytes).
pub fn shard_len_for(len: usize, max: usize) -> usize {
    let max = max.min(MAX_SHARD_LEN) & !1;
    let fits_one_block = len.div_ceil(MAX_DATA_SHARDS).next_multiple_of(2);
    SHARD_LEN.max(fits_one_block).min(max)
}
/// Builds the code's tables now: reed-solomon-simd builds them on first use (14 ms of one core
/// on this project's machine, once per process). Host and client call it before their first
/// frame, off the async workers: built during the first key frame's parity or rebuild, the
/// delay cost that key frame its place (at 10 % loss, the first frames were declared lost in
/// four runs of nine; none after this).
pub fn prepare() {
    let data = [[1u8; 64]; 2];
    if let Ok(parity) = reed_solomon_simd::encode(2, 1, data) {
        let _warm = reed_solomon_simd::decode(2, 1, [(0, data[0])], [(0, &parity[0])]);
    }
}

/// The parity of one stream's bytes: for each block of `k` data shards, `parity_for(k)` parity
/// shards (at most [`MAX_PARITY_SHARDS`]; none for a block given 0). Nothing for a layout the
/// wire would refuse (an empty or too long stream, a shard length out of range or odd).
pub fn protect(stream: u64, bytes: &[u8], shard_len: usize, parity_for: impl Fn(usize) -> usize) -> Vec<Parity> {
    let layout = ShardLayout { stream_len: bytes.len(), shard_len };
    if bytes.is_empty()
        || bytes.len() > MAX_STREAM_LEN
        || !(MIN_SHARD_LEN..=MAX_SHARD_LEN).contains(&shard_len)
        || !shard_len.is_multiple_of(2)
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    // The stream's last shard, padded with zeros to a whole one (the code works on whole shards).
    let mut last = Vec::new();
    for block in 0..layout.blocks() {
        let k = layout.block_shards(block);
        let m = parity_for(k).min(MAX_PARITY_SHARDS);
        if m == 0 {
            continue;
        }
        let first = block * MAX_DATA_SHARDS;
        // Counts and length are within what the code supports (checked above and by the
        // wire's limits); an error would be a bug here, and costs only this block's parity.
        let Ok(mut encoder) = ReedSolomonEncoder::new(k, m, shard_len) else { continue };
        for j in 0..k {
            let range = layout.shard(first + j);
            let added = if range.len() == shard_len {
                encoder.add_original_shard(&bytes[range])
            } else {
                last.clear();
                last.extend_from_slice(&bytes[range]);
                last.resize(shard_len, 0);
                encoder.add_original_shard(&last)
            };
            debug_assert!(added.is_ok());
        }
        let Ok(result) = encoder.encode() else { continue };
        for (i, shard) in result.recovery_iter().enumerate() {
            out.push(Parity {
                stream,
                stream_len: layout.stream_len as u32,
                shard_len: shard_len as u16,
                block: block as u16,
                data_shards: k as u8,
                parity_shards: m as u8,
                index: i as u8,
                bytes: shard.to_vec(),
            });
        }
    }
    out
}

/// Byte ranges received, merged and sorted.
#[derive(Debug, Default, Clone)]
struct Ranges(Vec<Range<usize>>);

impl Ranges {
    fn insert(&mut self, new: Range<usize>) {
        if new.is_empty() {
            return;
        }
        // The first range that ends at or after the new start may merge with it.
        let at = self.0.partition_point(|r| r.end < new.start);
        let mut merged = new;
        while at < self.0.len() && self.0[at].start <= merged.end {
            let r = self.0.remove(at);
            merged = merged.start.min(r.start)..merged.end.max(r.end);
        }
        self.0.insert(at, merged);
    }

    fn covers(&self, want: &Range<usize>) -> bool {
        let at = self.0.partition_point(|r| r.end < want.end);
        self.0.get(at).is_some_and(|r| r.start <= want.start && r.end >= want.end)
    }
}

/// Why a stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("stream data at {end} bytes runs past {max} bytes")]
    TooLong { end: usize, max: usize },
    #[error("stream ended with bytes {missing:?} never received")]
    Gap { missing: Range<usize> },
    #[error(transparent)]
    Frame(#[from] AssembleError),
    #[error("parity could not rebuild the stream: {0}")]
    Repair(String),
}

thread_local! {
    /// The decoder's working space (about a quarter of a megabyte for a full block), kept from
    /// one rebuild to the next on each thread: allocating and zeroing it for every block
    /// took longer than the decoding itself. Only a cache: no rebuild depends on an earlier one.
    static DECODER: std::cell::RefCell<Option<ReedSolomonDecoder>> = const { std::cell::RefCell::new(None) };
}

/// Rebuilds the `missing` data shards of one block of `bytes` (`layout`, block, its `k` data and
/// `m` parity shards) from the others and the block's `parity`, with `decoder`'s space.
fn rebuild_block(
    decoder: &mut Option<ReedSolomonDecoder>,
    bytes: &mut [u8],
    last: &mut Vec<u8>,
    (layout, block, k, m): (ShardLayout, usize, usize, usize),
    missing: &[usize],
    parity: &BTreeMap<(u16, u8), Vec<u8>>,
) -> Result<(), RecoveryError> {
    let decoder = match decoder {
        Some(d) => {
            d.reset(k, m, layout.shard_len).map_err(repair)?;
            d
        }
        None => decoder.insert(ReedSolomonDecoder::new(k, m, layout.shard_len).map_err(repair)?),
    };
    let first = block * MAX_DATA_SHARDS;
    for j in (0..k).filter(|j| !missing.contains(j)) {
        let range = layout.shard(first + j);
        if range.len() == layout.shard_len {
            decoder.add_original_shard(j, &bytes[range]).map_err(repair)?;
        } else {
            last.clear();
            last.extend_from_slice(&bytes[range]);
            last.resize(layout.shard_len, 0);
            decoder.add_original_shard(j, &*last).map_err(repair)?;
        }
    }
    for (&(_, i), shard) in parity.range((block as u16, 0)..=(block as u16, u8::MAX)) {
        decoder.add_recovery_shard(usize::from(i), shard).map_err(repair)?;
    }
    let result = decoder.decode().map_err(repair)?;
    for &j in missing {
        let shard = result.restored_original(j).ok_or(RecoveryError::Repair("a shard was not restored".into()))?;
        let range = layout.shard(first + j);
        let len = range.len();
        bytes[range].copy_from_slice(&shard[..len]);
    }
    Ok(())
}

/// A Reed-Solomon error as a [`RecoveryError`] (only parity that lies about its layout gets one).
fn repair(err: reed_solomon_simd::Error) -> RecoveryError {
    RecoveryError::Repair(err.to_string())
}

/// One frame stream read out of order, with the parity that came for it.
#[derive(Debug, Default)]
pub struct Recovery {
    chunks: BTreeMap<usize, Vec<u8>>,
    have: Ranges,
    /// Highest byte offset received.
    end: usize,
    layout: Option<ShardLayout>,
    /// The stream's length as its frame header says, once the header arrived (and checked).
    expected: Option<usize>,
    /// Parity received, by block and index; all of a stream's parity agrees on its layout.
    parity: BTreeMap<(u16, u8), Vec<u8>>,
    /// Parity shards each block was given, as its parity says (all of a block's agrees).
    parity_count: BTreeMap<u16, u8>,
    parity_bytes: usize,
}

impl Recovery {
    pub fn new() -> Self {
        Self::default()
    }

    /// A chunk of the stream at `offset`.
    /// A bad frame header fails the stream as soon as it arrives, before the rest is kept.
    pub fn on_chunk(&mut self, offset: u64, bytes: &[u8]) -> Result<(), RecoveryError> {
        let max = self.expected.or(self.layout.map(|l| l.stream_len)).unwrap_or(MAX_STREAM_LEN);
        let end = usize::try_from(offset).ok().and_then(|o| o.checked_add(bytes.len())).unwrap_or(usize::MAX);
        if end > max {
            return Err(RecoveryError::TooLong { end, max });
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let start = end - bytes.len();
        self.end = self.end.max(end);
        self.have.insert(start..end);
        // quinn drops duplicates in unordered reads; of two chunks at one offset the longer
        // stays (overlapping chunks carry the same bytes).
        let slot = self.chunks.entry(start).or_default();
        if slot.len() < bytes.len() {
            *slot = bytes.to_vec();
        }
        if self.expected.is_none() {
            self.read_header()?;
        }
        Ok(())
    }

    /// Checks the frame header once its bytes are in, and from then on holds the stream to the
    /// length it gives.
    fn read_header(&mut self) -> Result<(), RecoveryError> {
        let Some(first) = self.prefix(8) else { return Ok(()) };
        let len = FrameHeader::peek_len(&first).map_err(AssembleError::from)?;
        let Some(header) = self.prefix(len) else { return Ok(()) };
        let (header, _) = FrameHeader::decode(&header).map_err(AssembleError::from)?;
        let expected = len + header.payload_len as usize;
        if self.end > expected {
            let extra = self.end - expected;
            return Err(AssembleError::TrailingBytes { expected: header.payload_len as usize, extra }.into());
        }
        if self.layout.is_some_and(|l| l.stream_len != expected) {
            // Parity for another length came first: it cannot help this stream.
            self.layout = None;
            self.parity.clear();
            self.parity_count.clear();
            self.parity_bytes = 0;
        }
        self.expected = Some(expected);
        Ok(())
    }

    /// The stream's first `len` bytes, if they all arrived.
    fn prefix(&self, len: usize) -> Option<Vec<u8>> {
        if !self.have.covers(&(0..len)) {
            return None;
        }
        let mut out = vec![0u8; len];
        self.copy_chunks(&mut out);
        Some(out)
    }

    /// Copies every chunk received into `out` at its offset, as far as `out` reaches.
    fn copy_chunks(&self, out: &mut [u8]) {
        for (&at, chunk) in self.chunks.range(..out.len()) {
            let n = chunk.len().min(out.len() - at);
            out[at..at + n].copy_from_slice(&chunk[..n]);
        }
    }

    /// A parity shard for this stream. Parity that disagrees with what came before, or with the
    /// bytes already received, or that would take more than the stream's length again, is
    /// refused (and costs nothing).
    pub fn on_parity(&mut self, parity: Parity) -> Result<(), WireError> {
        parity.check()?;
        let layout = parity.layout();
        if self.expected.is_some_and(|len| len != layout.stream_len) {
            return Err(WireError::Invalid("parity stream length (differs from the frame header's)"));
        }
        match self.layout {
            Some(known) if known != layout => {
                return Err(WireError::Invalid("parity layout (differs from the stream's)"));
            }
            None if self.end > layout.stream_len => {
                return Err(WireError::Invalid("parity stream length (under the data)"));
            }
            _ => {}
        }
        if self.parity_bytes + parity.bytes.len() > layout.stream_len + MAX_PARITY_SHARDS * layout.shard_len {
            return Err(WireError::TooLarge {
                what: "parity for one stream",
                len: self.parity_bytes,
                max: layout.stream_len,
            });
        }
        if self.parity_count.get(&parity.block).is_some_and(|&m| m != parity.parity_shards) {
            return Err(WireError::Invalid("parity shard count (differs within a block)"));
        }
        self.layout = Some(layout);
        self.parity_count.insert(parity.block, parity.parity_shards);
        if let std::collections::btree_map::Entry::Vacant(slot) = self.parity.entry((parity.block, parity.index)) {
            self.parity_bytes += parity.bytes.len();
            slot.insert(parity.bytes);
        }
        Ok(())
    }

    /// Parity shards held.
    pub fn parity_held(&self) -> usize {
        self.parity.len()
    }

    /// The stream ended and quinn handed over all of it: the frame, if it is one.
    pub fn finish(self) -> Result<Frame, RecoveryError> {
        let bytes = self.contiguous(self.end)?;
        Ok(assemble(&bytes)?)
    }

    /// The frame rebuilt from what arrived and the parity, with the number of data shards
    /// rebuilt, once some shard is missing and every block lacks no more shards than it has
    /// parity for; `None` before (and when nothing is missing: the stream's end is near).
    pub fn try_recover(&self) -> Option<Result<(Frame, usize), RecoveryError>> {
        let layout = self.layout?;
        let mut missing_by_block = Vec::new();
        for block in 0..layout.blocks() {
            let first = block * MAX_DATA_SHARDS;
            let missing: Vec<usize> =
                (0..layout.block_shards(block)).filter(|&j| !self.have.covers(&layout.shard(first + j))).collect();
            let held = self.parity.range((block as u16, 0)..=(block as u16, u8::MAX)).count();
            if missing.len() > held {
                return None;
            }
            missing_by_block.push(missing);
        }
        let rebuilt = missing_by_block.iter().map(Vec::len).sum();
        (rebuilt > 0).then(|| self.rebuild(layout, &missing_by_block).map(|frame| (frame, rebuilt)))
    }

    fn rebuild(&self, layout: ShardLayout, missing_by_block: &[Vec<usize>]) -> Result<Frame, RecoveryError> {
        let mut bytes = vec![0u8; layout.stream_len];
        self.copy_chunks(&mut bytes);
        let mut last = Vec::new();
        for (block, missing) in missing_by_block.iter().enumerate().filter(|(_, m)| !m.is_empty()) {
            let k = layout.block_shards(block);
            let m = self.parity_count.get(&(block as u16)).map_or(0, |&m| usize::from(m));
            DECODER.with_borrow_mut(|decoder| {
                rebuild_block(decoder, &mut bytes, &mut last, (layout, block, k, m), missing, &self.parity)
            })?;
        }
        Ok(assemble(&bytes)?)
    }
    /// The stream's first `len` bytes, which must all have arrived.
    fn contiguous(&self, len: usize) -> Result<Vec<u8>, RecoveryError> {
        if len > 0 && !self.have.covers(&(0..len)) {
            let first = self.have.0.first().filter(|r| r.start == 0).map_or(0, |r| r.end);
            let next = self.have.0.iter().map(|r| r.start).find(|&s| s > first).unwrap_or(len);
            return Err(RecoveryError::Gap { missing: first..next });
        }
        let mut bytes = vec![0u8; len];
        self.copy_chunks(&mut bytes);
        Ok(bytes)
    }
}

fn assemble(bytes: &[u8]) -> Result<Frame, AssembleError> {
    let mut assembler = Assembler::new();
    assembler.push(bytes)?;
    assembler.finish()
}

/// How much parity the host sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FecMode {
    Off,
    /// Follow the path's loss ([`Protection`]).
    Auto,
    /// A fixed share of each block, 0.0–1.0.
    Fixed(f64),
}

impl std::str::FromStr for FecMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" | "0" | "0%" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            _ => {
                let share = s
                    .strip_suffix('%')
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        format!("'{s}' is not a parity share: say off, auto, or a percentage such as 20%")
                    })?;
                Ok(if share == 0.0 { Self::Off } else { Self::Fixed(share / 100.0) })
            }
        }
    }
}

/// Share of each block sent as parity on a clean path: repairs a stray loss or two.
pub const BASE_SHARE: f64 = 0.04;
/// Parity shards per protected block, at least: one lost packet spoils three or four shards.
pub const MIN_PARITY: usize = 4;
/// Parity per unit of loss: a lost 1400-byte packet spoils about 1.4 packets' worth of
/// 512-byte shards, and the parity itself is lost as often; 2.5 covers that with room for the
/// frame-to-frame spread of losses (at 10 % loss a 30-packet frame loses 3 ± 1.6 packets).
const SHARE_PER_LOSS: f64 = 2.5;
pub const MAX_SHARE: f64 = 0.5;
/// Share for key frames (IDR, recovery), at least: covers 10 % loss with room.
pub const KEY_SHARE: f64 = 0.25;
/// Loss is measured over this much of the recent past.
const LOSS_WINDOW: Duration = Duration::from_secs(2);
/// Queueing delay (smoothed RTT over the lowest) that marks loss as an overflowing queue.
pub const QUEUE_LOSS: Duration = Duration::from_millis(20);
/// Loss under this share (or loss from an overflowing queue) is a clean path's: a stray loss.
pub const CLEAN_LOSS: f64 = 0.005;
/// On a clean path, parity against a stray loss is worth at most this share of an inter frame.
/// Repairing one lost packet takes [`MIN_PARITY`] shards whatever the frame's size (a 2 KB
/// floor), which is 47 % of a 720p60 frame at 2 Mbit/s and 65 % of a 360p60 one at 1.5: on a
/// path too narrow for the stream that would take a third of what it carries, for a loss that
/// a recovery frame repairs a round trip later anyway. So smaller inter frames (under about
/// 13.6 KB, 6.5 Mbit/s at 60 fps) go without parity until the path shows loss.
pub const STRAY_SHARE_CAP: f64 = 0.15;

/// The host's parity share: [`BASE_SHARE`] plus [`SHARE_PER_LOSS`] times the share of packets
/// QUIC declared lost in the last 2 s, up to [`MAX_SHARE`], while the path shows no queue.
#[derive(Debug, Clone)]
pub struct Protection {
    mode: FecMode,
    /// Cumulative (sent, lost) packets, sampled at most every 100 ms over the window.
    samples: VecDeque<(Duration, u64, u64)>,
    queued: bool,
    /// The share last reported by [`Protection::changed`], in whole percent.
    reported: Option<u32>,
}

impl Protection {
    pub fn new(mode: FecMode) -> Self {
        Self { mode, samples: VecDeque::new(), queued: false, reported: None }
    }

    /// QUIC's counters now: packets sent and declared lost so far, smoothed and lowest RTT.
    pub fn on_path(&mut self, now: Duration, sent: u64, lost: u64, rtt: Duration, min_rtt: Duration) {
        self.queued = rtt.saturating_sub(min_rtt) > QUEUE_LOSS;
        if self.samples.back().is_some_and(|&(at, ..)| now.saturating_sub(at) < Duration::from_millis(100)) {
            return;
        }
        self.samples.push_back((now, sent, lost));
        while self.samples.len() > 2
            && self.samples.get(1).is_some_and(|&(at, ..)| now.saturating_sub(at) >= LOSS_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Share of packets lost over the window.
    pub fn loss(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(_, s0, l0)), Some(&(_, s1, l1))) if s1 > s0 => {
                (l1.saturating_sub(l0) as f64 / (s1 - s0) as f64).min(1.0)
            }
            _ => 0.0,
        }
    }

    /// Parity as a share of each block's data.
    pub fn share(&self) -> f64 {
        match self.mode {
            FecMode::Off => 0.0,
            FecMode::Fixed(share) => share.min(1.0),
            FecMode::Auto if self.queued => BASE_SHARE,
            FecMode::Auto => (BASE_SHARE + SHARE_PER_LOSS * self.loss()).min(MAX_SHARE),
        }
    }

    /// The share for a frame of `kind`: at least [`KEY_SHARE`] for an IDR or a recovery frame
    /// in `Auto` mode. Each is large (an IDR is several inter frames), rare, and what a stream
    /// starts or recovers from; the stream's first IDR goes out before any loss was measured.
    /// An inter frame of `len` bytes on a clean path gets none when the least parity that
    /// repairs a packet would cost it more than [`STRAY_SHARE_CAP`].
    pub fn share_for(&self, kind: FrameKind, len: usize) -> f64 {
        match (self.mode, kind) {
            (FecMode::Auto, FrameKind::Idr | FrameKind::Recovery) => self.share().max(KEY_SHARE),
            (FecMode::Auto, FrameKind::Inter) if self.clean() && stray_cost(len) > STRAY_SHARE_CAP => 0.0,
            _ => self.share(),
        }
    }

    /// Whether the path's losses, if any, are strays or an overflowing queue's.
    fn clean(&self) -> bool {
        self.queued || self.loss() < CLEAN_LOSS
    }

    /// The share (of an inter frame), when it moved by 5 points or more since it was last
    /// reported (and the first time): what the host logs for a tester.
    pub fn changed(&mut self) -> Option<f64> {
        let now = (self.share() * 100.0).round() as u32;
        if self.reported.is_some_and(|was| was.abs_diff(now) < 5) {
            return None;
        }
        self.reported = Some(now);
        Some(self.share())
    }

    /// Parity shards for a block of `k` data shards.
    pub fn parity_for(&self, k: usize) -> usize {
        parity_for(self.share(), k)
    }
}

/// The least parity (at least [`MIN_PARITY`] shards of [`SHARD_LEN`]) as a share of a stream
/// of `len` bytes.
pub fn stray_cost(len: usize) -> f64 {
    let k = len.div_ceil(SHARD_LEN).max(1);
    (MIN_PARITY.min(k) * SHARD_LEN) as f64 / len.max(1) as f64
}

/// Parity shards for a block of `k` data shards at `share`: none at 0, else at least
/// [`MIN_PARITY`] (and no more than the block has data, past that) and at most
/// [`MAX_PARITY_SHARDS`].
pub fn parity_for(share: f64, k: usize) -> usize {
    if share <= 0.0 || k == 0 {
        return 0;
    }
    let m = (k as f64 * share).ceil() as usize;
    m.max(MIN_PARITY.min(k)).min(MAX_PARITY_SHARDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parity::PARITY_HEADER_LEN;
    use proptest::prelude::*;

    fn stream_bytes(payload_len: usize, seed: u8) -> (Frame, Vec<u8>) {
        let payload: Vec<u8> = (0..payload_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let header = FrameHeader {
            frame_number: 7,
            kind: FrameKind::Inter,
            width: 1920,
            height: 1080,
            payload_len: payload.len() as u32,
            capture_micros: 1,
            encode_micros: 2,
            input_seq: 3,
            held_back: 0,
            host_behind: 0,
        };
        let mut bytes = Vec::new();
        header.encode(&mut bytes);
        bytes.extend_from_slice(&payload);
        (Frame { header, payload }, bytes)
    }

    #[test]
    fn a_frame_fits_one_block_where_a_datagram_allows_and_shards_are_even() {
        assert_eq!(shard_len_for(42_000, 1200), SHARD_LEN, "an inter frame: 512-byte shards");
        let idr = shard_len_for(200_000, 1200);
        assert_eq!(idr, 786);
        assert_eq!(ShardLayout { stream_len: 200_000, shard_len: idr }.blocks(), 1);
        assert_eq!(shard_len_for(500_000, 1200), 1200, "as long as a datagram holds, then more blocks");
        assert_eq!(shard_len_for(42_000, 301), 300, "a small datagram: shorter shards, even");
        assert_eq!(shard_len_for(10, 1_000_000), SHARD_LEN);
    }

    /// Feeds the stream in 1400-byte "packets", leaving out those `lost` picks.
    fn receive(bytes: &[u8], lost: impl Fn(usize) -> bool) -> Recovery {
        let mut r = Recovery::new();
        for (n, packet) in bytes.chunks(1400).enumerate() {
            if !lost(n) {
                r.on_chunk((n * 1400) as u64, packet).unwrap();
            }
        }
        r
    }

    #[test]
    fn lost_packets_are_rebuilt_from_parity_alone() {
        let (frame, bytes) = stream_bytes(40_000, 1);
        let parity = protect(3, &bytes, SHARD_LEN, |k| parity_for(0.3, k));
        assert_eq!(parity.len(), (bytes.len().div_ceil(SHARD_LEN) as f64 * 0.3).ceil() as usize);
        // Three packets lost, one of them the header's.
        let mut r = receive(&bytes, |n| [0, 9, 28].contains(&n));
        assert!(r.try_recover().is_none(), "no parity yet");
        for p in parity {
            r.on_parity(p).unwrap();
        }
        let (rebuilt, shards) = r.try_recover().unwrap().unwrap();
        assert_eq!(rebuilt, frame);
        assert!((8..=12).contains(&shards), "a lost packet spoils 3 or 4 shards: {shards}");
    }

    #[test]
    fn too_little_parity_waits_for_the_stream() {
        let (frame, bytes) = stream_bytes(20_000, 2);
        let parity = protect(0, &bytes, SHARD_LEN, |_| 4);
        // Two lost packets spoil 6 or more shards; 4 parity shards cannot repair them.
        let mut r = receive(&bytes, |n| n == 2 || n == 7);
        for p in parity {
            r.on_parity(p).unwrap();
        }
        assert!(r.try_recover().is_none());
        // The retransmissions arrive: whole again, nothing to rebuild.
        for n in [2usize, 7] {
            r.on_chunk((n * 1400) as u64, &bytes[n * 1400..(n + 1) * 1400]).unwrap();
        }
        assert!(r.try_recover().is_none());
        assert_eq!(r.finish().unwrap(), frame);
        let mut whole = receive(&bytes, |_| false);
        assert!(whole.try_recover().is_none(), "without parity the layout is unknown");
        whole.on_chunk(0, &bytes[..10]).unwrap();
        assert_eq!(whole.finish().unwrap(), frame, "a repeated chunk changes nothing");
    }

    #[test]
    fn a_large_frame_is_protected_block_by_block() {
        let (frame, bytes) = stream_bytes(300_000, 3);
        let layout = ShardLayout { stream_len: bytes.len(), shard_len: SHARD_LEN };
        assert_eq!(layout.blocks(), 3);
        let parity = protect(9, &bytes, SHARD_LEN, |k| parity_for(0.2, k));
        let mut r = receive(&bytes, |n| n % 25 == 3);
        for p in parity {
            assert!(usize::from(p.data_shards) <= MAX_DATA_SHARDS);
            let decoded = Parity::decode(&p.encode()).unwrap();
            assert_eq!(decoded, p);
            r.on_parity(decoded).unwrap();
        }
        assert_eq!(r.try_recover().unwrap().unwrap().0, frame);
    }

    #[test]
    fn a_gap_at_the_end_is_an_error_not_a_frame() {
        let (_, bytes) = stream_bytes(5_000, 4);
        let r = receive(&bytes, |n| n == 1);
        assert_eq!(r.finish().unwrap_err(), RecoveryError::Gap { missing: 1400..2800 });
        let mut r = Recovery::new();
        assert!(matches!(r.on_chunk(MAX_STREAM_LEN as u64, b"x"), Err(RecoveryError::TooLong { .. })));
        assert!(matches!(r.on_chunk(u64::MAX, b"x"), Err(RecoveryError::TooLong { .. })));
        // A stream that does not start with a frame header fails at once, not at its end.
        let mut junk = Recovery::new();
        assert!(matches!(junk.on_chunk(0, b"KUMO junk, not a header"), Err(RecoveryError::Frame(_))));
        // A header's length holds the stream to it, in whichever order the chunks come.
        let mut r = Recovery::new();
        r.on_chunk(bytes.len() as u64 - 10, &bytes[bytes.len() - 10..]).unwrap();
        r.on_chunk(0, &bytes[..100]).unwrap();
        assert!(r.on_chunk(bytes.len() as u64, b"one more").is_err());
    }

    #[test]
    fn parity_that_disagrees_is_refused() {
        let (_, bytes) = stream_bytes(5_000, 5);
        let parity = protect(1, &bytes, SHARD_LEN, |_| 4);
        let mut r = receive(&bytes, |n| n == 1);
        r.on_parity(parity[0].clone()).unwrap();
        let other = protect(1, &bytes[..4000], SHARD_LEN, |_| 4);
        assert!(r.on_parity(other[0].clone()).is_err(), "another length");
        assert_eq!(r.parity_held(), 1);
        // A stream longer than its parity says.
        assert!(r.on_chunk(bytes.len() as u64, b"more").is_err());
        let mut short = receive(&bytes, |_| false);
        assert!(short.on_parity(other[0].clone()).is_err(), "parity shorter than the data");
    }

    #[test]
    fn parity_datagrams_are_checked() {
        let (_, bytes) = stream_bytes(5_000, 6);
        let good = protect(1, &bytes, SHARD_LEN, |_| 4)[1].clone();
        let mut wire = good.encode();
        assert_eq!(wire.len(), PARITY_HEADER_LEN + SHARD_LEN);
        assert_eq!(Parity::decode(&wire).unwrap(), good);
        wire.pop();
        assert!(Parity::decode(&wire).is_err(), "short shard");
        let mut bad = good.clone();
        bad.index = 4;
        assert!(Parity::decode(&bad.encode()).is_err(), "index past the count");
        let mut bad = good.clone();
        bad.data_shards += 1;
        assert!(Parity::decode(&bad.encode()).is_err(), "counts that disagree with the length");
        let mut bad = good.clone();
        bad.block = 1;
        assert!(Parity::decode(&bad.encode()).is_err(), "a block past the stream");
        assert!(Parity::decode(b"KP").is_err());
        assert!(Parity::decode(&[0u8; 40]).is_err());
    }

    #[test]
    fn protection_follows_random_loss_but_not_a_full_queue() {
        let ms = Duration::from_millis;
        let mut p = Protection::new(FecMode::Auto);
        assert_eq!(p.share(), BASE_SHARE);
        assert_eq!(p.changed(), Some(BASE_SHARE), "reported the first time");
        assert_eq!(p.changed(), None);
        for t in 0..30u64 {
            p.on_path(ms(t * 100), t * 1000, t * 100, ms(20), ms(20));
        }
        assert!((p.loss() - 0.1).abs() < 1e-9, "{}", p.loss());
        assert!((p.share() - (BASE_SHARE + 0.25)).abs() < 1e-9);
        assert!(p.changed().is_some_and(|s| (s - 0.29).abs() < 1e-9), "a move of 25 points is reported");
        assert_eq!(p.parity_for(80), 24);
        assert_eq!(p.parity_for(3), 3, "no more than the data, under the minimum");
        p.on_path(ms(3000), 30_000, 3000, ms(80), ms(20));
        assert_eq!(p.share(), BASE_SHARE, "loss with a queue is the bottleneck's");
        // Clean again: after the window the share falls back.
        for t in 31..60u64 {
            p.on_path(ms(t * 100), t * 1000, 3000, ms(20), ms(20));
        }
        assert_eq!(p.share(), BASE_SHARE);
        assert_eq!(p.share_for(FrameKind::Idr, 20_000), KEY_SHARE, "key frames get more");
        assert_eq!(p.share_for(FrameKind::Recovery, 20_000), KEY_SHARE);
        assert_eq!(p.share_for(FrameKind::Inter, 20_000), BASE_SHARE);
        assert_eq!(
            Protection::new(FecMode::Fixed(0.1)).share_for(FrameKind::Idr, 20_000),
            0.1,
            "a fixed share is fixed"
        );
        assert_eq!(Protection::new(FecMode::Off).share_for(FrameKind::Idr, 20_000), 0.0);
        assert_eq!(Protection::new(FecMode::Off).parity_for(80), 0);
        assert_eq!("20%".parse::<FecMode>().unwrap(), FecMode::Fixed(0.2));
        assert_eq!("off".parse::<FecMode>().unwrap(), FecMode::Off);
        assert!("lots".parse::<FecMode>().is_err());
    }

    #[test]
    fn small_inter_frames_on_a_clean_path_go_without_parity_until_the_path_loses() {
        let ms = Duration::from_millis;
        let mut p = Protection::new(FecMode::Auto);
        // 4 shards of 512 bytes: 15 % of 13 653 bytes.
        assert!((stray_cost(13_654) - 0.15).abs() < 1e-3, "{}", stray_cost(13_654));
        assert!(stray_cost(13_600) > STRAY_SHARE_CAP && stray_cost(13_700) <= STRAY_SHARE_CAP);
        assert!(stray_cost(1000) > 1.0, "a two-shard frame would need both again");
        // A 720p60 frame at 2 Mbit/s, and one at 10 Mbit/s.
        assert_eq!(p.share_for(FrameKind::Inter, 4_400), 0.0);
        assert_eq!(p.share_for(FrameKind::Inter, 21_000), BASE_SHARE);
        assert_eq!(p.share_for(FrameKind::Idr, 4_400), KEY_SHARE, "a key frame is always protected");
        assert_eq!(p.share_for(FrameKind::Recovery, 4_400), KEY_SHARE);
        // A stray loss (0.4 %) leaves it so; 1 % loss protects every frame.
        p.on_path(ms(0), 0, 0, ms(20), ms(20));
        p.on_path(ms(1000), 1000, 4, ms(20), ms(20));
        assert_eq!(p.share_for(FrameKind::Inter, 4_400), 0.0);
        p.on_path(ms(1100), 1000, 10, ms(20), ms(20));
        assert!(p.share_for(FrameKind::Inter, 4_400) > BASE_SHARE);
        // Loss from a queue that overflows is the bottleneck's, not random: no parity again.
        p.on_path(ms(1200), 1000, 10, ms(60), ms(20));
        assert_eq!(p.share_for(FrameKind::Inter, 4_400), 0.0);
        let fixed = Protection::new(FecMode::Fixed(0.2));
        assert_eq!(fixed.share_for(FrameKind::Inter, 4_400), 0.2, "a share the user set is kept");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any spoiled shards, up to the parity held for their block, are rebuilt.
        #[test]
        fn any_missing_shards_up_to_the_parity_are_rebuilt(
            payload_len in 1usize..70_000,
            // Even lengths: the code works on pairs of bytes (the wire refuses odd ones).
            shard_len in (MIN_SHARD_LEN / 2..=MAX_SHARD_LEN / 2).prop_map(|half| half * 2),
            share in 0.05f64..1.0,
            seed in any::<u64>(),
        ) {
            let (frame, bytes) = stream_bytes(payload_len, seed as u8);
            let layout = ShardLayout { stream_len: bytes.len(), shard_len };
            let parity = protect(0, &bytes, shard_len, |k| parity_for(share, k));
            let mut rng = crate::sim::rng::XorShift::seeded(seed);
            let mut below = |n: usize| (rng.next_u64() % n as u64) as usize;
            let mut r = Recovery::new();
            let mut spoiled = 0;
            for block in 0..layout.blocks() {
                let k = layout.block_shards(block);
                let m = parity_for(share, k);
                // Lose `lose` of the block's k + m shards, whatever mix of data and parity.
                let lose = below(m + 1);
                let mut gone: Vec<usize> = Vec::new();
                while gone.len() < lose {
                    let s = below(k + m);
                    if !gone.contains(&s) { gone.push(s); }
                }
                for j in 0..k {
                    let range = layout.shard(block * MAX_DATA_SHARDS + j);
                    if gone.contains(&j) {
                        spoiled += 1;
                        // A spoiled shard may still have arrived in part.
                        let part = range.start..range.start + range.len() / 2;
                        r.on_chunk(part.start as u64, &bytes[part]).unwrap();
                    } else {
                        r.on_chunk(range.start as u64, &bytes[range]).unwrap();
                    }
                }
                for p in parity.iter().filter(|p| usize::from(p.block) == block) {
                    if !gone.contains(&(k + usize::from(p.index))) { r.on_parity(p.clone()).unwrap(); }
                }
            }
            if spoiled == 0 {
                // Only parity was lost: nothing to rebuild, the stream alone is whole.
                prop_assert!(r.try_recover().is_none());
                prop_assert_eq!(r.finish().unwrap(), frame);
            } else {
                prop_assert_eq!(r.try_recover().unwrap().unwrap(), (frame, spoiled));
            }
        }
    }
}

//! Recording what arrives, as it arrives: the H.264 the decoder took and the Opus the player
//! played, put in a Matroska file without re-encoding (`--record FILE`), and each frame's
//! times for testers (`FILE.frames.csv`, [`frames`]).
//!
//! Pure: [`Muxer`] turns frames and packets into the bytes to write; the recording thread
//! (`client::record`) writes them. The file's shape keeps it readable however the process
//! ends:
//! - the Segment has the "unknown" size, so a file cut off after any cluster is whole;
//! - a cluster (about a second) is built in memory and handed over whole, for one write;
//! - the Info keeps 11 bytes of room (a Void) where a session that ends normally writes the
//!   duration; a killed process leaves the Void, and players count the blocks instead.
//!
//! The file starts at the first IDR (its SPS and PPS become the track's `avcC`); sound from
//! before it is left out. Times are the host's capture stamps less the first IDR's, so the
//! picture and the sound keep the sync they had on the host. A frame the decoder could not
//! decode never reaches the muxer (the client feeds it decoded frames only), so the file
//! decodes as the stream did: a recovery frame refers to a long-term reference that is in
//! the file. Blocks wait [`MARGIN_MS`] for the other track's before their cluster is cut (the
//! sound arrives a few tens of milliseconds after the picture it goes with); a block later
//! than that is dropped and counted, never written out of order.

mod ebml;
pub mod frames;
mod multistream;
pub mod replay;

use crate::audio::SpeakerLayout;
use crate::video::annexb;
use ebml::id;

/// A cluster's span, ms.
pub const CLUSTER_MS: i64 = 1000;
/// How long a block waits for the other track's before its cluster is written, ms.
pub const MARGIN_MS: i64 = 500;
/// Bytes waiting for their cluster beyond which it is cut at once: a bound on memory (about
/// 1.5 s of a 100 Mbit/s stream) whatever the stamps say.
pub const MAX_PENDING_BYTES: usize = 24 << 20;
/// Kept for the duration in the Info: a Duration element is an ID of two bytes, a size of one
/// and an 8-byte float.
const DURATION_ROOM: usize = 11;
const VIDEO_TRACK: u8 = 1;
const AUDIO_TRACK: u8 = 2;
/// Matroska's Opus tracks ask players to decode 80 ms before a seek target (RFC 9559).
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;
/// The longest recording (a stamp further from the first IDR is refused): a week.
const MAX_SPAN_MICROS: u64 = 7 * 86_400 * 1_000_000;

/// One decoded picture's access unit, as the host sent it.
#[derive(Debug, Clone, Copy)]
pub struct VideoFrame<'a> {
    /// On the host's clock, µs.
    pub capture_micros: u64,
    /// An IDR: decodable alone (where the file can start).
    pub key: bool,
    pub width: u16,
    pub height: u16,
    /// The access unit in Annex B (start codes).
    pub annexb: &'a [u8],
}

/// What became of a frame or a packet given to the muxer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// It will be in the file.
    Kept,
    /// The file has not started yet (no IDR with its parameter sets so far).
    BeforeStart,
    /// It came after its cluster was written (more than [`MARGIN_MS`] late).
    Late,
    /// Nothing in it could be written (an access unit with no NAL unit, an Opus packet that
    /// is not well formed).
    Malformed,
}

/// What a recording holds, for the summary and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub video_frames: u64,
    pub audio_packets: u64,
    pub before_start: u64,
    pub late: u64,
    pub malformed: u64,
    pub clusters: u64,
}

#[derive(Debug)]
struct Block {
    track: u8,
    ms: i64,
    key: bool,
    data: Vec<u8>,
}

/// The muxer: frames and packets in, the file's bytes out ([`Muxer::take_output`]).
#[derive(Debug)]
pub struct Muxer {
    audio: Option<(SpeakerLayout, u16)>,
    fps: u16,
    /// The first IDR's capture stamp, µs: the file's zero.
    origin: Option<u64>,
    pending: Vec<Block>,
    pending_bytes: usize,
    /// Every block before this (ms) is in a written cluster.
    written_until: i64,
    newest: i64,
    /// Each track's newest slot (video: frames at the stream's rate; sound: ms).
    last_slot: [i64; 2],
    /// Where the last block ends, ms (the file's duration).
    end_ms: i64,
    out: Vec<u8>,
    /// The file offset of the room kept for the duration.
    duration_at: Option<u64>,
    counts: Counts,
}

impl Muxer {
    /// A muxer for a video stream at `fps` and, when the stream has sound, its layout and
    /// frames per packet.
    pub fn new(fps: u16, audio: Option<(SpeakerLayout, u16)>) -> Self {
        Self {
            audio,
            fps: fps.max(1),
            origin: None,
            pending: Vec::new(),
            pending_bytes: 0,
            written_until: i64::MIN,
            newest: i64::MIN,
            last_slot: [i64::MIN / 2; 2],
            end_ms: 0,
            out: Vec::new(),
            duration_at: None,
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether the file has started (an IDR came).
    pub fn started(&self) -> bool {
        self.origin.is_some()
    }

    /// A decoded picture's access unit.
    pub fn video(&mut self, frame: VideoFrame<'_>) -> Taken {
        if self.origin.is_none() && (!frame.key || !self.start(frame)) {
            self.counts.before_start += 1;
            return Taken::BeforeStart;
        }
        let mut data = Vec::with_capacity(frame.annexb.len() + 16);
        for nal in annexb::nal_units(frame.annexb).filter(|n| !n.body.is_empty()) {
            data.extend_from_slice(&(nal.body.len() as u32).to_be_bytes());
            data.extend_from_slice(nal.body);
        }
        if data.is_empty() {
            self.counts.malformed += 1;
            return Taken::Malformed;
        }
        let frame_ms = 1000 / i64::from(self.fps);
        let taken = self.push(VIDEO_TRACK, frame.capture_micros, frame.key, data, frame_ms);
        if taken == Taken::Kept {
            self.counts.video_frames += 1;
        }
        taken
    }

    /// One audio packet: its capture stamp (host clock, µs) and its Opus packets, one per
    /// stream. Ignored when the recording has no sound track.
    pub fn audio(&mut self, capture_micros: u64, coded: &[Vec<u8>]) -> Taken {
        let Some((_, frames)) = self.audio else { return Taken::Malformed };
        if self.origin.is_none() {
            self.counts.before_start += 1;
            return Taken::BeforeStart;
        }
        let Some(data) = multistream::packet(coded) else {
            self.counts.malformed += 1;
            return Taken::Malformed;
        };
        let rate = crate::audio::RATE;
        let packet_ms = i64::from(frames) * 1000 / i64::from(rate);
        // The host's stamp is its first sample's as heard (the encoder's look-ahead taken off);
        // a Matroska reader takes the track's CodecDelay off each block's time, so the block
        // carries it.
        let delay_micros = u64::from(multistream::PRE_SKIP) * 1_000_000 / u64::from(rate);
        let taken = self.push(AUDIO_TRACK, capture_micros.saturating_add(delay_micros), true, data, packet_ms);
        if taken == Taken::Kept {
            self.counts.audio_packets += 1;
        }
        taken
    }

    /// The bytes to append to the file now (whole clusters, and the header first); empty when
    /// nothing is ready.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Ends the recording: every waiting block goes out, and the duration is known. Returns
    /// the last bytes to append, and the bytes to write over the room kept for the duration
    /// with their file offset (`None` when the file never started).
    pub fn finish(&mut self) -> (Vec<u8>, Option<(u64, Vec<u8>)>) {
        while !self.pending.is_empty() {
            self.cut_cluster();
        }
        let patch = self.duration_at.map(|at| {
            let mut d = Vec::with_capacity(DURATION_ROOM);
            ebml::put_float(&mut d, id::DURATION, self.end_ms.max(0) as f64);
            (at, d)
        });
        (self.take_output(), patch)
    }

    /// Writes the header for a stream starting at `idr`; false when it lacks an SPS or PPS.
    fn start(&mut self, idr: VideoFrame<'_>) -> bool {
        let Some(avcc) = avc_config(idr.annexb) else { return false };
        self.origin = Some(idr.capture_micros);
        let out = &mut self.out;
        ebml::put_master(out, id::EBML, |h| {
            ebml::put_uint(h, id::EBML_VERSION, 1);
            ebml::put_uint(h, id::EBML_READ_VERSION, 1);
            ebml::put_uint(h, id::EBML_MAX_ID_LENGTH, 4);
            ebml::put_uint(h, id::EBML_MAX_SIZE_LENGTH, 8);
            ebml::put_str(h, id::DOC_TYPE, "matroska");
            ebml::put_uint(h, id::DOC_TYPE_VERSION, 4);
            ebml::put_uint(h, id::DOC_TYPE_READ_VERSION, 2);
        });
        out.extend_from_slice(&id::SEGMENT.to_be_bytes());
        out.extend_from_slice(&ebml::UNKNOWN_SIZE);
        // The Info by hand, to know where its room for the duration lies.
        let mut info = Vec::new();
        ebml::put_uint(&mut info, id::TIMESTAMP_SCALE, 1_000_000);
        ebml::put_str(&mut info, id::MUXING_APP, "kumo");
        ebml::put_str(&mut info, id::WRITING_APP, concat!("kumo ", env!("CARGO_PKG_VERSION")));
        let room = info.len();
        ebml::put_void(&mut info, DURATION_ROOM);
        let before = out.len();
        ebml::put_bytes(out, id::INFO, &info);
        let info_header = out.len() - before - info.len();
        self.duration_at = Some((before + info_header + room) as u64);
        let fps = self.fps;
        let audio = self.audio;
        ebml::put_master(out, id::TRACKS, |t| {
            ebml::put_master(t, id::TRACK_ENTRY, |e| {
                ebml::put_uint(e, id::TRACK_NUMBER, u64::from(VIDEO_TRACK));
                ebml::put_uint(e, id::TRACK_UID, u64::from(VIDEO_TRACK));
                ebml::put_uint(e, id::TRACK_TYPE, 1);
                ebml::put_uint(e, id::FLAG_LACING, 0);
                ebml::put_str(e, id::CODEC_ID, "V_MPEG4/ISO/AVC");
                ebml::put_bytes(e, id::CODEC_PRIVATE, &avcc);
                ebml::put_uint(e, id::DEFAULT_DURATION, 1_000_000_000 / u64::from(fps));
                ebml::put_master(e, id::VIDEO, |v| {
                    ebml::put_uint(v, id::PIXEL_WIDTH, u64::from(idr.width));
                    ebml::put_uint(v, id::PIXEL_HEIGHT, u64::from(idr.height));
                });
            });
            if let Some((layout, frames)) = audio {
                ebml::put_master(t, id::TRACK_ENTRY, |e| {
                    ebml::put_uint(e, id::TRACK_NUMBER, u64::from(AUDIO_TRACK));
                    ebml::put_uint(e, id::TRACK_UID, u64::from(AUDIO_TRACK));
                    ebml::put_uint(e, id::TRACK_TYPE, 2);
                    ebml::put_uint(e, id::FLAG_LACING, 0);
                    ebml::put_str(e, id::CODEC_ID, "A_OPUS");
                    ebml::put_bytes(e, id::CODEC_PRIVATE, &multistream::head(layout));
                    let rate = u64::from(crate::audio::RATE);
                    ebml::put_uint(e, id::CODEC_DELAY, u64::from(multistream::PRE_SKIP) * 1_000_000_000 / rate);
                    ebml::put_uint(e, id::SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
                    ebml::put_uint(e, id::DEFAULT_DURATION, u64::from(frames) * 1_000_000_000 / rate);
                    ebml::put_master(e, id::AUDIO, |a| {
                        ebml::put_float(a, id::SAMPLING_FREQUENCY, f64::from(crate::audio::RATE));
                        ebml::put_uint(a, id::CHANNELS, u64::from(layout.channels()));
                    });
                });
            }
        });
        true
    }

    fn push(&mut self, track: u8, capture_micros: u64, key: bool, data: Vec<u8>, length_ms: i64) -> Taken {
        let origin = self.origin.unwrap_or(capture_micros);
        let Some(since) = capture_micros.checked_sub(origin) else {
            self.counts.before_start += 1;
            return Taken::BeforeStart;
        };
        // Pictures on the stream's frame grid (the host's capture slots: a capture taken late
        // by a busy host, up to three quarters of an interval, goes back to its slot), the
        // sound on the millisecond's (rounded). Each track's slots strictly increase (players
        // and muxers require it): two pictures in one slot (a host catching up) take
        // consecutive ones.
        let (per_second, early) = if track == VIDEO_TRACK { (u64::from(self.fps), 250_000) } else { (1000, 500_000) };
        // Stamps come from the network: one past a week from the file's start is the host's
        // clock jumping, refused rather than overflowing the arithmetic below.
        if since > MAX_SPAN_MICROS {
            self.counts.malformed += 1;
            return Taken::Malformed;
        }
        let slot = ((u128::from(since) * u128::from(per_second) + early) / 1_000_000) as i64;
        let last = &mut self.last_slot[usize::from(track == AUDIO_TRACK)];
        let slot = slot.max(last.saturating_add(1));
        let per_second = per_second as i64;
        let ms = (slot * 1000 + per_second / 2) / per_second;
        if ms < self.written_until {
            self.counts.late += 1;
            return Taken::Late;
        }
        *last = slot;
        self.end_ms = self.end_ms.max(ms + length_ms);
        self.newest = self.newest.max(ms);
        self.pending_bytes += data.len();
        self.pending.push(Block { track, ms, key, data });
        while let Some(earliest) = self.pending.iter().map(|b| b.ms).min()
            && (self.newest - earliest >= CLUSTER_MS + MARGIN_MS || self.pending_bytes > MAX_PENDING_BYTES)
        {
            self.cut_cluster();
        }
        Taken::Kept
    }

    /// Writes the blocks of the second that starts at the earliest waiting one, in time order
    /// (each track's own order kept where stamps are equal).
    fn cut_cluster(&mut self) {
        let Some(start) = self.pending.iter().map(|b| b.ms).min() else { return };
        let end = start + CLUSTER_MS;
        let (mut now, later): (Vec<Block>, Vec<Block>) =
            std::mem::take(&mut self.pending).into_iter().partition(|b| b.ms < end);
        self.pending = later;
        now.sort_by_key(|b| b.ms);
        self.pending_bytes = self.pending.iter().map(|b| b.data.len()).sum();
        self.written_until = end;
        let mut body = Vec::with_capacity(now.iter().map(|b| b.data.len() + 12).sum::<usize>() + 8);
        ebml::put_uint(&mut body, id::TIMESTAMP, start.max(0) as u64);
        for b in &now {
            let relative = (b.ms - start.max(0)) as i16;
            let mut block = Vec::with_capacity(b.data.len() + 4);
            block.push(0x80 | b.track);
            block.extend_from_slice(&relative.to_be_bytes());
            block.push(if b.key { 0x80 } else { 0 });
            block.extend_from_slice(&b.data);
            ebml::put_bytes(&mut body, id::SIMPLE_BLOCK, &block);
        }
        ebml::put_bytes(&mut self.out, id::CLUSTER, &body);
        self.counts.clusters += 1;
    }
}

/// The `avcC` record (ISO/IEC 14496-15, 5.3.3.1) from an IDR access unit's first SPS and PPS.
fn avc_config(annexb: &[u8]) -> Option<Vec<u8>> {
    let nal = |kind: u8| annexb::nal_units(annexb).find(|n| n.nal_type() == kind).map(|n| n.body);
    let (sps, pps) = (nal(7)?, nal(8)?);
    if sps.len() < 4 || sps.len() > usize::from(u16::MAX) || pps.len() > usize::from(u16::MAX) {
        return None;
    }
    let mut c = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    c.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    c.extend_from_slice(sps);
    c.push(1);
    c.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    c.extend_from_slice(pps);
    Some(c)
}

#[cfg(test)]
mod tests;

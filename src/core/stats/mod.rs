//! Session statistics in the spirit of Moonlight's performance overlay.
//!
//! Owns every counter and latency distribution of one client session. The network shell and
//! the decode thread report [`Event`]s; whoever shows the figures (the headless runner now,
//! the window's overlay later) owns one [`Stats`] and applies them. Pure: times arrive in the
//! events, and the host↔client clock offset is an explicit parameter so clock sync can plug
//! in later without touching this module.

pub mod growth;
pub mod histogram;

use crate::stats::histogram::Histogram;
use crate::video::sequence::DropReason;
use serde::Serialize;
use std::time::Duration;

/// What the client learned about one decoded picture's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarkerCheck {
    /// The marker read back equals the header's frame number.
    #[default]
    Match,
    /// The marker was read but names another frame.
    Mismatch,
    /// No valid marker was found in the picture.
    Unreadable,
    /// Not looked for: the pictures are a real program's, which carry no markers.
    Unchecked,
}

/// One decoded picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    pub frame_number: u64,
    /// How long the host's encoder took for this picture, µs.
    pub encode_micros: u32,
    /// The host's running count of capture slots it skipped for falling behind its own
    /// schedule, as of this picture (`FrameHeader::host_behind`).
    pub host_behind: u32,
    /// Host clock, µs: when the picture was captured.
    pub capture_micros: u64,
    /// Client clock, µs: when decoding finished.
    pub decoded_micros: u64,
    /// Time spent in the decode queue.
    pub queue_micros: u64,
    /// Time spent in the decoder.
    pub decode_micros: u64,
    pub marker: MarkerCheck,
    /// The input marker read from the picture's pixels (low 32 bits of an input sequence).
    pub pixel_input: Option<u32>,
    /// The capture time the host burnt into the picture, read from its pixels (ms, low 32
    /// bits of the host clock).
    pub pixel_time_ms: Option<u32>,
    /// The mean luma of the latency lab's watched region (`--watch`), × 256.
    pub region_luma: Option<u32>,
}

/// A whole frame off the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameReceived {
    pub frame_number: u64,
    pub bytes: u64,
    pub encode_micros: u32,
    /// Host clock, µs: captured.
    pub capture_micros: u64,
    /// The newest input the host had applied at capture.
    pub input_seq: u64,
    /// Capture slots the host skipped before this frame for want of room on the path.
    pub held_back: u32,
    /// Client clock, µs: the last byte arrived.
    pub received_micros: u64,
    /// The size it was encoded at (the picture ladder may lower it below the session's).
    pub width: u16,
    pub height: u16,
}

/// Sizes the time at each of which is kept: more than any ladder has rungs.
const MAX_SIZES: usize = 16;

/// How long the stream arrived at one encoded size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimeAtSize {
    pub width: u16,
    pub height: u16,
    pub secs: f64,
}

/// The audio thread's running counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioCounters {
    /// Audio datagrams that reached the jitter buffer.
    pub received: u64,
    /// Packets decoded and played.
    pub played: u64,
    /// Slots concealed with Opus loss concealment (lost or too late).
    pub concealed: u64,
    /// Lost packets repaired from the next datagram's redundant copy.
    pub recovered: u64,
    /// Times the device found nothing to play after playback had started.
    pub underruns: u64,
    /// Packets that arrived after their slot.
    pub late: u64,
    /// Slots of concealment inserted to deepen the jitter buffer after late packets.
    pub stretched: u64,
}

/// Something that happened in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The host agreed to stream this.
    Stream {
        width: u16,
        height: u16,
        fps: u16,
        bitrate_kbps: u32,
        host_name: String,
    },
    /// A whole frame came off the network.
    Received(FrameReceived),
    Dropped {
        reason: DropReason,
        count: u64,
    },
    Decoded(Decoded),
    /// The decoder rejected an access unit.
    DecodeError,
    IdrRequested,
    /// A sentence for the player, shown over the video for a few seconds (a replay saved, or
    /// why not); no figure counts it.
    Notice(String),
    /// A recovery frame (from a long-term reference) was asked for.
    LtrRequested,
    /// A loss was repaired: the decoder had a picture again, this long after the loss was
    /// detected.
    Repaired {
        how: crate::video::sequence::Repair,
        after_micros: u64,
    },
    /// A frame stream was rebuilt from parity datagrams (`core::video::fec`) before QUIC's
    /// retransmission arrived: `shards` data shards were missing.
    FecRepaired {
        shards: u32,
    },
    /// A message of a kind this build does not know (a newer peer's), skipped.
    Skipped(Skipped),
    /// A control-stream round trip.
    Rtt {
        rtt_micros: u64,
    },
    /// The presenter queued a picture to the display.
    Presented(Presented),
    /// The host said its picture was still current (nothing was drawn), and it is the
    /// picture the client has, at `at_micros` (client clock); `host_micros` is the host's
    /// time of saying so.
    Still {
        at_micros: u64,
        host_micros: u64,
    },
    /// Decoded pictures replaced in the latest-frame slot before the presenter showed them
    /// (display pacing, not the network).
    PacingDropped {
        count: u64,
    },
    /// An input datagram went out: its state was read at `read_micros` and sent at
    /// `sent_micros` (client clock); re-sends repeat the same sequence. `held`: keys and
    /// buttons held in that state (a press makes it grow; the latency lab's `--watch` times
    /// presses).
    InputSent {
        seq: u64,
        read_micros: u64,
        sent_micros: u64,
        held: u32,
    },
    /// The host acknowledged a newer input `seq`: how many it has accepted in all, when it
    /// received it (host clock), and that minus the client's read stamp (µs, host clock minus
    /// client clock, so it may be negative before the offset is applied; `None` for a bare
    /// ack).
    InputAcked {
        accepted: u64,
        seq: u64,
        host_micros: u64,
        to_host_micros: Option<i64>,
    },
    /// The clock-sync estimate: host clock minus client clock, and its error bound.
    ClockSync {
        offset_micros: i64,
        error_micros: u64,
    },
    /// The host asked for a rumble.
    Rumble,
    /// The audio output in use, or why there is none.
    AudioDevice {
        description: String,
    },
    /// The audio thread's counts so far (replaces the previous report).
    Audio(AudioCounters),
    /// A packet went to the device: audio buffered (jitter buffer and device ring) at that
    /// moment, the packet's capture→heard latency (client clock minus host clock, µs), and
    /// its A/V offset: audio latency minus the newest picture's (positive: audio late).
    AudioPlayed {
        buffer_micros: u64,
        latency_micros: i64,
        av_offset_micros: Option<i64>,
    },
    /// The connection was lost (or the host went silent) and the client is reconnecting:
    /// attempt 0 when the fault is noticed, then one per new connection tried; `reason` says
    /// what went wrong last.
    Reconnecting {
        attempt: u32,
        reason: String,
    },
    /// A new connection resumed the session, `outage_micros` after the fault was noticed.
    Reconnected {
        outage_micros: u64,
    },
    /// Adaptive bitrate asked the host for a new target: lower because the path was
    /// `congested`, or higher because it stayed clear.
    BitrateChanged {
        kbps: u32,
        congested: bool,
    },
    /// The session's first target: where adaptive bitrate starts its climb (neither an
    /// increase nor a decrease).
    BitrateStarted {
        kbps: u32,
    },
}

/// What kind of unknown message was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    Datagram,
    ControlMessage,
}

/// `to - from` in microseconds, signed (two clocks may differ either way), saturated: either
/// stamp may come from the network with any value.
pub fn micros_between(from: u64, to: u64) -> i64 {
    (i128::from(to) - i128::from(from)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Signed samples (A/V offsets, µs) in constant memory: two log-bucket histograms, one for
/// the negative values' magnitudes and one for the rest, so a percentile is within 1 % of the
/// exact value however long the session. (A list of the newest 65 536 samples grew the
/// client's resident memory by 256 KB over its first minutes, a page at a time.)
#[derive(Debug, Clone, Default)]
struct Signed {
    negative: Histogram,
    positive: Histogram,
}

impl Signed {
    fn record(&mut self, v: i64) {
        if v < 0 {
            self.negative.record(v.unsigned_abs());
        } else {
            self.positive.record(v.unsigned_abs());
        }
    }

    /// The nearest-rank `q` quantile, µs.
    fn quantile(&self, q: f64) -> Option<f64> {
        let (neg, pos) = (self.negative.count(), self.positive.count());
        let n = neg + pos;
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        if rank <= neg {
            // The rank-th smallest value has the (neg - rank + 1)-th smallest magnitude.
            let by_magnitude = neg - rank + 1;
            self.negative.quantile_micros(by_magnitude as f64 / neg as f64).map(|m| -m)
        } else {
            self.positive.quantile_micros((rank - neg) as f64 / pos as f64)
        }
    }

    fn percentiles(&self) -> SignedPercentiles {
        let ms = |v: Option<f64>| round3(v.unwrap_or(0.0) / 1000.0);
        let min = self.negative.max_micros().map(|m| -(m as f64)).or(self.positive.min_micros().map(|m| m as f64));
        let max = self.positive.max_micros().map(|m| m as f64).or(self.negative.min_micros().map(|m| -(m as f64)));
        SignedPercentiles { p50: ms(self.quantile(0.5)), p99: ms(self.quantile(0.99)), min: ms(min), max: ms(max) }
    }
}

/// Percentiles of a signed distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SignedPercentiles {
    pub p50: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

/// One picture handed to the display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    pub frame_number: u64,
    /// Host clock, µs: when the picture was captured.
    pub capture_micros: u64,
    /// Client clock, µs: when decoding finished.
    pub decoded_micros: u64,
    /// Client clock, µs: when the presenter queued it to the surface.
    pub presented_micros: u64,
    /// Upload, draw (video and overlay) and submit, µs.
    pub render_micros: u64,
}

/// Accumulated statistics of one session.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Host clock minus client clock, µs (0 when both share a clock, as on loopback).
    offset_micros: i64,
    width: u16,
    height: u16,
    fps: u16,
    bitrate_kbps_requested: u32,
    host_name: String,
    frames_received: u64,
    bytes_received: u64,
    frames_decoded: u64,
    dropped_network: u64,
    held_back: u64,
    dropped_undecodable: u64,
    dropped_queue: u64,
    frames_late: u64,
    decode_errors: u64,
    marker_mismatches: u64,
    marker_unreadable: u64,
    idr_requests: u64,
    ltr_requests: u64,
    /// Repairs by `Repair` (LTR, IDR).
    repaired: [u64; 2],
    fec_frames: u64,
    fec_shards: u64,
    /// Unknown datagrams and control messages skipped.
    skipped: [u64; 2],
    repair: Histogram,
    reconnects: u64,
    longest_outage_micros: u64,
    bitrate_target_kbps: Option<u32>,
    bitrate_lowest_kbps: Option<u32>,
    bitrate_decreases: u64,
    bitrate_increases: u64,
    /// The encoded size of the last frame, times it changed, and the time at each size (µs,
    /// arrival to arrival; at most `MAX_SIZES` sizes, later ones not counted).
    encoded_size: Option<(u16, u16)>,
    last_arrival: u64,
    size_changes: u32,
    at_size: Vec<(u16, u16, u64)>,
    /// Decoded pictures whose capture→decoded latency came out negative (clock trouble).
    clock_anomalies: u64,
    decode: Histogram,
    queue: Histogram,
    encode: Histogram,
    capture_to_decoded: Histogram,
    rtt: Histogram,
    /// Running sums for the RTT's standard deviation.
    rtt_sum: f64,
    rtt_sum_sq: f64,
    frames_presented: u64,
    dropped_pacing: u64,
    render: Histogram,
    capture_to_present: Histogram,
    decoded_to_present: Histogram,
    inputs_sent: u64,
    inputs_received_by_host: u64,
    /// The host's count in the current session (each session's host counts from 0): what
    /// earlier sessions counted is in `inputs_received_by_host` already.
    inputs_received_this_session: u64,
    input_to_host: Histogram,
    rumbles: u64,
    audio_device: String,
    audio: AudioCounters,
    audio_buffer: Histogram,
    audio_latency: Histogram,
    av_offset: Signed,
    /// The newest clock-sync estimate (offset, error), µs.
    clock: Option<(i64, u64)>,
    /// The last picture decoded and presented (client µs), and the longest gap between two
    /// of each: a freeze the player saw.
    last_decoded: Option<u64>,
    longest_decode_gap: u64,
    /// The last decoded picture's `host_behind` and encode time, and the longest gap between
    /// decoded pictures less the host's share of it.
    last_host: (u32, u32),
    longest_gap_excl_host: u64,
    last_presented: Option<u64>,
    longest_present_gap: u64,
    /// Still words received while current, and the newest one not yet followed by a decoded
    /// and by a presented picture.
    still_words: u64,
    still_for_decode: Option<StillWord>,
    still_for_present: Option<StillWord>,
}

/// A still word: the host's "nothing new since" for the picture on screen.
#[derive(Debug, Clone, Copy)]
struct StillWord {
    /// When it arrived, client µs.
    arrived_micros: u64,
    /// When the host said it, host µs.
    said_micros: u64,
}

/// The gap a player saw between a picture shown at `last` and the next at `now` (client µs),
/// captured at `captured` (host µs). After a still word the old picture was the host's until
/// the word, and the host then had nothing new until `captured`: that time is the program's
/// quiet, not a freeze.
fn still_gap(last: u64, now: u64, captured: u64, still: Option<StillWord>) -> u64 {
    match still {
        Some(StillWord { arrived_micros, said_micros }) => {
            now.saturating_sub(arrived_micros.max(last)).saturating_sub(captured.saturating_sub(said_micros))
        }
        None => now.saturating_sub(last),
    }
}

/// Three percentiles of a distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    fn of(h: &Histogram) -> Self {
        let ms = |q| h.quantile_micros(q).map_or(0.0, |us| round3(us / 1000.0));
        Self { p50: ms(0.50), p95: ms(0.95), p99: ms(0.99) }
    }
}

/// Smallest, largest and mean of a distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MinMaxAvg {
    pub min: f64,
    pub max: f64,
    pub avg: f64,
}

impl MinMaxAvg {
    fn of(h: &Histogram) -> Self {
        let ms = |us: Option<f64>| us.map_or(0.0, |us| round3(us / 1000.0));
        Self {
            min: ms(h.min_micros().map(|v| v as f64)),
            max: ms(h.max_micros().map(|v| v as f64)),
            avg: ms(h.mean_micros()),
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// p50, p95 and p99 of `p` for the text summary.
fn percentiles_text(p: &Percentiles) -> String {
    format!("p50 {:7.2}  p95 {:7.2}  p99 {:7.2} ms", p.p50, p.p95, p.p99)
}

/// The end-of-session figures, also written as JSON by `--stats-json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub host: String,
    pub duration_secs: f64,
    pub width: u16,
    pub height: u16,
    pub fps: u16,
    pub frames_received: u64,
    pub frames_decoded: u64,
    /// Frames the host sent that were never decoded: network + undecodable + queue.
    pub frames_dropped: u64,
    pub frames_dropped_network: u64,
    pub frames_dropped_undecodable: u64,
    pub frames_dropped_queue: u64,
    pub frames_late: u64,
    pub decode_errors: u64,
    /// Decoded pictures whose marker did not prove they were the frame the header named
    /// (wrong number or unreadable).
    pub marker_mismatches: u64,
    pub marker_unreadable: u64,
    pub idr_requests: u64,
    /// Recovery frames asked for (losses answered from a long-term reference, not an IDR).
    pub ltr_requests: u64,
    /// Frames that never arrived (the network's losses; `frames_dropped_network`).
    pub frames_lost: u64,
    /// Capture slots the host skipped because the path had no room (its send window was
    /// full): the frame rate the path could not carry. Not losses: nothing needs repair.
    pub frames_held_back: u64,
    /// Times the host said its picture was still current (a real display where nothing was
    /// drawn: no frame sent, and the quiet not counted as a freeze).
    pub still_words: u64,
    /// The process's live heap (the `kumo` binary counts it), set by whoever ran the session.
    pub heap: Option<growth::HeapFigures>,
    /// Losses repaired by a recovery frame, and by an IDR.
    pub frames_repaired_ltr: u64,
    pub frames_repaired_idr: u64,
    /// Frames rebuilt from parity (forward error correction) before QUIC's retransmission
    /// of their lost packets arrived, and the data shards rebuilt in them: losses that never
    /// became a late frame.
    pub frames_repaired_fec: u64,
    pub fec_shards_rebuilt: u64,
    /// Datagrams and control messages of kinds this build does not know (a newer host's),
    /// skipped.
    pub unknown_datagrams: u64,
    pub unknown_control_messages: u64,
    /// A loss detected (declared lost, or the decoder failed) → the decoder has a picture
    /// again, and the longest such repair.
    pub repair_ms: Percentiles,
    pub longest_repair_ms: f64,
    pub clock_anomalies: u64,
    pub received_fps: f64,
    pub decoded_fps: f64,
    pub bitrate_kbps: f64,
    pub requested_bitrate_kbps: u32,
    pub decode_ms: Percentiles,
    pub queue_ms: Percentiles,
    pub host_encode_ms: Percentiles,
    pub capture_to_decoded_ms: Percentiles,
    pub rtt_ms: Percentiles,
    /// Standard deviation of the control-stream RTT.
    pub rtt_stddev_ms: f64,
    /// Host processing (encode) time per frame, as Moonlight shows it.
    pub host_processing_ms: MinMaxAvg,
    /// Pictures the window queued to the display (0 headless).
    pub frames_presented: u64,
    /// Decoded pictures a newer one replaced before the display took them.
    pub frames_dropped_pacing: u64,
    pub presented_fps: f64,
    /// Upload + draw + submit per presented picture.
    pub render_ms: Percentiles,
    /// Decoded → queued to the display (waiting for the display plus render).
    pub decoded_to_present_ms: Percentiles,
    pub capture_to_present_ms: Percentiles,
    /// Input datagrams sent (re-sends included).
    pub inputs_sent: u64,
    /// Input datagrams the host accepted (newer than what it had).
    pub inputs_received_by_host: u64,
    /// Reading an input on the client → its arrival at the host.
    pub input_to_host_ms: Percentiles,
    /// Rumble requests from the host.
    pub rumbles_received: u64,
    /// The audio output ("stereo on …"), or why the session is silent; empty without audio.
    pub audio_device: String,
    pub audio_packets_received: u64,
    pub audio_packets_played: u64,
    pub audio_packets_concealed: u64,
    pub audio_packets_recovered: u64,
    pub audio_packets_late: u64,
    pub audio_slots_stretched: u64,
    pub audio_underruns: u64,
    /// Audio buffered on the client (jitter buffer and device ring) as each packet played.
    pub audio_buffer_ms: Percentiles,
    /// Capture on the host → heard (as the device reports its own latency).
    pub audio_latency_ms: Percentiles,
    /// Audio latency minus video latency (capture→present, or capture→decoded headless):
    /// positive when sound comes after its picture.
    pub av_offset_ms: SignedPercentiles,
    /// Host clock minus client clock by clock sync (NTP-style probes), and the bound on its
    /// error (half the best round trip); 0 and 0 before the first probe.
    pub clock_offset_ms: f64,
    pub clock_offset_error_ms: f64,
    /// The longest time between two pictures shown (presented in a window, decoded
    /// headless) after the first: the worst freeze.
    pub longest_freeze_ms: f64,
    /// The longest gap between two decoded pictures less the host's own share of it (slots it
    /// skipped for falling behind its schedule, and a longer encode): the worst freeze the
    /// path and this client caused. On a host that keeps its schedule it equals the longest
    /// gap between decodes.
    pub longest_freeze_excl_host_ms: f64,
    /// Capture slots the host skipped for falling behind its own schedule (a slow encoder or
    /// a busy machine): freezes that are the host's, not the path's.
    pub host_behind_slots: u64,
    /// Times the connection was lost and a new one resumed the session, and the longest
    /// such outage (fault noticed → new handshake done).
    pub reconnects: u64,
    pub longest_outage_ms: f64,
    /// Adaptive bitrate: the target at the end and the lowest it went (the requested bitrate
    /// when it never changed), and how often it went down (congestion) and up (probing).
    pub bitrate_target_kbps: u32,
    pub bitrate_lowest_kbps: u32,
    pub bitrate_decreases: u64,
    pub bitrate_increases: u64,
    /// The picture ladder: times the encoded size changed (the host lowered or raised it to
    /// follow the path), and how long the stream arrived at each size, in order of first use.
    pub encode_size_changes: u32,
    pub time_at_size: Vec<TimeAtSize>,
    /// The size the newest frame was encoded at (0×0 before any frame).
    pub encoded_width: u16,
    pub encoded_height: u16,
}

impl Stats {
    /// `offset_micros`: host clock minus client clock.
    pub fn new(offset_micros: i64) -> Self {
        Self {
            offset_micros,
            width: 0,
            height: 0,
            fps: 0,
            bitrate_kbps_requested: 0,
            host_name: String::new(),
            frames_received: 0,
            bytes_received: 0,
            frames_decoded: 0,
            dropped_network: 0,
            held_back: 0,
            dropped_undecodable: 0,
            dropped_queue: 0,
            frames_late: 0,
            decode_errors: 0,
            marker_mismatches: 0,
            marker_unreadable: 0,
            idr_requests: 0,
            ltr_requests: 0,
            repaired: [0; 2],
            fec_frames: 0,
            skipped: [0; 2],
            fec_shards: 0,
            repair: Histogram::new(),
            reconnects: 0,
            longest_outage_micros: 0,
            bitrate_target_kbps: None,
            bitrate_lowest_kbps: None,
            bitrate_decreases: 0,
            bitrate_increases: 0,
            encoded_size: None,
            last_arrival: 0,
            size_changes: 0,
            at_size: Vec::new(),
            clock_anomalies: 0,
            decode: Histogram::new(),
            queue: Histogram::new(),
            encode: Histogram::new(),
            capture_to_decoded: Histogram::new(),
            rtt: Histogram::new(),
            rtt_sum: 0.0,
            rtt_sum_sq: 0.0,
            frames_presented: 0,
            dropped_pacing: 0,
            render: Histogram::new(),
            capture_to_present: Histogram::new(),
            decoded_to_present: Histogram::new(),
            inputs_sent: 0,
            inputs_received_by_host: 0,
            inputs_received_this_session: 0,
            input_to_host: Histogram::new(),
            rumbles: 0,
            audio_device: String::new(),
            audio: AudioCounters::default(),
            audio_buffer: Histogram::new(),
            audio_latency: Histogram::new(),
            av_offset: Signed::default(),
            clock: None,
            last_decoded: None,
            longest_decode_gap: 0,
            last_host: (0, 0),
            longest_gap_excl_host: 0,
            last_presented: None,
            longest_present_gap: 0,
            still_words: 0,
            still_for_decode: None,
            still_for_present: None,
        }
    }

    fn on_bitrate(&mut self, kbps: u32, congested: bool) {
        self.bitrate_target_kbps = Some(kbps);
        self.bitrate_lowest_kbps = Some(self.bitrate_lowest_kbps.map_or(kbps, |l| l.min(kbps)));
        if congested {
            self.bitrate_decreases += 1;
        } else {
            self.bitrate_increases += 1;
        }
    }

    /// The host's share of the gap between the last decoded picture and `d`, µs: the capture
    /// slots it skipped between them for falling behind its schedule, and how much longer
    /// `d` took to encode than the last picture did. (Slots it held back for want of room on
    /// the path are the path's share, not the host's.) A host that does not report slots, or
    /// a stream whose frame rate is unknown, has no share: all of the gap is counted.
    fn host_share(&self, d: &Decoded) -> u64 {
        let (behind, encode) = self.last_host;
        let interval = if self.fps > 0 { 1_000_000 / u64::from(self.fps) } else { 0 };
        let slots = u64::from(d.host_behind.saturating_sub(behind));
        slots * interval + u64::from(d.encode_micros.saturating_sub(encode))
    }

    fn on_decoded(&mut self, d: &Decoded) {
        self.frames_decoded += 1;
        if let Some(last) = self.last_decoded {
            let gap = still_gap(last, d.decoded_micros, d.capture_micros, self.still_for_decode.take());
            self.longest_decode_gap = self.longest_decode_gap.max(gap);
            let rest = gap.saturating_sub(self.host_share(d));
            self.longest_gap_excl_host = self.longest_gap_excl_host.max(rest);
        }
        self.last_decoded = Some(d.decoded_micros);
        self.last_host = (d.host_behind, d.encode_micros);
        self.decode.record(d.decode_micros);
        self.queue.record(d.queue_micros);
        match d.marker {
            MarkerCheck::Match | MarkerCheck::Unchecked => {}
            MarkerCheck::Mismatch => self.marker_mismatches += 1,
            MarkerCheck::Unreadable => self.marker_unreadable += 1,
        }
        // Both stamps on the host's clock.
        let decoded_host = d.decoded_micros as i128 + i128::from(self.offset_micros);
        let latency = decoded_host - i128::from(d.capture_micros);
        if latency >= 0 {
            self.capture_to_decoded.record(latency as u64);
        } else {
            self.clock_anomalies += 1;
        }
    }

    fn on_received(&mut self, frame: &FrameReceived) {
        self.frames_received += 1;
        self.held_back += u64::from(frame.held_back);
        self.on_size(frame);
        self.bytes_received += frame.bytes;
        self.encode.record(u64::from(frame.encode_micros));
    }

    /// The encoded size of each frame: changes counted, the time since the last frame
    /// credited to the size that was showing.
    fn on_size(&mut self, frame: &FrameReceived) {
        let size = (frame.width, frame.height);
        if let Some(was) = self.encoded_size {
            let spent = frame.received_micros.saturating_sub(self.last_arrival);
            if let Some(entry) = self.at_size.iter_mut().find(|(w, h, _)| (*w, *h) == was) {
                entry.2 += spent;
            } else if self.at_size.len() < MAX_SIZES {
                self.at_size.push((was.0, was.1, spent));
            }
            if was != size {
                self.size_changes += 1;
            }
        }
        self.encoded_size = Some(size);
        self.last_arrival = frame.received_micros;
    }

    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Stream { width, height, fps, bitrate_kbps, host_name } => {
                self.width = width;
                self.height = height;
                self.fps = fps;
                self.bitrate_kbps_requested = bitrate_kbps;
                self.host_name = host_name;
            }
            Event::Received(frame) => self.on_received(&frame),
            Event::Dropped { reason, count } => match reason {
                DropReason::Network => self.dropped_network += count,
                DropReason::Undecodable => self.dropped_undecodable += count,
                DropReason::Queue => self.dropped_queue += count,
                DropReason::Late => self.frames_late += count,
            },
            Event::Decoded(d) => self.on_decoded(&d),
            Event::DecodeError => self.decode_errors += 1,
            Event::IdrRequested => self.idr_requests += 1,
            Event::LtrRequested => self.ltr_requests += 1,
            Event::Repaired { how, after_micros } => {
                self.repaired[how as usize] += 1;
                self.repair.record(after_micros);
            }
            Event::FecRepaired { shards } => {
                self.fec_frames += 1;
                self.fec_shards += u64::from(shards);
            }
            Event::Skipped(what) => self.skipped[what as usize] += 1,
            Event::Reconnecting { .. } | Event::Notice(_) => {}
            Event::BitrateChanged { kbps, congested } => self.on_bitrate(kbps, congested),
            Event::BitrateStarted { kbps } => {
                self.bitrate_target_kbps = Some(kbps);
                self.bitrate_lowest_kbps = Some(self.bitrate_lowest_kbps.map_or(kbps, |l| l.min(kbps)));
            }
            Event::Reconnected { outage_micros } => {
                self.reconnects += 1;
                // The new connection's host counts inputs from 0 again.
                self.inputs_received_this_session = 0;
                self.longest_outage_micros = self.longest_outage_micros.max(outage_micros);
            }
            Event::Rtt { rtt_micros } => {
                self.rtt.record(rtt_micros);
                let ms = rtt_micros as f64 / 1000.0;
                self.rtt_sum += ms;
                self.rtt_sum_sq += ms * ms;
            }
            Event::Presented(p) => {
                self.frames_presented += 1;
                if let Some(last) = self.last_presented {
                    let gap = still_gap(last, p.presented_micros, p.capture_micros, self.still_for_present.take());
                    self.longest_present_gap = self.longest_present_gap.max(gap);
                }
                self.last_presented = Some(p.presented_micros);
                self.render.record(p.render_micros);
                self.decoded_to_present.record(p.presented_micros.saturating_sub(p.decoded_micros));
                let presented_host = p.presented_micros as i128 + i128::from(self.offset_micros);
                let latency = presented_host - i128::from(p.capture_micros);
                if latency >= 0 {
                    self.capture_to_present.record(latency as u64);
                }
            }
            Event::Still { at_micros, host_micros } => {
                self.still_words += 1;
                let word = StillWord { arrived_micros: at_micros, said_micros: host_micros };
                self.still_for_decode = Some(word);
                self.still_for_present = Some(word);
            }
            Event::PacingDropped { count } => self.dropped_pacing += count,
            Event::InputSent { .. } => self.inputs_sent += 1,
            Event::Rumble => self.rumbles += 1,
            Event::AudioDevice { description } => self.audio_device = description,
            Event::Audio(counters) => self.audio = counters,
            Event::AudioPlayed { buffer_micros, latency_micros, av_offset_micros } => {
                self.audio_buffer.record(buffer_micros);
                let latency = i128::from(latency_micros) + i128::from(self.offset_micros);
                if latency >= 0 {
                    self.audio_latency.record(latency as u64);
                }
                if let Some(offset) = av_offset_micros {
                    self.av_offset.record(offset);
                }
            }
            Event::ClockSync { offset_micros, error_micros } => {
                self.clock = Some((offset_micros, error_micros));
            }
            Event::InputAcked { accepted, to_host_micros, .. } => {
                // Acks can arrive out of order: only a higher count adds.
                if accepted > self.inputs_received_this_session {
                    self.inputs_received_by_host += accepted - self.inputs_received_this_session;
                    self.inputs_received_this_session = accepted;
                }
                if let Some(micros) = to_host_micros {
                    // Client read time → host receive time, both on the host's clock.
                    let latency = i128::from(micros) - i128::from(self.offset_micros);
                    if latency >= 0 {
                        self.input_to_host.record(latency as u64);
                    } else {
                        self.clock_anomalies += 1;
                    }
                }
            }
        }
    }

    fn rtt_stddev_ms(&self) -> f64 {
        let n = self.rtt.count() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mean = self.rtt_sum / n;
        round3((self.rtt_sum_sq / n - mean * mean).max(0.0).sqrt())
    }

    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded
    }

    /// The figures for a session that lasted `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Summary {
            host: self.host_name.clone(),
            duration_secs: round3(elapsed.as_secs_f64()),
            width: self.width,
            height: self.height,
            fps: self.fps,
            frames_received: self.frames_received,
            frames_decoded: self.frames_decoded,
            frames_dropped: self.dropped_network + self.dropped_undecodable + self.dropped_queue,
            frames_dropped_network: self.dropped_network,
            frames_dropped_undecodable: self.dropped_undecodable,
            frames_dropped_queue: self.dropped_queue,
            frames_late: self.frames_late,
            decode_errors: self.decode_errors,
            marker_mismatches: self.marker_mismatches + self.marker_unreadable,
            marker_unreadable: self.marker_unreadable,
            idr_requests: self.idr_requests,
            ltr_requests: self.ltr_requests,
            frames_lost: self.dropped_network,
            frames_held_back: self.held_back,
            still_words: self.still_words,
            heap: None,
            frames_repaired_ltr: self.repaired[crate::video::sequence::Repair::Ltr as usize],
            frames_repaired_idr: self.repaired[crate::video::sequence::Repair::Idr as usize],
            frames_repaired_fec: self.fec_frames,
            fec_shards_rebuilt: self.fec_shards,
            unknown_datagrams: self.skipped[Skipped::Datagram as usize],
            unknown_control_messages: self.skipped[Skipped::ControlMessage as usize],
            repair_ms: Percentiles::of(&self.repair),
            longest_repair_ms: self.repair.max_micros().map_or(0.0, |us| round3(us as f64 / 1000.0)),
            clock_anomalies: self.clock_anomalies,
            received_fps: round3(self.frames_received as f64 / secs),
            decoded_fps: round3(self.frames_decoded as f64 / secs),
            bitrate_kbps: round3(self.bytes_received as f64 * 8.0 / 1000.0 / secs),
            requested_bitrate_kbps: self.bitrate_kbps_requested,
            decode_ms: Percentiles::of(&self.decode),
            queue_ms: Percentiles::of(&self.queue),
            host_encode_ms: Percentiles::of(&self.encode),
            capture_to_decoded_ms: Percentiles::of(&self.capture_to_decoded),
            rtt_ms: Percentiles::of(&self.rtt),
            rtt_stddev_ms: self.rtt_stddev_ms(),
            host_processing_ms: MinMaxAvg::of(&self.encode),
            frames_presented: self.frames_presented,
            frames_dropped_pacing: self.dropped_pacing,
            presented_fps: round3(self.frames_presented as f64 / secs),
            render_ms: Percentiles::of(&self.render),
            decoded_to_present_ms: Percentiles::of(&self.decoded_to_present),
            capture_to_present_ms: Percentiles::of(&self.capture_to_present),
            inputs_sent: self.inputs_sent,
            inputs_received_by_host: self.inputs_received_by_host,
            input_to_host_ms: Percentiles::of(&self.input_to_host),
            rumbles_received: self.rumbles,
            audio_device: self.audio_device.clone(),
            audio_packets_received: self.audio.received,
            audio_packets_played: self.audio.played,
            audio_packets_concealed: self.audio.concealed,
            audio_packets_recovered: self.audio.recovered,
            audio_packets_late: self.audio.late,
            audio_slots_stretched: self.audio.stretched,
            audio_underruns: self.audio.underruns,
            audio_buffer_ms: Percentiles::of(&self.audio_buffer),
            audio_latency_ms: Percentiles::of(&self.audio_latency),
            av_offset_ms: self.av_offset.percentiles(),
            clock_offset_ms: self.clock.map_or(0.0, |c| round3(c.0 as f64 / 1000.0)),
            clock_offset_error_ms: self.clock.map_or(0.0, |c| round3(c.1 as f64 / 1000.0)),
            longest_freeze_ms: round3(
                if self.frames_presented > 0 { self.longest_present_gap } else { self.longest_decode_gap } as f64
                    / 1000.0,
            ),
            longest_freeze_excl_host_ms: round3(self.longest_gap_excl_host as f64 / 1000.0),
            host_behind_slots: u64::from(self.last_host.0),
            reconnects: self.reconnects,
            longest_outage_ms: round3(self.longest_outage_micros as f64 / 1000.0),
            bitrate_target_kbps: self.bitrate_target_kbps.unwrap_or(self.bitrate_kbps_requested),
            bitrate_lowest_kbps: self.bitrate_lowest_kbps.unwrap_or(self.bitrate_kbps_requested),
            bitrate_decreases: self.bitrate_decreases,
            bitrate_increases: self.bitrate_increases,
            encode_size_changes: self.size_changes,
            encoded_width: self.encoded_size.map_or(0, |s| s.0),
            encoded_height: self.encoded_size.map_or(0, |s| s.1),
            time_at_size: self
                .at_size
                .iter()
                .map(|&(width, height, micros)| TimeAtSize { width, height, secs: round3(micros as f64 / 1e6) })
                .collect(),
        }
    }
}

impl Summary {
    /// The one-screen end-of-session report.
    fn freeze_line(&self) -> String {
        let still = if self.still_words > 0 {
            format!("; the host's picture was still (nothing drawn) {} times, not counted", self.still_words)
        } else {
            String::new()
        };
        format!(
            "longest freeze    {:.1} ms between two pictures shown; {:.1} ms less the host's share ({} slots it fell behind){still}",
            self.longest_freeze_ms, self.longest_freeze_excl_host_ms, self.host_behind_slots
        )
    }
    /// The losses line, when there was anything to say.
    fn losses_line(&self) -> Option<String> {
        let any = self.frames_lost
            + self.frames_repaired_ltr
            + self.frames_repaired_idr
            + self.frames_held_back
            + self.frames_repaired_fec;
        (any > 0).then(|| {
            format!(
                "losses            {} frames completed from parity ({} shards); {} frames lost; repaired {} by recovery frame, {} by IDR, detected → picture {} (longest {:.1} ms); {} slots held back by the host",
                self.frames_repaired_fec,
                self.fec_shards_rebuilt,
                self.frames_lost,
                self.frames_repaired_ltr,
                self.frames_repaired_idr,
                percentiles_text(&self.repair_ms),
                self.longest_repair_ms,
                self.frames_held_back
            )
        })
    }

    pub fn to_text(&self) -> String {
        let pct = |part: u64| {
            let sent = self.frames_decoded + self.frames_dropped;
            if sent == 0 { 0.0 } else { part as f64 * 100.0 / sent as f64 }
        };
        let line = percentiles_text;
        let mut lines = Vec::new();
        lines.push("── kumo session summary ─────────────────────────────────────".to_owned());
        lines.push(format!("host              {}", if self.host.is_empty() { "?" } else { &self.host }));
        lines.push(format!(
            "stream            {}x{} @ {} fps, H.264, {:.1} s",
            self.width, self.height, self.fps, self.duration_secs
        ));
        lines.push(format!(
            "frames            {} received, {} decoded ({:.1} fps incoming, {:.1} fps decoded)",
            self.frames_received, self.frames_decoded, self.received_fps, self.decoded_fps
        ));
        lines.push(format!(
            "dropped           {} by network ({:.2} %), {} undecodable after loss ({:.2} %), {} by decode queue ({:.2} %)",
            self.frames_dropped_network,
            pct(self.frames_dropped_network),
            self.frames_dropped_undecodable,
            pct(self.frames_dropped_undecodable),
            self.frames_dropped_queue,
            pct(self.frames_dropped_queue)
        ));
        lines.push(format!(
            "errors            {} decode errors, {} marker mismatches, {} IDR requests, {} late frames",
            self.decode_errors, self.marker_mismatches, self.idr_requests, self.frames_late
        ));
        lines.push(format!(
            "bitrate           {:.0} kbps received ({} kbps requested)",
            self.bitrate_kbps, self.requested_bitrate_kbps
        ));
        lines.push(format!("host encode       {}", line(&self.host_encode_ms)));
        lines.push(format!("decode queue      {}", line(&self.queue_ms)));
        lines.push(format!("decode            {}", line(&self.decode_ms)));
        lines.push(format!("capture→decoded   {}", line(&self.capture_to_decoded_ms)));
        lines.push(format!("control RTT       {}", line(&self.rtt_ms)));
        lines.push(self.freeze_line());
        lines.extend(self.losses_line());
        if self.bitrate_decreases + self.bitrate_increases > 0 {
            lines.push(format!(
                "adaptive bitrate  {} kbps now, lowest {} ({} down, {} up)",
                self.bitrate_target_kbps, self.bitrate_lowest_kbps, self.bitrate_decreases, self.bitrate_increases
            ));
        }
        if self.encode_size_changes > 0 {
            let sizes: Vec<String> =
                self.time_at_size.iter().map(|t| format!("{}x{} {:.1} s", t.width, t.height, t.secs)).collect();
            lines.push(format!(
                "picture size      changed {} times to follow the path: {}",
                self.encode_size_changes,
                sizes.join(", ")
            ));
        }
        if self.reconnects > 0 {
            lines.push(format!(
                "reconnects        {} (longest outage {:.0} ms until the new handshake)",
                self.reconnects, self.longest_outage_ms
            ));
        }
        if self.inputs_sent > 0 {
            lines.push(format!(
                "input             {} sent, {} accepted by the host; to host {}",
                self.inputs_sent,
                self.inputs_received_by_host,
                line(&self.input_to_host_ms)
            ));
        }
        if self.frames_presented > 0 {
            let shown = self.frames_presented + self.frames_dropped_pacing;
            let pacing_pct = if shown == 0 { 0.0 } else { self.frames_dropped_pacing as f64 * 100.0 / shown as f64 };
            lines.push(format!(
                "presented         {} ({:.1} fps), {} dropped by display pacing ({:.2} %)",
                self.frames_presented, self.presented_fps, self.frames_dropped_pacing, pacing_pct
            ));
            lines.push(format!("render            {}", line(&self.render_ms)));
            lines.push(format!("capture→present   {}", line(&self.capture_to_present_ms)));
        }
        if !self.audio_device.is_empty() {
            lines.push(format!("audio             {}", self.audio_device));
            lines.push(format!(
                "audio packets     {} received, {} played, {} concealed, {} repaired, {} late, {} underruns",
                self.audio_packets_received,
                self.audio_packets_played,
                self.audio_packets_concealed,
                self.audio_packets_recovered,
                self.audio_packets_late,
                self.audio_underruns
            ));
            lines.push(format!("audio buffer      {}", line(&self.audio_buffer_ms)));
            lines.push(format!("capture→heard     {}", line(&self.audio_latency_ms)));
            let av = &self.av_offset_ms;
            lines.push(format!(
                "A/V offset        p50 {:+7.2}  p99 {:+7.2} ms (+: sound after picture)",
                av.p50, av.p99
            ));
        }
        lines.join("\n") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_changes_are_counted_and_the_time_at_each_size_adds_up() {
        let mut s = Stats::new(0);
        let sizes = [(1280, 720), (1280, 720), (640, 360), (640, 360), (640, 360), (1280, 720)];
        for (n, (width, height)) in sizes.into_iter().enumerate() {
            let received_micros = 1_000_000 + n as u64 * 500_000;
            s.apply(Event::Received(FrameReceived {
                frame_number: n as u64,
                received_micros,
                width,
                height,
                ..FrameReceived::default()
            }));
        }
        let sum = s.summary(Duration::from_secs(3));
        assert_eq!(sum.encode_size_changes, 2);
        // Arrival to arrival: 720p from 1.0 to 2.0 s, 360p from 2.0 to 3.5 s (the last frame
        // has no time yet).
        assert_eq!(
            sum.time_at_size,
            [TimeAtSize { width: 1280, height: 720, secs: 1.0 }, TimeAtSize { width: 640, height: 360, secs: 1.5 }]
        );
        assert!(
            sum.to_text()
                .contains("picture size      changed 2 times to follow the path: 1280x720 1.0 s, 640x360 1.5 s")
        );
    }

    #[test]
    fn stamps_from_the_network_never_overflow() {
        assert_eq!(micros_between(1_000, 1_500), 500);
        assert_eq!(micros_between(1_500, 1_000), -500, "clocks may differ either way");
        assert_eq!(micros_between(0, u64::MAX), i64::MAX);
        assert_eq!(micros_between(u64::MAX, 0), i64::MIN);
    }

    fn decoded(n: u64, capture: u64, decoded_at: u64, marker: MarkerCheck) -> Event {
        Event::Decoded(Decoded {
            frame_number: n,
            capture_micros: capture,
            decoded_micros: decoded_at,
            queue_micros: 100,
            decode_micros: 4000,
            marker,
            ..Decoded::default()
        })
    }

    #[test]
    fn signed_percentiles_hold_within_a_percent_in_constant_memory() {
        let mut s = Signed::default();
        assert_eq!(s.percentiles(), SignedPercentiles::default());
        // -50 ms .. +49.99 ms, evenly: p50 about 0, p99 about +49 ms.
        for i in 0..100_000i64 {
            s.record(i - 50_000);
        }
        let p = s.percentiles();
        assert!(p.p50.abs() < 0.6, "{p:?}");
        assert!((p.p99 - 49.0).abs() < 0.6, "{p:?}");
        assert_eq!((p.min, p.max), (-50.0, 49.999));
        // All negative, all positive.
        let mut neg = Signed::default();
        for v in [-30_000, -20_000, -10_000] {
            neg.record(v);
        }
        let p = neg.percentiles();
        assert!((p.p50 + 20.0).abs() < 0.3 && (p.min + 30.0).abs() < 1e-9 && (p.max + 10.0).abs() < 1e-9, "{p:?}");
        assert_eq!(std::mem::size_of::<Signed>(), 2 * std::mem::size_of::<Histogram>(), "no sample list");
    }

    #[test]
    fn a_still_picture_is_not_a_freeze() {
        let ms = |v: u64| v * 1000;
        let mut s = Stats::new(0);
        // Frame 0 captured at 0, decoded at 10 ms; the host then says "still" at 100, 200, ...
        // 2000 ms (arriving 2 ms later); frame 1 is captured at 2050 ms and decoded at 2062.
        s.apply(decoded(0, ms(0), ms(10), MarkerCheck::Unchecked));
        for t in (100..=2000).step_by(100) {
            s.apply(Event::Still { at_micros: ms(t + 2), host_micros: ms(t) });
        }
        s.apply(decoded(1, ms(2050), ms(2062), MarkerCheck::Unchecked));
        let sum = s.summary(Duration::from_secs(3));
        assert_eq!(sum.still_words, 20);
        // What is left is the new picture's longer trip: 12 ms against the word's 2.
        assert_eq!(sum.longest_freeze_ms, 10.0, "{sum:?}");
        // Without the words the same two pictures are a two-second freeze.
        let mut s = Stats::new(0);
        s.apply(decoded(0, ms(0), ms(10), MarkerCheck::Unchecked));
        s.apply(decoded(1, ms(2050), ms(2062), MarkerCheck::Unchecked));
        assert_eq!(s.summary(Duration::from_secs(3)).longest_freeze_ms, 2052.0);
    }

    #[test]
    fn the_longest_freeze_is_the_longest_gap_between_pictures_shown() {
        let mut s = Stats::new(0);
        for (n, at_ms) in [0u64, 16, 33, 250, 266].into_iter().enumerate() {
            s.apply(decoded(n as u64, at_ms * 1000, at_ms * 1000 + 5_000, MarkerCheck::Match));
        }
        assert_eq!(s.summary(Duration::from_secs(1)).longest_freeze_ms, 217.0, "headless: between decodes");
        // With a window, what counts is what was presented.
        for (n, at_ms) in [0u64, 16, 100].into_iter().enumerate() {
            s.apply(Event::Presented(Presented {
                frame_number: n as u64,
                capture_micros: 0,
                decoded_micros: 0,
                presented_micros: at_ms * 1000,
                render_micros: 0,
            }));
        }
        assert_eq!(s.summary(Duration::from_secs(1)).longest_freeze_ms, 84.0);
    }

    #[test]
    fn the_hosts_own_stalls_are_kept_apart_from_the_freeze() {
        let mut s = Stats::new(0);
        s.apply(Event::Stream { width: 1280, height: 720, fps: 60, bitrate_kbps: 8000, host_name: "h".into() });
        let at = |n: u64, decoded_ms: u64, behind: u32, encode_ms: u32| {
            Event::Decoded(Decoded {
                frame_number: n,
                decoded_micros: decoded_ms * 1000,
                host_behind: behind,
                encode_micros: encode_ms * 1000,
                ..Decoded::default()
            })
        };
        // Frame 2 took 60 ms to encode instead of 10 (a 67 ms gap); the host then skipped 6
        // slots (100 ms) before frame 3 (a 117 ms gap, encode back to 10 ms).
        for e in [at(0, 0, 0, 10), at(1, 17, 0, 10), at(2, 84, 0, 60), at(3, 201, 6, 10)] {
            s.apply(e);
        }
        // Then the path loses frames 4 and 5 with the host on schedule: 90 ms, all the path's.
        s.apply(at(6, 291, 6, 10));
        // A gap with one slot the host fell behind and a loss: 120 ms, 16.7 of it the host's.
        s.apply(at(8, 411, 7, 10));
        let sum = s.summary(Duration::from_secs(1));
        assert_eq!(sum.longest_freeze_ms, 120.0);
        assert_eq!(sum.host_behind_slots, 7);
        assert_eq!(sum.longest_freeze_excl_host_ms, 103.334, "{sum:?}");
        // A host that restarts counts from 0 again: no share, and no underflow.
        s.apply(at(0, 561, 0, 10));
        assert_eq!(s.summary(Duration::from_secs(1)).longest_freeze_excl_host_ms, 150.0);
    }

    #[test]
    fn inputs_the_host_received_add_up_across_reconnects() {
        let mut s = Stats::new(0);
        let ack = |accepted| Event::InputAcked { accepted, seq: accepted, host_micros: 0, to_host_micros: None };
        s.apply(ack(500));
        s.apply(ack(499)); // late, out of order
        s.apply(ack(700));
        // The new connection's host counts from 0 again.
        s.apply(Event::Reconnected { outage_micros: 1000 });
        s.apply(ack(3));
        s.apply(ack(10));
        assert_eq!(s.summary(Duration::from_secs(1)).inputs_received_by_host, 710);
    }

    #[test]
    fn counts_and_latency_add_up() {
        let mut s = Stats::new(0);
        s.apply(Event::Stream { width: 1280, height: 720, fps: 60, bitrate_kbps: 8000, host_name: "h".into() });
        for n in 0..10 {
            s.apply(Event::Received(FrameReceived {
                frame_number: n,
                bytes: 12_500,
                encode_micros: 5000,
                held_back: if n == 5 { 3 } else { 0 },
                ..FrameReceived::default()
            }));
            s.apply(decoded(n, n * 16_667, n * 16_667 + 10_000, MarkerCheck::Match));
        }
        s.apply(Event::Dropped { reason: DropReason::Network, count: 2 });
        s.apply(Event::Dropped { reason: DropReason::Queue, count: 1 });
        s.apply(Event::Dropped { reason: DropReason::Late, count: 1 });
        s.apply(decoded(11, 0, 5, MarkerCheck::Mismatch));
        let sum = s.summary(Duration::from_secs(1));
        assert_eq!(sum.frames_received, 10);
        assert_eq!(sum.frames_held_back, 3, "slots the host skipped are counted, not as losses");
        assert_eq!((sum.frames_repaired_ltr, sum.longest_repair_ms), (0, 0.0));
        let ltr = crate::video::sequence::Repair::Ltr;
        s.apply(Event::Repaired { how: ltr, after_micros: 30_000 });
        s.apply(Event::Repaired { how: ltr, after_micros: 45_000 });
        let sum = s.summary(Duration::from_secs(1));
        assert_eq!(sum.frames_repaired_ltr, 2);
        assert!((sum.longest_repair_ms - 45.0).abs() < 1.0, "{}", sum.longest_repair_ms);
        assert!(sum.repair_ms.p50 >= 29.0 && sum.repair_ms.p50 <= 46.0, "{:?}", sum.repair_ms);
        assert_eq!(sum.frames_decoded, 11);
        assert_eq!(sum.frames_dropped, 3);
        assert_eq!(sum.frames_late, 1);
        assert_eq!(sum.marker_mismatches, 1);
        assert_eq!(sum.bitrate_kbps, 1000.0);
        assert_eq!(sum.capture_to_decoded_ms.p50, 10.0);
        assert_eq!(sum.decode_ms.p99, 4.0);
        let text = sum.to_text();
        assert!(text.contains("1280x720 @ 60 fps"), "{text}");
        assert!(text.lines().count() <= 24, "one screen: {text}");
    }

    #[test]
    fn clock_offset_is_applied() {
        // Host clock 1 s ahead of the client's.
        let mut s = Stats::new(1_000_000);
        s.apply(decoded(0, 1_000_000 + 500, 2_500, MarkerCheck::Match));
        assert_eq!(s.summary(Duration::from_secs(1)).capture_to_decoded_ms.p50, 2.0);
        let mut s = Stats::new(0);
        s.apply(decoded(0, 10_000, 5_000, MarkerCheck::Match));
        let sum = s.summary(Duration::from_secs(1));
        assert_eq!(sum.clock_anomalies, 1);
        assert_eq!(sum.capture_to_decoded_ms.p50, 0.0);
    }

    #[test]
    fn summary_json_has_the_documented_fields() {
        let json = serde_json::to_value(Stats::new(0).summary(Duration::from_secs(1))).unwrap();
        for key in [
            "frames_received",
            "frames_decoded",
            "frames_dropped",
            "decode_errors",
            "marker_mismatches",
            "frames_repaired_fec",
            "fec_shards_rebuilt",
            "unknown_datagrams",
            "unknown_control_messages",
            "decode_ms",
            "capture_to_decoded_ms",
            "bitrate_kbps",
            "width",
            "height",
            "fps",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert!(json["decode_ms"].get("p95").is_some());
    }
}

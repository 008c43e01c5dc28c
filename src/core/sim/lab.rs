//! The latency lab: every input's way from the player's hand to the screen, stage
//! by stage, from the stamps the session already reports.
//!
//! For each input the client sends, the lab pairs it with the first frame that reflects it
//! (the host reports the newest input each frame reflects; the frame's pixels carry it too)
//! and records: read on the client → sent → received by the host → the first frame captured
//! after it → encoded → received by the client → decoded → presented. Host stamps are put on
//! the client's clock with the clock-sync estimate, so the stages of one input add up to its
//! total exactly, whatever the offset. A response is *verified* when the input marker read
//! from the picture's own pixels names this input or a newer one. The host also burns its
//! capture time (ms) into each picture; reading it back and comparing with the frame header
//! is a check of the whole metadata path that nothing in kumo can tune.
//!
//! Pure: stamps come in, rows and figures go out.

use crate::stats::{Event, FrameReceived};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

/// Frames remembered for pairing (about 10 s at 60 fps); older ones are forgotten.
const MAX_FRAMES: usize = 600;
/// Inputs remembered (a measurement asks for a few hundred).
const MAX_INPUTS: usize = 100_000;
/// Frames remembered while watching a region (10 minutes at 60 fps): a response is found
/// among all of them once the run is over.
const MAX_WATCHED_FRAMES: usize = 36_000;
/// The smallest luma step (of 255) that counts as the watched region changing, whatever its
/// noise: well above an encoder's flicker on a still picture.
pub const MIN_STEP: f64 = 2.0;
/// A change must exceed the region's own noise (its 95th-percentile step between pictures
/// in the half second before the first press) this many times over.
pub const NOISE_MARGIN: f64 = 3.0;
/// The noise is learnt from the pictures of this last stretch before the first press, µs.
const NOISE_WINDOW_MICROS: u64 = 500_000;

/// A rectangle of the stream's picture, in its pixels: what `--watch X,Y,W,H` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

impl Region {
    /// Reads `X,Y,W,H` (pixels of the stream, from its top-left corner).
    pub fn parse(text: &str) -> Result<Self, String> {
        let numbers: Vec<u16> =
            text.split(',').map(|v| v.trim().parse::<u16>()).collect::<Result<_, _>>().map_err(|_| {
                format!("`{text}` is not a region: give X,Y,W,H in pixels of the stream, such as 1100,600,160,100")
            })?;
        let [x, y, width, height] = numbers[..] else {
            return Err(format!("`{text}` is not a region: give four numbers X,Y,W,H, such as 1100,600,160,100"));
        };
        if width == 0 || height == 0 {
            return Err(format!("the region `{text}` is empty: its width and height must be at least 1"));
        }
        Ok(Self { x, y, width, height })
    }

    /// Whether the region lies inside a picture of `width` × `height`.
    pub fn fits(&self, width: u16, height: u16) -> bool {
        u32::from(self.x) + u32::from(self.width) <= u32::from(width)
            && u32::from(self.y) + u32::from(self.height) <= u32::from(height)
    }

    /// The region's mean luma × 256 in a luma plane of `width` × `height` with rows `stride`
    /// apart; `None` when it does not fit.
    pub fn mean_luma(&self, luma: &[u8], stride: usize, width: usize, height: usize) -> Option<u32> {
        let (x, y, w, h) =
            (usize::from(self.x), usize::from(self.y), usize::from(self.width), usize::from(self.height));
        if x + w > width || y + h > height || w > stride {
            return None;
        }
        let mut sum = 0u64;
        for row in y..y + h {
            let line = luma.get(row * stride + x..row * stride + x + w)?;
            sum += line.iter().map(|&v| u64::from(v)).sum::<u64>();
        }
        Some((sum * 256 / (w * h) as u64) as u32)
    }
}

/// What the watch found, in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchSummary {
    pub region: Region,
    /// The luma step (of 255) that counted as a change: the region's noise before the first
    /// press times `NOISE_MARGIN`, at least `MIN_STEP`.
    pub threshold_luma: f64,
    /// Shown pictures whose region changed.
    pub changes_seen: u64,
    /// For presses both methods answered: how far the watch's input→present is from the one
    /// the host's marks give (the first frame captured after the input was applied). On the
    /// synthetic host, whose flash answers every input, they agree within a frame interval.
    pub disagreement_with_marks_ms: Spread,
    pub compared_with_marks: u64,
}

/// What the lab knows about one frame. Host stamps are on the host's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameStamps {
    pub frame_number: u64,
    /// Host clock: captured.
    pub capture_micros: u64,
    /// Host: time in the encoder.
    pub encode_micros: u32,
    /// The newest input the host had applied at capture.
    pub input_seq: u64,
    /// Client clock: the whole frame came off the network.
    pub received_micros: u64,
    /// Client clock: decoded.
    pub decoded_micros: Option<u64>,
    /// Client clock: queued to the display (none headless).
    pub presented_micros: Option<u64>,
    /// The input marker read from the decoded picture's pixels (low 32 bits of a sequence).
    pub pixel_input: Option<u32>,
    /// The capture time burnt into the picture, read from its pixels (ms, low 32 bits).
    pub pixel_time_ms: Option<u32>,
    /// The watched region's mean luma × 256 (`--watch`).
    pub region_luma: Option<u32>,
}

/// One input. Client stamps on the client's clock, the host's receive stamp on the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputStamps {
    seq: u64,
    read_micros: u64,
    sent_micros: u64,
    host_received_micros: Option<u64>,
    frame: Option<u64>,
    /// Keys and buttons held in the state: a press makes it grow.
    held: u32,
}

/// The stages, in order; each row's stage times add up to its total.
pub const STAGES: [&str; 7] = ["send", "uplink", "wait_capture", "encode", "downlink", "decode", "present"];

/// One input's row in `latency.csv`: every stamp on the client's clock (µs) and the stages
/// (ms).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputRow {
    pub seq: u64,
    pub frame_number: u64,
    pub read_us: f64,
    pub sent_us: f64,
    pub host_received_us: f64,
    pub captured_us: f64,
    pub encoded_us: f64,
    pub received_us: f64,
    pub decoded_us: f64,
    pub presented_us: f64,
    /// Stage times in `STAGES` order, ms.
    pub stages_ms: [f64; 7],
    pub total_ms: f64,
    /// The picture's own pixels name this input (or a newer one).
    pub verified: bool,
}

/// p50, p95, p99 and max of a figure, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| round3(v[((v.len() - 1) as f64 * q).round() as usize]);
        Self { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: round3(v[v.len() - 1]) }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabSummary {
    pub inputs: u64,
    /// Inputs whose response a picture's pixels confirmed.
    pub responses_verified: u64,
    /// Inputs no frame ever reflected (or whose frame was never decoded).
    pub responses_missing: u64,
    /// Their sequence numbers (the first 100).
    pub missing_inputs: Vec<u64>,
    /// Responses whose frame arrived but whose pixels did not name the input.
    pub responses_unconfirmed: u64,
    /// Inputs a newer one replaced before either reached the host (input is a state: only
    /// the newest travels once the path is back); their effect is in the newer one's frame.
    pub inputs_superseded: u64,
    /// Host clock minus client clock, and the bound on its error.
    pub clock_offset_ms: f64,
    pub clock_offset_error_ms: f64,
    pub input_to_present_ms: Spread,
    pub send_ms: Spread,
    pub uplink_ms: Spread,
    pub wait_capture_ms: Spread,
    pub encode_ms: Spread,
    pub downlink_ms: Spread,
    pub decode_ms: Spread,
    pub present_ms: Spread,
    /// Every frame's capture→present (capture→decoded headless).
    pub capture_to_present_ms: Spread,
    pub frames: u64,
    /// Frames whose burnt-in capture time was read back, and the largest disagreement with
    /// the header's capture stamp.
    pub time_marks_read: u64,
    pub time_mark_max_disagreement_ms: f64,
    /// True when no display was involved: "present" is the decoded picture.
    pub headless: bool,
    /// `--watch`: responses found in the region's pixels; `inputs` then counts presses.
    pub watch: Option<WatchSummary>,
}

/// The lab's records.
#[derive(Debug, Clone, Default)]
pub struct Lab {
    inputs: BTreeMap<u64, InputStamps>,
    frames: BTreeMap<u64, FrameStamps>,
    /// Capture→shown of every frame, µs (host capture put on the client clock later).
    shown: VecDeque<(u64, u64)>,
    /// Added to frame numbers: a reconnected session numbers its frames from 0 again, so
    /// each connection's frames get keys above the last one's.
    frame_base: u64,
    /// `--watch`: responses are found in the picture's pixels, not from the host's marks.
    watch: Option<Region>,
}

impl Lab {
    pub fn new() -> Self {
        Self::default()
    }

    /// A lab that times presses by the picture alone, as a photodiode would: the response to a
    /// press is the first shown picture captured after the host received it whose `region`
    /// changed its mean luma by more than the region's own noise (what it does before the
    /// first press), so any program can be measured, with no marks of kumo's in its pictures.
    pub fn watching(region: Region) -> Self {
        Self { watch: Some(region), ..Self::default() }
    }

    /// The watched region, if this lab watches one.
    pub fn watched(&self) -> Option<Region> {
        self.watch
    }

    /// Takes what it needs from a session event.
    pub fn on_event(&mut self, event: &Event) {
        match *event {
            Event::InputSent { seq, read_micros, sent_micros, held } => {
                self.on_input_sent_holding(seq, read_micros, sent_micros, held);
            }
            // Only an ack of an applied state carries that state's arrival time.
            Event::InputAcked { seq, host_micros, to_host_micros: Some(_), .. } => {
                self.on_input_acked(seq, host_micros);
            }
            // Frames of the new connection: keys above every frame so far.
            Event::Reconnected { .. } => {
                self.frame_base = self.frames.keys().next_back().map_or(self.frame_base, |&k| k + 1);
            }
            Event::Received(FrameReceived {
                frame_number,
                encode_micros,
                capture_micros,
                input_seq,
                received_micros,
                ..
            }) => {
                self.on_frame_received(FrameStamps {
                    frame_number: self.frame_base + frame_number,
                    capture_micros,
                    encode_micros,
                    input_seq,
                    received_micros,
                    ..FrameStamps::default()
                });
            }
            Event::Decoded(d) => {
                let number = self.frame_base + d.frame_number;
                self.on_decoded(number, d.decoded_micros, d.pixel_input, d.pixel_time_ms);
                if let Some(f) = self.frames.get_mut(&number) {
                    f.region_luma = d.region_luma;
                }
            }
            Event::Presented(p) => self.on_presented(self.frame_base + p.frame_number, p.presented_micros),
            _ => {}
        }
    }

    /// The newest `n` inputs' rows (for the overlay's latency page), oldest first.
    pub fn recent(&self, n: usize, offset_micros: f64, headless: bool) -> Vec<InputRow> {
        let (answers, _) = self.answers(offset_micros, headless);
        let mut rows: Vec<InputRow> = answers
            .into_iter()
            .rev()
            .filter_map(|(_, answer)| match answer {
                Answer::Shown(row) => Some(row),
                Answer::Missing | Answer::Superseded => None,
            })
            .take(n)
            .collect();
        rows.reverse();
        rows
    }

    /// An input state went out for the first time (re-sends are ignored).
    pub fn on_input_sent(&mut self, seq: u64, read_micros: u64, sent_micros: u64) {
        self.on_input_sent_holding(seq, read_micros, sent_micros, 0);
    }

    /// `on_input_sent`, with the keys and buttons the state holds.
    pub fn on_input_sent_holding(&mut self, seq: u64, read_micros: u64, sent_micros: u64, held: u32) {
        if self.inputs.contains_key(&seq) {
            return;
        }
        if self.inputs.len() >= MAX_INPUTS {
            // A long run keeps its newest inputs: the oldest is forgotten.
            self.inputs.pop_first();
        }
        let stamps = InputStamps { seq, read_micros, sent_micros, host_received_micros: None, frame: None, held };
        self.inputs.insert(seq, stamps);
    }

    /// The host acknowledged `seq`, which it received at `host_micros` (host clock).
    pub fn on_input_acked(&mut self, seq: u64, host_micros: u64) {
        if let Some(input) = self.inputs.get_mut(&seq)
            && input.host_received_micros.is_none()
        {
            input.host_received_micros = Some(host_micros);
        }
    }

    /// A frame came off the network; it answers every input up to its `input_seq` that no
    /// earlier frame answered.
    pub fn on_frame_received(&mut self, frame: FrameStamps) {
        for input in self.inputs.range_mut(..=frame.input_seq).rev() {
            if input.1.frame.is_some() {
                break;
            }
            input.1.frame = Some(frame.frame_number);
        }
        self.frames.insert(frame.frame_number, frame);
        let cap = if self.watch.is_some() { MAX_WATCHED_FRAMES } else { MAX_FRAMES };
        while self.frames.len() > cap {
            // Keep frames an input points at; forget the oldest other one.
            let referenced: std::collections::BTreeSet<u64> = self.inputs.values().filter_map(|i| i.frame).collect();
            let Some(old) = self.frames.keys().copied().find(|f| !referenced.contains(f)) else { break };
            self.frames.remove(&old);
        }
    }

    /// A frame was decoded, with what its pixels say.
    pub fn on_decoded(
        &mut self,
        frame_number: u64,
        decoded_micros: u64,
        pixel_input: Option<u32>,
        pixel_time_ms: Option<u32>,
    ) {
        if let Some(f) = self.frames.get_mut(&frame_number) {
            f.decoded_micros = Some(decoded_micros);
            f.pixel_input = pixel_input;
            f.pixel_time_ms = pixel_time_ms;
        }
    }

    /// A frame was queued to the display.
    pub fn on_presented(&mut self, frame_number: u64, presented_micros: u64) {
        if let Some(f) = self.frames.get_mut(&frame_number) {
            f.presented_micros = Some(presented_micros);
            self.shown.push_back((f.capture_micros, presented_micros));
            if self.shown.len() > MAX_INPUTS {
                self.shown.pop_front();
            }
        }
    }

    /// The newest input the host received (its ack came back).
    fn newest_received(&self) -> Option<u64> {
        self.inputs.values().rev().find(|i| i.host_received_micros.is_some()).map(|i| i.seq)
    }

    /// What became of one input, with host stamps moved to the client's clock by
    /// `offset_micros` (host minus client). Headless (`headless`), "presented" is the decoded
    /// picture. `newest_received` is [`Lab::newest_received`].
    fn answer(&self, input: &InputStamps, newest_received: Option<u64>, offset_micros: f64, headless: bool) -> Answer {
        self.answer_by(input, newest_received, offset_micros, headless, false)
    }

    /// [`Lab::answer`]; `watched`: `input.frame` is the picture whose watched region changed
    /// (the pixels themselves are the proof).
    fn answer_by(
        &self,
        input: &InputStamps,
        newest_received: Option<u64>,
        offset_micros: f64,
        headless: bool,
        watched: bool,
    ) -> Answer {
        let Some(host_rx) = input.host_received_micros else {
            // Never received: a newer input the host did receive replaced it, or it is lost.
            return if newest_received.is_some_and(|n| n > input.seq) { Answer::Superseded } else { Answer::Missing };
        };
        // The first frame that reflects the input and was shown: a frame replaced before the
        // display took it (or lost before decoding) passes the response to the next one.
        let shown = |f: &&FrameStamps| if headless { f.decoded_micros.is_some() } else { f.presented_micros.is_some() };
        let Some(frame) = input.frame.and_then(|n| self.frames.range(n..).map(|(_, f)| f).find(shown)) else {
            return Answer::Missing;
        };
        let (Some(decoded), Some(presented)) =
            (frame.decoded_micros, if headless { frame.decoded_micros } else { frame.presented_micros })
        else {
            return Answer::Missing;
        };
        let client = |host: u64| host as f64 - offset_micros;
        let captured = client(frame.capture_micros);
        let encoded = captured + f64::from(frame.encode_micros);
        let stamps = [
            input.read_micros as f64,
            input.sent_micros as f64,
            client(host_rx),
            captured,
            encoded,
            frame.received_micros as f64,
            decoded as f64,
            presented as f64,
        ];
        let mut stages_ms = [0.0; 7];
        for (i, stage) in stages_ms.iter_mut().enumerate() {
            *stage = (stamps[i + 1] - stamps[i]) / 1000.0;
        }
        Answer::Shown(InputRow {
            seq: input.seq,
            frame_number: frame.frame_number,
            read_us: stamps[0],
            sent_us: stamps[1],
            host_received_us: stamps[2],
            captured_us: stamps[3],
            encoded_us: stamps[4],
            received_us: stamps[5],
            decoded_us: stamps[6],
            presented_us: stamps[7],
            stages_ms,
            total_ms: (stamps[7] - stamps[0]) / 1000.0,
            verified: watched || frame.pixel_input.is_some_and(|p| input_reached(p, input.seq)),
        })
    }

    /// Every measured input's answer in sequence order: each input by the host's marks, or
    /// (watching) each press by the region's changes, with what the watch found.
    fn answers(&self, offset_micros: f64, headless: bool) -> (Vec<(u64, Answer)>, Option<Findings>) {
        let newest = self.newest_received();
        match self.watch_findings(offset_micros, headless) {
            None => {
                let answers =
                    self.inputs.values().map(|i| (i.seq, self.answer(i, newest, offset_micros, headless))).collect();
                (answers, None)
            }
            Some(found) => {
                let answers = found
                    .presses
                    .iter()
                    .map(|p| (p.seq, self.answer_by(p, newest, offset_micros, headless, true)))
                    .collect();
                (answers, Some(found))
            }
        }
    }

    /// The presses and the pictures whose watched region changed in answer (`None` when not
    /// watching). A press is an input holding more keys and buttons than the one before it;
    /// its answer is the first shown picture, captured after the host received the press and
    /// before it received the next, whose region's mean luma stepped by more than the
    /// threshold from the picture shown before it.
    fn watch_findings(&self, offset_micros: f64, headless: bool) -> Option<Findings> {
        self.watch?;
        let shown: Vec<(&FrameStamps, u32, u64)> = self
            .frames
            .values()
            .filter_map(|f| Some((f, f.region_luma?, if headless { f.decoded_micros } else { f.presented_micros }?)))
            .collect();
        let mut presses: Vec<InputStamps> = Vec::new();
        let mut before = 0;
        for input in self.inputs.values() {
            if input.held > before {
                presses.push(*input);
            }
            before = input.held;
        }
        let step = |a: u32, b: u32| f64::from(a.abs_diff(b)) / 256.0;
        let first_press = presses.first().map_or(u64::MAX, |p| p.read_micros);
        // The region's own changes in the half second before the first press (not since the
        // start: a program appearing on its display is one step, not noise).
        let quiet = first_press.saturating_sub(NOISE_WINDOW_MICROS)..first_press;
        let noise: Vec<f64> =
            shown.windows(2).filter(|w| quiet.contains(&w[1].2)).map(|w| step(w[0].1, w[1].1)).collect();
        let threshold = MIN_STEP.max(NOISE_MARGIN * Spread::of(&noise).p95);
        let changes: Vec<&FrameStamps> =
            shown.windows(2).filter(|w| step(w[0].1, w[1].1) > threshold).map(|w| w[1].0).collect();
        // When a press reached the host, on the host's clock: its acknowledgement's stamp, or
        // its sending moved by the clock offset.
        let arrival =
            |i: &InputStamps| i.host_received_micros.map_or(i.sent_micros as f64 + offset_micros, |h| h as f64);
        let arrivals: Vec<f64> = presses.iter().map(arrival).collect();
        for (k, press) in presses.iter_mut().enumerate() {
            let (from, to) = (arrivals[k], arrivals.get(k + 1).copied().unwrap_or(f64::INFINITY));
            press.frame =
                changes.iter().find(|f| (from..to).contains(&(f.capture_micros as f64))).map(|f| f.frame_number);
        }
        Some(Findings { presses, threshold, changes: changes.len() as u64 })
    }

    /// Inputs answered by a shown frame, and inputs missing (neither answered nor
    /// superseded), so far.
    pub fn progress(&self, headless: bool) -> (u64, u64) {
        let (mut answered, mut missing) = (0, 0);
        for (_, answer) in self.answers(0.0, headless).0 {
            match answer {
                Answer::Shown(_) => answered += 1,
                Answer::Missing => missing += 1,
                Answer::Superseded => {}
            }
        }
        (answered, missing)
    }

    /// The summary and the rows (one per input a shown frame answered), with host stamps
    /// moved to the client's clock by `offset_micros` (host minus client).
    pub fn summary(&self, offset_micros: f64, error_micros: f64, headless: bool) -> (LabSummary, Vec<InputRow>) {
        let (answers, found) = self.answers(offset_micros, headless);
        let measured = answers.len() as u64;
        let (mut rows, mut missing_inputs, mut missing, mut superseded) = (Vec::new(), Vec::new(), 0, 0);
        for (seq, answer) in answers {
            match answer {
                Answer::Shown(row) => rows.push(row),
                Answer::Missing => {
                    missing += 1;
                    if missing_inputs.len() < 100 {
                        missing_inputs.push(seq);
                    }
                }
                Answer::Superseded => superseded += 1,
            }
        }
        let watch = found.map(|found| {
            // The same presses answered by the host's marks, for the honesty check.
            let newest = self.newest_received();
            let by_marks: BTreeMap<u64, f64> = found
                .presses
                .iter()
                .filter_map(|p| {
                    let marked = self.inputs.get(&p.seq)?;
                    match self.answer(marked, newest, offset_micros, headless) {
                        Answer::Shown(row) if row.verified => Some((p.seq, row.total_ms)),
                        _ => None,
                    }
                })
                .collect();
            let gaps: Vec<f64> =
                rows.iter().filter_map(|r| by_marks.get(&r.seq).map(|m| (r.total_ms - m).abs())).collect();
            WatchSummary {
                region: self.watch.unwrap_or(Region { x: 0, y: 0, width: 0, height: 0 }),
                threshold_luma: round3(found.threshold),
                changes_seen: found.changes,
                disagreement_with_marks_ms: Spread::of(&gaps),
                compared_with_marks: gaps.len() as u64,
            }
        });
        let stage = |i: usize| Spread::of(&rows.iter().map(|r| r.stages_ms[i]).collect::<Vec<_>>());
        let shown: Vec<f64> = if headless {
            self.frames
                .values()
                .filter_map(|f| {
                    f.decoded_micros.map(|d| (d as f64 - (f.capture_micros as f64 - offset_micros)) / 1000.0)
                })
                .collect()
        } else {
            self.shown.iter().map(|&(c, p)| (p as f64 - (c as f64 - offset_micros)) / 1000.0).collect()
        };
        let marks: Vec<f64> = self
            .frames
            .values()
            .filter_map(|f| f.pixel_time_ms.map(|ms| time_mark_disagreement_ms(ms, f.capture_micros)))
            .collect();
        let summary = LabSummary {
            inputs: measured,
            responses_verified: rows.iter().filter(|r| r.verified).count() as u64,
            responses_missing: missing,
            missing_inputs,
            responses_unconfirmed: rows.iter().filter(|r| !r.verified).count() as u64,
            inputs_superseded: superseded,
            clock_offset_ms: round3(offset_micros / 1000.0),
            clock_offset_error_ms: round3(error_micros / 1000.0),
            input_to_present_ms: Spread::of(&rows.iter().map(|r| r.total_ms).collect::<Vec<_>>()),
            send_ms: stage(0),
            uplink_ms: stage(1),
            wait_capture_ms: stage(2),
            encode_ms: stage(3),
            downlink_ms: stage(4),
            decode_ms: stage(5),
            present_ms: stage(6),
            capture_to_present_ms: Spread::of(&shown),
            frames: self.frames.len() as u64,
            time_marks_read: marks.len() as u64,
            time_mark_max_disagreement_ms: round3(marks.iter().copied().fold(0.0, f64::max)),
            headless,
            watch,
        };
        (summary, rows)
    }
}

/// What the watch found: the presses (each with the picture that answered it, if any), the
/// threshold it learnt, and how many pictures changed.
struct Findings {
    presses: Vec<InputStamps>,
    threshold: f64,
    changes: u64,
}

/// What became of one input.
enum Answer {
    /// A shown frame answered it: its row.
    Shown(InputRow),
    /// No shown frame answered it (yet).
    Missing,
    /// A newer input that the host received replaced it before it got there.
    Superseded,
}

/// Whether a picture whose input marker reads `pixel` (low 32 bits of a sequence) shows
/// input `seq` or a newer one.
fn input_reached(pixel: u32, seq: u64) -> bool {
    // Compare in the 32-bit space, allowing for wrap-around.
    pixel.wrapping_sub(seq as u32) < (1 << 31)
}

/// How far the capture time read from a picture's pixels (ms, low 32 bits) is from the
/// header's stamp, ms.
pub fn time_mark_disagreement_ms(pixel_ms: u32, capture_micros: u64) -> f64 {
    let header_ms = (capture_micros / 1000) as u32;
    let d = pixel_ms.wrapping_sub(header_ms) as i32;
    f64::from(d.unsigned_abs())
}

/// `latency.csv`: a header line and one line per row.
pub fn csv(rows: &[InputRow]) -> String {
    let mut out = String::from(
        "seq,frame,read_us,sent_us,host_received_us,captured_us,encoded_us,received_us,decoded_us,presented_us",
    );
    for s in STAGES {
        write!(out, ",{s}_ms").ok();
    }
    out.push_str(",total_ms,verified\n");
    for r in rows {
        write!(
            out,
            "{},{},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0}",
            r.seq,
            r.frame_number,
            r.read_us,
            r.sent_us,
            r.host_received_us,
            r.captured_us,
            r.encoded_us,
            r.received_us,
            r.decoded_us,
            r.presented_us
        )
        .ok();
        for s in r.stages_ms {
            write!(out, ",{s:.3}").ok();
        }
        writeln!(out, ",{:.3},{}", r.total_ms, r.verified).ok();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session on one clock: input `k` read at 100 ms·k, frames every 16.667 ms.
    fn session(lab: &mut Lab, offset: u64) {
        for k in 1..=10u64 {
            let read = 1_000_000 + k * 100_000;
            lab.on_input_sent(k, read, read + 50);
            lab.on_input_acked(k, read + 300 + offset);
        }
        for f in 0..80u64 {
            let capture = 1_000_000 + f * 16_667;
            // The host applied every input read before this capture (minus the uplink).
            let input_seq = (1..=10u64).filter(|k| 1_000_000 + k * 100_000 + 300 <= capture).max().unwrap_or(0);
            let frame = FrameStamps {
                frame_number: f,
                capture_micros: capture + offset,
                encode_micros: 4_000,
                input_seq,
                received_micros: capture + 5_000,
                pixel_input: None,
                ..FrameStamps::default()
            };
            lab.on_frame_received(frame);
            let ms = ((capture + offset) / 1000) as u32;
            lab.on_decoded(f, capture + 7_000, Some(input_seq as u32), Some(ms));
            lab.on_presented(f, capture + 20_000);
        }
    }

    /// A watched session: a press every 200 ms (released 100 ms later), frames every 16.667
    /// ms whose region is dark with a little noise, and bright on the first frame captured
    /// `draw_delay` after the host received a press (the program's own time to draw), dark
    /// again on the next.
    fn watched_session(lab: &mut Lab, offset: u64, draw_delay: u64) {
        let press_at = |k: u64| 1_000_000 + k * 200_000;
        for k in 1..=10u64 {
            for (i, (at, held)) in [(press_at(k), 1), (press_at(k) + 100_000, 0)].into_iter().enumerate() {
                let seq = 2 * k - 1 + i as u64;
                lab.on_input_sent_holding(seq, at, at + 50, held);
                lab.on_input_acked(seq, at + 300 + offset);
            }
        }
        let mut lit = 0u64;
        for f in 0..170u64 {
            let capture = 500_000 + f * 16_667;
            let input_seq = (1..=20u64)
                .filter(|&s| press_at(s.div_ceil(2)) + if s % 2 == 0 { 100_000 } else { 0 } + 300 <= capture)
                .max()
                .unwrap_or(0);
            let due = (1..=10u64).filter(|&k| press_at(k) + 300 + draw_delay <= capture).max().unwrap_or(0);
            let bright = due > lit;
            lit = due;
            let noise = (f * 7919 % 5) as u32 * 40; // under a sixth of a luma level
            let frame = FrameStamps {
                frame_number: f,
                capture_micros: capture + offset,
                encode_micros: 4_000,
                input_seq,
                received_micros: capture + 5_000,
                ..FrameStamps::default()
            };
            lab.on_frame_received(frame);
            lab.on_decoded(f, capture + 7_000, Some(input_seq as u32), None);
            lab.frames.get_mut(&f).unwrap().region_luma = Some(if bright { 200 * 256 } else { 50 * 256 } + noise);
            lab.on_presented(f, capture + 20_000);
        }
    }

    #[test]
    fn watching_a_region_times_each_press_by_the_picture_alone() {
        let region = Region::parse("100, 80, 32,16").unwrap();
        assert_eq!(region, Region { x: 100, y: 80, width: 32, height: 16 });
        for bad in ["1,2,3", "1,2,3,0", "a,b,c,d", "1,2,3,4,5"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        // The program draws at once (the synthetic host's flash): the same frame as the marks.
        let mut lab = Lab::watching(region);
        watched_session(&mut lab, 3_600_000_000, 0);
        let (summary, rows) = lab.summary(3_600_000_000.0, 100.0, false);
        let watch = summary.watch.clone().unwrap();
        assert_eq!(summary.inputs, 10, "presses only: {summary:?}");
        assert_eq!((summary.responses_verified, summary.responses_missing), (10, 0), "{summary:?}");
        assert_eq!(watch.threshold_luma, MIN_STEP, "the noise is under a luma level");
        assert_eq!(watch.compared_with_marks, 10);
        assert_eq!(watch.disagreement_with_marks_ms.max, 0.0, "{watch:?}");
        assert!(rows.iter().all(|r| r.total_ms > 20.0 && r.total_ms < 40.0), "{rows:?}");
        // A program that takes 30 ms to draw: the watch sees it, the marks cannot.
        let mut lab = Lab::watching(region);
        watched_session(&mut lab, 0, 30_000);
        let (summary, rows) = lab.summary(0.0, 100.0, false);
        let watch = summary.watch.unwrap();
        assert_eq!(summary.responses_verified, 10);
        assert!(watch.disagreement_with_marks_ms.p50 >= 16.0, "{watch:?}");
        assert!(rows.iter().all(|r| r.total_ms > 50.0 && r.total_ms < 70.0), "{rows:?}");
        // A region that never changes answers nothing.
        let mut lab = Lab::watching(region);
        watched_session(&mut lab, 0, 10_000_000);
        let (summary, _) = lab.summary(0.0, 100.0, false);
        assert_eq!((summary.responses_verified, summary.responses_missing), (0, 10));
    }

    #[test]
    fn the_mean_luma_of_a_region_is_read_from_the_plane() {
        let (w, h, stride) = (64usize, 32usize, 80usize);
        let mut plane = vec![16u8; stride * h];
        for row in 8..12 {
            plane[row * stride + 10..row * stride + 20].fill(235);
        }
        let inside = Region { x: 10, y: 8, width: 10, height: 4 };
        assert_eq!(inside.mean_luma(&plane, stride, w, h), Some(235 * 256));
        let half = Region { x: 10, y: 8, width: 10, height: 8 };
        assert_eq!(half.mean_luma(&plane, stride, w, h), Some((235 + 16) * 128));
        assert_eq!(Region { x: 60, y: 0, width: 8, height: 4 }.mean_luma(&plane, stride, w, h), None, "past the edge");
        assert_eq!(inside.mean_luma(&plane[..100], stride, w, h), None, "a short plane");
    }

    #[test]
    fn stages_add_up_to_the_total_and_the_offset_cancels() {
        for offset in [0u64, 3_600_000_000] {
            let mut lab = Lab::new();
            session(&mut lab, offset);
            let (summary, rows) = lab.summary(offset as f64, 100.0, false);
            assert_eq!(summary.inputs, 10);
            assert_eq!(summary.responses_verified, 10, "{summary:?}");
            assert_eq!(summary.responses_missing, 0);
            for r in &rows {
                let sum: f64 = r.stages_ms.iter().sum();
                assert!((sum - r.total_ms).abs() < 1e-6, "{r:?}");
                // Uplink 0.25 ms, encode 4, downlink 1, decode 2, present 13.
                assert!((r.stages_ms[1] - 0.25).abs() < 1e-6 && (r.stages_ms[3] - 4.0).abs() < 1e-6, "{r:?}");
                assert!(r.stages_ms[2] >= 0.0 && r.stages_ms[2] < 16.7, "waits at most a frame: {r:?}");
            }
            assert!(summary.time_mark_max_disagreement_ms <= 1.0);
            assert_eq!(summary.capture_to_present_ms.p50, 20.0);
        }
    }

    #[test]
    fn an_unanswered_input_is_missing_and_a_wrong_picture_unconfirmed() {
        let mut lab = Lab::new();
        lab.on_input_sent(1, 1_000, 1_010);
        lab.on_input_acked(1, 1_200);
        lab.on_input_sent(2, 50_000, 50_010);
        lab.on_input_acked(2, 50_200);
        lab.on_frame_received(FrameStamps {
            frame_number: 7,
            capture_micros: 10_000,
            input_seq: 1,
            received_micros: 20_000,
            ..FrameStamps::default()
        });
        // The picture's pixels say input 0: the header's claim is not confirmed.
        lab.on_decoded(7, 22_000, Some(0), None);
        let (summary, rows) = lab.summary(0.0, 0.0, true);
        assert_eq!((summary.responses_missing, summary.responses_verified, summary.responses_unconfirmed), (1, 0, 1));
        assert_eq!(summary.inputs_superseded, 0);
        assert_eq!(summary.missing_inputs, vec![2]);
        assert_eq!(rows.len(), 1);
        assert!(csv(&rows).lines().nth(1).unwrap().ends_with(",false"));
    }

    #[test]
    fn a_response_whose_frame_was_never_shown_is_credited_to_the_next_shown_frame() {
        let mut lab = Lab::new();
        lab.on_input_sent(1, 1_000, 1_010);
        lab.on_input_acked(1, 1_200);
        for f in 0..3u64 {
            let capture = 10_000 + f * 16_667;
            lab.on_frame_received(FrameStamps {
                frame_number: f,
                capture_micros: capture,
                input_seq: 1,
                received_micros: capture + 2_000,
                ..FrameStamps::default()
            });
            lab.on_decoded(f, capture + 4_000, Some(1), None);
        }
        // Frame 0 was replaced in the slot before the display took it; frame 1 was shown.
        lab.on_presented(1, 50_000);
        let (summary, rows) = lab.summary(0.0, 0.0, false);
        assert_eq!(summary.responses_missing, 0);
        assert_eq!(rows[0].frame_number, 1);
        assert_eq!(rows[0].presented_us, 50_000.0);
    }

    #[test]
    fn an_input_replaced_before_it_reached_the_host_is_superseded_not_missing() {
        let mut lab = Lab::new();
        // Inputs 1 and 2 made during a blackout; only 2's state got through afterwards.
        lab.on_input_sent(1, 1_000, 1_010);
        lab.on_input_sent(2, 2_000, 2_010);
        lab.on_input_acked(2, 900_000);
        lab.on_frame_received(FrameStamps {
            frame_number: 9,
            capture_micros: 905_000,
            input_seq: 2,
            received_micros: 910_000,
            ..FrameStamps::default()
        });
        lab.on_decoded(9, 912_000, Some(2), None);
        let (summary, rows) = lab.summary(0.0, 0.0, true);
        assert_eq!((summary.inputs_superseded, summary.responses_missing, summary.responses_verified), (1, 0, 1));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].seq, 2);
    }

    #[test]
    fn a_reconnected_session_numbering_frames_from_zero_again_does_not_answer_old_inputs() {
        use crate::stats::{Decoded, FrameReceived};
        let mut lab = Lab::new();
        let frame = |lab: &mut Lab, number: u64, input_seq: u64, at: u64| {
            lab.on_event(&Event::Received(FrameReceived {
                frame_number: number,
                bytes: 1000,
                encode_micros: 1000,
                capture_micros: at,
                input_seq,
                held_back: 0,
                received_micros: at + 2_000,
                ..FrameReceived::default()
            }));
            lab.on_event(&Event::Decoded(Decoded {
                frame_number: number,
                decoded_micros: at + 3_000,
                pixel_input: Some(input_seq as u32),
                ..Decoded::default()
            }));
        };
        // Input 1 reaches the host just before the path goes dark; frames 0..=4 are shown, the
        // frames answering input 1 (5 and on) are lost in the dark.
        for f in 0..5 {
            frame(&mut lab, f, 0, 10_000 + f * 16_667);
        }
        lab.on_input_sent(1, 90_000, 90_010);
        lab.on_input_acked(1, 90_100);
        // A new connection: frames from 0 again, the first one answering input 1.
        lab.on_event(&Event::Reconnected { outage_micros: 2_000_000 });
        frame(&mut lab, 0, 1, 3_000_000);
        frame(&mut lab, 1, 1, 3_016_667);
        let (summary, rows) = lab.summary(0.0, 0.0, true);
        assert_eq!((summary.responses_verified, summary.responses_missing), (1, 0), "{summary:?}");
        assert!(rows[0].captured_us >= 3_000_000.0, "answered by the new connection's frame: {:?}", rows[0]);
    }

    #[test]
    fn marker_comparisons_wrap() {
        assert!(input_reached(5, 5) && input_reached(6, 5) && !input_reached(4, 5));
        assert!(input_reached(1, u64::from(u32::MAX)), "wrapped past 2^32");
        assert_eq!(time_mark_disagreement_ms(10, 12_000), 2.0);
        assert_eq!(time_mark_disagreement_ms(u32::MAX, 1_000), 2.0);
    }
}

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

use crate::core::stats::{Event, FrameReceived};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

/// Frames remembered for pairing (about 10 s at 60 fps); older ones are forgotten.
const MAX_FRAMES: usize = 600;
/// Inputs remembered (a measurement asks for a few hundred).
const MAX_INPUTS: usize = 100_000;

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
}

/// One input. Client stamps on the client's clock, the host's receive stamp on the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputStamps {
    seq: u64,
    read_micros: u64,
    sent_micros: u64,
    host_received_micros: Option<u64>,
    frame: Option<u64>,
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
}

impl Lab {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes what it needs from a session event.
    pub fn on_event(&mut self, event: &Event) {
        match *event {
            Event::InputSent { seq, read_micros, sent_micros } => self.on_input_sent(seq, read_micros, sent_micros),
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
                self.on_decoded(self.frame_base + d.frame_number, d.decoded_micros, d.pixel_input, d.pixel_time_ms);
            }
            Event::Presented(p) => self.on_presented(self.frame_base + p.frame_number, p.presented_micros),
            _ => {}
        }
    }

    /// The newest `n` inputs' rows (for the overlay's latency page), oldest first; only the
    /// newest inputs are looked at.
    pub fn recent(&self, n: usize, offset_micros: f64, headless: bool) -> Vec<InputRow> {
        let newest = self.newest_received();
        let mut rows: Vec<InputRow> = self
            .inputs
            .values()
            .rev()
            .filter_map(|i| match self.answer(i, newest, offset_micros, headless) {
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
        if self.inputs.len() >= MAX_INPUTS || self.inputs.contains_key(&seq) {
            return;
        }
        self.inputs.insert(seq, InputStamps { seq, read_micros, sent_micros, host_received_micros: None, frame: None });
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
        while self.frames.len() > MAX_FRAMES {
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
            verified: frame.pixel_input.is_some_and(|p| input_reached(p, input.seq)),
        })
    }

    /// Inputs answered by a shown frame, and inputs missing (neither answered nor
    /// superseded), so far.
    pub fn progress(&self, headless: bool) -> (u64, u64) {
        let newest = self.newest_received();
        let (mut answered, mut missing) = (0, 0);
        for input in self.inputs.values() {
            match self.answer(input, newest, 0.0, headless) {
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
        let newest = self.newest_received();
        let (mut rows, mut missing_inputs, mut missing, mut superseded) = (Vec::new(), Vec::new(), 0, 0);
        for input in self.inputs.values() {
            match self.answer(input, newest, offset_micros, headless) {
                Answer::Shown(row) => rows.push(row),
                Answer::Missing => {
                    missing += 1;
                    if missing_inputs.len() < 100 {
                        missing_inputs.push(input.seq);
                    }
                }
                Answer::Superseded => superseded += 1,
            }
        }
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
            inputs: self.inputs.len() as u64,
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
        };
        (summary, rows)
    }
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
        use crate::core::stats::{Decoded, FrameReceived};
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

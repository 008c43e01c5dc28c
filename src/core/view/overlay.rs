//! The performance overlay's model: every figure it shows, as plain data.
//!
//! Owns what the overlay says, not how it looks: the window builds an [`OverlayModel`] from
//! the last second's [`Summary`] and the recent frame times, and a pure egui function draws
//! it. The lines follow Moonlight's performance overlay, plus a per-stage latency breakdown
//! and a frame-time history so a stall is visible at a glance.

use crate::stats::Summary;
use std::time::Duration;

/// Present-to-present intervals kept for the graph: about 5 s at 60 fps.
pub const FRAME_TIMES: usize = 300;

/// A fixed ring of recent frame intervals in milliseconds (no allocation after creation).
#[derive(Debug, Clone)]
pub struct FrameTimes {
    ring: Vec<f32>,
    next: usize,
    len: usize,
    last: Option<Duration>,
}

impl Default for FrameTimes {
    fn default() -> Self {
        Self { ring: vec![0.0; FRAME_TIMES], next: 0, len: 0, last: None }
    }
}

impl FrameTimes {
    /// Records a picture presented at `now`.
    pub fn on_present(&mut self, now: Duration) {
        if let Some(last) = self.last {
            self.push(now.saturating_sub(last).as_secs_f32() * 1000.0);
        }
        self.last = Some(now);
    }

    fn push(&mut self, ms: f32) {
        self.ring[self.next] = ms;
        self.next = (self.next + 1) % self.ring.len();
        self.len = (self.len + 1).min(self.ring.len());
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        let start = (self.next + self.ring.len() - self.len) % self.ring.len();
        (0..self.len).map(move |i| self.ring[(start + i) % self.ring.len()])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One stage of the capture→present path and its median time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub name: &'static str,
    pub ms: f64,
}

/// Everything the overlay shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverlayModel {
    pub host: String,
    pub width: u16,
    pub height: u16,
    pub fps: u16,
    /// The size the host encodes at when the path made it lower than `width`×`height`.
    pub path_limited: Option<(u16, u16)>,
    pub codec: &'static str,
    pub color: String,
    pub present_mode: String,
    pub bitrate_mbps: f64,
    pub incoming_fps: f64,
    pub decode_fps: f64,
    pub render_fps: f64,
    pub host_latency_min_ms: f64,
    pub host_latency_max_ms: f64,
    pub host_latency_avg_ms: f64,
    pub dropped_network_pct: f64,
    /// Frames completed from the host's parity (forward error correction), of those received.
    pub fec_pct: f64,
    pub dropped_pacing_pct: f64,
    pub rtt_ms: f64,
    pub rtt_variance_ms: f64,
    pub decode_ms: f64,
    pub queue_ms: f64,
    pub render_ms: f64,
    pub capture_to_present_ms: f64,
    /// Host encode → network → queue → decode → upload/present, medians.
    pub stages: Vec<Stage>,
    /// Recent present-to-present intervals, oldest first.
    pub frame_times_ms: Vec<f32>,
    /// The frame interval the stream's rate implies.
    pub target_frame_ms: f32,
    /// The audio line, when the session plays sound.
    pub audio: Option<AudioLine>,
    /// The microphone's state ("on", "muted", "push-to-talk: hold Ctrl+Alt+V"), when the
    /// session sends one.
    pub mic: Option<String>,
    /// Clock sync: host clock minus client clock and its error bound, ms (none before the
    /// first probe).
    pub clock: Option<(f64, f64)>,
    /// The latency lab's page: the newest inputs (sequence, stage times in `lab::STAGES`
    /// order and total, ms); empty outside `kumo latency`.
    pub recent_inputs: Vec<(u64, [f64; 7], f64)>,
}

/// The overlay's audio figures: buffer depth and A/V offset over the interval (medians),
/// concealed packets and underruns over the session.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AudioLine {
    pub buffer_ms: f64,
    pub av_offset_ms: f64,
    pub concealed: u64,
    pub underruns: u64,
}

/// Describes what the stream is, independent of its figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamInfo {
    pub color: String,
    pub present_mode: String,
}

impl OverlayModel {
    /// The model for one reporting interval (`last`, usually the last second) and the frame
    /// times so far.
    pub fn new(last: &Summary, info: &StreamInfo, times: &FrameTimes) -> Self {
        let pct = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
        let sent = last.frames_decoded + last.frames_dropped;
        let shown = last.frames_presented + last.frames_dropped_pacing;
        let encode = last.host_encode_ms.p50;
        let queue = last.queue_ms.p50;
        let decode = last.decode_ms.p50;
        let network = (last.capture_to_decoded_ms.p50 - encode - queue - decode).max(0.0);
        let present = (last.capture_to_present_ms.p50 - last.capture_to_decoded_ms.p50).max(0.0);
        Self {
            host: last.host.clone(),
            width: last.width,
            height: last.height,
            fps: last.fps,
            path_limited: {
                let encoded = (last.encoded_width, last.encoded_height);
                (encoded.0 > 0 && encoded != (last.width, last.height)).then_some(encoded)
            },
            codec: "H.264",
            color: info.color.clone(),
            present_mode: info.present_mode.clone(),
            bitrate_mbps: last.bitrate_kbps / 1000.0,
            incoming_fps: last.received_fps,
            decode_fps: last.decoded_fps,
            render_fps: last.presented_fps,
            host_latency_min_ms: last.host_processing_ms.min,
            host_latency_max_ms: last.host_processing_ms.max,
            host_latency_avg_ms: last.host_processing_ms.avg,
            dropped_network_pct: pct(last.frames_dropped_network + last.frames_dropped_undecodable, sent),
            fec_pct: pct(last.frames_repaired_fec, last.frames_received),
            dropped_pacing_pct: pct(last.frames_dropped_pacing, shown),
            rtt_ms: last.rtt_ms.p50,
            rtt_variance_ms: last.rtt_stddev_ms,
            decode_ms: decode,
            queue_ms: queue,
            render_ms: last.render_ms.p50,
            capture_to_present_ms: last.capture_to_present_ms.p50,
            stages: vec![
                Stage { name: "host encode", ms: encode },
                Stage { name: "network", ms: network },
                Stage { name: "queue", ms: queue },
                Stage { name: "decode", ms: decode },
                Stage { name: "upload/present", ms: present },
            ],
            frame_times_ms: times.iter().collect(),
            target_frame_ms: if last.fps == 0 { 0.0 } else { 1000.0 / f32::from(last.fps) },
            audio: (last.audio_packets_received > 0).then_some(AudioLine {
                buffer_ms: last.audio_buffer_ms.p50,
                av_offset_ms: last.av_offset_ms.p50,
                concealed: last.audio_packets_concealed,
                underruns: last.audio_underruns,
            }),
            // The window knows the microphone, not the figures: it fills this in.
            mic: None,
            recent_inputs: Vec::new(),
            clock: (last.clock_offset_error_ms > 0.0).then_some((last.clock_offset_ms, last.clock_offset_error_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Decoded, Event, MarkerCheck, Presented, Stats};
    use std::time::Duration;

    #[test]
    fn frame_times_ring_keeps_the_newest() {
        let mut t = FrameTimes::default();
        assert!(t.is_empty());
        for i in 0..(FRAME_TIMES as u64 + 11) {
            t.on_present(Duration::from_millis(i * 16 + if i == FRAME_TIMES as u64 + 5 { 100 } else { 0 }));
        }
        assert_eq!(t.len(), FRAME_TIMES);
        let v: Vec<f32> = t.iter().collect();
        assert_eq!(v.len(), FRAME_TIMES);
        // The stall (100 ms late, then 100 ms early) is near the end, in order.
        let spike = v.iter().position(|&ms| ms > 100.0).unwrap();
        assert_eq!(spike, FRAME_TIMES - 6);
        assert!((v[FRAME_TIMES - 1] - 16.0).abs() < 0.01);
    }

    #[test]
    fn a_picture_smaller_than_the_session_shows_as_path_limited() {
        let model = |width, height| {
            let mut s = Stats::new(0);
            s.apply(Event::Stream { width: 1280, height: 720, fps: 60, bitrate_kbps: 10_000, host_name: "h".into() });
            s.apply(Event::Received(crate::stats::FrameReceived { width, height, ..Default::default() }));
            OverlayModel::new(&s.summary(Duration::from_secs(1)), &StreamInfo::default(), &FrameTimes::default())
        };
        assert_eq!(model(640, 360).path_limited, Some((640, 360)));
        assert_eq!(model(1280, 720).path_limited, None);
    }

    #[test]
    fn model_takes_figures_from_the_summary() {
        let mut s = Stats::new(0);
        s.apply(Event::Stream { width: 1280, height: 720, fps: 60, bitrate_kbps: 10_000, host_name: "h".into() });
        for n in 0..60u64 {
            let capture = n * 16_667;
            s.apply(Event::Received(crate::stats::FrameReceived {
                frame_number: n,
                bytes: 20_000,
                encode_micros: 4_000 + (n % 3) as u32 * 1000,
                ..Default::default()
            }));
            s.apply(Event::Decoded(Decoded {
                frame_number: n,
                capture_micros: capture,
                decoded_micros: capture + 10_000,
                queue_micros: 500,
                decode_micros: 2_000,
                marker: MarkerCheck::Match,
                ..Decoded::default()
            }));
            if n % 10 == 0 {
                s.apply(Event::PacingDropped { count: 1 });
            } else {
                s.apply(Event::Presented(Presented {
                    frame_number: n,
                    capture_micros: capture,
                    decoded_micros: capture + 10_000,
                    presented_micros: capture + 14_000,
                    render_micros: 1_500,
                }));
            }
        }
        s.apply(Event::Dropped { reason: crate::video::sequence::DropReason::Network, count: 3 });
        for _ in 0..6 {
            s.apply(Event::FecRepaired { shards: 4 });
        }
        s.apply(Event::Rtt { rtt_micros: 1_000 });
        s.apply(Event::Rtt { rtt_micros: 3_000 });
        let sum = s.summary(Duration::from_secs(1));
        let mut times = FrameTimes::default();
        times.on_present(Duration::ZERO);
        times.on_present(Duration::from_millis(17));
        let info = StreamInfo { color: "bt601-limited".into(), present_mode: "Mailbox".into() };
        let m = OverlayModel::new(&sum, &info, &times);
        assert_eq!((m.width, m.height, m.fps), (1280, 720, 60));
        assert_eq!(m.incoming_fps, 60.0);
        assert_eq!(m.render_fps, 54.0);
        assert!((m.dropped_pacing_pct - 10.0).abs() < 1e-9);
        assert!((m.dropped_network_pct - 300.0 / 63.0).abs() < 1e-9);
        assert!((m.fec_pct - 10.0).abs() < 1e-9, "6 of 60 frames completed from parity");
        assert!((m.host_latency_min_ms - 4.0).abs() < 0.05 && (m.host_latency_max_ms - 6.0).abs() < 0.07);
        assert_eq!(m.rtt_variance_ms, 1.0);
        assert!((m.bitrate_mbps - 9.6).abs() < 1e-9);
        let names: Vec<_> = m.stages.iter().map(|s| s.name).collect();
        assert_eq!(names, ["host encode", "network", "queue", "decode", "upload/present"]);
        // 10 ms capture→decoded = 5 encode + 0.5 queue + 2 decode + 2.5 network (medians).
        assert!((m.stages[1].ms - 2.5).abs() < 0.1, "{:?}", m.stages);
        assert!((m.stages[4].ms - 4.0).abs() < 0.1, "{:?}", m.stages);
        assert_eq!(m.frame_times_ms, vec![17.0]);
        assert!((m.target_frame_ms - 16.667).abs() < 0.01);
    }
}

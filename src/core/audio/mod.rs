//! The audio path's pure parts: the format agreed in the handshake, the audio
//! datagram, speaker layouts and remixing, the sample ring the device callback reads, and the
//! drift-correcting resampler.
//!
//! - **Packets.** Opus at 48 kHz in 5 ms packets (240 frames): the shortest packet Opus's
//!   low-delay (CELT) mode codes well, so the host holds a sample at most 5 ms before sending
//!   it, and a lost datagram costs 5 ms of concealment. Each packet is one QUIC datagram.
//! - **Layouts.** Stereo, 5.1 and 7.1 in the wire order FL FR FC LFE RL RR SL SR, coded as
//!   coupled stereo pairs (FL+FR, FC+LFE, RL+RR, SL+SR), one Opus stream each: the same split
//!   Opus multistream makes, done here so the safe `opus` bindings suffice.
//! - **Redundancy.** When the host enables it, each datagram also carries the previous
//!   packet's Opus frames (as RFC 2198 does for RTP), so one lost datagram is repaired from
//!   the next instead of concealed. Opus's own in-band FEC only exists in its SILK modes, which
//!   low-delay mode does not use.
//! - **The ring.** A single-producer single-consumer ring of `f32` samples stored as atomic
//!   bits: the device callback reads it without a lock or an allocation, and the audio thread
//!   writes it.

pub mod jitter;
pub mod sound;
pub mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Samples per second per channel, everywhere in kumo's audio path.
pub const RATE: u32 = 48_000;
/// Frames (samples per channel) in one packet: 5 ms.
pub const PACKET_FRAMES: u16 = 240;
/// Most channels a stream carries (7.1).
pub const MAX_CHANNELS: u8 = 8;

/// A speaker layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerLayout {
    Stereo,
    Surround51,
    Surround71,
}

impl SpeakerLayout {
    /// The largest layout with at most `channels` speakers; stereo for fewer than two (a mono
    /// device gets stereo, downmixed).
    pub fn fitting(channels: u16) -> Self {
        match channels {
            8.. => Self::Surround71,
            6 | 7 => Self::Surround51,
            _ => Self::Stereo,
        }
    }

    pub fn from_channels(channels: u8) -> Option<Self> {
        match channels {
            2 => Some(Self::Stereo),
            6 => Some(Self::Surround51),
            8 => Some(Self::Surround71),
            _ => None,
        }
    }

    pub fn channels(self) -> u8 {
        match self {
            Self::Stereo => 2,
            Self::Surround51 => 6,
            Self::Surround71 => 8,
        }
    }

    /// Opus streams (coupled stereo pairs) carrying this layout.
    pub fn streams(self) -> usize {
        usize::from(self.channels()) / 2
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Stereo => "stereo",
            Self::Surround51 => "5.1",
            Self::Surround71 => "7.1",
        }
    }
}

/// The audio stream the host agreed to send (in `Welcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub layout: SpeakerLayout,
    /// Frames per packet (240: 5 ms).
    pub packet_frames: u16,
    /// Opus bitrate of the whole stream.
    pub bitrate_kbps: u16,
    /// Whether each datagram repeats the previous packet.
    pub redundancy: bool,
}

impl AudioFormat {
    pub fn packet_duration(&self) -> std::time::Duration {
        std::time::Duration::from_micros(u64::from(self.packet_frames) * 1_000_000 / u64::from(RATE))
    }
}

/// Mixes interleaved `input` of `from` channels (wire order FL FR FC LFE RL RR SL SR) into
/// `out` of `to` channels, frame by frame, for as many frames as both hold. Surround to stereo
/// uses the ITU-R BS.775 downmix (centre and surrounds at -3 dB, LFE dropped), scaled so a
/// full-scale mix cannot clip; 7.1 to 5.1 folds the sides into the rears; stereo into surround
/// fills the front pair and silences the rest; to mono averages the front pair.
pub fn remix(input: &[f32], from: usize, out: &mut [f32], to: usize) {
    const M3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;
    if from == 0 || to == 0 {
        return;
    }
    for (src, dst) in input.chunks_exact(from).zip(out.chunks_exact_mut(to)) {
        if from == to {
            dst.copy_from_slice(src);
        } else if to == 1 {
            dst[0] = (src[0] + src.get(1).copied().unwrap_or(src[0])) * 0.5;
        } else if to == 2 && from > 2 {
            let at = |i: usize| src.get(i).copied().unwrap_or(0.0);
            let (mut l, mut r) = (src[0] + M3DB * at(2), src[1] + M3DB * at(2));
            let mut gain = 1.0 + M3DB;
            for (sl, sr) in [(4, 5), (6, 7)] {
                if from > sl {
                    l += M3DB * at(sl);
                    r += M3DB * at(sr);
                    gain += M3DB;
                }
            }
            dst[0] = l / gain;
            dst[1] = r / gain;
        } else if from == 8 && to == 6 {
            // 7.1 to 5.1: the side pair folds into the rears.
            dst[..4].copy_from_slice(&src[..4]);
            dst[4] = (src[4] + M3DB * src[6]) / (1.0 + M3DB);
            dst[5] = (src[5] + M3DB * src[7]) / (1.0 + M3DB);
        } else {
            let n = from.min(to);
            dst[..n].copy_from_slice(&src[..n]);
            dst[n..].fill(0.0);
        }
    }
}

/// Where each wire channel (FL FR FC LFE RL RR SL SR) goes in ALSA's channel order for the
/// same count (FL FR RL RR FC LFE SL SR): the order Linux devices take interleaved samples in.
pub fn alsa_order(channels: usize) -> &'static [usize] {
    match channels {
        6 => &[0, 1, 4, 5, 2, 3],
        8 => &[0, 1, 4, 5, 2, 3, 6, 7],
        _ => &[0, 1, 2, 3, 4, 5, 6, 7][..channels.min(8)],
    }
}

/// Linear-interpolating resampler for small ratios near 1.0 (clock-drift correction). It
/// keeps its phase and the last frame between calls, so chunk boundaries are seamless.
#[derive(Debug, Clone)]
pub struct Resampler {
    channels: usize,
    last: Vec<f32>,
    /// Position of the next output frame, in input frames, counted from `last` (0.0 = `last`).
    phase: f64,
    primed: bool,
}

impl Resampler {
    pub fn new(channels: usize) -> Self {
        Self { channels: channels.max(1), last: vec![0.0; channels.max(1)], phase: 0.0, primed: false }
    }

    /// Appends `input` (interleaved) resampled by `ratio` to `out`: `ratio` input frames are
    /// consumed per output frame, so above 1.0 the audio is played slightly faster (fewer
    /// frames out), below 1.0 slightly slower. Ratios are clamped to 0.9..=1.1.
    pub fn process(&mut self, input: &[f32], ratio: f64, out: &mut Vec<f32>) {
        let ch = self.channels;
        let n = input.len() / ch;
        if n == 0 {
            return;
        }
        if !self.primed {
            self.last.copy_from_slice(&input[..ch]);
            self.primed = true;
        }
        let ratio = ratio.clamp(0.9, 1.1);
        // Frame i of the virtual stream [last, input...].
        let frame = |i: usize| if i == 0 { &self.last[..] } else { &input[(i - 1) * ch..i * ch] };
        let mut t = self.phase;
        while t < n as f64 {
            let i = t as usize;
            let frac = (t - i as f64) as f32;
            let (a, b) = (frame(i), frame(i + 1));
            out.extend(a.iter().zip(b).map(|(x, y)| x + (y - x) * frac));
            t += ratio;
        }
        self.phase = t - n as f64;
        self.last.copy_from_slice(&input[(n - 1) * ch..n * ch]);
    }
}

/// The shared state of a [`ring`].
#[derive(Debug)]
struct Ring {
    slots: Box<[AtomicU32]>,
    /// Samples written and read since the start (never wrap in practice: 2^64 samples).
    written: AtomicUsize,
    read: AtomicUsize,
}

/// A lock-free single-producer single-consumer ring of `f32` samples with room for
/// `capacity` samples, allocated once here.
pub fn ring(capacity: usize) -> (RingWriter, RingReader) {
    let ring = Arc::new(Ring {
        slots: (0..capacity.max(1)).map(|_| AtomicU32::new(0)).collect(),
        written: AtomicUsize::new(0),
        read: AtomicUsize::new(0),
    });
    (RingWriter(ring.clone()), RingReader(ring))
}

/// The audio thread's end of the ring.
#[derive(Debug)]
pub struct RingWriter(Arc<Ring>);

/// The device callback's end of the ring: `pop` neither allocates, locks nor blocks.
#[derive(Debug)]
pub struct RingReader(Arc<Ring>);

impl Ring {
    fn len(&self) -> usize {
        self.written.load(Ordering::Acquire).wrapping_sub(self.read.load(Ordering::Acquire))
    }
}

impl RingWriter {
    /// Writes as many of `samples` as fit; returns how many.
    pub fn push(&self, samples: &[f32]) -> usize {
        let ring = &self.0;
        let cap = ring.slots.len();
        let written = ring.written.load(Ordering::Relaxed);
        let free = cap - written.wrapping_sub(ring.read.load(Ordering::Acquire));
        let n = samples.len().min(free);
        for (i, s) in samples[..n].iter().enumerate() {
            ring.slots[(written + i) % cap].store(s.to_bits(), Ordering::Relaxed);
        }
        ring.written.store(written.wrapping_add(n), Ordering::Release);
        n
    }

    /// Samples waiting to be played.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.0.slots.len()
    }
}

impl RingReader {
    /// Fills `out` from the ring; returns how many samples were there (the rest of `out` is
    /// left as it was).
    pub fn pop(&self, out: &mut [f32]) -> usize {
        let ring = &self.0;
        let cap = ring.slots.len();
        let read = ring.read.load(Ordering::Relaxed);
        let available = ring.written.load(Ordering::Acquire).wrapping_sub(read);
        let n = out.len().min(available);
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = f32::from_bits(ring.slots[(read + i) % cap].load(Ordering::Relaxed));
        }
        ring.read.store(read.wrapping_add(n), Ordering::Release);
        n
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_fit_the_device() {
        assert_eq!(SpeakerLayout::fitting(1), SpeakerLayout::Stereo);
        assert_eq!(SpeakerLayout::fitting(2), SpeakerLayout::Stereo);
        assert_eq!(SpeakerLayout::fitting(6), SpeakerLayout::Surround51);
        assert_eq!(SpeakerLayout::fitting(8), SpeakerLayout::Surround71);
        assert_eq!(SpeakerLayout::fitting(32), SpeakerLayout::Surround71);
        assert_eq!(SpeakerLayout::Surround51.streams(), 3);
    }

    #[test]
    fn remix_keeps_levels_sensible() {
        // 5.1 with only the centre speaking reaches both stereo sides equally, attenuated.
        let centre = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let mut out = [0.0; 2];
        remix(&centre, 6, &mut out, 2);
        assert!(out[0] > 0.2 && (out[0] - out[1]).abs() < 1e-6, "{out:?}");
        // Full scale everywhere cannot clip.
        let loud = [1.0; 8];
        remix(&loud, 8, &mut out, 2);
        assert!(out[0] <= 1.0 + 1e-6, "{out:?}");
        // Stereo into 5.1: the front pair, the rest silent.
        let mut wide = [9.0; 6];
        remix(&[0.25, -0.5], 2, &mut wide, 6);
        assert_eq!(wide, [0.25, -0.5, 0.0, 0.0, 0.0, 0.0]);
        // 7.1 into 5.1: the side pair reaches the rears, the rest stays where it was.
        let mut five = [0.0; 6];
        remix(&[0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 1.0, -1.0], 8, &mut five, 6);
        assert_eq!(&five[..4], &[0.1, 0.2, 0.3, 0.4]);
        assert!(five[4] > 0.3 && five[5] < -0.3, "{five:?}");
        let mut mono = [0.0; 1];
        remix(&[0.5, 0.25], 2, &mut mono, 1);
        assert_eq!(mono, [0.375]);
    }

    #[test]
    fn alsa_order_is_a_permutation() {
        for n in [2, 6, 8] {
            let mut order = alsa_order(n).to_vec();
            order.sort_unstable();
            assert_eq!(order, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn resampler_changes_length_by_the_ratio_and_keeps_a_sine_smooth() {
        for ratio in [0.995, 1.0, 1.005] {
            let mut r = Resampler::new(1);
            let mut out = Vec::new();
            let mut n = 0u64;
            for _ in 0..200 {
                let chunk: Vec<f32> = (0..240).map(|i| ((n + i) as f32 * 0.05).sin()).collect();
                n += 240;
                r.process(&chunk, ratio, &mut out);
            }
            let expected = 48_000.0 / ratio;
            assert!((out.len() as f64 - expected).abs() <= 2.0, "ratio {ratio}: {} frames", out.len());
            // No jump bigger than the sine's own slope (0.05 per sample) anywhere, chunk seams
            // included.
            let worst = out.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f32, f32::max);
            assert!(worst < 0.052, "ratio {ratio}: step {worst}");
        }
    }

    #[test]
    fn ring_is_fifo_and_bounded() {
        let (w, r) = ring(8);
        assert_eq!(w.push(&[1.0, 2.0, 3.0]), 3);
        let mut out = [0.0; 2];
        assert_eq!(r.pop(&mut out), 2);
        assert_eq!(out, [1.0, 2.0]);
        // Wraps around, and refuses what does not fit.
        assert_eq!(w.push(&[4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]), 7);
        assert_eq!(w.len(), 8);
        let mut all = [0.0; 10];
        assert_eq!(r.pop(&mut all), 8);
        assert_eq!(&all[..8], &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!(r.is_empty());
    }
}

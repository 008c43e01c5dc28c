//! The reference host's game sound, and how tests find it again.
//!
//! Owns the synthetic audio: a quiet continuous 440 Hz tone, plus a short 1 kHz beep that
//! starts on the exact sample of each visual flash, so A/V sync can be measured by finding
//! the beeps in what the client played. 48 kHz, interleaved stereo `f32`. Also the detector:
//! a Goertzel filter that finds the tone and the beep onsets in captured output. Pure: the
//! host passes sample positions; nothing here reads a clock.

use crate::audio::RATE;

pub const CHANNELS: usize = 2;
/// The continuous tone: frequency and amplitude (about -26 dBFS: quiet).
pub const TONE_HZ: f64 = 440.0;
pub const TONE_AMPLITUDE: f64 = 0.05;
/// The beep at each flash: frequency, amplitude and length.
pub const BEEP_HZ: f64 = 1000.0;
pub const BEEP_AMPLITUDE: f64 = 0.5;
pub const BEEP_SAMPLES: u64 = RATE as u64 * 30 / 1000;

/// The quiet tone on each surround channel, in wire order (FC LFE RL RR SL SR), so a test can
/// tell every speaker apart in what was played.
pub const SURROUND_HZ: [f64; 6] = [500.0, 60.0, 600.0, 700.0, 800.0, 900.0];

/// Renders `out.len() / channels` interleaved frames starting at absolute frame `start`, with
/// beeps that start at the absolute frames in `beeps` (any order; only those overlapping are
/// drawn). The game's sound is in the front pair; each further channel (5.1, 7.1) carries a
/// quiet tone of its own (`SURROUND_HZ`).
pub fn render(start: u64, beeps: &[u64], channels: usize, out: &mut [f32]) {
    let channels = channels.max(CHANNELS);
    let frames = (out.len() / channels) as u64;
    for i in 0..frames {
        let n = start + i;
        let t = n as f64 / f64::from(RATE);
        let mut v = TONE_AMPLITUDE * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin();
        for &b in beeps {
            if n >= b && n < b + BEEP_SAMPLES {
                let bt = (n - b) as f64 / f64::from(RATE);
                // A 1 ms fade at each end, so the beep itself does not click.
                let edge = ((n - b).min(b + BEEP_SAMPLES - 1 - n) as f64 / 48.0).min(1.0);
                v += BEEP_AMPLITUDE * edge * (2.0 * std::f64::consts::PI * BEEP_HZ * bt).sin();
            }
        }
        let s = v as f32;
        let at = i as usize * channels;
        out[at..at + CHANNELS].fill(s);
        for (c, hz) in (CHANNELS..channels).zip(SURROUND_HZ) {
            out[at + c] = (TONE_AMPLITUDE * (2.0 * std::f64::consts::PI * hz * t).sin()) as f32;
        }
    }
}

/// Power of `freq` in mono `samples` (Goertzel), normalised so a full-scale sine reads ~0.25.
pub fn power_at(samples: &[f32], freq: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = samples.len() as f64;
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

/// Frames where a beep starts in mono `samples`: the first sample of each 1 ms block whose
/// beep power crosses half the expected level, refined to where the signal first exceeds
/// the tone's amplitude.
pub fn find_beeps(samples: &[f32]) -> Vec<u64> {
    let block = (RATE / 1000) as usize;
    let threshold = (BEEP_AMPLITUDE * BEEP_AMPLITUDE / 4.0) * 0.25;
    let mut onsets = Vec::new();
    let mut inside = false;
    for (i, chunk) in samples.chunks(block).enumerate() {
        let on = power_at(chunk, BEEP_HZ) > threshold;
        if on && !inside {
            // Back up to the block before, then to the first sample louder than the tone.
            let from = (i.saturating_sub(1)) * block;
            let to = ((i + 1) * block).min(samples.len());
            let first = samples[from..to]
                .iter()
                .position(|s| f64::from(s.abs()) > TONE_AMPLITUDE * 1.5)
                .map_or(i * block, |p| from + p);
            // The fade-in means the first loud sample is a little after the true onset.
            onsets.push((first as u64).saturating_sub(6));
        }
        inside = on;
    }
    onsets
}

/// Mono from interleaved stereo (the left channel).
pub fn left(interleaved: &[f32]) -> Vec<f32> {
    interleaved.iter().step_by(CHANNELS).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_is_always_there_and_quiet() {
        let mut out = vec![0.0; 4800 * CHANNELS];
        render(1_000_000, &[], CHANNELS, &mut out);
        let mono = left(&out);
        let tone = power_at(&mono, TONE_HZ);
        assert!((tone - TONE_AMPLITUDE * TONE_AMPLITUDE / 4.0).abs() < 1e-4, "{tone}");
        assert!(power_at(&mono, BEEP_HZ) < 1e-6);
        assert!(mono.iter().all(|s| s.abs() <= TONE_AMPLITUDE as f32 + 1e-6));
        assert_eq!(out[0], out[1], "both channels");
    }

    #[test]
    fn beeps_are_found_within_a_fraction_of_a_millisecond() {
        let beeps = [12_345u64, 30_000, 60_001];
        let mut out = vec![0.0; 96_000 * CHANNELS];
        // Rendered in 10 ms packets, as the host does: beeps cross packet edges.
        for (p, chunk) in out.chunks_mut(480 * CHANNELS).enumerate() {
            render(p as u64 * 480, &beeps, CHANNELS, chunk);
        }
        let found = find_beeps(&left(&out));
        assert_eq!(found.len(), 3, "{found:?}");
        for (f, b) in found.iter().zip(beeps) {
            assert!(f.abs_diff(b) <= 24, "found {f}, beep at {b}: off by more than 0.5 ms");
        }
    }

    #[test]
    fn silence_and_tone_have_no_beeps() {
        assert!(find_beeps(&vec![0.0; 48_000]).is_empty());
        let mut out = vec![0.0; 48_000 * CHANNELS];
        render(0, &[], CHANNELS, &mut out);
        assert!(find_beeps(&left(&out)).is_empty());
    }
}

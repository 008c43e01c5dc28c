//! The host's audio: the game's sound, Opus-encoded in 5 ms packets and sent as QUIC
//! datagrams.
//!
//! Owns the thread "kumo-audio-enc". It keeps a sample clock on the host's monotonic clock:
//! every 5 ms (once a packet's last sample is "captured") it renders the packet from
//! `core::audio::sound` with a beep starting on the sample of each flash the encoder thread drew,
//! encodes one Opus stream per coupled channel pair, and sends the datagram. Each packet is
//! stamped with the capture time of its first sample as the client's decoder will output it
//! (the encoder's lookahead taken off), on the same clock as video capture stamps, so the
//! client can line the two up. Datagrams are fire-and-forget: a lost one is concealed or
//! repaired from the next one's redundant copy, never re-sent (it would arrive too late).

use crate::clock;
use crate::core::audio::sound;
use crate::core::audio::{AudioFormat, RATE};
use crate::core::wire::AudioPacket;
use crate::host::encode::GameLink;
use opus::{Application, Bitrate, Channels, Encoder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A host that falls this far behind its sample clock (a stalled machine) skips ahead
/// rather than sending a burst of stale audio.
const MAX_BEHIND: Duration = Duration::from_millis(100);

/// The running audio thread; `stop` ends it within one packet.
pub struct AudioWorker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl AudioWorker {
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        if self.handle.join().is_err() {
            tracing::error!("the audio encoder thread panicked");
        }
    }
}

/// One Opus encoder per coupled pair, set for low delay.
fn encoders(format: AudioFormat) -> Result<Vec<Encoder>, opus::Error> {
    let streams = format.layout.streams();
    let per_stream = i32::from(format.bitrate_kbps) * 1000 / streams as i32;
    (0..streams)
        .map(|_| {
            let mut enc = Encoder::new(RATE, Channels::Stereo, Application::LowDelay)?;
            enc.set_bitrate(Bitrate::Bits(per_stream.max(16_000)))?;
            // Constant quality per packet: VBR would let a beep's packet grow past the others.
            enc.set_vbr(false)?;
            Ok(enc)
        })
        .collect()
}

/// Starts "kumo-audio-enc", sending `format` on `conn` until stopped or the connection ends.
pub fn spawn(conn: quinn::Connection, format: AudioFormat, game: Arc<GameLink>) -> std::io::Result<AudioWorker> {
    let encoders = encoders(format).map_err(|e| std::io::Error::other(format!("Opus encoder: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("kumo-audio-enc".into())
        .spawn(move || run(&conn, format, encoders, &game, &flag))?;
    Ok(AudioWorker { stop, handle })
}

fn run(conn: &quinn::Connection, format: AudioFormat, mut encoders: Vec<Encoder>, game: &GameLink, stop: &AtomicBool) {
    let channels = usize::from(format.layout.channels());
    let frames = u64::from(format.packet_frames);
    let lookahead = encoders.first_mut().and_then(|e| e.get_lookahead().ok()).unwrap_or(0).max(0) as u64;
    let epoch = Instant::now();
    let micros_of = |frame: u64| frame * 1_000_000 / u64::from(RATE);
    let mut pcm = vec![0.0f32; frames as usize * channels];
    let mut pair = vec![0.0f32; frames as usize * 2];
    let mut beeps: Vec<u64> = Vec::new();
    let mut flashes = Vec::new();
    let mut previous: Vec<Vec<u8>> = Vec::new();
    let (mut start, mut seq) = (0u64, 0u64);
    while !stop.load(Ordering::Acquire) {
        // The packet is complete once its last sample is due; 1 ms more lets a flash drawn in
        // that instant reach the queue.
        let due = epoch + Duration::from_micros(micros_of(start + frames)) + Duration::from_millis(1);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
            continue;
        }
        if now - due > MAX_BEHIND {
            let skip_to = (now - epoch).as_micros() as u64 * u64::from(RATE) / 1_000_000;
            tracing::debug!(behind_ms = (now - due).as_millis(), "host audio fell behind; skipping ahead");
            start = skip_to / frames * frames;
            continue;
        }
        // The sample clock runs on `Instant`; stamps are on the wall clock that video frames
        // are stamped with. The origin is read afresh each packet so a stepped wall clock
        // moves audio and video stamps alike.
        let origin_micros = clock::now_micros().saturating_sub(epoch.elapsed().as_micros() as u64);
        game.take_flashes(&mut flashes);
        for micros in flashes.drain(..) {
            beeps.push(micros.saturating_sub(origin_micros) * u64::from(RATE) / 1_000_000);
        }
        beeps.retain(|&b| b + sound::BEEP_SAMPLES > start);
        sound::render(start, &beeps, channels, &mut pcm);
        let mut coded = Vec::with_capacity(encoders.len());
        for (s, encoder) in encoders.iter_mut().enumerate() {
            for (dst, src) in pair.chunks_exact_mut(2).zip(pcm.chunks_exact(channels)) {
                dst.copy_from_slice(&src[2 * s..2 * s + 2]);
            }
            match encoder.encode_vec_float(&pair, 1000) {
                Ok(bytes) => coded.push(bytes),
                Err(err) => {
                    tracing::error!("the Opus encoder failed: {err}; the stream goes on without sound");
                    return;
                }
            }
        }
        let packet = AudioPacket {
            seq,
            // The decoder's output lags the encoder's input by the lookahead.
            capture_micros: origin_micros + micros_of(start).saturating_sub(micros_of(lookahead)),
            layout: format.layout,
            frames: format.packet_frames,
            previous: if format.redundancy { std::mem::take(&mut previous) } else { Vec::new() },
            coded,
        };
        match conn.send_datagram(packet.encode().into()) {
            Ok(()) => {}
            Err(quinn::SendDatagramError::ConnectionLost(_)) => return,
            Err(err) => tracing::debug!("audio datagram not sent: {err}"),
        }
        if format.redundancy {
            previous = packet.coded;
        }
        start += frames;
        seq += 1;
    }
}

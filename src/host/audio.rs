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

/// Where the host's sound comes from.
pub enum SoundSource {
    /// The synthetic game's beeps, on the host's sample clock.
    Scene(Arc<GameLink>),
    /// A desktop's sound, recorded from the sound server (which then sets the pace).
    Captured(crate::host::pulse::SoundCapture),
}

/// Starts "kumo-audio-enc", sending `format` on `conn` until stopped or the connection ends.
pub fn spawn(conn: quinn::Connection, format: AudioFormat, sound: SoundSource) -> std::io::Result<AudioWorker> {
    let encoders = encoders(format).map_err(|e| std::io::Error::other(format!("Opus encoder: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new().name("kumo-audio-enc".into()).spawn(move || {
        let mut out = Packets::new(conn, format, encoders);
        match sound {
            SoundSource::Scene(game) => run(&mut out, &game, &flag),
            SoundSource::Captured(capture) => record(&mut out, capture, &flag),
        }
    })?;
    Ok(AudioWorker { stop, handle })
}

/// Encodes and sends packets.
struct Packets {
    conn: quinn::Connection,
    format: AudioFormat,
    encoders: Vec<Encoder>,
    /// The encoders' lookahead, in samples.
    lookahead: u64,
    pair: Vec<f32>,
    previous: Vec<Vec<u8>>,
    seq: u64,
}

impl Packets {
    fn new(conn: quinn::Connection, format: AudioFormat, mut encoders: Vec<Encoder>) -> Self {
        let lookahead = encoders.first_mut().and_then(|e| e.get_lookahead().ok()).unwrap_or(0).max(0) as u64;
        let pair = vec![0.0f32; usize::from(format.packet_frames) * 2];
        Self { conn, format, encoders, lookahead, pair, previous: Vec::new(), seq: 0 }
    }

    /// Sends one packet of `pcm` (interleaved, the format's channels) whose first sample was
    /// captured at `first_micros`; false once the connection or the encoder is gone.
    fn send(&mut self, pcm: &[f32], first_micros: u64) -> bool {
        let channels = usize::from(self.format.layout.channels());
        let mut coded = Vec::with_capacity(self.encoders.len());
        for (s, encoder) in self.encoders.iter_mut().enumerate() {
            for (dst, src) in self.pair.chunks_exact_mut(2).zip(pcm.chunks_exact(channels)) {
                dst.copy_from_slice(&src[2 * s..2 * s + 2]);
            }
            match encoder.encode_vec_float(&self.pair, 1000) {
                Ok(bytes) => coded.push(bytes),
                Err(err) => {
                    tracing::error!("the Opus encoder failed: {err}; the stream goes on without sound");
                    return false;
                }
            }
        }
        let packet = AudioPacket {
            seq: self.seq,
            // The decoder's output lags the encoder's input by the lookahead.
            capture_micros: first_micros.saturating_sub(self.lookahead * 1_000_000 / u64::from(RATE)),
            layout: self.format.layout,
            frames: self.format.packet_frames,
            previous: if self.format.redundancy { std::mem::take(&mut self.previous) } else { Vec::new() },
            coded,
        };
        match self.conn.send_datagram(packet.encode().into()) {
            Ok(()) => {}
            Err(quinn::SendDatagramError::ConnectionLost(_)) => return false,
            Err(err) => tracing::debug!("audio datagram not sent: {err}"),
        }
        if self.format.redundancy {
            self.previous = packet.coded;
        }
        self.seq += 1;
        true
    }
}

/// Records the desktop's sound packet by packet: the sound server's clock sets the pace, and
/// a packet's first sample was captured one packet's duration before it could be read.
fn record(out: &mut Packets, mut capture: crate::host::pulse::SoundCapture, stop: &AtomicBool) {
    let frames = u64::from(out.format.packet_frames);
    let mut pcm = vec![0.0f32; frames as usize * 2];
    while !stop.load(Ordering::Acquire) {
        if let Err(err) = capture.read(&mut pcm) {
            tracing::warn!("{err}; the stream goes on without sound");
            return;
        }
        let first = clock::now_micros().saturating_sub(frames * 1_000_000 / u64::from(RATE));
        if !out.send(&pcm, first) {
            return;
        }
    }
}

fn run(out: &mut Packets, game: &GameLink, stop: &AtomicBool) {
    let format = out.format;
    let channels = usize::from(format.layout.channels());
    let frames = u64::from(format.packet_frames);
    let epoch = Instant::now();
    let micros_of = |frame: u64| frame * 1_000_000 / u64::from(RATE);
    let mut pcm = vec![0.0f32; frames as usize * channels];
    let mut beeps: Vec<u64> = Vec::new();
    let mut flashes = Vec::new();
    let mut start = 0u64;
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
        if !out.send(&pcm, origin_micros + micros_of(start)) {
            return;
        }
        start += frames;
    }
}

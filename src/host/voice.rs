//! The player's voice on the host (`Capabilities::MICROPHONE`): a virtual microphone that the
//! session's programs record from, and the "kumo-voice" thread that plays the client's packets
//! into it.
//!
//! The microphone is a `PulseAudio` (or `PipeWire`-pulse) null sink and a source named
//! `kumo-mic` remapped from its monitor: a program picks "kumo-mic" as it would a headset. The
//! thread keeps the packets in the audio path's jitter buffer (`core::audio::jitter`: adaptive
//! depth, a lost packet repaired from the next one's copy, else concealed by Opus), decodes
//! them and writes 20 ms at a time into the sink through libpulse; the sound server's clock
//! paces it. Packets wait in a queue of [`QUEUE`] (full: the newest is dropped, as a lost
//! datagram). Everything is unloaded when the player goes.

use crate::core::audio::RATE;
use crate::core::audio::jitter::{JitterBuffer, Playout};
use crate::core::wire::MicPacket;
use libpulse_binding::def::BufferAttr;
use libpulse_binding::sample::{Format, Spec};
use libpulse_binding::stream::Direction;
use libpulse_simple_binding::Simple;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

/// The source programs record the player's voice from.
pub const SOURCE: &str = "kumo-mic";
/// Samples in a packet: 20 ms at 48 kHz, mono.
pub const PACKET_FRAMES: usize = 960;
/// Packets waiting for the thread at most.
const QUEUE: usize = 64;
/// What the sound server holds ahead of the microphone: 60 ms.
const TARGET_BYTES: u32 = (PACKET_FRAMES * 3 * 4) as u32;

/// The virtual microphone's two modules; unloaded when dropped.
struct VirtualMic {
    modules: Vec<String>,
}

impl VirtualMic {
    fn load(sink: &str) -> Result<Self, String> {
        let mut mic = Self { modules: Vec::new() };
        mic.module(&[
            "module-null-sink",
            &format!("sink_name={sink}"),
            "sink_properties=device.description=kumo-voice",
            "channels=1",
        ])?;
        mic.module(&[
            "module-remap-source",
            &format!("master={sink}.monitor"),
            &format!("source_name={SOURCE}"),
            "source_properties=device.description=kumo-mic",
            "channels=1",
        ])?;
        Ok(mic)
    }

    fn module(&mut self, args: &[&str]) -> Result<(), String> {
        let out = Command::new("pactl")
            .arg("load-module")
            .args(args)
            .output()
            .map_err(|e| format!("could not run pactl (Debian: apt install pulseaudio-utils): {e}"))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            let first = said.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no reason given");
            return Err(format!(
                "the sound server refused the virtual microphone ({})",
                crate::core::trust::printable(first)
            ));
        }
        self.modules.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        Ok(())
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        for module in self.modules.iter().rev() {
            Command::new("pactl").args(["unload-module", module]).output().ok();
        }
    }
}

/// The voice's counters, for the host's log at the session's end.
#[derive(Debug, Default)]
pub struct VoiceCounters {
    pub played: AtomicU64,
    pub concealed: AtomicU64,
    pub recovered: AtomicU64,
    /// Skipped to bring the delay back down.
    pub skipped: AtomicU64,
}

/// The running microphone: packets in; dropping it stops the thread and unloads the modules.
pub struct Voice {
    packets: Option<SyncSender<(MicPacket, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    pub counters: Arc<VoiceCounters>,
}

impl Voice {
    /// Loads the virtual microphone (its sink named after `tag`) and starts playing into it.
    pub fn start(tag: &str) -> Result<Self, String> {
        let sink = format!("kumo-voice-{}-{tag}", std::process::id());
        let mic = VirtualMic::load(&sink)?;
        let spec = Spec { format: Format::F32le, rate: RATE, channels: 1 };
        let attr = BufferAttr {
            maxlength: u32::MAX,
            tlength: TARGET_BYTES,
            prebuf: u32::MAX,
            minreq: u32::MAX,
            fragsize: u32::MAX,
        };
        let simple = Simple::new(
            None,
            "kumo host",
            Direction::Playback,
            Some(&sink),
            "player's voice",
            &spec,
            None,
            Some(&attr),
        )
        .map_err(|e| format!("could not play into the virtual microphone ({})", e.to_string().unwrap_or_default()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(VoiceCounters::default());
        let (stopping, counting) = (stop.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name("kumo-voice".into())
            .spawn(move || play(&rx, &simple, &stopping, &counting, mic))
            .map_err(|e| format!("cannot start the voice thread: {e}"))?;
        Ok(Self { packets: Some(tx), thread: Some(thread), stop, counters })
    }

    /// A packet arrived at `arrival_micros` (the host's clock).
    pub fn packet(&self, packet: MicPacket, arrival_micros: u64) {
        if let Some(Err(TrySendError::Full(_))) = self.packets.as_ref().map(|p| p.try_send((packet, arrival_micros))) {
            tracing::debug!("the voice thread is behind: a microphone packet dropped");
        }
    }
}

impl Drop for Voice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.packets.take();
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
        let c = &self.counters;
        tracing::info!(
            "the player's microphone: {} packets played, {} concealed, {} repaired from the next one, {} skipped to cut the delay",
            c.played.load(Ordering::Relaxed),
            c.concealed.load(Ordering::Relaxed),
            c.recovered.load(Ordering::Relaxed),
            c.skipped.load(Ordering::Relaxed)
        );
    }
}

/// The thread: packets into the jitter buffer, one 20 ms slot out per write.
fn play(
    rx: &Receiver<(MicPacket, u64)>,
    simple: &Simple,
    stop: &AtomicBool,
    counters: &VoiceCounters,
    mic: VirtualMic,
) {
    let Ok(mut decoder) = opus::Decoder::new(RATE, opus::Channels::Mono) else {
        tracing::error!("could not start the Opus decoder for the player's voice");
        return;
    };
    let mut jitter = JitterBuffer::new(Duration::from_millis(20));
    let mut pcm = vec![0f32; PACKET_FRAMES];
    let mut bytes = vec![0u8; PACKET_FRAMES * 4];
    let mut over_since: Option<std::time::Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        loop {
            match rx.try_recv() {
                Ok((packet, arrival)) => {
                    if !packet.previous.is_empty() && packet.seq > 0 {
                        let previous =
                            MicPacket { seq: packet.seq - 1, coded: packet.previous.clone(), ..packet.clone() };
                        if jitter.insert_redundant(
                            packet.seq - 1,
                            packet.capture_micros.saturating_sub(20_000),
                            previous,
                        ) {
                            counters.recovered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    jitter.push(packet.seq, packet.capture_micros, arrival, packet);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            }
        }
        // More buffered than the jitter needs for half a second (the sound server took a
        // while to start, or the client's clock runs fast): the excess goes at once, one
        // small jump rather than a delay kept for the whole session.
        if jitter.depth() > jitter.target() + 2 {
            let since = *over_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= Duration::from_millis(500) {
                // At most the packets over the need (each pop moves one sequence on; a
                // client that jumped its sequence far ahead cannot make this spin).
                for _ in jitter.target()..jitter.depth() {
                    jitter.pop();
                    counters.skipped.fetch_add(1, Ordering::Relaxed);
                }
                over_since = None;
            }
        } else {
            over_since = None;
        }
        let decoded = match jitter.pop() {
            Playout::Play { payload, .. } => {
                counters.played.fetch_add(1, Ordering::Relaxed);
                decoder.decode_float(&payload.coded, &mut pcm, false)
            }
            Playout::Conceal { .. } | Playout::Stretch => {
                counters.concealed.fetch_add(1, Ordering::Relaxed);
                decoder.decode_float(&[], &mut pcm, false)
            }
            Playout::Wait => {
                pcm.fill(0.0);
                Ok(PACKET_FRAMES)
            }
        };
        if decoded.is_err() {
            pcm.fill(0.0);
        }
        for (out, sample) in bytes.chunks_exact_mut(4).zip(&pcm) {
            out.copy_from_slice(&sample.to_le_bytes());
        }
        // Blocks while the sound server holds its 60 ms: its clock paces the thread.
        if let Err(err) = simple.write(&bytes) {
            tracing::warn!(
                "the virtual microphone stopped ({}); the player's voice is off",
                err.to_string().unwrap_or_default()
            );
            break;
        }
    }
    drop(mic);
}

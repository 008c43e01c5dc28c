//! The player's microphone (`--mic [DEVICE]`, behind `Capabilities::MICROPHONE`): the
//! "kumo-mic" thread opens the capture device with cpal, whose callback only copies samples
//! (mixed down to mono) into a lock-free ring, never allocating or locking; the thread takes
//! 20 ms at a time, encodes it with Opus (mono, voice, 24 kbit/s) and hands each datagram
//! (`core::wire::MicPacket`, with the previous frame again for a single loss) to the session's
//! task, which sends it. While muted it sends nothing. Datagrams wait in a queue of [`QUEUE`]
//! (full: the newest is dropped, as a lost datagram would be).

use crate::clock;
use crate::core::audio::{self, RATE, RingReader, RingWriter};
use crate::core::wire::MicPacket;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Samples in a packet: 20 ms at 48 kHz, mono.
pub const PACKET_FRAMES: usize = 960;
/// The voice's bitrate.
const BITRATE: i32 = 24_000;
/// Datagrams waiting for the session's task at most.
pub const QUEUE: usize = 16;
/// What the ring holds: 200 ms.
const RING_FRAMES: usize = PACKET_FRAMES * 10;

/// The running microphone; dropping it stops the thread (and the device).
pub struct Microphone {
    muted: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Microphone {
    /// Opens `device` (a cpal device name; "default": the system's) and starts sending its
    /// packets into `out`, `muted` at first (push-to-talk). The device is opened on the thread; a failure there is said once
    /// and the session goes on without the microphone.
    pub fn start(device: &str, muted: bool, out: tokio::sync::mpsc::Sender<MicPacket>) -> Result<Self, String> {
        let muted = Arc::new(AtomicBool::new(muted));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, name) = (muted.clone(), stop.clone(), device.to_owned());
        let thread = std::thread::Builder::new()
            .name("kumo-mic".into())
            .spawn(move || capture(&name, &out, &m, &s))
            .map_err(|e| format!("cannot start the microphone thread: {e}"))?;
        Ok(Self { muted, stop, thread: Some(thread) })
    }

    /// Mutes or unmutes; returns whether it is muted now.
    pub fn toggle_mute(&self) -> bool {
        !self.muted.fetch_xor(true, Ordering::Relaxed)
    }

    /// Mutes (`true`) or unmutes: push-to-talk's key going up or down.
    pub fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
    }

    pub fn is_muted(&self) -> bool {
        self.muted.load(Ordering::Relaxed)
    }
}

impl Drop for Microphone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// Finds `name` among the input devices ("default": the system's).
fn find(name: &str) -> Result<cpal::Device, String> {
    let host = cpal::default_host();
    if name == "default" {
        return host.default_input_device().ok_or_else(|| "no microphone here (no capture device)".to_owned());
    }
    let devices = host.input_devices().map_err(|e| format!("cannot list the microphones: {e}"))?;
    let mut names = Vec::new();
    for device in devices {
        let its = device.description().map_or_else(|_| String::new(), |d| d.name().to_owned());
        if its == name {
            return Ok(device);
        }
        names.push(its);
    }
    Err(format!("no microphone named '{name}' (there are: {})", names.join(", ")))
}

/// Opens the device's input stream, mixed down to mono into the ring it returns.
fn open(name: &str) -> Result<(cpal::Stream, RingReader), String> {
    let device = find(name)?;
    let supported = device
        .supported_input_configs()
        .map_err(|e| format!("the microphone '{name}' cannot list its formats ({e})"))?
        .filter(|c| c.contains_rate(RATE) && c.sample_format() == cpal::SampleFormat::F32)
        .min_by_key(cpal::SupportedStreamConfigRange::channels)
        .ok_or_else(|| format!("the microphone '{name}' cannot record 48 kHz float samples"))?;
    let channels = usize::from(supported.channels()).max(1);
    // 10 ms periods: a device left to choose (PulseAudio's ALSA plugin) delivered seconds at
    // a time, which the host heard as silence between bursts.
    let mut config = cpal::StreamConfig {
        channels: supported.channels(),
        sample_rate: RATE,
        buffer_size: cpal::BufferSize::Fixed(480),
    };
    let build = |config: &cpal::StreamConfig, ring: RingWriter| {
        device.build_input_stream(
            *config,
            move |data: &[f32], _: &cpal::InputCallbackInfo| {
                // Mono, a frame at a time: no buffer to allocate here.
                for frame in data.chunks_exact(channels) {
                    let mono = frame.iter().sum::<f32>() / channels as f32;
                    ring.push(&[mono]);
                }
            },
            |err: cpal::Error| tracing::debug!("microphone: {err}"),
            None,
        )
    };
    let (writer, reader) = audio::ring(RING_FRAMES);
    let (stream, reader) = if let Ok(stream) = build(&config, writer) {
        (stream, reader)
    } else {
        // Not every device takes a 10 ms period: let it choose.
        config.buffer_size = cpal::BufferSize::Default;
        let (writer, reader) = audio::ring(RING_FRAMES);
        let stream = build(&config, writer).map_err(|e| format!("could not open the microphone '{name}': {e}"))?;
        (stream, reader)
    };
    stream.play().map_err(|e| format!("could not start the microphone '{name}': {e}"))?;
    Ok((stream, reader))
}

/// The thread: the device's samples, 20 ms at a time, encoded and handed on.
fn capture(name: &str, out: &tokio::sync::mpsc::Sender<MicPacket>, muted: &AtomicBool, stop: &AtomicBool) {
    let (stream, reader) = match open(name) {
        Ok(opened) => opened,
        Err(err) => {
            tracing::warn!("{err}; the session goes on without the microphone");
            return;
        }
    };
    let mut encoder = match opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip) {
        Ok(encoder) => encoder,
        Err(err) => {
            tracing::error!("could not start the Opus encoder for the microphone: {err}");
            return;
        }
    };
    encoder.set_bitrate(opus::Bitrate::Bits(BITRATE)).ok();
    tracing::info!("the microphone '{name}' is on");
    let (mut pcm, mut coded) = (vec![0f32; PACKET_FRAMES], vec![0u8; 1275]);
    let (mut filled, mut seq, mut previous) = (0, 0u64, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        filled += reader.pop(&mut pcm[filled..]);
        if filled < PACKET_FRAMES {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        filled = 0;
        // The packet's first sample was captured about 20 ms ago (and whatever the device
        // buffers, which the host's jitter buffer measures as transit).
        let capture_micros = clock::now_micros().saturating_sub(20_000);
        if muted.load(Ordering::Relaxed) {
            previous.clear();
            continue;
        }
        let Ok(len) = encoder.encode_float(&pcm, &mut coded) else { continue };
        let packet =
            MicPacket { seq, capture_micros, coded: coded[..len].to_vec(), previous: std::mem::take(&mut previous) };
        previous = coded[..len].to_vec();
        seq += 1;
        if out.try_send(packet).is_err() {
            tracing::debug!("the session is behind: a microphone packet dropped");
        }
    }
    drop(stream);
}

//! The client's audio shell: Opus decoding, the jitter buffer, drift correction and
//! playback through cpal.
//!
//! Owns the thread "kumo-audio", which owns the cpal stream (it is not `Send` on every
//! platform), the Opus decoders and the jitter buffer. The session's network task hands it
//! each audio datagram with its arrival time through a bounded queue. The thread keeps the
//! device's ring topped up to one device period plus one packet: each time the ring runs
//! below that, it takes the next slot's packet from the jitter buffer (or conceals the slot
//! with Opus's loss concealment), resamples it by the buffer's playout rate (drift
//! correction), maps the wire channel order to the device's and writes the ring. The device
//! callback only copies from the ring (no allocation, lock, log or blocking) and publishes,
//! through atomics, when the next sample it hands over will be heard.
//!
//! The device: the default output, opened at 48 kHz with the stream's layout where the
//! device has it. When it fails (unplugged, server restarted: an error with no callback after
//! it for 300 ms, `core::audio::watch`; an error the device plays on after passes) the
//! thread reopens it with a backoff from 100 ms to 5 s; with no device at all it says so once
//! and drains the ring on the wall clock instead, so the session, its jitter buffer and its
//! figures go on, silent.
//!
//! A/V sync: a packet's audio latency is when its first sample will be heard minus its
//! capture stamp; the video's is presentation (or, headless, decode) minus capture; both use
//! the host's stamps and the client's clock, so their difference, the A/V offset, needs no
//! clock sync. When audio would be early the buffer's target grows to hold it back; when it
//! is late, everything on the audio path is already as short as the network allows.

use crate::clock;
use crate::core::audio::jitter::{JitterBuffer, Playout};
use crate::core::audio::watch::{StreamWatch, Verdict};
use crate::core::audio::{self, AudioFormat, RATE, Resampler, RingReader, RingWriter};
use crate::core::stats::{self, AudioCounters, micros_between};
use crate::core::wire::AudioPacket;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Datagrams waiting for the audio thread: 64 packets, 320 ms. The thread takes them within
/// a millisecond or two; when full (it stalled) newer packets are dropped and concealed.
const PACKET_QUEUE: usize = 64;
/// The ring between the audio thread and the device callback: 200 ms of 7.1.
const RING_FRAMES: usize = RATE as usize / 5;
/// Device period asked for: 5 ms, one packet.
const PERIOD_FRAMES: u32 = 240;
/// Ring frames kept beyond one device period, for the audio thread's own wake-up delay (it
/// polls every millisecond): 2.5 ms to start with; each device underrun adds 2 ms, up to
/// 60 ms, and 10 s without one takes 2 ms off again, so a loaded machine buys safety with a
/// little latency and an idle one keeps the least. (A 2-core machine with a busy process
/// beside kumo's own host and decoder kept the thread off the CPU for tens of ms at a time:
/// 20 ms at most left 20–40 underruns in 8 s.)
const MARGIN_FRAMES: usize = 120;
const MARGIN_STEP: usize = 96;
const MARGIN_MAX: usize = 2880;
const MARGIN_RELAX: Duration = Duration::from_secs(10);
/// How often the thread reports its counters.
const REPORT_EVERY: Duration = Duration::from_millis(100);
/// Reopening a failed device: first retry and the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A/V offset beyond which the thread moves audio (holds it back, or lets it go sooner).
const SYNC_DEADBAND_MICROS: i64 = 8_000;
/// Packets between two A/V sync steps: 2 s of 5 ms packets.
const SYNC_STEP_PACKETS: u64 = 400;

/// The video side's latest latencies, for A/V sync: the decode thread and the presenter
/// write them, the audio thread reads them.
#[derive(Debug)]
pub struct AvClock {
    decoded: AtomicI64,
    decoded_at: AtomicU64,
    presented: AtomicI64,
    presented_at: AtomicU64,
}

/// A video latency older than this does not steer the sound: a still screen (no pictures while
/// nothing is drawn) or a stalled stream says nothing about how late pictures are now, and a
/// host clock drifting against the client's would make an old figure drift too.
const VIDEO_LATENCY_MAX_AGE_MICROS: u64 = 1_000_000;

impl Default for AvClock {
    fn default() -> Self {
        Self {
            decoded: AtomicI64::new(i64::MIN),
            decoded_at: AtomicU64::new(0),
            presented: AtomicI64::new(i64::MIN),
            presented_at: AtomicU64::new(0),
        }
    }
}

impl AvClock {
    /// A picture captured at `capture_micros` (host) finished decoding at `decoded_micros`.
    pub fn on_decoded(&self, capture_micros: u64, decoded_micros: u64) {
        self.decoded.store(latency_micros(capture_micros, decoded_micros), Ordering::Relaxed);
        self.decoded_at.store(decoded_micros, Ordering::Relaxed);
    }

    /// A picture captured at `capture_micros` was queued to the display at `presented_micros`.
    pub fn on_presented(&self, capture_micros: u64, presented_micros: u64) {
        self.presented.store(latency_micros(capture_micros, presented_micros), Ordering::Relaxed);
        self.presented_at.store(presented_micros, Ordering::Relaxed);
    }

    /// Capture→shown for the newest picture: presentation when a window showed one in the
    /// last second, else decoding (headless) in the last second; none when no picture came
    /// for longer (then the sound plays at the network's own depth).
    pub fn video_latency(&self, now_micros: u64) -> Option<i64> {
        let recent =
            |at: &AtomicU64| now_micros.saturating_sub(at.load(Ordering::Relaxed)) < VIDEO_LATENCY_MAX_AGE_MICROS;
        let presented = self.presented.load(Ordering::Relaxed);
        if presented != i64::MIN && recent(&self.presented_at) {
            return Some(presented);
        }
        let decoded = self.decoded.load(Ordering::Relaxed);
        (decoded != i64::MIN && recent(&self.decoded_at)).then_some(decoded)
    }
}

/// The widest latency the A/V figures hold (±10 s), so a stamp from the network can neither
/// overflow them nor reach the "none yet" value `i64::MIN`.
const MAX_LATENCY_MICROS: i64 = 10_000_000;

/// The latency from `capture` (host clock) to `then` (client clock), clamped to
/// ±[`MAX_LATENCY_MICROS`].
fn latency_micros(capture: u64, then: u64) -> i64 {
    micros_between(capture, then).clamp(-MAX_LATENCY_MICROS, MAX_LATENCY_MICROS)
}

enum Msg {
    /// The format, and the recording the packets played go to.
    Start(AudioFormat, Option<crate::client::record::Tap>),
    Packet(AudioPacket, u64),
}

/// The running audio thread. It ends when its [`AudioInput`] is dropped (the session's
/// network task ending), or at `join` if no input was taken.
pub struct AudioPlayer {
    tx: Option<SyncSender<Msg>>,
    handle: JoinHandle<()>,
    /// Speakers on the output device when the thread started (2 when there is none).
    pub device_channels: u16,
}

/// The session's end of the audio thread's queue.
#[derive(Clone)]
pub struct AudioInput(SyncSender<Msg>);

impl AudioInput {
    /// Hands over a datagram that arrived at `arrival_micros`; drops it when the thread is
    /// behind (the jitter buffer conceals the gap).
    pub fn packet(&self, packet: AudioPacket, arrival_micros: u64) {
        match self.0.try_send(Msg::Packet(packet, arrival_micros)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => tracing::debug!("audio thread behind; dropping a packet"),
        }
    }
}

impl AudioPlayer {
    /// Starts "kumo-audio" and waits (up to 3 s) for it to look at the output device.
    pub fn spawn(stats: SyncSender<stats::Event>, av: Arc<AvClock>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(PACKET_QUEUE);
        let (probe_tx, probe_rx) = mpsc::sync_channel(1);
        // Before the first use of ALSA: its own messages go to the log, kumo's to the console.
        super::alsa::route_messages();
        let handle = std::thread::Builder::new().name("kumo-audio".into()).spawn(move || {
            probe_tx.send(probe_channels()).ok();
            Thread::new(stats, av).run(&rx);
        })?;
        let device_channels = probe_rx.recv_timeout(Duration::from_secs(3)).unwrap_or(2);
        Ok(Self { tx: Some(tx), handle, device_channels })
    }

    /// Tells the thread what the host sends and hands over the queue for its packets:
    /// playback starts with the first of them, and ends when the input is dropped. Each
    /// packet played (not a concealed one) also goes to `record`.
    pub fn start(&mut self, format: AudioFormat, record: Option<crate::client::record::Tap>) -> Option<AudioInput> {
        let tx = self.tx.take()?;
        tx.try_send(Msg::Start(format, record)).ok();
        Some(AudioInput(tx))
    }

    /// Waits for the thread to end (once its input is gone).
    pub fn join(mut self) {
        self.tx.take();
        if self.handle.join().is_err() {
            tracing::error!("the audio thread panicked");
        }
    }
}

/// The speakers the default output device is set up for: the channels of its default
/// configuration (a sound server accepts any count and mixes, so the most it accepts says
/// nothing). 2 if there is no device.
fn probe_channels() -> u16 {
    let Some(device) = cpal::default_host().default_output_device() else { return 2 };
    device.default_output_config().map_or(2, |c| c.channels())
}

/// What the callback shares with the thread.
#[derive(Debug, Default)]
struct Shared {
    /// Errors the stream reported other than an xrun, and the newest one's words (set on
    /// cpal's error thread, read by the audio thread; never by the data callback).
    errors: AtomicU64,
    last_error: std::sync::Mutex<String>,
    /// Data callbacks so far: whether the device still asks for sound after an error.
    callbacks: AtomicU64,
    /// The thread has audio to give (so the ring running dry is an underrun, not a pause in
    /// the stream).
    feeding: AtomicBool,
    underruns: AtomicU64,
    /// Client clock, µs: when the next sample the callback takes will be heard.
    next_play_micros: AtomicU64,
    /// Frames the device takes per callback.
    period_frames: AtomicUsize,
}

/// An open output: the stream (kept alive here), the ring's writing end and the channel map.
struct Output {
    _stream: cpal::Stream,
    ring: RingWriter,
    shared: Arc<Shared>,
    channels: usize,
    /// Judges the stream's errors: passing, or dead.
    watch: StreamWatch,
}

/// Where decoded audio goes: the device, or the wall clock when there is none.
enum Sink {
    Device(Output),
    /// No device: the ring is drained at 48 kHz of wall time, silently.
    Clock {
        ring: RingWriter,
        reader: RingReader,
        since: Instant,
        drained: u64,
        channels: usize,
    },
}

impl Sink {
    fn ring(&self) -> &RingWriter {
        match self {
            Self::Device(o) => &o.ring,
            Self::Clock { ring, .. } => ring,
        }
    }

    fn channels(&self) -> usize {
        match self {
            Self::Device(o) => o.channels,
            Self::Clock { channels, .. } => *channels,
        }
    }

    /// When a sample written now, after what the ring holds, will be heard (client µs).
    fn play_at(&self, now_micros: u64) -> u64 {
        let queued = (self.ring().len() / self.channels().max(1)) as u64 * 1_000_000 / u64::from(RATE);
        match self {
            Self::Device(o) => o.shared.next_play_micros.load(Ordering::Relaxed).max(now_micros) + queued,
            Self::Clock { .. } => now_micros + queued,
        }
    }

    /// Frames the ring should hold: one device period plus `margin`.
    fn low_water(&self, margin: usize) -> usize {
        let period = match self {
            Self::Device(o) => o.shared.period_frames.load(Ordering::Relaxed),
            Self::Clock { .. } => 0,
        };
        // Before the first callback the period is not known: assume the one asked for.
        (if period == 0 { PERIOD_FRAMES as usize } else { period }) + margin
    }

    /// Drains a clock sink by the wall time that passed.
    fn tick(&mut self, scratch: &mut [f32]) {
        if let Self::Clock { reader, since, drained, channels, .. } = self {
            let due = since.elapsed().as_micros() as u64 * u64::from(RATE) / 1_000_000;
            let mut frames = due.saturating_sub(*drained) as usize;
            *drained = due;
            while frames > 0 {
                let n = frames.min(scratch.len() / *channels);
                reader.pop(&mut scratch[..n * *channels]);
                frames -= n;
            }
        }
    }
}

/// What kumo says, once, when no sound device can be opened at all.
const NO_DEVICE: &str = "no sound device here (no sound card, and no sound server such as PulseAudio or PipeWire running): the stream goes on without sound; start one and kumo picks it up within seconds, or pass --no-audio";

/// Whether this process said [`NO_DEVICE`] already.
static SAID_NO_DEVICE: AtomicBool = AtomicBool::new(false);

/// Opens the default output for `channels` speakers at 48 kHz.
fn open_output(channels: usize) -> Result<(Output, String), String> {
    let host = cpal::default_host();
    let device = host.default_output_device().ok_or(NO_DEVICE)?;
    let name = device.description().map_or_else(|_| "default output".to_owned(), |d| d.name().to_owned());
    let supported: Vec<_> = device
        .supported_output_configs()
        .map_err(|e| match e.kind() {
            cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::HostUnavailable => NO_DEVICE.to_owned(),
            _ => format!("the sound device '{name}' cannot list its formats ({e})"),
        })?
        .filter(|c| c.contains_rate(RATE))
        .collect();
    let pick = |format: cpal::SampleFormat| {
        let of_format = supported.iter().filter(|c| c.sample_format() == format);
        of_format
            .clone()
            .find(|c| usize::from(c.channels()) == channels)
            .or_else(|| of_format.max_by_key(|c| c.channels()))
    };
    let config = pick(cpal::SampleFormat::F32)
        .or_else(|| pick(cpal::SampleFormat::I16))
        .ok_or_else(|| format!("the audio device '{name}' cannot play 48 kHz float or 16-bit audio"))?;
    let format = config.sample_format();
    let device_channels = usize::from(config.channels());
    let shared = Arc::new(Shared::default());
    let mut stream_config = cpal::StreamConfig {
        channels: config.channels(),
        sample_rate: RATE,
        buffer_size: cpal::BufferSize::Fixed(PERIOD_FRAMES),
    };
    let (stream, ring) = if let Ok(built) = build(&device, &stream_config, format, &shared) {
        built
    } else {
        // Not every device takes a 5 ms period: let it choose.
        stream_config.buffer_size = cpal::BufferSize::Default;
        build(&device, &stream_config, format, &shared)
            .map_err(|e| format!("could not open the audio device '{name}': {e}"))?
    };
    stream.play().map_err(|e| format!("could not start the audio device '{name}': {e}"))?;
    Ok((Output { _stream: stream, ring, shared, channels: device_channels, watch: StreamWatch::default() }, name))
}

/// Builds the output stream and the ring it plays from.
fn build(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: cpal::SampleFormat,
    shared: &Arc<Shared>,
) -> Result<(cpal::Stream, RingWriter), cpal::Error> {
    let channels = usize::from(config.channels);
    let (writer, reader) = audio::ring(RING_FRAMES * channels);
    let s = shared.clone();
    // Called on cpal's own thread, not the data callback: it may lock and allocate. An xrun
    // is only counted; another error is kept for the audio thread, which judges whether the
    // stream played on after it (`StreamWatch`) and reopens a dead one.
    let on_error = move |err: cpal::Error| match err.kind() {
        cpal::ErrorKind::Xrun => {
            s.underruns.fetch_add(1, Ordering::Relaxed);
        }
        cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => tracing::debug!("audio device: {err}"),
        _ => {
            if let Ok(mut last) = s.last_error.lock() {
                *last = err.to_string();
            }
            s.errors.fetch_add(1, Ordering::Release);
        }
    };
    let sh = shared.clone();
    let stream = if format == cpal::SampleFormat::F32 {
        device.build_output_stream(
            *config,
            move |data: &mut [f32], info: &cpal::OutputCallbackInfo| fill(&reader, &sh, channels, data, info),
            on_error,
            None,
        )?
    } else {
        // Converted through a fixed scratch buffer, allocated here, never in the callback.
        let mut scratch = vec![0.0f32; 4096 * channels];
        device.build_output_stream(
            *config,
            move |data: &mut [i16], info: &cpal::OutputCallbackInfo| {
                for out in data.chunks_mut(scratch.len()) {
                    let buf = &mut scratch[..out.len()];
                    fill(&reader, &sh, channels, buf, info);
                    for (o, v) in out.iter_mut().zip(buf.iter()) {
                        *o = (v.clamp(-1.0, 1.0) * 32767.0) as i16;
                    }
                }
            },
            on_error,
            None,
        )?
    };
    Ok((stream, writer))
}

/// The device callback's work: copy from the ring, silence what is missing, publish timing.
fn fill(ring: &RingReader, shared: &Shared, channels: usize, data: &mut [f32], info: &cpal::OutputCallbackInfo) {
    let n = ring.pop(data);
    if n < data.len() {
        data[n..].fill(0.0);
        if shared.feeding.load(Ordering::Relaxed) {
            shared.underruns.fetch_add(1, Ordering::Relaxed);
        }
    }
    let ts = info.timestamp();
    let delay = ts.playback.duration_since(ts.callback).as_micros() as u64;
    let frames = (data.len() / channels.max(1)) as u64;
    let next = clock::now_micros() + delay + frames * 1_000_000 / u64::from(RATE);
    shared.next_play_micros.store(next, Ordering::Relaxed);
    shared.period_frames.store(frames as usize, Ordering::Relaxed);
    shared.callbacks.fetch_add(1, Ordering::Release);
}

/// The audio thread's state.
struct Thread {
    stats: SyncSender<stats::Event>,
    av: Arc<AvClock>,
    format: Option<AudioFormat>,
    decoders: Vec<opus::Decoder>,
    jitter: JitterBuffer<AudioPacket>,
    resampler: Resampler,
    sink: Option<Sink>,
    retry_at: Option<Instant>,
    backoff: Duration,
    counters: AudioCounters,
    /// Buffers reused for every packet.
    pair: Vec<f32>,
    pcm: Vec<f32>,
    resampled: Vec<f32>,
    mapped: Vec<f32>,
    scratch: Vec<f32>,
    /// Smoothed A/V offset (µs) and the extra delay (packets) it asks for.
    offset: Option<f64>,
    floor: usize,
    played: u64,
    /// The ring's margin over one period (frames), the device underruns it last saw, and
    /// when it last changed.
    margin: usize,
    margin_underruns: u64,
    margin_changed: Instant,
    /// The recording (`--record`), which gets each packet played.
    record: Option<crate::client::record::Tap>,
    /// The device's state for the figures, until the session's queue takes it: a state, not
    /// a counter, so it is kept and sent again rather than dropped when the queue is full
    /// (a reopened device once read "reopening" to the end of a loaded run).
    device_pending: Option<String>,
}

impl Thread {
    fn new(stats: SyncSender<stats::Event>, av: Arc<AvClock>) -> Self {
        Self {
            stats,
            av,
            format: None,
            decoders: Vec::new(),
            jitter: JitterBuffer::new(Duration::from_millis(5)),
            resampler: Resampler::new(2),
            sink: None,
            retry_at: None,
            backoff: BACKOFF_FIRST,
            counters: AudioCounters::default(),
            pair: Vec::new(),
            pcm: Vec::new(),
            resampled: Vec::new(),
            mapped: Vec::new(),
            scratch: vec![0.0; 4096 * 8],
            offset: None,
            floor: 0,
            played: 0,
            margin: MARGIN_FRAMES,
            margin_underruns: 0,
            margin_changed: Instant::now(),
            record: None,
            device_pending: None,
        }
    }

    fn report(&self, event: stats::Event) {
        self.stats.try_send(event).ok();
    }

    /// Says what the device is now; a newer state replaces one not yet taken.
    fn report_device(&mut self, description: String) {
        self.device_pending = Some(description);
        self.send_device();
    }

    fn send_device(&mut self) {
        if let Some(description) = self.device_pending.take()
            && let Err(TrySendError::Full(stats::Event::AudioDevice { description })) =
                self.stats.try_send(stats::Event::AudioDevice { description })
        {
            self.device_pending = Some(description);
        }
    }

    fn run(mut self, rx: &Receiver<Msg>) {
        let mut last_report = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(1)) {
                Ok(Msg::Start(format, record)) => self.start(format, record),
                Ok(Msg::Packet(packet, arrival)) => self.push(packet, arrival),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Everything already queued first, then the device.
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    Msg::Start(format, record) => self.start(format, record),
                    Msg::Packet(packet, arrival) => self.push(packet, arrival),
                }
            }
            self.keep_device();
            self.send_device();
            self.top_up();
            if last_report.elapsed() >= REPORT_EVERY {
                last_report = Instant::now();
                self.report_counters();
            }
        }
        self.send_device();
        self.report_counters();
    }

    fn start(&mut self, format: AudioFormat, record: Option<crate::client::record::Tap>) {
        self.record = record;
        let decoders: Result<Vec<_>, _> =
            (0..format.layout.streams()).map(|_| opus::Decoder::new(RATE, opus::Channels::Stereo)).collect();
        match decoders {
            Ok(d) => self.decoders = d,
            Err(err) => {
                tracing::error!("could not start the Opus decoder: {err}; playing without sound");
                return;
            }
        }
        let channels = usize::from(format.layout.channels());
        let frames = usize::from(format.packet_frames);
        self.jitter = JitterBuffer::new(format.packet_duration());
        self.resampler = Resampler::new(channels);
        self.pair = vec![0.0; frames * 2];
        self.pcm = vec![0.0; frames * channels];
        self.format = Some(format);
        self.open();
    }

    fn open(&mut self) {
        let Some(format) = self.format else { return };
        let channels = usize::from(format.layout.channels());
        match open_output(channels) {
            Ok((output, name)) => {
                tracing::info!("playing {} sound on {name} ({} channels)", format.layout.name(), output.channels);
                self.report_device(format!("{} on {name} ({} ch)", format.layout.name(), output.channels));
                self.sink = Some(Sink::Device(output));
                self.margin_underruns = 0;
                self.retry_at = None;
                self.backoff = BACKOFF_FIRST;
            }
            Err(message) => {
                let no_device = message == NO_DEVICE;
                // No device at all is said once per process (a kiosk's next session would
                // say it again, and again); another failure once per try after a working one.
                let first =
                    if no_device { !SAID_NO_DEVICE.swap(true, Ordering::Relaxed) } else { self.retry_at.is_none() };
                if !first {
                    tracing::debug!("{message}; retrying in {:?}", self.backoff);
                } else if no_device {
                    tracing::warn!("{message}");
                } else {
                    tracing::warn!("{message}; the stream goes on without sound");
                }
                // Every failed try: the overlay and --stats-json say the sound is off and why.
                let why = if no_device { "no sound device" } else { message.as_str() };
                self.report_device(format!("silent: {why}"));
                let (ring, reader) = audio::ring(RING_FRAMES * channels);
                self.sink = Some(Sink::Clock { ring, reader, since: Instant::now(), drained: 0, channels });
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    /// Reopens a failed device, or retries a missing one, with backoff.
    fn keep_device(&mut self) {
        if let Some(Sink::Device(output)) = &mut self.sink {
            let (errors, callbacks) =
                (output.shared.errors.load(Ordering::Acquire), output.shared.callbacks.load(Ordering::Acquire));
            let said = || output.shared.last_error.lock().map(|e| e.clone()).unwrap_or_default();
            match output.watch.check(errors, callbacks, clock::now_micros()) {
                Verdict::Fine => {}
                Verdict::Passed => tracing::debug!("the audio device reported an error and played on: {}", said()),
                Verdict::Dead => {
                    // Said with the device's own reason, so a failure in the field (or in
                    // CI) says what happened.
                    tracing::warn!("the audio device stopped ({}); reopening it", said());
                    self.counters.underruns += output.shared.underruns.load(Ordering::Relaxed);
                    self.report_device("reopening the audio device".into());
                    self.sink = None;
                    self.retry_at = Some(Instant::now() + self.backoff);
                }
            }
        }
        if self.retry_at.is_some_and(|at| Instant::now() >= at) {
            if let Some(Sink::Device(_)) = &self.sink {
                self.retry_at = None;
            } else {
                self.open();
            }
        }
        if let Some(sink) = &mut self.sink {
            sink.tick(&mut self.scratch);
        }
    }

    fn push(&mut self, packet: AudioPacket, arrival: u64) {
        let Some(format) = self.format else { return };
        if packet.layout != format.layout || packet.frames != format.packet_frames {
            tracing::debug!("ignoring an audio packet of another format");
            return;
        }
        if !packet.previous.is_empty() && packet.seq > 0 {
            let capture_micros = packet.capture_micros.saturating_sub(format.packet_duration().as_micros() as u64);
            let previous = AudioPacket {
                seq: packet.seq - 1,
                capture_micros,
                coded: packet.previous.clone(),
                previous: Vec::new(),
                ..packet
            };
            if self.jitter.insert_redundant(packet.seq - 1, capture_micros, previous) {
                self.counters.recovered += 1;
            }
        }
        self.jitter.push(packet.seq, packet.capture_micros, arrival, packet);
    }

    /// Keeps the ring at its low-water mark from the jitter buffer.
    fn top_up(&mut self) {
        let (Some(format), Some(sink)) = (self.format, &self.sink) else { return };
        let wire = usize::from(format.layout.channels());
        let device = sink.channels();
        self.adapt_margin();
        let Some(sink) = &self.sink else { return };
        let low_water = sink.low_water(self.margin) * device;
        while self.sink.as_ref().is_some_and(|s| s.ring().len() < low_water) {
            let capture = match self.jitter.pop() {
                Playout::Play { payload, .. } => {
                    self.decode(Some(&payload));
                    let capture = payload.capture_micros;
                    if let Some(record) = &self.record {
                        record.sound(capture, payload.coded);
                    }
                    Some(capture)
                }
                Playout::Conceal { .. } => {
                    self.decode(None);
                    None
                }
                Playout::Stretch => {
                    // Concealment that deepens the buffer: counted as stretched, not lost.
                    self.decode(None);
                    self.counters.concealed -= 1;
                    None
                }
                Playout::Wait => {
                    // Nothing to give (not started, or the stream paused): silence now is
                    // not the device's fault.
                    if let Some(Sink::Device(o)) = &self.sink {
                        o.shared.feeding.store(false, Ordering::Relaxed);
                    }
                    break;
                }
            };
            self.resampled.clear();
            self.resampler.process(&self.pcm, self.jitter.playout_rate(), &mut self.resampled);
            self.map_channels(wire, device);
            let Some(sink) = &self.sink else { return };
            let now = clock::now_micros();
            let play_at = sink.play_at(now);
            sink.ring().push(&self.mapped);
            if let Sink::Device(o) = sink {
                o.shared.feeding.store(true, Ordering::Relaxed);
            }
            if let Some(capture) = capture {
                self.on_played(latency_micros(capture, play_at), now);
            }
        }
    }

    /// Grows the ring's margin after a device underrun; shrinks it after a quiet while.
    fn adapt_margin(&mut self) {
        let Some(Sink::Device(output)) = &self.sink else { return };
        let underruns = output.shared.underruns.load(Ordering::Relaxed);
        if underruns > self.margin_underruns {
            self.margin = (self.margin + MARGIN_STEP).min(MARGIN_MAX);
            self.margin_changed = Instant::now();
        } else if self.margin_changed.elapsed() >= MARGIN_RELAX && self.margin > MARGIN_FRAMES {
            self.margin -= MARGIN_STEP;
            self.margin_changed = Instant::now();
        }
        self.margin_underruns = underruns;
    }

    /// Decodes one packet (or conceals a missing one) into `pcm`, in wire channel order.
    fn decode(&mut self, packet: Option<&AudioPacket>) {
        let channels = self.pcm.len() / (self.pair.len() / 2).max(1);
        for (s, decoder) in self.decoders.iter_mut().enumerate() {
            let input = packet.and_then(|p| p.coded.get(s)).map_or(&[][..], Vec::as_slice);
            let frames = match decoder.decode_float(input, &mut self.pair, false) {
                Ok(n) => n,
                Err(err) => {
                    // A damaged packet: conceal it like a lost one.
                    tracing::debug!("Opus could not decode a packet: {err}");
                    decoder.decode_float(&[], &mut self.pair, false).unwrap_or(0)
                }
            };
            let frames = frames.min(self.pair.len() / 2);
            self.pair[frames * 2..].fill(0.0);
            for (dst, src) in self.pcm.chunks_exact_mut(channels).zip(self.pair.chunks_exact(2)) {
                dst[2 * s..2 * s + 2].copy_from_slice(src);
            }
        }
        if packet.is_none() {
            self.counters.concealed += 1;
        } else {
            self.counters.played += 1;
        }
    }

    /// Remixes `resampled` (wire order) to the device's channel count, then puts the
    /// channels in the device's order, into `mapped`. On Linux cpal plays through ALSA, whose
    /// 5.1 and 7.1 order differs from the wire's.
    fn map_channels(&mut self, wire: usize, device: usize) {
        let frames = self.resampled.len() / wire.max(1);
        self.mapped.clear();
        self.mapped.resize(frames * device, 0.0);
        audio::remix(&self.resampled, wire, &mut self.mapped, device);
        if cfg!(target_os = "linux") && matches!(device, 6 | 8) {
            let order = audio::alsa_order(device);
            let mut wire_frame = [0.0f32; 8];
            for frame in self.mapped.chunks_exact_mut(device) {
                wire_frame[..device].copy_from_slice(frame);
                for (w, &d) in order.iter().enumerate() {
                    frame[d] = wire_frame[w];
                }
            }
        }
    }

    /// A packet's audio will be heard `latency` µs after capture (mixed clocks; only the
    /// difference with the video's counts).
    fn on_played(&mut self, latency: i64, now: u64) {
        self.played += 1;
        let video = self.av.video_latency(now);
        let offset = video.map(|v| latency - v);
        if let Some(o) = offset {
            let smoothed = self.offset.map_or(o as f64, |s| s * 0.95 + o as f64 * 0.05);
            self.offset = Some(smoothed);
            if self.played.is_multiple_of(SYNC_STEP_PACKETS) {
                self.step_floor(smoothed);
            }
        }
        if self.played.is_multiple_of(4) {
            let ring = self.sink.as_ref().map_or(0, |s| s.ring().len() / s.channels().max(1));
            let buffer_micros = self.jitter.buffered().as_micros() as u64 + ring as u64 * 1_000_000 / u64::from(RATE);
            self.report(stats::Event::AudioPlayed { buffer_micros, latency_micros: latency, av_offset_micros: offset });
        }
    }

    /// A/V sync: audio more than the dead band early is held back one packet more; audio late
    /// with a floor in place gets one packet of it back. One packet per step, every 2 s, is
    /// within what the buffer's playout rate moves (5 ms a second), so the buffer follows the
    /// floor smoothly and never reaches the cut; the floor starts from the network's own
    /// target, so each step changes the delay.
    fn step_floor(&mut self, offset_micros: f64) {
        let network = self.jitter.network_target();
        if offset_micros < -(SYNC_DEADBAND_MICROS as f64) {
            self.floor = (self.floor.max(network) + 1).min(20);
        } else if offset_micros > SYNC_DEADBAND_MICROS as f64 && self.floor > 0 {
            self.floor = if self.floor <= network + 1 { 0 } else { self.floor - 1 };
        } else {
            return;
        }
        self.jitter.set_floor(self.floor);
    }

    fn report_counters(&self) {
        let j = self.jitter.stats;
        let device_underruns = match &self.sink {
            Some(Sink::Device(o)) => o.shared.underruns.load(Ordering::Relaxed),
            _ => 0,
        };
        let counters = AudioCounters {
            received: j.received,
            late: j.late,
            stretched: j.stretched,
            underruns: self.counters.underruns + device_underruns,
            ..self.counters
        };
        let period = match &self.sink {
            Some(Sink::Device(o)) => o.shared.period_frames.load(Ordering::Relaxed),
            _ => 0,
        };
        let ring = self.sink.as_ref().map_or(0, |s| s.ring().len() / s.channels().max(1));
        tracing::debug!(
            ?counters,
            period,
            ring,
            depth = self.jitter.depth(),
            target = self.jitter.target(),
            rate = self.jitter.playout_rate(),
            "audio"
        );
        self.report(stats::Event::Audio(counters));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devices_state_waits_for_room_in_a_full_queue_and_the_newest_arrives() {
        let (tx, rx) = mpsc::sync_channel(1);
        let mut thread = Thread::new(tx, Arc::new(AvClock::default()));
        thread.report(stats::Event::AudioDevice { description: "a counter's place".into() });
        // The queue is full: the state is kept, and a newer one replaces it.
        thread.report_device("reopening the audio device".into());
        thread.report_device("stereo on pulse (2 ch)".into());
        thread.send_device();
        let description = |e: stats::Event| match e {
            stats::Event::AudioDevice { description } => description,
            other => panic!("{other:?}"),
        };
        assert_eq!(description(rx.try_recv().unwrap()), "a counter's place");
        assert!(rx.try_recv().is_err());
        // Room again: the newest state goes at the next turn of the loop, once.
        thread.send_device();
        assert_eq!(description(rx.try_recv().unwrap()), "stereo on pulse (2 ch)");
        thread.send_device();
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn an_old_picture_does_not_steer_the_sound() {
        let av = AvClock::default();
        assert_eq!(av.video_latency(5_000_000), None);
        av.on_decoded(1_000_000, 1_030_000);
        assert_eq!(av.video_latency(1_500_000), Some(30_000));
        // A still screen or a stalled stream: a second on, the figure no longer counts.
        assert_eq!(av.video_latency(2_100_000), None);
        av.on_presented(2_000_000, 2_045_000);
        assert_eq!(av.video_latency(2_100_000), Some(45_000));
        assert_eq!(av.video_latency(3_100_000), None);
    }

    #[test]
    fn ring_passes_every_sample_across_threads_in_order() {
        let (w, r) = audio::ring(64);
        let total = 200_000usize;
        let writer = std::thread::Builder::new().name("ring-writer".into()).spawn(move || {
            let mut next = 0usize;
            while next < total {
                let chunk: Vec<f32> = (next..(next + 17).min(total)).map(|v| v as f32).collect();
                next += w.push(&chunk);
                std::thread::yield_now();
            }
        });
        let mut expect = 0usize;
        let mut buf = [0.0f32; 13];
        while expect < total {
            let n = r.pop(&mut buf);
            for v in &buf[..n] {
                assert_eq!(*v, expect as f32);
                expect += 1;
            }
            if n == 0 {
                std::thread::yield_now();
            }
        }
        writer.map(std::thread::JoinHandle::join).ok();
    }
}

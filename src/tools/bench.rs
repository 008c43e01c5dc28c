//! `kumo bench`: figures, not pass/fail. openh264 encode and decode cost per frame at 720p,
//! 1080p and 2160p on the synthetic scene, the present path's cost per frame (upload + draw,
//! with and without the overlay) at 1080p and 2160p, input datagram size, rate and
//! input→host latency, capture→decoded latency of the headless demo, and the audio path's CPU
//! cost, latency and A/V offset.

use crate::client::StreamRequest;
use crate::client::decode::{H264Decoder, Picture};
use crate::client::present::{Compositor, Gpu, OFFSCREEN_FORMAT, offscreen_target};
use crate::core::input::key;
use crate::core::input::script::{Change, Script};
use crate::core::sim::scene::{self, I420};
use crate::core::stats::histogram::Histogram;
use crate::core::view::color::ColorSpace;
use crate::core::view::overlay::{FrameTimes, OverlayModel};
use crate::core::wire::input::{ACK_DATAGRAM_BYTES, INPUT_DATAGRAM_BYTES};
use crate::host::encode::{EncoderSettings, H264Encoder};
use crate::tools::demo::DemoClient;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Runs the benchmarks and prints a table. `frames`: frames per codec size (2160p runs a
/// quarter); `seconds`: length of each latency run; `only`: one part alone.
/// One part of the benchmark alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Audio,
    Capture,
    Present,
    Ladder,
}

pub fn run(frames: u32, seconds: u64, only: Option<Only>, interrupted: &Arc<AtomicBool>) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "kumo bench: {cores} cores, openh264 {} assembly",
        if cfg!(target_arch = "x86_64") { "x86-64" } else { "generic" }
    );
    println!();
    match only {
        Some(Only::Audio) => return audio_table(&crate::runtime()?, seconds, interrupted),
        Some(Only::Capture) => {
            capture_table(&crate::runtime()?, frames);
            return Ok(());
        }
        Some(Only::Present) => {
            present_table(frames);
            return Ok(());
        }
        Some(Only::Ladder) => return ladder_table(frames),
        None => {}
    }
    fec_table();
    println!();
    ladder_table(frames)?;
    println!();
    println!("codec (synthetic scene, {frames} frames; 2160p {} frames)", (frames / 4).max(10));
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "size", "kbps", "enc mean ms", "enc p95 ms", "dec mean ms", "dec p95 ms"
    );
    for (w, h, kbps) in [(1280u16, 720u16, 10_000u32), (1920, 1080, 20_000), (3840, 2160, 50_000)] {
        let n = if w > 2000 { (frames / 4).max(10) } else { frames };
        let (enc, dec, bytes) =
            codec(EncoderSettings { width: w, height: h, fps: 60, bitrate_kbps: kbps, threads: 0 }, n)?;
        let ms = |h: &Histogram, q: f64| h.quantile_micros(q).unwrap_or(0.0) / 1000.0;
        let mean = |h: &Histogram| h.mean_micros().unwrap_or(0.0) / 1000.0;
        let out_kbps = bytes as f64 * 8.0 / 1000.0 / (f64::from(n) / 60.0);
        println!(
            "{:<10} {:>12.0} {:>12.2} {:>12.2} {:>12.2} {:>12.2}",
            format!("{w}x{h}"),
            out_kbps,
            mean(&enc),
            ms(&enc, 0.95),
            mean(&dec),
            ms(&dec, 0.95)
        );
    }
    println!();
    let rt = crate::runtime()?;
    capture_table(&rt, frames);
    println!();
    present_table(frames);
    println!();
    input_table(&rt, seconds, interrupted)?;
    println!();
    println!("capture→decoded, kumo demo --headless on loopback, {seconds} s each");
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "stream", "p50 ms", "p95 ms", "p99 ms", "decoded", "dropped", "dec p50"
    );
    for (w, h) in [(1280u16, 720u16), (1920, 1080)] {
        let request = StreamRequest {
            width: w,
            height: h,
            fps: 60,
            bitrate_kbps: if w > 1280 { 20_000 } else { 10_000 },
            min_bitrate_kbps: None,
            adapt_size: false,
        };
        let outcome = crate::tools::demo::run_headless(
            &rt,
            request,
            DemoClient::default(),
            Some(Duration::from_secs(seconds)),
            interrupted,
        )?;
        let s = outcome.summary;
        println!(
            "{:<12} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>11} {:>9.2}",
            format!("{w}x{h}@60"),
            s.capture_to_decoded_ms.p50,
            s.capture_to_decoded_ms.p95,
            s.capture_to_decoded_ms.p99,
            s.frames_decoded,
            s.frames_dropped,
            s.decode_ms.p50
        );
    }
    println!();
    audio_table(&rt, seconds, interrupted)?;
    Ok(())
}

/// The audio path: Opus's CPU cost per 5 ms packet, and latency and A/V offset of the headless
/// demo through whatever output device ALSA gives (a silent clock without one).
fn audio_table(rt: &tokio::runtime::Runtime, seconds: u64, interrupted: &Arc<AtomicBool>) -> anyhow::Result<()> {
    use crate::core::audio::{PACKET_FRAMES, RATE, SpeakerLayout};
    println!("audio CPU, Opus low-delay, 5 ms packets (one core)");
    println!("{:<8} {:>14} {:>14} {:>12}", "layout", "encode µs/pkt", "decode µs/pkt", "% of a core");
    for layout in [SpeakerLayout::Stereo, SpeakerLayout::Surround71] {
        let frames = usize::from(PACKET_FRAMES);
        let mut pcm = vec![0.0f32; frames * 2];
        let mut out = vec![0.0f32; frames * 2];
        let streams = layout.streams();
        let mut encoders = (0..streams)
            .map(|_| opus::Encoder::new(RATE, opus::Channels::Stereo, opus::Application::LowDelay))
            .collect::<Result<Vec<_>, _>>()?;
        let mut decoders =
            (0..streams).map(|_| opus::Decoder::new(RATE, opus::Channels::Stereo)).collect::<Result<Vec<_>, _>>()?;
        let (mut enc, mut dec) = (Duration::ZERO, Duration::ZERO);
        let n = 2000u32;
        for p in 0..n {
            crate::core::audio::sound::render(
                u64::from(p) * frames as u64,
                &[u64::from(p / 200) * 48_000],
                2,
                &mut pcm,
            );
            for (e, d) in encoders.iter_mut().zip(decoders.iter_mut()) {
                let t = Instant::now();
                let bytes = e.encode_vec_float(&pcm, 1000)?;
                enc += t.elapsed();
                let t = Instant::now();
                d.decode_float(&bytes, &mut out, false)?;
                dec += t.elapsed();
            }
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
        let core_pct = (per(enc) + per(dec)) / 5_000.0 * 100.0;
        println!("{:<8} {:>14.1} {:>14.1} {:>12.2}", layout.name(), per(enc), per(dec), core_pct);
    }
    println!();
    println!("audio latency, kumo demo --headless 1280x720@60 on loopback, {seconds} s");
    let request = FIXED_720P60;
    let client = DemoClient { audio: true, ..DemoClient::default() };
    let s =
        crate::tools::demo::run_headless(rt, request, client, Some(Duration::from_secs(seconds)), interrupted)?.summary;
    println!("device              {}", s.audio_device);
    println!(
        "capture→heard       p50 {:.2}  p95 {:.2}  p99 {:.2} ms",
        s.audio_latency_ms.p50, s.audio_latency_ms.p95, s.audio_latency_ms.p99
    );
    println!("capture→decoded     p50 {:.2} ms (video, for comparison)", s.capture_to_decoded_ms.p50);
    println!(
        "A/V offset          p50 {:+.2}  p99 {:+.2} ms (+: sound after picture)",
        s.av_offset_ms.p50, s.av_offset_ms.p99
    );
    println!("audio buffer        p50 {:.2} ms", s.audio_buffer_ms.p50);
    println!(
        "packets             {} received, {} played, {} concealed, {} underruns",
        s.audio_packets_received, s.audio_packets_played, s.audio_packets_concealed, s.audio_underruns
    );
    Ok(())
}

/// Input over loopback: a script of key presses at random 10–40 ms intervals (so inputs do not
/// phase-lock with frames) through the headless demo.
fn input_table(rt: &tokio::runtime::Runtime, seconds: u64, interrupted: &Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut steps = Vec::new();
    let (mut t, mut down) = (200u64, false);
    let mut rng = crate::core::sim::rng::XorShift::from_state(0x2545_F491_4F6C_DD1D);
    while t < seconds * 1000 {
        let gap = rng.next_u64() % 31;
        down = !down;
        steps.push((Duration::from_millis(t), Change::Key { usage: key::SPACE, down }));
        t += 10 + gap;
    }
    let script = Script { steps };
    let request = FIXED_720P60;
    let outcome = crate::tools::demo::run_headless(
        rt,
        request,
        DemoClient { input_script: Some(script), ..DemoClient::default() },
        Some(Duration::from_secs(seconds)),
        interrupted,
    )?;
    let s = outcome.summary;
    println!("input over loopback ({seconds} s, a key toggled every 10-40 ms, 720p60 stream running)");
    println!(
        "datagram {INPUT_DATAGRAM_BYTES} bytes (ack {ACK_DATAGRAM_BYTES}); {} sent ({:.0}/s), {} accepted by the host",
        s.inputs_sent,
        s.inputs_sent as f64 / s.duration_secs.max(1e-9),
        s.inputs_received_by_host
    );
    println!(
        "input→host latency: p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms",
        s.input_to_host_ms.p50, s.input_to_host_ms.p95, s.input_to_host_ms.p99
    );
    Ok(())
}

/// Prints the present path's cost per frame (upload + draw + GPU finish), without and with
/// the overlay, on whatever adapter wgpu picks (lavapipe on a machine without a GPU).
/// The real host's capture: a private Xvfb per size (as `--app` starts), its root window
/// grabbed through shared memory and through the socket, and BGRX → I420 alone.
fn capture_table(rt: &tokio::runtime::Runtime, frames: u32) {
    use crate::host::x11::{Capture, to_i420};
    println!("desktop capture per frame ({frames} frames; Xvfb, BT.709 conversion by yuvutils-rs)");
    println!(
        "{:<10} {:>14} {:>14} {:>14} {:>14}",
        "size", "shm+conv p50", "shm+conv p95", "socket+conv p50", "conv alone p50"
    );
    let config = crate::host::app::AppConfig { command: "sleep 600".into(), server: None };
    for (w, h) in [(1280u16, 720u16), (1920, 1080)] {
        let app = match rt.block_on(crate::host::app::App::launch(&config, w, h)) {
            Ok(app) => app,
            Err(err) => {
                println!("desktop capture: skipped ({err})");
                return;
            }
        };
        let mut picture = I420::new(w.into(), h.into());
        let mut time = |shared: bool| {
            let mut hist = Histogram::default();
            let Ok(mut capture) = Capture::open_with(&app.display, Some(&app.cookie), None, shared) else {
                return hist;
            };
            capture.capture_every_slot();
            for _ in 0..frames {
                let started = Instant::now();
                if capture.grab(&mut picture).is_err() {
                    break;
                }
                hist.record(started.elapsed().as_micros() as u64);
            }
            hist
        };
        let (shm, socket) = (time(true), time(false));
        let bgrx = vec![0x40u8; usize::from(w) * usize::from(h) * 4];
        let mut conv = Histogram::default();
        for _ in 0..frames {
            let started = Instant::now();
            to_i420(&bgrx, w, h, &mut picture);
            conv.record(started.elapsed().as_micros() as u64);
        }
        let ms = |h: &Histogram, q: f64| h.quantile_micros(q).unwrap_or(0.0) / 1000.0;
        println!(
            "{:<10} {:>14.2} {:>14.2} {:>14.2} {:>14.2}",
            format!("{w}x{h}"),
            ms(&shm, 0.5),
            ms(&shm, 0.95),
            ms(&socket, 0.5),
            ms(&conv, 0.5)
        );
        rt.block_on(app.end());
    }
}

/// What one present-path measurement includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The picture handed over: the GPU's upload of three planes, or the CPU's YUV→RGB.
    Upload,
    /// And drawn letterboxed into the frame (the YUV→RGB pass, or the copy or scale).
    Video,
    /// And the overlay over it (egui's layout, tessellation and drawing).
    Overlay,
}

/// Prints the present path's cost per frame, stage by stage, for both presenters: the GPU's
/// on whatever adapter wgpu picks (lavapipe on a machine without a GPU; each figure waits for
/// the GPU to finish) and the software one. The copy to the display is not in it (the window's
/// `render` figure has it).
fn present_table(frames: u32) {
    let gpu = Gpu::open(Gpu::instance(None), None);
    let n = (frames / 4).max(20);
    match &gpu {
        Ok(gpu) => println!(
            "present path per frame, mean ms over {n} frames (gpu: {}, cpu: kumo's software presenter)",
            gpu.adapter_name()
        ),
        Err(err) => println!("present path per frame, mean ms over {n} frames (gpu: skipped, {err})"),
    }
    println!("{:<22} {:<5} {:>14} {:>14} {:>14}", "stream → frame", "path", "upload/convert", "+video", "+overlay");
    let sizes: [((usize, usize), (u32, u32)); 3] =
        [((1280, 720), (1280, 720)), ((1920, 1080), (1920, 1080)), ((1280, 720), (1920, 1080))];
    for (stream, frame) in sizes {
        let label = if (stream.0 as u32, stream.1 as u32) == frame {
            format!("{}x{}", stream.0, stream.1)
        } else {
            format!("{}x{} → {}x{}", stream.0, stream.1, frame.0, frame.1)
        };
        let mean = |h: &Histogram| h.mean_micros().unwrap_or(0.0) / 1000.0;
        if let Ok(gpu) = &gpu {
            let [a, b, c] =
                [Stage::Upload, Stage::Video, Stage::Overlay].map(|s| present_gpu(gpu, stream, frame, n, s));
            println!("{label:<22} {:<5} {:>14.2} {:>14.2} {:>14.2}", "gpu", mean(&a), mean(&b), mean(&c));
        }
        let [a, b, c] = [Stage::Upload, Stage::Video, Stage::Overlay].map(|s| present_cpu(stream, frame, n, s));
        println!("{label:<22} {:<5} {:>14.2} {:>14.2} {:>14.2}", "cpu", mean(&a), mean(&b), mean(&c));
    }
}

/// The frames a present-path measurement draws: the synthetic scene, and the overlay's model
/// with a frame-time line that moves every frame as the real one does.
struct PresentFrames {
    pic: I420,
    times: FrameTimes,
    model: OverlayModel,
    ctx: egui::Context,
}

impl PresentFrames {
    fn new((w, h): (usize, usize)) -> Self {
        let ctx = egui::Context::default();
        ctx.set_visuals(egui::Visuals::dark());
        Self {
            pic: I420::new(w, h),
            times: FrameTimes::default(),
            model: OverlayModel { width: w as u16, height: h as u16, fps: 60, ..OverlayModel::default() },
            ctx,
        }
    }

    /// Frame `i`'s picture.
    fn picture(&mut self, i: u32) -> Picture {
        scene::render(i.into(), 60, i, &mut self.pic);
        let (w, h) = (self.pic.width, self.pic.height);
        Picture {
            width: w,
            height: h,
            y: self.pic.y.clone(),
            u: self.pic.u.clone(),
            v: self.pic.v.clone(),
            ..Default::default()
        }
    }

    /// Frame `i`'s egui output for a frame of `size`, with the overlay or without.
    fn ui(&mut self, i: u32, size: (u32, u32), overlay: bool) -> egui::FullOutput {
        self.times.on_present(Duration::from_micros(u64::from(i) * 16_667 + u64::from(i % 7) * 700));
        self.model.frame_times_ms = self.times.iter().collect();
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(size.0 as f32, size.1 as f32))),
            ..Default::default()
        };
        let model = &self.model;
        self.ctx.run_ui(input, |ui| {
            if overlay {
                crate::client::overlay::overlay_ui(ui, model);
            }
        })
    }
}

/// Times `draw` over `n` frames of the scene (and the overlay, by `stage`) for a frame of
/// `frame` pixels. The first frames create textures and the font atlas: not counted.
fn time_present(
    stream: (usize, usize),
    frame: (u32, u32),
    n: u32,
    stage: Stage,
    mut draw: impl FnMut(&Picture, Option<egui::FullOutput>, &egui::Context),
) -> Histogram {
    let mut frames = PresentFrames::new(stream);
    let mut hist = Histogram::new();
    for i in 0..n {
        let picture = frames.picture(i);
        let ui = (stage != Stage::Upload).then(|| frames.ui(i, frame, stage == Stage::Overlay));
        let t = Instant::now();
        draw(&picture, ui, &frames.ctx);
        if i > 2 {
            hist.record(t.elapsed().as_micros() as u64);
        }
    }
    hist
}

/// Times `n` frames through the GPU compositor into an offscreen target of `frame` pixels,
/// each waiting for the GPU to finish.
fn present_gpu(gpu: &Gpu, stream: (usize, usize), frame: (u32, u32), n: u32, stage: Stage) -> Histogram {
    let mut compositor = Compositor::new(&gpu.device, OFFSCREEN_FORMAT);
    compositor.video.set_color(&gpu.queue, ColorSpace::HOST_DEFAULT);
    let target = offscreen_target(gpu, frame);
    let view = target.create_view(&wgpu::TextureViewDescriptor::default());
    time_present(stream, frame, n, stage, |picture, ui, ctx| {
        compositor.video.upload(&gpu.device, &gpu.queue, picture);
        match ui {
            Some(ui) => compositor.render(gpu, &view, frame, true, ctx, ui),
            None => {
                gpu.queue.submit([]);
            }
        }
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).ok();
    })
}

/// Times `n` frames through the software presenter into a frame of `frame` pixels.
fn present_cpu(stream: (usize, usize), frame: (u32, u32), n: u32, stage: Stage) -> Histogram {
    let mut compositor = crate::client::present::cpu::CpuCompositor::new();
    let mut out = vec![0u32; frame.0 as usize * frame.1 as usize];
    time_present(stream, frame, n, stage, |picture, ui, ctx| {
        compositor.upload(picture);
        if let Some(ui) = ui {
            compositor.render_ui(&mut out, frame, true, ctx, ui);
        }
    })
}

/// Encodes and decodes `n` frames; returns encode and decode time histograms and total bytes.
fn codec(settings: EncoderSettings, n: u32) -> anyhow::Result<(Histogram, Histogram, usize)> {
    let fps = settings.fps;
    let mut encoder = H264Encoder::new(settings)?;
    let mut decoder = H264Decoder::new()?;
    let mut pic = I420::new(settings.width.into(), settings.height.into());
    let mut bytes = Vec::new();
    let (mut enc, mut dec, mut total) = (Histogram::new(), Histogram::new(), 0);
    for i in 0..n {
        scene::render(i.into(), fps.into(), i, &mut pic);
        let t = Instant::now();
        encoder.encode(&pic, Duration::from_secs(u64::from(i)) / u32::from(fps), &mut bytes)?;
        let encoded = t.elapsed();
        let t = Instant::now();
        decoder.decode(&bytes, |_| ())?;
        let decoded = t.elapsed();
        // The first frame is an IDR after encoder set-up: not representative.
        if i > 0 {
            enc.record(encoded.as_micros() as u64);
            dec.record(decoded.as_micros() as u64);
            total += bytes.len();
        }
    }
    Ok((enc, dec, total))
}

/// The latency runs' stream: 720p60 at a fixed 10 Mbit/s, its size kept.
const FIXED_720P60: StreamRequest = StreamRequest {
    width: 1280,
    height: 720,
    fps: 60,
    bitrate_kbps: 10_000,
    min_bitrate_kbps: None,
    adapt_size: false,
};

/// openh264's bitrate floor at each rung of a 1080p60 session's ladder: the synthetic scene
/// encoded as the host does, asked for 100 kbit/s, which no rung can reach without skipping
/// frames; what comes out is the floor (`core::video::ladder::FLOOR` is calibrated from it),
/// beside the ladder's model and what it needs with headroom.
fn ladder_table(frames: u32) -> anyhow::Result<()> {
    use crate::core::video::ladder::{self, Rung};
    println!("picture ladder: openh264's floor (synthetic scene asked for 100 kbit/s, {frames} frames)");
    println!("{:<16} {:>10} {:>14} {:>14} {:>14}", "rung", "Mpx/s", "floor kbps", "model kbps", "needed kbps");
    for rung in ladder::rungs(Rung { width: 1920, height: 1080, fps: 60 }) {
        let settings =
            EncoderSettings { width: rung.width, height: rung.height, fps: rung.fps, bitrate_kbps: 100, threads: 0 };
        let (_, _, bytes) = codec(settings, frames)?;
        let seconds = f64::from(frames.saturating_sub(1)) / f64::from(rung.fps);
        println!(
            "{:<16} {:>10.1} {:>14.0} {:>14.0} {:>14}",
            rung.to_string(),
            rung.pixel_rate() / 1e6,
            bytes as f64 * 8.0 / 1000.0 / seconds,
            ladder::floor_kbps(rung),
            ladder::needed_kbps(rung)
        );
    }
    Ok(())
}

/// Forward error correction's cost (`core::video::fec`, 512-byte shards): the host's parity for one
/// frame, and the client's rebuild when as many shards are missing as the parity can replace
/// (the worst it is asked to do), for a 1080p inter frame at 20 Mbit/s (~42 KB) and an IDR.
fn fec_table() {
    use crate::core::video::fec::{self, Recovery};
    use crate::core::wire::{FrameHeader, FrameKind};
    println!("forward error correction, reed-solomon-simd (one core)");
    println!("{:<14} {:>7} {:>7} {:>8} {:>12} {:>12}", "frame", "share", "shard", "parity", "protect µs", "rebuild µs");
    for (name, len) in [("inter 42 KB", 42_000usize), ("IDR 200 KB", 200_000)] {
        for share in [fec::BASE_SHARE, 0.29, fec::MAX_SHARE] {
            let header = FrameHeader {
                frame_number: 1,
                capture_micros: 0,
                encode_micros: 0,
                kind: FrameKind::Inter,
                width: 1920,
                height: 1080,
                payload_len: len as u32,
                input_seq: 0,
                held_back: 0,
                host_behind: 0,
            };
            let mut stream = Vec::with_capacity(len + 64);
            header.encode(&mut stream);
            stream.extend((0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]));
            let runs = 40u32;
            // What the host cuts this frame into, on a path whose datagrams hold 1200 bytes.
            let shard_len = fec::shard_len_for(stream.len(), 1200);
            // One untimed run first: the code's tables and working space are set up once.
            let mut parity = fec::protect(0, &stream, shard_len, |k| fec::parity_for(share, k));
            let t = Instant::now();
            for _ in 0..runs {
                parity = fec::protect(0, &stream, shard_len, |k| fec::parity_for(share, k));
            }
            let protect = t.elapsed() / runs;
            // Leave out the first `m` data shards of each block: the most the parity can rebuild.
            let layout = crate::core::wire::parity::ShardLayout { stream_len: stream.len(), shard_len };
            let t = Instant::now();
            for _ in 0..runs {
                let mut r = Recovery::new();
                for block in 0..layout.blocks() {
                    let (k, first) = (layout.block_shards(block), block * crate::core::wire::parity::MAX_DATA_SHARDS);
                    let m = fec::parity_for(share, k).min(k);
                    let start = (first + m) * shard_len;
                    let end = ((first + k) * shard_len).min(stream.len());
                    if start < end {
                        r.on_chunk(start as u64, &stream[start..end]).ok();
                    }
                }
                for p in &parity {
                    r.on_parity(p.clone()).ok();
                }
                assert!(r.try_recover().is_some_and(|f| f.is_ok()), "the bench's frame did not rebuild");
            }
            let rebuild = t.elapsed() / runs;
            println!(
                "{:<14} {:>6.0}% {:>7} {:>8} {:>12.0} {:>12.0}",
                name,
                share * 100.0,
                shard_len,
                parity.len(),
                protect.as_secs_f64() * 1e6,
                rebuild.as_secs_f64() * 1e6
            );
        }
    }
}

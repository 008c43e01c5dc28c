//! `kumo latency`: the latency lab's runner.
//!
//! Owns one measurement: it plays a seeded script of key presses at random intervals (so
//! inputs never phase-lock with frames) into a session with the embedded host or a remote
//! one, optionally through the impairment relay, feeds the session's events to `core::sim::lab`,
//! and writes `latency.csv`, `summary.json` and `latency.png` to the output folder. Headless
//! for automation, or in a window for a tester with a photodiode or a camera.

use crate::client::window::{self, WindowOptions};
use crate::client::{self, ClientConfig, StreamRequest};
use crate::core::input::script::Script;
use crate::core::sim::impair::Impairment;
use crate::core::sim::lab::{self, Lab, LabSummary, Region, STAGES};
use crate::core::stats::Stats;
use crate::core::view::plot;
use crate::net::relay;
use crate::net::tls::{Fingerprint, Identity, Verify};
use anyhow::Context as _;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// When the first input is sent: after the stream has settled (first IDR decoded).
const FIRST_INPUT: Duration = Duration::from_secs(1);
/// Inputs come at random gaps in this range (ms): never in step with 60 fps frames.
const GAP_MS: (u64, u64) = (40, 160);
/// How long after the last input the lab waits for its response.
const GRACE: Duration = Duration::from_millis(1500);

/// What to measure.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// A remote host and how to trust it; `None`: the embedded host.
    pub host: Option<(SocketAddr, Verify)>,
    /// The certificate to present to a remote host (the embedded host makes its own pair).
    pub identity: Option<Identity>,
    pub request: StreamRequest,
    pub inputs: u32,
    pub out: PathBuf,
    /// `None`: headless. With a window, its options.
    pub window: Option<WindowOptions>,
    pub impairment: Impairment,
    /// Seeds the input timing (the relay has its own in `impairment`).
    pub seed: u64,
    /// Time presses by a region of the picture instead of the host's marks.
    pub watch: Option<Watch>,
}

/// `--watch`: the region whose change answers a press, and what presses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub region: Region,
    pub press: WatchPress,
}

/// What `--watch` presses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchPress {
    /// Keys by their script names, pressed in turn (`Down,Up` moves a menu's highlight away
    /// and back, so every press changes the same place).
    Keys(Vec<String>),
    /// The left mouse button, in the middle of the region.
    Click,
}

/// With `--watch`, presses are taps (released after this long) at random gaps in this range
/// (ms): long enough for a program to draw its answer before the next press.
const TAP_MS: u64 = 50;
/// With `--watch`, the first press comes later than `FIRST_INPUT`: a program started for the
/// session (`kumo host --app`) needs a moment to draw its window.
const WATCH_FIRST_INPUT: Duration = Duration::from_secs(2);
const WATCH_GAP_MS: (u64, u64) = (200, 400);

/// The script of `presses` taps for `watch` at seeded random gaps in a `width` × `height`
/// stream; returns it with its length.
pub fn watch_script(watch: &Watch, presses: u32, seed: u64, width: u16, height: u16) -> (Script, Duration) {
    let mut rng = crate::core::sim::rng::XorShift::from_state(seed.max(1).wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let mut text = String::new();
    let taps: Vec<(String, String)> = match &watch.press {
        WatchPress::Keys(names) => {
            names.iter().map(|name| (format!("key {name} down"), format!("key {name} up"))).collect()
        }
        WatchPress::Click => {
            let r = watch.region;
            let x = (f64::from(r.x) + f64::from(r.width) / 2.0) / f64::from(width.max(1));
            let y = (f64::from(r.y) + f64::from(r.height) / 2.0) / f64::from(height.max(1));
            writeln!(text, "500 mouse position {x:.5} {y:.5}").ok();
            vec![("mouse button left down".to_owned(), "mouse button left up".to_owned())]
        }
    };
    let mut at = WATCH_FIRST_INPUT.as_millis() as u64;
    for (down, up) in taps.iter().cycle().take(presses as usize) {
        writeln!(text, "{at} {down}").ok();
        writeln!(text, "{} {up}", at + TAP_MS).ok();
        at += WATCH_GAP_MS.0 + rng.next_u64() % (WATCH_GAP_MS.1 - WATCH_GAP_MS.0);
    }
    writeln!(text, "{at} end").ok();
    // The generated text is valid for every key name `from_name` knows.
    let script = Script::parse(&text).unwrap_or_default();
    (script, Duration::from_millis(at))
}

/// The script: `inputs` presses and releases of Space at seeded random gaps; each is one
/// input state. Returns it with its length.
pub fn input_script(inputs: u32, seed: u64) -> (Script, Duration) {
    let mut rng = crate::core::sim::rng::XorShift::from_state(seed.max(1).wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let mut at = FIRST_INPUT.as_millis() as u64;
    let mut text = String::new();
    for i in 0..inputs {
        writeln!(text, "{at} key Space {}", if i % 2 == 0 { "down" } else { "up" }).ok();
        at += GAP_MS.0 + rng.next_u64() % (GAP_MS.1 - GAP_MS.0);
    }
    writeln!(text, "{at} end").ok();
    // The generated text is always valid.
    let script = Script::parse(&text).unwrap_or_default();
    (script, Duration::from_millis(at))
}

/// Runs a measurement and writes its files; returns the summary.
pub fn run(rt: &Runtime, options: &LabOptions, interrupted: &Arc<AtomicBool>) -> anyhow::Result<LabSummary> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("could not create the output folder {}", options.out.display()))?;
    let (script, length) = match &options.watch {
        None => input_script(options.inputs, options.seed),
        Some(watch) => {
            let (w, h) = (options.request.width, options.request.height);
            watch_script(watch, options.inputs, options.seed, w, h)
        }
    };
    let region = options.watch.as_ref().map(|w| w.region);
    let measure = |host: SocketAddr, verify: Verify, identity: Option<Identity>| -> anyhow::Result<(Lab, Stats)> {
        let _guard = rt.enter();
        let relay = if options.impairment.is_none() {
            None
        } else {
            Some(rt.block_on(relay::start(([127, 0, 0, 1], 0).into(), host, options.impairment.clone()))?)
        };
        let config = ClientConfig {
            identity,
            request: options.request,
            name: "kumo latency lab".into(),
            input_script: Some(script.clone()),
            // The lab measures the picture; sound would only compete for the CPU.
            audio: false,
            watch: region,
            ..ClientConfig::new(relay.as_ref().map_or(host, |r| r.addr), verify)
        };
        let result = match &options.window {
            None => headless(rt, config, length + GRACE, options.inputs, interrupted),
            Some(window) => windowed(rt, config, window.clone(), length + GRACE, interrupted),
        };
        drop(relay);
        result
    };
    let (lab, stats) = match options.host {
        Some((host, verify)) => measure(host, verify, options.identity.clone())?,
        None => crate::tools::demo::with_embedded_host(rt, |host, fingerprint: Fingerprint, identity| {
            measure(host, Verify::Pinned(fingerprint), Some(identity))
        })?,
    };
    let s = stats.summary(Duration::from_secs(1));
    let headless = options.window.is_none();
    let (summary, rows) = lab.summary(s.clock_offset_ms * 1000.0, s.clock_offset_error_ms * 1000.0, headless);
    write_outputs(&options.out, &summary, &rows)?;
    Ok(summary)
}

fn headless(
    rt: &Runtime,
    config: ClientConfig,
    length: Duration,
    inputs: u32,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<(Lab, Stats)> {
    let lab = config.watch.map_or_else(Lab::new, Lab::watching);
    let session = rt.block_on(client::connect(config)).context("the latency lab could not connect")?;
    let (mut lab, mut stats) = (lab, Stats::new(0));
    let started = Instant::now();
    while started.elapsed() < length + Duration::from_secs(5) && !interrupted.load(Ordering::Relaxed) {
        match session.events.recv_timeout(Duration::from_millis(50)) {
            Ok(event) => {
                lab.on_event(&event);
                stats.apply(event);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if started.elapsed() >= length {
            // Every input sent and answered: done early.
            let (answered, missing) = lab.progress(true);
            if answered + missing >= u64::from(inputs) && missing == 0 {
                break;
            }
        }
    }
    session.stop();
    while let Ok(event) = session.events.try_recv() {
        lab.on_event(&event);
        stats.apply(event);
    }
    rt.block_on(session.finish()).ok();
    Ok((lab, stats))
}

fn windowed(
    rt: &Runtime,
    config: ClientConfig,
    options: WindowOptions,
    length: Duration,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<(Lab, Stats)> {
    let lab = Arc::new(Mutex::new(config.watch.map_or_else(Lab::new, Lab::watching)));
    let stats = Arc::new(Mutex::new(Stats::new(0)));
    let options = WindowOptions {
        duration: Some(length),
        observer: Some(crate::client::window::Observer::new(lab.clone(), stats.clone())),
        ..options
    };
    window::run(rt, config, options, interrupted)?;
    let lab = lab.lock().map_or_else(|e| e.into_inner().clone(), |l| l.clone());
    let stats = stats.lock().map_or_else(|e| e.into_inner().clone(), |s| s.clone());
    Ok((lab, stats))
}

fn write_outputs(out: &Path, summary: &LabSummary, rows: &[lab::InputRow]) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("could not write {}", path.display()))
    };
    write("latency.csv", lab::csv(rows).as_bytes())?;
    write("summary.json", serde_json::to_string_pretty(summary)?.as_bytes())?;
    let stages: Vec<[f64; 7]> = rows.iter().map(|r| r.stages_ms).collect();
    let names = STAGES.map(|s| s.replace('_', " "));
    let names: [&str; 7] = std::array::from_fn(|i| names[i].as_str());
    let total = &summary.input_to_present_ms;
    let title = format!(
        "kumo latency lab: {} inputs, input to present p50 {:.1} ms, p99 {:.1} ms",
        summary.inputs, total.p50, total.p99
    );
    let chart = plot::LatencyChart {
        stages: &stages,
        names: &names,
        title: &title,
        p50: total.p50,
        p95: total.p95,
        p99: total.p99,
    };
    write("latency.png", &png_bytes(&plot::latency_rgb(&chart).map_err(anyhow::Error::msg)?)?)?;
    write("latency.svg", plot::latency_svg(&chart).map_err(anyhow::Error::msg)?.as_bytes())?;
    Ok(())
}

/// Encodes an RGB canvas as PNG.
fn png_bytes(canvas: &plot::Canvas) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, canvas.width as u32, canvas.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&canvas.rgb)?;
    writer.finish()?;
    Ok(bytes)
}

/// The table `kumo latency` prints.
pub fn report(summary: &LabSummary, out: &Path) -> String {
    let line = |name: &str, s: &lab::Spread| {
        format!("{name:<18} p50 {:7.2}  p95 {:7.2}  p99 {:7.2}  max {:7.2} ms\n", s.p50, s.p95, s.p99, s.max)
    };
    let mut t = String::from("── kumo latency lab ───────────────────────────────────────────\n");
    writeln!(
        t,
        "{}{} sent, {} responses verified from pixels, {} missing, {} not confirmed, {} superseded",
        if summary.watch.is_some() { "presses           " } else { "inputs            " },
        summary.inputs,
        summary.responses_verified,
        summary.responses_missing,
        summary.responses_unconfirmed,
        summary.inputs_superseded
    )
    .ok();
    if !summary.missing_inputs.is_empty() {
        let list: Vec<String> = summary.missing_inputs.iter().map(u64::to_string).collect();
        writeln!(t, "never shown       inputs {}", list.join(", ")).ok();
    }
    writeln!(
        t,
        "clock             host − client {:+.3} ms ± {:.3} ms (NTP-style probes)",
        summary.clock_offset_ms, summary.clock_offset_error_ms
    )
    .ok();
    t.push_str(&line("input→present", &summary.input_to_present_ms));
    for (name, s) in [
        ("  send", &summary.send_ms),
        ("  uplink", &summary.uplink_ms),
        ("  wait for capture", &summary.wait_capture_ms),
        ("  encode", &summary.encode_ms),
        ("  downlink", &summary.downlink_ms),
        ("  decode", &summary.decode_ms),
        ("  present", &summary.present_ms),
    ] {
        t.push_str(&line(name, s));
    }
    t.push_str(&line("capture→present", &summary.capture_to_present_ms));
    writeln!(
        t,
        "burnt-in times    {} frames read back, header and pixels differ by at most {:.1} ms",
        summary.time_marks_read, summary.time_mark_max_disagreement_ms
    )
    .ok();
    if summary.headless {
        t.push_str("headless          \"present\" is the decoded picture (no display)\n");
    }
    writeln!(t, "files             {0}/latency.csv, {0}/summary.json, {0}/latency.png, {0}/latency.svg", out.display())
        .ok();
    match &summary.watch {
        None => t.push_str(
            "sensor            the flash is the bottom-right eighth of the picture, white for one frame on\n                  the first frame that reflects each input (docs/latency-lab.md)\n",
        ),
        Some(w) => {
            let r = w.region;
            writeln!(
                t,
                "watched           {},{} {}x{}: a response is a mean luma step over {:.1} (of 255); {} pictures changed",
                r.x, r.y, r.width, r.height, w.threshold_luma, w.changes_seen
            )
            .ok();
            if w.compared_with_marks > 0 {
                let d = &w.disagreement_with_marks_ms;
                writeln!(
                    t,
                    "against marks     {} presses also timed by the host's marks: differ by p50 {:.1}, max {:.1} ms",
                    w.compared_with_marks, d.p50, d.max
                )
                .ok();
            }
        }
    }
    t
}

//! The commands of `kumo::tools`: `demo`, `latency`, `relay`, `fuzz` and `bench`.

use super::client::{audio, client_identity, duration, gamepads, input_script, verify_host, window_options};
use super::report::report;
use super::{ImpairArgs, LatencyArgs, RunArgs, StreamArgs, interrupt_flag};
use anyhow::{Context as _, bail};
use kumo::client::StreamRequest;
use kumo::client::window::WindowOptions;
use kumo::core::config::Settings;
use kumo::net::tls::Verify;
use kumo::tools::demo::DemoClient;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// `kumo demo`: the embedded host and the client on loopback, headless or in a window.
pub(crate) fn demo(
    rt: &tokio::runtime::Runtime,
    file: &Settings,
    run: &RunArgs,
    stream: &StreamArgs,
) -> anyhow::Result<ExitCode> {
    let interrupted = interrupt_flag(rt);
    let client = demo_client(run, file)?;
    let outcome = if run.headless {
        kumo::tools::demo::run_headless(rt, stream.request(file), client, duration(run)?, &interrupted)?
    } else {
        let options = window_options(run, file)?;
        kumo::tools::demo::run_windowed(rt, stream.request(file), client, options, &interrupted)?
    };
    report(&outcome, run.stats_json.as_ref())
}

pub(crate) fn demo_client(run: &RunArgs, file: &Settings) -> anyhow::Result<DemoClient> {
    Ok(DemoClient {
        input_script: input_script(run)?,
        gamepads: gamepads(run, file).then(|| file.gamepad_mappings.clone()),
        audio: audio(run, file),
        speakers: run.speakers.or(file.speakers),
        record: run.record.clone(),
        replay: super::client::replay(run, file),
    })
}

/// `kumo latency`: its flags checked, then one measurement.
pub(crate) fn latency(rt: &tokio::runtime::Runtime, file: &Settings, args: LatencyArgs) -> anyhow::Result<ExitCode> {
    let LatencyArgs { host, host_fingerprint, headless, inputs, out, watch, key, click, impair, stream } = args;
    let interrupted = interrupt_flag(rt);
    let host = host.map(|h| verify_host(h, host_fingerprint.as_deref(), false).map(|v| (h, v))).transpose()?;
    let lab = LabRun { headless, inputs, out, watch: watch.map(|r| watching(&r, &key, click)).transpose()? };
    measure(rt, host, lab, &impair, &stream.request(file), file, &interrupted)
}

/// `kumo latency`: one measurement, its files and its table.
/// How `kumo latency` runs: headless or in a window, how many inputs, and where its files go.
struct LabRun {
    headless: bool,
    inputs: u32,
    out: PathBuf,
    watch: Option<kumo::tools::lab::Watch>,
}

/// `--watch`'s region and what presses it (`--key`, `--click`), checked.
fn watching(region: &str, key: &str, click: bool) -> anyhow::Result<kumo::tools::lab::Watch> {
    use kumo::core::input::key as keys;
    let region = kumo::core::sim::lab::Region::parse(region).map_err(anyhow::Error::msg)?;
    let press = if click {
        kumo::tools::lab::WatchPress::Click
    } else {
        let names: Vec<String> = key.split(',').map(|k| k.trim().to_owned()).collect();
        if let Some(unknown) = names.iter().find(|k| keys::from_name(k).is_none()) {
            anyhow::bail!(
                "`--key {unknown}` is not a key kumo knows; use a script key name such as Space, A, Enter or F1 (several, comma-separated, are pressed in turn)"
            );
        }
        kumo::tools::lab::WatchPress::Keys(names)
    };
    Ok(kumo::tools::lab::Watch { region, press })
}

fn measure(
    rt: &tokio::runtime::Runtime,
    host: Option<(SocketAddr, Verify)>,
    lab: LabRun,
    impair: &ImpairArgs,
    request: &StreamRequest,
    file: &Settings,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<ExitCode> {
    let LabRun { headless, inputs, out, watch } = lab;
    if let Some(w) = &watch
        && !w.region.fits(request.width, request.height)
    {
        anyhow::bail!(
            "the region {},{} {}x{} is not inside the {}x{} stream; give X,Y,W,H in pixels of the stream (--width, --height)",
            w.region.x,
            w.region.y,
            w.region.width,
            w.region.height,
            request.width,
            request.height
        );
    }
    let window = (!headless).then(|| WindowOptions {
        overlay: true,
        vsync: file.vsync.unwrap_or_default(),
        renderer: file.renderer.unwrap_or_default(),
        ..WindowOptions::default()
    });
    let options = kumo::tools::lab::LabOptions {
        identity: host.is_some().then(client_identity),
        host,
        request: *request,
        inputs,
        out: out.clone(),
        window,
        impairment: impair.impairment(),
        seed: impair.seed,
        watch,
    };
    let summary = kumo::tools::lab::run(rt, &options, interrupted)?;
    print!("{}", kumo::tools::lab::report(&summary, &out));
    Ok(ExitCode::SUCCESS)
}

/// `kumo relay`: impairs the path until Ctrl-C.
pub(crate) fn relay(
    rt: &tokio::runtime::Runtime,
    listen: SocketAddr,
    to: SocketAddr,
    impair: &ImpairArgs,
) -> anyhow::Result<ExitCode> {
    let relay = rt
        .block_on(kumo::net::relay::start(listen, to, impair.impairment()))
        .with_context(|| format!("could not listen on {listen}"))?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let delay = match (impair.delay.is_zero(), impair.jitter.is_zero()) {
        (true, true) => "no delay".to_owned(),
        (_, true) => format!("delay {:.1} ms", ms(impair.delay)),
        _ => format!("delay {:.1} ms ± {:.1} ms", ms(impair.delay), ms(impair.jitter)),
    };
    println!(
        "kumo relay: {} → {to}, {delay}, loss {:.2} %, reorder {:.2} %, rate {}, seed {}; Ctrl-C stops it",
        relay.addr,
        impair.loss * 100.0,
        impair.reorder * 100.0,
        impair.rate.map_or_else(|| "unlimited".to_owned(), |r| format!("{:.1} Mbit/s", r as f64 / 1e6)),
        impair.seed
    );
    rt.block_on(async { tokio::signal::ctrl_c().await.ok() });
    Ok(ExitCode::SUCCESS)
}

/// `kumo fuzz`: each target for `seconds`, a line of figures each; fails if anything failed.
/// With `write_seeds`, only writes each target's seeds into the corpus.
pub(crate) fn fuzz(
    only: Option<&str>,
    seconds: u64,
    seed: u64,
    corpus: &std::path::Path,
    write_seeds: bool,
) -> anyhow::Result<ExitCode> {
    if write_seeds {
        for t in kumo::tools::fuzz::targets() {
            kumo::tools::fuzz::write_seeds(&t, corpus)?;
        }
        println!("seeds written to {}", corpus.display());
        return Ok(ExitCode::SUCCESS);
    }
    let targets: Vec<_> =
        kumo::tools::fuzz::targets().into_iter().filter(|t| only.is_none_or(|o| o == t.name)).collect();
    if targets.is_empty() {
        bail!("no fuzz target is called {}; see `kumo fuzz --help`", only.unwrap_or_default());
    }
    println!("{:<14} {:>12} {:>10} {:>9}", "target", "executions", "exec/s", "failures");
    let mut failed = 0;
    for t in &targets {
        let r = kumo::tools::fuzz::run(t, seed, u64::MAX, Duration::from_secs(seconds), Some(corpus));
        let rate = r.executions as f64 / r.elapsed.as_secs_f64().max(1e-9);
        println!("{:<14} {:>12} {:>10.0} {:>9}", t.name, r.executions, rate, r.failures.len());
        failed += r.failures.len();
    }
    if failed > 0 {
        println!("failing inputs were written to {}/<target>/crash-*.bin", corpus.display());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kumo bench`: all the figures, or only the audio, capture or present ones.
#[expect(clippy::fn_params_excessive_bools, reason = "one per --*-only flag, as clap parses them")]
pub(crate) fn bench(
    rt: &tokio::runtime::Runtime,
    frames: u32,
    seconds: u64,
    audio_only: bool,
    capture_only: bool,
    present_only: bool,
    ladder_only: bool,
) -> anyhow::Result<ExitCode> {
    use kumo::tools::bench::Only;
    let interrupted = interrupt_flag(rt);
    let only = [
        (audio_only, Only::Audio),
        (capture_only, Only::Capture),
        (present_only, Only::Present),
        (ladder_only, Only::Ladder),
    ]
    .into_iter()
    .find_map(|(asked, only)| asked.then_some(only));
    kumo::tools::bench::run(frames, seconds, only, &interrupted)?;
    Ok(ExitCode::SUCCESS)
}

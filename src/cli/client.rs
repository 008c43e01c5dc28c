//! `kumo connect` and `kumo probe`, and what every command that shows a stream takes from
//! its flags and the config file: the host and how to verify it, the client's certificate,
//! the client's and the window's settings.

use super::report::report;
use super::{ConnectArgs, RunArgs, StreamArgs, interrupt_flag};
use anyhow::{Context as _, bail};
use kumo::client::ClientConfig;
use kumo::client::window::WindowOptions;
use kumo::core::config::Settings;
use kumo::core::input::script::Script;
use kumo::net::tls::{Fingerprint, Identity, Role, Verify};
use kumo::net::trust::KnownHosts;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `kumo connect`: streams from the host named (or the best of several) until the window
/// closes, the duration ends or Ctrl-C.
pub(crate) fn connect(rt: &tokio::runtime::Runtime, file: &Settings, args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let ConnectArgs { hosts, host_fingerprint, insecure_skip_verify, connect_timeout, reconnect_timeout, run, stream } =
        args;
    let (host, verify) = choose_host(rt, &hosts, host_fingerprint.as_deref(), insecure_skip_verify, file)?;
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(connect_timeout),
        reconnect_timeout: reconnect_timeout_of(reconnect_timeout, file),
        ..client_config(host, verify, "kumo client", &run, &stream, file)?
    };
    let interrupted = interrupt_flag(rt);
    let outcome = if run.headless {
        kumo::client::headless::run(rt, config, duration(&run)?, &interrupted, periods(&run)?.as_ref())?
    } else {
        kumo::client::window::run(rt, config, window_options(&run, file)?, &interrupted)?
    };
    report(&outcome, run.stats_json.as_ref())
}

/// `kumo probe`: the probe table, and whether any host answered.
pub(crate) fn probe(
    rt: &tokio::runtime::Runtime,
    file: &Settings,
    hosts: &[SocketAddr],
    host_fingerprint: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let candidates = candidates(hosts, host_fingerprint, file)?;
    let (names, outcomes) = probe_all(rt, &candidates);
    print!("{}", kumo::core::probe::table(&names, &outcomes));
    Ok(if kumo::core::probe::choose(&outcomes).is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The host `kumo connect` streams from: the one named, or the best of several (or of the
/// config file's regions) by probe, with the probe table printed.
fn choose_host(
    rt: &tokio::runtime::Runtime,
    hosts: &[SocketAddr],
    host_fingerprint: Option<&str>,
    insecure_skip_verify: bool,
    file: &Settings,
) -> anyhow::Result<(SocketAddr, Verify)> {
    if hosts.len() == 1 {
        let host = hosts[0];
        Ok((host, verify_host(host, host_fingerprint, insecure_skip_verify)?))
    } else {
        if insecure_skip_verify {
            bail!("--insecure-skip-verify takes one host: choosing among hosts needs their fingerprints");
        }
        let candidates = candidates(hosts, host_fingerprint, file)?;
        let (names, outcomes) = probe_all(rt, &candidates);
        print!("{}", kumo::core::probe::table(&names, &outcomes));
        let Some(best) = kumo::core::probe::choose(&outcomes) else {
            bail!("none of the hosts answered the probe; check that they run and that the addresses are right");
        };
        Ok((candidates[best].1, candidates[best].2))
    }
}

/// How to check `host`: the fingerprint given, else the one pairing kept, else (only if asked
/// for) not at all.
pub(crate) fn verify_host(
    host: SocketAddr,
    fingerprint: Option<&str>,
    insecure_skip_verify: bool,
) -> anyhow::Result<Verify> {
    if let Some(fp) = fingerprint {
        return Ok(Verify::Pinned(Fingerprint::parse(fp)?));
    }
    if let Some(dir) = kumo::config::default_client_dir() {
        let known = KnownHosts::in_dir(&dir);
        if let Some(paired) = known.lookup(host)? {
            tracing::info!(%host, name = %paired.name, "the host's certificate is the one pairing kept");
            return Ok(Verify::Pinned(paired.fingerprint));
        }
    }
    if insecure_skip_verify {
        return Ok(Verify::InsecureSkip);
    }
    bail!(
        "kumo cannot verify host {host}: this client is not paired with it. Run `kumo host --pair` on the host and `kumo pair {host}` here (or pass --host-fingerprint with the SHA-256 that `kumo host` printed at start)"
    )
}

/// The hosts to choose from: those named (with the one fingerprint given), else the config
/// file's regions. Each as (name, address, verification).
fn candidates(
    hosts: &[SocketAddr],
    fingerprint: Option<&str>,
    file: &Settings,
) -> anyhow::Result<Vec<(String, SocketAddr, Verify)>> {
    if hosts.is_empty() {
        if file.regions.is_empty() {
            bail!(
                "no hosts to choose from: name them (kumo probe HOST HOST …) or list them as [[regions]] in the config file"
            );
        }
        return file
            .regions
            .iter()
            .map(|r| {
                let verify = verify_host(r.host, r.host_fingerprint.as_deref(), false)
                    .with_context(|| format!("region {}", r.name))?;
                Ok((format!("{} ({})", r.name, r.host), r.host, verify))
            })
            .collect();
    }
    // Each host pinned by the fingerprint given, or else by its pairing.
    hosts.iter().map(|&h| Ok((h.to_string(), h, verify_host(h, fingerprint, false)?))).collect()
}

/// Probes every candidate at once: their names and what was measured.
fn probe_all(
    rt: &tokio::runtime::Runtime,
    candidates: &[(String, SocketAddr, Verify)],
) -> (Vec<String>, Vec<kumo::core::probe::ProbeResult>) {
    let targets: Vec<_> = candidates.iter().map(|(_, addr, verify)| (*addr, *verify)).collect();
    let outcomes = rt.block_on(kumo::net::probe::probe_all(&targets));
    (candidates.iter().map(|c| c.0.clone()).collect(), outcomes)
}

/// This client's certificate, kept in ~/.local/share/kumo/client so that hosts it paired with
/// know it again; a fresh one (warned about) if that folder cannot be used.
pub(crate) fn client_identity() -> Identity {
    let kept = kumo::config::default_client_dir().map(|dir| Identity::load_or_create(&dir, Role::Client));
    match kept {
        Some(Ok(identity)) => identity,
        Some(Err(err)) => {
            tracing::warn!("{err}; using a certificate for this run only, which no host is paired with");
            fresh_identity()
        }
        None => fresh_identity(),
    }
}

fn fresh_identity() -> Identity {
    // Generating a P-256 key fails only if the system has no randomness at all.
    Identity::generate(Role::Client).unwrap_or_else(|e| panic!("cannot make a certificate: {e}"))
}

/// A client's settings from the flags and the file (`CONNECT_TIMEOUT` to connect,
/// `RECONNECT_TIMEOUT` to reconnect).
pub(crate) fn client_config(
    host: SocketAddr,
    verify: Verify,
    name: &str,
    run: &RunArgs,
    stream: &StreamArgs,
    file: &Settings,
) -> anyhow::Result<ClientConfig> {
    Ok(ClientConfig {
        identity: Some(client_identity()),
        request: stream.request(file),
        name: name.into(),
        input_script: input_script(run)?,
        gamepads: gamepads(run, file),
        gamepad_mappings: file.gamepad_mappings.clone(),
        audio: audio(run, file),
        speakers: run.speakers.or(file.speakers),
        record: run.record.clone(),
        replay: replay(run, file),
        clipboard: clipboard(run, file),
        mic: run.mic.clone().or_else(|| file.mic.clone()).map(|device| kumo::client::MicConfig {
            device,
            push_to_talk: file.hotkeys.chord_of(kumo::core::input::hotkeys::Action::PushToTalk).is_some(),
        }),
        ..ClientConfig::new(host, verify)
    })
}

/// Whether to share the clipboard: never headless (no display to share with) or in a kiosk,
/// else as the flag, the file, or yes.
pub(crate) fn clipboard(run: &RunArgs, file: &Settings) -> bool {
    !run.headless && !file.kiosk.enabled && run.clipboard.or(file.clipboard).unwrap_or(true)
}

/// How long `kumo connect` keeps reconnecting: the flag, else the config file, else the
/// default; 0 and kiosk mode mean for ever (`None`).
fn reconnect_timeout_of(flag: Option<u64>, file: &Settings) -> Option<Duration> {
    match flag.or(file.reconnect_timeout) {
        _ if file.kiosk.enabled => None,
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs)),
        None => Some(kumo::client::RECONNECT_TIMEOUT),
    }
}

pub(crate) fn window_options(run: &RunArgs, file: &Settings) -> anyhow::Result<WindowOptions> {
    if run.headless && file.kiosk.enabled {
        bail!(
            "the config file turns kiosk mode on ([kiosk] enabled = true), which needs a window: leave out --headless"
        );
    }
    Ok(WindowOptions {
        vsync: run.vsync.or(file.vsync).unwrap_or_default(),
        renderer: run.renderer.or(file.renderer).unwrap_or_default(),
        overlay: run.overlay.or(file.overlay).unwrap_or(false),
        fullscreen: run.fullscreen.or(file.fullscreen).unwrap_or(false),
        duration: duration(run)?,
        color: run.color.or(file.color),
        relative_mouse: run.relative_mouse.or(file.relative_mouse).unwrap_or(false),
        hotkeys: file.hotkeys.clone(),
        observer: None,
        kiosk: file.kiosk.enabled.then(|| kiosk_options(file)),
    })
}

fn kiosk_options(file: &Settings) -> kumo::client::window::KioskOptions {
    kumo::client::window::KioskOptions { policy: file.kiosk.policy.clone(), admin_exit: file.kiosk.admin_exit }
}

/// The replay buffer's length: the flag, else the config file's `replay_seconds`.
pub(crate) fn replay(run: &RunArgs, file: &Settings) -> Option<Duration> {
    run.replay_seconds.or(file.replay_seconds).filter(|&s| s > 0).map(|s| Duration::from_secs(s.into()))
}

/// Whether to read gamepads: never headless, else as the flag, the file, or yes.
pub(crate) fn gamepads(run: &RunArgs, file: &Settings) -> bool {
    !run.headless && run.gamepads.or(file.gamepads).unwrap_or(true)
}

/// Whether to play sound: not with `--no-audio`, else as the file says, else yes.
pub(crate) fn audio(run: &RunArgs, file: &Settings) -> bool {
    !run.no_audio && file.audio.unwrap_or(true)
}

pub(crate) fn input_script(run: &RunArgs) -> anyhow::Result<Option<Script>> {
    let Some(path) = &run.input_script else { return Ok(None) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("could not read the input script {}", path.display()))?;
    let script = Script::parse(&text).with_context(|| format!("the input script {} is not valid", path.display()))?;
    Ok(Some(script))
}

pub(crate) fn duration(run: &RunArgs) -> anyhow::Result<Option<Duration>> {
    run.duration
        .map(|secs| {
            Duration::try_from_secs_f64(secs).with_context(|| format!("--duration {secs} is not a number of seconds"))
        })
        .transpose()
}

/// `--stats-every`'s periods, written beside `--stats-json`'s file.
fn periods(run: &RunArgs) -> anyhow::Result<Option<kumo::client::headless::Periods>> {
    let (Some(secs), Some(path)) = (run.stats_every, &run.stats_json) else { return Ok(None) };
    if !(secs.is_finite() && secs >= 1.0) {
        anyhow::bail!("--stats-every wants at least 1 second, not {secs}");
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".periods.jsonl");
    let path = PathBuf::from(name);
    // A file from an earlier run would mix two sessions' periods.
    std::fs::remove_file(&path).ok();
    Ok(Some(kumo::client::headless::Periods { every: Duration::from_secs_f64(secs), path }))
}

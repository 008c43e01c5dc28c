//! The `kumo` command line: `demo`, `host`, `pair`, `connect`, `probe`, `kiosk`, `latency`, `relay`,
//! `fuzz`, `bench`.

mod cli;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use cli::{Cli, Command, ImpairArgs, RunArgs, StreamArgs};
use kumo::client::SessionReport;
use kumo::client::window::WindowOptions;
use kumo::client::{ClientConfig, End, StreamRequest};
use kumo::core::config::Settings;
use kumo::core::input::script::Script;
use kumo::core::stats::Summary;
use kumo::core::trust::{Pin, date};
use kumo::core::wire::PROTOCOL_VERSION;
use kumo::net::tls::{Fingerprint, Identity, Role, Verify};
use kumo::net::trust::KnownHosts;
use kumo::tools::demo::DemoClient;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Every allocation of the process counted (live bytes and allocations), for soaks: two
/// relaxed atomic additions each.
#[global_allocator]
static HEAP: kumo::tools::heap::Counting = kumo::tools::heap::Counting;

fn main() -> ExitCode {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // openh264's error type captures a backtrace on every decode error, which is costly
        // when RUST_BACKTRACE is set; panics keep their backtraces.
        // SAFETY: first statement of main, before any other thread exists.
        #[expect(unsafe_code, reason = "set_var before any other thread exists (SAFETY above)")]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn interrupt_flag(rt: &tokio::runtime::Runtime) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, Ordering::Relaxed);
        }
    });
    flag
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

fn window_options(run: &RunArgs, file: &Settings) -> anyhow::Result<WindowOptions> {
    if run.headless && file.kiosk.enabled {
        bail!(
            "the config file turns kiosk mode on ([kiosk] enabled = true), which needs a window: leave out --headless"
        );
    }
    Ok(WindowOptions {
        vsync: run.vsync.or(file.vsync).unwrap_or_default(),
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

/// Whether to read gamepads: never headless, else as the flag, the file, or yes.
fn gamepads(run: &RunArgs, file: &Settings) -> bool {
    !run.headless && run.gamepads.or(file.gamepads).unwrap_or(true)
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

fn latency(
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

/// `kumo fuzz`: each target for `seconds`, a line of figures each; fails if anything failed.
/// With `write_seeds`, only writes each target's seeds into the corpus.
fn fuzz(
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

/// `kumo relay`: impairs the path until Ctrl-C.
fn relay(
    rt: &tokio::runtime::Runtime,
    listen: SocketAddr,
    to: SocketAddr,
    impair: &ImpairArgs,
) -> anyhow::Result<ExitCode> {
    let relay = rt
        .block_on(kumo::net::relay::start(listen, to, impair.impairment()))
        .with_context(|| format!("could not listen on {listen}"))?;
    println!(
        "kumo relay: {} → {to}, delay {:?} ± {:?}, loss {:.2} %, reorder {:.2} %, rate {}, seed {}; Ctrl-C stops it",
        relay.addr,
        impair.delay,
        impair.jitter,
        impair.loss * 100.0,
        impair.reorder * 100.0,
        impair.rate.map_or_else(|| "unlimited".to_owned(), |r| format!("{:.1} Mbit/s", r as f64 / 1e6)),
        impair.seed
    );
    rt.block_on(async { tokio::signal::ctrl_c().await.ok() });
    Ok(ExitCode::SUCCESS)
}

/// Whether to play sound: not with `--no-audio`, else as the file says, else yes.
fn audio(run: &RunArgs, file: &Settings) -> bool {
    !run.no_audio && file.audio.unwrap_or(true)
}

fn input_script(run: &RunArgs) -> anyhow::Result<Option<Script>> {
    let Some(path) = &run.input_script else { return Ok(None) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("could not read the input script {}", path.display()))?;
    let script = Script::parse(&text).with_context(|| format!("the input script {} is not valid", path.display()))?;
    Ok(Some(script))
}

fn duration(run: &RunArgs) -> anyhow::Result<Option<Duration>> {
    run.duration
        .map(|secs| {
            Duration::try_from_secs_f64(secs).with_context(|| format!("--duration {secs} is not a number of seconds"))
        })
        .transpose()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = kumo::runtime().context("could not start the network runtime")?;
    // Only the commands that show a stream read the config file.
    let settings = || kumo::config::load(cli.config.as_deref()).map(|(file, _)| file);
    match cli.command {
        Command::Demo { run, stream } => {
            let file = settings()?;
            let interrupted = interrupt_flag(&rt);
            let client = demo_client(&run, &file)?;
            let outcome = if run.headless {
                kumo::tools::demo::run_headless(&rt, stream.request(&file), client, duration(&run)?, &interrupted)?
            } else {
                let options = window_options(&run, &file)?;
                kumo::tools::demo::run_windowed(&rt, stream.request(&file), client, options, &interrupted)?
            };
            report(&outcome, run.stats_json.as_ref())
        }
        Command::Host(args) => cli::host::run(&rt, args),
        Command::Pair { host, pin, name } => pair(&rt, host, pin, name),
        Command::List { wait } => list_hosts(&rt, wait),
        Command::Connect {
            hosts,
            host_fingerprint,
            insecure_skip_verify,
            connect_timeout,
            reconnect_timeout,
            run,
            stream,
        } => {
            let file = settings()?;
            let (host, verify) = choose_host(&rt, &hosts, host_fingerprint.as_deref(), insecure_skip_verify, &file)?;
            let config = ClientConfig {
                connect_timeout: Duration::from_secs(connect_timeout),
                reconnect_timeout: reconnect_timeout_of(reconnect_timeout, &file),
                ..client_config(host, verify, "kumo client", &run, &stream, &file)?
            };
            let interrupted = interrupt_flag(&rt);
            let outcome = if run.headless {
                kumo::client::headless::run(&rt, config, duration(&run)?, &interrupted, periods(&run)?.as_ref())?
            } else {
                kumo::client::window::run(&rt, config, window_options(&run, &file)?, &interrupted)?
            };
            report(&outcome, run.stats_json.as_ref())
        }
        Command::Probe { hosts, host_fingerprint } => {
            let file = settings()?;
            let candidates = candidates(&hosts, host_fingerprint.as_deref(), &file)?;
            let (names, outcomes) = probe(&rt, &candidates);
            print!("{}", kumo::core::probe::table(&names, &outcomes));
            Ok(if kumo::core::probe::choose(&outcomes).is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Kiosk { host, host_fingerprint, run, stream } => {
            let mut file = settings()?;
            file.kiosk.enabled = true;
            kiosk(&rt, host, host_fingerprint, &run, &stream, &file)
        }
        Command::Latency { host, host_fingerprint, headless, inputs, out, watch, key, click, impair, stream } => {
            let file = settings()?;
            let interrupted = interrupt_flag(&rt);
            let host = host.map(|h| verify_host(h, host_fingerprint.as_deref(), false).map(|v| (h, v))).transpose()?;
            let lab = LabRun { headless, inputs, out, watch: watch.map(|r| watching(&r, &key, click)).transpose()? };
            latency(&rt, host, lab, &impair, &stream.request(&file), &file, &interrupted)
        }
        Command::Relay { listen, to, impair } => relay(&rt, listen, to, &impair),
        Command::Fuzz { target, seconds, seed, corpus, write_seeds } => {
            fuzz(target.as_deref(), seconds, seed, &corpus, write_seeds)
        }
        Command::Bench { frames, seconds, audio_only, capture_only } => {
            let interrupted = interrupt_flag(&rt);
            let only = match (audio_only, capture_only) {
                (true, _) => Some(kumo::tools::bench::Only::Audio),
                (false, capture) => capture.then_some(kumo::tools::bench::Only::Capture),
            };
            kumo::tools::bench::run(frames, seconds, only, &interrupted)?;
            Ok(ExitCode::SUCCESS)
        }
    }
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
        let (names, outcomes) = probe(rt, &candidates);
        print!("{}", kumo::core::probe::table(&names, &outcomes));
        let Some(best) = kumo::core::probe::choose(&outcomes) else {
            bail!("none of the hosts answered the probe; check that they run and that the addresses are right");
        };
        Ok((candidates[best].1, candidates[best].2))
    }
}

/// How to check `host`: the fingerprint given, else the one pairing kept, else (only if asked
/// for) not at all.
fn verify_host(host: SocketAddr, fingerprint: Option<&str>, insecure_skip_verify: bool) -> anyhow::Result<Verify> {
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

/// This client's certificate, kept in ~/.local/share/kumo/client so that hosts it paired with
/// know it again; a fresh one (warned about) if that folder cannot be used.
fn client_identity() -> Identity {
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

/// `kumo list`: the hosts that answer on the LAN, and whether this client is paired with each.
fn list_hosts(rt: &tokio::runtime::Runtime, wait: f64) -> anyhow::Result<ExitCode> {
    let wait =
        Duration::try_from_secs_f64(wait).with_context(|| format!("--wait {wait} is not a number of seconds"))?;
    let found = rt
        .block_on(kumo::net::discovery::browse(wait))
        .context("could not ask the local network (multicast DNS on UDP port 5353)")?;
    let known = match kumo::config::default_client_dir() {
        Some(dir) => KnownHosts::in_dir(&dir).list()?,
        None => Vec::new(),
    };
    if found.is_empty() {
        println!(
            "no kumo hosts answered within {wait:?}; a host must run `kumo host` on this network, and its firewall must let UDP port 5353 in"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("{:<24} {:<22} {:<8} fingerprint", "name", "address", "paired");
    for f in found {
        let fp = Fingerprint::parse(&f.advert.fingerprint).ok();
        let paired = match known.iter().find(|k| Some(k.fingerprint) == fp) {
            Some(k) if k.address == f.address => "yes".to_owned(),
            Some(k) => format!("yes, as {}", k.address),
            None => "no".to_owned(),
        };
        let version = if f.advert.protocol == PROTOCOL_VERSION {
            String::new()
        } else {
            format!(" (protocol v{})", f.advert.protocol)
        };
        println!("{:<24} {:<22} {paired:<8} {}{version}", f.advert.name, f.address, f.advert.fingerprint);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kumo pair HOST`: asks for the PIN, pairs, and keeps the host's fingerprint.
fn pair(
    rt: &tokio::runtime::Runtime,
    host: SocketAddr,
    pin: Option<String>,
    name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let Some(dir) = kumo::config::default_client_dir() else {
        bail!("this system has no home folder to keep the pairing in");
    };
    let identity = Identity::load_or_create(&dir, Role::Client)?;
    let pin = if let Some(text) = pin {
        text
    } else {
        eprint!("PIN shown by host {host}: ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("could not read the PIN")?;
        line
    };
    let pin = Pin::parse(pin.trim())?;
    let name = name
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "kumo client".into());
    let paired = rt.block_on(kumo::net::pair::pair(host, &identity, &name, pin, kumo::client::CONNECT_TIMEOUT))?;
    let known = KnownHosts::in_dir(&dir);
    let old = known.remember(kumo::net::trust::KnownHost {
        address: host,
        name: paired.host_name.clone(),
        fingerprint: paired.host_fingerprint,
        paired: kumo::net::trust::unix_now(),
    })?;
    println!("paired with host '{}' at {host} (certificate SHA-256: {})", paired.host_name, paired.host_fingerprint);
    if let Some(old) = old.filter(|o| o.fingerprint != paired.host_fingerprint) {
        println!("this replaces the certificate paired on {}: {}", date(old.paired), old.fingerprint);
    }
    println!("connect with: kumo connect {host}");
    Ok(ExitCode::SUCCESS)
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
fn probe(
    rt: &tokio::runtime::Runtime,
    candidates: &[(String, SocketAddr, Verify)],
) -> (Vec<String>, Vec<kumo::core::probe::ProbeResult>) {
    let targets: Vec<_> = candidates.iter().map(|(_, addr, verify)| (*addr, *verify)).collect();
    let outcomes = rt.block_on(kumo::net::probe::probe_all(&targets));
    (candidates.iter().map(|c| c.0.clone()).collect(), outcomes)
}

fn demo_client(run: &RunArgs, file: &Settings) -> anyhow::Result<DemoClient> {
    Ok(DemoClient {
        input_script: input_script(run)?,
        gamepads: gamepads(run, file).then(|| file.gamepad_mappings.clone()),
        audio: audio(run, file),
        speakers: run.speakers.or(file.speakers),
    })
}

/// A client's settings from the flags and the file (`CONNECT_TIMEOUT` to connect,
/// `RECONNECT_TIMEOUT` to reconnect).
fn client_config(
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
        ..ClientConfig::new(host, verify)
    })
}

/// `kumo kiosk`: the configured host (or the embedded demo host) until the admin exit.
fn kiosk(
    rt: &tokio::runtime::Runtime,
    host: Option<SocketAddr>,
    host_fingerprint: Option<String>,
    run: &RunArgs,
    stream: &StreamArgs,
    file: &Settings,
) -> anyhow::Result<ExitCode> {
    if run.headless {
        bail!("a kiosk needs a window: leave out --headless (or use `kumo connect --headless`)");
    }
    let interrupted = interrupt_flag(rt);
    let options = window_options(run, file)?;
    let outcome = match host.or(file.kiosk.host) {
        None => {
            kumo::tools::demo::run_windowed(rt, stream.request(file), demo_client(run, file)?, options, &interrupted)?
        }
        Some(host) => {
            let fp = host_fingerprint.or_else(|| file.kiosk.host_fingerprint.clone());
            let verify = verify_host(host, fp.as_deref(), false).context(
                "the kiosk cannot verify its host: pair it (`kumo pair`), or set host_fingerprint in the config file's [kiosk] section",
            )?;
            // A kiosk reconnects for ever.
            let config = ClientConfig {
                reconnect_timeout: None,
                ..client_config(host, verify, "kumo kiosk", run, stream, file)?
            };
            kumo::client::window::run(rt, config, options, &interrupted)?
        }
    };
    report(&outcome, run.stats_json.as_ref())
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

/// Prints the summary, writes the JSON, and turns a lost session into a failing exit code.
fn report(outcome: &SessionReport, stats_json: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    print!("{}", outcome.summary.to_text());
    if let Some(path) = stats_json {
        let summary = Summary { heap: kumo::tools::heap::figures(), ..outcome.summary.clone() };
        write_json(&summary, path)?;
    }
    match &outcome.end {
        Ok(End::Stopped) => Ok(ExitCode::SUCCESS),
        Ok(End::HostEnded(message)) => {
            println!("the host ended the session: {message}");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn write_json(summary: &Summary, path: &PathBuf) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(summary).context("encoding the stats")?;
    std::fs::write(path, json + "\n").with_context(|| format!("could not write the stats to {}", path.display()))
}

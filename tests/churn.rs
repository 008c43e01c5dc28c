//! Many sessions in a row in one process, as a kiosk or a player reconnecting all day has
//! them: sessions that end with a goodbye, a host that restarts under a connected client, and
//! a client whose path vanishes without a word. Afterwards the process has the descriptors
//! and threads it had before the first session, no sound stream is left open on the sound
//! server, and its live heap is within 5 % of what it was after the first ten sessions.
//!
//! Host and client run in this process (quinn on loopback, openh264 both ends), so both
//! sides' leftovers count. CI runs 40 sessions; `scripts/churn.sh` runs 1 000
//! (`KUMO_CHURN_SESSIONS`). The sessions play sound into a private `PulseAudio`: the test
//! runs its sessions in a child process of itself, whose environment points ALSA there.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::sound::{start_pulse, tools_present, work_dir};
use kumo::client::{self, ClientConfig, Session};
use kumo::core::sim::impair::Impairment;
use kumo::core::stats::Event;
use kumo::host::HostConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// This test binary counts its own heap: host and client live in it.
#[global_allocator]
static HEAP: kumo::tools::heap::Counting = kumo::tools::heap::Counting;

/// Sessions in CI's run; `KUMO_CHURN_SESSIONS` asks for more.
const SESSIONS: usize = 40;
/// Sessions before the heap's reference is taken: buffers and caches fill in the first few.
const WARM_UP_SESSIONS: usize = 10;
/// Every this many sessions (the fifth of each ten) the host restarts under the connected
/// client.
const RESTART_EVERY: usize = 10;
/// Every this many sessions the client's path vanishes (each costs QUIC's 10 s idle timeout).
const VANISH_EVERY: usize = 100;
/// The heap after all sessions, against after the warm-up: the 5 %.
const HEAP_TOLERANCE: f64 = 0.05;

fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).unwrap()
}

fn live_heap() -> u64 {
    kumo::tools::heap::live().unwrap().bytes
}

/// The sound streams open on the private sound server, by `pactl`.
fn sound_streams() -> usize {
    let out = std::process::Command::new("pactl").args(["list", "short", "sink-inputs"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn host_config(listen: SocketAddr, identity: &Path) -> HostConfig {
    HostConfig {
        listen,
        identity: Some(identity.to_path_buf()),
        ..common::host_config("churn host", kumo::host::HostTrust::open())
    }
}

fn client_config(target: SocketAddr, fingerprint: kumo::net::tls::Fingerprint, reconnect: bool) -> ClientConfig {
    ClientConfig {
        audio: std::env::var_os("KUMO_CHURN_AUDIO").is_some(),
        connect_timeout: Duration::from_secs(5),
        // A vanished path is given up 1 s after QUIC's idle timeout; a restarted host is waited
        // for 10 s (`None` would wait for ever).
        reconnect_timeout: Some(Duration::from_secs(if reconnect { 10 } else { 1 })),
        ..common::client_config(target, fingerprint, None)
    }
}

/// Waits (up to `limit`) for an event `wanted` picks; false if none came.
fn wait_for(session: &Session, limit: Duration, wanted: impl Fn(&Event) -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        while let Ok(event) = session.events.try_recv() {
            if wanted(&event) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn decoded(event: &Event) -> bool {
    matches!(event, Event::Decoded(_))
}

/// Connects, retrying while the host still holds a vanished session's slot.
fn connect(rt: &Runtime, config: &ClientConfig) -> Session {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match rt.block_on(client::connect(config.clone())) {
            Ok(session) => return session,
            Err(err) if Instant::now() < until && err.to_string().contains("already streaming") => {
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(err) => panic!("session could not start: {err}"),
        }
    }
}

/// The running host: its address, fingerprint and the sender that stops it.
struct Host {
    addr: SocketAddr,
    fingerprint: kumo::net::tls::Fingerprint,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Starts a host on `listen`; a restarted host retries while the stopped one still closes its
/// socket (a host process restarting finds the port free at its predecessor's exit).
fn start_host(rt: &Runtime, listen: SocketAddr, identity: &Path) -> Host {
    let until = Instant::now() + Duration::from_secs(5);
    let host = loop {
        let bound = {
            let _guard = rt.enter();
            kumo::host::Host::bind(host_config(listen, identity))
        };
        match bound {
            Ok(host) => break host,
            Err(err) if Instant::now() < until => {
                eprintln!("binding again: {err}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("the host could not bind {listen}: {err}"),
        }
    };
    let (addr, fingerprint) = (host.local_addr(), host.fingerprint());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    rt.spawn(host.serve(stop_rx));
    Host { addr, fingerprint, stop }
}

/// One session that ends with a goodbye.
fn goodbye(rt: &Runtime, host: &Host) {
    let session = connect(rt, &client_config(host.addr, host.fingerprint, false));
    assert!(wait_for(&session, Duration::from_secs(5), decoded), "no picture");
    session.stop();
    rt.block_on(session.finish()).unwrap();
}

/// One session whose host restarts (same port, same identity) while it streams; it goes on
/// with the new host, then ends with a goodbye. Returns the new host.
fn restart(rt: &Runtime, host: &Host, identity: &Path) -> Host {
    let session = connect(rt, &client_config(host.addr, host.fingerprint, true));
    assert!(wait_for(&session, Duration::from_secs(5), decoded), "no picture");
    host.stop.send(true).ok();
    assert!(wait_for(&session, Duration::from_secs(5), |e| matches!(e, Event::Reconnecting { .. })));
    let again = start_host(rt, host.addr, identity);
    assert_eq!(again.fingerprint, host.fingerprint);
    assert!(
        wait_for(&session, Duration::from_secs(10), |e| matches!(e, Event::Reconnected { .. })),
        "the client did not come back to the restarted host"
    );
    assert!(wait_for(&session, Duration::from_secs(5), decoded), "no picture after the restart");
    session.stop();
    rt.block_on(session.finish()).unwrap();
    again
}

/// One session whose path vanishes mid-stream (the relay it goes through is dropped): both
/// sides end it at QUIC's idle timeout.
fn vanish(rt: &Runtime, host: &Host) {
    let relay =
        rt.block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), host.addr, Impairment::default())).unwrap();
    let session = connect(rt, &client_config(relay.addr, host.fingerprint, false));
    assert!(wait_for(&session, Duration::from_secs(5), decoded), "no picture");
    drop(relay);
    let end = rt.block_on(session.finish());
    assert!(end.is_err(), "a vanished path ends the session in an error: {end:?}");
}

/// Polls until the process is back to `descriptors` and `threads` (idle runtime threads take
/// up to 10 s to go); what it has at the deadline otherwise.
fn settle(descriptors_then: usize, threads_then: usize) -> (usize, usize) {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let now = (descriptors(), threads());
        if now.0 <= descriptors_then && now.1 <= threads_then || Instant::now() > until {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "run by sessions_in_a_row_leave_nothing_behind in a child process with its own sound server"]
fn churn_in_this_process() {
    let sessions = std::env::var("KUMO_CHURN_SESSIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(SESSIONS);
    let identity = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("churn-{}", std::process::id()));
    std::fs::remove_dir_all(&identity).ok();
    let rt = kumo::runtime().unwrap();
    let mut host = start_host(&rt, ([127, 0, 0, 1], 0).into(), &identity);
    let listen = host.addr;
    let (fds_before, threads_before) = (descriptors(), threads());
    let streams_before = std::env::var_os("KUMO_CHURN_AUDIO").map(|_| sound_streams());
    let (mut warm, mut warm_rss) = (0, 0);
    let mut counts = [0usize; 3];
    let started = Instant::now();
    for n in 1..=sessions {
        if n % VANISH_EVERY == VANISH_EVERY / 2 || (sessions < VANISH_EVERY && n == sessions / 2) {
            vanish(&rt, &host);
            counts[2] += 1;
        } else if n % RESTART_EVERY == RESTART_EVERY / 2 {
            host = restart(&rt, &host, &identity);
            assert_eq!(host.addr, listen);
            counts[1] += 1;
        } else {
            goodbye(&rt, &host);
            counts[0] += 1;
        }
        if std::env::var_os("KUMO_CHURN_VERBOSE").is_some() {
            eprintln!("session {n} done after {:.1?}", started.elapsed());
        }
        if n == WARM_UP_SESSIONS {
            // Measured as the end is: once the last session's threads are gone.
            settle(fds_before, threads_before);
            warm = live_heap();
            warm_rss = common::rss_kib(std::process::id());
        }
        if n % 100 == 0 {
            eprintln!(
                "{n} sessions: live heap {} kB, {} descriptors, {} threads",
                live_heap() / 1024,
                descriptors(),
                threads()
            );
        }
    }
    let took = started.elapsed();
    let (fds_after, threads_after) = settle(fds_before, threads_before);
    let heap = live_heap();
    let rss = common::rss_kib(std::process::id());
    let streams_after = streams_before.map(|_| sound_streams());
    host.stop.send(true).ok();
    std::fs::remove_dir_all(&identity).ok();
    eprintln!(
        "{sessions} sessions in {took:.0?} ({} goodbye, {} host restarts, {} vanished): descriptors {fds_before} → {fds_after}, threads {threads_before} → {threads_after}, live heap {} kB after {WARM_UP_SESSIONS} → {} kB, RSS {warm_rss} → {rss} kB, sound streams {streams_before:?} → {streams_after:?}",
        counts[0],
        counts[1],
        counts[2],
        warm / 1024,
        heap / 1024,
    );
    assert_eq!(fds_after, fds_before, "descriptors left behind");
    // Fewer is no leak: a blocking-pool thread alive at the first count (the host's start-up
    // work) may have ended by the last.
    assert!(threads_after <= threads_before, "threads left behind: {threads_before} → {threads_after}");
    assert_eq!(streams_after, streams_before, "sound streams left open");
    let grown = heap as f64 / warm as f64 - 1.0;
    assert!(grown < HEAP_TOLERANCE, "the live heap grew {:.1} % over {sessions} sessions", grown * 100.0);
}

#[test]
fn sessions_in_a_row_leave_nothing_behind() {
    let audio = tools_present();
    let dir = work_dir("kumo-churn");
    let pulse = audio.then(|| start_pulse(&dir, "channels=2"));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child.args(["--exact", "churn_in_this_process", "--ignored", "--nocapture", "--test-threads=1"]);
    if let Some(pulse) = &pulse {
        let conf = dir.join("alsa.conf");
        std::fs::write(&conf, "pcm.!default { type pulse }\nctl.!default { type pulse }\n").unwrap();
        child.env("ALSA_CONFIG_PATH", conf).env("PULSE_SERVER", &pulse.socket).env("KUMO_CHURN_AUDIO", "1");
    }
    let status = child.env("RUST_LOG", "warn").status().unwrap();
    assert!(status.success(), "the sessions in a row failed: {status} (their output is above)");
}

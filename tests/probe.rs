//! Region choice end to end: one real host behind three relays of different delays (three
//! "regions"), `kumo probe` measuring them over QUIC, and `kumo connect` given all three
//! streaming from the nearest. Also: a host whose certificate is not the pinned one is
//! reported, never chosen; probing a host does not take its session slot.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use kumo::core::sim::impair::Impairment;
use std::process::Command;
use std::time::Duration;

/// Relays to `host` adding these one-way delays, on `rt` (each runs while it is kept).
fn regions(
    rt: &tokio::runtime::Runtime,
    host: std::net::SocketAddr,
    delays_ms: &[u64],
) -> Vec<kumo::net::relay::Relay> {
    delays_ms
        .iter()
        .map(|&ms| {
            let impairment = Impairment { delay: Duration::from_millis(ms), ..Impairment::default() };
            rt.block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), host, impairment)).unwrap()
        })
        .collect()
}

fn addrs(relays: &[kumo::net::relay::Relay]) -> Vec<String> {
    relays.iter().map(|r| r.addr.to_string()).collect()
}

fn kumo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kumo")).args(args).env("RUST_LOG", "warn").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probe_picks_the_lowest_latency_host_and_connect_streams_from_it() {
    let host = common::start_host("region host");
    let fp = host.fingerprint.to_string();
    // 25, 3 and 12 ms each way: the second is nearest.
    let kept = regions(&host.rt, host.addr, &[25, 3, 12]);
    let relays = addrs(&kept);
    let (ok, table, err) = kumo(&["probe", &relays[0], &relays[1], &relays[2], "--host-fingerprint", &fp]);
    assert!(ok, "kumo probe failed: {err} {table}");
    assert!(table.contains(&format!("chosen: {} (lowest score)", relays[1])), "{table}");
    // Each region's round trip is its relay's delay, twice, and a little.
    for (relay, rtt) in relays.iter().zip([50.0, 6.0, 24.0]) {
        let line = table.lines().find(|l| l.contains(relay.as_str())).unwrap();
        let p50: f64 = line.split_whitespace().nth(if line.starts_with('*') { 6 } else { 5 }).unwrap().parse().unwrap();
        assert!(p50 >= rtt && p50 < rtt + 15.0, "{relay}: p50 {p50} ms, expected about {rtt}: {table}");
    }

    let (ok, out, err) = kumo(&[
        "connect",
        &relays[0],
        &relays[1],
        &relays[2],
        "--host-fingerprint",
        &fp,
        "--headless",
        "--duration",
        "2",
        "--no-audio",
        "--width",
        "640",
        "--height",
        "360",
    ]);
    assert!(ok, "kumo connect failed: {err}");
    assert!(out.contains(&format!("chosen: {}", relays[1])), "{out}");
    let decoded: u64 = out
        .lines()
        .find(|l| l.starts_with("frames"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frames line: {out}"));
    assert!(decoded > 60, "{out}");
    host.stop.send(true).ok();
}

#[test]
fn a_host_with_another_certificate_is_reported_and_never_chosen() {
    let near = common::start_host("impostor");
    let far = common::start_host("the real host");
    // The impostor is nearer, but its certificate is not the pinned one.
    let kept = [regions(&near.rt, near.addr, &[1]), regions(&far.rt, far.addr, &[15])];
    let (near_relay, far_relay) = (kept[0][0].addr.to_string(), kept[1][0].addr.to_string());
    let fp = far.fingerprint.to_string();
    let (ok, table, err) = kumo(&["probe", &near_relay, &far_relay, "--host-fingerprint", &fp]);
    assert!(ok, "{err} {table}");
    assert!(table.contains("is not the pinned one"), "{table}");
    assert!(table.contains(&format!("chosen: {far_relay}")), "{table}");
    // Only impostors: nothing is chosen, and the exit status says so.
    let (ok, table, _) = kumo(&["probe", &near_relay, "--host-fingerprint", &fp]);
    assert!(!ok && table.contains("no host answered"), "{table}");
}

#[test]
fn probing_a_busy_host_does_not_take_its_session() {
    let host = common::start_host("busy host");
    let fp = host.fingerprint.to_string();
    let addr = host.addr.to_string();
    // A player streams for 4 s; meanwhile the host is probed.
    let player = std::thread::Builder::new()
        .name("player".into())
        .spawn(move || {
            kumo(&["connect", &addr, "--host-fingerprint", &fp, "--headless", "--duration", "4", "--no-audio"])
        })
        .unwrap();
    // Probe only once the player is streaming (the host's game is making frames for it).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host.game.report().frames < 10 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(host.game.report().frames >= 10, "the player never started streaming");
    let (ok, table, err) =
        kumo(&["probe", &host.addr.to_string(), "--host-fingerprint", &host.fingerprint.to_string()]);
    assert!(ok, "the busy host was not measured: {err} {table}");
    let (ok, out, err) = player.join().unwrap();
    assert!(ok, "the player's session failed: {err}");
    assert!(out.contains("0 IDR requests"), "the probe disturbed the stream: {out}");
}

//! The host's defences, tried as an attacker on the LAN would: a flood of
//! connections that never authenticate, a paired client that stops reading and floods pings
//! while it is revoked, and a device that jams pairing by starting and abandoning runs.
//! docs/robustness.md has the figures.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::HostProcess;
use kumo::core::trust::Pin;
use kumo::core::wire::{Capabilities, Control, Hello, MAX_CONTROL_BYTES, PROTOCOL_VERSION};
use kumo::net::pair::{self, ClientRun};
use kumo::net::tls::{self, Identity, Role, Verify};
use kumo::net::trust::ClientStore;
use kumo::net::{self, close};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kumo-defences-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hello(name: &str, fps: u16, audio_channels: u8) -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        width: 640,
        height: 360,
        fps,
        bitrate_kbps: 1500,
        max_width: 3840,
        max_height: 2160,
        client_name: name.into(),
        audio_channels,
        resume_token: 0,
        capabilities: Capabilities::THIS_BUILD,
        start_kbps: 0,
    }
}

/// A client endpoint on another loopback address: another device on the LAN, as the host sees
/// it (it limits what waits at its door per address).
fn endpoint_at(ip: [u8; 4]) -> quinn::Endpoint {
    quinn::Endpoint::client(SocketAddr::from((ip, 0))).unwrap()
}

/// One attacker's connection: no certificate; it fills every window the host gives it (a
/// control message announced and never finished, datagrams nobody reads, one-way streams
/// if any are granted) and holds on.
async fn attack(
    endpoint: quinn::Endpoint,
    host: SocketAddr,
    fingerprint: tls::Fingerprint,
    granted: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
) {
    let (config, _) = tls::client_config(Verify::Pinned(fingerprint), None, net::transport()).unwrap();
    let Ok(connecting) = endpoint.connect_with(config, host, "kumo-host") else { return };
    let conn = match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(quinn::ConnectionError::ConnectionClosed(_))) => {
            refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        _ => return,
    };
    let junk = vec![0x5a_u8; 256 * 1024];
    // A control message of the largest size announced, and its first byte only (more would
    // complete it, and the host would read it and refuse).
    let Ok((mut send, _recv)) = conn.open_bi().await else { return };
    let mut half = (MAX_CONTROL_BYTES as u16).to_le_bytes().to_vec();
    half.push(1);
    send.write_all(&half).await.ok();
    for _ in 0..4 {
        if let Ok(Ok(mut uni)) = tokio::time::timeout(Duration::from_millis(50), conn.open_uni()).await {
            granted.fetch_add(1, Ordering::Relaxed);
            let chunk = junk.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(20), uni.write_all(&chunk)).await.ok();
            });
        }
    }
    for _ in 0..200 {
        conn.send_datagram(vec![0x4b; 1000].into()).ok();
    }
    // Held until the host closes it (its deadline) or the test ends.
    tokio::time::timeout(Duration::from_secs(30), conn.closed()).await.ok();
}

#[test]
fn a_flood_of_unauthenticated_connections_is_bounded_and_a_paired_client_still_streams() {
    let dir = scratch("flood");
    let host_dir = dir.join("host");
    std::fs::create_dir_all(&host_dir).unwrap();
    let client = Identity::generate(Role::Client).unwrap();
    ClientStore::in_dir(&host_dir).add("player", client.fingerprint).unwrap();
    let host =
        HostProcess::spawn(&["--listen".as_ref(), "127.0.0.1:0".as_ref(), "--identity".as_ref(), host_dir.as_ref()]);
    let fingerprint = tls::Fingerprint::parse(&host.fingerprint).unwrap();
    let addr = host.addr;
    let rt = kumo::runtime().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let idle = host.rss_kib();

    // 120 connections from 15 addresses (8 each may wait at the door: all of them get in,
    // past the first 32 after proving their address), plus 60 more from one address, of
    // which the door lets 8 wait and turns the rest away.
    let granted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..180u32 {
        let ip = if i < 120 { [127, 0, 1, 2 + (i / 8) as u8] } else { [127, 0, 2, 1] };
        let endpoint = rt.block_on(async { endpoint_at(ip) });
        attackers.push(rt.spawn(attack(endpoint, addr, fingerprint, granted.clone(), refused.clone())));
    }
    // The paired client arrives during the flood.
    std::thread::sleep(Duration::from_secs(2));
    let mut peak = host.rss_kib();
    let frames = Arc::new(AtomicU64::new(0));
    let counted = frames.clone();
    let session = rt.spawn(async move {
        let endpoint = endpoint_at([127, 0, 0, 1]);
        let (config, _) = tls::client_config(Verify::Pinned(fingerprint), Some(&client), net::transport()).unwrap();
        let conn = endpoint.connect_with(config, addr, "kumo-host").unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        net::write_control(&mut send, &Control::Hello(hello("player", 30, 0))).await.unwrap();
        let welcome = net::read_control(&mut recv).await.unwrap();
        assert!(matches!(welcome, Control::Welcome(_)), "the paired client was not admitted: {welcome:?}");
        while let Ok(mut stream) = conn.accept_uni().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                if stream.read_to_end(4 << 20).await.is_ok() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    // Watch the host's memory while the flood holds on, and count the paired client's frames.
    let mut per_second = Vec::new();
    let mut last = 0;
    for _ in 0..6 {
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(200));
            peak = peak.max(host.rss_kib());
        }
        let now = frames.load(Ordering::Relaxed);
        per_second.push(now - last);
        last = now;
    }
    // Past the admission deadline every attacker has been closed, and the host gave its
    // memory back to the allocator (not necessarily to the system).
    std::thread::sleep(Duration::from_secs(4));
    let after = host.rss_kib();
    let closed = attackers.iter().filter(|a| a.is_finished()).count();
    session.abort();
    eprintln!(
        "unauthenticated flood: 180 connections from 16 addresses; host RSS idle {idle} KiB, peak {peak} KiB (+{} KiB), {after} KiB after the deadline; attackers closed by then: {closed}/180, turned away at once: {}; one-way streams granted: {}; the paired client's frames per second during the flood: {per_second:?} (30 asked); {:.1} s",
        peak.saturating_sub(idle),
        refused.load(Ordering::Relaxed),
        granted.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(granted.load(Ordering::Relaxed), 0, "the host granted one-way streams before admission");
    assert!(peak < idle + 64 * 1024, "the host's memory grew from {idle} to {peak} KiB");
    assert_eq!(closed, 180, "attackers were still connected after the admission deadline");
    // The address sending 60 had 8 let in at most; the rest were turned away at once.
    assert!(
        refused.load(Ordering::Relaxed) >= 40,
        "the door let one address in {} times",
        60 - refused.load(Ordering::Relaxed)
    );
    let steady = &per_second[2..];
    assert!(steady.iter().all(|&n| n >= 25), "the paired client did not stream at full rate: {per_second:?}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_revoked_client_that_stops_reading_and_floods_pings_is_cut_off_within_two_seconds() {
    let dir = scratch("revoke");
    let host_dir = dir.join("host");
    std::fs::create_dir_all(&host_dir).unwrap();
    let client = Identity::generate(Role::Client).unwrap();
    ClientStore::in_dir(&host_dir).add("greedy", client.fingerprint).unwrap();
    let trust = kumo::host::HostTrust::paired(ClientStore::in_dir(&host_dir));
    let host = common::start_host_with(kumo::runtime().unwrap(), common::host_config("den", trust));
    let (addr, fingerprint) = (host.addr, host.fingerprint);
    let store = ClientStore::in_dir(&host_dir);
    let result = host.rt.block_on(async move {
        // A client whose control stream takes 1 KiB at most: once the host's answers fill
        // it, every further write of the host's on that stream waits for a read that never
        // comes.
        let mut transport = quinn::TransportConfig::default();
        transport.stream_receive_window(1024u32.into());
        let (config, _) = tls::client_config(Verify::Pinned(fingerprint), Some(&client), Arc::new(transport)).unwrap();
        let conn = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap())
            .unwrap()
            .connect_with(config, addr, "kumo-host")
            .unwrap()
            .await
            .unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        net::write_control(&mut send, &Control::Hello(hello("greedy", 30, 2))).await.unwrap();
        assert!(matches!(net::read_control(&mut recv).await.unwrap(), Control::Welcome(_)));
        // From now on: never read the control stream, and ping as fast as possible.
        let flooding = tokio::spawn(async move {
            let mut pings = 0u32;
            loop {
                let ping = Control::Ping { id: pings, client_micros: 0 };
                if net::write_control(&mut send, &ping).await.is_err() {
                    return pings;
                }
                pings += 1;
                if pings.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
        });
        let datagrams = Arc::new(AtomicU64::new(0));
        let counter = datagrams.clone();
        let reader = conn.clone();
        tokio::spawn(async move {
            while reader.read_datagram().await.is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Long enough for the host's pongs to fill the stream and its writes to wait.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = datagrams.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let still_streaming = datagrams.load(Ordering::Relaxed) - before;
        assert!(conn.close_reason().is_none(), "the session ended before the revocation: {:?}", conn.close_reason());
        let revoked_at = Instant::now();
        store.revoke("greedy").unwrap();
        let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
        let took = revoked_at.elapsed();
        let at_close = datagrams.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_close = datagrams.load(Ordering::Relaxed) - at_close;
        let pings = flooding.await.unwrap_or(0);
        (reason, took, still_streaming, after_close, pings)
    });
    host.stop.send(true).ok();
    let (reason, took, still_streaming, after_close, pings) = result;
    eprintln!(
        "revocation under a ping flood: {pings} pings sent, the session closed {took:?} after --revoke ({reason:?}); datagrams in the half second before: {still_streaming}, after the close: {after_close}"
    );
    assert!(still_streaming > 50, "sound was not streaming before the revocation: {still_streaming} datagrams");
    match reason {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => assert_eq!(c.error_code, close::NOT_PAIRED, "{c:?}"),
        other => panic!("the revoked session did not end: {other:?}"),
    }
    assert!(took < Duration::from_secs(2), "the revocation took {took:?}");
    assert_eq!(after_close, 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// A jammer's run: it sends a `PairRequest` with a guess, reads the host's challenge, and
/// goes away without proving anything (or holds the run open until the host gives up).
async fn jam(host: SocketAddr, from: [u8; 4], identity: &Identity, hold: bool) -> bool {
    let (config, seen) = tls::pairing_client_config(identity, net::transport()).unwrap();
    let endpoint = endpoint_at(from);
    let Ok(connecting) = endpoint.connect_with(config, host, "kumo-host") else { return false };
    let Ok(conn) = connecting.await else { return false };
    let exporter = pair::exporter(&conn).unwrap();
    let (_, request) =
        ClientRun::start(Pin::parse("000000").unwrap(), "jammer", identity.fingerprint, seen.get().unwrap(), exporter);
    let Ok((mut send, mut recv)) = conn.open_bi().await else { return false };
    if net::write_control(&mut send, &request).await.is_err() {
        return false;
    }
    let challenged = matches!(net::read_control(&mut recv).await, Ok(Control::PairChallenge { .. }));
    if hold {
        tokio::time::timeout(Duration::from_secs(15), conn.closed()).await.ok();
    }
    conn.close(0u32.into(), b"");
    challenged
}

#[test]
fn a_device_starting_and_abandoning_pairing_runs_cannot_void_the_pin() {
    let pin = Pin::parse("314159").unwrap();
    let trust =
        kumo::host::HostTrust { pin: Some(pin), ..kumo::host::HostTrust::paired(ClientStore::in_memory(Vec::new())) };
    let host = common::start_host_with(kumo::runtime().unwrap(), common::host_config("den", trust));
    let addr = host.addr;
    let jammer = Identity::generate(Role::Client).unwrap();
    let player = Identity::generate(Role::Client).unwrap();
    let (jams, paired) = host.rt.block_on(async move {
        // Runs held open the whole time from six addresses, and runs abandoned one after
        // another from a seventh.
        let held: Vec<_> = (2..8)
            .map(|last| {
                let holder = Identity::generate(Role::Client).unwrap();
                tokio::spawn(async move { jam(addr, [127, 0, 3, last], &holder, true).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let jammer_loop = tokio::spawn(async move {
            let mut challenged = 0;
            for _ in 0..20 {
                if jam(addr, [127, 0, 3, 1], &jammer, false).await {
                    challenged += 1;
                }
            }
            challenged
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let paired = pair::pair(addr, &player, "player", pin, Duration::from_secs(5)).await;
        let jams = jammer_loop.await.unwrap();
        held.iter().for_each(tokio::task::JoinHandle::abort);
        (jams, paired)
    });
    host.stop.send(true).ok();
    eprintln!("pairing jammed: {jams} runs started and abandoned; the player's run: {paired:?}");
    assert!(jams >= 5, "the jammer's runs were not even started: {jams}");
    let paired = paired.expect("the player could not pair while a device jammed the PIN");
    assert_eq!(paired.host_name, "den");
}

#[test]
fn a_running_host_offers_a_new_pin_on_request() {
    let dir = scratch("newpin");
    let host_dir = dir.join("host");
    let mut host =
        HostProcess::spawn(&["--listen".as_ref(), "127.0.0.1:0".as_ref(), "--identity".as_ref(), host_dir.as_ref()]);
    let addr = host.addr;
    assert!(
        std::process::Command::new("kill").args(["-USR1", &host.pid().to_string()]).status().unwrap().success(),
        "could not signal the host"
    );
    let offer = host.next_line();
    let shown = offer.split_whitespace().nth(2).unwrap_or_default().to_owned();
    assert!(offer.starts_with("pairing PIN: "), "{offer}");
    let pin = Pin::parse(&shown).unwrap();
    let rt = kumo::runtime().unwrap();
    let player = Identity::generate(Role::Client).unwrap();
    let paired = rt.block_on(pair::pair(addr, &player, "player\n\u{202e}evil", pin, Duration::from_secs(5))).unwrap();
    assert_eq!(paired.host_fingerprint.to_string(), host.fingerprint);
    // The name a peer chose is stored and listed printable.
    let listed = ClientStore::in_dir(&host_dir).list().unwrap();
    assert_eq!(listed[0].name, "player\\nevil");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

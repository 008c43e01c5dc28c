//! A hostile client (issue 7): it completes the handshake like any client, then floods the
//! host with junk datagrams of every kind kumo knows (and none) and with uni streams of
//! garbage. The host's memory must stay bounded and the session must go on streaming.

#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] functions

mod common;

use kumo::core::wire::{Control, Hello, PROTOCOL_VERSION};
use kumo::net;
use kumo::tls::{self, Verify};
use std::time::{Duration, Instant};

/// Resident memory of this process (host and attacker), KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn junk_datagrams_and_streams_neither_grow_the_host_nor_stop_the_stream() {
    let host = common::start_host("flood test host");
    let rt = &host.rt;
    let (addr, fingerprint) = (host.addr, host.fingerprint);
    let result = rt.block_on(async move {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let (config, _) = tls::client_config(Verify::Pinned(fingerprint), None, net::transport()).unwrap();
        let conn = endpoint.connect_with(config, addr, "kumo-host").unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            width: 640,
            height: 360,
            fps: 60,
            bitrate_kbps: 2000,
            max_width: 3840,
            max_height: 2160,
            client_name: "flood".into(),
            audio_channels: 2,
            resume_token: 0,
        };
        net::write_control(&mut send, &Control::Hello(hello)).await.unwrap();
        assert!(matches!(net::read_control(&mut recv).await.unwrap(), Control::Welcome(_)));
        // Count the host's frames as they come.
        let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = frames.clone();
        let reader_conn = conn.clone();
        tokio::spawn(async move {
            while let Ok(stream) = reader_conn.accept_uni().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    if net::receive_frame(stream).await.is_ok() {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib();
        // 200 000 junk datagrams: each of kumo's magics with garbage after it, and none.
        let mut rng = kumo::core::rng::XorShift::from_state(0x1234_5678_9abc_def0);
        let started = Instant::now();
        for i in 0..200_000u32 {
            let state = rng.next_u64();
            let magic: &[u8] = [&b"KI"[..], b"KC", b"KO", b"KA", b"KR", b"zz"][(i % 6) as usize];
            let len = 2 + (state % 1000) as usize;
            let mut junk = magic.to_vec();
            junk.extend((0..len).map(|k| (state >> (k % 56)) as u8));
            conn.send_datagram(junk.into()).ok();
            if i % 2000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // And 60 uni streams of 256 KiB of garbage each, which the host never reads.
        for _ in 0..60 {
            if let Ok(mut s) = conn.open_uni().await {
                tokio::spawn(async move {
                    let junk = vec![0x5a_u8; 256 * 1024];
                    tokio::time::timeout(Duration::from_secs(2), s.write_all(&junk)).await.ok();
                });
            }
        }
        let flood_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib();
        let counted = frames.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let in_last_second = frames.load(std::sync::atomic::Ordering::Relaxed) - counted;
        conn.close(0u32.into(), b"done");
        (before, after, in_last_second, flood_secs)
    });
    host.stop.send(true).ok();
    let (before, after, in_last_second, flood_secs) = result;
    eprintln!(
        "flood: 200 000 junk datagrams offered in {flood_secs:.2} s (quinn's send buffer drops what does not fit) and 15 MiB of stream junk; RSS {before} → {after} KiB, {in_last_second} frames in the second after"
    );
    // Bounded: QUIC's windows cap unread stream data at 32 MiB; the datagram paths keep
    // nothing. (Allow for allocator slack.)
    assert!(after < before + 48 * 1024, "RSS grew from {before} to {after} KiB");
    // The session goes on: 60 fps asked for, most of a second's frames arrive.
    assert!(in_last_second > 30, "only {in_last_second} frames in the second after the flood");
}

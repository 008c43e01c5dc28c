//! Loopback integration: a real host and a real client over quinn on 127.0.0.1, with the real
//! openh264 encoder and decoder between them.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::TestHost;

use kumo::client::{self, ClientConfig, ClientError, End};
use kumo::core::stats::Stats;
use kumo::core::wire::PROTOCOL_VERSION;
use kumo::host::{HostConfig, HostTrust};
use kumo::net::tls::{Fingerprint, Verify};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn start_host() -> TestHost {
    let host = common::start_host_with(
        kumo::runtime().unwrap(),
        HostConfig { max_fps: 120, ..common::host_config("test host", HostTrust::open()) },
    );
    assert_ne!(host.addr.port(), 0);
    host
}

fn config(r: &TestHost, verify: Verify) -> ClientConfig {
    ClientConfig {
        verify,
        connect_timeout: Duration::from_secs(5),
        ..common::client_config(r.addr, r.fingerprint, None)
    }
}

#[test]
fn streams_frames_whose_markers_match_their_headers() {
    let r = start_host();
    let interrupted = Arc::new(AtomicBool::new(false));
    // Each second's figures too, as `--stats-every 1` writes them.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("periods-{}.jsonl", std::process::id()));
    std::fs::remove_file(&path).ok();
    let periods = kumo::client::headless::Periods { every: Duration::from_secs(1), path: path.clone() };
    let outcome = kumo::client::headless::run(
        &r.rt,
        config(&r, Verify::Pinned(r.fingerprint)),
        Some(Duration::from_secs(3)),
        &interrupted,
        Some(&periods),
    )
    .unwrap();
    let lines = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let each: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!((3..=4).contains(&each.len()), "a line a second: {lines}");
    let decoded: u64 = each.iter().map(|p| p["frames_decoded"].as_u64().unwrap()).sum();
    assert_eq!(decoded, outcome.summary.frames_decoded, "the periods add up to the whole: {lines}");
    assert!(each.iter().all(|p| p["duration_secs"].as_f64().unwrap() <= 1.2), "{lines}");
    let s = &outcome.summary;
    assert!(matches!(outcome.end, Ok(End::Stopped)), "{:?}", outcome.end);
    assert_eq!((s.width, s.height, s.fps), (640, 360, 30));
    // 3 s at 30 fps is 90 frames; allow for a slow machine, but most must arrive.
    assert!(s.frames_decoded >= 45, "only {} frames decoded: {s:#?}", s.frames_decoded);
    assert_eq!(s.decode_errors, 0, "{s:#?}");
    assert_eq!(s.marker_mismatches, 0, "{s:#?}");
    // Loopback loses nothing, but a loaded CI machine can delay a frame past the gap timeout.
    assert!(s.frames_dropped * 10 <= s.frames_decoded, "{s:#?}");
    assert!(s.frames_received >= s.frames_decoded);
    assert!(s.capture_to_decoded_ms.p50 > 0.0);
    assert!(s.bitrate_kbps > 0.0);
    assert!(s.rtt_ms.p50 > 0.0, "pings were answered: {s:#?}");
    r.stop.send(true).ok();
}

#[test]
fn a_wrong_fingerprint_fails_with_a_clear_error() {
    let r = start_host();
    let wrong = Fingerprint([7; 32]);
    let err = r.rt.block_on(client::connect(config(&r, Verify::Pinned(wrong)))).err().expect("must not connect");
    assert!(matches!(err, ClientError::FingerprintMismatch { got, .. } if got == r.fingerprint), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&r.fingerprint.to_string()) && text.contains("--host-fingerprint"), "{text}");
}

#[test]
fn a_version_mismatch_fails_with_a_clear_error_on_both_sides() {
    let r = start_host();
    let mut c = config(&r, Verify::Pinned(r.fingerprint));
    c.protocol_version = PROTOCOL_VERSION + 1;
    let err = r.rt.block_on(client::connect(c)).err().expect("must be refused");
    match &err {
        ClientError::VersionMismatch { ours, host, message } => {
            assert_eq!((*ours, *host), (PROTOCOL_VERSION + 1, PROTOCOL_VERSION));
            // The host's side of the story travels in the refusal.
            assert!(
                message.contains(&format!("v{PROTOCOL_VERSION}")) && message.contains("same kumo version"),
                "{message}"
            );
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    // The host is free again for a client of the right version.
    let good = r.rt.block_on(client::connect(config(&r, Verify::Pinned(r.fingerprint)))).unwrap();
    good.stop();
    r.rt.block_on(good.finish()).unwrap();
}

#[test]
fn a_second_client_is_refused_while_one_streams() {
    let r = start_host();
    let first = r.rt.block_on(client::connect(config(&r, Verify::Pinned(r.fingerprint)))).unwrap();
    let err = r.rt.block_on(client::connect(config(&r, Verify::Pinned(r.fingerprint)))).err().expect("host is busy");
    assert!(matches!(err, ClientError::Refused { .. }) && err.to_string().contains("already streaming"), "{err}");
    // Decoded pictures reach the latest-frame slot.
    let mut stats = Stats::new(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stats.frames_decoded() < 5 && std::time::Instant::now() < deadline {
        if let Ok(e) = first.events.recv_timeout(Duration::from_millis(100)) {
            stats.apply(e);
        }
    }
    let picture = first.slot.take().0.expect("a decoded picture is waiting");
    assert_eq!((picture.width, picture.height), (640, 360));
    assert_eq!(kumo::core::sim::marker::read(&picture.y, 640, 640, 360), Ok(picture.frame_number as u32));
    first.stop();
    r.rt.block_on(first.finish()).unwrap();
}

#[test]
fn an_absent_host_is_reported_in_a_sentence() {
    let rt = kumo::runtime().unwrap();
    // A bound but silent UDP socket: QUIC packets go nowhere.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = ClientConfig {
        connect_timeout: Duration::from_millis(500),
        ..common::client_config(silent.local_addr().unwrap(), Fingerprint([0; 32]), None)
    };
    let err = rt.block_on(client::connect(c)).err().expect("nobody answers");
    assert!(err.to_string().contains("is `kumo host` running"), "{err}");
}

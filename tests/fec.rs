//! Forward error correction end to end: a real host sends parity datagrams beside each frame
//! stream, the project's relay loses 10 % of the packets each way (seeded), and the client
//! rebuilds frames from parity instead of waiting for QUIC's retransmissions (quinn on
//! loopback, openh264 both ends). The same path with parity off rebuilds nothing.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use kumo::core::sim::impair::Impairment;
use kumo::core::stats::{Stats, Summary};
use kumo::core::video::fec::FecMode;
use kumo::host::{HostConfig, HostTrust};
use std::time::{Duration, Instant};

/// Streams 640x360@30 for `secs` through a relay losing 10 % each way (10 ms each way).
fn stream_through_loss(fec: FecMode, secs: u64) -> Summary {
    let config = HostConfig { fec, ..common::host_config("fec test host", HostTrust::open()) };
    let host = common::start_host_with(kumo::runtime().unwrap(), config);
    let impairment = Impairment { delay: Duration::from_millis(10), loss: 0.10, seed: 11, ..Impairment::default() };
    let relay = host.rt.block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), host.addr, impairment)).unwrap();
    let config = kumo::client::ClientConfig {
        reconnect_timeout: Some(Duration::from_secs(10)),
        ..common::client_config(relay.addr, host.fingerprint, None)
    };
    let session = host.rt.block_on(kumo::client::connect(config)).unwrap();
    let mut stats = Stats::new(0);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        while let Ok(event) = session.events.try_recv() {
            stats.apply(event);
        }
        session.slot.take();
        std::thread::sleep(Duration::from_millis(5));
    }
    session.stop();
    let s = stats.summary(t0.elapsed());
    eprintln!(
        "{fec:?}: {} decoded, {} rebuilt from parity ({} shards), {} lost, longest freeze {} ms",
        s.frames_decoded, s.frames_repaired_fec, s.fec_shards_rebuilt, s.frames_lost, s.longest_freeze_ms
    );
    s
}

#[test]
fn parity_rebuilds_frames_that_lost_packets_and_they_decode_true() {
    let s = stream_through_loss(FecMode::Fixed(0.3), 5);
    // 150 frames of about 8 KB (6 packets): at 10 % loss about half of them lose one.
    assert!(s.frames_repaired_fec >= 20, "too few frames rebuilt from parity: {s:?}");
    assert!(s.fec_shards_rebuilt >= 3 * s.frames_repaired_fec, "a lost packet spoils 3 or more shards: {s:?}");
    // Rebuilt bytes are the host's bytes: every picture decodes and shows its own marker.
    assert_eq!((s.decode_errors, s.marker_mismatches), (0, 0), "{s:?}");
    assert!(s.frames_decoded >= 120, "{s:?}");
}

#[test]
fn with_parity_off_nothing_is_rebuilt() {
    let s = stream_through_loss(FecMode::Off, 3);
    assert_eq!(s.frames_repaired_fec, 0, "{s:?}");
    // QUIC's retransmissions alone still deliver the stream.
    assert!(s.frames_decoded >= 60, "{s:?}");
}

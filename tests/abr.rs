//! Adaptive bitrate end to end: the project's relay drops the path from 30 to 5 Mbit/s and
//! back, between a real host and a real client (quinn on loopback, openh264 both ends).

mod common;

use kumo::client::{self, ClientConfig, StreamRequest};
use kumo::core::sim::impair::{Change, Impairment};
use kumo::core::stats::Event;
use kumo::host::HostTrust;
use std::time::{Duration, Instant};

#[test]
fn a_rate_drop_from_30_to_5_mbit_is_followed_within_2_s_and_the_bitrate_recovers_within_10_s() {
    let host =
        common::start_host_with(kumo::runtime().unwrap(), common::host_config("abr test host", HostTrust::open()));
    let (rt, addr, fingerprint) = (&host.rt, host.addr, host.fingerprint);
    // 10 ms each way; 30 Mbit/s, 5 Mbit/s from 3 s to 9 s, then 30 again.
    let (drop_at, back_at, end_at) = (Duration::from_secs(3), Duration::from_secs(9), Duration::from_secs(19));
    let impairment = Impairment {
        delay: Duration::from_millis(10),
        rate_bps: Some(30_000_000),
        schedule: vec![(drop_at, Change::Rate(5_000_000)), (back_at, Change::Rate(30_000_000))],
        ..Impairment::default()
    };
    let relay = rt.block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), addr, impairment)).unwrap();
    let t0 = Instant::now();
    let config = ClientConfig {
        request: StreamRequest {
            width: 1280,
            height: 720,
            fps: 60,
            bitrate_kbps: 12_000,
            min_bitrate_kbps: Some(1000),
            adapt_size: false,
        },
        name: "abr test client".into(),
        reconnect_timeout: Some(Duration::from_secs(30)),
        ..common::client_config(relay.addr, fingerprint, None)
    };
    let session = rt.block_on(client::connect(config)).unwrap();
    // (seen at, target) for each change; (seen at, transit µs) and decode times per frame.
    let (mut targets, mut transits, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
    while t0.elapsed() < end_at {
        while let Ok(event) = session.events.try_recv() {
            let at = t0.elapsed();
            match event {
                Event::BitrateChanged { kbps, .. } => targets.push((at, kbps)),
                Event::Received(f) => {
                    let transit = f.received_micros as i64 - (f.capture_micros + u64::from(f.encode_micros)) as i64;
                    transits.push((at, transit));
                }
                Event::Decoded(_) => decoded.push(at),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    session.stop();
    rt.block_on(session.finish()).unwrap();
    host.stop.send(true).ok();
    drop(relay);

    let target_at = |t: Duration| targets.iter().rev().find(|c| c.0 <= t).map_or(12_000, |c| c.1);
    let median_transit = |from: Duration, to: Duration| {
        let mut v: Vec<i64> = transits.iter().filter(|s| s.0 >= from && s.0 < to).map(|s| s.1).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let longest_gap = |from: Duration, to: Duration| {
        let times: Vec<Duration> = decoded.iter().copied().filter(|&t| t >= from && t < to).collect();
        times.windows(2).map(|w| w[1].saturating_sub(w[0])).max().unwrap_or(to.saturating_sub(from))
    };
    let baseline = median_transit(Duration::from_secs(1), drop_at);
    let settled = median_transit(drop_at + Duration::from_secs(2), back_at);
    eprintln!(
        "abr: targets {:?}",
        targets.iter().map(|(t, k)| format!("{:.1}s:{k}", t.as_secs_f64())).collect::<Vec<_>>()
    );
    eprintln!(
        "abr: transit baseline {:.1} ms, 2-6 s after the drop {:.1} ms; longest gap after the drop {:?}; target at the end {}",
        baseline as f64 / 1000.0,
        settled as f64 / 1000.0,
        longest_gap(drop_at, back_at),
        target_at(end_at)
    );
    // Within 2 s of the drop the stream fits 5 Mbit/s, and latency is back near baseline.
    assert!(target_at(drop_at + Duration::from_secs(2)) <= 5_000, "fits within 2 s: {targets:?}");
    assert!(settled - baseline < 30_000, "queueing gone: {baseline} µs → {settled} µs");
    // No stall longer than 200 ms: the host's send window holds back capture slots while the
    // path drains (a lower frame rate for a moment, nothing to repair) until the smaller
    // frames arrive.
    let gap = longest_gap(drop_at, back_at);
    assert!(gap < Duration::from_millis(200), "longest gap between pictures {gap:?}");
    // When the rate returns, the bitrate recovers within 10 s.
    assert!(target_at(end_at) >= 10_000, "recovered: {targets:?}");
}

//! Adaptive bitrate end to end: the project's relay drops the path from 30 to 5 Mbit/s and
//! back, between a real host and a real client (quinn on loopback, openh264 both ends).

mod common;

use kumo::client::{self, ClientConfig, StreamRequest};
use kumo::core::sim::impair::{Change, Impairment};
use kumo::core::stats::Event;
use kumo::host::HostTrust;
use std::time::{Duration, Instant};

/// Each test streams 720p60 in real time and judges it by its timing: one at a time, so the
/// two do not share the machine's cores (on CI's two, side by side, the host fell behind and
/// the ladder stepped down again on a wide path).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A host, the project's relay in front of it with `impairment`, and a client streaming
/// `request` through the relay (its clock starts at the returned instant).
fn through_relay(
    name: &str,
    impairment: Impairment,
    request: StreamRequest,
) -> (common::TestHost, kumo::net::relay::Relay, client::Session, Instant) {
    let host = common::start_host_with(
        kumo::runtime().expect("a runtime"),
        common::host_config(&format!("{name} host"), HostTrust::open()),
    );
    let relay = host
        .rt
        .block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), host.addr, impairment))
        .expect("the relay starts");
    let t0 = Instant::now();
    let config = ClientConfig {
        request,
        name: format!("{name} client"),
        reconnect_timeout: Some(Duration::from_secs(30)),
        ..common::client_config(relay.addr, host.fingerprint, None)
    };
    let session = host.rt.block_on(client::connect(config)).expect("the client connects through the relay");
    (host, relay, session, t0)
}

#[test]
fn a_rate_drop_from_30_to_5_mbit_is_followed_within_2_s_and_the_bitrate_recovers_within_10_s() {
    let _serial = serial();
    // 10 ms each way; 30 Mbit/s, 5 Mbit/s from 3 s to 9 s, then 30 again.
    let (drop_at, back_at, end_at) = (Duration::from_secs(3), Duration::from_secs(9), Duration::from_secs(19));
    let impairment = Impairment {
        delay: Duration::from_millis(10),
        rate_bps: Some(30_000_000),
        schedule: vec![(drop_at, Change::Rate(5_000_000)), (back_at, Change::Rate(30_000_000))],
        ..Impairment::default()
    };
    let request = StreamRequest {
        width: 1280,
        height: 720,
        fps: 60,
        bitrate_kbps: 12_000,
        min_bitrate_kbps: Some(1000),
        adapt_size: false,
    };
    let (host, relay, session, t0) = through_relay("abr test", impairment, request);
    let rt = &host.rt;
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

#[test]
fn on_a_path_too_narrow_for_720p60_the_picture_steps_down_and_comes_back_when_it_widens() {
    let _serial = serial();
    // A machine too loaded to keep the host on its capture clock (CI once decoded at 40 fps)
    // can end the start's climb on the delay that makes, and a stream on a wide path then
    // starts below its size: such a run, counted by the host's own figure of slots it fell
    // behind, is run again, up to three times in all. An undisturbed run fails at once.
    for attempt in 1..=3 {
        let run = ladder_through_a_narrowing_path();
        let started = run.heights(Duration::from_millis(500), run.narrow_at);
        if started == [720] {
            run.check();
            return;
        }
        assert!(
            attempt < 3 && run.host_behind > 0,
            "the stream started below its size: {started:?} (the host fell behind by {} slots before the path narrowed)",
            run.host_behind
        );
        eprintln!("a disturbed run (the host fell behind by {} slots), run again: {started:?}", run.host_behind);
    }
}

/// One run of the ladder test: the sizes seen, and the figures.
struct LadderRun {
    narrow_at: Duration,
    wide_at: Duration,
    end_at: Duration,
    /// (seen at, encoded width and height) per frame.
    sizes: Vec<(Duration, u16, u16)>,
    mismatches: u32,
    decoded: u32,
    /// Capture slots the host fell behind before the path narrowed.
    host_behind: u32,
    summary: kumo::core::stats::Summary,
}

impl LadderRun {
    fn heights(&self, from: Duration, to: Duration) -> Vec<u16> {
        let mut h: Vec<u16> = self.sizes.iter().filter(|s| s.0 >= from && s.0 < to).map(|s| s.2).collect();
        h.dedup();
        h
    }

    fn check(&self) {
        let (summary, sizes) = (&self.summary, &self.sizes);
        // Within 3 s of the narrowing the picture is smaller, and stays so while the path is narrow.
        let narrow = self.heights(self.narrow_at + Duration::from_secs(3), self.wide_at);
        assert!(!narrow.is_empty() && narrow.iter().all(|&h| h < 720), "not stepped down: {narrow:?}");
        // Back at 720p within 14 s of the path widening, one rung at a time.
        let last = sizes.last().expect("frames arrived");
        assert_eq!(
            (last.1, last.2),
            (1280, 720),
            "not back at 720p by the end: {:?}",
            self.heights(self.wide_at, self.end_at)
        );
        assert!(summary.encode_size_changes >= 2, "{summary:?}");
        assert!(summary.time_at_size.iter().any(|t| t.height < 720 && t.width % 2 == 0 && t.secs > 1.0), "{summary:?}");
        // Every size change decoded without a wrong picture or a decoder error.
        assert_eq!(self.mismatches, 0, "pictures whose marker did not match their frame number");
        assert_eq!(summary.decode_errors, 0, "{summary:?}");
        assert!(self.decoded > 600, "only {} pictures decoded in 24 s", self.decoded);
    }
}

/// 720p60 asked at 8 Mbit/s through the project's relay: 30 Mbit/s, 2 Mbit/s from 2 s to 8 s
/// (under openh264's 720p60 floor), then 30 again, for 24 s.
fn ladder_through_a_narrowing_path() -> LadderRun {
    use kumo::core::stats::MarkerCheck;
    // 5 ms each way; 30 Mbit/s, then 2 Mbit/s (under openh264's 720p60 floor of about
    // 2.1 Mbit/s on this scene) from 2 s to 8 s, then 30 again.
    let (narrow_at, wide_at, end_at) = (Duration::from_secs(2), Duration::from_secs(8), Duration::from_secs(24));
    let impairment = Impairment {
        delay: Duration::from_millis(5),
        rate_bps: Some(30_000_000),
        schedule: vec![(narrow_at, Change::Rate(2_000_000)), (wide_at, Change::Rate(30_000_000))],
        ..Impairment::default()
    };
    let request = StreamRequest {
        width: 1280,
        height: 720,
        fps: 60,
        bitrate_kbps: 8000,
        min_bitrate_kbps: Some(500),
        adapt_size: true,
    };
    let (host, relay, session, t0) = through_relay("ladder test", impairment, request);
    let rt = &host.rt;
    let (mut sizes, mut mismatches, mut decoded, mut host_behind) = (Vec::new(), 0, 0, 0);
    let mut stats = kumo::core::stats::Stats::new(0);
    while t0.elapsed() < end_at {
        while let Ok(event) = session.events.try_recv() {
            stats.apply(event.clone());
            match event {
                Event::Received(f) => sizes.push((t0.elapsed(), f.width, f.height)),
                Event::Decoded(d) => {
                    decoded += 1;
                    mismatches += u32::from(d.marker == MarkerCheck::Mismatch);
                    if t0.elapsed() < narrow_at {
                        host_behind = host_behind.max(d.host_behind);
                    }
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    session.stop();
    rt.block_on(session.finish()).expect("the session ends cleanly");
    host.stop.send(true).ok();
    drop(relay);
    let summary = stats.summary(end_at);
    let run = LadderRun { narrow_at, wide_at, end_at, sizes, mismatches, decoded, host_behind, summary };
    eprintln!(
        "ladder: heights before {:?}, narrow {:?}, wide {:?}; {} changes, {:?}",
        run.heights(Duration::ZERO, narrow_at),
        run.heights(narrow_at, wide_at),
        run.heights(wide_at, end_at),
        run.summary.encode_size_changes,
        run.summary.time_at_size
    );
    run
}

//! The latency lab end to end: `kumo latency --headless` against the embedded host,
//! directly and through the impairment relay, and the files it writes checked as a tester
//! would use them.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::remove_dir_all(&dir).ok();
    dir
}

fn latency(out: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let run = Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["latency", "--headless", "--width", "640", "--height", "360", "--out"])
        .arg(out)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "kumo latency failed: {}\n{stdout}", String::from_utf8_lossy(&run.stderr));
    let summary = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (summary, stdout)
}

/// The CSV's rows as maps from column name to text.
fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_owned).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_owned)).collect()).collect()
}

#[test]
fn every_input_is_measured_stage_by_stage_and_verified_from_pixels() {
    let out = out_dir("kumo-latency-clean");
    let (s, stdout) = latency(&out, &["--inputs", "24"]);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {s}"));
    let f = |k: &str, q: &str| s[k][q].as_f64().unwrap_or_else(|| panic!("{k}.{q} missing: {s}"));
    assert_eq!(n("inputs"), 24, "{s}");
    assert_eq!(n("responses_verified"), 24, "{s}");
    assert_eq!(n("responses_missing"), 0, "{s}");
    // One clock on loopback: sync must find (nearly) no offset, within its own bound.
    let (offset, bound) = (s["clock_offset_ms"].as_f64().unwrap(), s["clock_offset_error_ms"].as_f64().unwrap());
    assert!(offset.abs() <= bound + 0.05 && bound < 2.0, "offset {offset} ± {bound} ms");
    // Stages are sane: a frame's wait for capture is at most about a frame (16.7 ms at 60
    // fps, plus scheduling slack), and the total is what a 60 fps loopback stream gives.
    assert!(f("wait_capture_ms", "max") < 25.0, "{s}");
    let total = f("input_to_present_ms", "p50");
    assert!(total > 1.0 && total < 60.0, "input→present p50 {total} ms");
    // The burnt-in capture times read from the pixels agree with the headers within a frame.
    assert!(n("time_marks_read") > 60, "{s}");
    assert!(s["time_mark_max_disagreement_ms"].as_f64().unwrap() <= 16.7, "{s}");
    // Each CSV row's stages add up to its total (the lab's honesty check on loopback), and
    // the stamps are in order.
    let rows = csv_rows(&out.join("latency.csv"));
    assert_eq!(rows.len(), 24);
    for r in &rows {
        let v = |k: &str| r[k].parse::<f64>().unwrap();
        let sum: f64 =
            ["send_ms", "uplink_ms", "wait_capture_ms", "encode_ms", "downlink_ms", "decode_ms", "present_ms"]
                .iter()
                .map(|k| v(k))
                .sum();
        assert!((sum - v("total_ms")).abs() < 0.01, "{r:?}");
        assert!((v("presented_us") - v("read_us")) / 1000.0 - v("total_ms") < 0.01, "{r:?}");
        assert!(v("captured_us") >= v("host_received_us") - 100.0, "captured before the input arrived: {r:?}");
        assert_eq!(r["verified"], "true");
    }
    // The picture: a PNG of the promised size.
    let png = std::fs::read(out.join("latency.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1280);
    // And the same chart as SVG, with its axes named and the percentiles marked.
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    for text in ["milliseconds", "input, in the order sent", "input to present, milliseconds", "p99 ", "wait capture:"]
    {
        assert!(svg.contains(text), "{text:?} missing from latency.svg");
    }
    assert!(stdout.contains("input→present") && stdout.contains("24 responses verified"), "{stdout}");
}

#[test]
fn impairment_from_the_relay_shows_up_in_the_right_stages() {
    let out = out_dir("kumo-latency-impaired");
    let (s, _) =
        latency(&out, &["--inputs", "16", "--delay", "15ms", "--jitter", "2ms", "--loss", "1%", "--seed", "7"]);
    let f = |k: &str, q: &str| s[k][q].as_f64().unwrap_or_else(|| panic!("{k}.{q} missing: {s}"));
    // 15 ms each way: the uplink and downlink stages carry it, nothing else does.
    assert!(f("uplink_ms", "p50") > 12.0 && f("uplink_ms", "p50") < 40.0, "{s}");
    assert!(f("downlink_ms", "p50") > 12.0, "{s}");
    assert!(f("encode_ms", "p50") < 15.0, "{s}");
    // A symmetric delay does not fool clock sync: the offset stays within its bound of zero,
    // and the bound is about half the round trip.
    let (offset, bound) = (s["clock_offset_ms"].as_f64().unwrap(), s["clock_offset_error_ms"].as_f64().unwrap());
    assert!(offset.abs() <= bound + 0.05, "offset {offset} ± {bound} ms");
    assert!(bound > 12.0 && bound < 25.0, "bound {bound} ms for a 30 ms round trip");
    // Loss may cost an input its first datagram, never its response; and jitter must not
    // starve the stream (it did before the transport stopped taking reordering for loss).
    assert!(s["responses_verified"].as_u64().unwrap() >= 15, "{s}");
    assert!(f("input_to_present_ms", "p50") < 120.0, "{s}");
    assert!(s["time_marks_read"].as_u64().unwrap() > 60, "frames kept flowing: {s}");
}

#[test]
fn a_two_second_blackout_is_survived_and_every_input_still_answered() {
    let out = out_dir("kumo-latency-blackout");
    // Inputs from 1 s to about 5 s; the relay drops everything from 2 s to 4 s.
    let (s, _) = latency(&out, &["--inputs", "40", "--schedule", "2s blackout 2s", "--seed", "5"]);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {s}"));
    let f = |k: &str, q: &str| s[k][q].as_f64().unwrap_or_else(|| panic!("{k}.{q} missing: {s}"));
    // Input is a state, re-sent until the host has it: when the path comes back the newest
    // state goes through, and the states it replaced are reported as superseded. While the
    // client reconnects (from 1 s into the blackout) changes are not sent at all but merge
    // into the state sent on the new connection. Nothing is missing.
    assert_eq!(n("responses_missing"), 0, "{s}");
    assert!(n("inputs") >= 25, "inputs sent, the dark ones merged: {s}");
    assert_eq!(n("responses_verified") + n("inputs_superseded"), n("inputs"), "{s}");
    assert!(n("inputs_superseded") > 3, "inputs made in the dark: {s}");
    // Only the newest state made in the dark travels, when the path is back; nothing waits
    // longer than the blackout plus the reconnection (under a second).
    let worst = f("input_to_present_ms", "max");
    assert!(worst < 3_000.0, "worst input→present {worst} ms");
    // The stream came back: most of the run's frames were decoded (2 s of 6 are dark).
    assert!(n("time_marks_read") > 200, "{s}");
}

#[test]
fn watching_the_flash_region_agrees_with_the_hosts_marks() {
    let out = out_dir("kumo-latency-watch");
    // The synthetic host's flash: the bottom-right eighth of a 640x360 picture.
    let (s, stdout) = latency(&out, &["--inputs", "16", "--watch", "560,315,80,45"]);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {s}"));
    assert_eq!(n("inputs"), 16, "presses are counted: {s}");
    assert_eq!(n("responses_verified"), 16, "{s}");
    let watch = &s["watch"];
    assert_eq!(watch["compared_with_marks"].as_u64(), Some(16), "{s}");
    // Both methods name the same frame or the next: within one frame interval at 60 fps.
    let apart = watch["disagreement_with_marks_ms"]["max"].as_f64().unwrap();
    assert!(apart <= 16.7, "the watch and the marks are {apart} ms apart: {s}");
    assert!(stdout.contains("watched           560,315 80x45"), "{stdout}");

    // A region outside the stream is refused before anything starts, in a sentence.
    let run = Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["latency", "--headless", "--width", "640", "--height", "360", "--watch", "600,300,80,80"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(said.contains("is not inside the 640x360 stream"), "{said}");
}

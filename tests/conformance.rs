//! Decoder conformance: every stream in tests/data/h264 goes through kumo's decode path
//! (Annex-B split into whole access units by `core::video::annexb`, then `decode::H264Decoder`, the
//! decoder the decode thread owns) and the pictures are hashed as the corpus README says:
//! SHA-1 over every output picture in order, Y rows then U then V, strides dropped.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

use kumo::client::decode::H264Decoder;
use kumo::core::video::annexb;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/h264")
}

/// Streams openh264 itself cannot reproduce through a no-delay, access-unit-at-a-time
/// decoder, with the reason. They must still decode without crashing or hanging.
const KNOWN_DIFFERENT: &[(&str, &str)] = &[
    // B-frames: openh264's no-delay mode (kumo's low-latency path) hands pictures out without
    // the output-order reordering its DecodeFrame2 reference applies. Game streams, kumo's
    // host included, carry no B-frames, so no-delay stays the right mode for kumo.
    ("Cisco_Men_whisper_640x320_CABAC_Bframe_9.264", B_FRAMES),
    ("Cisco_Men_whisper_640x320_CAVLC_Bframe_9.264", B_FRAMES),
    ("VID_1280x720_cabac_temporal_direct.264", B_FRAMES),
    ("VID_1280x720_cavlc_temporal_direct.264", B_FRAMES),
    ("VID_1920x1080_cabac_temporal_direct.264", B_FRAMES),
    ("VID_1920x1080_cavlc_temporal_direct.264", B_FRAMES),
    // An SVC enhancement slice (NAL type 20) with no base-layer slice: openh264 emits its
    // picture only from DecodeFrame2's end-of-stream path, which no-delay decoding never takes.
    ("sps_subsetsps_bothVUI.264", "SVC enhancement layer without a base layer"),
    // Several PPS with scaling matrices: same picture count as the reference, different
    // pixels; the cause is not found yet.
    ("test_scalinglist_jm.264", "PPS scaling lists"),
];

const B_FRAMES: &str = "B-frame output order in no-delay mode";

/// Damaged on purpose: they must not crash or hang; their hashes are not checked.
fn is_damaged(name: &str) -> bool {
    name.contains("_LOST") || name.starts_with("Error_")
}

struct Decoded {
    sha1: String,
    pictures: usize,
    errors: usize,
}

fn decode_file(path: &Path) -> Decoded {
    let data = std::fs::read(path).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut hash = sha1_smol::Sha1::new();
    let mut pictures = 0;
    let mut errors = 0;
    for au in annexb::access_units(&data) {
        match decoder.decode(au, |view| {
            for row in view.rows() {
                hash.update(row);
            }
        }) {
            Ok(Some(())) => pictures += 1,
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    decoder
        .flush(|view| {
            pictures += 1;
            for row in view.rows() {
                hash.update(row);
            }
        })
        .unwrap_or_else(|_| errors += 1);
    Decoded { sha1: hash.digest().to_string(), pictures, errors }
}

/// Decodes on a thread so a hang fails the test instead of stalling the suite.
fn decode_with_deadline(path: PathBuf) -> Decoded {
    let (tx, rx) = mpsc::sync_channel(1);
    let name = path.display().to_string();
    std::thread::Builder::new()
        .name("conformance".into())
        .spawn(move || {
            tx.send(decode_file(&path)).ok();
        })
        .unwrap();
    rx.recv_timeout(Duration::from_mins(2)).unwrap_or_else(|_| panic!("decoding {name} crashed or hung"))
}

#[test]
fn corpus_matches_expected_hashes() {
    let dir = corpus();
    let table = std::fs::read_to_string(dir.join("expected-sha1.tsv"))
        .unwrap_or_else(|e| panic!("the H.264 corpus is missing at {}: {e}", dir.display()));
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let (Some(name), Some(expected)) = (cols.next(), cols.next()) else { continue };
        let path = dir.join(name);
        if !path.exists() {
            continue; // the README says listed files may be absent
        }
        let outcome = decode_with_deadline(path);
        if is_damaged(name) {
            assert!(outcome.pictures > 0 || outcome.errors > 0, "{name}: nothing happened");
            continue;
        }
        checked += 1;
        let known = KNOWN_DIFFERENT.iter().find(|(n, _)| *n == name);
        let matched = outcome.sha1 == expected.trim();
        eprintln!(
            "{name}: {} pictures, {} errors, {}",
            outcome.pictures,
            outcome.errors,
            if matched { "match" } else { "MISMATCH" }
        );
        match (matched, known) {
            (true, Some(_)) => failures.push(format!("{name} now matches: remove it from KNOWN_DIFFERENT")),
            (false, None) => failures.push(format!("{name}: got {} expected {expected}", outcome.sha1)),
            _ => {}
        }
    }
    assert!(checked >= 40, "only {checked} streams checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn damaged_streams_do_not_crash_or_hang() {
    let dir = corpus();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if is_damaged(&name) {
            let outcome = decode_with_deadline(path);
            assert!(outcome.pictures > 0, "{name}: the intact parts should still decode");
            seen += 1;
        }
    }
    assert!(seen >= 3, "expected the corpus's damaged streams, found {seen}");
}

#[test]
fn truncated_and_garbled_access_units_never_panic() {
    let data = std::fs::read(corpus().join("BA_MW_D.264")).unwrap();
    let aus: Vec<&[u8]> = annexb::access_units(&data).take(20).collect();
    let mut decoder = H264Decoder::new().unwrap();
    let mut rng = kumo::core::sim::rng::XorShift::from_state(0x2545_f491_4f6c_dd1d);
    for (i, au) in aus.iter().enumerate() {
        let mut damaged = au.to_vec();
        if i % 3 == 1 {
            damaged.truncate(damaged.len() / 2);
        } else if i % 3 == 2 {
            for b in damaged.iter_mut().skip(8) {
                let seed = rng.next_u64();
                if seed.is_multiple_of(7) {
                    *b = seed as u8;
                }
            }
        }
        decoder.decode(&damaged, |_| ()).ok();
    }
    // A fresh IDR stream decodes again after the damage.
    let mut fresh = H264Decoder::new().unwrap();
    assert_eq!(fresh.decode(aus[0], |_| ()).unwrap(), Some(()));
}

/// What the decode thread reported for one run of access units.
#[derive(Default, Debug)]
struct ThreadRun {
    decoded: Vec<u64>,
    errors: usize,
    skipped: usize,
    losses: Vec<u64>,
}

/// Runs `units` (access unit, is it an IDR) through the client's decode thread with frame
/// numbers 0.. in order, then closes its input: a panic or a hang fails the test.
fn through_decode_thread(units: Vec<(Vec<u8>, bool)>) -> ThreadRun {
    use kumo::client::decode::{AccessUnit, FrameSlot, NO_IDR_PIC_ID, Outputs};
    use kumo::core::stats::Event;
    use kumo::core::wire::{FrameHeader, FrameKind};
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    let count = units.len();
    let (input, queue) = mpsc::sync_channel(8);
    // Room for every event: the thread drops stats it cannot queue, and this counts them.
    let (stats, events) = mpsc::sync_channel(count * 4 + 64);
    let (losses, mut lost) = tokio::sync::mpsc::channel(count + 1);
    let (ltr_marks, _marks) = tokio::sync::mpsc::channel(count + 1);
    let outputs = Outputs {
        stats,
        // The conformance streams are not kumo's: they carry no frame markers.
        markers: false,
        watch: None,
        losses,
        ltr_marks,
        idr_pic_id: Arc::new(AtomicU32::new(NO_IDR_PIC_ID)),
        slot: Arc::new(FrameSlot::new()),
        notify: None,
        av: Arc::new(kumo::client::audio::AvClock::default()),
        record: None,
    };
    let thread = kumo::client::decode::spawn(queue, outputs).unwrap();
    for (n, (data, idr)) in units.into_iter().enumerate() {
        let header = FrameHeader {
            frame_number: n as u64,
            capture_micros: 0,
            encode_micros: 0,
            kind: if idr { FrameKind::Idr } else { FrameKind::Inter },
            width: 0,
            height: 0,
            payload_len: data.len() as u32,
            input_seq: 0,
            held_back: 0,
            host_behind: 0,
        };
        let mut unit = AccessUnit { header, data, queued_at: std::time::Instant::now() };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match input.try_send(unit) {
                Ok(()) => break,
                Err(mpsc::TrySendError::Full(back)) => {
                    assert!(std::time::Instant::now() < deadline, "the decode thread stopped taking frames (hung?)");
                    unit = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(mpsc::TrySendError::Disconnected(_)) => panic!("the decode thread ended early (panicked?)"),
            }
        }
    }
    drop(input);
    // One message, then the joiner ends.
    let (done_tx, done) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("decode-joiner".into())
        .spawn(move || done_tx.send(thread.join().is_ok()).ok())
        .unwrap();
    let joined = done.recv_timeout(Duration::from_mins(1)).expect("the decode thread did not end (hung)");
    assert!(joined, "the decode thread panicked");
    let mut run = ThreadRun::default();
    for event in events.try_iter() {
        match event {
            Event::Decoded(d) => run.decoded.push(d.frame_number),
            Event::DecodeError => run.errors += 1,
            Event::Dropped { count, .. } => run.skipped += count as usize,
            _ => {}
        }
    }
    while let Ok(n) = lost.try_recv() {
        run.losses.push(n);
    }
    run
}

/// Flips bits and cuts access units past their first bytes (the NAL headers stay, so the
/// decoder gets as far as the slice data): one unit in three of `aus`, never an IDR.
fn mutated(aus: &[&[u8]], rng: &mut kumo::core::sim::rng::XorShift) -> Vec<(Vec<u8>, bool)> {
    aus.iter()
        .enumerate()
        .map(|(i, au)| {
            let idr = annexb::is_idr(au);
            let mut data = au.to_vec();
            if !idr && i % 3 == 2 && data.len() > 16 {
                match rng.next_u64() % 3 {
                    0 => data.truncate(8 + (rng.next_u64() as usize) % (data.len() - 8)),
                    _ => {
                        for _ in 0..=(rng.next_u64() % 8) {
                            let at = 8 + (rng.next_u64() as usize) % (data.len() - 8);
                            data[at] ^= 1 << (rng.next_u64() % 8);
                        }
                    }
                }
            }
            (data, idr)
        })
        .collect()
}

#[test]
fn damaged_and_mutated_streams_through_the_decode_thread_are_reported_and_recover_at_the_next_idr() {
    let dir = corpus();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().to_string()))
        .filter(|n| {
            let ext = Path::new(n).extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
            ["264", "jsv", "26l", "h264"].contains(&ext.as_str())
        })
        .collect();
    names.sort();
    let (damaged, intact): (Vec<_>, Vec<_>) = names.into_iter().partition(|n| is_damaged(n));
    assert!(damaged.len() >= 3, "expected the corpus's damaged streams, found {damaged:?}");
    // A clean stream to recover on: the first 10 access units of BA_MW_D (an IDR first).
    let clean_data = std::fs::read(dir.join("BA_MW_D.264")).unwrap();
    let clean: Vec<&[u8]> = annexb::access_units(&clean_data).take(10).collect();
    assert!(annexb::is_idr(clean[0]));
    let mut rng = kumo::core::sim::rng::XorShift::from_state(0x9e37_79b9_7f4a_7c15);
    // The damaged streams as they are, and 12 intact ones with mutations, each followed by
    // the clean stream.
    let mut streams = Vec::new();
    for name in damaged.iter().chain(intact.iter().step_by((intact.len() / 12).max(1)).take(12)) {
        let data = std::fs::read(dir.join(name)).unwrap();
        let aus: Vec<&[u8]> = annexb::access_units(&data).take(60).collect();
        let units = if is_damaged(name) {
            aus.iter().map(|au| (au.to_vec(), annexb::is_idr(au))).collect()
        } else {
            mutated(&aus, &mut rng)
        };
        streams.push((name.clone(), units));
    }
    let mut failed_and_reported = 0;
    for (name, mut units) in streams {
        let damaged_len = units.len() as u64;
        units.extend(clean.iter().map(|au| (au.to_vec(), annexb::is_idr(au))));
        let run = through_decode_thread(units);
        eprintln!(
            "{name}: {} decoded, {} decoder errors, {} skipped until a recovery point, losses reported {:?}",
            run.decoded.len(),
            run.errors,
            run.skipped,
            run.losses
        );
        // Every decoder failure is reported at once for a recovery request.
        assert_eq!(run.losses.len(), run.errors, "{name}: each failure is reported");
        if run.errors > 0 {
            failed_and_reported += 1;
        }
        // The decoder was reset by the clean stream's IDR: all of it decodes (openh264 may
        // hold the last picture or two until it is flushed).
        let recovered = run.decoded.iter().filter(|&&n| n >= damaged_len).count();
        assert!(recovered + 2 >= clean.len(), "{name}: only {recovered} of the clean stream's {} decoded", clean.len());
    }
    assert!(failed_and_reported >= 3, "the damage should make the decoder fail on several streams");
}

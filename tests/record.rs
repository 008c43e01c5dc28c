//! `--record FILE`: the stream as it arrived, in a Matroska file that tools no one here wrote
//! read back. `ffprobe` counts the frames (they must be the frames kumo decoded and says it
//! recorded) and `ffmpeg -v error` decodes the whole file, which must print nothing. Also: a
//! recording through a lossy relay with parity off (frames really repaired from long-term
//! references), one ended by Ctrl-C, one whose process was killed, a 5.1 one whose six
//! channels all decode to their own tones, and the picture and the sound still in sync in the
//! file (the demo's once-a-second flash against its beep). Needs `ffmpeg` (`make deps-test`);
//! without it the tests fail under CI=true and are skipped with a note elsewhere.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::sound::{have, work_dir};
use kumo::core::audio::sound;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Each test runs a whole stream: one at a time, so they do not starve each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn tools_present() -> bool {
    if have("ffmpeg") && have("ffprobe") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI needs ffmpeg to check recordings with tools kumo did not write: run `make deps-test`"
    );
    eprintln!("skipping: ffmpeg not installed (make deps-test)");
    false
}

/// What ffprobe and ffmpeg say of a recording.
#[derive(Debug)]
struct Probe {
    video_frames: u64,
    audio_frames: u64,
    channels: u64,
    /// The container's duration, s (`None`: not written, as in a killed process's file).
    duration: Option<f64>,
    /// What `ffmpeg -v error` printed while decoding everything.
    errors: String,
}

fn probe(file: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames,channels"])
        .args(["-show_entries", "format=duration", "-of", "json"])
        .arg(file)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ffprobe: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    let stream = |kind: &str| json["streams"].as_array().unwrap().iter().find(|s| s["codec_type"] == kind).cloned();
    let frames = |s: &Option<serde_json::Value>| {
        s.as_ref().map_or(0, |s| s["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0))
    };
    let (video, audio) = (stream("video"), stream("audio"));
    let decode = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    Probe {
        video_frames: frames(&video),
        audio_frames: frames(&audio),
        channels: audio.as_ref().and_then(|a| a["channels"].as_u64()).unwrap_or(0),
        duration: json["format"]["duration"].as_str().and_then(|d| d.parse().ok()),
        errors: String::from_utf8_lossy(&decode.stderr).into_owned(),
    }
}

/// The frame table's lines: (kind, recorded).
fn frame_table(file: &Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(kumo::client::record::frames_path(file)).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(kumo::core::record::frames::HEADER.trim_end()));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "{l}");
            (f[1].to_owned(), f[7] == "1")
        })
        .collect()
}

fn demo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kumo"));
    cmd.args(["demo", "--headless", "--width", "640", "--height", "360", "--record"])
        .arg(dir.join("out.mkv"))
        .args(["--stats-json"])
        .arg(dir.join("stats.json"))
        .args(args)
        .env("RUST_LOG", "kumo=info")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("kumo.log")).unwrap());
    cmd
}

fn stats(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap()
}

#[test]
fn a_recording_holds_every_decoded_frame_and_the_sound_in_sync() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-record-demo");
    let status = demo(&dir, &["--duration", "5"]).status().unwrap();
    let log = std::fs::read_to_string(dir.join("kumo.log")).unwrap();
    assert!(status.success(), "{log}");
    let file = dir.join("out.mkv");
    let p = probe(&file);
    let s = stats(&dir);
    let table = frame_table(&file);
    // Every frame decoded is in the table, every one recorded is in the file, and nothing
    // decoded was left out (the first frame is an IDR).
    assert_eq!(table.len() as u64, s["frames_decoded"].as_u64().unwrap(), "{s}");
    assert_eq!(p.video_frames, table.iter().filter(|(_, r)| *r).count() as u64, "{p:?}");
    assert_eq!(p.video_frames, table.len() as u64, "{p:?}");
    assert!(p.video_frames > 250, "{p:?}");
    // The sound played, less at most the few packets before the first picture.
    let played = s["audio_packets_played"].as_u64().unwrap();
    assert!(p.audio_frames <= played && p.audio_frames + 10 >= played, "{p:?} against {played} played");
    assert_eq!(p.channels, 2);
    assert!(p.errors.is_empty(), "ffmpeg found errors:\n{}", p.errors);
    let duration = p.duration.expect("a session that ended normally writes its duration");
    assert!((duration - 5.0).abs() < 0.5, "{duration} s");
    assert!(log.contains("recorded") && log.contains("frame times in"), "{log}");

    // In sync: the demo beeps on each once-a-second flash (bottom-left corner); in the file
    // each beep comes within 20 ms of its flash.
    let flashes = flash_times(&file);
    let beeps = beep_times(&file);
    assert!(flashes.len() >= 4 && beeps.len() >= 4, "flashes at {flashes:?}, beeps at {beeps:?}");
    let worst = beeps
        .iter()
        .map(|b| flashes.iter().map(|f| b - f).min_by(|x, y| x.abs().total_cmp(&y.abs())).unwrap_or(f64::MAX))
        .max_by(|x, y| x.abs().total_cmp(&y.abs()));
    eprintln!(
        "in the file: {} beeps, {} flashes, the farthest beep {worst:?} s from its flash",
        beeps.len(),
        flashes.len()
    );
    for beep in &beeps {
        let nearest = flashes.iter().map(|f| (f - beep).abs()).fold(f64::MAX, f64::min);
        assert!(nearest < 0.020, "a beep at {beep:.3} s is {nearest:.3} s from a flash: {flashes:?}, beeps {beeps:?}");
    }
}

/// When each picture with the sync flash is shown, s: the bottom-left eighth, decoded by
/// ffmpeg at 8x8 grey, all bright.
fn flash_times(file: &Path) -> Vec<f64> {
    let pts = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    let times: Vec<f64> = String::from_utf8_lossy(&pts.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    let grey = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v", "-vf", "crop=iw/8:ih/8:0:ih*7/8,scale=8:8,format=gray", "-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-"])
        .output()
        .unwrap();
    assert_eq!(grey.stdout.len(), times.len() * 64, "{}", String::from_utf8_lossy(&grey.stderr));
    let mut flashes: Vec<f64> = Vec::new();
    for (picture, t) in grey.stdout.chunks_exact(64).zip(&times) {
        let lit = picture.iter().all(|&v| v > 200);
        // The first picture of each flash.
        if lit && flashes.last().is_none_or(|last| t - last > 0.5) {
            flashes.push(*t);
        }
    }
    flashes
}

/// When each beep starts in the file's sound, s.
fn beep_times(file: &Path) -> Vec<f64> {
    let first = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a", "-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .args(["-read_intervals", "%+#1"])
        .arg(file)
        .output()
        .unwrap();
    let start: f64 = String::from_utf8_lossy(&first.stdout).lines().next().unwrap().trim().parse().unwrap();
    let pcm = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .unwrap();
    let samples: Vec<f32> = pcm.stdout.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    // A beep cut by the file's start (the sound starts with the first picture) is not whole
    // enough to place.
    sound::find_beeps(&samples).into_iter().filter(|&at| at >= 4_800).map(|at| start + at as f64 / 48_000.0).collect()
}

#[test]
fn a_recording_through_loss_without_parity_is_repaired_from_long_term_references() {
    use kumo::core::sim::impair::Impairment;
    use kumo::core::stats::Stats;
    use kumo::host::{HostConfig, HostTrust};
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-record-loss");
    let file = dir.join("out.mkv");
    let config = HostConfig {
        fec: kumo::core::video::fec::FecMode::Off,
        ..common::host_config("record test host", HostTrust::open())
    };
    let host = common::start_host_with(kumo::runtime().unwrap(), config);
    // 20 % loss each way: a frame whose packets are lost again on their way back is late
    // past its wait, is skipped, and the stream goes on from a recovery frame.
    let impairment = Impairment { delay: Duration::from_millis(10), loss: 0.20, seed: 7, ..Impairment::default() };
    let relay = host.rt.block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), host.addr, impairment)).unwrap();
    let config = kumo::client::ClientConfig {
        reconnect_timeout: Some(Duration::from_secs(10)),
        record: Some(file.clone()),
        ..common::client_config(relay.addr, host.fingerprint, None)
    };
    let session = host.rt.block_on(kumo::client::connect(config)).unwrap();
    let mut stats = Stats::new(0);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        while let Ok(event) = session.events.try_recv() {
            stats.apply(event);
        }
        session.slot.take();
        std::thread::sleep(Duration::from_millis(5));
    }
    session.stop();
    let events = std::mem::replace(&mut stats, Stats::new(0));
    host.rt.block_on(session.finish()).unwrap();
    let s = events.summary(t0.elapsed());
    let table = frame_table(&file);
    let p = probe(&file);
    eprintln!(
        "{} decoded, {} repaired from a long-term reference, {} by an IDR, {} lost; the file: {p:?}",
        s.frames_decoded, s.frames_repaired_ltr, s.frames_repaired_idr, s.frames_lost
    );
    // Loss without parity: frames were lost, and the stream went on from recovery frames,
    // which are in the file.
    assert!(s.frames_lost > 0, "{s:?}");
    // Every repair is in the file: the recovery frames (from a long-term reference) and the
    // IDRs after the first (a recovery that took too long falls back to one).
    let recovered = table.iter().filter(|(kind, recorded)| kind == "recovery" && *recorded).count() as u64;
    let idrs = table.iter().filter(|(kind, recorded)| kind == "idr" && *recorded).count() as u64;
    assert!(s.frames_repaired_ltr + s.frames_repaired_idr > 0, "nothing was repaired: {s:?}");
    assert!(recovered >= s.frames_repaired_ltr, "{recovered} recovery frames recorded: {s:?}");
    assert!(idrs > s.frames_repaired_idr, "{idrs} IDRs recorded: {s:?}");
    assert_eq!(p.video_frames, table.iter().filter(|(_, r)| *r).count() as u64);
    assert!(p.video_frames > 100, "{p:?}");
    assert!(p.errors.is_empty(), "ffmpeg found errors in a recording repaired from references:\n{}", p.errors);
}

/// Starts the demo recording, waits `after`, sends `signal`, and returns the work folder.
fn interrupted(name: &str, signal: &str, after: Duration, extra: &[&str]) -> (PathBuf, std::process::ExitStatus) {
    let dir = work_dir(name);
    let mut child = demo(&dir, extra).spawn().unwrap();
    std::thread::sleep(after);
    Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    let status = exit_within(&mut child, Duration::from_secs(15), &format!("kumo did not end after {signal}"));
    (dir, status)
}

/// `child`'s exit, within `limit` (else the test fails with `what`).
fn exit_within(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_finishes_the_recording() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let (dir, status) = interrupted("kumo-record-int", "-INT", Duration::from_secs(5), &[]);
    let log = std::fs::read_to_string(dir.join("kumo.log")).unwrap();
    assert!(status.success(), "{status}: {log}");
    let p = probe(&dir.join("out.mkv"));
    assert!(p.video_frames > 100, "{p:?}\n{log}");
    assert!(p.errors.is_empty(), "{}", p.errors);
    assert!(p.duration.is_some_and(|d| d > 1.5), "Ctrl-C ends the session normally: {p:?}");
    assert_eq!(p.video_frames, stats(&dir)["frames_decoded"].as_u64().unwrap());
}

#[test]
fn a_killed_process_leaves_a_readable_recording() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let (dir, _) = interrupted("kumo-record-kill", "-KILL", Duration::from_secs(6), &[]);
    let file = dir.join("out.mkv");
    let p = probe(&file);
    // Everything up to the last whole cluster: all but the last second or two.
    assert!(p.video_frames > 60, "{p:?}");
    assert!(p.audio_frames > 200, "{p:?}");
    assert!(p.errors.is_empty(), "a killed recording must decode cleanly:\n{}", p.errors);
}

#[test]
fn surround_is_recorded_with_every_channel() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-record-51");
    let status = demo(&dir, &["--duration", "4", "--speakers", "6"]).status().unwrap();
    assert!(status.success(), "{}", std::fs::read_to_string(dir.join("kumo.log")).unwrap());
    let file = dir.join("out.mkv");
    let p = probe(&file);
    assert_eq!(p.channels, 6, "{p:?}");
    assert!(p.errors.is_empty(), "{}", p.errors);
    // ffmpeg decodes the multistream into its own 5.1 order: FL FR FC LFE BL BR. The front
    // pair carries the game's tone, each other speaker its own (wire order FC LFE RL RR:
    // SURROUND_HZ).
    let pcm = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&file)
        .args(["-map", "0:a", "-f", "f32le", "-"])
        .output()
        .unwrap();
    let samples: Vec<f32> = pcm.stdout.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let frames = samples.len() / 6;
    assert!(frames > 48_000 * 2, "only {frames} frames decoded");
    let at = frames / 2;
    let expect = [
        sound::TONE_HZ,
        sound::TONE_HZ,
        sound::SURROUND_HZ[0],
        sound::SURROUND_HZ[1],
        sound::SURROUND_HZ[2],
        sound::SURROUND_HZ[3],
    ];
    assert_eq!(common::sound::loudest_per_channel(&samples, 6, at), expect, "the tone each channel carries");
}

#[test]
fn a_folder_that_does_not_exist_is_a_sentence_and_the_stream_goes_on() {
    let _serial = serial();
    let dir = work_dir("kumo-record-nofolder");
    let out = Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["demo", "--headless", "--width", "640", "--height", "360", "--duration", "2", "--no-audio"])
        .args(["--record", "/nonexistent-kumo-folder/out.mkv", "--stats-json"])
        .arg(dir.join("stats.json"))
        .env("RUST_LOG", "kumo=info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("cannot record to /nonexistent-kumo-folder/out.mkv")
            && log.contains("streaming goes on without a recording"),
        "{log}"
    );
    assert!(stats(&dir)["frames_decoded"].as_u64().unwrap() > 30);
}

#[test]
fn a_recording_is_finished_when_the_host_is_gone_for_good() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-record-host-gone");
    let file = dir.join("out.mkv");
    let host = common::HostProcess::spawn(&[
        "--allow-unpaired".as_ref(),
        "--ephemeral".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]);
    let mut client = Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["connect", &host.addr.to_string(), "--host-fingerprint", &host.fingerprint, "--headless"])
        .args(["--width", "640", "--height", "360", "--reconnect-timeout", "2", "--record"])
        .arg(&file)
        .env("RUST_LOG", "kumo=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("kumo.log")).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    drop(host);
    let status = exit_within(&mut client, Duration::from_secs(15), "the client did not give up");
    let log = std::fs::read_to_string(dir.join("kumo.log")).unwrap();
    assert!(!status.success(), "giving up is an error: {log}");
    assert!(log.contains("recorded") && log.contains("pictures"), "the recording was finished and said so: {log}");
    let p = probe(&file);
    assert!(p.video_frames > 60, "{p:?}");
    assert!(p.errors.is_empty(), "{}", p.errors);
    assert!(p.duration.is_some_and(|d| d > 2.0), "a session that gave up still writes its duration: {p:?}");
}

#[test]
fn a_full_disk_is_a_sentence_and_the_stream_goes_on() {
    let _serial = serial();
    // /dev/full refuses every write with "no space left on device", as a full disk does; the
    // frame table beside it is an ordinary file.
    let dir = work_dir("kumo-record-full");
    let file = dir.join("full.mkv");
    std::os::unix::fs::symlink("/dev/full", &file).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["demo", "--headless", "--width", "640", "--height", "360", "--duration", "3", "--no-audio"])
        .arg("--record")
        .arg(&file)
        .arg("--stats-json")
        .arg(dir.join("stats.json"))
        .env("RUST_LOG", "kumo=info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("could not write the recording to") && log.contains("No space left on device"), "{log}");
    assert_eq!(log.matches("could not write the recording").count(), 1, "said once: {log}");
    assert!(stats(&dir)["frames_decoded"].as_u64().unwrap() > 60, "the stream went on");
    // The frame table still has every frame.
    let table = frame_table(&file);
    assert!(table.len() > 60);
}

#[test]
fn seven_one_is_recorded_with_eight_channels() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-record-71");
    let status = demo(&dir, &["--duration", "3", "--speakers", "8"]).status().unwrap();
    assert!(status.success(), "{}", std::fs::read_to_string(dir.join("kumo.log")).unwrap());
    let p = probe(&dir.join("out.mkv"));
    assert_eq!(p.channels, 8, "{p:?}");
    assert!(p.audio_frames > 200, "{p:?}");
    assert!(p.errors.is_empty(), "{}", p.errors);
}

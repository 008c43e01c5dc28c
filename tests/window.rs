//! `kumo demo` in a real window under Xvfb, looked at the way a person would: a screenshot of
//! the X screen, checked for the stream's frame marker and for the overlay's panel, whose text
//! is read back by OCR, with each presenter (the GPU's and the software one). Also what
//! happens without a display or a GPU driver: a sentence that says what to do, not a panic (or,
//! without a driver, the software presenter).
//!
//! Needs `xvfb-run`, `ImageMagick` and a Vulkan driver (`make deps-test` installs them). Without
//! them the window test fails under CI=true and is skipped with a note elsewhere. The last
//! screenshot stays in target/tmp/kumo-window/ for a person to look at when it fails.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::desktop::{read_ppm, runtime_dir, tools_present, work_dir};
use kumo::core::sim::marker;
use std::path::Path;
use std::process::{Command, Output};

/// Runs a shell script on a fresh Xvfb screen of 1920x1080, one at a time: windows drawn by
/// a software GPU side by side on two cores starve each other's frames, and the input test
/// times a key held for 0.6 s by how far the player walks (it walked a quarter of that in a
/// CI run with five windows at once).
fn under_xvfb(dir: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    static ONE_WINDOW: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_WINDOW.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1920x1080x24", "sh", "-c", script])
        .env("KUMO", env!("CARGO_BIN_EXE_kumo"))
        .env("XDG_RUNTIME_DIR", runtime_dir(dir))
        .env("RUST_LOG", "warn")
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn demo_window_shows_the_stream_and_the_overlay() {
    if !tools_present() {
        return;
    }
    // The GPU presenter (on lavapipe here), then `auto`, which on a machine whose only adapter
    // is a CPU rasterizer must pick the software presenter (docs/benchmarks.md: it is the faster
    // there); where a real GPU exists `auto` is the GPU's, and the log says which.
    for renderer in ["gpu", "auto"] {
        demo_window(renderer);
    }
}

/// `kumo demo --overlay` with `--renderer renderer`, looked at mid-stream: the frame marker
/// and the overlay's panel from the screen's pixels, and the overlay's text read back by OCR.
fn demo_window(renderer: &str) {
    let dir = work_dir(&format!("kumo-window-{renderer}"));
    for old in ["shot.png", "shot.ppm", "stats.json", "overlay.png"] {
        std::fs::remove_file(dir.join(old)).ok();
    }
    // The window opens at the stream's size (1280x720) at the screen's top left (Xvfb has no
    // window manager to move it). Look at it mid-stream.
    let script = format!(
        "\"$KUMO\" demo --renderer {renderer} --duration 6 --overlay --stats-json stats.json & pid=$!; \
         sleep 4.5; import -window root shot.png; convert shot.png shot.ppm; wait $pid"
    );
    let out = under_xvfb(&dir, &script, &[("RUST_LOG", "kumo=info")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shot = dir.join("shot.png");
    assert!(out.status.success(), "kumo demo --renderer {renderer} failed; screenshot {}:\n{stderr}", shot.display());
    let software = stderr.contains("drawing on the CPU");
    if renderer == "auto" {
        let only_cpu_rasterizer = stderr.contains("a software rasterizer");
        assert_eq!(software, only_cpu_rasterizer, "auto draws on the CPU exactly when no real GPU exists:\n{stderr}");
    }

    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    let presented = stats["frames_presented"].as_u64().unwrap();
    let decoded = stats["frames_decoded"].as_u64().unwrap();
    assert!(presented > 30, "{renderer}: only {presented} pictures presented: {stats}");
    assert!(presented <= decoded, "{renderer}: {presented} presented of {decoded} decoded: {stats}");
    assert_eq!(stats["marker_mismatches"], 0, "{stats}");

    let (sw, _sh, rgb) = read_ppm(&dir.join("shot.ppm"));
    let (w, h) = (1280, 720);
    // The stream's marker, read from the screen's pixels: proves the picture on screen is a
    // decoded frame of this stream, drawn 1:1 with the right colours.
    let luma = luma_of(&rgb, sw, w, h);
    let frame = marker::read(&luma, w, w, h)
        .unwrap_or_else(|e| panic!("{renderer}: no frame marker on screen ({e:?}); screenshot {}", shot.display()));
    let sent = stats["frames_received"].as_u64().unwrap();
    assert!(u64::from(frame) > 30 && u64::from(frame) <= sent + 60, "marker {frame} (frames received {sent})");

    // The overlay's panel at the top right, over the sky: dark, with white text in it.
    let (x0, x1, y0, y1) = (w - 420, w - 20, 14, 250);
    let (mut text, mut dark, mut total) = (0, 0, 0);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = &rgb[(y * sw + x) * 3..][..3];
            total += 1;
            if p.iter().all(|&c| c >= 180) {
                text += 1;
            }
            if p.iter().all(|&c| c < 70) {
                dark += 1;
            }
        }
    }
    assert!(
        text * 200 > total,
        "{renderer}: too little text in the overlay region ({text} of {total}); screenshot {}",
        shot.display()
    );
    assert!(
        dark * 2 > total,
        "{renderer}: the overlay panel is not there ({dark} of {total} dark); screenshot {}",
        shot.display()
    );
    overlay_reads_right(&dir, renderer, software);
}

/// The overlay's text, read from the screenshot by tesseract (Debian's OCR) as a person would
/// read it: the stream's size and host, and figures in their ranges, with the presenter named.
fn overlay_reads_right(dir: &Path, renderer: &str, software: bool) {
    let Some(text) = ocr(dir) else { return };
    let line = |start: &str| {
        // OCR sometimes reads a speck before a line ("_ Rendering…"): skip what is not a letter.
        text.lines()
            .map(|l| l.trim_start_matches(|c: char| !c.is_alphanumeric()))
            .find(|l| l.to_ascii_lowercase().starts_with(&start.to_ascii_lowercase()))
            .unwrap_or_else(|| panic!("{renderer}: no line `{start}…` in the overlay as read:\n{text}"))
            .to_string()
    };
    assert!(line("Video stream:").contains("1280x720 60 FPS"), "{renderer}: {text}");
    assert!(line("Host:").contains("kumo demo host"), "{renderer}: {text}");
    let number = |l: &str| -> f64 {
        let after = l.split(':').nth(1).unwrap_or_default();
        after.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(-1.0)
    };
    let decoding = number(&line("Decoding frame rate"));
    assert!((20.0..=65.0).contains(&decoding), "{renderer}: decoding frame rate {decoding}:\n{text}");
    let rendering = line("Rendering frame rate");
    assert!((1.0..=65.0).contains(&number(&rendering)), "{renderer}: {rendering}:\n{text}");
    assert_eq!(rendering.contains("(CPU)"), software, "{renderer}: the overlay names the presenter: {rendering}");
}

/// The overlay's region of the screenshot, as text; `None` (with a note) where tesseract is
/// not installed and this is not CI.
fn ocr(dir: &Path) -> Option<String> {
    let have = Command::new("tesseract").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs tesseract-ocr for the overlay's OCR");
        eprintln!("skipping the overlay's OCR: tesseract not installed (make deps-test)");
        return None;
    }
    // Dark text on white, three times the size: what tesseract reads best.
    let converted = Command::new("convert")
        .args(["shot.png", "-crop", "440x380+840+0", "+repage", "-colorspace", "Gray", "-negate", "-resize", "300%"])
        .arg("overlay.png")
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(converted.success());
    let out =
        Command::new("tesseract").args(["overlay.png", "stdout", "--psm", "6"]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "tesseract: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Luma (BT.601 limited) of the top-left `w`×`h` of an RGB screenshot.
fn luma_of(rgb: &[u8], stride: usize, w: usize, h: usize) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (y, x)))
        .map(|(y, x)| {
            let p = &rgb[(y * stride + x) * 3..][..3];
            let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0).round() as u8
        })
        .collect()
}

#[test]
fn keys_pressed_in_the_window_reach_the_host_game() {
    if !tools_present() {
        return;
    }
    for renderer in ["gpu", "cpu"] {
        keys_reach_the_game(renderer);
    }
}

/// W held in the window (`--renderer renderer`) walks the host game's player up.
fn keys_reach_the_game(renderer: &str) {
    let dir = work_dir(&format!("kumo-window-input-{renderer}"));
    for old in ["shot.png", "shot.ppm", "stats.json"] {
        std::fs::remove_file(dir.join(old)).ok();
    }
    // xdotool types into the window through the X server (XTEST), like a keyboard would:
    // W held for 0.6 s walks the player up from the centre, at half the picture per second.
    let script = format!(
        "\"$KUMO\" demo --renderer {renderer} --duration 7 --stats-json stats.json & pid=$!; sleep 3; \
         wid=$(xdotool search --name kumo | head -1); xdotool windowfocus \"$wid\"; sleep 0.3; \
         xdotool keydown w; sleep 0.6; xdotool keyup w; sleep 1; \
         import -window root shot.png; convert shot.png shot.ppm; wait $pid"
    );
    let out = under_xvfb(&dir, &script, &[]);
    let shot = dir.join("shot.png");
    assert!(out.status.success(), "kumo demo failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    assert!(stats["inputs_received_by_host"].as_u64().unwrap() >= 2, "W down and up reach the host: {stats}");
    let (sw, _, rgb) = read_ppm(&dir.join("shot.ppm"));
    let luma = luma_of(&rgb, sw, 1280, 720);
    let (x, y) = kumo::core::sim::game::find_player(&luma, 1280, 1280, 720)
        .unwrap_or_else(|| panic!("no player on screen; screenshot {}", shot.display()));
    assert!((x - 0.5).abs() < 0.03, "W moves straight up: x {x}; screenshot {}", shot.display());
    assert!(y < 0.4 && y > 0.05, "the player walked up from 0.5 to {y}; screenshot {}", shot.display());
}

#[test]
fn no_gpu_driver_draws_on_the_cpu_and_gpu_only_is_a_sentence() {
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-window-no-gpu");
    let no_driver = [("VK_ICD_FILENAMES", "/nonexistent/icd.json"), ("VK_DRIVER_FILES", "/nonexistent/icd.json")];
    // No Vulkan driver at all: `auto` draws with the software presenter.
    std::fs::remove_file(dir.join("stats.json")).ok();
    let out = under_xvfb(&dir, "\"$KUMO\" demo --duration 3 --stats-json stats.json", &no_driver);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    assert!(stats["frames_presented"].as_u64().unwrap() > 30, "{stats}");
    // `--renderer gpu` there is a sentence that says what to install.
    let out = under_xvfb(&dir, "\"$KUMO\" demo --renderer gpu --duration 2", &no_driver);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("no usable GPU adapter") && stderr.contains("mesa-vulkan-drivers"), "{stderr}");
}

#[test]
fn under_a_wayland_compositor_every_picture_reaches_the_screen() {
    // Kiosks run under cage, a Wayland compositor: here weston's headless one (Debian's). The
    // software presenter through Wayland's shared memory, paced by the compositor's buffer
    // releases: the window shows the stream and presents what it decodes.
    if !common::desktop::have("weston") {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs weston for the Wayland test");
        eprintln!("skipping: weston not installed (make deps-test)");
        return;
    }
    let dir = work_dir("kumo-window-wayland");
    std::fs::remove_file(dir.join("stats.json")).ok();
    let xdg = runtime_dir(&dir);
    let socket = format!("kumo-test-{}", std::process::id());
    let mut weston = Command::new("weston")
        .args(["--backend=headless-backend.so", "--width=1280", "--height=720", "--idle-time=0"])
        .arg(format!("--socket={socket}"))
        .env("XDG_RUNTIME_DIR", &xdg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if xdg.join(&socket).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["demo", "--renderer", "cpu", "--overlay", "--no-audio", "--duration", "4", "--stats-json", "stats.json"])
        .env_remove("DISPLAY")
        .env("WAYLAND_DISPLAY", &socket)
        .env("XDG_RUNTIME_DIR", &xdg)
        .env("RUST_LOG", "warn")
        .current_dir(&dir)
        .output()
        .unwrap();
    weston.kill().ok();
    weston.wait().ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kumo demo under weston failed:\n{stderr}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    let presented = stats["frames_presented"].as_u64().unwrap();
    let decoded = stats["frames_decoded"].as_u64().unwrap();
    assert!(presented > 60, "only {presented} pictures presented under weston: {stats}");
    assert!(presented <= decoded, "{presented} presented of {decoded} decoded: {stats}");
}

#[test]
fn no_display_is_a_sentence_not_a_panic() {
    let out = Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["demo", "--duration", "1"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("could not open a window") && stderr.contains("--headless"), "{stderr}");
}

#[test]
fn latency_lab_in_a_window_verifies_every_response_on_screen() {
    if !tools_present() {
        return;
    }
    for renderer in ["gpu", "cpu"] {
        lab_in_a_window(renderer);
    }
}

/// `kumo latency` in a window drawn by `renderer` (the config file's key: the lab has no flag).
fn lab_in_a_window(renderer: &str) {
    let dir = work_dir(&format!("kumo-window-lab-{renderer}"));
    std::fs::write(dir.join("config.toml"), format!("renderer = \"{renderer}\"\n")).unwrap();
    for old in ["shot.png", "shot.ppm", "now_ms"] {
        std::fs::remove_file(dir.join(old)).ok();
    }
    std::fs::remove_dir_all(dir.join("lab")).ok();
    // Mid-run, note the wall clock (ms) and take the screen right after.
    let script = "\"$KUMO\" latency --config config.toml --inputs 20 --out lab > lab.txt & pid=$!; \
                  sleep 3.5; date +%s%3N > now_ms; import -window root shot.png; convert shot.png shot.ppm; wait $pid";
    let out = under_xvfb(&dir, script, &[]);
    let shot = dir.join("shot.png");
    assert!(out.status.success(), "kumo latency ({renderer}) failed: {}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lab/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["headless"], false, "{summary}");
    assert_eq!(summary["responses_verified"], 20, "{summary}");
    assert!(summary["present_ms"]["p50"].as_f64().unwrap() > 0.0, "a window adds a present stage: {summary}");
    // The capture time the host burnt into the picture, read from the screen itself: a frame
    // captured moments before the screenshot (same clock on one machine).
    let (sw, _sh, rgb) = read_ppm(&dir.join("shot.ppm"));
    // The 1280x720 window at the screen's top left; the overlay covers its right third, not
    // the marker strips at the top left.
    let (w, h) = (1280, 720);
    let luma = luma_of(&rgb, sw, w, h);
    let on_screen = kumo::core::sim::game::read_time_marker(&luma, w, w, h)
        .unwrap_or_else(|e| panic!("no time marker on screen ({e:?}); screenshot {}", shot.display()));
    let now_ms: u64 = std::fs::read_to_string(dir.join("now_ms")).unwrap().trim().parse().unwrap();
    // The time is read just before `import` grabs the screen, so a picture drawn while it
    // does may be a few tens of ms newer than it (CI once saw 14 ms): signed.
    let age = i64::from((now_ms as u32).wrapping_sub(on_screen) as i32);
    assert!(
        (-500..1_000).contains(&age),
        "the picture on screen was captured {age} ms before the screenshot (read before it)"
    );
}

/// `--replay-seconds 3` in a window: Ctrl+Alt+Shift+R saves the last seconds to the videos
/// folder (here `$HOME/Videos`: no XDG user-dirs file), the banner says so, and ffmpeg reads
/// the file; the `--record` beside it gets each picture's presentation time.
#[test]
fn the_replay_hotkey_saves_the_last_seconds_and_says_where() {
    if !tools_present() {
        return;
    }
    if !common::sound::have("ffprobe") {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs ffmpeg for the replay test");
        eprintln!("skipping: ffmpeg not installed (make deps-test)");
        return;
    }
    let dir = work_dir("kumo-window-replay");
    let videos = dir.join("Videos");
    std::fs::remove_dir_all(&videos).ok();
    let script = "\"$KUMO\" demo --renderer cpu --duration 9 --replay-seconds 3 --record rec.mkv \
         --stats-json stats.json & pid=$!; sleep 6; \
         wid=$(xdotool search --name kumo | head -1); xdotool windowfocus \"$wid\"; sleep 0.3; \
         xdotool key ctrl+alt+shift+r; sleep 1.2; import -window root shot.png; wait $pid";
    let home = dir.to_str().unwrap();
    let out = under_xvfb(&dir, script, &[("HOME", home), ("RUST_LOG", "kumo=info")]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kumo demo failed:\n{log}");
    let saved: Vec<_> = std::fs::read_dir(&videos)
        .unwrap_or_else(|e| panic!("no {}: {e}\n{log}", videos.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let name = saved[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("kumo-replay-") && saved[0].extension().is_some_and(|e| e == "mkv"), "{name}");
    assert!(log.contains(&format!("Saved 3 s to {}", saved[0].display())) || log.contains("Saved 4 s to"), "{log}");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(&saved[0])
        .output()
        .unwrap();
    let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
    // Three seconds, up to one key-frame interval (2 s) more.
    assert!((2.9..=5.5).contains(&duration), "the replay is {duration} s long");
    let decode = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&saved[0])
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(decode.stderr.is_empty(), "ffmpeg: {}", String::from_utf8_lossy(&decode.stderr));

    // The banner, read back from the screen: the bottom of the 720-line window.
    if Command::new("tesseract").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let converted = Command::new("convert")
            .args([
                "shot.png",
                "-crop",
                "1280x110+0+590",
                "+repage",
                "-colorspace",
                "Gray",
                "-negate",
                "-resize",
                "200%",
            ])
            .arg("banner.png")
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(converted.success());
        let text =
            Command::new("tesseract").args(["banner.png", "stdout", "--psm", "6"]).current_dir(&dir).output().unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("Saved") && text.contains("kumo-replay"), "the banner as read: {text}");
    } else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs tesseract-ocr for the banner's OCR");
    }

    // The recording's frame table has the window's presentation times.
    let table = std::fs::read_to_string(dir.join("rec.mkv.frames.csv")).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    let presented = rows.iter().filter(|l| !l.split(',').nth(5).unwrap_or_default().is_empty()).count();
    assert!(rows.len() > 200 && presented * 2 > rows.len(), "{presented} of {} lines presented", rows.len());
}

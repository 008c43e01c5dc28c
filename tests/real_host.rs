//! The real host: `kumo host --app` streams real programs from Debian's packages
//! on a private Xvfb, and `kumo connect`'s input reaches them through XTEST. Each test runs
//! the host and the client as separate processes, as a player would.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::HostProcess;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tests look at the host's child processes: one at a time keeps them apart.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kumo-real-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether `program` is installed; under CI its absence fails the test (CI installs it).
fn have(program: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "{program} is not installed (scripts/install-deps.sh test installs it)"
    );
    if !found {
        eprintln!("skipping: {program} is not installed (scripts/install-deps.sh test installs it)");
    }
    found
}

/// `kumo host --app COMMAND`, open to any client (these tests are about the desktop).
fn host_app(command: &str) -> HostProcess {
    HostProcess::spawn(&[
        "--app".as_ref(),
        command.as_ref(),
        "--allow-unpaired".as_ref(),
        "--ephemeral".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ])
}

/// `kumo connect` to `host` at 640x360@30 for `secs`, playing `script` if given: whether it
/// ended well, and what it printed.
fn connect(host: &HostProcess, secs: u32, script: Option<&Path>) -> (bool, String) {
    let addr = host.addr.to_string();
    let secs = secs.to_string();
    let mut args = vec![
        "connect",
        &addr,
        "--host-fingerprint",
        &host.fingerprint,
        "--headless",
        "--no-audio",
        "--width",
        "640",
        "--height",
        "360",
        "--fps",
        "30",
        "--duration",
        &secs,
    ];
    let script = script.map(|p| p.to_str().unwrap().to_owned());
    if let Some(script) = &script {
        args.extend(["--input-script", script]);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The processes whose parent is `pid`, as (pid, command line).
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: state, ppid, …
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((child, String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned()));
        }
    }
    found
}

/// Whether process `pid` is alive (a zombie is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// An input script typing `text` on a US layout from `start_ms`, a key every 15 ms.
fn typing(text: &str, start_ms: u64) -> String {
    let mut script = String::from("0 mouse position 0.3 0.3\n");
    let mut t = start_ms;
    for c in text.chars() {
        let shifted = "~!@#$%^&*()_+{}|:\"<>?".contains(c) || c.is_ascii_uppercase();
        let base = match c {
            'a'..='z' | 'A'..='Z' => c.to_ascii_uppercase().to_string(),
            '0'..='9' => c.to_string(),
            ')' => "0".into(),
            '!' => "1".into(),
            '@' => "2".into(),
            '#' => "3".into(),
            '$' => "4".into(),
            '%' => "5".into(),
            '^' => "6".into(),
            '&' => "7".into(),
            '*' => "8".into(),
            '(' => "9".into(),
            ' ' => "Space".into(),
            '\n' => "Enter".into(),
            '-' | '_' => "Minus".into(),
            '=' | '+' => "Equal".into(),
            '[' | '{' => "LeftBracket".into(),
            ']' | '}' => "RightBracket".into(),
            '\\' | '|' => "Backslash".into(),
            ';' | ':' => "Semicolon".into(),
            '\'' | '"' => "Apostrophe".into(),
            '`' | '~' => "Grave".into(),
            ',' | '<' => "Comma".into(),
            '.' | '>' => "Period".into(),
            '/' | '?' => "Slash".into(),
            other => panic!("no key for {other:?}"),
        };
        let mut step = |line: String| {
            writeln!(script, "{t} {line}").unwrap();
            t += 15;
        };
        if shifted {
            step("key LeftShift down".into());
        }
        step(format!("key {base} down"));
        step(format!("key {base} up"));
        if shifted {
            step("key LeftShift up".into());
        }
    }
    script
}

#[test]
fn typed_text_reaches_a_terminal_program_exactly() {
    let _alone = one_at_a_time();
    if !have("xterm") || !have("Xvfb") {
        return;
    }
    let dir = scratch("typing");
    let out = dir.join("typed.txt");
    let text = "Hello, World! <>|{}~ 123 _+=\"q\" a/b?c:d;e'f[g]h\\i`j\n";
    let script = dir.join("typing.script");
    std::fs::write(&script, typing(text, 2_500)).unwrap();
    let host = host_app(&format!("xterm -geometry 80x24+0+0 -e sh -c 'cat > {}'", out.display()));
    let (ok, printed) = connect(&host, 8, Some(&script));
    assert!(ok, "the session failed: {printed}");
    assert!(printed.contains("frames"), "{printed}");
    let typed = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(typed, text, "the terminal received something else");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_click_lands_where_the_player_clicked() {
    let _alone = one_at_a_time();
    if !have("xev") || !have("Xvfb") || !have("stdbuf") {
        return;
    }
    let dir = scratch("click");
    let out = dir.join("events.txt");
    let script = dir.join("click.script");
    std::fs::write(&script, "2500 mouse position 0.25 0.5\n2600 mouse button left down\n2650 mouse button left up\n")
        .unwrap();
    let host = host_app(&format!("stdbuf -oL xev -geometry 640x360+0+0 > {}", out.display()));
    let (ok, printed) = connect(&host, 4, Some(&script));
    assert!(ok, "the session failed: {printed}");
    let events = std::fs::read_to_string(&out).unwrap_or_default();
    let press: Vec<_> = events.lines().skip_while(|l| !l.starts_with("ButtonPress")).take(3).collect();
    let press = press.join("\n");
    // 0.25 and 0.5 of a 640x360 display: pixel (160, 180).
    assert!(press.contains("root:(160,180)"), "the click landed elsewhere: {press:?}\n{events}");
    assert!(press.contains("button 1,"), "{press}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_program_ending_ends_the_session_and_a_killed_host_leaves_nothing_behind() {
    let _alone = one_at_a_time();
    if !have("xterm") || !have("Xvfb") {
        return;
    }
    // The program exits after a moment: the client hears why, and the next session starts
    // afresh on a display of its own.
    let host = host_app("sleep 2; exit 3");
    let started = Instant::now();
    let (ok, printed) = connect(&host, 20, None);
    let took = started.elapsed();
    assert!(ok, "{printed}");
    assert!(printed.contains("the program exited with status 3"), "{printed}");
    assert!(took < Duration::from_secs(10), "the session outlived its program: {took:?}");
    // The host ends the display as the client leaves: give it a moment.
    let gone = Instant::now() + Duration::from_secs(3);
    while children(host.pid()).iter().any(|(pid, _)| alive(*pid)) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<_> = children(host.pid()).into_iter().filter(|(pid, _)| alive(*pid)).collect();
    assert!(left.is_empty(), "the ended session left {left:?}");
    let (ok, printed) = connect(&host, 1, None);
    assert!(ok && printed.contains("frames"), "a second session did not start: {printed}");
    drop(host);

    // SIGKILL mid-session: the kernel ends the host's X server and program with it.
    let host = host_app("xterm");
    let pid = host.pid();
    let (addr, fingerprint) = (host.addr.to_string(), host.fingerprint.clone());
    let args = ["connect", &addr, "--host-fingerprint", &fingerprint, "--headless", "--no-audio", "--duration", "6"];
    let client = std::process::Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(args)
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut session = Vec::new();
    while Instant::now() < deadline {
        session = children(pid).into_iter().filter(|(p, _)| alive(*p)).collect::<Vec<_>>();
        if session.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(session.iter().any(|(_, c)| c.starts_with("Xvfb")), "no session display: {session:?}");
    assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    std::thread::sleep(Duration::from_secs(1));
    let left: Vec<_> = session.iter().filter(|(p, _)| alive(*p)).collect();
    assert!(left.is_empty(), "left behind after SIGKILL: {left:?}");
    let mut client = client;
    client.kill().ok();
    client.wait().ok();
    drop(host);
}

#[test]
fn a_running_display_streams_scaled_to_the_request_and_its_end_is_told_to_the_player() {
    let _alone = one_at_a_time();
    if !have("Xvfb") {
        return;
    }
    let (xvfb, display) = own_xvfb(300, "800x600x24");
    let host = HostProcess::spawn(&common::display_host(&display));
    // The client asks for 640x360: the 800x600 display is scaled down to fit, aspect kept.
    let (ok, printed) = connect(&host, 2, None);
    assert!(ok, "{printed}");
    assert!(printed.contains("480x360"), "{printed}");
    assert!(printed.contains("0 marker mismatches"), "a real display's pictures were checked for markers: {printed}");

    // The X server dies mid-session: the player is told, in a sentence.
    let addr = host.addr.to_string();
    let args =
        ["connect", &addr, "--host-fingerprint", &host.fingerprint, "--headless", "--no-audio", "--duration", "8"];
    let client = std::process::Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    drop(xvfb);
    let out = client.wait_with_output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("the host stopped streaming: the host's display stopped"), "{printed}");
    // The host is still there, and refuses the next client with the reason.
    let (ok, printed) = connect(&host, 1, None);
    assert!(!ok && printed.contains("cannot show its display"), "{printed}");
    drop(host);
}

#[test]
fn a_programs_sound_reaches_the_players_speakers() {
    use common::sound::{alsa_config, read_raw, start_pulse, tools_present, work_dir};
    use kumo::core::audio::sound;
    let _alone = one_at_a_time();
    if !have("Xvfb") || !tools_present() {
        return;
    }
    let dir = work_dir("kumo-real-sound");
    // One sound server for both: the host gives the program a private sink on it and records
    // that sink's monitor; the client plays to the server's own null sink through ALSA, and a
    // file beside it keeps what was played.
    let mut pulse = start_pulse(&dir, "channels=2");
    let raw = dir.join("played.raw");
    let conf = alsa_config(&dir, &raw);
    // The program: 8 s of a 1 kHz tone, stereo 48 kHz float, then quiet.
    let tone: Vec<u8> = (0..48_000 * 8)
        .flat_map(|i| {
            let v = (f64::from(i) * 2.0 * std::f64::consts::PI * 1000.0 / 48_000.0).sin() as f32 * 0.25;
            [v, v]
        })
        .flat_map(f32::to_le_bytes)
        .collect();
    let tone_file = dir.join("tone.raw");
    std::fs::write(&tone_file, tone).unwrap();
    let program = format!(
        "pacat --raw --format=float32le --rate=48000 --channels=2 --latency-msec=20 {}; sleep 30",
        tone_file.display()
    );
    let host = HostProcess::spawn_with_env(
        &[
            "--app".as_ref(),
            program.as_ref(),
            "--allow-unpaired".as_ref(),
            "--ephemeral".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        &[("PULSE_SERVER", &pulse.socket)],
    );
    let addr = host.addr.to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["connect", &addr, "--host-fingerprint", &host.fingerprint, "--headless", "--duration", "6"])
        .args(["--width", "640", "--height", "360", "--fps", "30", "--stats-json"])
        .arg(dir.join("stats.json"))
        .env("ALSA_CONFIG_PATH", &conf)
        .env("PULSE_SERVER", &pulse.socket)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{printed}");
    pulse.assert_alive();
    drop(host);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    eprintln!(
        "a program's sound: {} packets received, {} played; capture→heard {} ms",
        stats["audio_packets_received"], stats["audio_packets_played"], stats["audio_latency_ms"]
    );
    let left = sound::left(&read_raw(&raw));
    let start = left.iter().position(|v| v.abs() > 1e-3).unwrap_or_else(|| panic!("nothing was heard: {printed}"));
    let heard = &left[start..];
    assert!(heard.len() > 48_000 * 2, "only {} samples heard: {printed}", heard.len());
    // A second into what was heard: the tone, at the level it was played (Opus keeps it
    // within a few dB), and little else.
    let window = &heard[48_000..48_000 + 4_800];
    let power = sound::power_at(window, 1000.0);
    let expected = 0.25f64 * 0.25 / 4.0;
    assert!(power > expected * 0.3 && power < expected * 3.0, "tone power {power}, expected {expected}: {printed}");
    assert!(sound::power_at(window, 700.0) < expected * 0.01, "noise where there should be none");
}

#[test]
fn the_programs_window_fills_the_display() {
    let _alone = one_at_a_time();
    if !have("xterm") || !have("xwininfo") || !have("Xvfb") {
        return;
    }
    let dir = scratch("fill");
    let out = dir.join("window.txt");
    // xterm's own size is 80x24 characters, far from 640x360; it reports its window's size.
    let host = host_app(&format!("xterm -e sh -c 'sleep 1.5; xwininfo -id $WINDOWID > {}; sleep 10'", out.display()));
    let (ok, printed) = connect(&host, 3, None);
    assert!(ok, "{printed}");
    let info = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(info.contains("Width: 640") && info.contains("Height: 360"), "{info}");
    assert!(info.contains("Absolute upper-left X:  0") && info.contains("Absolute upper-left Y:  0"), "{info}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

/// A child process killed when dropped, a failed assertion included (a program left running
/// would hold the test harness's output open).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts a private Xvfb of `width` × `height` on a display of the test's own; waits for it.
fn own_xvfb(offset: u32, size: &str) -> (Killed, String) {
    let number = offset + std::process::id() % 100;
    let display = format!(":{number}");
    let xvfb = Killed(
        std::process::Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", size, "-br", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    (xvfb, display)
}

#[test]
fn one_monitor_of_a_display_streams_and_takes_the_clicks_meant_for_it_at_any_scale() {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
    use x11rb::protocol::xproto::ConnectionExt as _;
    let _alone = one_at_a_time();
    if !have("Xvfb") || !have("xev") || !have("stdbuf") {
        return;
    }
    let (xvfb, display) = own_xvfb(900, "1600x600x24");
    // Two monitors side by side, as a desktop with two screens has them.
    let (conn, screen) = x11rb::connect(Some(&display)).unwrap();
    let root = conn.setup().roots[screen].root;
    for (name, x) in [("left", 0i16), ("right", 800)] {
        let atom = conn.intern_atom(false, name.as_bytes()).unwrap().reply().unwrap().atom;
        let monitor = MonitorInfo {
            name: atom,
            primary: x == 0,
            automatic: false,
            x,
            y: 0,
            width: 800,
            height: 600,
            width_in_millimeters: 100,
            height_in_millimeters: 150,
            outputs: Vec::new(),
        };
        conn.randr_set_monitor(root, monitor).unwrap().check().unwrap();
    }
    let dir = scratch("monitor");
    let events = dir.join("events.txt");
    let xev = Killed(
        std::process::Command::new("sh")
            .args([
                "-c",
                &format!("exec stdbuf -oL xev -display {display} -geometry 1600x600+0+0 > {}", events.display()),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let host = HostProcess::spawn(&[
        "--display".as_ref(),
        display.as_ref(),
        "--monitor".as_ref(),
        "1".as_ref(),
        "--allow-unpaired".as_ref(),
        "--ephemeral".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]);
    let script = dir.join("click.script");
    std::fs::write(&script, "1000 mouse position 0.5 0.5\n1100 mouse button left down\n1150 mouse button left up\n")
        .unwrap();
    let (ok, printed) = connect(&host, 2, Some(&script));
    assert!(ok, "{printed}");
    // The 800x600 monitor, scaled to fit the 640x360 asked for.
    assert!(printed.contains("480x360"), "the monitor was not streamed: {printed}");
    let seen = std::fs::read_to_string(&events).unwrap_or_default();
    let press: Vec<_> = seen.lines().skip_while(|l| !l.starts_with("ButtonPress")).take(3).collect();
    // The middle of the right-hand monitor, though the stream is smaller than the monitor:
    // (800 + 400, 300) on the whole display.
    assert!(press.join("\n").contains("root:(1200,300)"), "the click landed elsewhere: {press:?}");
    // A monitor the display does not have is refused with the list of those it has.
    drop(host);
    let host = HostProcess::spawn(&[
        "--display".as_ref(),
        display.as_ref(),
        "--monitor".as_ref(),
        "5".as_ref(),
        "--allow-unpaired".as_ref(),
        "--ephemeral".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]);
    let (ok, printed) = connect(&host, 1, None);
    assert!(!ok && printed.contains("has no monitor 5") && printed.contains("1: 800x600+800+0"), "{printed}");
    drop((host, xev, xvfb));
    std::fs::remove_dir_all(&dir).ok();
}

/// CPU time (user + system) of process `pid` so far, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

#[test]
fn a_still_display_costs_the_host_little_and_nobody_calls_it_stalled() {
    use common::desktop::{Xvfb, runtime_dir, tools_present};
    let _alone = one_at_a_time();
    if !have("xterm") || !have("Xvfb") || !tools_present() {
        return;
    }
    let dir = scratch("still");
    // xterm running `cat`: drawn once, then nothing changes (its cursor does not blink).
    let host = host_app("xterm -e cat");

    // A kiosk whose watchdog restarts a session after 3 s without a picture.
    let x = Xvfb::start();
    let conf = dir.join("config.toml");
    let kiosk_conf =
        format!("[kiosk]\nhost = \"{}\"\nhost_fingerprint = \"{}\"\nwatchdog = 3\n", host.addr, host.fingerprint);
    std::fs::write(&conf, kiosk_conf).unwrap();
    let log = dir.join("kiosk.log");
    let mut kiosk = Killed(
        x.command(env!("CARGO_BIN_EXE_kumo"))
            .arg("--config")
            .arg(&conf)
            .args(["kiosk", "--no-audio", "--width", "640", "--height", "360", "--fps", "60"])
            .env("XDG_RUNTIME_DIR", runtime_dir(&dir))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // Settle (the first pictures, xterm's first drawing), then measure the host for 6 s.
    std::thread::sleep(Duration::from_secs(4));
    let before = cpu_ticks(host.pid());
    let mut titles = Vec::new();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_secs(1));
        let out = x.command("xdotool").args(["search", "--name", "kumo", "getwindowname"]).output().unwrap();
        titles.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let host_cpu = (cpu_ticks(host.pid()) - before) as f64 / 6.0;
    assert!(kiosk.0.try_wait().unwrap().is_none(), "the kiosk exited");
    // Ctrl-C ends a kiosk's session with a goodbye, so the host is free at once.
    std::process::Command::new("kill").args(["-INT", &kiosk.0.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while kiosk.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(kiosk);
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(!printed.contains("ending the session"), "the watchdog restarted a still session:\n{printed}");
    assert!(titles.iter().all(|t| t.ends_with("streaming")), "titles: {titles:?}\n{printed}");
    eprintln!("host CPU with a still 640x360@60 display: {host_cpu:.1} % of a core");
    assert!(host_cpu < 10.0, "a still display cost the host {host_cpu:.1} % of a core");

    // The client's figures: almost no pictures, the words counted, no freeze.
    let stats = dir.join("stats.json");
    let addr = host.addr.to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["connect", &addr, "--host-fingerprint", &host.fingerprint, "--headless", "--no-audio"])
        .args(["--width", "640", "--height", "360", "--fps", "60", "--duration", "4", "--stats-json"])
        .arg(&stats)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{printed}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let figure = |name: &str| summary[name].as_f64().unwrap_or_else(|| panic!("no {name} in {summary}"));
    assert!(figure("frames_decoded") < 30.0, "a still display re-encoded: {summary}");
    assert!(figure("still_words") >= 25.0, "{summary}");
    assert!(figure("longest_freeze_ms") < 150.0, "{summary}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

/// `kumo latency HOST --headless --fps 60 --out OUT` with `args` (size, presses, region and
/// keys): the summary, and what it printed.
fn watch_latency(host: &HostProcess, out: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["latency", &host.addr.to_string(), "--host-fingerprint", &host.fingerprint, "--headless"])
        .args(["--fps", "60"])
        .args(args)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{printed}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    (serde_json::from_str(&summary).unwrap(), printed)
}

#[test]
fn click_to_photon_of_a_real_program_is_measured_from_its_pictures() {
    let _alone = one_at_a_time();
    if !have("xterm") || !have("Xvfb") {
        return;
    }
    let dir = scratch("watch");
    // A terminal whose whole screen turns white at one key and black at the next: a program
    // that knows nothing of kumo, answering every press by drawing.
    let toggle = dir.join("toggle.sh");
    std::fs::write(
        &toggle,
        "r=0\nwhile IFS= read -rsn1 k; do r=$((1-r)); if [ $r = 1 ]; then printf '\\033[?5h'; else printf '\\033[?5l'; fi; done\n",
    )
    .unwrap();
    let host = host_app(&format!("xterm -e bash {}", toggle.display()));
    let args = ["--width", "640", "--height", "360", "--inputs", "16", "--watch", "200,100,240,160", "--key", "A"];
    let (s, printed) = watch_latency(&host, &dir.join("lab"), &args);
    assert_eq!(s["inputs"].as_u64(), Some(16), "{s}");
    assert_eq!(s["responses_verified"].as_u64(), Some(16), "every press answered: {printed}");
    // The capture follows the program's drawing (DAMAGE), not a 60 Hz clock out of phase
    // with it: the wait from the press's arrival to the capture is the program's own time.
    let wait = s["wait_capture_ms"]["p50"].as_f64().unwrap();
    assert!(wait < 8.0, "waited {wait} ms for the capture: {printed}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_real_game_streams_and_answers_the_players_keys() {
    let _alone = one_at_a_time();
    let game = "/usr/games/chromium-bsu";
    if !have(game) || !have("Xvfb") {
        return;
    }
    let dir = scratch("game");
    // Chromium B.S.U. (Debian's package, OpenGL drawn by Mesa's software rasterizer on the
    // session's Xvfb) opens on its menu, "new game" highlighted: Down moves the highlight to
    // the next line, Up brings it back, so the left end of the first line's bar changes at
    // every press.
    let host = host_app(game);
    let args = ["--width", "640", "--height", "480", "--inputs", "8", "--watch", "20,142,140,14", "--key", "Down,Up"];
    let (s, printed) = watch_latency(&host, &dir.join("lab"), &args);
    // The game animates its menu: pictures keep coming, and every press is answered.
    assert!(s["frames"].as_u64().unwrap() > 60, "{printed}");
    assert_eq!(s["responses_verified"].as_u64(), Some(8), "{printed}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_pointer_is_drawn_into_the_picture_where_the_server_shows_it() {
    use kumo::core::sim::scene::I420;
    use kumo::host::x11::Capture;
    let _alone = one_at_a_time();
    if !have("Xvfb") || !have("xdotool") {
        return;
    }
    // A black root window (-br): only the pointer (X's default cross, black with a white
    // outline) is not black.
    let (_xvfb, display) = own_xvfb(500, "640x480x24");
    let point = |x: u32, y: u32| {
        let status = std::process::Command::new("xdotool")
            .args(["mousemove", &x.to_string(), &y.to_string()])
            .env("DISPLAY", &display)
            .status()
            .unwrap();
        assert!(status.success());
    };
    // The brightest luma within 12 pixels of (x, y).
    let brightest = |pic: &I420, x: usize, y: usize| {
        (y - 12..y + 12)
            .flat_map(|row| (x - 12..x + 12).map(move |col| (row, col)))
            .map(|(r, c)| pic.y[r * pic.width + c])
            .max()
            .unwrap()
    };
    let mut capture = Capture::open(&display, None, None).unwrap();
    let mut pic = I420::new(640, 480);
    point(80, 60);
    capture.grab(&mut pic).unwrap();
    assert!(brightest(&pic, 80, 60) > 200, "no pointer drawn at (80, 60)");
    assert!(brightest(&pic, 240, 180) < 20, "something bright at (240, 180)");
    // It moves: no drawing happened, but the capture loop learns of it and the next picture
    // has the pointer in its new place.
    point(240, 180);
    assert!(capture.pointer_moved().unwrap());
    capture.mark_drawn();
    capture.grab(&mut pic).unwrap();
    assert!(brightest(&pic, 240, 180) > 200, "the pointer did not follow to (240, 180)");
    assert!(brightest(&pic, 80, 60) < 20, "the old pointer stayed at (80, 60)");
    assert!(!capture.pointer_moved().unwrap());
    // Scaled to half the size, the pointer lands at half the place.
    capture.scale_to(320, 240);
    let mut small = I420::new(320, 240);
    capture.mark_drawn();
    capture.grab(&mut small).unwrap();
    assert!(brightest(&small, 120, 90) > 150, "the scaled picture lost the pointer");
}

#[test]
fn keys_the_displays_keymap_lacks_still_type() {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    let _alone = one_at_a_time();
    if !have("xterm") || !have("Xvfb") {
        return;
    }
    let (_xvfb, display) = own_xvfb(400, "640x480x24");
    // Take the symbols off the keys of q and 7: a keymap that lacks them, as a national layout
    // lacks keys of another.
    let (conn, _) = x11rb::connect(Some(&display)).unwrap();
    let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1).unwrap().reply().unwrap();
    let per = map.keysyms_per_keycode;
    for wanted in [u32::from(b'q'), u32::from(b'7')] {
        let i = map.keysyms.chunks(per.into()).position(|syms| syms.first() == Some(&wanted)).unwrap();
        let code = min + u8::try_from(i).unwrap();
        conn.change_keyboard_mapping(1, code, per, &vec![0; per.into()]).unwrap();
    }
    conn.flush().unwrap();
    let dir = scratch("keymap");
    let out = dir.join("typed.txt");
    let _xterm = Killed(
        std::process::Command::new("xterm")
            .args(["-geometry", "80x24+0+0", "-e", "sh", "-c", &format!("cat > {}", out.display())])
            .env("DISPLAY", &display)
            .spawn()
            .unwrap(),
    );
    let host = HostProcess::spawn(&common::display_host(&display));
    let text = "q7Q& quiet 77\n";
    let script = dir.join("typing.script");
    std::fs::write(&script, typing(text, 2_000)).unwrap();
    let (ok, printed) = connect(&host, 5, Some(&script));
    assert!(ok, "{printed}");
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), text, "{printed}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_players_gamepad_becomes_a_virtual_pad_or_the_host_says_why_not() {
    let _alone = one_at_a_time();
    if !have("xterm") || !have("Xvfb") {
        return;
    }
    let dir = scratch("pads");
    let log = dir.join("host.log");
    let host = HostProcess::spawn_logged(
        &[
            "--app".as_ref(),
            "xterm".as_ref(),
            "--allow-unpaired".as_ref(),
            "--ephemeral".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        &log,
    );
    let script = dir.join("pad.script");
    std::fs::write(&script, "500 pad 0 connect\n800 pad 0 button A down\n900 pad 0 stick left 0.5 -1\n2500 release\n")
        .unwrap();
    // While the session runs, a writable /dev/uinput shows the pad to the kernel.
    let uinput_writable = std::fs::OpenOptions::new().write(true).open("/dev/uinput").is_ok();
    let watcher = std::thread::Builder::new()
        .name("pad-watcher".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            std::fs::read_to_string("/proc/bus/input/devices").unwrap_or_default()
        })
        .unwrap();
    let (ok, printed) = connect(&host, 3, Some(&script));
    assert!(ok, "{printed}");
    let devices = watcher.join().unwrap();
    drop(host);
    let logged = std::fs::read_to_string(&log).unwrap();
    if uinput_writable {
        assert!(devices.contains("kumo virtual pad 1"), "no virtual pad while streaming:\n{devices}\n{logged}");
    } else {
        let said: Vec<&str> = logged.lines().filter(|l| l.contains("gamepad is not passed")).collect();
        assert_eq!(said.len(), 1, "said once: {logged}");
        assert!(said[0].contains("/dev/uinput") && said[0].contains("keyboard and mouse work"), "{}", said[0]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

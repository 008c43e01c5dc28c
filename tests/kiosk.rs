//! `kumo kiosk` on a virtual X screen, watched through screenshots and driven with xdotool
//! the way a player (or someone trying to get out of the kiosk) would: it fills the screen,
//! rides out its host stopping and starting again, ignores the ordinary quit keys, ends an
//! idle session for the attract screen, and only the admin combination (and PIN) closes it.
//!
//! Needs Xvfb, `ImageMagick`, xdotool and a Vulkan driver (`make deps-test`); under CI=true a
//! missing tool fails the test. Screenshots stay in target/tmp/kumo-kiosk-*/.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::HostProcess;
use common::desktop::{Xvfb, runtime_dir, tools_present, work_dir};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// One kiosk at a time: two would share two cores with two software GPUs.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process, killed on drop.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `kumo host` on `listen`, keeping its identity in `dir`: the process, its address and its
/// fingerprint.
fn start_host(listen: &str, identity: &Path) -> (HostProcess, String, String) {
    let host = HostProcess::spawn(&[
        "--listen".as_ref(),
        listen.as_ref(),
        "--identity".as_ref(),
        identity.as_os_str(),
        "--allow-unpaired".as_ref(),
    ]);
    let (addr, fingerprint) = (host.addr.to_string(), host.fingerprint.clone());
    (host, addr, fingerprint)
}

/// `kumo kiosk` on the virtual display, logging to `dir/kiosk.log`.
fn start_kiosk(x: &Xvfb, dir: &Path, config: &str, args: &[&str]) -> Proc {
    let conf = dir.join("config.toml");
    std::fs::write(&conf, config).unwrap();
    let log = std::fs::File::create(dir.join("kiosk.log")).unwrap();
    let child = x
        .command(env!("CARGO_BIN_EXE_kumo"))
        .arg("--config")
        .arg(&conf)
        .arg("kiosk")
        .args(args)
        .args(["--no-audio", "--width", "640", "--height", "360", "--fps", "30"])
        .env("XDG_RUNTIME_DIR", runtime_dir(dir))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc { child }
}

/// Two screenshots 0.8 s apart: how many pixels changed in the top 70 % of the screen (the
/// picture) and in the band near the bottom where the banner sits.
fn changes(x: &Xvfb, dir: &Path, name: &str) -> (usize, usize) {
    let (w, h, a) = x.screenshot(&dir.join(format!("{name}-a.png")));
    std::thread::sleep(Duration::from_millis(800));
    let (_, _, b) = x.screenshot(&dir.join(format!("{name}-b.png")));
    let differ = |rows: std::ops::Range<usize>| {
        rows.flat_map(|y| (0..w).map(move |x| (y * w + x) * 3))
            .filter(|&i| (0..3).any(|c| a[i + c].abs_diff(b[i + c]) > 24))
            .count()
    };
    (differ(0..h * 7 / 10), differ(h - 120..h - 20))
}

/// Waits (up to `limit`) until the picture moves.
fn wait_for_stream(x: &Xvfb, dir: &Path, name: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let (picture, _) = changes(x, dir, name);
        if picture > 2_000 {
            return;
        }
        assert!(start.elapsed() < limit, "no moving picture within {limit:?}: see {}", dir.display());
    }
}

/// Share of the screen brighter than dark grey (a stream fills it; a state screen is dark).
fn bright_share(rgb: &[u8]) -> f64 {
    let bright = rgb.chunks_exact(3).filter(|p| p.iter().map(|&v| u32::from(v)).sum::<u32>() > 150).count();
    bright as f64 / (rgb.len() / 3) as f64
}

fn exited_within(kiosk: &mut Proc, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = kiosk.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn focus(x: &Xvfb) {
    let out = x.command("xdotool").args(["search", "--name", "kumo"]).output().unwrap();
    let id = String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned);
    if let Some(id) = id {
        x.xdotool(&["windowfocus", "--sync", &id]);
    }
}

#[test]
fn kiosk_rides_out_a_host_restart_ignores_quit_keys_and_exits_only_with_the_admin_pin() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-kiosk-restart");
    let identity = dir.join("host-identity");
    std::fs::remove_dir_all(&identity).ok();
    let (host, addr, fingerprint) = start_host("127.0.0.1:0", &identity);
    let x = Xvfb::start();
    let config = format!("[kiosk]\nhost = \"{addr}\"\nhost_fingerprint = \"{fingerprint}\"\nadmin_pin = \"2468\"\n");
    let mut kiosk = start_kiosk(&x, &dir, &config, &[]);
    wait_for_stream(&x, &dir, "1-streaming", Duration::from_secs(30));

    // Full screen, even with no window manager to ask.
    let tree = x.command("xwininfo").args(["-root", "-tree"]).output().unwrap();
    let tree = String::from_utf8_lossy(&tree.stdout);
    let line = tree.lines().find(|l| l.contains("\"kumo")).unwrap_or_else(|| panic!("no kumo window: {tree}"));
    assert!(line.contains("1920x1080+0+0"), "not full screen: {line}");

    // The desktop's ways out do nothing.
    focus(&x);
    for keys in ["ctrl+alt+shift+q", "ctrl+alt+shift+z", "ctrl+alt+shift+x", "alt+F4", "Escape"] {
        x.xdotool(&["key", keys]);
    }
    assert!(exited_within(&mut kiosk, Duration::from_secs(1)).is_none(), "a quit key closed the kiosk");
    wait_for_stream(&x, &dir, "2-after-quit-keys", Duration::from_secs(5));

    // The host goes away: the last picture stays, frozen, under a banner whose clock runs.
    drop(host);
    std::thread::sleep(Duration::from_millis(2_500));
    let (picture, banner) = changes(&x, &dir, "3-reconnecting");
    assert!(picture < 500, "the picture should be frozen while reconnecting ({picture} pixels changed)");
    assert!(banner > 20, "the reconnecting banner's clock should tick ({banner} pixels changed)");
    std::thread::sleep(Duration::from_secs(3));
    assert!(kiosk.child.try_wait().unwrap().is_none(), "the kiosk gave up on its host");

    // The host comes back on the same address with the same certificate: streaming again.
    let (_host, _, again) = start_host(&addr, &identity);
    assert_eq!(again, fingerprint);
    wait_for_stream(&x, &dir, "4-back", Duration::from_secs(15));

    // The admin combination asks for the PIN: a wrong one keeps the kiosk, the right one exits.
    focus(&x);
    x.xdotool(&["key", "ctrl+alt+shift+F12"]);
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&dir.join("5-pin-prompt.png"));
    x.xdotool(&["type", "1111"]);
    x.xdotool(&["key", "Return"]);
    assert!(exited_within(&mut kiosk, Duration::from_secs(1)).is_none(), "a wrong PIN closed the kiosk");
    x.xdotool(&["type", "2468"]);
    x.xdotool(&["key", "Return"]);
    let status = exited_within(&mut kiosk, Duration::from_secs(10)).expect("the right PIN did not close the kiosk");
    assert!(status.success(), "kiosk exit status {status}");
    let log = std::fs::read_to_string(dir.join("kiosk.log")).unwrap();
    assert!(log.contains("the kiosk ignores a desktop hotkey"), "{log}");
    assert!(log.contains("the kiosk's admin exit was used"), "{log}");
}

#[test]
fn an_idle_kiosk_session_ends_for_the_attract_screen_and_a_key_starts_the_next() {
    let _serial = serial();
    if !tools_present() {
        return;
    }
    let dir = work_dir("kumo-kiosk-idle");
    let x = Xvfb::start();
    // No host named: the embedded demo host. No input for 8 s ends the session.
    let mut kiosk = start_kiosk(&x, &dir, "[kiosk]\nidle_timeout = 8\n", &[]);
    wait_for_stream(&x, &dir, "1-streaming", Duration::from_secs(30));
    let start = Instant::now();
    let attract = loop {
        let (_, _, rgb) = x.screenshot(&dir.join("2-attract.png"));
        if bright_share(&rgb) < 0.05 {
            break start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no attract screen 15 s after streaming began");
        std::thread::sleep(Duration::from_millis(300));
    };
    // The session ran its idle time first (less the time spent seeing it stream).
    assert!(attract > Duration::from_secs(3), "the session ended {attract:?} after streaming was seen");
    let (picture, _) = changes(&x, &dir, "3-attract-still");
    assert!(picture < 500, "the attract screen should not be a stream ({picture} pixels changed)");

    // A key starts the next session.
    focus(&x);
    x.xdotool(&["key", "space"]);
    wait_for_stream(&x, &dir, "4-next-player", Duration::from_secs(15));

    // No PIN set: the admin combination exits at once.
    x.xdotool(&["key", "ctrl+alt+shift+F12"]);
    let status =
        exited_within(&mut kiosk, Duration::from_secs(10)).expect("the admin combination did not close the kiosk");
    assert!(status.success(), "kiosk exit status {status}");
    let log = std::fs::read_to_string(dir.join("kiosk.log")).unwrap();
    assert!(log.contains("the kiosk ends the session: no input for its idle time"), "{log}");
}

//! The shared clipboard's X11 side (`kumo::clipboard`) against a program no one here wrote:
//! xclip, on a private Xvfb. kumo serves what it holds to xclip (small, and large enough for
//! ICCCM's INCR steps), reads what xclip holds (the same), reports another program's copy by
//! itself when watching (`XFixes`), never its own, and stops at the shared clipboard's limit.
//! Needs xvfb and xclip (`make deps-test`); without them the test fails under CI=true and is
//! skipped with a note elsewhere.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::desktop::Xvfb;
use kumo::clipboard::{Copied, INCR_ABOVE, X11Clipboard};
use std::io::Write as _;
use std::process::{Child, Stdio};
use std::time::Duration;

fn tools_present() -> bool {
    if common::sound::have("Xvfb") && common::sound::have("xclip") {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs xvfb and xclip for the clipboard test");
    eprintln!("skipping: xvfb or xclip not installed (make deps-test)");
    false
}

/// xclip owning CLIPBOARD with `bytes`, in the foreground (killed, it owns nothing).
fn xclip_copies(x: &Xvfb, bytes: &[u8]) -> Child {
    let mut child = x
        .command("xclip")
        .args(["-quiet", "-selection", "clipboard", "-t", "UTF8_STRING", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child
}

/// What xclip reads from CLIPBOARD.
fn xclip_pastes(x: &Xvfb) -> Vec<u8> {
    let out = x.command("xclip").args(["-selection", "clipboard", "-o"]).output().unwrap();
    assert!(out.status.success(), "xclip -o: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn text_of(len: usize) -> String {
    "kumo: grüße, 雲 ☁\n"
        .chars()
        .cycle()
        .scan(0, |n, c| {
            *n += c.len_utf8();
            (*n <= len).then_some(c)
        })
        .collect()
}

#[test]
fn kumo_serves_and_reads_the_x_clipboard_and_reports_only_other_programs_copies() {
    if !tools_present() {
        return;
    }
    let x = Xvfb::start();
    let clip = X11Clipboard::start(Some(&x.display), true).unwrap();

    // kumo holds a text: xclip pastes it, small and in INCR steps.
    for len in [40, INCR_ABOVE * 2 + 123] {
        let text = text_of(len);
        clip.set(&text);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(xclip_pastes(&x), text.as_bytes(), "{len} bytes from kumo");
    }
    // Its own copies are not reported back (no echo).
    assert_eq!(clip.copied_within(Duration::from_millis(300)), None);

    // Another program copies: kumo reads it by itself, small and in INCR steps.
    for len in [17, 700_000] {
        let text = text_of(len);
        let mut xclip = xclip_copies(&x, text.as_bytes());
        let copied = clip.copied_within(Duration::from_secs(5)).expect("no copy reported");
        assert_eq!(copied, Copied::Text(text.into_bytes()), "{len} bytes from xclip");
        xclip.kill().ok();
        xclip.wait().ok();
    }

    // Over the limit: refused, by length only.
    let big = vec![b'a'; kumo::core::clipboard::MAX_BYTES + 4096];
    let mut xclip = xclip_copies(&x, &big);
    let copied = clip.copied_within(Duration::from_secs(5)).expect("no copy reported");
    assert!(matches!(copied, Copied::TooLarge(n) if n > kumo::core::clipboard::MAX_BYTES), "{copied:?}");
    xclip.kill().ok();
    xclip.wait().ok();

    // Asked to read (a window gaining focus) when nobody holds a text: nothing.
    let reader = X11Clipboard::start(Some(&x.display), false).unwrap();
    reader.read();
    let got = reader.copied_within(Duration::from_secs(3)).expect("an answer");
    assert_eq!(got, Copied::Nothing);
}

/// Polls `f` every 100 ms for up to `limit`; whether it came true.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// What xclip reads from CLIPBOARD, or nothing while nobody owns it.
fn pasted(x: &Xvfb) -> Vec<u8> {
    x.command("xclip").args(["-selection", "clipboard", "-o"]).output().map(|o| o.stdout).unwrap_or_default()
}

/// `kumo connect` in a window on `x` (the CPU presenter: this test is about the clipboard),
/// logging at debug into `log`, with `extra` flags.
fn windowed_client(x: &Xvfb, host: &common::HostProcess, log: &std::path::Path, extra: &[&str]) -> Child {
    let dir = log.parent().unwrap();
    let addr = host.addr.to_string();
    x.command(env!("CARGO_BIN_EXE_kumo"))
        .args(["connect", &addr, "--host-fingerprint", &host.fingerprint, "--no-audio", "--renderer", "cpu"])
        .args(["--width", "640", "--height", "360", "--fps", "30", "--duration", "60"])
        .args(extra)
        .env("XDG_RUNTIME_DIR", common::desktop::runtime_dir(dir))
        .env("RUST_LOG", "kumo=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// `text` copied with xclip on `from`, then `then` (the window gaining focus): pasted on `to`
/// within 5 s, or the test fails with the client's log.
fn crosses(from: &Xvfb, to: &Xvfb, text: &str, then: impl Fn(), client_log: &std::path::Path) {
    let mut xclip = xclip_copies(from, text.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    then();
    let arrived = within(Duration::from_secs(5), || pasted(to) == text.as_bytes());
    xclip.kill().ok();
    xclip.wait().ok();
    assert!(
        arrived,
        "{text:?} did not cross: {:?} there\nclient:\n{}",
        String::from_utf8_lossy(&pasted(to)),
        std::fs::read_to_string(client_log).unwrap_or_default()
    );
}

/// Focus moves to kumo's window (as a player coming back from another program).
fn focus_kumo(x: &Xvfb) {
    x.xdotool(&["search", "--sync", "--name", "kumo", "windowfocus", "--sync"]);
}

/// Two displays, as a player's desk and the data centre's: a `kumo host --display` on one,
/// `kumo connect` in a window on the other, text copied with xclip on each side.
#[test]
fn text_copied_on_either_side_reaches_the_other_once_and_never_the_log() {
    if !tools_present() || !common::sound::have("xdotool") {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs xdotool for the clipboard test");
        return;
    }
    let dir = common::desktop::work_dir("kumo-clipboard-e2e");
    let (host_x, desk) = (Xvfb::start(), Xvfb::start());
    let host_log = dir.join("host.log");
    let host = common::HostProcess::spawn_logged_with_env(
        &common::display_host(&host_x.display),
        &[("RUST_LOG", std::path::Path::new("kumo=debug"))],
        &host_log,
    );
    let client_log = dir.join("client.log");
    let mut client = windowed_client(&desk, &host, &client_log, &[]);
    let log = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        within(Duration::from_secs(15), || log(&client_log).contains("streaming")),
        "the client did not start streaming:\n{}",
        log(&client_log)
    );

    // Copied on the host: on the player's desk within a second or two.
    crosses(&host_x, &desk, "from the data centre: grüße ☁", || {}, &client_log);
    // Copied on the desk in another program, then back to kumo's window: on the host.
    crosses(&desk, &host_x, "from the player's desk: 雲 ✓", || focus_kumo(&desk), &client_log);

    // Focus again with nothing new copied: nothing sent (no echo, no repeat).
    focus_kumo(&desk);
    // Refused on the host's side, with a sentence: over the limit, and not UTF-8.
    let oversized = vec![b'a'; kumo::core::clipboard::MAX_BYTES + 10];
    for (copy, sentence) in
        [(&oversized[..], "over the shared clipboard's"), (&[b'o', b'k', 0xFF, 0xFE][..], "is not UTF-8")]
    {
        let mut xclip = xclip_copies(&host_x, copy);
        assert!(
            within(Duration::from_secs(5), || log(&host_log).contains(sentence)),
            "no sentence `{sentence}` for a refused copy:\n{}",
            log(&host_log)
        );
        xclip.kill().ok();
        xclip.wait().ok();
    }
    std::thread::sleep(Duration::from_millis(500));
    client.kill().ok();
    client.wait().ok();
    drop(host);

    let (host_said, client_said) = (log(&host_log), log(&client_log));
    // Each copy crossed once, one way.
    assert_eq!(host_said.matches("sending a copied text to the client").count(), 1, "host:\n{host_said}");
    assert_eq!(client_said.matches("sending a copied text to the host").count(), 1, "client:\n{client_said}");
    // The texts themselves are in neither log, at debug level.
    for said in [&host_said, &client_said] {
        assert!(!said.contains("data centre") && !said.contains("player's desk"), "a copied text was logged:\n{said}");
    }
    assert!(!pasted(&desk).starts_with(b"aaaa"), "the oversized copy crossed");

    // With --clipboard=false the client asks for nothing and nothing crosses.
    let host = common::HostProcess::spawn(&common::display_host(&host_x.display));
    let off_log = dir.join("off.log");
    let mut client = windowed_client(&desk, &host, &off_log, &["--clipboard=false"]);
    assert!(within(Duration::from_secs(15), || log(&off_log).contains("streaming")), "{}", log(&off_log));
    let mut xclip = xclip_copies(&host_x, b"stays on the host");
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(pasted(&desk), b"stays on the host", "crossed with --clipboard=false");
    xclip.kill().ok();
    xclip.wait().ok();
    client.kill().ok();
    client.wait().ok();
}

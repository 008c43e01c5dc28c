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

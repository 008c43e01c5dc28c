//! The pure core imports no IO crate: no networking, async runtime, codec, GPU, window,
//! audio or gamepad library, and reads no clock. This keeps it testable alone and splittable.

#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] functions

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "quinn",
    "tokio",
    "openh264",
    "rustls",
    "rcgen",
    "wgpu",
    "winit",
    "egui",
    "cpal",
    "gilrs",
    "opus",
    "std::net",
    "std::thread",
    "Instant::now",
    "SystemTime",
    "std::fs",
];

#[test]
fn core_imports_no_io_crates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        files += 1;
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                assert!(
                    !code.contains(word),
                    "{}:{}: the pure core must not use `{word}`: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(files >= 5, "src/core has only {files} files");
}

//! OpenH264 loaded from a shared library at run time (`KUMO_H264_LIBRARY`, src/h264.rs), the
//! way the packages use Cisco's binary. Cisco's file cannot be downloaded here, so the test
//! links the same version's code (the static libraries openh264-sys2 built for this test
//! binary) into a shared library and streams through it; and a library that reports another
//! version is refused in a sentence before any of its encoder is called.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kumo-h264lib-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The folder where openh264-sys2's build script left its static libraries for this profile
/// (`target/<profile>/build/openh264-sys2-*/out`), newest first.
fn openh264_static_libraries() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let build = exe.parent().and_then(Path::parent).unwrap().join("build");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&build)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("openh264-sys2-"))
        .map(|e| e.path().join("out"))
        .filter(|out| out.join("libopenh264_encoder.a").is_file())
        .map(|out| (out.join("libopenh264_encoder.a").metadata().unwrap().modified().unwrap(), out))
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("no openh264 static libraries under {}", build.display())).1
}

fn cc(args: &[&str]) {
    let out = Command::new("cc").args(args).output().expect("cc (build-essential) is needed");
    assert!(out.status.success(), "cc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn demo(library: &Path, json: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(["demo", "--headless", "--duration", "2", "--width", "640", "--height", "360", "--fps", "30"])
        .arg("--stats-json")
        .arg(json)
        .env("KUMO_H264_LIBRARY", library)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn a_stream_encodes_and_decodes_through_an_openh264_library_loaded_at_run_time() {
    let dir = scratch("good");
    let out = openh264_static_libraries();
    let library = dir.join("libopenh264-2.6.so");
    let whole: Vec<String> = ["encoder", "decoder", "processing", "common"]
        .iter()
        .map(|part| out.join(format!("libopenh264_{part}.a")).display().to_string())
        .collect();
    let mut args = vec!["-shared", "-o", library.to_str().unwrap(), "-Wl,--whole-archive"];
    args.extend(whole.iter().map(String::as_str));
    args.extend(["-Wl,--no-whole-archive", "-lstdc++", "-lpthread", "-lm"]);
    cc(&args);

    let json = dir.join("stats.json");
    let run = demo(&library, &json);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // The console says which code it streams with, and that this copy is not Cisco's.
    assert!(
        stderr.contains(&format!("video codec: OpenH264 2.7.0 from {}", library.display()))
            && stderr.contains("not Cisco's binary"),
        "{stderr}"
    );
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(stats["frames_decoded"].as_u64().unwrap() > 20, "{stats}");
    assert_eq!(stats["marker_mismatches"], 0, "{stats}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_library_of_another_version_is_refused_in_a_sentence_before_it_is_used() {
    let dir = scratch("old");
    // The seven functions kumo looks up, from a library that says it is 2.3.1 (Debian 12's
    // libopenh264-7): every one but the version aborts, so calling any of them fails the test.
    let source = dir.join("old.c");
    std::fs::write(
        &source,
        r"#include <stdlib.h>
typedef struct { unsigned uMajor, uMinor, uRevision, uReserved; } OpenH264Version;
OpenH264Version WelsGetCodecVersion(void) { OpenH264Version v = {2, 3, 1, 0}; return v; }
void WelsGetCodecVersionEx(OpenH264Version *v) { v->uMajor = 2; v->uMinor = 3; v->uRevision = 1; v->uReserved = 0; }
int WelsCreateSVCEncoder(void **e) { abort(); }
void WelsDestroySVCEncoder(void *e) { abort(); }
int WelsGetDecoderCapability(void *c) { abort(); }
long WelsCreateDecoder(void **d) { abort(); }
void WelsDestroyDecoder(void *d) { abort(); }
",
    )
    .unwrap();
    let library = dir.join("libopenh264.so.7");
    cc(&["-shared", "-fPIC", "-o", library.to_str().unwrap(), source.to_str().unwrap()]);

    let run = demo(&library, &dir.join("stats.json"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is OpenH264 2.3.1, but kumo speaks the interface of 2.6 and 2.7 (it changed between versions)",
            library.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("Aborted"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

//! The pure core imports no IO crate: no networking, async runtime, codec, GPU, window,
//! audio, gamepad or operating-system library, and reads no clock, in every file of every
//! folder under `src/core`; and its crate, `kumo-core`, depends on nothing but the pure
//! crates listed here. The compiler holds the code to the manifest; this test holds the
//! manifest to the list, so that a new dependency of the core is a decision made here.

mod common;

use common::rust_files;
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
    "x11rb",
    "evdev",
    "libc",
    "std::os",
    "std::net",
    "std::thread",
    "std::process",
    "Instant::now",
    "SystemTime",
    "std::fs",
    "std::env",
];

/// The crates the core may use: computation only (fonts for the latency lab's plots, the
/// plots, erasure coding, a certificate's SHA-256 (its fingerprint), serialisation, error
/// types, the configuration's TOML).
const ALLOWED_DEPENDENCIES: &[&str] =
    &["epaint_default_fonts", "plotters", "reed-solomon-simd", "ring", "serde", "thiserror", "toml"];

/// The forbidden uses in one file's text: `(line number, word, line)`.
fn violations(text: &str) -> Vec<(usize, &'static str, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for word in FORBIDDEN {
            if code.contains(word) {
                found.push((n + 1, *word, line.to_string()));
            }
        }
    }
    found
}

#[test]
fn core_imports_no_io_crates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    // The crate's own integration tests (`src/core/tests`) are test code: they may read the
    // environment (a seed to replay).
    let files: Vec<_> = rust_files(&dir).into_iter().filter(|f| !f.starts_with(dir.join("tests"))).collect();
    let nested = files.iter().filter(|f| f.parent() != Some(dir.as_path())).count();
    assert!(files.len() >= 30, "src/core has only {} files: is the walk reading every folder?", files.len());
    assert!(nested >= 20, "only {nested} files of src/core are in its folders: is the walk recursive?");
    let mut all = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for (line, word, code) in violations(&text) {
            all.push(format!("{}:{line}: the pure core must not use `{word}`: {code}", path.display()));
        }
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
}

#[test]
fn the_core_crate_depends_only_on_pure_crates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core/Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("kumo-core"));
    let deps = manifest["dependencies"].as_table().expect("kumo-core has a [dependencies] table");
    let mut names: Vec<&str> = deps.keys().map(String::as_str).collect();
    names.sort_unstable();
    let extra: Vec<_> = names.iter().filter(|n| !ALLOWED_DEPENDENCIES.contains(n)).collect();
    assert!(
        extra.is_empty(),
        "{}: the pure core may not depend on {extra:?}; move the code that needs it to a shell, or add \
         the crate to ALLOWED_DEPENDENCIES if it is pure computation",
        path.display()
    );
    assert!(!names.is_empty(), "no dependencies read from {}", path.display());
    for table in ["target", "build-dependencies"] {
        assert!(!manifest.contains_key(table), "kumo-core's manifest has a [{table}] section: what does it pull in?");
    }
}

#[test]
fn a_nested_file_that_reads_files_is_found() {
    // The walk and the check together: a file two folders down that uses std::fs is caught.
    let dir = std::env::temp_dir().join(format!("kumo-core-pure-{}", std::process::id()));
    let nested = dir.join("video/fec");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(nested.join("table.rs"), "use std::fs;\n// std::net in a comment is fine\n").unwrap();
    let files = rust_files(&dir);
    let found: Vec<_> = files.iter().flat_map(|f| violations(&std::fs::read_to_string(f).unwrap())).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "std::fs");
}

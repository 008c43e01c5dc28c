//! The `kumo` binary as a user runs it.

use std::process::Command;

fn kumo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kumo"))
}

#[test]
fn headless_demo_prints_a_summary_and_writes_json() {
    let dir = std::env::temp_dir().join(format!("kumo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("stats.json");
    let out = kumo()
        .args([
            "demo",
            "--headless",
            "--duration",
            "2",
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "30",
            "--stats-json",
        ])
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("kumo session summary") && stdout.contains("capture→decoded"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert!(json["frames_decoded"].as_u64().unwrap() > 10, "{json}");
    assert_eq!(json["marker_mismatches"], 0);
    assert_eq!(json["width"], 640);
    for key in ["decode_ms", "capture_to_decoded_ms"] {
        for p in ["p50", "p95", "p99"] {
            assert!(json[key][p].as_f64().is_some(), "{key}.{p} missing in {json}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn connect_without_a_way_to_verify_explains_what_to_pass() {
    let out = kumo().args(["connect", "127.0.0.1:9", "--headless"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--host-fingerprint") && stderr.contains("kumo host"), "{stderr}");
    assert!(stderr.contains("kumo pair 127.0.0.1:9"), "pairing is not offered: {stderr}");
}

#[test]
fn help_explains_every_command() {
    let out = kumo().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["demo", "host", "pair", "list", "connect", "bench"] {
        assert!(text.contains(cmd), "{text}");
    }
    let out = kumo().args(["connect", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--host-fingerprint") && text.contains("--insecure-skip-verify") && text.contains("--stats-json"),
        "{text}"
    );
}

#[test]
fn an_impossible_size_is_refused_in_a_sentence() {
    let out = kumo().args(["demo", "--headless", "--duration", "1", "--width", "641"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("641x720") && stderr.contains("must be even"), "{stderr}");
}

#[test]
fn the_config_file_sets_defaults_and_its_mistakes_name_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("kumo-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, "width = 640\nheight = 360\nfps = 30\n[hotkeys]\noverlay = \"Ctrl+F1\"\n").unwrap();
    let json_path = dir.join("stats.json");
    let out = kumo()
        .arg("--config")
        .arg(&good)
        .args(["demo", "--headless", "--duration", "1", "--height", "288", "--stats-json"])
        .arg(&json_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!((json["width"].as_u64(), json["fps"].as_u64()), (Some(640), Some(30)), "from the file: {json}");
    assert_eq!(json["height"], 288, "a flag wins over the file");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "width = 640\n\n[hotkeys]\nquit = \"Hyper+Q\"\n").unwrap();
    let out = kumo().arg("--config").arg(&bad).args(["demo", "--headless", "--duration", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&*bad.to_string_lossy()) && stderr.contains("line 4") && stderr.contains("hotkeys.quit"),
        "{stderr}"
    );
    let out = kumo().args(["--config", "/nonexistent/kumo.toml", "demo", "--headless"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not read the config file /nonexistent/kumo.toml"));
    std::fs::remove_dir_all(&dir).ok();
}

/// What a newcomer sees on a machine without a sound device: kumo's own sentences, one line
/// each, and one about the missing sound with what to do; none of ALSA's "ALSA lib conf.c…"
/// lines (eight per try at a card that does not exist, and kumo tries again every few
/// seconds), nor openh264's "bEnableFrameSkip" warning, nor log timestamps and module paths.
/// The missing card is ALSA's own doing (a configuration naming a card that does not
/// exist), so the test says the same on a machine that has one.
#[test]
fn the_console_carries_kumos_sentences_not_a_librarys_noise() {
    let dir = std::env::temp_dir().join(format!("kumo-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alsa = dir.join("asound.conf");
    std::fs::write(&alsa, "pcm.!default { type hw card { @func card_inum card kumo_no_such_card } }\n").unwrap();
    let out = kumo()
        .args(["demo", "--headless", "--duration", "7", "--width", "640", "--height", "360", "--fps", "30"])
        .env_remove("RUST_LOG")
        .env("ALSA_CONFIG_PATH", &alsa)
        .env("PULSE_SERVER", dir.join("no-sound-server"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let all = format!("{stdout}{stderr}");
    for noise in ["ALSA lib", "OpenH264", "bEnableFrameSkip", " INFO ", " WARN ", "kumo::"] {
        assert!(!all.contains(noise), "{noise:?} on the console:\n{all}");
    }
    // Seven seconds is several tries at the device (100 ms, 200 ms, … apart): said once.
    let sound: Vec<_> = stderr.lines().filter(|l| l.contains("sound")).collect();
    assert_eq!(sound.len(), 1, "the missing sound device must be said once:\n{stderr}");
    assert!(
        sound[0].starts_with("warning: client: no sound device here") && sound[0].contains("--no-audio"),
        "{}",
        sound[0]
    );
    assert!(stderr.lines().any(|l| l.starts_with("client: streaming 640x360 at 30 fps from ")), "{stderr}");
    assert!(
        stderr.lines().all(|l| !l.chars().next().is_some_and(|c| c.is_ascii_digit())),
        "timestamps on the console:\n{stderr}"
    );
    assert!(stderr.lines().count() <= 4, "a quiet session is a few lines:\n{stderr}");
    // The messages went somewhere: to the log, where RUST_LOG shows them.
    let debug = kumo()
        .args(["demo", "--headless", "--duration", "1", "--width", "640", "--height", "360", "--fps", "30"])
        .env("RUST_LOG", "kumo::alsa=debug,kumo::openh264=debug")
        .env("ALSA_CONFIG_PATH", &alsa)
        .env("PULSE_SERVER", dir.join("no-sound-server"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&debug.stderr);
    assert!(log.contains("ALSA: cannot find card 'kumo_no_such_card'"), "{log}");
    assert!(log.contains("bEnableFrameSkip"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

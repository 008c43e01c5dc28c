//! A private sound server and an ALSA file sink, for the tests that check what kumo plays:
//! the test starts its own `PulseAudio` with a null sink (a sink clocked by the system clock,
//! so the device pulls audio in real time) on a private socket, and points ALSA, through a
//! config of its own (`ALSA_CONFIG_PATH`), at a `type file` PCM in front of it: every sample
//! kumo plays is also written to a file, which the test reads back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

pub(crate) fn pulse_plugin_present() -> bool {
    ["/usr/lib/x86_64-linux-gnu/alsa-lib", "/usr/lib/aarch64-linux-gnu/alsa-lib", "/usr/lib/alsa-lib"]
        .iter()
        .any(|d| Path::new(d).join("libasound_module_pcm_pulse.so").exists())
}

/// Whether `PulseAudio` and ALSA's pulse plugin are there; fails under CI=true when not.
pub(crate) fn tools_present() -> bool {
    if have("pulseaudio") && have("pacat") && pulse_plugin_present() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI needs pulseaudio, pulseaudio-utils and libasound2-plugins for the audio test: run `make deps-test`"
    );
    eprintln!("skipping: pulseaudio, pulseaudio-utils or libasound2-plugins not installed (make deps-test)");
    false
}

/// A private `PulseAudio` with one null sink, and a silent stream keeping that sink awake;
/// both killed on drop.
pub(crate) struct Pulse {
    child: Child,
    keep_awake: Option<Child>,
    pub(crate) socket: PathBuf,
}

impl Drop for Pulse {
    fn drop(&mut self) {
        for child in self.keep_awake.iter_mut().chain(std::iter::once(&mut self.child)) {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Pulse {
    /// Fails, with the server's log, if the sound server died during the run: then what was
    /// played says nothing about kumo.
    pub(crate) fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            // The socket and the log are both in the test's work directory.
            let log = self.socket.with_file_name("pulseaudio.log");
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the test's PulseAudio exited ({status}) during the run; its log:\n{log}");
        }
    }
}

pub(crate) fn work_dir(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    // `PulseAudio` wants a private runtime directory.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

pub(crate) fn start_pulse(dir: &Path, sink: &str) -> Pulse {
    let socket = dir.join("native");
    let child = Command::new("pulseaudio")
        .args([
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disable-shm",
            // PulseAudio's CPU limiter kills the server (SIGXCPU) when it holds the CPU for a
            // while, which a loaded 2-core CI machine can cause: the likely cause (not
            // reproduced) of CI runs where kumo reopened a device that no longer existed.
            // The test's server must outlive the run.
            "--no-cpu-limit",
            "--realtime=no",
            "--high-priority=no",
            "-L",
            &format!("module-native-protocol-unix socket={}", socket.display()),
            "-L",
            &format!("module-null-sink sink_name=kumo_test rate=48000 {sink}"),
        ])
        .env("HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env("XDG_CONFIG_HOME", dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("pulseaudio.log")).unwrap())
        .spawn()
        .unwrap();
    let mut pulse = Pulse { child, keep_awake: None, socket };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pulse.socket.exists() {
        assert!(Instant::now() < deadline, "PulseAudio did not start; see {}/pulseaudio.log", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    // An idle null sink sleeps up to 2 s before it notices a new stream (a real sound card's
    // sink does not): a silent low-latency stream keeps it running, so kumo's first second
    // is heard like on real hardware.
    let keep_awake = Command::new("pacat")
        .args(["--raw", "--latency-msec=10", "/dev/zero"])
        .env("PULSE_SERVER", format!("unix:{}", pulse.socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    pulse.keep_awake = Some(keep_awake);
    std::thread::sleep(Duration::from_millis(200));
    pulse
}

/// An ALSA config whose default PCM appends everything played to `raw` (interleaved `f32`,
/// which cpal asks for) on its way to `PulseAudio`.
pub(crate) fn alsa_config(dir: &Path, raw: &Path) -> PathBuf {
    let path = dir.join("alsa.conf");
    let text = format!(
        "pcm.!default {{\n  type file\n  slave.pcm \"kumo_pulse\"\n  file \"|cat >> {}\"\n  format \"raw\"\n}}\npcm.kumo_pulse {{ type pulse }}\nctl.!default {{ type pulse }}\n",
        raw.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The interleaved `f32` samples the ALSA file plugin wrote.
pub(crate) fn read_raw(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// In 100 ms of interleaved `samples` (`channels` of them) from frame `at`, the frequency each
/// channel carries most of, among the demo's (its tone and `SURROUND_HZ`).
pub(crate) fn loudest_per_channel(samples: &[f32], channels: usize, at: usize) -> Vec<f64> {
    use kumo::core::audio::sound;
    let candidates = [sound::TONE_HZ, 500.0, 60.0, 600.0, 700.0, 800.0, 900.0];
    (0..channels)
        .map(|c| {
            let channel: Vec<f32> =
                samples[at * channels..(at + 4_800) * channels].iter().skip(c).step_by(channels).copied().collect();
            candidates
                .iter()
                .copied()
                .max_by(|a, b| sound::power_at(&channel, *a).total_cmp(&sound::power_at(&channel, *b)))
                .unwrap_or(0.0)
        })
        .collect()
}

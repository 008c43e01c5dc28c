//! The `PulseAudio` shell (libpulse-simple, which `PipeWire`'s pulse server also speaks): a
//! desktop session's sound captured in 5 ms fragments, and the private sink an `--app`
//! session's program plays into.
//!
//! The capture asks for a 5 ms fragment: Pulse's default fragment is up to two seconds, which
//! would make the game's sound arrive that late.

use libpulse_binding::def::BufferAttr;
use libpulse_binding::sample::{Format, Spec};
use libpulse_binding::stream::Direction;
use libpulse_simple_binding::Simple;
use std::process::Command;

/// Captured sound: stereo, 48 kHz, 32-bit float.
pub struct SoundCapture {
    simple: Simple,
    bytes: Vec<u8>,
}

impl SoundCapture {
    /// Records from `device` (a source name such as `SINK.monitor`; `None`: the default
    /// source) in fragments of `frames` stereo frames.
    pub fn open(device: Option<&str>, frames: u32) -> Result<Self, String> {
        let spec = Spec { format: Format::F32le, rate: crate::core::audio::RATE, channels: 2 };
        let fragment = frames * 2 * 4;
        let attr = BufferAttr {
            maxlength: u32::MAX,
            tlength: u32::MAX,
            prebuf: u32::MAX,
            minreq: u32::MAX,
            fragsize: fragment,
        };
        let simple = Simple::new(None, "kumo host", Direction::Record, device, "game sound", &spec, None, Some(&attr))
            .map_err(|e| {
                let reason = e.to_string().unwrap_or_else(|| format!("error {}", e.0));
                format!("could not record the game's sound from PulseAudio ({reason}); is a sound server running for this user?")
            })?;
        Ok(Self { simple, bytes: vec![0; fragment as usize] })
    }

    /// Blocks until `pcm` (interleaved stereo) is filled with the next samples.
    pub fn read(&mut self, pcm: &mut [f32]) -> Result<(), String> {
        let len = (pcm.len() * 4).min(self.bytes.len());
        self.simple
            .read(&mut self.bytes[..len])
            .map_err(|e| format!("the sound server stopped: {}", e.to_string().unwrap_or_default()))?;
        for (sample, bytes) in pcm.iter_mut().zip(self.bytes[..len].chunks_exact(4)) {
            *sample = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Ok(())
    }
}

/// A session's own sink (a `PulseAudio` null sink), which its program plays into and whose
/// monitor the host records; unloaded when dropped.
pub struct PrivateSink {
    pub name: String,
    module: String,
}

impl PrivateSink {
    /// Loads a null sink named `kumo-HOSTPID-TAG`.
    pub fn load(tag: &str) -> Result<Self, String> {
        let name = format!("kumo-{}-{tag}", std::process::id());
        let out = Command::new("pactl")
            .args(["load-module", "module-null-sink", &format!("sink_name={name}")])
            .arg(format!("sink_properties=device.description=kumo-session-{tag}"))
            .output()
            .map_err(|e| format!("could not run pactl (Debian: apt install pulseaudio-utils): {e}"))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            // pactl says "Connection failure: Connection refused" then repeats it in libpulse's
            // words; the first line is the one a person needs.
            let first = said.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no reason given");
            return Err(if first.contains("Connection refused") || first.contains("No such file or directory") {
                "no sound server (PulseAudio or PipeWire) is running for the session's sound".to_owned()
            } else {
                format!("the sound server refused a private sink ({})", crate::core::trust::printable(first))
            });
        }
        let module = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(Self { name, module })
    }

    /// The source that records what is played into the sink.
    pub fn monitor(&self) -> String {
        format!("{}.monitor", self.name)
    }
}

impl Drop for PrivateSink {
    fn drop(&mut self) {
        Command::new("pactl").args(["unload-module", &self.module]).output().ok();
    }
}

/// Unloads the private sinks of hosts that are gone (killed before they could): their names
/// carry the host's process id.
pub fn unload_stale_sinks() {
    let Ok(out) = Command::new("pactl").args(["list", "short", "modules"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split('\t');
        let (Some(module), Some("module-null-sink"), Some(args)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Some(pid) = args.split_once("sink_name=kumo-").and_then(|(_, rest)| rest.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            tracing::info!(module, "unloading the private sink of a host that is gone");
            Command::new("pactl").args(["unload-module", module]).output().ok();
        }
    }
}

//! The config file: what a player sets once instead of on every command line.
//!
//! Owns the file's format (TOML) and its checks. Every key is optional; a command-line flag
//! given wins over the file, the file over kumo's default. Unknown keys and bad values are
//! errors that name the line and the key, so a typo never silently does nothing. Pure: text
//! in, settings out (the shell finds and reads the file).

use crate::input::hotkeys::{Action, Chord, Hotkeys, Key, KeyPress, parse_chord, parse_pad_combo};
use crate::view::color::ColorSpace;
use crate::view::kiosk::Policy;
use crate::view::layout::{Renderer, Vsync};
use serde::Deserialize;
use toml::Spanned;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub fps: Option<u16>,
    pub bitrate_kbps: Option<u32>,
    /// Adapt the bitrate to the path.
    pub abr: Option<bool>,
    pub min_bitrate_kbps: Option<u32>,
    /// Let the host lower the picture's size and rate on a narrow path.
    pub adapt_size: Option<bool>,
    pub vsync: Option<Spanned<String>>,
    pub renderer: Option<Spanned<String>>,
    pub overlay: Option<bool>,
    pub fullscreen: Option<bool>,
    pub color: Option<Spanned<String>>,
    pub relative_mouse: Option<bool>,
    pub gamepads: Option<bool>,
    /// Play the host's sound (`false`: as `--no-audio`).
    pub audio: Option<bool>,
    /// Speakers to ask for: 2, 6 or 8.
    pub speakers: Option<Spanned<u8>>,
    /// Seconds to keep reconnecting after the connection is lost (0: for ever).
    pub reconnect_timeout: Option<u64>,
    /// Keep the last this many seconds of the stream in memory, for the save-replay hotkey.
    pub replay_seconds: Option<u32>,
    /// Share copied text with the host (`false`: as `--clipboard=false`).
    pub clipboard: Option<bool>,
    /// Send the microphone to the host: a capture device's name, or "default" (as `--mic`).
    pub mic: Option<String>,
    /// Extra SDL game-controller mappings, one line each (SDL's format).
    #[serde(default)]
    pub gamepad_mappings: Vec<String>,
    #[serde(default)]
    pub hotkeys: HotkeyConfig,
    #[serde(default)]
    pub kiosk: KioskConfig,
    /// `[[regions]]`: hosts to choose from by probing.
    #[serde(default)]
    pub regions: Vec<RegionConfig>,
}

/// One `[[regions]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub host_fingerprint: Option<Spanned<String>>,
}

/// A host to choose from, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub host: ::core::net::SocketAddr,
    /// `None`: the one pairing kept.
    pub host_fingerprint: Option<String>,
}

/// `[kiosk]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KioskConfig {
    /// `kumo connect` runs as `kumo kiosk`.
    pub enabled: Option<bool>,
    /// The host to stream from ("address:port").
    pub host: Option<Spanned<String>>,
    pub host_fingerprint: Option<Spanned<String>>,
    /// The key combination that exits the kiosk.
    pub admin_exit: Option<Spanned<String>>,
    /// Digits the admin exit asks for first.
    pub admin_pin: Option<Spanned<String>>,
    /// Seconds without input before a session ends for the next player (0: never).
    pub idle_timeout: Option<u64>,
    /// Seconds without a picture, while connected, before the session is restarted.
    pub watchdog: Option<Spanned<u64>>,
}

/// The kiosk's checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KioskSettings {
    pub enabled: bool,
    pub host: Option<::core::net::SocketAddr>,
    pub host_fingerprint: Option<String>,
    pub admin_exit: Chord,
    pub policy: Policy,
}

/// The admin exit's default: a chord no game and no desktop uses.
pub const ADMIN_EXIT: Chord = KeyPress { ctrl: true, alt: true, shift: true, key: Key::F(12) };

impl Default for KioskSettings {
    fn default() -> Self {
        Self { enabled: false, host: None, host_fingerprint: None, admin_exit: ADMIN_EXIT, policy: Policy::default() }
    }
}

/// `[hotkeys]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotkeyConfig {
    pub overlay: Option<Spanned<String>>,
    pub fullscreen: Option<Spanned<String>>,
    pub capture: Option<Spanned<String>>,
    pub quit: Option<Spanned<String>>,
    pub save_replay: Option<Spanned<String>>,
    pub mute_mic: Option<Spanned<String>>,
    pub push_to_talk: Option<Spanned<String>>,
    pub pad_overlay: Option<Spanned<Vec<String>>>,
}

/// What is wrong with a config file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// The file's path (or another name for the text).
    pub origin: String,
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    // Bytes, not chars: an offset inside a multi-byte character cannot panic.
    text.as_bytes().iter().take(offset).fold(1, |line, &b| line + usize::from(b == b'\n'))
}

/// The checked settings of a config file.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub fps: Option<u16>,
    pub bitrate_kbps: Option<u32>,
    pub abr: Option<bool>,
    pub min_bitrate_kbps: Option<u32>,
    pub adapt_size: Option<bool>,
    pub vsync: Option<Vsync>,
    pub renderer: Option<Renderer>,
    pub overlay: Option<bool>,
    pub fullscreen: Option<bool>,
    pub color: Option<ColorSpace>,
    pub relative_mouse: Option<bool>,
    pub gamepads: Option<bool>,
    pub audio: Option<bool>,
    pub speakers: Option<u8>,
    pub reconnect_timeout: Option<u64>,
    pub replay_seconds: Option<u32>,
    pub clipboard: Option<bool>,
    pub mic: Option<String>,
    pub gamepad_mappings: Vec<String>,
    pub hotkeys: Hotkeys,
    pub kiosk: KioskSettings,
    pub regions: Vec<Region>,
}

impl Settings {
    /// Parses and checks a config file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError { origin: origin.to_owned(), message };
        let config: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| format!("line {}: ", line_of(text, s.start))).unwrap_or_default();
            fail(format!("{at}{}", e.message()))
        })?;
        let at = |span: std::ops::Range<usize>, key: &str, why: String| {
            fail(format!("line {}: `{key}`: {why}", line_of(text, span.start)))
        };
        let vsync = match &config.vsync {
            Some(v) => Some(v.get_ref().parse::<Vsync>().map_err(|e| at(v.span(), "vsync", e))?),
            None => None,
        };
        let renderer = match &config.renderer {
            Some(r) => Some(r.get_ref().parse::<Renderer>().map_err(|e| at(r.span(), "renderer", e))?),
            None => None,
        };
        let color = match &config.color {
            Some(c) => Some(c.get_ref().parse::<ColorSpace>().map_err(|e| at(c.span(), "color", e.to_string()))?),
            None => None,
        };
        let speakers = match &config.speakers {
            Some(v) if ![2, 6, 8].contains(v.get_ref()) => {
                return Err(at(v.span(), "speakers", format!("{} is not 2, 6 (5.1) or 8 (7.1)", v.get_ref())));
            }
            other => other.as_ref().map(|v| *v.get_ref()),
        };
        let mut hotkeys = Hotkeys::default();
        let h = &config.hotkeys;
        let bound = [
            (&h.overlay, "hotkeys.overlay", Action::ToggleOverlay),
            (&h.fullscreen, "hotkeys.fullscreen", Action::ToggleFullscreen),
            (&h.capture, "hotkeys.capture", Action::ToggleCapture),
            (&h.quit, "hotkeys.quit", Action::Quit),
            (&h.save_replay, "hotkeys.save_replay", Action::SaveReplay),
            (&h.mute_mic, "hotkeys.mute_mic", Action::MuteMic),
            (&h.push_to_talk, "hotkeys.push_to_talk", Action::PushToTalk),
        ];
        for &(value, key, action) in &bound {
            if let Some(v) = value {
                let chord = parse_chord(v.get_ref()).map_err(|e| at(v.span(), key, e.to_string()))?;
                hotkeys.bind(action, chord);
            }
        }
        // Clashes are judged on the final bindings, so two hotkeys can swap chords.
        for &(value, key, action) in &bound {
            if let Some(v) = value
                && let Some(chord) = hotkeys.chord_of(action)
                && let Some(&(_, other)) = hotkeys.bindings.iter().find(|(c, a)| *c == chord && *a != action)
            {
                return Err(at(v.span(), key, format!("{chord} is also bound to {other:?}")));
            }
        }
        if let Some(v) = &h.pad_overlay {
            hotkeys.pad_overlay = parse_pad_combo(v.get_ref()).map_err(|e| at(v.span(), "hotkeys.pad_overlay", e))?;
        }
        let kiosk = kiosk_settings(&config.kiosk, &at)?;
        let mut regions = Vec::new();
        for r in &config.regions {
            let host = r.host.get_ref().parse().map_err(|_| {
                at(r.host.span(), "regions.host", format!("\"{}\" is not an address and port", r.host.get_ref()))
            })?;
            if let Some(fp) = &r.host_fingerprint {
                check_fingerprint(fp, "regions.host_fingerprint", &at)?;
            }
            regions.push(Region {
                name: r.name.get_ref().clone(),
                host,
                host_fingerprint: r.host_fingerprint.as_ref().map(|f| f.get_ref().clone()),
            });
        }
        Ok(Self {
            width: config.width,
            height: config.height,
            fps: config.fps,
            bitrate_kbps: config.bitrate_kbps,
            abr: config.abr,
            min_bitrate_kbps: config.min_bitrate_kbps,
            adapt_size: config.adapt_size,
            vsync,
            renderer,
            overlay: config.overlay,
            fullscreen: config.fullscreen,
            color,
            relative_mouse: config.relative_mouse,
            gamepads: config.gamepads,
            audio: config.audio,
            speakers,
            reconnect_timeout: config.reconnect_timeout,
            replay_seconds: config.replay_seconds,
            clipboard: config.clipboard,
            mic: config.mic,
            gamepad_mappings: config.gamepad_mappings,
            hotkeys,
            kiosk,
            regions,
        })
    }
}

/// Checks that a value looks like the SHA-256 fingerprint `kumo host` prints.
fn check_fingerprint(
    v: &Spanned<String>,
    key: &str,
    at: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if crate::trust::Fingerprint::parse(v.get_ref()).is_err() {
        return Err(at(v.span(), key, "a SHA-256 is 64 hex digits (colons allowed), as `kumo host` prints it".into()));
    }
    Ok(())
}

/// Checks `[kiosk]`; `at` makes an error naming the line and the key.
fn kiosk_settings(
    k: &KioskConfig,
    at: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<KioskSettings, ConfigError> {
    let mut kiosk = KioskSettings { enabled: k.enabled.unwrap_or(false), ..KioskSettings::default() };
    if let Some(v) = &k.host {
        kiosk.host = Some(v.get_ref().parse().map_err(|_| {
            at(
                v.span(),
                "kiosk.host",
                format!("\"{}\" is not an address and port like \"192.168.1.20:4433\"", v.get_ref()),
            )
        })?);
    }
    if let Some(v) = &k.host_fingerprint {
        check_fingerprint(v, "kiosk.host_fingerprint", at)?;
        kiosk.host_fingerprint = Some(v.get_ref().clone());
    }
    if let Some(v) = &k.admin_exit {
        kiosk.admin_exit = parse_chord(v.get_ref()).map_err(|e| at(v.span(), "kiosk.admin_exit", e.to_string()))?;
    }
    if let Some(v) = &k.admin_pin {
        let pin = v.get_ref();
        if pin.is_empty() || pin.len() > crate::view::kiosk::PIN_MAX_DIGITS || !pin.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(at(
                v.span(),
                "kiosk.admin_pin",
                format!("a PIN is 1 to {} digits", crate::view::kiosk::PIN_MAX_DIGITS),
            ));
        }
        kiosk.policy.admin_pin = Some(pin.clone());
    }
    if let Some(secs) = k.idle_timeout {
        kiosk.policy.idle_timeout = (secs > 0).then(|| std::time::Duration::from_secs(secs));
    }
    if let Some(v) = &k.watchdog {
        if *v.get_ref() < 2 {
            return Err(at(v.span(), "kiosk.watchdog", "at least 2 seconds (a reconnect needs time)".into()));
        }
        kiosk.policy.watchdog = std::time::Duration::from_secs(*v.get_ref());
    }
    Ok(kiosk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_in_packaging_parses() {
        let text = include_str!("../../packaging/config.example.toml");
        let s = Settings::parse(text, "config.example.toml").unwrap();
        assert_eq!(s.vsync, Some(Vsync::Auto));
        assert_eq!(s.renderer, Some(Renderer::Auto));
        assert_eq!(s.hotkeys, Hotkeys::default(), "the example spells out the defaults");
    }

    #[test]
    fn values_and_hotkeys_are_read() {
        let text = r#"
            width = 1920
            height = 1080
            vsync = "off"
            renderer = "cpu"
            color = "bt709-full"
            overlay = true
            audio = false
            speakers = 6
            replay_seconds = 30
            clipboard = false
            mic = "default"
            gamepad_mappings = ["03000000de280000ff11000001000000,Steam Virtual Gamepad,a:b0,b:b1,platform:Linux,"]
            [hotkeys]
            overlay = "Ctrl+F1"
            save_replay = "Ctrl+Alt+F9"
            push_to_talk = "Ctrl+Alt+V"
            pad_overlay = ["Guide", "A"]
        "#;
        let s = Settings::parse(text, "t.toml").unwrap();
        assert_eq!((s.width, s.height, s.vsync, s.overlay), (Some(1920), Some(1080), Some(Vsync::Off), Some(true)));
        assert_eq!(s.color.unwrap().to_string(), "bt709-full");
        assert_eq!(s.renderer, Some(Renderer::Cpu));
        assert_eq!(s.gamepad_mappings.len(), 1);
        assert_eq!(s.replay_seconds, Some(30));
        assert_eq!(s.clipboard, Some(false));
        assert_eq!(s.mic.as_deref(), Some("default"));
        let f9 = KeyPress { ctrl: true, alt: true, shift: false, key: Key::F(9) };
        assert_eq!(s.hotkeys.action(f9), Some(Action::SaveReplay));
        let ctrl_alt_v = KeyPress { ctrl: true, alt: true, shift: false, key: Key::Letter('V') };
        assert_eq!(s.hotkeys.action(ctrl_alt_v), Some(Action::PushToTalk));
        assert_eq!((s.audio, s.speakers), (Some(false), Some(6)));
        let ctrl_f1 = KeyPress { ctrl: true, alt: false, shift: false, key: Key::F(1) };
        assert_eq!(s.hotkeys.action(ctrl_f1), Some(Action::ToggleOverlay));
        assert!(s.hotkeys.pad_combo(crate::input::button::GUIDE | crate::input::button::A));
    }

    #[test]
    fn mistakes_name_the_file_the_line_and_the_key() {
        for (text, needle) in [
            ("width = 1280\nvsynk = \"on\"\n", "line 2"),
            ("width = 1280\nvsync = \"sometimes\"\n", "line 2: `vsync`"),
            ("renderer = \"metal\"\n", "line 1: `renderer`"),
            ("color = \"bt2020\"\n", "line 1: `color`"),
            ("[hotkeys]\n\nquit = \"Hyper+Q\"\n", "line 3: `hotkeys.quit`"),
            ("[hotkeys]\nquit = \"Ctrl+Alt+Shift+S\"\n", "also bound"),
            ("[hotkeys]\npad_overlay = [\"A\"]\n", "line 2: `hotkeys.pad_overlay`"),
            ("width = \"wide\"\n", "line 1"),
            ("width = 99999999\n", "line 1"),
            ("audio = true\nspeakers = 4\n", "line 2: `speakers`"),
            ("[kiosk]\nhost = \"arcade\"\n", "line 2: `kiosk.host`"),
            ("[kiosk]\nhost_fingerprint = \"AB:CD\"\n", "line 2: `kiosk.host_fingerprint`"),
            ("[kiosk]\nadmin_exit = \"Q\"\n", "line 2: `kiosk.admin_exit`"),
            ("[kiosk]\nadmin_pin = \"12a4\"\n", "line 2: `kiosk.admin_pin`"),
            ("[kiosk]\nwatchdog = 1\n", "line 2: `kiosk.watchdog`"),
            ("[kiosk]\nhostname = \"x\"\n", "line 2"),
            (
                "[[regions]]\nname = \"eu\"\nhost = \"eu.example\"\nhost_fingerprint = \"AB\"\n",
                "line 3: `regions.host`",
            ),
            (
                "[[regions]]\nname = \"eu\"\nhost = \"10.0.0.1:4433\"\nhost_fingerprint = \"AB\"\n",
                "line 4: `regions.host_fingerprint`",
            ),
        ] {
            let err = Settings::parse(text, "/home/p/.config/kumo/config.toml").unwrap_err().to_string();
            assert!(err.starts_with("/home/p/.config/kumo/config.toml: "), "{err}");
            assert!(err.contains(needle), "`{needle}` not in: {err}");
        }
    }

    #[test]
    fn the_kiosk_section_is_read() {
        let fp = "AB:".repeat(31) + "AB";
        let text = format!(
            "[kiosk]\nenabled = true\nhost = \"10.0.0.5:4433\"\nhost_fingerprint = \"{fp}\"\nadmin_exit = \"Ctrl+Alt+K\"\nadmin_pin = \"0451\"\nidle_timeout = 0\nwatchdog = 20\n"
        );
        let k = Settings::parse(&text, "t.toml").unwrap().kiosk;
        assert!(k.enabled);
        assert_eq!(k.host, Some("10.0.0.5:4433".parse().unwrap()));
        assert_eq!(k.host_fingerprint.as_deref(), Some(fp.as_str()));
        assert_eq!(k.admin_exit, KeyPress { ctrl: true, alt: true, shift: false, key: Key::Letter('K') });
        assert_eq!(k.policy.admin_pin.as_deref(), Some("0451"));
        assert_eq!(k.policy.idle_timeout, None);
        assert_eq!(k.policy.watchdog, std::time::Duration::from_secs(20));
        assert_eq!(Settings::parse("", "t").unwrap().kiosk, KioskSettings::default());
    }

    #[test]
    fn regions_are_read_in_order() {
        let fp = "0F".repeat(32);
        let text = format!(
            "[[regions]]\nname = \"eu-west\"\nhost = \"10.0.0.1:4433\"\nhost_fingerprint = \"{fp}\"\n\
             [[regions]]\nname = \"us-east\"\nhost = \"[2001:db8::1]:4433\"\nhost_fingerprint = \"{fp}\"\n"
        );
        let r = Settings::parse(&text, "t.toml").unwrap().regions;
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].name.as_str(), r[0].host), ("eu-west", "10.0.0.1:4433".parse().unwrap()));
        assert_eq!(r[1].host, "[2001:db8::1]:4433".parse().unwrap());
    }

    #[test]
    fn two_hotkeys_can_swap_chords() {
        let text = "[hotkeys]\ncapture = \"Ctrl+Alt+Shift+Q\"\nquit = \"Ctrl+Alt+Shift+Z\"\n";
        let s = Settings::parse(text, "t.toml").unwrap();
        let q = KeyPress { ctrl: true, alt: true, shift: true, key: Key::Letter('Q') };
        assert_eq!(s.hotkeys.action(q), Some(Action::ToggleCapture));
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let s = Settings::parse("", "empty").unwrap();
        assert!(s.vsync.is_none() && s.width.is_none());
        assert_eq!(s.hotkeys, Hotkeys::default());
    }
}

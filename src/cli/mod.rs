//! The `kumo` command's arguments (clap): every subcommand, its flags and their help. `main.rs`
//! dispatches each command to its wiring here, which turns the flags and the config file into
//! the library's configuration and runs it: `host`, `client` (`connect`, `probe`), `pair`
//! (`pair`, `list`), `kiosk`, `tools` (`demo`, `latency`, `relay`, `fuzz`, `bench`), and
//! `report` (what a session leaves).

pub(crate) mod client;
pub(crate) mod console;
pub(crate) mod host;
pub(crate) mod kiosk;
pub(crate) mod pair;
pub(crate) mod report;
pub(crate) mod tools;

use clap::{Args, Parser, Subcommand};
use kumo::client::{ABR_FLOOR_KBPS, StreamRequest};
use kumo::core::config::Settings;
use kumo::core::view::color::ColorSpace;
use kumo::core::view::layout::{Renderer, Vsync};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// kumo: a thin client for cloud game streaming (H.264 over QUIC), with a reference host.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub(crate) struct Cli {
    /// Read settings from this file instead of ~/.config/kumo/config.toml (example:
    /// packaging/config.example.toml). Flags given on the command line win over the file.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the reference host and the client in one process on loopback (the main job).
    Demo {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        stream: StreamArgs,
    },
    /// Run the reference host: a synthetic game streamed to one client at a time.
    Host(HostArgs),
    /// List the kumo hosts on the local network (multicast DNS): name, address, and whether
    /// this client is paired with each.
    List {
        /// Seconds to wait for answers.
        #[arg(long, default_value_t = 2.0)]
        wait: f64,
    },
    /// Pair this client with a host: run `kumo host --pair` there, then type the PIN it
    /// prints. Afterwards `kumo connect HOST` needs no fingerprint, and the host lets this
    /// client stream.
    Pair {
        /// The host's address, e.g. 192.168.1.20:4433.
        host: SocketAddr,
        /// The PIN the host printed (asked for on the terminal when left out).
        #[arg(long)]
        pin: Option<String>,
        /// The name the host will know this client by [default: this machine's hostname].
        #[arg(long)]
        name: Option<String>,
    },
    /// Connect to a running `kumo host`.
    Connect(ConnectArgs),
    /// Measure hosts (a few QUIC pings each: handshake, round trip, loss) and say which one
    /// `kumo connect` would choose.
    Probe {
        /// Hosts to probe [default: the config file's `[[regions]]`].
        hosts: Vec<SocketAddr>,
        /// The SHA-256 the hosts' certificates must have (hosts given on the command line)
        /// [default: each host's from pairing].
        #[arg(long, value_name = "SHA256")]
        host_fingerprint: Option<String>,
    },
    /// Run as a kiosk: full screen, no pointer, the quit keys disabled; connects by itself,
    /// shows an attract or reconnecting screen and tries again for ever on any failure. Only
    /// the admin combination (default Ctrl+Alt+Shift+F12, `[kiosk] admin_exit`, optionally
    /// behind `admin_pin`) exits. Settings: the config file's `[kiosk]` section.
    Kiosk {
        /// The host's address [default: `[kiosk] host`; with neither, the embedded demo host].
        host: Option<SocketAddr>,
        /// The host certificate's SHA-256 [default: `[kiosk] host_fingerprint`].
        #[arg(long, value_name = "SHA256")]
        host_fingerprint: Option<String>,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        stream: StreamArgs,
    },
    /// Measure input→photon latency stage by stage (the latency lab): writes latency.csv,
    /// summary.json and latency.png.
    Latency(LatencyArgs),
    /// A UDP relay that impairs the path between a client and a host (delay, jitter, loss).
    Relay {
        /// Address the client connects to.
        #[arg(long, default_value = "127.0.0.1:4434")]
        listen: SocketAddr,
        /// The host's address.
        #[arg(long)]
        to: SocketAddr,
        #[command(flatten)]
        impair: ImpairArgs,
    },
    /// Fuzz every decoder of network bytes; failing inputs are written to the corpus folder.
    Fuzz {
        /// One target (frame-header, control, input, input-ack, audio, clock, assemble, annexb,
        /// marker, opus, mdns, fec); default: all.
        #[arg(long)]
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Folder of kept inputs, one subfolder per target.
        #[arg(long, default_value = "tests/fuzz-corpus")]
        corpus: PathBuf,
        /// Write each target's seeds into the corpus folder and stop.
        #[arg(long)]
        write_seeds: bool,
    },
    /// Print benchmark figures: codec and present-path cost, input, video and audio latency.
    Bench {
        /// Frames per codec size (2160p uses a quarter).
        #[arg(long, default_value_t = 240)]
        frames: u32,
        /// Seconds of each latency run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Only the audio figures (Opus cost, audio latency and A/V offset).
        #[arg(long, conflicts_with_all = ["capture_only", "present_only"])]
        audio_only: bool,
        /// Only the desktop capture figures (a private Xvfb per size).
        #[arg(long, conflicts_with = "present_only")]
        capture_only: bool,
        /// Only the present path's figures (both presenters, stage by stage).
        #[arg(long, conflicts_with = "ladder_only")]
        present_only: bool,
        /// Only the picture ladder's figures: openh264's bitrate floor at each rung (the
        /// calibration of `core::video::ladder::FLOOR`).
        #[arg(long, conflicts_with_all = ["audio_only", "capture_only"])]
        ladder_only: bool,
    },
}

// The `*Args` of one subcommand have no doc comment: clap would take it for the subcommand's
// help, which the variant's doc comment gives.
#[derive(Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent switches of the command line, one field each as clap parses them"
)]
pub(crate) struct HostArgs {
    /// Address and UDP port to listen on.
    #[arg(long, default_value = "0.0.0.0:4433")]
    pub(crate) listen: SocketAddr,
    /// Name shown to clients.
    #[arg(long, default_value = "kumo host")]
    pub(crate) name: String,
    /// Highest frame rate a client may ask for.
    #[arg(long, default_value_t = 240)]
    pub(crate) max_fps: u16,
    /// Encoder threads, one slice each (0: one per core, at most 4).
    #[arg(long, default_value_t = 0)]
    pub(crate) encoder_threads: u16,
    /// Parity sent beside each frame so that a lost packet is repaired without waiting
    /// for its retransmission: `auto` (follows the path's loss: 4 % of each frame on a
    /// clean path, up to 50 %), `off`, or a fixed share such as `25%`.
    #[arg(long, default_value = "auto", value_name = "auto|off|PERCENT")]
    pub(crate) fec: kumo::core::video::fec::FecMode,
    /// Folder keeping the host's certificate and key, so its fingerprint survives a
    /// restart (default: ~/.local/share/kumo/host).
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    pub(crate) identity: Option<PathBuf>,
    /// A fresh certificate for this run only (clients cannot reconnect across a restart,
    /// and pairings last only this run).
    #[arg(long)]
    pub(crate) ephemeral: bool,
    /// Offer a pairing PIN (printed; good for 5 minutes and 3 tries): a client then runs
    /// `kumo pair ADDRESS` and types it.
    #[arg(long)]
    pub(crate) pair: bool,
    /// Stream to any client, paired or not. Anyone who can reach the port can then play:
    /// for tests and trusted networks only; warned about at start.
    #[arg(long)]
    pub(crate) allow_unpaired: bool,
    /// Print the paired clients (name, fingerprint, when paired or revoked) and exit.
    #[arg(long, conflicts_with_all = ["pair", "revoke", "ephemeral"])]
    pub(crate) list_clients: bool,
    /// Revoke a paired client, by name or by fingerprint (or its first 8+ hex digits), and
    /// exit. A running host using the same identity folder ends that client's session
    /// within a second.
    #[arg(long, value_name = "NAME|SHA256", conflicts_with_all = ["pair", "ephemeral"])]
    pub(crate) revoke: Option<String>,
    /// Do not answer LAN discovery (`kumo list`, multicast DNS on UDP port 5353).
    #[arg(long)]
    pub(crate) no_advertise: bool,
    /// Stream this X display (`:0`) at its own size, and put the player's input into it,
    /// instead of the synthetic scene.
    #[arg(long, value_name = "DISPLAY", conflicts_with = "app")]
    pub(crate) display: Option<String>,
    /// With --display: stream only this monitor (0 first, in the order
    /// `xrandr --listmonitors` prints), at its size.
    #[arg(long, value_name = "N", requires = "display")]
    pub(crate) monitor: Option<usize>,
    /// Each session: a private X server of the stream's size with this program on it
    /// (a shell command line, run as this user), streamed until the program exits.
    #[arg(long, value_name = "COMMAND")]
    pub(crate) app: Option<String>,
    /// The X server `--app` starts instead of Xvfb, with {display}, {width}, {height} and
    /// {auth} replaced (for example Xorg with the dummy driver, for a GPU).
    #[arg(long, value_name = "COMMAND", requires = "app")]
    pub(crate) app_server: Option<String>,
    /// Share copied text with a client that asks (text only, up to 1 MiB, both ways): with
    /// --display or --app only; false keeps this machine's clipboard to itself.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = true, require_equals = true, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub(crate) clipboard: bool,
    /// Refuse a client's microphone (by default a desktop session's programs can record
    /// the player's voice from the source "kumo-mic" when the client sends it, `--mic`).
    #[arg(long)]
    pub(crate) no_mic: bool,
}

#[derive(Args)]
pub(crate) struct ConnectArgs {
    /// The host's address, e.g. 192.168.1.20:4433. Several: each is probed (as `kumo probe`)
    /// and the best is used. None: the config file's `[[regions]]`, probed the same way.
    pub(crate) hosts: Vec<SocketAddr>,
    /// The SHA-256 fingerprint `kumo host` printed at start; the connection fails unless
    /// the host's certificate matches it [default: the one pairing (`kumo pair`) kept].
    #[arg(long, value_name = "SHA256", conflicts_with = "insecure_skip_verify")]
    pub(crate) host_fingerprint: Option<String>,
    /// Accept any host certificate. Only on a network you trust: anyone in the path can
    /// then impersonate the host.
    #[arg(long)]
    pub(crate) insecure_skip_verify: bool,
    /// Seconds to wait for the host to answer.
    #[arg(long, default_value_t = kumo::client::CONNECT_TIMEOUT.as_secs())]
    pub(crate) connect_timeout: u64,
    /// Seconds to keep reconnecting after the connection is lost before giving up
    /// (0: for ever) [default: 30].
    #[arg(long, value_name = "SECS")]
    pub(crate) reconnect_timeout: Option<u64>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
    #[command(flatten)]
    pub(crate) stream: StreamArgs,
}

#[derive(Args)]
pub(crate) struct LatencyArgs {
    /// A running `kumo host` to measure (default: the embedded host on loopback).
    pub(crate) host: Option<SocketAddr>,
    /// The SHA-256 fingerprint `kumo host` printed (with HOST).
    #[arg(long, value_name = "SHA256")]
    pub(crate) host_fingerprint: Option<String>,
    /// Measure without a window (the last stage is then the decoded picture).
    #[arg(long)]
    pub(crate) headless: bool,
    /// Inputs to send, at random intervals of 40–160 ms.
    #[arg(long, default_value_t = 100)]
    pub(crate) inputs: u32,
    /// Folder for latency.csv, summary.json and latency.png.
    #[arg(long, value_name = "DIR", default_value = "latency")]
    pub(crate) out: PathBuf,
    /// Time presses by the picture alone, as a photodiode would (any program, no marks
    /// needed): a press's response is the first picture whose region X,Y,W,H (pixels of
    /// the stream) changes. INPUTS then counts presses.
    #[arg(long, value_name = "X,Y,W,H")]
    pub(crate) watch: Option<String>,
    /// With --watch: the key pressed (a script key name: Space, A, Enter, F1…); several,
    /// comma-separated, are pressed in turn (Down,Up moves a menu's highlight and back).
    #[arg(long, value_name = "KEY", default_value = "Space", conflicts_with = "click")]
    pub(crate) key: String,
    /// With --watch: click the left mouse button in the middle of the region instead of
    /// pressing a key.
    #[arg(long)]
    pub(crate) click: bool,
    #[command(flatten)]
    pub(crate) impair: ImpairArgs,
    #[command(flatten)]
    pub(crate) stream: StreamArgs,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Run without a window: stream, then print the session summary.
    #[arg(long)]
    pub(crate) headless: bool,
    /// Present mode: auto (lowest latency offered: mailbox, else immediate, else fifo), on
    /// (fifo: no tearing, up to a frame more latency), off (immediate: may tear), mailbox,
    /// immediate.
    #[arg(long, value_name = "MODE")]
    pub(crate) vsync: Option<Vsync>,
    /// Who draws the picture: auto (the GPU where a real one exists; with only a software
    /// rasterizer such as lavapipe, or none, the faster software presenter), gpu, cpu.
    #[arg(long, value_name = "WHO")]
    pub(crate) renderer: Option<Renderer>,
    /// Show the performance overlay from the start (toggle: Ctrl+Alt+Shift+S).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub(crate) overlay: Option<bool>,
    /// Start in borderless fullscreen (toggle: Ctrl+Alt+Shift+X or F11).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub(crate) fullscreen: Option<bool>,
    /// Convert colour as this instead of what the host announces: bt601-limited,
    /// bt601-full, bt709-limited, bt709-full.
    #[arg(long, value_name = "SPACE")]
    pub(crate) color: Option<ColorSpace>,
    /// Lock the pointer inside the window while playing, for games that turn the camera with
    /// the mouse (relative mode). Ctrl+Alt+Shift+Z releases it.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub(crate) relative_mouse: Option<bool>,
    /// Read gamepads (windowed sessions; `--gamepads=false` to ignore them) [default: true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub(crate) gamepads: Option<bool>,
    /// Play no sound: the client asks the host for none.
    #[arg(long)]
    pub(crate) no_audio: bool,
    /// Speakers to ask the host for: 2, 6 (5.1) or 8 (7.1) [default: the output device's
    /// own setting; sound servers report 2].
    #[arg(long, value_name = "N", value_parser = parse_speakers)]
    pub(crate) speakers: Option<u8>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub(crate) duration: Option<f64>,
    /// Write the session summary as JSON to this file at exit.
    #[arg(long, value_name = "PATH")]
    pub(crate) stats_json: Option<PathBuf>,
    /// With --headless and --stats-json PATH: also append each period of this many seconds
    /// as one JSON line (the same fields, for that period alone) to PATH.periods.jsonl, as
    /// the session runs: how a long session's figures change (a soak's first and last ten
    /// minutes).
    #[arg(long, value_name = "SECS", requires = "stats_json", requires = "headless")]
    pub(crate) stats_every: Option<f64>,
    /// Play a timed sequence of pad, keyboard and mouse input from this file through the
    /// input path (format: assets/input-scripts/README.md).
    #[arg(long, value_name = "FILE")]
    pub(crate) input_script: Option<PathBuf>,
    /// Record the stream as it arrives (H.264 and Opus, not re-encoded) into this Matroska
    /// file (.mkv), and each frame's times into FILE.frames.csv. The file stays readable
    /// however the session ends.
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,
    /// Keep the last N seconds of the stream in memory (compressed); Ctrl+Alt+Shift+R saves
    /// them to the videos folder. The client then asks the host for a key frame every third
    /// of N (2 to 10 s), where a saved file can start.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) replay_seconds: Option<u32>,
    /// Share copied text with the host, both ways: what you copied elsewhere reaches the
    /// host when kumo's window gains focus, and what is copied on the host reaches you. Text
    /// only, up to 1 MiB; never in a kiosk, never without a window [default: true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub(crate) clipboard: Option<bool>,
    /// Send your microphone to the host, where the game can record it from the source
    /// "kumo-mic": the system's capture device, or the one named. Ctrl+Alt+Shift+M mutes it.
    #[arg(long, num_args = 0..=1, default_missing_value = "default", require_equals = true, value_name = "DEVICE")]
    pub(crate) mic: Option<String>,
}

/// A relay schedule as one command-line value.
#[derive(Debug, Clone)]
pub(crate) struct Schedule(pub(crate) Vec<(Duration, kumo::core::sim::impair::Change)>);

/// Network impairment, made by the project's relay.
#[derive(Args)]
pub(crate) struct ImpairArgs {
    /// Added one-way delay, each way (e.g. 20ms).
    #[arg(long, value_parser = kumo::core::sim::impair::parse_duration, default_value = "0ms")]
    pub(crate) delay: Duration,
    /// Each packet's delay varies by up to this either way (e.g. 5ms).
    #[arg(long, value_parser = kumo::core::sim::impair::parse_duration, default_value = "0ms")]
    pub(crate) jitter: Duration,
    /// Packets dropped, each way (e.g. 1%).
    #[arg(long, value_parser = kumo::core::sim::impair::parse_fraction, default_value = "0%")]
    pub(crate) loss: f64,
    /// Packets held 5 ms longer so later ones overtake them (e.g. 1%).
    #[arg(long, value_parser = kumo::core::sim::impair::parse_fraction, default_value = "0%")]
    pub(crate) reorder: f64,
    /// Link rate each way (e.g. 20mbit), behind a 100 ms queue.
    #[arg(long, value_parser = kumo::core::sim::impair::parse_rate)]
    pub(crate) rate: Option<u64>,
    /// Changes during the run, e.g. "10s blackout 5s; 20s rate 5mbit; 30s rate 0".
    #[arg(long, value_parser = |s: &str| kumo::core::sim::impair::parse_schedule(s).map(Schedule))]
    pub(crate) schedule: Option<Schedule>,
    /// Seed of the impairment and of the lab's input timing: the same seed repeats a run.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

impl ImpairArgs {
    pub(crate) fn impairment(&self) -> kumo::core::sim::impair::Impairment {
        kumo::core::sim::impair::Impairment {
            delay: self.delay,
            jitter: self.jitter,
            loss: self.loss,
            reorder: self.reorder,
            rate_bps: self.rate,
            schedule: self.schedule.clone().map(|s| s.0).unwrap_or_default(),
            seed: self.seed,
        }
    }
}

#[derive(Args)]
pub(crate) struct StreamArgs {
    /// Stream width in pixels (even, 352..=3840) [default: 1280].
    #[arg(long)]
    pub(crate) width: Option<u16>,
    /// Stream height in pixels (even, 64..=2160) [default: 720].
    #[arg(long)]
    pub(crate) height: Option<u16>,
    /// Frames per second [default: 60].
    #[arg(long)]
    pub(crate) fps: Option<u16>,
    /// Target video bitrate in kbit/s, and adaptive bitrate's ceiling [default: 10000].
    #[arg(long)]
    pub(crate) bitrate_kbps: Option<u32>,
    /// Adapt the bitrate to the path (lower it when the path's queue grows, probe back up
    /// when clear) [default: true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub(crate) abr: Option<bool>,
    /// Adaptive bitrate's floor in kbit/s [default: 500].
    #[arg(long)]
    pub(crate) min_bitrate_kbps: Option<u32>,
    /// Let the host lower the picture's size, then its frame rate, when the path is too
    /// narrow for them (--width/--height/--fps stay the most it sends) [default: true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub(crate) adapt_size: Option<bool>,
}

impl StreamArgs {
    /// The flags, else the config file, else kumo's defaults.
    pub(crate) fn request(&self, file: &Settings) -> StreamRequest {
        let default = StreamRequest::default();
        StreamRequest {
            width: self.width.or(file.width).unwrap_or(default.width),
            height: self.height.or(file.height).unwrap_or(default.height),
            fps: self.fps.or(file.fps).unwrap_or(default.fps),
            bitrate_kbps: self.bitrate_kbps.or(file.bitrate_kbps).unwrap_or(default.bitrate_kbps),
            min_bitrate_kbps: self
                .abr
                .or(file.abr)
                .unwrap_or(default.min_bitrate_kbps.is_some())
                .then(|| self.min_bitrate_kbps.or(file.min_bitrate_kbps).unwrap_or(ABR_FLOOR_KBPS)),
            adapt_size: self.adapt_size.or(file.adapt_size).unwrap_or(default.adapt_size),
        }
    }
}

pub(crate) fn parse_speakers(s: &str) -> Result<u8, String> {
    match s {
        "2" => Ok(2),
        "6" => Ok(6),
        "8" => Ok(8),
        _ => Err(format!("{s} speakers: use 2 (stereo), 6 (5.1) or 8 (7.1)")),
    }
}

/// Set on Ctrl-C: the commands that stream stop then and still report.
pub(crate) fn interrupt_flag(rt: &tokio::runtime::Runtime) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, Ordering::Relaxed);
        }
    });
    flag
}

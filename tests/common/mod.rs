//! Helpers shared by the integration tests.

#![allow(
    dead_code,
    reason = "each test binary compiles these helpers and uses some of them: `expect` would fail in the others"
)]
#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

pub(crate) mod desktop;
pub(crate) mod sound;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::net::UdpSocket;

/// A UDP relay that drops every `nth` packet in each direction (deterministic loss).
pub(crate) async fn lossy_relay(host: SocketAddr, nth: u64) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    back.connect(host).await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut client, mut up, mut down) = (None, 0u64, 0u64);
        let (mut a, mut b) = (vec![0u8; 65536], vec![0u8; 65536]);
        loop {
            tokio::select! {
                Ok((n, from)) = front.recv_from(&mut a) => {
                    client = Some(from);
                    up += 1;
                    if up % nth != 0 {
                        back.send(&a[..n]).await.ok();
                    }
                }
                Ok(n) = back.recv(&mut b) => {
                    down += 1;
                    if let Some(to) = client && down % nth != 0 {
                        front.send_to(&b[..n], to).await.ok();
                    }
                }
            }
        }
    });
    addr
}

/// A running reference host on loopback, with its game watchable.
pub(crate) struct TestHost {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) addr: SocketAddr,
    pub(crate) fingerprint: kumo::net::tls::Fingerprint,
    pub(crate) game: std::sync::Arc<kumo::host::encode::GameLink>,
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
    /// The host's pairing offer.
    pub(crate) pairing: std::sync::Arc<kumo::net::pair::Offer>,
}

/// A host on a free loopback port that streams to any client.
pub(crate) fn start_host(name: &str) -> TestHost {
    start_host_with(kumo::runtime().unwrap(), host_config(name, kumo::host::HostTrust::open()))
}

/// A host config on a free loopback port: 60 fps at most, one encoder thread, a fresh identity.
pub(crate) fn host_config(name: &str, trust: kumo::host::HostTrust) -> kumo::host::HostConfig {
    kumo::host::HostConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        name: name.into(),
        max_fps: 60,
        encoder_threads: 1,
        identity: None,
        trust,
        fec: kumo::core::video::fec::FecMode::Auto,
        source: kumo::host::desktop::Source::Scene,
        clipboard: true,
        mic: true,
    }
}

/// Starts a host with `config` on `rt`.
pub(crate) fn start_host_with(rt: tokio::runtime::Runtime, config: kumo::host::HostConfig) -> TestHost {
    let (host, stop) = spawn_host(&rt, config);
    let Spawned { addr, fingerprint, game, pairing } = host;
    TestHost { rt, addr, fingerprint, game, stop, pairing }
}

/// A host serving on a runtime the caller keeps (several hosts in turn on one runtime).
pub(crate) struct Spawned {
    pub(crate) addr: SocketAddr,
    pub(crate) fingerprint: kumo::net::tls::Fingerprint,
    pub(crate) game: std::sync::Arc<kumo::host::encode::GameLink>,
    pub(crate) pairing: std::sync::Arc<kumo::net::pair::Offer>,
}

/// Binds a host with `config` and serves it on `rt`; the sender stops it.
pub(crate) fn spawn_host(
    rt: &tokio::runtime::Runtime,
    config: kumo::host::HostConfig,
) -> (Spawned, tokio::sync::watch::Sender<bool>) {
    let host = {
        let _guard = rt.enter();
        kumo::host::Host::bind(config).unwrap()
    };
    let spawned = Spawned {
        addr: host.local_addr(),
        fingerprint: host.fingerprint(),
        game: host.game(),
        pairing: host.pairing(),
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    rt.spawn(host.serve(stop_rx));
    (spawned, stop)
}

/// A headless client of `host` at `target`: 640x360 at 30 fps, 2 Mbit/s, no audio or pads,
/// presenting `identity`.
pub(crate) fn client_config(
    target: SocketAddr,
    fingerprint: kumo::net::tls::Fingerprint,
    identity: Option<kumo::net::tls::Identity>,
) -> kumo::client::ClientConfig {
    kumo::client::ClientConfig {
        identity,
        request: kumo::client::StreamRequest {
            width: 640,
            height: 360,
            fps: 30,
            bitrate_kbps: 2000,
            min_bitrate_kbps: None,
            adapt_size: false,
        },
        name: "test client".into(),
        audio: false,
        ..kumo::client::ClientConfig::new(target, kumo::net::tls::Verify::Pinned(fingerprint))
    }
}

/// A `kumo host` child process, killed on drop; its output pipe stays open while it runs (a
/// closed pipe would fail the host's next print).
/// `kumo host`'s arguments to stream X display `display` to any client, on a free port of
/// loopback, with a fresh certificate.
pub(crate) fn display_host(display: &str) -> [&std::ffi::OsStr; 6] {
    [
        "--display".as_ref(),
        display.as_ref(),
        "--allow-unpaired".as_ref(),
        "--ephemeral".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]
}

pub(crate) struct HostProcess {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
    pub(crate) addr: SocketAddr,
    pub(crate) fingerprint: String,
}

impl HostProcess {
    /// `kumo host` with these arguments (after `host`): its address and fingerprint are read
    /// from the lines it prints at start.
    pub(crate) fn spawn(args: &[&std::ffi::OsStr]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// `spawn`, with what the host logs (stderr, at info) written to `log`.
    pub(crate) fn spawn_logged(args: &[&std::ffi::OsStr], log: &Path) -> Self {
        Self::spawn_inner(args, &[], Some(log))
    }

    /// `spawn_logged`, with these variables added to the host's environment (`RUST_LOG`
    /// among them, for another level).
    pub(crate) fn spawn_logged_with_env(args: &[&std::ffi::OsStr], env: &[(&str, &Path)], log: &Path) -> Self {
        Self::spawn_inner(args, env, Some(log))
    }

    /// `spawn`, with these variables added to the host's environment.
    pub(crate) fn spawn_with_env(args: &[&std::ffi::OsStr], env: &[(&str, &Path)]) -> Self {
        Self::spawn_inner(args, env, None)
    }

    fn spawn_inner(args: &[&std::ffi::OsStr], env: &[(&str, &Path)], log: Option<&Path>) -> Self {
        use std::io::BufRead as _;
        // KUMO_BIN runs the same test against another build (before/after figures).
        let bin = std::env::var_os("KUMO_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_kumo").into());
        let mut child = std::process::Command::new(bin)
            .arg("host")
            .args(args)
            // Tests do not answer LAN discovery on the real network.
            .arg("--no-advertise")
            .env("RUST_LOG", if log.is_some() { "info" } else { "warn" })
            .envs(env.iter().copied())
            .stderr(log.map_or_else(std::process::Stdio::inherit, |p| std::fs::File::create(p).unwrap().into()))
            // Not the test's terminal: a host reads Enter there as a request for a new PIN.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = || {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            l
        };
        let addr = line().split_whitespace().nth(4).unwrap().parse().unwrap();
        let fingerprint = line().trim_end().rsplit(' ').next().unwrap().to_owned();
        line();
        Self { child, out, addr, fingerprint }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the host process, KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// The next line the host prints (after the first three), e.g. its pairing PIN.
    pub(crate) fn next_line(&mut self) -> String {
        use std::io::BufRead as _;
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Resident memory of process `pid`, KiB (0 if it cannot be read).
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every `.rs` file under `dir`, at any depth.
pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

//! `kumo demo`: the reference host and the client in one process, on loopback.
//!
//! Owns only the wiring: a host bound to 127.0.0.1 on a free port, and a client that pins the
//! host's fresh certificate (no verification is skipped, even on loopback). The two are paired
//! from the start: the host streams only to the client's fresh certificate, as a real host
//! streams only to clients paired with it.

use crate::client::SessionReport;
use crate::client::headless;
use crate::client::window::{self, WindowOptions};
use crate::client::{ClientConfig, StreamRequest};
use crate::core::input::script::Script;
use crate::core::trust::PairedClient;
use crate::host::{Host, HostConfig, HostTrust};
use crate::net::tls::{Fingerprint, Identity, Role, Verify};
use crate::net::trust::{ClientStore, unix_now};
use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::runtime::Runtime;

/// What the demo's client does besides streaming video.
#[derive(Debug, Clone, Default)]
pub struct DemoClient {
    /// Played into the session's input (`--input-script`).
    pub input_script: Option<Script>,
    /// Read gamepads, with these extra mappings (windowed only; `None`: no gamepads).
    pub gamepads: Option<Vec<String>>,
    /// Play the host's sound.
    pub audio: bool,
    /// Speakers to ask for instead of the device's (2, 6 or 8).
    pub speakers: Option<u8>,
    /// Record the stream into this file (`--record`).
    pub record: Option<std::path::PathBuf>,
    /// Keep this much of the stream for the save-replay hotkey (`--replay-seconds`).
    pub replay: Option<Duration>,
}

/// Runs the demo headless for `duration` (or until interrupted) and returns its outcome.
pub fn run_headless(
    rt: &Runtime,
    request: StreamRequest,
    client: DemoClient,
    duration: Option<Duration>,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<SessionReport> {
    let client = DemoClient { gamepads: None, ..client };
    run(rt, request, client, |config| {
        headless::run(rt, config, duration, interrupted, None).context("the demo's client could not start")
    })
}

/// Runs the demo in a window until it is closed (or `options.duration`, or interrupted).
pub fn run_windowed(
    rt: &Runtime,
    request: StreamRequest,
    client: DemoClient,
    options: WindowOptions,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<SessionReport> {
    run(rt, request, client, |config| window::run(rt, config, options, interrupted))
}

/// Starts the demo's host, runs `client` against it, then stops the host.
fn run(
    rt: &Runtime,
    request: StreamRequest,
    demo: DemoClient,
    client: impl FnOnce(ClientConfig) -> anyhow::Result<SessionReport>,
) -> anyhow::Result<SessionReport> {
    with_embedded_host(rt, |host, fingerprint, identity| {
        client(ClientConfig {
            identity: Some(identity),
            request,
            name: "kumo demo client".into(),
            input_script: demo.input_script,
            gamepads: demo.gamepads.is_some(),
            gamepad_mappings: demo.gamepads.unwrap_or_default(),
            audio: demo.audio,
            speakers: demo.speakers,
            record: demo.record,
            replay: demo.replay,
            ..ClientConfig::new(host, Verify::Pinned(fingerprint))
        })
    })
}

/// Starts a reference host on 127.0.0.1 (a free port), paired with a fresh client identity,
/// runs `f` with the host's address and certificate fingerprint and that identity, then stops
/// the host.
pub fn with_embedded_host<T>(
    rt: &Runtime,
    f: impl FnOnce(SocketAddr, Fingerprint, Identity) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let client = Identity::generate(Role::Client).context("making the demo client's certificate")?;
    let paired = PairedClient {
        name: "kumo demo client".into(),
        fingerprint: client.fingerprint,
        paired: unix_now(),
        revoked: None,
    };
    let host = {
        let _guard = rt.enter();
        Host::bind(HostConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            name: "kumo demo host".into(),
            max_fps: 240,
            encoder_threads: 0,
            identity: None,
            trust: HostTrust::paired(ClientStore::in_memory(vec![paired])),
            fec: crate::core::video::fec::FecMode::Auto,
            source: crate::host::desktop::Source::Scene,
            clipboard: false,
            mic: false,
        })
        .context("starting the demo's host")?
    };
    let (addr, fingerprint) = (host.local_addr(), host.fingerprint());
    let (stop_host, stop_rx) = tokio::sync::watch::channel(false);
    let host_task = rt.spawn(host.serve(stop_rx));
    let result = f(addr, fingerprint, client);
    stop_host.send(true).ok();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(3), host_task).await }).ok();
    result
}

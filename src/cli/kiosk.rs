//! `kumo kiosk`: the configured host (or the embedded demo host) in a kiosk window.

use super::client::{client_config, verify_host, window_options};
use super::report::report;
use super::tools::demo_client;
use super::{RunArgs, StreamArgs, interrupt_flag};
use anyhow::{Context as _, bail};
use kumo::client::ClientConfig;
use kumo::core::config::Settings;
use std::net::SocketAddr;
use std::process::ExitCode;

/// `kumo kiosk`: the configured host (or the embedded demo host) until the admin exit.
pub(crate) fn kiosk(
    rt: &tokio::runtime::Runtime,
    host: Option<SocketAddr>,
    host_fingerprint: Option<String>,
    run: &RunArgs,
    stream: &StreamArgs,
    mut file: Settings,
) -> anyhow::Result<ExitCode> {
    // `kumo kiosk` is kiosk mode whatever the file says.
    file.kiosk.enabled = true;
    let file = &file;
    if run.headless {
        bail!("a kiosk needs a window: leave out --headless (or use `kumo connect --headless`)");
    }
    if run.record.is_some() {
        bail!("a kiosk does not record (each session would write over the last): leave out --record");
    }
    let interrupted = interrupt_flag(rt);
    let options = window_options(run, file)?;
    let outcome = match host.or(file.kiosk.host) {
        None => {
            let client = kumo::tools::demo::DemoClient { replay: None, ..demo_client(run, file)? };
            kumo::tools::demo::run_windowed(rt, stream.request(file), client, options, &interrupted)?
        }
        Some(host) => {
            let fp = host_fingerprint.or_else(|| file.kiosk.host_fingerprint.clone());
            let verify = verify_host(host, fp.as_deref(), false).context(
                "the kiosk cannot verify its host: pair it (`kumo pair`), or set host_fingerprint in the config file's [kiosk] section",
            )?;
            // A kiosk reconnects for ever.
            // A kiosk keeps nothing of the stream (its hotkeys are off): no replay buffer.
            // Nor does it share a clipboard: the next player would find the last one's copy.
            let config = ClientConfig {
                reconnect_timeout: None,
                replay: None,
                clipboard: false,
                ..client_config(host, verify, "kumo kiosk", run, stream, file)?
            };
            kumo::client::window::run(rt, config, options, &interrupted)?
        }
    };
    report(&outcome, run.stats_json.as_ref())
}

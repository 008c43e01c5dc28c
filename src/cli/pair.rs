//! `kumo pair` and `kumo list`: the client's side of pairing, and the hosts on the LAN.

use anyhow::{Context as _, bail};
use kumo::core::trust::{Pin, date};
use kumo::core::wire::PROTOCOL_VERSION;
use kumo::net::tls::{Fingerprint, Identity, Role};
use kumo::net::trust::KnownHosts;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// `kumo pair HOST`: asks for the PIN, pairs, and keeps the host's fingerprint.
pub(crate) fn pair(
    rt: &tokio::runtime::Runtime,
    host: SocketAddr,
    pin: Option<String>,
    name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let Some(dir) = kumo::config::default_client_dir() else {
        bail!("this system has no home folder to keep the pairing in");
    };
    let identity = Identity::load_or_create(&dir, Role::Client)?;
    let pin = if let Some(text) = pin {
        text
    } else {
        eprint!("PIN shown by host {host}: ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("could not read the PIN")?;
        line
    };
    let pin = Pin::parse(pin.trim())?;
    let name = name
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "kumo client".into());
    let paired = rt.block_on(kumo::net::pair::pair(host, &identity, &name, pin, kumo::client::CONNECT_TIMEOUT))?;
    let known = KnownHosts::in_dir(&dir);
    let old = known.remember(kumo::net::trust::KnownHost {
        address: host,
        name: paired.host_name.clone(),
        fingerprint: paired.host_fingerprint,
        paired: kumo::net::trust::unix_now(),
    })?;
    println!("paired with host '{}' at {host} (certificate SHA-256: {})", paired.host_name, paired.host_fingerprint);
    if let Some(old) = old.filter(|o| o.fingerprint != paired.host_fingerprint) {
        println!("this replaces the certificate paired on {}: {}", date(old.paired), old.fingerprint);
    }
    println!("connect with: kumo connect {host}");
    Ok(ExitCode::SUCCESS)
}

/// `kumo list`: the hosts that answer on the LAN, and whether this client is paired with each.
pub(crate) fn list_hosts(rt: &tokio::runtime::Runtime, wait: f64) -> anyhow::Result<ExitCode> {
    let wait =
        Duration::try_from_secs_f64(wait).with_context(|| format!("--wait {wait} is not a number of seconds"))?;
    let found = rt
        .block_on(kumo::net::discovery::browse(wait))
        .context("could not ask the local network (multicast DNS on UDP port 5353)")?;
    let known = match kumo::config::default_client_dir() {
        Some(dir) => KnownHosts::in_dir(&dir).list()?,
        None => Vec::new(),
    };
    if found.is_empty() {
        println!(
            "no kumo hosts answered within {wait:?}; a host must run `kumo host` on this network, and its firewall must let UDP port 5353 in"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("{:<24} {:<22} {:<8} fingerprint", "name", "address", "paired");
    for f in found {
        let fp = Fingerprint::parse(&f.advert.fingerprint).ok();
        let paired = match known.iter().find(|k| Some(k.fingerprint) == fp) {
            Some(k) if k.address == f.address => "yes".to_owned(),
            Some(k) => format!("yes, as {}", k.address),
            None => "no".to_owned(),
        };
        let version = if f.advert.protocol == PROTOCOL_VERSION {
            String::new()
        } else {
            format!(" (protocol v{})", f.advert.protocol)
        };
        println!("{:<24} {:<22} {paired:<8} {}{version}", f.advert.name, f.address, f.advert.fingerprint);
    }
    Ok(ExitCode::SUCCESS)
}

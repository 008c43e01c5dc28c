//! `kumo host`: the host's configuration from its flags, the paired clients' list and
//! revocation, and serving: the PIN offered on `--pair`, on Enter or on SIGUSR1, and LAN
//! discovery.

use super::HostArgs;
use anyhow::bail;
use kumo::core::trust::{Pin, date};
use kumo::core::wire::PROTOCOL_VERSION;
use kumo::host::app::AppConfig;
use kumo::host::desktop::Source;
use kumo::host::{Host, HostConfig, HostTrust};
use kumo::net::trust::ClientStore;
use std::process::ExitCode;

/// `kumo host`: its flags made into the host's configuration and what to do with it.
pub(crate) fn run(rt: &tokio::runtime::Runtime, args: HostArgs) -> anyhow::Result<ExitCode> {
    let HostArgs {
        listen,
        name,
        max_fps,
        encoder_threads,
        fec,
        identity,
        ephemeral,
        pair,
        allow_unpaired,
        list_clients,
        revoke,
        no_advertise,
        display,
        monitor,
        app,
        app_server,
        clipboard,
        no_mic,
    } = args;
    let identity = (!ephemeral).then(|| identity.or_else(kumo::config::default_identity_dir)).flatten();
    let source = source_of(display, monitor, app, app_server);
    let trust = HostTrust::open();
    let mic = !no_mic;
    let config = HostConfig { listen, name, max_fps, encoder_threads, identity, trust, fec, source, clipboard, mic };
    let serve = HostAction::Serve { pair, allow_unpaired, advertise: !no_advertise };
    let what = if list_clients { HostAction::ListClients } else { revoke.map_or(serve, HostAction::Revoke) };
    host_command(rt, config, what)
}

/// What `kumo host` streams: `--display` (with `--monitor`, which means nothing without it),
/// `--app` (with `--app-server`), or the scene.
fn source_of(display: Option<String>, monitor: Option<usize>, app: Option<String>, server: Option<String>) -> Source {
    match (display, app) {
        (Some(display), _) => Source::Display { display, monitor },
        (None, Some(command)) => Source::App(AppConfig { command, server }),
        (None, None) => Source::Scene,
    }
}

/// What `kumo host` was asked to do besides its configuration.
enum HostAction {
    /// Print the paired clients and exit (`--list-clients`).
    ListClients,
    /// Revoke this client and exit (`--revoke`).
    Revoke(String),
    /// Serve: offering a pairing PIN (`--pair`), to any client paired or not
    /// (`--allow-unpaired`), answering discovery on the LAN (not `--no-advertise`).
    Serve { pair: bool, allow_unpaired: bool, advertise: bool },
}

/// `kumo host`: lists or revokes paired clients, or serves (offering a PIN with `--pair`).
fn host_command(rt: &tokio::runtime::Runtime, config: HostConfig, what: HostAction) -> anyhow::Result<ExitCode> {
    let clients = match &config.identity {
        Some(dir) => ClientStore::in_dir(dir),
        None => ClientStore::in_memory(Vec::new()),
    };
    let (pair, allow_unpaired, advertise) = match what {
        HostAction::ListClients => return list_paired(&clients),
        HostAction::Revoke(which) => {
            let revoked = clients.revoke(&which)?;
            let name = kumo::core::trust::printable(&revoked.name);
            println!("revoked {name} ({}); it can no longer stream from this host", revoked.fingerprint);
            return Ok(ExitCode::SUCCESS);
        }
        HostAction::Serve { pair, allow_unpaired, advertise } => (pair, allow_unpaired, advertise),
    };
    let pin = pair.then(random_pin).transpose()?;
    let trust = HostTrust { require_pairing: !allow_unpaired, pin, ..HostTrust::paired(clients) };
    host(rt, HostConfig { trust, ..config }, advertise)
}

/// `kumo host --list-clients`.
fn list_paired(clients: &ClientStore) -> anyhow::Result<ExitCode> {
    let list = clients.list()?;
    if list.is_empty() {
        println!("no paired clients; pair one with `kumo host --pair` here and `kumo pair ADDRESS` on the client");
    }
    for c in list {
        let state = match c.revoked {
            Some(when) => format!("revoked {}", date(when)),
            None => format!("paired {}", date(c.paired)),
        };
        println!("{:<24} {} {state}", kumo::core::trust::printable(&c.name), c.fingerprint);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kumo host`: serves until Ctrl-C.
fn host(rt: &tokio::runtime::Runtime, config: HostConfig, advertise: bool) -> anyhow::Result<ExitCode> {
    let _guard = rt.enter();
    let source = config.source.clone();
    let (require_pairing, pin, name) = (config.trust.require_pairing, config.trust.pin, config.name.clone());
    let host = Host::bind(config)?;
    let addr = host.local_addr();
    let fingerprint = host.fingerprint();
    // What a client types to reach this host: a wildcard address is no use to it.
    let reach =
        if addr.ip().is_unspecified() { format!("<this machine's address>:{}", addr.port()) } else { addr.to_string() };
    // Listening for the request before saying it can be made.
    if require_pairing {
        offer_pins_on_request(rt, &host.pairing(), reach.clone());
    }
    if let (Some(kind), Source::Display { display: name, .. }) = (kumo::host::desktop::wayland_session(), &source) {
        tracing::warn!(
            "this is a {kind} desktop: X display {name} (Xwayland) shows only X11 programs, and native Wayland windows stay black; `--app COMMAND` streams a program on a private X server instead"
        );
    }
    println!("kumo host listening on {addr} (UDP), protocol v{PROTOCOL_VERSION}");
    println!("certificate SHA-256: {fingerprint}");
    match (require_pairing, pin) {
        (false, _) => {
            tracing::warn!("streaming to ANY client that reaches this port (--allow-unpaired)");
            println!("connect with: kumo connect {reach} --host-fingerprint {fingerprint} --headless");
        }
        (true, Some(_)) => println!("streams to paired clients only; pair a client with: kumo pair {reach}"),
        (true, None) => println!(
            "streams to paired clients only; to pair one, press Enter here (or `kill -USR1 {}`) for a PIN, and run `kumo pair {reach}` on the client",
            std::process::id()
        ),
    }
    if let Some(pin) = pin {
        print_pin(pin, &reach);
    }

    let advert = kumo::core::wire::mdns::Advert {
        name,
        port: addr.port(),
        protocol: PROTOCOL_VERSION,
        fingerprint: fingerprint.to_string(),
    };
    let _advertiser = if advertise {
        kumo::net::discovery::advertise(advert, addr.ip())
            .inspect_err(|err| {
                tracing::warn!(
                    "LAN discovery is off (could not use UDP port 5353: {err}); clients can still connect by address"
                );
            })
            .ok()
    } else {
        None
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.send(true).ok();
        }
    });
    rt.block_on(host.serve(stop_rx));
    Ok(ExitCode::SUCCESS)
}

fn print_pin(pin: Pin, reach: &str) {
    println!(
        "pairing PIN: {pin} (good for 5 minutes and 3 tries): on the client run `kumo pair {reach}`; press Enter here (or `kill -USR1 {}`) for a new PIN",
        std::process::id()
    );
}

/// Offers a new pairing PIN, without a restart, each time the operator presses Enter in the
/// host's terminal or sends it SIGUSR1 (a service: `systemctl kill -s USR1 kumo-host`).
fn offer_pins_on_request(rt: &tokio::runtime::Runtime, offer: &std::sync::Arc<kumo::net::pair::Offer>, reach: String) {
    let reach = std::sync::Arc::new(reach);
    let new_pin = {
        let offer = offer.clone();
        move || match random_pin() {
            Ok(pin) => {
                offer.open(pin);
                print_pin(pin, &reach);
            }
            Err(err) => tracing::error!("{err:#}"),
        }
    };
    let on_signal = new_pin.clone();
    // Registered now (in the runtime's context), so a signal sent from here on is not fatal.
    let usr1 = {
        let _guard = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
    };
    match usr1 {
        Ok(mut usr1) => {
            rt.spawn(async move {
                while usr1.recv().await.is_some() {
                    on_signal();
                }
            });
        }
        Err(err) => tracing::warn!("SIGUSR1 will not offer a new PIN: {err}"),
    }
    // Lines typed in the terminal; a host without one (a service, a pipe) has only the signal.
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        std::thread::Builder::new()
            .name("kumo-terminal".into())
            .spawn(move || {
                for line in std::io::stdin().lines() {
                    if line.is_err() {
                        break;
                    }
                    new_pin();
                }
            })
            .ok();
    }
}

/// A random pairing PIN from the system's randomness.
fn random_pin() -> anyhow::Result<Pin> {
    use ring::rand::SecureRandom as _;
    let rng = ring::rand::SystemRandom::new();
    let mut failed = false;
    let pin = Pin::random(|| {
        let mut bytes = [0; 4];
        failed |= rng.fill(&mut bytes).is_err();
        u32::from_le_bytes(bytes)
    });
    if failed {
        bail!("the system's random number source failed; cannot make a pairing PIN");
    }
    Ok(pin)
}

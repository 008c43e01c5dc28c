//! Pairing and trust end to end over loopback, with real QUIC, TLS and SPAKE2: a PIN pairs a
//! client, which then streams while others are refused; wrong PINs cost tries; a replayed run
//! pairs nothing; a changed host certificate is refused; and the CLI keeps both sides' records
//! (`kumo host --pair`, `kumo pair`, `kumo connect`, `--list-clients`, `--revoke`).

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::{HostProcess, TestHost, client_config, host_config, start_host_with};
use kumo::client::{self, ClientError};
use kumo::core::input::script::Script;
use kumo::core::input::{InputState, Press};
use kumo::core::trust::{Pin, Standing};
use kumo::core::wire::InputDatagram;
use kumo::core::wire::{Control, PROTOCOL_VERSION, RejectReason};
use kumo::host::HostTrust;
use kumo::net;
use kumo::net::pair::{self, ClientRun, PairError};
use kumo::net::tls::{self, Identity, Role};
use kumo::net::trust::ClientStore;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kumo-pairing-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pin(text: &str) -> Pin {
    Pin::parse(text).unwrap()
}

/// A host called "den" that streams to paired clients only, keeping them in `store`, with
/// `offer` on offer from the start.
fn paired_host(store: ClientStore, offer: Option<Pin>) -> TestHost {
    let trust = HostTrust { pin: offer, ..HostTrust::paired(store) };
    start_host_with(kumo::runtime().unwrap(), host_config("den", trust))
}

fn client_identity() -> Identity {
    Identity::generate(Role::Client).unwrap()
}

fn pair_with(host: &TestHost, identity: &Identity, name: &str, with: Pin) -> Result<pair::Paired, PairError> {
    host.rt.block_on(pair::pair(host.addr, identity, name, with, Duration::from_secs(5)))
}

#[test]
fn a_pin_pairs_a_client_which_then_streams_while_others_are_refused() {
    let dir = scratch("e2e");
    let host = paired_host(ClientStore::in_dir(&dir), Some(pin("246-810")));
    let deck = client_identity();

    let paired = pair_with(&host, &deck, "deck", pin("246810")).unwrap();
    assert_eq!(paired.host_name, "den");
    assert_eq!(paired.host_fingerprint, host.fingerprint, "the client learnt the host's real certificate");
    // Stored on the host side, in its file (as `kumo host --list-clients` reads it).
    match ClientStore::in_dir(&dir).standing(deck.fingerprint).unwrap() {
        Standing::Paired(c) => assert_eq!(c.name, "deck"),
        other => panic!("the host did not keep the client: {other:?}"),
    }

    // An unpaired certificate, and no certificate at all, are refused with what to do.
    for (who, identity) in [("an unpaired client", Some(client_identity())), ("a client with no certificate", None)] {
        let err = host.rt.block_on(client::connect(client_config(host.addr, host.fingerprint, identity))).err();
        match err {
            Some(ClientError::NotPaired { message, .. }) => {
                assert!(message.contains("not paired with host 'den'") && message.contains("kumo pair"), "{message}");
            }
            other => panic!("{who} was not refused as unpaired: {other:?}"),
        }
    }

    // An unpaired client is refused at its Hello, and what it sends then (datagrams, presses)
    // never reaches the game; the host closes with NOT_PAIRED.
    let stranger = client_identity();
    let closed = host.rt.block_on(async {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let (quic, _) =
            tls::client_config(tls::Verify::Pinned(host.fingerprint), Some(&stranger), net::transport()).unwrap();
        let conn = endpoint.connect_with(quic, host.addr, "kumo-host").unwrap().await.unwrap();
        let state = InputState { keys: [1 << 44, 0, 0, 0], ..InputState::default() };
        let input = |seq| InputDatagram { seq, client_micros: 1, state }.encode();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let hello = kumo::core::wire::Hello {
            version: PROTOCOL_VERSION,
            width: 640,
            height: 360,
            fps: 30,
            bitrate_kbps: 2000,
            max_width: 640,
            max_height: 360,
            client_name: "stranger".into(),
            audio_channels: 0,
            resume_token: 0,
            capabilities: kumo::core::wire::Capabilities::THIS_BUILD,
            start_kbps: 0,
        };
        net::write_control(&mut send, &Control::Hello(hello)).await.unwrap();
        let reply = net::read_control(&mut recv).await.unwrap();
        assert!(matches!(reply, Control::Reject { reason: RejectReason::NotPaired, .. }), "{reply:?}");
        net::write_control(&mut send, &Control::Presses(vec![Press { device: 0, code: 44, down: true }])).await.ok();
        for seq in 1..40 {
            conn.send_datagram(input(seq).into()).ok();
        }
        tokio::time::timeout(Duration::from_secs(5), conn.closed()).await.unwrap()
    });
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => assert_eq!(close.error_code, net::close::NOT_PAIRED),
        other => panic!("the host did not close with NOT_PAIRED: {other}"),
    }
    let report = host.game.report();
    assert_eq!((report.input_seq, report.presses), (0, 0), "an unpaired client's input reached the game");

    // The paired client streams, and its input does reach the game.
    let mut config = client_config(host.addr, paired.host_fingerprint, Some(deck.clone()));
    config.input_script =
        Some(Script::parse("100 mouse move 50 0\n200 key Space down\n300 key Space up\n400 end").unwrap());
    let session = host.rt.block_on(client::connect(config)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pictures = 0;
    while Instant::now() < deadline && (pictures < 10 || host.game.report().presses == 0) {
        pictures += usize::from(session.slot.take().0.is_some());
        while session.events.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pictures >= 10, "the paired client got {pictures} pictures");
    assert!(host.game.report().presses > 0, "the paired client's input did not reach the game");

    // Revoked from another process's view of the same file: the session ends within seconds,
    // and the client cannot come back.
    let revoked = ClientStore::in_dir(&dir).revoke("deck").unwrap();
    assert_eq!(revoked.fingerprint, deck.fingerprint);
    match host.rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), session.finish()).await }) {
        Ok(Err(ClientError::NotPaired { message, .. })) => assert!(message.contains("revoked"), "{message}"),
        Ok(other) => panic!("the revoked session ended as {other:?}"),
        Err(elapsed) => panic!("a revoked client kept streaming: {elapsed}"),
    }
    match host.rt.block_on(client::connect(client_config(host.addr, host.fingerprint, Some(deck)))).err() {
        Some(ClientError::NotPaired { message, .. }) => assert!(message.contains("revoked"), "{message}"),
        other => panic!("a revoked client was not refused: {other:?}"),
    }
    host.stop.send(true).ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wrong_pins_cost_tries_and_a_pin_pairs_one_client() {
    let host = paired_host(ClientStore::in_memory(Vec::new()), Some(pin("111-222")));
    let (deck, laptop) = (client_identity(), client_identity());
    let standing = |id: &Identity| {
        // The store is in memory: ask the host by connecting.
        host.rt
            .block_on(client::connect(client_config(host.addr, host.fingerprint, Some(id.clone()))))
            .map(|s| s.stop())
    };

    match pair_with(&host, &deck, "deck", pin("111-223")) {
        Err(PairError::WrongPin { message, .. }) => assert!(message.contains("2 tries left"), "{message}"),
        other => panic!("a wrong PIN paired: {other:?}"),
    }
    assert!(matches!(standing(&deck), Err(ClientError::NotPaired { .. })), "a wrong PIN stored the client");
    pair_with(&host, &deck, "deck", pin("111222")).unwrap();
    assert!(standing(&deck).is_ok(), "the right PIN then pairs");
    // A PIN pairs one client.
    match pair_with(&host, &laptop, "laptop", pin("111222")) {
        Err(PairError::Closed { message, .. }) => assert!(message.contains("already paired"), "{message}"),
        other => panic!("a used PIN paired again: {other:?}"),
    }

    // Three wrong PINs close pairing, even for the right one afterwards.
    host.pairing.open(pin("333-444"));
    for (i, left) in ["2 tries left", "1 try left", "last try"].iter().enumerate() {
        match pair_with(&host, &laptop, "laptop", pin(&format!("00000{i}"))) {
            Err(PairError::WrongPin { message, .. }) => assert!(message.contains(left), "{message}"),
            other => panic!("wrong PIN {i} gave {other:?}"),
        }
    }
    match pair_with(&host, &laptop, "laptop", pin("333444")) {
        Err(PairError::Closed { message, .. }) => {
            assert!(message.contains("3 wrong PINs") && message.contains("for a new PIN"), "{message}");
        }
        other => panic!("pairing stayed open after 3 wrong PINs: {other:?}"),
    }
    assert!(matches!(standing(&laptop), Err(ClientError::NotPaired { .. })));
    host.stop.send(true).ok();
}

/// One pairing run driven by hand: the messages the client sent, and the host's last answer.
async fn run_by_hand(
    host: &TestHost,
    identity: &Identity,
    replay: Option<&(Control, Control)>,
) -> ((Control, Control), Control) {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let (quic, seen) = tls::pairing_client_config(identity, net::transport()).unwrap();
    let conn = endpoint.connect_with(quic, host.addr, "kumo-host").unwrap().await.unwrap();
    let exporter = pair::exporter(&conn).unwrap();
    let (run, fresh_request) =
        ClientRun::start(pin("555-666"), "replayer", identity.fingerprint, seen.get().unwrap(), exporter);
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let request = replay.map_or(fresh_request, |r| r.0.clone());
    net::write_control(&mut send, &request).await.unwrap();
    let challenge = net::read_control(&mut recv).await.unwrap();
    let Control::PairChallenge { host_name, pake } = &challenge else {
        conn.close(0u32.into(), b"");
        return ((request, challenge.clone()), challenge);
    };
    let confirm = match replay {
        Some(r) => r.1.clone(),
        None => run.confirm(host_name, pake).unwrap().0,
    };
    net::write_control(&mut send, &confirm).await.unwrap();
    let last = net::read_control(&mut recv).await.unwrap();
    conn.close(0u32.into(), b"");
    ((request, confirm), last)
}

#[test]
fn a_replayed_pairing_pairs_nothing() {
    let host = paired_host(ClientStore::in_memory(Vec::new()), Some(pin("555-666")));
    let (honest, attacker) = (client_identity(), client_identity());
    let (recorded, last) = host.rt.block_on(run_by_hand(&host, &honest, None));
    assert!(matches!(last, Control::Paired { .. }), "the honest run failed: {last:?}");

    // The same messages again, from another certificate: the PIN is spent.
    let (_, last) = host.rt.block_on(run_by_hand(&host, &attacker, Some(&recorded)));
    assert!(matches!(last, Control::Reject { reason: RejectReason::PairingClosed, .. }), "{last:?}");
    // Even with the same PIN offered again, the old confirmation does not fit the new run.
    host.pairing.open(pin("555-666"));
    let (_, last) = host.rt.block_on(run_by_hand(&host, &attacker, Some(&recorded)));
    assert!(matches!(last, Control::Reject { reason: RejectReason::WrongPin, .. }), "{last:?}");
    // And from the honest client's own certificate too (a new connection, a new exporter).
    let (_, last) = host.rt.block_on(run_by_hand(&host, &honest, Some(&recorded)));
    assert!(matches!(last, Control::Reject { reason: RejectReason::WrongPin, .. }), "{last:?}");
    let refused = host.rt.block_on(client::connect(client_config(host.addr, host.fingerprint, Some(attacker))));
    assert!(matches!(refused, Err(ClientError::NotPaired { .. })), "a replay paired the attacker");
    host.stop.send(true).ok();
}

/// A run whose proof is bound to the wrong connection or the wrong host certificate, as a
/// relay terminating TLS on both sides would make it: the host refuses it even with the right
/// PIN, and stores nothing.
async fn run_unbound(host: &TestHost, identity: &Identity, wrong_exporter: bool) -> Control {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let (quic, seen) = tls::pairing_client_config(identity, net::transport()).unwrap();
    let conn = endpoint.connect_with(quic, host.addr, "kumo-host").unwrap().await.unwrap();
    let (mut exporter, mut host_fp) = (pair::exporter(&conn).unwrap(), seen.get().unwrap());
    if wrong_exporter {
        exporter[0] ^= 1;
    } else {
        host_fp.0[0] ^= 1;
    }
    let (run, request) = ClientRun::start(pin("555-666"), "relayed", identity.fingerprint, host_fp, exporter);
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    net::write_control(&mut send, &request).await.unwrap();
    let Control::PairChallenge { host_name, pake } = net::read_control(&mut recv).await.unwrap() else {
        panic!("no challenge")
    };
    net::write_control(&mut send, &run.confirm(&host_name, &pake).unwrap().0).await.unwrap();
    let last = net::read_control(&mut recv).await.unwrap();
    conn.close(0u32.into(), b"");
    last
}

#[test]
fn the_proof_is_bound_to_the_connection_and_the_host_certificate() {
    let host = paired_host(ClientStore::in_memory(Vec::new()), Some(pin("555-666")));
    let deck = client_identity();
    for wrong_exporter in [true, false] {
        let last = host.rt.block_on(run_unbound(&host, &deck, wrong_exporter));
        assert!(matches!(last, Control::Reject { reason: RejectReason::WrongPin, .. }), "{last:?}");
    }
    let refused = host.rt.block_on(client::connect(client_config(host.addr, host.fingerprint, Some(deck.clone()))));
    assert!(matches!(refused, Err(ClientError::NotPaired { .. })), "an unbound proof paired");
    // The same client, bound right, with the third try.
    assert!(matches!(host.rt.block_on(run_by_hand(&host, &deck, None)).1, Control::Paired { .. }));
    host.stop.send(true).ok();
}

#[test]
fn a_changed_host_certificate_is_refused() {
    let dir = scratch("changed");
    let store = ClientStore::in_dir(&dir);
    let first = paired_host(store, Some(pin("777-888")));
    let deck = client_identity();
    let paired = pair_with(&first, &deck, "deck", pin("777888")).unwrap();
    let addr = first.addr;
    first.stop.send(true).ok();
    drop(first);
    // Same port, same paired clients, a new certificate (its identity folder was reset).
    let trust = HostTrust::paired(ClientStore::in_dir(&dir));
    let second =
        start_host_with(kumo::runtime().unwrap(), kumo::host::HostConfig { listen: addr, ..host_config("den", trust) });
    assert_ne!(second.fingerprint, paired.host_fingerprint);
    let result = second.rt.block_on(client::connect(client_config(addr, paired.host_fingerprint, Some(deck))));
    match result.err() {
        Some(err @ ClientError::FingerprintMismatch { .. }) => {
            let text = err.to_string();
            assert!(text.contains("pair again") && text.contains(&paired.host_fingerprint.to_string()), "{text}");
        }
        other => panic!("a host with a new certificate was trusted: {other:?}"),
    }
    second.stop.send(true).ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `kumo` with its data folder (client identity, known hosts) in `data`.
fn kumo(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kumo"))
        .args(args)
        .env("XDG_DATA_HOME", data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_pairs_connects_lists_and_revokes() {
    let dir = scratch("cli");
    let identity = dir.join("host");
    let id = identity.to_str().unwrap();
    let mut host = HostProcess::spawn(&[
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--identity".as_ref(),
        id.as_ref(),
        "--pair".as_ref(),
    ]);
    let offer = host.next_line();
    let shown = offer.split_whitespace().nth(2).unwrap_or_default().to_owned();
    assert!(offer.starts_with("pairing PIN: ") && Pin::parse(&shown).is_ok(), "{offer}");
    let addr = host.addr.to_string();
    let (data, stranger) = (dir.join("data"), dir.join("stranger"));

    // Not paired yet: connect says how to pair.
    let (ok, _, err) = kumo(&data, &["connect", &addr, "--headless", "--duration", "1", "--no-audio"]);
    assert!(!ok && err.contains(&format!("kumo pair {addr}")), "{err}");

    let (ok, out, err) = kumo(&data, &["pair", &addr, "--pin", &shown, "--name", "ci box"]);
    assert!(ok, "pairing failed: {err}");
    assert!(out.contains("paired with host 'kumo host'") && out.contains(&host.fingerprint), "{out}");
    let known = std::fs::read_to_string(data.join("kumo/client/known-hosts.toml")).unwrap();
    assert!(known.contains(&host.fingerprint) && known.contains(&addr), "{known}");

    // No fingerprint needed now: pairing kept it.
    let (ok, out, err) = kumo(&data, &["connect", &addr, "--headless", "--duration", "2", "--no-audio"]);
    assert!(ok, "the paired client could not stream: {err}");
    assert!(out.contains("frames"), "{out}");
    // Another client, told the fingerprint but never paired, is refused by the host.
    let (ok, _, err) =
        kumo(&stranger, &["connect", &addr, "--host-fingerprint", &host.fingerprint, "--headless", "--duration", "2"]);
    assert!(!ok && err.contains("not paired"), "{err}");

    let (ok, out, _) = kumo(&data, &["host", "--identity", id, "--list-clients"]);
    assert!(ok && out.contains("ci box") && out.contains("paired "), "{out}");
    let (ok, out, err) = kumo(&data, &["host", "--identity", id, "--revoke", "ci box"]);
    assert!(ok && out.contains("revoked ci box"), "{out}{err}");
    let (ok, _, err) = kumo(&data, &["connect", &addr, "--headless", "--duration", "2", "--no-audio"]);
    assert!(!ok && err.contains("revoked"), "a revoked client streamed: {err}");
    let (_, out, _) = kumo(&data, &["host", "--identity", id, "--list-clients"]);
    assert!(out.contains("revoked "), "{out}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}

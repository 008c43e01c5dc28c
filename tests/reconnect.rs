//! Session faults end to end: a network blackout through the project's relay, a host restart,
//! a host gone for good, a client moving to a new socket (QUIC migration), and a client that
//! vanishes without a word. Real host, real client, quinn on loopback, openh264 both ends.

mod common;

use kumo::client::{self, ClientConfig, ClientError, Session, StreamRequest};
use kumo::core::sim::impair::{Change, Impairment};
use kumo::core::stats::Event;
use kumo::host::HostConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

fn host_config(listen: SocketAddr, identity: Option<&Path>) -> HostConfig {
    HostConfig {
        listen,
        identity: identity.map(Path::to_path_buf),
        ..common::host_config("reconnect test host", kumo::host::HostTrust::open())
    }
}

/// Starts a host; returns its address, fingerprint and the sender that stops it.
fn start_host(
    rt: &Runtime,
    config: HostConfig,
) -> (SocketAddr, kumo::net::tls::Fingerprint, tokio::sync::watch::Sender<bool>) {
    let (host, stop) = common::spawn_host(rt, config);
    (host.addr, host.fingerprint, stop)
}

fn client_config(
    target: SocketAddr,
    fingerprint: kumo::net::tls::Fingerprint,
    reconnect: Option<Duration>,
) -> ClientConfig {
    ClientConfig {
        request: StreamRequest {
            width: 640,
            height: 360,
            fps: 60,
            bitrate_kbps: 2000,
            min_bitrate_kbps: None,
            adapt_size: false,
        },
        name: "reconnect test client".into(),
        connect_timeout: Duration::from_secs(5),
        reconnect_timeout: reconnect,
        ..common::client_config(target, fingerprint, None)
    }
}

/// What a session reported, each event with the moment the test saw it.
#[derive(Default)]
struct Seen {
    decoded: Vec<Instant>,
    reconnecting: Vec<(Instant, u32, String)>,
    reconnected: Vec<(Instant, u64)>,
    idr_requests: u64,
}

impl Seen {
    /// Reads the session's events for `time` (polling every 2 ms, so times are that close).
    fn watch(&mut self, session: &Session, time: Duration) {
        let until = Instant::now() + time;
        while Instant::now() < until {
            while let Ok(event) = session.events.try_recv() {
                let now = Instant::now();
                match event {
                    Event::Decoded(_) => self.decoded.push(now),
                    Event::Reconnecting { attempt, reason } => self.reconnecting.push((now, attempt, reason)),
                    Event::Reconnected { outage_micros } => self.reconnected.push((now, outage_micros)),
                    Event::IdrRequested => self.idr_requests += 1,
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn decoded_between(&self, from: Instant, to: Instant) -> usize {
        self.decoded.iter().filter(|&&t| t >= from && t < to).count()
    }

    fn first_decoded_after(&self, t: Instant) -> Option<Instant> {
        self.decoded.iter().copied().find(|&d| d > t)
    }
}

fn finish(rt: &Runtime, session: Session) -> Result<client::End, ClientError> {
    session.stop();
    rt.block_on(session.finish())
}

#[test]
fn a_five_second_blackout_shows_reconnecting_and_resumes_within_a_second_of_the_network_returning() {
    let rt = kumo::runtime().unwrap();
    let (host, fingerprint, stop_host) = start_host(&rt, host_config(([127, 0, 0, 1], 0).into(), None));
    // 20 ms RTT, then the path goes dark for 5 s at t = 3 s.
    let impairment = Impairment {
        delay: Duration::from_millis(10),
        schedule: vec![(Duration::from_secs(3), Change::Blackout(Duration::from_secs(5)))],
        ..Impairment::default()
    };
    let relay = rt.block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), host, impairment)).unwrap();
    let relay_started = Instant::now();
    let session =
        rt.block_on(client::connect(client_config(relay.addr, fingerprint, Some(Duration::from_secs(30))))).unwrap();
    let mut seen = Seen::default();
    seen.watch(&session, Duration::from_secs(11));
    let end = finish(&rt, session);
    stop_host.send(true).ok();
    let (dark, back) = (relay_started + Duration::from_secs(3), relay_started + Duration::from_secs(8));

    assert!(end.is_ok(), "the session survives the blackout: {end:?}");
    assert!(seen.decoded_between(relay_started, dark) > 60, "streaming before the blackout");
    // The fault is noticed (no packets for a second) and said: attempt 0, then attempts.
    let (noticed, _, reason) = seen.reconnecting.first().expect("a Reconnecting event").clone();
    let noticed_after = noticed.duration_since(dark);
    assert!(noticed_after < Duration::from_millis(1600), "noticed {noticed_after:?} into the blackout: {reason}");
    assert!(seen.reconnecting.iter().any(|r| r.1 >= 3), "several attempts during 5 s: {:?}", seen.reconnecting.len());
    assert_eq!(seen.reconnected.len(), 1, "exactly one reconnection");
    // Back within a second of the path returning: the new handshake, and a picture.
    let resumed = seen.first_decoded_after(back).expect("pictures after the blackout");
    let resume = resumed.duration_since(back);
    eprintln!("blackout 5 s: noticed after {noticed_after:?}, first picture {resume:?} after the path returned");
    assert!(resume < Duration::from_secs(1), "first picture {resume:?} after the network returned");
    assert!(seen.decoded_between(back + Duration::from_secs(1), back + Duration::from_secs(3)) > 60, "streaming again");
}

#[test]
fn a_restarted_host_with_its_kept_identity_takes_the_client_back() {
    let dir = std::env::temp_dir().join(format!("kumo-reconnect-identity-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let rt = kumo::runtime().unwrap();
    let (addr, fingerprint, stop_host) = start_host(&rt, host_config(([127, 0, 0, 1], 0).into(), Some(&dir)));
    let session =
        rt.block_on(client::connect(client_config(addr, fingerprint, Some(Duration::from_secs(30))))).unwrap();
    let mut seen = Seen::default();
    seen.watch(&session, Duration::from_secs(2));
    // The host stops (says goodbye) and comes back 2 s later on the same port.
    stop_host.send(true).ok();
    let stopped = Instant::now();
    seen.watch(&session, Duration::from_secs(2));
    let (again, fingerprint_again, stop_again) = start_host(&rt, host_config(addr, Some(&dir)));
    let restarted = Instant::now();
    assert_eq!((again, fingerprint_again), (addr, fingerprint), "same port, same certificate");
    seen.watch(&session, Duration::from_secs(3));
    let end = finish(&rt, session);
    stop_again.send(true).ok();
    std::fs::remove_dir_all(&dir).ok();

    assert!(end.is_ok(), "{end:?}");
    let reasons: Vec<&str> = seen.reconnecting.iter().map(|r| r.2.as_str()).collect();
    assert!(reasons.first().is_some_and(|r| r.contains("shut down")), "the client says why: {reasons:?}");
    assert!(seen.reconnecting[0].0.duration_since(stopped) < Duration::from_millis(500), "noticed at once");
    assert_eq!(seen.reconnected.len(), 1);
    let resume = seen.first_decoded_after(restarted).expect("pictures from the new host").duration_since(restarted);
    eprintln!("host restart: first picture {resume:?} after the new host started");
    assert!(resume < Duration::from_secs(1), "{resume:?}");
}

#[test]
fn a_host_gone_for_good_ends_in_a_clear_error_after_the_reconnect_timeout() {
    let rt = kumo::runtime().unwrap();
    let (addr, fingerprint, stop_host) = start_host(&rt, host_config(([127, 0, 0, 1], 0).into(), None));
    let session = rt.block_on(client::connect(client_config(addr, fingerprint, Some(Duration::from_secs(2))))).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop_host.send(true).ok();
    let stopped = Instant::now();
    // No stop from the test: the session must end by itself.
    let end = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), session.finish()).await });
    let waited = stopped.elapsed();
    let err = end.expect("the session ends by itself, it does not hang").expect_err("an error");
    let text = err.to_string();
    assert!(matches!(err, ClientError::GaveUp { secs: 2, .. }), "{err:?}");
    assert!(text.contains("has not come back for 2 s") && text.contains("--reconnect-timeout"), "{text}");
    assert!((Duration::from_secs(2)..Duration::from_secs(4)).contains(&waited), "gave up after {waited:?}");
}

#[test]
fn a_client_moving_to_a_new_socket_keeps_its_session_by_migration() {
    let rt = kumo::runtime().unwrap();
    let (addr, fingerprint, stop_host) = start_host(&rt, host_config(([127, 0, 0, 1], 0).into(), None));
    let session =
        rt.block_on(client::connect(client_config(addr, fingerprint, Some(Duration::from_secs(30))))).unwrap();
    let mut seen = Seen::default();
    seen.watch(&session, Duration::from_secs(1));
    let before = session.local_addr().unwrap();
    let moved = {
        let _guard = rt.enter();
        session.rebind().unwrap()
    };
    let rebound = Instant::now();
    assert_ne!(before.port(), moved.port(), "a new socket");
    seen.watch(&session, Duration::from_secs(2));
    let end = finish(&rt, session);
    stop_host.send(true).ok();
    assert!(end.is_ok(), "{end:?}");
    assert!(seen.reconnecting.is_empty() && seen.reconnected.is_empty(), "no reconnection: {:?}", seen.reconnecting);
    let frames = seen.decoded_between(rebound, rebound + Duration::from_secs(2));
    assert!(frames > 90, "the stream goes on from the new address: {frames} pictures in 2 s");
}

#[test]
fn a_vanished_client_frees_the_host_for_the_next_one() {
    let rt = kumo::runtime().unwrap();
    let (host, fingerprint, stop_host) = start_host(&rt, host_config(([127, 0, 0, 1], 0).into(), None));
    let relay = rt.block_on(kumo::net::relay::start(([127, 0, 0, 1], 0).into(), host, Impairment::default())).unwrap();
    let first = rt.block_on(client::connect(client_config(relay.addr, fingerprint, None))).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The first client's path vanishes without a goodbye.
    drop(relay);
    let vanished = Instant::now();
    let busy = rt.block_on(client::connect(client_config(host, fingerprint, None))).err().expect("busy at first");
    assert!(busy.to_string().contains("already streaming"), "{busy}");
    // QUIC's idle timeout (10 s) ends the vanished session and frees its encoder.
    let mut second = None;
    while second.is_none() && vanished.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(500));
        second = rt.block_on(client::connect(client_config(host, fingerprint, None))).ok();
    }
    let freed = vanished.elapsed();
    let second = second.expect("the host takes a new client once the vanished one times out");
    let mut seen = Seen::default();
    seen.watch(&second, Duration::from_secs(1));
    first.stop();
    finish(&rt, second).ok();
    stop_host.send(true).ok();
    assert!(seen.decoded.len() > 30, "the new client streams");
    eprintln!("a vanished client's slot was free after {freed:?}");
    assert!(freed < Duration::from_secs(12), "{freed:?}");
}

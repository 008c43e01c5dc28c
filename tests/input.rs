//! Input end to end: a scripted input sequence injected at the client's input layer (below
//! gilrs and winit: this machine has no input devices) travels as QUIC datagrams to a real
//! host, whose game must end in the state the script implies; the returned frames must show
//! it in their pixels and name the input they reflect. Once directly on loopback, once through
//! a relay that drops packets both ways.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

mod common;

use common::{TestHost, lossy_relay, start_host};

use kumo::client::{self, ClientConfig};
use kumo::core::input::script::Script;
use kumo::core::sim::game;
use kumo::core::stats::{Event, Stats};
use kumo::host::encode::GameReport;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Moves the player to (0.8, 0.4) and presses three things, ending at 1 s.
const SCRIPT: &str = "
    100 mouse move 200 0
    200 mouse move 0 -100
    300 key Space down
    400 key Space up
    500 pad 1 button B down
    600 pad 1 button B up
    700 mouse move 100 0
    800 mouse button right down
    900 mouse button right up
    1000 end
";

/// A client of `host` (reached at `target`) that plays `script`, without gamepads.
fn scripted_client(host: &TestHost, target: SocketAddr, script: &str) -> ClientConfig {
    ClientConfig {
        name: "input test client".into(),
        input_script: Some(Script::parse(script).unwrap()),
        ..common::client_config(target, host.fingerprint, None)
    }
}

fn play(loss_every: Option<u64>) {
    let host = start_host("input test host");
    let (rt, game, stop) = (&host.rt, &host.game, &host.stop);
    let mut target = host.addr;
    if let Some(nth) = loss_every {
        target = rt.block_on(lossy_relay(target, nth));
    }
    let config = scripted_client(&host, target, SCRIPT);
    let session = rt.block_on(client::connect(config)).unwrap();
    let mut stats = Stats::new(0);
    let mut newest_sent = 0;
    let want = GameReport { frames: 0, input_seq: 9, x: 0.8, y: 0.4, presses: 3 };
    // Wait (bounded) until the host has applied the last input and a frame showing it came back.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = None;
    while Instant::now() < deadline {
        while let Ok(event) = session.events.try_recv() {
            if let Event::InputSent { seq, .. } = event {
                newest_sent = newest_sent.max(seq);
            }
            stats.apply(event);
        }
        let (picture, _) = session.slot.take();
        if let Some(p) = picture
            && p.input_seq == want.input_seq
        {
            seen = Some(p);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    session.stop();
    rt.block_on(session.finish()).ok();
    stop.send(true).ok();

    let report = game.report();
    assert_eq!(newest_sent, want.input_seq, "the script makes 9 distinct states");
    assert_eq!(report.input_seq, want.input_seq, "{report:?}");
    assert_eq!(report.presses, want.presses, "{report:?}");
    assert!((report.x - want.x).abs() < 1e-4 && (report.y - want.y).abs() < 1e-4, "{report:?}");
    let picture = seen.expect("a frame reflecting the last input came back");
    let (x, y) = game::find_player(&picture.y, picture.width, picture.width, picture.height)
        .expect("the player is visible in the decoded frame");
    assert!((x - want.x).abs() < 0.02 && (y - want.y).abs() < 0.02, "player drawn at ({x}, {y})");
    assert_eq!(
        game::read_input_marker(&picture.y, picture.width, picture.width, picture.height),
        Ok(want.input_seq as u32),
        "the frame's pixels name the input it reflects"
    );
    let summary = stats.summary(Duration::from_secs(1));
    if loss_every.is_none() {
        assert_eq!(summary.inputs_received_by_host, want.input_seq, "{summary:?}");
    } else {
        // A state whose datagram was lost and that a newer state replaced before the re-send
        // is never needed: the host may accept fewer than 9 states, but it must end on the
        // last one (its report says so above).
        assert!((1..=want.input_seq).contains(&summary.inputs_received_by_host), "{summary:?}");
    }
    assert!(summary.inputs_sent >= want.input_seq);
    assert!(summary.input_to_host_ms.p50 > 0.0);
    if loss_every.is_some() {
        assert!(summary.inputs_sent > want.input_seq, "lost datagrams were sent again");
    }
}

#[test]
fn scripted_input_reaches_the_host_game_and_comes_back_in_pixels() {
    play(None);
}

#[test]
fn scripted_input_survives_a_lossy_link() {
    // Every 4th packet lost each way: handshake, frames, input and acks alike.
    play(Some(4));
}

#[test]
fn taps_too_short_for_a_datagram_still_count() {
    let host = start_host("tap test host");
    let (rt, game, stop) = (&host.rt, &host.game, &host.stop);
    // Each press is released in the same millisecond: the whole-state datagrams may never
    // show them down, the reliable path must.
    let script = "100 key Space down\n100 key Space up\n200 pad 0 button A down\n200 pad 0 button A up\n\
                  300 mouse button left down\n300 mouse button left up\n400 end";
    let config = scripted_client(&host, host.addr, script);
    let session = rt.block_on(client::connect(config)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while game.report().presses < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    session.stop();
    rt.block_on(session.finish()).ok();
    stop.send(true).ok();
    assert_eq!(game.report().presses, 3, "{:?}", game.report());
}

#[test]
fn running_into_a_wall_with_a_pad_rumbles_that_pad() {
    let host = start_host("rumble test host");
    let (rt, stop) = (&host.rt, &host.stop);
    // Pad in slot 2 pushes right: the player reaches the edge after about 0.9 s.
    let script = "0 pad 2 connect\n50 pad 2 stick left 1 0\n3000 pad 2 stick left 0 0\n3100 end";
    let config = scripted_client(&host, host.addr, script);
    let mut session = rt.block_on(client::connect(config)).unwrap();
    let rumble = session.rumble.take().expect("no pad thread took the rumble channel");
    let got = rumble.recv_timeout(Duration::from_secs(10));
    session.stop();
    rt.block_on(session.finish()).ok();
    stop.send(true).ok();
    let got = got.expect("a rumble within 10 s");
    assert_eq!(got.slot, 2, "the pad that ran into the wall: {got:?}");
    assert!(got.strong > 0 && got.duration_ms > 0, "{got:?}");
}

#[test]
fn a_device_event_time_stamps_the_datagram_that_carries_it() {
    let host = start_host("input event-time host");
    let rt = &host.rt;
    let mut config = scripted_client(&host, host.addr, "0 end");
    config.input_script = None;
    let session = rt.block_on(client::connect(config)).unwrap();
    // A pad event that gilrs says happened 5 ms ago.
    let event_at = kumo::clock::now_micros() - 5_000;
    assert!(session.input.modify_at(Some(event_at), |s| s.set_key(kumo::core::input::key::SPACE, true)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = None;
    let mut to_host = None;
    while Instant::now() < deadline && (sent.is_none() || to_host.is_none()) {
        while let Ok(event) = session.events.try_recv() {
            match event {
                Event::InputSent { read_micros, .. } if sent.is_none() => sent = Some(read_micros),
                Event::InputAcked { to_host_micros: Some(t), .. } => to_host = Some(t),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    session.stop();
    rt.block_on(session.finish()).ok();
    host.stop.send(true).ok();
    assert_eq!(sent, Some(event_at), "the datagram carries the device's time, not the read time");
    assert!(to_host.is_some_and(|t| t >= 5_000), "input→host counts from the event: {to_host:?} µs");
}

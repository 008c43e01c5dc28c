//! Golden bytes: every control message, the frame header and every datagram kind, as protocol
//! v5 builds wrote them, kept under `tests/data/wire/`. Later builds must still read each one
//! to the same value, and where a message grew it may only have grown at its end (older readers
//! skip what follows the fields they know), so a deployed peer keeps working.
//!
//! `KUMO_BLESS=1 cargo test --test wire_golden` writes fixtures that are missing; it never
//! rewrites one that exists (a fixture is a promise to deployed peers, not a snapshot).

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

use kumo::core::audio::{AudioFormat, SpeakerLayout as Speakers};
use kumo::core::input::{InputState, Press, button, mouse_button};
use kumo::core::view::color::ColorSpace;
use kumo::core::wire::{
    AudioPacket, Capabilities, ClockProbe, ClockReply, Control, Datagram, FrameHeader, FrameKind, GoodbyeReason, Hello,
    InputAck, InputDatagram, MicPacket, RejectReason, Still, Welcome,
};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/wire")
}

fn hello() -> Hello {
    Hello {
        version: 5,
        width: 1280,
        height: 720,
        fps: 60,
        bitrate_kbps: 10_000,
        max_width: 1920,
        max_height: 1080,
        client_name: "kiosk-7 ✓".into(),
        audio_channels: 6,
        resume_token: 0x0123_4567_89ab_cdef,
        capabilities: Capabilities::NONE,
        start_kbps: 0,
    }
}

fn welcome() -> Welcome {
    Welcome {
        version: 5,
        width: 1280,
        height: 720,
        fps: 60,
        bitrate_kbps: 9_000,
        host_name: "host".into(),
        color: ColorSpace::ALL[2],
        audio: Some(AudioFormat {
            layout: Speakers::Surround51,
            packet_frames: 240,
            bitrate_kbps: 256,
            redundancy: true,
        }),
        resume_token: 42,
        capabilities: Capabilities::NONE,
    }
}

/// Every control message kind, with the name of its fixture.
fn controls() -> Vec<(&'static str, Control)> {
    vec![
        ("control-hello", Control::Hello(hello())),
        ("control-welcome", Control::Welcome(welcome())),
        ("control-welcome-no-audio", Control::Welcome(Welcome { audio: None, ..welcome() })),
        (
            "control-reject",
            Control::Reject { reason: RejectReason::NotPaired, host_version: 5, message: "pair first".into() },
        ),
        ("control-request-idr", Control::RequestIdr { last_good_frame: 1234 }),
        ("control-set-bitrate", Control::SetBitrate { bitrate_kbps: 4500 }),
        ("control-ping", Control::Ping { id: 7, client_micros: 1_700_000_000_000_000 }),
        (
            "control-pong",
            Control::Pong { id: 7, client_micros: 1_700_000_000_000_000, host_micros: 1_700_000_000_000_900 },
        ),
        ("control-goodbye", Control::Goodbye { reason: GoodbyeReason::Revoked, message: "revoked".into() }),
        (
            "control-presses",
            Control::Presses(vec![
                Press { device: 0, code: 4, down: true },
                Press { device: 1, code: 0, down: false },
                Press { device: 2, code: 3, down: true },
            ]),
        ),
        ("control-rumble", Control::Rumble { pad: 1, strong: 65535, weak: 1000, duration_ms: 250 }),
        ("control-pair-request", Control::PairRequest { version: 5, client_name: "laptop".into(), pake: [0x41; 33] }),
        ("control-pair-challenge", Control::PairChallenge { host_name: "host".into(), pake: [0x42; 33] }),
        ("control-pair-confirm", Control::PairConfirm { tag: [0x43; 32] }),
        ("control-paired", Control::Paired { tag: [0x44; 32] }),
        ("control-ltr-ack", Control::LtrAck { idr_pic_id: 3, frame_num: 17 }),
        ("control-recover-ltr", Control::RecoverLtr { idr_pic_id: 3, last_good_frame: 99 }),
    ]
}

fn frame_header() -> FrameHeader {
    FrameHeader {
        frame_number: 600,
        capture_micros: 1_700_000_000_123_456,
        encode_micros: 4100,
        kind: FrameKind::Recovery,
        width: 1280,
        height: 720,
        payload_len: 42_000,
        input_seq: 77,
        held_back: 2,
        host_behind: 5,
    }
}

fn input_state() -> InputState {
    let mut state = InputState::default();
    state.pads[0].connected = true;
    state.pads[0].buttons = button::A | button::LEFT_BUMPER;
    state.pads[0].left = [-12_000, 30_000];
    state.pads[0].triggers = [0, 65535];
    state.keys[0] = 1 << 4;
    state.mouse.buttons = mouse_button::LEFT;
    state.mouse.x = 32_768;
    state.mouse.y = 100;
    state.mouse.dx_total = -5;
    state.mouse.scroll_total = 3;
    state
}

/// Every datagram kind, with the name of its fixture.
fn datagrams() -> Vec<(&'static str, Datagram)> {
    // The parity shard a v5 build computed for 1500 bytes of 7s (kumo's GF(2^8) code). Its bytes
    // are a code's, not the wire's: builds with `Capabilities::PARITY_RS16` compute others, and
    // the datagram around them is unchanged.
    let mut shard = vec![163u8; 476];
    shard.resize(512, 240);
    let parity = kumo::core::wire::Parity {
        stream: 9,
        stream_len: 1500,
        shard_len: 512,
        block: 0,
        data_shards: 3,
        parity_shards: 2,
        index: 1,
        bytes: shard,
    };
    vec![
        (
            "datagram-input",
            Datagram::Input(InputDatagram { seq: 31, client_micros: 1_700_000_000_000_001, state: input_state() }),
        ),
        (
            "datagram-input-ack",
            Datagram::InputAck(InputAck { seq: 31, accepted: 30, client_micros: 11, host_micros: 12 }),
        ),
        (
            "datagram-audio",
            Datagram::Audio(AudioPacket {
                seq: 5,
                capture_micros: 1_700_000_000_000_002,
                layout: Speakers::Stereo,
                frames: 240,
                coded: vec![vec![0xf8, 1, 2, 3]],
                previous: vec![vec![0xf8, 9]],
            }),
        ),
        ("datagram-clock-probe", Datagram::ClockProbe(ClockProbe { id: 3, t1: 1000 })),
        ("datagram-clock-reply", Datagram::ClockReply(ClockReply { id: 3, t1: 1000, t2: 2000, t3: 2100 })),
        ("datagram-parity", Datagram::Parity(parity)),
        // Added in v5 behind `Capabilities::STILL`.
        ("datagram-still", Datagram::Still(Still { frame_number: 600, host_micros: 1_700_000_000_000_003 })),
        (
            "datagram-mic",
            Datagram::Mic(MicPacket {
                seq: 41,
                capture_micros: 1_700_000_000_000_004,
                coded: vec![0x48, 1, 2, 3],
                previous: vec![0x48, 9, 8],
            }),
        ),
    ]
}

/// The fixture's bytes; with `KUMO_BLESS=1`, writes `current` when the fixture is missing.
fn fixture(name: &str, current: &[u8]) -> Vec<u8> {
    let path = dir().join(format!("{name}.bin"));
    if !path.exists() && std::env::var_os("KUMO_BLESS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, current).unwrap();
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (KUMO_BLESS=1 writes missing fixtures)", path.display()))
}

/// The body of a length-prefixed control message.
fn body(message: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_le_bytes([message[0], message[1]]));
    assert_eq!(message.len(), len + 2, "length prefix");
    &message[2..]
}

#[test]
fn every_control_message_of_v5_still_reads_the_same() {
    for (name, message) in controls() {
        let mut current = Vec::new();
        message.encode(&mut current);
        let golden = fixture(name, &current);
        assert_eq!(Control::decode_body(body(&golden)).unwrap(), message, "{name}: the v5 bytes read differently");
        assert!(
            body(&current).starts_with(body(&golden)),
            "{name}: this build writes the message differently from v5, not only by fields added at its end"
        );
    }
}

#[test]
fn the_v5_frame_header_still_reads_the_same() {
    let mut current = Vec::new();
    frame_header().encode(&mut current);
    let golden = fixture("frame-header", &current);
    let (header, len) = FrameHeader::decode(&golden).unwrap();
    assert_eq!(header, frame_header());
    assert_eq!(len, golden.len());
    assert_eq!(current, golden, "this build writes the frame header differently from v5");
}

#[test]
fn every_datagram_of_v5_still_reads_the_same() {
    for (name, datagram) in datagrams() {
        let current = datagram.encode();
        let golden = fixture(name, &current);
        assert_eq!(Datagram::decode(&golden).unwrap(), datagram, "{name}: the v5 bytes read differently");
        assert_eq!(current, golden, "{name}: this build writes the datagram differently from v5");
    }
}

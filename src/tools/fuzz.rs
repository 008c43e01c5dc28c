//! `kumo fuzz`: every decoder of network bytes under `core::sim::fuzz`'s mutations.
//!
//! Each target starts from valid messages (its seeds, plus any files kept in the corpus
//! folder), decodes mutated bytes, and where decoding succeeds re-encodes and decodes again:
//! a target fails on a panic or on a message that does not survive its own round trip. A
//! failing input is written to the corpus folder (`crash-*.bin`) so it can be replayed and
//! kept as a regression once fixed.

use crate::core::audio::SpeakerLayout;
use crate::core::input::{InputState, Press};
use crate::core::sim::fuzz::Mutator;
use crate::core::sim::{game, marker};
use crate::core::video::annexb;
use crate::core::video::assemble::Assembler;
use crate::core::view::color::ColorSpace;
use crate::core::wire::{AudioPacket, ClockProbe, ClockReply, InputAck, InputDatagram};
use crate::core::wire::{Control, FrameHeader, FrameKind, GoodbyeReason, Hello, Welcome};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

/// One fuzz target: its name, its seeds and the check it runs on each input.
pub struct Target {
    pub name: &'static str,
    seeds: fn() -> Vec<Vec<u8>>,
    check: fn(&[u8]),
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub executions: u64,
    pub elapsed: Duration,
    /// Inputs that made the target panic or fail its round trip.
    pub failures: Vec<Vec<u8>>,
}

impl Target {
    /// Runs the target's check on one input: returns if the input is handled (decoded and
    /// round-tripped, or refused with an error), panics on a finding. Coverage-guided
    /// fuzzers (`fuzz/`, libFuzzer through cargo-fuzz) call this.
    pub fn check(&self, input: &[u8]) {
        (self.check)(input);
    }
}

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    targets().into_iter().find(|t| t.name == name)
}

/// Every decoder kumo runs on bytes from the network.
pub fn targets() -> Vec<Target> {
    vec![
        Target { name: "frame-header", seeds: frame_header_seeds, check: frame_header },
        Target { name: "control", seeds: control_seeds, check: control },
        Target { name: "input", seeds: input_seeds, check: input },
        Target { name: "input-ack", seeds: ack_seeds, check: ack },
        Target { name: "audio", seeds: audio_seeds, check: audio },
        Target { name: "clock", seeds: clock_seeds, check: clock },
        Target { name: "assemble", seeds: assemble_seeds, check: assemble },
        Target { name: "annexb", seeds: annexb_seeds, check: annexb_split },
        Target { name: "marker", seeds: marker_seeds, check: markers },
        Target { name: "opus", seeds: opus_seeds, check: opus_decode },
        Target { name: "mdns", seeds: mdns_seeds, check: mdns },
        Target { name: "fec", seeds: fec_seeds, check: fec },
    ]
}

/// Runs `target` for `iterations` inputs or until `budget` passes, whichever is first.
pub fn run(target: &Target, seed: u64, iterations: u64, budget: Duration, corpus: Option<&Path>) -> Report {
    let mut inputs = (target.seeds)();
    if let Some(dir) = corpus {
        inputs.extend(kept_inputs(&dir.join(target.name)));
    }
    let mut mutator = Mutator::new(seed);
    let started = Instant::now();
    let mut report = Report::default();
    // Panics are expected findings here: keep them off stderr while the target runs.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // Every kept input first, unmutated (regressions), then mutations.
    let replay = inputs.clone();
    for data in replay.into_iter().chain(std::iter::from_fn(|| Some(mutator.mutate(&inputs)))) {
        if report.executions >= iterations || started.elapsed() >= budget {
            break;
        }
        report.executions += 1;
        if catch_unwind(AssertUnwindSafe(|| (target.check)(&data))).is_err() && report.failures.len() < 16 {
            report.failures.push(data);
        }
    }
    std::panic::set_hook(hook);
    report.elapsed = started.elapsed();
    if let Some(dir) = corpus {
        keep_failures(&dir.join(target.name), &report.failures);
    }
    report
}

/// Writes `target`'s seeds into its corpus folder (`seed-N.bin`), so the corpus kept in the
/// repository starts from them.
pub fn write_seeds(target: &Target, corpus: &Path) -> std::io::Result<usize> {
    let dir = corpus.join(target.name);
    std::fs::create_dir_all(&dir)?;
    let seeds = (target.seeds)();
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}.bin")), seed)?;
    }
    Ok(seeds.len())
}

/// Files kept in a target's corpus folder (at most 1000, each at most 64 KiB).
fn kept_inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .take(1000)
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter(|d| d.len() <= crate::core::sim::fuzz::MAX_INPUT)
        .collect()
}

fn keep_failures(dir: &Path, failures: &[Vec<u8>]) {
    if failures.is_empty() || std::fs::create_dir_all(dir).is_err() {
        return;
    }
    for data in failures {
        let name = format!("crash-{:016x}.bin", fnv(data));
        std::fs::write(dir.join(name), data).ok();
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn frame_header_seeds() -> Vec<Vec<u8>> {
    [FrameKind::Idr, FrameKind::Inter, FrameKind::Recovery]
        .into_iter()
        .map(|kind| {
            let mut v = Vec::new();
            let header = FrameHeader {
                frame_number: 42,
                capture_micros: 1_795_000_000_000_000,
                encode_micros: 4000,
                kind,
                width: 1280,
                height: 720,
                payload_len: 20_000,
                input_seq: 7,
                held_back: 0,
                host_behind: 0,
            };
            header.encode(&mut v);
            v
        })
        .collect()
}

fn frame_header(data: &[u8]) {
    FrameHeader::peek_len(data).ok();
    if let Ok((header, len)) = FrameHeader::decode(data) {
        assert!(len <= data.len());
        let mut again = Vec::new();
        header.encode(&mut again);
        assert_eq!(FrameHeader::decode(&again).map(|(h, _)| h), Ok(header));
    }
}

fn control_seeds() -> Vec<Vec<u8>> {
    let messages = [
        Control::Hello(Hello {
            version: crate::core::wire::PROTOCOL_VERSION,
            width: 1920,
            height: 1080,
            fps: 60,
            bitrate_kbps: 20_000,
            max_width: 3840,
            max_height: 2160,
            client_name: "fuzz".into(),
            audio_channels: 6,
            resume_token: 0x5eed,
            capabilities: crate::core::wire::Capabilities::THIS_BUILD,
            start_kbps: 5000,
        }),
        Control::Welcome(Welcome {
            version: crate::core::wire::PROTOCOL_VERSION,
            width: 1920,
            height: 1080,
            fps: 60,
            bitrate_kbps: 20_000,
            host_name: "host".into(),
            color: ColorSpace::HOST_DEFAULT,
            audio: Some(crate::core::audio::AudioFormat {
                layout: SpeakerLayout::Surround71,
                packet_frames: 240,
                bitrate_kbps: 320,
                redundancy: true,
            }),
            resume_token: 0x5eed,
            capabilities: crate::core::wire::Capabilities::THIS_BUILD,
        }),
        Control::RequestIdr { last_good_frame: 9 },
        Control::Ping { id: 1, client_micros: 2 },
        Control::Goodbye { reason: GoodbyeReason::Finished, message: "bye".into() },
        Control::Presses(vec![Press { device: 0, code: 0x2C, down: true }; 3]),
        Control::Rumble { pad: 1, strong: 100, weak: 200, duration_ms: 150 },
        Control::PairRequest { version: 5, client_name: "deck".into(), pake: [b'A'; 33] },
        Control::PairChallenge { host_name: "den".into(), pake: [b'B'; 33] },
        Control::PairConfirm { tag: [7; 32] },
        Control::LtrAck { idr_pic_id: 3, frame_num: 30 },
        Control::RecoverLtr { idr_pic_id: 3, last_good_frame: 99 },
        Control::Paired { tag: [9; 32] },
        Control::Reject {
            reason: crate::core::wire::RejectReason::NotPaired,
            host_version: 5,
            message: "not paired".into(),
        },
    ];
    messages
        .iter()
        .map(|m| {
            let mut v = Vec::new();
            m.encode(&mut v);
            v[2..].to_vec()
        })
        .collect()
}

fn control(data: &[u8]) {
    if let Ok(message) = Control::decode_body(data) {
        let mut again = Vec::new();
        message.encode(&mut again);
        assert_eq!(Control::decode_body(&again[2..]), Ok(message));
    }
}

fn input_seeds() -> Vec<Vec<u8>> {
    let mut state = InputState::default();
    state.pads[0].connected = true;
    state.pads[0].left = [12_000, -3_000];
    state.mouse.dx_total = 500;
    vec![InputDatagram { seq: 3, client_micros: 99, state }.encode()]
}

fn input(data: &[u8]) {
    if let Ok(d) = InputDatagram::decode(data) {
        assert_eq!(InputDatagram::decode(&d.encode()), Ok(d));
    }
}

fn ack_seeds() -> Vec<Vec<u8>> {
    vec![InputAck { seq: 9, accepted: 8, client_micros: 7, host_micros: 6 }.encode()]
}

fn ack(data: &[u8]) {
    if let Ok(a) = InputAck::decode(data) {
        assert_eq!(InputAck::decode(&a.encode()), Ok(a));
    }
}

fn audio_seeds() -> Vec<Vec<u8>> {
    [SpeakerLayout::Stereo, SpeakerLayout::Surround51, SpeakerLayout::Surround71]
        .into_iter()
        .map(|layout| {
            let frames = |k: u8| (0..layout.streams()).map(|s| vec![k + s as u8; 60]).collect::<Vec<_>>();
            AudioPacket { seq: 5, capture_micros: 6, layout, frames: 240, coded: frames(1), previous: frames(2) }
                .encode()
        })
        .collect()
}

fn audio(data: &[u8]) {
    if let Ok(p) = AudioPacket::decode(data) {
        assert_eq!(AudioPacket::decode(&p.encode()), Ok(p));
    }
}

fn clock_seeds() -> Vec<Vec<u8>> {
    vec![ClockProbe { id: 1, t1: 2 }.encode(), ClockReply { id: 1, t1: 2, t2: 3, t3: 4 }.encode()]
}

fn clock(data: &[u8]) {
    if let Ok(p) = ClockProbe::decode(data) {
        assert_eq!(ClockProbe::decode(&p.encode()), Ok(p));
    }
    if let Ok(r) = ClockReply::decode(data) {
        assert_eq!(ClockReply::decode(&r.encode()), Ok(r));
    }
}

fn mdns_seeds() -> Vec<Vec<u8>> {
    let advert =
        crate::core::wire::mdns::Advert { name: "den".into(), port: 4433, protocol: 5, fingerprint: "AB:CD".into() };
    vec![crate::core::wire::mdns::query(1), crate::core::wire::mdns::answer(2, &advert)]
}

/// A discovery answer read back must encode to the same advert.
fn mdns(data: &[u8]) {
    crate::core::wire::mdns::asks_for_kumo(data);
    if let Some(advert) = crate::core::wire::mdns::read_answer(data)
        && advert.name.len() < 200
        && !advert.name.contains('.')
    {
        let again = crate::core::wire::mdns::answer(1, &advert);
        assert_eq!(crate::core::wire::mdns::read_answer(&again), Some(advert));
    }
}

fn assemble_seeds() -> Vec<Vec<u8>> {
    frame_header_seeds()
        .into_iter()
        .map(|mut v| {
            // A header announcing a short payload, and the payload.
            v[32..36].copy_from_slice(&64u32.to_le_bytes());
            v.extend(std::iter::repeat_n(0xab, 64));
            v
        })
        .collect()
}

/// Feeds the bytes as a frame stream in chunks whose sizes the bytes themselves choose.
fn assemble(data: &[u8]) {
    let mut a = Assembler::new();
    let mut rest = data;
    let mut i = 0usize;
    while !rest.is_empty() {
        let n = (usize::from(data[i % data.len()]) % 97 + 1).min(rest.len());
        if a.push(&rest[..n]).is_err() {
            return;
        }
        rest = &rest[n..];
        i += 1;
    }
    if let Ok(frame) = a.finish() {
        assert_eq!(frame.payload.len(), frame.header.payload_len as usize);
    }
}

fn annexb_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 1, 0x68, 4, 0, 0, 1, 0x65, 9, 9, 9],
        vec![0, 0, 1, 0x41, 1, 2, 0, 0, 0, 1, 0x41, 3],
    ]
}

fn annexb_split(data: &[u8]) {
    let total: usize = annexb::nal_units(data).map(|n| n.nal_type() as usize).sum();
    let units: usize = annexb::access_units(data).map(<[u8]>::len).sum();
    assert!(units <= data.len() && total < usize::MAX);
    annexb::is_idr(data);
}

fn marker_seeds() -> Vec<Vec<u8>> {
    let (w, h) = (marker::MIN_WIDTH, 48);
    let mut luma = vec![128u8; w * h];
    marker::draw(&mut luma, w, w, h, 0xdead_beef).ok();
    vec![luma]
}

/// Reads the three marker strips from the bytes as a picture of the marker's least width.
fn markers(data: &[u8]) {
    let w = marker::MIN_WIDTH;
    let h = data.len() / w;
    if let Ok(v) = marker::read(data, w, w, h) {
        let mut again = vec![128u8; w * h.max(1)];
        // What was read must draw back to a picture that reads the same.
        if marker::draw(&mut again, w, w, h, v).is_ok() {
            assert_eq!(marker::read(&again, w, w, h), Ok(v));
        }
    }
    game::read_input_marker(data, w, w, h).ok();
    game::read_time_marker(data, w, w, h).ok();
}

fn opus_seeds() -> Vec<Vec<u8>> {
    let Ok(mut enc) = opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::LowDelay) else {
        return vec![vec![0xfc, 0xff, 0xfe]];
    };
    let pcm: Vec<f32> = (0..480).map(|i| (i as f32 * 0.1).sin() * 0.3).collect();
    vec![enc.encode_vec_float(&pcm, 1000).unwrap_or_default()]
}

/// The client's Opus decode of a packet from the network: any bytes, never a crash.
fn opus_decode(data: &[u8]) {
    thread_local! {
        static DECODER: std::cell::RefCell<Option<opus::Decoder>> =
            std::cell::RefCell::new(opus::Decoder::new(48_000, opus::Channels::Stereo).ok());
    }
    if data.len() > crate::core::wire::audio::MAX_OPUS_FRAME {
        return;
    }
    DECODER.with(|d| {
        if let Some(decoder) = d.borrow_mut().as_mut() {
            let mut out = vec![0.0f32; 240 * 2];
            if decoder.decode_float(data, &mut out, false).is_err() {
                decoder.decode_float(&[], &mut out, false).ok();
            }
        }
    });
}

/// A `fec` input is a parity datagram on its own, and also a run of events for one stream's
/// [`Recovery`]: each a tag byte (even: a chunk, odd: a parity datagram), a 16-bit offset and
/// a 16-bit length, then that many bytes.
fn fec_event(out: &mut Vec<u8>, tag: u8, offset: u16, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(body);
}

/// The events of a `fec` input: (tag, offset, body), a short last body cut to what is left.
fn fec_events(data: &[u8]) -> impl Iterator<Item = (u8, u16, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 5 {
            return None;
        }
        let (tag, offset) = (rest[0], u16::from_le_bytes([rest[1], rest[2]]));
        let len = usize::from(u16::from_le_bytes([rest[3], rest[4]])).min(rest.len() - 5);
        let body = &rest[5..5 + len];
        rest = &rest[5 + len..];
        Some((tag, offset, body))
    })
}

fn fec_seeds() -> Vec<Vec<u8>> {
    use crate::core::video::fec;
    let header = FrameHeader {
        frame_number: 3,
        capture_micros: 1,
        encode_micros: 2,
        kind: FrameKind::Inter,
        width: 64,
        height: 64,
        payload_len: 3000,
        input_seq: 0,
        held_back: 0,
        host_behind: 0,
    };
    let mut stream = Vec::new();
    header.encode(&mut stream);
    stream.extend((0..3000u32).map(|i| (i * 7) as u8));
    let parity = fec::protect(0, &stream, crate::core::wire::parity::MIN_SHARD_LEN * 8, |k| fec::parity_for(0.5, k));
    let mut events = Vec::new();
    // Every chunk but the second arrives, then the parity: enough to rebuild it.
    for (n, chunk) in stream.chunks(700).enumerate().filter(|(n, _)| *n != 1) {
        fec_event(&mut events, 0, (n * 700) as u16, chunk);
    }
    for p in &parity {
        fec_event(&mut events, 1, 0, &p.encode());
    }
    vec![parity[0].encode(), events]
}

fn fec(data: &[u8]) {
    use crate::core::video::fec::Recovery;
    use crate::core::wire::Parity;
    if let Ok(p) = Parity::decode(data) {
        assert_eq!(Parity::decode(&p.encode()).as_ref(), Ok(&p));
    }
    let mut recovery = Recovery::new();
    for (tag, offset, body) in fec_events(data) {
        if tag.is_multiple_of(2) {
            if recovery.on_chunk(u64::from(offset), body).is_err() {
                return;
            }
        } else if let Ok(p) = Parity::decode(body) {
            recovery.on_parity(p).ok();
        }
        if let Some(Ok((frame, rebuilt))) = recovery.try_recover() {
            assert!(rebuilt > 0);
            assert_eq!(frame.payload.len(), frame.header.payload_len as usize);
            return;
        }
    }
    if let Ok(frame) = recovery.finish() {
        assert_eq!(frame.payload.len(), frame.header.payload_len as usize);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fec_seed_reaches_a_rebuild() {
        // The events seed loses a chunk and brings enough parity: the target's rebuild path.
        let events = &super::fec_seeds()[1];
        let mut recovery = crate::core::video::fec::Recovery::new();
        let mut rebuilt = None;
        for (tag, offset, body) in super::fec_events(events) {
            if tag.is_multiple_of(2) {
                recovery.on_chunk(u64::from(offset), body).unwrap();
            } else {
                recovery.on_parity(crate::core::wire::Parity::decode(body).unwrap()).unwrap();
            }
            rebuilt = recovery.try_recover().map(|r| r.unwrap().1);
            if rebuilt.is_some() {
                break;
            }
        }
        assert!(rebuilt.is_some_and(|n| n > 0), "the seed never rebuilt its frame");
        super::fec(events);
    }
}

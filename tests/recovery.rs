//! Loss recovery on a simulated link with a virtual clock: real openh264 frames, one lost on
//! the way, go through `core::video::sequence`; the client must ask for a repair, drop what it cannot
//! decode, and decode cleanly again from what the host sends in answer: a recovery frame from
//! a long-term reference the client confirmed, or (IDR-only, and as the fallback) an IDR.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

use kumo::client::decode::H264Decoder;
use kumo::core::sim::marker;
use kumo::core::sim::scene::{self, I420};
use kumo::core::video::assemble::Frame;
use kumo::core::video::sequence::{self, DropReason, Event, Repair, Sequencer};
use kumo::core::wire::{FrameHeader, FrameKind};
use kumo::host::encode::{EncoderSettings, H264Encoder};
use std::time::Duration;

const FRAME: Duration = Duration::from_micros(16_667);

/// Frame `n` of the scene (marker = `n`), encoded at `now`, as the host would send it.
fn encode(encoder: &mut H264Encoder, pic: &mut I420, n: u64, now: Duration) -> Frame {
    scene::render(n, 60, n as u32, pic);
    let mut payload = Vec::new();
    let kind = encoder.encode(pic, now, &mut payload).unwrap().unwrap();
    let header = FrameHeader {
        frame_number: n,
        capture_micros: 0,
        encode_micros: 0,
        kind,
        width: 640,
        height: 360,
        payload_len: payload.len() as u32,
        input_seq: 0,
        held_back: 0,
        host_behind: 0,
    };
    Frame { header, payload }
}

#[test]
fn a_lost_frame_is_recovered_through_an_idr() {
    let mut encoder =
        H264Encoder::new(EncoderSettings { width: 640, height: 360, fps: 60, bitrate_kbps: 2000, threads: 1 }).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut sequencer = Sequencer::new(sequence::Config { ltr: false, ..sequence::Config::default() });
    // A loopback round trip: the wait for a missing frame is the configured 33 ms.
    sequencer.set_rtt(std::time::Duration::ZERO);
    let mut pic = I420::new(640, 360);
    let mut out = Vec::new();
    let mut decoded = Vec::new();
    let mut idr_requested_at = None;
    let mut network_drops = 0;
    for n in 0..40u64 {
        let now = FRAME * n as u32;
        // The host answers an IDR request one frame after it arrives (a 1-frame RTT).
        if idr_requested_at.is_some_and(|at| n == at + 1) {
            encoder.force_idr();
        }
        let frame = encode(&mut encoder, &mut pic, n, now);
        sequencer.on_timeout(now, &mut out);
        if n != 10 {
            sequencer.on_frame(frame, now, &mut out);
        }
        for event in out.drain(..) {
            match event {
                Event::Deliver(frame) => {
                    let marker = decoder
                        .decode(&frame.payload, |v| marker::read(v.y, v.y_stride, v.width, v.height))
                        .expect("the decoder never sees a broken reference chain")
                        .expect("one picture per access unit");
                    assert_eq!(marker, Ok(frame.header.frame_number as u32));
                    decoded.push((frame.header.frame_number, frame.header.kind));
                }
                Event::RequestIdr { last_good_frame } => {
                    assert_eq!(last_good_frame, 9);
                    idr_requested_at.get_or_insert(n);
                }
                Event::Dropped { reason: DropReason::Network, count } => network_drops += count,
                Event::Dropped { .. } | Event::Repaired { .. } => {}
                Event::RequestRecovery { .. } => panic!("an IDR-only client asked for a recovery frame"),
            }
        }
    }
    assert_eq!(network_drops, 1, "exactly the lost frame counts as a network drop");
    let asked = idr_requested_at.expect("the loss led to an IDR request");
    assert!(asked <= 13, "asked at frame {asked}: within the 33 ms gap timeout of the loss");
    let first_after = decoded.iter().find(|(n, _)| *n > 10).expect("decoding resumed");
    assert_eq!(first_after.1, FrameKind::Idr, "decoding resumes at an IDR: {decoded:?}");
    assert!(decoded.iter().filter(|(n, _)| *n < 10).count() == 10);
    assert!(decoded.last().unwrap().0 == 39, "the stream is whole again after the IDR");
}

#[test]
fn a_lost_frame_is_recovered_from_a_long_term_reference_without_an_idr() {
    let mut encoder =
        H264Encoder::new(EncoderSettings { width: 640, height: 360, fps: 60, bitrate_kbps: 2000, threads: 1 }).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut sequencer = Sequencer::new(sequence::Config::default());
    sequencer.set_rtt(Duration::ZERO);
    let mut pic = I420::new(640, 360);
    let mut out = Vec::new();
    let mut decoded = Vec::new();
    let (mut recovery_asked_at, mut idr_requests, mut repairs) = (None, 0, Vec::new());
    // Confirmations reach the host one frame after the decode, as over a 1-frame RTT.
    let mut confirmations = Vec::new();
    for n in 0..80u64 {
        let now = FRAME * n as u32;
        for (idr_pic_id, frame_num) in confirmations.drain(..) {
            encoder.ltr_confirmed(idr_pic_id, frame_num);
        }
        if recovery_asked_at.is_some_and(|(at, _)| n == at + 1) {
            encoder.recover_from_ltr(recovery_asked_at.unwrap().1);
        }
        let frame = encode(&mut encoder, &mut pic, n, now);
        sequencer.on_timeout(now, &mut out);
        // Frame 50 is lost: by then long-term references were marked and confirmed.
        if n != 50 {
            sequencer.on_frame(frame, now, &mut out);
        }
        for event in out.drain(..) {
            match event {
                Event::Deliver(frame) => {
                    let marker = decoder
                        .decode(&frame.payload, |v| marker::read(v.y, v.y_stride, v.width, v.height))
                        .expect("the decoder never sees a broken reference chain")
                        .expect("one picture per access unit");
                    assert_eq!(marker, Ok(frame.header.frame_number as u32));
                    if let Some(mark) = decoder.ltr_marked() {
                        confirmations.push((mark.idr_pic_id, mark.frame_num));
                    }
                    decoded.push((frame.header.frame_number, frame.header.kind));
                }
                Event::RequestRecovery { last_good_frame } => {
                    assert_eq!(last_good_frame, 49);
                    recovery_asked_at.get_or_insert((n, decoder.idr_pic_id().unwrap()));
                }
                Event::RequestIdr { .. } => idr_requests += 1,
                Event::Repaired { how, .. } => repairs.push(how),
                Event::Dropped { .. } => {}
            }
        }
    }
    assert!(recovery_asked_at.is_some(), "the loss led to a recovery request");
    assert_eq!(idr_requests, 0, "no IDR was needed");
    assert_eq!(repairs, vec![Repair::Ltr]);
    let first_after = decoded.iter().find(|(n, _)| *n > 50).expect("decoding resumed");
    assert_eq!(first_after.1, FrameKind::Recovery, "decoding resumes at the recovery frame: {decoded:?}");
    // Repaired within 2 frames of the request reaching the host (one frame there, one back).
    let (asked, _) = recovery_asked_at.unwrap();
    assert!(first_after.0 <= asked + 2, "asked at {asked}, resumed at {}", first_after.0);
    assert_eq!(decoded.iter().filter(|(_, k)| *k == FrameKind::Idr).count(), 1, "only the stream's first IDR");
    assert_eq!(decoded.last().unwrap().0, 79, "the stream is whole again");
}

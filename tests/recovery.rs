//! Loss recovery on a simulated link with a virtual clock: real openh264 frames, one lost on
//! the way, go through `core::sequence`; the client must ask for an IDR, drop what it cannot
//! decode, and decode cleanly again from the IDR the host sends in answer.

#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] functions

use kumo::core::assemble::Frame;
use kumo::core::marker;
use kumo::core::scene::{self, I420};
use kumo::core::sequence::{self, DropReason, Event, Sequencer};
use kumo::core::wire::{FrameHeader, FrameKind};
use kumo::decode::H264Decoder;
use kumo::encode::{H264Encoder, Settings};
use std::time::Duration;

const FRAME: Duration = Duration::from_micros(16_667);

#[test]
fn a_lost_frame_is_recovered_through_an_idr() {
    let mut encoder =
        H264Encoder::new(Settings { width: 640, height: 360, fps: 60, bitrate_kbps: 2000, threads: 1 }).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut sequencer = Sequencer::new(sequence::Config::default());
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
        scene::render(n, 60, n as u32, &mut pic);
        let mut payload = Vec::new();
        let kind = encoder.encode(&pic, now, &mut payload).unwrap().unwrap();
        let header = FrameHeader {
            frame_number: n,
            capture_micros: 0,
            encode_micros: 0,
            kind,
            width: 640,
            height: 360,
            payload_len: payload.len() as u32,
            input_seq: 0,
        };
        sequencer.on_timeout(now, &mut out);
        if n != 10 {
            sequencer.on_frame(Frame { header, payload }, now, &mut out);
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
                Event::Dropped { .. } => {}
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

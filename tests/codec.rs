//! The host's encoder and the client's decoder, for real (openh264 both ways): the frame
//! marker survives lossy coding at a low bitrate, IDRs come only at the start and on request,
//! and runtime bitrate changes take effect.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

use kumo::client::decode::H264Decoder;
use kumo::core::sim::marker;
use kumo::core::sim::scene::{self, I420};
use kumo::core::wire::FrameKind;
use kumo::host::encode::{EncoderSettings, H264Encoder};
use std::time::Duration;

fn at(frame: u64) -> Duration {
    Duration::from_secs(frame) / 60
}

fn settings(width: u16, height: u16, bitrate_kbps: u32) -> EncoderSettings {
    EncoderSettings { width, height, fps: 60, bitrate_kbps, threads: 2 }
}

#[test]
fn marker_survives_low_bitrate_coding() {
    // Targets far below what the busy scene needs: openh264 then runs at its highest QP, which
    // is the harshest coding the marker meets. Measured here: about 2.1 Mbit/s at 720p60 and
    // 0.8 Mbit/s at 360p60, the floor of this scene; the ceilings leave noise room.
    for (w, h, kbps, ceiling_kbps) in [(1280u16, 720u16, 300u32, 3000usize), (640, 360, 100, 1200)] {
        let mut enc = H264Encoder::new(settings(w, h, kbps)).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut pic = I420::new(w.into(), h.into());
        let mut bytes = Vec::new();
        let mut total = 0;
        for n in 0..180u64 {
            scene::render(n, 60, n as u32 * 7 + 3, &mut pic);
            let kind = enc.encode(&pic, at(n), &mut bytes).unwrap().expect("no skipped frames");
            assert_eq!(kind == FrameKind::Idr, n == 0, "frame {n}: only the first frame is an IDR");
            if n >= 120 {
                total += bytes.len();
            }
            let read = dec
                .decode(&bytes, |v| marker::read(v.y, v.y_stride, v.width, v.height))
                .unwrap()
                .expect("each access unit gives a picture");
            assert_eq!(read, Ok(n as u32 * 7 + 3), "{w}x{h} frame {n}");
        }
        // The last second, once rate control settled, really was at a low bitrate.
        let kbps_out = total * 8 / 1000;
        eprintln!("{w}x{h}: {kbps_out} kbps for a {kbps} kbps target");
        assert!(kbps_out < ceiling_kbps, "{w}x{h}: {kbps_out} kbps for a {kbps} kbps target");
    }
}

#[test]
fn idr_on_request_and_bitrate_changes_apply() {
    let mut enc = H264Encoder::new(settings(1280, 720, 8000)).unwrap();
    let mut pic = I420::new(1280, 720);
    let mut bytes = Vec::new();
    let mut size_at = |enc: &mut H264Encoder, range: std::ops::Range<u64>| {
        let mut total = 0;
        for n in range {
            scene::render(n, 60, n as u32, &mut pic);
            enc.encode(&pic, at(n), &mut bytes).unwrap();
            total += bytes.len();
        }
        total
    };
    let high = size_at(&mut enc, 0..60);
    enc.set_bitrate(500).unwrap();
    size_at(&mut enc, 60..90); // let rate control settle
    let low = size_at(&mut enc, 90..150);
    assert!(low * 3 < high, "8000 kbps gave {high} bytes/s, 500 kbps gave {low}");
    enc.force_idr();
    scene::render(150, 60, 150, &mut pic);
    assert_eq!(enc.encode(&pic, at(150), &mut bytes).unwrap(), Some(FrameKind::Idr));
    scene::render(151, 60, 151, &mut pic);
    assert_eq!(enc.encode(&pic, at(151), &mut bytes).unwrap(), Some(FrameKind::Inter));
}

/// Encodes frame `n` of the scene (marker = `n`) into `bytes`; its kind.
fn encode_frame(enc: &mut H264Encoder, pic: &mut I420, n: u64, bytes: &mut Vec<u8>) -> FrameKind {
    scene::render(n, 60, n as u32, pic);
    enc.encode(pic, at(n), bytes).unwrap().expect("no skipped frames")
}

/// Decodes `bytes`, confirms any long-term reference it marked to the encoder (as the client
/// does over the control stream), and returns the picture's marker.
fn decode_and_confirm(dec: &mut H264Decoder, enc: &mut H264Encoder, bytes: &[u8]) -> Result<u32, String> {
    let read = dec.decode(bytes, |v| marker::read(v.y, v.y_stride, v.width, v.height)).map_err(|e| e.to_string())?;
    if let Some(mark) = dec.ltr_marked() {
        enc.ltr_confirmed(mark.idr_pic_id, mark.frame_num);
    }
    match read {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(format!("marker unreadable: {e:?}")),
        None => Err("no picture".into()),
    }
}

#[test]
fn a_loss_is_repaired_from_a_long_term_reference_without_an_idr() {
    let (w, h) = (640u16, 360u16);
    let mut enc = H264Encoder::new(settings(w, h, 2000)).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut pic = I420::new(w.into(), h.into());
    let mut bytes = Vec::new();
    let mut marks = 0;
    for n in 0..70u64 {
        encode_frame(&mut enc, &mut pic, n, &mut bytes);
        assert_eq!(decode_and_confirm(&mut dec, &mut enc, &bytes), Ok(n as u32), "frame {n}");
        marks += u32::from(dec.ltr_marked().is_some());
    }
    eprintln!("long-term references marked in 70 frames: {marks}");
    // Frames 70 and 71 are lost: the decoder never sees them.
    for n in 70..72u64 {
        assert_eq!(encode_frame(&mut enc, &mut pic, n, &mut bytes), FrameKind::Inter);
    }
    // The client asks for a recovery; the next frame refers only to a confirmed LTR.
    enc.recover_from_ltr(dec.idr_pic_id().expect("the decoder knows its IDR period"));
    assert_eq!(encode_frame(&mut enc, &mut pic, 72, &mut bytes), FrameKind::Recovery);
    let recovery_size = bytes.len();
    assert_eq!(decode_and_confirm(&mut dec, &mut enc, &bytes), Ok(72), "the recovery frame decodes");
    // And the stream goes on from it, with no IDR.
    for n in 73..100u64 {
        assert_eq!(encode_frame(&mut enc, &mut pic, n, &mut bytes), FrameKind::Inter, "frame {n}");
        assert_eq!(decode_and_confirm(&mut dec, &mut enc, &bytes), Ok(n as u32), "frame {n}");
    }
    // Cheaper than an IDR.
    enc.force_idr();
    assert_eq!(encode_frame(&mut enc, &mut pic, 100, &mut bytes), FrameKind::Idr);
    eprintln!("recovery frame {recovery_size} bytes, IDR {} bytes", bytes.len());
    assert!(recovery_size < bytes.len(), "recovery {recovery_size} bytes, IDR {}", bytes.len());
}

/// Encodes frames `range` of the scene at `w`×`h`; the size of each.
fn sizes(enc: &mut H264Encoder, w: u16, h: u16, range: std::ops::Range<u64>, dec: &mut H264Decoder) -> Vec<usize> {
    let mut pic = I420::new(w.into(), h.into());
    let mut bytes = Vec::new();
    range
        .map(|n| {
            encode_frame(enc, &mut pic, n, &mut bytes);
            assert_eq!(decode_and_confirm(dec, enc, &bytes), Ok(n as u32), "{w}x{h} frame {n}");
            bytes.len()
        })
        .collect()
}

#[test]
fn a_new_size_starts_with_an_idr_sized_for_the_bitrate_of_the_moment() {
    // A 720p60 session asked at 10 Mbit/s that the path brought down to 1.5 Mbit/s, then a step
    // down the ladder to 360p60: the new encoder's first frame is an IDR (with the new SPS,
    // which the same decoder takes), and rate control starts from 1.5 Mbit/s, not from the
    // ceiling the encoder was built at.
    let mut enc = H264Encoder::new(settings(1280, 720, 10_000)).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let first = sizes(&mut enc, 1280, 720, 0..60, &mut dec);
    enc.set_bitrate(1500).unwrap();
    sizes(&mut enc, 1280, 720, 60..120, &mut dec);
    assert!(enc.reshape(640, 360, 60, false).unwrap(), "a new size builds a new encoder");
    let mut pic = I420::new(640, 360);
    let mut bytes = Vec::new();
    assert_eq!(encode_frame(&mut enc, &mut pic, 120, &mut bytes), FrameKind::Idr, "a new size starts with an IDR");
    let idr_after = bytes.len();
    assert_eq!(decode_and_confirm(&mut dec, &mut enc, &bytes), Ok(120));
    let after = sizes(&mut enc, 640, 360, 121..240, &mut dec);
    // The same size and bitrate from a fresh encoder.
    let mut fresh = H264Encoder::new(settings(640, 360, 1500)).unwrap();
    let fresh_sizes = sizes(&mut fresh, 640, 360, 0..120, &mut H264Decoder::new().unwrap());
    let kbps = |s: &[usize]| s.iter().sum::<usize>() * 8 * 60 / s.len() / 1000;
    eprintln!(
        "720p60 IDR at 10 Mbit/s: {} B; 360p60 IDR after the step: {idr_after} B, fresh at 1.5 Mbit/s: {} B; \
         the second after: {} kbit/s, fresh: {} kbit/s",
        first[0],
        fresh_sizes[0],
        kbps(&after[59..]),
        kbps(&fresh_sizes[60..])
    );
    assert!(idr_after * 2 <= fresh_sizes[0] * 3, "the IDR after the step ({idr_after} B) is budgeted for the ceiling");
    // On a path that carries the target, the key frame takes under 100 ms of it.
    assert!(idr_after * 8 <= 1500 * 100, "the IDR after the step ({idr_after} B) holds the path for over 100 ms");
    assert!(kbps(&after[59..]) * 2 <= kbps(&fresh_sizes[60..]) * 3, "rate control kept the ceiling");
}

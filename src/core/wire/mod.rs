//! kumo's wire format: every byte that crosses the network is coded here. `codec` has the one
//! reader and writer, `control` the control stream's messages, `frame` the header in front of
//! each video frame, `clipboard` the header of a shared clipboard's stream, `datagram` every
//! datagram kind behind one magic table, and `mdns` the discovery adverts.
//!
//! Owns byte layout and validation only. It must not read clocks, touch sockets or trust any
//! length it reads: every field is bounds-checked, every string and payload length is capped
//! before anything is allocated, and decoding returns an error instead of panicking.
//!
//! All integers are little-endian. Control messages are framed as `u16 length` + body, the
//! body starting with a one-byte tag; that framing never changes between protocol versions,
//! so a peer of another version can always read a `Hello` or `Reject` and say what is wrong.

pub mod audio;
pub mod clipboard;
pub mod clock;
mod codec;
pub mod control;
pub mod datagram;
pub mod frame;
pub mod input;
pub mod kind;
pub mod mdns;
pub mod mic;
pub mod parity;
pub mod still;

pub use audio::AudioPacket;
pub use clock::{ClockProbe, ClockReply};
pub use codec::WireError;
pub use control::{Capabilities, Control, GoodbyeReason, Hello, PAIR_TAG_LEN, PAKE_MESSAGE_LEN, RejectReason, Welcome};
pub use datagram::{Datagram, DatagramError};
pub use frame::{FrameHeader, FrameKind};
pub use input::{InputAck, InputDatagram};
pub use kind::DatagramKind;
pub use mic::MicPacket;
pub use parity::Parity;
pub use still::Still;

/// The protocol's major version: peers must speak the same one, and one that does not is
/// refused with a sentence naming both. Bumped only on a change an older peer cannot read;
/// features added within a major version travel behind [`Capabilities`], and messages and
/// datagrams an older peer does not know are skipped and counted, never fatal.
pub const PROTOCOL_VERSION: u16 = 5;

/// ALPN identifier. It carries no version on purpose: a version mismatch must reach the
/// handshake, where it gets a clear message, instead of failing inside TLS.
pub const ALPN: &[u8] = b"kumo";

/// Bytes of the fixed part of a frame header: the least a decoder accepts.
pub const FRAME_HEADER_LEN: usize = 48;

/// Bytes of the header this build sends: the fixed part and the `host_behind` extension.
/// (Version 5 decoders that predate the extension skip it; a header without it reads as 0.)
pub const SENT_FRAME_HEADER_LEN: usize = FRAME_HEADER_LEN + 4;

/// Longest header a later protocol version may send (extra bytes are skipped).
pub const MAX_FRAME_HEADER_LEN: usize = 256;

/// Largest encoded frame accepted: a 3840×2160 IDR at 150 Mbit/s is about 2.5 MB
/// (openh264 output measured at 2160p), so 16 MiB leaves room without letting a peer
/// make us hold hundreds of megabytes.
pub const MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024;

/// Largest control message body. Every control message is a handful of integers and at
/// most one short text.
pub const MAX_CONTROL_BYTES: usize = 4096;

/// Longest text field (names, reasons) in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{AudioFormat, SpeakerLayout};
    use crate::view::color::ColorSpace;
    use proptest::prelude::*;

    fn header_strategy() -> impl Strategy<Value = FrameHeader> {
        (any::<u64>(), any::<u64>(), any::<u32>(), any::<bool>(), any::<u16>(), any::<u16>(), 0..=MAX_FRAME_BYTES)
            .prop_map(|(frame_number, capture_micros, encode_micros, idr, width, height, payload_len)| FrameHeader {
                frame_number,
                capture_micros,
                encode_micros,
                kind: if idr {
                    FrameKind::Idr
                } else if frame_number % 3 == 0 {
                    FrameKind::Recovery
                } else {
                    FrameKind::Inter
                },
                width,
                height,
                payload_len,
                input_seq: frame_number.rotate_left(7),
                held_back: encode_micros.rotate_left(11),
                host_behind: payload_len.rotate_left(5),
            })
    }

    fn control_strategy() -> impl Strategy<Value = Control> {
        let text = "\\PC{0,40}";
        prop_oneof![
            (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u16>(), any::<u16>(), text)
                .prop_map(|(version, width, height, fps, bitrate_kbps, max_width, max_height, client_name)| {
                    Control::Hello(Hello {
                        version,
                        width,
                        height,
                        fps,
                        bitrate_kbps,
                        max_width,
                        max_height,
                        audio_channels: (client_name.len() % 9) as u8,
                        resume_token: u64::from(bitrate_kbps).rotate_left(17),
                        capabilities: Capabilities::from_bits(u64::from(max_width) << 7 | u64::from(fps)),
                        start_kbps: bitrate_kbps / 4,
                        client_name,
                    })
                }),
            (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>(), text, 0..4usize).prop_map(
                |(version, width, height, fps, bitrate_kbps, host_name, c)| {
                    let color = ColorSpace::ALL[c];
                    let layout = [SpeakerLayout::Stereo, SpeakerLayout::Surround51, SpeakerLayout::Surround71][c % 3];
                    let audio = (c != 3).then_some(AudioFormat {
                        layout,
                        packet_frames: 240 * (1 + c as u16),
                        bitrate_kbps: bitrate_kbps as u16,
                        redundancy: c == 1,
                    });
                    let resume_token = u64::from(bitrate_kbps) << 20 | c as u64;
                    Control::Welcome(Welcome {
                        version,
                        width,
                        height,
                        fps,
                        bitrate_kbps,
                        host_name,
                        color,
                        audio,
                        resume_token,
                        capabilities: Capabilities::from_bits(resume_token.rotate_left(9)),
                    })
                }
            ),
            (0..7u8, any::<u16>(), text).prop_map(|(r, host_version, message)| Control::Reject {
                reason: RejectReason::ALL[r as usize],
                host_version,
                message
            }),
            any::<u64>().prop_map(|last_good_frame| Control::RequestIdr { last_good_frame }),
            (any::<u16>(), text, any::<[u8; 32]>(), any::<u8>()).prop_map(|(version, client_name, p, side)| {
                let mut pake = [side; PAKE_MESSAGE_LEN];
                pake[1..].copy_from_slice(&p);
                Control::PairRequest { version, client_name, pake }
            }),
            (text, any::<[u8; 32]>()).prop_map(|(host_name, p)| {
                let mut pake = [b'B'; PAKE_MESSAGE_LEN];
                pake[1..].copy_from_slice(&p);
                Control::PairChallenge { host_name, pake }
            }),
            any::<[u8; 32]>().prop_map(|tag| Control::PairConfirm { tag }),
            any::<[u8; 32]>().prop_map(|tag| Control::Paired { tag }),
            (any::<u16>(), any::<u32>()).prop_map(|(idr_pic_id, frame_num)| Control::LtrAck { idr_pic_id, frame_num }),
            (any::<u16>(), any::<u64>())
                .prop_map(|(idr_pic_id, last_good_frame)| Control::RecoverLtr { idr_pic_id, last_good_frame }),
            any::<u32>().prop_map(|bitrate_kbps| Control::SetBitrate { bitrate_kbps }),
            (any::<u32>(), any::<u64>()).prop_map(|(id, client_micros)| Control::Ping { id, client_micros }),
            (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(id, client_micros, host_micros)| Control::Pong {
                id,
                client_micros,
                host_micros
            }),
            (any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>())
                .prop_map(|(pad, strong, weak, duration_ms)| { Control::Rumble { pad, strong, weak, duration_ms } }),
            (0..4u8, text).prop_map(|(r, message)| Control::Goodbye {
                reason: [
                    GoodbyeReason::Finished,
                    GoodbyeReason::HostShutdown,
                    GoodbyeReason::ProtocolError,
                    GoodbyeReason::Revoked,
                ][r as usize],
                message
            }),
        ]
    }

    proptest! {
        #[test]
        fn frame_header_round_trips(h in header_strategy()) {
            let mut buf = Vec::new();
            h.encode(&mut buf);
            prop_assert_eq!(buf.len(), SENT_FRAME_HEADER_LEN);
            prop_assert_eq!(FrameHeader::decode(&buf), Ok((h, SENT_FRAME_HEADER_LEN)));
        }

        #[test]
        fn a_header_without_the_extension_reads_host_behind_as_zero(h in header_strategy()) {
            // What a version 5 host from before the extension sends: the fixed part only.
            let mut buf = Vec::new();
            h.encode(&mut buf);
            buf.truncate(FRAME_HEADER_LEN);
            buf[6..8].copy_from_slice(&(FRAME_HEADER_LEN as u16).to_le_bytes());
            prop_assert_eq!(FrameHeader::decode(&buf), Ok((FrameHeader { host_behind: 0, ..h }, FRAME_HEADER_LEN)));
        }

        #[test]
        fn truncated_frame_header_is_an_error(h in header_strategy(), cut in 0..SENT_FRAME_HEADER_LEN) {
            let mut buf = Vec::new();
            h.encode(&mut buf);
            prop_assert!(FrameHeader::decode(&buf[..cut]).is_err());
        }

        #[test]
        fn control_round_trips(msg in control_strategy()) {
            let mut buf = Vec::new();
            msg.encode(&mut buf);
            let len = Control::body_len([buf[0], buf[1]]).unwrap();
            prop_assert_eq!(len, buf.len() - 2);
            prop_assert_eq!(Control::decode_body(&buf[2..]), Ok(msg));
        }

        #[test]
        fn truncated_control_is_an_error_or_the_older_message(msg in control_strategy(), cut in 0usize..64) {
            let mut buf = Vec::new();
            msg.encode(&mut buf);
            let body = &buf[2..];
            prop_assume!(cut < body.len());
            match Control::decode_body(&body[..cut]) {
                Err(_) => {}
                // Cut exactly before the capabilities a `Hello` or `Welcome` ends with: that is
                // the message as a build before capabilities sends it, which reads as none.
                // A `Hello` cut before its start rate is a build's before start rates: it
                // starts at its bitrate.
                Ok(older) => {
                    let without = match msg {
                        Control::Hello(h) if cut == body.len() - 4 => Control::Hello(Hello { start_kbps: 0, ..h }),
                        Control::Hello(h) => {
                            prop_assert_eq!(cut, body.len() - 12);
                            Control::Hello(Hello { capabilities: Capabilities::NONE, start_kbps: 0, ..h })
                        }
                        Control::Welcome(w) => {
                            prop_assert_eq!(cut, body.len() - 8);
                            Control::Welcome(Welcome { capabilities: Capabilities::NONE, ..w })
                        }
                        other => other,
                    };
                    prop_assert_eq!(older, without);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            Control::decode_body(&bytes).ok();
            FrameHeader::decode(&bytes).ok();
            if bytes.len() >= 2 {
                Control::body_len([bytes[0], bytes[1]]).ok();
            }
        }
    }

    #[test]
    fn oversized_payload_is_rejected_before_allocation() {
        let mut buf = Vec::new();
        FrameHeader {
            frame_number: 1,
            capture_micros: 2,
            encode_micros: 3,
            kind: FrameKind::Idr,
            width: 4,
            height: 5,
            payload_len: MAX_FRAME_BYTES + 1,
            input_seq: 0,
            held_back: 0,
            host_behind: 0,
        }
        .encode(&mut buf);
        assert!(matches!(FrameHeader::decode(&buf), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn oversized_control_body_is_rejected() {
        assert!(matches!(Control::body_len(u16::MAX.to_le_bytes()), Err(WireError::TooLarge { .. })));
        assert_eq!(Control::body_len([0, 0]), Err(WireError::Empty));
        // A text field claiming more than the cap is rejected even when the bytes are there.
        let mut body = vec![control::tag::GOODBYE, 0];
        body.extend_from_slice(&((MAX_TEXT_BYTES + 1) as u16).to_le_bytes());
        body.resize(body.len() + MAX_TEXT_BYTES + 1, b'a');
        assert!(matches!(Control::decode_body(&body), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let mut buf = Vec::new();
        Control::Goodbye { reason: GoodbyeReason::Finished, message: long }.encode(&mut buf);
        let Control::Goodbye { message, .. } = Control::decode_body(&buf[2..]).unwrap() else { panic!() };
        assert!(message.len() <= MAX_TEXT_BYTES && message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_newer_peers_messages_read_as_far_as_this_build_knows() {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            width: 1280,
            height: 720,
            fps: 60,
            bitrate_kbps: 9000,
            max_width: 1920,
            max_height: 1080,
            client_name: "newer".into(),
            audio_channels: 2,
            resume_token: 7,
            capabilities: Capabilities::from_bits(Capabilities::THIS_BUILD.bits() | 1 << 40),
            start_kbps: 2250,
        };
        let mut buf = Vec::new();
        Control::Hello(hello.clone()).encode(&mut buf);
        // Fields a later version appends after the capabilities are skipped; unknown bits kept.
        let mut body = buf[2..].to_vec();
        body.extend_from_slice(&[9; 12]);
        let Control::Hello(read) = Control::decode_body(&body).unwrap() else { panic!("not a Hello") };
        assert_eq!(read, hello);
        assert!(!read.capabilities.both(Capabilities::THIS_BUILD).contains(Capabilities::from_bits(1 << 40)));
        // A message kind this build does not know is named, with its tag, not an error.
        assert_eq!(Control::decode_body(&[200, 1, 2, 3]), Ok(Control::Unknown { tag: 200 }));
    }

    #[test]
    fn other_versions_and_garbage_are_named() {
        let mut buf = Vec::new();
        FrameHeader {
            frame_number: 0,
            capture_micros: 0,
            encode_micros: 0,
            kind: FrameKind::Inter,
            width: 0,
            height: 0,
            payload_len: 0,
            input_seq: 0,
            held_back: 0,
            host_behind: 0,
        }
        .encode(&mut buf);
        let mut other = buf.clone();
        other[2] = 9;
        assert_eq!(FrameHeader::decode(&other), Err(WireError::UnsupportedVersion { got: 9 }));
        let mut garbage = buf.clone();
        garbage[0] = b'X';
        assert_eq!(FrameHeader::decode(&garbage), Err(WireError::BadMagic));
        let mut kind = buf;
        kind[4] = 7;
        assert_eq!(FrameHeader::decode(&kind), Err(WireError::UnknownFrameKind(7)));
    }
}

//! Opus in a recording: the `OpusHead` a Matroska track carries (RFC 7845, 5.1), and the
//! multistream packets that keep every channel of 5.1 and 7.1 in one track.
//!
//! kumo sends surround as one stereo Opus stream per coupled pair (FL+FR, FC+LFE, RL+RR,
//! SL+SR; `core::audio`), which is exactly what an Opus multistream is. A multistream packet is
//! the streams' packets one after another, every one but the last in the self-delimiting
//! framing of RFC 6716, Appendix B (which adds the size of its last frame); channel mapping
//! family 1 then names which decoded channel is which speaker, in Vorbis order.

use crate::audio::{RATE, SpeakerLayout};

/// The samples an Opus decoder's output starts late by: the encoder's look-ahead in its
/// low-delay mode (2.5 ms at 48 kHz), which kumo's host uses.
pub(crate) const PRE_SKIP: u16 = 120;

/// For each speaker in Vorbis order (the order RFC 7845, 5.1.1.2 gives for family 1), which
/// decoded channel carries it: kumo's streams decode to the wire order FL FR FC LFE RL RR SL SR.
fn mapping(layout: SpeakerLayout) -> &'static [u8] {
    match layout {
        SpeakerLayout::Stereo => &[0, 1],
        // Vorbis 5.1: FL FC FR RL RR LFE.
        SpeakerLayout::Surround51 => &[0, 2, 1, 4, 5, 3],
        // Vorbis 7.1: FL FC FR SL SR RL RR LFE.
        SpeakerLayout::Surround71 => &[0, 2, 1, 6, 7, 4, 5, 3],
    }
}

/// The identification header for `layout`: family 0 for stereo, family 1 (one coupled stream
/// per pair) for surround.
pub(crate) fn head(layout: SpeakerLayout) -> Vec<u8> {
    let mut h = Vec::with_capacity(19 + 10);
    h.extend_from_slice(b"OpusHead");
    h.push(1);
    h.push(layout.channels());
    h.extend_from_slice(&PRE_SKIP.to_le_bytes());
    h.extend_from_slice(&RATE.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    if layout == SpeakerLayout::Stereo {
        h.push(0);
    } else {
        let streams = layout.streams() as u8;
        h.push(1);
        h.push(streams);
        h.push(streams);
        h.extend_from_slice(mapping(layout));
    }
    h
}

/// Appends an Opus frame length (RFC 6716, 3.2.1): one byte under 252, else two.
fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 252 {
        out.push(len as u8);
    } else {
        let first = 252 + (len & 3);
        out.push(first as u8);
        out.push(((len - first) >> 2) as u8);
    }
}

/// Reads a frame length at `at`: the length and the bytes it took.
fn read_len(packet: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = usize::from(*packet.get(at)?);
    if first < 252 {
        return Some((first, 1));
    }
    let second = usize::from(*packet.get(at + 1)?);
    Some((first + 4 * second, 2))
}

/// Largest Opus frame (RFC 6716, 3.4).
const MAX_FRAME: usize = 1275;

/// Appends `packet` in the self-delimiting framing: the same packet with the size of its
/// last frame (or, with equal frames, of each) written after the lengths it already has.
/// `None` for a packet that is not well formed (RFC 6716, 3.4), which nothing can delimit.
pub(crate) fn put_self_delimited(out: &mut Vec<u8>, packet: &[u8]) -> Option<()> {
    let toc = *packet.first()?;
    let (header_end, added) = match toc & 3 {
        0 => (1, packet.len() - 1),
        1 => {
            let body = packet.len() - 1;
            body.is_multiple_of(2).then_some(())?;
            (1, body / 2)
        }
        2 => {
            let (first, taken) = read_len(packet, 1)?;
            let end = 1 + taken;
            let last = packet.len().checked_sub(end + first)?;
            (end, last)
        }
        _ => {
            let count = *packet.get(1)?;
            let (vbr, padded, frames) = (count & 0x80 != 0, count & 0x40 != 0, usize::from(count & 0x3F));
            (frames > 0).then_some(())?;
            let mut at = 2;
            let mut padding = 0usize;
            if padded {
                loop {
                    let b = usize::from(*packet.get(at)?);
                    at += 1;
                    padding += if b == 255 { 254 } else { b };
                    if b != 255 {
                        break;
                    }
                }
            }
            if vbr {
                let mut sum = 0usize;
                for _ in 1..frames {
                    let (len, taken) = read_len(packet, at)?;
                    at += taken;
                    sum += len;
                }
                let last = packet.len().checked_sub(at + sum + padding)?;
                (at, last)
            } else {
                let body = packet.len().checked_sub(at + padding)?;
                body.is_multiple_of(frames).then_some(())?;
                (at, body / frames)
            }
        }
    };
    (added <= MAX_FRAME && header_end <= packet.len()).then_some(())?;
    out.extend_from_slice(&packet[..header_end]);
    put_len(out, added);
    out.extend_from_slice(&packet[header_end..]);
    Some(())
}

/// One recorded packet of `coded` (one Opus packet per stream, in stream order): the packet
/// itself for stereo, a multistream packet for surround. `None` when a stream's packet is
/// missing or malformed.
pub(crate) fn packet(coded: &[Vec<u8>]) -> Option<Vec<u8>> {
    let (last, rest) = coded.split_last()?;
    let mut out = Vec::with_capacity(coded.iter().map(|c| c.len() + 2).sum());
    for stream in rest {
        put_self_delimited(&mut out, stream)?;
    }
    out.extend_from_slice(last);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_heads_use_family_0_and_surround_names_every_speaker() {
        let stereo = head(SpeakerLayout::Stereo);
        assert_eq!(stereo.len(), 19);
        assert_eq!(&stereo[..10], b"OpusHead\x01\x02");
        assert_eq!(u16::from_le_bytes([stereo[10], stereo[11]]), PRE_SKIP);
        assert_eq!(u32::from_le_bytes([stereo[12], stereo[13], stereo[14], stereo[15]]), 48_000);
        let five_one = head(SpeakerLayout::Surround51);
        assert_eq!(five_one.len(), 21 + 6);
        assert_eq!(&five_one[18..21], [1, 3, 3]);
        let seven_one = head(SpeakerLayout::Surround71);
        assert_eq!(&seven_one[18..21], [1, 4, 4]);
        // Every decoded channel is used once.
        for layout in [SpeakerLayout::Surround51, SpeakerLayout::Surround71] {
            let mut m = mapping(layout).to_vec();
            m.sort_unstable();
            assert_eq!(m, (0..layout.channels()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn lengths_round_trip_across_the_two_byte_edge() {
        for len in [0, 1, 251, 252, 253, 255, 256, 1000, 1275] {
            let mut out = Vec::new();
            put_len(&mut out, len);
            assert_eq!(read_len(&out, 0), Some((len, out.len())), "{len}");
        }
    }

    #[test]
    fn each_framing_code_gets_its_last_frames_size() {
        let mut out = Vec::new();
        // Code 0: one frame of 300 bytes.
        let mut p = vec![0b0000_1000];
        p.extend(std::iter::repeat_n(7, 300));
        put_self_delimited(&mut out, &p).unwrap();
        assert_eq!(&out[..3], [0b0000_1000, 252, 12]);
        assert_eq!(out.len(), p.len() + 2);
        // Code 1: two frames of 10.
        out.clear();
        put_self_delimited(&mut out, &[&[0b0000_1001][..], &[1; 20]].concat()).unwrap();
        assert_eq!(&out[..2], [0b0000_1001, 10]);
        // Code 2: frames of 3 and 5.
        out.clear();
        put_self_delimited(&mut out, &[&[0b0000_1010, 3][..], &[1; 8]].concat()).unwrap();
        assert_eq!(&out[..3], [0b0000_1010, 3, 5]);
        // Code 3, VBR, padded by 2: frames of 2, 4 and 6.
        out.clear();
        let p = [&[0b0000_1011, 0b1100_0011, 2, 2, 4][..], &[1; 12], &[0; 2]].concat();
        put_self_delimited(&mut out, &p).unwrap();
        assert_eq!(&out[..6], [0b0000_1011, 0b1100_0011, 2, 2, 4, 6]);
        // Code 3, CBR, 3 frames of 4.
        out.clear();
        put_self_delimited(&mut out, &[&[0b0000_1011, 0b0000_0011][..], &[1; 12]].concat()).unwrap();
        assert_eq!(&out[..3], [0b0000_1011, 0b0000_0011, 4]);
    }

    proptest::proptest! {
        /// Bytes from the network (a packet the decoder may have refused) never panic it, and
        /// a packet it delimits grows by exactly its added length field.
        #[test]
        fn any_bytes_are_delimited_or_refused_without_panic(packet in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1400)) {
            let mut out = Vec::new();
            if put_self_delimited(&mut out, &packet).is_some() {
                let added = out.len() - packet.len();
                proptest::prop_assert!(added == 1 || added == 2);
                proptest::prop_assert_eq!(out[0], packet[0]);
            } else {
                proptest::prop_assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn malformed_packets_are_refused_not_guessed() {
        let mut out = Vec::new();
        assert!(put_self_delimited(&mut out, &[]).is_none());
        assert!(put_self_delimited(&mut out, &[0b01, 1, 2, 3]).is_none(), "code 1 with an odd body");
        assert!(put_self_delimited(&mut out, &[0b10, 200, 1]).is_none(), "code 2 past its end");
        assert!(put_self_delimited(&mut out, &[0b11, 0]).is_none(), "code 3 with no frames");
        assert!(put_self_delimited(&mut out, &[0b11, 0x41, 255]).is_none(), "padding past the end");
        assert!(packet(&[]).is_none());
        assert_eq!(packet(&[vec![0, 1, 2]]).unwrap(), [0, 1, 2], "stereo is the packet itself");
        assert_eq!(packet(&[vec![0, 9], vec![0, 1]]).unwrap(), [0, 1, 9, 0, 1]);
    }
}

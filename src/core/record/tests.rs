use super::*;

/// A tiny EBML reader for the tests: (id, body range) of each element in `data[range]`.
fn elements(data: &[u8], mut at: usize, end: usize) -> Vec<(u32, std::ops::Range<usize>)> {
    let mut found = Vec::new();
    while at < end {
        let first = data[at];
        let id_len = first.leading_zeros() as usize + 1;
        let id = data[at..at + id_len].iter().fold(0u32, |v, &b| v << 8 | u32::from(b));
        at += id_len;
        let size_len = data[at].leading_zeros() as usize + 1;
        let raw = data[at..at + size_len].iter().fold(0u64, |v, &b| v << 8 | u64::from(b));
        let size = raw & ((1u64 << (7 * size_len)) - 1);
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        at += size_len;
        let body_end = if unknown { end } else { at + size as usize };
        found.push((id, at..body_end));
        at = body_end;
    }
    found
}

fn child(data: &[u8], range: &std::ops::Range<usize>, want: u32) -> Option<std::ops::Range<usize>> {
    elements(data, range.start, range.end).into_iter().find(|(i, _)| *i == want).map(|(_, r)| r)
}

fn uint(data: &[u8], r: std::ops::Range<usize>) -> u64 {
    data[r].iter().fold(0, |v, &b| v << 8 | u64::from(b))
}

/// Every block of the file: (track, ms, key, body).
fn blocks(file: &[u8]) -> Vec<(u8, i64, bool, Vec<u8>)> {
    let top = elements(file, 0, file.len());
    assert_eq!(top[0].0, id::EBML);
    assert_eq!(top[1].0, id::SEGMENT);
    let mut out = Vec::new();
    for (i, r) in elements(file, top[1].1.start, top[1].1.end) {
        if i != id::CLUSTER {
            continue;
        }
        let t = uint(file, child(file, &r, id::TIMESTAMP).unwrap()) as i64;
        for (j, b) in elements(file, r.start, r.end) {
            if j == id::SIMPLE_BLOCK {
                let body = &file[b];
                let relative = i16::from_be_bytes([body[1], body[2]]);
                out.push((body[0] & 0x7F, t + i64::from(relative), body[3] & 0x80 != 0, body[4..].to_vec()));
            }
        }
    }
    out
}

const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01];
const PPS: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];

fn idr() -> Vec<u8> {
    [&[0, 0, 0, 1][..], SPS, &[0, 0, 0, 1], PPS, &[0, 0, 1, 0x65, 0x88, 0x84, 0x21]].concat()
}

fn inter(n: u8) -> Vec<u8> {
    vec![0, 0, 0, 1, 0x41, 0x9A, n]
}

fn frame(capture_micros: u64, key: bool, annexb: &[u8]) -> VideoFrame<'_> {
    VideoFrame { capture_micros, key, width: 1280, height: 720, annexb }
}

/// `seconds` of 60 fps video and 5 ms packets of stereo sound, the sound arriving 40 ms after
/// the picture it goes with (as the client's buffers make it), from a host clock at `t0`.
fn session(m: &mut Muxer, t0: u64, seconds: u64, file: &mut Vec<u8>) {
    let idr = idr();
    let mut next_audio = t0;
    for f in 0..seconds * 60 {
        let at = t0 + f * 1_000_000 / 60;
        let unit = if f == 0 { idr.clone() } else { inter(f as u8) };
        assert_eq!(m.video(frame(at, f == 0, &unit)), Taken::Kept);
        while next_audio + 40_000 <= at {
            assert_eq!(m.audio(next_audio, &[vec![0xFC, 1, 2, 3]]), Taken::Kept);
            next_audio += 5_000;
        }
        file.extend(m.take_output());
    }
}

#[test]
fn the_file_starts_at_the_first_idr_and_holds_every_frame_and_packet_in_order() {
    let mut m = Muxer::new(60, Some((SpeakerLayout::Stereo, 240)));
    let mut file = Vec::new();
    // Before the first IDR: nothing is written.
    assert_eq!(m.video(frame(500, false, &inter(0))), Taken::BeforeStart);
    assert_eq!(m.audio(600, &[vec![0xFC, 1]]), Taken::BeforeStart);
    assert!(m.take_output().is_empty());
    session(&mut m, 1_000_000, 5, &mut file);
    let (tail, patch) = m.finish();
    file.extend(tail);
    let (at, duration) = patch.unwrap();
    file[at as usize..at as usize + duration.len()].copy_from_slice(&duration);

    let all = blocks(&file);
    let video: Vec<_> = all.iter().filter(|b| b.0 == 1).collect();
    let audio: Vec<_> = all.iter().filter(|b| b.0 == 2).collect();
    assert_eq!(video.len(), 300);
    assert_eq!(audio.len() as u64, m.counts().audio_packets);
    assert!(audio.len() > 980, "{}", audio.len());
    assert!(video[0].2 && !video[1].2, "only the IDR is a key frame");
    assert_eq!(video[0].1, 0, "the file's zero is the first IDR");
    assert_eq!(video[60].1, 1000);
    // AVCC: the IDR's three NAL units with 4-byte lengths.
    assert_eq!(&video[0].3[..4], [0, 0, 0, SPS.len() as u8]);
    assert_eq!(video[1].3, [0, 0, 0, 3, 0x41, 0x9A, 1]);
    // Each track in time order, across clusters.
    for track in [&video, &audio] {
        assert!(track.windows(2).all(|w| w[0].1 <= w[1].1));
    }
    assert!(audio.windows(2).all(|w| w[1].1 - w[0].1 == 5));
    // The duration written over the room kept for it.
    let top = elements(&file, 0, file.len());
    let info = child(&file, &top[1].1, id::INFO).unwrap();
    let d = child(&file, &info, id::DURATION).unwrap();
    let seconds = f64::from_be_bytes(file[d].try_into().unwrap());
    assert!((seconds - 5000.0).abs() < 20.0, "{seconds}");
    // Tracks: H.264 with its avcC, Opus with its head.
    let tracks = child(&file, &top[1].1, id::TRACKS).unwrap();
    let entries = elements(&file, tracks.start, tracks.end);
    assert_eq!(entries.len(), 2);
    let codec = |e: &std::ops::Range<usize>| file[child(&file, e, id::CODEC_ID).unwrap()].to_vec();
    assert_eq!(codec(&entries[0].1), b"V_MPEG4/ISO/AVC");
    assert_eq!(codec(&entries[1].1), b"A_OPUS");
    let avcc = &file[child(&file, &entries[0].1, id::CODEC_PRIVATE).unwrap()];
    assert_eq!(&avcc[..6], [1, 0x42, 0xC0, 0x1F, 0xFF, 0xE1]);
}

#[test]
fn a_file_cut_after_any_cluster_is_whole() {
    let mut m = Muxer::new(60, Some((SpeakerLayout::Stereo, 240)));
    let mut file = Vec::new();
    let mut cuts = Vec::new();
    let idr = idr();
    for f in 0..600u64 {
        let unit = if f == 0 { idr.clone() } else { inter(f as u8) };
        m.video(frame(f * 16_667, f == 0, &unit));
        let out = m.take_output();
        if !out.is_empty() {
            file.extend(out);
            cuts.push(file.len());
        }
    }
    assert!(cuts.len() >= 8, "a cluster about every second: {}", cuts.len());
    // A process killed between two writes leaves one of these: each parses whole, and holds
    // every frame up to its last cluster.
    let mut seen = 0;
    for &cut in &cuts[1..] {
        let n = blocks(&file[..cut]).len();
        assert!(n > seen);
        seen = n;
    }
}

#[test]
fn stamps_strictly_increase_on_each_track_even_when_captures_crowd() {
    let mut m = Muxer::new(60, Some((SpeakerLayout::Stereo, 240)));
    m.video(frame(0, true, &idr()));
    // A host catching up: three frames within a millisecond, then one captured 9 ms late
    // and one on time: each to its own slot of the 60 fps grid.
    for at in [16_667, 16_900, 17_100, 75_600, 83_300] {
        m.video(frame(at, false, &inter(1)));
    }
    let (tail, _) = m.finish();
    let video: Vec<i64> = blocks(&tail).into_iter().filter(|b| b.0 == 1).map(|b| b.1).collect();
    assert_eq!(video, [0, 17, 33, 50, 67, 83]);
}

#[test]
fn a_block_later_than_its_cluster_is_dropped_not_written_out_of_order() {
    let mut m = Muxer::new(60, Some((SpeakerLayout::Stereo, 240)));
    m.video(frame(0, true, &idr()));
    for f in 1..120u64 {
        m.video(frame(f * 16_667, false, &inter(1)));
    }
    assert!(m.counts().clusters >= 1);
    // Sound from 100 ms, arriving 1.9 s late: its cluster is written.
    assert_eq!(m.audio(100_000, &[vec![0xFC, 1]]), Taken::Late);
    // Sound 600 ms behind the newest picture still finds its cluster open.
    assert_eq!(m.audio(1_383_000, &[vec![0xFC, 1]]), Taken::Kept);
    assert_eq!(m.counts().late, 1);
}

#[test]
fn an_idr_without_parameter_sets_cannot_start_a_file_and_an_empty_unit_is_refused() {
    let mut m = Muxer::new(60, None);
    assert_eq!(m.video(frame(0, true, &[0, 0, 1, 0x65, 0x88])), Taken::BeforeStart);
    assert_eq!(m.video(frame(0, true, &idr())), Taken::Kept);
    assert_eq!(m.video(frame(16_667, false, &[1, 2, 3])), Taken::Malformed);
    // No sound track: packets are refused.
    assert_eq!(m.audio(0, &[vec![0xFC]]), Taken::Malformed);
    let (_, patch) = m.finish();
    assert!(patch.is_some());
    assert!(Muxer::new(60, None).finish().1.is_none(), "a file that never started has nothing to patch");
}

#[test]
fn memory_waiting_for_a_cluster_is_bounded_whatever_the_stamps_say() {
    let mut m = Muxer::new(60, None);
    m.video(frame(0, true, &idr()));
    // A frozen capture clock: every frame at the same stamp, 1 MB each. The waiting blocks
    // are cut into a cluster at the cap; what comes after with the same stamp is late.
    let big = [&[0, 0, 1, 0x41][..], &vec![7u8; 1 << 20]].concat();
    for _ in 0..100 {
        m.video(frame(0, false, &big));
        assert!(m.pending_bytes <= MAX_PENDING_BYTES + big.len());
        m.take_output();
    }
    assert_eq!(m.counts().clusters, 1);
    assert_eq!(m.counts().video_frames + m.counts().late, 101);
    assert!(m.counts().late > 70);
}

#[test]
fn surround_is_one_multistream_track() {
    let mut m = Muxer::new(60, Some((SpeakerLayout::Surround51, 240)));
    m.video(frame(0, true, &idr()));
    let coded = vec![vec![0xFC, 1, 1], vec![0xFC, 2], vec![0xFC, 3, 3, 3]];
    assert_eq!(m.audio(10_000, &coded), Taken::Kept);
    let (tail, _) = m.finish();
    let mut file = m.take_output();
    file.extend(tail);
    let audio: Vec<_> = blocks(&file).into_iter().filter(|b| b.0 == 2).collect();
    // Two self-delimited packets (TOC, size, frame), then the last as it is.
    assert_eq!(audio[0].3, [0xFC, 2, 1, 1, 0xFC, 1, 2, 0xFC, 3, 3, 3]);
}

proptest::proptest! {
    /// Whatever bytes an access unit or a sound packet holds, the muxer takes or refuses them
    /// without a panic, and what it writes parses whole.
    #[test]
    fn any_bytes_are_muxed_or_refused_without_panic(
        units in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..20),
        key_first in proptest::prelude::any::<bool>(),
    ) {
        let mut m = Muxer::new(60, Some((SpeakerLayout::Surround51, 240)));
        let mut file = Vec::new();
        let start = if key_first { idr() } else { inter(0) };
        m.video(frame(0, key_first, &start));
        for (i, unit) in units.iter().enumerate() {
            let at = (i as u64 + 1) * 16_667;
            m.video(frame(at, i % 7 == 0, unit));
            m.audio(at, &[unit.clone(), unit.clone(), unit.clone()]);
            file.extend(m.take_output());
        }
        let (tail, _) = m.finish();
        file.extend(tail);
        if key_first {
            let all = blocks(&file);
            proptest::prop_assert!(!all.is_empty());
        } else {
            proptest::prop_assert!(file.is_empty());
        }
    }
}

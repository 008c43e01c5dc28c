//! The replay buffer (`--replay-seconds N`): the last N seconds of the stream, kept in memory
//! as they arrived (compressed), saved to a file on a hotkey.
//!
//! A file can only start at an IDR, and kumo's host sends none on its own (a recovery frame
//! refers to an older reference), so while a replay buffer is on the client asks for one every
//! [`key_frame_every`] (a third of N, between 2 and 10 s). The buffer keeps everything from
//! the newest IDR at least N seconds old: it holds N seconds plus at most one such interval,
//! and a saved file is N seconds long, up to one interval more. Memory is bounded twice: by
//! that time, and by [`MAX_BYTES`] (past it, the oldest interval goes, so a save may then be
//! shorter than N).

use super::{Muxer, VideoFrame};
use crate::audio::SpeakerLayout;
use std::collections::VecDeque;
use std::time::Duration;

/// The most a replay buffer holds: 40 s of a 50 Mbit/s stream.
pub const MAX_BYTES: usize = 256 << 20;

/// How often a replay buffer of `keep` asks for an IDR.
pub fn key_frame_every(keep: Duration) -> Duration {
    (keep / 3).clamp(Duration::from_secs(2), Duration::from_secs(10))
}

#[derive(Debug)]
enum Item {
    Picture { capture_micros: u64, key: bool, width: u16, height: u16, annexb: Vec<u8> },
    Sound { capture_micros: u64, coded: Vec<Vec<u8>> },
}

impl Item {
    fn bytes(&self) -> usize {
        match self {
            Self::Picture { annexb, .. } => annexb.len() + 32,
            Self::Sound { coded, .. } => coded.iter().map(|c| c.len() + 24).sum::<usize>() + 32,
        }
    }

    fn capture_micros(&self) -> u64 {
        match self {
            Self::Picture { capture_micros, .. } | Self::Sound { capture_micros, .. } => *capture_micros,
        }
    }

    fn is_key(&self) -> bool {
        matches!(self, Self::Picture { key: true, .. })
    }
}

/// A saved replay: the file's bytes and the span it covers.
#[derive(Debug)]
pub struct Saved {
    pub file: Vec<u8>,
    pub span: Duration,
    pub pictures: u64,
}

/// The last seconds of the stream.
#[derive(Debug)]
pub struct ReplayBuffer {
    keep: Duration,
    max_bytes: usize,
    items: VecDeque<Item>,
    bytes: usize,
    newest_micros: u64,
    /// The stamps of the key pictures held, oldest first (the first item is one).
    keys: VecDeque<u64>,
}

impl ReplayBuffer {
    pub fn new(keep: Duration) -> Self {
        Self::with_cap(keep, MAX_BYTES)
    }

    pub fn with_cap(keep: Duration, max_bytes: usize) -> Self {
        Self { keep, max_bytes, items: VecDeque::new(), bytes: 0, newest_micros: 0, keys: VecDeque::new() }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A decoded picture (its access unit copied: the recording may have the original).
    pub fn picture(&mut self, frame: VideoFrame<'_>) {
        // Nothing before the first IDR can be saved.
        if self.items.is_empty() && !frame.key {
            return;
        }
        self.push(Item::Picture {
            capture_micros: frame.capture_micros,
            key: frame.key,
            width: frame.width,
            height: frame.height,
            annexb: frame.annexb.to_vec(),
        });
    }

    /// A sound packet played.
    pub fn sound(&mut self, capture_micros: u64, coded: &[Vec<u8>]) {
        if self.items.is_empty() {
            return;
        }
        self.push(Item::Sound { capture_micros, coded: coded.to_vec() });
    }

    fn push(&mut self, item: Item) {
        self.newest_micros = self.newest_micros.max(item.capture_micros());
        if item.is_key() {
            self.keys.push_back(item.capture_micros());
        }
        self.bytes += item.bytes();
        self.items.push_back(item);
        self.trim();
    }

    /// Drops what lies before the newest IDR at least `keep` old, and the oldest intervals
    /// while over the byte cap. Only the key pictures' stamps are looked at, unless something
    /// goes.
    fn trim(&mut self) {
        let cut = self.newest_micros.saturating_sub(self.keep.as_micros() as u64);
        while self.keys.get(1).is_some_and(|&second| second <= cut) {
            self.drop_interval();
        }
        while self.bytes > self.max_bytes {
            self.drop_interval();
        }
    }

    /// Drops everything before the second key picture (everything, without one: a stream with
    /// no IDR within the cap cannot be saved from anywhere but its start).
    fn drop_interval(&mut self) {
        let next = self.items.iter().skip(1).position(Item::is_key).map_or(self.items.len(), |i| i + 1);
        for item in self.items.drain(..next) {
            self.bytes -= item.bytes();
        }
        self.keys.pop_front();
        if self.items.is_empty() {
            self.keys.clear();
        }
    }

    /// The buffer as a Matroska file (for a stream at `fps`, with its sound layout when it has
    /// sound); `None` when it holds no picture.
    pub fn save(&self, fps: u16, audio: Option<(SpeakerLayout, u16)>) -> Option<Saved> {
        let first = self.items.front()?.capture_micros();
        let mut muxer = Muxer::new(fps, audio);
        let mut file = Vec::with_capacity(self.bytes + 4096);
        for item in &self.items {
            match item {
                Item::Picture { capture_micros, key, width, height, annexb } => {
                    let frame = VideoFrame {
                        capture_micros: *capture_micros,
                        key: *key,
                        width: *width,
                        height: *height,
                        annexb,
                    };
                    muxer.video(frame);
                }
                Item::Sound { capture_micros, coded } => {
                    muxer.audio(*capture_micros, coded);
                }
            }
            file.extend(muxer.take_output());
        }
        let (tail, patch) = muxer.finish();
        file.extend(tail);
        if let Some((at, bytes)) = patch {
            let at = usize::try_from(at).ok()?;
            file.get_mut(at..at + bytes.len())?.copy_from_slice(&bytes);
        }
        let pictures = muxer.counts().video_frames;
        let span = Duration::from_micros(self.newest_micros.saturating_sub(first));
        (pictures > 0).then_some(Saved { file, span, pictures })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idr() -> Vec<u8> {
        vec![0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 1, 0x65, 0x88]
    }

    /// `secs` of 60 fps with an IDR every `gop` seconds and sound every 5 ms.
    fn feed(b: &mut ReplayBuffer, secs: u64, gop: u64) {
        let (idr, inter) = (idr(), vec![0, 0, 1, 0x41, 0x9A, 0, 0, 0, 0, 0, 0, 0]);
        for f in 0..secs * 60 {
            let at = f * 1_000_000 / 60;
            let key = f % (gop * 60) == 0;
            let annexb = if key { &idr } else { &inter };
            b.picture(VideoFrame { capture_micros: at, key, width: 640, height: 360, annexb });
            if f % 3 == 0 {
                for k in 0..3 {
                    b.sound(at + k * 5_000, &[vec![0xFC, 1, 2]]);
                }
            }
        }
    }

    #[test]
    fn it_keeps_n_seconds_from_an_idr_and_at_most_one_interval_more() {
        let mut b = ReplayBuffer::new(Duration::from_secs(30));
        feed(&mut b, 120, 10);
        let saved = b.save(60, Some((SpeakerLayout::Stereo, 240))).unwrap();
        // 30 s back from 119.98 s is 89.98 s: the newest IDR before it is at 80 s.
        assert!((saved.span.as_secs_f64() - 39.98).abs() < 0.05, "{:?}", saved.span);
        assert_eq!(saved.pictures, 40 * 60);
        assert!(b.items.front().unwrap().is_key());
        // The bytes counted are the bytes held.
        assert_eq!(b.bytes, b.items.iter().map(Item::bytes).sum::<usize>());
    }

    #[test]
    fn memory_is_capped_by_dropping_the_oldest_interval() {
        let mut b = ReplayBuffer::with_cap(Duration::from_secs(30), 100_000);
        feed(&mut b, 60, 2);
        assert!(b.bytes() <= 100_000, "{}", b.bytes());
        assert!(b.items.front().unwrap().is_key(), "what is left starts at an IDR");
        let saved = b.save(60, None).unwrap();
        assert!(saved.span < Duration::from_secs(30), "shorter than asked, within the cap: {:?}", saved.span);
    }

    #[test]
    fn nothing_before_the_first_idr_is_kept_and_an_empty_buffer_saves_nothing() {
        let mut b = ReplayBuffer::new(Duration::from_secs(5));
        b.sound(0, &[vec![0xFC]]);
        b.picture(VideoFrame { capture_micros: 0, key: false, width: 8, height: 8, annexb: &[0, 0, 1, 0x41] });
        assert_eq!(b.bytes(), 0);
        assert!(b.save(60, None).is_none());
    }

    #[test]
    fn the_key_frame_interval_is_a_third_of_the_buffer_within_bounds() {
        assert_eq!(key_frame_every(Duration::from_secs(30)), Duration::from_secs(10));
        assert_eq!(key_frame_every(Duration::from_secs(3)), Duration::from_secs(2));
        assert_eq!(key_frame_every(Duration::from_mins(10)), Duration::from_secs(10));
        assert_eq!(key_frame_every(Duration::from_secs(15)), Duration::from_secs(5));
    }
}

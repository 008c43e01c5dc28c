//! `FILE.frames.csv`: one line per decoded frame with its times, for testers who measure
//! what the recording shows.
//!
//! Columns: the host's frame number and the frame's kind; when it was captured, on the
//! host's clock; when it was received (queued for the decoder), decoded and presented, on the
//! client's clock (presented is empty without a window, and for a picture a newer one
//! replaced before it was shown); the clock-sync estimate at decoding (host = client +
//! offset, so capture→presented is `presented_us + clock_offset_us - capture_host_us`);
//! and whether the frame is in the recording. All times are µs since the UNIX epoch.

use crate::wire::FrameKind;
use std::collections::VecDeque;
use std::fmt::Write as _;

pub const HEADER: &str = "frame,kind,capture_host_us,received_us,decoded_us,presented_us,clock_offset_us,recorded\n";

/// Lines waiting for their presentation at most; beyond, the oldest is written without one.
/// Two seconds at 120 fps: a presenter further behind than that shows nothing of them.
pub const MAX_WAITING: usize = 240;

/// A decoded frame's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub frame_number: u64,
    pub kind: FrameKind,
    pub capture_micros: u64,
    pub received_micros: u64,
    pub decoded_micros: u64,
    pub recorded: bool,
}

#[derive(Debug)]
struct Line {
    frame: Decoded,
    offset_micros: i64,
    presented_micros: Option<u64>,
}

/// The table: decoded frames in, CSV text out in frame order.
#[derive(Debug)]
pub struct FrameTable {
    /// Whether something presents the pictures (a window): then a line waits for its
    /// presentation.
    presents: bool,
    offset_micros: i64,
    waiting: VecDeque<Line>,
    text: String,
}

impl FrameTable {
    pub fn new(presents: bool) -> Self {
        Self { presents, offset_micros: 0, waiting: VecDeque::new(), text: HEADER.to_owned() }
    }

    /// The newest clock-sync estimate (host = client + offset).
    pub fn clock(&mut self, offset_micros: i64) {
        self.offset_micros = offset_micros;
    }

    pub fn decoded(&mut self, frame: Decoded) {
        self.waiting.push_back(Line { frame, offset_micros: self.offset_micros, presented_micros: None });
        if !self.presents || self.waiting.len() > MAX_WAITING {
            self.write_front();
        }
    }

    /// A picture shown: its line, and those of older pictures that were never shown, are done.
    pub fn presented(&mut self, frame_number: u64, presented_micros: u64) {
        let Some(i) = self.waiting.iter().position(|l| l.frame.frame_number == frame_number) else { return };
        self.waiting[i].presented_micros = Some(presented_micros);
        for _ in 0..=i {
            self.write_front();
        }
    }

    /// The text to append to the file now.
    pub fn take_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    /// Every line still waiting, written without a presentation.
    pub fn finish(&mut self) -> String {
        while !self.waiting.is_empty() {
            self.write_front();
        }
        self.take_text()
    }

    fn write_front(&mut self) {
        let Some(Line { frame: f, offset_micros, presented_micros }) = self.waiting.pop_front() else { return };
        let kind = match f.kind {
            FrameKind::Idr => "idr",
            FrameKind::Inter => "inter",
            FrameKind::Recovery => "recovery",
        };
        let presented = presented_micros.map(|p| p.to_string()).unwrap_or_default();
        writeln!(
            self.text,
            "{},{kind},{},{},{},{presented},{offset_micros},{}",
            f.frame_number,
            f.capture_micros,
            f.received_micros,
            f.decoded_micros,
            u8::from(f.recorded)
        )
        .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(n: u64) -> Decoded {
        Decoded {
            frame_number: n,
            kind: if n == 0 { FrameKind::Idr } else { FrameKind::Inter },
            capture_micros: 1000 + n,
            received_micros: 2000 + n,
            decoded_micros: 3000 + n,
            recorded: n != 2,
        }
    }

    #[test]
    fn without_a_window_each_line_is_written_at_once() {
        let mut t = FrameTable::new(false);
        t.clock(-5);
        t.decoded(decoded(0));
        assert_eq!(t.take_text(), format!("{HEADER}0,idr,1000,2000,3000,,-5,1\n"));
        t.decoded(decoded(2));
        assert_eq!(t.take_text(), "2,inter,1002,2002,3002,,-5,0\n");
    }

    #[test]
    fn a_line_waits_for_its_picture_and_a_replaced_picture_gets_none() {
        let mut t = FrameTable::new(true);
        t.take_text();
        for n in 0..3 {
            t.decoded(decoded(n));
        }
        assert!(t.take_text().is_empty());
        // Picture 1 is shown: 0 was replaced unseen.
        t.presented(1, 9001);
        assert_eq!(t.take_text(), "0,idr,1000,2000,3000,,0,1\n1,inter,1001,2001,3001,9001,0,1\n");
        // A presentation of a frame no line waits for changes nothing.
        t.presented(7, 1);
        assert!(t.take_text().is_empty());
        assert_eq!(t.finish(), "2,inter,1002,2002,3002,,0,0\n");
    }

    #[test]
    fn lines_waiting_for_a_stalled_presenter_are_bounded() {
        let mut t = FrameTable::new(true);
        for n in 0..1000 {
            t.decoded(decoded(n));
            assert!(t.waiting.len() <= MAX_WAITING);
        }
        assert_eq!(t.take_text().lines().count(), 1 + 1000 - MAX_WAITING);
    }
}

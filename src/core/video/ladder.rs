//! The picture ladder: the encoded size and frame rate follow the bitrate the path allows.
//!
//! openh264 with frame skipping off cannot make a picture smaller than a floor that depends
//! on its size and rate (measured on the demo scene, `kumo bench --only ladder`: about
//! 2 Mbit/s at 720p60, see [`FLOOR`]); below it, a lower target does nothing and the path's
//! queue stays. So the host steps the size down a ladder (the session's size, then 900, 720,
//! 540 and 360 lines, aspect kept) and, at the lowest size, the rate from 60 to 30 fps, when
//! the target falls below what the current rung needs: its floor with [`HEADROOM`]. It steps
//! back up when the target has stayed above the next rung's need by [`UP_MARGIN`] for
//! [`UP_AFTER`] (a margin and a wait, so the size does not flap on a path at the edge; a
//! quarter of the wait with twice the room, [`UP_SOON_ROOM`]), to the
//! largest rung the target then has that room for. Both ways it may skip rungs: a path that
//! widens again is back at the session's size in one step, not one rung every few seconds.
//!
//! The session's size and rate are the ceiling: the ladder never goes above them. Pure: time
//! is an argument.

use std::time::Duration;

/// One step of the ladder: what the encoder makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rung {
    pub width: u16,
    pub height: u16,
    pub fps: u16,
}

impl Rung {
    /// Pixels per second.
    pub fn pixel_rate(self) -> f64 {
        f64::from(self.width) * f64::from(self.height) * f64::from(self.fps)
    }
}

impl std::fmt::Display for Rung {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}@{}", self.width, self.height, self.fps)
    }
}

/// The heights below the session's that the ladder offers.
const HEIGHTS: [u16; 4] = [900, 720, 540, 360];
/// The frame rate of the last rung, when the session's is higher.
const LOW_FPS: u16 = 30;

/// openh264's floor on the demo scene (rate control in bitrate mode, frame skipping off, one
/// slice per thread): the bitrate it produces when asked for far less, in kbit/s, against the
/// pixel rate in millions of pixels a second. Measured with `kumo bench --only ladder` on this
/// project's 2-core build machine (docs/benchmarks.md); between points the floor is
/// interpolated linearly, beyond the last it grows in proportion.
pub const FLOOR: [(f64, f64); 6] =
    [(6.9, 484.0), (13.8, 785.0), (31.1, 1675.0), (55.3, 2111.0), (86.4, 3917.0), (124.4, 4186.0)];

/// A rung needs its floor and this much more: the encoder overshoots its floor on busy
/// content, and a stream at its floor leaves the path no room to drain a queue.
pub const HEADROOM: f64 = 1.3;
/// A step up needs the target this far above the next rung's need...
pub const UP_MARGIN: f64 = 1.2;
/// ...for this long without a break...
pub const UP_AFTER: Duration = Duration::from_secs(2);
/// ...or a quarter of it when the target has twice that room: a path that widened again is
/// climbed fast (the bitrate controller's steps grow while they find no queue), and a small
/// picture at a bitrate made for a larger one sends frames so large that their own sending
/// time reads as a queue (360p at 30 fps and 3.7 Mbit/s: 15 KB frames, 18 ms each at
/// 7 Mbit/s), which takes the controller's step back.
pub const UP_SOON_ROOM: f64 = 2.0;
/// After any change, the next down-step waits this long: the first frames of a new size (an
/// IDR among them) say little about what the path carries.
pub const DOWN_HOLD: Duration = Duration::from_secs(1);

/// openh264's floor for `rung`, kbit/s ([`FLOOR`]).
pub fn floor_kbps(rung: Rung) -> f64 {
    let mpx = rung.pixel_rate() / 1e6;
    let (first, last) = (FLOOR[0], FLOOR[FLOOR.len() - 1]);
    if mpx <= first.0 {
        return first.1 * mpx / first.0;
    }
    for pair in FLOOR.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if mpx <= x1 {
            return y0 + (y1 - y0) * (mpx - x0) / (x1 - x0);
        }
    }
    last.1 * mpx / last.0
}

/// What `rung` needs from the path, kbit/s: its floor with [`HEADROOM`].
pub fn needed_kbps(rung: Rung) -> u32 {
    (floor_kbps(rung) * HEADROOM).round() as u32
}

/// The rungs under `ceiling`, largest first: the ceiling, the smaller standard heights with
/// the ceiling's aspect (even sizes), then the smallest size at 30 fps.
pub fn rungs(ceiling: Rung) -> Vec<Rung> {
    let mut rungs = vec![ceiling];
    for height in HEIGHTS.into_iter().filter(|&h| h < ceiling.height) {
        let width = u32::from(ceiling.width) * u32::from(height) / u32::from(ceiling.height.max(1));
        let width = u16::try_from(width & !1).unwrap_or(u16::MAX);
        rungs.push(Rung { width, height, fps: ceiling.fps });
    }
    if ceiling.fps > LOW_FPS {
        let smallest = rungs[rungs.len() - 1];
        rungs.push(Rung { fps: LOW_FPS, ..smallest });
    }
    rungs
}

/// The ladder's state: where the stream stands and since when the path allows more.
#[derive(Debug, Clone)]
pub struct Ladder {
    rungs: Vec<Rung>,
    current: usize,
    /// Since when the target has been high enough for the rung above.
    room_since: Option<Duration>,
    last_change: Option<Duration>,
    changes: u32,
}

impl Ladder {
    /// A ladder under `ceiling`, starting at the top.
    pub fn new(ceiling: Rung) -> Self {
        Self { rungs: rungs(ceiling), current: 0, room_since: None, last_change: None, changes: 0 }
    }

    /// A ladder for a stream that starts at `now`: its start holds the size as a change
    /// does, for [`DOWN_HOLD`], since the client's bitrate starts at a quarter of the rate
    /// asked and climbs for its first half second (`abr::Controller::starting`); a target
    /// low for the size in that time is the climb, not the path.
    pub fn starting(ceiling: Rung, now: Duration) -> Self {
        Self { last_change: Some(now), ..Self::new(ceiling) }
    }

    pub fn current(&self) -> Rung {
        self.rungs[self.current]
    }

    /// Whether the stream is on the lowest rung: the only one where openh264 may skip frames.
    pub fn at_bottom(&self) -> bool {
        self.current + 1 == self.rungs.len()
    }

    /// Whether the stream is below its ceiling for want of bitrate.
    pub fn limited(&self) -> bool {
        self.current > 0
    }

    /// How many times the rung changed.
    pub fn changes(&self) -> u32 {
        self.changes
    }

    /// The path allows `target_kbps` at `now` (the bitrate controller's target; also called
    /// with the same target as time passes). Returns the new rung when the stream should
    /// change to it.
    pub fn on_target(&mut self, now: Duration, target_kbps: u32) -> Option<Rung> {
        let since_change = self.last_change.map_or(Duration::MAX, |at| now.saturating_sub(at));
        if target_kbps < needed_kbps(self.current()) && !self.at_bottom() {
            if since_change < DOWN_HOLD {
                return None;
            }
            // The largest rung the target affords, or the last.
            let to = (self.current + 1..self.rungs.len())
                .find(|&i| needed_kbps(self.rungs[i]) <= target_kbps)
                .unwrap_or(self.rungs.len() - 1);
            return Some(self.change(now, to));
        }
        let Some(up) = self.current.checked_sub(1) else {
            self.room_since = None;
            return None;
        };
        if f64::from(target_kbps) < f64::from(needed_kbps(self.rungs[up])) * UP_MARGIN {
            self.room_since = None;
            return None;
        }
        let since = *self.room_since.get_or_insert(now);
        let plenty = f64::from(target_kbps) >= f64::from(needed_kbps(self.rungs[up])) * UP_MARGIN * UP_SOON_ROOM;
        if now.saturating_sub(since) < if plenty { UP_AFTER / 4 } else { UP_AFTER } {
            return None;
        }
        // The largest rung the target has room for now (at least the next).
        let to = (0..up)
            .find(|&i| f64::from(target_kbps) >= f64::from(needed_kbps(self.rungs[i])) * UP_MARGIN)
            .unwrap_or(up);
        Some(self.change(now, to))
    }

    fn change(&mut self, now: Duration, to: usize) -> Rung {
        self.current = to;
        self.last_change = Some(now);
        self.room_since = None;
        self.changes += 1;
        self.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1080: Rung = Rung { width: 1920, height: 1080, fps: 60 };
    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn a_rung_reads_as_size_at_rate() {
        // As the overlay, the log and --stats-json's sizes show it.
        assert_eq!(P1080.to_string(), "1920x1080@60");
        assert_eq!(Rung { width: 640, height: 360, fps: 30 }.to_string(), "640x360@30");
    }

    #[test]
    fn the_ladder_keeps_the_aspect_in_even_sizes_and_ends_with_half_the_rate() {
        let r = rungs(P1080);
        let sizes: Vec<(u16, u16, u16)> = r.iter().map(|r| (r.width, r.height, r.fps)).collect();
        assert_eq!(
            sizes,
            [(1920, 1080, 60), (1600, 900, 60), (1280, 720, 60), (960, 540, 60), (640, 360, 60), (640, 360, 30)]
        );
        // An odd aspect: widths rounded down to even.
        let wide = rungs(Rung { width: 2560, height: 1080, fps: 60 });
        assert!(wide.iter().all(|r| r.width % 2 == 0));
        assert_eq!(wide[2], Rung { width: 1706, height: 720, fps: 60 });
        // A small or slow session: only what lies under it.
        assert_eq!(rungs(Rung { width: 640, height: 360, fps: 30 }), [Rung { width: 640, height: 360, fps: 30 }]);
        assert_eq!(rungs(Rung { width: 1280, height: 720, fps: 30 }).len(), 3);
    }

    #[test]
    fn the_floor_follows_the_measured_points_and_grows_beyond_them() {
        assert!((floor_kbps(Rung { width: 1280, height: 720, fps: 60 }) - 2111.0).abs() < 5.0);
        assert!((floor_kbps(P1080) - 4186.0).abs() < 1.0);
        // Between points: between their floors.
        let f = floor_kbps(Rung { width: 1440, height: 810, fps: 60 });
        assert!(f > 2111.0 && f < 3917.0, "{f}");
        // 4K60 is beyond the table: in proportion to the last point.
        let f4k = floor_kbps(Rung { width: 3840, height: 2160, fps: 60 });
        assert!((f4k - 4186.0 * 4.0).abs() < 20.0, "{f4k}");
        // Below the first point: in proportion too.
        assert!((floor_kbps(Rung { width: 320, height: 180, fps: 30 }) - 484.0 / 4.0).abs() < 5.0);
        // Every rung needs more than the one below it.
        let r = rungs(P1080);
        for pair in r.windows(2) {
            assert!(needed_kbps(pair[0]) > needed_kbps(pair[1]), "{} vs {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn a_target_below_the_rungs_need_steps_down_at_once_to_the_rung_it_affords() {
        let mut ladder = Ladder::new(P1080);
        assert_eq!(ladder.on_target(s(0.0), 20_000), None);
        // 3 Mbit/s: 1080p needs ~5.4, 900p ~5.1, 720p ~2.7: straight to 720p.
        let rung = ladder.on_target(s(1.0), 3000).unwrap();
        assert_eq!((rung.height, rung.fps), (720, 60));
        assert!(ladder.limited() && ladder.changes() == 1);
        // Lower still, but within the hold after a change: wait.
        assert_eq!(ladder.on_target(s(1.5), 1100), None);
        let rung = ladder.on_target(s(2.1), 1100).unwrap();
        assert_eq!((rung.height, rung.fps), (360, 60));
        // Nothing affords it: the last rung, where openh264 may skip frames.
        assert_eq!(ladder.on_target(s(3.2), 100).unwrap(), Rung { width: 640, height: 360, fps: 30 });
        assert!(ladder.at_bottom());
        assert_eq!(ladder.on_target(s(5.0), 100), None, "nowhere lower to go");
    }

    #[test]
    fn a_step_up_needs_room_for_the_next_rung_held_for_a_while_and_goes_as_far_as_the_room_goes() {
        let mut ladder = Ladder::new(P1080);
        ladder.on_target(s(0.0), 1100).unwrap();
        assert_eq!(ladder.current(), Rung { width: 640, height: 360, fps: 60 });
        let above = needed_kbps(Rung { width: 960, height: 540, fps: 60 });
        // Room for the next rung but not its margin: never up.
        for i in 0..100 {
            assert_eq!(ladder.on_target(s(1.0 + f64::from(i) * 0.25), above + 1), None);
        }
        // With the margin: up after UP_AFTER, not before, to the largest rung it has room for.
        let for_720 = (f64::from(needed_kbps(Rung { width: 1280, height: 720, fps: 60 })) * UP_MARGIN).ceil() as u32;
        assert_eq!(ladder.on_target(s(30.0), for_720), None);
        assert_eq!(ladder.on_target(s(31.9), for_720), None);
        assert_eq!(ladder.on_target(s(32.0), for_720).unwrap().height, 720, "past 540p, which it has room for too");
        // A dip below the margin restarts the wait.
        let next = (f64::from(needed_kbps(Rung { width: 1600, height: 900, fps: 60 })) * UP_MARGIN).ceil() as u32;
        assert_eq!(ladder.on_target(s(35.0), next), None);
        assert_eq!(ladder.on_target(s(37.0), next - 1), None);
        assert_eq!(ladder.on_target(s(38.0), next), None);
        assert_eq!(ladder.on_target(s(39.9), next), None);
        assert_eq!(ladder.on_target(s(40.0), next).unwrap().height, 900);
        // Room for the ceiling: straight there.
        assert_eq!(ladder.on_target(s(41.0), 50_000), None);
        assert_eq!(ladder.on_target(s(43.0), 50_000).unwrap().height, 1080);
    }

    #[test]
    fn a_target_with_twice_the_room_steps_up_after_a_quarter_of_the_wait() {
        let mut ladder = Ladder::new(P1080);
        ladder.on_target(s(0.0), 1100).unwrap();
        let for_540 = f64::from(needed_kbps(Rung { width: 960, height: 540, fps: 60 })) * UP_MARGIN;
        // Twice the room 540p needs with its margin: half a second, not two.
        let plenty = (for_540 * UP_SOON_ROOM).ceil() as u32;
        assert_eq!(ladder.on_target(s(10.0), plenty), None);
        assert_eq!(ladder.on_target(s(10.4), plenty), None);
        assert!(ladder.on_target(s(10.5), plenty).is_some_and(|r| r.height >= 540));
        // Just under twice: the whole wait.
        let mut ladder = Ladder::new(P1080);
        ladder.on_target(s(0.0), 1100).unwrap();
        assert_eq!(ladder.on_target(s(10.0), plenty - 2), None);
        assert_eq!(ladder.on_target(s(10.5), plenty - 2), None);
        assert_eq!(ladder.on_target(s(11.9), plenty - 2), None);
        assert!(ladder.on_target(s(12.0), plenty - 2).is_some());
    }

    #[test]
    fn a_target_exactly_at_a_rungs_need_keeps_it_and_exactly_at_the_margin_is_room() {
        // At its need a rung is afforded; a kilobit under, it is not.
        let mut ladder = Ladder::new(P1080);
        assert_eq!(ladder.on_target(s(5.0), needed_kbps(P1080)), None);
        assert_eq!(ladder.on_target(s(5.0), needed_kbps(P1080) - 1).map(|r| r.height), Some(900));
        // A ceiling whose need times the margin is a whole number of kbit/s (found by a search,
        // so the comparison is exact): a target of exactly that is room to go back up to it.
        let (ceiling, room) = (400..2000u16)
            .step_by(2)
            .map(|width| Rung { width, height: 720, fps: 60 })
            .map(|r| (r, f64::from(needed_kbps(r)) * UP_MARGIN))
            .find(|(_, room)| room.fract() == 0.0)
            .expect("a ceiling whose room is exact");
        let mut ladder = Ladder::new(ceiling);
        assert_eq!(ladder.on_target(s(0.0), needed_kbps(ceiling) - 1).map(|r| r.height), Some(540));
        let room = room as u32;
        assert_eq!(ladder.on_target(s(10.0), room), None);
        assert_eq!(ladder.on_target(s(10.0) + UP_AFTER, room), Some(ceiling), "{ceiling}: {room} kbit/s");
    }

    #[test]
    fn the_start_holds_the_size_while_the_bitrate_climbs() {
        let mut ladder = Ladder::starting(P1080, s(0.0));
        // The client's climb starts at a quarter of 20 Mbit/s: under 1080p's need, and held.
        assert_eq!(ladder.on_target(s(0.0), 5000), None);
        assert_eq!(ladder.on_target(s(0.6), 11_250), None);
        assert_eq!(ladder.changes(), 0);
        // A climb that stopped low: after the hold, the size follows it.
        assert_eq!(ladder.on_target(s(1.0), 3000).map(|r| r.height), Some(720));
    }

    #[test]
    fn a_target_that_wanders_around_a_rungs_need_does_not_flap() {
        let mut ladder = Ladder::new(P1080);
        ladder.on_target(s(0.0), 3000).unwrap();
        let edge = needed_kbps(Rung { width: 1600, height: 900, fps: 60 });
        // ±10 % around 900p's need, for a minute, four times a second.
        let mut changes = 0;
        for i in 0..240u32 {
            let wobble = if i % 2 == 0 { 1.1 } else { 0.9 };
            if ladder.on_target(s(1.0 + f64::from(i) * 0.25), (f64::from(edge) * wobble) as u32).is_some() {
                changes += 1;
            }
        }
        assert_eq!(changes, 0, "the ladder flapped at the edge of a rung");
    }
}

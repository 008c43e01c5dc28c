//! The reference host's game: a player square the input moves, a visible response to every
//! press, a latency flash, and a once-a-second sync flash (with a beep on each flash, made by
//! the host's audio from [`Drawn::flash`]).
//!
//! Owns the game's rules. The host applies each accepted input datagram ([`Game::apply`]),
//! advances the game once per captured frame ([`Game::step`]), and draws it over the scene
//! ([`draw`]). The left stick of any pad, WASD and the arrow keys move the player at a speed;
//! relative mouse motion moves it by distance (1000 counts = the picture's width or height).
//! Pure: time comes in as the frame interval.

use crate::input::{InputState, Press, key};
use crate::sim::marker;
use crate::sim::scene::{self, I420};
use crate::wire::InputDatagram;
use std::time::Duration;

/// Mouse counts per picture width (and height).
pub const MOUSE_COUNTS_PER_SCREEN: f32 = 1000.0;
/// Full stick deflection (or a held key) crosses half the picture per second.
pub const SPEED_PER_SEC: f32 = 0.5;
/// The player's size as a fraction of the picture height.
pub const PLAYER_SIZE: f32 = 0.1;

/// The game's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    /// The player's centre, as fractions of the picture (0..=1).
    pub x: f32,
    pub y: f32,
    velocity: (f32, f32),
    /// The mouse's running totals at the last state (they count from the connection's start).
    mouse_total: (i32, i32),
    previous: InputState,
    /// Key and button presses seen (from the reliable path: taps shorter than a datagram
    /// count too).
    pub presses: u64,
    /// Newest input sequence applied.
    pub input_seq: u64,
    /// The input sequence the last drawn frame showed.
    drawn_seq: u64,
    /// Anything held right now (any button or key): the player lights up.
    pub holding: bool,
    /// The pad slot whose stick moves the player, if a pad does.
    mover: Option<u8>,
    /// The player is against an edge.
    at_edge: bool,
    /// A collision's rumble, for the pad that caused it, not yet sent.
    rumble: Option<u8>,
}

impl Default for Game {
    fn default() -> Self {
        Self {
            x: 0.5,
            y: 0.5,
            velocity: (0.0, 0.0),
            mouse_total: (0, 0),
            previous: InputState::default(),
            presses: 0,
            input_seq: 0,
            drawn_seq: 0,
            holding: false,
            mover: None,
            at_edge: false,
            rumble: None,
        }
    }
}

impl Game {
    /// Applies a newer input state (the host's receiver has already rejected stale ones).
    pub fn apply(&mut self, input: &InputDatagram) {
        let s = &input.state;
        let m = &s.mouse;
        let dx = m.dx_total.wrapping_sub(self.mouse_total.0);
        let dy = m.dy_total.wrapping_sub(self.mouse_total.1);
        self.mouse_total = (m.dx_total, m.dy_total);
        self.x += dx as f32 / MOUSE_COUNTS_PER_SCREEN;
        self.y += dy as f32 / MOUSE_COUNTS_PER_SCREEN;

        let (mut vx, mut vy) = (0.0, 0.0);
        self.mover = None;
        if let Some((slot, pad)) =
            s.pads.iter().enumerate().find(|(_, p)| p.connected && (p.left[0] != 0 || p.left[1] != 0))
        {
            vx = f32::from(pad.left[0]) / 32767.0;
            vy = f32::from(pad.left[1]) / 32767.0;
            self.mover = Some(slot as u8);
        }
        let held = |usages: [u8; 2]| usages.iter().any(|&u| s.key_down(u));
        vx += f32::from(u8::from(held([key::D, 0x4F]))) - f32::from(u8::from(held([key::A, 0x50])));
        vy += f32::from(u8::from(held([key::S, 0x51]))) - f32::from(u8::from(held([key::W, 0x52])));
        self.velocity = (vx.clamp(-1.0, 1.0), vy.clamp(-1.0, 1.0));

        self.holding = s.pads.iter().any(|p| p.buttons != 0) || s.keys.iter().any(|&k| k != 0) || m.buttons != 0;
        self.previous = *s;
        self.input_seq = self.input_seq.max(input.seq);
        self.clamp();
    }

    /// A key or button went down or up (the reliable, ordered path).
    pub fn on_press(&mut self, press: &Press) {
        if press.down {
            self.presses += 1;
        }
    }

    /// Advances the game by one frame interval. Running into an edge with a pad's stick is a
    /// collision: that pad gets a rumble ([`Game::take_rumble`]).
    pub fn step(&mut self, dt: Duration) {
        let t = dt.as_secs_f32();
        let (want_x, want_y) =
            (self.x + self.velocity.0 * SPEED_PER_SEC * t, self.y + self.velocity.1 * SPEED_PER_SEC * t);
        self.x = want_x;
        self.y = want_y;
        self.clamp();
        let moving = self.velocity != (0.0, 0.0);
        let blocked = moving && (self.x != want_x || self.y != want_y);
        if blocked && !self.at_edge {
            self.rumble = self.mover;
        }
        self.at_edge = blocked;
    }

    /// The pad slot to rumble for a collision since the last call, if any.
    pub fn take_rumble(&mut self) -> Option<u8> {
        self.rumble.take()
    }

    fn clamp(&mut self) {
        let half = PLAYER_SIZE / 2.0;
        self.x = finite(self.x).clamp(half, 1.0 - half);
        self.y = finite(self.y).clamp(half, 1.0 - half);
    }
}

fn finite(v: f32) -> f32 {
    if v.is_finite() { v } else { 0.5 }
}

/// Where the latency flash appears: the bottom-right corner, an eighth of the picture on each
/// side (large and high-contrast, for a photodiode or camera).
pub fn flash_rect(width: usize, height: usize) -> (usize, usize, usize, usize) {
    let (w, h) = (width / 8, height / 8);
    (width - w, height - h, w, h)
}

/// Where the sync flash appears: the bottom-left corner, an eighth of the picture each way.
pub fn sync_flash_rect(width: usize, height: usize) -> (usize, usize, usize, usize) {
    let (w, h) = (width / 8, height / 8);
    (0, height - h, w, h)
}

/// What [`draw`] put in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn {
    /// The input sequence the frame reflects.
    pub input_seq: u64,
    /// The frame shows a flash (latency or sync): the host's audio beeps on it.
    pub flash: bool,
}

/// Draws the player over the scene, the input marker (a second marker strip, right under the
/// frame marker, carrying the low 32 bits of the newest input sequence the frame reflects),
/// the time marker (a third strip: `time_ms`, the capture time in ms, low 32 bits), the
/// latency flash when this frame is the first to reflect a new input, and the sync flash when
/// `sync` is set (the host sets it once a second).
pub fn draw(game: &mut Game, pic: &mut I420, sync: bool, time_ms: u32) -> Drawn {
    let (w, h) = (pic.width, pic.height);
    let size = ((h as f32 * PLAYER_SIZE) as usize).max(4) & !1;
    let mh = marker::height_px(w);
    let top_limit = 3 * mh + 2;
    let cx = (game.x * w as f32) as usize;
    let cy = (game.y * h as f32) as usize;
    let x0 = cx.saturating_sub(size / 2).min(w - size) & !1;
    let y0 = cy.saturating_sub(size / 2).clamp(top_limit, h - size) & !1;
    // White when idle, yellow while something is held: a visible response to every press.
    let (cu, cv) = if game.holding { (16, 146) } else { (128, 128) };
    scene::fill_rect(pic, x0, y0, size, size, (if game.holding { 210 } else { 235 }, cu, cv));
    let input_flash = game.input_seq > game.drawn_seq;
    if input_flash {
        let (fx, fy, fw, fh) = flash_rect(w, h);
        scene::fill_rect(pic, fx, fy, fw, fh, (235, 128, 128));
    }
    if sync {
        let (sx, sy, sw, sh) = sync_flash_rect(w, h);
        scene::fill_rect(pic, sx, sy, sw, sh, (235, 128, 128));
    }
    game.drawn_seq = game.input_seq;
    // Neutral chroma under the input marker, as under the frame marker, so it reads the same in
    // any colour matrix; `check_size` leaves room for both strips.
    let mw = marker::BLOCKS * marker::block_px(w);
    scene::fill_rect(pic, 0, mh, mw.min(w), 2 * mh, (128, 128, 128));
    marker::draw(&mut pic.y[mh * w..], w, w, h.saturating_sub(mh), game.input_seq as u32).ok();
    marker::draw(&mut pic.y[2 * mh * w..], w, w, h.saturating_sub(2 * mh), time_ms).ok();
    Drawn { input_seq: game.input_seq, flash: input_flash || sync }
}

/// Reads the input marker (see [`draw`]) from a picture's luma.
pub fn read_input_marker(luma: &[u8], stride: usize, width: usize, height: usize) -> Result<u32, marker::MarkerError> {
    let mh = marker::height_px(width);
    let rest = luma.get(mh * stride..).ok_or(marker::MarkerError::TooSmall { width, height })?;
    marker::read(rest, stride, width, height.saturating_sub(mh))
}

/// Reads the time marker (see [`draw`]): the capture time in ms, low 32 bits.
pub fn read_time_marker(luma: &[u8], stride: usize, width: usize, height: usize) -> Result<u32, marker::MarkerError> {
    let mh = marker::height_px(width);
    let rest = luma.get(2 * mh * stride..).ok_or(marker::MarkerError::TooSmall { width, height })?;
    marker::read(rest, stride, width, height.saturating_sub(2 * mh))
}

/// Finds the idle (white) player square in a picture's luma and returns its centre as
/// fractions of the picture: how tests read the game back from pixels.
pub fn find_player(luma: &[u8], stride: usize, width: usize, height: usize) -> Option<(f32, f32)> {
    let (fx, fy, _, _) = flash_rect(width, height);
    let (_, _, sw, _) = sync_flash_rect(width, height);
    let top = 3 * marker::height_px(width) + 1;
    let (mut sx, mut sy, mut n) = (0u64, 0u64, 0u64);
    for y in top..height {
        for x in 0..width {
            if y >= fy && (x >= fx || x < sw) {
                continue;
            }
            if luma.get(y * stride + x).is_some_and(|&v| v >= 230) {
                sx += x as u64;
                sy += y as u64;
                n += 1;
            }
        }
    }
    let size = (height as f32 * PLAYER_SIZE) as u64;
    // Most of the square must be there (edges blur in the codec).
    (n >= size * size / 2)
        .then(|| ((sx as f32 / n as f32 + 0.5) / width as f32, (sy as f32 / n as f32 + 0.5) / height as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{InputState, PadState, button};
    use crate::sim::scene;

    fn datagram(seq: u64, state: InputState) -> InputDatagram {
        InputDatagram { seq, client_micros: 0, state }
    }

    #[test]
    fn mouse_moves_by_distance_even_when_datagrams_are_lost() {
        let mut g = Game::default();
        let mut s = InputState::default();
        s.mouse.dx_total = 100;
        g.apply(&datagram(1, s));
        // Datagram 2 (dx_total 150) lost; 3 carries the running total.
        s.mouse.dx_total = 200;
        s.mouse.dy_total = -100;
        g.apply(&datagram(3, s));
        assert!((g.x - 0.7).abs() < 1e-6 && (g.y - 0.4).abs() < 1e-6, "{g:?}");
        assert_eq!(g.input_seq, 3);
    }

    #[test]
    fn stick_and_keys_move_at_a_speed_and_presses_are_counted() {
        let mut g = Game::default();
        let mut s = InputState::default();
        s.pads[2] = PadState { connected: true, buttons: button::A, left: [32767, 0], ..PadState::default() };
        g.apply(&datagram(1, s));
        g.on_press(&Press { device: Press::FIRST_PAD + 2, code: 0, down: true });
        g.step(Duration::from_millis(200));
        assert!((g.x - 0.6).abs() < 1e-4, "{}", g.x);
        assert_eq!(g.presses, 1);
        assert!(g.holding);
        s.pads[2] = PadState { connected: true, ..PadState::default() };
        s.set_key(key::W, true);
        g.apply(&datagram(2, s));
        g.on_press(&Press { device: Press::KEYBOARD, code: key::W, down: true });
        g.on_press(&Press { device: Press::FIRST_PAD + 2, code: 0, down: false });
        g.step(Duration::from_millis(200));
        assert!((g.y - 0.4).abs() < 1e-4, "{}", g.y);
        assert_eq!(g.presses, 2, "W is a press; releasing A is not");
        // Held far past the edge: the player stays inside the picture.
        g.step(Duration::from_secs(10));
        assert!((g.y - PLAYER_SIZE / 2.0).abs() < 1e-6);
        assert_eq!(g.take_rumble(), None, "the keyboard has no motors");
    }

    #[test]
    fn running_into_an_edge_with_a_pad_rumbles_that_pad_once() {
        let mut g = Game::default();
        let mut s = InputState::default();
        s.pads[3] = PadState { connected: true, left: [32767, 0], ..PadState::default() };
        g.apply(&datagram(1, s));
        g.step(Duration::from_millis(500));
        assert_eq!(g.take_rumble(), None, "not at the edge yet");
        g.step(Duration::from_millis(500));
        assert_eq!(g.take_rumble(), Some(3));
        g.step(Duration::from_millis(100));
        assert_eq!(g.take_rumble(), None, "pushing on against the wall is one collision");
    }

    #[test]
    fn the_player_and_the_flash_can_be_read_back_from_pixels() {
        let (w, h) = (640, 360);
        let mut pic = I420::new(w, h);
        scene::render(10, 60, 10, &mut pic);
        let mut g = Game::default();
        let mut s = InputState::default();
        s.mouse.dx_total = -200;
        s.mouse.dy_total = 150;
        g.apply(&datagram(7, s));
        assert_eq!(draw(&mut g, &mut pic, true, 4_000_000_123), Drawn { input_seq: 7, flash: true });
        assert_eq!(read_input_marker(&pic.y, w, w, h), Ok(7), "the input marker names the input");
        assert_eq!(read_time_marker(&pic.y, w, w, h), Ok(4_000_000_123), "the time marker names the capture");
        assert_eq!(marker::read(&pic.y, w, w, h), Ok(10), "the frame marker is untouched");
        let (x, y) = find_player(&pic.y, w, w, h).expect("player visible");
        assert!((x - 0.3).abs() < 0.01 && (y - 0.65).abs() < 0.01, "({x}, {y})");
        let (fx, fy, fw, fh) = flash_rect(w, h);
        assert!(pic.y[(fy + fh / 2) * w + fx + fw / 2] == 235, "flash on the frame after an input");
        let (sx, sy, sw, sh) = sync_flash_rect(w, h);
        assert!(pic.y[(sy + sh / 2) * w + sx + sw / 2] == 235, "sync flash when asked");
        // The next frame without a new input or a sync has no flash.
        scene::render(11, 60, 11, &mut pic);
        assert_eq!(draw(&mut g, &mut pic, false, 0), Drawn { input_seq: 7, flash: false });
        assert_ne!(pic.y[(fy + fh / 2) * w + fx + fw / 2], 235);
        assert_ne!(pic.y[(sy + sh / 2) * w + sx + sw / 2], 235);
        // A sync flash alone is a flash too.
        scene::render(12, 60, 12, &mut pic);
        assert!(draw(&mut g, &mut pic, true, 0).flash);
    }
}

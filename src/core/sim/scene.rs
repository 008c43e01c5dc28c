//! The reference host's synthetic game scene, rendered on the CPU straight into I420.
//!
//! Owns what the host "plays": a scrolling sky gradient, a perspective checkerboard floor,
//! bouncing coloured sprites and a band of fine detail, all moving every frame so the encoder
//! has real work, plus the frame marker along the top edge. Pure: the picture is a function of
//! the frame index and the frame rate only, so any frame can be rendered again in a test.

use crate::sim::marker;
use crate::sim::rng::XorShift;

/// Largest picture the host renders (openh264's level 5.2 limit).
pub const MAX_WIDTH: usize = 3840;
pub const MAX_HEIGHT: usize = 2160;

/// A picture in I420 with tight strides (luma stride = width, chroma stride = width / 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl I420 {
    /// A black picture. `width` and `height` must be even.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; width / 2 * (height / 2)],
            v: vec![128; width / 2 * (height / 2)],
        }
    }
}

/// Why a scene size is not accepted.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error(
    "a {width}x{height} stream is not possible: width and height must be even, width {min_w}..={MAX_WIDTH} and height 64..={MAX_HEIGHT}",
    min_w = marker::MIN_WIDTH
)]
pub struct SizeError {
    pub width: usize,
    pub height: usize,
}

/// Checks a requested stream size.
pub fn check_size(width: usize, height: usize) -> Result<(), SizeError> {
    let ok = width.is_multiple_of(2)
        && height.is_multiple_of(2)
        && (marker::MIN_WIDTH..=MAX_WIDTH).contains(&width)
        && (64..=MAX_HEIGHT).contains(&height);
    if ok { Ok(()) } else { Err(SizeError { width, height }) }
}

/// Sprite colours as (Y, U, V).
const SPRITES: [(u8, u8, u8); 5] = [(82, 90, 240), (145, 54, 34), (41, 240, 110), (210, 16, 146), (170, 166, 16)];

/// Renders frame `index` of a scene running at `fps` into `pic`, with a marker carrying
/// `marker_value`.
pub fn render(index: u64, fps: u32, marker_value: u32, pic: &mut I420) {
    let (w, h) = (pic.width, pic.height);
    let t = index as f64 / f64::from(fps.max(1));
    let horizon = h * 2 / 5;
    let scroll = (t * 120.0) as usize; // sky scrolls 120 px/s
    let floor_speed = t * 3.0; // floor tiles per second

    // Sky: a diagonal gradient that scrolls; floor: a checkerboard in perspective.
    for row in 0..h {
        let line = &mut pic.y[row * w..(row + 1) * w];
        if row < horizon {
            let base = 40 + (row * 100 / horizon.max(1)) as u32;
            for (x, p) in line.iter_mut().enumerate() {
                let wave = ((x + scroll) % 256) as u32 / 8;
                *p = (base + wave).min(235) as u8;
            }
        } else {
            let depth = (row - horizon + 1) as f64 / (h - horizon) as f64; // 0 far .. 1 near
            let z = 1.0 / depth;
            let v_tile = ((z + floor_speed) * 2.0).floor() as i64;
            let scale = depth * 8.0 / w as f64;
            let shade = (60.0 + depth * 120.0) as u32;
            for (x, p) in line.iter_mut().enumerate() {
                let u_tile = ((x as f64 - w as f64 / 2.0) * scale).floor() as i64;
                let light = (u_tile + v_tile) & 1 == 0;
                *p = if light { shade.min(235) as u8 } else { (shade / 3) as u8 };
            }
        }
    }
    let (cw, ch) = (w / 2, h / 2);
    for row in 0..ch {
        let sky = row * 2 < horizon;
        let (cu, cv) = if sky { (150u8, 110u8) } else { (118u8, 134u8) };
        pic.u[row * cw..(row + 1) * cw].fill(cu);
        pic.v[row * cw..(row + 1) * cw].fill(cv);
    }

    // Sprites bounce across the whole picture.
    let size = (h / 8).max(16);
    for (i, &(sy, su, sv)) in SPRITES.iter().enumerate() {
        let speed_x = 180.0 + 70.0 * i as f64;
        let speed_y = 130.0 + 45.0 * i as f64;
        let x = bounce(t * speed_x + 300.0 * i as f64, w - size);
        let y = bounce(t * speed_y + 170.0 * i as f64, h - size);
        fill_rect(pic, x, y, size, size, (sy, su, sv));
    }

    // A band of fine, changing detail (a "HUD" with noise) to keep the encoder honest.
    let band_top = h - h / 10;
    let mut rng = XorShift::from_state(index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for row in (band_top..h).step_by(4) {
        for col in (0..w / 3).step_by(4) {
            let level = 16 + (rng.next_u64() % 200) as u8;
            for r in row..(row + 4).min(h) {
                pic.y[r * w + col..r * w + (col + 4).min(w)].fill(level);
            }
        }
    }

    // The marker's strip is neutral in chroma so it reads the same in any colour matrix.
    let mh = marker::height_px(w);
    let mw = marker::BLOCKS * marker::block_px(w);
    for row in 0..mh.div_ceil(2) {
        pic.u[row * cw..row * cw + mw / 2].fill(128);
        pic.v[row * cw..row * cw + mw / 2].fill(128);
    }
    // `check_size` guarantees room for the marker; a picture built elsewhere without it
    // simply carries none.
    marker::draw(&mut pic.y, w, w, h, marker_value).ok();
}

/// Position of a point moving at constant speed between 0 and `span`, bouncing at the ends.
fn bounce(distance: f64, span: usize) -> usize {
    if span == 0 {
        return 0;
    }
    let period = 2 * span;
    let d = distance as usize % period;
    if d < span { d } else { period - d }
}

/// Fills a rectangle (clipped to the picture) with one colour; even `x` and `y` keep chroma
/// aligned.
pub fn fill_rect(pic: &mut I420, x: usize, y: usize, w: usize, h: usize, (cy, cu, cv): (u8, u8, u8)) {
    let x_end = (x + w).min(pic.width);
    let y_end = (y + h).min(pic.height);
    for row in y..y_end {
        pic.y[row * pic.width + x..row * pic.width + x_end].fill(cy);
    }
    let cw = pic.width / 2;
    for row in y / 2..y_end / 2 {
        pic.u[row * cw + x / 2..row * cw + x_end / 2].fill(cu);
        pic.v[row * cw + x / 2..row * cw + x_end / 2].fill(cv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_move_and_carry_their_marker() {
        let mut a = I420::new(640, 360);
        let mut b = I420::new(640, 360);
        render(10, 60, 10, &mut a);
        render(11, 60, 11, &mut b);
        assert_ne!(a.y, b.y);
        assert_eq!(marker::read(&a.y, 640, 640, 360), Ok(10));
        assert_eq!(marker::read(&b.y, 640, 640, 360), Ok(11));
        let mut again = I420::new(640, 360);
        render(10, 60, 10, &mut again);
        assert_eq!(a, again, "rendering is a pure function of the index");
    }

    #[test]
    fn every_allowed_size_renders() {
        for (w, h) in [(marker::MIN_WIDTH, 64), (1280, 720), (1920, 1080), (3840, 2160), (642, 362)] {
            check_size(w, h).unwrap();
            let mut pic = I420::new(w, h);
            render(123, 60, 123, &mut pic);
            assert_eq!(marker::read(&pic.y, w, w, h), Ok(123));
        }
        assert!(check_size(641, 360).is_err());
        assert!(check_size(3842, 2160).is_err());
        assert!(check_size(100, 100).is_err());
    }
}

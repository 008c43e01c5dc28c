//! The pointer drawn into a captured picture. An X server keeps its cursor out of the pixels a
//! capture reads (it is a sprite laid over the screen), so a desktop stream draws it in where
//! the server shows it, as a player looking at that screen would see it. Pure: the cursor's
//! image and place come in, the picture is changed.

use crate::sim::scene::I420;
use crate::view::color::ColorSpace;

/// Largest cursor drawn, each way (X cursors are 16 to 64 pixels; a bigger one is a peer's
/// nonsense).
pub const MAX_SIDE: u16 = 256;

/// A cursor image placed on the captured area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub width: u16,
    pub height: u16,
    /// The image's top-left corner on the captured area, in its pixels (off the area when
    /// negative or past its size).
    pub x: i32,
    pub y: i32,
    /// Premultiplied ARGB, row after row (the `XFixes` extension's format).
    pub argb: Vec<u32>,
}

/// Draws `cursor` over `picture`, which shows the captured area scaled by `scale` (picture
/// pixels per captured pixel, each way), in `color`'s `Y'CbCr`. Chroma is blended at each
/// 2×2 block's top-left pixel.
pub fn draw(picture: &mut I420, cursor: &Cursor, scale: (f64, f64), color: ColorSpace) {
    let (cw, ch) = (usize::from(cursor.width), usize::from(cursor.height));
    if cw == 0 || ch == 0 || cursor.width > MAX_SIDE || cursor.height > MAX_SIDE || cursor.argb.len() < cw * ch {
        return;
    }
    let (sx, sy) = (scale.0.max(1e-3), scale.1.max(1e-3));
    let (w, h) = (picture.width, picture.height);
    let left = (f64::from(cursor.x) * sx).floor().max(0.0) as usize;
    let top = (f64::from(cursor.y) * sy).floor().max(0.0) as usize;
    let right = ((f64::from(cursor.x) + cw as f64) * sx).ceil().clamp(0.0, w as f64) as usize;
    let bottom = ((f64::from(cursor.y) + ch as f64) * sy).ceil().clamp(0.0, h as f64) as usize;
    for py in top..bottom {
        // The cursor pixel under this picture pixel (nearest).
        let cy = (py as f64 / sy - f64::from(cursor.y)).floor();
        if cy < 0.0 || cy >= ch as f64 {
            continue;
        }
        for px in left..right {
            let cx = (px as f64 / sx - f64::from(cursor.x)).floor();
            if cx < 0.0 || cx >= cw as f64 {
                continue;
            }
            let pixel = cursor.argb[cy as usize * cw + cx as usize];
            let alpha = (pixel >> 24) as u8;
            if alpha == 0 {
                continue;
            }
            let a = f32::from(alpha) / 255.0;
            // Premultiplied: the colour itself is the channel over alpha.
            let channel = |shift: u32| (f32::from((pixel >> shift) as u8) / 255.0 / a).min(1.0);
            let [y, cb, cr] = color.from_rgb([channel(16), channel(8), channel(0)]);
            let mix = |under: u8, over: u8| (f32::from(over) * a + f32::from(under) * (1.0 - a)).round() as u8;
            let at = py * w + px;
            picture.y[at] = mix(picture.y[at], y);
            if px % 2 == 0 && py % 2 == 0 {
                let c = (py / 2) * (w / 2) + px / 2;
                if c < picture.u.len() {
                    picture.u[c] = mix(picture.u[c], cb);
                    picture.v[c] = mix(picture.v[c], cr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::color::{Matrix, Range};

    const BT709: ColorSpace = ColorSpace { matrix: Matrix::Bt709, range: Range::Limited };

    fn arrow() -> Cursor {
        // 4×4: an opaque white top row, a half-transparent black second row, the rest clear.
        let mut argb = vec![0u32; 16];
        argb[..4].fill(0xffff_ffff);
        argb[4..8].fill(0x8000_0000);
        Cursor { width: 4, height: 4, x: 2, y: 2, argb }
    }

    #[test]
    fn the_cursor_is_drawn_where_it_is_over_what_is_under_it() {
        let mut pic = I420::new(16, 16);
        pic.y.fill(100);
        draw(&mut pic, &arrow(), (1.0, 1.0), BT709);
        assert_eq!(pic.y[2 * 16 + 2], 235, "opaque white");
        assert_eq!(pic.y[2 * 16 + 5], 235);
        assert_eq!(pic.y[2 * 16 + 6], 100, "past the cursor");
        assert_eq!(pic.y[3 * 16 + 3], 58, "half black over 100: (16·128 + 100·127) / 255");
        assert_eq!(pic.y[4 * 16 + 3], 100, "transparent");
        assert_eq!(pic.u[16 / 2 + 1], 128, "white has no chroma");
    }

    #[test]
    fn a_scaled_picture_gets_a_scaled_cursor_and_nothing_runs_off_the_edges() {
        let mut pic = I420::new(8, 8);
        pic.y.fill(100);
        // The captured area was 16×16, the picture half that: the cursor's white row at
        // captured (2..6, 2) lands on picture (1..3, 1).
        draw(&mut pic, &arrow(), (0.5, 0.5), BT709);
        assert_eq!(pic.y[8 + 1], 235);
        assert_eq!(pic.y[8 + 2], 235);
        assert_eq!(pic.y[8 + 3], 100);
        // Half off every edge, or absurd: no panic.
        for (x, y) in [(-3, -3), (14, 14), (i32::MIN / 2, i32::MAX / 2)] {
            draw(&mut pic, &Cursor { x, y, ..arrow() }, (1.0, 1.0), BT709);
        }
        draw(&mut pic, &Cursor { argb: vec![0; 3], ..arrow() }, (1.0, 1.0), BT709);
        draw(&mut pic, &Cursor { width: 1000, ..arrow() }, (1.0, 1.0), BT709);
    }
}

//! `Y'CbCr` colour spaces: which matrix and range a stream uses, and the conversion to RGB.
//!
//! Owns the maths only. The presenter's WGSL shader applies [`ColorSpace::yuv_to_rgb`] as a
//! uniform (no CPU conversion on the hot path); the CPU functions here are the reference the
//! tests check the GPU against, and make test patterns. All RGB values are gamma-encoded
//! (non-linear) in 0..=1, as video is.

use std::fmt;
use std::str::FromStr;

/// The matrix that turns `R'G'B'` into `Y'CbCr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Matrix {
    /// ITU-R BT.601 (SD video; what untagged streams and many game streams use).
    Bt601,
    /// ITU-R BT.709 (HD video).
    Bt709,
}

/// How the 8-bit code values span black to white.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    /// "TV" range: Y' 16..=235, Cb/Cr 16..=240.
    Limited,
    /// "PC" range: all of 0..=255.
    Full,
}

/// A stream's colour space, as the host announces it in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColorSpace {
    pub matrix: Matrix,
    pub range: Range,
}

/// Why a colour-space name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown colour space `{0}`: use one of bt601-limited, bt601-full, bt709-limited, bt709-full")]
pub struct ParseColorError(String);

impl ColorSpace {
    /// What kumo's reference host encodes: its scene is drawn in BT.601 limited range.
    pub const HOST_DEFAULT: Self = Self { matrix: Matrix::Bt601, range: Range::Limited };
    /// What the host converts a captured desktop to.
    pub const DESKTOP: Self = Self { matrix: Matrix::Bt709, range: Range::Limited };

    pub const ALL: [Self; 4] = [
        Self { matrix: Matrix::Bt601, range: Range::Limited },
        Self { matrix: Matrix::Bt601, range: Range::Full },
        Self { matrix: Matrix::Bt709, range: Range::Limited },
        Self { matrix: Matrix::Bt709, range: Range::Full },
    ];

    /// (Kr, Kb) of the matrix.
    fn k(self) -> (f64, f64) {
        match self.matrix {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }

    /// (scale, offset) that map a code value / 255 to Y' in 0..=1, and to Cb/Cr in -0.5..=0.5.
    fn expand(self) -> ((f64, f64), (f64, f64)) {
        match self.range {
            Range::Limited => ((255.0 / 219.0, -16.0 / 219.0), (255.0 / 224.0, -128.0 / 224.0)),
            Range::Full => ((1.0, 0.0), (1.0, -128.0 / 255.0)),
        }
    }

    /// Three rows (R, G, B) of a 3×4 matrix that maps (Y, Cb, Cr, 1), each sample a code value
    /// divided by 255 (what an `R8Unorm` texture returns), to `R'G'B'` in 0..=1. This is the
    /// presenter shader's uniform.
    pub fn yuv_to_rgb(self) -> [[f32; 4]; 3] {
        let (kr, kb) = self.k();
        let kg = 1.0 - kr - kb;
        let ((sy, oy), (sc, oc)) = self.expand();
        // R = Y + cr_r·Cr, G = Y + cb_g·Cb + cr_g·Cr, B = Y + cb_b·Cb.
        let cr_r = 2.0 * (1.0 - kr);
        let cb_b = 2.0 * (1.0 - kb);
        let cb_g = -cb_b * kb / kg;
        let cr_g = -cr_r * kr / kg;
        let row = |cb: f64, cr: f64| [sy as f32, (cb * sc) as f32, (cr * sc) as f32, (oy + (cb + cr) * oc) as f32];
        [row(0.0, cr_r), row(cb_g, cr_g), row(cb_b, 0.0)]
    }

    /// The CPU reference of the shader: one `Y'CbCr` sample to `R'G'B'`, clamped to 0..=1.
    pub fn to_rgb(self, yuv: [u8; 3]) -> [f32; 3] {
        let m = self.yuv_to_rgb();
        let v = [f32::from(yuv[0]) / 255.0, f32::from(yuv[1]) / 255.0, f32::from(yuv[2]) / 255.0, 1.0];
        m.map(|row| (row[0] * v[0] + row[1] * v[1] + row[2] * v[2] + row[3] * v[3]).clamp(0.0, 1.0))
    }

    /// `R'G'B'` (0..=1) to 8-bit `Y'CbCr` code values, rounded: for test patterns.
    pub fn from_rgb(self, rgb: [f32; 3]) -> [u8; 3] {
        let (kr, kb) = self.k();
        let (r, g, b) = (f64::from(rgb[0]), f64::from(rgb[1]), f64::from(rgb[2]));
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let cb = (b - y) / (2.0 * (1.0 - kb));
        let cr = (r - y) / (2.0 * (1.0 - kr));
        let ((sy, oy), (sc, oc)) = self.expand();
        // Invert code/255 · s + o = value.
        let code = |value: f64, s: f64, o: f64| ((value - o) / s * 255.0).round().clamp(0.0, 255.0) as u8;
        [code(y, sy, oy), code(cb, sc, oc), code(cr, sc, oc)]
    }

    /// Wire code: matrix in the high nibble (H.264 `matrix_coefficients`: 1 BT.709, 6 BT.601),
    /// range in the low bit.
    pub fn to_code(self) -> u8 {
        let matrix = match self.matrix {
            Matrix::Bt709 => 1,
            Matrix::Bt601 => 6,
        };
        (matrix << 4) | u8::from(self.range == Range::Full)
    }

    pub fn from_code(code: u8) -> Option<Self> {
        let matrix = match code >> 4 {
            1 => Matrix::Bt709,
            // 5 (BT.470 B/G) and 6 (SMPTE 170M) are the same matrix.
            5 | 6 => Matrix::Bt601,
            _ => return None,
        };
        let range = match code & 0x0f {
            0 => Range::Limited,
            1 => Range::Full,
            _ => return None,
        };
        Some(Self { matrix, range })
    }
}

impl fmt::Display for ColorSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.matrix {
            Matrix::Bt601 => "bt601",
            Matrix::Bt709 => "bt709",
        };
        let r = match self.range {
            Range::Limited => "limited",
            Range::Full => "full",
        };
        write!(f, "{m}-{r}")
    }
}

impl FromStr for ColorSpace {
    type Err = ParseColorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.to_string() == s.to_ascii_lowercase()).ok_or_else(|| ParseColorError(s.into()))
    }
}

/// The eight SMPTE-style colour bars at 100 % (white, yellow, cyan, green, magenta, red,
/// blue, black): a test pattern that exercises every channel of the matrix.
pub const BARS: [[f32; 3]; 8] = [
    [1.0, 1.0, 1.0],
    [1.0, 1.0, 0.0],
    [0.0, 1.0, 1.0],
    [0.0, 1.0, 0.0],
    [1.0, 0.0, 1.0],
    [1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0],
    [0.0, 0.0, 0.0],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let c = ColorSpace::HOST_DEFAULT;
        assert_eq!(c.from_rgb([0.0, 0.0, 0.0]), [16, 128, 128]);
        assert_eq!(c.from_rgb([1.0, 1.0, 1.0]), [235, 128, 128]);
        // BT.601 limited red is the textbook (81, 90, 240).
        assert_eq!(c.from_rgb([1.0, 0.0, 0.0]), [81, 90, 240]);
        let full709 = ColorSpace { matrix: Matrix::Bt709, range: Range::Full };
        assert_eq!(full709.from_rgb([0.0, 0.0, 0.0]), [0, 128, 128]);
        assert_eq!(full709.from_rgb([1.0, 1.0, 1.0]), [255, 128, 128]);
        // BT.709 full-range blue: Y' = 0.0722.
        assert_eq!(full709.from_rgb([0.0, 0.0, 1.0])[0], 18);
    }

    #[test]
    fn bars_round_trip_within_one_code_value() {
        for c in ColorSpace::ALL {
            for bar in BARS {
                let rgb = c.to_rgb(c.from_rgb(bar));
                for (got, want) in rgb.iter().zip(bar) {
                    assert!((got - want).abs() <= 1.5 / 255.0, "{c}: {bar:?} came back as {rgb:?}");
                }
            }
        }
    }

    #[test]
    fn matrices_differ_where_they_should() {
        let a = ColorSpace { matrix: Matrix::Bt601, range: Range::Limited };
        let b = ColorSpace { matrix: Matrix::Bt709, range: Range::Limited };
        let rgb = [0.5, 0.3, 0.8];
        let wrong = b.to_rgb(a.from_rgb(rgb));
        let diff = wrong.iter().zip(rgb).map(|(w, r)| (w - r).abs()).fold(0.0, f32::max);
        assert!(diff > 0.03, "{wrong:?}");
        let full = ColorSpace { matrix: Matrix::Bt601, range: Range::Full };
        assert!(
            (full.to_rgb(a.from_rgb([0.0; 3]))[0] - 16.0 / 255.0).abs() < 1e-3,
            "limited black is grey in full range"
        );
    }

    #[test]
    fn names_and_codes_round_trip() {
        for c in ColorSpace::ALL {
            assert_eq!(c.to_string().parse::<ColorSpace>(), Ok(c));
            assert_eq!(ColorSpace::from_code(c.to_code()), Some(c));
        }
        assert!("bt2020".parse::<ColorSpace>().is_err());
        assert_eq!(ColorSpace::from_code(0x22), None);
        assert_eq!(ColorSpace::from_code(0x12), None);
    }
}

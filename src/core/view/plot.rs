//! The latency lab's picture: one stacked bar per input (its stages, in order) and
//! a histogram of input→present, drawn into an RGB buffer a tester can paste into a report.
//!
//! Pure raster work with a built-in 3×5 pixel font (scaled), so it needs no font files and no
//! plotting crate; the shell encodes the buffer as PNG.

/// An RGB picture, row-major, 3 bytes a pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// Stage colours, in `lab::STAGES` order.
pub const STAGE_COLOURS: [[u8; 3]; 7] = [
    [0x8d, 0x99, 0xae],
    [0x4c, 0x9b, 0xe8],
    [0xf2, 0xa6, 0x3b],
    [0xe8, 0x5d, 0x75],
    [0x52, 0xc4, 0x6b],
    [0xa3, 0x7c, 0xf0],
    [0x3b, 0xc9, 0xc9],
];
const BACKGROUND: [u8; 3] = [0x16, 0x18, 0x1d];
const INK: [u8; 3] = [0xe6, 0xe6, 0xe6];
const GRID: [u8; 3] = [0x38, 0x3c, 0x45];

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            rgb.extend_from_slice(&BACKGROUND);
        }
        Self { width, height, rgb }
    }

    /// Fills a rectangle, clipped to the canvas.
    pub fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                let at = (yy * self.width + xx) * 3;
                self.rgb[at..at + 3].copy_from_slice(&colour);
            }
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let at = (y * self.width + x) * 3;
        [self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]]
    }

    /// Writes `text` (upper-cased; unknown characters as blanks) at `scale` pixels per font
    /// pixel, top-left at (x, y).
    pub fn text(&mut self, x: usize, y: usize, scale: usize, text: &str, colour: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c.to_ascii_uppercase());
            for (r, row) in rows.iter().enumerate() {
                for (col, bit) in row.bytes().enumerate() {
                    if bit == b'#' {
                        self.rect(x + i * 4 * scale + col * scale, y + r * scale, scale, scale, colour);
                    }
                }
            }
        }
    }
}

/// 3×5 glyphs, five rows of three columns each.
fn glyph(c: char) -> [&'static str; 5] {
    match c {
        '0' => ["###", "#.#", "#.#", "#.#", "###"],
        '1' => [".#.", "##.", ".#.", ".#.", "###"],
        '2' => ["###", "..#", "###", "#..", "###"],
        '3' => ["###", "..#", ".##", "..#", "###"],
        '4' => ["#.#", "#.#", "###", "..#", "..#"],
        '5' => ["###", "#..", "###", "..#", "###"],
        '6' => ["###", "#..", "###", "#.#", "###"],
        '7' => ["###", "..#", "..#", ".#.", ".#."],
        '8' => ["###", "#.#", "###", "#.#", "###"],
        '9' => ["###", "#.#", "###", "..#", "###"],
        'A' => [".#.", "#.#", "###", "#.#", "#.#"],
        'B' => ["##.", "#.#", "##.", "#.#", "##."],
        'C' => [".##", "#..", "#..", "#..", ".##"],
        'D' => ["##.", "#.#", "#.#", "#.#", "##."],
        'E' => ["###", "#..", "##.", "#..", "###"],
        'F' => ["###", "#..", "##.", "#..", "#.."],
        'G' => [".##", "#..", "#.#", "#.#", ".##"],
        'H' => ["#.#", "#.#", "###", "#.#", "#.#"],
        'I' => ["###", ".#.", ".#.", ".#.", "###"],
        'J' => ["..#", "..#", "..#", "#.#", ".#."],
        'K' => ["#.#", "#.#", "##.", "#.#", "#.#"],
        'L' => ["#..", "#..", "#..", "#..", "###"],
        'M' => ["#.#", "###", "###", "#.#", "#.#"],
        'N' => ["##.", "#.#", "#.#", "#.#", "#.#"],
        'O' => [".#.", "#.#", "#.#", "#.#", ".#."],
        'P' => ["##.", "#.#", "##.", "#..", "#.."],
        'Q' => [".#.", "#.#", "#.#", "##.", ".##"],
        'R' => ["##.", "#.#", "##.", "#.#", "#.#"],
        'S' => [".##", "#..", ".#.", "..#", "##."],
        'T' => ["###", ".#.", ".#.", ".#.", ".#."],
        'U' => ["#.#", "#.#", "#.#", "#.#", "###"],
        'V' => ["#.#", "#.#", "#.#", "#.#", ".#."],
        'W' => ["#.#", "#.#", "###", "###", "#.#"],
        'X' => ["#.#", "#.#", ".#.", "#.#", "#.#"],
        'Y' => ["#.#", "#.#", ".#.", ".#.", ".#."],
        'Z' => ["###", "..#", ".#.", "#..", "###"],
        '.' => ["...", "...", "...", "...", ".#."],
        ',' => ["...", "...", "...", ".#.", "#.."],
        ':' => ["...", ".#.", "...", ".#.", "..."],
        '-' => ["...", "...", "###", "...", "..."],
        '_' => ["...", "...", "...", "...", "###"],
        '+' => ["...", ".#.", "###", ".#.", "..."],
        '>' => ["#..", ".#.", "..#", ".#.", "#.."],
        '/' => ["..#", "..#", ".#.", "#..", "#.."],
        '%' => ["#.#", "..#", ".#.", "#..", "#.#"],
        '(' => [".#.", "#..", "#..", "#..", ".#."],
        ')' => [".#.", "..#", "..#", "..#", ".#."],
        _ => ["...", "...", "...", "...", "..."],
    }
}

/// A "nice" axis top at or above `v` (1, 2 or 5 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|&t| t >= v).unwrap_or(10.0 * p)
}

/// The lab's picture: `stages[i]` are input i's stage times (ms, in `lab::STAGES` order),
/// `names` the stages' names, `title` the headline.
pub fn latency_chart(stages: &[[f64; 7]], names: &[&str; 7], title: &str) -> Canvas {
    let (w, h) = (1280, 720);
    let mut c = Canvas::new(w, h);
    c.text(40, 24, 4, title, INK);
    // Left: stacked bars, one per input.
    let (x0, y0, pw, ph) = (90, 90, 700, 500);
    let totals: Vec<f64> = stages.iter().map(|s| s.iter().map(|v| v.max(0.0)).sum()).collect();
    let top = nice_ceiling(totals.iter().copied().fold(0.0, f64::max));
    for tick in 0..=5 {
        let v = top * f64::from(tick) / 5.0;
        let y = y0 + ph - (ph as f64 * f64::from(tick) / 5.0) as usize;
        c.rect(x0, y, pw, 1, GRID);
        c.text(x0.saturating_sub(70), y.saturating_sub(5), 2, &format!("{v:.0}"), INK);
    }
    c.text(x0.saturating_sub(70), y0 - 40, 2, "MS", INK);
    if !stages.is_empty() {
        let bar = (pw as f64 / stages.len() as f64).max(1.0);
        for (i, s) in stages.iter().enumerate() {
            let x = x0 + (i as f64 * bar) as usize;
            let bw = ((bar * 0.8) as usize).max(1);
            let mut acc = 0.0;
            for (stage, &ms) in s.iter().enumerate() {
                let from = (ph as f64 * acc / top) as usize;
                acc += ms.max(0.0);
                let to = ((ph as f64 * acc / top) as usize).min(ph);
                if to > from {
                    c.rect(x, y0 + ph - to, bw, to - from, STAGE_COLOURS[stage]);
                }
            }
        }
    }
    c.text(x0, y0 + ph + 12, 2, "EACH BAR: ONE INPUT, STAGES STACKED IN ORDER", INK);
    for (i, name) in names.iter().enumerate() {
        let (lx, ly) = (x0 + (i % 4) * 175, y0 + ph + 40 + (i / 4) * 26);
        c.rect(lx, ly, 16, 16, STAGE_COLOURS[i]);
        c.text(lx + 24, ly + 3, 2, name, INK);
    }
    // Right: histogram of totals.
    let (hx, hy, hw, hh) = (880, 90, 360, 500);
    let bins = 20usize;
    let mut counts = vec![0usize; bins];
    for t in &totals {
        let b = ((t / top) * bins as f64) as usize;
        counts[b.min(bins - 1)] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    for (b, &n) in counts.iter().enumerate() {
        let bh = hh * n / most;
        let bw = hw / bins;
        c.rect(hx + b * bw, hy + hh - bh, bw.saturating_sub(2).max(1), bh, INK);
    }
    c.rect(hx, hy + hh, hw, 1, GRID);
    c.text(hx, hy + hh + 12, 2, "0", INK);
    let right = format!("{top:.0} MS");
    c.text((hx + hw).saturating_sub(right.len() * 8), hy + hh + 12, 2, &right, INK);
    c.text(hx, hy + hh + 40, 2, "INPUT TO PRESENT, HISTOGRAM", INK);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_stacked_in_stage_colours_and_text_is_drawn() {
        let stages = vec![[1.0, 1.0, 8.0, 4.0, 1.0, 2.0, 13.0]; 4];
        let names = ["SEND", "UPLINK", "WAIT", "ENCODE", "DOWNLINK", "DECODE", "PRESENT"];
        let c = latency_chart(&stages, &names, "TEST 30 MS");
        assert_eq!(c.rgb.len(), 1280 * 720 * 3);
        // The first bar's bottom is the first stage's colour, higher up the wait stage's;
        // the axis top is 50 ms for a 30 ms total.
        let (x, bottom) = (92, 90 + 500 - 2);
        assert_eq!(c.pixel(x, bottom), STAGE_COLOURS[0]);
        let wait_mid = 90 + 500 - (500.0 * 6.0 / 50.0) as usize;
        assert_eq!(c.pixel(x, wait_mid), STAGE_COLOURS[2]);
        // Above the bar (30 of 50 ms): background.
        assert_eq!(c.pixel(x, 90 + 500 - 350), BACKGROUND);
        // The title was written.
        let inked = (0..80).flat_map(|y| (0..600).map(move |x| (x, y))).filter(|&(x, y)| c.pixel(x, y) == INK).count();
        assert!(inked > 200, "title pixels: {inked}");
    }

    #[test]
    fn nice_axis_tops() {
        assert_eq!(nice_ceiling(30.0), 50.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }

    #[test]
    fn no_inputs_still_draws_axes() {
        let c = latency_chart(&[], &["A"; 7], "EMPTY");
        assert_eq!(c.width * c.height * 3, c.rgb.len());
    }
}

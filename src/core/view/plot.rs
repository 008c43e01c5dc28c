//! The latency lab's charts, drawn with plotters: on the left one stacked bar per input (its
//! stages, in order) with the p50 and p99 of input→present marked; on the right a histogram of
//! input→present with p50, p95 and p99 marked; both axes labelled; below, a legend that says
//! what each stage is. The same chart as an RGB picture (the shell encodes it as PNG) and as
//! SVG, for a tester's report.
//!
//! Text is drawn with egui's bundled Ubuntu Light (`epaint_default_fonts`, already in the
//! binary for the overlay), registered with plotters' `ab_glyph` renderer: no fontconfig, no
//! system font, the same picture on every machine. Pure: it draws into memory.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// An RGB picture, row-major, 3 bytes a pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let at = (y * self.width + x) * 3;
        [self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]]
    }
}

/// The chart's size in pixels.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 760;

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
/// What each stage is, in `lab::STAGES` order (docs/latency-lab.md has the long form).
/// (The embedded font has no arrows: "to".)
pub const STAGE_MEANINGS: [&str; 7] = [
    "from the input event to its datagram leaving the client",
    "from the datagram sent to the host receiving it (network)",
    "from the host receiving it to the first frame captured after",
    "from captured to encoded (the host's encoder)",
    "from encoded to the whole frame received (network)",
    "from received to decoded (decode queue and decoder)",
    "from decoded to queued to the display (0 headless)",
];
pub const BACKGROUND: [u8; 3] = [0xff, 0xff, 0xff];
const INK: RGBColor = RGBColor(0x20, 0x22, 0x28);
const GRID: RGBColor = RGBColor(0xd8, 0xdb, 0xe2);
const FONT: &str = "sans-serif";

/// What the chart shows: each input's stage times (ms, in `lab::STAGES` order), the stages'
/// names, the headline, and the percentiles of input→present.
#[derive(Debug, Clone, Copy)]
pub struct LatencyChart<'a> {
    pub stages: &'a [[f64; 7]],
    pub names: &'a [&'a str; 7],
    pub title: &'a str,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Registers the embedded font with plotters, once.
fn font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
                .map_err(|_| "the embedded font could not be read".to_owned())
        })
        .clone()
}

/// The chart as an RGB picture of [`WIDTH`]×[`HEIGHT`].
pub fn latency_rgb(chart: &LatencyChart<'_>) -> Result<Canvas, String> {
    font()?;
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut rgb = vec![0u8; w * h * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).map_err(|e| format!("could not draw the chart: {e}"))?;
        root.present().map_err(|e| format!("could not draw the chart: {e}"))?;
    }
    Ok(Canvas { width: w, height: h, rgb })
}

/// The chart as an SVG document.
pub fn latency_svg(chart: &LatencyChart<'_>) -> Result<String, String> {
    font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).map_err(|e| format!("could not draw the chart: {e}"))?;
        root.present().map_err(|e| format!("could not draw the chart: {e}"))?;
    }
    Ok(svg)
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &LatencyChart<'_>) -> Drawn<DB> {
    root.fill(&rgb(BACKGROUND))?;
    let root = root.titled(c.title, (FONT, 26).into_font().color(&INK))?;
    let (charts, legend) = root.split_vertically(560);
    let (left, right) = charts.split_horizontally(800);
    let totals: Vec<f64> = c.stages.iter().map(|s| s.iter().map(|v| v.max(0.0)).sum()).collect();
    let top = nice_ceiling(totals.iter().copied().fold(c.p99, f64::max) * 1.05);
    let label = (FONT, 15).into_font().color(&INK);
    let axis = (FONT, 17).into_font().color(&INK);

    // Left: each input's stages, stacked.
    let n = c.stages.len().max(1) as f64;
    let mut bars = ChartBuilder::on(&left)
        .margin(16)
        .caption("each input, its stages stacked in order", (FONT, 19).into_font().color(&INK))
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..n, 0f64..top)?;
    bars.configure_mesh()
        .x_desc("input, in the order sent")
        .y_desc("milliseconds")
        .x_labels(10)
        .x_label_formatter(&|x| format!("{}", *x as u64 + 1))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(label.clone())
        .axis_desc_style(axis.clone())
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(INK)
        .draw()?;
    for stage in 0..7 {
        let colour = rgb(STAGE_COLOURS[stage]);
        bars.draw_series(c.stages.iter().enumerate().filter_map(|(i, s)| {
            let below: f64 = s[..stage].iter().map(|v| v.max(0.0)).sum();
            let height = s[stage].max(0.0);
            let x = i as f64;
            (height > 0.0).then(|| Rectangle::new([(x + 0.1, below), (x + 0.9, below + height)], colour.filled()))
        }))?;
    }
    for (name, value) in [("p50", c.p50), ("p99", c.p99)] {
        if value > 0.0 {
            bars.draw_series(LineSeries::new([(0.0, value), (n, value)], INK.stroke_width(2)))?;
            bars.draw_series(std::iter::once(Text::new(
                format!("{name} {value:.1} ms"),
                (n * 0.02, value),
                (FONT, 15).into_font().color(&INK).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Bottom,
                )),
            )))?;
        }
    }

    // Right: the histogram of input→present.
    let bins = 20usize;
    let mut counts = vec![0u32; bins];
    for t in &totals {
        counts[(((t / top) * bins as f64) as usize).min(bins - 1)] += 1;
    }
    let most = f64::from(counts.iter().copied().max().unwrap_or(0).max(1));
    let mut hist = ChartBuilder::on(&right)
        .margin(16)
        .caption("input to present, all inputs", (FONT, 19).into_font().color(&INK))
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..top, 0f64..most * 1.15)?;
    hist.configure_mesh()
        .x_desc("input to present, milliseconds")
        .y_desc("inputs")
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(label)
        .axis_desc_style(axis)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(INK)
        .draw()?;
    let width = top / bins as f64;
    hist.draw_series(counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(b, &count)| {
        let x = b as f64 * width;
        Rectangle::new([(x + width * 0.05, 0.0), (x + width * 0.95, f64::from(count))], rgb(STAGE_COLOURS[1]).filled())
    }))?;
    for (i, (name, value)) in [("p50", c.p50), ("p95", c.p95), ("p99", c.p99)].into_iter().enumerate() {
        if value > 0.0 {
            hist.draw_series(LineSeries::new([(value, 0.0), (value, most * 1.15)], INK.stroke_width(2)))?;
            hist.draw_series(std::iter::once(Text::new(
                format!(" {name} {value:.1}"),
                (value, most * (1.12 - 0.07 * i as f64)),
                (FONT, 14).into_font().color(&INK),
            )))?;
        }
    }

    // Below: what each stage is.
    let legend = legend.margin(8, 8, 24, 24);
    for (i, (name, meaning)) in c.names.iter().zip(STAGE_MEANINGS).enumerate() {
        let (x, y) = (((i % 2) * 620) as i32, ((i / 2) * 34) as i32);
        legend.draw(&Rectangle::new([(x, y + 4), (x + 18, y + 22)], rgb(STAGE_COLOURS[i]).filled()))?;
        legend.draw(&Text::new(format!("{name}: {meaning}"), (x + 28, y + 4), (FONT, 18).into_font().color(&INK)))?;
    }
    Ok(())
}

/// A "nice" axis top at or above `v` (1, 2 or 5 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|&t| t >= v).unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 7] = ["send", "uplink", "wait capture", "encode", "downlink", "decode", "present"];

    fn chart(stages: &[[f64; 7]]) -> LatencyChart<'_> {
        LatencyChart { stages, names: &NAMES, title: "test: 30 ms", p50: 30.0, p95: 30.0, p99: 30.0 }
    }

    fn count(c: &Canvas, colour: [u8; 3]) -> usize {
        c.rgb.chunks_exact(3).filter(|p| *p == colour).count()
    }

    #[test]
    fn every_stage_is_drawn_in_its_colour_in_proportion_to_its_time() {
        let stages = vec![[1.0, 1.0, 8.0, 4.0, 1.0, 2.0, 13.0]; 4];
        let c = latency_rgb(&chart(&stages)).unwrap();
        assert_eq!(c.rgb.len(), (WIDTH * HEIGHT * 3) as usize);
        // Each stage's area (bars, less its legend swatch) follows its share of the total.
        let swatch = 18 * 18;
        let area = |stage: usize| count(&c, STAGE_COLOURS[stage]).saturating_sub(swatch) as f64;
        let ratio = area(6) / area(3);
        assert!((ratio - 13.0 / 4.0).abs() < 0.5, "present/encode area {ratio}");
        assert!(area(0) > 0.0, "the first stage is drawn");
    }

    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        let c = latency_rgb(&chart(&[])).unwrap();
        let ink = c.rgb.chunks_exact(3).filter(|p| p[0] < 0x80 && p[1] < 0x80 && p[2] < 0x80).count();
        assert!(ink > 5_000, "title, axis labels and legend: {ink} dark pixels");
        let svg = latency_svg(&chart(&[[1.0; 7]])).unwrap();
        for text in ["milliseconds", "input, in the order sent", "p99 30.0", "wait capture:"] {
            assert!(svg.contains(text), "{text} missing from the SVG");
        }
    }

    #[test]
    fn nice_axis_tops() {
        assert_eq!(nice_ceiling(30.0), 50.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}

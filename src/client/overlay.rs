//! The egui layer of the window: the performance overlay and the state screen.
//!
//! Pure drawing functions: each takes a plain model (`core::view::overlay::OverlayModel`,
//! `core::view::screen::View`) and an egui `Ui`, and reads nothing else, so a test can run them in
//! a bare egui context and read back what they wrote.

use crate::core::view::overlay::OverlayModel;
use crate::core::view::screen::View;
use egui::{Align2, Color32, CornerRadius, FontId, Frame, Pos2, Rect, RichText, Sense, Stroke, Vec2};

/// Width of the overlay panel in points.
pub const OVERLAY_WIDTH: f32 = 430.0;
/// Gap between the overlay and the window's top-right corner, in points.
pub const OVERLAY_MARGIN: f32 = 8.0;

const STAGE_COLORS: [Color32; 5] = [
    Color32::from_rgb(0x4e, 0x9a, 0xf1),
    Color32::from_rgb(0xf1, 0xa3, 0x40),
    Color32::from_rgb(0xb0, 0x7c, 0xf0),
    Color32::from_rgb(0x52, 0xc4, 0x6b),
    Color32::from_rgb(0xe8, 0x5d, 0x75),
];

/// The overlay's text lines, in the order Moonlight shows them, then kumo's own.
pub fn overlay_lines(m: &OverlayModel) -> Vec<String> {
    let mut lines = vec![
        match m.path_limited {
            None => format!("Video stream: {}x{} {} FPS ({}, {})", m.width, m.height, m.fps, m.codec, m.color),
            Some((w, h)) => format!(
                "Video stream: {w}x{h} of {}x{}, path-limited, {} FPS ({}, {})",
                m.width, m.height, m.fps, m.codec, m.color
            ),
        },
        format!("Host: {}", m.host),
        format!("Bitrate: {:.2} Mbps", m.bitrate_mbps),
        format!("Incoming frame rate from network: {:.2} FPS", m.incoming_fps),
        format!("Decoding frame rate: {:.2} FPS", m.decode_fps),
        format!("Rendering frame rate: {:.2} FPS ({})", m.render_fps, m.present_mode),
        format!(
            "Host processing latency min/max/average: {:.1}/{:.1}/{:.1} ms",
            m.host_latency_min_ms, m.host_latency_max_ms, m.host_latency_avg_ms
        ),
        format!("Frames dropped by your network connection: {:.2}%", m.dropped_network_pct),
        format!("Frames completed from parity (FEC): {:.1}%", m.fec_pct),
        format!("Frames dropped by frame pacing: {:.2}%", m.dropped_pacing_pct),
        format!("Average network latency: {:.1} ms (variance: {:.1} ms)", m.rtt_ms, m.rtt_variance_ms),
        format!("Average decoding time: {:.2} ms", m.decode_ms),
        format!("Average frame queue delay: {:.2} ms", m.queue_ms),
        format!("Average rendering time: {:.2} ms", m.render_ms),
        format!("Capture to present: {:.1} ms", m.capture_to_present_ms),
    ];
    if let Some((offset, error)) = m.clock {
        lines.push(format!("Clock sync: host − client {offset:+.2} ms ± {error:.2} ms"));
    }
    if let Some(a) = &m.audio {
        lines.push(format!(
            "Audio: buffer {:.1} ms, A/V offset {:+.1} ms, {} concealed, {} underruns",
            a.buffer_ms, a.av_offset_ms, a.concealed, a.underruns
        ));
    }
    if let Some(mic) = &m.mic {
        lines.push(format!("Microphone: {mic}"));
    }
    if !m.recent_inputs.is_empty() {
        lines.push(
            "Latency lab, newest inputs, ms: total = send + uplink + wait + encode + downlink + decode + present"
                .into(),
        );
        for (seq, stages, total) in &m.recent_inputs {
            let parts: Vec<String> = stages.iter().map(|v| format!("{v:.1}")).collect();
            lines.push(format!("  input {seq}: {total:.1} = {}", parts.join(" + ")));
        }
    }
    lines
}

/// Draws the overlay panel at the top right of `ui`'s screen.
pub fn overlay_ui(ui: &mut egui::Ui, m: &OverlayModel) {
    egui::Area::new(egui::Id::unique("kumo-overlay"))
        .anchor(Align2::RIGHT_TOP, Vec2::new(-OVERLAY_MARGIN, OVERLAY_MARGIN))
        .interactable(false)
        .show(ui.ctx(), |ui| {
            Frame::new()
                .fill(Color32::from_black_alpha(200))
                .corner_radius(CornerRadius::same(6))
                .inner_margin(10.0)
                .show(ui, |ui| {
                    ui.set_width(OVERLAY_WIDTH - 20.0);
                    for line in overlay_lines(m) {
                        ui.label(RichText::new(line).color(Color32::WHITE).font(FontId::proportional(13.0)));
                    }
                    ui.add_space(6.0);
                    stage_bar(ui, m);
                    ui.add_space(6.0);
                    frame_time_graph(ui, m);
                    ui.label(
                        RichText::new("Ctrl+Alt+Shift+S hides this overlay")
                            .color(Color32::from_gray(170))
                            .font(FontId::proportional(11.0)),
                    );
                });
        });
}

/// A stacked bar of the median time each stage of capture→present takes, with a legend.
fn stage_bar(ui: &mut egui::Ui, m: &OverlayModel) {
    let total: f64 = m.stages.iter().map(|s| s.ms).sum();
    ui.label(
        RichText::new(format!("Latency by stage (medians, {total:.1} ms)"))
            .color(Color32::WHITE)
            .font(FontId::proportional(13.0)),
    );
    let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), 14.0), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::ZERO, Color32::from_gray(40));
    if total > 0.0 {
        let mut x = rect.left();
        for (stage, color) in m.stages.iter().zip(STAGE_COLORS) {
            let w = (stage.ms / total) as f32 * rect.width();
            painter.rect_filled(
                Rect::from_min_max(Pos2::new(x, rect.top()), Pos2::new(x + w, rect.bottom())),
                CornerRadius::ZERO,
                color,
            );
            x += w;
        }
    }
    ui.horizontal_wrapped(|ui| {
        for (stage, color) in m.stages.iter().zip(STAGE_COLORS) {
            let (swatch, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
            ui.painter().rect_filled(swatch, CornerRadius::same(2), color);
            ui.label(
                RichText::new(format!("{} {:.1} ms", stage.name, stage.ms))
                    .color(Color32::from_gray(220))
                    .font(FontId::proportional(12.0)),
            );
        }
    });
}

/// The last few seconds of present-to-present intervals, with the stream's frame interval
/// as a guide line: a stall is a spike.
fn frame_time_graph(ui: &mut egui::Ui, m: &OverlayModel) {
    let worst = m.frame_times_ms.iter().copied().fold(0.0f32, f32::max);
    ui.label(
        RichText::new(format!("Frame time, last {} frames (worst {worst:.1} ms)", m.frame_times_ms.len()))
            .color(Color32::WHITE)
            .font(FontId::proportional(13.0)),
    );
    let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), 60.0), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::ZERO, Color32::from_gray(25));
    let scale = (m.target_frame_ms * 3.0).max(worst).max(1.0);
    let y_of = |ms: f32| rect.bottom() - (ms / scale).min(1.0) * rect.height();
    if m.target_frame_ms > 0.0 {
        let y = y_of(m.target_frame_ms);
        painter.line_segment(
            [Pos2::new(rect.left(), y), Pos2::new(rect.right(), y)],
            Stroke::new(1.0, Color32::from_gray(90)),
        );
    }
    let n = m.frame_times_ms.len();
    if n >= 2 {
        let step = rect.width() / (crate::core::view::overlay::FRAME_TIMES - 1) as f32;
        let x0 = rect.right() - step * (n - 1) as f32;
        let points: Vec<Pos2> =
            m.frame_times_ms.iter().enumerate().map(|(i, &ms)| Pos2::new(x0 + step * i as f32, y_of(ms))).collect();
        painter.line(points, Stroke::new(1.5, Color32::from_rgb(0x7f, 0xd9, 0x7f)));
    }
}

/// Draws what `view` says over (or instead of) the video.
/// The kiosk's admin PIN prompt, over everything.
pub fn pin_ui(ui: &mut egui::Ui, pin: &crate::core::view::kiosk::PinView) {
    egui::Area::new(egui::Id::unique("kumo-admin-pin"))
        .anchor(Align2::CENTER_CENTER, Vec2::ZERO)
        .interactable(false)
        .order(egui::Order::Foreground)
        .show(ui.ctx(), |ui| {
            Frame::new().fill(Color32::from_gray(30)).corner_radius(CornerRadius::same(8)).inner_margin(24.0).show(
                ui,
                |ui| {
                    ui.vertical_centered(|ui| {
                        ui.label(RichText::new("Admin exit").color(Color32::WHITE).font(FontId::proportional(24.0)));
                        ui.add_space(8.0);
                        let dots = if pin.digits == 0 { "_".to_owned() } else { "●".repeat(pin.digits) };
                        ui.label(RichText::new(dots).color(Color32::WHITE).font(FontId::monospace(28.0)));
                        ui.add_space(8.0);
                        ui.label(
                            RichText::new(&pin.message).color(Color32::from_gray(200)).font(FontId::proportional(16.0)),
                        );
                    });
                },
            );
        });
}

pub fn status_ui(ui: &mut egui::Ui, view: &View) {
    match view {
        View::Video => {}
        View::Status { headline, detail, elapsed_secs } => {
            egui::Area::new(egui::Id::unique("kumo-status"))
                .anchor(Align2::CENTER_CENTER, Vec2::ZERO)
                .interactable(false)
                .show(ui.ctx(), |ui| {
                    ui.vertical_centered(|ui| {
                        ui.label(RichText::new("kumo").color(Color32::from_gray(120)).font(FontId::proportional(18.0)));
                        ui.add_space(8.0);
                        ui.label(RichText::new(headline).color(Color32::WHITE).font(FontId::proportional(28.0)));
                        ui.add_space(6.0);
                        ui.label(RichText::new(detail).color(Color32::from_gray(200)).font(FontId::proportional(16.0)));
                        ui.add_space(6.0);
                        ui.label(
                            RichText::new(format!("{elapsed_secs:.1} s"))
                                .color(Color32::from_gray(150))
                                .font(FontId::monospace(16.0)),
                        );
                    });
                });
        }
        View::VideoWithBanner { text, elapsed_secs } => banner(ui, &format!("{text}  {elapsed_secs:.1} s")),
        View::VideoWithNotice { text } => banner(ui, text),
    }
}

/// One line over the bottom of the video: the banner grows with its text rather than
/// wrapping.
fn banner(ui: &mut egui::Ui, line: &str) {
    egui::Area::new(egui::Id::unique("kumo-banner"))
        .anchor(Align2::CENTER_BOTTOM, Vec2::new(0.0, -40.0))
        .interactable(false)
        .show(ui.ctx(), |ui| {
            Frame::new()
                .fill(Color32::from_black_alpha(210))
                .corner_radius(CornerRadius::same(6))
                .inner_margin(12.0)
                .show(ui, |ui| {
                    ui.add(
                        egui::Label::new(RichText::new(line).color(Color32::WHITE).font(FontId::proportional(18.0)))
                            .wrap_mode(egui::TextWrapMode::Extend),
                    );
                });
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::view::overlay::Stage;

    fn model() -> OverlayModel {
        OverlayModel {
            host: "demo host".into(),
            width: 1920,
            height: 1080,
            fps: 60,
            path_limited: None,
            codec: "H.264",
            color: "bt601-limited".into(),
            present_mode: "Mailbox".into(),
            bitrate_mbps: 12.34,
            incoming_fps: 59.5,
            decode_fps: 59.25,
            render_fps: 58.75,
            host_latency_min_ms: 3.1,
            host_latency_max_ms: 9.7,
            host_latency_avg_ms: 5.4,
            dropped_network_pct: 1.25,
            fec_pct: 12.5,
            dropped_pacing_pct: 0.5,
            rtt_ms: 20.4,
            rtt_variance_ms: 1.6,
            decode_ms: 4.25,
            queue_ms: 0.75,
            render_ms: 1.5,
            capture_to_present_ms: 33.3,
            stages: vec![Stage { name: "host encode", ms: 5.0 }, Stage { name: "network", ms: 10.5 }],
            frame_times_ms: vec![16.7, 16.6, 120.0, 16.7],
            target_frame_ms: 16.67,
            audio: Some(crate::core::view::overlay::AudioLine {
                buffer_ms: 14.25,
                av_offset_ms: 4.75,
                concealed: 3,
                underruns: 1,
            }),
            recent_inputs: vec![(12, [0.1, 0.3, 8.2, 4.1, 1.0, 2.2, 15.3], 31.2)],
            clock: Some((-3.25, 0.5)),
            mic: Some("push-to-talk: hold Ctrl+Alt+V".into()),
        }
    }

    /// Every piece of text a UI function painted.
    fn painted_text(draw: impl Fn(&mut egui::Ui)) -> String {
        let ctx = egui::Context::default();
        let input = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, Vec2::new(1920.0, 1080.0))),
            ..Default::default()
        };
        // Two passes: egui sizes areas on the first.
        let mut out = ctx.run_ui(input.clone(), &draw);
        out.textures_delta.clear();
        let out = ctx.run_ui(input, &draw);
        let mut text = String::new();
        for clipped in &out.shapes {
            collect(&clipped.shape, &mut text);
        }
        out.drop_without_applying_deltas();
        text
    }

    fn collect(shape: &egui::Shape, text: &mut String) {
        match shape {
            egui::Shape::Text(t) => {
                text.push_str(t.galley.text());
                text.push('\n');
            }
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| collect(s, text)),
            _ => {}
        }
    }

    #[test]
    fn overlay_shows_every_moonlight_line_with_the_models_values() {
        let m = model();
        let text = painted_text(|ui| overlay_ui(ui, &m));
        for want in [
            "Video stream: 1920x1080 60 FPS (H.264, bt601-limited)",
            "Bitrate: 12.34 Mbps",
            "Incoming frame rate from network: 59.50 FPS",
            "Decoding frame rate: 59.25 FPS",
            "Rendering frame rate: 58.75 FPS (Mailbox)",
            "Host processing latency min/max/average: 3.1/9.7/5.4 ms",
            "Frames dropped by your network connection: 1.25%",
            "Frames completed from parity (FEC): 12.5%",
            "Frames dropped by frame pacing: 0.50%",
            "Average network latency: 20.4 ms (variance: 1.6 ms)",
            "Average decoding time: 4.25 ms",
            "Average frame queue delay: 0.75 ms",
            "Average rendering time: 1.50 ms",
            "Latency by stage (medians, 15.5 ms)",
            "network 10.5 ms",
            "worst 120.0 ms",
            "Audio: buffer 14.2 ms, A/V offset +4.8 ms, 3 concealed, 1 underruns",
            "input 12: 31.2 = 0.1 + 0.3 + 8.2 + 4.1 + 1.0 + 2.2 + 15.3",
            "Clock sync: host − client -3.25 ms ± 0.50 ms",
            "Microphone: push-to-talk: hold Ctrl+Alt+V",
        ] {
            assert!(text.contains(want), "missing `{want}` in:\n{text}");
        }
    }

    #[test]
    fn a_path_limited_picture_says_so_on_its_first_line() {
        let m = OverlayModel { path_limited: Some((960, 540)), ..model() };
        let text = painted_text(|ui| overlay_ui(ui, &m));
        let want = "Video stream: 960x540 of 1920x1080, path-limited, 60 FPS (H.264, bt601-limited)";
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }

    #[test]
    fn status_screen_and_banner_say_what_is_happening() {
        let view =
            View::Status { headline: "Connecting to h…".into(), detail: "Setting up".into(), elapsed_secs: 2.3 };
        let text = painted_text(|ui| status_ui(ui, &view));
        assert!(text.contains("Connecting to h…") && text.contains("2.3 s"), "{text}");
        let view = View::VideoWithBanner { text: "waiting for a recovery frame".into(), elapsed_secs: 0.5 };
        let text = painted_text(|ui| status_ui(ui, &view));
        assert!(text.contains("waiting for a recovery frame  0.5 s"), "{text}");
        assert!(painted_text(|ui| status_ui(ui, &View::Video)).is_empty());
    }
}

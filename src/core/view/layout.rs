//! Window geometry and presentation choices: letterboxing, the first window size, and which
//! present mode to use.
//!
//! Pure: sizes in physical pixels come in, rectangles and choices come out.

/// A rectangle in physical pixels, origin top left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.width && y < self.y + self.height
    }
}

/// The largest rectangle of the stream's aspect ratio that fits the surface, centred: bars
/// above and below (letterbox) or left and right (pillarbox). Whole pixels, so a stream shown
/// at its own size maps 1:1. Empty when either size is zero.
pub fn fit(stream: (u32, u32), surface: (u32, u32)) -> Rect {
    let ((sw, sh), (tw, th)) = (stream, surface);
    if sw == 0 || sh == 0 || tw == 0 || th == 0 {
        return Rect::default();
    }
    // Compare tw/th with sw/sh without rounding: tw·sh vs th·sw.
    let (width, height) = if u64::from(tw) * u64::from(sh) <= u64::from(th) * u64::from(sw) {
        // Surface is narrower than the stream: full width, letterbox.
        (tw, ((u64::from(tw) * u64::from(sh) + u64::from(sw) / 2) / u64::from(sw)) as u32)
    } else {
        // Surface is wider: full height, pillarbox.
        (((u64::from(th) * u64::from(sw) + u64::from(sh) / 2) / u64::from(sh)) as u32, th)
    };
    let (width, height) = (width.clamp(1, tw), height.clamp(1, th));
    Rect { x: (tw - width) / 2, y: (th - height) / 2, width, height }
}

/// The first windowed size, in logical pixels: the stream's own size, scaled down to fit 90 %
/// of the monitor (when it is known) with the aspect ratio kept.
pub fn initial_window_size(stream: (u32, u32), monitor: Option<(u32, u32)>) -> (u32, u32) {
    let (sw, sh) = (stream.0.max(1), stream.1.max(1));
    let Some((mw, mh)) = monitor else { return (sw, sh) };
    let (room_w, room_h) = (mw * 9 / 10, mh * 9 / 10);
    if sw <= room_w && sh <= room_h {
        return (sw, sh);
    }
    let r = fit((sw, sh), (room_w.max(1), room_h.max(1)));
    (r.width, r.height)
}

/// A surface present mode (mirrors wgpu's, which the core does not import).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresentMode {
    /// Wait for vertical blank, no tearing, up to a frame of added latency.
    Fifo,
    /// Replace the queued image at vertical blank: no tearing, low latency.
    Mailbox,
    /// Present at once: lowest latency, may tear.
    Immediate,
}

/// What the user asked for with `--vsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vsync {
    /// The lowest latency the platform offers: mailbox, else immediate, else fifo.
    #[default]
    Auto,
    /// Fifo: classic vsync.
    On,
    /// No waiting for vertical blank: immediate, else mailbox.
    Off,
    Mailbox,
    Immediate,
}

impl std::str::FromStr for Vsync {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "on" | "fifo" => Ok(Self::On),
            "off" => Ok(Self::Off),
            "mailbox" => Ok(Self::Mailbox),
            "immediate" => Ok(Self::Immediate),
            _ => Err(format!("unknown --vsync `{s}`: use auto, on, off, mailbox or immediate")),
        }
    }
}

/// Picks the present mode for `wanted` among those the surface `supports`, and says when it
/// had to fall back. Fifo is always available (every surface must support it).
pub fn choose_present_mode(wanted: Vsync, supports: &[PresentMode]) -> (PresentMode, Option<String>) {
    use PresentMode::{Fifo, Immediate, Mailbox};
    let order: &[PresentMode] = match wanted {
        Vsync::Auto => &[Mailbox, Immediate, Fifo],
        Vsync::On => &[Fifo],
        Vsync::Off => &[Immediate, Mailbox, Fifo],
        Vsync::Mailbox => &[Mailbox, Fifo],
        Vsync::Immediate => &[Immediate, Fifo],
    };
    let chosen = order.iter().copied().find(|m| supports.contains(m)).unwrap_or(Fifo);
    let first = order[0];
    let note = (chosen != first && wanted != Vsync::Auto)
        .then(|| format!("the display does not offer {first:?} presentation; using {chosen:?}"));
    (chosen, note)
}

/// What the user asked for with `--renderer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Renderer {
    /// The GPU where one exists; the CPU where the only adapter is a software rasterizer
    /// (lavapipe, llvmpipe, `SwiftShader`) or there is none.
    #[default]
    Auto,
    /// Always the GPU path (wgpu), even on a software rasterizer.
    Gpu,
    /// Always the software presenter.
    Cpu,
}

impl std::str::FromStr for Renderer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" | "software" => Ok(Self::Cpu),
            _ => Err(format!("unknown --renderer `{s}`: use auto, gpu or cpu")),
        }
    }
}

/// What kind of adapter the graphics driver offers (mirrors wgpu's device type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    /// A real GPU: discrete, integrated or virtual.
    Hardware,
    /// A rasterizer running on the CPU.
    Software,
}

/// The presenter a window draws with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presenter {
    Gpu,
    Cpu,
}

/// Picks the presenter for `wanted` given the adapters the driver offers. On a CPU rasterizer
/// the software presenter is the faster (docs/benchmarks.md: lavapipe spends 60 ms a 720p frame
/// with the overlay where the software presenter spends a few), so `auto` takes the GPU path only
/// where a real GPU exists.
pub fn choose_presenter(wanted: Renderer, adapters: &[AdapterKind]) -> Presenter {
    match wanted {
        Renderer::Gpu => Presenter::Gpu,
        Renderer::Auto if adapters.contains(&AdapterKind::Hardware) => Presenter::Gpu,
        Renderer::Cpu | Renderer::Auto => Presenter::Cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_the_gpu_only_where_a_real_one_exists() {
        use AdapterKind::{Hardware, Software};
        assert_eq!(choose_presenter(Renderer::Auto, &[Software, Hardware]), Presenter::Gpu);
        assert_eq!(choose_presenter(Renderer::Auto, &[Software]), Presenter::Cpu);
        assert_eq!(choose_presenter(Renderer::Auto, &[]), Presenter::Cpu);
        assert_eq!(choose_presenter(Renderer::Gpu, &[Software]), Presenter::Gpu);
        assert_eq!(choose_presenter(Renderer::Cpu, &[Hardware]), Presenter::Cpu);
        assert_eq!("software".parse::<Renderer>(), Ok(Renderer::Cpu));
        assert!("metal".parse::<Renderer>().unwrap_err().contains("auto, gpu or cpu"));
    }

    #[test]
    fn letterbox_and_pillarbox() {
        // 16:9 stream in a 4:3 window: bars above and below.
        assert_eq!(fit((1920, 1080), (1024, 768)), Rect { x: 0, y: 96, width: 1024, height: 576 });
        // 4:3 stream in a 16:9 window: bars left and right.
        assert_eq!(fit((640, 480), (1920, 1080)), Rect { x: 240, y: 0, width: 1440, height: 1080 });
        // Same aspect: fills, and the stream's own size maps 1:1.
        assert_eq!(fit((1280, 720), (1280, 720)), Rect { x: 0, y: 0, width: 1280, height: 720 });
        assert_eq!(fit((1280, 720), (2560, 1440)), Rect { x: 0, y: 0, width: 2560, height: 1440 });
        // Ultrawide window.
        assert_eq!(fit((1920, 1080), (3440, 1440)), Rect { x: 440, y: 0, width: 2560, height: 1440 });
        // Tall phone-like window.
        assert_eq!(fit((1280, 720), (720, 1280)), Rect { x: 0, y: 437, width: 720, height: 405 });
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        assert!(fit((0, 720), (100, 100)).is_empty());
        assert!(fit((1280, 720), (0, 0)).is_empty());
        let r = fit((3840, 2), (1, 1));
        assert_eq!((r.width, r.height), (1, 1));
        let r = fit((u32::MAX, u32::MAX), (u32::MAX, 7));
        assert_eq!((r.width, r.height), (7, 7));
    }

    #[test]
    fn fit_always_inside_and_centred() {
        for (stream, surface) in [((1280, 720), (333, 777)), ((352, 288), (1919, 1081)), ((3840, 2160), (640, 480))] {
            let r = fit(stream, surface);
            assert!(r.x + r.width <= surface.0 && r.y + r.height <= surface.1, "{r:?} in {surface:?}");
            let (left, right) = (r.x, surface.0 - r.x - r.width);
            let (top, bottom) = (r.y, surface.1 - r.y - r.height);
            assert!(left.abs_diff(right) <= 1 && top.abs_diff(bottom) <= 1, "{r:?} in {surface:?}");
            assert!(r.width == surface.0 || r.height == surface.1, "touches two edges: {r:?}");
            let want = stream.0 as f64 / stream.1 as f64;
            let got = r.width as f64 / r.height as f64;
            assert!((got / want - 1.0).abs() < 0.01, "aspect {got} vs {want}");
        }
    }

    #[test]
    fn first_window_size() {
        assert_eq!(initial_window_size((1280, 720), Some((1920, 1080))), (1280, 720));
        assert_eq!(initial_window_size((1280, 720), None), (1280, 720));
        assert_eq!(initial_window_size((3840, 2160), Some((1920, 1080))), (1728, 972));
    }

    #[test]
    fn present_mode_choice() {
        use PresentMode::{Fifo, Immediate, Mailbox};
        assert_eq!(choose_present_mode(Vsync::Auto, &[Fifo, Mailbox, Immediate]), (Mailbox, None));
        assert_eq!(choose_present_mode(Vsync::Auto, &[Fifo, Immediate]), (Immediate, None));
        assert_eq!(choose_present_mode(Vsync::Auto, &[Fifo]), (Fifo, None));
        assert_eq!(choose_present_mode(Vsync::On, &[Fifo, Mailbox]), (Fifo, None));
        assert_eq!(choose_present_mode(Vsync::Off, &[Fifo, Mailbox]).0, Mailbox);
        let (mode, note) = choose_present_mode(Vsync::Immediate, &[Fifo, Mailbox]);
        assert_eq!(mode, Fifo);
        assert!(note.unwrap().contains("Immediate"));
        assert_eq!(choose_present_mode(Vsync::Mailbox, &[]).0, Fifo);
        assert_eq!("OFF".parse::<Vsync>(), Ok(Vsync::Off));
        assert!("sometimes".parse::<Vsync>().is_err());
    }
}

//! The X11 shell (x11rb): a display's picture captured into the encoder's I420, and the
//! player's input injected through XTEST.
//!
//! Capture asks the server for the root window's pixels into shared memory (MIT-SHM 1.2: the
//! server makes the segment and passes its descriptor, so nothing crosses the socket but the
//! request); where that cannot work (a server on another machine or in another IPC
//! namespace) it falls back to plain `GetImage`, with a warning, which copies every picture
//! through the socket. BGRX → I420 is yuvutils-rs's SIMD conversion in BT.709 (desktop
//! content), limited range; nothing here loops over pixels.
//!
//! Injection names keys by position (`core::input::inject`): the server's XKB key names give
//! each position its keycode, whatever the layout.

use crate::core::input::inject::{InjectEvent, to_pixels, xkb_key_name};
use crate::core::sim::scene::I420;
use crate::core::view::color::ColorSpace;
use thiserror::Error;
use x11rb::connection::Connection as _;
use x11rb::protocol::damage::ConnectionExt as _;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xkb::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

#[derive(Debug, Error)]
pub enum DesktopError {
    #[error(
        "could not open X display {display}: {reason}. Is an X server running there, and may this user use it (DISPLAY, XAUTHORITY)?"
    )]
    Open { display: String, reason: String },
    #[error("the X display went away: {0}")]
    Gone(String),
    #[error("X display {display} has no monitor {index}; its monitors are {listed}")]
    NoMonitor { display: String, index: usize, listed: String },
    #[error(
        "this is a {kind} desktop, which kumo cannot capture yet (X display {display}: {reason}); use `kumo host --app COMMAND` (a private X server per session), or log in to an X11 session"
    )]
    Wayland { display: String, kind: &'static str, reason: String },
    #[error("X display {display} has no {extension} extension, which kumo needs to {purpose}")]
    Missing { display: String, extension: &'static str, purpose: &'static str },
    #[error(
        "X display {display} is {width}x{height}, which kumo cannot stream (even sizes from {}x64 to 3840x2160)",
        crate::core::sim::marker::MIN_WIDTH
    )]
    Size { display: String, width: u16, height: u16 },
    #[error("X display {display} draws {bits} bits per pixel; kumo captures 24-bit colour (32 bits per pixel) only")]
    Depth { display: String, bits: u8 },
}

fn gone(err: impl std::fmt::Display) -> DesktopError {
    DesktopError::Gone(err.to_string())
}

/// A connection to a display and its root window, and the part of it streamed: all of it, or
/// one monitor's rectangle.
struct Screen {
    conn: RustConnection,
    root: Window,
    /// The streamed area's top-left corner on the root window.
    x: i16,
    y: i16,
    width: u16,
    height: u16,
    name: String,
}

impl Screen {
    /// Opens `display`, with the X authority in the environment or, for a server of the
    /// host's own, its cookie.
    fn open(display: &str, cookie: Option<&[u8; 16]>) -> Result<Self, DesktopError> {
        let open = |reason: String| DesktopError::Open { display: display.to_owned(), reason };
        let (conn, screen) = crate::xconn::connect(Some(display), cookie).map_err(open)?;
        let root = conn.setup().roots.get(screen).ok_or_else(|| open("it has no such screen".into()))?;
        let (root_window, width, height) = (root.root, root.width_in_pixels, root.height_in_pixels);
        Ok(Self { conn, root: root_window, x: 0, y: 0, width, height, name: display.to_owned() })
    }

    /// Opens `display` with its streamed area: the whole root window, or `monitor`.
    fn open_area(display: &str, cookie: Option<&[u8; 16]>, monitor: Option<usize>) -> Result<Self, DesktopError> {
        let screen = Self::open(display, cookie)?;
        match monitor {
            Some(index) => screen.monitor(index),
            None => Ok(screen),
        }
    }

    /// Narrows the streamed area to the `RandR` monitor `index` (0 first, as `xrandr --listmonitors`
    /// lists them).
    fn monitor(mut self, index: usize) -> Result<Self, DesktopError> {
        use x11rb::protocol::randr::ConnectionExt as _;
        let missing = || DesktopError::Missing {
            display: self.name.clone(),
            extension: "RandR 1.5",
            purpose: "choose a monitor",
        };
        let monitors = self
            .conn
            .randr_get_monitors(self.root, true)
            .map_err(|_| missing())?
            .reply()
            .map_err(|_| missing())?
            .monitors;
        let Some(m) = monitors.get(index) else {
            let listed: Vec<String> = monitors
                .iter()
                .enumerate()
                .map(|(i, m)| format!("{i}: {}x{}+{}+{}", m.width, m.height, m.x, m.y))
                .collect();
            return Err(DesktopError::NoMonitor { display: self.name.clone(), index, listed: listed.join(", ") });
        };
        (self.x, self.y, self.width, self.height) = (m.x, m.y, m.width, m.height);
        Ok(self)
    }
}

/// Where a capture's pixels arrive.
enum Grab {
    /// A shared-memory segment the server writes into.
    Shared { seg: u32, map: memmap2::Mmap },
    /// Plain `GetImage`: the pixels come through the socket.
    Socket,
}

/// Captures a display's root window into I420 pictures of its size.
pub struct Capture {
    screen: Screen,
    grab: Grab,
    /// The DAMAGE extension's record of what was drawn since the last capture (`None`: no
    /// such extension; every slot is captured).
    damage: Option<u32>,
    /// Whether the picture holds a capture yet.
    captured: bool,
    /// Whether the display drew since the last capture (DAMAGE events read so far).
    drawn: bool,
    /// Whether the pointer is drawn in (the XFIXES extension gives its image); where it was
    /// at the last capture, on the root window.
    cursor: bool,
    pointer: Option<(i16, i16)>,
    /// The stream's size, when it is not the captured area's: each capture is scaled to it.
    scaled: Option<Scaler>,
}

/// Scales a capture to the stream's size (`fast_image_resize`: SIMD, bilinear) before the
/// colour conversion.
struct Scaler {
    width: u16,
    height: u16,
    resizer: fast_image_resize::Resizer,
    out: Vec<u8>,
}

impl Scaler {
    /// `bgrx` of `width` × `height` scaled into the scaler's buffer.
    fn scale(&mut self, bgrx: &[u8], width: u16, height: u16) -> Option<&[u8]> {
        use fast_image_resize::images::{Image, ImageRef};
        use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
        let src = ImageRef::new(width.into(), height.into(), bgrx, PixelType::U8x4).ok()?;
        let mut dst =
            Image::from_slice_u8(self.width.into(), self.height.into(), &mut self.out, PixelType::U8x4).ok()?;
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        self.resizer.resize(&src, &mut dst, &options).ok()?;
        Some(&self.out)
    }
}

/// What a capture slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grabbed {
    /// A new picture.
    Changed,
    /// Nothing was drawn since the last capture: the picture is as it was.
    Unchanged,
}

impl Capture {
    /// Opens `display` (`:0`, `:99`): its whole root window. The stream has the display's size,
    /// which must be even.
    pub fn open(display: &str, cookie: Option<&[u8; 16]>, monitor: Option<usize>) -> Result<Self, DesktopError> {
        Self::open_with(display, cookie, monitor, true)
    }

    /// `open`, choosing whether to try shared memory (the benchmark compares both paths).
    pub fn open_with(
        display: &str,
        cookie: Option<&[u8; 16]>,
        monitor: Option<usize>,
        try_shared: bool,
    ) -> Result<Self, DesktopError> {
        let screen = Screen::open_area(display, cookie, monitor)?;
        let (width, height) = (screen.width, screen.height);
        if crate::core::sim::scene::check_size(width.into(), height.into()).is_err() {
            return Err(DesktopError::Size { display: display.to_owned(), width, height });
        }
        let format = screen.conn.setup().pixmap_formats.iter().find(|f| f.depth == 24).map(|f| f.bits_per_pixel);
        if format != Some(32) {
            return Err(DesktopError::Depth { display: display.to_owned(), bits: format.unwrap_or(0) });
        }
        let grab = match if try_shared { shared(&screen) } else { Err("not asked for".into()) } {
            Ok(grab) => grab,
            Err(reason) if !try_shared => {
                tracing::debug!("capturing without shared memory: {reason}");
                Grab::Socket
            }
            Err(reason) => {
                let name = display;
                tracing::warn!(
                    "capturing X display {name} without shared memory ({reason}): every picture is copied through the X socket, which costs CPU and latency; run the host on the X server's machine, in the same IPC namespace"
                );
                Grab::Socket
            }
        };
        let damage = watch_damage(&screen)
            .inspect_err(|reason| tracing::info!("capturing every slot: no damage tracking ({reason})"))
            .ok();
        let cursor =
            shows_cursor(&screen).inspect_err(|reason| tracing::info!("the stream shows no pointer: {reason}")).is_ok();
        Ok(Self { screen, grab, damage, captured: false, drawn: false, cursor, pointer: None, scaled: None })
    }

    /// Scales every capture to `width` × `height` (the stream's size) from now on, when that
    /// is not the captured area's own.
    pub fn scale_to(&mut self, width: u16, height: u16) {
        self.scaled = ((width, height) != self.size()).then(|| Scaler {
            width,
            height,
            resizer: fast_image_resize::Resizer::new(),
            out: vec![0; usize::from(width) * usize::from(height) * 4],
        });
    }

    /// The display's size.
    pub fn size(&self) -> (u16, u16) {
        (self.screen.width, self.screen.height)
    }

    /// Captures every slot whatever was drawn (the benchmark measures the grab itself).
    pub fn capture_every_slot(&mut self) {
        self.damage = None;
    }

    /// Whether the server reports drawing (DAMAGE), so that a capture can wait for it.
    pub fn tracks_damage(&self) -> bool {
        self.damage.is_some()
    }

    /// Whether anything was drawn since the last capture, from the events the server has sent
    /// so far (never blocks). Without damage tracking: always.
    pub fn drawn(&mut self) -> Result<bool, DesktopError> {
        if self.damage.is_none() {
            return Ok(true);
        }
        while let Some(event) = self.screen.conn.poll_for_event().map_err(gone)? {
            self.drawn |= matches!(event, x11rb::protocol::Event::DamageNotify(_));
        }
        Ok(self.drawn || !self.captured)
    }

    /// The connection's socket, readable when the server has sent something (a DAMAGE event):
    /// what a capture loop waits on, after [`Capture::drawn`] said no.
    pub fn events_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd as _;
        self.screen.conn.stream().as_fd()
    }

    /// Captures the display now into `picture` (of the display's size), unless nothing was
    /// drawn since the last capture into the same picture.
    pub fn grab(&mut self, picture: &mut I420) -> Result<Grabbed, DesktopError> {
        if let Some(damage) = self.damage {
            if !self.drawn()? {
                return Ok(Grabbed::Unchanged);
            }
            self.drawn = false;
            // Reset before the grab, so that drawing during it is caught by the next slot.
            self.screen.conn.damage_subtract(damage, x11rb::NONE, x11rb::NONE).map_err(gone)?;
        }
        self.captured = true;
        let s = &self.screen;
        let (w, h) = (s.width, s.height);
        let all_planes = u32::MAX;
        match &self.grab {
            Grab::Shared { seg, map } => {
                s.conn
                    .shm_get_image(s.root, s.x, s.y, w, h, all_planes, ImageFormat::Z_PIXMAP.into(), *seg, 0)
                    .map_err(gone)?
                    .reply()
                    .map_err(gone)?;
                convert(map, w, h, self.scaled.as_mut(), picture);
            }
            Grab::Socket => {
                let image = s
                    .conn
                    .get_image(ImageFormat::Z_PIXMAP, s.root, s.x, s.y, w, h, all_planes)
                    .map_err(gone)?
                    .reply()
                    .map_err(gone)?;
                convert(&image.data, w, h, self.scaled.as_mut(), picture);
            }
        }
        if self.cursor {
            self.draw_cursor(picture)?;
        }
        Ok(Grabbed::Changed)
    }

    /// Counts the next capture as changed though nothing was drawn (the pointer may have
    /// moved: it is drawn in, and no DAMAGE event tells of it).
    pub fn mark_drawn(&mut self) {
        self.drawn = true;
    }

    /// Whether the pointer moved since the last capture (it is no drawing, so no DAMAGE event
    /// tells of it): one round trip. A capture loop asks while the display is otherwise still.
    pub fn pointer_moved(&mut self) -> Result<bool, DesktopError> {
        if !self.cursor {
            return Ok(false);
        }
        let s = &self.screen;
        let reply = s.conn.query_pointer(s.root).map_err(gone)?.reply().map_err(gone)?;
        Ok(self.pointer != Some((reply.root_x, reply.root_y)))
    }

    /// Draws the pointer into `picture` where the server shows it (nothing when it is off the
    /// streamed area, or its image cannot be had).
    fn draw_cursor(&mut self, picture: &mut I420) -> Result<(), DesktopError> {
        use x11rb::protocol::xfixes::ConnectionExt as _;
        let s = &self.screen;
        let image = s.conn.xfixes_get_cursor_image().map_err(gone)?.reply().map_err(gone)?;
        self.pointer = Some((image.x, image.y));
        let cursor = crate::core::video::cursor::Cursor {
            width: image.width,
            height: image.height,
            x: i32::from(image.x) - i32::from(image.xhot) - i32::from(s.x),
            y: i32::from(image.y) - i32::from(image.yhot) - i32::from(s.y),
            argb: image.cursor_image,
        };
        let scale = (picture.width as f64 / f64::from(s.width), picture.height as f64 / f64::from(s.height));
        crate::core::video::cursor::draw(picture, &cursor, scale, ColorSpace::DESKTOP);
        Ok(())
    }
}

/// Checks that the server can give its cursor's image (XFIXES 4).
fn shows_cursor(screen: &Screen) -> Result<(), String> {
    use x11rb::protocol::xfixes::ConnectionExt as _;
    let version =
        screen.conn.xfixes_query_version(4, 0).map_err(|e| e.to_string())?.reply().map_err(|e| e.to_string())?;
    if version.major_version < 4 {
        return Err(format!("XFIXES {}.{} is older than 4", version.major_version, version.minor_version));
    }
    Ok(())
}

/// Asks the server to report drawing on the root window (the DAMAGE extension, once per change: the
/// record is emptied at each capture).
fn watch_damage(screen: &Screen) -> Result<u32, String> {
    use x11rb::protocol::damage::ReportLevel;
    let conn = &screen.conn;
    conn.damage_query_version(1, 1).map_err(|e| e.to_string())?.reply().map_err(|e| e.to_string())?;
    let damage = conn.generate_id().map_err(|e| e.to_string())?;
    conn.damage_create(damage, screen.root, ReportLevel::NON_EMPTY).map_err(|e| e.to_string())?;
    conn.flush().map_err(|e| e.to_string())?;
    Ok(damage)
}

/// Sets up shared-memory capture: the server makes a segment of a picture's size and passes
/// its descriptor (MIT-SHM 1.2), which is mapped here read-only.
fn shared(screen: &Screen) -> Result<Grab, String> {
    let conn = &screen.conn;
    let version = conn.shm_query_version().map_err(|e| e.to_string())?.reply().map_err(|e| e.to_string())?;
    if (version.major_version, version.minor_version) < (1, 2) {
        return Err(format!("MIT-SHM {}.{} cannot pass descriptors", version.major_version, version.minor_version));
    }
    let size = u32::from(screen.width) * u32::from(screen.height) * 4;
    let seg = conn.generate_id().map_err(|e| e.to_string())?;
    // Not read-only: the server writes the pictures into it.
    let reply =
        conn.shm_create_segment(seg, size, false).map_err(|e| e.to_string())?.reply().map_err(|e| e.to_string())?;
    let file = std::fs::File::from(reply.shm_fd);
    let map = map_segment(&file, size as usize).map_err(|e| format!("could not map the segment: {e}"))?;
    Ok(Grab::Shared { seg, map })
}

/// Maps the server's segment read-only.
#[expect(unsafe_code, reason = "mapping shared memory is unsafe by nature: see the SAFETY note")]
fn map_segment(file: &std::fs::File, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and lives in `Capture` beside the segment. The X server
    // writes into it only while this thread waits for the reply to its own `GetImage`, and the
    // pixels are read only after that reply: no write overlaps a read. The bytes are plain
    // pixel data; any value is valid.
    unsafe { memmap2::MmapOptions::new().len(len).map(file) }
}

/// A capture of `width` × `height` into `picture`, scaled first when the stream is smaller.
fn convert(bgrx: &[u8], width: u16, height: u16, scaler: Option<&mut Scaler>, picture: &mut I420) {
    match scaler {
        None => to_i420(bgrx, width, height, picture),
        Some(scaler) => {
            let (w, h) = (scaler.width, scaler.height);
            if let Some(scaled) = scaler.scale(bgrx, width, height) {
                to_i420(scaled, w, h, picture);
            }
        }
    }
}

/// BGRX rows of `width` × `height` into `picture` (BT.709, limited range).
pub fn to_i420(bgrx: &[u8], width: u16, height: u16, picture: &mut I420) {
    use yuvutils_rs::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};
    let (w, h) = (u32::from(width), u32::from(height));
    let mut planes = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut picture.y),
        y_stride: w,
        u_plane: BufferStoreMut::Borrowed(&mut picture.u),
        u_stride: w / 2,
        v_plane: BufferStoreMut::Borrowed(&mut picture.v),
        v_stride: w / 2,
        width: w,
        height: h,
    };
    let needed = (w * h * 4) as usize;
    let Some(pixels) = bgrx.get(..needed) else { return };
    // Sizes were checked when the capture opened; a failure here leaves the last picture.
    if let Err(err) = yuvutils_rs::bgra_to_yuv420(
        &mut planes,
        pixels,
        w * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt709,
        YuvConversionMode::Balanced,
    ) {
        tracing::debug!("colour conversion failed: {err}");
    }
}

/// Injects the player's input into a display through XTEST.
pub struct Injector {
    screen: Screen,
    /// The server's keycode for each HID usage (0: the keymap has none).
    keycodes: [u8; 256],
    /// Which keycodes carry a symbol in the server's keymap: a key at a keycode without one
    /// types nothing, and a keycode without one is spare.
    has_symbols: [bool; 256],
    /// The keycode range the server allows.
    codes: std::ops::RangeInclusive<u8>,
}

impl Injector {
    /// Injects into `display`; pointer positions map onto `monitor` when one is streamed.
    pub fn open(display: &str, cookie: Option<&[u8; 16]>, monitor: Option<usize>) -> Result<Self, DesktopError> {
        let screen = Screen::open_area(display, cookie, monitor)?;
        let missing = |extension, purpose| DesktopError::Missing { display: display.to_owned(), extension, purpose };
        screen
            .conn
            .xtest_get_version(2, 2)
            .map_err(gone)?
            .reply()
            .map_err(|_| missing("XTEST", "inject the player's input"))?;
        let keycodes = keycodes(&screen.conn).map_err(|_| missing("XKB", "find each key by its position"))?;
        let (min, max) = (screen.conn.setup().min_keycode, screen.conn.setup().max_keycode);
        let mapping = screen
            .conn
            .get_keyboard_mapping(min, max.saturating_sub(min).saturating_add(1))
            .map_err(gone)?
            .reply()
            .map_err(gone)?;
        let mut has_symbols = [false; 256];
        let per = usize::from(mapping.keysyms_per_keycode.max(1));
        for (i, syms) in mapping.keysyms.chunks(per).enumerate() {
            if let Some(slot) = has_symbols.get_mut(usize::from(min) + i) {
                *slot = syms.iter().any(|&k| k != 0);
            }
        }
        Ok(Self { screen, keycodes, has_symbols, codes: min..=max })
    }

    /// The keycode that types `usage`: its position's, or, where the keymap has no symbol
    /// there, a spare keycode given the US symbols of that position (once; nothing when no
    /// keycode is spare).
    fn keycode(&mut self, usage: u8) -> Result<Option<u8>, DesktopError> {
        let code = self.keycodes[usize::from(usage)];
        if code != 0 && self.has_symbols[usize::from(code)] {
            return Ok(Some(code));
        }
        let Some(symbols) = crate::core::input::inject::us_keysyms(usage) else { return Ok(None) };
        // From the top: the low keycodes are the ones keyboards have.
        let Some(spare) = self.codes.clone().rev().find(|&c| !self.has_symbols[usize::from(c)] && c != code) else {
            tracing::debug!(usage, "no spare keycode left for a key the display's keymap lacks");
            return Ok(None);
        };
        self.screen.conn.change_keyboard_mapping(1, spare, 2, &symbols).map_err(gone)?;
        self.has_symbols[usize::from(spare)] = true;
        self.keycodes[usize::from(usage)] = spare;
        tracing::debug!(usage, spare, "gave a key the display's keymap lacks a spare keycode");
        Ok(Some(spare))
    }

    /// Injects one event (sent with the next [`Self::flush`]).
    pub fn inject(&mut self, event: InjectEvent) -> Result<(), DesktopError> {
        const KEY_PRESS: u8 = 2;
        const KEY_RELEASE: u8 = 3;
        const BUTTON_PRESS: u8 = 4;
        const BUTTON_RELEASE: u8 = 5;
        const MOTION: u8 = 6;
        // A key's keycode first: finding it may map a spare one, which needs `self` mutably.
        let key_code = match event {
            InjectEvent::Key { usage, .. } => self.keycode(usage)?,
            _ => None,
        };
        let s = &self.screen;
        let fake = |kind: u8, detail: u8, x: i16, y: i16| {
            s.conn.xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, s.root, x, y, 0).map(drop).map_err(gone)
        };
        match event {
            InjectEvent::Key { down, .. } => {
                if let Some(code) = key_code {
                    fake(if down { KEY_PRESS } else { KEY_RELEASE }, code, 0, 0)?;
                }
            }
            InjectEvent::Button { button, down } => {
                let kind = if down { BUTTON_PRESS } else { BUTTON_RELEASE };
                fake(kind, button, 0, 0)?;
            }
            InjectEvent::MoveTo { x, y } => {
                let x = s.x.saturating_add(to_pixels(x, s.width));
                let y = s.y.saturating_add(to_pixels(y, s.height));
                fake(MOTION, 0, x, y)?;
            }
            InjectEvent::MoveBy { dx, dy } => {
                let clamp = |v: i32| v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                fake(MOTION, 1, clamp(dx), clamp(dy))?;
            }
            InjectEvent::Wheel { steps } => {
                // X's wheel is buttons 4 (away) and 5 (towards): a click per step.
                let button = if steps > 0 { 4 } else { 5 };
                for _ in 0..steps.unsigned_abs().min(MAX_WHEEL_STEPS) {
                    fake(BUTTON_PRESS, button, 0, 0)?;
                    fake(BUTTON_RELEASE, button, 0, 0)?;
                }
            }
        }
        Ok(())
    }

    /// Sends what was injected to the server.
    pub fn flush(&self) -> Result<(), DesktopError> {
        self.screen.conn.flush().map_err(gone)
    }

    /// The display's name.
    pub fn display(&self) -> &str {
        &self.screen.name
    }
}

/// Wheel steps injected at most for one change (a client's total can jump after a long gap).
const MAX_WHEEL_STEPS: u32 = 64;

/// The keycode of each HID usage in the server's keymap, by XKB key name.
fn keycodes(conn: &RustConnection) -> Result<[u8; 256], String> {
    use x11rb::protocol::xkb::{ID, NameDetail};
    let e = |e: &dyn std::fmt::Display| e.to_string();
    conn.xkb_use_extension(1, 0).map_err(|x| e(&x))?.reply().map_err(|x| e(&x))?;
    let names = conn
        .xkb_get_names(ID::USE_CORE_KBD.into(), NameDetail::KEY_NAMES | NameDetail::KEY_ALIASES)
        .map_err(|x| e(&x))?
        .reply()
        .map_err(|x| e(&x))?;
    let key_names = names.value_list.key_names.unwrap_or_default();
    let mut by_name = std::collections::HashMap::new();
    for (i, key) in key_names.iter().enumerate() {
        let name = key.name.split(|&b| b == 0).next().unwrap_or_default();
        if let (Ok(name), Ok(code)) = (std::str::from_utf8(name), u8::try_from(usize::from(names.first_key) + i)) {
            by_name.entry(name.to_owned()).or_insert(code);
        }
    }
    let mut codes = [0u8; 256];
    for usage in 0..=255u8 {
        if let Some(code) = xkb_key_name(usage).and_then(|n| by_name.get(n)) {
            codes[usize::from(usage)] = *code;
        }
    }
    Ok(codes)
}

/// Keeps an `--app` session's program in view where no window manager does it: each top-level
/// window that appears is moved to fill the display and given the keyboard focus. Runs on
/// "kumo-windows" until the display goes away (the session's end).
pub fn keep_windows_in_view(display: &str, cookie: &[u8; 16]) -> Result<(), DesktopError> {
    use x11rb::protocol::Event;
    use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ConfigureWindowAux, EventMask, InputFocus};
    let screen = Screen::open(display, Some(cookie))?;
    screen
        .conn
        .change_window_attributes(
            screen.root,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY),
        )
        .map_err(gone)?;
    screen.conn.flush().map_err(gone)?;
    std::thread::Builder::new()
        .name("kumo-windows".into())
        .spawn(move || {
            let (w, h) = (u32::from(screen.width), u32::from(screen.height));
            while let Ok(event) = screen.conn.wait_for_event() {
                let Event::MapNotify(map) = event else { continue };
                if map.override_redirect || map.event != screen.root {
                    continue;
                }
                let fill = ConfigureWindowAux::new().x(0).y(0).width(w).height(h);
                screen.conn.configure_window(map.window, &fill).ok();
                screen.conn.set_input_focus(InputFocus::POINTER_ROOT, map.window, x11rb::CURRENT_TIME).ok();
                screen.conn.flush().ok();
            }
        })
        .map_err(|e| DesktopError::Gone(format!("could not start the window thread: {e}")))?;
    Ok(())
}

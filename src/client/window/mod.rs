//! The winit shell: the client's window, its event loop, and the stats owner when windowed.
//!
//! Owns the winit thread (the main thread). It opens the window at once and connects in the
//! background, showing the state screen until the first picture. The decode thread wakes it
//! through an `EventLoopProxy` after every picture; it then takes the latest picture from the
//! slot (replaced ones count as pacing drops), uploads it, draws it letterboxed with the egui
//! layer on top, and presents. It never blocks on the network or the decoder: session events
//! are drained with `try_recv`, the connection and its shutdown run on the tokio runtime and
//! report back through the proxy. The only wait is the display's (present mode).
//!
//! `app` is the event loop's state (winit's `ApplicationHandler`: session, input, redraw),
//! `surface` the wgpu surface it draws in, `keys` the mapping of winit's keys and mouse to the
//! game's input; this file holds the entry point and the types they share.

mod app;
pub mod keys;
mod surface;

use crate::client::{ClientConfig, ClientError, End, Session, SessionReport};
use crate::core::input::hotkeys::{Chord, Hotkeys};
use crate::core::sim::lab::Lab;
use crate::core::stats::{self, Stats, Summary};
use crate::core::view::color::ColorSpace;
use crate::core::view::kiosk;
use crate::core::view::layout::{Renderer, Vsync};
use crate::core::view::overlay::FrameTimes;
use anyhow::{Context as _, anyhow};
use app::App;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use winit::event_loop::EventLoop;

/// How the window behaves.
#[derive(Debug, Clone, Default)]
pub struct WindowOptions {
    pub vsync: Vsync,
    /// Which presenter draws: the GPU's, the CPU's, or the faster for this machine.
    pub renderer: Renderer,
    /// Show the performance overlay from the start.
    pub overlay: bool,
    pub fullscreen: bool,
    /// Close after this long (for tests and measurements).
    pub duration: Option<Duration>,
    /// Convert with this colour space instead of the one the host announces.
    pub color: Option<ColorSpace>,
    /// Lock the pointer to the window while playing (games that turn with the mouse).
    pub relative_mouse: bool,
    pub hotkeys: Hotkeys,
    /// Sees every session event (the latency lab); its recent inputs fill the overlay's
    /// latency lines.
    pub observer: Option<Observer>,
    /// Run as a kiosk (`kumo kiosk`): full screen, no cursor, no quit keys, sessions that
    /// start again by themselves.
    pub kiosk: Option<KioskOptions>,
}

/// Kiosk mode's settings.
#[derive(Debug, Clone)]
pub struct KioskOptions {
    pub policy: kiosk::Policy,
    /// The only key combination that closes the kiosk.
    pub admin_exit: Chord,
}

/// The latency lab's view of a windowed session: every event the window applies also goes
/// to its lab and stats (locked briefly on the winit thread; nobody else holds them while
/// the window runs).
#[derive(Clone)]
pub struct Observer {
    lab: Arc<Mutex<Lab>>,
    stats: Arc<Mutex<Stats>>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Observer {
    pub fn new(lab: Arc<Mutex<Lab>>, stats: Arc<Mutex<Stats>>) -> Self {
        Self { lab, stats }
    }

    fn on_event(&self, event: &stats::Event) {
        self.lab.lock().unwrap_or_else(std::sync::PoisonError::into_inner).on_event(event);
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).apply(event.clone());
    }

    /// The newest inputs' stage times, for the overlay.
    fn recent(&self, n: usize) -> Vec<crate::core::sim::lab::InputRow> {
        self.lab.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recent(n, 0.0, false)
    }
}

/// What wakes the event loop from other threads.
enum Wake {
    /// The decode thread put a picture in the slot.
    Frame,
    Connected(Box<Result<Session, ClientError>>),
    /// The session finished (after a stop, or on its own).
    Finished(Box<Result<End, ClientError>>),
}

/// Opens the window, streams until it is closed (or `duration`, or `interrupted`), and
/// returns the session's outcome. Fails when no window or GPU can be had.
pub fn run(
    rt: &Runtime,
    config: ClientConfig,
    options: WindowOptions,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<SessionReport> {
    let event_loop = EventLoop::<Wake>::with_user_event().build().map_err(|e| {
        anyhow!(
            "kumo could not open a window ({e}). It needs a desktop session (DISPLAY or WAYLAND_DISPLAY set); on a machine without a display, run with --headless"
        )
    })?;
    let mut app = App::new(rt, config, options, event_loop.create_proxy(), interrupted.clone());
    event_loop.run_app(&mut app).context("the window's event loop failed")?;
    if let Some(err) = app.fatal.take() {
        return Err(err);
    }
    let elapsed = app.figures.streamed_before
        + app
            .figures
            .streaming_since
            .map_or(Duration::ZERO, |t| app.figures.streaming_ended.unwrap_or_else(Instant::now) - t);
    let end = match app.end.take() {
        Some(end) => end,
        None => Ok(End::Stopped),
    };
    Ok(SessionReport { summary: app.figures.stats.summary(elapsed), end })
}

/// The session's figures as the window owns them: the whole session's, the last full second's
/// (for the overlay), the frame-time ring, and when streaming started and ended.
struct Figures {
    stats: Stats,
    interval: Stats,
    interval_started: Instant,
    last_interval: Option<Summary>,
    /// The latest `Stream` event, replayed into each new interval.
    stream_event: Option<stats::Event>,
    frame_times: FrameTimes,
    streaming_since: Option<Instant>,
    /// When the session ended (the summary's duration stops there).
    streaming_ended: Option<Instant>,
    /// How long a kiosk's earlier sessions streamed (the summary's rates cover them all).
    streamed_before: Duration,
}

impl Figures {
    fn new() -> Self {
        Self {
            stats: Stats::new(0),
            interval: Stats::new(0),
            interval_started: Instant::now(),
            last_interval: None,
            stream_event: None,
            frame_times: FrameTimes::default(),
            streaming_since: None,
            streaming_ended: None,
            streamed_before: Duration::ZERO,
        }
    }
}

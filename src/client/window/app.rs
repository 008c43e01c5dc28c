//! The window's event loop state: the winit `ApplicationHandler`, the session it runs, input
//! from the keyboard, mouse and pads, and each redraw (picture, overlay, present).

use super::surface::Graphics;
use super::{Figures, Wake, WindowOptions, keys};
use crate::client::decode::Notify;
use crate::client::{self, ClientConfig, ClientError, End, Session};
use crate::clock;
use crate::core::input::InputState;
use crate::core::input::hotkeys::{Action, Key, KeyPress};
use crate::core::stats::{self, Presented, Stats};
use crate::core::view::color::ColorSpace;
use crate::core::view::kiosk::{self, Kiosk, KioskView, PinKey};
use crate::core::view::layout;
use crate::core::view::overlay::{FrameTimes, OverlayModel, StreamInfo};
use crate::core::view::screen::{Screen, View};
use anyhow::Context as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use winit::application::ApplicationHandler;
use winit::dpi::LogicalSize;
use winit::event::{DeviceEvent, DeviceId, ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoopProxy};
use winit::keyboard::{ModifiersState, PhysicalKey};
use winit::window::{CursorGrabMode, Fullscreen, Window, WindowId};

/// Session events applied per wake-up at most, so a flood cannot starve drawing.
const EVENTS_PER_TICK: usize = 4096;
/// How often the overlay's figures roll over.
const OVERLAY_INTERVAL: Duration = Duration::from_secs(1);
/// The slowest the window ticks when nothing wakes it (state-screen clock, exit checks).
const TICK: Duration = Duration::from_millis(100);
/// How long a stopping session may take before the window closes anyway.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The picture a redraw put on screen, as the decoder stamped it (micros on the host's clock
/// for capture, the client's for decode).
#[derive(Debug, Clone, Copy)]
struct ShownPicture {
    frame_number: u64,
    capture_micros: u64,
    decoded_micros: u64,
}

#[expect(
    clippy::struct_excessive_bools,
    reason = "independent toggles of the window (overlay, fullscreen, capture, focus), not one state"
)]
pub(super) struct App {
    rt: tokio::runtime::Handle,
    config: Option<ClientConfig>,
    options: WindowOptions,
    proxy: EventLoopProxy<Wake>,
    interrupted: Arc<AtomicBool>,
    opened: Instant,
    gfx: Option<Graphics>,
    egui_ctx: egui::Context,
    session: Option<Session>,
    pub(super) end: Option<Result<End, ClientError>>,
    pub(super) fatal: Option<anyhow::Error>,
    /// When `stop` was asked of the session.
    stopping: Option<Instant>,
    /// The session's figures: the window is their owner.
    pub(super) figures: Figures,
    screen: Screen,
    title: String,
    color: ColorSpace,
    overlay: bool,
    modifiers: ModifiersState,
    fullscreen: bool,
    has_picture: bool,
    last_redraw: Instant,
    /// Keyboard and mouse go to the game (Ctrl+Alt+Shift+Z toggles).
    captured: bool,
    focused: bool,
    combo_held: bool,
    /// Fractions of wheel steps and mouse counts not sent yet.
    mouse_rest: keys::MouseRest,
    /// Kiosk mode: its rules, and the config every new session starts from.
    kiosk: Option<Kiosk>,
    session_template: Option<ClientConfig>,
    /// The pads' state at the last look (kiosk idle detection).
    last_pads: Option<[crate::core::input::PadState; crate::core::input::MAX_PADS]>,
}

impl App {
    pub(super) fn new(
        rt: &Runtime,
        config: ClientConfig,
        options: WindowOptions,
        proxy: EventLoopProxy<Wake>,
        interrupted: Arc<AtomicBool>,
    ) -> Self {
        let egui_ctx = egui::Context::default();
        egui_ctx.set_visuals(egui::Visuals::dark());
        let host = config.host.to_string();
        let (color, overlay) = (options.color.unwrap_or(ColorSpace::HOST_DEFAULT), options.overlay);
        let fullscreen = options.fullscreen || options.kiosk.is_some();
        let kiosk = options.kiosk.as_ref().map(|k| Kiosk::new(k.policy.clone(), host.clone()));
        let session_template = kiosk.is_some().then(|| config.clone());
        Self {
            rt: rt.handle().clone(),
            config: Some(config),
            options,
            proxy,
            interrupted,
            opened: Instant::now(),
            gfx: None,
            egui_ctx,
            session: None,
            end: None,
            fatal: None,
            stopping: None,
            screen: Screen::new(host, Duration::ZERO),
            title: String::new(),
            figures: Figures::new(),
            color,
            overlay,
            modifiers: ModifiersState::empty(),
            fullscreen,
            has_picture: false,
            last_redraw: Instant::now(),
            captured: true,
            focused: true,
            combo_held: false,
            mouse_rest: keys::MouseRest::default(),
            kiosk,
            session_template,
            last_pads: None,
        }
    }

    fn now(&self) -> Duration {
        self.opened.elapsed()
    }

    fn open_window(&mut self, event_loop: &ActiveEventLoop) -> anyhow::Result<()> {
        let request =
            self.config.as_ref().map_or((1280, 720), |c| (u32::from(c.request.width), u32::from(c.request.height)));
        let monitor = event_loop.primary_monitor().or_else(|| event_loop.available_monitors().next()).map(|m| {
            let size = m.size().to_logical::<u32>(m.scale_factor());
            (size.width, size.height)
        });
        let (w, h) = layout::initial_window_size(request, monitor);
        let mut attributes = Window::default_attributes()
            .with_title(self.screen.title(self.now()))
            .with_inner_size(LogicalSize::new(w, h))
            .with_min_inner_size(LogicalSize::new(160, 90));
        if self.fullscreen {
            attributes = attributes.with_fullscreen(Some(Fullscreen::Borderless(None)));
        }
        if self.kiosk.is_some() {
            // Cover the whole monitor even where no window manager honours fullscreen (a
            // bare X server, some kiosk compositors): its size, at its origin, undecorated.
            if let Some(m) = event_loop.primary_monitor().or_else(|| event_loop.available_monitors().next()) {
                attributes = attributes.with_inner_size(m.size()).with_position(m.position());
            }
            attributes = attributes.with_decorations(false);
        }
        let window = Arc::new(event_loop.create_window(attributes).context("could not create the window")?);
        self.gfx = Some(Graphics::open(window, self.options.vsync, self.options.renderer, self.color, &self.egui_ctx)?);
        Ok(())
    }

    fn connect(&mut self) {
        let Some(config) = self.config.take().or_else(|| self.session_template.clone()) else { return };
        let wake = self.proxy.clone();
        let notify: Notify = Arc::new(move || {
            // Fails only once the event loop is gone.
            wake.send_event(Wake::Frame).ok();
        });
        let proxy = self.proxy.clone();
        self.rt.spawn(async move {
            let result = client::connect_notifying(config, notify).await;
            if let Err(winit::event_loop::EventLoopClosed(Wake::Connected(session))) =
                proxy.send_event(Wake::Connected(Box::new(result)))
            {
                // The window closed while connecting: end the session politely.
                if let Ok(session) = *session {
                    session.stop();
                    session.finish().await.ok();
                }
            }
        });
    }

    fn on_connected(&mut self, result: Result<Session, ClientError>) {
        let now = self.now();
        match result {
            Ok(session) => {
                if let Some(kiosk) = &mut self.kiosk {
                    kiosk.on_connected(now);
                }
                self.screen.on_connected(&session.welcome.host_name, now);
                if self.options.color.is_none() {
                    self.color = session.welcome.color;
                }
                if let Some(gfx) = &mut self.gfx {
                    gfx.set_color(self.color);
                }
                self.figures.streaming_since = Some(Instant::now());
                self.figures.interval_started = Instant::now();
                // What the player copied before the session began goes to the host when
                // the window already has focus (else when it gains it).
                if let Some(clipboard) = session.clipboard().filter(|_| self.focused) {
                    clipboard.read();
                }
                self.session = Some(session);
            }
            Err(err) => {
                tracing::error!("{err}");
                if let Some(kiosk) = &mut self.kiosk {
                    // A kiosk never gives up: it says why and tries again.
                    kiosk.on_failed(&err.to_string(), now);
                } else {
                    self.screen.on_failed(&err.to_string(), now);
                    self.end = Some(Err(err));
                }
            }
        }
        self.request_redraw();
    }

    /// Does what the kiosk's rules ask.
    fn kiosk_command(&mut self, command: Option<kiosk::Command>) {
        if self.interrupted.load(Ordering::Relaxed) && command != Some(kiosk::Command::Exit) {
            // Closing: start nothing new.
            return;
        }
        let Some(command) = command else { return };
        match command {
            kiosk::Command::Connect => {
                tracing::info!("the kiosk is starting a session");
                let host = self.session_template.as_ref().map(|c| c.host.to_string()).unwrap_or_default();
                self.screen = Screen::new(host, self.now());
                self.has_picture = false;
                self.stopping = None;
                self.end = None;
                self.last_pads = None;
                // The last session's figures stay in the run's totals, not in this session's
                // overlay or its streaming time.
                if let (Some(since), Some(ended)) = (self.figures.streaming_since, self.figures.streaming_ended) {
                    self.figures.streamed_before += ended.saturating_duration_since(since);
                }
                self.figures.streaming_ended = None;
                self.figures.frame_times = FrameTimes::default();
                self.figures.last_interval = None;
                self.figures.interval = Stats::new(0);
                self.figures.interval_started = Instant::now();
                self.connect();
            }
            kiosk::Command::EndSession(reason) => {
                match reason {
                    kiosk::EndReason::Idle => {
                        tracing::info!(
                            "the kiosk ends the session: no input for its idle time; back to the attract screen"
                        );
                    }
                    kiosk::EndReason::Watchdog => {
                        tracing::warn!(
                            "the kiosk ends the session: no picture arrived for its watchdog time; starting again"
                        );
                    }
                }
                self.finish_session();
            }
            kiosk::Command::Exit => {
                tracing::info!("the kiosk's admin exit was used: leaving");
                self.interrupted.store(true, Ordering::Relaxed);
            }
        }
        // Only a command changes the screen (asking on every turn of the event loop, as this
        // did, redrew without end: the main thread drew the same picture three times over).
        self.request_redraw();
    }

    /// A player did something (kiosk idle tracking; the attract screen starts a session).
    fn kiosk_activity(&mut self) {
        let now = self.now();
        let command = self.kiosk.as_mut().and_then(|k| k.on_input(now));
        self.kiosk_command(command);
    }

    fn apply(&mut self, event: stats::Event) {
        match &event {
            stats::Event::Stream { .. } => self.figures.stream_event = Some(event.clone()),
            stats::Event::IdrRequested => self.screen.on_recovery_requested(self.now()),
            stats::Event::Notice(text) => self.screen.on_notice(text, self.now()),
            stats::Event::Still { .. } => {
                let now = self.now();
                self.screen.on_still(now);
                if let Some(kiosk) = &mut self.kiosk {
                    kiosk.on_still(now);
                }
            }
            stats::Event::Reconnecting { attempt, reason } => {
                self.screen.on_reconnecting(*attempt, reason, self.now());
                if let Some(kiosk) = &mut self.kiosk {
                    kiosk.on_reconnecting();
                }
            }
            stats::Event::Reconnected { .. } => {
                let now = self.now();
                if let Some(kiosk) = &mut self.kiosk {
                    kiosk.on_reconnected(now);
                }
            }
            _ => {}
        }
        if let Some(observer) = &self.options.observer {
            observer.on_event(&event);
        }
        self.figures.interval.apply(event.clone());
        self.figures.stats.apply(event);
    }

    /// Applies what the session reported since the last call.
    fn drain_events(&mut self) {
        let mut pending = Vec::new();
        let mut closed = false;
        if let Some(session) = &self.session {
            for _ in 0..EVENTS_PER_TICK {
                match session.events.try_recv() {
                    Ok(event) => pending.push(event),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            while let Some(text) = session.notice() {
                pending.push(stats::Event::Notice(text));
            }
        }
        for event in pending {
            self.apply(event);
        }
        if closed && self.stopping.is_none() {
            // The session ended by itself (host gone or connection lost): collect how.
            self.finish_session();
        }
        if self.figures.interval_started.elapsed() >= OVERLAY_INTERVAL {
            self.figures.last_interval = Some(self.figures.interval.summary(self.figures.interval_started.elapsed()));
            self.figures.interval = Stats::new(0);
            if let Some(stream) = self.figures.stream_event.clone() {
                self.figures.interval.apply(stream);
            }
            self.figures.interval_started = Instant::now();
        }
    }

    /// Stops the session (if any) in the background; `Wake::Finished` reports its end.
    fn finish_session(&mut self) {
        self.stopping.get_or_insert_with(Instant::now);
        if let Some(session) = self.session.take() {
            session.stop();
            let proxy = self.proxy.clone();
            self.rt.spawn(async move {
                let end = session.finish().await;
                proxy.send_event(Wake::Finished(Box::new(end))).ok();
            });
        }
    }

    fn quit(&mut self, event_loop: &ActiveEventLoop) {
        // A kiosk with no session (attract, retry, between sessions) has nothing to stop.
        let idle_kiosk = self.kiosk.is_some() && self.session.is_none() && self.stopping.is_none();
        if self.stopping.is_none() {
            self.finish_session();
        }
        if self.session.is_none() && (self.end.is_some() || self.figures.streaming_since.is_none() || idle_kiosk) {
            event_loop.exit();
        }
    }

    fn request_redraw(&self) {
        if let Some(gfx) = &self.gfx {
            gfx.window.request_redraw();
        }
    }

    /// Changes the input state the session sends, when keyboard and mouse are captured.
    fn input(&self, change: impl FnOnce(&mut InputState)) {
        if let Some(session) = &self.session
            && self.captured
            && self.focused
            && !self.kiosk.as_ref().is_some_and(Kiosk::prompt_open)
        {
            session.input.modify(change);
        }
    }

    /// Lets go of every key and button on the host, so nothing stays stuck.
    fn release_input(&self) {
        if let Some(session) = &self.session {
            session.input.modify(InputState::release_all);
        }
    }

    /// Mutes or unmutes the microphone, when the session sends one.
    fn set_mic_muted(&self, muted: bool) {
        if let Some(mic) = self.session.as_ref().and_then(Session::mic) {
            mic.set_muted(muted);
        }
    }

    /// What the overlay says of the microphone: none when the session sends none.
    fn mic_state(&self) -> Option<String> {
        let mic = self.session.as_ref().and_then(Session::mic)?;
        Some(match self.options.hotkeys.chord_of(Action::PushToTalk) {
            Some(_) if !mic.is_muted() => "on (push-to-talk held)".to_owned(),
            Some(chord) => format!("push-to-talk: hold {chord}"),
            None if mic.is_muted() => "muted".to_owned(),
            None => "on".to_owned(),
        })
    }

    fn on_key(&mut self, event: &winit::event::KeyEvent) {
        let pressed = event.state == ElementState::Pressed;
        let hotkey = match event.physical_key {
            PhysicalKey::Code(code) => crate::client::window::keys::hotkey_key(code),
            PhysicalKey::Unidentified(_) => Key::Other,
        };
        let m = self.modifiers;
        let press = KeyPress { ctrl: m.control_key(), alt: m.alt_key(), shift: m.shift_key(), key: hotkey };
        if self.kiosk.is_some() && self.on_kiosk_key(event, press) {
            return;
        }
        // Push-to-talk's key going up mutes the microphone again (whatever the modifiers do
        // meanwhile); the release still reaches the game below, as every release does.
        if !pressed && self.options.hotkeys.chord_of(Action::PushToTalk).is_some_and(|c| c.key == press.key) {
            self.set_mic_muted(true);
        }
        // Hotkeys act on presses; a release always reaches the game, so a key pressed for the
        // game and released while the chord is held cannot stay down on the host.
        let action = if pressed { self.options.hotkeys.action(press) } else { None };
        if action.is_none() {
            // Everything that is not a hotkey goes to the game, by physical position.
            if let PhysicalKey::Code(code) = event.physical_key
                && let Some(usage) = crate::client::window::keys::hid_usage(code)
            {
                self.input(|s| s.set_key(usage, pressed));
            }
            return;
        }
        if event.repeat {
            return;
        }
        if self.kiosk.is_some() && action != Some(Action::ToggleOverlay) {
            // A kiosk ignores the ordinary quit, fullscreen and capture keys.
            tracing::info!(?action, "the kiosk ignores a desktop hotkey");
            return;
        }
        match action {
            Some(Action::ToggleOverlay) => self.overlay = !self.overlay,
            Some(Action::ToggleFullscreen) => {
                self.fullscreen = !self.fullscreen;
                if let Some(gfx) = &self.gfx {
                    gfx.window.set_fullscreen(self.fullscreen.then_some(Fullscreen::Borderless(None)));
                }
            }
            Some(Action::Quit) => self.interrupted.store(true, Ordering::Relaxed),
            Some(Action::SaveReplay) => {
                if let Some(record) = self.session.as_ref().and_then(|s| s.record()) {
                    record.save_replay();
                } else {
                    self.screen.on_notice(crate::client::record::NO_REPLAY, self.now());
                }
            }
            Some(Action::PushToTalk) => self.set_mic_muted(false),
            Some(Action::MuteMic) => {
                let said = match self.session.as_ref().and_then(Session::mic) {
                    Some(mic) if mic.toggle_mute() => "Microphone muted",
                    Some(_) => "Microphone on",
                    None => "No microphone is sent: start kumo with --mic",
                };
                self.screen.on_notice(said, self.now());
            }
            Some(Action::ToggleCapture) => {
                if self.captured {
                    self.release_input();
                }
                self.captured = !self.captured;
                tracing::info!(captured = self.captured, "keyboard and mouse capture");
                self.title.clear(); // refresh the cursor with the title
            }
            None => {}
        }
        self.request_redraw();
    }

    /// Kiosk keys: the admin combination and the PIN prompt take keys before the game; any
    /// other key counts as activity. Returns whether the key was used up.
    fn on_kiosk_key(&mut self, event: &winit::event::KeyEvent, press: KeyPress) -> bool {
        use winit::keyboard::KeyCode;
        let now = self.now();
        let pressed = event.state == ElementState::Pressed;
        let admin = self.options.kiosk.as_ref().map(|k| k.admin_exit);
        if pressed && !event.repeat && admin == Some(press) {
            self.release_input();
            let command = self.kiosk.as_mut().and_then(|k| k.on_admin_combo(now));
            self.kiosk_command(command);
            return true;
        }
        if self.kiosk.as_ref().is_some_and(Kiosk::prompt_open) {
            if pressed {
                let key = match event.physical_key {
                    PhysicalKey::Code(KeyCode::Enter | KeyCode::NumpadEnter) => Some(PinKey::Enter),
                    PhysicalKey::Code(KeyCode::Escape) => Some(PinKey::Escape),
                    PhysicalKey::Code(KeyCode::Backspace) => Some(PinKey::Backspace),
                    PhysicalKey::Code(code) => match crate::client::window::keys::hotkey_key(code) {
                        Key::Digit(d) => Some(PinKey::Digit(d)),
                        _ => numpad_digit(code).map(PinKey::Digit),
                    },
                    PhysicalKey::Unidentified(_) => None,
                };
                if let Some(key) = key {
                    let command = self.kiosk.as_mut().and_then(|k| k.on_pin_key(key, now));
                    self.kiosk_command(command);
                }
            }
            self.request_redraw();
            return true;
        }
        if pressed {
            self.kiosk_activity();
        }
        false
    }

    /// The pointer's position over the video, 0..=65535 on each axis (clamped to its edges).
    fn pointer_on_video(&self, x: f64, y: f64) -> Option<(u16, u16)> {
        let gfx = self.gfx.as_ref()?;
        let stream = gfx.picture_size()?;
        let r = layout::fit(stream, gfx.size());
        if r.is_empty() {
            return None;
        }
        let fx = ((x - f64::from(r.x)) / f64::from(r.width)).clamp(0.0, 1.0);
        let fy = ((y - f64::from(r.y)) / f64::from(r.height)).clamp(0.0, 1.0);
        Some(((fx * 65535.0).round() as u16, (fy * 65535.0).round() as u16))
    }

    fn resize(&mut self, width: u32, height: u32) {
        if let Some(gfx) = &mut self.gfx {
            gfx.resize(width, height);
        }
    }

    fn redraw(&mut self) {
        self.last_redraw = Instant::now();
        self.drain_events();
        let started = Instant::now();
        let now = self.now();
        let mic = self.mic_state();
        let Some(gfx) = &mut self.gfx else { return };
        if !gfx.begin() {
            return;
        }
        // The newest picture, if one arrived; pictures it replaced unseen are pacing drops.
        let (mut shown, mut replaced) = (None, 0);
        if let Some(session) = &self.session {
            let picture;
            (picture, replaced) = session.slot.take();
            if let Some(picture) = picture {
                gfx.upload(&picture);
                self.has_picture = true;
                shown = Some(ShownPicture {
                    frame_number: picture.frame_number,
                    capture_micros: picture.capture_micros,
                    decoded_micros: picture.decoded_micros,
                });
                // The presenter has its own copy now; the decoder may fill this buffer again.
                session.slot.recycle(picture);
            }
        }
        let mut screen_view = self.screen.view(now);
        let mut pin_view = None;
        if let Some(kiosk) = &self.kiosk {
            if let KioskView::Screen { headline, detail, elapsed_secs } = kiosk.view(now) {
                screen_view = View::Status { headline, detail, elapsed_secs };
            }
            pin_view = kiosk.pin_view(now);
        }
        // The overlay model is built from the last full second.
        let model = self.overlay.then(|| {
            let summary = self
                .figures
                .last_interval
                .clone()
                .unwrap_or_else(|| self.figures.interval.summary(Duration::from_secs(1)));
            let info = StreamInfo { color: self.color.to_string(), present_mode: gfx.mode() };
            let mut model = OverlayModel::new(&summary, &info, &self.figures.frame_times);
            model.mic = mic;
            if let Some(observer) = &self.options.observer {
                model.recent_inputs = observer.recent(5).iter().map(|r| (r.seq, r.stages_ms, r.total_ms)).collect();
            }
            model
        });
        let raw_input = gfx.egui_state.take_egui_input(&gfx.window);
        let mut output = self.egui_ctx.run_ui(raw_input, |ui| {
            crate::client::overlay::status_ui(ui, &screen_view);
            if let Some(model) = &model {
                crate::client::overlay::overlay_ui(ui, model);
            }
            if let Some(pin) = &pin_view {
                crate::client::overlay::pin_ui(ui, pin);
            }
        });
        gfx.egui_state.handle_platform_output(&gfx.window, std::mem::take(&mut output.platform_output));
        let show_video = self.has_picture && !matches!(screen_view, View::Status { .. });
        gfx.present(show_video, &self.egui_ctx, output);
        self.after_present(shown, replaced, started, now);
    }

    /// Counts what was presented (and what pacing replaced unseen) once it is on screen.
    fn after_present(&mut self, shown: Option<ShownPicture>, replaced: u64, started: Instant, now: Duration) {
        if replaced > 0 {
            self.apply(stats::Event::PacingDropped { count: replaced });
        }
        if let Some(ShownPicture { frame_number, capture_micros, decoded_micros }) = shown {
            let presented_micros = clock::now_micros();
            if let Some(session) = &self.session {
                session.av.on_presented(capture_micros, presented_micros);
                if let Some(record) = session.record() {
                    record.presented(frame_number, presented_micros);
                }
            }
            self.apply(stats::Event::Presented(Presented {
                frame_number,
                capture_micros,
                decoded_micros,
                presented_micros,
                render_micros: started.elapsed().as_micros() as u64,
            }));
            self.figures.frame_times.on_present(now);
            self.screen.on_picture(now);
            if let Some(kiosk) = &mut self.kiosk {
                kiosk.on_picture(now);
            }
        }
    }

    fn update_title_and_cursor(&mut self) {
        let title = self.screen.title(self.now());
        if let Some(gfx) = &self.gfx
            && title != self.title
        {
            gfx.window.set_title(&title);
            let playing = self.screen.is_streaming() && self.captured;
            // A kiosk never shows the desktop's pointer.
            gfx.window.set_cursor_visible(!playing && self.kiosk.is_none());
            if self.options.relative_mouse {
                // Relative mode: lock the pointer (or at least confine it) so turning never
                // stops at the window's edge; release it with the capture.
                let grab = if playing {
                    gfx.window
                        .set_cursor_grab(CursorGrabMode::Locked)
                        .or_else(|_| gfx.window.set_cursor_grab(CursorGrabMode::Confined))
                } else {
                    gfx.window.set_cursor_grab(CursorGrabMode::None)
                };
                if let Err(err) = grab {
                    tracing::debug!("pointer grab: {err}");
                }
            }
        }
        self.title = title;
    }

    /// The gamepad overlay combo (Back + Start + both bumpers on one pad), on its rising edge.
    fn check_pad_combo(&mut self) {
        let Some(pads) = self.session.as_ref().map(|s| s.input.current().pads) else { return };
        let held = pads.iter().any(|p| self.options.hotkeys.pad_combo(p.buttons));
        if self.kiosk.is_some() {
            // Against the pads at the last activity, so that drift does not count.
            match self.last_pads {
                Some(last) if kiosk::pad_activity(&last, &pads) => {
                    self.last_pads = Some(pads);
                    self.kiosk_activity();
                }
                Some(_) => {}
                None => self.last_pads = Some(pads),
            }
        }
        if held && !self.combo_held {
            self.overlay = !self.overlay;
            self.request_redraw();
        }
        self.combo_held = held;
    }
}

impl ApplicationHandler<Wake> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_some() {
            return;
        }
        if let Err(err) = self.open_window(event_loop) {
            self.fatal = Some(err);
            event_loop.exit();
            return;
        }
        let now = self.now();
        if let Some(kiosk) = &mut self.kiosk {
            let command = kiosk.start(now);
            self.config = None;
            self.kiosk_command(Some(command));
            return;
        }
        self.connect();
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: Wake) {
        match event {
            Wake::Frame => self.request_redraw(),
            Wake::Connected(result) => {
                if self.stopping.is_some() {
                    // Closing already: do not start streaming.
                    if let Ok(session) = *result {
                        self.session = Some(session);
                        self.finish_session();
                    }
                    return;
                }
                self.on_connected(*result);
            }
            Wake::Finished(end) => {
                self.stopping = None;
                self.figures.streaming_ended.get_or_insert_with(Instant::now);
                if let Err(err) = &*end {
                    tracing::error!("{err}");
                }
                let now = self.now();
                if let Some(kiosk) = &mut self.kiosk
                    && !self.interrupted.load(Ordering::Relaxed)
                {
                    // A kiosk's session is over, never the kiosk.
                    let command = match &*end {
                        Ok(End::HostEnded(message)) => kiosk.on_session_over(Some(message), now),
                        Ok(End::Stopped) => kiosk.on_session_over(None, now),
                        Err(err) => {
                            kiosk.on_failed(&err.to_string(), now);
                            None
                        }
                    };
                    self.kiosk_command(command);
                    return;
                }
                match &*end {
                    Ok(End::HostEnded(message)) => self.screen.on_ended(message, now),
                    Err(err) => self.screen.on_failed(&err.to_string(), now),
                    Ok(End::Stopped) => {}
                }
                self.end = Some(*end);
                if self.interrupted.load(Ordering::Relaxed) || self.options.duration.is_some() {
                    event_loop.exit();
                }
                self.request_redraw();
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        if let Some(gfx) = &mut self.gfx {
            // egui follows resizes, scale changes and the pointer; its overlay takes no input.
            // It asks for a repaint after every redraw too: that would redraw for ever, as fast
            // as the presenter goes (three times a picture on the software presenter); a redraw
            // comes with a new picture, an input, or the overlay's tick instead.
            let repaint = gfx.egui_state.on_window_event(&gfx.window, &event).repaint;
            if repaint && !matches!(event, WindowEvent::RedrawRequested) {
                gfx.window.request_redraw();
            }
        }
        match event {
            WindowEvent::CloseRequested if self.kiosk.is_some() => {
                tracing::info!("the kiosk ignores a request to close its window (the admin exit leaves)");
            }
            WindowEvent::CloseRequested => {
                self.interrupted.store(true, Ordering::Relaxed);
                self.quit(event_loop);
            }
            WindowEvent::Resized(size) => self.resize(size.width, size.height),
            WindowEvent::ModifiersChanged(m) => self.modifiers = m.state(),
            WindowEvent::KeyboardInput { event, .. } => self.on_key(&event),
            WindowEvent::MouseInput { state, button, .. } => {
                let bit = keys::mouse_bit(button);
                let down = state == ElementState::Pressed;
                if down {
                    self.kiosk_activity();
                }
                self.input(|s| if down { s.mouse.buttons |= bit } else { s.mouse.buttons &= !bit });
            }
            WindowEvent::CursorMoved { position, .. } => {
                // Motion keeps a session from idling out; it does not leave the attract
                // screen (a pointer nudged by accident should not start a session).
                if self.kiosk.as_ref().is_some_and(Kiosk::in_session) {
                    self.kiosk_activity();
                }
                if let Some((x, y)) = self.pointer_on_video(position.x, position.y) {
                    self.input(|s| {
                        s.mouse.x = x;
                        s.mouse.y = y;
                    });
                }
            }
            WindowEvent::MouseWheel { delta, .. } => {
                let steps = self.mouse_rest.wheel(delta);
                if steps != 0 {
                    self.input(|s| s.mouse.scroll_total = s.mouse.scroll_total.wrapping_add(steps));
                }
            }
            WindowEvent::Focused(focused) => {
                if !focused {
                    // Keys held when focus leaves would never see their release: let go now
                    // (push-to-talk's too: the microphone goes quiet).
                    self.release_input();
                    self.modifiers = ModifiersState::empty();
                    if self.options.hotkeys.chord_of(Action::PushToTalk).is_some() {
                        self.set_mic_muted(true);
                    }
                }
                // Back from another program: what the player copied there goes to the host
                // (read on the clipboard's own thread; this only asks).
                if let Some(clipboard) = self.session.as_ref().and_then(Session::clipboard).filter(|_| focused) {
                    clipboard.read();
                }
                self.focused = focused;
            }
            WindowEvent::RedrawRequested => self.redraw(),
            _ => {}
        }
    }

    fn device_event(&mut self, _event_loop: &ActiveEventLoop, _id: DeviceId, event: DeviceEvent) {
        // Raw relative motion, for games that turn the camera with the mouse.
        if let DeviceEvent::MouseMotion { delta: (dx, dy) } = event {
            let (sx, sy) = self.mouse_rest.motion(dx, dy);
            if sx != 0 || sy != 0 {
                self.input(|s| {
                    s.mouse.dx_total = s.mouse.dx_total.wrapping_add(sx);
                    s.mouse.dy_total = s.mouse.dy_total.wrapping_add(sy);
                });
            }
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        self.drain_events();
        let time_up = self.options.duration.is_some_and(|d| {
            // A timed run counts from the start of streaming (or of the window, if it never streams).
            self.figures.streaming_since.map_or(self.opened.elapsed(), |t| t.elapsed()) >= d
        });
        if time_up || self.interrupted.load(Ordering::Relaxed) {
            self.interrupted.store(true, Ordering::Relaxed);
            self.quit(event_loop);
        }
        if self.stopping.is_some_and(|t| t.elapsed() >= STOP_GRACE) {
            let now = self.now();
            if let Some(kiosk) = &mut self.kiosk
                && !self.interrupted.load(Ordering::Relaxed)
            {
                // A kiosk leaves a stuck session behind and starts again.
                tracing::warn!(
                    "the kiosk's session did not stop within {} s; starting the next one without it",
                    STOP_GRACE.as_secs()
                );
                self.stopping = None;
                kiosk.on_failed("the last session did not stop", now);
            } else {
                tracing::warn!("the session did not stop within {} s; closing anyway", STOP_GRACE.as_secs());
                event_loop.exit();
            }
        }
        self.update_title_and_cursor();
        self.check_pad_combo();
        let now = self.now();
        let command = self.kiosk.as_mut().and_then(|k| k.tick(now));
        self.kiosk_command(command);
        let prompt_open = self.kiosk.as_ref().is_some_and(Kiosk::prompt_open);
        if let Some(session) = &self.session {
            // Nothing reaches the game while the PIN prompt is open: gamepads included.
            session.input.set_muted(prompt_open);
        }
        let kiosk_screen = self.kiosk.as_ref().is_some_and(|k| k.view(now) != KioskView::Session || prompt_open);
        if (self.screen.animating(now) || self.overlay || kiosk_screen) && self.last_redraw.elapsed() >= TICK {
            // A clock or the overlay's figures are on screen: keep them moving even without video.
            self.request_redraw();
        }
        event_loop.set_control_flow(ControlFlow::WaitUntil(Instant::now() + TICK));
    }
}

/// The digit of a numeric keypad key.
fn numpad_digit(code: winit::keyboard::KeyCode) -> Option<u8> {
    use winit::keyboard::KeyCode;
    let digits = [
        KeyCode::Numpad0,
        KeyCode::Numpad1,
        KeyCode::Numpad2,
        KeyCode::Numpad3,
        KeyCode::Numpad4,
        KeyCode::Numpad5,
        KeyCode::Numpad6,
        KeyCode::Numpad7,
        KeyCode::Numpad8,
        KeyCode::Numpad9,
    ];
    digits.iter().position(|&c| c == code).map(|d| d as u8)
}

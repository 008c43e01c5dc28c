//! What the host streams, and a desktop session's shell: the display's capture (handed to the
//! encoder thread), the "kumo-inject" thread that puts the player's input into the display,
//! and, for `--app`, the session's own X server and program.
//!
//! Only an admitted session has a `Desktop`: input reaches the display only from a client the
//! host streams to (paired, unless the operator opened the host to anyone), never before its
//! `Welcome`.

use crate::core::input::Press;
use crate::core::input::inject::{Injection, RumbleEffect};
use crate::core::wire::InputDatagram;
use crate::host::app::{App, AppConfig};
use crate::host::pulse::SoundCapture;
use crate::host::uinput::VirtualPads;
use crate::host::x11::{Capture, DesktopError, Injector};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// What the host streams.
#[derive(Debug, Clone, Default)]
pub enum Source {
    /// The synthetic scene and its game (the demo, the lab, the tests).
    #[default]
    Scene,
    /// An X display that is already running (`--display :0`), at its own size, or one of its
    /// monitors (`--monitor N`) at that monitor's size.
    Display { display: String, monitor: Option<usize> },
    /// A program on a private X server per session (`--app`), at the stream's size.
    App(AppConfig),
}

/// A desktop session: its capture (until the encoder takes it), its sound (until the audio
/// thread takes it), its input, and its program.
pub struct Desktop {
    pub capture: Option<Capture>,
    pub sound: Option<SoundCapture>,
    pub input: DesktopInput,
    pub app: Option<App>,
}

/// A 5 ms packet at 48 kHz: what the sound capture delivers at a time.
const SOUND_FRAMES: u32 = crate::core::audio::PACKET_FRAMES as u32;

/// Opens the sound of `device`, or says why the session is silent.
fn sound(device: &str) -> Option<SoundCapture> {
    SoundCapture::open(Some(device), SOUND_FRAMES)
        .inspect_err(|err| tracing::warn!("{err}; the session streams without sound"))
        .ok()
}

impl Desktop {
    /// Attaches to a running display.
    pub fn attach(display: &str, monitor: Option<usize>) -> Result<Self, DesktopError> {
        let capture = Capture::open(display, None, monitor).map_err(|err| match wayland_session() {
            Some(kind) => DesktopError::Wayland { display: display.to_owned(), kind, reason: err.to_string() },
            None => err,
        })?;
        let input = DesktopInput::spawn(Injector::open(display, None, monitor)?)?;
        // What the desktop plays: the monitor of the default output.
        let sound = sound("@DEFAULT_MONITOR@");
        Ok(Self { capture: Some(capture), sound, input, app: None })
    }

    /// Starts a private display of `width` × `height` with the program on it.
    pub async fn launch(config: &AppConfig, width: u16, height: u16) -> Result<Self, String> {
        let app = App::launch(config, width, height).await.map_err(|e| e.to_string())?;
        Self::open(app, true).await
    }

    /// Takes over the display and program a handed-over session left.
    pub async fn resume(app: App) -> Result<Self, String> {
        Self::open(app, false).await
    }

    /// Opens the capture, input and sound of `app`'s display; `fresh`: a display just started,
    /// whose windows the host keeps in view from now on.
    async fn open(app: App, fresh: bool) -> Result<Self, String> {
        let (display, cookie) = (app.display.clone(), app.cookie);
        let monitor = app.sink.as_ref().map(crate::host::pulse::PrivateSink::monitor);
        // Opening the display and the sound server is a few round trips on local sockets.
        let opened = tokio::task::spawn_blocking(move || {
            if fresh {
                crate::host::x11::keep_windows_in_view(&display, &cookie)?;
            }
            let capture = Capture::open(&display, Some(&cookie), None)?;
            let input = DesktopInput::spawn(Injector::open(&display, Some(&cookie), None)?)?;
            Ok::<_, DesktopError>((capture, input, monitor.as_deref().and_then(sound)))
        })
        .await;
        match opened {
            Ok(Ok((capture, input, sound))) => Ok(Self { capture: Some(capture), sound, input, app: Some(app) }),
            Ok(Err(err)) => {
                app.end().await;
                Err(err.to_string())
            }
            Err(err) => {
                app.end().await;
                Err(format!("opening the session's display failed: {err}"))
            }
        }
    }

    /// The display's size.
    pub fn size(&self) -> Option<(u16, u16)> {
        self.capture.as_ref().map(Capture::size)
    }
}

/// The kind of desktop session the host runs in, when it is a Wayland one (whose programs an
/// X11 capture does not see).
pub fn wayland_session() -> Option<&'static str> {
    if std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Some("Wayland")
    } else if std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland") {
        Some("Wayland (no WAYLAND_DISPLAY)")
    } else {
        None
    }
}

/// Input waiting for the inject thread, at most: states are whole (a newer one supersedes an
/// older one, so a full queue drops the state); transitions come a few at a time.
const INJECT_QUEUE: usize = 256;

enum Inject {
    State(InputDatagram),
    Presses(Vec<Press>),
}

/// The handle of the "kumo-inject" thread. Dropping it lets go of every key and button held
/// and ends the thread.
pub struct DesktopInput {
    commands: SyncSender<Inject>,
    /// The newest input state injected (its sequence number), for the frame headers.
    pub applied: Arc<AtomicU64>,
    /// Rumble the program asked of the virtual pads, for the player's (oldest dropped past
    /// `MAX_RUMBLES`).
    rumble: Arc<Mutex<VecDeque<(u8, RumbleEffect)>>>,
}

/// Rumbles waiting for the session loop, at most (a game asks a few a second).
const MAX_RUMBLES: usize = 16;
/// How often the inject thread looks for rumble while a virtual pad exists.
const RUMBLE_POLL: std::time::Duration = std::time::Duration::from_millis(8);

impl DesktopInput {
    fn spawn(injector: Injector) -> Result<Self, DesktopError> {
        let (commands, rx) = std::sync::mpsc::sync_channel(INJECT_QUEUE);
        let applied = Arc::new(AtomicU64::new(0));
        let rumble = Arc::default();
        let (seen, felt) = (applied.clone(), Arc::clone(&rumble));
        std::thread::Builder::new()
            .name("kumo-inject".into())
            .spawn(move || inject_loop(injector, &rx, &seen, &felt))
            .map_err(|e| DesktopError::Gone(format!("could not start the input thread: {e}")))?;
        Ok(Self { commands, applied, rumble })
    }

    /// The rumble the program asked for since the last call, by pad slot.
    pub fn take_rumble(&self) -> Vec<(u8, RumbleEffect)> {
        self.rumble.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..).collect()
    }

    /// A newer input state from the client.
    pub fn state(&self, input: InputDatagram) {
        // Full: the thread is far behind; the next state carries this one's content.
        self.commands.try_send(Inject::State(input)).ok();
    }

    /// Key and button transitions from the client, in order.
    pub fn presses(&self, presses: Vec<Press>) {
        if let Err(TrySendError::Full(_)) = self.commands.try_send(Inject::Presses(presses)) {
            tracing::warn!("the display is not taking input fast enough; dropped key transitions");
        }
    }
}

fn inject_loop(
    mut injector: Injector,
    commands: &Receiver<Inject>,
    applied: &AtomicU64,
    rumble: &Mutex<VecDeque<(u8, RumbleEffect)>>,
) {
    let mut injection = Injection::default();
    // `None` once pads proved impossible here (said once, in a sentence).
    let mut pads = Some(VirtualPads::new());
    let mut felt = Vec::new();
    loop {
        // While a virtual pad exists, wake now and then for the rumble a game asks of it.
        let command = if pads.as_ref().is_some_and(VirtualPads::any) {
            match commands.recv_timeout(RUMBLE_POLL) {
                Ok(command) => Some(command),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match commands.recv() {
                Ok(command) => Some(command),
                Err(_) => break,
            }
        };
        match command {
            Some(Inject::State(input)) => {
                if let Some(virtual_pads) = &mut pads
                    && (virtual_pads.any() || input.state.pads.iter().any(|p| p.connected))
                {
                    // Looked at once, before the first pad is made.
                    let unavailable = if virtual_pads.any() { None } else { crate::host::uinput::unavailable() };
                    let made = match unavailable {
                        Some(why) => Err(why),
                        None => {
                            virtual_pads.apply(&input.state.pads).map_err(|e| format!("a virtual pad failed ({e})"))
                        }
                    };
                    if let Err(why) = made {
                        tracing::warn!(
                            "the player's gamepad is not passed to the program: {why}; keyboard and mouse work"
                        );
                        pads = None;
                    }
                }
                injection.handle_state(&input.state);
                applied.store(input.seq, Ordering::Release);
            }
            Some(Inject::Presses(presses)) => presses.into_iter().for_each(|p| injection.handle_press(p)),
            None => {}
        }
        if let Some(virtual_pads) = &mut pads {
            virtual_pads.rumble(&mut felt);
            if !felt.is_empty() {
                let mut queue = rumble.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for r in felt.drain(..) {
                    if queue.len() == MAX_RUMBLES {
                        queue.pop_front();
                    }
                    queue.push_back(r);
                }
            }
        }
        if !send(&mut injector, &mut injection) {
            break;
        }
    }
    // The client left (or the display went away): let go of everything held; the virtual
    // pads go with `pads`.
    injection.release_all();
    send(&mut injector, &mut injection);
}

/// Injects what `injection` says; false if the display is gone.
fn send(injector: &mut Injector, injection: &mut Injection) -> bool {
    while let Some(event) = injection.poll_event() {
        if let Err(err) = injector.inject(event) {
            tracing::warn!(display = injector.display(), "could not inject input: {err}");
            return false;
        }
    }
    injector.flush().is_ok()
}

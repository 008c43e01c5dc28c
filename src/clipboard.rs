//! An X display's CLIPBOARD selection, for the shared clipboard: kumo's "kumo-clipboard"
//! thread with its own connection and a window of its own (never mapped).
//!
//! - **Serving.** [`X11Clipboard::set`] takes the selection for a text; the thread answers
//!   every program that asks (`TARGETS`, `UTF8_STRING`, `STRING`, `TEXT`), a text over
//!   [`INCR_ABOVE`] in steps (ICCCM's INCR: a chunk each time the reader deletes the last), so
//!   no request outgrows the server's limit.
//! - **Reading.** [`X11Clipboard::read`] asks the owner for `UTF8_STRING` (in steps when it
//!   answers INCR), up to [`core::clipboard::MAX_BYTES`](crate::core::clipboard::MAX_BYTES)
//!   and a second; with `watch`, a new owner (`XFixes`) is read by itself. Its own ownership is
//!   never reported: only another program's copy is.
//!
//! The texts are never logged. Commands come through a queue of [`COMMANDS`] (full: the newest
//! is dropped); what was read goes out through one of [`EVENTS`] (full: dropped, a later copy
//! is read again). The thread ends when the handle is dropped.

use crate::core::clipboard::MAX_BYTES;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};
use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::protocol::Event as XEvent;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Property,
    SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// A text larger than this is served in INCR steps of this size.
pub const INCR_ABOVE: usize = 256 * 1024;
/// Commands waiting for the thread at most.
pub const COMMANDS: usize = 8;
/// Texts read, waiting for the session at most.
pub const EVENTS: usize = 4;
/// Programs being served in steps at once (more wait for a later copy).
const MAX_INCR: usize = 8;
/// How long a read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// What the thread saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copied {
    /// Another program's text (bytes: the caller checks them).
    Text(Vec<u8>),
    /// Another program's text, over the shared clipboard's limit (its length so far).
    TooLarge(usize),
    /// The owner had no text, or did not answer.
    Nothing,
}

enum Command {
    Set(Vec<u8>),
    Read,
}

/// The handle: commands in, copies out.
pub struct X11Clipboard {
    commands: SyncSender<Command>,
    copies: Receiver<Copied>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl X11Clipboard {
    /// Connects to `display` (`None`: `$DISPLAY`) and starts the thread; with `watch`, every
    /// copy another program makes is read and reported.
    pub fn start(display: Option<&str>, watch: bool) -> Result<Self, String> {
        Self::start_with(display, None, watch)
    }

    /// As [`Self::start`], on a display whose server wants `cookie` (a session's own, `--app`).
    pub fn start_with(display: Option<&str>, cookie: Option<&[u8; 16]>, watch: bool) -> Result<Self, String> {
        let name = display.map_or_else(|| std::env::var("DISPLAY").unwrap_or_default(), str::to_owned);
        let (conn, screen) = crate::xconn::connect(display, cookie)
            .map_err(|e| format!("the shared clipboard cannot reach the X display {name}: {e}"))?;
        let owner = Owner::new(conn, screen, watch).map_err(|e| format!("the shared clipboard on {name}: {e}"))?;
        let (commands, commands_rx) = std::sync::mpsc::sync_channel(COMMANDS);
        let (copies_tx, copies) = std::sync::mpsc::sync_channel(EVENTS);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kumo-clipboard".into())
            .spawn(move || owner.run(&commands_rx, &copies_tx, &stopping))
            .map_err(|e| format!("cannot start the clipboard thread: {e}"))?;
        Ok(Self { commands, copies, thread: Some(thread), stop })
    }

    /// Takes the selection for `text` (the peer's copy).
    pub fn set(&self, text: &str) {
        self.commands.try_send(Command::Set(text.as_bytes().to_vec())).ok();
    }

    /// Reads the selection now (the window gained focus); the text comes through [`Self::copied`].
    pub fn read(&self) {
        self.commands.try_send(Command::Read).ok();
    }

    /// A handle that asks for a read, for the thread that sees the window gain focus (it
    /// never waits: a full queue drops the ask, and the next focus asks again).
    pub fn asker(&self) -> ReadAsker {
        ReadAsker(self.commands.clone())
    }

    /// What was read since the last call, if anything.
    pub fn copied(&self) -> Option<Copied> {
        self.copies.try_recv().ok()
    }

    /// Waits up to `timeout` for what is read next.
    pub fn copied_within(&self, timeout: Duration) -> Option<Copied> {
        self.copies.recv_timeout(timeout).ok()
    }
}

impl Drop for X11Clipboard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// Asks the clipboard's thread to read the selection ([`X11Clipboard::asker`]).
#[derive(Clone)]
pub struct ReadAsker(SyncSender<Command>);

impl ReadAsker {
    pub fn read(&self) {
        self.0.try_send(Command::Read).ok();
    }
}

impl std::fmt::Debug for ReadAsker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadAsker")
    }
}

struct Atoms {
    clipboard: Atom,
    targets: Atom,
    utf8: Atom,
    text: Atom,
    incr: Atom,
    /// The property kumo reads into, on its own window.
    landing: Atom,
}

/// A program being served in steps: its own copy of the text, so a new copy or a lost
/// selection part-way through cannot mix or cut what it gets.
struct Incr {
    requestor: Window,
    property: Atom,
    kind: Atom,
    text: std::sync::Arc<[u8]>,
    offset: usize,
    started: Instant,
}

/// A read under way.
struct Reading {
    started: Instant,
    incr: bool,
    bytes: Vec<u8>,
}

struct Owner {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
    watch: bool,
    /// The text served while kumo owns the selection.
    owned: Option<std::sync::Arc<[u8]>>,
    /// The largest step: what one request may carry, less room for its header.
    step: usize,
    serving: Vec<Incr>,
    reading: Option<Reading>,
    /// A read asked while one was under way.
    read_again: bool,
}

type XResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Owner {
    fn new(conn: RustConnection, screen: usize, watch: bool) -> XResult<Self> {
        let root = conn.setup().roots.get(screen).ok_or("no such screen")?.root;
        let window = conn.generate_id()?;
        let aux = CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        conn.create_window(0, window, root, 0, 0, 1, 1, 0, WindowClass::INPUT_ONLY, 0, &aux)?;
        let atom = |name: &[u8]| -> XResult<Atom> { Ok(conn.intern_atom(false, name)?.reply()?.atom) };
        let atoms = Atoms {
            clipboard: atom(b"CLIPBOARD")?,
            targets: atom(b"TARGETS")?,
            utf8: atom(b"UTF8_STRING")?,
            text: atom(b"TEXT")?,
            incr: atom(b"INCR")?,
            landing: atom(b"KUMO_CLIPBOARD")?,
        };
        if watch {
            conn.xfixes_query_version(5, 0)?.reply()?;
            let mask = xfixes::SelectionEventMask::SET_SELECTION_OWNER;
            conn.xfixes_select_selection_input(window, atoms.clipboard, mask)?;
        }
        conn.flush()?;
        // Without BIG-REQUESTS a request is at most 256 KiB, header included.
        let step = conn.maximum_request_bytes().saturating_sub(1024).clamp(4096, INCR_ABOVE);
        Ok(Self {
            conn,
            window,
            atoms,
            watch,
            owned: None,
            step,
            serving: Vec::new(),
            reading: None,
            read_again: false,
        })
    }

    fn run(mut self, commands: &Receiver<Command>, copies: &SyncSender<Copied>, stop: &std::sync::atomic::AtomicBool) {
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            loop {
                match commands.try_recv() {
                    Ok(Command::Set(text)) => self.take(text),
                    Ok(Command::Read) => self.start_read(),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            let result = (|| -> XResult<()> {
                while let Some(event) = self.conn.poll_for_event()? {
                    if let Some(copied) = self.handle(&event)? {
                        copies.try_send(copied).ok();
                    }
                }
                if let Some(copied) = self.expire() {
                    copies.try_send(copied).ok();
                }
                self.conn.flush()?;
                Ok(())
            })();
            if let Err(err) = result {
                tracing::warn!("the shared clipboard lost its X display ({err}); copying between the two sides stops");
                return;
            }
            wait_readable(&self.conn, Duration::from_millis(20));
        }
    }

    fn take(&mut self, text: Vec<u8>) {
        self.owned = Some(text.into());
        self.conn.set_selection_owner(self.window, self.atoms.clipboard, x11rb::CURRENT_TIME).ok();
        self.conn.flush().ok();
    }

    fn start_read(&mut self) {
        // While kumo owns the selection the text is the peer's: nothing new to read here.
        if self.owned.is_some() {
            return;
        }
        if self.reading.is_some() {
            self.read_again = true;
            return;
        }
        let a = &self.atoms;
        if self.conn.convert_selection(self.window, a.clipboard, a.utf8, a.landing, x11rb::CURRENT_TIME).is_ok() {
            self.reading = Some(Reading { started: Instant::now(), incr: false, bytes: Vec::new() });
        }
    }

    /// A read or a step-by-step serving that took too long is given up.
    fn expire(&mut self) -> Option<Copied> {
        self.serving.retain(|s| s.started.elapsed() < Duration::from_secs(10));
        if self.reading.as_ref().is_some_and(|r| r.started.elapsed() > READ_TIMEOUT) {
            self.reading = None;
            return Some(Copied::Nothing);
        }
        None
    }

    fn handle(&mut self, event: &XEvent) -> XResult<Option<Copied>> {
        match event {
            XEvent::SelectionRequest(request) => self.serve(request)?,
            // Another program copied. A clear queued before kumo took the selection again is
            // stale: the owner now says.
            XEvent::SelectionClear(clear) if clear.selection == self.atoms.clipboard => {
                let owner = self.conn.get_selection_owner(self.atoms.clipboard)?.reply()?.owner;
                if owner != self.window {
                    self.owned = None;
                }
            }
            XEvent::PropertyNotify(p) if p.state == Property::DELETE => self.next_step(p.window, p.atom)?,
            XEvent::PropertyNotify(p)
                if p.state == Property::NEW_VALUE
                    && p.window == self.window
                    && p.atom == self.atoms.landing
                    && self.reading.as_ref().is_some_and(|r| r.incr) =>
            {
                return self.read_property();
            }
            XEvent::SelectionNotify(n) if n.requestor == self.window && n.selection == self.atoms.clipboard => {
                if self.reading.is_none() {
                    return Ok(None);
                }
                if n.property == x11rb::NONE {
                    return Ok(Some(self.finish_read(Copied::Nothing)));
                }
                return self.read_property();
            }
            // Another program copied: read it (kumo's own taking is not news).
            XEvent::XfixesSelectionNotify(n)
                if self.watch
                    && n.selection == self.atoms.clipboard
                    && n.owner != self.window
                    && n.owner != x11rb::NONE =>
            {
                self.start_read();
            }
            _ => {}
        }
        Ok(None)
    }

    /// Reads (and deletes) the landing property: the whole text, the start of an INCR
    /// transfer, or its next step (an empty one ends it).
    fn read_property(&mut self) -> XResult<Option<Copied>> {
        let reply =
            self.conn.get_property(true, self.window, self.atoms.landing, AtomEnum::ANY, 0, u32::MAX / 4)?.reply()?;
        let Some(reading) = &mut self.reading else { return Ok(None) };
        if !reading.incr && reply.type_ == self.atoms.incr {
            // The owner sends in steps from here; deleting the property (done above) asks
            // for the first.
            reading.incr = true;
            return Ok(None);
        }
        if reading.incr && !reply.value.is_empty() {
            if reading.bytes.len() + reply.value.len() > MAX_BYTES {
                let len = reading.bytes.len() + reply.value.len();
                return Ok(Some(self.finish_read(Copied::TooLarge(len))));
            }
            reading.bytes.extend_from_slice(&reply.value);
            return Ok(None);
        }
        let bytes = if reading.incr { std::mem::take(&mut reading.bytes) } else { reply.value };
        if bytes.len() > MAX_BYTES {
            return Ok(Some(self.finish_read(Copied::TooLarge(bytes.len()))));
        }
        Ok(Some(self.finish_read(Copied::Text(bytes))))
    }

    fn finish_read(&mut self, copied: Copied) -> Copied {
        self.reading = None;
        if std::mem::take(&mut self.read_again) {
            self.start_read();
        }
        copied
    }

    /// Answers a program that asks for the selection kumo owns.
    fn serve(&mut self, request: &SelectionRequestEvent) -> XResult<()> {
        let a = &self.atoms;
        // ICCCM: an old client may name no property; the target is the property then.
        let property = if request.property == x11rb::NONE { request.target } else { request.property };
        let answered = match &self.owned {
            Some(_) if request.selection != a.clipboard => false,
            Some(_) if request.target == a.targets => {
                let targets = [a.targets, a.utf8, AtomEnum::STRING.into(), a.text];
                self.conn.change_property32(
                    PropMode::REPLACE,
                    request.requestor,
                    property,
                    AtomEnum::ATOM,
                    &targets,
                )?;
                true
            }
            Some(owned) if [a.utf8, a.text, AtomEnum::STRING.into()].contains(&request.target) => {
                // TEXT is answered as UTF-8; STRING is Latin-1 (ICCCM), refused for a text
                // with characters past it.
                let string: Atom = AtomEnum::STRING.into();
                let (kind, text) = if request.target == string {
                    match latin1(owned) {
                        Some(bytes) => (request.target, bytes.into()),
                        None => (x11rb::NONE, owned.clone()),
                    }
                } else {
                    (a.utf8, owned.clone())
                };
                if kind == x11rb::NONE {
                    false
                } else if text.len() > self.step && self.serving.len() < MAX_INCR {
                    let aux = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
                    self.conn.change_window_attributes(request.requestor, &aux)?;
                    let len = [u32::try_from(text.len()).unwrap_or(u32::MAX)];
                    self.conn.change_property32(PropMode::REPLACE, request.requestor, property, a.incr, &len)?;
                    // A new request from the same reader replaces its old transfer.
                    self.serving.retain(|s| !(s.requestor == request.requestor && s.property == property));
                    self.serving.push(Incr {
                        requestor: request.requestor,
                        property,
                        kind,
                        text,
                        offset: 0,
                        started: Instant::now(),
                    });
                    true
                } else if text.len() <= self.step {
                    self.conn.change_property8(PropMode::REPLACE, request.requestor, property, kind, &text)?;
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: x11rb::protocol::xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property: if answered { property } else { x11rb::NONE },
        };
        self.conn.send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
        Ok(())
    }

    /// A reader served in steps deleted the last step: the next one (an empty one ends it).
    fn next_step(&mut self, window: Window, property: Atom) -> XResult<()> {
        let Some(i) = self.serving.iter().position(|s| s.requestor == window && s.property == property) else {
            return Ok(());
        };
        let step = self.step;
        let s = &mut self.serving[i];
        let end = (s.offset + step).min(s.text.len());
        let chunk = s.text.get(s.offset..end).unwrap_or_default();
        self.conn.change_property8(PropMode::REPLACE, window, property, s.kind, chunk)?;
        s.offset = end;
        if chunk.is_empty() {
            self.serving.swap_remove(i);
            // Stop hearing of the reader's properties, unless another transfer to it goes on
            // (kumo's own window keeps its mask: its reads need it).
            if window != self.window && !self.serving.iter().any(|s| s.requestor == window) {
                let aux = ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT);
                self.conn.change_window_attributes(window, &aux).ok();
            }
        }
        Ok(())
    }
}

/// `text` (UTF-8) in Latin-1, if every character has a place there.
fn latin1(text: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(text).ok()?.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Sleeps until the X connection has something to read, or `timeout`.
fn wait_readable(conn: &RustConnection, timeout: Duration) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use std::os::fd::AsFd as _;
    let timeout = Timespec { tv_sec: 0, tv_nsec: i64::from(timeout.subsec_nanos()) };
    let fd = conn.stream().as_fd();
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    poll(&mut fds, Some(&timeout)).ok();
}

//! The openh264 encoder shell and the host's encoder thread.
//!
//! Owns the encoder and the capture loop: render the scene on schedule, encode it, and hand
//! whole frames to the network. Settings are those of low-latency game streaming: no
//! B-frames (openh264's baseline/constrained profiles have none), an infinite GOP with IDRs
//! only at start and on request (scene-change detection off: it would insert IDRs every few
//! frames on busy content), bitrate rate control, no frame skipping (a skipped frame is a
//! stutter), one slice per encoder thread.
//!
//! Before it renders a frame the capture loop asks the [`SendGate`] whether the path has room
//! for it. When it has not (the client's acknowledgements have slowed down), the slot is
//! skipped: never rendered, never encoded, so no later frame refers to it and the client has
//! nothing to repair. The frame rate dips while the path drains; the client's bitrate
//! controller then lowers the frame size.

use crate::clock;
use crate::core::input::Press;
use crate::core::session::host::EncoderRequest;
use crate::core::sim::game::{self, Game};
use crate::core::sim::scene::{self, I420};
use crate::core::video::annexb;
use crate::core::video::assemble::Frame;
use crate::core::video::pacing::{CaptureClock, DrawTick, DrawnClock, SendWindow, Tick};
use crate::core::wire::InputDatagram;
use crate::core::wire::{FrameHeader, FrameKind, Still};
use openh264::Timestamp;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;
use std::io::{Read as _, Write as _};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc::error::TrySendError;

#[derive(Debug, Error)]
pub enum EncodeError {
    #[error("openh264 encoder failed: {0}")]
    Codec(String),
    /// No H.264 code to encode with (`crate::h264`); the sentence says what to do.
    #[error("{0}")]
    NoCodec(String),
    #[error(transparent)]
    Size(#[from] scene::SizeError),
    #[error("could not start the encoder thread: {0}")]
    Thread(#[from] std::io::Error),
}

fn codec_err(e: &openh264::Error) -> EncodeError {
    EncodeError::Codec(e.to_string())
}

/// What to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    pub width: u16,
    pub height: u16,
    pub fps: u16,
    pub bitrate_kbps: u32,
    /// Encoder threads, each encoding its own slice. 0: one per core, at most 4.
    pub threads: u16,
}

impl EncoderSettings {
    /// What the session agreed to stream, encoded with `threads` threads.
    pub fn agreed(agreed: crate::core::session::host::Agreed, threads: u16) -> Self {
        Self { width: agreed.width, height: agreed.height, fps: agreed.fps, bitrate_kbps: agreed.bitrate_kbps, threads }
    }

    fn threads(&self) -> u16 {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u16)
    }
}

/// An openh264 encoder set up for game streaming.
pub struct H264Encoder {
    inner: Encoder,
    settings: EncoderSettings,
    skip_frames: bool,
    /// The bitrate the first encoder of the session was built with: the most a target may
    /// be, since openh264 keeps it as each layer's maximum.
    ceiling_kbps: u32,
    /// A recovery request was passed to openh264: the next P frame refers only to a long-term
    /// reference the client confirmed, and goes out as `FrameKind::Recovery`.
    recovery_pending: bool,
}

impl H264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, EncodeError> {
        Self::build(settings, false)
    }

    /// An encoder for `settings`; `skip_frames`: openh264 may drop frames to keep the bitrate
    /// (the ladder's last resort, on its lowest rung only).
    fn build(settings: EncoderSettings, skip_frames: bool) -> Result<Self, EncodeError> {
        scene::check_size(settings.width.into(), settings.height.into())?;
        let threads = settings.threads();
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(f32::from(settings.fps)))
            .skip_frames(skip_frames)
            .scene_change_detect(false)
            .background_detection(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .complexity(Complexity::Low)
            // Long-term references: the client confirms the ones it decoded, and after a loss
            // the next frame refers to one of those instead of to the lost chain: a repair for
            // the price of a P frame, where an IDR costs several frames' bits.
            .long_term_reference(true)
            .num_threads(threads);
        let mut inner = Encoder::with_api_config(crate::h264::api().map_err(EncodeError::NoCodec)?, config)
            .map_err(|e| codec_err(&e))?;
        // Before openh264 initialises on the first frame, which is when it warns.
        ffi::route_messages(&mut inner);
        // The wrapper initialises openh264 on the first frame with a single slice. Encode one
        // throw-away frame, then switch to one slice per thread; the next frame is an IDR
        // carrying the new parameter sets, so the throw-away frame is never needed.
        let warm_up = I420::new(settings.width.into(), settings.height.into());
        inner.encode(&yuv(&warm_up)).map_err(|e| codec_err(&e))?;
        if threads > 1 {
            ffi::use_slice_per_thread(&mut inner, threads);
        }
        inner.force_intra_frame();
        Ok(Self { inner, settings, skip_frames, ceiling_kbps: settings.bitrate_kbps, recovery_pending: false })
    }

    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// Encodes the picture captured at `at` (time since the stream started; rate control
    /// needs it) into `out`, replacing its contents; returns the frame's kind, or `None` if
    /// the encoder produced nothing.
    pub fn encode(&mut self, pic: &I420, at: Duration, out: &mut Vec<u8>) -> Result<Option<FrameKind>, EncodeError> {
        let timestamp = Timestamp::from_millis(at.as_millis() as u64);
        let bitstream = self.inner.encode_at(&yuv(pic), timestamp).map_err(|e| codec_err(&e))?;
        out.clear();
        bitstream.write_vec(out);
        if out.is_empty() {
            return Ok(None);
        }
        let kind = if annexb::is_idr(out) {
            FrameKind::Idr
        } else if self.recovery_pending {
            FrameKind::Recovery
        } else {
            FrameKind::Inter
        };
        self.recovery_pending = false;
        Ok(Some(kind))
    }

    /// The client lost frames of the stream that began with the IDR numbered `idr_pic_id`:
    /// the next frame refers only to a long-term reference the client confirmed (or, with
    /// none confirmed, is an IDR). A request naming an older IDR is moot (the client gets the
    /// newer IDR) and openh264 ignores it.
    pub fn recover_from_ltr(&mut self, idr_pic_id: u16) {
        match ffi::ltr_recovery(&mut self.inner, idr_pic_id) {
            Ok(()) => self.recovery_pending = true,
            Err(code) => {
                tracing::warn!(code, "openh264 refused an LTR recovery request; sending an IDR");
                self.force_idr();
            }
        }
    }

    /// The client decoded the long-term reference `frame_num` of IDR period `idr_pic_id`: a
    /// recovery may refer to it.
    pub fn ltr_confirmed(&mut self, idr_pic_id: u16, frame_num: u32) {
        if let Err(code) = ffi::ltr_feedback(&mut self.inner, idr_pic_id, frame_num) {
            tracing::debug!(code, "openh264 refused LTR feedback");
        }
    }

    pub fn force_idr(&mut self) {
        self.inner.force_intra_frame();
    }

    /// Changes the picture to `width`×`height` at `fps` (a rung of `core::video::ladder`),
    /// from the next frame on, keeping the bitrate. A new size (or a change of frame skipping)
    /// needs a new encoder: openh264-rs would rebuild its parameters from the stored config,
    /// losing the bitrate set since, the one-slice-per-thread setting and the long-term
    /// references, so kumo builds one from its own settings, which starts with an IDR carrying
    /// the new parameter sets (every long-term reference the client confirmed is gone with it;
    /// the session ignores confirmations of the old ones). A new rate alone goes to openh264's
    /// rate control, without an IDR. Returns whether a new encoder was built.
    pub fn reshape(&mut self, width: u16, height: u16, fps: u16, skip_frames: bool) -> Result<bool, EncodeError> {
        let same_size = (width, height) == (self.settings.width, self.settings.height);
        if same_size && skip_frames == self.skip_frames {
            if fps != self.settings.fps {
                ffi::set_frame_rate(&mut self.inner, f32::from(fps)).map_err(|code| {
                    EncodeError::Codec(format!("setting the frame rate to {fps} failed (code {code})"))
                })?;
                self.settings.fps = fps;
            }
            return Ok(false);
        }
        // Built at the session's bitrate, which openh264 also takes as each layer's most (it
        // refuses a later target above that), then set to the current target.
        let (current, ceiling) = (self.settings.bitrate_kbps, self.ceiling_kbps);
        let settings = EncoderSettings { width, height, fps, bitrate_kbps: ceiling, ..self.settings };
        let mut rebuilt = Self::build(settings, skip_frames)?;
        rebuilt.ceiling_kbps = ceiling;
        rebuilt.set_bitrate(current)?;
        *self = rebuilt;
        Ok(true)
    }

    /// Changes the target bitrate from the next frame on.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        ffi::set_bitrate(&mut self.inner, kbps.saturating_mul(1000))
            .map_err(|code| EncodeError::Codec(format!("setting the bitrate to {kbps} kbps failed (code {code})")))?;
        self.settings.bitrate_kbps = kbps;
        Ok(())
    }
}

fn yuv(pic: &I420) -> YUVSlices<'_> {
    YUVSlices::new((&pic.y, &pic.u, &pic.v), (pic.width, pic.height), (pic.width, pic.width / 2, pic.width / 2))
}

/// The encoder options the safe wrapper does not expose.
#[expect(unsafe_code, reason = "openh264's safe wrapper does not expose these encoder options")]
mod ffi {
    use openh264::encoder::Encoder;
    use openh264_sys2::{
        ENCODER_LTR_MARKING_FEEDBACK, ENCODER_LTR_RECOVERY_REQUEST, ENCODER_OPTION_BITRATE, ENCODER_OPTION_FRAME_RATE,
        ENCODER_OPTION_MAX_BITRATE, ENCODER_OPTION_SVC_ENCODE_PARAM_EXT, ENCODER_OPTION_TRACE_CALLBACK,
        LTR_MARKING_SUCCESS, LTR_RECOVERY_REQUEST, SBitrateInfo, SEncParamExt, SLTRMarkingFeedback, SLTRRecoverRequest,
        SM_FIXEDSLCNUM_SLICE, SPATIAL_LAYER_ALL, WelsTraceCallback,
    };
    use std::ffi::{c_char, c_int, c_void};
    use std::ptr::addr_of_mut;

    /// openh264's own messages into kumo's debug log (`kumo::openh264`) instead of standard
    /// output: it printed "Warning:bEnableFrameSkip = 0, bitrate can't be controlled …" on every
    /// encoder start, a warning about the setting kumo chose on purpose (frame skipping off).
    pub(super) fn route_messages(encoder: &mut Encoder) {
        let mut callback: WelsTraceCallback = Some(openh264_says);
        // SAFETY: openh264 accepts the trace callback before and after initialisation; it
        // copies the function pointer out of the caller-owned variable during the call.
        let code =
            unsafe { encoder.raw_api().set_option(ENCODER_OPTION_TRACE_CALLBACK, addr_of_mut!(callback).cast()) };
        if code != 0 {
            tracing::debug!(code, "openh264 did not take kumo's log callback; its messages go to the console");
        }
    }

    /// Where openh264's messages go. Never unwinds (nothing here panics).
    extern "C" fn openh264_says(_context: *mut c_void, level: c_int, message: *const c_char) {
        if message.is_null() {
            return;
        }
        // SAFETY: openh264 passes a NUL-terminated string it formatted, valid for the call.
        let message = unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy();
        tracing::debug!(target: "kumo::openh264", level, "openh264: {}", message.trim_end());
    }

    /// Switches an initialised encoder to `threads` threads with one slice each. On failure
    /// the encoder keeps its single slice (slower at high resolutions, still correct).
    pub(super) fn use_slice_per_thread(encoder: &mut Encoder, threads: u16) {
        let mut params = SEncParamExt::default();
        // SAFETY: the encoder was initialised by a first encode; GetOption fills the
        // caller-owned struct of the type openh264 documents for this option, and SetOption
        // only reads it. We change only fields openh264 validates on SetOption.
        let code = unsafe {
            let raw = encoder.raw_api();
            let got = raw.get_option(ENCODER_OPTION_SVC_ENCODE_PARAM_EXT, addr_of_mut!(params).cast());
            if got != 0 {
                got
            } else {
                params.iMultipleThreadIdc = threads;
                let slices = &mut params.sSpatialLayers[0].sSliceArgument;
                slices.uiSliceMode = SM_FIXEDSLCNUM_SLICE;
                slices.uiSliceNum = u32::from(threads);
                raw.set_option(ENCODER_OPTION_SVC_ENCODE_PARAM_EXT, addr_of_mut!(params).cast())
            }
        };
        if code != 0 {
            tracing::warn!(code, "openh264 refused multi-slice encoding; using one slice");
        }
    }

    /// Asks for a recovery from a confirmed long-term reference. "Current frame -1" is
    /// openh264's "the base layer was lost" case: the next frame refers to the confirmed LTR
    /// whatever frame numbers the client saw.
    pub(super) fn ltr_recovery(encoder: &mut Encoder, idr_pic_id: u16) -> Result<(), i32> {
        let mut request = SLTRRecoverRequest {
            uiFeedbackType: LTR_RECOVERY_REQUEST as u32,
            uiIDRPicId: u32::from(idr_pic_id),
            iLastCorrectFrameNum: 0,
            iCurrentFrameNum: -1,
            iLayerId: 0,
        };
        // SAFETY: SLTRRecoverRequest is the documented argument of this option; openh264 reads
        // it during the call only.
        let code = unsafe { encoder.raw_api().set_option(ENCODER_LTR_RECOVERY_REQUEST, addr_of_mut!(request).cast()) };
        if code == 0 { Ok(()) } else { Err(code) }
    }

    pub(super) fn ltr_feedback(encoder: &mut Encoder, idr_pic_id: u16, frame_num: u32) -> Result<(), i32> {
        let mut feedback = SLTRMarkingFeedback {
            uiFeedbackType: LTR_MARKING_SUCCESS as u32,
            uiIDRPicId: u32::from(idr_pic_id),
            iLTRFrameNum: i32::try_from(frame_num).unwrap_or(i32::MAX),
            iLayerId: 0,
        };
        // SAFETY: SLTRMarkingFeedback is the documented argument of this option; openh264 reads
        // it during the call only.
        let code = unsafe { encoder.raw_api().set_option(ENCODER_LTR_MARKING_FEEDBACK, addr_of_mut!(feedback).cast()) };
        if code == 0 { Ok(()) } else { Err(code) }
    }

    /// The frame rate openh264's rate control budgets for.
    pub(super) fn set_frame_rate(encoder: &mut Encoder, fps: f32) -> Result<(), i32> {
        let mut rate = fps;
        // SAFETY: the option's argument is a float, read during the call only.
        let code = unsafe { encoder.raw_api().set_option(ENCODER_OPTION_FRAME_RATE, addr_of_mut!(rate).cast()) };
        if code == 0 { Ok(()) } else { Err(code) }
    }

    pub(super) fn set_bitrate(encoder: &mut Encoder, bps: u32) -> Result<(), i32> {
        let bps = i32::try_from(bps).unwrap_or(i32::MAX);
        for option in [ENCODER_OPTION_MAX_BITRATE, ENCODER_OPTION_BITRATE] {
            let mut info = SBitrateInfo { iLayer: SPATIAL_LAYER_ALL, iBitrate: bps };
            // SAFETY: SBitrateInfo is the documented argument of both options; openh264 reads
            // it during the call only.
            let code = unsafe { encoder.raw_api().set_option(option, addr_of_mut!(info).cast()) };
            if code != 0 {
                return Err(code);
            }
        }
        Ok(())
    }
}

/// Where the host's network task leaves input for the game, and where the game reports back.
/// The newest accepted input state waits here for the next captured frame: states are whole,
/// so a newer one replaces an older one that was not yet used (latest wins, bounded).
#[derive(Debug, Default)]
pub struct GameLink {
    input: Mutex<Option<InputDatagram>>,
    report: Mutex<GameReport>,
    /// Pad slots owed a rumble (bit per slot): collisions since the network task last looked.
    rumble: std::sync::atomic::AtomicU8,
    /// Key and button transitions from the reliable path, in order, for the next frame. At
    /// most `MAX_PENDING_PRESSES` wait; beyond that (no frame captured for a long while) the
    /// oldest are dropped.
    presses: Mutex<std::collections::VecDeque<Press>>,
    /// Capture stamps of frames that showed a flash, for the host's audio to beep on. At
    /// most `MAX_PENDING_FLASHES` wait (the audio thread takes them every 5 ms); beyond that
    /// (no audio running) the oldest are dropped.
    flashes: Mutex<std::collections::VecDeque<u64>>,
}

const MAX_PENDING_PRESSES: usize = 1024;
const MAX_PENDING_FLASHES: usize = 64;

/// What the game looked like at the last captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GameReport {
    pub frames: u64,
    pub input_seq: u64,
    pub x: f32,
    pub y: f32,
    pub presses: u64,
}

impl GameLink {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        // Held for a copy only; a poisoned lock still holds a whole value.
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands the game a newer input state.
    pub fn put(&self, input: InputDatagram) {
        *Self::lock(&self.input) = Some(input);
    }

    fn take(&self) -> Option<InputDatagram> {
        Self::lock(&self.input).take()
    }

    /// The game as of the last captured frame.
    pub fn report(&self) -> GameReport {
        *Self::lock(&self.report)
    }

    /// Queues key and button transitions for the game.
    pub fn push_presses(&self, presses: &[Press]) {
        let mut queue = Self::lock(&self.presses);
        for p in presses {
            if queue.len() == MAX_PENDING_PRESSES {
                queue.pop_front();
            }
            queue.push_back(*p);
        }
    }

    /// Capture stamps (host clock, microseconds) of the flashes drawn since the last call.
    pub fn take_flashes(&self, out: &mut Vec<u64>) {
        out.extend(Self::lock(&self.flashes).drain(..));
    }

    /// Pad slots to rumble since the last call (bit per slot).
    pub fn take_rumble(&self) -> u8 {
        self.rumble.swap(0, std::sync::atomic::Ordering::AcqRel)
    }

    /// Forgets the previous session's input and report.
    pub fn reset(&self) {
        *Self::lock(&self.input) = None;
        *Self::lock(&self.report) = GameReport::default();
        self.rumble.store(0, std::sync::atomic::Ordering::Release);
        Self::lock(&self.presses).clear();
        Self::lock(&self.flashes).clear();
    }
}

/// The host's send window (`core::video::pacing::SendWindow`), shared by the encoder thread, which
/// counts each frame it hands to the network and skips capture slots while the window is
/// full, and the network tasks, which free a place when the client acknowledges a frame (or
/// stops its stream).
#[derive(Debug)]
pub struct SendGate {
    window: Mutex<SendWindow>,
    epoch: Instant,
    /// Slots held back since the last frame, and in all.
    held_back: AtomicU64,
    held_back_total: AtomicU64,
}

/// How full the send window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    pub frames_in_flight: usize,
    pub bytes_in_flight: u64,
    /// Bytes allowed in flight; `None` while the window is counted in frames.
    pub bytes_allowed: Option<u64>,
}

/// Frames in flight at most, whatever the path: ~270 ms at 60 fps.
pub const MAX_FRAMES_IN_FLIGHT: usize = 16;
/// And at least: a frame being acknowledged while the next goes out.
const MIN_FRAMES_IN_FLIGHT: usize = 2;

impl SendGate {
    pub fn new(fps: u16) -> Arc<Self> {
        let window = SendWindow::new(fps.into(), MIN_FRAMES_IN_FLIGHT, MAX_FRAMES_IN_FLIGHT);
        Arc::new(Self {
            window: Mutex::new(window),
            epoch: Instant::now(),
            held_back: AtomicU64::new(0),
            held_back_total: AtomicU64::new(0),
        })
    }

    /// The capture loop asks for each due slot: `None` to skip it (the window is full, or the
    /// queue to the network task has no room), else how many slots were held back just before.
    fn admit(&self, queue_has_room: bool) -> Option<u32> {
        if !queue_has_room || self.is_full() {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let run = self.held_back.swap(0, Ordering::Relaxed);
        if run > 0 {
            let total = self.held_back_total.fetch_add(run, Ordering::Relaxed) + run;
            let Occupancy { frames_in_flight, bytes_in_flight, bytes_allowed } = self.occupancy();
            tracing::debug!(
                run,
                total,
                frames_in_flight,
                bytes_in_flight,
                ?bytes_allowed,
                "the path had no room; held back capture slots"
            );
        }
        Some(u32::try_from(run).unwrap_or(u32::MAX))
    }

    fn window(&self) -> std::sync::MutexGuard<'_, SendWindow> {
        // Held for a few integer updates; a poisoned lock still holds a whole window.
        self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a frame captured now would wait behind the ones in flight.
    pub fn is_full(&self) -> bool {
        let now = self.epoch.elapsed();
        self.window().is_full(now)
    }

    /// What is in flight now, and what the window allows.
    pub fn occupancy(&self) -> Occupancy {
        let now = self.epoch.elapsed();
        let window = self.window();
        Occupancy {
            frames_in_flight: window.outstanding(),
            bytes_in_flight: window.outstanding_bytes(),
            bytes_allowed: window.limit_bytes(now),
        }
    }

    fn sent(&self, frame: u64, bytes: usize) {
        let now = self.epoch.elapsed();
        self.window().on_sent(frame, now, bytes as u64);
    }

    /// The client acknowledged every byte of `frame`.
    pub fn acked(&self, frame: u64) {
        let now = self.epoch.elapsed();
        self.window().on_acked(frame, now);
    }

    /// QUIC's view of the path: smoothed and lowest RTT and packets declared lost so far.
    pub fn path(&self, rtt: Duration, min_rtt: Duration, lost_packets: u64) {
        let now = self.epoch.elapsed();
        self.window().on_path(now, rtt, min_rtt, lost_packets);
    }

    /// `frame` left flight unacknowledged (stopped by the client, or the connection failed).
    pub fn released(&self, frame: u64) {
        self.window().on_released(frame);
    }
}

/// Commands queued for the encoder thread. Requests are tiny and rare (one per loss, bitrate
/// step or long-term reference, two a second); when 16 are already waiting the newest is
/// dropped, since a request already queued covers it (a dropped confirmation only makes a
/// later recovery refer to an older reference).
const COMMAND_QUEUE: usize = 16;

/// The running encoder thread. Dropping it stops the thread at its next frame.
pub struct Worker {
    commands: SyncSender<EncoderRequest>,
    /// Wakes a display's capture loop, which waits on its X connection, not on `commands`.
    wake: UnixStream,
    handle: JoinHandle<()>,
    /// Why the thread stopped on its own, in a sentence for the player.
    failure: Arc<Mutex<Option<String>>>,
}

impl Worker {
    /// Sends a command; returns false if the queue is full or the thread has ended.
    pub fn send(&self, command: EncoderRequest) -> bool {
        let sent = self.commands.try_send(command).is_ok();
        nudge(&self.wake);
        sent
    }

    /// Why the thread stopped streaming by itself (its picture source or encoder failed).
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Stops the thread and waits for it (at most one frame's encode).
    pub fn stop(self) {
        drop(self.commands);
        nudge(&self.wake);
        if self.handle.join().is_err() {
            tracing::error!("the encoder thread panicked");
        }
    }
}

/// Wakes the encoder thread through `wake`. A full socket already holds a wake-up, so a
/// failed write is fine.
fn nudge(mut wake: &UnixStream) {
    wake.write_all(&[1]).ok();
}

/// Where the encoder's pictures come from.
pub enum Picture {
    /// The synthetic scene and its game (`GameLink`).
    Scene,
    /// A display, captured when it draws; `applied` is the newest input injected into it;
    /// `still`: the client reads still words, so an unchanged display is not re-encoded.
    Desktop { capture: Box<crate::host::x11::Capture>, applied: Arc<AtomicU64>, still: bool },
}

/// What the encoder thread hands the network task.
#[derive(Debug)]
pub enum Encoded {
    /// An encoded picture.
    Frame(Frame),
    /// The display drew nothing since the last frame, which is still current (a datagram).
    Still(Still),
}

/// Starts the encoder thread "kumo-encode": it captures frames from `source` (the scene on
/// the capture clock, a display when it draws) and sends them on `frames`. While `gate` is
/// full or `frames` has no room (the network cannot keep up), due captures are skipped before
/// they are made, so the stream stays decodable.
pub fn spawn(
    settings: EncoderSettings,
    frames: tokio::sync::mpsc::Sender<Encoded>,
    game: Arc<GameLink>,
    gate: Arc<SendGate>,
    source: Picture,
) -> Result<Worker, EncodeError> {
    let encoder = H264Encoder::new(settings)?;
    let (commands, command_rx) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
    let (wake, woken) = UnixStream::pair()?;
    wake.set_nonblocking(true)?;
    woken.set_nonblocking(true)?;
    let failure = Arc::new(Mutex::new(None));
    let failed = failure.clone();
    let handle = std::thread::Builder::new().name("kumo-encode".into()).spawn(move || {
        let out = Output { frames: &frames, gate: &gate, frame_number: 0 };
        let result = match source {
            Picture::Scene => scene_loop(encoder, &command_rx, out, &game),
            Picture::Desktop { mut capture, applied, still } => {
                let inbox = Inbox { commands: &command_rx, woken: &woken };
                display_loop(encoder, &inbox, out, &mut capture, &applied, still)
            }
        };
        if let Err(why) = result {
            tracing::error!("{why}; stopping the stream");
            *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
        }
    })?;
    Ok(Worker { commands, wake, handle, failure })
}

/// Where encoded pictures go, and the wire's frame numbers.
struct Output<'a> {
    frames: &'a tokio::sync::mpsc::Sender<Encoded>,
    gate: &'a SendGate,
    frame_number: u64,
}

/// What a picture's header says besides its encoding.
struct Stamp {
    /// Time since the stream started (openh264's rate control needs it).
    at: Duration,
    capture_micros: u64,
    input_seq: u64,
    held_back: u32,
    host_behind: u64,
}

impl Output<'_> {
    /// Whether a picture captured now could go: the send window and the network queue have
    /// room. `None` holds the capture back; else the slots held back just before.
    fn admit(&self) -> Option<u32> {
        self.gate.admit(self.frames.capacity() > 0)
    }

    /// Encodes `picture` and hands it to the network. `Ok(false)`: the network task is gone.
    fn send(&mut self, encoder: &mut H264Encoder, picture: &I420, stamp: &Stamp) -> Result<bool, String> {
        let settings = encoder.settings();
        let started = Instant::now();
        let mut payload = Vec::new();
        let kind = match encoder.encode(picture, stamp.at, &mut payload) {
            Ok(Some(kind)) => kind,
            Ok(None) => return Ok(true),
            Err(err) => return Err(format!("the host's encoder failed: {err:#}")),
        };
        let header = FrameHeader {
            frame_number: self.frame_number,
            capture_micros: stamp.capture_micros,
            encode_micros: started.elapsed().as_micros() as u32,
            kind,
            width: settings.width,
            height: settings.height,
            payload_len: payload.len() as u32,
            input_seq: stamp.input_seq,
            held_back: stamp.held_back,
            host_behind: u32::try_from(stamp.host_behind).unwrap_or(u32::MAX),
        };
        // Into the window before the network task can see the frame: on loopback its
        // acknowledgement can come back before this thread runs again.
        self.gate.sent(self.frame_number, payload.len());
        match self.frames.try_send(Encoded::Frame(Frame { header, payload })) {
            Ok(()) => self.frame_number += 1,
            // Only this thread sends, and it looked for room before encoding: a safety net.
            Err(TrySendError::Full(_)) => {
                self.gate.released(self.frame_number);
                tracing::debug!(
                    frame_number = self.frame_number,
                    "network queue full; dropping a frame and forcing an IDR"
                );
                encoder.force_idr();
            }
            Err(TrySendError::Closed(_)) => return Ok(false),
        }
        Ok(true)
    }

    /// Says that the last frame sent is still current. `Ok(false)`: the network task is gone.
    fn still(&self) -> bool {
        let Some(last) = self.frame_number.checked_sub(1) else { return true };
        let still = Still { frame_number: last, host_micros: clock::now_micros() };
        // A full queue holds frames, which say more than this word.
        !matches!(self.frames.try_send(Encoded::Still(still)), Err(TrySendError::Closed(_)))
    }
}

/// The synthetic scene, captured on the capture clock: skipped slots stay skipped.
fn scene_loop(
    mut encoder: H264Encoder,
    commands: &Receiver<EncoderRequest>,
    mut out: Output<'_>,
    link: &GameLink,
) -> Result<(), String> {
    let mut settings = encoder.settings();
    let epoch = Instant::now();
    let mut schedule = CaptureClock::new(settings.fps.into(), Duration::ZERO);
    let mut picture = I420::new(settings.width.into(), settings.height.into());
    let mut skipped_total = 0u64;
    let mut game = Game::default();
    loop {
        // Commands first, so an IDR request applies to the very next frame even when the
        // host runs behind schedule.
        if apply_waiting(commands, &mut encoder).is_none() {
            return Ok(());
        }
        // The ladder changed the picture: the scene is drawn at the new size (a game's
        // dynamic resolution), on a clock of the new rate.
        let now = encoder.settings();
        if (now.width, now.height, now.fps) != (settings.width, settings.height, settings.fps) {
            if (now.width, now.height) != (settings.width, settings.height) {
                picture = I420::new(now.width.into(), now.height.into());
            }
            if now.fps != settings.fps {
                schedule = CaptureClock::new(now.fps.into(), epoch.elapsed());
            }
            settings = now;
        }
        let slot = match schedule.poll(epoch.elapsed()) {
            Tick::WaitUntil(due) => {
                match commands.recv_timeout(due.saturating_sub(epoch.elapsed())) {
                    Ok(command) => apply(&mut encoder, command),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
                continue;
            }
            Tick::Capture { slot, skipped } => {
                if skipped > 0 {
                    skipped_total += skipped;
                    tracing::debug!(skipped, skipped_total, "host fell behind its capture schedule");
                }
                slot
            }
        };
        let Some(held_back) = out.admit() else { continue };
        let frame =
            SceneFrame { slot, frame_number: out.frame_number, fps: settings.fps, interval: schedule.interval() };
        let (capture_micros, input_seq) = scene_frame(frame, &mut game, link, &mut picture);
        let at = schedule.due(slot);
        let stamp = Stamp { at, capture_micros, input_seq, held_back, host_behind: skipped_total };
        if !out.send(&mut encoder, &picture, &stamp)? {
            return Ok(());
        }
    }
}

/// What wakes a display's capture loop besides its X connection.
struct Inbox<'a> {
    commands: &'a Receiver<EncoderRequest>,
    woken: &'a UnixStream,
}

/// A display, captured when it draws (`DrawnClock`): at once, at most once a frame interval;
/// while it draws nothing, a still word every 100 ms instead of a re-encoded picture.
fn display_loop(
    mut encoder: H264Encoder,
    inbox: &Inbox<'_>,
    mut out: Output<'_>,
    capture: &mut crate::host::x11::Capture,
    applied: &AtomicU64,
    still_words: bool,
) -> Result<(), String> {
    let mut settings = encoder.settings();
    let mut picture = I420::new(settings.width.into(), settings.height.into());
    let epoch = Instant::now();
    let mut drawing = DrawnClock::new(settings.fps.into(), still_words && capture.tracks_damage());
    let stopped = |err| format!("the host's display stopped: {err}");
    let mut captured_input = applied.load(Ordering::Acquire);
    loop {
        match apply_waiting(inbox.commands, &mut encoder) {
            None => return Ok(()),
            Some(true) => drawing.on_repair(),
            Some(false) => {}
        }
        // The ladder changed the picture: the capture is scaled to the new size, drawn
        // pictures are taken at the new rate, and the new encoder's IDR goes out at once.
        let now = encoder.settings();
        if (now.width, now.height, now.fps) != (settings.width, settings.height, settings.fps) {
            if (now.width, now.height) != (settings.width, settings.height) {
                capture.scale_to(now.width, now.height);
                picture = I420::new(now.width.into(), now.height.into());
                capture.mark_drawn();
            }
            if now.fps != settings.fps {
                drawing = DrawnClock::new(now.fps.into(), still_words && capture.tracks_damage());
                capture.mark_drawn();
            }
            settings = now;
        }
        // Drawn on, or given the player's input (which may have moved the pointer).
        let input_seq = applied.load(Ordering::Acquire);
        if input_seq != captured_input {
            capture.mark_drawn();
        }
        if capture.drawn().map_err(stopped)? {
            drawing.on_drawn();
        }
        let now = epoch.elapsed();
        match drawing.poll(now) {
            DrawTick::WaitUntil { until, or_drawn } => {
                let display = or_drawn.then(|| capture.events_fd());
                wait(inbox.woken, display, until.saturating_sub(now)).map_err(|e| format!("waiting failed: {e}"))?;
                continue;
            }
            DrawTick::Still => {
                // The pointer moving draws nothing the server reports: looked for here, every
                // 100 ms of an otherwise still display.
                if capture.pointer_moved().map_err(stopped)? {
                    capture.mark_drawn();
                    continue;
                }
                if !out.still() {
                    return Ok(());
                }
                continue;
            }
            DrawTick::Capture => {}
        }
        let Some(held_back) = out.admit() else {
            drawing.on_held_back(now);
            continue;
        };
        let capture_micros = clock::now_micros();
        capture.grab(&mut picture).map_err(stopped)?;
        drawing.on_captured(now);
        captured_input = input_seq;
        let stamp = Stamp { at: now, capture_micros, input_seq, held_back, host_behind: 0 };
        if !out.send(&mut encoder, &picture, &stamp)? {
            return Ok(());
        }
    }
}

/// Sleeps up to `timeout`, or until `woken` or `display` is readable; empties `woken`.
fn wait(woken: &UnixStream, display: Option<BorrowedFd<'_>>, timeout: Duration) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
    let mut fds = [PollFd::new(woken, PollFlags::IN), PollFd::new(woken, PollFlags::IN)];
    let n = match display {
        Some(fd) => {
            fds[1] = PollFd::from_borrowed_fd(fd, PollFlags::IN);
            2
        }
        None => 1,
    };
    match poll(&mut fds[..n], Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(err) => return Err(err.into()),
    }
    let mut buf = [0u8; 64];
    while matches!((&*woken).read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}

/// Where the schedule is for the synthetic scene's next frame.
#[derive(Clone, Copy)]
struct SceneFrame {
    slot: u64,
    frame_number: u64,
    fps: u16,
    interval: Duration,
}

/// Draws the synthetic scene and its game for `frame`: the newest input applied, the game
/// stepped, its report, rumble and flashes published. Returns the capture time and the input
/// the picture shows.
fn scene_frame(frame: SceneFrame, game: &mut Game, link: &GameLink, picture: &mut I420) -> (u64, u64) {
    let SceneFrame { slot, frame_number, fps, interval } = frame;
    // Motion follows the schedule slot; the marker carries the wire frame number, which is
    // what the client checks.
    scene::render(slot, fps.into(), frame_number as u32, picture);
    if let Some(input) = link.take() {
        game.apply(&input);
    }
    for press in GameLink::lock(&link.presses).drain(..) {
        game.on_press(&press);
    }
    game.step(interval);
    if let Some(slot) = game.take_rumble() {
        link.rumble.fetch_or(1 << slot, std::sync::atomic::Ordering::AcqRel);
    }
    let capture_micros = clock::now_micros();
    let sync = slot.is_multiple_of(u64::from(fps.max(1)));
    let drawn = game::draw(game, picture, sync, (capture_micros / 1000) as u32);
    *GameLink::lock(&link.report) = GameReport {
        frames: frame_number + 1,
        input_seq: drawn.input_seq,
        x: game.x,
        y: game.y,
        presses: game.presses,
    };
    if drawn.flash {
        let mut flashes = GameLink::lock(&link.flashes);
        if flashes.len() == MAX_PENDING_FLASHES {
            flashes.pop_front();
        }
        flashes.push_back(capture_micros);
    }
    (capture_micros, drawn.input_seq)
}

/// Applies every command waiting: `None` once their sender is gone, else whether one asked
/// for a repair (an IDR or a recovery frame, which must be encoded even from a still display).
fn apply_waiting(commands: &Receiver<EncoderRequest>, encoder: &mut H264Encoder) -> Option<bool> {
    let mut repair = false;
    loop {
        match commands.try_recv() {
            Ok(command) => {
                repair |= matches!(command, EncoderRequest::ForceIdr | EncoderRequest::RecoverLtr { .. });
                apply(encoder, command);
            }
            Err(TryRecvError::Empty) => return Some(repair),
            Err(TryRecvError::Disconnected) => return None,
        }
    }
}

fn apply(encoder: &mut H264Encoder, command: EncoderRequest) {
    match command {
        EncoderRequest::ForceIdr => encoder.force_idr(),
        EncoderRequest::RecoverLtr { idr_pic_id } => encoder.recover_from_ltr(idr_pic_id),
        EncoderRequest::LtrConfirmed { idr_pic_id, frame_num } => encoder.ltr_confirmed(idr_pic_id, frame_num),
        EncoderRequest::SetBitrate { kbps } => {
            if let Err(err) = encoder.set_bitrate(kbps) {
                tracing::warn!("{err:#}");
            }
        }
        EncoderRequest::SetPicture { width, height, fps, skip_frames } => {
            match encoder.reshape(width, height, fps, skip_frames) {
                Ok(rebuilt) => tracing::debug!(width, height, fps, skip_frames, rebuilt, "the picture changed"),
                Err(err) => tracing::warn!("could not change the picture to {width}x{height} at {fps} fps: {err:#}"),
            }
        }
    }
}

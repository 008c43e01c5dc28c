//! The openh264 decoder shell and the client's decode thread.
//!
//! Owns the decoder. The thread "kumo-decode" takes whole access units from a bounded queue,
//! decodes them, checks each picture's frame marker against its header, and puts the picture
//! in the latest-frame slot for the presenter. It reports every outcome as a stats event. It
//! must not block on anything but its input queue, and never trusts the bitstream: openh264
//! errors are counted and answered with an IDR request, never a panic.

use crate::clock;
use crate::core::sim::{game, marker};
use crate::core::stats::{self, Decoded, MarkerCheck};
use crate::core::wire::{FrameHeader, FrameKind};
use openh264::decoder::{DecodeOptions, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("openh264 decoder failed: {0}")]
    Codec(String),
    /// No H.264 code to decode with (`crate::h264`); the sentence says what to do.
    #[error("{0}")]
    NoCodec(String),
    #[error("could not start the decode thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A decoded picture as openh264 left it: planes with strides, valid until the next call.
#[derive(Debug, Clone, Copy)]
pub struct PlaneView<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub y_stride: usize,
    pub uv_stride: usize,
}

impl PlaneView<'_> {
    /// Rows of each plane without stride padding: Y, then U, then V.
    pub fn rows(&self) -> impl Iterator<Item = &[u8]> {
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        plane_rows(self.y, self.y_stride, self.width, self.height)
            .chain(plane_rows(self.u, self.uv_stride, cw, ch))
            .chain(plane_rows(self.v, self.uv_stride, cw, ch))
    }
}

fn plane_rows(data: &[u8], stride: usize, width: usize, height: usize) -> impl Iterator<Item = &[u8]> {
    (0..height).filter_map(move |r| data.get(r * stride..r * stride + width))
}

/// An owned picture with tight planes, as the presenter takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picture {
    pub frame_number: u64,
    /// Host clock, µs: when the host captured it.
    pub capture_micros: u64,
    /// Client clock, µs: when decoding finished.
    pub decoded_micros: u64,
    /// The newest input the host had applied when it captured this picture.
    pub input_seq: u64,
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Picture {
    /// Copies `view` into this picture, reusing its buffers.
    fn copy_from(&mut self, frame_number: u64, view: &PlaneView<'_>) {
        self.frame_number = frame_number;
        self.width = view.width;
        self.height = view.height;
        let (cw, ch) = (view.width.div_ceil(2), view.height.div_ceil(2));
        for (dst, src, stride, w, h) in [
            (&mut self.y, view.y, view.y_stride, view.width, view.height),
            (&mut self.u, view.u, view.uv_stride, cw, ch),
            (&mut self.v, view.v, view.uv_stride, cw, ch),
        ] {
            dst.clear();
            for row in plane_rows(src, stride, w, h) {
                dst.extend_from_slice(row);
            }
        }
    }
}

/// openh264 set up for low-latency decoding of whole access units.
pub struct H264Decoder {
    inner: Decoder,
}

fn view(yuv: &impl YUVSource) -> PlaneView<'_> {
    let (width, height) = yuv.dimensions();
    let (y_stride, uv_stride, _) = yuv.strides();
    PlaneView { width, height, y: yuv.y(), u: yuv.u(), v: yuv.v(), y_stride, uv_stride }
}

impl H264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        // No flushing after each call: with whole access units openh264's no-delay mode
        // returns each picture from its own call, and a forced flush could reorder streams
        // that do use reordering. `flush` drains what is left at the end of a stream.
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let inner = Decoder::with_api_config(crate::h264::api().map_err(DecodeError::NoCodec)?, config)
            .map_err(|e| DecodeError::Codec(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Decodes one access unit; if it completed a picture, passes it to `with` and returns
    /// what that returned.
    pub fn decode<R>(
        &mut self,
        access_unit: &[u8],
        with: impl FnOnce(PlaneView<'_>) -> R,
    ) -> Result<Option<R>, DecodeError> {
        let options = DecodeOptions::new().flush_after_decode(Flush::NoFlush);
        match self.inner.decode_with_options(access_unit, options) {
            Ok(picture) => Ok(picture.map(|yuv| with(view(&yuv)))),
            Err(e) => Err(DecodeError::Codec(e.to_string())),
        }
    }

    /// After a decode: the long-term reference the access unit marked, if it marked one.
    pub fn ltr_marked(&mut self) -> Option<LtrMark> {
        let marked = ffi::option(&mut self.inner, openh264_sys2::DECODER_OPTION_LTR_MARKING_FLAG)?;
        if marked == 0 {
            return None;
        }
        Some(LtrMark {
            idr_pic_id: self.idr_pic_id()?,
            frame_num: u32::try_from(ffi::option(&mut self.inner, openh264_sys2::DECODER_OPTION_LTR_MARKED_FRAME_NUM)?)
                .ok()?,
        })
    }

    /// The IDR period (`idr_pic_id`) the last decoded access unit belongs to.
    pub fn idr_pic_id(&mut self) -> Option<u16> {
        u16::try_from(ffi::option(&mut self.inner, openh264_sys2::DECODER_OPTION_IDR_PIC_ID)?).ok()
    }

    /// Drains pictures the decoder still holds (end of stream).
    pub fn flush(&mut self, mut each: impl FnMut(PlaneView<'_>)) -> Result<(), DecodeError> {
        let pictures = self.inner.flush_remaining().map_err(|e| DecodeError::Codec(e.to_string()))?;
        for yuv in &pictures {
            each(view(yuv));
        }
        Ok(())
    }
}

/// A long-term reference the decoder holds: the host may recover from it after a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LtrMark {
    pub idr_pic_id: u16,
    pub frame_num: u32,
}

/// The decoder options the safe wrapper does not expose.
#[expect(unsafe_code, reason = "openh264's safe wrapper does not expose these decoder options")]
mod ffi {
    use openh264::decoder::Decoder;

    /// An integer option openh264 reports after a decode; `None` if it refused.
    pub(super) fn option(decoder: &mut Decoder, option: openh264_sys2::DECODER_OPTION) -> Option<i32> {
        let mut value: std::ffi::c_int = 0;
        // SAFETY: these options write one int into the caller-owned pointer during the call;
        // the decoder is initialised (it exists only initialised).
        let code = unsafe { decoder.raw_api().get_option(option, std::ptr::addr_of_mut!(value).cast()) };
        (code == 0).then_some(value)
    }
}

/// One access unit on its way to the decoder.
#[derive(Debug)]
pub struct AccessUnit {
    pub header: FrameHeader,
    pub data: Vec<u8>,
    /// When the network shell queued it (for the queue delay).
    pub queued_at: Instant,
}

/// The latest decoded picture, waiting for the presenter: at most one picture waits. A newer
/// picture replaces an older one that was not taken yet (a pacing drop, counted here and
/// reported by the presenter, never blamed on the network); the replaced one's buffers are
/// reused for the next decode.
#[derive(Debug, Default)]
pub struct FrameSlot {
    latest: Mutex<Latest>,
}

#[derive(Debug, Default)]
struct Latest {
    picture: Option<Picture>,
    /// Pictures replaced untaken since the last take.
    replaced: u64,
    /// A picture the presenter is done with, for the decoder to fill next (no allocation per
    /// frame once both sides have a buffer).
    spare: Option<Picture>,
}

impl FrameSlot {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latest> {
        // The lock is held for a pointer swap only. A poisoned lock means a holder panicked
        // mid-swap; the slot's content is still whole, so keep using it.
        self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts a picture in the slot; returns a buffer to decode the next one into: the picture
    /// it replaced (never taken: a pacing drop), else one the presenter gave back, if any.
    pub fn put(&self, picture: Picture) -> Option<Picture> {
        let mut latest = self.lock();
        let old = latest.picture.replace(picture);
        latest.replaced += u64::from(old.is_some());
        old.or_else(|| latest.spare.take())
    }

    /// Gives a shown picture's buffers back for reuse.
    pub fn recycle(&self, picture: Picture) {
        self.lock().spare = Some(picture);
    }

    /// Takes the latest picture, if a new one arrived since the last take, with the number of
    /// pictures it replaced unseen since then.
    pub fn take(&self) -> (Option<Picture>, u64) {
        let mut latest = self.lock();
        (latest.picture.take(), std::mem::take(&mut latest.replaced))
    }
}

/// Called by the decode thread after each picture it puts in the slot: the window passes
/// one that wakes its event loop. It must return at once.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Where the decode thread reports.
pub struct Outputs {
    pub stats: SyncSender<stats::Event>,
    /// Whether the pictures carry kumo's frame markers to check (the synthetic scene's do).
    pub markers: bool,
    /// The latency lab's watched region: its mean luma is reported with each picture.
    pub watch: Option<crate::core::sim::lab::Region>,
    /// Frame numbers the decoder failed on; the network shell then asks for an IDR. When
    /// full, a failure is already being reported and this one adds nothing.
    pub losses: tokio::sync::mpsc::Sender<u64>,
    /// Long-term references the decoder marked, for the network shell to confirm to the host.
    /// When full (two a second are usual) a confirmation is dropped: a later recovery then
    /// refers to an older reference.
    pub ltr_marks: tokio::sync::mpsc::Sender<LtrMark>,
    /// The IDR period of the last picture decoded (`NO_IDR_PIC_ID` before the first), which a
    /// recovery request names.
    pub idr_pic_id: Arc<std::sync::atomic::AtomicU32>,
    pub slot: Arc<FrameSlot>,
    /// Wakes whoever presents the slot's pictures.
    pub notify: Option<Notify>,
    /// Where A/V sync reads the video's latency.
    pub av: Arc<crate::client::audio::AvClock>,
    /// The recording (`--record`): every access unit decoded goes to it.
    pub record: Option<crate::client::record::Tap>,
}

/// Starts the decode thread. It runs until `input` is closed (the network shell dropped its
/// sender), then exits; join the handle to wait for it.
pub fn spawn(input: Receiver<AccessUnit>, outputs: Outputs) -> Result<JoinHandle<()>, DecodeError> {
    let mut decoder = H264Decoder::new()?;
    let handle =
        std::thread::Builder::new().name("kumo-decode".into()).spawn(move || run(&mut decoder, &input, &outputs))?;
    Ok(handle)
}

/// `Outputs::idr_pic_id` before any picture.
pub const NO_IDR_PIC_ID: u32 = u32::MAX;

/// What the decoder can take next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// A frame never reached the decoder: only an IDR or a recovery frame (which refers to a
    /// long-term reference) decodes now. Feeding it an inter frame would put openh264 in its
    /// error state, which only an IDR ends.
    RecoveryPoint,
    /// openh264 failed: it decodes nothing until the next IDR.
    Idr,
}

fn run(decoder: &mut H264Decoder, input: &Receiver<AccessUnit>, out: &Outputs) {
    let mut spare = Picture::default();
    let mut wait = Wait::Nothing;
    let mut expected: Option<u64> = None;
    for unit in input {
        let kind = unit.header.kind;
        if wait == Wait::Nothing && kind != FrameKind::Idr && expected.is_some_and(|e| e != unit.header.frame_number) {
            // A frame before this one never got here (the network shell could not queue it
            // and has asked for a recovery).
            wait = Wait::RecoveryPoint;
        }
        let takes = match wait {
            Wait::Nothing => true,
            Wait::RecoveryPoint => kind != FrameKind::Inter,
            Wait::Idr => kind == FrameKind::Idr,
        };
        if !takes {
            report(
                out,
                stats::Event::Dropped { reason: crate::core::video::sequence::DropReason::Undecodable, count: 1 },
            );
            continue;
        }
        let started = Instant::now();
        let queue_micros = started.duration_since(unit.queued_at).as_micros() as u64;
        let frame_number = unit.header.frame_number;
        let attempt = |decoder: &mut H264Decoder, spare: &mut Picture| {
            decoder.decode(&unit.data, |view| {
                let decode_micros = started.elapsed().as_micros() as u64;
                let decoded_micros = clock::now_micros();
                let marker = match marker::read(view.y, view.y_stride, view.width, view.height) {
                    _ if !out.markers => MarkerCheck::Unchecked,
                    Ok(value) if value == frame_number as u32 => MarkerCheck::Match,
                    Ok(_) => MarkerCheck::Mismatch,
                    Err(_) => MarkerCheck::Unreadable,
                };
                // What the pixels say about the input and the capture time (the latency lab
                // checks the header's claims against them).
                let pixel_input = game::read_input_marker(view.y, view.y_stride, view.width, view.height).ok();
                let pixel_time_ms = game::read_time_marker(view.y, view.y_stride, view.width, view.height).ok();
                let region_luma = out.watch.and_then(|r| r.mean_luma(view.y, view.y_stride, view.width, view.height));
                spare.copy_from(frame_number, &view);
                spare.capture_micros = unit.header.capture_micros;
                spare.decoded_micros = decoded_micros;
                spare.input_seq = unit.header.input_seq;
                (decode_micros, decoded_micros, marker, pixel_input, pixel_time_ms, region_luma)
            })
        };
        let mut decoded = attempt(decoder, &mut spare);
        if decoded.is_err() && kind == FrameKind::Idr {
            // openh264's errors are sticky until an IDR, and some damage leaves it failing
            // even on a good IDR (seen with the corpus's Error_I_P.264: every later IDR
            // failed, so a client would ask for IDRs for ever). So an IDR that fails is tried
            // once more on a fresh decoder (a millisecond to make; kumo's IDRs carry their
            // parameter sets). Other failures keep the decoder: the parameter sets it holds
            // may be the only copy (a stream that sent them once).
            reset(decoder);
            decoded = attempt(decoder, &mut spare);
        }
        match decoded {
            Ok(Some((decode_micros, decoded_micros, marker, pixel_input, pixel_time_ms, region_luma))) => {
                wait = Wait::Nothing;
                if let Some(record) = &out.record {
                    let received_micros = decoded_micros.saturating_sub(decode_micros + queue_micros);
                    to_recording(record, &unit.header, unit.data, received_micros, decoded_micros);
                }
                expected = Some(frame_number + 1);
                if let Some(id) = decoder.idr_pic_id() {
                    out.idr_pic_id.store(u32::from(id), std::sync::atomic::Ordering::Release);
                }
                if let Some(mark) = decoder.ltr_marked() {
                    out.ltr_marks.try_send(mark).ok();
                }
                spare = out.slot.put(std::mem::take(&mut spare)).unwrap_or_default();
                out.av.on_decoded(unit.header.capture_micros, decoded_micros);
                if let Some(notify) = &out.notify {
                    notify();
                }
                report(
                    out,
                    stats::Event::Decoded(Decoded {
                        frame_number,
                        encode_micros: unit.header.encode_micros,
                        host_behind: unit.header.host_behind,
                        capture_micros: unit.header.capture_micros,
                        decoded_micros,
                        queue_micros,
                        decode_micros,
                        marker,
                        pixel_input,
                        pixel_time_ms,
                        region_luma,
                    }),
                );
            }
            Ok(None) => {}
            Err(err) => {
                tracing::debug!(frame_number, "{err:#}");
                wait = Wait::Idr;
                report(out, stats::Event::DecodeError);
                out.losses.try_send(frame_number).ok();
            }
        }
    }
}

/// Hands a decoded access unit to the recording (moved, not copied).
fn to_recording(
    record: &crate::client::record::Tap,
    header: &FrameHeader,
    annexb: Vec<u8>,
    received_micros: u64,
    decoded_micros: u64,
) {
    let picture = crate::client::record::Picture {
        frame_number: header.frame_number,
        kind: header.kind,
        capture_micros: header.capture_micros,
        width: header.width,
        height: header.height,
        annexb,
        received_micros,
        decoded_micros,
    };
    // A picture the recording could not take: it goes on from the next IDR, which the
    // session asks for (kumo's host sends none on its own). Not a loss: the live stream
    // decodes on.
    record.picture(picture);
}

/// Replaces a failed decoder with a fresh one (a failure to make one keeps the old).
fn reset(decoder: &mut H264Decoder) {
    match H264Decoder::new() {
        Ok(fresh) => *decoder = fresh,
        Err(err) => tracing::warn!("{err:#}; keeping the failed decoder"),
    }
}

/// Stats are advisory: when the queue is full (its reader stalled) the event is dropped
/// rather than stalling decoding.
fn report(out: &Outputs, event: stats::Event) {
    out.stats.try_send(event).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(n: u64) -> Picture {
        Picture { frame_number: n, width: 2, height: 2, y: vec![0; 4], u: vec![0], v: vec![0], ..Default::default() }
    }

    #[test]
    fn the_newest_picture_wins_and_replacements_are_counted() {
        let slot = FrameSlot::new();
        assert!(slot.put(picture(1)).is_none());
        let back = slot.put(picture(2)).unwrap();
        assert_eq!(back.frame_number, 1, "the unseen picture comes back for reuse");
        slot.put(picture(3));
        let (got, replaced) = slot.take();
        assert_eq!(got.unwrap().frame_number, 3);
        assert_eq!(replaced, 2);
        assert_eq!(slot.take(), (None, 0), "nothing new, nothing replaced");
    }

    #[test]
    fn a_recycled_picture_is_handed_to_the_decoder() {
        let slot = FrameSlot::new();
        slot.put(picture(1));
        let (shown, _) = slot.take();
        slot.recycle(shown.unwrap());
        let spare = slot.put(picture(2)).unwrap();
        assert_eq!(spare.frame_number, 1);
        assert_eq!(slot.take().1, 0, "a recycled buffer is not a pacing drop");
    }
}

//! The "kumo-record" thread: `--record FILE` writes the stream as it arrives into a Matroska
//! file, and each frame's times into `FILE.frames.csv`; `--replay-seconds N` keeps the last N
//! seconds in memory and saves them to the videos folder on the hotkey (`core::record` decides
//! every byte; this thread only writes them, so the window never waits on a disk).
//!
//! What it is fed, by whom, through one queue of [`QUEUE`] messages:
//! - the decode thread: each access unit it decoded (moved, not copied) with its times;
//! - the audio thread: each packet it played (not the concealed ones);
//! - the session loop: the clock-sync estimate; the presenter: what it showed.
//!
//! Every sender only tries: a full queue never slows decoding, playing or presenting.
//! A picture that does not fit is a gap in the video, so the recording waits for the next
//! IDR and the session asks the host for one (not a loss: the live stream decodes on; the gap
//! travels with the next picture, so the thread knows where it is). A sound packet that does
//! not fit is a gap in the sound (5 ms); the times are advisory. The files' errors (a disk
//! full, a folder missing, no permission) are said once, and streaming goes on without them.

use crate::core::audio::AudioFormat;
use crate::core::record::frames::{Decoded, FrameTable};
use crate::core::record::replay::ReplayBuffer;
use crate::core::record::{Counts, Muxer, Taken, VideoFrame};
use crate::core::wire::FrameKind;
use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Messages waiting for the thread at most: about two seconds of a 60 fps stream with its
/// sound (60 pictures and 200 packets a second).
pub const QUEUE: usize = 512;
/// Sentences waiting for the window (one per hotkey press; full: the newest is dropped).
const NOTICES: usize = 8;

/// What the replay hotkey says when no replay buffer is kept.
pub const NO_REPLAY: &str =
    "No replay to save: start kumo with --replay-seconds N (or replay_seconds in the config file)";

/// A decoded picture for the recording.
#[derive(Debug)]
pub struct Picture {
    pub frame_number: u64,
    pub kind: FrameKind,
    pub capture_micros: u64,
    pub width: u16,
    pub height: u16,
    pub annexb: Vec<u8>,
    pub received_micros: u64,
    pub decoded_micros: u64,
}

enum Msg {
    /// A picture, and whether one was left out just before it.
    Picture(Picture, bool),
    Sound {
        capture_micros: u64,
        coded: Vec<Vec<u8>>,
    },
    Presented {
        frame_number: u64,
        presented_micros: u64,
    },
    Clock(i64),
    SaveReplay,
    Finish,
}

/// What feeds the recording; cheap to clone, one per feeding thread.
#[derive(Clone)]
pub struct Tap {
    tx: SyncSender<Msg>,
    /// Set when a picture did not fit, until the next one that does: it goes with that one,
    /// so the thread knows where the hole is.
    gap: Arc<AtomicBool>,
    /// Set when a picture did not fit: the session asks the host for an IDR, which the
    /// recording goes on from.
    key_frame_wanted: Arc<AtomicBool>,
}

impl Tap {
    /// A decoded picture; one that does not fit is left out, and the recording waits for the
    /// IDR the session is then asked to ask for.
    pub fn picture(&self, picture: Picture) {
        let after_gap = self.gap.swap(false, Ordering::AcqRel);
        match self.tx.try_send(Msg::Picture(picture, after_gap)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.gap.store(true, Ordering::Release);
                self.key_frame_wanted.store(true, Ordering::Release);
            }
        }
    }

    /// Whether the recording needs a key frame (once: it is then asked for).
    pub fn take_key_frame_wanted(&self) -> bool {
        self.key_frame_wanted.swap(false, Ordering::AcqRel)
    }

    /// A sound packet played: its capture stamp and its Opus packets, one per stream.
    pub fn sound(&self, capture_micros: u64, coded: Vec<Vec<u8>>) {
        self.tx.try_send(Msg::Sound { capture_micros, coded }).ok();
    }

    pub fn presented(&self, frame_number: u64, presented_micros: u64) {
        self.tx.try_send(Msg::Presented { frame_number, presented_micros }).ok();
    }

    pub fn clock(&self, offset_micros: i64) {
        self.tx.try_send(Msg::Clock(offset_micros)).ok();
    }

    /// Saves the replay buffer (the hotkey); the outcome comes back as a notice.
    pub fn save_replay(&self) {
        if self.tx.try_send(Msg::SaveReplay).is_err() {
            tracing::warn!("the recording thread is behind; press the replay hotkey again in a moment");
        }
    }
}

/// A recording under way: its thread, and the tap that feeds it.
pub struct Recording {
    tap: Tap,
    thread: JoinHandle<()>,
    key_frames_every: Option<std::time::Duration>,
    /// What the thread has to say to the player (a replay saved, or why not).
    notices: Receiver<String>,
}

/// Where a recording goes, and what it records.
#[derive(Debug, Clone)]
pub struct Target {
    /// The file (`--record`); `None`: only a replay buffer.
    pub path: Option<PathBuf>,
    /// The replay buffer (`--replay-seconds`).
    pub replay: Option<Replay>,
    pub fps: u16,
    pub audio: Option<AudioFormat>,
    /// Whether a window presents the pictures (then the frame table waits for it).
    pub presents: bool,
}

/// A replay buffer: how much it keeps, and the folder its saves go to.
#[derive(Debug, Clone)]
pub struct Replay {
    pub keep: std::time::Duration,
    pub folder: PathBuf,
}

/// The user's videos folder (XDG's, else ~/Videos), where replays are saved.
pub fn videos_folder() -> PathBuf {
    let user = directories::UserDirs::new();
    let videos = user.as_ref().and_then(|u| u.video_dir().map(Path::to_path_buf));
    videos.or_else(|| user.map(|u| u.home_dir().join("Videos"))).unwrap_or_else(|| PathBuf::from("."))
}

/// Writes `bytes` to a new `kumo-replay-<UTC>.mkv` in `folder` (made if missing), never over
/// another file (a second save in the same second gets `-2`, and so on).
fn write_new(folder: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let stamp = crate::clock::utc_stamp();
    for n in 1..100 {
        let name = if n == 1 { format!("kumo-replay-{stamp}.mkv") } else { format!("kumo-replay-{stamp}-{n}.mkv") };
        let path = folder.join(name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => return file.write_all(bytes).and_then(|()| file.sync_data()).map(|()| path),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a hundred replays saved this second"))
}

/// A path for a sentence (a file or table is only written when its path was given).
fn shown(path: Option<&Path>) -> std::path::Display<'_> {
    path.unwrap_or(Path::new("")).display()
}

/// The frame table's file beside `path`.
pub fn frames_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".frames.csv");
    PathBuf::from(name)
}

impl Recording {
    /// Opens the files and starts the thread; a sentence when a file cannot be made.
    pub fn start(target: Target) -> Result<Self, String> {
        let open = |path: &Path| {
            File::create(path).map_err(|err| {
                format!("cannot record to {}: {err}; streaming goes on without a recording", path.display())
            })
        };
        let audio = target.audio.map(|a| (a.layout, a.packet_frames));
        let key_frames_every = target.replay.as_ref().map(|r| crate::core::record::replay::key_frame_every(r.keep));
        let (file, csv) = match &target.path {
            Some(path) => (Some(open(path)?), Some(std::io::BufWriter::new(open(&frames_path(path))?))),
            None => (None, None),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        // Its own queue, not the session's events: a sender of those held here would keep
        // the session's end from being seen until the recording finished.
        let (notices_tx, notices) = std::sync::mpsc::sync_channel(NOTICES);
        let mut writer = Writer {
            muxer: Muxer::new(target.fps, audio),
            table: FrameTable::new(target.presents),
            file,
            csv,
            path: target.path,
            replay: target.replay.map(|r| (ReplayBuffer::new(r.keep), r.folder)),
            fps: target.fps,
            audio,
            notices: notices_tx,
            waiting_for_idr: false,
            bytes: 0,
            skipped: 0,
        };
        let thread = std::thread::Builder::new()
            .name("kumo-record".into())
            .spawn(move || writer.run(&rx))
            .map_err(|err| format!("cannot start the recording thread: {err}"))?;
        let tap = Tap { tx, gap: Arc::default(), key_frame_wanted: Arc::default() };
        Ok(Self { tap, thread, key_frames_every, notices })
    }

    /// A sentence for the player, if the thread has one (the window shows it).
    pub fn notice(&self) -> Option<String> {
        self.notices.try_recv().ok()
    }

    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// How often the session must ask the host for an IDR: a replay buffer needs starting
    /// points, which kumo's host sends only when asked (`None`: no replay buffer).
    pub fn key_frames_every(&self) -> Option<std::time::Duration> {
        self.key_frames_every
    }

    /// Ends the recording once everything queued so far is written (the decode and audio
    /// threads have ended): the last clusters, the duration, the last lines.
    pub fn finish(self) {
        // Blocking: the queue is drained by a thread that only writes files.
        self.tap.tx.send(Msg::Finish).ok();
        self.thread.join().ok();
    }
}

struct Writer {
    muxer: Muxer,
    table: FrameTable,
    /// `None` once a write failed (said once).
    file: Option<File>,
    csv: Option<std::io::BufWriter<File>>,
    /// The file asked for (`None`: only a replay buffer); the frame table is beside it.
    path: Option<PathBuf>,
    /// The replay buffer and the folder its saves go to.
    replay: Option<(ReplayBuffer, PathBuf)>,
    fps: u16,
    audio: Option<(crate::core::audio::SpeakerLayout, u16)>,
    notices: SyncSender<String>,
    waiting_for_idr: bool,
    bytes: u64,
    /// Pictures left out while waiting for an IDR after a gap.
    skipped: u64,
}

impl Writer {
    fn run(&mut self, rx: &Receiver<Msg>) {
        let mut last_flush = std::time::Instant::now();
        for msg in rx {
            match msg {
                Msg::Picture(p, after_gap) => self.picture(&p, after_gap),
                Msg::Sound { capture_micros, coded } => {
                    if let Some((replay, _)) = &mut self.replay {
                        replay.sound(capture_micros, &coded);
                    }
                    if self.file.is_some() {
                        self.muxer.audio(capture_micros, &coded);
                    }
                }
                Msg::SaveReplay => self.save_replay(),
                Msg::Presented { frame_number, presented_micros } => {
                    self.table.presented(frame_number, presented_micros);
                }
                Msg::Clock(offset) => self.table.clock(offset),
                Msg::Finish => break,
            }
            self.write_out();
            if last_flush.elapsed() >= std::time::Duration::from_secs(1) {
                last_flush = std::time::Instant::now();
                if let Some(csv) = &mut self.csv
                    && let Err(err) = csv.flush()
                {
                    self.csv_failed(&err);
                }
            }
        }
        self.end();
    }

    fn picture(&mut self, p: &Picture, after_gap: bool) {
        let key = p.kind == FrameKind::Idr;
        if after_gap {
            tracing::warn!("the recording fell behind and left out a picture; it goes on from the next key frame");
            self.waiting_for_idr = true;
        }
        // After a picture left out, nothing decodes until the next IDR: the file and the
        // replay buffer both wait for it.
        let continues = !self.waiting_for_idr || key;
        if continues {
            self.waiting_for_idr = false;
        } else {
            self.skipped += 1;
        }
        let frame =
            VideoFrame { capture_micros: p.capture_micros, key, width: p.width, height: p.height, annexb: &p.annexb };
        if continues && let Some((replay, _)) = &mut self.replay {
            replay.picture(frame);
        }
        let recorded = continues && self.file.is_some() && self.muxer.video(frame) == Taken::Kept;
        self.table.decoded(Decoded {
            frame_number: p.frame_number,
            kind: p.kind,
            capture_micros: p.capture_micros,
            received_micros: p.received_micros,
            decoded_micros: p.decoded_micros,
            recorded,
        });
    }

    /// Appends what is ready to both files.
    fn write_out(&mut self) {
        let bytes = self.muxer.take_output();
        if !bytes.is_empty()
            && let Some(file) = &mut self.file
        {
            // One write for a whole cluster: a process killed between two leaves a whole file.
            match file.write_all(&bytes) {
                Ok(()) => self.bytes += bytes.len() as u64,
                Err(err) => {
                    tracing::warn!(
                        "could not write the recording to {}: {err}; streaming goes on, the recording stops here",
                        shown(self.path.as_deref())
                    );
                    self.file = None;
                }
            }
        }
        let text = self.table.take_text();
        if !text.is_empty()
            && let Some(csv) = &mut self.csv
            && let Err(err) = csv.write_all(text.as_bytes())
        {
            self.csv_failed(&err);
        }
    }

    fn csv_failed(&mut self, err: &std::io::Error) {
        tracing::warn!(
            "could not write the frame times to {}: {err}; streaming goes on without them",
            shown(self.path.as_deref().map(frames_path).as_deref())
        );
        self.csv = None;
    }

    /// Writes the replay buffer to a new file in the videos folder, and says how it went.
    fn save_replay(&mut self) {
        let Some((replay, folder)) = &self.replay else {
            self.notices.try_send(NO_REPLAY.into()).ok();
            return;
        };
        let notice = match replay.save(self.fps, self.audio) {
            None => "Nothing to save yet: the replay buffer starts at the stream's first key frame".to_owned(),
            Some(saved) => {
                // Written on a thread of its own: hundreds of MB must not hold up this one's
                // queue (the stream's pictures keep coming).
                let (folder, notices) = (folder.clone(), self.notices.clone());
                let spawned = std::thread::Builder::new().name("kumo-replay-save".into()).spawn(move || {
                    let notice = match write_new(&folder, &saved.file) {
                        Ok(path) => format!("Saved {:.0} s to {}", saved.span.as_secs_f64(), path.display()),
                        Err(err) => format!("Could not save the replay to {}: {err}", folder.display()),
                    };
                    tracing::info!("{notice}");
                    notices.try_send(notice).ok();
                });
                match spawned {
                    Ok(_) => return,
                    Err(err) => format!("Could not save the replay: {err}"),
                }
            }
        };
        tracing::info!("{notice}");
        self.notices.try_send(notice).ok();
    }

    /// The last clusters, the duration over the room kept for it, the last lines.
    fn end(&mut self) {
        let (tail, patch) = self.muxer.finish();
        if let Some(mut file) = self.file.take() {
            let written = file.write_all(&tail).and_then(|()| {
                if let Some((at, bytes)) = &patch {
                    file.seek(SeekFrom::Start(*at))?;
                    file.write_all(bytes)?;
                }
                file.sync_data()
            });
            match written {
                Ok(()) => self.bytes += tail.len() as u64,
                Err(err) => tracing::warn!("could not finish the recording {}: {err}", shown(self.path.as_deref())),
            }
        }
        let text = self.table.finish();
        if let Some(mut csv) = self.csv.take()
            && let Err(err) = csv.write_all(text.as_bytes()).and_then(|()| csv.flush())
        {
            self.csv_failed(&err);
        }
        self.say(self.muxer.counts());
    }

    fn say(&self, c: Counts) {
        let Some(path) = &self.path else { return };
        if !self.muxer.started() {
            tracing::warn!("nothing was recorded to {}: no key frame arrived", path.display());
            return;
        }
        let mut left_out = Vec::new();
        if c.late > 0 {
            left_out.push(format!("{} late", c.late));
        }
        if self.skipped > 0 {
            left_out.push(format!("{} pictures while it caught up", self.skipped));
        }
        let left_out = if left_out.is_empty() { String::new() } else { format!("; left out: {}", left_out.join(", ")) };
        tracing::info!(
            "recorded {} pictures and {} sound packets ({:.1} MB) to {}{left_out}; frame times in {}",
            c.video_frames,
            c.audio_packets,
            self.bytes as f64 / 1e6,
            path.display(),
            frames_path(path).display(),
        );
    }
}

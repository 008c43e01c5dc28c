//! The quinn shell shared by host and client: transport tuning, control-stream messages and
//! per-frame streams.
//!
//! Owns how kumo's messages map onto QUIC: one bidirectional control stream per session, one
//! unidirectional stream per video frame, one bidirectional stream per copied text
//! (`clipboard`; see ARCHITECTURE.md for why). It holds no session
//! policy; the host and client modules decide what to send.

pub mod clipboard;
pub mod discovery;
pub mod files;
pub mod pair;
pub mod probe;
pub mod relay;
pub mod tls;
pub mod trust;

use crate::core::video::assemble::{AssembleError, Frame};
use crate::core::video::fec::{self, Recovery, RecoveryError};
use crate::core::video::pacing::DeliveryFloor;
use crate::core::wire::Parity;
use crate::core::wire::parity::{MIN_SHARD_LEN, PARITY_HEADER_LEN};
use crate::core::wire::{Control, PROTOCOL_VERSION, RejectReason, WireError};
use quinn::{RecvStream, SendStream, TransportConfig, VarInt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Application close codes.
pub mod close {
    use quinn::VarInt;
    pub const FINISHED: VarInt = VarInt::from_u32(0);
    pub const VERSION_MISMATCH: VarInt = VarInt::from_u32(1);
    pub const BUSY: VarInt = VarInt::from_u32(2);
    pub const PROTOCOL_ERROR: VarInt = VarInt::from_u32(3);
    pub const HOST_SHUTDOWN: VarInt = VarInt::from_u32(4);
    /// The client reconnected on a new connection, which took this session over.
    pub const SUPERSEDED: VarInt = VarInt::from_u32(5);
    /// The host refused the client: not paired, or revoked.
    pub const NOT_PAIRED: VarInt = VarInt::from_u32(6);
    /// A pairing run ended without pairing.
    pub const PAIRING_FAILED: VarInt = VarInt::from_u32(7);
}

/// The local address a client binds to reach `remote`: any port, on the wildcard address of
/// the remote's family.
pub fn any_port_for(remote: std::net::SocketAddr) -> std::net::SocketAddr {
    if remote.is_ipv6() {
        std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    } else {
        std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    }
}

/// Stream reset code for a frame stream the receiver gave up on.
pub const STREAM_REJECTED: VarInt = VarInt::from_u32(1);
/// Stop code for a frame stream the receiver rebuilt from parity: delivered, the rest is not
/// needed (and its retransmissions are not sent).
pub const STREAM_RECOVERED: VarInt = VarInt::from_u32(2);

#[derive(Debug, Error)]
pub enum NetError {
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("sending failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("receiving failed: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("receiving failed: {0}")]
    ReadExact(#[from] quinn::ReadExactError),
    #[error("the peer sent a malformed message: {0}")]
    Wire(#[from] WireError),
    #[error("the peer sent a malformed frame: {0}")]
    Frame(#[from] AssembleError),
    #[error("the peer sent a malformed frame stream: {0}")]
    Stream(#[from] RecoveryError),
    #[error("the stream was already closed")]
    Closed(#[from] quinn::ClosedStream),
    #[error("the decode thread stopped (the log above says why)")]
    DecoderGone,
    #[error("the encoder stopped (the log above says why)")]
    EncoderGone,
    #[error("the peer stopped reading its control stream ({0} messages waiting for it)")]
    PeerNotReading(usize),
    #[error("the control stream can no longer be written (the connection is closing)")]
    ControlStreamGone,
}

/// Later packets acknowledged before an earlier one counts as lost.
const REORDER_PACKETS: u32 = 100;

/// The client's transport settings: what it lets the host send it (every frame on a stream
/// of its own, so many streams with room for a 2160p key frame each).
pub fn transport() -> Arc<TransportConfig> {
    Arc::new(tuned())
}

/// What a host lets any peer send it: two two-way streams (the control stream, and a copied
/// text's), no one-way streams, and small windows. It applies from the first packet, before
/// the host knows who is calling, so a caller that sends and never reads holds at most about
/// 200 KiB of the host's memory (the connection's window bounds both streams together;
/// `core::session::admission` bounds how many callers may). An admitted session needs
/// no more: a client sends the host only control messages (a few a second) and input
/// datagrams, which the session reads as they come; the frames flow the other way, within the
/// client's windows.
pub fn host_transport() -> Arc<TransportConfig> {
    let mut t = tuned();
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    // The control stream, and one copied text at a time (`Capabilities::CLIPBOARD`; a host
    // without it never accepts the second, which then holds at most its window).
    t.max_concurrent_bidi_streams(VarInt::from_u32(2));
    t.stream_receive_window(VarInt::from_u32(HOST_STREAM_WINDOW));
    t.receive_window(VarInt::from_u32(HOST_STREAM_WINDOW));
    t.datagram_receive_buffer_size(Some(HOST_DATAGRAM_BUFFER));
    Arc::new(t)
}

/// The most a peer may have sent the host on its control stream and not yet had read: many
/// times the largest control message (a `PairRequest`, under 1.2 KiB).
const HOST_STREAM_WINDOW: u32 = 64 * 1024;
/// Datagrams a host keeps unread: about 1 000 input datagrams, more than a second of the
/// fastest mouse.
const HOST_DATAGRAM_BUFFER: usize = 64 * 1024;

/// Settings both ends share.
fn tuned() -> TransportConfig {
    let mut t = TransportConfig::default();
    // Frames in flight at once: a few hundred ms of 60 fps video; more means the link is
    // hopelessly behind and waiting longer would only add latency.
    t.max_concurrent_uni_streams(VarInt::from_u32(64));
    t.max_concurrent_bidi_streams(VarInt::from_u32(4));
    // One 2160p IDR (~2.5 MB) must fit a stream's window, and several frames the connection's.
    t.stream_receive_window(VarInt::from_u32(8 * 1024 * 1024));
    t.receive_window(VarInt::from_u32(32 * 1024 * 1024));
    t.send_window(32 * 1024 * 1024);
    // Notice a vanished peer within seconds, not the 30 s default.
    t.keep_alive_interval(Some(Duration::from_secs(1)));
    t.max_idle_timeout(Some(quinn::IdleTimeout::from(VarInt::from_u32(10_000))));
    // Reordering is not loss. A video frame is a burst of packets, and a path with a few
    // milliseconds of jitter reorders tens of them; QUIC's default of declaring a packet lost
    // once 3 later ones are acknowledged then turns jitter into spurious losses, and each
    // halves the congestion window, until the stream starves. Loss is detected by time
    // instead (RFC 9002's time threshold, 9/8 of the RTT), which jitter does not trip.
    t.packet_threshold(REORDER_PACKETS);
    // BBR paces by the measured delivery rate and round trip instead of halving on every
    // loss: with Cubic, 20 ms of delay and 1 ms of jitter through the relay cut 60 fps to
    // a few frames a second; with BBR the stream holds (docs/latency-lab.md).
    // Wrapped so that BBR's ProbeRTT cannot starve the stream (`FlooredBbr`).
    t.congestion_controller_factory(Arc::new(FlooredBbrConfig::default()));
    t
}

/// Builds [`FlooredBbr`] controllers.
#[derive(Debug, Default)]
pub struct FlooredBbrConfig {
    bbr: Arc<quinn::congestion::BbrConfig>,
}

impl quinn::congestion::ControllerFactory for FlooredBbrConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn quinn::congestion::Controller> {
        let inner = self.bbr.clone().build(now, current_mtu);
        Box::new(FlooredBbr {
            inner,
            epoch: now,
            latest: Duration::ZERO,
            floor: DeliveryFloor::new(),
            min_rtt: Duration::ZERO,
        })
    }
}

/// quinn's BBR with a floor under its window: never less than twice what the stream was
/// delivered per round trip at its busiest in the last 2 s (`core::video::pacing::DeliveryFloor`,
/// which says why). Everything else is BBR's.
///
/// It reads no clock: quinn passes the time to every callback but `window`, so the floor is
/// taken at the latest time quinn passed (a packet sent or acknowledged, at most a packet's
/// gap ago while the stream flows), and a simulation on a virtual clock drives it exactly.
pub struct FlooredBbr {
    inner: Box<dyn quinn::congestion::Controller>,
    epoch: Instant,
    /// The latest time quinn passed to a callback, since `epoch`.
    latest: Duration,
    floor: DeliveryFloor,
    min_rtt: Duration,
}

impl FlooredBbr {
    /// Keeps the latest time quinn passed (times only move forward).
    fn saw(&mut self, now: Instant) {
        self.latest = self.latest.max(now.saturating_duration_since(self.epoch));
    }
}

impl quinn::congestion::Controller for FlooredBbr {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.saw(now);
        self.inner.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(&mut self, now: Instant, sent: Instant, bytes: u64, app_limited: bool, rtt: &quinn_proto::RttEstimator) {
        self.saw(now);
        self.floor.on_acked(self.latest, bytes);
        self.min_rtt = rtt.min();
        self.inner.on_ack(now, sent, bytes, app_limited, rtt);
    }

    fn on_end_acks(&mut self, now: Instant, in_flight: u64, app_limited: bool, largest_acked: Option<u64>) {
        self.saw(now);
        self.inner.on_end_acks(now, in_flight, app_limited, largest_acked);
    }

    fn on_congestion_event(&mut self, now: Instant, sent: Instant, is_persistent_congestion: bool, lost_bytes: u64) {
        self.saw(now);
        self.inner.on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        self.inner.window().max(self.floor.bytes(self.latest, self.min_rtt))
    }

    fn metrics(&self) -> quinn::congestion::ControllerMetrics {
        let mut metrics = self.inner.metrics();
        metrics.congestion_window = self.window();
        metrics
    }

    fn clone_box(&self) -> Box<dyn quinn::congestion::Controller> {
        Box::new(Self {
            inner: self.inner.clone_box(),
            epoch: self.epoch,
            latest: self.latest,
            floor: self.floor.clone(),
            min_rtt: self.min_rtt,
        })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window()
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

pub async fn write_control(send: &mut SendStream, msg: &Control) -> Result<(), NetError> {
    let mut buf = Vec::with_capacity(64);
    msg.encode(&mut buf);
    send.write_all(&buf).await?;
    Ok(())
}

/// Reads one control message. Not cancel-safe: run it in a task of its own, not in a
/// `select!` arm.
pub async fn read_control(recv: &mut RecvStream) -> Result<Control, NetError> {
    let mut prefix = [0u8; 2];
    recv.read_exact(&mut prefix).await?;
    let len = Control::body_len(prefix)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(Control::decode_body(&body)?)
}

/// Sends one frame on a new unidirectional stream. Older frames get higher priority: the
/// decoder needs frames in order (each P-frame refers to the one before), so a retransmission
/// of a frame that lost a packet must go out before the newer frames queued behind it, not
/// wait for them (newer-first starved a repair behind 8 frames at 1080p, and every loss became
/// an IDR). With a `parity_share` over 0 the stream's parity follows as datagrams
/// ([`send_parity`]). Returns the finished stream, so the caller can wait for its
/// acknowledgement.
pub async fn send_frame(conn: &quinn::Connection, frame: &Frame, parity_share: f64) -> Result<SendStream, NetError> {
    let mut send = conn.open_uni().await?;
    // Wraps after 2^31 frames (over a year at 60 fps); priorities only order frames in flight.
    send.set_priority(-((frame.header.frame_number & 0x7fff_ffff) as i32))?;
    let mut bytes = Vec::with_capacity(crate::core::wire::SENT_FRAME_HEADER_LEN + frame.payload.len());
    frame.header.encode(&mut bytes);
    bytes.extend_from_slice(&frame.payload);
    send.write_all(&bytes).await?;
    send.finish()?;
    if parity_share > 0.0 {
        // Milliseconds for a large frame (`kumo bench`): off the async workers.
        let (conn, stream) = (conn.clone(), send.id().index());
        tokio::task::spawn_blocking(move || send_parity(&conn, stream, &bytes, parity_share)).await.ok();
    }
    Ok(send)
}

/// Sends the parity of one frame stream's `bytes` as datagrams (`core::video::fec`), `share` of each
/// block. Parity that does not fit (datagrams off, or a path whose datagrams are too small for
/// a useful shard) is not sent: the stream delivers on its own. Costs under 0.1 ms for a
/// 1080p inter frame at a 29 % share and about 0.1 ms for a 200 KB IDR on this project's
/// 2-core machine (`kumo bench`, "forward error correction").
pub fn send_parity(conn: &quinn::Connection, stream: u64, bytes: &[u8], share: f64) {
    let Some(max) = conn.max_datagram_size() else { return };
    let shard_len = fec::shard_len_for(bytes.len(), max.saturating_sub(PARITY_HEADER_LEN));
    if shard_len < MIN_SHARD_LEN {
        return;
    }
    for parity in fec::protect(stream, bytes, shard_len, |k| fec::parity_for(share, k)) {
        if conn.send_datagram(parity.encode().into()).is_err() {
            return;
        }
    }
}

/// Streams whose parity datagrams are kept at once, and their bytes in all: the frames in
/// flight (64 streams at most) and a margin for parity that outran its stream.
const PARITY_STREAMS: usize = 128;
const PARITY_BYTES: usize = 8 * 1024 * 1024;

/// Parity datagrams on their way to their frame streams' readers. A datagram may arrive
/// before its stream is accepted; it waits here until the reader takes it, and one that comes
/// after its stream was read is dropped. Bounded: past [`PARITY_STREAMS`] streams the oldest
/// stream's slot goes, and past [`PARITY_BYTES`] new parity is dropped (a frame without parity
/// still arrives by its stream).
#[derive(Debug, Default)]
pub struct ParityTable {
    inner: std::sync::Mutex<ParitySlots>,
}

#[derive(Debug, Default)]
struct ParitySlots {
    slots: std::collections::BTreeMap<u64, ParitySlot>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct ParitySlot {
    parity: Vec<Parity>,
    ready: Arc<tokio::sync::Notify>,
    /// The stream is done with: parity that comes later is dropped.
    done: bool,
}

/// Shard bytes held by `parity`, which the table counts against [`PARITY_BYTES`].
fn parity_bytes(parity: &[Parity]) -> usize {
    parity.iter().map(|p| p.bytes.len()).sum()
}

impl ParitySlots {
    fn slot(&mut self, stream: u64) -> &mut ParitySlot {
        while self.slots.len() >= PARITY_STREAMS && !self.slots.contains_key(&stream) {
            let Some((_, old)) = self.slots.pop_first() else { break };
            self.bytes -= parity_bytes(&old.parity);
        }
        self.slots.entry(stream).or_default()
    }
}

impl ParityTable {
    /// A parity datagram from the host.
    pub fn insert(&self, parity: Parity) {
        let mut t = self.lock();
        if t.bytes + parity.bytes.len() > PARITY_BYTES {
            return;
        }
        let len = parity.bytes.len();
        // Older than every stream kept, with no room: too late to help any frame.
        let full = t.slots.len() >= PARITY_STREAMS && !t.slots.contains_key(&parity.stream);
        if full && t.slots.first_key_value().is_some_and(|(&oldest, _)| parity.stream < oldest) {
            return;
        }
        let slot = t.slot(parity.stream);
        if slot.done {
            return;
        }
        slot.parity.push(parity);
        slot.ready.notify_one();
        t.bytes += len;
    }

    /// Notified whenever parity for `stream` arrives.
    fn watch(&self, stream: u64) -> Arc<tokio::sync::Notify> {
        self.lock().slot(stream).ready.clone()
    }

    /// The parity for `stream` that arrived since the last call.
    fn take(&self, stream: u64) -> Vec<Parity> {
        let mut t = self.lock();
        let taken = t.slots.get_mut(&stream).map(|s| std::mem::take(&mut s.parity)).unwrap_or_default();
        t.bytes -= parity_bytes(&taken);
        taken
    }

    /// The stream is done with: its parity goes, and parity that comes later is dropped (the
    /// slot itself goes with the oldest).
    fn finish(&self, stream: u64) {
        let mut t = self.lock();
        if let Some(slot) = t.slots.get_mut(&stream) {
            let freed = parity_bytes(&std::mem::take(&mut slot.parity));
            slot.done = true;
            t.bytes -= freed;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ParitySlots> {
        // Nothing panics while holding it; a poisoned table is still consistent.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A frame off its stream, and how many of its data shards parity rebuilt (0: all arrived).
#[derive(Debug)]
pub struct Received {
    pub frame: Frame,
    pub rebuilt_shards: usize,
}

/// Reads one frame stream, out of order, until it ends or its parity rebuilds what did not
/// arrive (then the stream is stopped: its retransmissions are not needed).
pub async fn receive_frame(mut recv: RecvStream, parity: &ParityTable) -> Result<Received, NetError> {
    let stream = recv.id().index();
    let ready = parity.watch(stream);
    let result = read_frame(&mut recv, stream, parity, &ready).await;
    parity.finish(stream);
    match &result {
        Ok(received) if received.rebuilt_shards > 0 => {
            recv.stop(STREAM_RECOVERED).ok();
        }
        Ok(_) => {}
        Err(_) => {
            recv.stop(STREAM_REJECTED).ok();
        }
    }
    result
}

async fn read_frame(
    recv: &mut RecvStream,
    stream: u64,
    parity: &ParityTable,
    ready: &tokio::sync::Notify,
) -> Result<Received, NetError> {
    let mut recovery = Recovery::new();
    loop {
        tokio::select! {
            chunk = recv.read_chunk(usize::MAX, false) => match chunk? {
                Some(chunk) => recovery.on_chunk(chunk.offset, &chunk.bytes)?,
                None => return Ok(Received { frame: recovery.finish()?, rebuilt_shards: 0 }),
            },
            () = ready.notified() => {
                for p in parity.take(stream) {
                    if let Err(err) = recovery.on_parity(p) {
                        tracing::debug!(stream, "ignoring a parity datagram: {err}");
                    }
                }
            }
        }
        if let Some((frame, rebuilt_shards)) = recovery.try_recover().transpose()? {
            return Ok(Received { frame, rebuilt_shards });
        }
    }
}

/// Reads control messages into `out` until the stream ends or fails (the failure is the last
/// item). Runs as a task of its own because a read is not cancel-safe.
pub async fn read_controls(mut recv: RecvStream, out: tokio::sync::mpsc::Sender<Result<Control, NetError>>) {
    loop {
        let msg = read_control(&mut recv).await;
        let failed = msg.is_err();
        if out.send(msg).await.is_err() || failed {
            return;
        }
    }
}

/// Control messages for the peer, written in order by a task of their own, so that a peer
/// that stops reading (its flow control closes the stream) never stalls the loop that sends
/// them: the queue holds `capacity` messages, and a full queue is the peer's failure to read,
/// which ends the session instead of waiting on it.
pub struct ControlWriter {
    queue: tokio::sync::mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<Result<(), NetError>>,
}

impl ControlWriter {
    pub fn spawn(mut send: SendStream, capacity: usize) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Control>(capacity);
        let task = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                write_control(&mut send, &msg).await?;
            }
            send.finish()?;
            Ok(())
        });
        Self { queue, task }
    }

    /// Queues `msg`.
    pub fn send(&self, msg: Control) -> Result<(), NetError> {
        use tokio::sync::mpsc::error::TrySendError;
        self.queue.try_send(msg).map_err(|err| match err {
            TrySendError::Full(_) => NetError::PeerNotReading(self.queue.max_capacity()),
            TrySendError::Closed(_) => NetError::ControlStreamGone,
        })
    }

    /// Writes what is queued, then finishes the stream; waits `wait` at most (a peer that does
    /// not read gets nothing more).
    pub async fn finish(self, wait: Duration) {
        drop(self.queue);
        let mut task = self.task;
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Refuses a client on its control stream with a `Reject` it can show, then closes with
/// `code` once the client has read it, or after 2 s whatever it does (writing included: a
/// client that does not read cannot hold the host).
pub async fn refuse(
    conn: &quinn::Connection,
    send: &mut SendStream,
    reason: RejectReason,
    message: String,
    code: VarInt,
) -> Result<(), NetError> {
    let reject = Control::Reject { reason, host_version: PROTOCOL_VERSION, message: message.clone() };
    let said = async {
        write_control(send, &reject).await?;
        send.finish()?;
        // Let the client read the refusal and close.
        conn.closed().await;
        Ok::<_, NetError>(())
    };
    tokio::time::timeout(REFUSAL_WAIT, said).await.ok();
    conn.close(code, message.as_bytes());
    Ok(())
}

/// How long a refusal may take to be read.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    fn parity(stream: u64, index: u8) -> Parity {
        Parity {
            stream,
            stream_len: 5000,
            shard_len: fec::SHARD_LEN as u16,
            block: 0,
            data_shards: 10,
            parity_shards: 8,
            index,
            bytes: vec![index; fec::SHARD_LEN],
        }
    }

    #[test]
    fn the_parity_table_hands_parity_over_once_and_stays_bounded() {
        let table = ParityTable::default();
        // Parity that outran its stream waits for the reader.
        table.insert(parity(5, 0));
        let _ready = table.watch(5);
        table.insert(parity(5, 1));
        assert_eq!(table.take(5).len(), 2);
        assert!(table.take(5).is_empty(), "taken once");
        // After the stream is read, late parity is dropped.
        table.finish(5);
        table.insert(parity(5, 2));
        assert!(table.take(5).is_empty());
        assert_eq!(table.lock().bytes, 0);
        // Parity for many streams that never come: at most PARITY_STREAMS kept, the oldest go,
        // and parity older than everything kept is not let in.
        for stream in 100..400 {
            table.insert(parity(stream, 0));
        }
        let t = table.lock();
        assert_eq!(t.slots.len(), PARITY_STREAMS);
        assert_eq!(t.slots.first_key_value().map(|(&k, _)| k), Some(400 - PARITY_STREAMS as u64));
        assert_eq!(t.bytes, PARITY_STREAMS * fec::SHARD_LEN);
        drop(t);
        table.insert(parity(7, 0));
        assert!(!table.lock().slots.contains_key(&7), "too old to help any frame");
    }
}

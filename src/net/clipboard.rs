//! The shared clipboard's link, the same on either side: text copied on this side's display goes
//! to the peer, and the peer's goes to this side's display, each copy on a QUIC stream of its
//! own (`core::wire::clipboard`: a head and the text, at the lowest priority, so a megabyte
//! never holds up a press or a frame). What may cross, and when, is `core::clipboard`'s: UTF-8
//! up to 1 MiB, and only a change, so the two sides never echo a text back and forth and
//! nothing travels while nothing changes. The display's selection is `crate::clipboard`'s
//! thread. The texts are never logged; their lengths are, at debug level.
//!
//! One task of the network runtime; a session that moves to a new connection hands it over
//! ([`ClipboardLink::reconnected`]), and the task ends when the link is dropped.

use crate::clipboard::{Copied, X11Clipboard};
use crate::core::clipboard::SharedClipboard;
use crate::core::wire::clipboard::{ClipboardHead, HEAD_LEN};
use quinn::{Connection, RecvStream, VarInt};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often the display's thread is asked what it read.
const POLL: Duration = Duration::from_millis(25);
/// How long the peer may take to deliver one text.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Texts read from the peer, waiting for the display, at most (full: the reader waits).
const INCOMING: usize = 2;
/// The stream's error code when a newer copy replaces one still on its way.
const REPLACED: VarInt = VarInt::from_u32(1);
/// The stream's priority: below the control stream and the frames (0).
const PRIORITY: i32 = -1;

/// The running link; dropping it ends it.
pub struct ClipboardLink {
    conn: watch::Sender<Connection>,
    task: tokio::task::JoinHandle<()>,
}

impl ClipboardLink {
    /// Links `x11` (this side's display) with the peer over `conn`; `peer` names the other
    /// side in log lines ("host", "client").
    pub fn spawn(conn: Connection, x11: X11Clipboard, peer: &'static str) -> Self {
        let (tx, rx) = watch::channel(conn);
        Self { conn: tx, task: tokio::spawn(run(rx, x11, peer)) }
    }

    /// The session goes on over `conn` (a reconnect).
    pub fn reconnected(&self, conn: Connection) {
        self.conn.send_replace(conn);
    }
}

impl Drop for ClipboardLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(mut conns: watch::Receiver<Connection>, x11: X11Clipboard, peer: &'static str) {
    let mut memory = SharedClipboard::default();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The newest copy's number: a copy still being sent when a newer one comes is cut off.
    let (newest, _) = watch::channel(0u64);
    let (incoming_tx, mut incoming) = mpsc::channel(INCOMING);
    let mut conn = conns.borrow_and_update().clone();
    let mut acceptor = tokio::spawn(accept(conn.clone(), incoming_tx.clone()));
    loop {
        tokio::select! {
            _ = poll.tick() => {
                while let Some(copied) = x11.copied() {
                    match copied {
                        Copied::Text(bytes) => match memory.copied_here(&bytes) {
                            Ok(Some(text)) => {
                                let number = *newest.borrow() + 1;
                                newest.send_replace(number);
                                tracing::debug!(bytes = text.len(), "sending a copied text to the {peer}");
                                tokio::spawn(send(conn.clone(), text.as_bytes().to_vec(), number, newest.subscribe()));
                            }
                            Ok(None) => {}
                            Err(refused) => tracing::info!("{refused}: it stays on this side"),
                        },
                        Copied::TooLarge(len) => tracing::info!(
                            "a copied text of more than {len} bytes is over the shared clipboard's {} bytes: it stays on this side",
                            crate::core::clipboard::MAX_BYTES
                        ),
                        Copied::Nothing => {}
                    }
                }
            }
            Some(bytes) = incoming.recv() => match memory.from_peer(&bytes) {
                Ok(text) => {
                    tracing::debug!(bytes = text.len(), "the {peer} copied a text");
                    x11.set(text);
                }
                Err(refused) => tracing::info!("refused a text the {peer} copied: {refused}"),
            },
            changed = conns.changed() => {
                if changed.is_err() {
                    break;
                }
                acceptor.abort();
                conn = conns.borrow_and_update().clone();
                acceptor = tokio::spawn(accept(conn.clone(), incoming_tx.clone()));
            }
        }
    }
    acceptor.abort();
}

/// Sends one copied text on a stream of its own; cut off when copy `number` is no longer the
/// newest.
async fn send(conn: Connection, text: Vec<u8>, number: u64, mut newest: watch::Receiver<u64>) {
    // Opening waits for the peer's stream credit: a newer copy, or the connection's end,
    // ends the wait.
    let mut stream = tokio::select! {
        opened = conn.open_bi() => match opened {
            Ok((stream, _)) => stream,
            Err(_) => return,
        },
        _ = newest.wait_for(|&n| n != number) => return,
    };
    stream.set_priority(PRIORITY).ok();
    let head = ClipboardHead { len: text.len() as u32 }.encode();
    let write = async {
        stream.write_all(&head).await?;
        stream.write_all(&text).await?;
        stream.finish()?;
        Ok::<_, anyhow::Error>(())
    };
    tokio::select! {
        written = write => {
            if let Err(err) = written {
                tracing::debug!("a copied text was not sent: {err}");
            }
        }
        _ = newest.wait_for(|&n| n != number) => {
            stream.reset(REPLACED).ok();
        }
    }
}

/// Reads the peer's texts, one stream after another, until the connection ends.
async fn accept(conn: Connection, out: mpsc::Sender<Vec<u8>>) {
    while let Ok((_, recv)) = conn.accept_bi().await {
        match tokio::time::timeout(READ_TIMEOUT, read_text(recv)).await {
            Ok(Ok(text)) => {
                if out.send(text).await.is_err() {
                    return;
                }
            }
            Ok(Err(Unread::Refused(why))) => tracing::info!("refused a text the peer copied: {why}"),
            // Cut off by a newer copy, or the connection going: nothing to say.
            Ok(Err(Unread::Stream(why))) => tracing::debug!("a copied text did not arrive: {why}"),
            Err(_) => tracing::info!("a text the peer copied took over {READ_TIMEOUT:?} to arrive: dropped"),
        }
    }
}

/// Why a stream gave no text.
enum Unread {
    /// Its head was refused (too large, or a kind this build does not know).
    Refused(String),
    /// It ended early or was cut off.
    Stream(String),
}

/// One stream's text: its head, then exactly the length it gave (capped before anything is
/// allocated).
async fn read_text(mut recv: RecvStream) -> Result<Vec<u8>, Unread> {
    let mut head = [0; HEAD_LEN];
    recv.read_exact(&mut head).await.map_err(|e| Unread::Stream(e.to_string()))?;
    let head = ClipboardHead::decode(&head).map_err(|e| Unread::Refused(e.to_string()))?;
    let mut text = vec![0; head.len as usize];
    recv.read_exact(&mut text).await.map_err(|e| Unread::Stream(e.to_string()))?;
    Ok(text)
}

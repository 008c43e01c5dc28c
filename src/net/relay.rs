//! The project's UDP relay, for the latency lab and the robustness tests: sits between a
//! client and a host and impairs the path (delay, jitter, loss, reordering, rate, scheduled
//! changes such as a blackout) with `core::sim::impair`, seeded so a run can be repeated.
//!
//! One tokio task owns both sockets: the front one (the client talks to it as if it were the
//! host) and the back one (connected to the host). Each direction has its own impairer; held
//! packets wait in one queue ordered by release time, at most `MAX_HELD` of them (beyond that
//! a packet is dropped, as a router's full queue would).

use crate::core::sim::impair::{Impairer, Impairment};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Packets held for later release, at most (about 25 MB of full-size packets).
const MAX_HELD: usize = 20_000;

/// A running relay; dropping it stops it.
pub struct Relay {
    /// Where the client should connect.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    release: Duration,
    order: u64,
    to_host: bool,
    bytes: Vec<u8>,
}

/// Starts a relay on `listen` (port 0: any) in front of `host`. Must run inside a tokio
/// runtime.
pub async fn start(listen: SocketAddr, host: SocketAddr, impairment: Impairment) -> std::io::Result<Relay> {
    let front = UdpSocket::bind(listen).await?;
    let back_bind: SocketAddr = if host.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }
        .map_err(|e| std::io::Error::other(format!("{e}")))?;
    let back = UdpSocket::bind(back_bind).await?;
    back.connect(host).await?;
    let addr = front.local_addr()?;
    let task = tokio::spawn(run(front, back, impairment));
    Ok(Relay { addr, task })
}

async fn run(front: UdpSocket, back: UdpSocket, impairment: Impairment) {
    let start = tokio::time::Instant::now();
    let mut down = Impairer::new(Impairment { seed: impairment.seed.wrapping_add(1), ..impairment.clone() });
    let mut up = Impairer::new(impairment);
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut client: Option<SocketAddr> = None;
    let (mut a, mut b) = (vec![0u8; 65_536], vec![0u8; 65_536]);
    let mut order = 0u64;
    loop {
        let next = held.peek().map(|h| start + h.0.release);
        tokio::select! {
            Ok((n, from)) = front.recv_from(&mut a) => {
                client = Some(from);
                if let Some(release) = up.on_packet(start.elapsed(), n) && held.len() < MAX_HELD {
                    order += 1;
                    held.push(Reverse(Held { release, order, to_host: true, bytes: a[..n].to_vec() }));
                }
            }
            Ok(n) = back.recv(&mut b) => {
                if let Some(release) = down.on_packet(start.elapsed(), n) && held.len() < MAX_HELD {
                    order += 1;
                    held.push(Reverse(Held { release, order, to_host: false, bytes: b[..n].to_vec() }));
                }
            }
            () = tokio::time::sleep_until(next.unwrap_or(start + Duration::from_hours(1))), if next.is_some() => {}
        }
        while let Some(Reverse(h)) = held.peek()
            && start + h.release <= tokio::time::Instant::now()
        {
            let Some(Reverse(h)) = held.pop() else { break };
            if h.to_host {
                back.send(&h.bytes).await.ok();
            } else if let Some(to) = client {
                front.send_to(&h.bytes, to).await.ok();
            }
        }
    }
}

//! LAN discovery over multicast DNS: `kumo host` answers questions for `_kumo._udp.local`,
//! and `kumo list` asks and collects the answers (the message format is `core::mdns`).
//!
//! The host's responder shares UDP port 5353 with any other mDNS responder on the machine
//! (avahi): both set `SO_REUSEADDR` and `SO_REUSEPORT` and each gets its own copy of every multicast
//! question. kumo asks from a port of its own, so by RFC 6762 §6.7 ("legacy unicast") hosts
//! answer straight back to that port, and the answer's source address is the host's address.
//! What a host advertises is not trusted: pairing proves a host, and `kumo connect` pins it.

use crate::core::mdns::{self, Advert};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Questions a responder answers per second at most (a flood costs no more than that).
const ANSWERS_PER_SECOND: f64 = 20.0;

/// A host's mDNS responder: answers until dropped.
pub struct Advertiser {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The socket on 5353 a responder listens on, joined to the mDNS group.
fn responder_socket() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, mdns::PORT)).into())?;
    socket.join_multicast_v4(&Ipv4Addr::from(mdns::GROUP_V4), &Ipv4Addr::UNSPECIFIED)?;
    UdpSocket::from_std(socket.into())
}

/// Starts answering for `advert`. Must run inside a tokio runtime. An error means the LAN
/// cannot find this host (clients can still connect by address).
pub fn advertise(advert: Advert) -> std::io::Result<Advertiser> {
    let socket = responder_socket()?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        let mut bucket = crate::core::input::TokenBucket::new(ANSWERS_PER_SECOND, ANSWERS_PER_SECOND);
        let start = std::time::Instant::now();
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
            let Some(id) = mdns::asks_for_kumo(&buf[..n]) else { continue };
            if !bucket.take(start.elapsed()) {
                continue;
            }
            // Answer the asker directly (it asked from its own port), or the group if it
            // asked from 5353 as a full responder does.
            let to = if from.port() == mdns::PORT {
                SocketAddr::from((Ipv4Addr::from(mdns::GROUP_V4), mdns::PORT))
            } else {
                from
            };
            if let Err(err) = socket.send_to(&mdns::answer(id, &advert), to).await {
                tracing::debug!(%to, "could not answer an mDNS question: {err}");
            }
        }
    });
    Ok(Advertiser { task })
}

/// A host that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub address: SocketAddr,
    pub advert: Advert,
}

/// Hosts that answer within `wait` (the question is asked three times, 250 ms apart, as
/// multicast is not reliable). Each host once, in the order they answered.
pub async fn browse(wait: Duration) -> std::io::Result<Vec<Found>> {
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await?;
    let group = SocketAddrV4::new(Ipv4Addr::from(mdns::GROUP_V4), mdns::PORT);
    let id = {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (now.subsec_nanos() >> 8) as u16 | 1
    };
    let query = mdns::query(id);
    let deadline = tokio::time::Instant::now() + wait;
    let mut found: Vec<Found> = Vec::new();
    let mut buf = vec![0u8; 9000];
    let mut asked = 0;
    let mut next_ask = tokio::time::Instant::now();
    loop {
        if asked < 3 && tokio::time::Instant::now() >= next_ask {
            socket.send_to(&query, group).await?;
            asked += 1;
            next_ask += Duration::from_millis(250);
        }
        let until = if asked < 3 { next_ask.min(deadline) } else { deadline };
        match tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                let Some(advert) = mdns::read_answer(&buf[..n]) else { continue };
                let address = SocketAddr::new(from.ip(), advert.port);
                if found.len() < 256 && !found.iter().any(|f| f.address == address) {
                    found.push(Found { address, advert });
                }
            }
            Ok(Err(err)) => return Err(err),
            Err(_) if tokio::time::Instant::now() >= deadline => return Ok(found),
            Err(_) => {}
        }
    }
}

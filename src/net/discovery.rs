//! LAN discovery over multicast DNS: `kumo host` answers questions for `_kumo._udp.local`,
//! and `kumo list` asks and collects the answers (the message format is `core::wire::mdns`).
//!
//! The host's responder shares UDP port 5353 with any other mDNS responder on the machine
//! (avahi): both set `SO_REUSEADDR` and `SO_REUSEPORT` and each gets its own copy of every multicast
//! question. kumo asks from a port of its own, so by RFC 6762 §6.7 ("legacy unicast") hosts
//! answer straight back to that port, and the answer's source address is the host's address.
//! What a host advertises is not trusted: pairing proves a host, and `kumo connect` pins it.

use crate::core::wire::mdns::{self, Advert};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Questions a responder answers per second from one address, and from all together; past
/// that a flood costs nothing, and one flooder cannot starve the others.
const ANSWERS_PER_SECOND_EACH: f64 = 5.0;
const ANSWERS_PER_SECOND: f64 = 50.0;
/// Askers remembered for the per-address limit (the oldest is forgotten first).
const ASKERS: usize = 64;

/// Whether to answer a question from `from` for a host listening on `listen`: only from this
/// network's own kind of addresses (mDNS is link-local; an off-link asker is a reflection
/// attempt), and only from this machine when the host listens on loopback only.
fn should_answer(from: std::net::IpAddr, listen: std::net::IpAddr) -> bool {
    if listen.is_loopback() {
        return from.is_loopback();
    }
    match from {
        std::net::IpAddr::V4(ip) => ip.is_private() || ip.is_link_local() || ip.is_loopback(),
        std::net::IpAddr::V6(ip) => ip.is_loopback() || ip.is_unicast_link_local() || ip.is_unique_local(),
    }
}

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

/// Starts answering for `advert`, for a host listening on `listen`. Must run inside a tokio
/// runtime. An error means the LAN cannot find this host (clients can still connect by
/// address).
pub fn advertise(advert: Advert, listen: std::net::IpAddr) -> std::io::Result<Advertiser> {
    use crate::core::rate::TokenBucket;
    let socket = responder_socket()?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        let mut all = TokenBucket::new(ANSWERS_PER_SECOND, ANSWERS_PER_SECOND);
        let mut each: std::collections::VecDeque<(std::net::IpAddr, TokenBucket)> = std::collections::VecDeque::new();
        let start = std::time::Instant::now();
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
            if !should_answer(from.ip(), listen) {
                continue;
            }
            let Some(id) = mdns::asks_for_kumo(&buf[..n]) else { continue };
            let now = start.elapsed();
            let index = each.iter().position(|(ip, _)| *ip == from.ip()).unwrap_or_else(|| {
                if each.len() >= ASKERS {
                    each.pop_front();
                }
                each.push_back((from.ip(), TokenBucket::new(ANSWERS_PER_SECOND_EACH, ANSWERS_PER_SECOND_EACH)));
                each.len() - 1
            });
            let bucket = &mut each[index].1;
            if !bucket.take(now) || !all.take(now) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_askers_are_answered() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let any = ip("0.0.0.0");
        for local in ["192.168.1.5", "10.0.0.9", "172.16.3.4", "169.254.1.1", "127.0.0.1", "fe80::1", "fd00::2"] {
            assert!(should_answer(ip(local), any), "{local}");
        }
        for far in ["8.8.8.8", "203.0.113.9", "2001:db8::1"] {
            assert!(!should_answer(ip(far), any), "{far}");
        }
        // A host on loopback only is not advertised to the network.
        assert!(should_answer(ip("127.0.0.1"), ip("127.0.0.1")));
        assert!(!should_answer(ip("192.168.1.5"), ip("127.0.0.1")));
    }
}

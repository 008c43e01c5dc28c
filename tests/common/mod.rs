//! Helpers shared by the integration tests.

#![allow(clippy::unwrap_used, dead_code)] // test helpers unwrap; not every test uses every helper

use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// A UDP relay that drops every `nth` packet in each direction (deterministic loss).
pub(crate) async fn lossy_relay(host: SocketAddr, nth: u64) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    back.connect(host).await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut client, mut up, mut down) = (None, 0u64, 0u64);
        let (mut a, mut b) = (vec![0u8; 65536], vec![0u8; 65536]);
        loop {
            tokio::select! {
                Ok((n, from)) = front.recv_from(&mut a) => {
                    client = Some(from);
                    up += 1;
                    if up % nth != 0 {
                        back.send(&a[..n]).await.ok();
                    }
                }
                Ok(n) = back.recv(&mut b) => {
                    down += 1;
                    if let Some(to) = client && down % nth != 0 {
                        front.send_to(&b[..n], to).await.ok();
                    }
                }
            }
        }
    });
    addr
}

//! The probe shell: a few QUIC pings to each candidate host, at once, for region choice
//! (`kumo probe`, and `kumo connect` given several hosts). The scoring is `core::probe`.
//!
//! A probe is a QUIC connection whose first control message is a `Ping` instead of a
//! `Hello`: the host answers pings with pongs and never claims its session slot, so probing a
//! busy host measures it without disturbing its player. The host's certificate is checked
//! like a session's (a probe reports a wrong certificate as a failure, never a result).

use crate::core::probe::{Measured, PINGS, ProbeResult};
use crate::core::wire::Control;
use crate::net::tls::{self, Verify};
use crate::net::{self, close};
use quinn::Endpoint;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long one host may take to answer the handshake and all its pings.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Gap between pings, so each goes in its own packet.
const PING_GAP: Duration = Duration::from_millis(20);

/// Probes every candidate at once; the outcomes come back in the candidates' order.
pub async fn probe_all(candidates: &[(SocketAddr, Verify)]) -> Vec<ProbeResult> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, &(addr, verify)) in candidates.iter().enumerate() {
        tasks.spawn(async move { (i, probe(addr, verify).await) });
    }
    let mut outcomes = vec![ProbeResult::Failed("not probed".into()); candidates.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, outcome)) = joined {
            outcomes[i] = outcome;
        }
    }
    outcomes
}

/// Probes one host: handshake, then `PINGS` pings on a control stream.
pub async fn probe(addr: SocketAddr, verify: Verify) -> ProbeResult {
    let endpoint = match Endpoint::client(net::any_port_for(addr)) {
        Ok(e) => e,
        Err(e) => return ProbeResult::Failed(format!("no UDP socket: {e}")),
    };
    let outcome = match tokio::time::timeout(PROBE_TIMEOUT, measure(&endpoint, addr, verify)).await {
        Ok(Ok(m)) => ProbeResult::Answered(m),
        Ok(Err(why)) => ProbeResult::Failed(why),
        Err(_) => ProbeResult::Failed(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    };
    // The connection's close drains outside the measurement, briefly.
    tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await.ok();
    outcome
}

async fn measure(endpoint: &Endpoint, addr: SocketAddr, verify: Verify) -> Result<Measured, String> {
    let (quic, seen) = tls::client_config(verify, None, net::transport()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let conn =
        endpoint.connect_with(quic, addr, "kumo-host").map_err(|e| e.to_string())?.await.map_err(|e| {
            match (verify, seen.get()) {
                (Verify::Pinned(want), Some(got)) if got != want => {
                    format!("its certificate ({got}) is not the pinned one")
                }
                _ => e.to_string(),
            }
        })?;
    let handshake = started.elapsed();
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let mut rtts = Vec::with_capacity(PINGS as usize);
    for id in 0..PINGS {
        let sent = Instant::now();
        let ping = Control::Ping { id, client_micros: crate::clock::now_micros() };
        net::write_control(&mut send, &ping).await.map_err(|e| e.to_string())?;
        match net::read_control(&mut recv).await {
            Ok(Control::Pong { id: got, .. }) if got == id => rtts.push(sent.elapsed()),
            Ok(other) => return Err(format!("it answered a ping with {other:?}: not a kumo host of this version")),
            Err(err) => return Err(format!("it did not answer pings ({err}); it may be an older kumo host")),
        }
        tokio::time::sleep(PING_GAP).await;
    }
    let path = conn.stats().path;
    conn.close(close::FINISHED, b"probe done");
    Ok(Measured { handshake, rtts, packets_sent: path.sent_packets, packets_lost: path.lost_packets })
}

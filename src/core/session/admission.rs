//! The host's door, sans IO: which new connections it lets in before it knows who is calling.
//!
//! Anyone who can reach the host's port can open QUIC connections. Until a connection is
//! admitted (a paired client's `Hello` answered with `Welcome`, a pairing run or a region probe
//! finished), it costs the host memory and a task while proving nothing, so the host bounds
//! those connections: in total, per address, and in time (`ADMISSION_DEADLINE`, kept by the
//! shell). Past a lower mark it asks new callers to prove their address first (a QUIC Retry,
//! which costs the host nothing until they answer), so that a flood of spoofed addresses cannot
//! fill the door. A connection leaves the door when it is admitted or gone; admitted sessions
//! are bounded elsewhere (the host streams to one client at a time).

use crate::trust::{Standing, date, printable};
use crate::wire::{PROTOCOL_VERSION, RejectReason};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// Connections not yet admitted, at most, in total. Each is held to small windows before it is
/// admitted (`net::host_transport`), about 200 KiB at worst, so this bounds the door's memory
/// to a few tens of MB.
pub const MAX_WAITING: usize = 256;
/// Connections not yet admitted from one address, at most. A client needs one (two while it
/// reconnects); a household behind one NAT a few.
pub const MAX_WAITING_PER_ADDRESS: usize = 8;
/// Past this many waiting connections, new callers must first prove their address (QUIC Retry).
pub const RETRY_ABOVE: usize = 32;
/// How long a connection may take from its first packet to being admitted: the handshake, the
/// first message, a pairing run or a region probe, and the host's answer, writes included. A
/// client on any real path needs a few round trips; a pairing run's PIN is typed before it
/// connects.
pub const ADMISSION_DEADLINE: Duration = Duration::from_secs(10);

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// Let it in: it now counts as waiting until [`Doorman::left`].
    Accept,
    /// Ask it to prove its address first (it comes back validated, or not at all).
    Retry,
    /// Turn it away: too many are waiting, in total or from its address.
    Refuse(Crowded),
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crowded {
    Total,
    Address,
}

/// Counts the connections waiting at the door, by address (`A`: the shell's IP address; the
/// core touches no socket type).
#[derive(Debug)]
pub struct Doorman<A> {
    /// Waiting connections by address; an address leaves the map when none of its are waiting,
    /// so the map holds at most `MAX_WAITING` entries.
    by_address: HashMap<A, usize>,
    waiting: usize,
    /// Connections turned away since the host started.
    pub refused: u64,
}

impl<A> Default for Doorman<A> {
    fn default() -> Self {
        Self { by_address: HashMap::new(), waiting: 0, refused: 0 }
    }
}

impl<A: Eq + Hash + Copy> Doorman<A> {
    /// A connection from `from` knocks; `validated`: it already proved its address (it answered
    /// a Retry).
    pub fn knock(&mut self, from: A, validated: bool) -> Door {
        let here = self.by_address.get(&from).copied().unwrap_or(0);
        let door = if self.waiting >= MAX_WAITING {
            Door::Refuse(Crowded::Total)
        } else if here >= MAX_WAITING_PER_ADDRESS {
            Door::Refuse(Crowded::Address)
        } else if self.waiting >= RETRY_ABOVE && !validated {
            Door::Retry
        } else {
            Door::Accept
        };
        match door {
            Door::Accept => {
                self.waiting += 1;
                *self.by_address.entry(from).or_insert(0) += 1;
            }
            Door::Refuse(_) => self.refused += 1,
            Door::Retry => {}
        }
        door
    }

    /// A connection from `from` that was let in is admitted or gone.
    pub fn left(&mut self, from: A) {
        if let Some(n) = self.by_address.get_mut(&from) {
            *n -= 1;
            self.waiting -= 1;
            if *n == 0 {
                self.by_address.remove(&from);
            }
        }
    }

    /// Connections waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting
    }
}

/// What the host knows of a caller's certificate when it says `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The host streams to any client (`--allow-unpaired`).
    Open,
    /// It streams to paired clients only, and this one presented no certificate.
    NoCertificate,
    /// It streams to paired clients only; this is the certificate's standing.
    Standing(Standing),
    /// The list of paired clients could not be read (the shell logs why).
    Unreadable,
}

/// A refusal: its reason on the wire and the sentence the person sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RejectReason,
    pub message: String,
}

/// Whether the host named `host_name` lets a client speaking `client_version`, whose
/// certificate is `trust`, stream; the refusal otherwise. (The session slot and the stream's
/// size are decided after this.)
pub fn admit(client_version: u16, trust: &Trust, host_name: &str) -> Result<(), Refusal> {
    let refuse = |reason, message| Err(Refusal { reason, message });
    if client_version != PROTOCOL_VERSION {
        return refuse(
            RejectReason::VersionMismatch,
            format!(
                "this host speaks kumo protocol v{PROTOCOL_VERSION} and the client v{client_version}; install the same kumo version on both"
            ),
        );
    }
    let pair = "on the host run `kumo host --pair`, then `kumo pair HOST:PORT` on this client";
    match trust {
        Trust::Open | Trust::Standing(Standing::Paired(_)) => Ok(()),
        Trust::NoCertificate => refuse(
            RejectReason::NotPaired,
            format!(
                "this client is not paired with host '{host_name}': it presented no certificate. Update kumo, then {pair}"
            ),
        ),
        Trust::Standing(Standing::Revoked(c)) => refuse(
            RejectReason::Revoked,
            format!(
                "host '{host_name}' revoked this client ('{}') on {}; to use it again, {pair}",
                printable(&c.name),
                date(c.revoked.unwrap_or(0))
            ),
        ),
        Trust::Standing(Standing::Unknown) => {
            refuse(RejectReason::NotPaired, format!("this client is not paired with host '{host_name}': {pair}"))
        }
        Trust::Unreadable => refuse(
            RejectReason::BadRequest,
            format!("host '{host_name}' could not read its paired clients; its log says why"),
        ),
    }
}

/// Why a streaming client may no longer stream, looked at again while it streams: anything
/// but "still paired" ends the session, as the host would refuse the client now.
pub fn no_longer_admitted(trust: &Trust) -> Option<String> {
    Some(match trust {
        Trust::Open | Trust::Standing(Standing::Paired(_)) => return None,
        Trust::Standing(Standing::Revoked(c)) => {
            format!("the host revoked this client ('{}'); pair again to stream", printable(&c.name))
        }
        Trust::Standing(Standing::Unknown) | Trust::NoCertificate => {
            "the host no longer lists this client as paired; pair again to stream".to_owned()
        }
        Trust::Unreadable => "the host could not read its paired clients; its log says why".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::{Fingerprint, PairedClient};

    #[test]
    fn a_hello_is_admitted_by_version_then_by_standing() {
        let client =
            PairedClient { name: "deck\n".into(), fingerprint: Fingerprint([1; 32]), paired: 0, revoked: None };
        let revoked = PairedClient { revoked: Some(86_400), ..client.clone() };
        let paired = Trust::Standing(Standing::Paired(client));
        assert_eq!(admit(PROTOCOL_VERSION, &paired, "den"), Ok(()));
        assert_eq!(admit(PROTOCOL_VERSION, &Trust::Open, "den"), Ok(()));
        let old = admit(PROTOCOL_VERSION - 1, &paired, "den").unwrap_err();
        assert_eq!(old.reason, RejectReason::VersionMismatch);
        assert!(old.message.contains(&format!("v{}", PROTOCOL_VERSION - 1)), "{}", old.message);
        let gone = admit(PROTOCOL_VERSION, &Trust::Standing(Standing::Revoked(revoked.clone())), "den").unwrap_err();
        assert_eq!(gone.reason, RejectReason::Revoked);
        assert!(gone.message.contains("deck\\n") && gone.message.contains("1970-01-02"), "{}", gone.message);
        for (trust, reason) in [
            (Trust::NoCertificate, RejectReason::NotPaired),
            (Trust::Standing(Standing::Unknown), RejectReason::NotPaired),
            (Trust::Unreadable, RejectReason::BadRequest),
        ] {
            let refused = admit(PROTOCOL_VERSION, &trust, "den").unwrap_err();
            assert_eq!(refused.reason, reason);
            assert!(refused.message.contains("den"));
            assert!(no_longer_admitted(&trust).is_some());
        }
        assert_eq!(no_longer_admitted(&paired), None);
        assert!(no_longer_admitted(&Trust::Standing(Standing::Revoked(revoked))).unwrap().contains("revoked"));
    }

    fn ip(n: u32) -> u32 {
        0x0a00_0000 + n
    }

    #[test]
    fn one_address_fills_only_its_own_share() {
        let mut door = Doorman::default();
        for _ in 0..MAX_WAITING_PER_ADDRESS {
            assert_eq!(door.knock(ip(1), false), Door::Accept);
        }
        assert_eq!(door.knock(ip(1), true), Door::Refuse(Crowded::Address));
        assert_eq!(door.knock(ip(2), false), Door::Accept);
        door.left(ip(1));
        assert_eq!(door.knock(ip(1), false), Door::Accept);
        assert_eq!(door.refused, 1);
    }

    #[test]
    fn a_crowd_must_prove_its_addresses_and_then_is_capped() {
        let mut door = Doorman::default();
        for n in 0..RETRY_ABOVE as u32 {
            assert_eq!(door.knock(ip(n), false), Door::Accept);
        }
        // Past the mark: unproven callers are asked to retry, proven ones come in.
        assert_eq!(door.knock(ip(1000), false), Door::Retry);
        assert_eq!(door.waiting(), RETRY_ABOVE);
        for n in RETRY_ABOVE as u32..MAX_WAITING as u32 {
            assert_eq!(door.knock(ip(n), true), Door::Accept);
        }
        assert_eq!(door.knock(ip(5000), true), Door::Refuse(Crowded::Total));
        // Everyone leaving empties the door and its map.
        for n in 0..MAX_WAITING as u32 {
            door.left(ip(n));
        }
        assert_eq!(door.waiting(), 0);
        assert!(door.by_address.is_empty());
        assert_eq!(door.knock(ip(7), false), Door::Accept);
    }

    #[test]
    fn leaving_twice_or_unknown_addresses_count_nothing() {
        let mut door = Doorman::default();
        door.left(ip(3));
        assert_eq!(door.knock(ip(3), false), Door::Accept);
        door.left(ip(3));
        door.left(ip(3));
        assert_eq!(door.waiting(), 0);
    }
}

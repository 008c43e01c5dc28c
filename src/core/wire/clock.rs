//! Clock probes (client → host, the client's send stamp) and their replies (host → client,
//! echoed with the host's receive and send stamps): the four stamps of NTP's on-wire maths.

use crate::clocksync::Probe;
use crate::wire::codec::{Reader, WireError, Writer};
use crate::wire::kind::DatagramKind;

/// Bytes of a probe datagram (client → host): magic, id, `t1`.
pub const PROBE_BYTES: usize = 2 + 4 + 8;
/// Bytes of a reply datagram (host → client): magic, id, `t1`, `t2`, `t3`.
pub const REPLY_BYTES: usize = 2 + 4 + 8 + 8 + 8;

/// A clock probe: the client's send stamp, echoed back by the host with its own two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockProbe {
    pub id: u32,
    pub t1: u64,
}

/// The host's answer to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReply {
    pub id: u32,
    pub t1: u64,
    pub t2: u64,
    pub t3: u64,
}

/// A reader over `bytes` past its magic, if `bytes` is `len` long and starts with `kind`'s.
fn body<'a>(bytes: &'a [u8], kind: DatagramKind, len: usize, what: &'static str) -> Result<Reader<'a>, WireError> {
    let mut r = Reader::new(bytes);
    if bytes.len() != len || r.array()? != kind.magic() {
        return Err(WireError::Invalid(what));
    }
    Ok(r)
}

impl ClockProbe {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(PROBE_BYTES);
        let mut w = Writer(&mut b);
        w.bytes(&DatagramKind::ClockProbe.magic());
        w.u32(self.id);
        w.u64(self.t1);
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = body(bytes, DatagramKind::ClockProbe, PROBE_BYTES, "not a clock probe")?;
        Ok(Self { id: r.u32()?, t1: r.u64()? })
    }
}

impl ClockReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(REPLY_BYTES);
        let mut w = Writer(&mut b);
        w.bytes(&DatagramKind::ClockReply.magic());
        w.u32(self.id);
        for v in [self.t1, self.t2, self.t3] {
            w.u64(v);
        }
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = body(bytes, DatagramKind::ClockReply, REPLY_BYTES, "not a clock reply")?;
        Ok(Self { id: r.u32()?, t1: r.u64()?, t2: r.u64()?, t3: r.u64()? })
    }

    /// The probe's four stamps, with `t4` the client's receive time.
    pub fn probe(&self, t4: u64) -> Probe {
        Probe { t1: self.t1, t2: self.t2, t3: self.t3, t4 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_datagrams_round_trip_and_refuse_junk() {
        let p = ClockProbe { id: 7, t1: 123_456_789 };
        assert_eq!(ClockProbe::decode(&p.encode()), Ok(p));
        let r = ClockReply { id: 7, t1: 1, t2: 2, t3: 3 };
        assert_eq!(ClockReply::decode(&r.encode()), Ok(r));
        assert!(ClockReply::decode(&p.encode()).is_err());
        assert!(ClockProbe::decode(&r.encode()).is_err());
        for n in 0..40 {
            ClockProbe::decode(&vec![b'K'; n]).ok();
            ClockReply::decode(&vec![b'K'; n]).ok();
        }
        assert_eq!(r.probe(9), Probe { t1: 1, t2: 2, t3: 3, t4: 9 });
    }
}

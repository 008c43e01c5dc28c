//! The one table of datagram kinds and their magics: each datagram's first two bytes. The
//! messages write their magic from here, and `datagram` reads every datagram through it.

/// The kinds of datagram, in the order of [`KINDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    /// Client → host: the whole input state.
    Input,
    /// Host → client: the newest input applied.
    InputAck,
    /// Host → client: Opus packets.
    Audio,
    /// Client → host: a clock probe.
    ClockProbe,
    /// Host → client: the probe's answer.
    ClockReply,
    /// Host → client: a parity shard of a frame stream.
    Parity,
    /// Host → client: the last picture sent is still current (behind `Capabilities::STILL`).
    Still,
    /// Client → host: the player's voice (behind `Capabilities::MICROPHONE`).
    Mic,
}

/// Every kind with its magic and its name: the one place the magics are written.
const KINDS: [(DatagramKind, [u8; 2], &str); 8] = [
    (DatagramKind::Input, *b"KI", "input"),
    (DatagramKind::InputAck, *b"KA", "input acknowledgement"),
    (DatagramKind::Audio, *b"KO", "audio"),
    (DatagramKind::ClockProbe, *b"KC", "clock probe"),
    (DatagramKind::ClockReply, *b"KR", "clock reply"),
    (DatagramKind::Parity, *b"KP", "parity"),
    (DatagramKind::Still, *b"KS", "still picture"),
    (DatagramKind::Mic, *b"KV", "microphone"),
];

impl DatagramKind {
    /// The first two bytes of every datagram of this kind.
    pub const fn magic(self) -> [u8; 2] {
        KINDS[self as usize].1
    }

    pub const fn name(self) -> &'static str {
        KINDS[self as usize].2
    }

    /// The kind with this magic, if this build knows one.
    pub fn from_magic(magic: [u8; 2]) -> Option<Self> {
        KINDS.iter().find(|(_, m, _)| *m == magic).map(|(kind, _, _)| *kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_enum_order_and_every_magic_is_distinct() {
        for (i, (kind, magic, _)) in KINDS.iter().enumerate() {
            assert_eq!(*kind as usize, i);
            assert_eq!(kind.magic(), *magic);
            assert_eq!(DatagramKind::from_magic(*magic), Some(*kind));
            assert!(KINDS[..i].iter().all(|(_, m, _)| m != magic), "{magic:?} twice");
        }
    }
}

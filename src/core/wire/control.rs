//! The messages on the bidirectional control stream: the handshake, pairing, recovery requests,
//! pings, presses, rumble and goodbye. Each is framed as `u16 length` + body, the body starting
//! with a one-byte tag; that framing never changes between protocol versions, so a peer of
//! another version can always read a `Hello` or `Reject` and say what is wrong.

use crate::audio::{AudioFormat, SpeakerLayout};
use crate::input::Press;
use crate::view::color::ColorSpace;
use crate::wire::MAX_CONTROL_BYTES;
use crate::wire::codec::{Reader, WireError, Writer};

/// Why a host refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    VersionMismatch,
    Busy,
    BadRequest,
    /// The client's certificate is not among the host's paired clients.
    NotPaired,
    /// The client was paired, and the host's owner revoked it.
    Revoked,
    /// The host is not accepting a pairing now (no PIN offered, expired, used, tries spent).
    PairingClosed,
    /// The client could not prove the PIN.
    WrongPin,
}

impl RejectReason {
    pub(crate) const ALL: [Self; 7] = [
        Self::VersionMismatch,
        Self::Busy,
        Self::BadRequest,
        Self::NotPaired,
        Self::Revoked,
        Self::PairingClosed,
        Self::WrongPin,
    ];

    fn code(self) -> u8 {
        match self {
            Self::VersionMismatch => 1,
            Self::Busy => 2,
            Self::BadRequest => 3,
            Self::NotPaired => 4,
            Self::Revoked => 5,
            Self::PairingClosed => 6,
            Self::WrongPin => 7,
        }
    }

    fn from_code(code: u8) -> Result<Self, WireError> {
        Self::ALL.into_iter().find(|r| r.code() == code).ok_or(WireError::UnknownCode { what: "reject reason", code })
    }
}

/// The SPAKE2 message of a pairing run (a side byte and a curve point).
pub const PAKE_MESSAGE_LEN: usize = 33;
/// A pairing run's key-confirmation tag (HMAC-SHA-256).
pub const PAIR_TAG_LEN: usize = 32;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoodbyeReason {
    /// The user or the time limit ended it.
    Finished,
    /// The host is shutting down.
    HostShutdown,
    /// The peer broke the protocol.
    ProtocolError,
    /// The host's owner revoked this client's pairing.
    Revoked,
}

/// What a peer can do beyond its major version's baseline: one bit a feature, announced by both
/// sides in the handshake (`Hello`, `Welcome`). A session uses a feature only when both announce
/// it, so a feature that touches the wire never breaks an older peer of the same major version;
/// bits this build does not know are kept as sent and never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Capabilities(u64);

impl Capabilities {
    pub const NONE: Self = Self(0);
    /// Skips control messages and datagrams of kinds it does not know, counting them, instead
    /// of ending the session: a peer may send this one newer kinds.
    pub const SKIPS_UNKNOWN: Self = Self(1 << 0);
    /// A client: knows that pictures may carry no frame markers. A host, in `Welcome`: this
    /// session's pictures are a real program's and carry none (an older client only counts
    /// them as marker mismatches).
    pub const UNMARKED_PICTURES: Self = Self(1 << 1);
    /// A client: reads `Still` datagrams. A host, in `Welcome`: sends no new picture while its
    /// display shows the same one, but a `Still` every 100 ms (an older client would show
    /// "no new picture", so a host without the client's bit encodes every slot instead).
    pub const STILL: Self = Self(1 << 2);
    /// Computes and reads parity datagrams with reed-solomon-simd's code (GF(2^16)). Builds
    /// before it used a code of kumo's own over GF(2^8): the same datagram, other bytes. A host
    /// sends a client without this bit no parity (QUIC's retransmission still repairs every
    /// loss), and a client ignores parity from a host without it.
    pub const PARITY_RS16: Self = Self(1 << 3);
    /// A client: decodes a stream whose picture size and rate change mid-session (each new
    /// size starts with an IDR carrying its parameter sets). A host: steps the size and rate
    /// down the ladder (`core::video::ladder`) when the path is too narrow for them; it never
    /// changes the size for a client without this bit.
    pub const ADAPTS_SIZE: Self = Self(1 << 4);
    /// Shares copied text both ways (`core::clipboard`): each copy travels on a stream of its
    /// own (`core::wire::clipboard`), opened only when both sides announce this. A client
    /// announces it when it has a display to share with and the player did not turn it off; a
    /// host, for a desktop session its operator did not turn it off for.
    pub const CLIPBOARD: Self = Self(1 << 5);
    /// A client: sends the player's voice (`MicPacket` datagrams, `--mic`). A host: plays it
    /// into a virtual microphone the session's programs can record from. Sent only when both
    /// announce it; a client announces it only when asked to, a host unless told not to.
    pub const MICROPHONE: Self = Self(1 << 6);
    /// Everything this build can do (a host adds `UNMARKED_PICTURES` and `STILL` for a
    /// desktop session).
    pub const THIS_BUILD: Self = Self(
        Self::SKIPS_UNKNOWN.0
            | Self::UNMARKED_PICTURES.0
            | Self::STILL.0
            | Self::PARITY_RS16.0
            | Self::ADAPTS_SIZE.0
            | Self::CLIPBOARD.0
            | Self::MICROPHONE.0,
    );
    /// What a host announces for the synthetic scene.
    pub const HOST_SCENE: Self = Self(Self::SKIPS_UNKNOWN.0 | Self::PARITY_RS16.0 | Self::ADAPTS_SIZE.0);

    pub const fn bits(self) -> u64 {
        self.0
    }

    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// Whether every feature of `other` is here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// What both sides can do: what a session uses.
    #[must_use]
    pub const fn both(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// These features without those of `other`.
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Reads the field a message may end with: absent (a build before capabilities) is none.
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        if r.remaining() == 0 {
            return Ok(Self::NONE);
        }
        Ok(Self(r.u64()?))
    }
}

/// What the client asks for in its `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    pub width: u16,
    pub height: u16,
    pub fps: u16,
    pub bitrate_kbps: u32,
    /// Largest picture the client can decode and show.
    pub max_width: u16,
    pub max_height: u16,
    pub client_name: String,
    /// Speakers the client's output device has (2, 6 or 8); 0 asks for no audio.
    pub audio_channels: u8,
    /// The `resume_token` of the session this client lost and is reconnecting to (0: a new
    /// session). A host still holding that session hands it over instead of saying busy.
    pub resume_token: u64,
    /// What this client can do beyond the major version's baseline (none from a build that
    /// predates capabilities: the field is then absent and reads as empty).
    pub capabilities: Capabilities,
    /// Where the bitrate starts, kbit/s, when the client adapts it and climbs to
    /// `bitrate_kbps` from lower (0: start at `bitrate_kbps`; absent from older builds). The
    /// host builds its encoder for `bitrate_kbps`, the most a target may be, and makes its
    /// first frames at this.
    pub start_kbps: u32,
}

/// What the host agreed to stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub version: u16,
    pub width: u16,
    pub height: u16,
    pub fps: u16,
    pub bitrate_kbps: u32,
    pub host_name: String,
    /// The colour space the host encodes in.
    pub color: ColorSpace,
    /// The audio stream, if any.
    pub audio: Option<AudioFormat>,
    /// A random number naming this session: a client reconnecting after a network fault
    /// presents it in its `Hello` to take the session over.
    pub resume_token: u64,
    /// What this host can do beyond the major version's baseline; the session uses what
    /// both sides announce.
    pub capabilities: Capabilities,
}

#[cfg(test)]
impl Welcome {
    /// A small welcome of this version, for the sessions' unit tests.
    pub(crate) fn sample() -> Self {
        Self {
            version: crate::wire::PROTOCOL_VERSION,
            width: 64,
            height: 64,
            fps: 30,
            bitrate_kbps: 1000,
            host_name: "h".into(),
            color: ColorSpace::HOST_DEFAULT,
            audio: None,
            resume_token: 1,
            capabilities: Capabilities::NONE,
        }
    }
}

/// A message on the bidirectional control stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Hello(Hello),
    Welcome(Welcome),
    Reject {
        reason: RejectReason,
        host_version: u16,
        message: String,
    },
    /// The client lost a reference: the host's next frame should be an IDR.
    RequestIdr {
        last_good_frame: u64,
    },
    SetBitrate {
        bitrate_kbps: u32,
    },
    Ping {
        id: u32,
        client_micros: u64,
    },
    Pong {
        id: u32,
        client_micros: u64,
        host_micros: u64,
    },
    Goodbye {
        reason: GoodbyeReason,
        message: String,
    },
    /// Client → host, reliable and ordered: keys and buttons going down or up, so a tap is
    /// never lost between two input datagrams (at most `Press::MAX_PER_MESSAGE`).
    Presses(Vec<Press>),
    /// Host → client: rumble the pad in `pad`'s slot (motors 0..=65535) for `duration_ms`.
    Rumble {
        pad: u8,
        strong: u16,
        weak: u16,
        duration_ms: u16,
    },
    /// Client → host, instead of `Hello`: start pairing with the PIN the host shows (SPAKE2's
    /// first message, never the PIN itself).
    PairRequest {
        version: u16,
        client_name: String,
        pake: [u8; PAKE_MESSAGE_LEN],
    },
    /// Host → client: SPAKE2's answer.
    PairChallenge {
        host_name: String,
        pake: [u8; PAKE_MESSAGE_LEN],
    },
    /// Client → host: proof that the client derived the same key (so knew the PIN).
    PairConfirm {
        tag: [u8; PAIR_TAG_LEN],
    },
    /// Host → client: the host's proof, sent after it stored the client as paired.
    Paired {
        tag: [u8; PAIR_TAG_LEN],
    },
    /// Client → host: the decoder holds long-term reference `frame_num` of the IDR period
    /// `idr_pic_id`, so a recovery may refer to it.
    LtrAck {
        idr_pic_id: u16,
        frame_num: u32,
    },
    /// A message of a kind this build does not know (a newer peer's): its body is skipped, and
    /// the receiver counts it and goes on. Encoded, it is its tag alone.
    Unknown {
        tag: u8,
    },
    /// Client → host: frames after `last_good_frame` were lost; send a frame that refers only
    /// to a confirmed long-term reference of IDR period `idr_pic_id` (cheaper than an IDR).
    RecoverLtr {
        idr_pic_id: u16,
        last_good_frame: u64,
    },
}

pub(crate) mod tag {
    pub(crate) const HELLO: u8 = 1;
    pub(crate) const WELCOME: u8 = 2;
    pub(crate) const REJECT: u8 = 3;
    pub(crate) const REQUEST_IDR: u8 = 4;
    pub(crate) const SET_BITRATE: u8 = 5;
    pub(crate) const PING: u8 = 6;
    pub(crate) const PONG: u8 = 7;
    pub(crate) const GOODBYE: u8 = 8;
    pub(crate) const RUMBLE: u8 = 9;
    pub(crate) const PRESSES: u8 = 10;
    pub(crate) const PAIR_REQUEST: u8 = 11;
    pub(crate) const PAIR_CHALLENGE: u8 = 12;
    pub(crate) const PAIR_CONFIRM: u8 = 13;
    pub(crate) const PAIRED: u8 = 14;
    pub(crate) const LTR_ACK: u8 = 15;
    pub(crate) const RECOVER_LTR: u8 = 16;
}

impl Control {
    /// Appends the message, with its `u16` length prefix, to `out`.
    #[expect(clippy::too_many_lines, reason = "one short arm per message")]
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut w = Writer(out);
        match self {
            Self::Hello(h) => {
                w.u8(tag::HELLO);
                w.u16(h.version);
                w.u16(h.width);
                w.u16(h.height);
                w.u16(h.fps);
                w.u32(h.bitrate_kbps);
                w.u16(h.max_width);
                w.u16(h.max_height);
                w.text(&h.client_name);
                w.u8(h.audio_channels);
                w.u64(h.resume_token);
                w.u64(h.capabilities.bits());
                w.u32(h.start_kbps);
            }
            Self::Welcome(h) => {
                w.u8(tag::WELCOME);
                w.u16(h.version);
                w.u16(h.width);
                w.u16(h.height);
                w.u16(h.fps);
                w.u32(h.bitrate_kbps);
                w.text(&h.host_name);
                w.u8(h.color.to_code());
                match h.audio {
                    None => w.u8(0),
                    Some(a) => {
                        w.u8(a.layout.channels());
                        w.u16(a.packet_frames);
                        w.u16(a.bitrate_kbps);
                        w.u8(u8::from(a.redundancy));
                    }
                }
                w.u64(h.resume_token);
                w.u64(h.capabilities.bits());
            }
            Self::Reject { reason, host_version, message } => {
                w.u8(tag::REJECT);
                w.u8(reason.code());
                w.u16(*host_version);
                w.text(message);
            }
            Self::RequestIdr { last_good_frame } => {
                w.u8(tag::REQUEST_IDR);
                w.u64(*last_good_frame);
            }
            Self::SetBitrate { bitrate_kbps } => {
                w.u8(tag::SET_BITRATE);
                w.u32(*bitrate_kbps);
            }
            Self::Ping { id, client_micros } => {
                w.u8(tag::PING);
                w.u32(*id);
                w.u64(*client_micros);
            }
            Self::Pong { id, client_micros, host_micros } => {
                w.u8(tag::PONG);
                w.u32(*id);
                w.u64(*client_micros);
                w.u64(*host_micros);
            }
            Self::Presses(presses) => {
                w.u8(tag::PRESSES);
                let n = presses.len().min(Press::MAX_PER_MESSAGE);
                w.u8(n as u8);
                for p in &presses[..n] {
                    w.u8(p.device);
                    w.u8(p.code);
                    w.u8(u8::from(p.down));
                }
            }
            Self::Rumble { pad, strong, weak, duration_ms } => {
                w.u8(tag::RUMBLE);
                w.u8(*pad);
                w.u16(*strong);
                w.u16(*weak);
                w.u16(*duration_ms);
            }
            Self::PairRequest { version, client_name, pake } => {
                w.u8(tag::PAIR_REQUEST);
                w.u16(*version);
                w.text(client_name);
                w.bytes(pake);
            }
            Self::PairChallenge { host_name, pake } => {
                w.u8(tag::PAIR_CHALLENGE);
                w.text(host_name);
                w.bytes(pake);
            }
            Self::PairConfirm { tag } => {
                w.u8(tag::PAIR_CONFIRM);
                w.bytes(tag);
            }
            Self::Paired { tag } => {
                w.u8(tag::PAIRED);
                w.bytes(tag);
            }
            Self::LtrAck { idr_pic_id, frame_num } => {
                w.u8(tag::LTR_ACK);
                w.u16(*idr_pic_id);
                w.u32(*frame_num);
            }
            Self::RecoverLtr { idr_pic_id, last_good_frame } => {
                w.u8(tag::RECOVER_LTR);
                w.u16(*idr_pic_id);
                w.u64(*last_good_frame);
            }
            Self::Unknown { tag } => w.u8(*tag),
            Self::Goodbye { reason, message } => {
                w.u8(tag::GOODBYE);
                w.u8(match reason {
                    GoodbyeReason::Finished => 0,
                    GoodbyeReason::HostShutdown => 1,
                    GoodbyeReason::ProtocolError => 2,
                    GoodbyeReason::Revoked => 3,
                });
                w.text(message);
            }
        }
        // Every variant is a few integers plus one text capped at MAX_TEXT_BYTES, so the
        // body always fits a u16.
        let body_len = (out.len() - start - 2) as u16;
        out[start..start + 2].copy_from_slice(&body_len.to_le_bytes());
    }

    /// Reads the body length from a 2-byte prefix, rejecting oversized bodies.
    pub fn body_len(prefix: [u8; 2]) -> Result<usize, WireError> {
        let len = u16::from_le_bytes(prefix) as usize;
        if len == 0 {
            return Err(WireError::Empty);
        }
        if len > MAX_CONTROL_BYTES {
            return Err(WireError::TooLarge { what: "control message", len, max: MAX_CONTROL_BYTES });
        }
        Ok(len)
    }

    /// Decodes a message body (without its length prefix). Bytes after the known fields are
    /// ignored, so a later version may append fields.
    pub fn decode_body(body: &[u8]) -> Result<Self, WireError> {
        if body.len() > MAX_CONTROL_BYTES {
            return Err(WireError::TooLarge { what: "control message", len: body.len(), max: MAX_CONTROL_BYTES });
        }
        let mut r = Reader::new(body);
        let msg = match r.u8().map_err(|_| WireError::Empty)? {
            tag::HELLO => Self::Hello(Hello {
                version: r.u16()?,
                width: r.u16()?,
                height: r.u16()?,
                fps: r.u16()?,
                bitrate_kbps: r.u32()?,
                max_width: r.u16()?,
                max_height: r.u16()?,
                client_name: r.text()?,
                audio_channels: r.u8()?,
                resume_token: r.u64()?,
                capabilities: Capabilities::read(&mut r)?,
                start_kbps: if r.remaining() == 0 { 0 } else { r.u32()? },
            }),
            tag::WELCOME => Self::Welcome(Welcome {
                version: r.u16()?,
                width: r.u16()?,
                height: r.u16()?,
                fps: r.u16()?,
                bitrate_kbps: r.u32()?,
                host_name: r.text()?,
                color: {
                    let code = r.u8()?;
                    ColorSpace::from_code(code).ok_or(WireError::UnknownCode { what: "colour space", code })?
                },
                audio: read_audio_format(&mut r)?,
                resume_token: r.u64()?,
                capabilities: Capabilities::read(&mut r)?,
            }),
            tag::REJECT => {
                let reason = RejectReason::from_code(r.u8()?)?;
                Self::Reject { reason, host_version: r.u16()?, message: r.text()? }
            }
            tag::REQUEST_IDR => Self::RequestIdr { last_good_frame: r.u64()? },
            tag::SET_BITRATE => Self::SetBitrate { bitrate_kbps: r.u32()? },
            tag::PING => Self::Ping { id: r.u32()?, client_micros: r.u64()? },
            tag::PAIR_REQUEST => Self::PairRequest { version: r.u16()?, client_name: r.text()?, pake: r.array()? },
            tag::PAIR_CHALLENGE => Self::PairChallenge { host_name: r.text()?, pake: r.array()? },
            tag::PAIR_CONFIRM => Self::PairConfirm { tag: r.array()? },
            tag::PAIRED => Self::Paired { tag: r.array()? },
            tag::LTR_ACK => Self::LtrAck { idr_pic_id: r.u16()?, frame_num: r.u32()? },
            tag::RECOVER_LTR => Self::RecoverLtr { idr_pic_id: r.u16()?, last_good_frame: r.u64()? },
            tag::PONG => Self::Pong { id: r.u32()?, client_micros: r.u64()?, host_micros: r.u64()? },
            tag::PRESSES => {
                let n = usize::from(r.u8()?);
                if n > Press::MAX_PER_MESSAGE {
                    return Err(WireError::TooLarge { what: "press list", len: n, max: Press::MAX_PER_MESSAGE });
                }
                let mut presses = Vec::with_capacity(n);
                for _ in 0..n {
                    let (device, code) = (r.u8()?, r.u8()?);
                    let down = match r.u8()? {
                        0 => false,
                        1 => true,
                        code => return Err(WireError::UnknownCode { what: "press state", code }),
                    };
                    let press = Press { device, code, down };
                    if !press.is_valid() {
                        return Err(WireError::Invalid("press device or button"));
                    }
                    presses.push(press);
                }
                Self::Presses(presses)
            }
            tag::RUMBLE => Self::Rumble { pad: r.u8()?, strong: r.u16()?, weak: r.u16()?, duration_ms: r.u16()? },
            tag::GOODBYE => {
                let reason = match r.u8()? {
                    0 => GoodbyeReason::Finished,
                    1 => GoodbyeReason::HostShutdown,
                    2 => GoodbyeReason::ProtocolError,
                    3 => GoodbyeReason::Revoked,
                    code => return Err(WireError::UnknownCode { what: "goodbye reason", code }),
                };
                Self::Goodbye { reason, message: r.text()? }
            }
            tag => Self::Unknown { tag },
        };
        Ok(msg)
    }
}

fn read_audio_format(r: &mut Reader<'_>) -> Result<Option<AudioFormat>, WireError> {
    let code = r.u8()?;
    if code == 0 {
        return Ok(None);
    }
    let layout = SpeakerLayout::from_channels(code).ok_or(WireError::UnknownCode { what: "audio layout", code })?;
    let packet_frames = r.u16()?;
    if !(48..=2880).contains(&packet_frames) {
        return Err(WireError::Invalid("audio packet length"));
    }
    let bitrate_kbps = r.u16()?;
    let redundancy = match r.u8()? {
        0 => false,
        1 => true,
        code => return Err(WireError::UnknownCode { what: "audio redundancy flag", code }),
    };
    Ok(Some(AudioFormat { layout, packet_frames, bitrate_kbps, redundancy }))
}

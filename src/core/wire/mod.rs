//! kumo's wire format: the header in front of every video frame and the messages on the
//! control stream.
//!
//! Owns byte layout and validation only. It must not read clocks, touch sockets or trust any
//! length it reads: every field is bounds-checked, every string and payload length is capped
//! before anything is allocated, and decoding returns an error instead of panicking.
//!
//! All integers are little-endian. Control messages are framed as `u16 length` + body, the
//! body starting with a one-byte tag; that framing never changes between protocol versions,
//! so a peer of another version can always read a `Hello` or `Reject` and say what is wrong.

pub mod mdns;

use crate::core::audio::{AudioFormat, Layout};
use crate::core::input::Press;
use crate::core::view::color::ColorSpace;
use thiserror::Error;

/// Version of the protocol this build speaks. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u16 = 5;

/// ALPN identifier. It carries no version on purpose: a version mismatch must reach the
/// handshake, where it gets a clear message, instead of failing inside TLS.
pub const ALPN: &[u8] = b"kumo";

/// Bytes of the fixed part of a frame header: the least a decoder accepts.
pub const FRAME_HEADER_LEN: usize = 48;

/// Bytes of the header this build sends: the fixed part and the `host_behind` extension.
/// (Version 5 decoders that predate the extension skip it; a header without it reads as 0.)
pub const SENT_FRAME_HEADER_LEN: usize = FRAME_HEADER_LEN + 4;

/// Longest header a later protocol version may send (extra bytes are skipped).
pub const MAX_FRAME_HEADER_LEN: usize = 256;

/// Largest encoded frame accepted: a 3840×2160 IDR at 150 Mbit/s is about 2.5 MB
/// (openh264 output measured at 2160p), so 16 MiB leaves room without letting a peer
/// make us hold hundreds of megabytes.
pub const MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024;

/// Largest control message body. Every control message is a handful of integers and at
/// most one short text.
pub const MAX_CONTROL_BYTES: usize = 4096;

/// Longest text field (names, reasons) in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

const FRAME_MAGIC: [u8; 2] = *b"KF";

/// Why bytes from a peer could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("message truncated: needed {needed} more bytes")]
    Truncated { needed: usize },
    #[error("not a kumo frame header (bad magic)")]
    BadMagic,
    #[error("frame header from protocol version {got}, this build speaks version {PROTOCOL_VERSION}")]
    UnsupportedVersion { got: u16 },
    #[error("frame header length {got} is outside {FRAME_HEADER_LEN}..={MAX_FRAME_HEADER_LEN}")]
    BadHeaderLength { got: usize },
    #[error("unknown frame kind {0}")]
    UnknownFrameKind(u8),
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("unknown control message tag {0}")]
    UnknownTag(u8),
    #[error("unknown {what} code {code}")]
    UnknownCode { what: &'static str, code: u8 },
    #[error("text field is not valid UTF-8")]
    BadText,
    #[error("empty control message")]
    Empty,
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Whether a frame can be decoded on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Instantaneous decoder refresh: decodable without any earlier frame.
    Idr,
    /// Predicted from earlier frames.
    Inter,
    /// Predicted only from a long-term reference the client confirmed: decodable after
    /// frames before it were lost (the host's answer to `RecoverLtr`).
    Recovery,
}

impl FrameKind {
    fn code(self) -> u8 {
        match self {
            Self::Idr => 0,
            Self::Inter => 1,
            Self::Recovery => 2,
        }
    }

    fn from_code(code: u8) -> Result<Self, WireError> {
        match code {
            0 => Ok(Self::Idr),
            1 => Ok(Self::Inter),
            2 => Ok(Self::Recovery),
            other => Err(WireError::UnknownFrameKind(other)),
        }
    }
}

/// Header in front of each encoded frame on its own unidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Host's frame counter: consecutive, starting at 0 for a session.
    pub frame_number: u64,
    /// When the host captured the picture, on the host clock, in microseconds.
    pub capture_micros: u64,
    /// How long the host's encoder took for this frame.
    pub encode_micros: u32,
    pub kind: FrameKind,
    pub width: u16,
    pub height: u16,
    /// Length of the H.264 access unit that follows the header.
    pub payload_len: u32,
    /// The newest input sequence number the host had applied when it captured this frame
    /// (0: none yet). The latency lab pairs inputs with the frames that show them.
    pub input_seq: u64,
    /// Capture slots the host skipped just before this frame because the path had no room
    /// (its send window was full): congestion the client's bitrate controller must answer.
    /// A reserved field (0) before; hosts that do not pace send 0.
    pub held_back: u32,
    /// Capture slots the host has skipped so far in this session because it fell behind
    /// its own schedule (its encoder or its machine was too slow), a running total: the
    /// host's share of a freeze, which the client keeps apart from the path's. An
    /// extension after the fixed part; 0 from a host that does not send it.
    pub host_behind: u32,
}

impl FrameHeader {
    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.bytes(&FRAME_MAGIC);
        w.u16(PROTOCOL_VERSION);
        w.u8(self.kind.code());
        w.u8(0); // flags, reserved
        w.u16(SENT_FRAME_HEADER_LEN as u16);
        w.u64(self.frame_number);
        w.u64(self.capture_micros);
        w.u32(self.encode_micros);
        w.u16(self.width);
        w.u16(self.height);
        w.u32(self.payload_len);
        w.u32(self.held_back);
        w.u64(self.input_seq);
        w.u32(self.host_behind);
    }

    /// Length of the whole header (fixed part plus any extension), read from its first
    /// bytes. Needs at least 8 bytes.
    pub fn peek_len(bytes: &[u8]) -> Result<usize, WireError> {
        let mut r = Reader::new(bytes);
        if r.take(2)? != FRAME_MAGIC {
            return Err(WireError::BadMagic);
        }
        let version = r.u16()?;
        if version != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion { got: version });
        }
        r.u8()?;
        r.u8()?;
        let len = r.u16()? as usize;
        if !(FRAME_HEADER_LEN..=MAX_FRAME_HEADER_LEN).contains(&len) {
            return Err(WireError::BadHeaderLength { got: len });
        }
        Ok(len)
    }

    /// Decodes a header from the start of `bytes`; returns it and the header's full length.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), WireError> {
        let len = Self::peek_len(bytes)?;
        if bytes.len() < len {
            return Err(WireError::Truncated { needed: len - bytes.len() });
        }
        let mut r = Reader::new(&bytes[4..]);
        let kind = FrameKind::from_code(r.u8()?)?;
        r.u8()?; // flags
        r.u16()?; // header length, checked above
        let mut header = Self {
            frame_number: r.u64()?,
            capture_micros: r.u64()?,
            encode_micros: r.u32()?,
            kind,
            width: r.u16()?,
            height: r.u16()?,
            payload_len: r.u32()?,
            held_back: r.u32()?,
            input_seq: r.u64()?,
            host_behind: 0,
        };
        // Extensions: present when the header is long enough, skipped when unknown.
        if len >= SENT_FRAME_HEADER_LEN {
            header.host_behind = r.u32()?;
        }
        if header.payload_len > MAX_FRAME_BYTES {
            return Err(WireError::TooLarge {
                what: "frame payload",
                len: header.payload_len as usize,
                max: MAX_FRAME_BYTES as usize,
            });
        }
        Ok((header, len))
    }
}

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
    const ALL: [Self; 7] = [
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
    /// Client → host: frames after `last_good_frame` were lost; send a frame that refers only
    /// to a confirmed long-term reference of IDR period `idr_pic_id` (cheaper than an IDR).
    RecoverLtr {
        idr_pic_id: u16,
        last_good_frame: u64,
    },
}

mod tag {
    pub(super) const HELLO: u8 = 1;
    pub(super) const WELCOME: u8 = 2;
    pub(super) const REJECT: u8 = 3;
    pub(super) const REQUEST_IDR: u8 = 4;
    pub(super) const SET_BITRATE: u8 = 5;
    pub(super) const PING: u8 = 6;
    pub(super) const PONG: u8 = 7;
    pub(super) const GOODBYE: u8 = 8;
    pub(super) const RUMBLE: u8 = 9;
    pub(super) const PRESSES: u8 = 10;
    pub(super) const PAIR_REQUEST: u8 = 11;
    pub(super) const PAIR_CHALLENGE: u8 = 12;
    pub(super) const PAIR_CONFIRM: u8 = 13;
    pub(super) const PAIRED: u8 = 14;
    pub(super) const LTR_ACK: u8 = 15;
    pub(super) const RECOVER_LTR: u8 = 16;
}

impl Control {
    /// Appends the message, with its `u16` length prefix, to `out`.
    #[allow(clippy::too_many_lines)] // one short arm per message
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
            other => return Err(WireError::UnknownTag(other)),
        };
        Ok(msg)
    }
}

fn read_audio_format(r: &mut Reader<'_>) -> Result<Option<AudioFormat>, WireError> {
    let code = r.u8()?;
    if code == 0 {
        return Ok(None);
    }
    let layout = Layout::from_channels(code).ok_or(WireError::UnknownCode { what: "audio layout", code })?;
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

/// Little-endian writer over a growable buffer.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Writes a `u16` length and the text, cut at a character boundary to `MAX_TEXT_BYTES`.
    fn text(&mut self, s: &str) {
        let mut end = s.len().min(MAX_TEXT_BYTES);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.bytes(&s.as_bytes()[..end]);
    }
}

/// Bounds-checked little-endian reader.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated { needed: n - self.rest.len() });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn text(&mut self) -> Result<String, WireError> {
        let len = self.u16()? as usize;
        if len > MAX_TEXT_BYTES {
            return Err(WireError::TooLarge { what: "text field", len, max: MAX_TEXT_BYTES });
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| WireError::BadText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header_strategy() -> impl Strategy<Value = FrameHeader> {
        (any::<u64>(), any::<u64>(), any::<u32>(), any::<bool>(), any::<u16>(), any::<u16>(), 0..=MAX_FRAME_BYTES)
            .prop_map(|(frame_number, capture_micros, encode_micros, idr, width, height, payload_len)| FrameHeader {
                frame_number,
                capture_micros,
                encode_micros,
                kind: if idr {
                    FrameKind::Idr
                } else if frame_number % 3 == 0 {
                    FrameKind::Recovery
                } else {
                    FrameKind::Inter
                },
                width,
                height,
                payload_len,
                input_seq: frame_number.rotate_left(7),
                held_back: encode_micros.rotate_left(11),
                host_behind: payload_len.rotate_left(5),
            })
    }

    fn control_strategy() -> impl Strategy<Value = Control> {
        let text = "\\PC{0,40}";
        prop_oneof![
            (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u16>(), any::<u16>(), text)
                .prop_map(|(version, width, height, fps, bitrate_kbps, max_width, max_height, client_name)| {
                    Control::Hello(Hello {
                        version,
                        width,
                        height,
                        fps,
                        bitrate_kbps,
                        max_width,
                        max_height,
                        audio_channels: (client_name.len() % 9) as u8,
                        resume_token: u64::from(bitrate_kbps).rotate_left(17),
                        client_name,
                    })
                }),
            (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>(), text, 0..4usize).prop_map(
                |(version, width, height, fps, bitrate_kbps, host_name, c)| {
                    let color = ColorSpace::ALL[c];
                    let layout = [Layout::Stereo, Layout::Surround51, Layout::Surround71][c % 3];
                    let audio = (c != 3).then_some(AudioFormat {
                        layout,
                        packet_frames: 240 * (1 + c as u16),
                        bitrate_kbps: bitrate_kbps as u16,
                        redundancy: c == 1,
                    });
                    let resume_token = u64::from(bitrate_kbps) << 20 | c as u64;
                    Control::Welcome(Welcome {
                        version,
                        width,
                        height,
                        fps,
                        bitrate_kbps,
                        host_name,
                        color,
                        audio,
                        resume_token,
                    })
                }
            ),
            (0..7u8, any::<u16>(), text).prop_map(|(r, host_version, message)| Control::Reject {
                reason: RejectReason::ALL[r as usize],
                host_version,
                message
            }),
            any::<u64>().prop_map(|last_good_frame| Control::RequestIdr { last_good_frame }),
            (any::<u16>(), text, any::<[u8; 32]>(), any::<u8>()).prop_map(|(version, client_name, p, side)| {
                let mut pake = [side; PAKE_MESSAGE_LEN];
                pake[1..].copy_from_slice(&p);
                Control::PairRequest { version, client_name, pake }
            }),
            (text, any::<[u8; 32]>()).prop_map(|(host_name, p)| {
                let mut pake = [b'B'; PAKE_MESSAGE_LEN];
                pake[1..].copy_from_slice(&p);
                Control::PairChallenge { host_name, pake }
            }),
            any::<[u8; 32]>().prop_map(|tag| Control::PairConfirm { tag }),
            any::<[u8; 32]>().prop_map(|tag| Control::Paired { tag }),
            (any::<u16>(), any::<u32>()).prop_map(|(idr_pic_id, frame_num)| Control::LtrAck { idr_pic_id, frame_num }),
            (any::<u16>(), any::<u64>())
                .prop_map(|(idr_pic_id, last_good_frame)| Control::RecoverLtr { idr_pic_id, last_good_frame }),
            any::<u32>().prop_map(|bitrate_kbps| Control::SetBitrate { bitrate_kbps }),
            (any::<u32>(), any::<u64>()).prop_map(|(id, client_micros)| Control::Ping { id, client_micros }),
            (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(id, client_micros, host_micros)| Control::Pong {
                id,
                client_micros,
                host_micros
            }),
            (any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>())
                .prop_map(|(pad, strong, weak, duration_ms)| { Control::Rumble { pad, strong, weak, duration_ms } }),
            (0..4u8, text).prop_map(|(r, message)| Control::Goodbye {
                reason: [
                    GoodbyeReason::Finished,
                    GoodbyeReason::HostShutdown,
                    GoodbyeReason::ProtocolError,
                    GoodbyeReason::Revoked,
                ][r as usize],
                message
            }),
        ]
    }

    proptest! {
        #[test]
        fn frame_header_round_trips(h in header_strategy()) {
            let mut buf = Vec::new();
            h.encode(&mut buf);
            prop_assert_eq!(buf.len(), SENT_FRAME_HEADER_LEN);
            prop_assert_eq!(FrameHeader::decode(&buf), Ok((h, SENT_FRAME_HEADER_LEN)));
        }

        #[test]
        fn a_header_without_the_extension_reads_host_behind_as_zero(h in header_strategy()) {
            // What a version 5 host from before the extension sends: the fixed part only.
            let mut buf = Vec::new();
            h.encode(&mut buf);
            buf.truncate(FRAME_HEADER_LEN);
            buf[6..8].copy_from_slice(&(FRAME_HEADER_LEN as u16).to_le_bytes());
            prop_assert_eq!(FrameHeader::decode(&buf), Ok((FrameHeader { host_behind: 0, ..h }, FRAME_HEADER_LEN)));
        }

        #[test]
        fn truncated_frame_header_is_an_error(h in header_strategy(), cut in 0..SENT_FRAME_HEADER_LEN) {
            let mut buf = Vec::new();
            h.encode(&mut buf);
            prop_assert!(FrameHeader::decode(&buf[..cut]).is_err());
        }

        #[test]
        fn control_round_trips(msg in control_strategy()) {
            let mut buf = Vec::new();
            msg.encode(&mut buf);
            let len = Control::body_len([buf[0], buf[1]]).unwrap();
            prop_assert_eq!(len, buf.len() - 2);
            prop_assert_eq!(Control::decode_body(&buf[2..]), Ok(msg));
        }

        #[test]
        fn truncated_control_is_an_error(msg in control_strategy(), cut in 0usize..64) {
            let mut buf = Vec::new();
            msg.encode(&mut buf);
            let body = &buf[2..];
            prop_assume!(cut < body.len());
            prop_assert!(Control::decode_body(&body[..cut]).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            Control::decode_body(&bytes).ok();
            FrameHeader::decode(&bytes).ok();
            if bytes.len() >= 2 {
                Control::body_len([bytes[0], bytes[1]]).ok();
            }
        }
    }

    #[test]
    fn oversized_payload_is_rejected_before_allocation() {
        let mut buf = Vec::new();
        FrameHeader {
            frame_number: 1,
            capture_micros: 2,
            encode_micros: 3,
            kind: FrameKind::Idr,
            width: 4,
            height: 5,
            payload_len: MAX_FRAME_BYTES + 1,
            input_seq: 0,
            held_back: 0,
            host_behind: 0,
        }
        .encode(&mut buf);
        assert!(matches!(FrameHeader::decode(&buf), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn oversized_control_body_is_rejected() {
        assert!(matches!(Control::body_len(u16::MAX.to_le_bytes()), Err(WireError::TooLarge { .. })));
        assert_eq!(Control::body_len([0, 0]), Err(WireError::Empty));
        // A text field claiming more than the cap is rejected even when the bytes are there.
        let mut body = vec![tag::GOODBYE, 0];
        body.extend_from_slice(&((MAX_TEXT_BYTES + 1) as u16).to_le_bytes());
        body.resize(body.len() + MAX_TEXT_BYTES + 1, b'a');
        assert!(matches!(Control::decode_body(&body), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let mut buf = Vec::new();
        Control::Goodbye { reason: GoodbyeReason::Finished, message: long }.encode(&mut buf);
        let Control::Goodbye { message, .. } = Control::decode_body(&buf[2..]).unwrap() else { panic!() };
        assert!(message.len() <= MAX_TEXT_BYTES && message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn other_versions_and_garbage_are_named() {
        let mut buf = Vec::new();
        FrameHeader {
            frame_number: 0,
            capture_micros: 0,
            encode_micros: 0,
            kind: FrameKind::Inter,
            width: 0,
            height: 0,
            payload_len: 0,
            input_seq: 0,
            held_back: 0,
            host_behind: 0,
        }
        .encode(&mut buf);
        let mut other = buf.clone();
        other[2] = 9;
        assert_eq!(FrameHeader::decode(&other), Err(WireError::UnsupportedVersion { got: 9 }));
        let mut garbage = buf.clone();
        garbage[0] = b'X';
        assert_eq!(FrameHeader::decode(&garbage), Err(WireError::BadMagic));
        let mut kind = buf;
        kind[4] = 7;
        assert_eq!(FrameHeader::decode(&kind), Err(WireError::UnknownFrameKind(7)));
    }
}

//! EBML, Matroska's binary form: an element is its ID, its size as a variable-length integer,
//! and its body. Only writing, and only what kumo's recording uses: unsigned integers,
//! floats, strings, binary bodies and masters whose size is known when they are written (a
//! master is built in memory, then written whole), plus the "unknown size" the Segment uses so
//! that a file cut off anywhere after a cluster is still whole.

/// Element IDs (Matroska's specification, RFC 9559), with their marker bits, as written.
pub(super) mod id {
    pub(crate) const EBML: u32 = 0x1A45_DFA3;
    pub(crate) const EBML_VERSION: u32 = 0x4286;
    pub(crate) const EBML_READ_VERSION: u32 = 0x42F7;
    pub(crate) const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub(crate) const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub(crate) const DOC_TYPE: u32 = 0x4282;
    pub(crate) const DOC_TYPE_VERSION: u32 = 0x4287;
    pub(crate) const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub(crate) const SEGMENT: u32 = 0x1853_8067;
    pub(crate) const INFO: u32 = 0x1549_A966;
    pub(crate) const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub(crate) const DURATION: u32 = 0x4489;
    pub(crate) const MUXING_APP: u32 = 0x4D80;
    pub(crate) const WRITING_APP: u32 = 0x5741;
    pub(crate) const TRACKS: u32 = 0x1654_AE6B;
    pub(crate) const TRACK_ENTRY: u32 = 0xAE;
    pub(crate) const TRACK_NUMBER: u32 = 0xD7;
    pub(crate) const TRACK_UID: u32 = 0x73C5;
    pub(crate) const TRACK_TYPE: u32 = 0x83;
    pub(crate) const FLAG_LACING: u32 = 0x9C;
    pub(crate) const CODEC_ID: u32 = 0x86;
    pub(crate) const CODEC_PRIVATE: u32 = 0x63A2;
    pub(crate) const CODEC_DELAY: u32 = 0x56AA;
    pub(crate) const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub(crate) const DEFAULT_DURATION: u32 = 0x23_E383;
    pub(crate) const VIDEO: u32 = 0xE0;
    pub(crate) const PIXEL_WIDTH: u32 = 0xB0;
    pub(crate) const PIXEL_HEIGHT: u32 = 0xBA;
    pub(crate) const AUDIO: u32 = 0xE1;
    pub(crate) const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub(crate) const CHANNELS: u32 = 0x9F;
    pub(crate) const CLUSTER: u32 = 0x1F43_B675;
    pub(crate) const TIMESTAMP: u32 = 0xE7;
    pub(crate) const SIMPLE_BLOCK: u32 = 0xA3;
    pub(crate) const VOID: u32 = 0xEC;
}

/// The size that says "unknown: up to the end of the file" (all eight bytes' value bits set).
pub(super) const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Appends an element ID: its bytes as written (the marker bit is part of the ID).
fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends `size` as an EBML variable-length integer in the fewest bytes (1 to 8). A value
/// with every value bit set is reserved for "unknown", so such a value takes one byte more.
pub(super) fn put_size(out: &mut Vec<u8>, size: u64) {
    let mut len = 1;
    while len < 8 && size >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

/// An element with a binary body.
pub(super) fn put_bytes(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// An unsigned integer element, in the fewest bytes (at least one).
pub(super) fn put_uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    put_bytes(out, id, &bytes[skip..]);
}

/// A float element, as eight bytes.
pub(super) fn put_float(out: &mut Vec<u8>, id: u32, value: f64) {
    put_bytes(out, id, &value.to_be_bytes());
}

/// A string element (ASCII or UTF-8).
pub(super) fn put_str(out: &mut Vec<u8>, id: u32, value: &str) {
    put_bytes(out, id, value.as_bytes());
}

/// A master element whose children `fill` appends.
pub(super) fn put_master(out: &mut Vec<u8>, id: u32, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    fill(&mut body);
    put_bytes(out, id, &body);
}

/// A Void element of exactly `total` bytes (at least 2): room kept for an element written
/// later over it.
pub(super) fn put_void(out: &mut Vec<u8>, total: usize) {
    put_id(out, id::VOID);
    // One size byte for a body under 127 bytes: the room kept here is a few bytes.
    let body = total.saturating_sub(2).min(126);
    put_size(out, body as u64);
    out.resize(out.len() + body, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_size(&mut out, v);
        out
    }

    #[test]
    fn sizes_take_the_fewest_bytes_and_never_read_as_unknown() {
        assert_eq!(size(0), [0x80]);
        assert_eq!(size(126), [0xFE]);
        // 127 in one byte would be 0xFF, "unknown".
        assert_eq!(size(127), [0x40, 0x7F]);
        assert_eq!(size(16_382), [0x7F, 0xFE]);
        assert_eq!(size(16_383), [0x20, 0x3F, 0xFF]);
        // Six bytes hold 42 value bits: the marker is bit 42, the value bit 40.
        assert_eq!(size(1 << 40), [0x05, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn ids_keep_their_marker_bits_and_integers_their_fewest_bytes() {
        let mut out = Vec::new();
        put_uint(&mut out, id::TIMESTAMP_SCALE, 1_000_000);
        assert_eq!(out, [0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40]);
        out.clear();
        put_uint(&mut out, id::TRACK_NUMBER, 0);
        assert_eq!(out, [0xD7, 0x81, 0x00]);
        out.clear();
        put_uint(&mut out, id::EBML, 1);
        assert_eq!(out, [0x1A, 0x45, 0xDF, 0xA3, 0x81, 0x01]);
    }

    #[test]
    fn a_void_is_exactly_the_room_asked_for() {
        for total in [2, 11, 40] {
            let mut out = Vec::new();
            put_void(&mut out, total);
            assert_eq!(out.len(), total);
            assert_eq!(out[0], 0xEC);
        }
    }
}

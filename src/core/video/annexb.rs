//! H.264 Annex-B parsing: NAL units and access-unit boundaries.
//!
//! Owns the rules for cutting a byte stream into whole access units (one picture each), so
//! the decoder is always handed complete pictures, as a low-latency (no-delay) decoder
//! needs. Pure and panic-free on any input; it borrows slices and allocates nothing.

/// NAL unit types (H.264 table 7-1) that matter for access-unit boundaries.
mod nal {
    pub(super) const SLICE: u8 = 1;
    pub(super) const IDR: u8 = 5;
    pub(super) const SEI: u8 = 6;
    pub(super) const SPS: u8 = 7;
    pub(super) const PPS: u8 = 8;
    pub(super) const AUD: u8 = 9;
    pub(super) const PREFIX: u8 = 14;
}

/// Position of the next start code (`00 00 01`) at or after `from`, and its length
/// (4 when preceded by another zero byte).
fn find_start(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some(if i > from && data[i - 1] == 0 { (i - 1, 4) } else { (i, 3) });
        } else {
            i += 1;
        }
    }
    None
}

/// A NAL unit found in a stream: `start` is where its start code begins, `body` is the NAL
/// unit without the start code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nal<'a> {
    pub start: usize,
    pub body: &'a [u8],
}

impl Nal<'_> {
    pub fn nal_type(&self) -> u8 {
        self.body.first().map_or(0, |b| b & 0x1f)
    }

    fn is_vcl(&self) -> bool {
        matches!(self.nal_type(), nal::SLICE..=nal::IDR)
    }

    /// For a slice: whether `first_mb_in_slice` is 0, i.e. the slice starts a new picture.
    /// `first_mb_in_slice` is the first Exp-Golomb field after the header byte; its value is
    /// 0 exactly when its first bit is 1.
    fn starts_picture(&self) -> bool {
        self.body.get(1).is_some_and(|b| b & 0x80 != 0)
    }
}

/// Iterates over the NAL units of an Annex-B stream.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = Nal<'_>> {
    let mut next = find_start(data, 0);
    std::iter::from_fn(move || {
        let (start, code_len) = next?;
        let body_start = start + code_len;
        next = find_start(data, body_start);
        let end = next.map_or(data.len(), |(s, _)| s);
        Some(Nal { start, body: &data[body_start..end] })
    })
}

/// Iterates over the access units of an Annex-B stream, each a contiguous slice of `data`
/// with its start codes.
///
/// A new access unit begins (H.264 7.4.1.2.3) at an access unit delimiter, SPS, PPS, SEI or
/// prefix NAL, or at a slice with `first_mb_in_slice == 0`, once the current unit already
/// holds a slice. Streams with arbitrary slice order are not split correctly by this rule;
/// kumo's own host never sends them.
pub fn access_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut nals = nal_units(data).peekable();
    std::iter::from_fn(move || {
        let first = nals.next()?;
        let mut has_vcl = first.is_vcl();
        let mut end = data.len();
        while let Some(n) = nals.peek() {
            let boundary = match n.nal_type() {
                nal::AUD | nal::SPS | nal::PPS | nal::SEI | nal::PREFIX | 15..=18 => has_vcl,
                nal::SLICE | nal::IDR => has_vcl && n.starts_picture(),
                _ => false,
            };
            if boundary {
                end = n.start;
                break;
            }
            has_vcl |= n.is_vcl();
            nals.next();
        }
        Some(&data[first.start..end])
    })
}

/// Whether an access unit holds an IDR slice.
pub fn is_idr(access_unit: &[u8]) -> bool {
    nal_units(access_unit).any(|n| n.nal_type() == nal::IDR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPS: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0x00];
    const PPS: &[u8] = &[0, 0, 0, 1, 0x68, 0xce];
    const IDR_FIRST: &[u8] = &[0, 0, 1, 0x65, 0x88, 0x11];
    const IDR_SECOND_SLICE: &[u8] = &[0, 0, 1, 0x65, 0x20, 0x11];
    const P_FIRST: &[u8] = &[0, 0, 0, 1, 0x41, 0x9a, 0x22];

    #[test]
    fn splits_pictures_and_keeps_slices_together() {
        let stream = [SPS, PPS, IDR_FIRST, IDR_SECOND_SLICE, P_FIRST, P_FIRST].concat();
        let aus: Vec<&[u8]> = access_units(&stream).collect();
        assert_eq!(aus.len(), 3);
        assert_eq!(aus[0], [SPS, PPS, IDR_FIRST, IDR_SECOND_SLICE].concat());
        assert_eq!(aus[1], P_FIRST);
        assert!(is_idr(aus[0]));
        assert!(!is_idr(aus[1]));
        let types: Vec<u8> = nal_units(&stream).map(|n| n.nal_type()).collect();
        assert_eq!(types, vec![7, 8, 5, 5, 1, 1]);
    }

    #[test]
    fn no_start_code_means_no_units() {
        assert_eq!(nal_units(&[1, 2, 3, 4]).count(), 0);
        assert_eq!(access_units(&[]).count(), 0);
    }

    proptest! {
        #[test]
        fn access_units_tile_the_stream(data in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..400)) {
            let aus: Vec<&[u8]> = access_units(&data).collect();
            let total: usize = aus.iter().map(|a| a.len()).sum();
            let first = nal_units(&data).next().map_or(data.len(), |n| n.start);
            prop_assert_eq!(total, data.len() - first);
        }
    }
}

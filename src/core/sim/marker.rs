//! The frame marker: a strip of black and white blocks at the top-left of every picture the
//! reference host renders, carrying the frame number and a checksum.
//!
//! Owns the marker's geometry and its encoding in luma. The client reads it back from the
//! decoded picture to prove that what it decoded is the frame the host says it sent. Blocks
//! are at least 8×8 pixels (16×16 from 720p wide up) so they survive lossy coding at low
//! bitrates; the reader samples only the centre of each block and picks its threshold from
//! the known sync blocks, so blur and level shifts do not flip bits.

use thiserror::Error;

/// Sync pattern at the start of the strip: lets the reader find its black and white levels.
const SYNC: [bool; 4] = [true, false, true, false];
const DATA_BITS: usize = 32;
const CHECK_BITS: usize = 8;
/// Blocks in the strip.
pub const BLOCKS: usize = SYNC.len() + DATA_BITS + CHECK_BITS;

/// Luma of a white and a black block (limited range, what the encoder is told).
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// Narrowest picture that can carry a marker.
pub const MIN_WIDTH: usize = BLOCKS * 8;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum MarkerError {
    #[error("picture {width}x{height} is too small for a frame marker (needs {MIN_WIDTH} pixels wide)")]
    TooSmall { width: usize, height: usize },
    #[error("no frame marker found (sync blocks do not contrast)")]
    NoSync,
    #[error("frame marker checksum does not match")]
    Checksum,
}

/// Side of one block in pixels for a picture `width` wide.
pub fn block_px(width: usize) -> usize {
    if width >= BLOCKS * 16 { 16 } else { 8 }
}

/// Rows at the top of the picture the marker covers.
pub fn height_px(width: usize) -> usize {
    block_px(width)
}

/// CRC-8 (polynomial 0x07) of the value's little-endian bytes.
fn crc8(value: u32) -> u8 {
    let mut crc = 0u8;
    for byte in value.to_le_bytes() {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
        }
    }
    crc
}

fn bits(value: u32) -> impl Iterator<Item = bool> {
    let check = crc8(value);
    SYNC.into_iter()
        .chain((0..DATA_BITS).map(move |i| value >> (DATA_BITS - 1 - i) & 1 == 1))
        .chain((0..CHECK_BITS).map(move |i| check >> (CHECK_BITS - 1 - i) & 1 == 1))
}

fn check_size(width: usize, height: usize, stride: usize, len: usize) -> Result<usize, MarkerError> {
    let block = block_px(width);
    if width < MIN_WIDTH || height < block || stride < width || len < stride * (block - 1) + width {
        return Err(MarkerError::TooSmall { width, height });
    }
    Ok(block)
}

/// Draws the marker for `value` into a luma plane.
pub fn draw(luma: &mut [u8], stride: usize, width: usize, height: usize, value: u32) -> Result<(), MarkerError> {
    let block = check_size(width, height, stride, luma.len())?;
    for (i, bit) in bits(value).enumerate() {
        let level = if bit { WHITE } else { BLACK };
        for row in 0..block {
            let start = row * stride + i * block;
            luma[start..start + block].fill(level);
        }
    }
    Ok(())
}

/// Reads the marker back from a luma plane.
pub fn read(luma: &[u8], stride: usize, width: usize, height: usize) -> Result<u32, MarkerError> {
    let block = check_size(width, height, stride, luma.len())?;
    // Mean of the centre half of each block.
    let inner = block / 2;
    let edge = block / 4;
    let means: Vec<u32> = (0..BLOCKS)
        .map(|i| {
            let mut sum = 0u32;
            for row in edge..edge + inner {
                let start = row * stride + i * block + edge;
                sum += luma[start..start + inner].iter().map(|&v| u32::from(v)).sum::<u32>();
            }
            sum / (inner * inner) as u32
        })
        .collect();
    let white = u32::midpoint(means[0], means[2]);
    let black = u32::midpoint(means[1], means[3]);
    // A quarter of the nominal swing (219): anything flatter is not a marker.
    if white < black + 55 {
        return Err(MarkerError::NoSync);
    }
    let threshold = u32::midpoint(white, black);
    let bit = |i: usize| means[i] > threshold;
    let mut value = 0u32;
    for i in 0..DATA_BITS {
        value = value << 1 | u32::from(bit(SYNC.len() + i));
    }
    let mut check = 0u8;
    for i in 0..CHECK_BITS {
        check = check << 1 | u8::from(bit(SYNC.len() + DATA_BITS + i));
    }
    if check != crc8(value) {
        return Err(MarkerError::Checksum);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_through_a_plane(value in any::<u32>(), width in MIN_WIDTH..2000usize, pad in 0usize..64) {
            let stride = width + pad;
            let height = 32;
            let mut plane = vec![128u8; stride * height];
            draw(&mut plane, stride, width, height, value).unwrap();
            prop_assert_eq!(read(&plane, stride, width, height), Ok(value));
        }

        #[test]
        fn survives_noise_and_level_shift(value in any::<u32>(), seed in any::<u64>()) {
            let (width, height) = (1280, 720);
            let mut plane = vec![0u8; width * height];
            draw(&mut plane, width, width, height, value).unwrap();
            let mut rng = crate::sim::rng::XorShift::from_state(seed | 1);
            for p in &mut plane {
                // xorshift noise of ±24 plus a +10 level shift, as a lossy codec might leave it.
                let noise = (rng.next_u64() % 49) as i32 - 24;
                *p = (i32::from(*p) + noise + 10).clamp(0, 255) as u8;
            }
            prop_assert_eq!(read(&plane, width, width, height), Ok(value));
        }
    }

    #[test]
    fn a_plain_picture_has_no_marker() {
        let plane = vec![128u8; 1280 * 64];
        assert_eq!(read(&plane, 1280, 1280, 64), Err(MarkerError::NoSync));
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let (w, h) = (640, 16);
        let mut plane = vec![0u8; w * h];
        draw(&mut plane, w, w, h, 0xDEAD_BEEF).unwrap();
        let block = block_px(w);
        let i = SYNC.len() + 5;
        for row in 0..block {
            for p in &mut plane[row * w + i * block..row * w + (i + 1) * block] {
                *p = if *p == WHITE { BLACK } else { WHITE };
            }
        }
        assert_eq!(read(&plane, w, w, h), Err(MarkerError::Checksum));
    }

    #[test]
    fn too_small_is_an_error_not_a_panic() {
        assert!(matches!(read(&[0; 10], 10, 10, 1), Err(MarkerError::TooSmall { .. })));
        let mut small = vec![0u8; MIN_WIDTH * 4];
        assert!(draw(&mut small, MIN_WIDTH, MIN_WIDTH, 4, 1).is_err());
    }
}

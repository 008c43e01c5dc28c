//! xorshift64 (Marsaglia's 13/7/17): the small, seeded, reproducible randomness of the
//! scene's noise band, the relay's impairment, the fuzzer, the lab's input timing and the
//! tests. Not for anything secret.

/// A xorshift64 generator. Its state must not be zero (zero stays zero).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator that starts from `state` (non-zero) as it is.
    pub fn from_state(state: u64) -> Self {
        Self(state)
    }

    /// A generator for a user's seed: any seed, zero included, spread over the state by a
    /// golden-ratio multiply.
    pub fn seeded(seed: u64) -> Self {
        Self(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next state.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A uniform fraction in 0.0..1.0 (53 bits).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_marsaglias_and_seeds_are_spread() {
        // Marsaglia's xorshift64 (13, 7, 17) from 1: its first value.
        assert_eq!(XorShift::from_state(1).next_u64(), 1_082_269_761);
        assert_ne!(XorShift::seeded(0).next_u64(), 0, "a zero seed still runs");
        assert_eq!(XorShift::seeded(0).next_u64(), XorShift::seeded(1).next_u64());
        let mut r = XorShift::seeded(5);
        assert!((0..1000).map(|_| r.unit()).all(|u| (0.0..1.0).contains(&u)));
    }
}

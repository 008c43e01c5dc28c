//! A seeded mutation fuzzer for kumo's decoders of network bytes.
//!
//! `cargo fuzz` needs a nightly compiler, which this project cannot use; this is the
//! equivalent that runs on stable: start from valid messages (the corpus), mutate them the
//! way fuzzers do (bit flips, boundary values in integer fields, inserted, deleted and
//! duplicated runs, truncation, splicing two inputs), and hand each result to a target. The
//! shell (`fuzz.rs`) runs the targets, catches panics and keeps what it finds. Pure and
//! deterministic: the same seed gives the same inputs.

use crate::sim::rng::XorShift;

/// Values that break length and count checks.
const INTERESTING_U8: [u8; 8] = [0, 1, 0x7f, 0x80, 0xfe, 0xff, 0x10, 0x40];
const INTERESTING_U32: [u32; 8] = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0xffff, 0x1_0000, 4096];

/// Largest input the mutator makes (datagrams and control messages are smaller).
pub const MAX_INPUT: usize = 64 * 1024;

/// The mutation engine.
#[derive(Debug, Clone)]
pub struct Mutator {
    rng: XorShift,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self { rng: XorShift::seeded(seed) }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// A new input made from `corpus` (which must not be empty): one of its entries with one
    /// to four mutations.
    pub fn mutate(&mut self, corpus: &[Vec<u8>]) -> Vec<u8> {
        let mut data = corpus[self.below(corpus.len())].clone();
        for _ in 0..=self.below(4) {
            self.mutate_once(&mut data, corpus);
        }
        data.truncate(MAX_INPUT);
        data
    }

    fn mutate_once(&mut self, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
        let len = data.len();
        match self.below(9) {
            0 if len > 0 => {
                let at = self.below(len);
                data[at] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let at = self.below(len);
                data[at] = INTERESTING_U8[self.below(INTERESTING_U8.len())];
            }
            2 if len >= 4 => {
                let at = self.below(len - 3);
                let v = INTERESTING_U32[self.below(INTERESTING_U32.len())];
                let bytes = if self.below(2) == 0 { v.to_le_bytes() } else { v.to_be_bytes() };
                data[at..at + 4].copy_from_slice(&bytes);
            }
            3 => {
                let at = self.below(len + 1);
                let n = 1 + self.below(16);
                let fill: Vec<u8> = (0..n).map(|_| self.next_u64() as u8).collect();
                data.splice(at..at, fill);
            }
            4 if len > 0 => {
                let at = self.below(len);
                let n = 1 + self.below((len - at).min(32));
                data.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = self.below(len);
                let n = 1 + self.below((len - at).min(64));
                let copy = data[at..at + n].to_vec();
                let to = self.below(len + 1);
                data.splice(to..to, copy);
            }
            6 if len > 0 => data.truncate(self.below(len)),
            7 => {
                let other = &corpus[self.below(corpus.len())];
                let cut = self.below(len + 1);
                let from = self.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let n = self.below(64);
                data.clear();
                data.extend((0..n).map(|_| self.next_u64() as u8));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_seeded_varied_and_bounded() {
        let corpus = vec![b"KI hello world, a valid message".to_vec(), vec![0u8; 40]];
        let run = |seed| {
            let mut m = Mutator::new(seed);
            (0..500).map(|_| m.mutate(&corpus)).collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1), "same seed, same inputs");
        assert_ne!(a, run(2));
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 400, "only {} distinct inputs of 500", distinct.len());
        assert!(a.iter().all(|d| d.len() <= MAX_INPUT));
        assert!(a.iter().any(Vec::is_empty) && a.iter().any(|d| d.len() > 40), "lengths vary");
    }
}

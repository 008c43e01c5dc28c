//! Simulation and test tooling: the synthetic scene and game the host streams (`scene`, `game`)
//! with their markers (`marker`), a seeded RNG (`rng`), network impairment (`impair`), the
//! fuzzer's mutator (`fuzz`) and the latency lab's pure part (`lab`).

pub mod bottleneck;
pub mod fuzz;
pub mod game;
pub mod impair;
pub mod lab;
pub mod marker;
pub mod rng;
pub mod scene;

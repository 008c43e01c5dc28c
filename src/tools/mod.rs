//! Tools built on the client and host: the benchmarks (`bench`), the latency lab (`lab`),
//! the blind fuzzer (`fuzz`) and the one-process demo (`demo`).

pub mod bench;
pub mod demo;
pub mod fuzz;
pub mod heap;
pub mod lab;

//! kumo's pure core: wire format, frame reassembly and ordering, capture pacing, the
//! synthetic scene and game and their markers, H.264 framing, statistics, colour maths,
//! window layout, the state screen and the overlay's model, input, the audio path's pure
//! parts and jitter buffer, clock sync, the latency lab and its plot, network impairment and
//! the fuzzer's mutator.
//!
//! Nothing here reads a clock, spawns a thread, or touches a socket or device; time comes in
//! as a parameter. It is a crate of its own, `kumo-core` (the `kumo` crate re-exports it as
//! `kumo::core`), and its manifest lists the only crates it may use, none of them quinn,
//! tokio, openh264 or a GPU, audio or input crate; `tests/core_is_pure.rs` checks the list and
//! every file's text.

pub mod audio;
pub mod clipboard;
pub mod clocksync;
pub mod config;
pub mod input;
pub mod probe;
pub mod rate;
pub mod record;
pub mod session;
pub mod sim;
pub mod stats;
pub mod trust;
pub mod video;
pub mod view;
pub mod wire;

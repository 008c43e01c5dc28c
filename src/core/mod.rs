//! kumo's pure core: wire format, frame reassembly and ordering, capture pacing, the
//! synthetic scene and game and their markers, H.264 framing, statistics, colour maths,
//! window layout, the state screen and the overlay's model, input, the audio path's pure
//! parts and jitter buffer, clock sync, the latency lab and its plot, network impairment and
//! the fuzzer's mutator.
//!
//! Nothing here reads a clock, spawns a thread, or touches a socket or device; time comes in
//! as a parameter. It imports no quinn, tokio, openh264 or GPU/audio/input crate (the test
//! `tests/core_is_pure.rs` checks), which keeps it testable alone and splittable into its
//! own crate.

pub mod abr;
pub mod annexb;
pub mod assemble;
pub mod audio;
pub mod clocksync;
pub mod color;
pub mod config;
pub mod fec;
pub mod fuzz;
pub mod game;
pub mod histogram;
pub mod hotkeys;
pub mod impair;
pub mod input;
pub mod jitter;
pub mod kiosk;
pub mod lab;
pub mod layout;
pub mod marker;
pub mod mdns;
pub mod overlay;
pub mod pacing;
pub mod pads;
pub mod plot;
pub mod probe;
pub mod rng;
pub mod scene;
pub mod screen;
pub mod script;
pub mod sequence;
pub mod sound;
pub mod stats;
pub mod trust;
pub mod wire;

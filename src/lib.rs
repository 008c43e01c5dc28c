//! kumo: a thin client for cloud game streaming, and a small reference host.
//!
//! The folders are the layers (ARCHITECTURE.md has the map): `core` is pure logic that takes
//! time as an argument; `net` is the quinn shell and everything else that talks to the network
//! (TLS, pairing, discovery, probing, the relay, the trust store); `client` and `host` are the
//! two sides' shells around their devices; `tools` are the demo, the latency lab, the
//! benchmarks and the fuzzer, built on the other layers. `clock`, `config`, `h264` (which
//! OpenH264 to use), `clipboard` (an X display's selection) and `xconn` (reaching an X
//! display) are the small shells every side uses.

pub mod client;
pub mod clipboard;
pub mod clock;
pub mod config;
pub use kumo_core as core;
pub mod h264;
pub mod host;
pub mod net;
pub mod tools;
pub mod xconn;

/// The async runtime for the network shells: two worker threads named `kumo-net` (the
/// network work is light; encode and decode have threads of their own).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("kumo-net").enable_all().build()?;
    // With KUMO_SAMPLE_HEAP set (soaks), one sample a second of the counted live heap.
    tools::heap::start_sampling(&rt, std::time::Duration::from_secs(1));
    Ok(rt)
}

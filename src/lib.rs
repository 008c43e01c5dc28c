//! kumo: a thin client for cloud game streaming, and a small reference host.
//!
//! `core` is pure logic; the other modules are thin shells around one device or library each
//! (see ARCHITECTURE.md).

pub mod audio;
pub mod audio_send;
pub mod client;
pub mod clock;
pub mod config;
pub mod core;
pub mod decode;
pub mod demo;
pub mod discovery;
pub mod encode;
pub mod fuzz;
pub mod headless;
pub mod host;
pub mod keys;
pub mod lab;
pub mod net;
pub mod overlay;
pub mod pads;
pub mod pair;
pub mod present;
pub mod probe;
pub mod relay;
pub mod tls;
pub mod trust;
pub mod window;

/// The async runtime for the network shells: two worker threads named `kumo-net` (the
/// network work is light; encode and decode have threads of their own).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("kumo-net").enable_all().build()
}
pub mod bench;

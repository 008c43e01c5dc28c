//! kumo: a thin client for cloud game streaming, and a small reference host.
//!
//! `core` is pure logic; the other modules are thin shells around one device or library each
//! (see ARCHITECTURE.md).

pub mod core;
pub mod clock;
pub mod decode;
pub mod encode;

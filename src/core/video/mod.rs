//! Video's pure parts: H.264 framing (`annexb`), frame reassembly (`assemble`) and ordering
//! (`sequence`), adaptive bitrate (`abr`), capture pacing and the send window (`pacing`), and
//! forward error correction (`fec`).

pub mod abr;
pub mod annexb;
pub mod assemble;
pub mod cursor;
pub mod fec;
pub mod pacing;
pub mod sequence;

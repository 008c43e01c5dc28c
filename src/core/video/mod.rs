//! Video's pure parts: H.264 framing (`annexb`), frame reassembly (`assemble`) and ordering
//! (`sequence`), adaptive bitrate (`abr`) and the picture ladder it drives (`ladder`), capture pacing and the send window (`pacing`), and
//! forward error correction (`fec`).

pub mod abr;
pub mod annexb;
pub mod assemble;
pub mod cursor;
pub mod fec;
pub mod ladder;
pub mod pacing;
pub mod sequence;

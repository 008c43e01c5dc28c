//! One libFuzzer binary for every `kumo fuzz` target: `KUMO_FUZZ_TARGET` names the decoder
//! (frame-header, control, input, input-ack, audio, clock, assemble, annexb, marker, opus,
//! mdns, fec), so each keeps a corpus of its own. A finding is a panic in the target's check (a
//! crash, or a message that does not survive its own round trip), which libFuzzer saves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn chosen() -> &'static kumo::tools::fuzz::Target {
    static TARGET: OnceLock<kumo::tools::fuzz::Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let names: Vec<_> = kumo::tools::fuzz::targets().iter().map(|t| t.name).collect();
        let name = std::env::var("KUMO_FUZZ_TARGET")
            .unwrap_or_else(|_| panic!("set KUMO_FUZZ_TARGET to one of {}", names.join(", ")));
        kumo::tools::fuzz::target(&name)
            .unwrap_or_else(|| panic!("no fuzz target {name:?}; the targets are {}", names.join(", ")))
    })
}

fuzz_target!(|data: &[u8]| chosen().check(data));

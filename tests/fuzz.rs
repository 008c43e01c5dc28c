//! Every decoder of network bytes under mutation, since a peer's bytes are untrusted: a
//! bounded run of each fuzz target, with the kept corpus (tests/fuzz-corpus/) replayed first.
//! `kumo fuzz --seconds N` runs the same targets for longer.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

#[test]
fn no_decoder_panics_or_breaks_its_round_trip_under_mutation() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut report = String::new();
    for target in kumo::tools::fuzz::targets() {
        // A fixed seed per target, bounded in count and time.
        let r = kumo::tools::fuzz::run(&target, 7, 100_000, Duration::from_secs(20), None);
        let kept = std::fs::read_dir(corpus.join(target.name)).map_or(0, Iterator::count);
        writeln!(report, "{}: {} executions, {} kept inputs", target.name, r.executions, kept).ok();
        assert!(r.executions >= 2_000, "{}: only {} executions", target.name, r.executions);
        assert!(
            r.failures.is_empty(),
            "{} failed on {} inputs, first: {:02x?}",
            target.name,
            r.failures.len(),
            &r.failures[0][..r.failures[0].len().min(64)]
        );
        // The kept corpus replays clean too.
        let r = kumo::tools::fuzz::run(&target, 8, 1_000, Duration::from_secs(10), Some(&corpus));
        assert!(r.failures.is_empty(), "{}: a kept input fails again", target.name);
    }
    eprintln!("{report}");
}

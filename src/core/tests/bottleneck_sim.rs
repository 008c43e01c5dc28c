//! The deterministic simulation of a stream through a bottleneck (`kumo_core::sim::bottleneck`):
//! kumo's own session, ladder, send window and bitrate controller on a virtual clock, 1 000
//! seeded paths. `KUMO_SIM_SEED=N cargo test -p kumo-core --test bottleneck_sim -- --nocapture`
//! replays one.

use kumo_core::sim::bottleneck::{Properties, RATE_SHARE, Scenario, run};
use kumo_core::sim::rng::XorShift;
use kumo_core::video::ladder::Rung;
use std::time::Duration;

/// A thousand seeded sessions of 60 s (18 s of a debug build here): 720p60 asked at
/// 10 Mbit/s through a bottleneck of 4 to 30 Mbit/s that drops to a quarter (at least
/// 2 Mbit/s, room for the lowest rung) at 20 s and comes back at 40 s, 0–2 % random loss, 1–20 ms each way. Issue 23's properties, each
/// counted over the sessions and held to the count reached: once settled, the queue's p95
/// within a frame interval; within 2 s of the drop, back under it; from 3 s after the start
/// and after the drop, every second carrying 70 % of the path (or of what the stream asks
/// for); 70 % again within 5 s of the path's return; no freeze over 100 ms away from the
/// drop (the drop's own freezes are printed). `KUMO_SIM_SEED=N` runs one and prints it;
/// `KUMO_SIM_SESSIONS=N` runs seeds 1 to N and prints the counts without holding them. A
/// thousand, not 200: a session's path through its knees is chaotic, and over 200 a change
/// moved counts by ten either way that 2 000 showed it did not move at all.
#[test]
fn a_thousand_seeded_bottlenecks() {
    let only: Option<u64> = std::env::var("KUMO_SIM_SEED").ok().and_then(|v| v.parse().ok());
    let sessions: u64 = std::env::var("KUMO_SIM_SESSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(SESSIONS);
    let interval = Duration::from_secs(1) / 60;
    let mut failed: Vec<(&str, u64, String)> = Vec::new();
    let mut drop_freezes = Vec::new();
    let mut n = 0;
    for seed in (1..=sessions.max(only.unwrap_or(0))).filter(|s| only.is_none_or(|o| o == *s)) {
        let s = seeded(seed);
        let o = run(&s);
        let p = Properties::of(&o, &s);
        if only.is_some() {
            eprintln!(
                "seed {seed}: rate {} low {} delay {:?} loss {:.3}: {p:?}, rung {}, freezes {:?}\n  targets {:?}\n  rungs {:?}",
                s.rate_bps, s.schedule[0].1, s.delay, s.loss, o.last_rung, o.freezes, o.targets, o.rungs
            );
        }
        n += 1;
        let fail = |failed: &mut Vec<(&str, u64, String)>, what, ok: bool, detail: String| {
            if !ok {
                failed.push((what, seed, detail));
            }
        };
        let two = Duration::from_secs(2);
        fail(&mut failed, "settled queue p95", p.settled_queue_p95 <= interval, format!("{:?}", p.settled_queue_p95));
        fail(
            &mut failed,
            "drained within 2 s",
            p.drained_after_drop.is_some_and(|d| d <= two),
            format!("{:?}", p.drained_after_drop),
        );
        fail(
            &mut failed,
            "70 % before the drop",
            p.rate_share_before >= RATE_SHARE,
            format!("{:.2}", p.rate_share_before),
        );
        fail(&mut failed, "70 % after the drop", p.rate_share_low >= RATE_SHARE, format!("{:.2}", p.rate_share_low));
        fail(
            &mut failed,
            "back within 5 s",
            p.climbed_back_after.is_some_and(|d| d <= Duration::from_secs(5)),
            format!("{:?}", p.climbed_back_after),
        );
        fail(
            &mut failed,
            "no freeze over 100 ms",
            p.steady_freeze <= Duration::from_millis(100),
            format!("{:?} at {:?}", p.steady_freeze, o.freezes.iter().find(|f| f.1 == p.steady_freeze).map(|f| f.0)),
        );
        drop_freezes.push(p.drop_freeze);
        // Every session streams.
        assert!(
            o.frames > 60 * 30,
            "seed {seed}: only {} frames (KUMO_SIM_SEED={seed} cargo test -p kumo-core --test bottleneck_sim replays it)",
            o.frames
        );
    }
    // The sessions each property holds in, at least: what the controller reaches today
    // (docs/robustness.md says why the rest fail). The simulation is deterministic, so a change
    // that makes any of them worse fails here, with the seeds that failed.
    let guards = [
        ("settled queue p95", 924),
        ("drained within 2 s", 796),
        ("70 % before the drop", 985),
        ("70 % after the drop", 859),
        ("back within 5 s", 791),
        ("no freeze over 100 ms", 951),
    ];
    let mut worse = Vec::new();
    for (what, least) in guards {
        let seeds: Vec<String> = failed.iter().filter(|f| f.0 == what).map(|f| format!("{}: {}", f.1, f.2)).collect();
        let held = n - seeds.len();
        eprintln!("sim: {what}: {held} of {n} sessions; failed {}: {:.400}", seeds.len(), seeds.join(", "));
        if only.is_none() && n as u64 == SESSIONS && held < least {
            worse.push(format!(
                "{what} held in {held} sessions, fewer than {least} (KUMO_SIM_SEED=N cargo test --release -p \
                 kumo-core --test bottleneck_sim replays seed N): {}",
                seeds.join(", ")
            ));
        }
    }
    drop_freezes.sort_unstable();
    let over = drop_freezes.iter().filter(|f| **f > Duration::from_millis(100)).count();
    eprintln!(
        "sim: at the drop, a freeze over 100 ms in {over} of {n} sessions; the longest of each session's: median {:?}, p90 {:?}, most {:?}",
        drop_freezes.get(drop_freezes.len() / 2).copied().unwrap_or_default(),
        drop_freezes.get(drop_freezes.len() * 9 / 10).copied().unwrap_or_default(),
        drop_freezes.last().copied().unwrap_or_default()
    );
    assert!(worse.is_empty(), "the controller got worse on the simulated paths:\n{}", worse.join("\n"));
}

/// The sessions [`a_thousand_seeded_bottlenecks`] runs and holds its counts over.
const SESSIONS: u64 = 1000;

/// Seed `seed`'s session of [`a_thousand_seeded_bottlenecks`].
fn seeded(seed: u64) -> Scenario {
    let (drop_at, back_at) = (Duration::from_secs(20), Duration::from_secs(40));
    let mut r = XorShift::seeded(seed);
    let rate = 4_000_000 + r.next_u64() % 26_000_000;
    let low = (rate / 4).max(2_000_000);
    Scenario {
        schedule: vec![(drop_at, low), (back_at, rate)],
        delay: Duration::from_millis(1 + r.next_u64() % 20),
        loss: r.unit() * 0.02,
        duration: Duration::from_mins(1),
        ..Scenario::stream_720p60(rate, seed)
    }
}

/// Seeds per path in the side-by-side figures.
const SEEDS: u64 = 9;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A path by name, and its scenario for a seed.
type Path = (&'static str, Box<dyn Fn(u64) -> Scenario>);

/// The three paths of issue 23 as `scripts/bottleneck.sh` makes them (tbf with a 16 KB
/// bucket and a 100 ms queue, each way), ladder off and on: the figures docs/robustness.md
/// sets beside the real runs. Printed; asserted only where the model must hold whatever its
/// calibration (the ladder never makes the median worse).
#[test]
fn the_three_paths_of_the_real_runs() {
    let kernel = |rate_bps, seed| Scenario {
        burst: 16_000,
        delay: Duration::from_micros(100),
        ..Scenario::stream_720p60(rate_bps, seed)
    };
    let hd = |s: Scenario| Scenario { ceiling: Rung { width: 1920, height: 1080, fps: 60 }, start_kbps: 20_000, ..s };
    let paths: [Path; 5] = [
        ("3 Mbit/s, 720p60 (tbf)", Box::new(move |seed| kernel(3_000_000, seed))),
        ("3 Mbit/s, 720p60 (relay)", Box::new(move |seed| Scenario { burst: 0, ..kernel(3_000_000, seed) })),
        (
            "30 → 5 → 30 Mbit/s at 5 and 15 s, 1080p60, 30 s",
            Box::new(move |seed| Scenario {
                schedule: vec![(Duration::from_secs(5), 5_000_000), (Duration::from_secs(15), 30_000_000)],
                duration: Duration::from_secs(30),
                ..hd(kernel(30_000_000, seed))
            }),
        ),
        ("8 Mbit/s, 1 % loss, 1080p60", Box::new(move |seed| Scenario { loss: 0.01, ..hd(kernel(8_000_000, seed)) })),
        (
            "relay 11.8 → 2.96 → 11.8 Mbit/s at 10 and 20 s, 15 ms each way, 1 % loss, 720p60, 30 s",
            Box::new(move |seed| Scenario {
                schedule: vec![(Duration::from_secs(10), 2_960_000), (Duration::from_secs(20), 11_800_000)],
                delay: Duration::from_millis(15),
                loss: 0.01,
                duration: Duration::from_secs(30),
                ..Scenario::stream_720p60(11_800_000, seed)
            }),
        ),
    ];
    for (name, scenario) in &paths {
        for adapt_size in [false, true] {
            let outcomes: Vec<_> = (1..=SEEDS).map(|seed| run(&Scenario { adapt_size, ..scenario(seed) })).collect();
            let p50: Vec<f64> =
                outcomes.iter().map(|o| o.latency.quantile_micros(0.5).unwrap_or(0.0) / 1000.0).collect();
            let freeze: Vec<u128> = outcomes.iter().map(|o| o.longest_freeze.as_millis()).collect();
            let freeze_at: Vec<f64> = outcomes.iter().map(|o| o.longest_freeze_at.as_secs_f64()).collect();
            let secs = scenario(1).duration.as_secs_f64();
            let fps: Vec<f64> = outcomes.iter().map(|o| o.frames as f64 / secs).collect();
            let ceiling = scenario(1).ceiling;
            let back: Vec<Option<f64>> = outcomes
                .iter()
                .map(|o| scenario(1).schedule.get(1).and_then(|r| o.back_at(ceiling, r.0)).map(|d| d.as_secs_f64()))
                .collect();
            eprintln!(
                "sim {name}, ladder {}: median of {SEEDS} seeds: p50 {:.1} ms, longest freeze {} ms",
                if adapt_size { "on" } else { "off" },
                median(&p50),
                median(&freeze.iter().map(|&f| f as f64).collect::<Vec<_>>())
            );
            eprintln!(
                "sim {name}, ladder {}: p50 {:.1?} ms, longest freeze {freeze:?} ms (at {freeze_at:.2?} s), {:.1?} fps, \
                 last {}, back at the ceiling {back:.1?} s after the path returned, host behind {:?} slots",
                if adapt_size { "on" } else { "off" },
                p50,
                fps,
                outcomes[0].last_rung,
                outcomes.iter().map(|o| o.host_behind).collect::<Vec<_>>()
            );
            if std::env::var_os("KUMO_SIM_TRACE").is_some() {
                eprintln!("  targets {:?}\n  rungs {:?}", outcomes[0].targets, outcomes[0].rungs);
            }
        }
    }
}

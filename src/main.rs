//! The `kumo` command line: `demo`, `host`, `pair`, `connect`, `probe`, `kiosk`, `latency`, `relay`,
//! `fuzz`, `bench`. This file parses it and dispatches each command to its wiring in `cli/`.

mod cli;

use anyhow::Context as _;
use clap::Parser as _;
use cli::{Cli, Command};
use std::process::ExitCode;

/// Every allocation of the process counted (live bytes and allocations), for soaks: two
/// relaxed atomic additions each.
#[global_allocator]
static HEAP: kumo::tools::heap::Counting = kumo::tools::heap::Counting;

fn main() -> ExitCode {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // openh264's error type captures a backtrace on every decode error, which is costly
        // when RUST_BACKTRACE is set; panics keep their backtraces.
        // SAFETY: first statement of main, before any other thread exists.
        #[expect(unsafe_code, reason = "set_var before any other thread exists (SAFETY above)")]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        };
    }
    cli::console::init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = kumo::runtime().context("could not start the network runtime")?;
    // Only the commands that show a stream read the config file.
    let settings = || kumo::config::load(cli.config.as_deref()).map(|(file, _)| file);
    match cli.command {
        Command::Demo { run, stream } => cli::tools::demo(&rt, &settings()?, &run, &stream),
        Command::Host(args) => cli::host::run(&rt, args),
        Command::Pair { host, pin, name } => cli::pair::pair(&rt, host, pin, name),
        Command::List { wait } => cli::pair::list_hosts(&rt, wait),
        Command::Connect(args) => cli::client::connect(&rt, &settings()?, args),
        Command::Probe { hosts, host_fingerprint } => {
            cli::client::probe(&rt, &settings()?, &hosts, host_fingerprint.as_deref())
        }
        Command::Kiosk { host, host_fingerprint, run, stream } => {
            cli::kiosk::kiosk(&rt, host, host_fingerprint, &run, &stream, settings()?)
        }
        Command::Latency(args) => cli::tools::latency(&rt, &settings()?, args),
        Command::Relay { listen, to, impair } => cli::tools::relay(&rt, listen, to, &impair),
        Command::Fuzz { target, seconds, seed, corpus, write_seeds } => {
            cli::tools::fuzz(target.as_deref(), seconds, seed, &corpus, write_seeds)
        }
        Command::Bench { frames, seconds, audio_only, capture_only, present_only, ladder_only } => {
            cli::tools::bench(&rt, frames, seconds, audio_only, capture_only, present_only, ladder_only)
        }
    }
}

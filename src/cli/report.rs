//! What a session leaves: its summary printed, its figures as JSON, and its exit code.

use anyhow::Context as _;
use kumo::client::{End, SessionReport};
use kumo::core::stats::Summary;
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints the summary, writes the JSON, and turns a lost session into a failing exit code.
pub(crate) fn report(outcome: &SessionReport, stats_json: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    print!("{}", outcome.summary.to_text());
    if let Some(path) = stats_json {
        let summary = Summary { heap: kumo::tools::heap::figures(), ..outcome.summary.clone() };
        write_json(&summary, path)?;
    }
    match &outcome.end {
        Ok(End::Stopped) => Ok(ExitCode::SUCCESS),
        Ok(End::HostEnded(message)) => {
            println!("the host ended the session: {message}");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn write_json(summary: &Summary, path: &PathBuf) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(summary).context("encoding the stats")?;
    std::fs::write(path, json + "\n").with_context(|| format!("could not write the stats to {}", path.display()))
}

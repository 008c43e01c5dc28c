//! What kumo writes to the console. Without `RUST_LOG`, a person reads it: kumo's own sentences
//! at info level and above, each on one line, with "warning:" or "error:" in front where it is
//! one and "host:" or "client:" saying which side spoke (`kumo demo` runs both); another
//! library's messages only when they are errors; no timestamps, module paths or field dumps.
//! With `RUST_LOG` set (a developer, a test, a log file), tracing's full format, filtered as
//! asked, with every field.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// What a person sees when `RUST_LOG` is unset: kumo's info and above, other crates' errors.
const PERSON_FILTER: &str = "error,kumo=info";

/// Installs the console's logger for the process.
pub(crate) fn init() {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // Colours only on a terminal: journald and log files get plain text.
            .with_ansi(ansi)
            .init(),
        Err(_) => tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(PERSON_FILTER))
            .with_writer(std::io::stderr)
            .event_format(Sentences)
            .init(),
    }
}

/// One event as a sentence: "warning: client: the host stopped answering; reconnecting".
struct Sentences;

impl<S, N> FormatEvent<S, N> for Sentences
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        match *meta.level() {
            Level::ERROR => writer.write_str("error: ")?,
            Level::WARN => writer.write_str("warning: ")?,
            _ => {}
        }
        writer.write_str(side(meta.target()))?;
        let mut sentence = Sentence::default();
        event.record(&mut sentence);
        writer.write_str(sentence.message.trim_end())?;
        if !sentence.details.is_empty() {
            write!(writer, " ({})", sentence.details)?;
        }
        writer.write_char('\n')
    }
}

/// Which side of a session an event comes from, as the console names it.
fn side(target: &str) -> &'static str {
    if target == "kumo::host" || target.starts_with("kumo::host::") {
        "host: "
    } else if target == "kumo::client" || target.starts_with("kumo::client::") {
        "client: "
    } else {
        ""
    }
}

/// An event's message, and its other fields as "name value" pairs.
#[derive(Default)]
struct Sentence {
    message: String,
    details: String,
}

impl Sentence {
    fn detail(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if !self.details.is_empty() {
            self.details.push_str(", ");
        }
        // Writing to a String cannot fail.
        write!(self.details, "{} {value}", field.name().replace('_', " ")).ok();
    }
}

impl Visit for Sentence {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.detail(field, format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            // A message is `format_args!`, whose Debug is its text.
            write!(self.message, "{value:?}").ok();
        } else {
            self.detail(field, format_args!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::side;

    #[test]
    fn each_side_is_named_and_other_targets_are_not() {
        assert_eq!(side("kumo::host"), "host: ");
        assert_eq!(side("kumo::host::encode"), "host: ");
        assert_eq!(side("kumo::client::audio"), "client: ");
        assert_eq!(side("kumo::hostname"), "");
        assert_eq!(side("kumo::net::pair"), "");
        assert_eq!(side("wgpu_core"), "");
    }
}

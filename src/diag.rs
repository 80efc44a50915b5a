//! Diagnostics on stderr: `--log-format text` for people (colour only when
//! stderr is a terminal and `NO_COLOR` is unset), `--log-format json` for
//! schedulers: one JSON object per line, the shape of tracing-subscriber's
//! JSON formatter (`timestamp`, `level`, `target`, `fields.message`), for
//! the tracing events and for the summary and error lines alike.

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::LogFormat;

static JSON: AtomicBool = AtomicBool::new(false);

/// Install the tracing subscriber for `format`; `RUST_LOG` overrides the
/// default level (warn).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Json => {
            JSON.store(true, Ordering::Relaxed);
            builder.json().with_ansi(false).with_current_span(false).init();
        }
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
    }
}

fn line(level: &str, prefix: &str, message: &dyn Display) {
    if JSON.load(Ordering::Relaxed) {
        let object = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "target": "bankpipe",
            "fields": {"message": message.to_string()},
        });
        eprintln!("{object}");
    } else {
        eprintln!("{prefix}{message}");
    }
}

/// A line for the person or scheduler running bankpipe (summaries, progress).
pub fn say(message: impl Display) {
    line("INFO", "", &message);
}

/// A warning.
pub fn warn(message: impl Display) {
    line("WARN", "bankpipe: warning: ", &message);
}

/// The error that ends the command.
pub fn error(message: impl Display) {
    line("ERROR", "bankpipe: error: ", &message);
}

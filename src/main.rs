//! `bankpipe` — the command line. Parsing and dispatch only; each command's
//! work lives in `commands/` over the stage crates.

mod cli;
mod commands;
mod setup;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: pages are normalized on worker threads and dropped on the main
/// thread; glibc malloc spent ~25% of a replay's CPU on that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Diagnostics go to stderr; RUST_LOG overrides the default level (warn).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        cli::Command::Replay(args) => commands::replay::run(&args),
        cli::Command::Gen(args) => commands::gen::run(&args),
        cli::Command::Record(args) => commands::record::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bankpipe: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// DESIGN §8: 2 for usage and configuration errors, 75 (EX_TEMPFAIL) when a
/// rate budget is exhausted (resume next run), 1 for other failures.
fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<setup::ConfigProblem>()) {
        return 2;
    }
    let exhausted = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<bankpipe_http::HttpError>(),
            Some(bankpipe_http::HttpError::RateBudgetExhausted { .. })
        ) || matches!(
            e.downcast_ref::<bankpipe_sources::live::LiveError>(),
            Some(bankpipe_sources::live::LiveError::Http(bankpipe_http::HttpError::RateBudgetExhausted { .. }))
        )
    });
    if exhausted {
        75
    } else {
        1
    }
}

//! `bankpipe` — the command line. Parsing and dispatch only; each command's
//! work lives in `commands/` over the stage crates.

mod cli;
mod commands;
mod deliver;
mod diag;
mod ingest;
mod metrics;
mod setup;
mod windows;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: pages are normalized on worker threads and dropped on the main
/// thread; glibc malloc spent ~25% of a replay's CPU on that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    diag::init(cli.log_format);
    let result = match cli.command {
        cli::Command::Replay(args) => commands::replay::run(&args),
        cli::Command::Gen(args) => commands::gen::run(&args),
        cli::Command::Record(args) => commands::record::run(&args),
        cli::Command::Sync(args) => commands::sync::run(&args),
        cli::Command::Backfill(args) => commands::backfill::run(&args),
        cli::Command::Status(args) => commands::status::run(&args),
        cli::Command::Deliveries(command) => commands::deliveries::run(&command),
        cli::Command::Export(args) => commands::export::run(&args),
        cli::Command::Totals(args) => commands::totals::run(&args),
        cli::Command::Explain(args) => commands::explain::run(&args),
        cli::Command::Demo(args) => commands::demo::run(&args),
        cli::Command::Check(args) => commands::check::run(&args),
        cli::Command::Completions { shell } => {
            let mut command = <cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "bankpipe", &mut std::io::stdout());
            Ok(())
        }
        cli::Command::Man => clap_mangen::Man::new(<cli::Cli as clap::CommandFactory>::command())
            .render(&mut std::io::stdout())
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            diag::error(format_args!("{err:#}"));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// DESIGN §8: 2 for usage and configuration errors, 3 when a sync completed
/// but some deliveries failed or stayed in flight, 75 (EX_TEMPFAIL) when a
/// rate budget is exhausted or another sync holds the lock (try again
/// later), 1 for other failures.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    match outcome_of(err) {
        "config-error" => 2,
        "completed-with-failures" => 3,
        "rate-limited" | "locked" => 75,
        _ => 1,
    }
}

/// The run outcome an error stands for: `config-error`,
/// `completed-with-failures`, `rate-limited`, `locked` or `failed`.
pub(crate) fn outcome_of(err: &anyhow::Error) -> &'static str {
    use bankpipe_http::HttpError;
    use bankpipe_sources::live::LiveError;
    for e in err.chain() {
        if e.is::<commands::sync::CompletedWithFailures>() {
            return "completed-with-failures";
        }
        if e.is::<setup::ConfigProblem>()
            || matches!(e.downcast_ref::<bankpipe_sinks::SinkError>(), Some(bankpipe_sinks::SinkError::Config { .. }))
        {
            return "config-error";
        }
        if matches!(e.downcast_ref::<bankpipe_store::StoreError>(), Some(bankpipe_store::StoreError::Locked(_))) {
            return "locked";
        }
        if matches!(e.downcast_ref::<HttpError>(), Some(HttpError::RateBudgetExhausted { .. }))
            || matches!(e.downcast_ref::<LiveError>(), Some(LiveError::Http(HttpError::RateBudgetExhausted { .. })))
            || matches!(
                e.downcast_ref::<bankpipe_sinks::SinkError>(),
                Some(bankpipe_sinks::SinkError::Http { source: HttpError::RateBudgetExhausted { .. }, .. })
            )
        {
            return "rate-limited";
        }
    }
    "failed"
}

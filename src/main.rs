//! `bankpipe` — the command line. Parsing and dispatch only; each command's
//! work lives in `commands/` over the stage crates.

mod cli;
mod commands;
mod diag;
mod metrics;
mod setup;

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

/// The process exit code of a failed command (DESIGN §8; see
/// [`bankpipe_pipeline::Outcome::exit_code`]).
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    bankpipe_pipeline::Outcome::of(err).exit_code()
}

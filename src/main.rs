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
    let result = match cli.command {
        cli::Command::Replay(args) => commands::replay::run(&args),
        cli::Command::Gen(args) => commands::gen::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bankpipe: error: {err:#}");
            // DESIGN §8: 2 for usage and configuration errors, 1 for failures.
            let config_problem = err.chain().any(|e| e.is::<setup::ConfigProblem>());
            ExitCode::from(if config_problem { 2 } else { 1 })
        }
    }
}

//! Command-line definitions (clap derive). Usage errors exit with code 2.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// bankpipe: normalize Truv and Firefly III data into one exact canonical
/// model of accounts, transactions and daily totals.
#[derive(Parser, Debug)]
#[command(name = "bankpipe", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay recorded source pages (no network) into canonical output files.
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay(ReplayArgs),
    /// Generate large, realistic recorded page sets (deterministic per seed).
    #[command(after_help = GEN_EXAMPLES)]
    Gen(GenArgs),
    /// Fetch a configured source's live pages into a recorded directory
    /// (the format replay reads), account numbers masked, secrets removed.
    #[command(after_help = RECORD_EXAMPLES)]
    Record(RecordArgs),
}

const RECORD_EXAMPLES: &str = "\
Examples:
  TRUV_CLIENT_ID=... TRUV_SECRET=... bankpipe record --config bankpipe.toml --source truv-main --out fixtures/truv/2024-03 --from 2024-03-01 --to 2024-03-31
  bankpipe replay --truv fixtures/truv/2024-03 --out out/

Credentials come from the environment variables the source's config names.
Exit 0 on success, 1 on a failure (the message names the URL and the
server's error), 2 on a usage or configuration error, 75 when the rate
budget is exhausted for longer than allowed.";

/// Arguments of `bankpipe record`.
#[derive(Args, Debug)]
pub struct RecordArgs {
    /// Configuration file (default: bankpipe.toml, or $BANKPIPE_CONFIG).
    #[arg(long, value_name = "FILE", env = "BANKPIPE_CONFIG", default_value = "bankpipe.toml")]
    pub config: PathBuf,
    /// Name of the `[[sources]]` entry to record.
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// New (or empty) directory for the page files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// First date (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
    /// Last date (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
    /// Records per page to request.
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,
}

const REPLAY_EXAMPLES: &str = "\
Examples:
  bankpipe replay --truv fixtures/truv/multipage --firefly fixtures/firefly/groups --out out/
  bankpipe replay --truv rec/truv-2024-01 --truv rec/truv-2024-02 --out out/ --tz America/New_York
  bankpipe replay --truv fixtures/truv/multipage --config config/bankpipe.example.toml --explain --out out/

Writes transactions.csv, transactions.jsonl, accounts.csv, daily_totals.csv,
quarantine.jsonl and summary.json (and explain.jsonl with --explain) into
--out. Exit 0 on success (quarantined records are reported, not fatal), 1 when
a page or directory is unusable, 2 on usage or configuration errors.";

const GEN_EXAMPLES: &str = "\
Examples:
  bankpipe gen --out /tmp/truv-1m --transactions 1000000
  bankpipe gen --kind firefly --out /tmp/ff --transactions 50000 --seed 7";

/// Arguments of `bankpipe replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A recorded Truv directory (page files *.json, replayed in file-name order). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub truv: Vec<PathBuf>,
    /// A recorded Firefly III directory. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub firefly: Vec<PathBuf>,
    /// Output directory (created if missing; files in it are overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// IANA time zone for Truv booking dates (Firefly dates keep their own
    /// offset). Default: the config's `sync.timezone`, else UTC.
    #[arg(long, value_name = "ZONE", value_parser = parse_tz)]
    pub tz: Option<chrono_tz::Tz>,
    /// Configuration file for categorization rules and maps (`[[rules]]`,
    /// `[categories]`) and `sync.timezone`. Optional for replay.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write explain.jsonl: per transaction, the rule, MCC row or
    /// source label that decided its category.
    #[arg(long)]
    pub explain: bool,
}

/// Source kind for `bankpipe gen`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum GenKind {
    Truv,
    Firefly,
}

/// Arguments of `bankpipe gen`.
#[derive(Args, Debug)]
pub struct GenArgs {
    /// Output directory for the page files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Which source's pages to write.
    #[arg(long, value_enum, default_value = "truv")]
    pub kind: GenKind,
    /// Number of transactions (Truv records; Firefly splits).
    #[arg(long, default_value_t = 10_000)]
    pub transactions: u64,
    /// Number of accounts.
    #[arg(long, default_value_t = 8)]
    pub accounts: u32,
    /// Records per page.
    #[arg(long, default_value_t = 1_000)]
    pub page_size: u32,
    /// Random seed: the same seed always writes the same pages.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn parse_tz(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse::<chrono_tz::Tz>().map_err(|_| format!("{s:?} is not an IANA time zone name (e.g. UTC, Europe/Berlin)"))
}

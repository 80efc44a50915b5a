//! Command-line definitions (clap derive). Usage errors exit with code 2.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// bankpipe: normalize Truv and Firefly III data into one exact canonical
/// model of accounts, transactions and daily totals.
#[derive(Parser, Debug)]
#[command(name = "bankpipe", version, about, propagate_version = true)]
pub struct Cli {
    /// Diagnostics format on stderr: `text` for people, `json` for schedulers.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--config` shared by every command that reads state.
#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// Configuration file (default bankpipe.toml, or $BANKPIPE_CONFIG).
    #[arg(long, value_name = "FILE", env = "BANKPIPE_CONFIG", default_value = "bankpipe.toml")]
    pub config: PathBuf,
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
    /// The scheduled job: fetch every source from its watermark minus the
    /// overlap, store, dedupe, advance watermarks. Idempotent.
    #[command(after_help = SYNC_EXAMPLES)]
    Sync(SyncArgs),
    /// The one-off job: fetch a date range window by window, each window a
    /// checkpoint; rerun after a crash to resume.
    #[command(after_help = BACKFILL_EXAMPLES)]
    Backfill(BackfillArgs),
    /// Last runs, watermarks, quarantine and delivery backlog.
    Status(StatusArgs),
    /// The delivery ledger: list deliveries with the server's reasons;
    /// retry failed ones, resend ones deleted in the sink, skip others.
    #[command(subcommand, after_help = DELIVERIES_EXAMPLES)]
    Deliveries(DeliveriesCommand),
    /// Write the stored dataset as the same files replay writes.
    Export(ExportArgs),
    /// Daily totals of one account over a date range, from the store.
    Totals(TotalsArgs),
    /// Why a stored transaction was kept, merged, superseded or categorized so.
    Explain(ExplainArgs),
    /// The doctor: validate the config and its environment variables, reach
    /// every source and sink once with the credentials, verify households,
    /// accounts and budgets named in the config, and list source accounts
    /// without a mapping (with a snippet to paste). Exit 0 when all is well,
    /// 3 when a problem was found, 2 for a configuration error.
    Check(CheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    /// on stdout, e.g. `bankpipe completions bash > /etc/bash_completion.d/bankpipe`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout, e.g. `bankpipe man > bankpipe.1`.
    Man,
    /// The main job end to end on bundled data: simulators of Truv, Firefly
    /// III, Trupocket and mibudge on 127.0.0.1, a sync into SQLite, delivery
    /// to both sinks, and a summary. Run it twice: nothing new is delivered.
    Demo(DemoArgs),
}

/// Arguments of `bankpipe check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `bankpipe deliveries …`.
#[derive(Subcommand, Debug)]
pub enum DeliveriesCommand {
    /// List deliveries (newest booking date first) with state, sink row id
    /// and the server's reason.
    List(DeliveriesListArgs),
    /// Failed or skipped → queued again: the next sync plans and sends them
    /// (e.g. after fixing `[sinks.accounts]`).
    Retry(DeliveriesSelect),
    /// Delivered → sent again by the next sync, which first looks for the
    /// row's marker on the sink: only a row the user deleted is recreated.
    Resend(DeliveriesSelect),
    /// Queued or failed → skipped: never delivered (until retried).
    Skip(DeliveriesSelect),
}

/// Which deliveries (`bankpipe deliveries`); every filter given must hold.
#[derive(Args, Debug, Clone)]
pub struct DeliveriesFilter {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this sink.
    #[arg(long)]
    pub sink: Option<String>,
    /// Only this source account: `source:account` or a bare account id.
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
    /// Booking dates from (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
    /// Booking dates to (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
    /// Only these canonical transaction ids (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
}

/// Arguments of `bankpipe deliveries list`.
#[derive(Args, Debug)]
pub struct DeliveriesListArgs {
    #[command(flatten)]
    pub filter: DeliveriesFilter,
    /// Only this state: pending, in_flight, delivered, failed, replaced, skipped.
    #[arg(long)]
    pub state: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The deliveries an action applies to. At least one filter is required,
/// or `--all`.
#[derive(Args, Debug)]
pub struct DeliveriesSelect {
    #[command(flatten)]
    pub filter: DeliveriesFilter,
    /// Apply to every delivery in a state the action allows.
    #[arg(long)]
    pub all: bool,
}

const DELIVERIES_EXAMPLES: &str = "\
Examples:
  bankpipe deliveries list --config bankpipe.toml --state failed
  bankpipe deliveries retry --config bankpipe.toml --sink trupocket --account truv-main:68a7e809
  bankpipe deliveries resend --config bankpipe.toml --id 3f9a0c1d2e4b5a69aa73184331037136
  bankpipe deliveries skip --config bankpipe.toml --sink mibudge --to 2023-12-31

Exit codes: 0 ok; 1 failure; 2 usage or configuration error.";

/// Arguments of `bankpipe demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for the demo's state (bankpipe.db) and generated config.
    #[arg(long, value_name = "DIR", default_value = "bankpipe-demo")]
    pub dir: PathBuf,
    /// Fixture directory holding truv/multipage and firefly/groups.
    #[arg(long, value_name = "DIR", default_value = "fixtures")]
    pub fixtures: PathBuf,
}

const SYNC_EXAMPLES: &str = "\
Examples:
  bankpipe sync --config /etc/bankpipe.toml
  bankpipe sync --config bankpipe.toml --source truv-main --json --log-format json

cron (nightly at 02:30):
  30 2 * * *  bankpipe sync --config /etc/bankpipe.toml --log-format json >>/var/log/bankpipe.json 2>&1

Exit codes: 0 ok: every source fetched, every delivery of this run settled;
1 failure (e.g. the store); 2 usage or configuration error; 3 completed with
failures: a source or a sink failed (the others proceeded), or deliveries
failed in this run (the server's reason is in `status`) or stayed in flight
(reconciled by the next run); 75 rate budget exhausted or another sync
running (try again later).";

const BACKFILL_EXAMPLES: &str = "\
Examples:
  bankpipe backfill --config bankpipe.toml --from 2020-01-01 --to 2024-12-31
  bankpipe backfill --config bankpipe.toml --from 2024-01-01 --to 2024-03-31 --source firefly --window-days 7

Kill it at any moment and run the same command again: finished windows are
skipped, the interrupted one is fetched again (upserts are idempotent).";

/// Arguments of `bankpipe sync`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only these sources (repeatable; default all).
    #[arg(long, value_name = "NAME")]
    pub source: Vec<String>,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Fetch and normalize, then print (JSON lines on stdout) the requests
    /// each sink would receive; write nothing, send nothing.
    #[arg(long, conflicts_with = "json")]
    pub dry_run: bool,
    /// Write Prometheus metrics of this run to this file at its end
    /// (atomically: a temporary file renamed), e.g. for node_exporter's
    /// textfile collector.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Walk every source's whole history now instead of its per-account
    /// windows (a back-dated or edited entry older than any window; see
    /// `full_sweep_days` for doing it periodically).
    #[arg(long)]
    pub full: bool,
}

/// Arguments of `bankpipe backfill`.
#[derive(Args, Debug)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// First date (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    pub from: chrono::NaiveDate,
    /// Last date (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    pub to: chrono::NaiveDate,
    /// Only these sources (repeatable; default all).
    #[arg(long, value_name = "NAME")]
    pub source: Vec<String>,
    /// Window length in days (default: calendar months).
    #[arg(long, value_name = "DAYS")]
    pub window_days: Option<u32>,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bankpipe status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Runs to show.
    #[arg(long, default_value_t = 10)]
    pub runs: u32,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bankpipe export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Which transaction files to write.
    #[arg(long, value_enum, default_value = "both")]
    pub format: FormatArg,
}

/// `--format`: the transaction files written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// transactions.csv only.
    Csv,
    /// transactions.jsonl only.
    Jsonl,
    /// Both (default).
    Both,
}

impl From<FormatArg> for bankpipe_sinks::file::RowFormats {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => bankpipe_sinks::file::RowFormats::Csv,
            FormatArg::Jsonl => bankpipe_sinks::file::RowFormats::Jsonl,
            FormatArg::Both => bankpipe_sinks::file::RowFormats::Both,
        }
    }
}

/// `NAME=DIR` of `replay --source`.
fn parse_binding(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => Ok((name.to_owned(), PathBuf::from(dir))),
        _ => Err(format!("{s:?}: expected NAME=DIR (a configured source name and a recorded directory)")),
    }
}

/// Arguments of `bankpipe totals`.
#[derive(Args, Debug)]
pub struct TotalsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The account, as SOURCE:ACCOUNT_ID.
    #[arg(long, value_name = "SOURCE:ID")]
    pub account: String,
    /// First booking date.
    #[arg(long, value_name = "DATE")]
    pub from: chrono::NaiveDate,
    /// Last booking date.
    #[arg(long, value_name = "DATE")]
    pub to: chrono::NaiveDate,
}

/// Arguments of `bankpipe explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Canonical id (32 hex), or a source transaction id.
    pub id: String,
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
    #[command(flatten)]
    pub config: ConfigArg,
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
  bankpipe replay --config bankpipe.toml --source truv-main=rec/truv --source ledger=rec/firefly --out out/
  bankpipe replay --truv fixtures/truv/multipage --out out/ --expect fixtures/golden/multipage
  bankpipe replay --truv fixtures/truv/multipage --out out/ --expect fixtures/golden/multipage --update

A replay is a sync over recorded pages: the same ids, rules, dedupe
(identity, pending -> posted, cross-source) and daily-total reconciliation
as `bankpipe sync` followed by `bankpipe export`, into a scratch database.
Writes transactions.csv, transactions.jsonl (see --format), accounts.csv,
daily_totals.csv, quarantine.jsonl and summary.json (and explain.jsonl with
--explain) into --out. With --expect, compares them with the golden
directory: exit 1 and a row-level diff on any difference. Exit 0 on success
(quarantined records are reported, not fatal), 1 when a page or directory is
unusable or the output differs from --expect, 2 on usage or configuration
errors.";

const GEN_EXAMPLES: &str = "\
Examples:
  bankpipe gen --out /tmp/truv-1m --transactions 1000000
  bankpipe gen --kind firefly --out /tmp/ff --transactions 50000 --seed 7";

/// Arguments of `bankpipe replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A recorded directory bound to a configured source: NAME=DIR (needs
    /// --config). The pages get that source's name, canonical ids, rules
    /// and sink plans, exactly as a sync of them would. Repeatable.
    #[arg(long = "source", value_name = "NAME=DIR", value_parser = parse_binding, requires = "config")]
    pub sources: Vec<(String, PathBuf)>,
    /// A recorded Truv directory (page files *.json, replayed in file-name
    /// order), replayed as a source named `truv`. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub truv: Vec<PathBuf>,
    /// A recorded Firefly III directory, replayed as a source named `firefly`. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub firefly: Vec<PathBuf>,
    /// Which transaction files to write.
    #[arg(long, value_enum, default_value = "both")]
    pub format: FormatArg,
    /// Compare every output file with this golden directory: a row-level
    /// diff (added, removed, changed rows keyed by canonical id) and exit 1
    /// on any difference.
    #[arg(long, value_name = "DIR")]
    pub expect: Option<PathBuf>,
    /// With --expect: rewrite the golden directory from this output instead
    /// of comparing (review the change with `git diff`).
    #[arg(long, requires = "expect")]
    pub update: bool,
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
    /// Also write, per configured sink, DIR/<sink>.jsonl: the exact requests
    /// (method, path, body) delivery would make — golden files for CI.
    /// Needs --config with [[sinks]].
    #[arg(long, value_name = "DIR", requires = "config")]
    pub sink_requests: Option<PathBuf>,
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

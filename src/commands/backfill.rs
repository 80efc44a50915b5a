//! `bankpipe backfill --from --to`: the one-off job (DESIGN §8; the work is
//! `bankpipe_pipeline::backfill`). A progress bar (windows, transactions,
//! rate, ETA) on a terminal; plain log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use bankpipe_pipeline::backfill::BackfillRange;
use bankpipe_sources::live::LiveSource;
use bankpipe_store::{with_store, Store};
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::BackfillArgs;
use crate::commands::sync::summary_line;
use crate::setup::{self, ConfigProblem};

pub fn run(args: &BackfillArgs) -> Result<()> {
    if args.to < args.from {
        return Err(ConfigProblem(format!("--to {} is before --from {}", args.to, args.from)).into());
    }
    let path = &args.config.config;
    let config = setup::load_config(Some(path))?;
    let categorizer = setup::categorizer(&config, Some(path))?;
    let sources = setup::select_sources(&config, path, &args.source)?;
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&config).await?;
        // SQLite: one process per database file. PostgreSQL: backfill
        // workers share the windows through leases (DESIGN §7), no lock.
        let _lock = match &store {
            bankpipe_store::AnyStore::Sqlite(_) => Some(store.lock().await?),
            bankpipe_store::AnyStore::Postgres(_) => None,
        };
        with_store!(&store, s => backfill(s, &config, &categorizer, &sources, args).await)
    })
}

/// Progress output: a bar on a terminal, a line per window (at most every
/// few seconds, and always for the last) otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    transactions: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} windows  {msg}  ETA {eta}",
                )
                .expect("valid template"),
            );
            bar
        });
        let now = Instant::now();
        Progress { bar, total, done: 0, transactions: 0, started: now, last_line: now - Duration::from_secs(60) }
    }

    fn window_done(&mut self, source: &str, window: (NaiveDate, NaiveDate), records: u64, skipped: bool) {
        self.done += 1;
        self.transactions += records;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.transactions as f64 / secs;
        let eta = if self.done == 0 { 0.0 } else { secs / self.done as f64 * (self.total - self.done) as f64 };
        let message = format!("{} transactions, {rate:.0}/s", self.transactions);
        match &self.bar {
            Some(bar) => {
                bar.set_message(message);
                bar.inc(1);
            }
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(2) || self.done == self.total {
                    self.last_line = Instant::now();
                    crate::diag::say(format_args!(
                        "backfill: {source} {}..{} {} ({}/{} windows, {message}, ETA {eta:.0} s)",
                        window.0,
                        window.1,
                        if skipped { "already done".to_owned() } else { format!("{records} records") },
                        self.done,
                        self.total
                    ));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn backfill<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    args: &BackfillArgs,
) -> Result<()> {
    let range = BackfillRange { from: args.from, to: args.to, window_days: args.window_days };
    let windows = bankpipe_pipeline::backfill::windows(args.from, args.to, args.window_days).len();
    let mut progress = Progress::new((windows * sources.len()) as u64);
    let (summary, result) = bankpipe_pipeline::backfill::backfill(store, config, categorizer, sources, range, |w| {
        progress.window_done(w.source, w.window, w.records, w.skipped)
    })
    .await?;
    progress.finish();
    crate::diag::say(summary_line("backfill", &summary));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    result
}

//! `bankpipe backfill --from --to`: the one-off job (DESIGN §8).
//!
//! The range is split into windows (calendar months by default); each
//! (source, window) is fetched, stored, deduped and then checkpointed in the
//! store. Rerunning after a crash (kill -9 included) skips finished windows
//! and fetches the interrupted one again — upserts make that idempotent.
//! Watermarks only ever move forward. A progress bar (windows, transactions,
//! rate, ETA) on a terminal; plain log lines otherwise.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::{with_store, RunKind, Store};
use chrono::{Datelike, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::BackfillArgs;
use crate::commands::sync::{summary_line, SyncSummary};
use crate::setup::{self, ConfigProblem};
use bankpipe_pipeline::ingest::{self, SourceOutcome};

/// Split `[from, to]` into windows: `days` long, or calendar months.
pub fn windows(from: NaiveDate, to: NaiveDate, days: Option<u32>) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = match days {
            Some(n) => start + chrono::Days::new(u64::from(n.max(1)) - 1),
            None => {
                let first_of_next = if start.month() == 12 {
                    NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
                }
                .expect("valid date");
                first_of_next.pred_opt().expect("valid date")
            }
        };
        let end = end.min(to);
        out.push((start, end));
        start = end.succ_opt().expect("valid date");
    }
    out
}

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
        let _lock = store.lock().await?;
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
    let started = Instant::now();
    let plan = windows(args.from, args.to, args.window_days);
    let run = store.begin_run(RunKind::Backfill).await?;
    let mut progress = Progress::new((plan.len() * sources.len()) as u64);
    let mut totals: Vec<SourceOutcome> = sources
        .iter()
        .map(|s| SourceOutcome {
            source: s.ctx.source.to_string(),
            from: Some(args.from),
            to: Some(args.to),
            ..SourceOutcome::default()
        })
        .collect();
    let mut superseded = 0;
    let mut duplicates = 0;
    let result: Result<()> = async {
        let client = HttpClient::new(Policy::default())?;
        let today = Utc::now().date_naive();
        for (source, total) in sources.iter().zip(totals.iter_mut()) {
            for &(from, to) in &plan {
                let name = source.ctx.source.to_string();
                if store.backfill_window_done(&name, from, to).await? {
                    progress.window_done(&name, (from, to), 0, true);
                    continue;
                }
                let feed = ingest::LiveFeed { source, client: &client };
                let o =
                    ingest::ingest_window(store, run, categorizer, &feed, Window { from: Some(from), to: Some(to) })
                        .await?;
                let touched: BTreeSet<(String, String)> =
                    o.accounts.iter().map(|a| (name.clone(), a.clone())).collect();
                let (s, d) = ingest::dedupe(store, run, config, &touched, Some(from)).await?;
                superseded += s;
                duplicates += d;
                let dates: Vec<(String, NaiveDate)> =
                    o.latest_posted.iter().map(|(a, d)| (a.clone(), (*d).min(today))).collect();
                store.advance_watermarks(run, &name, &dates).await?;
                store.complete_backfill_window(run, &name, from, to, o.records).await?;
                progress.window_done(&name, (from, to), o.records, false);
                total.merge(o);
            }
        }
        ingest::reconcile_totals(store, &mut totals, Some(args.from)).await
    }
    .await;
    progress.finish();
    let record = ingest::run_record(&result, &totals, superseded, duplicates);
    let (outcome, error) = (record.outcome.clone(), record.message.clone());
    store.finish_run(run, &record).await?;
    let summary = SyncSummary {
        run,
        outcome,
        sources: totals,
        superseded,
        duplicates,
        deliveries: Vec::new(),
        error,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    };
    crate::diag::say(summary_line("backfill", &summary));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_month_windows_cover_the_range_exactly() {
        let w = windows(d("2024-01-15"), d("2024-03-10"), None);
        assert_eq!(
            w,
            [
                (d("2024-01-15"), d("2024-01-31")),
                (d("2024-02-01"), d("2024-02-29")),
                (d("2024-03-01"), d("2024-03-10"))
            ]
        );
        let w = windows(d("2023-12-01"), d("2024-01-31"), None);
        assert_eq!(w, [(d("2023-12-01"), d("2023-12-31")), (d("2024-01-01"), d("2024-01-31"))]);
    }

    #[test]
    fn day_windows() {
        let w = windows(d("2024-01-01"), d("2024-01-10"), Some(4));
        assert_eq!(
            w,
            [
                (d("2024-01-01"), d("2024-01-04")),
                (d("2024-01-05"), d("2024-01-08")),
                (d("2024-01-09"), d("2024-01-10"))
            ]
        );
        assert_eq!(windows(d("2024-01-01"), d("2024-01-01"), Some(30)), [(d("2024-01-01"), d("2024-01-01"))]);
    }
}

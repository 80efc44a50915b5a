//! The one-off job (DESIGN §8) as a library: `bankpipe backfill` parses
//! its arguments, calls [`backfill`] with a progress callback and prints
//! the [`SyncSummary`].
//!
//! The range is split into windows (calendar months by default); each
//! (source, window) is fetched, stored, deduped and then checkpointed in the
//! store. Rerunning after a crash (kill -9 included) skips finished windows
//! and fetches the interrupted one again — upserts make that idempotent.
//! Watermarks only ever move forward. The sources' daily totals are
//! reconciled at the end. Nothing is delivered: the next sync does.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::{RunKind, RunLog, TransactionStore};
use chrono::{Datelike, NaiveDate, Utc};

use crate::ingest::{self, SourceOutcome};
use crate::sync::SyncSummary;

/// The dates of a backfill: `[from, to]` (inclusive) in windows of
/// `window_days` days, or calendar months when `None`.
#[derive(Clone, Copy, Debug)]
pub struct BackfillRange {
    /// First booking date.
    pub from: NaiveDate,
    /// Last booking date.
    pub to: NaiveDate,
    /// Window length in days; `None` = calendar months.
    pub window_days: Option<u32>,
}

/// One (source, window) finished, for progress output.
#[derive(Clone, Copy, Debug)]
pub struct WindowDone<'a> {
    /// Source name.
    pub source: &'a str,
    /// The window's first and last date.
    pub window: (NaiveDate, NaiveDate),
    /// Records fetched (0 when skipped).
    pub records: u64,
    /// Already checkpointed by an earlier run: not fetched again.
    pub skipped: bool,
}

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

/// Backfill `sources` over `range` into `store`, calling `progress` after
/// every (source, window). Returns the summary and the run's result (the
/// first error stops the backfill; finished windows stay checkpointed).
///
/// # Errors
/// The outer `Err`: the run could not even be recorded (store down).
pub async fn backfill<S: RunLog + TransactionStore>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    range: BackfillRange,
    mut progress: impl FnMut(WindowDone<'_>),
) -> Result<(SyncSummary, Result<()>)> {
    let started = Instant::now();
    let plan = windows(range.from, range.to, range.window_days);
    let run = store.begin_run(RunKind::Backfill).await?;
    let mut totals: Vec<SourceOutcome> = sources
        .iter()
        .map(|s| SourceOutcome {
            source: s.ctx.source.to_string(),
            from: Some(range.from),
            to: Some(range.to),
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
                    progress(WindowDone { source: &name, window: (from, to), records: 0, skipped: true });
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
                progress(WindowDone { source: &name, window: (from, to), records: o.records, skipped: false });
                total.merge(o);
            }
        }
        ingest::reconcile_totals(store, &mut totals, Some(range.from)).await
    }
    .await;
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
    Ok((summary, result))
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

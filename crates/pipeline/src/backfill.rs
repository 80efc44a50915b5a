//! The one-off job (DESIGN §8) as a library: `bankpipe backfill` parses
//! its arguments, calls [`backfill`] with a progress callback and prints
//! the [`SyncSummary`].
//!
//! The range is split into windows (calendar months by default); each
//! (source, window) is fetched, stored and then checkpointed in the store,
//! as one unit of a round that several workers can share (DESIGN §7); then
//! one unit dedupes the range and reconciles the sources' daily totals.
//! Rerunning after a crash (kill -9 included) skips finished windows and
//! fetches the interrupted one again — upserts make that idempotent.
//! Watermarks only ever move forward. Nothing is delivered: the next sync
//! does.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::leases::{Phase, UnitSpec};
use bankpipe_store::{RunKind, Store};
use chrono::{Datelike, NaiveDate, Utc};
use serde_json::json;

use crate::ingest::{self, SourceOutcome};
use crate::leases::{self, LeaseTiming, LeaseWatch};
use crate::round::{self, ended_by, Ended};
use crate::sync::SyncSummary;
use crate::CompletedWithFailures;

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
/// every (source, window) this worker finished or skipped.
///
/// A backfill is a round of units (DESIGN §7, as for `sync`): one per
/// (source, window) — fetch, store, move the watermarks forward (never
/// back), checkpoint — then one `dedupe` unit over every account of the
/// selected sources from `range.from` on, which also reconciles the
/// sources' daily totals. Several `backfill` processes with the same
/// configuration and range on one PostgreSQL database share the windows;
/// alone (always, on SQLite) a worker does them all. A window that fails
/// is recorded with its error and the others go on; the next backfill
/// fetches only the windows not checkpointed.
///
/// Returns the summary of what *this* worker did and the run's result
/// (`Err` carrying [`crate::CompletedWithFailures`] when a window failed).
///
/// # Errors
/// The outer `Err`: the run could not even be recorded (store down), or a
/// live backfill round runs another configuration or range
/// (`StoreError::MixedConfig`, exit 2).
pub async fn backfill<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    range: BackfillRange,
    mut progress: impl FnMut(WindowDone<'_>),
) -> Result<(SyncSummary, Result<()>)> {
    let started = Instant::now();
    let timing = LeaseTiming::from_secs(config.sync.lease_secs);
    let names: Vec<&str> = sources.iter().map(|s| &*s.ctx.source).collect();
    let hash = leases::config_hash(&[
        &config.sync,
        &config.sources,
        &config.rules,
        &config.categories,
        &config.dedupe,
        &config.account_links,
        &names,
        &(range.from, range.to, range.window_days),
    ]);
    let worker = leases::worker_info(hash);
    let plan = windows(range.from, range.to, range.window_days);
    let mut units: Vec<UnitSpec> = sources
        .iter()
        .flat_map(|s| plan.iter().map(move |w| UnitSpec { unit: window_unit(&s.ctx.source, *w), phase: Phase::Fetch }))
        .collect();
    units.push(UnitSpec { unit: DEDUPE.to_owned(), phase: Phase::Dedupe });
    let (joined, run) = round::join(store, &worker, RunKind::Backfill, &units, &timing).await?;
    // A first load (an empty store) writes into the table alone;
    // the dedupe unit builds the indexes before it reads them.
    store.defer_indexes().await?;
    let mut totals: Vec<SourceOutcome> = sources
        .iter()
        .map(|s| SourceOutcome {
            source: s.ctx.source.to_string(),
            from: Some(range.from),
            to: Some(range.to),
            ..SourceOutcome::default()
        })
        .collect();
    let (mut superseded, mut duplicates) = (0, 0);
    let mut failures: Vec<String> = Vec::new();
    let mut fatal: Option<anyhow::Error> = None;
    let watch = LeaseWatch::default();
    let client = HttpClient::new(Policy::default())?;
    let today = Utc::now().date_naive();
    let work = round::work(store, joined.round, &worker, &timing, &watch, async |claimed, fence| {
        if claimed.unit == DEDUPE {
            let work = async {
                store.build_deferred_indexes().await?;
                let names: BTreeSet<&str> = names.iter().copied().collect();
                let accounts: BTreeSet<(String, String)> = store
                    .accounts()
                    .await?
                    .into_iter()
                    .filter(|a| names.contains(&*a.source))
                    .map(|a| (a.source.to_string(), a.source_account_id))
                    .collect();
                let counts = ingest::dedupe(store, run, config, &accounts, Some(range.from)).await?;
                ingest::reconcile_totals(store, &mut totals, Some(range.from)).await?;
                anyhow::Ok(counts)
            };
            return match work.await {
                Ok((s, d)) => {
                    (superseded, duplicates) = (superseded + s, duplicates + d);
                    Ended::Done(json!({ "superseded": s, "duplicates": d }), None)
                }
                Err(e) => ended_by(&e, claimed).unwrap_or_else(|| {
                    let text = format!("{e:#}");
                    fatal = Some(e);
                    Ended::Done(json!({}), Some(text))
                }),
            };
        }
        let Some((i, from, to)) = parse_window_unit(&claimed.unit, sources) else {
            return Ended::Done(
                json!({}),
                Some(format!("unknown unit {:?} (another bankpipe version?)", claimed.unit)),
            );
        };
        let (source, name) = (&sources[i], sources[i].ctx.source.to_string());
        let work = async {
            if store.backfill_window_done(&name, from, to).await? {
                return anyhow::Ok(None);
            }
            let bound = store.bound(fence.clone(), None);
            let feed = ingest::LiveFeed { source, client: &client };
            let o = ingest::ingest_window(&bound, run, categorizer, &feed, Window { from: Some(from), to: Some(to) })
                .await?;
            let dates: Vec<(String, NaiveDate)> =
                o.latest_posted.iter().map(|(a, d)| (a.clone(), (*d).min(today))).collect();
            bound.advance_watermarks(run, &name, &dates).await?;
            bound.complete_backfill_window(run, &name, from, to, o.records).await?;
            Ok(Some(o))
        };
        match work.await {
            Ok(None) => {
                progress(WindowDone { source: &name, window: (from, to), records: 0, skipped: true });
                Ended::Done(json!({ "skipped": true }), None)
            }
            Ok(Some(o)) => {
                progress(WindowDone { source: &name, window: (from, to), records: o.records, skipped: false });
                let result = json!({ "records": o.records });
                totals[i].merge(o);
                Ended::Done(result, None)
            }
            Err(e) => ended_by(&e, claimed).unwrap_or_else(|| {
                let text = format!("{e:#}");
                tracing::error!(source = %name, window = %format!("{from}..{to}"), "{text}");
                failures.push(format!("source {name} window {from}..{to} failed: {text}"));
                if totals[i].error.is_none() {
                    totals[i].error = Some(text.clone());
                }
                Ended::Done(json!({ "failed": true }), Some(text))
            }),
        }
    });
    let finished = round::with_heartbeat(store, &worker, &timing, &watch, work).await;
    // Built here too when the round stopped before its dedupe unit.
    let built = store.build_deferred_indexes().await;
    let result: Result<()> = match (finished.and(built.map(drop).map_err(Into::into)), fatal) {
        (Err(e), _) | (Ok(()), Some(e)) => Err(e),
        (Ok(()), None) if !failures.is_empty() => Err(CompletedWithFailures(failures.join("; ")).into()),
        (Ok(()), None) => Ok(()),
    };
    let record = ingest::run_record(&result, &totals, superseded, duplicates);
    let (outcome, error) = (record.outcome.clone(), record.message.clone());
    round::finish(store, &worker, run, &record).await?;
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

const DEDUPE: &str = "dedupe";

/// `window:SOURCE:FROM:TO` (dates ISO 8601).
fn window_unit(source: &str, (from, to): (NaiveDate, NaiveDate)) -> String {
    format!("window:{source}:{from}:{to}")
}

/// The source (index in `sources`) and dates of a window unit.
fn parse_window_unit(unit: &str, sources: &[LiveSource]) -> Option<(usize, NaiveDate, NaiveDate)> {
    let rest = unit.strip_prefix("window:")?;
    let (rest, to) = rest.rsplit_once(':')?;
    let (source, from) = rest.rsplit_once(':')?;
    let i = sources.iter().position(|s| &*s.ctx.source == source)?;
    Some((i, from.parse().ok()?, to.parse().ok()?))
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

//! The scheduled job (DESIGN §8) as a library: `bankpipe sync` parses its
//! arguments, calls [`sync`] and prints the [`SyncSummary`].
//!
//! Per source, on its own: fetch its per-account windows (see
//! [`crate::windows`]: from `min(oldest pending, watermark − overlap)`, the
//! whole history on the first run, for a new account, with `full` or when
//! `full_sweep_days` is due), categorize and upsert page by page, prove the
//! walk complete against the source's own count, and move its watermarks
//! forward. A failing source never stops the others: then pending →
//! posted and cross-source pairing, the sources' daily totals reconciled,
//! and delivery of everything stored, each sink on its own.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sources::live::LiveSource;
use bankpipe_store::{RunKind, Store};
use serde::Serialize;

use crate::ingest::{self, SourceOutcome};
use crate::{CompletedWithFailures, Outcome};

/// What a sync (or backfill) did: the `--json` output and the summary line.
#[derive(Debug, Serialize)]
pub struct SyncSummary {
    /// Run id in the store.
    pub run: i64,
    /// `ok`, `failed`, `completed-with-failures`, `rate-limited`, … ([`Outcome::as_str`]).
    pub outcome: String,
    /// Per source.
    pub sources: Vec<SourceOutcome>,
    /// Pending rows superseded by their posted rows.
    pub superseded: u64,
    /// Cross-source duplicates marked.
    pub duplicates: u64,
    /// Per sink: what the delivery pass did.
    pub deliveries: Vec<bankpipe_sinks::DeliveryReport>,
    /// Error message when not ok.
    pub error: Option<String>,
    /// Wall time, seconds.
    pub elapsed_seconds: f64,
}

/// Run one sync over `sources` into `store`, then deliver to every
/// configured sink. The run is recorded in the store whatever happens.
///
/// Returns the summary and the run's result: `Err` carries the outcome
/// ([`Outcome::of`]): [`CompletedWithFailures`] when a source or some
/// deliveries failed, an exhausted rate budget when only budgets ran out.
/// `zone` is the booking zone (`sync.timezone`).
///
/// # Errors
/// The outer `Err`: the run could not even be recorded (store down).
pub async fn sync<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    full: bool,
    zone: chrono_tz::Tz,
) -> Result<(SyncSummary, Result<()>)> {
    let started = Instant::now();
    let run = store.begin_run(RunKind::Sync).await?;
    let mut outcomes: Vec<SourceOutcome> = Vec::new();
    let mut source_errors: Vec<anyhow::Error> = Vec::new();
    let result: Result<(u64, u64)> = async {
        let client = HttpClient::new(Policy::default())?;
        for source in sources {
            // Each source on its own: one failing never stops the others.
            match ingest::sync_source(store, run, &client, categorizer, config, source, full).await {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    tracing::error!(source = %source.ctx.source, "{e:#}");
                    outcomes.push(SourceOutcome {
                        source: source.ctx.source.to_string(),
                        error: Some(format!("{e:#}")),
                        ..SourceOutcome::default()
                    });
                    source_errors.push(e);
                }
            }
        }
        let touched: BTreeSet<(String, String)> =
            outcomes.iter().flat_map(|o| o.accounts.iter().map(|a| (o.source.clone(), a.clone()))).collect();
        let since = if outcomes.iter().any(|o| o.from.is_none() && o.error.is_none()) {
            None
        } else {
            outcomes.iter().filter_map(|o| o.from).min()
        };
        let counts = ingest::dedupe(store, run, config, &touched, since).await?;
        ingest::reconcile_totals(store, &mut outcomes, since).await?;
        Ok(counts)
    }
    .await;
    // Deliveries: everything stored is delivered, whichever source failed;
    // each sink on its own, one failing never stops the others.
    let mut deliveries = Vec::new();
    let mut errors: Vec<(String, anyhow::Error)> = source_errors
        .into_iter()
        .zip(outcomes.iter().filter(|o| o.error.is_some()))
        .map(|(e, o)| (format!("source {}", o.source), e))
        .collect();
    if result.is_ok() {
        for sink in &config.sinks {
            match crate::deliver::deliver_sink(store, categorizer, sink, zone).await {
                Ok(report) => deliveries.push(report),
                Err(e) => {
                    tracing::error!(sink = %sink.name, "{e:#}");
                    errors.push((format!("sink {}", sink.name), e));
                }
            }
        }
    }
    let mut failures: Vec<String> = errors.iter().map(|(who, e)| format!("{who} failed: {e:#}")).collect();
    failures.extend(deliveries.iter().filter(|d| d.failed > 0 || d.in_flight > 0 || d.stopped.is_some()).map(|d| {
        format!(
            "{}: {} failed, {} in flight{}",
            d.sink,
            d.failed,
            d.in_flight,
            d.stopped.as_deref().map(|m| format!(", stopped: {m}")).unwrap_or_default()
        )
    }));
    // Only rate budgets ran out (nothing else failed): 75, try again later.
    let only_rate_limited = !errors.is_empty()
        && failures.len() == errors.len()
        && errors.iter().all(|(_, e)| Outcome::of(e) == Outcome::RateLimited);
    let result = match result {
        Ok(_) if only_rate_limited => Err(errors.swap_remove(0).1),
        Ok(_) if !failures.is_empty() => Err(CompletedWithFailures(failures.join("; ")).into()),
        r => r,
    };
    let (superseded, duplicates) = result.as_ref().map_or((0, 0), |&(s, d)| (s, d));
    let record = ingest::run_record(&result, &outcomes, superseded, duplicates);
    let (outcome, error) = (record.outcome.clone(), record.message.clone());
    store.finish_run(run, &record).await?;
    let summary = SyncSummary {
        run,
        outcome,
        sources: outcomes,
        superseded,
        duplicates,
        deliveries,
        error,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    };
    for o in &summary.sources {
        for w in &o.warnings {
            tracing::warn!(source = %o.source, "{w}");
        }
    }
    Ok((summary, result.map(|_| ())))
}

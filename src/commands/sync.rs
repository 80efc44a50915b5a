//! `bankpipe sync`: the scheduled job (DESIGN §8).
//!
//! Per source: fetch from its watermark minus `sync.overlap_days` (all
//! history on the first run), categorize and upsert page by page, then pair
//! pending → posted and cross-source duplicates, and only then — when every
//! source succeeded — move the watermarks forward. One sync per database at
//! a time.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::{with_store, RunKind, Store};
use chrono::Utc;
use serde::Serialize;

use crate::cli::SyncArgs;
use crate::ingest::{self, SourceOutcome};
use crate::setup;

/// A sync that completed, but some deliveries of this run failed (their
/// reasons are in the ledger) or stayed in flight: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("completed, but not every delivery settled: {0}")]
pub struct DeliveriesIncomplete(pub String);

/// `--json` output and the summary line.
#[derive(Debug, Serialize)]
pub struct SyncSummary {
    /// Run id in the store.
    pub run: i64,
    /// `ok`, `failed` or `rate-limited`.
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

pub fn run(args: &SyncArgs) -> Result<()> {
    let path = &args.config.config;
    let config = setup::load_config(Some(path))?;
    let categorizer = setup::categorizer(&config, Some(path))?;
    let sources = setup::select_sources(&config, path, &args.source)?;
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&config).await?;
        if args.dry_run {
            return with_store!(&store, s => dry_run(s, &config, &categorizer, &sources).await);
        }
        let _lock = store.lock().await?;
        with_store!(&store, s => sync(s, &config, &categorizer, &sources, args.json).await)
    })
}

/// `--dry-run`: fetch from the watermarks as a sync would, normalize and
/// categorize in memory, and print the requests each sink would receive for
/// the rows it does not have yet (JSON lines on stdout). Writes nothing to
/// the store, sends nothing to a sink. Dedupe decisions of this fetch are
/// not applied (they need the store).
async fn dry_run<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
) -> Result<()> {
    let client = HttpClient::new(Policy::default())?;
    let mut planned = 0u64;
    for source in sources {
        let from = ingest::sync_start(store, &source.ctx.source, config.sync.overlap_days).await?;
        let mut rows = Vec::new();
        source
            .walk::<anyhow::Error, _>(&client, Window { from, to: None }, async |page| {
                for mut tx in page.page.transactions {
                    categorizer.categorize(&mut tx);
                    rows.push(tx);
                }
                Ok(())
            })
            .await?;
        for sink in config.sinks.iter().filter(|s| s.kind != bankpipe_config::SinkKindConfig::File) {
            let ids: Vec<String> = rows.iter().map(|t| t.id.to_string()).collect();
            let settled: BTreeSet<String> = store.settled_deliveries(&sink.name, &ids).await?.into_iter().collect();
            for tx in &rows {
                let deliverable =
                    !tx.memo_only && (tx.status == bankpipe_model::Status::Posted || sink.deliver_pending);
                if deliverable && !settled.contains(&tx.id.to_string()) {
                    let plan =
                        bankpipe_sinks::offline::plan(sink, &categorizer.sink_maps, setup::timezone(config)?, tx);
                    println!(
                        "{{\"sink\":{},\"plan\":{}}}",
                        serde_json::to_string(&sink.name)?,
                        bankpipe_sinks::offline::line(tx, &plan)
                    );
                    planned += 1;
                }
            }
        }
        eprintln!(
            "dry run: {} from {}: {} transactions fetched",
            source.ctx.source,
            from.map_or("the beginning".into(), |d| d.to_string()),
            rows.len()
        );
    }
    eprintln!("dry run: {planned} planned sink requests printed; nothing was written or sent");
    Ok(())
}

async fn sync<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    json: bool,
) -> Result<()> {
    let started = Instant::now();
    let run = store.begin_run(RunKind::Sync).await?;
    let mut outcomes: Vec<SourceOutcome> = Vec::new();
    let result: Result<(u64, u64)> = async {
        let client = HttpClient::new(Policy::default())?;
        for source in sources {
            let from = ingest::sync_start(store, &source.ctx.source, config.sync.overlap_days).await?;
            let outcome =
                ingest::ingest_window(store, run, &client, categorizer, source, Window { from, to: None }).await?;
            outcomes.push(outcome);
        }
        let touched: BTreeSet<(String, String)> =
            outcomes.iter().flat_map(|o| o.accounts.iter().map(|a| (o.source.clone(), a.clone()))).collect();
        let since =
            if outcomes.iter().any(|o| o.from.is_none()) { None } else { outcomes.iter().filter_map(|o| o.from).min() };
        let (superseded, duplicates) = ingest::dedupe(store, run, config, &touched, since).await?;
        // Data is committed: now, and only now, the watermarks move forward.
        let today = Utc::now().date_naive();
        for o in &outcomes {
            let dates: Vec<(String, chrono::NaiveDate)> =
                o.latest_posted.iter().map(|(a, d)| (a.clone(), (*d).min(today))).collect();
            store.advance_watermarks(run, &o.source, &dates).await?;
        }
        Ok((superseded, duplicates))
    }
    .await;
    // Deliveries: from the outbox, whatever this run fetched (a failed fetch
    // still lets earlier backlog go out).
    let mut deliveries = Vec::new();
    let mut sink_error: Option<anyhow::Error> = None;
    if result.is_ok() {
        for sink in &config.sinks {
            match crate::deliver::deliver_sink(store, categorizer, sink, setup::timezone(config)?).await {
                Ok(report) => deliveries.push(report),
                Err(e) => {
                    tracing::error!(sink = %sink.name, "{e:#}");
                    sink_error.get_or_insert(e);
                }
            }
        }
    }
    let incomplete: Vec<String> = deliveries
        .iter()
        .filter(|d| d.failed > 0 || d.in_flight > 0 || d.stopped.is_some())
        .map(|d| {
            format!(
                "{}: {} failed, {} in flight{}",
                d.sink,
                d.failed,
                d.in_flight,
                d.stopped.as_deref().map(|m| format!(", stopped: {m}")).unwrap_or_default()
            )
        })
        .collect();
    let result = match (result, sink_error) {
        (Ok(v), Some(e)) => Err(e).map(|()| v),
        (Ok(_), None) if !incomplete.is_empty() => Err(DeliveriesIncomplete(incomplete.join("; ")).into()),
        (r, _) => r,
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
    eprintln!("{}", summary_line("sync", &summary));
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    result.map(|_| ())
}

/// `sync ok (run 3, 0.4 s): truv 3 pages 11 records: 9 new, 0 updated, …`
pub fn summary_line(job: &str, s: &SyncSummary) -> String {
    let parts: Vec<String> = s
        .sources
        .iter()
        .map(|o| {
            format!(
                "{} {} pages {} records: {} new, {} updated, {} unchanged, {} quarantined",
                o.source, o.pages, o.records, o.inserted, o.updated, o.unchanged, o.quarantined
            )
        })
        .collect();
    let sinks: Vec<String> = s
        .deliveries
        .iter()
        .map(|d| {
            format!(
                "; {} {} delivered ({} reconciled), {} failed, {} in flight, {} waiting for a mapping{}",
                d.sink,
                d.delivered,
                d.reconciled_found,
                d.failed,
                d.in_flight,
                d.skipped,
                d.stopped.as_deref().map(|m| format!(", stopped: {m}")).unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{job} {} (run {}, {:.1} s): {}; {} superseded, {} duplicates{}",
        s.outcome,
        s.run,
        s.elapsed_seconds,
        if parts.is_empty() { "no source completed".to_owned() } else { parts.join("; ") },
        s.superseded,
        s.duplicates,
        sinks.concat()
    )
}

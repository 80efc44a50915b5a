//! `bankpipe sync`: the scheduled job (DESIGN §8).
//!
//! Per source, on its own: fetch its per-account windows (see
//! `crate::windows`: from `min(oldest pending, watermark − overlap)`, the
//! whole history on the first run, for a new account, with `--full` or when
//! `full_sweep_days` is due), categorize and upsert page by page, prove the
//! walk complete against the source's own count, and move its watermarks
//! forward. A failing source never stops the others: then pending →
//! posted and cross-source pairing, and delivery of everything stored. One
//! sync per SQLite database at a time.

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

/// A sync that completed, but a source failed, or some deliveries of this
/// run failed (their reasons are in the ledger) or stayed in flight: exit
/// code 3.
#[derive(Debug, thiserror::Error)]
#[error("completed with failures: {0}")]
pub struct CompletedWithFailures(pub String);

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
        if args.dry_run {
            // Nothing synced yet: plan against an empty scratch store; the
            // configured database is not created.
            let (store, scratch) = setup::existing_or_scratch_store(&config).await?;
            let planned = with_store!(&store, s => dry_run(s, &config, &categorizer, &sources, args.full).await);
            drop(store);
            drop(scratch);
            return planned;
        }
        let store = setup::open_store(&config).await?;
        let _lock = store.lock().await?;
        with_store!(&store, s => sync(s, &config, &categorizer, &sources, args).await)
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
    full: bool,
) -> Result<()> {
    let client = HttpClient::new(Policy::default())?;
    let today = Utc::now().date_naive();
    let zone = setup::timezone(config)?;
    // What the sync would fetch: the earliest start of each source's walks
    // (the dry run cannot discover new accounts without writing them).
    let mut rows: std::collections::BTreeMap<String, bankpipe_model::Transaction> = Default::default();
    for source in sources {
        let (_, walks) = ingest::plan_source(store, config, source, full, today).await?;
        let from =
            if walks.iter().any(|w| w.from.is_none()) { None } else { walks.iter().filter_map(|w| w.from).min() };
        let before = rows.len();
        source
            .walk::<anyhow::Error, _>(&client, Window { from, to: None }, async |page| {
                for mut tx in page.page.transactions {
                    categorizer.categorize(&mut tx);
                    rows.insert(tx.id.to_string(), tx);
                }
                Ok(())
            })
            .await?;
        crate::diag::say(format_args!(
            "dry run: {} from {}: {} transactions fetched",
            source.ctx.source,
            from.map_or("the beginning".into(), |d| d.to_string()),
            rows.len() - before
        ));
    }
    // Per sink: the fetched rows it does not have yet, plus its waiting
    // backlog (queued rows, e.g. of accounts waiting for a mapping).
    let mut table: std::collections::BTreeMap<(String, String, &'static str), u64> = Default::default();
    let mut planned = 0u64;
    for sink in config.sinks.iter().filter(|s| s.kind != bankpipe_config::SinkKindConfig::File) {
        let ids: Vec<String> = rows.keys().cloned().collect();
        let settled: BTreeSet<String> = store.settled_deliveries(&sink.name, &ids).await?.into_iter().collect();
        let mut plan: std::collections::BTreeMap<String, bankpipe_model::Transaction> = rows
            .iter()
            .filter(|(id, tx)| {
                !settled.contains(*id)
                    && !tx.memo_only
                    && (tx.status == bankpipe_model::Status::Posted || sink.deliver_pending)
            })
            .map(|(id, tx)| (id.clone(), tx.clone()))
            .collect();
        let mut cursor = None;
        loop {
            let batch =
                store.deliveries(&sink.name, bankpipe_store::DeliveryState::Pending, cursor.as_ref(), 500).await?;
            let Some(last) = batch.last().map(|q| q.transaction.clone()) else { break };
            for q in batch {
                plan.entry(q.transaction.id.to_string()).or_insert(q.transaction);
            }
            cursor = Some(last);
        }
        // Delivered rows the fetch shows changed (status, amount, date): a
        // sink that can delete rows gets a correction, the others a report.
        for (id, tx) in rows.iter().filter(|(id, _)| settled.contains(*id)) {
            let Some(d) = store.delivery(&sink.name, id).await? else { continue };
            let now = bankpipe_store::sent_version(tx)?;
            if d.state != bankpipe_store::DeliveryState::Delivered || d.sent_version.as_ref().is_none_or(|v| *v == now)
            {
                continue;
            }
            let action = if sink.kind == bankpipe_config::SinkKindConfig::Mibudge {
                "correct (create, then delete the old row)"
            } else {
                "changed since delivery (reported only)"
            };
            *table
                .entry((sink.name.clone(), format!("{}:{}", tx.source, tx.source_account_id), action))
                .or_default() += 1;
            println!(
                "{}",
                serde_json::json!({"sink": sink.name, "plan": {"transaction": id, "action": "correct",
                    "replaces": d.remote_id, "from": d.sent_version, "to": now, "note": action}})
            );
            planned += 1;
        }
        for tx in plan.values() {
            let p = bankpipe_sinks::offline::plan(sink, &categorizer.sink_maps, zone, tx);
            let action = match &p {
                bankpipe_sinks::Plan::Send(_) => "send",
                bankpipe_sinks::Plan::Skip { .. } if sink.create_accounts => "create account, then send",
                bankpipe_sinks::Plan::Skip { .. } => "wait for a mapping",
                bankpipe_sinks::Plan::Refuse(_) => "refuse (failed)",
                bankpipe_sinks::Plan::Covered(_) => "covered by another row",
            };
            *table
                .entry((sink.name.clone(), format!("{}:{}", tx.source, tx.source_account_id), action))
                .or_default() += 1;
            println!(
                "{{\"sink\":{},\"plan\":{}}}",
                serde_json::to_string(&sink.name)?,
                bankpipe_sinks::offline::line(tx, &p)
            );
            planned += 1;
        }
    }
    for ((sink, account, action), n) in &table {
        crate::diag::say(format_args!("dry run: {sink:<12} {account:<40} {action:<28} {n:>6}"));
    }
    crate::diag::say(format_args!(
        "dry run: {planned} planned sink requests printed; nothing was written or sent (`bankpipe check` verifies the mapped ids)"
    ));
    Ok(())
}

async fn sync<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    args: &SyncArgs,
) -> Result<()> {
    let (json, full) = (args.json, args.full);
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
            match crate::deliver::deliver_sink(store, categorizer, sink, setup::timezone(config)?).await {
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
        && errors.iter().all(|(_, e)| crate::outcome_of(e) == "rate-limited");
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
    crate::diag::say(summary_line("sync", &summary));
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    if let Some(path) = &args.metrics_file {
        let exit = result.as_ref().err().map_or(0, |e| i64::from(crate::exit_code(e)));
        if let Err(e) = write_metrics(store, config, &summary, exit, path).await {
            crate::diag::warn(format_args!("metrics not written: {e:#}"));
        }
    }
    result.map(|_| ())
}

/// The run's figures as a Prometheus text file (`--metrics-file`).
async fn write_metrics<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    summary: &SyncSummary,
    exit_code: i64,
    path: &std::path::Path,
) -> Result<()> {
    let status = store.status(0).await?;
    let mut figures = crate::metrics::RunFigures {
        finished_unix: Utc::now().timestamp(),
        exit_code,
        duration_seconds: summary.elapsed_seconds,
        sources: summary
            .sources
            .iter()
            .map(|o| crate::metrics::SourceFigures {
                name: o.source.clone(),
                records: o.records,
                quarantined: o.quarantined,
                failed: o.error.is_some(),
            })
            .collect(),
        ..Default::default()
    };
    for sink in config.sinks.iter().filter(|s| s.kind != bankpipe_config::SinkKindConfig::File) {
        let report = summary.deliveries.iter().find(|d| d.sink == sink.name);
        let backlog = status.deliveries.iter().find(|d| d.sink == sink.name);
        figures.sinks.push(crate::metrics::SinkFigures {
            name: sink.name.clone(),
            delivered: report.map_or(0, |r| r.delivered),
            failed: report.map_or(0, |r| r.failed),
            waiting: backlog.map_or(0, |b| b.waiting),
            in_flight: backlog.map_or(0, |b| b.in_flight),
        });
        let origin = crate::deliver::sink_origin(sink)?.to_string();
        if let Some((_, remaining, reset)) = store.rate_budget(&origin).await? {
            if reset > Utc::now().timestamp() {
                figures.rate_remaining.push((sink.name.clone(), remaining));
            }
        }
    }
    crate::metrics::write(path, &figures)
}

/// `sync ok (run 3, 0.4 s): truv 3 pages 11 records: 9 new, 0 updated, …`
pub fn summary_line(job: &str, s: &SyncSummary) -> String {
    let parts: Vec<String> = s
        .sources
        .iter()
        .map(|o| match &o.error {
            Some(_) => format!("{} FAILED after {} pages", o.source, o.pages),
            None => format!(
                "{} {} pages {} records: {} new, {} updated, {} unchanged, {} quarantined",
                o.source, o.pages, o.records, o.inserted, o.updated, o.unchanged, o.quarantined
            ),
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

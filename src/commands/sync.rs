//! `bankpipe sync`: the scheduled job (DESIGN §8; the work is
//! `bankpipe_pipeline::sync`): takes the one-sync lock on SQLite (PostgreSQL
//! workers cooperate through leases instead), runs the sync,
//! prints the summary (and `--json`), writes `--metrics-file`. `--dry-run`
//! plans against the store without writing or sending anything.

use std::collections::BTreeSet;

use anyhow::Result;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::{with_store, Store};
use chrono::Utc;

use crate::cli::SyncArgs;
use crate::setup;
use bankpipe_pipeline::ingest;
use bankpipe_pipeline::Outcome;

pub use bankpipe_pipeline::sync::SyncSummary;

pub fn run(args: &SyncArgs) -> Result<()> {
    let path = &args.config.config;
    let mut config = setup::load_config(Some(path))?;
    if !args.dry_run {
        // The sinks' credentials, before anything is fetched (a dry run
        // sends nothing and needs none).
        setup::resolve_sink_secrets(&mut config, path)?;
    }
    let config = config;
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
        // SQLite: one process per database file. PostgreSQL: workers
        // cooperate through leases (DESIGN §7), no lock.
        let _lock = match &store {
            bankpipe_store::AnyStore::Sqlite(_) => Some(store.lock().await?),
            bankpipe_store::AnyStore::Postgres(_) => None,
        };
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
    for sink in config.sinks.iter().filter(|s| !s.is_file()) {
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
            let action = if matches!(sink.kind, bankpipe_config::SinkKind::Mibudge(_)) {
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
                bankpipe_sinks::Plan::Skip { .. } if matches!(&sink.kind, bankpipe_config::SinkKind::Trupocket(tp) if tp.create_accounts) => {
                    "create account, then send"
                }
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
    let (summary, result) =
        bankpipe_pipeline::sync::sync(store, config, categorizer, sources, args.full, setup::timezone(config)?).await?;
    crate::diag::say(summary_line("sync", &summary));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    if let Some(path) = &args.metrics_file {
        let exit = result.as_ref().err().map_or(0, |e| i64::from(Outcome::of(e).exit_code()));
        if let Err(e) = write_metrics(store, config, &summary, exit, path).await {
            crate::diag::warn(format_args!("metrics not written: {e:#}"));
        }
    }
    result
}

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
    for sink in config.sinks.iter().filter(|s| !s.is_file()) {
        let report = summary.deliveries.iter().find(|d| d.sink == sink.name);
        let backlog = status.deliveries.iter().find(|d| d.sink == sink.name);
        figures.sinks.push(crate::metrics::SinkFigures {
            name: sink.name.clone(),
            delivered: report.map_or(0, |r| r.delivered),
            failed: report.map_or(0, |r| r.failed),
            waiting: backlog.map_or(0, |b| b.waiting),
            in_flight: backlog.map_or(0, |b| b.in_flight),
        });
        let origin = bankpipe_pipeline::deliver::sink_origin(sink)?.to_string();
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

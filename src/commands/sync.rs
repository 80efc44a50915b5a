//! `bankpipe sync`: the scheduled job (DESIGN §8; the work is
//! `bankpipe_pipeline::sync`): takes the one-sync lock on SQLite (PostgreSQL
//! workers cooperate through leases instead), runs the sync,
//! prints the summary (and `--json`), writes `--metrics-file`. `--dry-run`
//! (`bankpipe_pipeline::dry_run`) plans against the store without writing
//! or sending anything; this module prints its plan.

use anyhow::Result;
use bankpipe_sources::live::LiveSource;
use bankpipe_store::{with_store, Store};
use chrono::Utc;

use crate::cli::SyncArgs;
use crate::setup;
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

/// `--dry-run` (`bankpipe_pipeline::dry_run`): prints the requests each
/// sink would receive for the rows it does not have yet (JSON lines on
/// stdout) and a summary table (stderr). Writes nothing to the store,
/// sends nothing to a sink.
async fn dry_run<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    full: bool,
) -> Result<()> {
    let zone = setup::timezone(config)?;
    let today = Utc::now().date_naive();
    let planned = bankpipe_pipeline::dry_run::dry_run(store, config, categorizer, sources, full, zone, today).await?;
    for f in &planned.fetched {
        crate::diag::say(format_args!(
            "dry run: {} from {}: {} transactions fetched",
            f.source,
            f.from.map_or("the beginning".into(), |d| d.to_string()),
            f.transactions
        ));
    }
    for line in &planned.lines {
        println!("{line}");
    }
    for ((sink, account, action), n) in &planned.table {
        crate::diag::say(format_args!("dry run: {sink:<12} {account:<40} {action:<28} {n:>6}"));
    }
    crate::diag::say(format_args!(
        "dry run: {} planned sink requests printed; nothing was written or sent (`bankpipe check` verifies the mapped ids)",
        planned.planned()
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

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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::Result;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sinks::DeliveryReport;
use bankpipe_sources::live::LiveSource;
use bankpipe_store::leases::{Claimed, DeliveryScope, Fence, Phase, UnitSpec};
use bankpipe_store::{RunKind, Store};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;

use crate::deliver::SinkSession;
use crate::ingest::{self, SourceOutcome};
use crate::leases::{self, LeaseTiming, LeaseWatch};
use crate::round::{self, ended_by, Ended};
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
/// configured sink, as one worker of a round (DESIGN §7): several
/// processes running `sync` with the same configuration on one PostgreSQL
/// database share the round's units — fetch one source, dedupe, queue one
/// sink, deliver one (sink, sink account) — each claimed with a lease (see
/// [`crate::leases`]). Alone (always, on SQLite) a worker does every unit
/// itself. The run is recorded in the store whatever happens; the summary
/// counts what *this* worker did.
///
/// Returns the summary and the run's result: `Err` carries the outcome
/// ([`Outcome::of`]): [`CompletedWithFailures`] when a source or some
/// deliveries failed, an exhausted rate budget when only budgets ran out.
/// `zone` is the booking zone (`sync.timezone`).
///
/// # Errors
/// The outer `Err`: the run could not even be recorded (store down), or a
/// worker of the live round runs another configuration
/// (`StoreError::MixedConfig`, exit 2).
pub async fn sync<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    sources: &[LiveSource],
    full: bool,
    zone: chrono_tz::Tz,
) -> Result<(SyncSummary, Result<()>)> {
    let started = Instant::now();
    let timing = LeaseTiming::from_secs(config.sync.lease_secs);
    let names: Vec<&str> = sources.iter().map(|s| &*s.ctx.source).collect();
    let hash = leases::config_hash(&[
        &config.sync,
        &config.sources,
        &config.sinks,
        &config.rules,
        &config.categories,
        &config.dedupe,
        &config.account_links,
        &names,
        &full,
    ]);
    let worker = leases::worker_info(hash);
    let units = round_units(config, sources);
    let (joined, run) = round::join(store, &worker, RunKind::Sync, &units, &timing).await?;
    // A first load (an empty store) writes into the table alone;
    // the dedupe unit builds the indexes before it reads them.
    store.defer_indexes().await?;
    let ctx =
        Ctx { store, config, categorizer, sources, full, zone, run, round: joined.round, worker: &worker, timing };
    let watch = LeaseWatch::default();
    let mut done = Done::new(config);
    let finished = round::with_heartbeat(store, &worker, &timing, &watch, work_round(&ctx, &watch, &mut done)).await;
    // Built here too when the round stopped before its dedupe unit.
    let built = store.build_deferred_indexes().await;
    let Done { outcomes, mut errors, fatal, superseded, duplicates, deliveries, failed_sinks } = done;
    // As before leases: a sink whose pass failed is named in the errors,
    // not in the deliveries.
    let deliveries: Vec<DeliveryReport> =
        deliveries.into_iter().filter(|(i, _)| !failed_sinks.contains(i)).map(|(_, r)| r).collect();
    let result: Result<(u64, u64)> = match (finished.and(built.map(drop).map_err(Into::into)), fatal) {
        (Err(e), _) | (Ok(()), Some(e)) => Err(e),
        (Ok(()), None) => Ok((superseded, duplicates)),
    };
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
    round::finish(store, &worker, run, &record).await?;
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

/// The units of a sync round: fetch each selected source, dedupe, queue
/// each API sink, and deliver each (sink, sink account) of the sinks'
/// account maps plus one unit per sink for every other account (created
/// or unmapped ones).
pub fn round_units(config: &bankpipe_config::Config, sources: &[LiveSource]) -> Vec<UnitSpec> {
    let mut units: Vec<UnitSpec> =
        sources.iter().map(|s| UnitSpec { unit: format!("fetch:{}", s.ctx.source), phase: Phase::Fetch }).collect();
    units.push(UnitSpec { unit: DEDUPE.to_owned(), phase: Phase::Dedupe });
    for sink in config.sinks.iter().filter(|s| !s.is_file()) {
        units.push(UnitSpec { unit: format!("queue:{}", sink.name), phase: Phase::Queue });
        let accounts: BTreeSet<&String> = sink.accounts.values().collect();
        for account in accounts {
            units.push(UnitSpec { unit: format!("deliver:{}:{account}", sink.name), phase: Phase::Deliver });
        }
        units.push(UnitSpec { unit: format!("deliver:{}:{REST}", sink.name), phase: Phase::Deliver });
    }
    units
}

const DEDUPE: &str = "dedupe";
/// The delivery unit of the accounts no configured sink account covers.
const REST: &str = "*";

/// What a worker works with.
struct Ctx<'a, S> {
    store: &'a S,
    config: &'a bankpipe_config::Config,
    categorizer: &'a bankpipe_enrich::Categorizer,
    sources: &'a [LiveSource],
    full: bool,
    zone: chrono_tz::Tz,
    run: i64,
    round: i64,
    worker: &'a bankpipe_store::leases::WorkerInfo,
    timing: LeaseTiming,
}

/// What this worker did.
struct Done {
    outcomes: Vec<SourceOutcome>,
    errors: Vec<(String, anyhow::Error)>,
    /// A failure that fails the run (dedupe).
    fatal: Option<anyhow::Error>,
    superseded: u64,
    duplicates: u64,
    /// Per sink (by its index in the config) that this worker delivered
    /// for, and file sinks (nothing to deliver).
    deliveries: BTreeMap<usize, DeliveryReport>,
    /// Sinks of which a unit failed in this worker.
    failed_sinks: BTreeSet<usize>,
}

impl Done {
    fn new(config: &bankpipe_config::Config) -> Done {
        let deliveries = config
            .sinks
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_file())
            .map(|(i, s)| (i, DeliveryReport { sink: s.name.clone(), ..DeliveryReport::default() }))
            .collect();
        Done {
            outcomes: Vec::new(),
            errors: Vec::new(),
            fatal: None,
            superseded: 0,
            duplicates: 0,
            deliveries,
            failed_sinks: BTreeSet::new(),
        }
    }

    /// The report of sink `i` (created on its first unit).
    fn report(&mut self, i: usize, name: &str) -> &mut DeliveryReport {
        self.deliveries
            .entry(i)
            .or_insert_with(|| DeliveryReport { sink: name.to_owned(), ..DeliveryReport::default() })
    }
}

/// Claim and run units phase by phase until the round has none left
/// ([`round::work`]), with one sink session per sink for all of this
/// worker's delivery units.
async fn work_round<'a, S: Store>(ctx: &Ctx<'a, S>, watch: &LeaseWatch, done: &mut Done) -> Result<()> {
    let mut sessions: BTreeMap<usize, SinkSession<'a, S>> = BTreeMap::new();
    round::work(ctx.store, ctx.round, ctx.worker, &ctx.timing, watch, async |claimed, fence| {
        run_unit(ctx, claimed, fence, done, &mut sessions).await
    })
    .await
}

async fn run_unit<'a, S: Store>(
    ctx: &Ctx<'a, S>,
    claimed: &Claimed,
    fence: &Fence,
    done: &mut Done,
    sessions: &mut BTreeMap<usize, SinkSession<'a, S>>,
) -> Ended {
    let unit = claimed.unit.as_str();
    if let Some(name) = unit.strip_prefix("fetch:") {
        return fetch_unit(ctx, claimed, fence, name, done).await;
    }
    if unit == DEDUPE {
        return dedupe_unit(ctx, claimed, done).await;
    }
    let sink = |rest: &str| -> Option<(usize, String)> {
        ctx.config.sinks.iter().enumerate().find_map(|(i, s)| {
            rest.strip_prefix(s.name.as_str()).and_then(|r| {
                r.strip_prefix(':').map(|a| (i, a.to_owned())).or_else(|| r.is_empty().then(|| (i, String::new())))
            })
        })
    };
    if let Some((i, _)) = unit.strip_prefix("queue:").and_then(sink) {
        return queue_unit(ctx, claimed, i, done).await;
    }
    if let Some((i, account)) = unit.strip_prefix("deliver:").and_then(sink) {
        return deliver_unit(ctx, claimed, fence, i, &account, done, sessions).await;
    }
    Ended::Done(serde_json::Value::Null, Some(format!("unknown unit {unit:?} (another bankpipe version?)")))
}

async fn fetch_unit<S: Store>(
    ctx: &Ctx<'_, S>,
    claimed: &Claimed,
    fence: &Fence,
    name: &str,
    done: &mut Done,
) -> Ended {
    let Some(source) = ctx.sources.iter().find(|s| &*s.ctx.source == name) else {
        return Ended::Done(
            json!({ "failed": true }),
            Some(format!("source {name:?} is not in this worker's configuration")),
        );
    };
    let client = match HttpClient::new(Policy::default()) {
        Ok(c) => c,
        Err(e) => return Ended::Done(json!({ "failed": true }), Some(e.to_string())),
    };
    let bound = ctx.store.bound(fence.clone(), None);
    match ingest::sync_source(&bound, ctx.run, &client, ctx.categorizer, ctx.config, source, ctx.full).await {
        Ok(o) => {
            let result = json!({
                "failed": false,
                "from": o.from.map(|d| d.to_string()),
                "accounts": o.accounts.iter().collect::<Vec<_>>(),
            });
            done.outcomes.push(o);
            Ended::Done(result, None)
        }
        Err(e) => {
            if let Some(ended) = ended_by(&e, claimed) {
                return ended;
            }
            tracing::error!(source = %name, "{e:#}");
            let text = format!("{e:#}");
            done.outcomes.push(SourceOutcome {
                source: name.to_owned(),
                error: Some(text.clone()),
                ..SourceOutcome::default()
            });
            done.errors.push((format!("source {name}"), e));
            Ended::Done(json!({ "failed": true }), Some(text))
        }
    }
}

/// The fetch units' results: the (source, account) pairs they touched and
/// the earliest date fetched (`None`: some source walked its whole history).
async fn fetched<S: Store>(ctx: &Ctx<'_, S>) -> Result<(BTreeSet<(String, String)>, Option<NaiveDate>)> {
    let mut touched = BTreeSet::new();
    let (mut since, mut whole) = (None::<NaiveDate>, false);
    for (unit, result, _) in ctx.store.unit_results(ctx.round, Phase::Fetch).await? {
        let Some(source) = unit.strip_prefix("fetch:") else { continue };
        let Some(result) = result.as_deref().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) else {
            continue;
        };
        if result["failed"].as_bool() != Some(false) {
            continue;
        }
        for a in result["accounts"].as_array().into_iter().flatten().filter_map(|a| a.as_str()) {
            touched.insert((source.to_owned(), a.to_owned()));
        }
        match result["from"].as_str().and_then(|d| d.parse::<NaiveDate>().ok()) {
            Some(d) => since = Some(since.map_or(d, |s| s.min(d))),
            None => whole = true,
        }
    }
    Ok((touched, if whole { None } else { since }))
}

async fn dedupe_unit<S: Store>(ctx: &Ctx<'_, S>, claimed: &Claimed, done: &mut Done) -> Ended {
    let work = async {
        let (touched, since) = fetched(ctx).await?;
        ctx.store.build_deferred_indexes().await?;
        // The fetch phase may have bulk-loaded the tables the pairing and
        // the outbox query next.
        ctx.store.refresh_statistics().await?;
        let counts = ingest::dedupe(ctx.store, ctx.run, ctx.config, &touched, since).await?;
        ingest::reconcile_totals(ctx.store, &mut done.outcomes, since).await?;
        anyhow::Ok(counts)
    };
    match work.await {
        Ok((superseded, duplicates)) => {
            done.superseded += superseded;
            done.duplicates += duplicates;
            Ended::Done(json!({ "superseded": superseded, "duplicates": duplicates }), None)
        }
        Err(e) => {
            if let Some(ended) = ended_by(&e, claimed) {
                return ended;
            }
            let text = format!("{e:#}");
            done.fatal = Some(e);
            Ended::Done(json!({}), Some(text))
        }
    }
}

/// Why delivery units of this round must not run: the dedupe unit failed
/// (then nothing is delivered, as a run whose pairing failed delivers nothing).
async fn blocked<S: Store>(ctx: &Ctx<'_, S>) -> Result<Option<String>> {
    let dedupe = ctx.store.unit_results(ctx.round, Phase::Dedupe).await?;
    Ok(dedupe.into_iter().find_map(|(_, _, error)| error).map(|e| format!("not delivered: dedupe failed: {e}")))
}

async fn queue_unit<S: Store>(ctx: &Ctx<'_, S>, claimed: &Claimed, i: usize, done: &mut Done) -> Ended {
    let sink = &ctx.config.sinks[i];
    let work = async {
        if let Some(why) = blocked(ctx).await? {
            return Ok(Err(why));
        }
        Ok(Ok(crate::deliver::queue_sink(ctx.store, ctx.categorizer, sink, ctx.zone).await?))
    };
    match work.await {
        Ok(Ok(queued)) => {
            done.report(i, &sink.name).queued += queued;
            Ended::Done(json!({ "queued": queued }), None)
        }
        Ok(Err(why)) => sink_failed(done, i, &sink.name, anyhow::anyhow!(why)),
        Err(e) => ended_by(&e, claimed).unwrap_or_else(|| sink_failed(done, i, &sink.name, e)),
    }
}

/// The accounts a delivery unit covers: those the sink maps to `account`,
/// or for [`REST`] every account the sink maps to none.
async fn scope<S: Store>(ctx: &Ctx<'_, S>, sink: &bankpipe_config::SinkConfig, account: &str) -> Result<DeliveryScope> {
    let mut keys = Vec::new();
    for a in ctx.store.accounts().await? {
        let mapped = bankpipe_sinks::mapped_account(&sink.accounts, &a.source, &a.source_account_id);
        let covered = if account == REST { mapped.is_some() } else { mapped.is_some_and(|m| m == account) };
        if covered {
            keys.push(format!("{}:{}", a.source, a.source_account_id));
        }
    }
    Ok(DeliveryScope { accounts: keys, except: account == REST })
}

async fn deliver_unit<'a, S: Store>(
    ctx: &Ctx<'a, S>,
    claimed: &Claimed,
    fence: &Fence,
    i: usize,
    account: &str,
    done: &mut Done,
    sessions: &mut BTreeMap<usize, SinkSession<'a, S>>,
) -> Ended {
    let sink = &ctx.config.sinks[i];
    let work = async {
        if let Some(why) = blocked(ctx).await? {
            return Ok(Err(why));
        }
        let scope = scope(ctx, sink, account).await?;
        let bound = ctx.store.bound(fence.clone(), Some(scope));
        let session = match sessions.entry(i) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(SinkSession::open(ctx.store, ctx.categorizer, sink, ctx.zone).await?)
            }
        };
        Ok(Ok(session.run(&bound, false).await?))
    };
    match work.await {
        Ok(Ok(report)) => {
            let result =
                json!({ "delivered": report.delivered, "failed": report.failed, "in_flight": report.in_flight });
            done.report(i, &sink.name).merge(report);
            Ended::Done(result, None)
        }
        Ok(Err(why)) => sink_failed(done, i, &sink.name, anyhow::anyhow!(why)),
        Err(e) => ended_by(&e, claimed).unwrap_or_else(|| sink_failed(done, i, &sink.name, e)),
    }
}

/// A queue or delivery unit of sink `i` failed for good: named in this
/// worker's errors (so it does not exit 0), the sink left out of its
/// summary, the unit recorded done with the reason.
fn sink_failed(done: &mut Done, i: usize, sink: &str, e: anyhow::Error) -> Ended {
    let text = format!("{e:#}");
    tracing::error!(sink = %sink, "{text}");
    done.failed_sinks.insert(i);
    done.errors.push((format!("sink {sink}"), e));
    Ended::Done(json!({}), Some(text))
}

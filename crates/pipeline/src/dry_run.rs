//! `sync --dry-run` (DESIGN §8) as a library: what a sync would fetch and
//! send, without writing to the store or sending anything to a sink. The
//! binary prints the [`DryRun`] it returns.
//!
//! Each source is walked from the earliest start of the windows a sync
//! would fetch (`ingest::plan_source`; new accounts cannot be discovered
//! without writing them), its rows normalized and categorized in memory.
//! Per API sink, the rows it does not have yet plus its waiting backlog
//! (queued rows, e.g. of accounts waiting for a mapping) are planned by the
//! sink's own pure plan with the offline facts (`bankpipe_sinks::offline`,
//! the planner `replay --sink-requests` uses), and delivered rows the fetch
//! shows changed are listed as corrections (mibudge) or reports. Dedupe
//! decisions of this fetch are not applied (they need the store).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use bankpipe_config::{Config, SinkKind};
use bankpipe_enrich::Categorizer;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_model::{Status, Transaction};
use bankpipe_sinks::Plan;
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::{DeliveryState, Store};
use chrono::NaiveDate;

use crate::ingest;

/// What a dry run found: the binary prints `fetched` and `table` as
/// summary lines and `lines` as JSON lines.
#[derive(Debug, Default)]
pub struct DryRun {
    /// Per source, in order: what was fetched.
    pub fetched: Vec<Fetched>,
    /// One JSON object per planned sink request, in order:
    /// `{"sink": NAME, "plan": {"transaction": ID, "action": "send" |
    /// "skip" | "refuse" | "covered", …}}` (the line of
    /// `bankpipe_sinks::offline::line`), or for a delivered row that
    /// changed, `{"plan": {"action": "correct", "transaction", "replaces",
    /// "from", "to", "note"}, "sink": NAME}`.
    pub lines: Vec<String>,
    /// Planned requests per (sink, `source:account`, action in words).
    pub table: BTreeMap<(String, String, &'static str), u64>,
}

/// One source's walk in a dry run.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Source name.
    pub source: String,
    /// Where the walk started; `None`: the beginning of its history.
    pub from: Option<NaiveDate>,
    /// Transactions fetched (distinct ids added by this source).
    pub transactions: usize,
}

impl DryRun {
    /// Planned sink requests, corrections included.
    pub fn planned(&self) -> usize {
        self.lines.len()
    }
}

/// Fetch from `sources` as a sync would (`full`: the whole history) and
/// plan every API sink's requests. Reads `store` (the configured one, or an
/// empty scratch store before the first sync); writes nothing and sends
/// nothing. `zone` is the booking zone (`sync.timezone`), `today` the date
/// windows are planned from.
///
/// # Errors
/// A source walk, a store read or an unusable stored request.
pub async fn dry_run<S: Store>(
    store: &S,
    config: &Config,
    categorizer: &Categorizer,
    sources: &[LiveSource],
    full: bool,
    zone: chrono_tz::Tz,
    today: NaiveDate,
) -> Result<DryRun> {
    let client = HttpClient::new(Policy::default())?;
    let mut out = DryRun::default();
    // What the sync would fetch: the earliest start of each source's walks
    // (the dry run cannot discover new accounts without writing them).
    let mut rows: BTreeMap<String, Transaction> = BTreeMap::new();
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
        out.fetched.push(Fetched { source: source.ctx.source.to_string(), from, transactions: rows.len() - before });
    }
    // Per sink: the fetched rows it does not have yet, plus its waiting
    // backlog (queued rows, e.g. of accounts waiting for a mapping).
    for sink in config.sinks.iter().filter(|s| !s.is_file()) {
        let ids: Vec<String> = rows.keys().cloned().collect();
        let settled: BTreeSet<String> = store.settled_deliveries(&sink.name, &ids).await?.into_iter().collect();
        let mut plan: BTreeMap<String, Transaction> = rows
            .iter()
            .filter(|(id, tx)| {
                !settled.contains(*id) && !tx.memo_only && (tx.status == Status::Posted || sink.deliver_pending)
            })
            .map(|(id, tx)| (id.clone(), tx.clone()))
            .collect();
        let mut cursor = None;
        loop {
            let batch = store.deliveries(&sink.name, DeliveryState::Pending, cursor.as_ref(), 500).await?;
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
            if d.state != DeliveryState::Delivered || d.sent_version.as_ref().is_none_or(|v| *v == now) {
                continue;
            }
            let action = if matches!(sink.kind, SinkKind::Mibudge(_)) {
                "correct (create, then delete the old row)"
            } else {
                "changed since delivery (reported only)"
            };
            *out.table
                .entry((sink.name.clone(), format!("{}:{}", tx.source, tx.source_account_id), action))
                .or_default() += 1;
            out.lines.push(
                serde_json::json!({"sink": sink.name, "plan": {"transaction": id, "action": "correct",
                    "replaces": d.remote_id, "from": d.sent_version, "to": now, "note": action}})
                .to_string(),
            );
        }
        let creates_accounts = matches!(&sink.kind, SinkKind::Trupocket(tp) if tp.create_accounts);
        for tx in plan.values() {
            let p = bankpipe_sinks::offline::plan(sink, &categorizer.sink_maps, zone, tx);
            let action = match &p {
                Plan::Send(_) => "send",
                Plan::Skip { .. } if creates_accounts => "create account, then send",
                Plan::Skip { .. } => "wait for a mapping",
                Plan::Refuse(_) => "refuse (failed)",
                Plan::Covered(_) => "covered by another row",
            };
            *out.table
                .entry((sink.name.clone(), format!("{}:{}", tx.source, tx.source_account_id), action))
                .or_default() += 1;
            out.lines.push(format!(
                "{{\"sink\":{},\"plan\":{}}}",
                serde_json::to_string(&sink.name)?,
                bankpipe_sinks::offline::line(tx, &p)
            ));
        }
    }
    Ok(out)
}

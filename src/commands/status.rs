//! `bankpipe status`: last runs, watermarks, quarantine, delivery backlog.

use anyhow::Result;
use bankpipe_store::prelude::*;
use bankpipe_store::with_store;
use serde_json::json;

use crate::cli::StatusArgs;
use crate::setup;

pub fn run(args: &StatusArgs) -> Result<()> {
    let config = setup::load_config(Some(&args.config.config))?;
    let report = setup::runtime()?.block_on(async {
        let store = setup::open_existing_store(&config).await?;
        let mut report = with_store!(&store, s => s.status(args.runs).await?);
        // The last rate budget each sink's origin advertised (a hint until its reset).
        let mut budgets = Vec::new();
        for sink in config.sinks.iter().filter(|s| !s.is_file()) {
            let origin = bankpipe_pipeline::deliver::sink_origin(sink)?.to_string();
            if let Some(b) = with_store!(&store, s => s.rate_budget(&origin).await?) {
                budgets.push((sink.name.clone(), b));
            }
        }
        // SQLite: nobody holds the sync lock, so a run still marked running
        // has died. (PostgreSQL workers run side by side: their liveness is
        // their heartbeat, shown below.)
        if matches!(store, bankpipe_store::AnyStore::Sqlite(_)) {
            if let Ok(lock) = store.lock().await {
                for r in report.runs.iter_mut().filter(|r| r.outcome == "running") {
                    r.outcome = "interrupted".into();
                }
                drop(lock);
            }
        }
        let coordination = with_store!(&store, s => s.coordination().await?);
        anyhow::Ok((report, budgets, coordination))
    })?;
    let (report, budgets, coordination) = report;
    let lease_ms = i64::from(config.sync.lease_secs) * 1000;
    if args.json {
        let value = json!({
            "runs": report.runs.iter().map(|r| json!({
                "id": r.id, "kind": r.kind, "started_at": r.started_at, "finished_at": r.finished_at,
                "outcome": r.outcome, "pages": r.counts[0], "records": r.counts[1], "inserted": r.counts[2],
                "updated": r.counts[3], "unchanged": r.counts[4], "quarantined": r.counts[5], "message": r.message,
            })).collect::<Vec<_>>(),
            "watermarks": report.watermarks.iter().map(|w| json!({
                "source": w.source, "source_account_id": w.source_account_id,
                "booking_date": w.booking_date.to_string(), "updated_at": w.updated_at,
            })).collect::<Vec<_>>(),
            "transactions": report.transactions,
            "quarantined": report.quarantined,
            "source_totals": {
                "matching": report.source_totals.matching,
                "mismatching": report.source_totals.mismatching,
                "unreconciled": report.source_totals.unreconciled,
                "mismatches": report.source_totals.mismatches.iter().map(|m| json!({
                    "source": &*m.target.source, "account": m.target.account, "date": m.target.date.to_string(),
                    "currency": m.target.currency.code(),
                    "source_net_total": m.target.reported.net_total.to_string(),
                    "source_transaction_count": m.target.reported.transaction_count,
                    "net_total": m.computed_net.to_string(), "transaction_count": m.computed_count,
                    "origin": m.target.origin,
                })).collect::<Vec<_>>(),
            },
            "rate_budgets": budgets.iter().map(|(sink, (limit, remaining, reset))| json!({
                "sink": sink, "limit": limit, "remaining": remaining, "reset_unix": reset,
            })).collect::<Vec<_>>(),
            "deliveries": report.deliveries.iter().map(|d| json!({
                "sink": d.sink, "backlog": d.waiting, "in_flight": d.in_flight, "failed": d.failed,
                "delivered": d.delivered, "changed_since_delivery": d.changed_since_delivery,
                "failures": report.failures.iter().filter(|f| f.0 == d.sink)
                    .map(|(_, reason, count)| json!({"reason": reason, "count": count})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "round": coordination.round,
            "workers": coordination.workers.iter().map(|w| json!({
                "id": w.id, "host": w.host, "pid": w.pid, "round": w.round,
                "heartbeat_age_ms": w.heartbeat_age_ms, "outcome": w.outcome,
                "alive": w.outcome.is_none() && w.heartbeat_age_ms < lease_ms,
            })).collect::<Vec<_>>(),
            "leases": coordination.open_units.iter().map(|u| json!({
                "round": u.round, "unit": u.unit, "phase": u.phase, "owner": u.owner, "held_ms": u.held_ms,
                "expires_in_ms": u.expires_in_ms, "heartbeat_age_ms": u.heartbeat_age_ms,
                "attempts": u.attempts, "error": u.error,
                "stuck": u.expires_in_ms.is_some_and(|e| e < 0),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("Last runs:");
    if report.runs.is_empty() {
        println!("  (none)");
    }
    for r in &report.runs {
        let [pages, records, inserted, updated, unchanged, quarantined] = r.counts;
        println!(
            "  #{:<4} {:<8} {}  {:<12} {pages} pages, {records} records: {inserted} new, {updated} updated, {unchanged} unchanged, {quarantined} quarantined{}",
            r.id,
            r.kind,
            r.started_at,
            r.outcome,
            r.message.as_deref().map(|m| format!("\n         {m}")).unwrap_or_default()
        );
    }
    println!("Watermarks:");
    if report.watermarks.is_empty() {
        println!("  (none)");
    }
    for w in &report.watermarks {
        println!("  {:<16} {:<36} {}", w.source, w.source_account_id, w.booking_date);
    }
    println!("Transactions stored: {}", report.transactions);
    println!("Quarantined records: {}", report.quarantined);
    let t = &report.source_totals;
    println!(
        "Source daily totals: {} matching, {} mismatching{}",
        t.matching,
        t.mismatching,
        if t.unreconciled > 0 { format!(", {} not reconciled yet (next sync)", t.unreconciled) } else { String::new() }
    );
    for m in &t.mismatches {
        println!("  mismatch: {m}");
    }
    println!("Delivery backlog:");
    if report.deliveries.is_empty() {
        println!("  (no sink has deliveries yet)");
    }
    for d in &report.deliveries {
        let flying =
            if d.in_flight > 0 { format!(" ({} in flight: reconciled next run)", d.in_flight) } else { String::new() };
        println!("  {:<16} {} waiting, {} failed, {} delivered{flying}", d.sink, d.waiting, d.failed, d.delivered);
        if d.changed_since_delivery > 0 {
            println!(
                "    {} delivered rows changed at the source since (status, amount or date): corrected next run \
                 where the sink can delete rows (mibudge); Trupocket's API cannot update or delete, so fix those by hand",
                d.changed_since_delivery
            );
        }
        for (_, reason, count) in report.failures.iter().filter(|f| f.0 == d.sink).take(10) {
            println!("    failed ×{count}: {reason}");
        }
    }
    print_coordination(&coordination, lease_ms);
    for (sink, (limit, remaining, reset)) in &budgets {
        let until = chrono::DateTime::from_timestamp(*reset, 0).map_or_else(|| reset.to_string(), |t| t.to_rfc3339());
        let state = if *reset > chrono::Utc::now().timestamp() { "until" } else { "expired at" };
        println!(
            "  {sink:<16} rate budget last seen: {remaining} of {} left, {state} {until} (a hint: the server's next answer replaces it)",
            limit.map_or_else(|| "?".to_owned(), |l| l.to_string())
        );
    }
    Ok(())
}

/// Workers, the newest round and its open units with their leases.
fn print_coordination(c: &bankpipe_store::leases::CoordinationReport, lease_ms: i64) {
    let secs = |ms: i64| format!("{:.1} s", ms as f64 / 1000.0);
    if let Some(r) = &c.round {
        println!(
            "Round #{}: {} of {} units done, started {} ago{}",
            r.id,
            r.done,
            r.units,
            secs(r.age_ms),
            r.outcome.as_deref().map(|o| format!(" ({o})")).unwrap_or_default()
        );
    }
    if !c.workers.is_empty() {
        println!("Workers (last hour):");
    }
    for w in &c.workers {
        let state = match &w.outcome {
            Some(o) => format!("finished: {o}"),
            None if w.heartbeat_age_ms < lease_ms => "running".to_owned(),
            None => "gone (no heartbeat)".to_owned(),
        };
        println!(
            "  {:<40} round {:<5} heartbeat {} ago  {state}",
            w.id,
            w.round.map_or("-".into(), |r| r.to_string()),
            secs(w.heartbeat_age_ms)
        );
    }
    for u in &c.open_units {
        match (&u.owner, u.expires_in_ms) {
            (Some(owner), Some(left)) if left < 0 => println!(
                "  STUCK {:<34} held by {owner} for {}, lease expired {} ago (another worker or the next run takes it)",
                u.unit,
                secs(u.held_ms.unwrap_or(0)),
                secs(-left)
            ),
            (Some(owner), left) => println!(
                "  lease {:<34} held by {owner} for {}, expires in {}",
                u.unit,
                secs(u.held_ms.unwrap_or(0)),
                secs(left.unwrap_or(0))
            ),
            (None, _) => println!(
                "  open  {:<34} not claimed{}",
                u.unit,
                u.error.as_deref().map(|e| format!(" (last attempt failed: {e})")).unwrap_or_default()
            ),
        }
    }
}

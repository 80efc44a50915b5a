//! `bankpipe status`: last runs, watermarks, quarantine, delivery backlog.

use anyhow::Result;
use bankpipe_store::{with_store, Store};
use serde_json::json;

use crate::cli::StatusArgs;
use crate::setup;

pub fn run(args: &StatusArgs) -> Result<()> {
    let config = setup::load_config(Some(&args.config.config))?;
    let report = setup::runtime()?.block_on(async {
        let store = setup::open_store(&config).await?;
        anyhow::Ok(with_store!(&store, s => s.status(args.runs).await?))
    })?;
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
            "deliveries": report.deliveries.iter().map(|(sink, backlog, failed, delivered)| json!({
                "sink": sink, "backlog": backlog, "failed": failed, "delivered": delivered,
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
    println!("Delivery backlog:");
    if report.deliveries.is_empty() {
        println!("  (no sink has deliveries yet)");
    }
    for (sink, backlog, failed, delivered) in &report.deliveries {
        println!("  {sink:<16} {backlog} waiting, {failed} failed, {delivered} delivered");
    }
    Ok(())
}

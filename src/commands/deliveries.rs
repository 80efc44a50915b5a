//! `bankpipe deliveries`: see and fix the delivery ledger (issue #11).

use anyhow::Result;
use bankpipe_store::prelude::*;
use bankpipe_store::{with_store, DeliveryFilter, DeliveryOp, DeliveryState};

use crate::cli::{DeliveriesCommand, DeliveriesFilter};
use crate::setup::{self, ConfigProblem};

fn filter(f: &DeliveriesFilter) -> DeliveryFilter {
    DeliveryFilter {
        sink: f.sink.clone(),
        account: f.account.clone(),
        from: f.from,
        to: f.to,
        ids: f.ids.clone(),
        ..DeliveryFilter::default()
    }
}

pub fn run(command: &DeliveriesCommand) -> Result<()> {
    let (f, op, all) = match command {
        DeliveriesCommand::List(args) => return list(args),
        DeliveriesCommand::Retry(s) => (&s.filter, DeliveryOp::Retry, s.all),
        DeliveriesCommand::Resend(s) => (&s.filter, DeliveryOp::Resend, s.all),
        DeliveriesCommand::Skip(s) => (&s.filter, DeliveryOp::Skip, s.all),
    };
    let selection = filter(f);
    if !all && selection == (DeliveryFilter::default()) {
        return Err(
            ConfigProblem("name the deliveries (--sink, --account, --from, --to, --id) or give --all".into()).into()
        );
    }
    let config = setup::load_config(Some(&f.config.config))?;
    let changed = setup::runtime()?.block_on(async {
        let store = setup::open_existing_store(&config).await?;
        anyhow::Ok(with_store!(&store, s => s.operate_deliveries(&selection, op).await?))
    })?;
    let what = match op {
        DeliveryOp::Retry => "queued again; the next sync sends them",
        DeliveryOp::Resend => "marked for resending; the next sync recreates those missing from the sink",
        DeliveryOp::Skip => "skipped; they will not be delivered",
    };
    crate::diag::say(format_args!("{changed} deliveries {what}"));
    Ok(())
}

fn list(args: &crate::cli::DeliveriesListArgs) -> Result<()> {
    let mut selection = filter(&args.filter);
    selection.limit = Some(args.limit);
    selection.state = match &args.state {
        None => None,
        Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
            ConfigProblem(format!("--state {s:?}: expected pending, in_flight, delivered, failed, replaced or skipped"))
        })?),
    };
    let config = setup::load_config(Some(&args.filter.config.config))?;
    let rows = setup::runtime()?.block_on(async {
        let store = setup::open_existing_store(&config).await?;
        anyhow::Ok(with_store!(&store, s => s.list_deliveries(&selection).await?))
    })?;
    for r in &rows {
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "sink": r.sink, "transaction": r.transaction_id, "account": r.account,
                    "booking_date": r.booking_date, "amount_minor": r.amount_minor, "currency": r.currency,
                    "description": r.description, "state": r.state, "remote_id": r.remote_id,
                    "reason": r.reason, "attempts": r.attempts,
                })
            );
        } else {
            println!(
                "{:<10} {:<10} {}  {:<24} {:>12} {} {:<32} {}{}",
                r.sink,
                r.state,
                r.booking_date,
                r.account,
                r.amount_minor,
                r.currency,
                r.transaction_id,
                r.description,
                r.reason.as_deref().map(|m| format!("\n           reason: {m}")).unwrap_or_default()
            );
        }
    }
    if !args.json {
        crate::diag::say(format_args!("{} deliveries listed (at most --limit {})", rows.len(), args.limit));
    }
    Ok(())
}

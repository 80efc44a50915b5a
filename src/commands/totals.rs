//! `bankpipe totals`: daily totals of one account over a date range.

use anyhow::Result;
use bankpipe_enrich::DailyTotalsBuilder;
use bankpipe_store::prelude::*;
use bankpipe_store::with_store;

use crate::cli::TotalsArgs;
use crate::setup::{self, ConfigProblem};

pub fn run(args: &TotalsArgs) -> Result<()> {
    let Some((source, account)) = args.account.split_once(':') else {
        return Err(ConfigProblem(format!("--account {:?}: expected SOURCE:ACCOUNT_ID", args.account)).into());
    };
    let config = setup::load_config(Some(&args.config.config))?;
    let mut totals = DailyTotalsBuilder::new();
    let mut seen = 0u64;
    let mut reported = Vec::new();
    setup::runtime()?.block_on(async {
        let store = setup::open_existing_store(&config).await?;
        let known = with_store!(&store, s => s.accounts().await?)
            .iter()
            .any(|a| &*a.source == source && a.source_account_id == account);
        if !known {
            anyhow::bail!("no account {source}:{account} in the store (`bankpipe status` lists the watermarks per account)");
        }
        let targets = with_store!(&store, s => s.source_totals(Some(args.from)).await?);
        reported = targets
            .into_iter()
            .filter(|t| *t.source == *source && t.date <= args.to && t.scope.iter().any(|a| a == account))
            .collect();
        with_store!(&store, s => s.for_each_transaction(|tx| {
            if &*tx.source == source && tx.source_account_id == account && tx.booking_date >= args.from && tx.booking_date <= args.to {
                seen += 1;
                totals.add(&tx);
            }
            Ok(())
        }).await?);
        anyhow::Ok(())
    })?;
    let (daily, overflowed) = totals.finish_with(reported);
    for q in &overflowed {
        crate::diag::warn(format_args!(
            "{}: {} = {}: {}",
            q.record_id.as_deref().unwrap_or("-"),
            q.field,
            q.value,
            q.reason
        ));
    }
    println!(
        "{:<10}  {:>8}  {:>14}  {:>5}  {:>14}  {:>14}",
        "date", "currency", "net_total", "count", "inflow", "outflow"
    );
    for d in &daily {
        println!(
            "{:<10}  {:>8}  {:>14}  {:>5}  {:>14}  {:>14}",
            d.date.to_string(),
            d.currency.code(),
            d.net_total.to_string(),
            d.transaction_count,
            d.inflow.to_string(),
            d.outflow.to_string()
        );
    }
    crate::diag::say(format_args!(
        "{} transactions of {source}:{account} between {} and {} ({} counted days)",
        seen,
        args.from,
        args.to,
        daily.len()
    ));
    Ok(())
}

//! `bankpipe export`: the stored dataset as the same files, with the same
//! columns, as `replay` writes. Daily totals are computed from the stored
//! rows and reconciled against the sources' own totals stored at ingest
//! (`match`/`mismatch`; `computed` where the source reported none).

use std::time::Instant;

use anyhow::{Context, Result};
use bankpipe_enrich::DailyTotalsBuilder;
use bankpipe_model::Status;
use bankpipe_sinks::file::CanonicalFiles;
use bankpipe_store::{with_store, Store, StoreError};

use crate::cli::ExportArgs;
use crate::commands::replay::Summary;
use crate::setup;

pub fn run(args: &ExportArgs) -> Result<()> {
    let started = Instant::now();
    let config = setup::load_config(Some(&args.config.config))?;
    let mut files = CanonicalFiles::create(&args.out)?;
    let mut totals = DailyTotalsBuilder::new();
    let mut summary = Summary::default();
    let (accounts, quarantine, reported) = setup::runtime()?.block_on(async {
        let store = setup::open_existing_store(&config).await?;
        with_store!(&store, s => {
            let mut batch = Vec::with_capacity(1000);
            s.for_each_transaction(|tx| {
                totals.add(&tx);
                summary.transactions += 1;
                summary.counted += u64::from(tx.counts());
                summary.pending += u64::from(tx.status == Status::Pending);
                summary.memo += u64::from(tx.memo_only);
                summary.duplicates += u64::from(tx.duplicate_of.is_some() || tx.superseded_by.is_some());
                batch.push(tx);
                if batch.len() == 1000 {
                    files.write_batch(std::mem::take(&mut batch)).map_err(|e| StoreError::Callback(e.to_string()))?;
                }
                Ok(())
            })
            .await?;
            files.write_batch(batch)?;
            anyhow::Ok((s.accounts().await?, s.quarantine().await?, s.source_totals(None).await?))
        })
    })?;
    for q in &quarantine {
        files.write_quarantine(q)?;
    }
    summary.quarantined = quarantine.len() as u64;
    let (daily, overflowed) = totals.finish_with(reported);
    for q in &overflowed {
        files.write_quarantine(q)?;
    }
    for d in &daily {
        match d.status() {
            bankpipe_model::ReconcileStatus::Mismatch => summary.mismatching_days += 1,
            bankpipe_model::ReconcileStatus::Match => summary.matching_days += 1,
            bankpipe_model::ReconcileStatus::Computed => {}
        }
    }
    files.finish(&accounts, &daily)?;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    crate::diag::say(format_args!(
        "exported {} transactions ({} counted, {} pending, {} superseded or duplicate), {} accounts, {} quarantined into {}",
        summary.transactions,
        summary.counted,
        summary.pending,
        summary.duplicates,
        accounts.len(),
        summary.quarantined,
        args.out.display()
    ));
    Ok(())
}

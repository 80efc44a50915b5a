//! The stored dataset as the canonical files (`bankpipe export`, and the
//! last step of a replay): `transactions.csv`/`.jsonl` in (booking date,
//! canonical id) order, `accounts.csv`, `daily_totals.csv` reconciled
//! against the sources' own totals stored at ingest (DESIGN §3:
//! `match`/`mismatch`; `computed` where the source reported none),
//! `quarantine.jsonl` and `summary.json`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use bankpipe_enrich::DailyTotalsBuilder;
use bankpipe_model::{ReconcileStatus, Status, Transaction};
use bankpipe_sinks::file::{CanonicalFiles, RowFormats};
use bankpipe_store::{StoreError, TransactionStore};
use serde::Serialize;

/// `summary.json`: the counts of one export or replay. Every field but
/// `elapsed_seconds` is a function of the data (golden checks compare them).
#[derive(Debug, Default, Serialize)]
pub struct FilesSummary {
    /// Page files read (replay; 0 for an export).
    pub pages: u64,
    /// Input transaction records read (Truv transactions, Firefly splits).
    pub records_read: u64,
    /// Canonical transactions written.
    pub transactions: u64,
    /// Of those, rows counted in daily totals.
    pub counted: u64,
    /// Of those, pending rows.
    pub pending: u64,
    /// MEMO rows (stored, never money).
    pub memo: u64,
    /// Records and reported totals rejected to quarantine.
    pub quarantined: u64,
    /// Re-reads of an identity (the same canonical id read again, e.g. on
    /// overlapping pages): one row kept, the newest `updated_at` (replay; 0
    /// for an export).
    pub rereads: u64,
    /// Rows marked as superseded (pending → posted) or as a cross-source
    /// duplicate; written, not counted.
    pub duplicates: u64,
    /// Daily totals rows whose source figure disagrees.
    pub mismatching_days: u64,
    /// Daily totals rows reconciled and matching.
    pub matching_days: u64,
    /// Warnings (also printed on stderr).
    pub warnings: Vec<String>,
    /// Wall time in seconds.
    pub elapsed_seconds: f64,
}

/// Rows handed to the writer threads at a time.
const BATCH: usize = 1000;

/// Write the store's dataset into `out` (created; its files overwritten),
/// the transaction files of `formats`. `on_row` sees every transaction in
/// file order (replay writes explain and sink-request files with it).
/// `summary` arrives with the replay's read counts and is completed here,
/// then written as `summary.json`.
///
/// # Errors
/// Store errors, a file that cannot be written (named), or `on_row`'s error.
pub async fn export<S: TransactionStore>(
    store: &S,
    out: &Path,
    formats: RowFormats,
    mut summary: FilesSummary,
    mut on_row: impl FnMut(&Transaction) -> Result<()> + Send,
) -> Result<FilesSummary> {
    let started = Instant::now();
    let mut files = CanonicalFiles::create_with(out, formats)?;
    let mut totals = DailyTotalsBuilder::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut failed: Option<anyhow::Error> = None;
    store
        .for_each_transaction(|tx| {
            totals.add(&tx);
            summary.transactions += 1;
            summary.counted += u64::from(tx.counts());
            summary.pending += u64::from(tx.status == Status::Pending);
            summary.memo += u64::from(tx.memo_only);
            summary.duplicates += u64::from(tx.duplicate_of.is_some() || tx.superseded_by.is_some());
            if let Err(e) = on_row(&tx) {
                let message = format!("{e:#}");
                failed = Some(e);
                return Err(StoreError::Callback(message));
            }
            batch.push(tx);
            if batch.len() == BATCH {
                files.write_batch(std::mem::take(&mut batch)).map_err(|e| StoreError::Callback(format!("{e:#}")))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| failed.take().unwrap_or_else(|| e.into()))?;
    files.write_batch(batch)?;
    let accounts = store.accounts().await?;
    let quarantine = store.quarantine().await?;
    let reported = store.source_totals(None).await?;
    for q in &quarantine {
        files.write_quarantine(q)?;
    }
    let (daily, overflowed) = totals.finish_with(reported);
    for q in &overflowed {
        files.write_quarantine(q)?;
    }
    summary.quarantined = (quarantine.len() + overflowed.len()) as u64;
    for d in &daily {
        match d.status() {
            ReconcileStatus::Mismatch => summary.mismatching_days += 1,
            ReconcileStatus::Match => summary.matching_days += 1,
            ReconcileStatus::Computed => {}
        }
    }
    files.finish(&accounts, &daily)?;
    summary.elapsed_seconds += started.elapsed().as_secs_f64();
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(summary)
}

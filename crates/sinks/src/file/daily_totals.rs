//! `daily_totals.csv`.

use std::fs::File;
use std::path::Path;

use bankpipe_model::DailyTotal;

use super::{opt, FileSinkError};

/// Columns of `daily_totals.csv`. `source_net_total` and
/// `source_transaction_count` are the source's own figures (empty when it
/// sent none); `status` is `match`, `mismatch` or `computed`.
/// `source_account_id = *` is a reconciliation across all of a response's
/// accounts in that currency. `inflow` ≥ 0, `outflow` ≤ 0.
pub const DAILY_TOTAL_COLUMNS: &[&str] = &[
    "source",
    "source_account_id",
    "date",
    "currency",
    "net_total",
    "transaction_count",
    "source_net_total",
    "source_transaction_count",
    "status",
    "inflow",
    "outflow",
];

pub(super) fn write_csv(path: &Path, totals: &[DailyTotal]) -> Result<(), FileSinkError> {
    let err = |e: csv::Error| FileSinkError { path: path.to_owned(), source: std::io::Error::other(e) };
    let file = File::create(path).map_err(|source| FileSinkError { path: path.to_owned(), source })?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record(DAILY_TOTAL_COLUMNS).map_err(err)?;
    for t in totals {
        w.write_record([
            t.source.to_string(),
            t.source_account_id.clone(),
            t.date.to_string(),
            t.currency.code().to_owned(),
            t.net_total.to_string(),
            t.transaction_count.to_string(),
            opt(t.source_total.as_ref().map(|s| s.net_total)),
            opt(t.source_total.as_ref().map(|s| s.transaction_count)),
            t.status().as_str().to_owned(),
            t.inflow.to_string(),
            t.outflow.to_string(),
        ])
        .map_err(err)?;
    }
    w.flush().map_err(|source| FileSinkError { path: path.to_owned(), source })
}

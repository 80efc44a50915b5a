//! `accounts.csv`.

use std::fs::File;
use std::path::Path;

use bankpipe_model::Account;

use super::{opt, FileSinkError};

/// Columns of `accounts.csv`. Money columns are decimal text in the account
/// currency; `mask` never holds more than the last four characters.
pub const ACCOUNT_COLUMNS: &[&str] = &[
    "source",
    "source_account_id",
    "type",
    "name",
    "mask",
    "currency",
    "balance",
    "available_balance",
    "credit_limit",
    "subtype",
    "opening_balance",
    "opening_balance_date",
];

pub(super) fn write_csv(path: &Path, accounts: &[Account]) -> Result<(), FileSinkError> {
    let err = |e: csv::Error| FileSinkError { path: path.to_owned(), source: std::io::Error::other(e) };
    let file = File::create(path).map_err(|source| FileSinkError { path: path.to_owned(), source })?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record(ACCOUNT_COLUMNS).map_err(err)?;
    for a in accounts {
        w.write_record([
            a.source.to_string(),
            a.source_account_id.clone(),
            opt(a.account_type.as_deref()),
            opt(a.name.as_deref()),
            opt(a.mask.as_deref()),
            opt(a.currency),
            opt(a.balance),
            opt(a.available_balance),
            opt(a.credit_limit),
            opt(a.subtype.as_deref()),
            opt(a.opening_balance),
            opt(a.opening_balance_date),
        ])
        .map_err(err)?;
    }
    w.flush().map_err(|source| FileSinkError { path: path.to_owned(), source })
}

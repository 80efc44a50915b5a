//! The canonical file sink: writes the canonical dataset as
//!
//! | file | content |
//! |---|---|
//! | `transactions.csv`, `transactions.jsonl` | one row per canonical transaction ([`TRANSACTION_COLUMNS`]) |
//! | `accounts.csv` | one row per account ([`ACCOUNT_COLUMNS`]) |
//! | `daily_totals.csv` | one row per (source, account, date, currency) ([`DAILY_TOTAL_COLUMNS`]) |
//! | `quarantine.jsonl` | one object per rejected record |
//!
//! Amounts are signed decimal text with exactly the currency's minor digits
//! (`-4.75`, `-500` JPY, `-1.250` KWD); instants are RFC 3339 UTC; dates are
//! `YYYY-MM-DD`. Rows are streamed: nothing is buffered beyond the writers.

mod accounts;
mod daily_totals;
mod quarantine;
mod transactions;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use bankpipe_model::{Account, DailyTotal, QuarantineRecord, Transaction};

pub use accounts::ACCOUNT_COLUMNS;
pub use daily_totals::DAILY_TOTAL_COLUMNS;
pub use transactions::TRANSACTION_COLUMNS;

/// An I/O failure naming the output file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FileSinkError {
    /// The file being written.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Streaming writer of the canonical dataset into one directory.
pub struct CanonicalFiles {
    dir: PathBuf,
    tx_csv: csv::Writer<BufWriter<File>>,
    tx_jsonl: BufWriter<File>,
    quarantine: BufWriter<File>,
    row: Vec<String>,
}

const BUF: usize = 1 << 20;

impl CanonicalFiles {
    /// Create `dir` (and parents) and open the streaming outputs.
    ///
    /// # Errors
    /// [`FileSinkError`] naming the directory or file that could not be created.
    pub fn create(dir: &Path) -> Result<CanonicalFiles, FileSinkError> {
        std::fs::create_dir_all(dir).map_err(|source| FileSinkError { path: dir.to_owned(), source })?;
        let open = |name: &str| -> Result<BufWriter<File>, FileSinkError> {
            let path = dir.join(name);
            File::create(&path)
                .map(|f| BufWriter::with_capacity(BUF, f))
                .map_err(|source| FileSinkError { path, source })
        };
        let mut tx_csv = csv::Writer::from_writer(open("transactions.csv")?);
        tx_csv.write_record(TRANSACTION_COLUMNS).map_err(|e| csv_error(dir, "transactions.csv", e))?;
        Ok(CanonicalFiles {
            dir: dir.to_owned(),
            tx_csv,
            tx_jsonl: open("transactions.jsonl")?,
            quarantine: open("quarantine.jsonl")?,
            row: Vec::with_capacity(TRANSACTION_COLUMNS.len()),
        })
    }

    /// Append one transaction to `transactions.csv` and `transactions.jsonl`.
    ///
    /// # Errors
    /// [`FileSinkError`] on a write failure.
    pub fn write_transaction(&mut self, tx: &Transaction) -> Result<(), FileSinkError> {
        transactions::fill_row(tx, &mut self.row);
        self.tx_csv.write_record(&self.row).map_err(|e| csv_error(&self.dir, "transactions.csv", e))?;
        transactions::write_json(tx, &mut self.tx_jsonl).map_err(|e| self.io("transactions.jsonl", e))?;
        Ok(())
    }

    /// Append one record to `quarantine.jsonl`.
    ///
    /// # Errors
    /// [`FileSinkError`] on a write failure.
    pub fn write_quarantine(&mut self, record: &QuarantineRecord) -> Result<(), FileSinkError> {
        quarantine::write_json(record, &mut self.quarantine).map_err(|e| self.io("quarantine.jsonl", e))
    }

    /// Write `accounts.csv` and `daily_totals.csv`, flush everything.
    ///
    /// # Errors
    /// [`FileSinkError`] on a write failure.
    pub fn finish(mut self, accounts: &[Account], totals: &[DailyTotal]) -> Result<(), FileSinkError> {
        accounts::write_csv(&self.dir.join("accounts.csv"), accounts)?;
        daily_totals::write_csv(&self.dir.join("daily_totals.csv"), totals)?;
        self.tx_csv.flush().map_err(|e| self.io("transactions.csv", e))?;
        self.tx_jsonl.flush().map_err(|e| self.io("transactions.jsonl", e))?;
        self.quarantine.flush().map_err(|e| self.io("quarantine.jsonl", e))?;
        Ok(())
    }

    fn io(&self, name: &str, source: io::Error) -> FileSinkError {
        FileSinkError { path: self.dir.join(name), source }
    }
}

fn csv_error(dir: &Path, name: &str, e: csv::Error) -> FileSinkError {
    FileSinkError { path: dir.join(name), source: io::Error::other(e) }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn write_line<W: Write>(out: &mut W, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

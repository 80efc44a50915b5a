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
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use bankpipe_model::{Account, DailyTotal, QuarantineRecord, Transaction};

pub use accounts::ACCOUNT_COLUMNS;
pub use daily_totals::DAILY_TOTAL_COLUMNS;
pub use transactions::TRANSACTION_COLUMNS;

/// An I/O failure naming the output file (the OS error is the
/// `source()`, shown after it by `{:#}` chains).
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write")]
pub struct FileSinkError {
    /// The file being written.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Streaming writer of the canonical dataset into one directory.
///
/// `transactions.csv` and `transactions.jsonl` are each serialized on a
/// writer thread of their own, fed whole batches (pages) of rows through a
/// bounded channel (at most [`BATCHES_IN_FLIGHT`] batches queued per file),
/// so the caller's thread only does pipeline work. Rows are written in batch
/// order, and in order within a batch.
pub struct CanonicalFiles {
    dir: PathBuf,
    rows: Vec<RowWriter>,
    quarantine: BufWriter<File>,
}

/// Batches that may wait for each writer thread before `write_batch` blocks.
pub const BATCHES_IN_FLIGHT: usize = 4;

const BUF: usize = 1 << 20;

type Batch = Arc<Vec<Transaction>>;

/// One row-per-transaction output format.
trait RowFormat: Send + 'static {
    fn write_row(&mut self, tx: &Transaction) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

struct CsvRows {
    w: csv::Writer<BufWriter<File>>,
    scratch: String,
}

impl RowFormat for CsvRows {
    fn write_row(&mut self, tx: &Transaction) -> io::Result<()> {
        transactions::write_csv(tx, &mut self.w, &mut self.scratch).map_err(io::Error::other)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

struct JsonRows(BufWriter<File>);

impl RowFormat for JsonRows {
    fn write_row(&mut self, tx: &Transaction) -> io::Result<()> {
        transactions::write_json(tx, &mut self.0)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A file written by its own thread.
struct RowWriter {
    path: PathBuf,
    send: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl RowWriter {
    fn spawn(path: PathBuf, mut format: impl RowFormat) -> Result<RowWriter, FileSinkError> {
        let (send, receive) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name(format!("write {}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
            .spawn(move || {
                for batch in receive {
                    for tx in batch.iter() {
                        format.write_row(tx)?;
                    }
                }
                format.flush()
            })
            .map_err(|source| FileSinkError { path: path.clone(), source })?;
        Ok(RowWriter { path, send: Some(send), thread: Some(thread) })
    }

    fn send(&mut self, batch: Batch) -> Result<(), FileSinkError> {
        if self.send.as_ref().is_some_and(|s| s.send(batch).is_ok()) {
            return Ok(());
        }
        // The thread stopped early: it failed. Surface its error.
        match self.finish() {
            Err(e) => Err(e),
            Ok(()) => Err(FileSinkError { path: self.path.clone(), source: io::Error::other("writer stopped") }),
        }
    }

    /// Close the channel, wait for the thread, return its outcome.
    fn finish(&mut self) -> Result<(), FileSinkError> {
        drop(self.send.take());
        let error = |source| FileSinkError { path: self.path.clone(), source };
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(error(e)),
            Some(Err(_)) => Err(error(io::Error::other("writer thread panicked"))),
        }
    }
}

impl Drop for RowWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Which row-per-transaction files to write (`--format`): the CSV, the
/// JSONL, or both (the default). The other files are always written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowFormats {
    /// `transactions.csv` only.
    Csv,
    /// `transactions.jsonl` only.
    Jsonl,
    /// Both.
    #[default]
    Both,
}

impl RowFormats {
    /// The transaction files of this choice.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            RowFormats::Csv => &["transactions.csv"],
            RowFormats::Jsonl => &["transactions.jsonl"],
            RowFormats::Both => &["transactions.csv", "transactions.jsonl"],
        }
    }
}

impl CanonicalFiles {
    /// Create `dir` (and parents), open the outputs and start the writer threads.
    ///
    /// # Errors
    /// [`FileSinkError`] naming the directory or file that could not be created.
    pub fn create(dir: &Path) -> Result<CanonicalFiles, FileSinkError> {
        CanonicalFiles::create_with(dir, RowFormats::Both)
    }

    /// [`CanonicalFiles::create`] writing only the transaction files of
    /// `formats`; a transaction file of the other format left in `dir` by an
    /// earlier run is removed, so the directory never mixes two runs.
    ///
    /// # Errors
    /// [`FileSinkError`] naming the directory or file that could not be created or removed.
    pub fn create_with(dir: &Path, formats: RowFormats) -> Result<CanonicalFiles, FileSinkError> {
        std::fs::create_dir_all(dir).map_err(|source| FileSinkError { path: dir.to_owned(), source })?;
        let open = |name: &str| -> Result<BufWriter<File>, FileSinkError> {
            let path = dir.join(name);
            File::create(&path)
                .map(|f| BufWriter::with_capacity(BUF, f))
                .map_err(|source| FileSinkError { path, source })
        };
        let mut rows = Vec::with_capacity(2);
        for name in ["transactions.csv", "transactions.jsonl"] {
            let path = dir.join(name);
            if formats.files().contains(&name) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(FileSinkError { path, source: e }),
                _ => {}
            }
        }
        if formats != RowFormats::Jsonl {
            let mut csv = csv::Writer::from_writer(open("transactions.csv")?);
            csv.write_record(TRANSACTION_COLUMNS).map_err(|e| csv_error(dir, "transactions.csv", e))?;
            rows.push(RowWriter::spawn(
                dir.join("transactions.csv"),
                CsvRows { w: csv, scratch: String::with_capacity(64) },
            )?);
        }
        if formats != RowFormats::Csv {
            rows.push(RowWriter::spawn(dir.join("transactions.jsonl"), JsonRows(open("transactions.jsonl")?))?);
        }
        Ok(CanonicalFiles { dir: dir.to_owned(), rows, quarantine: open("quarantine.jsonl")? })
    }

    /// Queue a batch of transactions for `transactions.csv` and
    /// `transactions.jsonl`; blocks while the writers are
    /// [`BATCHES_IN_FLIGHT`] batches behind.
    ///
    /// # Errors
    /// [`FileSinkError`] when a writer thread failed (the first failure).
    pub fn write_batch(&mut self, batch: Vec<Transaction>) -> Result<(), FileSinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = Arc::new(batch);
        for w in &mut self.rows {
            w.send(Arc::clone(&batch))?;
        }
        Ok(())
    }

    /// Append one record to `quarantine.jsonl`.
    ///
    /// # Errors
    /// [`FileSinkError`] on a write failure.
    pub fn write_quarantine(&mut self, record: &QuarantineRecord) -> Result<(), FileSinkError> {
        quarantine::write_json(record, &mut self.quarantine).map_err(|e| self.io("quarantine.jsonl", e))
    }

    /// Write `accounts.csv` and `daily_totals.csv`, drain the writer threads
    /// and flush everything.
    ///
    /// # Errors
    /// [`FileSinkError`] on a write failure.
    pub fn finish(mut self, accounts: &[Account], totals: &[DailyTotal]) -> Result<(), FileSinkError> {
        accounts::write_csv(&self.dir.join("accounts.csv"), accounts)?;
        daily_totals::write_csv(&self.dir.join("daily_totals.csv"), totals)?;
        for w in &mut self.rows {
            w.finish()?;
        }
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

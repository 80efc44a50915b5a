//! bankpipe's state (DESIGN §7): a [`Store`] trait with two
//! implementations — [`SqliteStore`], the embedded default (one file, WAL,
//! busy timeout, `BEGIN IMMEDIATE` for read-then-write transactions), and
//! [`PgStore`], for several workers sharing one PostgreSQL database.
//!
//! Migrations per backend are embedded in the binary and applied on open; a
//! database migrated by a newer bankpipe is refused with a clear message.
//! Money is stored as integer ISO 4217 minor units plus the currency code,
//! never as a float. Tables: `runs`, `watermarks`, `accounts`,
//! `transactions` (upsert by canonical id), `dedupe_links`, `quarantine`,
//! `backfill_windows`, `deliveries`.

mod backend;
mod error;
pub mod lock;
mod postgres;
pub mod rows;
mod sqlite;
mod types;

use std::future::Future;

use bankpipe_model::{Account, QuarantineRecord, Transaction};
use chrono::NaiveDate;

pub use error::StoreError;
pub use lock::SyncLock;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use types::*;

/// Everything bankpipe persists. Implemented by [`SqliteStore`] and
/// [`PgStore`] with the same semantics; every method is one database
/// transaction unless stated otherwise.
pub trait Store: Send + Sync {
    /// Record the start of a run; returns its id.
    fn begin_run(&self, kind: RunKind) -> impl Future<Output = Result<RunId, StoreError>> + Send;

    /// Record a run's end, counts and outcome.
    fn finish_run(&self, run: RunId, summary: &RunSummary) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Write one normalized page atomically: accounts (newest wins),
    /// transactions (insert new ids; update rows whose content changed and
    /// whose `updated_at` is not older; leave unchanged rows untouched) and
    /// quarantine records (one already stored by an earlier run — the same
    /// source, field, value and reason — is not stored again). Returns what
    /// changed; `quarantined` counts this page's rejected records.
    fn write_page(
        &self,
        run: RunId,
        accounts: &[Account],
        transactions: &[Transaction],
        quarantine: &[QuarantineRecord],
    ) -> impl Future<Output = Result<PageCounts, StoreError>> + Send;

    /// The watermarks of a source, one per account.
    fn watermarks(&self, source: &str) -> impl Future<Output = Result<Vec<Watermark>, StoreError>> + Send;

    /// Move watermarks forward (never backwards) to the given dates.
    fn advance_watermarks(
        &self,
        run: RunId,
        source: &str,
        dates: &[(String, NaiveDate)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Rows that dedupe may pair: of the given `(source, account)`s, booked on
    /// or after `since`, not already superseded or a duplicate.
    fn dedupe_candidates(
        &self,
        accounts: &[(String, String)],
        since: NaiveDate,
    ) -> impl Future<Output = Result<Vec<Candidate>, StoreError>> + Send;

    /// Persist dedupe decisions (set `superseded_by`/`duplicate_of` and a
    /// `dedupe_links` row with the reason). Already-decided rows are skipped.
    fn apply_dedupe(&self, run: RunId, links: &[DedupeLink]) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// `true` when a backfill window of `source` was completed.
    fn backfill_window_done(
        &self,
        source: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Checkpoint a completed backfill window.
    fn complete_backfill_window(
        &self,
        run: RunId,
        source: &str,
        from: NaiveDate,
        to: NaiveDate,
        transactions: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One transaction by canonical id.
    fn transaction(&self, id: &str) -> impl Future<Output = Result<Option<Transaction>, StoreError>> + Send;

    /// Dedupe links of a transaction, as the duplicate/superseded row or as the kept row.
    fn links_of(&self, id: &str) -> impl Future<Output = Result<Vec<DedupeLink>, StoreError>> + Send;

    /// Stream every transaction, ordered by (booking date, id), in batches.
    fn for_each_transaction<F>(&self, f: F) -> impl Future<Output = Result<u64, StoreError>> + Send
    where
        F: FnMut(Transaction) -> Result<(), StoreError> + Send;

    /// Every account.
    fn accounts(&self) -> impl Future<Output = Result<Vec<Account>, StoreError>> + Send;

    /// Every quarantine record (oldest first).
    fn quarantine(&self) -> impl Future<Output = Result<Vec<QuarantineRecord>, StoreError>> + Send;

    /// Last runs, watermarks, quarantine count and delivery backlog.
    fn status(&self, last_runs: u32) -> impl Future<Output = Result<StatusReport, StoreError>> + Send;

    /// Queue for `sink` every deliverable transaction not yet queued — posted
    /// (any status with `include_pending`), not MEMO, not a duplicate, not
    /// superseded — and drop queued-but-unsent rows that stopped being
    /// deliverable. Returns the rows queued.
    fn enqueue_deliveries(
        &self,
        sink: &str,
        include_pending: bool,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` transactions whose delivery to `sink` is in `state`,
    /// ordered by (source, account, booking date, id), after `after` (a
    /// keyset cursor: the last row of the previous batch).
    fn deliveries(
        &self,
        sink: &str,
        state: DeliveryState,
        after: Option<&Transaction>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Transaction>, StoreError>> + Send;

    /// Set a delivery's state, with the sink's id or the failure reason;
    /// committed before returning (the outbox marks `in_flight` this way
    /// before every POST).
    fn set_delivery(
        &self,
        sink: &str,
        transaction_id: &str,
        state: DeliveryState,
        remote_id: Option<&str>,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Remote ids of the transactions of `(source, account)` booked between
    /// `from` and `to` already delivered to `sink` (reconciliation skips them).
    fn delivered_remote_ids(
        &self,
        sink: &str,
        source: &str,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Of `ids`, those whose delivery to `sink` is settled (delivered or failed).
    fn settled_deliveries(
        &self,
        sink: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The rate budget last seen for an origin: (limit, remaining, reset as Unix seconds).
    fn rate_budget(
        &self,
        origin: &str,
    ) -> impl Future<Output = Result<Option<(Option<i64>, i64, i64)>, StoreError>> + Send;

    /// Remember an origin's rate budget (limit, remaining, reset as Unix seconds).
    fn save_rate_budget(
        &self,
        origin: &str,
        limit: Option<i64>,
        remaining: i64,
        reset_unix: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The sink account bankpipe created for a source account, if any.
    fn sink_account(
        &self,
        sink: &str,
        source: &str,
        account: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Remember a sink account created for a source account.
    fn set_sink_account(
        &self,
        sink: &str,
        source: &str,
        account: &str,
        remote: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Open the store named by a `database_url`: `sqlite://PATH` (created if
/// missing) or `postgres://…` (optionally inside `schema`), applying migrations.
///
/// # Errors
/// [`StoreError`] naming the database: unreachable, corrupt, locked,
/// read-only, or migrated by a newer bankpipe.
pub async fn open(database_url: &str, schema: Option<&str>) -> Result<AnyStore, StoreError> {
    if database_url.starts_with("sqlite:") {
        Ok(AnyStore::Sqlite(SqliteStore::open(database_url).await?))
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Ok(AnyStore::Postgres(Box::new(PgStore::open_in_schema(database_url, schema).await?)))
    } else {
        Err(StoreError::Config(format!(
            "database_url {database_url:?}: expected sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }
}

/// A store of either backend, as opened from a URL.
pub enum AnyStore {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(Box<PgStore>),
}

impl AnyStore {
    /// Take the one-sync-at-a-time lock of this database.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another sync or backfill holds it.
    pub async fn lock(&self) -> Result<SyncLock, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.lock().await,
            AnyStore::Postgres(p) => p.lock().await,
        }
    }
}

/// Run `$body` with `$s` bound to the concrete store (generic code over [`Store`]).
#[macro_export]
macro_rules! with_store {
    ($any:expr, $s:ident => $body:expr) => {
        match $any {
            $crate::AnyStore::Sqlite($s) => $body,
            $crate::AnyStore::Postgres($s) => {
                let $s = &**$s;
                $body
            }
        }
    };
}

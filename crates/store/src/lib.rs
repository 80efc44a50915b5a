//! bankpipe's state (DESIGN §7): a [`Store`] trait with two
//! implementations — [`SqliteStore`], the embedded default (one file, WAL,
//! busy timeout, `BEGIN IMMEDIATE` for read-then-write transactions), and
//! [`PgStore`], for several workers sharing one PostgreSQL database. A
//! third, [`MemoryStore`], holds the run log and the canonical dataset of
//! one process in memory (replay) with the same semantics.
//!
//! Migrations per backend are embedded in the binary and applied on open; a
//! database migrated by a newer bankpipe is refused with a clear message.
//! Money is stored as integer ISO 4217 minor units plus the currency code,
//! never as a float. Tables: `runs`, `watermarks`, `accounts`,
//! `transactions` (upsert by canonical id), `dedupe_links`, `quarantine`,
//! `backfill_windows`, `deliveries`.

mod backend;
mod error;
mod first_load;
pub mod leases;
mod leases_sql;
pub mod lock;
mod memory;
mod migrations;
mod postgres;
pub mod rows;
mod shared_rates;
mod sqlite;
mod types;

use std::future::Future;

use bankpipe_model::{Account, QuarantineRecord, ReconcileTarget, Transaction};
use chrono::NaiveDate;

pub use error::StoreError;
pub use leases::WorkLeases;
pub use lock::SyncLock;
pub use memory::MemoryStore;
pub use postgres::PgStore;
pub use shared_rates::SharedRateBudgets;
pub use sqlite::SqliteStore;
pub use types::*;

/// The store traits, to call their methods on a concrete store.
pub mod prelude {
    pub use crate::{DeliveryLedger, RateBudgets, RunLog, Store, TransactionStore, WorkLeases};
}

/// Everything bankpipe persists, by concern: each stage's functions bound on
/// the concerns they use ([`RunLog`], [`TransactionStore`],
/// [`DeliveryLedger`], [`RateBudgets`], [`WorkLeases`]); `Store` is all five. Implemented by
/// [`SqliteStore`] and [`PgStore`] with the same semantics; every method is
/// one database transaction unless stated otherwise. Bring the methods into
/// scope with `use bankpipe_store::prelude::*`.
pub trait Store: RunLog + TransactionStore + DeliveryLedger + RateBudgets + WorkLeases {}

impl<T: RunLog + TransactionStore + DeliveryLedger + RateBudgets + WorkLeases> Store for T {}

/// Runs and their checkpoints: the run log, per-account watermarks, full
/// sweeps and backfill windows, and the status report (DESIGN §7, §8).
pub trait RunLog: Send + Sync {
    /// Record the start of a run; returns its id. Called while holding the
    /// one-sync lock: runs still marked `running` (their process died) are
    /// marked `interrupted` first.
    fn begin_run(&self, kind: RunKind) -> impl Future<Output = Result<RunId, StoreError>> + Send;

    /// Record a run's end, counts and outcome.
    fn finish_run(&self, run: RunId, summary: &RunSummary) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The watermarks of a source, one per account.
    fn watermarks(&self, source: &str) -> impl Future<Output = Result<Vec<Watermark>, StoreError>> + Send;

    /// Move watermarks forward (never backwards) to the given dates.
    fn advance_watermarks(
        &self,
        run: RunId,
        source: &str,
        dates: &[(String, NaiveDate)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The distinct (account, booking date) of the rows of `source` still
    /// pending (not MEMO, not superseded or a duplicate), booked on or after
    /// `since`, ordered — where an account's next fetch window must start so
    /// a late settlement is seen.
    fn oldest_pending(
        &self,
        source: &str,
        since: NaiveDate,
    ) -> impl Future<Output = Result<Vec<(String, NaiveDate)>, StoreError>> + Send;

    /// When `source` was last walked over its whole history (RFC 3339 UTC).
    fn last_full_sweep(&self, source: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Record a completed whole-history walk of `source`.
    fn record_full_sweep(&self, run: RunId, source: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

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

    /// Last runs, watermarks, quarantine count and delivery backlog.
    fn status(&self, last_runs: u32) -> impl Future<Output = Result<StatusReport, StoreError>> + Send;
}

/// The canonical dataset: pages written with identity dedupe, the dedupe
/// decisions, accounts, quarantine and the sources' daily totals (DESIGN
/// §3, §4).
pub trait TransactionStore: Send + Sync {
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

    /// Write several pages in one store transaction, each exactly as
    /// [`TransactionStore::write_page`] writes it, in order (a later page's
    /// rows meet an earlier page's as stored); returns the summed counts.
    /// All pages are written or none. Ingest uses it for the pages that
    /// wait while one is written: one commit instead of one per page.
    fn write_pages(
        &self,
        run: RunId,
        pages: &[PageWrite<'_>],
    ) -> impl Future<Output = Result<PageCounts, StoreError>> + Send;

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

    /// One transaction by canonical id.
    fn transaction(&self, id: &str) -> impl Future<Output = Result<Option<Transaction>, StoreError>> + Send;

    /// The other leg of a transfer: the row of the same source and source
    /// transaction id in another account, when there is exactly one.
    fn counterpart(&self, tx: &Transaction) -> impl Future<Output = Result<Option<Transaction>, StoreError>> + Send;

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

    /// Store the sources' resolved daily totals of this run (DESIGN §3):
    /// one row per (source, account or `*`, date, currency), a later figure
    /// replacing an earlier one.
    fn save_source_totals(
        &self,
        run: RunId,
        targets: &[ReconcileTarget],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The stored source daily totals on or after `since` (all when `None`),
    /// sorted by (source, account, date, currency).
    fn source_totals(
        &self,
        since: Option<NaiveDate>,
    ) -> impl Future<Output = Result<Vec<ReconcileTarget>, StoreError>> + Send;

    /// Reconcile the stored source totals on or after `since` against the
    /// counted rows now stored (one grouped read), record each result
    /// (`match`/`mismatch`) and return every mismatch with its computed
    /// figures.
    fn reconcile_source_totals(
        &self,
        since: Option<NaiveDate>,
    ) -> impl Future<Output = Result<Vec<TotalMismatch>, StoreError>> + Send;

    /// Refresh the query planner's statistics of the tables a sync just
    /// filled (PostgreSQL `ANALYZE`; SQLite `PRAGMA optimize`). After a
    /// bulk first load, autovacuum may not have run yet, and the outbox's
    /// anti-joins planned for an "empty" table become quadratic (seen on
    /// PostgreSQL at 97,000 rows: queueing one sink ran for minutes; the
    /// same statement with fresh statistics took 1.2 s).
    fn refresh_statistics(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Start a bulk first load: when no transaction is stored yet, drop
    /// every index of `transactions` (the unique index on `id` included)
    /// and keep their definitions (one store transaction), so that the
    /// pages that follow go into the table alone;
    /// [`TransactionStore::build_deferred_indexes`] builds them again, each
    /// in one sorted pass. Returns whether indexes were deferred. SQLite
    /// only: on PostgreSQL (other workers read the indexes meanwhile) and in
    /// memory it does nothing and returns `false`.
    ///
    /// Writes stay upserts meanwhile: the store notes the rowid it gives
    /// each id it inserts, and finds an id that comes again by that rowid
    /// (a page fetched twice, a pending row that posts). Until the indexes
    /// are built, reads that use them (dedupe, the outbox, `status`, a
    /// transaction by id) are slower but not different. A process that
    /// dies in between leaves the definitions stored; the next process that
    /// opens the database while no sync or backfill holds its lock builds
    /// them, and so does the next `defer_indexes` on a store holding rows.
    fn defer_indexes(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Build every index [`TransactionStore::defer_indexes`] deferred, one
    /// store transaction each (built and forgotten together); returns how
    /// many (0 when none is deferred).
    fn build_deferred_indexes(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The delivery ledger (DESIGN §6): the outbox's rows and their
/// conditional state transitions, and the sink accounts bankpipe created.
/// Only these methods change delivery state.
pub trait DeliveryLedger: Send + Sync {
    /// Queue for `sink` every deliverable transaction not yet queued — posted
    /// (any status with `include_pending`), not MEMO, not a duplicate, not
    /// superseded — and drop queued-but-unsent rows that stopped being
    /// deliverable. Delivery-aware (DESIGN §4.7): a row is not queued while
    /// its cross-source twin or the pending row it superseded is delivered
    /// (or in flight) to this sink. With `corrections` (a sink that can
    /// delete rows): a posted row superseding a delivered pending row is
    /// queued to replace its sink row, and a delivered row whose status,
    /// amount or booking date changed is queued again as a correction (next
    /// revision). Returns the deliveries queued.
    fn enqueue_deliveries(
        &self,
        sink: &str,
        include_pending: bool,
        corrections: bool,
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
    ) -> impl Future<Output = Result<Vec<Queued>, StoreError>> + Send;

    /// `pending → in_flight` for each of `rows`, in one transaction committed
    /// (durably) before any of their requests is sent (DESIGN §6): stores
    /// each idempotency marker, the exact request (JSON text) and the
    /// version of the transaction the sink receives ([`sent_version`]), and
    /// counts an attempt. Returns, per row, `false` when it was not pending
    /// any more (another worker took it; nothing changed for it).
    ///
    /// Committing a few rows at once costs one durable commit instead of
    /// one per row; a crash leaves them in flight, and the next pass
    /// reconciles them by marker like any other.
    ///
    /// # Errors
    /// With a store bound to a lease: [`StoreError::LeaseLost`] when the
    /// lease is not held with at least its margin left (nothing changes).
    fn begin_deliveries(
        &self,
        sink: &str,
        rows: &[Begin<'_>],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// [`Self::begin_deliveries`] for one row.
    fn begin_delivery(
        &self,
        sink: &str,
        tx: &Transaction,
        marker: &str,
        request: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let moved = self.begin_deliveries(sink, &[Begin { tx, marker, request }]).await?;
            Ok(moved.first().copied().unwrap_or(false))
        }
    }

    /// Count one more send of an `in_flight` row's stored request, with the
    /// ambiguous outcome of the previous one as `reason`. Conditional on
    /// `attempts` still being `attempts_seen` (optimistic concurrency);
    /// returns `false` when it was not.
    fn resend_delivery(
        &self,
        sink: &str,
        transaction_id: &str,
        attempts_seen: i64,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Move a delivery from state `from` to `to` with the sink's id
    /// (delivered) or the reason (failed), only if it is still in `from`;
    /// returns whether it was. Moving to `pending` clears the stored request
    /// and takes back the attempt counted by `begin_deliveries` (only done
    /// when the request provably never reached the sink).
    ///
    /// # Errors
    /// A remote id already recorded for another delivery of the sink
    /// violates `UNIQUE (sink, remote_id)` and fails.
    fn settle_delivery(
        &self,
        sink: &str,
        transaction_id: &str,
        from: DeliveryState,
        to: DeliveryState,
        remote_id: Option<&str>,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `limit` `in_flight` deliveries of `sink` ordered by transaction
    /// id, after `after` — whatever the transaction's dedupe state (a row
    /// in flight is reconciled even if it was superseded meanwhile).
    fn in_flight(
        &self,
        sink: &str,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<InFlight>, StoreError>> + Send;

    /// Deliveries matching `filter`, newest booking date first.
    fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> impl Future<Output = Result<Vec<DeliveryListing>, StoreError>> + Send;

    /// Apply an operator's action to the deliveries matching `filter` whose
    /// state allows it (see [`DeliveryOp`]); returns the rows changed.
    fn operate_deliveries(
        &self,
        filter: &DeliveryFilter,
        op: DeliveryOp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The ledger row of one (sink, transaction).
    fn delivery(
        &self,
        sink: &str,
        transaction_id: &str,
    ) -> impl Future<Output = Result<Option<DeliveryRow>, StoreError>> + Send;

    /// Of `ids`, those whose delivery to `sink` is settled (delivered or failed).
    fn settled_deliveries(
        &self,
        sink: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

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

/// Each sink origin's rate budget (DESIGN §6, §7).
///
/// - SQLite (one worker per database): a last-seen snapshot, carried
///   across runs — read with [`rate_budget`](RateBudgets::rate_budget) to
///   seed the HTTP client's local gate, written back with
///   [`save_rate_budget`](RateBudgets::save_rate_budget).
/// - PostgreSQL (several workers): a budget shared live by every worker,
///   reserved and updated atomically on the database's clock through
///   [`shared_rate_budgets`](RateBudgets::shared_rate_budgets); the snapshot
///   methods still read it (for `status`), and nothing should save over it.
pub trait RateBudgets: Send + Sync {
    /// The rate budget last seen for an origin: (limit, remaining, reset as
    /// Unix seconds); `None` while no window is known.
    fn rate_budget(
        &self,
        origin: &str,
    ) -> impl Future<Output = Result<Option<(Option<i64>, i64, i64)>, StoreError>> + Send;

    /// Remember an origin's rate budget (limit, remaining, reset as Unix
    /// seconds). SQLite replaces what was stored. PostgreSQL, whose row
    /// other workers are reserving from, merges it as a response's counts
    /// would be ([`SharedRateBudgets::observe`]: never a higher Remaining
    /// within the same window, a later Reset starts a new one).
    fn save_rate_budget(
        &self,
        origin: &str,
        limit: Option<i64>,
        remaining: i64,
        reset_unix: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The budgets shared by every worker of this database, to reserve
    /// requests from and report responses to: `Some` for PostgreSQL,
    /// `None` for SQLite (one worker per file: the HTTP client's own gate,
    /// seeded from [`rate_budget`](RateBudgets::rate_budget)).
    fn shared_rate_budgets(&self) -> Option<SharedRateBudgets>;
}

/// What a sink holds of a delivered transaction, compared on later runs to
/// detect source changes: `status|amount in minor units|booking date`
/// (e.g. `posted|-475|2024-03-05`), the same text the store's SQL builds.
///
/// # Errors
/// [`StoreError::Money`] when the amount has no integer minor units.
pub fn sent_version(tx: &Transaction) -> Result<String, StoreError> {
    let minor =
        tx.amount.to_minor_units().map_err(|e| StoreError::Money { id: tx.id.to_string(), cause: e.to_string() })?;
    Ok(format!("{}|{minor}|{}", tx.status.as_str(), tx.booking_date))
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
            "database_url {:?}: expected sqlite://PATH or postgres://USER@HOST/DB",
            postgres::redact(database_url)
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

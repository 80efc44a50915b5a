//! The [`Store`](crate::Store) implementation, written once and
//! instantiated for each backend by `store_impl!`. Backend-specific pieces
//! (opening, `BEGIN IMMEDIATE` vs `BEGIN`, locks, migrations) live in
//! `sqlite.rs` and `postgres.rs`; SQL here is portable (`ON CONFLICT … DO
//! UPDATE`, row values) and placeholders come from `QueryBuilder`.

/// Rows per multi-row statement (well under both backends' bind limits).
pub(crate) const CHUNK: usize = 200;

/// Columns of `transactions` written by an upsert, in bind order.
pub(crate) const TX_COLUMNS: &str = "id, source, source_account_id, source_transaction_id, status, booking_date, \
    amount_minor, currency, description, merchant_name, mcc, category, category_source, kind, memo_only, \
    transacted_at, posted_at, updated_at, source_status, source_type, external_id, group_id, source_categories, \
    memo, check_number, source_fields, fingerprint, first_run, last_run, seen_pending";

/// `SET` list of an upsert: content columns and `last_run`; never the
/// dedupe decisions or `first_run`.
pub(crate) const TX_UPDATE: &str = " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
    booking_date = excluded.booking_date, amount_minor = excluded.amount_minor, currency = excluded.currency, \
    description = excluded.description, merchant_name = excluded.merchant_name, mcc = excluded.mcc, \
    category = excluded.category, category_source = excluded.category_source, kind = excluded.kind, \
    memo_only = excluded.memo_only, transacted_at = excluded.transacted_at, posted_at = excluded.posted_at, \
    updated_at = excluded.updated_at, source_status = excluded.source_status, source_type = excluded.source_type, \
    external_id = excluded.external_id, group_id = excluded.group_id, source_categories = excluded.source_categories, \
    memo = excluded.memo, check_number = excluded.check_number, source_fields = excluded.source_fields, \
    fingerprint = excluded.fingerprint, last_run = excluded.last_run, \
    seen_pending = (transactions.seen_pending OR excluded.seen_pending) \
    WHERE transactions.updated_at IS NULL OR excluded.updated_at IS NULL OR excluded.updated_at >= transactions.updated_at";

/// Conflict clause of an account upsert: a field the page leaves empty
/// keeps its stored value, an older `updated_at` changes nothing, and a
/// copy that would change no column is not written at all (no new row
/// version, no dirty page).
pub(crate) const ACCOUNT_UPSERT: &str = " ON CONFLICT (source, source_account_id) DO UPDATE SET \
    account_type = COALESCE(excluded.account_type, accounts.account_type), \
    subtype = COALESCE(excluded.subtype, accounts.subtype), name = COALESCE(excluded.name, accounts.name), \
    mask = COALESCE(excluded.mask, accounts.mask), currency = COALESCE(excluded.currency, accounts.currency), \
    balance_minor = COALESCE(excluded.balance_minor, accounts.balance_minor), \
    available_minor = COALESCE(excluded.available_minor, accounts.available_minor), \
    credit_limit_minor = COALESCE(excluded.credit_limit_minor, accounts.credit_limit_minor), \
    opening_minor = COALESCE(excluded.opening_minor, accounts.opening_minor), \
    opening_date = COALESCE(excluded.opening_date, accounts.opening_date), \
    updated_at = COALESCE(excluded.updated_at, accounts.updated_at) \
    WHERE (accounts.updated_at IS NULL OR excluded.updated_at IS NULL OR excluded.updated_at >= accounts.updated_at) \
    AND (excluded.account_type IS DISTINCT FROM accounts.account_type AND excluded.account_type IS NOT NULL \
    OR excluded.subtype IS DISTINCT FROM accounts.subtype AND excluded.subtype IS NOT NULL \
    OR excluded.name IS DISTINCT FROM accounts.name AND excluded.name IS NOT NULL \
    OR excluded.mask IS DISTINCT FROM accounts.mask AND excluded.mask IS NOT NULL \
    OR excluded.currency IS DISTINCT FROM accounts.currency AND excluded.currency IS NOT NULL \
    OR excluded.balance_minor IS DISTINCT FROM accounts.balance_minor AND excluded.balance_minor IS NOT NULL \
    OR excluded.available_minor IS DISTINCT FROM accounts.available_minor AND excluded.available_minor IS NOT NULL \
    OR excluded.credit_limit_minor IS DISTINCT FROM accounts.credit_limit_minor AND excluded.credit_limit_minor IS NOT NULL \
    OR excluded.opening_minor IS DISTINCT FROM accounts.opening_minor AND excluded.opening_minor IS NOT NULL \
    OR excluded.opening_date IS DISTINCT FROM accounts.opening_date AND excluded.opening_date IS NOT NULL \
    OR excluded.updated_at IS DISTINCT FROM accounts.updated_at AND excluded.updated_at IS NOT NULL)";

/// Columns read back into a [`TxRow`](crate::rows::TxRow).
pub(crate) const TX_SELECT: &str =
    "SELECT id, source, source_account_id, source_transaction_id, status, booking_date, \
    amount_minor, currency, description, merchant_name, mcc, category, category_source, kind, memo_only, \
    duplicate_of, superseded_by, transacted_at, posted_at, updated_at, source_status, source_type, external_id, \
    group_id, source_categories, memo, check_number, source_fields, fingerprint FROM transactions";

/// What the store holds of a transaction that a page brings again, read
/// (by id) before the page is written.
pub(crate) struct Stored {
    /// The stored content fingerprint.
    pub(crate) fingerprint: String,
    /// The stored `updated_at`.
    pub(crate) updated_at: Option<String>,
    /// Whether the row is superseded (`superseded_by` is set).
    pub(crate) superseded: bool,
}

/// Statement sizes that cover `n` rows: as many of the largest of `sizes`
/// (largest first, ending with 1) as fit, the rest greedily in smaller ones
/// — so a multi-row statement only ever has one of a few texts, each
/// prepared once per connection (sqlx caches statements by their text).
pub(crate) fn batches(mut n: usize, sizes: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    for &size in sizes {
        while n >= size {
            out.push(size);
            n -= size;
        }
    }
    debug_assert_eq!(n, 0, "sizes end with 1");
    out
}

macro_rules! store_impl {
    ($Store:ident, $Db:ty) => {
        use std::collections::HashMap;

        use bankpipe_model::{Account, Currency, Money, QuarantineRecord, ReconcileTarget, Transaction};
        use chrono::{NaiveDate, Utc};
        use sqlx::{QueryBuilder, Row};

        use crate::backend::{Stored, ACCOUNT_UPSERT, CHUNK, TX_SELECT};
        use crate::rows::{instant, TxRow};
        use crate::types::*;
        use crate::StoreError;

        type DbRow = <$Db as sqlx::Database>::Row;

        fn read_tx(r: &DbRow) -> Result<TxRow, sqlx::Error> {
            Ok(TxRow {
                id: r.try_get("id")?,
                source: r.try_get("source")?,
                source_account_id: r.try_get("source_account_id")?,
                source_transaction_id: r.try_get("source_transaction_id")?,
                status: r.try_get("status")?,
                booking_date: r.try_get("booking_date")?,
                amount_minor: r.try_get("amount_minor")?,
                currency: r.try_get("currency")?,
                description: r.try_get("description")?,
                merchant_name: r.try_get("merchant_name")?,
                mcc: r.try_get("mcc")?,
                category: r.try_get("category")?,
                category_source: r.try_get("category_source")?,
                kind: r.try_get("kind")?,
                memo_only: r.try_get("memo_only")?,
                duplicate_of: r.try_get("duplicate_of")?,
                superseded_by: r.try_get("superseded_by")?,
                transacted_at: r.try_get("transacted_at")?,
                posted_at: r.try_get("posted_at")?,
                updated_at: r.try_get("updated_at")?,
                source_status: r.try_get("source_status")?,
                source_type: r.try_get("source_type")?,
                external_id: r.try_get("external_id")?,
                group_id: r.try_get("group_id")?,
                source_categories: r.try_get("source_categories")?,
                memo: r.try_get("memo")?,
                check_number: r.try_get("check_number")?,
                source_fields: r.try_get("source_fields")?,
                fingerprint: r.try_get("fingerprint")?,
            })
        }

        fn minor(m: &Option<Money>) -> Option<i64> {
            m.as_ref().and_then(|m| m.to_minor_units().ok())
        }

        impl $Store {
            /// A `source_daily_totals` row as a [`ReconcileTarget`].
            fn read_target(&self, r: &DbRow) -> Result<ReconcileTarget, StoreError> {
                let fail = self.fail("reading source daily totals");
                let source: String = r.try_get("source").map_err(&fail)?;
                let date: String = r.try_get("booking_date").map_err(&fail)?;
                let code: String = r.try_get("currency").map_err(&fail)?;
                let net: String = r.try_get("net_total").map_err(&fail)?;
                let count: i64 = r.try_get("transaction_count").map_err(&fail)?;
                let scope: String = r.try_get("scope").map_err(&fail)?;
                let corrupt = |field: &str, value: &str| StoreError::Callback(format!("source_daily_totals: unreadable {field} {value:?}"));
                let currency: Currency = code.parse().map_err(|_| corrupt("currency", &code))?;
                let net_total = net
                    .parse::<rust_decimal::Decimal>()
                    .ok()
                    .and_then(|d| Money::new(d, currency).ok())
                    .ok_or_else(|| corrupt("net_total", &net))?;
                Ok(ReconcileTarget {
                    source: source.into(),
                    account: r.try_get("account").map_err(&fail)?,
                    date: date.parse().map_err(|_| corrupt("booking_date", &date))?,
                    currency,
                    reported: bankpipe_model::SourceDailyTotal { net_total, transaction_count: count.max(0) as u64 },
                    scope: serde_json::from_str(&scope).map_err(|_| corrupt("scope", &scope))?,
                    origin: r.try_get("origin").map_err(&fail)?,
                })
            }

            fn fail(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
                move |e| StoreError::Database { database: self.name.clone(), operation, cause: e.to_string() }
            }

            fn tx_from_row(&self, r: &DbRow) -> Result<Transaction, StoreError> {
                read_tx(r).map_err(self.fail("reading a transaction"))?.into_tx(&self.name)
            }

            /// One page of [`crate::TransactionStore::write_page`], inside the
            /// caller's write transaction `db` (committed by the caller).
            async fn write_page_in(
                &self,
                db: &mut sqlx::Transaction<'static, $Db>,
                run: RunId,
                accounts: &[Account],
                transactions: &[Transaction],
                quarantine: &[QuarantineRecord],
                load: &mut FirstLoadGuard<'_>,
            ) -> Result<PageCounts, StoreError> {
                // Within a page the newest sighting of an id wins; rows are
                // then written in id order.
                let rows = transactions.iter().map(TxRow::from_tx).collect::<Result<Vec<_>, _>>()?;
                let keys: Vec<(&str, Option<&str>)> =
                    rows.iter().map(|r| (r.id.as_str(), r.updated_at.as_deref())).collect();
                let winners = crate::types::newest_per_id(&keys);
                drop(keys);
                let mut rows: Vec<Option<TxRow>> = rows.into_iter().map(Some).collect();
                let latest: Vec<TxRow> = winners.into_iter().filter_map(|i| rows[i].take()).collect();
                drop(rows);
                let fail = self.fail("writing a page");
                let db: &mut <$Db as sqlx::Database>::Connection = &mut *db;
                let mut counts = PageCounts { unchanged: (transactions.len() - latest.len()) as u64, ..PageCounts::default() };
                let ids: Vec<&str> = latest.iter().map(|r| r.id.as_str()).collect();
                let stored: HashMap<String, Stored> =
                    Self::stored_versions_in(&mut *db, &ids, load).await.map_err(&fail)?.into_iter().collect();
                drop(ids);
                let (mut inserts, mut updates) = (Vec::new(), Vec::new());
                // DESIGN §4.6: a superseded pending row that posts under its
                // own id was its own settlement: un-superseded, deliverable.
                // Only a stored row can be superseded (an insert never sets
                // `superseded_by`), and the write lock (SQLite) or the sync
                // lock (PostgreSQL) keeps the stored rows as read here.
                let mut posted: Vec<String> = Vec::new();
                for row in latest {
                    match stored.get(&row.id) {
                        None => {
                            counts.inserted += 1;
                            inserts.push(row);
                        }
                        Some(s) if s.fingerprint == row.fingerprint => counts.unchanged += 1,
                        Some(s) if s.updated_at.is_some() && row.updated_at.is_some() && row.updated_at < s.updated_at => {
                            counts.unchanged += 1
                        }
                        Some(s) => {
                            counts.updated += 1;
                            if s.superseded && row.status == "posted" {
                                posted.push(row.id.clone());
                            }
                            updates.push(row);
                        }
                    }
                }
                Self::upsert_transactions_in(&mut *db, run, inserts, updates, load).await.map_err(&fail)?;
                for chunk in posted.chunks(CHUNK * 4) {
                    let mut q = QueryBuilder::<$Db>::new(
                        "DELETE FROM dedupe_links WHERE kind = 'superseded' AND transaction_id IN (SELECT id FROM transactions \
                         WHERE status = 'posted' AND superseded_by IS NOT NULL AND id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push("))");
                    q.build().execute(&mut *db).await.map_err(&fail)?;
                    let mut q = QueryBuilder::<$Db>::new(
                        "UPDATE transactions SET superseded_by = NULL WHERE status = 'posted' AND superseded_by IS NOT NULL AND id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    counts.unsuperseded += q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected();
                }
                // One multi-row upsert per run of distinct accounts (an
                // account listed twice starts a new statement, so each copy
                // merges in page order, as one statement per account did).
                // A copy that would change nothing is not written again (a
                // Truv page lists every account of the link).
                let mut rest = accounts;
                while !rest.is_empty() {
                    let mut keys = std::collections::HashSet::new();
                    let n = rest
                        .iter()
                        .take(CHUNK)
                        .take_while(|a| keys.insert((&a.source, &a.source_account_id)))
                        .count();
                    let (batch, tail) = rest.split_at(n);
                    rest = tail;
                    let mut q = QueryBuilder::<$Db>::new(
                        "INSERT INTO accounts (source, source_account_id, account_type, subtype, name, mask, currency, \
                         balance_minor, available_minor, credit_limit_minor, opening_minor, opening_date, updated_at) ",
                    );
                    q.push_values(batch, |mut b, a| {
                        b.push_bind(a.source.to_string())
                            .push_bind(a.source_account_id.clone())
                            .push_bind(a.account_type.clone())
                            .push_bind(a.subtype.clone())
                            .push_bind(a.name.clone())
                            .push_bind(a.mask.clone())
                            .push_bind(a.currency.map(|c| c.code().to_owned()))
                            .push_bind(minor(&a.balance))
                            .push_bind(minor(&a.available_balance))
                            .push_bind(minor(&a.credit_limit))
                            .push_bind(minor(&a.opening_balance))
                            .push_bind(a.opening_balance_date.map(|d| d.to_string()))
                            .push_bind(a.updated_at.map(instant));
                    });
                    q.push(ACCOUNT_UPSERT);
                    q.build().execute(&mut *db).await.map_err(&fail)?;
                }
                // A record quarantined by an earlier run (re-read in an overlap
                // window) is not stored again; repeats within this run are. The
                // record is recognised by its source id when it has one, else by
                // what was wrong with it.
                let mut fresh = Vec::with_capacity(quarantine.len());
                for r in quarantine {
                    let mut q = QueryBuilder::<$Db>::new("SELECT COUNT(*) FROM quarantine WHERE source = ");
                    q.push_bind(r.source.clone())
                        .push(" AND field = ").push_bind(r.field.clone())
                        .push(" AND value = ").push_bind(r.value.clone())
                        .push(" AND reason = ").push_bind(r.reason.clone())
                        .push(" AND run_id <> ").push_bind(run);
                    match &r.record_id {
                        Some(id) => q.push(" AND record_id = ").push_bind(id.clone()),
                        None => q.push(" AND record_id IS NULL"),
                    };
                    let seen: i64 = q.build().fetch_one(&mut *db).await.and_then(|row| row.try_get(0)).map_err(&fail)?;
                    if seen == 0 {
                        fresh.push(r);
                    }
                }
                for chunk in fresh.chunks(CHUNK) {
                    let mut q =
                        QueryBuilder::<$Db>::new("INSERT INTO quarantine (run_id, source, file, pointer, field, value, reason, record_id) ");
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(run)
                            .push_bind(r.source.clone())
                            .push_bind(r.file.clone())
                            .push_bind(r.pointer.clone())
                            .push_bind(r.field.clone())
                            .push_bind(r.value.clone())
                            .push_bind(r.reason.clone())
                            .push_bind(r.record_id.clone());
                    });
                    q.build().execute(&mut *db).await.map_err(&fail)?;
                }
                counts.quarantined = quarantine.len() as u64;
                Ok(counts)
            }
        }

        impl crate::RunLog for $Store {
            async fn begin_run(&self, kind: RunKind) -> Result<RunId, StoreError> {
                // The caller holds the one-sync lock: a run still marked
                // running is one whose process died — unless it belongs to
                // a live sync worker (PostgreSQL workers run beside it).
                sqlx::query(&format!(
                    "UPDATE runs SET outcome = 'interrupted' WHERE outcome = 'running' AND (worker IS NULL OR worker NOT IN \
                     (SELECT id FROM workers WHERE finished_ms IS NULL AND heartbeat_ms > {NOW_MS} - {WORKER_GONE_MS}))"
                ))
                .execute(&self.pool)
                .await
                .map_err(self.fail("starting a run"))?;
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO runs (kind, started_at) VALUES (");
                q.push_bind(kind.as_str()).push(", ").push_bind(instant(Utc::now())).push(") RETURNING id");
                let row = q.build().fetch_one(&self.pool).await.map_err(self.fail("starting a run"))?;
                row.try_get::<i64, _>(0).map_err(self.fail("starting a run"))
            }

            async fn finish_run(&self, run: RunId, s: &RunSummary) -> Result<(), StoreError> {
                let mut q = QueryBuilder::<$Db>::new("UPDATE runs SET finished_at = ");
                q.push_bind(instant(Utc::now()))
                    .push(", outcome = ").push_bind(s.outcome.clone())
                    .push(", pages = ").push_bind(s.pages as i64)
                    .push(", records = ").push_bind(s.records as i64)
                    .push(", inserted = ").push_bind(s.counts.inserted as i64)
                    .push(", updated = ").push_bind(s.counts.updated as i64)
                    .push(", unchanged = ").push_bind(s.counts.unchanged as i64)
                    .push(", quarantined = ").push_bind(s.counts.quarantined as i64)
                    .push(", superseded = ").push_bind(s.superseded as i64)
                    .push(", duplicates = ").push_bind(s.duplicates as i64)
                    .push(", message = ").push_bind(s.message.clone())
                    .push(" WHERE id = ").push_bind(run);
                q.build().execute(&self.pool).await.map_err(self.fail("finishing a run"))?;
                Ok(())
            }

            async fn watermarks(&self, source: &str) -> Result<Vec<Watermark>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT source, source_account_id, booking_date, updated_at FROM watermarks WHERE source = ",
                );
                q.push_bind(source.to_owned()).push(" ORDER BY source_account_id");
                let rows = q.build().fetch_all(&self.pool).await.map_err(self.fail("reading watermarks"))?;
                rows.iter().map(|r| self.watermark(r)).collect()
            }

            async fn advance_watermarks(&self, run: RunId, source: &str, dates: &[(String, NaiveDate)]) -> Result<(), StoreError> {
                if dates.is_empty() {
                    return Ok(());
                }
                let fail = self.fail("advancing watermarks");
                let now = instant(Utc::now());
                let mut db = self.write_tx().await?;
                self.check_fence_in(&mut db, false).await?;
                for chunk in dates.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$Db>::new("INSERT INTO watermarks (source, source_account_id, booking_date, run_id, updated_at) ");
                    q.push_values(chunk, |mut b, (account, date)| {
                        b.push_bind(source.to_owned()).push_bind(account.clone()).push_bind(date.to_string()).push_bind(run).push_bind(now.clone());
                    });
                    q.push(
                        " ON CONFLICT (source, source_account_id) DO UPDATE SET booking_date = excluded.booking_date, \
                         run_id = excluded.run_id, updated_at = excluded.updated_at WHERE excluded.booking_date > watermarks.booking_date",
                    );
                    q.build().execute(&mut *db).await.map_err(&fail)?;
                }
                db.commit().await.map_err(&fail)
            }

            async fn oldest_pending(&self, source: &str, since: NaiveDate) -> Result<Vec<(String, NaiveDate)>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT source_account_id, booking_date FROM transactions WHERE status = 'pending' \
                     AND superseded_by IS NULL AND duplicate_of IS NULL AND memo_only = ",
                );
                q.push_bind(false)
                    .push(" AND source = ").push_bind(source.to_owned())
                    .push(" AND booking_date >= ").push_bind(since.to_string())
                    .push(" GROUP BY source_account_id, booking_date ORDER BY source_account_id, booking_date");
                let fail = self.fail("reading pending rows");
                let rows = q.build().fetch_all(&self.pool).await.map_err(&fail)?;
                rows.iter()
                    .map(|r| {
                        let account: String = r.try_get(0).map_err(&fail)?;
                        let date: String = r.try_get(1).map_err(&fail)?;
                        let parsed = NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
                            database: self.name.clone(),
                            id: account.clone(),
                            field: "booking_date",
                            value: date.clone(),
                        })?;
                        Ok((account, parsed))
                    })
                    .collect()
            }

            async fn last_full_sweep(&self, source: &str) -> Result<Option<String>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("SELECT swept_at FROM source_sweeps WHERE source = ");
                q.push_bind(source.to_owned());
                let fail = self.fail("reading sweeps");
                match q.build().fetch_optional(&self.pool).await.map_err(&fail)? {
                    None => Ok(None),
                    Some(r) => Ok(Some(r.try_get(0).map_err(&fail)?)),
                }
            }

            async fn record_full_sweep(&self, run: RunId, source: &str) -> Result<(), StoreError> {
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO source_sweeps (source, swept_at, run_id) VALUES (");
                q.push_bind(source.to_owned()).push(", ")
                    .push_bind(instant(Utc::now())).push(", ")
                    .push_bind(run)
                    .push(") ON CONFLICT (source) DO UPDATE SET swept_at = excluded.swept_at, run_id = excluded.run_id");
                q.build().execute(&self.pool).await.map_err(self.fail("recording a sweep"))?;
                Ok(())
            }

            async fn backfill_window_done(&self, source: &str, from: NaiveDate, to: NaiveDate) -> Result<bool, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("SELECT COUNT(*) FROM backfill_windows WHERE source = ");
                q.push_bind(source.to_owned())
                    .push(" AND window_from = ").push_bind(from.to_string())
                    .push(" AND window_to = ").push_bind(to.to_string());
                let row = q.build().fetch_one(&self.pool).await.map_err(self.fail("reading backfill checkpoints"))?;
                Ok(row.try_get::<i64, _>(0).map_err(self.fail("reading backfill checkpoints"))? > 0)
            }

            async fn complete_backfill_window(&self, run: RunId, source: &str, from: NaiveDate, to: NaiveDate, transactions: u64) -> Result<(), StoreError> {
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO backfill_windows (source, window_from, window_to, run_id, transactions) VALUES (");
                q.push_bind(source.to_owned()).push(", ")
                    .push_bind(from.to_string()).push(", ")
                    .push_bind(to.to_string()).push(", ")
                    .push_bind(run).push(", ")
                    .push_bind(transactions as i64)
                    .push(") ON CONFLICT (source, window_from, window_to) DO NOTHING");
                q.build().execute(&self.pool).await.map_err(self.fail("checkpointing a backfill window"))?;
                Ok(())
            }

            async fn status(&self, last_runs: u32) -> Result<StatusReport, StoreError> {
                let fail = self.fail("reading status");
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT id, kind, started_at, finished_at, outcome, pages, records, inserted, updated, unchanged, \
                     quarantined, message FROM runs ORDER BY id DESC LIMIT ",
                );
                q.push_bind(i64::from(last_runs));
                let mut report = StatusReport::default();
                for r in q.build().fetch_all(&self.pool).await.map_err(&fail)? {
                    let mut counts = [0i64; 6];
                    for (i, col) in ["pages", "records", "inserted", "updated", "unchanged", "quarantined"].iter().enumerate() {
                        counts[i] = r.try_get(*col).map_err(&fail)?;
                    }
                    report.runs.push(RunRow {
                        id: r.try_get("id").map_err(&fail)?,
                        kind: r.try_get("kind").map_err(&fail)?,
                        started_at: r.try_get("started_at").map_err(&fail)?,
                        finished_at: r.try_get("finished_at").map_err(&fail)?,
                        outcome: r.try_get("outcome").map_err(&fail)?,
                        counts,
                        message: r.try_get("message").map_err(&fail)?,
                    });
                }
                let rows = sqlx::query("SELECT source, source_account_id, booking_date, updated_at FROM watermarks ORDER BY source, source_account_id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(&fail)?;
                report.watermarks = rows.iter().map(|r| self.watermark(r)).collect::<Result<_, _>>()?;
                let count = |sql: &'static str| async move {
                    sqlx::query(sql).fetch_one(&self.pool).await.and_then(|r| r.try_get::<i64, _>(0))
                };
                report.quarantined = count("SELECT COUNT(*) FROM quarantine").await.map_err(&fail)?;
                report.transactions = count("SELECT COUNT(*) FROM transactions").await.map_err(&fail)?;
                let rows = sqlx::query(
                    "SELECT d.sink, \
                     SUM(CASE WHEN d.state IN ('pending', 'in_flight') THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN d.state = 'in_flight' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN d.state = 'failed' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN d.state = 'delivered' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN d.state = 'delivered' AND t.superseded_by IS NULL AND t.duplicate_of IS NULL \
                         AND d.sent_version <> (t.status || '|' || t.amount_minor || '|' || t.booking_date) THEN 1 ELSE 0 END) \
                     FROM deliveries d LEFT JOIN transactions t ON t.id = d.transaction_id GROUP BY d.sink ORDER BY d.sink",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?;
                for r in rows {
                    report.deliveries.push(SinkBacklog {
                        sink: r.try_get(0).map_err(&fail)?,
                        waiting: r.try_get(1).map_err(&fail)?,
                        in_flight: r.try_get(2).map_err(&fail)?,
                        failed: r.try_get(3).map_err(&fail)?,
                        delivered: r.try_get(4).map_err(&fail)?,
                        changed_since_delivery: r.try_get::<Option<i64>, _>(5).map_err(&fail)?.unwrap_or(0),
                    });
                }
                let rows = sqlx::query(
                    "SELECT sink, COALESCE(reason, '(no reason recorded)'), COUNT(*) FROM deliveries WHERE state = 'failed' \
                     GROUP BY sink, COALESCE(reason, '(no reason recorded)') ORDER BY sink, COUNT(*) DESC",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?;
                for r in rows {
                    report.failures.push((r.try_get(0).map_err(&fail)?, r.try_get(1).map_err(&fail)?, r.try_get(2).map_err(&fail)?));
                }
                let r = sqlx::query(
                    "SELECT SUM(CASE WHEN status = 'match' THEN 1 ELSE 0 END), SUM(CASE WHEN status = 'mismatch' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN status IS NULL THEN 1 ELSE 0 END) FROM source_daily_totals",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(&fail)?;
                let n = |i: usize| r.try_get::<Option<i64>, _>(i).map(Option::unwrap_or_default);
                report.source_totals.matching = n(0).map_err(&fail)?;
                report.source_totals.mismatching = n(1).map_err(&fail)?;
                report.source_totals.unreconciled = n(2).map_err(&fail)?;
                let rows = sqlx::query(
                    "SELECT source, account, booking_date, currency, net_total, transaction_count, scope, origin, \
                     computed_net, computed_count FROM source_daily_totals WHERE status = 'mismatch' \
                     ORDER BY booking_date, source, account, currency",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?;
                for r in &rows {
                    let target = self.read_target(r)?;
                    let computed: Option<String> = r.try_get("computed_net").map_err(&fail)?;
                    let computed_count: Option<i64> = r.try_get("computed_count").map_err(&fail)?;
                    let computed_net = computed
                        .as_deref()
                        .and_then(|v| v.parse::<rust_decimal::Decimal>().ok())
                        .and_then(|d| Money::new(d, target.currency).ok())
                        .unwrap_or_else(|| Money::zero(target.currency));
                    report.source_totals.mismatches.push(TotalMismatch {
                        target,
                        computed_net,
                        computed_count: computed_count.unwrap_or_default().max(0) as u64,
                    });
                }
                Ok(report)
            }
        }

        impl crate::TransactionStore for $Store {
            async fn write_page(
                &self,
                run: RunId,
                accounts: &[Account],
                transactions: &[Transaction],
                quarantine: &[QuarantineRecord],
            ) -> Result<PageCounts, StoreError> {
                self.write_pages(run, &[crate::PageWrite { accounts, transactions, quarantine }]).await
            }

            async fn write_pages(&self, run: RunId, pages: &[crate::PageWrite<'_>]) -> Result<PageCounts, StoreError> {
                let mut load = self.first_load().await;
                let mut db = self.write_tx().await?;
                // PostgreSQL: the commit does not wait for the disk. A server
                // crash can lose only the last such commits, never one
                // without the ones before (the WAL is flushed in order), and
                // whatever depends on these rows commits durably after them,
                // which flushes them first: the watermarks, a delivery put in
                // flight (before the sink is called), the run's end. Lost
                // pages are fetched again. Saves a disk flush a page.
                if let Some(relaxed) = RELAXED_COMMIT {
                    sqlx::query(relaxed).execute(&mut *db).await.map_err(self.fail("writing pages"))?;
                }
                let mut counts = PageCounts::default();
                for p in pages {
                    counts.add(self.write_page_in(&mut db, run, p.accounts, p.transactions, p.quarantine, &mut load).await?);
                }
                db.commit().await.map_err(self.fail("writing pages"))?;
                Ok(counts)
            }

            async fn dedupe_candidates(&self, accounts: &[(String, String)], since: NaiveDate) -> Result<Vec<Candidate>, StoreError> {
                let fail = self.fail("reading dedupe candidates");
                let mut out = Vec::new();
                for (source, account) in accounts {
                    let mut q = QueryBuilder::<$Db>::new(
                        "SELECT t.id, t.source, t.source_account_id, t.status, t.booking_date, t.amount_minor, t.currency, \
                         t.description, t.merchant_name, t.mcc, t.memo_only, t.seen_pending, \
                         EXISTS (SELECT 1 FROM dedupe_links d WHERE d.target_id = t.id AND d.kind = 'duplicate') AS kept, \
                         EXISTS (SELECT 1 FROM dedupe_links d WHERE d.target_id = t.id AND d.kind = 'superseded') AS supersedes \
                         FROM transactions t WHERE t.source = ",
                    );
                    q.push_bind(source.clone())
                        .push(" AND t.source_account_id = ").push_bind(account.clone())
                        .push(" AND t.booking_date >= ").push_bind(since.to_string())
                        .push(" AND t.superseded_by IS NULL AND t.duplicate_of IS NULL ORDER BY t.booking_date, t.id");
                    for r in q.build().fetch_all(&self.pool).await.map_err(&fail)? {
                        let date: String = r.try_get("booking_date").map_err(&fail)?;
                        let id: String = r.try_get("id").map_err(&fail)?;
                        let status: String = r.try_get("status").map_err(&fail)?;
                        out.push(Candidate {
                            booking_date: NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
                                database: self.name.clone(),
                                id: id.clone(),
                                field: "booking_date",
                                value: date.clone(),
                            })?,
                            id,
                            source: r.try_get("source").map_err(&fail)?,
                            source_account_id: r.try_get("source_account_id").map_err(&fail)?,
                            posted: status == "posted",
                            amount_minor: r.try_get("amount_minor").map_err(&fail)?,
                            currency: r.try_get("currency").map_err(&fail)?,
                            description: r.try_get("description").map_err(&fail)?,
                            merchant_name: r.try_get("merchant_name").map_err(&fail)?,
                            mcc: r.try_get::<Option<i64>, _>("mcc").map_err(&fail)?.and_then(|m| u16::try_from(m).ok()),
                            memo_only: r.try_get("memo_only").map_err(&fail)?,
                            kept_for_duplicate: r.try_get("kept").map_err(&fail)?,
                            seen_pending: r.try_get("seen_pending").map_err(&fail)?,
                            supersedes: r.try_get("supersedes").map_err(&fail)?,
                        });
                    }
                }
                Ok(out)
            }

            async fn apply_dedupe(&self, run: RunId, links: &[DedupeLink]) -> Result<u64, StoreError> {
                if links.is_empty() {
                    return Ok(0);
                }
                let fail = self.fail("recording dedupe decisions");
                let mut db = self.write_tx().await?;
                let mut applied = 0;
                for l in links {
                    let column = match l.kind {
                        LinkKind::Superseded => "superseded_by",
                        LinkKind::Duplicate => "duplicate_of",
                    };
                    let mut q = QueryBuilder::<$Db>::new(format!("UPDATE transactions SET {column} = "));
                    q.push_bind(l.target_id.clone())
                        .push(" WHERE id = ").push_bind(l.transaction_id.clone())
                        .push(" AND superseded_by IS NULL AND duplicate_of IS NULL");
                    if q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected() == 1 {
                        let mut q = QueryBuilder::<$Db>::new("INSERT INTO dedupe_links (transaction_id, kind, target_id, reason, run_id) VALUES (");
                        q.push_bind(l.transaction_id.clone()).push(", ")
                            .push_bind(l.kind.as_str()).push(", ")
                            .push_bind(l.target_id.clone()).push(", ")
                            .push_bind(l.reason.clone()).push(", ")
                            .push_bind(run).push(") ON CONFLICT (transaction_id, kind) DO NOTHING");
                        q.build().execute(&mut *db).await.map_err(&fail)?;
                        applied += 1;
                    }
                }
                db.commit().await.map_err(&fail)?;
                Ok(applied)
            }

            async fn transaction(&self, id: &str) -> Result<Option<Transaction>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(format!("{TX_SELECT} WHERE id = "));
                q.push_bind(id.to_owned());
                match q.build().fetch_optional(&self.pool).await.map_err(self.fail("reading a transaction"))? {
                    None => Ok(None),
                    Some(r) => self.tx_from_row(&r).map(Some),
                }
            }

            async fn counterpart(&self, tx: &Transaction) -> Result<Option<Transaction>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(format!("{TX_SELECT} WHERE source = "));
                q.push_bind(tx.source.to_string())
                    .push(" AND source_transaction_id = ").push_bind(tx.source_transaction_id.clone())
                    .push(" AND source_account_id <> ").push_bind(tx.source_account_id.clone())
                    .push(" LIMIT 2");
                let rows = q.build().fetch_all(&self.pool).await.map_err(self.fail("reading a transfer's other leg"))?;
                match rows.as_slice() {
                    [one] => Ok(Some(self.tx_from_row(one)?)),
                    _ => Ok(None),
                }
            }

            async fn links_of(&self, id: &str) -> Result<Vec<DedupeLink>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("SELECT transaction_id, kind, target_id, reason FROM dedupe_links WHERE transaction_id = ");
                q.push_bind(id.to_owned()).push(" OR target_id = ").push_bind(id.to_owned()).push(" ORDER BY transaction_id");
                let fail = self.fail("reading dedupe links");
                q.build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(&fail)?
                    .iter()
                    .map(|r| {
                        Ok(DedupeLink {
                            transaction_id: r.try_get(0).map_err(&fail)?,
                            kind: LinkKind::parse(&r.try_get::<String, _>(1).map_err(&fail)?),
                            target_id: r.try_get(2).map_err(&fail)?,
                            reason: r.try_get(3).map_err(&fail)?,
                        })
                    })
                    .collect()
            }

            async fn for_each_transaction<F>(&self, mut f: F) -> Result<u64, StoreError>
            where
                F: FnMut(Transaction) -> Result<(), StoreError> + Send,
            {
                let mut after: Option<(String, String)> = None;
                let mut n = 0;
                loop {
                    let mut q = QueryBuilder::<$Db>::new(TX_SELECT);
                    // Keyset pagination over the (booking_date, id) index: each
                    // batch is an index range, never a scan of what came before.
                    if let Some((date, id)) = &after {
                        q.push(" WHERE (booking_date, id) > (").push_bind(date.clone())
                            .push(", ").push_bind(id.clone()).push(")");
                    }
                    q.push(" ORDER BY booking_date, id LIMIT 5000");
                    let rows = q.build().fetch_all(&self.pool).await.map_err(self.fail("reading transactions"))?;
                    if rows.is_empty() {
                        return Ok(n);
                    }
                    for r in &rows {
                        let tx = self.tx_from_row(r)?;
                        after = Some((tx.booking_date.to_string(), tx.id.to_string()));
                        n += 1;
                        f(tx)?;
                    }
                }
            }

            async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
                let fail = self.fail("reading accounts");
                let rows = sqlx::query(
                    "SELECT source, source_account_id, account_type, subtype, name, mask, currency, balance_minor, \
                     available_minor, credit_limit_minor, opening_minor, opening_date, updated_at FROM accounts \
                     ORDER BY source, source_account_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let source: String = r.try_get("source").map_err(&fail)?;
                    let mut a = Account::bare(std::sync::Arc::from(source.as_str()), r.try_get("source_account_id").map_err(&fail)?);
                    let corrupt = |field: &'static str, value: String| StoreError::Corrupt {
                        database: self.name.clone(),
                        id: a.source_account_id.clone(),
                        field,
                        value,
                    };
                    let currency = match r.try_get::<Option<String>, _>("currency").map_err(&fail)? {
                        None => None,
                        Some(c) => Some(Currency::from_code(&c).map_err(|_| corrupt("currency", c.clone()))?),
                    };
                    let money = |col: &str| -> Result<Option<Money>, StoreError> {
                        let v: Option<i64> = r.try_get(col).map_err(&fail)?;
                        Ok(match (v, currency) {
                            (Some(m), Some(c)) => Some(Money::from_minor_units(m, c)),
                            _ => None,
                        })
                    };
                    let balance = money("balance_minor")?;
                    let available = money("available_minor")?;
                    let credit = money("credit_limit_minor")?;
                    let opening = money("opening_minor")?;
                    let opening_date = r
                        .try_get::<Option<String>, _>("opening_date")
                        .map_err(&fail)?
                        .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| corrupt("opening_date", d.clone())))
                        .transpose()?;
                    let updated_at = r
                        .try_get::<Option<String>, _>("updated_at")
                        .map_err(&fail)?
                        .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt("updated_at", t.clone())))
                        .transpose()?;
                    a.account_type = r.try_get("account_type").map_err(&fail)?;
                    a.subtype = r.try_get("subtype").map_err(&fail)?;
                    a.name = r.try_get("name").map_err(&fail)?;
                    a.mask = r.try_get("mask").map_err(&fail)?;
                    a.currency = currency;
                    a.balance = balance;
                    a.available_balance = available;
                    a.credit_limit = credit;
                    a.opening_balance = opening;
                    a.opening_balance_date = opening_date;
                    a.updated_at = updated_at;
                    out.push(a);
                }
                Ok(out)
            }

            async fn quarantine(&self) -> Result<Vec<QuarantineRecord>, StoreError> {
                let fail = self.fail("reading quarantine");
                let rows = sqlx::query("SELECT source, file, pointer, field, value, reason, record_id FROM quarantine ORDER BY id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(&fail)?;
                rows.iter()
                    .map(|r| {
                        Ok(QuarantineRecord {
                            source: r.try_get(0).map_err(&fail)?,
                            file: r.try_get(1).map_err(&fail)?,
                            pointer: r.try_get(2).map_err(&fail)?,
                            field: r.try_get(3).map_err(&fail)?,
                            value: r.try_get(4).map_err(&fail)?,
                            reason: r.try_get(5).map_err(&fail)?,
                            record_id: r.try_get(6).map_err(&fail)?,
                        })
                    })
                    .collect()
            }

            async fn save_source_totals(&self, run: RunId, targets: &[ReconcileTarget]) -> Result<(), StoreError> {
                let fail = self.fail("recording source daily totals");
                let mut db = self.write_tx().await?;
                for chunk in targets.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$Db>::new(
                        "INSERT INTO source_daily_totals (source, account, booking_date, currency, net_total, \
                         transaction_count, scope, origin, run_id) ",
                    );
                    let mut rows = Vec::with_capacity(chunk.len());
                    for t in chunk {
                        let scope = serde_json::to_string(&t.scope).map_err(|e| StoreError::Callback(e.to_string()))?;
                        let count = i64::try_from(t.reported.transaction_count).unwrap_or(i64::MAX);
                        rows.push((t, scope, count));
                    }
                    q.push_values(&rows, |mut b, (t, scope, count)| {
                        b.push_bind(t.source.to_string())
                            .push_bind(t.account.clone())
                            .push_bind(t.date.to_string())
                            .push_bind(t.currency.code())
                            .push_bind(t.reported.net_total.amount().to_string())
                            .push_bind(*count)
                            .push_bind(scope.clone())
                            .push_bind(t.origin.clone())
                            .push_bind(run);
                    });
                    q.push(
                        " ON CONFLICT (source, account, booking_date, currency) DO UPDATE SET net_total = excluded.net_total, \
                         transaction_count = excluded.transaction_count, scope = excluded.scope, origin = excluded.origin, \
                         run_id = excluded.run_id, computed_net = NULL, computed_count = NULL, status = NULL",
                    );
                    q.build().execute(&mut *db).await.map_err(&fail)?;
                }
                db.commit().await.map_err(&fail)?;
                Ok(())
            }

            async fn source_totals(&self, since: Option<NaiveDate>) -> Result<Vec<ReconcileTarget>, StoreError> {
                let fail = self.fail("reading source daily totals");
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT source, account, booking_date, currency, net_total, transaction_count, scope, origin \
                     FROM source_daily_totals",
                );
                if let Some(since) = since {
                    q.push(" WHERE booking_date >= ").push_bind(since.to_string());
                }
                q.push(" ORDER BY source, account, booking_date, currency");
                let rows = q.build().fetch_all(&self.pool).await.map_err(&fail)?;
                rows.iter().map(|r| self.read_target(r)).collect()
            }

            async fn refresh_statistics(&self) -> Result<(), StoreError> {
                sqlx::query(REFRESH_STATISTICS).execute(&self.pool).await.map_err(self.fail("refreshing statistics"))?;
                Ok(())
            }

            async fn defer_indexes(&self) -> Result<bool, StoreError> {
                self.defer_transaction_indexes().await
            }

            async fn build_deferred_indexes(&self) -> Result<u64, StoreError> {
                self.build_transaction_indexes().await
            }

            async fn reconcile_source_totals(&self, since: Option<NaiveDate>) -> Result<Vec<TotalMismatch>, StoreError> {
                let fail = self.fail("reconciling source daily totals");
                let targets = self.source_totals(since).await?;
                if targets.is_empty() {
                    return Ok(Vec::new());
                }
                // The counted rows' sums per (source, account, date, currency),
                // one grouped read over the dates concerned.
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT source, source_account_id, booking_date, currency, CAST(SUM(amount_minor) AS BIGINT), COUNT(*) \
                     FROM transactions WHERE status = 'posted' AND memo_only = ",
                );
                q.push_bind(false).push(" AND duplicate_of IS NULL AND superseded_by IS NULL");
                if let Some(since) = since {
                    q.push(" AND booking_date >= ").push_bind(since.to_string());
                }
                q.push(" GROUP BY source, source_account_id, booking_date, currency");
                let mut sums: HashMap<(String, String, String, String), (i64, i64)> = HashMap::new();
                for r in q.build().fetch_all(&self.pool).await.map_err(&fail)? {
                    let key = (r.try_get(0).map_err(&fail)?, r.try_get(1).map_err(&fail)?, r.try_get(2).map_err(&fail)?, r.try_get(3).map_err(&fail)?);
                    sums.insert(key, (r.try_get::<Option<i64>, _>(4).map_err(&fail)?.unwrap_or(0), r.try_get(5).map_err(&fail)?));
                }
                let mut mismatches = Vec::new();
                let mut results = Vec::with_capacity(targets.len());
                for t in targets {
                    let (date, currency) = (t.date.to_string(), t.currency.code().to_owned());
                    let (computed_net, computed_count, matches) = crate::types::reconcile(&t, |account| {
                        sums.get(&(t.source.to_string(), account.to_owned(), date.clone(), currency.clone())).copied()
                    })?;
                    let count = i64::try_from(computed_count).unwrap_or(i64::MAX);
                    results.push((t.clone(), computed_net.amount().to_string(), count, if matches { "match" } else { "mismatch" }));
                    if !matches {
                        mismatches.push(TotalMismatch { target: t, computed_net, computed_count });
                    }
                }
                let mut db = self.write_tx().await?;
                for (t, net, count, status) in &results {
                    let mut q = QueryBuilder::<$Db>::new("UPDATE source_daily_totals SET computed_net = ");
                    q.push_bind(net.clone())
                        .push(", computed_count = ").push_bind(*count)
                        .push(", status = ").push_bind(*status)
                        .push(" WHERE source = ").push_bind(t.source.to_string())
                        .push(" AND account = ").push_bind(t.account.clone())
                        .push(" AND booking_date = ").push_bind(t.date.to_string())
                        .push(" AND currency = ").push_bind(t.currency.code());
                    q.build().execute(&mut *db).await.map_err(&fail)?;
                }
                db.commit().await.map_err(&fail)?;
                Ok(mismatches)
            }
        }

        impl crate::DeliveryLedger for $Store {
            async fn enqueue_deliveries(&self, sink: &str, include_pending: bool, corrections: bool) -> Result<u64, StoreError> {
                let fail = self.fail("queueing deliveries");
                let now = instant(Utc::now());
                let mut db = self.write_tx().await?;
                // Queued-but-unsent rows that stopped being deliverable leave the queue.
                let mut q = QueryBuilder::<$Db>::new(
                    "DELETE FROM deliveries WHERE state = 'pending' AND replaces IS NULL AND sink = ",
                );
                q.push_bind(sink.to_owned()).push(
                    " AND transaction_id IN (SELECT id FROM transactions WHERE duplicate_of IS NOT NULL OR superseded_by IS NOT NULL)",
                );
                q.build().execute(&mut *db).await.map_err(&fail)?;
                let deliverable = |q: &mut QueryBuilder<'_, $Db>| {
                    q.push(" t.memo_only = ").push_bind(false).push(" AND t.duplicate_of IS NULL AND t.superseded_by IS NULL");
                    if !include_pending {
                        q.push(" AND t.status = 'posted'");
                    }
                };
                // A row already in the ledger is skipped by the primary key
                // (ON CONFLICT), not by an anti-join on `deliveries`: planned
                // while the table is empty, that anti-join became a nested
                // loop rescanning the pages this very statement fills
                // (PostgreSQL, 93,000 rows: 82 s instead of 1.6 s).
                const ALREADY_QUEUED: &str = " ON CONFLICT (sink, transaction_id) DO NOTHING";
                let mut queued = 0;
                if corrections {
                    // A posted row superseding a pending row the sink has:
                    // its delivery replaces that sink row (create, then delete).
                    let mut q = QueryBuilder::<$Db>::new(
                        "INSERT INTO deliveries (sink, transaction_id, state, replaces, reason, updated_at) SELECT ",
                    );
                    q.push_bind(sink.to_owned())
                        .push(", t.id, 'pending', dp.remote_id, 'replaces the sink row of its pending transaction ' || p.id, ")
                        .push_bind(now.clone())
                        .push(" FROM transactions t JOIN transactions p ON p.superseded_by = t.id \
                               JOIN deliveries dp ON dp.transaction_id = p.id AND dp.state = 'delivered' AND dp.sink = ")
                        .push_bind(sink.to_owned())
                        .push(" WHERE");
                    deliverable(&mut q);
                    q.push(ALREADY_QUEUED);
                    queued += q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected();
                    let mut q = QueryBuilder::<$Db>::new("UPDATE deliveries SET state = 'replaced', updated_at = ");
                    q.push_bind(now.clone())
                        .push(", reason = 'its sink row is replaced by the delivery of the transaction that superseded it' \
                               WHERE state = 'delivered' AND sink = ")
                        .push_bind(sink.to_owned())
                        .push(" AND remote_id IN (SELECT replaces FROM deliveries WHERE replaces IS NOT NULL AND sink = ")
                        .push_bind(sink.to_owned())
                        .push(")");
                    q.build().execute(&mut *db).await.map_err(&fail)?;
                    // A replaced pending row that then posted under its own id
                    // (un-superseded, DESIGN §4.6) is its own movement again:
                    // queued anew (its old sink row was deleted).
                    let mut q = QueryBuilder::<$Db>::new(
                        "UPDATE deliveries SET state = 'pending', remote_id = NULL, marker = NULL, request = NULL, \
                         revision = revision + 1, reason = 'queued again: its transaction is no longer superseded', updated_at = ",
                    );
                    q.push_bind(now.clone())
                        .push(" WHERE state = 'replaced' AND sink = ")
                        .push_bind(sink.to_owned())
                        .push(" AND transaction_id IN (SELECT id FROM transactions WHERE superseded_by IS NULL AND duplicate_of IS NULL)");
                    queued += q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected();
                    // A delivered row whose status, amount or booking date
                    // changed at the source: corrected (new revision, new
                    // marker; the old sink row is deleted once the new exists).
                    let mut q = QueryBuilder::<$Db>::new(
                        "UPDATE deliveries SET state = 'pending', replaces = remote_id, remote_id = NULL, \
                         marker = NULL, request = NULL, revision = revision + 1, \
                         reason = 'correcting: the source changed from ' || sent_version, updated_at = ",
                    );
                    q.push_bind(now.clone())
                        .push(" WHERE state = 'delivered' AND sent_version IS NOT NULL AND sink = ")
                        .push_bind(sink.to_owned())
                        .push(
                            " AND sent_version <> (SELECT t.status || '|' || t.amount_minor || '|' || t.booking_date \
                             FROM transactions t WHERE t.id = deliveries.transaction_id \
                             AND t.superseded_by IS NULL AND t.duplicate_of IS NULL AND t.memo_only = ",
                        )
                        .push_bind(false);
                    if !include_pending {
                        q.push(" AND t.status = 'posted'");
                    }
                    q.push(")");
                    queued += q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected();
                }
                // Everything else deliverable and not queued yet — except a
                // row whose cross-source twin (DESIGN §4.7) or superseded
                // pending row this sink already has or may have.
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO deliveries (sink, transaction_id, state, updated_at) SELECT ");
                q.push_bind(sink.to_owned())
                    .push(", t.id, 'pending', ")
                    .push_bind(now)
                    .push(" FROM transactions t WHERE");
                deliverable(&mut q);
                q.push(
                    " AND NOT EXISTS (SELECT 1 FROM dedupe_links l JOIN deliveries dd ON dd.transaction_id = l.transaction_id \
                     WHERE l.target_id = t.id AND l.kind = 'duplicate' AND dd.state IN ('in_flight', 'delivered') AND dd.sink = ",
                )
                .push_bind(sink.to_owned())
                .push(
                    ") AND NOT EXISTS (SELECT 1 FROM transactions p JOIN deliveries dp ON dp.transaction_id = p.id \
                     WHERE p.superseded_by = t.id AND dp.state IN ('in_flight', 'delivered') AND dp.sink = ",
                )
                .push_bind(sink.to_owned())
                .push(")")
                .push(ALREADY_QUEUED);
                queued += q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected();
                db.commit().await.map_err(&fail)?;
                Ok(queued)
            }

            async fn deliveries(
                &self,
                sink: &str,
                state: DeliveryState,
                after: Option<&Transaction>,
                limit: u32,
            ) -> Result<Vec<Queued>, StoreError> {
                let columns = TX_SELECT.replacen("SELECT ", "SELECT t.", 1).replace(", ", ", t.").replace("FROM transactions", ", d.revision, d.replaces FROM transactions t");
                let mut q = QueryBuilder::<$Db>::new(format!("{columns} JOIN deliveries d ON d.transaction_id = t.id WHERE d.sink = "));
                q.push_bind(sink.to_owned())
                    .push(" AND d.state = ").push_bind(state.as_str())
                    .push(" AND t.duplicate_of IS NULL AND t.superseded_by IS NULL");
                self.push_scope(&mut q, "t.");
                if let Some(a) = after {
                    q.push(" AND (t.source, t.source_account_id, t.booking_date, t.id) > (")
                        .push_bind(a.source.to_string()).push(", ")
                        .push_bind(a.source_account_id.clone()).push(", ")
                        .push_bind(a.booking_date.to_string()).push(", ")
                        .push_bind(a.id.to_string()).push(")");
                }
                q.push(" ORDER BY t.source, t.source_account_id, t.booking_date, t.id LIMIT ")
                    .push_bind(i64::from(limit));
                let fail = self.fail("reading deliveries");
                let rows = q.build().fetch_all(&self.pool).await.map_err(&fail)?;
                rows.iter()
                    .map(|r| {
                        Ok(Queued {
                            transaction: self.tx_from_row(r)?,
                            revision: r.try_get("revision").map_err(&fail)?,
                            replaces: r.try_get("replaces").map_err(&fail)?,
                        })
                    })
                    .collect()
            }

            async fn begin_deliveries(&self, sink: &str, rows: &[crate::Begin<'_>]) -> Result<Vec<bool>, StoreError> {
                let fail = self.fail("recording deliveries");
                let now = instant(Utc::now());
                let mut db = self.write_tx().await?;
                // The lease, with its margin, is checked (and on PostgreSQL
                // locked) first: all of the rows go in flight, or none.
                self.check_fence_in(&mut db, true).await?;
                let mut moved = Vec::with_capacity(rows.len());
                for r in rows {
                    let mut q = QueryBuilder::<$Db>::new("UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, marker = ");
                    q.push_bind(r.marker.to_owned())
                        .push(", sent_version = ").push_bind(crate::sent_version(r.tx)?)
                        .push(", request = ").push_bind(r.request.to_owned())
                        .push(", reason = NULL, updated_at = ").push_bind(now.clone())
                        .push(" WHERE state = 'pending' AND sink = ").push_bind(sink.to_owned())
                        .push(" AND transaction_id = ").push_bind(r.tx.id.to_string());
                    moved.push(q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected() == 1);
                }
                db.commit().await.map_err(&fail)?;
                Ok(moved)
            }

            async fn resend_delivery(&self, sink: &str, transaction_id: &str, attempts_seen: i64, reason: &str) -> Result<bool, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("UPDATE deliveries SET attempts = attempts + 1, reason = ");
                q.push_bind(reason.to_owned())
                    .push(", updated_at = ").push_bind(instant(Utc::now()))
                    .push(" WHERE state = 'in_flight' AND sink = ").push_bind(sink.to_owned())
                    .push(" AND transaction_id = ").push_bind(transaction_id.to_owned())
                    .push(" AND attempts = ").push_bind(attempts_seen);
                self.push_fence(&mut q, true);
                let done = q.build().execute(&self.pool).await.map_err(self.fail("recording a delivery"))?;
                if done.rows_affected() == 1 { Ok(true) } else { self.fence_verdict(true).await }
            }

            async fn settle_delivery(
                &self,
                sink: &str,
                transaction_id: &str,
                from: DeliveryState,
                to: DeliveryState,
                remote_id: Option<&str>,
                reason: Option<&str>,
            ) -> Result<bool, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("UPDATE deliveries SET state = ");
                q.push_bind(to.as_str())
                    .push(", remote_id = ").push_bind(remote_id.map(str::to_owned))
                    .push(", reason = ").push_bind(reason.map(str::to_owned))
                    .push(", updated_at = ").push_bind(instant(Utc::now()));
                if to == DeliveryState::Pending {
                    // Back in the queue only when provably not sent: what
                    // was planned is planned again from the stored row, and
                    // the attempt counted when it went in flight is undone.
                    q.push(", marker = NULL, request = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END");
                }
                q.push(" WHERE state = ").push_bind(from.as_str())
                    .push(" AND sink = ").push_bind(sink.to_owned())
                    .push(" AND transaction_id = ").push_bind(transaction_id.to_owned());
                self.push_fence(&mut q, false);
                // Not flushed to disk before returning (PostgreSQL): a settle
                // lost in a crash leaves the row in its earlier state — in
                // flight, reconciled by its marker; pending, planned again —
                // never a row sent twice. It saves one disk flush a row.
                let fail = self.fail("recording a delivery");
                let mut db = self.write_tx().await?;
                if let Some(relaxed) = RELAXED_COMMIT {
                    sqlx::query(relaxed).execute(&mut *db).await.map_err(&fail)?;
                }
                let done = q.build().execute(&mut *db).await.map_err(&fail)?;
                db.commit().await.map_err(&fail)?;
                if done.rows_affected() == 1 { Ok(true) } else { self.fence_verdict(false).await }
            }

            async fn in_flight(&self, sink: &str, after: Option<&str>, limit: u32) -> Result<Vec<InFlight>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT transaction_id, marker, request, attempts, reason, replaces FROM deliveries WHERE state = 'in_flight' AND sink = ",
                );
                q.push_bind(sink.to_owned());
                if let Some(after) = after {
                    q.push(" AND transaction_id > ").push_bind(after.to_owned());
                }
                if self.scope.is_some() {
                    q.push(" AND transaction_id IN (SELECT t.id FROM transactions t WHERE 1 = 1");
                    self.push_scope(&mut q, "t.");
                    q.push(")");
                }
                q.push(" ORDER BY transaction_id LIMIT ").push_bind(i64::from(limit));
                let fail = self.fail("reading deliveries");
                let rows = q.build().fetch_all(&self.pool).await.map_err(&fail)?;
                rows.iter()
                    .map(|r| {
                        Ok(InFlight {
                            transaction_id: r.try_get(0).map_err(&fail)?,
                            marker: r.try_get(1).map_err(&fail)?,
                            request: r.try_get(2).map_err(&fail)?,
                            attempts: r.try_get(3).map_err(&fail)?,
                            reason: r.try_get(4).map_err(&fail)?,
                            replaces: r.try_get(5).map_err(&fail)?,
                        })
                    })
                    .collect()
            }

            async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryListing>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT d.sink, d.transaction_id, t.source, t.source_account_id, t.booking_date, t.amount_minor, \
                     t.currency, t.description, d.state, d.remote_id, d.reason, d.attempts \
                     FROM deliveries d JOIN transactions t ON t.id = d.transaction_id WHERE 1 = 1",
                );
                push_delivery_filter(&mut q, filter, "d.", "t.");
                q.push(" ORDER BY t.booking_date DESC, d.sink, d.transaction_id");
                if let Some(limit) = filter.limit {
                    q.push(" LIMIT ").push_bind(i64::from(limit));
                }
                let fail = self.fail("reading deliveries");
                let rows = q.build().fetch_all(&self.pool).await.map_err(&fail)?;
                rows.iter()
                    .map(|r| {
                        let source: String = r.try_get(2).map_err(&fail)?;
                        let account: String = r.try_get(3).map_err(&fail)?;
                        Ok(DeliveryListing {
                            sink: r.try_get(0).map_err(&fail)?,
                            transaction_id: r.try_get(1).map_err(&fail)?,
                            account: format!("{source}:{account}"),
                            booking_date: r.try_get(4).map_err(&fail)?,
                            amount_minor: r.try_get(5).map_err(&fail)?,
                            currency: r.try_get(6).map_err(&fail)?,
                            description: r.try_get(7).map_err(&fail)?,
                            state: r.try_get(8).map_err(&fail)?,
                            remote_id: r.try_get(9).map_err(&fail)?,
                            reason: r.try_get(10).map_err(&fail)?,
                            attempts: r.try_get(11).map_err(&fail)?,
                        })
                    })
                    .collect()
            }

            async fn operate_deliveries(&self, filter: &DeliveryFilter, op: DeliveryOp) -> Result<u64, StoreError> {
                let now = instant(Utc::now());
                let statements: Vec<(&str, &str)> = match op {
                    DeliveryOp::Retry => vec![(
                        "state = 'pending', reason = NULL, marker = NULL, request = NULL, attempts = 0",
                        "state IN ('failed', 'skipped')",
                    )],
                    DeliveryOp::Resend => vec![
                        ("state = 'in_flight', remote_id = NULL, attempts = 0, reason = 'resend asked by the user'",
                         "state = 'delivered' AND request IS NOT NULL AND marker IS NOT NULL"),
                        ("state = 'pending', remote_id = NULL, attempts = 0, reason = NULL", "state = 'delivered'"),
                    ],
                    DeliveryOp::Skip => vec![("state = 'skipped', reason = 'skipped by the user'", "state IN ('pending', 'failed')")],
                };
                let fail = self.fail("changing deliveries");
                let mut db = self.write_tx().await?;
                let mut changed = 0;
                for (set, condition) in statements {
                    let mut q = QueryBuilder::<$Db>::new(format!("UPDATE deliveries SET {set}, updated_at = "));
                    q.push_bind(now.clone()).push(format!(" WHERE {condition}"));
                    push_delivery_filter(&mut q, filter, "", "");
                    changed += q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected();
                }
                db.commit().await.map_err(&fail)?;
                Ok(changed)
            }

            async fn delivery(&self, sink: &str, transaction_id: &str) -> Result<Option<DeliveryRow>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT state, remote_id, reason, attempts, marker, request, revision, replaces, sent_version FROM deliveries WHERE sink = ",
                );
                q.push_bind(sink.to_owned()).push(" AND transaction_id = ").push_bind(transaction_id.to_owned());
                let fail = self.fail("reading deliveries");
                let Some(r) = q.build().fetch_optional(&self.pool).await.map_err(&fail)? else { return Ok(None) };
                let state: String = r.try_get(0).map_err(&fail)?;
                Ok(Some(DeliveryRow {
                    state: DeliveryState::parse(&state).ok_or_else(|| StoreError::Corrupt {
                        database: self.name.clone(),
                        id: transaction_id.to_owned(),
                        field: "deliveries.state",
                        value: state.clone(),
                    })?,
                    remote_id: r.try_get(1).map_err(&fail)?,
                    reason: r.try_get(2).map_err(&fail)?,
                    attempts: r.try_get(3).map_err(&fail)?,
                    marker: r.try_get(4).map_err(&fail)?,
                    request: r.try_get(5).map_err(&fail)?,
                    revision: r.try_get(6).map_err(&fail)?,
                    replaces: r.try_get(7).map_err(&fail)?,
                    sent_version: r.try_get(8).map_err(&fail)?,
                }))
            }

            async fn settled_deliveries(&self, sink: &str, ids: &[String]) -> Result<Vec<String>, StoreError> {
                let fail = self.fail("reading deliveries");
                let mut out = Vec::new();
                for chunk in ids.chunks(CHUNK * 4) {
                    let mut q = QueryBuilder::<$Db>::new(
                        "SELECT transaction_id FROM deliveries WHERE state IN ('delivered', 'failed') AND sink = ",
                    );
                    q.push_bind(sink.to_owned()).push(" AND transaction_id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    for r in q.build().fetch_all(&self.pool).await.map_err(&fail)? {
                        out.push(r.try_get(0).map_err(&fail)?);
                    }
                }
                Ok(out)
            }

            async fn sink_account(&self, sink: &str, source: &str, account: &str) -> Result<Option<String>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("SELECT remote_account_id FROM sink_accounts WHERE sink = ");
                q.push_bind(sink.to_owned())
                    .push(" AND source = ").push_bind(source.to_owned())
                    .push(" AND source_account_id = ").push_bind(account.to_owned());
                let fail = self.fail("reading sink accounts");
                match q.build().fetch_optional(&self.pool).await.map_err(&fail)? {
                    None => Ok(None),
                    Some(r) => Ok(Some(r.try_get(0).map_err(&fail)?)),
                }
            }

            async fn set_sink_account(&self, sink: &str, source: &str, account: &str, remote: &str) -> Result<(), StoreError> {
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO sink_accounts (sink, source, source_account_id, remote_account_id) VALUES (");
                q.push_bind(sink.to_owned()).push(", ")
                    .push_bind(source.to_owned()).push(", ")
                    .push_bind(account.to_owned()).push(", ")
                    .push_bind(remote.to_owned())
                    .push(") ON CONFLICT (sink, source, source_account_id) DO UPDATE SET remote_account_id = excluded.remote_account_id");
                q.build().execute(&self.pool).await.map_err(self.fail("recording a sink account"))?;
                Ok(())
            }
        }

        impl crate::RateBudgets for $Store {
            async fn rate_budget(&self, origin: &str) -> Result<Option<(Option<i64>, i64, i64)>, StoreError> {
                // A shared row (PostgreSQL) exists before its window is known.
                let mut q = QueryBuilder::<$Db>::new("SELECT rate_limit, remaining, reset_unix FROM rate_budgets WHERE origin = ");
                q.push_bind(origin.to_owned()).push(" AND remaining IS NOT NULL AND reset_unix IS NOT NULL");
                let fail = self.fail("reading rate budgets");
                match q.build().fetch_optional(&self.pool).await.map_err(&fail)? {
                    None => Ok(None),
                    Some(r) => Ok(Some((r.try_get(0).map_err(&fail)?, r.try_get(1).map_err(&fail)?, r.try_get(2).map_err(&fail)?))),
                }
            }

            async fn save_rate_budget(&self, origin: &str, limit: Option<i64>, remaining: i64, reset_unix: i64) -> Result<(), StoreError> {
                if let Some(shared) = self.snapshots_merged() {
                    // A shared row is live: a snapshot is merged as a response would be.
                    let seen = RateObservation { limit, remaining: Some(remaining), reset_unix: Some(reset_unix), status: 200, ..RateObservation::default() };
                    return shared.observe(origin, &seen).await;
                }
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO rate_budgets (origin, rate_limit, remaining, reset_unix, updated_at) VALUES (");
                q.push_bind(origin.to_owned()).push(", ")
                    .push_bind(limit).push(", ")
                    .push_bind(remaining).push(", ")
                    .push_bind(reset_unix).push(", ")
                    .push_bind(instant(Utc::now()))
                    .push(") ON CONFLICT (origin) DO UPDATE SET rate_limit = excluded.rate_limit, remaining = excluded.remaining, \
                           reset_unix = excluded.reset_unix, updated_at = excluded.updated_at");
                q.build().execute(&self.pool).await.map_err(self.fail("recording a rate budget"))?;
                Ok(())
            }

            fn shared_rate_budgets(&self) -> Option<crate::SharedRateBudgets> {
                self.shared_rates()
            }
        }

        /// `AND …` for each filter given; `d`/`t` prefix the deliveries and
        /// transactions columns (empty: an UPDATE of deliveries alone, with
        /// the transaction's fields through a subquery).
        fn push_delivery_filter<'a>(q: &mut QueryBuilder<'a, $Db>, f: &'a DeliveryFilter, d: &str, t: &str) {
            if let Some(sink) = &f.sink {
                q.push(format!(" AND {d}sink = ")).push_bind(sink.clone());
            }
            if let Some(state) = f.state {
                q.push(format!(" AND {d}state = ")).push_bind(state.as_str());
            }
            if !f.ids.is_empty() {
                q.push(format!(" AND {d}transaction_id IN ("));
                let mut list = q.separated(", ");
                for id in &f.ids {
                    list.push_bind(id.clone());
                }
                q.push(")");
            }
            let on_tx = f.account.is_some() || f.from.is_some() || f.to.is_some();
            if !on_tx {
                return;
            }
            let (open, col) = if t.is_empty() {
                (" AND transaction_id IN (SELECT id FROM transactions WHERE 1 = 1", "")
            } else {
                ("", t)
            };
            q.push(open);
            if let Some(account) = &f.account {
                match account.split_once(':') {
                    Some((source, id)) => {
                        q.push(format!(" AND {col}source = ")).push_bind(source.to_owned());
                        q.push(format!(" AND {col}source_account_id = ")).push_bind(id.to_owned());
                    }
                    None => {
                        q.push(format!(" AND {col}source_account_id = ")).push_bind(account.clone());
                    }
                }
            }
            if let Some(from) = f.from {
                q.push(format!(" AND {col}booking_date >= ")).push_bind(from.to_string());
            }
            if let Some(to) = f.to {
                q.push(format!(" AND {col}booking_date <= ")).push_bind(to.to_string());
            }
            if t.is_empty() {
                q.push(")");
            }
        }

        impl $Store {
            fn watermark(&self, r: &DbRow) -> Result<Watermark, StoreError> {
                let fail = self.fail("reading watermarks");
                let date: String = r.try_get("booking_date").map_err(&fail)?;
                let account: String = r.try_get("source_account_id").map_err(&fail)?;
                Ok(Watermark {
                    source: r.try_get("source").map_err(&fail)?,
                    booking_date: NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
                        database: self.name.clone(),
                        id: account.clone(),
                        field: "watermark",
                        value: date.clone(),
                    })?,
                    source_account_id: account,
                    updated_at: r.try_get("updated_at").map_err(&fail)?,
                })
            }
        }
    };
}

pub(crate) use store_impl;

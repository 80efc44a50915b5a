//! The PostgreSQL store, for several workers sharing one database. One sync
//! at a time per database is enforced with a session advisory lock.

use std::time::Duration;

use std::sync::LazyLock;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres};

// `Row`, `Stored`, `TxRow` and `RunId` come with `store_impl!` (below).
use crate::backend::{TX_COLUMNS, TX_UPDATE};
use crate::lock::SyncLock;

/// Rows per upsert (and ids per stored-version read): one statement for a
/// page of usual size, a bound on the size of one message for larger ones.
const UNNEST_ROWS: usize = 5000;

/// The columns of an upsert that come from the row, in `TX_COLUMNS` order,
/// with their array types; `first_run`, `last_run` (the run) and
/// `seen_pending` (from `status`) follow.
const UNNEST_COLUMNS: [(&str, &str); 27] = [
    ("id", "text"),
    ("source", "text"),
    ("source_account_id", "text"),
    ("source_transaction_id", "text"),
    ("status", "text"),
    ("booking_date", "text"),
    ("amount_minor", "bigint"),
    ("currency", "text"),
    ("description", "text"),
    ("merchant_name", "text"),
    ("mcc", "bigint"),
    ("category", "text"),
    ("category_source", "text"),
    ("kind", "text"),
    ("memo_only", "boolean"),
    ("transacted_at", "text"),
    ("posted_at", "text"),
    ("updated_at", "text"),
    ("source_status", "text"),
    ("source_type", "text"),
    ("external_id", "text"),
    ("group_id", "text"),
    ("source_categories", "text"),
    ("memo", "text"),
    ("check_number", "text"),
    ("source_fields", "text"),
    ("fingerprint", "text"),
];

/// `INSERT … SELECT … FROM UNNEST(one array per column) … ON CONFLICT DO
/// UPDATE`: 28 binds whatever the number of rows, so one prepared statement.
static UPSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<&str> = UNNEST_COLUMNS.iter().map(|(n, _)| *n).collect();
    let arrays: Vec<String> =
        UNNEST_COLUMNS.iter().enumerate().map(|(i, (_, t))| format!("${}::{t}[]", i + 1)).collect();
    let run = UNNEST_COLUMNS.len() + 1;
    format!(
        "INSERT INTO transactions ({TX_COLUMNS}) SELECT {}, ${run}, ${run}, status = 'pending' FROM UNNEST({}) AS r ({}){TX_UPDATE}",
        names.join(", "),
        arrays.join(", "),
        names.join(", "),
    )
});

/// No first load on PostgreSQL (it defers no index): the page writes'
/// first-load lock is nothing.
pub(crate) struct FirstLoadGuard<'a>(std::marker::PhantomData<&'a ()>);

/// The scale-out store.
pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) name: String,
    options: PgConnectOptions,
    schema: Option<String>,
    /// The lease this view is bound to ([`WorkLeases::bound`](crate::WorkLeases::bound)).
    pub(crate) fence: Option<std::sync::Arc<crate::leases::Fence>>,
    /// The accounts a bound delivery unit covers.
    pub(crate) scope: Option<std::sync::Arc<crate::leases::DeliveryScope>>,
}

/// The database clock as Unix milliseconds (SQL; `clock_timestamp()`, not
/// the transaction's start).
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
/// ` = ANY($n)` (or ` <> ALL($n)`) of `keys` bound as one text array.
fn push_key_list(q: &mut sqlx::QueryBuilder<'_, Postgres>, keys: &[String], except: bool) {
    q.push(if except { " <> ALL(" } else { " = ANY(" }).push_bind(keys.to_vec()).push(")");
}

/// Refreshes the planner's statistics of the tables a sync fills.
const REFRESH_STATISTICS: &str = "ANALYZE transactions, deliveries, dedupe_links";

/// Workers whose heartbeat is older than this are gone (their runs still
/// `running` are interrupted), whatever their lease length.
const WORKER_GONE_MS: i64 = 300_000;

/// Concurrent claims skip the units another worker is claiming.
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
/// A lease checked inside a write transaction is locked until it commits,
/// so no claim can take it over meanwhile.
const FOR_UPDATE: &str = " FOR UPDATE";
/// Run first in a transaction whose commit need not wait for the disk (a
/// delivery's settle, see `settle_delivery`; a page write, see
/// `write_pages`).
const RELAXED_COMMIT: Option<&str> = Some("SET LOCAL synchronous_commit = off");

/// How long connecting may take before it is reported as unanswered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Advisory lock key of `bankpipe sync` (an arbitrary constant).
const SYNC_LOCK_KEY: i64 = 0x6261_6e6b_7069_7065; // "bankpipe"

/// `postgres://user:***@host:port/db?password=***`: the URL without any
/// password (in the user info or as a query parameter).
pub(crate) fn redact(url: &str) -> String {
    let out = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    };
    let Some((head, query)) = out.split_once('?') else { return out };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{head}?{}", query.join("&"))
}

impl PgStore {
    /// Connect to `postgres://…` and apply migrations.
    ///
    /// # Errors
    /// [`StoreError`] naming the database (never its password).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        PgStore::open_in_schema(url, None).await
    }

    /// Connect, optionally inside `schema` (created if missing; used to
    /// isolate tests sharing one database), and apply migrations.
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub async fn open_in_schema(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let name = redact(url);
        let fail = |operation: &'static str| {
            let name = name.clone();
            move |e: sqlx::Error| StoreError::Database { database: name.clone(), operation, cause: e.to_string() }
        };
        let options: PgConnectOptions = url.parse().map_err(fail("parsing the URL"))?;
        // Each worker's sessions are findable in pg_stat_activity.
        let options = options.application_name(&format!("bankpipe {}", std::process::id()));
        // One direct connection first: a refused port or a TLS or
        // authentication problem is reported as itself, not as the pool's
        // "timed out".
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&options)).await;
        match probe {
            Err(_) => {
                return Err(StoreError::Database {
                    database: name,
                    operation: "connecting",
                    cause: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                })
            }
            Ok(Err(e)) => return Err(fail("connecting")(e)),
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
        }
        if let Some(schema) = schema {
            let mut conn = sqlx::PgConnection::connect_with(&options).await.map_err(fail("connecting"))?;
            // `CREATE SCHEMA IF NOT EXISTS` is not safe against itself:
            // two workers starting together on a fresh database can both
            // pass the check and one fails on the catalog's unique key. A
            // transaction-scoped advisory lock serializes them.
            let key = SYNC_LOCK_KEY ^ 0x5c4e_3a11;
            let mut tx = conn.begin().await.map_err(fail("creating the schema"))?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(fail("creating the schema"))?;
            tx.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
                .await
                .map_err(fail("creating the schema"))?;
            tx.commit().await.map_err(fail("creating the schema"))?;
        }
        let pool = pool_options(schema, 5, &[]).connect_with(options.clone()).await.map_err(fail("connecting"))?;
        let migrator = crate::migrations::migrator(crate::migrations::POSTGRES).await.map_err(|e| {
            StoreError::Database { database: name.clone(), operation: "migrating", cause: e.to_string() }
        })?;
        check_schema_version::<Postgres>(&pool, &migrator, &name, "SELECT MAX(version) FROM _sqlx_migrations").await?;
        migrator.run(&pool).await.map_err(|e| StoreError::Database {
            database: name.clone(),
            operation: "migrating",
            cause: e.to_string(),
        })?;
        Ok(PgStore { pool, name, options, schema: schema.map(str::to_owned), fence: None, scope: None })
    }

    /// The same database, unbound (shares the pool).
    fn unbound_clone(&self) -> PgStore {
        PgStore {
            pool: self.pool.clone(),
            name: self.name.clone(),
            options: self.options.clone(),
            schema: self.schema.clone(),
            fence: None,
            scope: None,
        }
    }

    /// Serialize round creation across workers: a transaction-scoped
    /// advisory lock (released at commit), keyed per schema.
    async fn lock_rounds(db: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema()) # 7021523)").execute(&mut *db).await?;
        Ok(())
    }

    /// Every worker on this database shares its rate budgets: reserved on
    /// a small pool of their own (connected on first use) whose commits do
    /// not wait for the WAL to reach the disk (`synchronous_commit = off`).
    /// Each request reserves and observes once, so a busy disk's fsync
    /// latency would pace every sink request; what a database crash could
    /// lose is the last fraction of a second of counts, which the sink's
    /// next answer corrects (and a 429 holds every worker).
    pub(crate) fn shared_rates(&self) -> Option<crate::SharedRateBudgets> {
        let pool = pool_options(self.schema.as_deref(), 2, &["SET synchronous_commit TO off"])
            .connect_lazy_with(self.options.clone());
        Some(crate::SharedRateBudgets::new(pool, self.name.clone()))
    }

    /// Rate budgets are shared live: `save_rate_budget` merges a snapshot
    /// into the row as an observation (on the store's own pool) instead of
    /// overwriting what other workers reserved.
    pub(crate) fn snapshots_merged(&self) -> Option<crate::SharedRateBudgets> {
        Some(crate::SharedRateBudgets::new(self.pool.clone(), self.name.clone()))
    }

    /// A write transaction (row-level locking does the rest in PostgreSQL).
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(|e| StoreError::Database {
            database: self.name.clone(),
            operation: "starting a write transaction",
            cause: e.to_string(),
        })
    }

    /// No first load: PostgreSQL defers no index.
    pub(crate) async fn first_load(&self) -> FirstLoadGuard<'_> {
        FirstLoadGuard(std::marker::PhantomData)
    }

    /// [`PgStore::stored_versions`] (no first load on PostgreSQL).
    pub(crate) async fn stored_versions_in(
        conn: &mut PgConnection,
        ids: &[&str],
        _: &mut FirstLoadGuard<'_>,
    ) -> Result<Vec<(String, Stored)>, sqlx::Error> {
        Self::stored_versions(conn, ids).await
    }

    /// [`PgStore::upsert_transactions`] (no first load on PostgreSQL).
    pub(crate) async fn upsert_transactions_in(
        conn: &mut PgConnection,
        run: RunId,
        inserts: Vec<TxRow>,
        updates: Vec<TxRow>,
        _: &mut FirstLoadGuard<'_>,
    ) -> Result<(), sqlx::Error> {
        Self::upsert_transactions(conn, run, inserts, updates).await
    }

    /// Indexes stay: other workers read them while one loads.
    async fn defer_transaction_indexes(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Nothing is ever deferred on PostgreSQL.
    async fn build_transaction_indexes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// The stored fingerprint, `updated_at` and supersession of those of
    /// `ids` that are stored.
    pub(crate) async fn stored_versions(
        conn: &mut PgConnection,
        ids: &[&str],
    ) -> Result<Vec<(String, Stored)>, sqlx::Error> {
        let mut out = Vec::new();
        for chunk in ids.chunks(UNNEST_ROWS) {
            let rows = sqlx::query(
                "SELECT id, fingerprint, updated_at, superseded_by IS NOT NULL FROM transactions WHERE id = ANY($1)",
            )
            .bind(chunk)
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                let stored =
                    Stored { fingerprint: r.try_get(1)?, updated_at: r.try_get(2)?, superseded: r.try_get(3)? };
                out.push((r.try_get(0)?, stored));
            }
        }
        Ok(out)
    }

    /// Write `inserts` (ids not stored when read) and `updates` as written
    /// by `run`: one `UNNEST` upsert per [`UNNEST_ROWS`] rows, in id order.
    /// New rows go through `ON CONFLICT` too: another worker may insert the
    /// same id meanwhile (PostgreSQL does not lock absent rows).
    pub(crate) async fn upsert_transactions(
        conn: &mut PgConnection,
        run: RunId,
        inserts: Vec<TxRow>,
        updates: Vec<TxRow>,
    ) -> Result<(), sqlx::Error> {
        let mut rows = inserts;
        if !updates.is_empty() {
            rows.extend(updates);
            rows.sort_by(|a, b| a.id.cmp(&b.id));
        }
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut c = Columns::default();
            for r in rows.by_ref().take(UNNEST_ROWS) {
                c.push(r);
            }
            sqlx::query(&UPSERT_SQL)
                .bind(c.id)
                .bind(c.source)
                .bind(c.source_account_id)
                .bind(c.source_transaction_id)
                .bind(c.status)
                .bind(c.booking_date)
                .bind(c.amount_minor)
                .bind(c.currency)
                .bind(c.description)
                .bind(c.merchant_name)
                .bind(c.mcc)
                .bind(c.category)
                .bind(c.category_source)
                .bind(c.kind)
                .bind(c.memo_only)
                .bind(c.transacted_at)
                .bind(c.posted_at)
                .bind(c.updated_at)
                .bind(c.source_status)
                .bind(c.source_type)
                .bind(c.external_id)
                .bind(c.group_id)
                .bind(c.source_categories)
                .bind(c.memo)
                .bind(c.check_number)
                .bind(c.source_fields)
                .bind(c.fingerprint)
                .bind(run)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Take the one-sync-per-database lock (a session advisory lock held on
    /// a dedicated connection until the guard is dropped).
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another worker holds it.
    pub async fn lock(&self) -> Result<SyncLock, StoreError> {
        let fail = |e: sqlx::Error| StoreError::Database {
            database: self.name.clone(),
            operation: "locking",
            cause: e.to_string(),
        };
        let mut conn = sqlx::PgConnection::connect_with(&self.options).await.map_err(fail)?;
        let key = self
            .schema
            .as_deref()
            .map_or(SYNC_LOCK_KEY, |s| SYNC_LOCK_KEY ^ xxhash_rust::xxh3::xxh3_64(s.as_bytes()) as i64);
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut conn).await.map_err(fail)?;
        if !got {
            return Err(StoreError::Locked(format!(
                "{}: another bankpipe sync holds this database's lock; try again when it has finished",
                self.name
            )));
        }
        Ok(SyncLock::Postgres(conn))
    }
}

/// A pool of at most `max` connections, each inside `schema` (when given)
/// and set up with the `session` statements.
fn pool_options(schema: Option<&str>, max: u32, session: &'static [&'static str]) -> PgPoolOptions {
    let search_path = schema.map(|s| format!("SET search_path TO \"{s}\""));
    PgPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(10)).after_connect(move |conn, _| {
        let search_path = search_path.clone();
        Box::pin(async move {
            if let Some(sql) = search_path {
                conn.execute(sql.as_str()).await?;
            }
            for sql in session {
                conn.execute(*sql).await?;
            }
            Ok(())
        })
    })
}

/// Rows as one array per column (the binds of [`UPSERT_SQL`]).
#[derive(Default)]
struct Columns {
    id: Vec<String>,
    source: Vec<String>,
    source_account_id: Vec<String>,
    source_transaction_id: Vec<String>,
    status: Vec<String>,
    booking_date: Vec<String>,
    amount_minor: Vec<i64>,
    currency: Vec<String>,
    description: Vec<String>,
    merchant_name: Vec<Option<String>>,
    mcc: Vec<Option<i64>>,
    category: Vec<Option<String>>,
    category_source: Vec<String>,
    kind: Vec<String>,
    memo_only: Vec<bool>,
    transacted_at: Vec<Option<String>>,
    posted_at: Vec<Option<String>>,
    updated_at: Vec<Option<String>>,
    source_status: Vec<String>,
    source_type: Vec<String>,
    external_id: Vec<Option<String>>,
    group_id: Vec<Option<String>>,
    source_categories: Vec<String>,
    memo: Vec<Option<String>>,
    check_number: Vec<Option<String>>,
    source_fields: Vec<Option<String>>,
    fingerprint: Vec<String>,
}

impl Columns {
    fn push(&mut self, r: TxRow) {
        self.id.push(r.id);
        self.source.push(r.source);
        self.source_account_id.push(r.source_account_id);
        self.source_transaction_id.push(r.source_transaction_id);
        self.status.push(r.status);
        self.booking_date.push(r.booking_date);
        self.amount_minor.push(r.amount_minor);
        self.currency.push(r.currency);
        self.description.push(r.description);
        self.merchant_name.push(r.merchant_name);
        self.mcc.push(r.mcc);
        self.category.push(r.category);
        self.category_source.push(r.category_source);
        self.kind.push(r.kind);
        self.memo_only.push(r.memo_only);
        self.transacted_at.push(r.transacted_at);
        self.posted_at.push(r.posted_at);
        self.updated_at.push(r.updated_at);
        self.source_status.push(r.source_status);
        self.source_type.push(r.source_type);
        self.external_id.push(r.external_id);
        self.group_id.push(r.group_id);
        self.source_categories.push(r.source_categories);
        self.memo.push(r.memo);
        self.check_number.push(r.check_number);
        self.source_fields.push(r.source_fields);
        self.fingerprint.push(r.fingerprint);
    }
}

/// Refuse a database migrated by a newer bankpipe (a version this binary
/// does not know), before running migrations.
pub(crate) async fn check_schema_version<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    migrator: &sqlx::migrate::Migrator,
    name: &str,
    sql: &'static str,
) -> Result<(), StoreError>
where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    i64: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    Option<i64>: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    use sqlx::Row;
    // No migrations table yet: a fresh database.
    let Ok(row) = sqlx::query(sql).fetch_one(pool).await else { return Ok(()) };
    let found: Option<i64> = row.try_get(0).unwrap_or(None);
    let supported = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > supported => {
            Err(StoreError::NewerSchema { database: name.to_owned(), found, supported })
        }
        _ => Ok(()),
    }
}

crate::backend::store_impl!(PgStore, Postgres);
crate::leases_sql::leases_impl!(PgStore, Postgres);

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(redact("postgres://bp:s3cret@db:5432/bank"), "postgres://bp:***@db:5432/bank");
        assert_eq!(
            redact("postgres://bp@db/bank?sslmode=require&password=s3cret"),
            "postgres://bp@db/bank?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgresql://db/bank?PASSWORD=x&sslpassword=y"),
            "postgresql://db/bank?PASSWORD=***&sslpassword=***"
        );
        assert_eq!(redact("postgres://db/bank"), "postgres://db/bank");
    }
}

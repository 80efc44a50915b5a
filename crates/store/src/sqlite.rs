//! The SQLite store: one file, WAL, a busy timeout, `BEGIN IMMEDIATE` for
//! every read-then-write transaction (so concurrent writers wait for the
//! lock instead of failing with SQLITE_BUSY mid-transaction).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use std::sync::{Arc, OnceLock};

use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Arguments, Sqlite, SqliteConnection, SqlitePool};

// `Row`, `Stored`, `TxRow` and `RunId` come with `store_impl!` (below).
use crate::backend::{batches, TX_COLUMNS, TX_UPDATE};
use crate::first_load::FirstLoad;
use crate::lock::SyncLock;

/// How long a writer waits for another one (another process holding the
/// database's write lock, or another write transaction of this process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Page cache of the writer connection (`PRAGMA cache_size`, negative:
/// KiB): room for the indexes a large page of inserts touches. The writer
/// also keeps its temporary storage — the statement journal of each
/// multi-row upsert, which only undoes a failed statement and plays no
/// part in durability — in memory (`PRAGMA temp_store = MEMORY`).
const WRITER_CACHE_KIB: &str = "-65536";

/// The writer's page cache while a first load has every index deferred
/// (KiB, negative as above): the load appends table pages, and looks up an
/// id seen again by rowid, so a large cache would only hold pages already
/// written (64 MB of peak RSS at 1,000,000 rows).
const FIRST_LOAD_CACHE_KIB: &str = "-8192";

/// WAL frames (pages) after which a commit checkpoints the WAL into the
/// database file (`PRAGMA wal_autocheckpoint`; SQLite's default is 1,000).
/// A page of 1,000 new transactions dirties about 900 pages — most of them
/// leaves of the `id` index, whose random keys touch nearly every leaf —
/// so the default checkpointed (two fsyncs, every dirty page copied) after
/// nearly every page; at 10,000 a checkpoint copies each page once for
/// about ten commits. Durability is unchanged: a commit is in the WAL
/// either way (`synchronous = NORMAL`).
const WAL_AUTOCHECKPOINT: &str = "10000";

/// Bytes of WAL file kept after a checkpoint (`PRAGMA journal_size_limit`):
/// the file is truncated back to this size rather than keeping its peak.
const WAL_SIZE_LIMIT: &str = "67108864";

/// Helper threads an index build's sort may use (`PRAGMA threads`; the
/// bundled SQLite allows up to 8, default 0). With helpers, each
/// `CREATE INDEX` at 1,000,000 rows took 2.0–2.2 s instead of 2.8–3.4 s
/// here; more than two made no difference on 2 cores.
const SORT_THREADS: &str = "PRAGMA threads = 2";

/// Rows per multi-row upsert statement, largest first (30 to 33 binds a
/// row: the largest well under SQLite's 32,766 variables).
const UPSERT_SIZES: [usize; UPSERT_SIZES_LEN] = [500, 100, 20, 5, 1];

/// How many statement sizes there are (see [`Statements`]).
pub(crate) const UPSERT_SIZES_LEN: usize = 5;

/// Ids per `IN` list when reading stored versions, largest first; a last
/// partial list is padded (by repeating an id) to one of these sizes.
const SELECT_SIZES: [usize; 3] = [1000, 100, 10];

/// The embedded default store.
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// One connection for every write transaction ([`SqliteStore::write_tx`]):
    /// SQLite writes one transaction at a time anyway, and a connection
    /// keeps its page cache only while no other connection writes — so
    /// consecutive pages find the indexes they update already in memory.
    writer: SqlitePool,
    pub(crate) name: String,
    path: PathBuf,
    /// The lease this view is bound to ([`WorkLeases::bound`](crate::WorkLeases::bound)).
    pub(crate) fence: Option<std::sync::Arc<crate::leases::Fence>>,
    /// The accounts a bound delivery unit covers.
    pub(crate) scope: Option<std::sync::Arc<crate::leases::DeliveryScope>>,
    /// While a first load has the id index deferred, where it wrote each id
    /// ([`FirstLoad`]); `None` otherwise. Shared by every view of the store.
    first_load: Arc<tokio::sync::Mutex<Option<FirstLoad>>>,
}

/// The name of the unique index on `transactions.id` (migration 0013).
const ID_INDEX: &str = "transactions_id";

/// The first load's lock (see [`FirstLoad`]): held by each page write
/// and by the index builds, so no page is written while the id index is
/// half there.
pub(crate) type FirstLoadGuard<'a> = tokio::sync::MutexGuard<'a, Option<FirstLoad>>;

/// The database clock as Unix milliseconds (SQL).
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
/// ` IN` (or ` NOT IN`) the `keys`, bound as one JSON array read with
/// `json_each` (SQLite's bind limit does not apply).
fn push_key_list(q: &mut sqlx::QueryBuilder<'_, Sqlite>, keys: &[String], except: bool) {
    let json = serde_json::to_string(keys).expect("strings serialize");
    q.push(if except { " NOT IN" } else { " IN" }).push(" (SELECT value FROM json_each(").push_bind(json).push("))");
}

/// Refreshes the planner's statistics of the tables a sync fills.
const REFRESH_STATISTICS: &str = "PRAGMA optimize";

/// Workers whose heartbeat is older than this are gone (their runs still
/// `running` are interrupted), whatever their lease length.
const WORKER_GONE_MS: i64 = 300_000;

/// Claims need no row locks: the write lock serializes them.
const SKIP_LOCKED: &str = "";
/// Nor does checking a lease inside a write transaction.
const FOR_UPDATE: &str = "";
/// SQLite's WAL with `synchronous = NORMAL` does not flush at commit anyway.
const RELAXED_COMMIT: Option<&str> = None;

impl SqliteStore {
    /// One worker per file: its HTTP client's own gate, no shared budget.
    pub(crate) fn shared_rates(&self) -> Option<crate::SharedRateBudgets> {
        None
    }

    /// A saved rate budget replaces the last one (one worker per file).
    pub(crate) fn snapshots_merged(&self) -> Option<crate::SharedRateBudgets> {
        None
    }

    /// Open (creating if missing) `sqlite://PATH`, apply migrations.
    ///
    /// # Errors
    /// [`StoreError`] naming the file: a missing or read-only directory, a
    /// file that is not a database, a newer schema.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(url.trim_start_matches("sqlite://").trim_start_matches("sqlite:"));
        let name = path.display().to_string();
        let fail = |operation: &'static str| {
            let name = name.clone();
            move |e: sqlx::Error| StoreError::Database { database: name.clone(), operation, cause: e.to_string() }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(StoreError::Database {
                    database: name,
                    operation: "opening",
                    cause: format!("directory {} does not exist", dir.display()),
                });
            }
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(fail("parsing the URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT);
        let pool =
            SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await.map_err(fail("opening"))?;
        // Touch the schema: a file that is not a database fails here, by name.
        sqlx::query("SELECT COUNT(*) FROM sqlite_master").execute(&pool).await.map_err(fail("reading"))?;
        let migrator = crate::migrations::migrator(crate::migrations::SQLITE).await.map_err(|e| {
            StoreError::Database { database: name.clone(), operation: "migrating", cause: e.to_string() }
        })?;
        crate::postgres::check_schema_version::<Sqlite>(
            &pool,
            &migrator,
            &name,
            "SELECT MAX(version) FROM _sqlx_migrations",
        )
        .await?;
        migrator.run(&pool).await.map_err(|e| StoreError::Database {
            database: name.clone(),
            operation: "migrating",
            cause: e.to_string(),
        })?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options.pragma("cache_size", WRITER_CACHE_KIB).pragma("temp_store", "memory"))
            .await
            .map_err(fail("opening"))?;
        let store = SqliteStore { pool, writer, name, path, fence: None, scope: None, first_load: Arc::default() };
        store.build_indexes_left_deferred().await?;
        Ok(store)
    }

    /// Build the indexes a first load (`sync` or `backfill`) deferred and
    /// did not build (the process died meanwhile) — unless a sync or backfill holds the
    /// database's lock: that one may be the load still under way, and
    /// builds them itself.
    async fn build_indexes_left_deferred(&self) -> Result<(), StoreError> {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deferred_indexes")
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail("reading the deferred indexes"))?;
        if left == 0 {
            return Ok(());
        }
        let Ok(_lock) = self.lock().await else {
            return Ok(());
        };
        tracing::info!(database = %self.name, indexes = left, "building the indexes an interrupted first load deferred");
        self.build_transaction_indexes().await?;
        Ok(())
    }

    /// The same database, unbound (shares the pools).
    fn unbound_clone(&self) -> SqliteStore {
        SqliteStore {
            pool: self.pool.clone(),
            writer: self.writer.clone(),
            name: self.name.clone(),
            path: self.path.clone(),
            fence: None,
            scope: None,
            first_load: Arc::clone(&self.first_load),
        }
    }

    /// Round creation is serialized by the write lock `write_tx` holds.
    async fn lock_rounds(_db: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }

    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(|e| StoreError::Database {
            database: self.name.clone(),
            operation: "starting a write transaction",
            cause: e.to_string(),
        })
    }

    /// [`TransactionStore::defer_indexes`](crate::TransactionStore::defer_indexes):
    /// in one write transaction, when `transactions` is empty, record every
    /// index of it (the id's included) in `deferred_indexes` and drop it;
    /// then, if the id index is deferred (now or by an earlier load that
    /// stored nothing), note where each id is written ([`FirstLoad`]).
    /// When rows are stored, any index an interrupted load left deferred is
    /// built first: later writes look ids up.
    async fn defer_transaction_indexes(&self) -> Result<bool, StoreError> {
        let fail = self.fail("deferring the transaction indexes");
        let mut state = self.first_load.lock().await;
        let mut db = self.write_tx().await?;
        let stored: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM transactions)")
            .fetch_one(&mut *db)
            .await
            .map_err(&fail)?;
        if stored {
            drop(db);
            self.build_indexes_now().await?;
            if state.take().is_some() {
                self.writer_cache(WRITER_CACHE_KIB).await?;
            }
            return Ok(false);
        }
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' AND sql IS NOT NULL \
             ORDER BY name",
        )
        .fetch_all(&mut *db)
        .await
        .map_err(&fail)?;
        for (name, sql) in &indexes {
            sqlx::query("INSERT INTO deferred_indexes (name, sql) VALUES (?, ?)")
                .bind(name)
                .bind(sql)
                .execute(&mut *db)
                .await
                .map_err(&fail)?;
            sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
                .execute(&mut *db)
                .await
                .map_err(&fail)?;
        }
        let deferred: Vec<String> =
            sqlx::query_scalar("SELECT name FROM deferred_indexes").fetch_all(&mut *db).await.map_err(&fail)?;
        db.commit().await.map_err(&fail)?;
        if deferred.iter().any(|n| n == ID_INDEX) {
            self.writer_cache(FIRST_LOAD_CACHE_KIB).await?;
            *state = Some(FirstLoad::new(1));
        }
        Ok(!deferred.is_empty())
    }

    /// [`TransactionStore::build_deferred_indexes`](crate::TransactionStore::build_deferred_indexes):
    /// build every deferred index ([`SqliteStore::build_indexes_now`]) and
    /// end the first load's id tracking.
    async fn build_transaction_indexes(&self) -> Result<u64, StoreError> {
        let mut state = self.first_load.lock().await;
        let built = self.build_indexes_now().await?;
        if state.take().is_some() {
            self.writer_cache(WRITER_CACHE_KIB).await?;
        }
        Ok(built)
    }

    /// Set the writer connection's page cache (`PRAGMA cache_size`, KiB
    /// when negative); a smaller one releases the pages beyond it.
    async fn writer_cache(&self, kib: &str) -> Result<(), StoreError> {
        sqlx::query(&format!("PRAGMA cache_size = {kib}"))
            .execute(&self.writer)
            .await
            .map_err(self.fail("sizing the writer's page cache"))?;
        Ok(())
    }

    /// Run each stored definition (as `CREATE [UNIQUE] INDEX IF NOT
    /// EXISTS`) and forget it, one write transaction per index (so that a
    /// lease heartbeat waiting for the write lock waits for one index at
    /// most). The caller holds the [`FirstLoad`] lock: no page is written
    /// while the id index is half there.
    async fn build_indexes_now(&self) -> Result<u64, StoreError> {
        let fail = self.fail("building the deferred transaction indexes");
        let mut built = 0;
        loop {
            // On a connection of the pool, not the writer: its small page
            // cache bounds the sorter's memory (the rest spills to a
            // temporary file), where the writer's 64 MiB cache and
            // in-memory temporary storage would hold the whole sort (about
            // 50 MB more peak RSS at 1,000,000 rows).
            let mut db = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(&fail)?;
            sqlx::query(SORT_THREADS).execute(&mut *db).await.map_err(&fail)?;
            let next: Option<(String, String)> =
                sqlx::query_as("SELECT name, sql FROM deferred_indexes ORDER BY name LIMIT 1")
                    .fetch_optional(&mut *db)
                    .await
                    .map_err(&fail)?;
            let Some((name, sql)) = next else {
                return Ok(built);
            };
            let sql = match (sql.strip_prefix("CREATE INDEX "), sql.strip_prefix("CREATE UNIQUE INDEX ")) {
                (Some(rest), _) => format!("CREATE INDEX IF NOT EXISTS {rest}"),
                (_, Some(rest)) => format!("CREATE UNIQUE INDEX IF NOT EXISTS {rest}"),
                _ => sql,
            };
            sqlx::query(&sql).execute(&mut *db).await.map_err(&fail)?;
            sqlx::query("DELETE FROM deferred_indexes WHERE name = ?")
                .bind(&name)
                .execute(&mut *db)
                .await
                .map_err(&fail)?;
            db.commit().await.map_err(&fail)?;
            built += 1;
        }
    }

    /// The first load's lock, held while pages are written.
    pub(crate) async fn first_load(&self) -> FirstLoadGuard<'_> {
        self.first_load.lock().await
    }

    /// [`SqliteStore::stored_versions`], or the first load's lookup by
    /// rowid while it has the id index deferred.
    pub(crate) async fn stored_versions_in(
        conn: &mut SqliteConnection,
        ids: &[&str],
        load: &mut FirstLoadGuard<'_>,
    ) -> Result<Vec<(String, Stored)>, sqlx::Error> {
        match load.as_mut() {
            Some(load) => load.stored_versions(conn, ids).await,
            None => Self::stored_versions(conn, ids).await,
        }
    }

    /// [`SqliteStore::upsert_transactions`], or the first load's writes by
    /// rowid while it has the id index deferred.
    pub(crate) async fn upsert_transactions_in(
        conn: &mut SqliteConnection,
        run: RunId,
        inserts: Vec<TxRow>,
        updates: Vec<TxRow>,
        load: &mut FirstLoadGuard<'_>,
    ) -> Result<(), sqlx::Error> {
        match load.as_mut() {
            Some(load) => load.upsert(conn, run, inserts, updates).await,
            None => Self::upsert_transactions(conn, run, inserts, updates).await,
        }
    }

    /// The stored fingerprint, `updated_at` and supersession of those of
    /// `ids` that are stored. Each `IN` list's rows come back as one JSON
    /// array (one result row instead of one per id: each row is a message
    /// from sqlx's SQLite worker thread).
    pub(crate) async fn stored_versions(
        conn: &mut SqliteConnection,
        ids: &[&str],
    ) -> Result<Vec<(String, Stored)>, sqlx::Error> {
        static SQL: [OnceLock<String>; SELECT_SIZES.len()] = [const { OnceLock::new() }; SELECT_SIZES.len()];
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SELECT_SIZES[0]) {
            let slot = SELECT_SIZES.iter().rposition(|&n| n >= chunk.len()).expect("chunks fit the largest size");
            let size = SELECT_SIZES[slot];
            let sql = SQL[slot].get_or_init(|| {
                format!(
                    "SELECT json_group_array(json_array(id, fingerprint, updated_at, superseded_by IS NOT NULL)) \
                     FROM transactions WHERE id IN ({})",
                    vec!["?"; size].join(", ")
                )
            });
            let mut args = SqliteArguments::default();
            for i in 0..size {
                args.add(chunk[i.min(chunk.len() - 1)]).map_err(sqlx::Error::Encode)?;
            }
            let json: String = sqlx::query_scalar_with(sql, args).fetch_one(&mut *conn).await?;
            let rows: Vec<(String, String, Option<String>, i64)> =
                serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))?;
            out.extend(rows.into_iter().map(|(id, fingerprint, updated_at, superseded)| {
                (id, Stored { fingerprint, updated_at, superseded: superseded != 0 })
            }));
        }
        Ok(out)
    }

    /// Write `inserts` (ids not stored: the write lock, held since `BEGIN
    /// IMMEDIATE`, keeps it so, so a plain `INSERT`) and `updates` (`INSERT
    /// … ON CONFLICT DO UPDATE`, guarded by `updated_at`) as written by
    /// `run`, in multi-row statements of a few fixed sizes.
    ///
    /// Both are `INSERT OR FAIL`: a constraint error stops the statement
    /// without undoing the rows it already wrote, so SQLite keeps no
    /// statement journal (a copy of every page a multi-row statement
    /// touches: 10–20 % of a first write's time here). Nothing partial is
    /// kept: the error ends the whole write transaction, which rolls back.
    pub(crate) async fn upsert_transactions(
        conn: &mut SqliteConnection,
        run: RunId,
        inserts: Vec<TxRow>,
        updates: Vec<TxRow>,
    ) -> Result<(), sqlx::Error> {
        static INSERT: Statements = [const { OnceLock::new() }; UPSERT_SIZES.len()];
        static UPSERT: Statements = [const { OnceLock::new() }; UPSERT_SIZES.len()];
        for (rows, statements, conflict) in [(inserts, &INSERT, ""), (updates, &UPSERT, TX_UPDATE)] {
            let values = |size: usize| {
                let one = format!("({})", vec!["?"; 30].join(", "));
                format!(
                    "INSERT OR FAIL INTO transactions ({TX_COLUMNS}) VALUES {}{conflict}",
                    vec![one; size].join(", ")
                )
            };
            execute_batched(conn, rows, statements, values, |args, r| {
                let pending = r.status == "pending";
                bind_row(args, r, run, run, pending)
            })
            .await?;
        }
        Ok(())
    }

    /// Take the one-sync-at-a-time lock: an exclusive lock on `PATH.lock`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds it.
    pub async fn lock(&self) -> Result<SyncLock, StoreError> {
        SyncLock::file(&self.path.with_extension(format!(
            "{}lock",
            self.path.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()
        )))
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// One multi-row statement's SQL per size of [`UPSERT_SIZES`], built once.
pub(crate) type Statements = [OnceLock<String>; UPSERT_SIZES_LEN];

/// Execute `rows` as multi-row statements of the sizes of [`UPSERT_SIZES`]
/// (so a few prepared statements serve every page): `sql(size)` is the
/// statement for `size` rows, kept in `statements`, and `bind` adds one
/// row's arguments.
pub(crate) async fn execute_batched(
    conn: &mut SqliteConnection,
    rows: Vec<TxRow>,
    statements: &'static Statements,
    sql: impl Fn(usize) -> String,
    mut bind: impl FnMut(&mut SqliteArguments<'static>, TxRow) -> Result<(), sqlx::error::BoxDynError>,
) -> Result<(), sqlx::Error> {
    let mut rows = rows.into_iter();
    for size in batches(rows.len(), &UPSERT_SIZES) {
        let slot = UPSERT_SIZES.iter().position(|&n| n == size).expect("a size of UPSERT_SIZES");
        let statement = statements[slot].get_or_init(|| sql(size));
        let mut args = SqliteArguments::default();
        args.reserve(size * 33, 0);
        for r in rows.by_ref().take(size) {
            bind(&mut args, r).map_err(sqlx::Error::Encode)?;
        }
        sqlx::query_with(statement, args).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Bind a row's 30 upsert columns, in `TX_COLUMNS` order (moving its text
/// into the arguments rather than copying it); `seen_pending` last.
pub(crate) fn bind_row(
    args: &mut SqliteArguments<'_>,
    r: TxRow,
    first_run: RunId,
    last_run: RunId,
    seen_pending: bool,
) -> Result<(), sqlx::error::BoxDynError> {
    args.add(r.id)?;
    args.add(r.source)?;
    args.add(r.source_account_id)?;
    args.add(r.source_transaction_id)?;
    args.add(r.status)?;
    args.add(r.booking_date)?;
    args.add(r.amount_minor)?;
    args.add(r.currency)?;
    args.add(r.description)?;
    args.add(r.merchant_name)?;
    args.add(r.mcc)?;
    args.add(r.category)?;
    args.add(r.category_source)?;
    args.add(r.kind)?;
    args.add(r.memo_only)?;
    args.add(r.transacted_at)?;
    args.add(r.posted_at)?;
    args.add(r.updated_at)?;
    args.add(r.source_status)?;
    args.add(r.source_type)?;
    args.add(r.external_id)?;
    args.add(r.group_id)?;
    args.add(r.source_categories)?;
    args.add(r.memo)?;
    args.add(r.check_number)?;
    args.add(r.source_fields)?;
    args.add(r.fingerprint)?;
    args.add(first_run)?;
    args.add(last_run)?;
    args.add(seen_pending)
}

crate::backend::store_impl!(SqliteStore, Sqlite);
crate::leases_sql::leases_impl!(SqliteStore, Sqlite);

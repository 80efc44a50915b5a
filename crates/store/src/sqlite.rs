//! The SQLite store: one file, WAL, a busy timeout, `BEGIN IMMEDIATE` for
//! every read-then-write transaction (so concurrent writers wait for the
//! lock instead of failing with SQLITE_BUSY mid-transaction).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::lock::SyncLock;

/// The embedded default store.
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    pub(crate) name: String,
    path: PathBuf,
}

impl SqliteStore {
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
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(fail("opening"))?;
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
        Ok(SqliteStore { pool, name, path })
    }

    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| StoreError::Database {
            database: self.name.clone(),
            operation: "starting a write transaction",
            cause: e.to_string(),
        })
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

crate::backend::store_impl!(SqliteStore, Sqlite);

//! The PostgreSQL store, for several workers sharing one database. One sync
//! at a time per database is enforced with a session advisory lock.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgPool, Postgres};

use crate::lock::SyncLock;

/// The scale-out store.
pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) name: String,
    options: PgConnectOptions,
    schema: Option<String>,
}

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
        let search_path = schema.map(|s| format!("SET search_path TO \"{s}\""));
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    if let Some(sql) = search_path {
                        conn.execute(sql.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(fail("connecting"))?;
        let migrator = crate::migrations::migrator(crate::migrations::POSTGRES).await.map_err(|e| {
            StoreError::Database { database: name.clone(), operation: "migrating", cause: e.to_string() }
        })?;
        check_schema_version::<Postgres>(&pool, &migrator, &name, "SELECT MAX(version) FROM _sqlx_migrations").await?;
        migrator.run(&pool).await.map_err(|e| StoreError::Database {
            database: name.clone(),
            operation: "migrating",
            cause: e.to_string(),
        })?;
        Ok(PgStore { pool, name, options, schema: schema.map(str::to_owned) })
    }

    /// A write transaction (row-level locking does the rest in PostgreSQL).
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(|e| StoreError::Database {
            database: self.name.clone(),
            operation: "starting a write transaction",
            cause: e.to_string(),
        })
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

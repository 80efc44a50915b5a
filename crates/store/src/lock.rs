//! One sync per database at a time.

use std::fs::File;
use std::path::Path;

use crate::error::StoreError;

/// Held while a sync or backfill runs; released on drop (or process exit,
/// kill -9 included: the OS drops file locks and PostgreSQL drops the
/// session's advisory locks with the connection).
pub enum SyncLock {
    /// An exclusive lock on a file beside the SQLite database.
    File(File),
    /// A PostgreSQL session advisory lock on its own connection.
    Postgres(sqlx::PgConnection),
}

impl SyncLock {
    pub(crate) fn file(path: &Path) -> Result<SyncLock, StoreError> {
        let file =
            File::options().create(true).truncate(false).write(true).open(path).map_err(|e| StoreError::Database {
                database: path.display().to_string(),
                operation: "creating the lock file",
                cause: e.to_string(),
            })?;
        match file.try_lock() {
            Ok(()) => Ok(SyncLock::File(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(format!(
                "{}: another bankpipe sync holds this database's lock; try again when it has finished",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Database {
                database: path.display().to_string(),
                operation: "locking",
                cause: e.to_string(),
            }),
        }
    }
}

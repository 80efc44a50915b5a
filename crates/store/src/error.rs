//! Store errors.

/// Why the store could not do something. Messages name the database
/// (path or host/db, never a password) and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("{database}: {operation}: {cause}")]
    Database { database: String, operation: &'static str, cause: String },
    /// The database was migrated by a newer bankpipe.
    #[error("{database}: schema version {found} is newer than this bankpipe supports ({supported}); upgrade bankpipe")]
    NewerSchema { database: String, found: i64, supported: i64 },
    /// A stored value cannot be read back (corruption or manual edits).
    #[error("{database}: transaction {id}: stored {field} = {value:?} is invalid")]
    Corrupt { database: String, id: String, field: &'static str, value: String },
    /// An amount cannot be stored exactly (overflows i64 minor units).
    #[error("transaction {id}: {cause}")]
    Money { id: String, cause: String },
    /// Configuration problem (bad URL).
    #[error("{0}")]
    Config(String),
    /// Another sync holds the lock.
    #[error("{0}")]
    Locked(String),
    /// A write made under a lease found the lease no longer held (expired
    /// and perhaps claimed by another worker): nothing was written.
    #[error("the lease on {unit} held by {owner} expired or was taken over; its work was not committed")]
    LeaseLost { unit: String, owner: String },
    /// Workers sharing one database run different configurations.
    #[error("{0}")]
    MixedConfig(String),
    /// Raised by a caller's callback.
    #[error("{0}")]
    Callback(String),
}

//! The schema migrations, embedded in the binary with `include_str!` (no
//! `sqlx::migrate!` proc macro: it compiled the whole sqlx driver stack a
//! second time for the build host, SQLite's C code included).
//!
//! Each backend's list is `(version, description, SQL)` in version order,
//! the same files under `crates/store/migrations/{sqlite,postgres}/`. sqlx
//! records each applied migration's SHA-384 checksum in `_sqlx_migrations`
//! and refuses a database whose applied migration no longer matches: an
//! edited migration file would lock every existing user out. The test
//! `embedded_checksums_are_pinned` pins every checksum, so such an edit fails
//! CI instead; schema changes go in a new numbered file.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

/// The SQLite schema, in version order.
pub(crate) const SQLITE: &[Embedded] = &[
    (1, "initial", include_str!("../migrations/sqlite/0001_initial.sql")),
    (2, "sink accounts", include_str!("../migrations/sqlite/0002_sink_accounts.sql")),
    (3, "rate budgets", include_str!("../migrations/sqlite/0003_rate_budgets.sql")),
    (4, "quarantine record id", include_str!("../migrations/sqlite/0004_quarantine_record_id.sql")),
    (5, "delivery ledger", include_str!("../migrations/sqlite/0005_delivery_ledger.sql")),
    (6, "source sweeps", include_str!("../migrations/sqlite/0006_source_sweeps.sql")),
    (7, "transfer legs", include_str!("../migrations/sqlite/0007_transfer_legs.sql")),
    (8, "source daily totals", include_str!("../migrations/sqlite/0008_source_daily_totals.sql")),
    (9, "export order", include_str!("../migrations/sqlite/0009_export_order.sql")),
    (10, "work leases", include_str!("../migrations/sqlite/0010_work_leases.sql")),
    (11, "shared rate budgets", include_str!("../migrations/sqlite/0011_shared_rate_budgets.sql")),
    (12, "deferred indexes", include_str!("../migrations/sqlite/0012_deferred_indexes.sql")),
    (13, "deferrable id index", include_str!("../migrations/sqlite/0013_deferrable_id_index.sql")),
];

/// The PostgreSQL schema, in version order.
pub(crate) const POSTGRES: &[Embedded] = &[
    (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
    (2, "sink accounts", include_str!("../migrations/postgres/0002_sink_accounts.sql")),
    (3, "rate budgets", include_str!("../migrations/postgres/0003_rate_budgets.sql")),
    (4, "quarantine record id", include_str!("../migrations/postgres/0004_quarantine_record_id.sql")),
    (5, "delivery ledger", include_str!("../migrations/postgres/0005_delivery_ledger.sql")),
    (6, "source sweeps", include_str!("../migrations/postgres/0006_source_sweeps.sql")),
    (7, "transfer legs", include_str!("../migrations/postgres/0007_transfer_legs.sql")),
    (8, "source daily totals", include_str!("../migrations/postgres/0008_source_daily_totals.sql")),
    (9, "export order", include_str!("../migrations/postgres/0009_export_order.sql")),
    (10, "work leases", include_str!("../migrations/postgres/0010_work_leases.sql")),
    (11, "shared rate budgets", include_str!("../migrations/postgres/0011_shared_rate_budgets.sql")),
    (12, "deferred indexes", include_str!("../migrations/postgres/0012_deferred_indexes.sql")),
    (13, "deferrable id index", include_str!("../migrations/postgres/0013_deferrable_id_index.sql")),
];

/// A [`MigrationSource`] over an embedded list.
#[derive(Debug)]
struct Source(&'static [Embedded]);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move { Ok(migrations(self.0)) })
    }
}

/// The list as sqlx migrations (checksums computed from the SQL).
pub(crate) fn migrations(list: &'static [Embedded]) -> Vec<Migration> {
    list.iter()
        .map(|&(version, description, sql)| {
            Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, Cow::Borrowed(sql), false)
        })
        .collect()
}

/// A migrator over an embedded list (takes the database's migration lock
/// while it runs, so simultaneous starts apply each migration once).
///
/// # Errors
/// Never in practice: the embedded source cannot fail to resolve.
pub(crate) async fn migrator(list: &'static [Embedded]) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(list)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// SHA-384 of every applied-in-the-field migration. Editing one of these
    /// files breaks every existing database (sqlx refuses a changed
    /// checksum): add a new numbered migration instead. A new migration
    /// adds its line here.
    #[test]
    fn embedded_checksums_are_pinned() {
        let pinned: [(&[Embedded], &[&str]); 2] = [
            (
                SQLITE,
                &[
                    "fb4212b33e62cb990a3e855bdfcdf598bba5e6d2109989d9be6fb24bd72f3a896d43184778b9d9e4770a8fa0f96f5adb",
                    "6b543dd5e3f33b3d97bd04a1a5838217c31fde56c4d91f0b3044332389010ea6bda30b6531ff55bc6e309fa2b9abf7e3",
                    "98ea32d0491eb3a38c2599c84c7a69e1d126c85dd76d97cbd3dabaa5b44f6072a3bb1a34ee65724d2ac51763631d89a5",
                    "837ccfcb96d40e618724517fd54d61fad80372ae0766338c0019a5de0010c068a3337898e0bdbaa46665d2b48429364c",
                    "4c5a9f7f2c4b835d2b58a042e030e12157039f7277b8d5e9b0edbb984187da8c0ca7fa9f06d9508dd22b9c14b1b2bae5",
                    "c9141001b5c0afbab2cc5dd1e0e759e6d51d47d1c3d00a65f6f234ec37c23f42eda7043d46dc47b8bb03c4065d01439f",
                    "9b8dde87e8a8d5786271e230951e04c2d93502afa60300374692aa445739b762cf3a4216e97270b7f8ddc89a302e5122",
                    "d89716f4d7d8a736fd9c72211e466be8b46a95e636aa3fab34305e8b10989060d6f63cadd794e8fc902148b344d8a9f2",
                    "78cd5428df0f690b50ac4247ff096a92482d8321a98831ecc873b730f188468369743290bcbbc09af31b6b31a55d26d5",
                    "98c479e8eafa184d96489ef18754d1d41460bc8f2fcd87e33f2a9bc50e352c36cdd589146625c3ac45282ddfd0005b72",
                    "46302100b7581bf40e9df552dde93e07de3527df670e1fefd70e4f7097d939eba77049087be3dcf7fafb4ebd6b2391fc",
                    "7b4fecb3d4079e1d4bbc940b506ca3c5cdb2f0f990c7f6d65205482bcc21f4944f66462231d175d50726911030651a7d",
                    "fe866a999ccc38a9d0378f611b0007d5ea091f23c734bb029d6b7a905af419519325c3f675b5cc55a142546a5e0beb00",
                ],
            ),
            (
                POSTGRES,
                &[
                    "2f52a6e78d7b3e127d48fac25f84147418e7718f0e2e3fb5573b5b9125e6e4d11bd61352d6d11a2f83f495f21d6693fd",
                    "6b543dd5e3f33b3d97bd04a1a5838217c31fde56c4d91f0b3044332389010ea6bda30b6531ff55bc6e309fa2b9abf7e3",
                    "98ea32d0491eb3a38c2599c84c7a69e1d126c85dd76d97cbd3dabaa5b44f6072a3bb1a34ee65724d2ac51763631d89a5",
                    "837ccfcb96d40e618724517fd54d61fad80372ae0766338c0019a5de0010c068a3337898e0bdbaa46665d2b48429364c",
                    "e64aac5abec48f9abfb1580a9876eddb095dcda88062259d2246aa171ce7bff4bc5cb03ec74cb6be17c06097632f0726",
                    "2df8e47df7c4302610477e675e2f8832a9669a4a90cdeddcb6f0b092b1551ef75a525030978db0bdf03939c14c39d958",
                    "9b8dde87e8a8d5786271e230951e04c2d93502afa60300374692aa445739b762cf3a4216e97270b7f8ddc89a302e5122",
                    "d89716f4d7d8a736fd9c72211e466be8b46a95e636aa3fab34305e8b10989060d6f63cadd794e8fc902148b344d8a9f2",
                    "78cd5428df0f690b50ac4247ff096a92482d8321a98831ecc873b730f188468369743290bcbbc09af31b6b31a55d26d5",
                    "74b9a8df58e76eeb840b62e1cfc7a4f64c8c9fb6d4dbde20ca106ccfa4a54fcb527050d02ea7ddd38446b65cb3a7808c",
                    "6909d48ac9929e219ea9f49cb9142457973f4574eaefdedb369d7feb9cd680090544092a44e0e2bea45c749287fe8ce5",
                    "c39f7974125a92d9feb728c596723f6d050e9320c2675a119fb0e68bb6316e4809b83c19ce0415da050538ca5767cc69",
                    "62aadbee510be953cd25998074f97be89a9ed5050c9082a47b631adb6b8fb64d81c4fb259e3c4b32869e0d8499eae30b",
                ],
            ),
        ];
        for (list, sums) in pinned {
            assert_eq!(list.len(), sums.len(), "a migration was added or removed: pin its checksum here");
            for (m, want) in migrations(list).iter().zip(sums) {
                assert_eq!(
                    hex(&m.checksum),
                    *want,
                    "migration {} ({}) changed after release",
                    m.version,
                    m.description
                );
            }
        }
    }

    /// Versions numbered aside for work on another branch: the lists may
    /// skip them until that work lands (sqlx applies a lower version added
    /// later like any other missing one). 10: the workers' leases.
    const RESERVED: &[i64] = &[10];

    /// Versions go up from 1 with no gap other than a [`RESERVED`] one,
    /// the same in both backends, and the directories hold exactly the
    /// embedded files (a new file that is not embedded would never run).
    #[test]
    fn every_migration_file_is_embedded() {
        let numbers = |list: &[Embedded]| list.iter().map(|m| m.0).collect::<Vec<i64>>();
        assert_eq!(numbers(SQLITE), numbers(POSTGRES), "migration numbers stay aligned across backends");
        for (list, dir) in [(SQLITE, "sqlite"), (POSTGRES, "postgres")] {
            let versions = numbers(list);
            let last = versions.last().copied().unwrap_or(0);
            let expected: Vec<i64> = (1..=last).filter(|v| !RESERVED.contains(v) || versions.contains(v)).collect();
            assert_eq!(versions, expected);
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
            let files = std::fs::read_dir(&path)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
                .count();
            assert_eq!(files, list.len(), "{}: every .sql file must be listed in migrations.rs", path.display());
        }
    }
}

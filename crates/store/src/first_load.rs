//! A SQLite first load without the id index (issue #12).
//!
//! A `sync` or `backfill` that starts on an empty `transactions` table
//! defers every index of it, the unique index on `id` included
//! ([`TransactionStore::defer_indexes`](crate::TransactionStore::defer_indexes)):
//! the random XXH3 keys of that index made every commit of a bulk load
//! rewrite most of its leaves, the largest cost of a 1,000,000-row load.
//!
//! Writes stay upserts meanwhile. The load gives each row it inserts an
//! explicit rowid and remembers it by id ([`FirstLoad`]); an id written
//! before (a page fetched again, a pending row seen again: 2.5 % of the
//! rows of the upsert bench's generated pages) is looked up by rowid and
//! replaced, keeping what an upsert keeps (`first_run`, `seen_pending`,
//! the dedupe decisions).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use sqlx::{Arguments, SqliteConnection};

use crate::backend::Stored;
use crate::backend::TX_COLUMNS;
use crate::rows::TxRow;
use crate::sqlite::{bind_row, execute_batched, Statements, UPSERT_SIZES_LEN};
use crate::types::RunId;

/// The ids a first load wrote, and where, while the id index is deferred.
///
/// Invariant: every row stored in `transactions` was written through this
/// load and is found by [`FirstLoad::rowid_of`] its id (the table was empty
/// when the load began, and the sync lock keeps other writers out). The
/// converse need not hold: a write that fails after noting its rowids
/// leaves entries pointing at no row (rowids are never given twice), and
/// two ids may share their low 64 bits; the lookup compares ids, so such
/// an id is simply new again.
pub(crate) struct FirstLoad {
    /// Low 64 bits of an id (its last 16 hex digits) → rowid: 16 bytes an
    /// id, about 36 MB at 1,000,000 rows.
    rowids: HashMap<u64, i64>,
    /// Ids whose low 64 bits an earlier id had taken → rowid (a collision,
    /// about one load in 10^7 at 1,000,000 rows; or an id noted by a write
    /// that failed).
    taken: HashMap<String, i64>,
    /// The rowid the next inserted row gets.
    next_rowid: i64,
    /// What the current page's stored rows keep through a replace, by id
    /// (filled by [`FirstLoad::stored_versions`], taken by
    /// [`FirstLoad::upsert`]).
    looked_up: HashMap<String, Kept>,
}

/// The columns of a stored row an upsert does not overwrite.
struct Kept {
    rowid: i64,
    first_run: i64,
    seen_pending: bool,
    superseded_by: Option<String>,
    duplicate_of: Option<String>,
}

/// The map key of an id: its low 64 bits (ids are 32 hex digits; anything
/// else is hashed, and still compared in full by the lookup).
fn key(id: &str) -> u64 {
    id.get(16..)
        .filter(|_| id.len() == 32)
        .and_then(|low| u64::from_str_radix(low, 16).ok())
        .unwrap_or_else(|| xxhash_rust::xxh3::xxh3_64(id.as_bytes()))
}

impl FirstLoad {
    /// A load into a table whose next rowid is `next_rowid`.
    pub(crate) fn new(next_rowid: i64) -> FirstLoad {
        FirstLoad { rowids: HashMap::new(), taken: HashMap::new(), next_rowid, looked_up: HashMap::new() }
    }

    /// Where `id` was written, if this load wrote it.
    fn rowid_of(&self, id: &str) -> Option<i64> {
        self.taken.get(id).or_else(|| self.rowids.get(&key(id))).copied()
    }

    /// The stored versions of those of `ids` that are stored (as
    /// [`SqliteStore::stored_versions`](crate::SqliteStore) gives them),
    /// read by rowid; what a replace keeps is noted for [`FirstLoad::upsert`].
    pub(crate) async fn stored_versions(
        &mut self,
        conn: &mut SqliteConnection,
        ids: &[&str],
    ) -> Result<Vec<(String, Stored)>, sqlx::Error> {
        self.looked_up.clear();
        let rowids: Vec<i64> = ids.iter().filter_map(|id| self.rowid_of(id)).collect();
        if rowids.is_empty() {
            return Ok(Vec::new());
        }
        let json: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(rowid, id, fingerprint, updated_at, first_run, seen_pending, \
             superseded_by, duplicate_of)) FROM transactions WHERE rowid IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(&rowids).expect("integers serialize"))
        .fetch_one(&mut *conn)
        .await?;
        type Found = (i64, String, String, Option<String>, i64, i64, Option<String>, Option<String>);
        let found: Vec<Found> = serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))?;
        let asked: HashSet<&str> = ids.iter().copied().collect();
        let mut out = Vec::with_capacity(found.len());
        for (rowid, id, fingerprint, updated_at, first_run, seen_pending, superseded_by, duplicate_of) in found {
            // A rowid noted for one id may hold another's row (see the
            // invariant): only the id itself counts.
            if self.rowid_of(&id) != Some(rowid) || !asked.contains(id.as_str()) {
                continue;
            }
            let superseded = superseded_by.is_some();
            self.looked_up.insert(
                id.clone(),
                Kept { rowid, first_run, seen_pending: seen_pending != 0, superseded_by, duplicate_of },
            );
            out.push((id, Stored { fingerprint, updated_at, superseded }));
        }
        Ok(out)
    }

    /// Write `inserts` at new rowids (noted by id) and `updates` over the
    /// rows [`FirstLoad::stored_versions`] found (`INSERT OR REPLACE` at
    /// the same rowid, keeping `first_run`, `seen_pending` and the dedupe
    /// decisions, as the upsert's `ON CONFLICT` clause keeps them). The
    /// `updated_at` guard was applied by the caller, under the write lock.
    pub(crate) async fn upsert(
        &mut self,
        conn: &mut SqliteConnection,
        run: RunId,
        inserts: Vec<TxRow>,
        updates: Vec<TxRow>,
    ) -> Result<(), sqlx::Error> {
        static INSERT: Statements = [const { OnceLock::new() }; UPSERT_SIZES_LEN];
        static REPLACE: Statements = [const { OnceLock::new() }; UPSERT_SIZES_LEN];
        let insert = |size: usize| {
            let one = format!("({})", vec!["?"; 31].join(", "));
            format!("INSERT OR FAIL INTO transactions (rowid, {TX_COLUMNS}) VALUES {}", vec![one; size].join(", "))
        };
        execute_batched(conn, inserts, &INSERT, insert, |args, r| {
            let rowid = self.next_rowid;
            self.next_rowid += 1;
            match self.rowids.entry(key(&r.id)) {
                Entry::Vacant(e) => {
                    e.insert(rowid);
                }
                // The earlier id keeps the entry; this one is found by name.
                Entry::Occupied(_) => {
                    self.taken.insert(r.id.clone(), rowid);
                }
            }
            args.add(rowid)?;
            let pending = r.status == "pending";
            bind_row(args, r, run, run, pending)
        })
        .await?;
        let replace = |size: usize| {
            let one = format!("({})", vec!["?"; 33].join(", "));
            format!(
                "INSERT OR REPLACE INTO transactions (rowid, {TX_COLUMNS}, superseded_by, duplicate_of) VALUES {}",
                vec![one; size].join(", ")
            )
        };
        execute_batched(conn, updates, &REPLACE, replace, |args, r| {
            let kept = self
                .looked_up
                .remove(&r.id)
                .ok_or_else(|| format!("first load: an update of {} that was not looked up", r.id))?;
            args.add(kept.rowid)?;
            let pending = kept.seen_pending || r.status == "pending";
            bind_row(args, r, kept.first_run, run, pending)?;
            args.add(kept.superseded_by)?;
            args.add(kept.duplicate_of)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_low_64_bits_of_an_id() {
        assert_eq!(key("0123456789abcdef00000000000000ff"), 0xff);
        assert_eq!(key("ffffffffffffffff0000000000000001"), key("00000000000000000000000000000001"));
        // Not an id: hashed, never a panic.
        assert_eq!(key("x"), xxhash_rust::xxh3::xxh3_64(b"x"));
        assert_eq!(key("é0000000000000000000000000000000"), key("é0000000000000000000000000000000"));
    }

    #[test]
    fn a_taken_key_is_found_by_name() {
        let mut load = FirstLoad::new(1);
        let (a, b) = ("aaaaaaaaaaaaaaaa0000000000000001", "bbbbbbbbbbbbbbbb0000000000000001");
        load.rowids.insert(key(a), 1);
        load.taken.insert(b.to_owned(), 2);
        assert_eq!((load.rowid_of(a), load.rowid_of(b)), (Some(1), Some(2)));
        assert_eq!(load.rowid_of("cccccccccccccccc0000000000000002"), None);
    }
}

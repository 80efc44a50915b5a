//! Dedupe rule 1 (DESIGN §4): the same identity seen twice is one row, and
//! the occurrence with the newest `updated_at` wins.
//!
//! Built for streaming: a first pass [`IdentityIndex::observe`]s every
//! occurrence (id, `updated_at`, ordinal) in about 40 bytes per identity; a
//! second pass keeps only the occurrence for which
//! [`IdentityIndex::is_winner`] is true. No whole-history rows are held.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bankpipe_model::CanonicalId;
use chrono::{DateTime, Utc};

/// Canonical ids are already uniform hashes: hash by their low 64 bits.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Winner per identity: `(updated_at as µs since epoch, or i64::MIN when the
/// source gave none; ordinal of the occurrence)`.
#[derive(Default)]
pub struct IdentityIndex {
    winners: HashMap<u128, (i64, u64), BuildHasherDefault<IdHasher>>,
    observations: u64,
}

impl IdentityIndex {
    /// An empty index.
    pub fn new() -> IdentityIndex {
        IdentityIndex::default()
    }

    /// Record an occurrence. `ordinal` must increase with every call (the
    /// position of the occurrence in the input). The newest `updated_at`
    /// wins; on a tie (or when neither has one) the later occurrence wins,
    /// since a later page was fetched later.
    pub fn observe(&mut self, id: CanonicalId, updated_at: Option<DateTime<Utc>>, ordinal: u64) {
        self.observations += 1;
        let stamp = updated_at.map_or(i64::MIN, |t| t.timestamp_micros());
        self.winners
            .entry(id.as_u128())
            .and_modify(|w| {
                if stamp >= w.0 {
                    *w = (stamp, ordinal);
                }
            })
            .or_insert((stamp, ordinal));
    }

    /// `true` when the occurrence at `ordinal` is the one kept for `id`.
    pub fn is_winner(&self, id: CanonicalId, ordinal: u64) -> bool {
        self.winners.get(&id.as_u128()).is_some_and(|w| w.1 == ordinal)
    }

    /// Distinct identities seen.
    pub fn unique(&self) -> u64 {
        self.winners.len() as u64
    }

    /// Occurrences dropped as re-reads of an identity already kept.
    pub fn duplicates(&self) -> u64 {
        self.observations - self.unique()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn newest_updated_at_wins_regardless_of_order() {
        let a = CanonicalId::for_transaction("truv", "acc", "1");
        let mut ix = IdentityIndex::new();
        ix.observe(a, t("2024-01-02T00:00:00Z"), 0);
        ix.observe(a, t("2024-01-01T00:00:00Z"), 1);
        assert!(ix.is_winner(a, 0));
        assert!(!ix.is_winner(a, 1));
        assert_eq!(ix.duplicates(), 1);
    }

    #[test]
    fn ties_and_missing_stamps_keep_the_later_occurrence() {
        let a = CanonicalId::for_transaction("truv", "acc", "1");
        let mut ix = IdentityIndex::new();
        ix.observe(a, None, 0);
        ix.observe(a, None, 1);
        assert!(ix.is_winner(a, 1));
        ix.observe(a, t("2024-01-01T00:00:00Z"), 2);
        ix.observe(a, None, 3);
        assert!(ix.is_winner(a, 2), "a stamped occurrence beats an unstamped one");
    }

    #[test]
    fn distinct_twins_are_both_kept() {
        // Same day, amount and merchant but different source ids: two identities.
        let a = CanonicalId::for_transaction("truv", "acc", "coffee-1");
        let b = CanonicalId::for_transaction("truv", "acc", "coffee-2");
        let mut ix = IdentityIndex::new();
        ix.observe(a, t("2024-01-01T00:00:00Z"), 0);
        ix.observe(b, t("2024-01-01T00:00:00Z"), 1);
        assert!(ix.is_winner(a, 0) && ix.is_winner(b, 1));
        assert_eq!((ix.unique(), ix.duplicates()), (2, 0));
    }
}

//! Dedupe rule 1 (DESIGN §4): the same identity seen twice is one row, and
//! the occurrence with the newest `updated_at` wins.
//!
//! Built for streaming: a first pass [`IdentityIndex::observe`]s every
//! occurrence as `(id, updated_at, ordinal)` — 32 bytes, appended to one
//! vector, no hashing — then [`IdentityIndex::into_losers`] sorts it once
//! (O(n log n)) and keeps only the ordinals of the losing occurrences
//! ([`Losers`], 8 bytes per re-read). A second pass skips exactly those. No
//! whole-history rows are held.

use bankpipe_model::CanonicalId;
use chrono::{DateTime, Utc};

/// One occurrence: canonical id, `updated_at` in µs since the epoch (or
/// `i64::MIN` when the source gave none), ordinal in the input.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Occurrence {
    id: u128,
    stamp: i64,
    ordinal: u64,
}

/// Collects occurrences during the first pass.
#[derive(Default)]
pub struct IdentityIndex {
    seen: Vec<Occurrence>,
}

/// The ordinals of occurrences that lost to a newer sighting of the same
/// identity, sorted. Produced by [`IdentityIndex::into_losers`].
#[derive(Debug, Default)]
pub struct Losers(Vec<u64>);

impl Losers {
    /// `true` when the occurrence at `ordinal` is a superseded re-read.
    pub fn contains(&self, ordinal: u64) -> bool {
        self.0.binary_search(&ordinal).is_ok()
    }

    /// Number of superseded occurrences (the duplicates dropped).
    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    /// `true` when nothing was superseded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IdentityIndex {
    /// An empty index.
    pub fn new() -> IdentityIndex {
        IdentityIndex::default()
    }

    /// Record an occurrence. `ordinal` must be unique per occurrence (its
    /// position in the input).
    pub fn observe(&mut self, id: CanonicalId, updated_at: Option<DateTime<Utc>>, ordinal: u64) {
        let stamp = updated_at.map_or(i64::MIN, |t| t.timestamp_micros());
        self.seen.push(Occurrence { id: id.as_u128(), stamp, ordinal });
    }

    /// Decide every identity: the newest `updated_at` wins; on a tie (or
    /// when neither has one) the later occurrence wins, since a later page
    /// was fetched later. Returns the losers; the index memory is released.
    pub fn into_losers(mut self) -> Losers {
        // Sorted by (id, stamp, ordinal): the winner is the last of each id run.
        self.seen.sort_unstable();
        let mut losers: Vec<u64> = self.seen.windows(2).filter(|w| w[0].id == w[1].id).map(|w| w[0].ordinal).collect();
        drop(self.seen);
        losers.sort_unstable();
        Losers(losers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    fn kept(ix: IdentityIndex, n: u64) -> Vec<u64> {
        let losers = ix.into_losers();
        (0..n).filter(|o| !losers.contains(*o)).collect()
    }

    #[test]
    fn newest_updated_at_wins_regardless_of_order() {
        let a = CanonicalId::for_transaction("truv", "acc", "1");
        let mut ix = IdentityIndex::new();
        ix.observe(a, t("2024-01-02T00:00:00Z"), 0);
        ix.observe(a, t("2024-01-01T00:00:00Z"), 1);
        assert_eq!(kept(ix, 2), [0]);
        let mut ix = IdentityIndex::new();
        ix.observe(a, t("2024-01-01T00:00:00Z"), 0);
        ix.observe(a, t("2024-01-02T00:00:00Z"), 1);
        assert_eq!(kept(ix, 2), [1]);
    }

    #[test]
    fn ties_and_missing_stamps_keep_the_later_occurrence() {
        let a = CanonicalId::for_transaction("truv", "acc", "1");
        let mut ix = IdentityIndex::new();
        ix.observe(a, None, 0);
        ix.observe(a, None, 1);
        assert_eq!(kept(ix, 2), [1]);
        let mut ix = IdentityIndex::new();
        ix.observe(a, None, 0);
        ix.observe(a, t("2024-01-01T00:00:00Z"), 1);
        ix.observe(a, t("2024-01-01T00:00:00Z"), 2);
        ix.observe(a, None, 3);
        assert_eq!(kept(ix, 4), [2], "a stamped occurrence beats unstamped ones; the later of equals wins");
    }

    #[test]
    fn distinct_twins_are_both_kept() {
        // Same day, amount and merchant but different source ids: two identities.
        let a = CanonicalId::for_transaction("truv", "acc", "coffee-1");
        let b = CanonicalId::for_transaction("truv", "acc", "coffee-2");
        let mut ix = IdentityIndex::new();
        ix.observe(a, t("2024-01-01T00:00:00Z"), 0);
        ix.observe(b, t("2024-01-01T00:00:00Z"), 1);
        let losers = ix.into_losers();
        assert!(losers.is_empty());
    }

    #[test]
    fn many_identities_each_keep_exactly_one() {
        let mut ix = IdentityIndex::new();
        let mut ordinal = 0;
        for round in 0..3 {
            for i in 0..1000u32 {
                let id = CanonicalId::for_transaction("truv", "acc", &i.to_string());
                let stamp = chrono::DateTime::from_timestamp(1_700_000_000 + i64::from(round), 0);
                ix.observe(id, stamp, ordinal);
                ordinal += 1;
            }
        }
        let losers = ix.into_losers();
        assert_eq!(losers.len(), 2000);
        assert!((2000..3000).all(|o| !losers.contains(o)), "the newest round wins");
    }
}

//! Dedupe rule 1 (DESIGN §4): the same identity seen twice is one row, and
//! the occurrence with the newest `updated_at` wins.
//!
//! Built for streaming: a first pass [`IdentityIndex::observe_transaction`]s
//! every occurrence as `(id, updated_at, ordinal, content fingerprint)` — 40
//! bytes, appended to one vector, no hashing of ids — then
//! [`IdentityIndex::into_losers`] sorts it once (O(n log n)) and keeps only
//! the ordinals of the losing occurrences ([`Losers`], 8 bytes per re-read).
//! A second pass skips exactly those. No whole-history rows are held.
//!
//! **Conflicts are never resolved silently.** Two copies of one identity
//! with the same `updated_at` (or both without one) but different content
//! (amount, status, dates, description, …) cannot be ordered by the source's
//! own clock. The later occurrence still wins (deterministic: input order),
//! but the pair is a conflict: during the second pass the caller hands each
//! occurrence to [`Losers::note`] (cheap: only conflicting ordinals are
//! kept), and [`Losers::conflict_warnings`] then names the identity and the
//! differing fields with both values — for the replay summary's warnings.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use bankpipe_model::{CanonicalId, Transaction};
use chrono::{DateTime, Utc};

/// Content fingerprint meaning "not known" ([`IdentityIndex::observe`]).
const UNKNOWN_CONTENT: u64 = 0;

/// One occurrence: canonical id (as two words, so that the record stays 40
/// bytes), `updated_at` in µs since the epoch (or `i64::MIN` when the source
/// gave none), ordinal in the input, content fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Occurrence {
    id: [u64; 2],
    stamp: i64,
    ordinal: u64,
    content: u64,
}

/// Collects occurrences during the first pass.
#[derive(Default)]
pub struct IdentityIndex {
    seen: Vec<Occurrence>,
}

/// The ordinals of occurrences that lost to a newer sighting of the same
/// identity, sorted, plus the same-`updated_at` conflicts among them.
/// Produced by [`IdentityIndex::into_losers`].
#[derive(Debug, Default)]
pub struct Losers {
    ordinals: Vec<u64>,
    /// `(losing ordinal, winning ordinal)` of each conflict, by losing ordinal.
    conflicts: Vec<(u64, u64)>,
    /// Every ordinal that takes part in a conflict, sorted.
    involved: Vec<u64>,
    /// The occurrences noted in the second pass, by ordinal.
    noted: BTreeMap<u64, Transaction>,
}

impl Losers {
    /// `true` when the occurrence at `ordinal` is a superseded re-read.
    pub fn contains(&self, ordinal: u64) -> bool {
        self.ordinals.binary_search(&ordinal).is_ok()
    }

    /// Number of superseded occurrences (the duplicates dropped).
    pub fn len(&self) -> u64 {
        self.ordinals.len() as u64
    }

    /// `true` when nothing was superseded.
    pub fn is_empty(&self) -> bool {
        self.ordinals.is_empty()
    }

    /// Number of conflicts: dropped occurrences whose content differs from
    /// the kept one although their `updated_at` is the same.
    pub fn conflict_count(&self) -> u64 {
        self.conflicts.len() as u64
    }

    /// Second pass: show the occurrence at `ordinal` (the same ordinal as in
    /// the first pass). Kept only when it takes part in a conflict, so the
    /// cost is one binary search per occurrence.
    pub fn note(&mut self, ordinal: u64, tx: &Transaction) {
        if !self.involved.is_empty() && self.involved.binary_search(&ordinal).is_ok() {
            self.noted.insert(ordinal, tx.clone());
        }
    }

    /// One warning per conflict, in input order: the identity, the shared
    /// `updated_at`, every differing field with both values (dropped vs
    /// kept), and which occurrence was kept. Call after the second pass has
    /// [`Losers::note`]d every occurrence; an occurrence not noted is named by
    /// its ordinal only.
    pub fn conflict_warnings(&self) -> Vec<String> {
        self.conflicts
            .iter()
            .map(|(lost, kept)| match (self.noted.get(lost), self.noted.get(kept)) {
                (Some(dropped), Some(winner)) => describe_conflict(dropped, winner),
                _ => format!(
                    "conflicting duplicates: occurrences #{lost} and #{kept} share an identity and updated_at but differ; kept #{kept}"
                ),
            })
            .collect()
    }
}

/// The warning for one conflict.
/// The warning for two copies of one identity with the same `updated_at`
/// and different content: each differing field as "dropped vs kept".
pub fn describe_conflict(dropped: &Transaction, kept: &Transaction) -> String {
    let stamp = kept.updated_at.map_or_else(|| "none (both without updated_at)".to_owned(), |t| t.to_rfc3339());
    let mut text = format!(
        "conflicting duplicates: {} account {} transaction {} appears twice with the same updated_at {stamp} but different content (",
        kept.source, kept.source_account_id, kept.source_transaction_id
    );
    let differences = differences(dropped, kept);
    if differences.is_empty() {
        text.push_str("fields not shown in this summary");
    }
    for (i, (field, a, b)) in differences.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        let _ = write!(text, "{sep}{field} {a} vs {b}");
    }
    text.push_str("); kept the later occurrence (the second value), dropped the earlier");
    text
}

/// `(field, dropped value, kept value)` of every source field that differs.
fn differences(a: &Transaction, b: &Transaction) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut diff = |field: &'static str, x: String, y: String| {
        if x != y {
            out.push((field, x, y));
        }
    };
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_owned(), |s| format!("{s:?}"));
    let instant = |v: Option<DateTime<Utc>>| v.map_or_else(|| "null".to_owned(), |t| t.to_rfc3339());
    diff("amount", format!("{:?}", a.amount), format!("{:?}", b.amount));
    diff("status", a.status.as_str().to_owned(), b.status.as_str().to_owned());
    diff("source_status", a.source_status.to_owned(), b.source_status.to_owned());
    diff("type", a.source_type.to_owned(), b.source_type.to_owned());
    diff("memo_only", a.memo_only.to_string(), b.memo_only.to_string());
    diff("booking_date", a.booking_date.to_string(), b.booking_date.to_string());
    diff("transacted_at", instant(a.transacted_at), instant(b.transacted_at));
    diff("posted_at", instant(a.posted_at), instant(b.posted_at));
    diff("description", format!("{:?}", a.description), format!("{:?}", b.description));
    diff("merchant_name", opt(&a.merchant_name), opt(&b.merchant_name));
    diff("mcc", format!("{:?}", a.mcc.map(|m| m.get())), format!("{:?}", b.mcc.map(|m| m.get())));
    diff("categories", format!("{:?}", a.source_categories), format!("{:?}", b.source_categories));
    diff("memo", opt(&a.memo), opt(&b.memo));
    diff("check_number", opt(&a.check_number), opt(&b.check_number));
    diff("external_id", opt(&a.external_id), opt(&b.external_id));
    diff("group_id", opt(&a.group_id), opt(&b.group_id));
    diff("source_fields", format!("{:?}", a.source_fields), format!("{:?}", b.source_fields));
    out
}

/// A fingerprint of everything a source says about a transaction (amount,
/// status, dates, texts, MCC, categories, source fields) — not of what
/// enrichment adds. Equal content gives equal fingerprints within a process.
pub fn content_fingerprint(tx: &Transaction) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tx.amount.hash(&mut h);
    tx.status.hash(&mut h);
    tx.source_status.hash(&mut h);
    tx.source_type.hash(&mut h);
    tx.memo_only.hash(&mut h);
    tx.booking_date.hash(&mut h);
    tx.transacted_at.hash(&mut h);
    tx.posted_at.hash(&mut h);
    tx.description.hash(&mut h);
    tx.merchant_name.hash(&mut h);
    tx.mcc.hash(&mut h);
    tx.source_categories.hash(&mut h);
    tx.memo.hash(&mut h);
    tx.check_number.hash(&mut h);
    tx.external_id.hash(&mut h);
    tx.group_id.hash(&mut h);
    tx.source_fields.hash(&mut h);
    // Keep 0 for "unknown".
    h.finish().max(1)
}

impl IdentityIndex {
    /// An empty index.
    pub fn new() -> IdentityIndex {
        IdentityIndex::default()
    }

    /// Record an occurrence whose content is not known: it takes part in
    /// dedupe but not in conflict detection. Prefer
    /// [`IdentityIndex::observe_transaction`]. `ordinal` must be unique per
    /// occurrence (its position in the input).
    pub fn observe(&mut self, id: CanonicalId, updated_at: Option<DateTime<Utc>>, ordinal: u64) {
        self.push(id, updated_at, ordinal, UNKNOWN_CONTENT);
    }

    /// Record an occurrence with its content fingerprint, so that a
    /// same-`updated_at` copy with different content is reported as a
    /// conflict. `ordinal` must be unique per occurrence.
    pub fn observe_transaction(&mut self, tx: &Transaction, ordinal: u64) {
        self.push(tx.id, tx.updated_at, ordinal, content_fingerprint(tx));
    }

    fn push(&mut self, id: CanonicalId, updated_at: Option<DateTime<Utc>>, ordinal: u64, content: u64) {
        let stamp = updated_at.map_or(i64::MIN, |t| t.timestamp_micros());
        let id = id.as_u128();
        self.seen.push(Occurrence { id: [(id >> 64) as u64, id as u64], stamp, ordinal, content });
    }

    /// Decide every identity: the newest `updated_at` wins; on a tie (or
    /// when neither has one) the later occurrence wins, since a later page
    /// was fetched later — and a tie between different contents is recorded
    /// as a conflict (see the module docs). Returns the losers; the index
    /// memory is released.
    pub fn into_losers(mut self) -> Losers {
        // Sorted by (id, stamp, ordinal): the winner is the last of each id run.
        self.seen.sort_unstable();
        let mut ordinals = Vec::new();
        let mut conflicts = Vec::new();
        for run in self.seen.chunk_by(|a, b| a.id == b.id) {
            let (winner, rest) = run.split_last().expect("chunks are never empty");
            for o in rest {
                ordinals.push(o.ordinal);
                let conflicting = o.stamp == winner.stamp
                    && o.content != winner.content
                    && o.content != UNKNOWN_CONTENT
                    && winner.content != UNKNOWN_CONTENT;
                if conflicting {
                    conflicts.push((o.ordinal, winner.ordinal));
                }
            }
        }
        drop(self.seen);
        ordinals.sort_unstable();
        conflicts.sort_unstable();
        let mut involved: Vec<u64> = conflicts.iter().flat_map(|(a, b)| [*a, *b]).collect();
        involved.sort_unstable();
        involved.dedup();
        Losers { ordinals, conflicts, involved, noted: BTreeMap::new() }
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

    fn sample(id: &str, amount: &str, updated: Option<&str>) -> Transaction {
        use bankpipe_model::{Currency, Money};
        let amount = Money::parse(amount, Currency::USD).unwrap();
        let mut row =
            Transaction::bare_posted("truv", "acc", id, amount, chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
        row.source_type = "DEBIT";
        row.updated_at = updated.and_then(t);
        row.description = "Coffee".into();
        row
    }

    /// Run both passes over `input` as replay does; returns the kept
    /// ordinals and the warnings.
    fn two_passes(input: &[Transaction]) -> (Vec<u64>, Vec<String>, u64) {
        let mut ix = IdentityIndex::new();
        for (o, tx) in input.iter().enumerate() {
            ix.observe_transaction(tx, o as u64);
        }
        let mut losers = ix.into_losers();
        let mut kept = Vec::new();
        for (o, tx) in input.iter().enumerate() {
            losers.note(o as u64, tx);
            if !losers.contains(o as u64) {
                kept.push(o as u64);
            }
        }
        (kept, losers.conflict_warnings(), losers.conflict_count())
    }

    #[test]
    fn same_updated_at_with_different_content_is_reported_with_both_values() {
        let stamp = Some("2024-03-01T10:00:00Z");
        let input = [sample("t-9", "-4.75", stamp), sample("other", "-1.00", stamp), sample("t-9", "-5.00", stamp)];
        let (kept, warnings, count) = two_passes(&input);
        assert_eq!(kept, [1, 2], "the later occurrence still wins, deterministically");
        assert_eq!(count, 1);
        assert_eq!(warnings.len(), 1);
        let w = &warnings[0];
        for part in [
            "conflicting duplicates",
            "truv",
            "acc",
            "t-9",
            "2024-03-01T10:00:00+00:00",
            "amount -4.75 USD vs -5.00 USD",
        ] {
            assert!(w.contains(part), "{part} in {w}");
        }
        assert!(!w.contains("description"), "only differing fields are listed: {w}");
        // Reversed input order: the other copy wins, the conflict is still named.
        let reversed = [input[2].clone(), input[1].clone(), input[0].clone()];
        let (kept, warnings, _) = two_passes(&reversed);
        assert_eq!(kept, [1, 2]);
        assert!(warnings[0].contains("amount -5.00 USD vs -4.75 USD"), "{}", warnings[0]);
    }

    #[test]
    fn plain_re_reads_and_newer_edits_are_not_conflicts() {
        let a = sample("t-1", "-4.75", Some("2024-03-01T10:00:00Z"));
        let newer = sample("t-1", "-5.00", Some("2024-03-02T10:00:00Z"));
        let (kept, warnings, _) = two_passes(&[a.clone(), a.clone(), newer]);
        assert_eq!(kept, [2]);
        assert!(warnings.is_empty(), "{warnings:?}");
        // Both without updated_at and different: that is a tie too.
        let (kept, warnings, _) = two_passes(&[sample("t-2", "-1.00", None), sample("t-2", "-2.00", None)]);
        assert_eq!(kept, [1]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("none (both without updated_at)"), "{}", warnings[0]);
        // A conflict among copies that a newer one supersedes does not matter.
        let old = Some("2024-03-01T10:00:00Z");
        let (_, warnings, _) = two_passes(&[
            sample("t-3", "-1.00", old),
            sample("t-3", "-2.00", old),
            sample("t-3", "-3.00", Some("2024-03-05T00:00:00Z")),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn observe_without_content_detects_no_conflict() {
        let a = CanonicalId::for_transaction("truv", "acc", "1");
        let mut ix = IdentityIndex::new();
        ix.observe(a, t("2024-01-01T00:00:00Z"), 0);
        ix.observe(a, t("2024-01-01T00:00:00Z"), 1);
        let losers = ix.into_losers();
        assert_eq!((losers.len(), losers.conflict_count()), (1, 0));
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

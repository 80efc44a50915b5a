//! Dedupe rule 1 (DESIGN §4): the same identity seen twice is one row, and
//! the occurrence with the newest `updated_at` wins. The store applies the
//! rule as it writes each page (`TransactionStore::write_page`); this module
//! holds what the pipeline needs beside it.
//!
//! **Conflicts are never resolved silently.** Two copies of one identity
//! with the same `updated_at` (or both without one) but different content
//! (amount, status, dates, description, …) cannot be ordered by the source's
//! own clock. The later copy still wins (as the store does), and
//! [`PageConflicts`] reports the pair — within a page, or across a page
//! boundary, where re-reads land — naming the identity and every differing
//! field with both values ([`describe_conflict`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bankpipe_model::{CanonicalId, Transaction};
use chrono::{DateTime, Utc};

/// Finds same-`updated_at` conflicts page by page, holding two pages: the
/// previous page (shared with its writer, never copied) and the index of
/// the page being checked.
#[derive(Default)]
pub struct PageConflicts {
    previous: Arc<Vec<Transaction>>,
    previous_index: HashMap<CanonicalId, usize>,
    index: HashMap<CanonicalId, usize>,
}

impl PageConflicts {
    /// An empty checker (no previous page).
    pub fn new() -> PageConflicts {
        PageConflicts::default()
    }

    /// One warning per row of `page` whose `updated_at` equals that of the
    /// latest earlier copy of its identity — on this page, else on the
    /// previous one — while its content ([`content_fingerprint`]) differs.
    /// Compare rows in the same state (both categorized, or neither).
    pub fn check(&mut self, page: &[Transaction]) -> Vec<String> {
        let mut warnings = Vec::new();
        self.index.clear();
        for (i, tx) in page.iter().enumerate() {
            let held = match self.index.get(&tx.id) {
                Some(&j) => page.get(j),
                None => self.previous_index.get(&tx.id).and_then(|&j| self.previous.get(j)),
            };
            if let Some(held) = held {
                if held.updated_at == tx.updated_at && content_fingerprint(held) != content_fingerprint(tx) {
                    warnings.push(describe_conflict(held, tx));
                }
            }
            self.index.insert(tx.id, i);
        }
        warnings
    }

    /// Keep `page` — the one last passed to [`PageConflicts::check`] — as
    /// the previous page for the next check.
    pub fn advance(&mut self, page: impl Into<Arc<Vec<Transaction>>>) {
        self.previous = page.into();
        std::mem::swap(&mut self.previous_index, &mut self.index);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
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

    /// Check `pages` one after the other, as ingest does; all warnings.
    fn check_pages(pages: &[&[Transaction]]) -> Vec<String> {
        let mut checker = PageConflicts::new();
        let mut warnings = Vec::new();
        for page in pages {
            warnings.extend(checker.check(page));
            checker.advance(page.to_vec());
        }
        warnings
    }

    #[test]
    fn same_updated_at_with_different_content_is_reported_with_both_values() {
        let stamp = Some("2024-03-01T10:00:00Z");
        let (first, other, second) =
            (sample("t-9", "-4.75", stamp), sample("other", "-1.00", stamp), sample("t-9", "-5.00", stamp));
        let warnings = check_pages(&[&[first.clone(), other.clone(), second.clone()]]);
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
        // Across a page boundary, in the other order: the later copy is the second value.
        let warnings = check_pages(&[&[second, other], &[first]]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("amount -5.00 USD vs -4.75 USD"), "{}", warnings[0]);
    }

    #[test]
    fn plain_re_reads_and_newer_edits_are_not_conflicts() {
        let a = sample("t-1", "-4.75", Some("2024-03-01T10:00:00Z"));
        let newer = sample("t-1", "-5.00", Some("2024-03-02T10:00:00Z"));
        assert!(check_pages(&[&[a.clone(), a.clone()], &[a, newer]]).is_empty());
        // Both without updated_at and different: that is a tie too.
        let warnings = check_pages(&[&[sample("t-2", "-1.00", None)], &[sample("t-2", "-2.00", None)]]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("none (both without updated_at)"), "{}", warnings[0]);
    }

    #[test]
    fn only_the_previous_page_is_held() {
        // A copy two pages back is out of reach (re-reads land on the next page).
        let stamp = Some("2024-03-01T10:00:00Z");
        let filler = sample("x", "-1.00", stamp);
        let warnings = check_pages(&[&[sample("t-5", "-1.00", stamp)], &[filler], &[sample("t-5", "-2.00", stamp)]]);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn distinct_twins_are_not_conflicts() {
        // Same day, amount and merchant but different source ids: two identities.
        let stamp = Some("2024-01-01T00:00:00Z");
        assert!(check_pages(&[&[sample("coffee-1", "-4.75", stamp), sample("coffee-2", "-4.75", stamp)]]).is_empty());
    }
}

//! Deterministic generator of large, realistic recorded page sets.
//!
//! The same [`GenConfig`] (seed included) always yields byte-identical pages.
//! Truv pages carry a realistic MCC mix, card holds that post later under
//! the same id (pending → posted, with tips on restaurants and fuel), true
//! twins (same day, amount, merchant; different ids), several currencies and
//! `daily_totals` on the last page. Firefly pages carry withdrawals, deposits,
//! split groups and transfers between asset accounts.

mod firefly;
mod merchants;
mod truv;

use std::io;
use std::path::Path;

use chrono::NaiveDate;

pub use firefly::FireflyGenerator;
pub use truv::TruvGenerator;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Number of accounts.
    pub accounts: u32,
    /// Number of transaction records (Truv records, including the pending
    /// versions of later-posted rows; Firefly splits).
    pub transactions: u64,
    /// Records per page.
    pub page_size: u32,
    /// Seed of the pseudo-random sequence.
    pub seed: u64,
    /// First booking date.
    pub start: NaiveDate,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            accounts: 8,
            transactions: 10_000,
            page_size: 1_000,
            seed: 1,
            start: NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date"),
        }
    }
}

/// Write every page of `pages` into `dir` as `page-000001.json`, … .
///
/// # Errors
/// The first I/O error.
pub fn write_pages(dir: &Path, pages: impl Iterator<Item = String>) -> io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut n = 0;
    for page in pages {
        n += 1;
        std::fs::write(dir.join(format!("page-{n:06}.json")), page)?;
    }
    Ok(n)
}

/// JSON string literal of `s` (escaped).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{firefly, truv, NormalizeContext};

    fn cfg(seed: u64) -> GenConfig {
        GenConfig { accounts: 8, transactions: 3_000, page_size: 250, seed, ..GenConfig::default() }
    }

    #[test]
    fn same_seed_same_pages() {
        let a: Vec<String> = TruvGenerator::new(cfg(7)).collect();
        assert_eq!(a, TruvGenerator::new(cfg(7)).collect::<Vec<_>>());
        assert_ne!(a, TruvGenerator::new(cfg(8)).collect::<Vec<_>>());
        let f: Vec<String> = FireflyGenerator::new(cfg(7)).collect();
        assert_eq!(f, FireflyGenerator::new(cfg(7)).collect::<Vec<_>>());
    }

    #[test]
    fn generated_truv_pages_are_clean_and_realistic() {
        let ctx = NormalizeContext::new("truv");
        let (mut records, mut pending, mut memo, mut currencies) = (0, 0, 0, std::collections::BTreeSet::new());
        let mut chain = truv::TruvChain::new();
        for (i, p) in TruvGenerator::new(cfg(1)).enumerate() {
            let (page, cursor) = truv::normalize_page(&ctx, &format!("p{i}"), p.as_bytes()).unwrap();
            chain.accept(&format!("p{i}"), &cursor).unwrap();
            assert!(page.quarantine.is_empty(), "{:?}", page.quarantine.first());
            records += page.records_read;
            for t in &page.transactions {
                pending += u64::from(t.status == bankpipe_model::Status::Pending);
                memo += u64::from(t.memo_only);
                currencies.insert(t.amount.currency().code().to_owned());
            }
        }
        assert_eq!(chain.finish().unwrap(), 12);
        assert_eq!(records, 3_000);
        assert!(pending > 30 && memo > 5, "pending {pending}, memo {memo}");
        assert!(currencies.len() >= 3, "{currencies:?}");
    }

    #[test]
    fn generated_firefly_pages_are_clean() {
        let ctx = NormalizeContext::new("firefly");
        let mut chain = firefly::FireflyChain::new();
        let mut splits = 0;
        for (i, p) in FireflyGenerator::new(cfg(1)).enumerate() {
            let (page, cursor) = firefly::normalize_page(&ctx, &format!("p{i}"), p.as_bytes()).unwrap();
            chain.accept(&format!("p{i}"), &cursor).unwrap();
            assert!(page.quarantine.is_empty() && page.warnings.is_empty(), "{:?}", page.quarantine.first());
            splits += page.records_read;
        }
        chain.finish().unwrap();
        assert_eq!(splits, 3_000);
    }
}

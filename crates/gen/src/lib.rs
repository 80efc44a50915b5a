//! bankpipe-gen: the deterministic generator of large, realistic recorded
//! page sets (`bankpipe gen`, the simulators' bulk data, benchmarks). Test
//! data, not pipeline: it depends on no bankpipe crate.
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

//! Enrichment stages over canonical data — pure functions, no I/O:
//! identity dedupe ([`identity`]), categorization ([`categorize`]) and daily
//! totals with reconciliation against source-reported totals ([`daily_totals`]).

pub mod accounts;
pub mod categorize;
pub mod daily_totals;
pub mod dedupe;
pub mod identity;

pub use categorize::{Categorizer, Decision};
pub use daily_totals::{resolve_targets, DailyTotalsBuilder, Walk};
pub use identity::PageConflicts;

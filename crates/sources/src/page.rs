//! What one normalized page yields.

use bankpipe_model::{Account, QuarantineRecord, ReportedDailyTotal, Transaction};

/// Which API a page comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// Truv `GET /v1/links/{link_id}/transactions/` pages.
    Truv,
    /// Firefly III `GET /api/v1/transactions` pages.
    Firefly,
}

impl SourceKind {
    /// `truv` or `firefly`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Truv => "truv",
            SourceKind::Firefly => "firefly",
        }
    }
}

/// The canonical content of one page. Every input record ends up in exactly
/// one of `transactions` (possibly several rows, e.g. a Firefly transfer's two
/// legs), `accounts` (account records, Firefly opening balances) or
/// `quarantine`.
#[derive(Debug, Default)]
pub struct NormalizedPage {
    /// Accounts listed on the page (Truv `accounts[]`) or implied by it
    /// (Firefly legs, opening balances).
    pub accounts: Vec<Account>,
    /// Canonical transactions, in page order.
    pub transactions: Vec<Transaction>,
    /// Rejected records, with reasons.
    pub quarantine: Vec<QuarantineRecord>,
    /// Source-reported daily totals (Truv newer shape).
    pub reported_totals: Vec<ReportedDailyTotal>,
    /// Input transaction records read (Truv transactions; Firefly splits,
    /// plus groups too malformed to count their splits).
    pub records_read: u64,
    /// Page-level observations that are not errors, each naming the file:
    /// a Firefly `meta.pagination.count` that disagrees with the splits on
    /// the page, a stripped UTF-8 byte-order mark, a Truv account balance
    /// out of range dropped to `None` (field, value and reason; the account
    /// is kept).
    pub warnings: Vec<String>,
}

//! The dedupe stage's values that cross the store seam (DESIGN §4): the
//! candidate rows the store supplies to the matchers of
//! `bankpipe_enrich::dedupe`, and the decisions it persists. Plain data; the
//! matching itself is enrich's.

use chrono::NaiveDate;

/// A row dedupe may pair, with the fields matching needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Canonical id (32 hex).
    pub id: String,
    /// Source name.
    pub source: String,
    /// Source account id.
    pub source_account_id: String,
    /// `true` when posted.
    pub posted: bool,
    /// Booking date.
    pub booking_date: NaiveDate,
    /// Signed amount in minor units.
    pub amount_minor: i64,
    /// Currency code.
    pub currency: String,
    /// Description.
    pub description: String,
    /// Merchant name.
    pub merchant_name: Option<String>,
    /// MCC.
    pub mcc: Option<u16>,
    /// MEMO lines are never paired.
    pub memo_only: bool,
    /// Already the kept side of a cross-source duplicate.
    pub kept_for_duplicate: bool,
    /// Seen pending under its own id at some point (sticky): when posted,
    /// it is its own settlement and supersedes no other row (DESIGN §4.6).
    pub seen_pending: bool,
    /// Already supersedes a pending row (persisted): a posted row
    /// supersedes at most one, ever (DESIGN §4.6).
    pub supersedes: bool,
}

/// A persisted dedupe decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupeLink {
    /// The row that is superseded or a duplicate.
    pub transaction_id: String,
    /// `superseded` (pending → posted) or `duplicate` (cross-source).
    pub kind: LinkKind,
    /// The row kept.
    pub target_id: String,
    /// Why, in words (amounts, dates, descriptions compared).
    pub reason: String,
}

/// Kind of dedupe link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// A pending row superseded by its posted row.
    Superseded,
    /// The same movement seen through another source.
    Duplicate,
}

impl LinkKind {
    /// `superseded` or `duplicate`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkKind::Superseded => "superseded",
            LinkKind::Duplicate => "duplicate",
        }
    }

    /// Parse [`LinkKind::as_str`]; anything but `duplicate` is `superseded`.
    pub fn parse(s: &str) -> LinkKind {
        if s == "duplicate" {
            LinkKind::Duplicate
        } else {
            LinkKind::Superseded
        }
    }
}

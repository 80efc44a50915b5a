//! Values read from and written to the store.

pub use bankpipe_enrich::dedupe::{Candidate, DedupeLink, LinkKind};
use chrono::NaiveDate;

/// A run's id.
pub type RunId = i64;

/// What kind of run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// `bankpipe sync`.
    Sync,
    /// `bankpipe backfill`.
    Backfill,
}

impl RunKind {
    /// `sync` or `backfill`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunKind::Sync => "sync",
            RunKind::Backfill => "backfill",
        }
    }
}

/// What one page write changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCounts {
    /// New transactions.
    pub inserted: u64,
    /// Existing transactions whose content changed (pending → posted, edits).
    pub updated: u64,
    /// Re-reads with nothing new.
    pub unchanged: u64,
    /// Quarantine records written.
    pub quarantined: u64,
}

impl PageCounts {
    /// Add another page's counts.
    pub fn add(&mut self, other: PageCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.quarantined += other.quarantined;
    }
}

/// A run's outcome and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// `ok`, `failed`, `rate-limited` (exit 75) …
    pub outcome: String,
    /// Pages fetched.
    pub pages: u64,
    /// Records read.
    pub records: u64,
    /// Page write counts.
    pub counts: PageCounts,
    /// Pending rows superseded by posted ones.
    pub superseded: u64,
    /// Cross-source duplicates marked.
    pub duplicates: u64,
    /// Error message of a failed run.
    pub message: Option<String>,
}

/// A watermark: the latest booking date synced for a source account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermark {
    /// Source name.
    pub source: String,
    /// Source account id.
    pub source_account_id: String,
    /// Latest booking date committed.
    pub booking_date: NaiveDate,
    /// When it last moved (RFC 3339 UTC).
    pub updated_at: String,
}

/// One run, for `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// `sync` or `backfill`.
    pub kind: String,
    /// Start (RFC 3339 UTC).
    pub started_at: String,
    /// End, when finished.
    pub finished_at: Option<String>,
    /// Outcome.
    pub outcome: String,
    /// Counts: pages, records, inserted, updated, unchanged, quarantined.
    pub counts: [i64; 6],
    /// Message of a failed run.
    pub message: Option<String>,
}

/// What `bankpipe status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusReport {
    /// Latest runs, newest first.
    pub runs: Vec<RunRow>,
    /// All watermarks.
    pub watermarks: Vec<Watermark>,
    /// Quarantine records stored.
    pub quarantined: i64,
    /// Transactions stored.
    pub transactions: i64,
    /// Per sink: (sink, pending + in_flight, failed, delivered).
    pub deliveries: Vec<(String, i64, i64, i64)>,
}

/// State of one (sink, transaction) delivery (DESIGN §6): `pending →
/// in_flight → delivered | failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Queued, not yet sent.
    Pending,
    /// Marked and committed before the POST; outcome unknown until reconciled.
    InFlight,
    /// The sink has it (remote id recorded).
    Delivered,
    /// Refused permanently (reason recorded); not retried.
    Failed,
}

impl DeliveryState {
    /// `pending`, `in_flight`, `delivered` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::InFlight => "in_flight",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

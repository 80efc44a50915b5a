//! Records rejected during normalization.

use serde::Serialize;

/// One rejected input record: where it was, which field, what value and why.
/// Written to `quarantine.jsonl`; the rest of the page proceeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantineRecord {
    /// Source name.
    pub source: String,
    /// The page file (or URL) the record came from.
    pub file: String,
    /// RFC 6901 JSON pointer of the record in that page, e.g. `/transactions/3`.
    pub pointer: String,
    /// The offending field, relative to the record (`amount`, `posted_at`, …).
    pub field: String,
    /// The offending value as received (truncated to 200 characters), or
    /// `null` text when the field was missing.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
    /// The source's own id of the rejected record when it can be read
    /// (Truv `id`, Firefly group `id` or `transaction_journal_id`, account
    /// `id`, `daily_total:<date>[:<account>]`), so a record re-read by a
    /// later run is recognised while distinct records with the same bad
    /// value are all kept.
    pub record_id: Option<String>,
}

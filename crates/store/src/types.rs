//! Values read from and written to the store.

pub use bankpipe_model::dedupe::{Candidate, DedupeLink, LinkKind};
use bankpipe_model::{Money, ReconcileTarget};
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
    /// Superseded pending rows that posted under their own id and were
    /// un-superseded (DESIGN §4.6): deliverable again.
    pub unsuperseded: u64,
}

impl PageCounts {
    /// Add another page's counts.
    pub fn add(&mut self, other: PageCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.quarantined += other.quarantined;
        self.unsuperseded += other.unsuperseded;
    }
}

/// One normalized page to write ([`crate::TransactionStore::write_pages`]).
#[derive(Clone, Copy, Debug)]
pub struct PageWrite<'a> {
    /// Accounts listed on the page (new or changed copies).
    pub accounts: &'a [bankpipe_model::Account],
    /// The page's transactions.
    pub transactions: &'a [bankpipe_model::Transaction],
    /// The page's rejected records.
    pub quarantine: &'a [bankpipe_model::QuarantineRecord],
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusReport {
    /// Latest runs, newest first.
    pub runs: Vec<RunRow>,
    /// All watermarks.
    pub watermarks: Vec<Watermark>,
    /// Quarantine records stored.
    pub quarantined: i64,
    /// Transactions stored.
    pub transactions: i64,
    /// Per sink, its delivery ledger in numbers.
    pub deliveries: Vec<SinkBacklog>,
    /// Per sink, why deliveries failed: (sink, reason, count), most frequent first.
    pub failures: Vec<(String, String, i64)>,
    /// Source daily totals as last reconciled: days matching the source's
    /// figure, days not matching (listed in `total_mismatches`), days not yet
    /// reconciled.
    pub source_totals: SourceTotalsReport,
}

/// The source daily totals in numbers (`bankpipe status`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceTotalsReport {
    /// Days whose stored rows match the source's net total and count.
    pub matching: i64,
    /// Days that do not: every one is in `mismatches`.
    pub mismatching: i64,
    /// Days reported but not reconciled yet.
    pub unreconciled: i64,
    /// The mismatching days, oldest first.
    pub mismatches: Vec<TotalMismatch>,
}

/// A day whose stored rows disagree with the source's own daily total.
#[derive(Clone, Debug, PartialEq)]
pub struct TotalMismatch {
    /// The source's figure and where it was read.
    pub target: ReconcileTarget,
    /// Net total of the counted rows stored for the day (same currency).
    pub computed_net: Money,
    /// Number of those rows.
    pub computed_count: u64,
}

impl std::fmt::Display for TotalMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.target;
        write!(
            f,
            "{} account {} {} {}: the source reports {} over {} transactions, the stored rows sum to {} over {} (from {})",
            t.source,
            t.account,
            t.date,
            t.currency,
            t.reported.net_total,
            t.reported.transaction_count,
            self.computed_net,
            self.computed_count,
            t.origin
        )
    }
}

/// Identity dedupe within one page (DESIGN §4 rule 1): `keys[i]` is the
/// (id, `updated_at`) of the page's `i`-th row. Of the rows sharing an id,
/// the newest `updated_at` wins, the later row on ties (the sort is stable,
/// so a run of equal ids is in page order). Returns the winners' indexes in
/// id order (indexes, not rows: a row is a large struct).
pub(crate) fn newest_per_id<K: Ord, U: Ord>(keys: &[(K, U)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].0.cmp(&keys[b].0));
    let mut winners: Vec<usize> = Vec::with_capacity(order.len());
    for i in order {
        match winners.last_mut() {
            Some(held) if keys[*held].0 == keys[i].0 => {
                if keys[*held].1 <= keys[i].1 {
                    *held = i;
                }
            }
            _ => winners.push(i),
        }
    }
    winners
}

/// Reconcile one source daily total (DESIGN §3) against the counted rows
/// stored: `sum_of(account)` gives, for one account of `t.scope`, the sum
/// (ISO 4217 minor units) and number of its counted rows on `t`'s date in
/// `t`'s currency, when it has any. Returns the computed net, the computed
/// count and whether both equal the source's figure.
///
/// # Errors
/// [`crate::StoreError::Money`] when the sum exceeds 64-bit minor units
/// (amounts are bounded at 10^12 minor units, so a day cannot reach it;
/// should it, this fails loudly instead of wrapping).
pub(crate) fn reconcile(
    t: &ReconcileTarget,
    mut sum_of: impl FnMut(&str) -> Option<(i64, i64)>,
) -> Result<(Money, u64, bool), crate::StoreError> {
    let (mut minor, mut count) = (0i64, 0i64);
    for account in &t.scope {
        if let Some((m, c)) = sum_of(account) {
            let overflow = || crate::StoreError::Money {
                id: format!("daily total {} {} {} {}", t.source, t.account, t.date, t.currency.code()),
                cause: "the sum of the day's amounts exceeds 64-bit minor units".into(),
            };
            minor = minor.checked_add(m).ok_or_else(overflow)?;
            count = count.checked_add(c).ok_or_else(overflow)?;
        }
    }
    let computed_net = Money::from_minor_units(minor, t.currency);
    let computed_count = u64::try_from(count).unwrap_or(0);
    let matches = computed_net == t.reported.net_total && computed_count == t.reported.transaction_count;
    Ok((computed_net, computed_count, matches))
}

/// One sink's delivery ledger in numbers (`bankpipe status`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkBacklog {
    /// Sink name.
    pub sink: String,
    /// Queued and in flight.
    pub waiting: i64,
    /// Of `waiting`, sent and awaiting reconciliation.
    pub in_flight: i64,
    /// Failed (reason recorded).
    pub failed: i64,
    /// Delivered.
    pub delivered: i64,
    /// Delivered rows whose status, amount or booking date changed at the
    /// source since: corrected on the next run by a sink that can delete
    /// rows (mibudge); left as they are, and only reported, on one that
    /// cannot (Trupocket's API has no update or delete of a transaction).
    pub changed_since_delivery: i64,
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
    /// Was delivered; its sink row is replaced by another delivery's (a
    /// pending row corrected by the posted row that superseded it).
    Replaced,
    /// Never to be delivered: the user said so (`bankpipe deliveries skip`).
    Skipped,
}

impl DeliveryState {
    /// The state named `pending`, `in_flight`, `delivered` or `failed`.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "in_flight" => DeliveryState::InFlight,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            "replaced" => DeliveryState::Replaced,
            "skipped" => DeliveryState::Skipped,
            _ => return None,
        })
    }

    /// `pending`, `in_flight`, `delivered` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::InFlight => "in_flight",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Replaced => "replaced",
            DeliveryState::Skipped => "skipped",
        }
    }
}

/// An `in_flight` delivery awaiting reconciliation (DESIGN §6): the request
/// that was committed before sending, as the sink stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// Canonical transaction id (32 hex).
    pub transaction_id: String,
    /// The idempotency marker the sink row carries (`bp` + 16 hex); `None`
    /// only for rows sent by a bankpipe that kept no ledger.
    pub marker: Option<String>,
    /// The exact request sent, as the sink serialized it (JSON text).
    pub request: Option<String>,
    /// Times the request was marked in flight (sends, or attempts to send).
    pub attempts: i64,
    /// The last ambiguous outcome seen, if any.
    pub reason: Option<String>,
    /// The sink row this delivery replaces (a correction), if any.
    pub replaces: Option<String>,
}

/// One delivery about to be sent ([`crate::DeliveryLedger::begin_deliveries`]):
/// the transaction, its idempotency marker and the exact request (JSON
/// text) the sink receives.
#[derive(Clone, Copy, Debug)]
pub struct Begin<'a> {
    /// The transaction delivered (its current version is recorded as sent).
    pub tx: &'a bankpipe_model::Transaction,
    /// The idempotency marker the sink row carries.
    pub marker: &'a str,
    /// The request, as stored for reconciliation.
    pub request: &'a str,
}

/// A queued (`pending`) delivery: the transaction, the delivery's revision
/// (0, or the number of corrections) and the sink row it replaces, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    /// The transaction as stored now.
    pub transaction: bankpipe_model::Transaction,
    /// 0 for the first delivery; each correction adds one (and gets its own marker).
    pub revision: i64,
    /// The sink row to delete once this delivery's row exists (a correction).
    pub replaces: Option<String>,
}

/// One (sink, transaction) row of the delivery ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Its state.
    pub state: DeliveryState,
    /// The sink's id of the row it created (delivered).
    pub remote_id: Option<String>,
    /// Why it failed, or the last ambiguous outcome.
    pub reason: Option<String>,
    /// Times marked in flight.
    pub attempts: i64,
    /// The idempotency marker.
    pub marker: Option<String>,
    /// The exact request sent (JSON text).
    pub request: Option<String>,
    /// 0, or the number of corrections.
    pub revision: i64,
    /// The sink row this delivery replaces, if any.
    pub replaces: Option<String>,
    /// What the sink holds (see [`crate::sent_version`]), once sent.
    pub sent_version: Option<String>,
}

/// Which deliveries a listing or an operator action applies to (`bankpipe
/// deliveries`); every filter given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Sink name.
    pub sink: Option<String>,
    /// Ledger state.
    pub state: Option<DeliveryState>,
    /// Source account id (`source:account` or a bare account id).
    pub account: Option<String>,
    /// Booking dates from (inclusive).
    pub from: Option<chrono::NaiveDate>,
    /// Booking dates to (inclusive).
    pub to: Option<chrono::NaiveDate>,
    /// Canonical transaction ids.
    pub ids: Vec<String>,
    /// At most this many rows (listing only).
    pub limit: Option<u32>,
}

/// One row of `bankpipe deliveries list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryListing {
    /// Sink name.
    pub sink: String,
    /// Canonical transaction id.
    pub transaction_id: String,
    /// `source:account`.
    pub account: String,
    /// Booking date.
    pub booking_date: String,
    /// Signed amount in minor units and its currency.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Description.
    pub description: String,
    /// Ledger state.
    pub state: String,
    /// Sink row id, when delivered.
    pub remote_id: Option<String>,
    /// Why it failed (the server's message), or the last ambiguous outcome.
    pub reason: Option<String>,
    /// Sends.
    pub attempts: i64,
}

/// An operator's action on deliveries (`bankpipe deliveries …`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOp {
    /// `failed` or `skipped` → `pending`: planned and sent again by the next
    /// sync (e.g. after fixing an account mapping).
    Retry,
    /// `delivered` → `in_flight` with its stored request: the next sync
    /// looks for its marker on the sink and sends the stored request only
    /// if the row is gone (the user deleted it); rows without a stored
    /// request go back to `pending`.
    Resend,
    /// `pending` or `failed` → `skipped`: never delivered unless retried.
    Skip,
}

/// How [`SharedRateBudgets::reserve`](crate::SharedRateBudgets::reserve)
/// paces and probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatePacing {
    /// Requests are spaced `(Reset − now) / Remaining` apart only when that
    /// is at most this long; longer windows (per-day plans) are spent as
    /// needed. The HTTP client's `max_pace_interval` (default 2 s).
    pub max_pace_interval: std::time::Duration,
    /// How long one worker's probe (the request sent while the budget is
    /// unknown or its window has ended) holds the others back at most: if
    /// its answer never comes (the worker died, the request failed), another
    /// worker probes after this.
    pub probe_hold: std::time::Duration,
    /// How often a worker waiting for a probe's answer asks again.
    pub probe_poll: std::time::Duration,
}

impl Default for RatePacing {
    /// 2 s, 2 s, 10 ms.
    fn default() -> Self {
        RatePacing {
            max_pace_interval: std::time::Duration::from_secs(2),
            probe_hold: std::time::Duration::from_secs(2),
            probe_poll: std::time::Duration::from_millis(10),
        }
    }
}

/// Why a shared reservation went or waits (see
/// [`SharedRateBudgets::reserve`](crate::SharedRateBudgets::reserve)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateVerdict {
    /// Go: the origin sends no `X-RateLimit-*` headers (only its 429s hold).
    Unmetered,
    /// Go: the budget is unknown or its window has ended; this request is
    /// the one probe whose answer tells the others.
    Probe,
    /// Go: one unit and the next pacing slot taken.
    Paced,
    /// Go: one unit taken, unpaced (a long window, spent as needed).
    AsNeeded,
    /// Wait: a 429 holds every worker until its `Retry-After` (or Reset).
    Blocked,
    /// Wait: nothing left in the window until its Reset.
    Exhausted,
    /// Wait: the next pacing slot is ahead.
    Pacing,
    /// Wait: another worker's probe has not been answered yet.
    AwaitingProbe,
}

impl RateVerdict {
    /// The name used in SQL and logs (`paced`, `awaiting_probe`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RateVerdict::Unmetered => "unmetered",
            RateVerdict::Probe => "probe",
            RateVerdict::Paced => "paced",
            RateVerdict::AsNeeded => "as_needed",
            RateVerdict::Blocked => "blocked",
            RateVerdict::Exhausted => "exhausted",
            RateVerdict::Pacing => "pacing",
            RateVerdict::AwaitingProbe => "awaiting_probe",
        }
    }

    /// The verdict named `s` (see [`RateVerdict::as_str`]).
    pub fn parse(s: &str) -> Option<RateVerdict> {
        [
            RateVerdict::Unmetered,
            RateVerdict::Probe,
            RateVerdict::Paced,
            RateVerdict::AsNeeded,
            RateVerdict::Blocked,
            RateVerdict::Exhausted,
            RateVerdict::Pacing,
            RateVerdict::AwaitingProbe,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// `true` for the verdicts that send now.
    pub fn goes(self) -> bool {
        matches!(self, RateVerdict::Unmetered | RateVerdict::Probe | RateVerdict::Paced | RateVerdict::AsNeeded)
    }
}

/// One shared reservation's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateReservation {
    /// Go or wait, and why.
    pub verdict: RateVerdict,
    /// When it waits: when to ask again, Unix milliseconds (UTC) on the
    /// database's clock. `None` when it goes.
    pub until_unix_ms: Option<i64>,
    /// When it waits: milliseconds from now to `until_unix_ms`, on the
    /// database's clock (rounded up). `None` when it goes.
    pub wait_ms: Option<i64>,
}

/// What one response said about its origin's budget, for
/// [`SharedRateBudgets::observe`](crate::SharedRateBudgets::observe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateObservation {
    /// `X-RateLimit-Limit`.
    pub limit: Option<i64>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<i64>,
    /// `X-RateLimit-Reset`: the window's end, Unix seconds (UTC).
    pub reset_unix: Option<i64>,
    /// The HTTP status (429: refused for the rate limit).
    pub status: u16,
    /// `Retry-After` as delta-seconds, in milliseconds: counted from the
    /// database's clock when recorded.
    pub retry_after_ms: Option<i64>,
    /// `Retry-After` as an HTTP-date, Unix milliseconds (UTC).
    pub retry_at_unix_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::newest_per_id;

    #[test]
    fn newest_sighting_wins_and_the_later_one_on_ties() {
        // (id, updated_at) in page order.
        let keys = [("b", Some(2)), ("a", Some(5)), ("b", Some(1)), ("a", Some(5)), ("c", None), ("c", Some(0))];
        // a: two equal stamps, the later (3) wins; b: the newer (0) wins
        // over a later, older copy; c: a stamp beats none.
        assert_eq!(newest_per_id(&keys), [3, 0, 5]);
        assert!(newest_per_id::<&str, u8>(&[]).is_empty());
    }
}

//! What every delivering sink provides to the outbox, and the idempotency
//! marker every row bankpipe creates carries (DESIGN §6).

use std::collections::HashMap;
use std::future::Future;

use bankpipe_http::{HttpClient, HttpError};
use bankpipe_model::{CanonicalId, Transaction};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Length of the hex part of a marker: 16 hex digits (64 bits of the
/// canonical id), so collisions are out of reach for any one user's ledger.
const MARKER_HEX: usize = 16;

/// The idempotency marker of revision `revision` of the delivery of `id`:
/// `bp` followed by 16 hex digits — for revision 0 (every first delivery)
/// the first 16 hex digits of the canonical id, e.g. `bp3f9a0c1d2e4b5a69`;
/// a correction (revision n > 0) adds n × 0x9E3779B97F4A7C15 (mod 2^64) to
/// that number, so each correction's row is told apart from the row it
/// replaces. Written into the sink row's memo as the hashtag `#bp3f9a…` so
/// that a delivery whose outcome is unknown can be found again (Trupocket
/// filters by it with `?hashtags=`); a sink row without one is never taken
/// for ours.
pub fn marker(id: &CanonicalId, revision: i64) -> String {
    let high = (id.as_u128() >> 64) as u64;
    let n = high.wrapping_add((revision as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    format!("bp{n:0width$x}", width = MARKER_HEX)
}

/// The markers (`bp` + 16 lowercase hex, without the `#`) written as
/// hashtags in `text`, in order of appearance.
pub fn markers_in(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("#bp") {
        let start = i + at + 1;
        let end = start + 2 + MARKER_HEX;
        let hex_ok =
            bytes.len() >= end && bytes[start + 2..end].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        // A hashtag ends at a character that cannot continue it.
        let ends = bytes.get(end).is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'));
        if hex_ok && ends {
            found.push(&text[start..end]);
        }
        i = start;
    }
    found
}

/// The sink account `[sinks.accounts]` maps a source account to: the key
/// `"source:account"` (the form every notice prints), else the bare
/// account id.
pub fn mapped_account<'m>(
    mapping: &'m std::collections::BTreeMap<String, String>,
    source: &str,
    account: &str,
) -> Option<&'m String> {
    mapping.get(&format!("{source}:{account}")).or_else(|| mapping.get(account))
}

/// The value of a credential the configuration read before the run
/// ([`bankpipe_config::SinkConfig::resolve_secrets`]); a live sink never
/// reads the environment itself.
///
/// # Errors
/// [`SinkError::Config`] naming the key and variable when it was not read.
pub(crate) fn credential(
    sink: &str,
    key: &str,
    secret: &bankpipe_config::EnvSecret,
) -> Result<bankpipe_http::SecretString, SinkError> {
    secret.value().cloned().ok_or_else(|| SinkError::Config {
        sink: sink.to_owned(),
        message: format!(
            "{key}: environment variable {} was not read before the run (SinkConfig::resolve_secrets)",
            secret.var()
        ),
    })
}

/// One line of `bankpipe check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `true` when it is a problem to fix.
    pub problem: bool,
    /// What was checked and found.
    pub text: String,
}

impl Finding {
    /// A check that passed.
    pub fn ok(text: impl Into<String>) -> Finding {
        Finding { problem: false, text: text.into() }
    }

    /// A problem to fix.
    pub fn problem(text: impl Into<String>) -> Finding {
        Finding { problem: true, text: text.into() }
    }
}

/// One request a delivery makes, stored in the ledger (as JSON) when the
/// delivery goes `in_flight` and reused as is by retries and reconciliation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinkRequest {
    /// HTTP method (`POST`).
    pub method: String,
    /// Path relative to the sink's base URL.
    pub path: String,
    /// JSON body, carrying `marker` in its memo.
    pub body: Value,
    /// The delivery's idempotency marker (see [`marker`]).
    pub marker: String,
    /// The sink account the row is created in.
    pub account: String,
    /// The date the sink files the row under (booking date); reconciliation
    /// searches this date widened by a day on each side.
    pub date: NaiveDate,
    /// A sink-specific request made once the row exists, by
    /// [`Sink::complete`] (mibudge: the budget split body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<Value>,
    /// Another delivery this request also settles (the credit leg of a
    /// transfer sent as one Trupocket `cashflow: transfer`): recorded
    /// delivered, without a row of its own, once this one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<String>,
    /// A correction: the sink row this one replaces, deleted by
    /// [`Sink::complete`] once this row exists (create first, then delete,
    /// so a crash in between loses nothing and the delete is retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// What to do with one transaction for one sink.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Send this request.
    Send(SinkRequest),
    /// Not now (e.g. its account is not mapped): stays queued; `notice` (if
    /// not empty) is printed once per account per run.
    Skip { account: String, notice: String },
    /// Never (e.g. a currency other than the sink account's): recorded as failed.
    Refuse(String),
    /// Already on the sink as part of another delivery's row (the other leg
    /// of a transfer): recorded delivered, with this reason, no request.
    Covered(String),
}

/// A sink failure that stops the sink for this run.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The HTTP layer failed (rate budget exhausted, auth, transport); the
    /// cause is the error's `source()` (printed after the sink name by
    /// `{:#}` chains, so it is not repeated here).
    #[error("{sink}")]
    Http { sink: String, source: HttpError },
    /// The store failed (the cause is the `source()`).
    #[error("{sink}")]
    Store { sink: String, source: bankpipe_store::StoreError },
    /// The sink refused for the rest of the run (plan limit).
    #[error("{sink}: {message}")]
    Stopped { sink: String, message: String },
    /// Configuration problem (missing variable, bad mapping).
    #[error("{sink}: {message}")]
    Config { sink: String, message: String },
    /// The sink answered something unusable (the message names the URL).
    #[error("{sink}: {message}")]
    Protocol { sink: String, message: String },
}

/// A delivering sink. The outbox calls, per run: `prepare` once, `plan`
/// and `send` per transaction, `find` to reconcile, `complete` once a row
/// exists, `account_done` after each account's batch.
pub trait Sink: Send {
    /// The configured sink name.
    fn name(&self) -> &str;

    /// Log in, read categories/accounts/currencies the sink needs (once per run).
    fn prepare(&mut self, client: &HttpClient) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Decide what to do with a transaction (may create a mapped account or
    /// category on the sink when the config allows). A `Send` request
    /// carries `marker` (see [`marker`]) in the row's memo.
    fn plan(
        &mut self,
        client: &HttpClient,
        tx: &Transaction,
        marker: &str,
    ) -> impl Future<Output = Result<Plan, SinkError>> + Send;

    /// `true` when the sink can delete a row it holds, so a delivered row
    /// whose source changed is corrected (delete + create, DESIGN §4.7).
    fn corrects(&self) -> bool {
        false
    }

    /// Send a stored request; returns the sink's id of the created row.
    ///
    /// # Errors
    /// The HTTP layer's: [`HttpError::Ambiguous`] whenever the request may
    /// have been applied — including a 2xx whose body cannot be read.
    fn send(
        &mut self,
        client: &HttpClient,
        request: &SinkRequest,
    ) -> impl Future<Output = Result<String, HttpError>> + Send;

    /// The sink rows of `account` dated `from..=to` that carry one of
    /// `markers`, as marker → remote id. Follows the listing's pagination;
    /// a listed row that cannot be read is an error, never "not found".
    fn find(
        &mut self,
        client: &HttpClient,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
        markers: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, String>, SinkError>> + Send;

    /// Once the row `remote_id` exists (sent or found): the request's
    /// follow-up (mibudge: the budget split) and, for a correction, deleting
    /// the row it replaces. Idempotent (a row already deleted is fine).
    fn complete(
        &mut self,
        _client: &HttpClient,
        _request: &SinkRequest,
        _remote_id: &str,
    ) -> impl Future<Output = Result<(), HttpError>> + Send {
        async { Ok(()) }
    }

    /// After the last delivery of a sink account in this run (mibudge: mark-imported).
    fn account_done(
        &mut self,
        client: &HttpClient,
        account: &str,
        latest_posted: NaiveDate,
    ) -> impl Future<Output = Result<(), HttpError>> + Send;

    /// `bankpipe check`: log in with the credentials and verify what the
    /// configuration names exists on the sink (household, mapped accounts,
    /// budgets). Returns one line per finding, `Ok` or a problem.
    ///
    /// # Errors
    /// The sink cannot be reached or refuses the credentials.
    fn check(&mut self, client: &HttpClient) -> impl Future<Output = Result<Vec<Finding>, SinkError>> + Send;

    /// `true` when an error status is permanent for that transaction
    /// (validation): recorded as failed, the rest proceeds.
    fn is_permanent(&self, error: &HttpError) -> bool {
        matches!(error.status(), Some(400 | 404 | 409 | 422))
    }

    /// `Some(message)` when an error stops the sink for the run (plan limit).
    fn stops_the_run(&self, _error: &HttpError) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_bp_and_16_hex_of_the_canonical_id() {
        let id = CanonicalId::for_transaction("truv", "a", "1");
        let m = marker(&id, 0);
        assert_eq!(m.len(), 18);
        assert!(m.starts_with("bp"));
        assert_eq!(&m[2..], &id.to_string()[..16]);
        let corrected = [marker(&id, 1), marker(&id, 2)];
        assert!(corrected.iter().all(|c| c.len() == 18 && *c != m && markers_in(&format!("#{c}")) == [c.as_str()]));
        assert_ne!(corrected[0], corrected[1]);
    }

    #[test]
    fn mapping_keys_may_name_the_source() {
        let m: std::collections::BTreeMap<String, String> = [
            ("firefly:1".to_owned(), "A".to_owned()),
            ("1".to_owned(), "B".to_owned()),
            ("chk".to_owned(), "C".to_owned()),
        ]
        .into();
        assert_eq!(mapped_account(&m, "firefly", "1").map(String::as_str), Some("A"), "qualified first");
        assert_eq!(mapped_account(&m, "truv", "1").map(String::as_str), Some("B"));
        assert_eq!(mapped_account(&m, "truv", "chk").map(String::as_str), Some("C"));
        assert_eq!(mapped_account(&m, "truv", "nope"), None);
    }

    #[test]
    fn markers_are_found_only_as_whole_hashtags() {
        let text = "Coffee #bp0123456789abcdef and #BP0123456789abcdef #bp0123456789abcdeff #bp0123456789abcde #bp00000000000000ff-x #bpfedcba9876543210";
        assert_eq!(markers_in(text), ["bp0123456789abcdef", "bpfedcba9876543210"]);
        assert!(markers_in("").is_empty());
        assert!(markers_in("#bp").is_empty());
        assert_eq!(markers_in("#bp0123456789abcdef"), ["bp0123456789abcdef"]);
    }
}

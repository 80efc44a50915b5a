//! What every delivering sink provides to the outbox.

use std::future::Future;

use bankpipe_http::{HttpClient, HttpError, Method};
use bankpipe_model::Transaction;
use chrono::NaiveDate;
use serde_json::Value;

/// The fields a sink's listing is matched on when reconciling an
/// `in_flight` delivery: sink account, date, amount (canonical text) and
/// payee or description. Identical keys are paired one by one, by count.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchKey {
    /// The sink's account id.
    pub account: String,
    /// The booking (posted) date the sink stores.
    pub date: NaiveDate,
    /// Amount as the sink stores it (Trupocket: signed cents; mibudge: signed decimal).
    pub amount: String,
    /// Payee (Trupocket) or raw description (mibudge).
    pub text: String,
}

/// One request a delivery makes.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkRequest {
    /// HTTP method.
    pub method: Method,
    /// Path relative to the sink's base URL.
    pub path: String,
    /// JSON body.
    pub body: Value,
    /// How to find the result in the sink's listing.
    pub key: MatchKey,
}

/// What to do with one transaction for one sink.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Send this request.
    Send(SinkRequest),
    /// Not now (e.g. its account is not mapped): stays queued; `notice` is
    /// printed once per account per run.
    Skip { account: String, notice: String },
    /// Never (e.g. a currency other than the sink account's): recorded as failed.
    Refuse(String),
}

/// A sink failure that stops the sink for this run.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The HTTP layer failed (rate budget exhausted, auth, transport).
    #[error("{sink}: {source}")]
    Http { sink: String, source: HttpError },
    /// The store failed.
    #[error("{sink}: {source}")]
    Store { sink: String, source: bankpipe_store::StoreError },
    /// The sink refused for the rest of the run (plan limit).
    #[error("{sink}: {message}")]
    Stopped { sink: String, message: String },
    /// Configuration problem (missing variable, bad mapping).
    #[error("{sink}: {message}")]
    Config { sink: String, message: String },
    /// The sink answered something unusable.
    #[error("{sink}: {message}")]
    Protocol { sink: String, message: String },
}

/// A delivering sink. The outbox calls, per run: `prepare` once, `plan`
/// and `send` per transaction, `list` to reconcile, `account_done` after
/// each account's batch.
pub trait Sink: Send {
    /// The configured sink name.
    fn name(&self) -> &str;

    /// Log in, read categories/accounts the sink needs (once per run).
    fn prepare(&mut self, client: &HttpClient) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Decide what to do with a transaction (may create a mapped account or
    /// category on the sink when the config allows).
    fn plan(&mut self, client: &HttpClient, tx: &Transaction) -> impl Future<Output = Result<Plan, SinkError>> + Send;

    /// Send one request; returns the sink's id of the created transaction.
    /// Errors are the HTTP layer's (Ambiguous, Status, RateBudgetExhausted…).
    fn send(
        &mut self,
        client: &HttpClient,
        tx: &Transaction,
        request: &SinkRequest,
    ) -> impl Future<Output = Result<String, HttpError>> + Send;

    /// The sink's transactions of `account` dated `from..=to`, as (id, key).
    fn list(
        &mut self,
        client: &HttpClient,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<Vec<(String, MatchKey)>, HttpError>> + Send;

    /// After the last delivery of a sink account in this run (mibudge: mark-imported).
    fn account_done(
        &mut self,
        client: &HttpClient,
        account: &str,
        latest_posted: NaiveDate,
    ) -> impl Future<Output = Result<(), HttpError>> + Send;

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

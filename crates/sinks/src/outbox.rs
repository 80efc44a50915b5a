//! The delivery ledger, or transactional outbox (DESIGN §6): exactly once
//! per (sink, transaction), across crashes (kill -9 included), lost
//! responses, ambiguous failures and rate limits.
//!
//! 1. Queue every deliverable transaction not yet queued.
//! 2. Reconcile every `in_flight` delivery — one whose outcome is unknown
//!    because the process died or the response was lost — by searching the
//!    sink for **its idempotency marker** (never by amount or text: a row
//!    without our marker may be the user's own). Found: `delivered` with that
//!    remote id (and its follow-up, the mibudge budget split, is made). Not
//!    found: the **stored** request is sent again.
//! 3. Deliver the queue: plan the request, store it with the marker and
//!    mark `in_flight` — **committed before the request leaves**, a few
//!    rows per commit (`BEGIN_BATCH`) — then record `delivered(remote
//!    id)`. Any failure after which the request may
//!    have been applied (timeout, reset, 5xx or an HTML page on a POST, a 2xx
//!    whose body cannot be read) goes through the same marker search, never
//!    a blind resend. A request answered the same way
//!    [`MAX_SAME_REJECTIONS`] times in a row and never found, or sent
//!    [`MAX_SENDS`] times in all, ends `failed` with the last reason. Validation
//!    errors are `failed(reason)` and the rest proceeds; a plan limit stops
//!    the sink for the run; an exhausted rate budget stops it with the queue
//!    kept (exit 75, resumed next run).
//!
//! Every state change is conditional on the state the outbox last saw
//! (rows affected checked), so two workers can never both send one row.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bankpipe_http::{HttpClient, HttpError};
use bankpipe_store::{Begin, DeliveryLedger, DeliveryState, InFlight, TransactionStore};
use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::sink::{marker, Plan, Sink, SinkError, SinkRequest};

/// What one delivery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Sink name.
    pub sink: String,
    /// Newly queued.
    pub queued: u64,
    /// Delivered in this run (sent, or found by reconciliation).
    pub delivered: u64,
    /// `in_flight` rows found on the sink by their marker.
    pub reconciled_found: u64,
    /// Sends of a stored request again: an in-flight row not found on the
    /// sink by its marker (after an ambiguous answer or a killed run).
    pub reconciled_resent: u64,
    /// Recorded as failed in this run (validation, currency, unanswered).
    pub failed: u64,
    /// Left queued (unmapped accounts).
    pub skipped: u64,
    /// Still `in_flight` at the end of the pass (another worker's, or left
    /// by a stop): reconciled by the next run.
    pub in_flight: u64,
    /// Why the sink stopped early, if it did.
    pub stopped: Option<String>,
    /// Notices (one per unmapped account).
    pub notices: Vec<String>,
}

impl DeliveryReport {
    /// Add another pass's report of the same sink (one worker's delivery
    /// units, DESIGN §7): counts add up, the first stop stands, notices
    /// are kept once each.
    pub fn merge(&mut self, other: DeliveryReport) {
        self.queued += other.queued;
        self.delivered += other.delivered;
        self.reconciled_found += other.reconciled_found;
        self.reconciled_resent += other.reconciled_resent;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.in_flight += other.in_flight;
        if self.stopped.is_none() {
            self.stopped = other.stopped;
        }
        for n in other.notices {
            if !self.notices.contains(&n) {
                self.notices.push(n);
            }
        }
    }
}

const BATCH: u32 = 500;
/// A request answered the same way this many times in a row (an HTML 500
/// every time, say) and never found on the sink is recorded failed with
/// that reason: the server rejects it, retrying will not help.
pub const MAX_SAME_REJECTIONS: u32 = 6;

/// Sends of one stored request, across runs and whatever the outcomes
/// (varying faults, runs killed while it was in flight), after which it is
/// recorded failed with the last reason rather than sent forever.
pub const MAX_SENDS: i64 = 12;

/// The cause recorded when a run finds a request in flight that an earlier
/// run sent: its outcome is unknown, which is no rejection.
const STOPPED: &str = "the previous run stopped before the answer";

/// How one delivery ended in this pass.
enum Settled {
    Delivered {
        reconciled: bool,
    },
    Failed,
    /// Left as it is: another worker moved the row first, or it stays in
    /// flight for the next run to finish.
    Left,
    /// The sink stops for the run (plan limit); the row is back in the queue.
    Stop(String),
}

/// Run one delivery pass of `sink`.
///
/// # Errors
/// [`SinkError`] that stops the run: the HTTP layer (rate budget exhausted
/// → exit 75; auth), the store. Everything decided before it stays recorded.
pub async fn deliver<S: DeliveryLedger + TransactionStore, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    include_pending: bool,
) -> Result<DeliveryReport, SinkError> {
    let name = sink.name().to_owned();
    let corrections = sink.corrects();
    let queued = store
        .enqueue_deliveries(&name, include_pending, corrections)
        .await
        .map_err(|source| SinkError::Store { sink: name.clone(), source })?;
    sink.prepare(client).await?;
    let mut report = deliver_queued(store, sink, client).await?;
    report.queued = queued;
    Ok(report)
}

/// Steps 2 and 3 of a delivery pass (see the module docs) over what is
/// already queued, with a sink already prepared ([`Sink::prepare`]; one
/// worker prepares a sink once for all its delivery units): reconcile what
/// is in flight, then deliver the queue.
/// With a store bound to a delivery unit's lease, only that unit's accounts
/// are read, and every state change holds only while the lease does.
///
/// # Errors
/// As [`deliver`].
pub async fn deliver_queued<S: DeliveryLedger + TransactionStore, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
) -> Result<DeliveryReport, SinkError> {
    let name = sink.name().to_owned();
    let store_err = |source| SinkError::Store { sink: name.clone(), source };
    let mut report = DeliveryReport { sink: name.clone(), ..DeliveryReport::default() };
    let mut latest: BTreeMap<String, NaiveDate> = BTreeMap::new();
    let result = run_pass(store, sink, client, &mut report, &mut latest).await;
    finish_accounts(sink, client, &latest).await;
    report.in_flight = count_in_flight(store, &name).await.map_err(store_err)?;
    result.map(|()| report)
}

async fn run_pass<S: DeliveryLedger + TransactionStore, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    report: &mut DeliveryReport,
    latest: &mut BTreeMap<String, NaiveDate>,
) -> Result<(), SinkError> {
    let name = sink.name().to_owned();
    let store_err = |source| SinkError::Store { sink: name.clone(), source };

    // 2. Reconcile what an earlier run (or a dead worker) left in flight.
    let mut after: Option<String> = None;
    loop {
        let batch = store.in_flight(&name, after.as_deref(), BATCH).await.map_err(store_err)?;
        let Some(last) = batch.last() else { break };
        after = Some(last.transaction_id.clone());
        let mut stored: Vec<(InFlight, SinkRequest)> = Vec::with_capacity(batch.len());
        for row in batch {
            match row.request.as_deref().map(serde_json::from_str::<SinkRequest>) {
                Some(Ok(request)) => stored.push((row, request)),
                other => {
                    let why = match other {
                        Some(Err(e)) => format!("its stored request cannot be read ({e})"),
                        _ => "no request was stored with it".to_owned(),
                    };
                    let reason = format!(
                        "in flight, but {why}: it cannot be reconciled by its marker, so it is not resent blindly; check the sink"
                    );
                    if settle(store, &name, &row.transaction_id, DeliveryState::Failed, None, Some(&reason)).await? {
                        report.failed += 1;
                    }
                }
            }
        }
        let found = find_all(sink, client, &stored).await?;
        for (row, request) in stored {
            let outcome = match found.get(&request.marker) {
                Some(remote) => finish(store, sink, client, &row.transaction_id, &request, remote, true).await?,
                None => {
                    let resends = &mut report.reconciled_resent;
                    resend(store, sink, client, &row.transaction_id, &request, row.attempts, resends).await?
                }
            };
            count(report, latest, &request, outcome);
            if report.stopped.is_some() {
                return Ok(());
            }
        }
    }

    // 3. Deliver the queue, once through, in (account, date) order.
    let mut cursor = None;
    let mut notified: BTreeSet<String> = BTreeSet::new();
    loop {
        let batch = store.deliveries(&name, DeliveryState::Pending, cursor.as_ref(), BATCH).await.map_err(store_err)?;
        let Some(last) = batch.last().map(|q| q.transaction.clone()) else { break };
        let mut ready: Vec<Ready<'_>> = Vec::with_capacity(BEGIN_BATCH);
        for queued in &batch {
            let tx = &queued.transaction;
            let id = tx.id.to_string();
            let marker = marker(&tx.id, queued.revision);
            let mut request = match sink.plan(client, tx, &marker).await? {
                Plan::Skip { account, notice } => {
                    report.skipped += 1;
                    if !notice.is_empty() && notified.insert(account) {
                        tracing::warn!(sink = %name, "{notice}");
                        report.notices.push(notice);
                    }
                    continue;
                }
                Plan::Refuse(reason) => {
                    if store
                        .settle_delivery(&name, &id, DeliveryState::Pending, DeliveryState::Failed, None, Some(&reason))
                        .await
                        .map_err(store_err)?
                    {
                        report.failed += 1;
                    }
                    continue;
                }
                Plan::Covered(reason) => {
                    if store
                        .settle_delivery(
                            &name,
                            &id,
                            DeliveryState::Pending,
                            DeliveryState::Delivered,
                            None,
                            Some(&reason),
                        )
                        .await
                        .map_err(store_err)?
                    {
                        report.delivered += 1;
                    }
                    continue;
                }
                Plan::Send(request) => request,
            };
            debug_assert_eq!(request.marker, marker);
            request.replaces.clone_from(&queued.replaces);
            let text = serde_json::to_string(&request).expect("requests serialize");
            ready.push(Ready { tx, request, text });
            if ready.len() == BEGIN_BATCH {
                send_ready(store, sink, client, report, latest, &mut ready).await?;
                if report.stopped.is_some() {
                    return Ok(());
                }
            }
        }
        send_ready(store, sink, client, report, latest, &mut ready).await?;
        if report.stopped.is_some() {
            return Ok(());
        }
        cursor = Some(last);
    }
    Ok(())
}

/// Planned deliveries go in flight this many at a time: one durable
/// commit for all of them before the first request leaves (DESIGN §6).
/// A crash leaves at most this many in flight for the next pass to
/// reconcile by marker.
const BEGIN_BATCH: usize = 16;

/// A planned delivery waiting to go in flight.
struct Ready<'a> {
    tx: &'a bankpipe_model::Transaction,
    request: SinkRequest,
    /// `request` as stored (JSON).
    text: String,
}

/// Put `ready` in flight (one commit), then send each in turn and record
/// its outcome. When the sink stops or fails, the rows not sent yet go back
/// to the queue (left in flight, and reconciled next pass, if even that
/// fails).
async fn send_ready<S: DeliveryLedger + TransactionStore, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    report: &mut DeliveryReport,
    latest: &mut BTreeMap<String, NaiveDate>,
    ready: &mut Vec<Ready<'_>>,
) -> Result<(), SinkError> {
    if ready.is_empty() {
        return Ok(());
    }
    let name = sink.name().to_owned();
    let rows: Vec<Begin<'_>> =
        ready.iter().map(|r| Begin { tx: r.tx, marker: &r.request.marker, request: &r.text }).collect();
    let moved =
        store.begin_deliveries(&name, &rows).await.map_err(|source| SinkError::Store { sink: name.clone(), source })?;
    drop(rows);
    // Rows another worker took meanwhile are left to it.
    let mut begun = ready.drain(..).zip(moved).filter_map(|(r, moved)| moved.then_some(r));
    while let Some(r) = begun.next() {
        let id = r.tx.id.to_string();
        let outcome = dispatch(store, sink, client, &id, &r.request, 1, &mut report.reconciled_resent).await;
        let stop = match outcome {
            Ok(outcome) => {
                count(report, latest, &r.request, outcome);
                report.stopped.is_some().then_some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        };
        if let Some(result) = stop {
            for unsent in begun {
                let id = unsent.tx.id.to_string();
                if let Err(e) = settle(store, &name, &id, DeliveryState::Pending, None, None).await {
                    tracing::warn!(sink = %name, transaction = %id, "left in flight for the next pass: {e}");
                }
            }
            return result;
        }
    }
    Ok(())
}

fn count(
    report: &mut DeliveryReport,
    latest: &mut BTreeMap<String, NaiveDate>,
    request: &SinkRequest,
    outcome: Settled,
) {
    match outcome {
        Settled::Delivered { reconciled } => {
            report.delivered += 1;
            if reconciled {
                report.reconciled_found += 1;
            }
            let d = latest.entry(request.account.clone()).or_insert(request.date);
            *d = (*d).max(request.date);
        }
        Settled::Failed => report.failed += 1,
        Settled::Left => {}
        Settled::Stop(message) => report.stopped = Some(message),
    }
}

/// Send the stored request of an `in_flight` delivery (whose `attempts`
/// already counts this send) and settle it.
async fn dispatch<S: DeliveryLedger + TransactionStore, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    id: &str,
    request: &SinkRequest,
    mut attempts: i64,
    resends: &mut u64,
) -> Result<Settled, SinkError> {
    let name = sink.name().to_owned();
    let mut last: Option<String> = None;
    let mut same_in_a_row = 0u32;
    loop {
        let cause = match sink.send(client, request).await {
            Ok(remote) => return finish(store, sink, client, id, request, &remote, false).await,
            Err(HttpError::Ambiguous { cause, .. }) => cause,
            Err(e) => {
                if let Some(message) = sink.stops_the_run(&e) {
                    settle(store, &name, id, DeliveryState::Pending, None, None).await?;
                    return Ok(Settled::Stop(message));
                }
                if sink.is_permanent(&e) {
                    let moved = settle(store, &name, id, DeliveryState::Failed, None, Some(&e.to_string())).await?;
                    return Ok(if moved { Settled::Failed } else { Settled::Left });
                }
                // Not processed (rate budget, connect error, 401, 429 after
                // retries): back to the queue, and this sink stops for the run.
                settle(store, &name, id, DeliveryState::Pending, None, None).await?;
                return Err(SinkError::Http { sink: name, source: e });
            }
        };
        tracing::warn!(sink = %name, transaction = %id, %cause, "outcome unknown; looking for its marker");
        let from = request.date.checked_sub_days(Days::new(1)).unwrap_or(request.date);
        let to = request.date.checked_add_days(Days::new(1)).unwrap_or(request.date);
        let found = sink.find(client, &request.account, from, to, &[request.marker.as_str()]).await?;
        if let Some(remote) = found.get(&request.marker) {
            return finish(store, sink, client, id, request, remote, true).await;
        }
        same_in_a_row = if last.as_deref() == Some(cause.as_str()) { same_in_a_row + 1 } else { 1 };
        last = Some(cause.clone());
        match resend_or_fail(store, &name, id, attempts, &cause, same_in_a_row).await? {
            Some(next) => {
                attempts = next;
                *resends += 1;
                // A short pause: a server that failed may recover.
                tokio::time::sleep(Duration::from_millis((50 * attempts as u64).min(1_000))).await;
            }
            None => return Ok(Settled::Failed),
        }
    }
}

/// A not-found `in_flight` row left by an earlier run: send its stored
/// request again, or record it failed once it was sent [`MAX_SENDS`] times.
async fn resend<S: DeliveryLedger + TransactionStore, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    id: &str,
    request: &SinkRequest,
    attempts: i64,
    resends: &mut u64,
) -> Result<Settled, SinkError> {
    match resend_or_fail(store, sink.name(), id, attempts, STOPPED, 0).await? {
        Some(next) => {
            *resends += 1;
            tracing::info!(sink = %sink.name(), transaction = %id, "not found on the sink by its marker; sending the stored request again");
            let outcome = dispatch(store, sink, client, id, request, next, resends).await?;
            Ok(outcome)
        }
        None => Ok(Settled::Failed),
    }
}

/// `Some(attempts)` after counting one more send of an in-flight row, or
/// `None` when it is recorded failed — the same rejection
/// [`MAX_SAME_REJECTIONS`] times in a row (`same_in_a_row`), or
/// [`MAX_SENDS`] sends in all, never found on the sink — or was moved by
/// another worker.
async fn resend_or_fail<S: DeliveryLedger + TransactionStore>(
    store: &S,
    sink: &str,
    id: &str,
    attempts: i64,
    cause: &str,
    same_in_a_row: u32,
) -> Result<Option<i64>, SinkError> {
    let store_err = |source| SinkError::Store { sink: sink.to_owned(), source };
    if same_in_a_row >= MAX_SAME_REJECTIONS || attempts >= MAX_SENDS {
        let how = if same_in_a_row >= MAX_SAME_REJECTIONS {
            format!("answered so {same_in_a_row} times in a row")
        } else {
            format!("sent {attempts} times")
        };
        let reason = format!("{cause} ({how}, never answered and not found on the sink by its marker)");
        settle(store, sink, id, DeliveryState::Failed, None, Some(&reason)).await?;
        tracing::error!(sink, transaction = %id, "{reason}");
        return Ok(None);
    }
    if store.resend_delivery(sink, id, attempts, cause).await.map_err(store_err)? {
        Ok(Some(attempts + 1))
    } else {
        Ok(None)
    }
}

/// The row `remote` exists (sent, or found by its marker): make its
/// follow-up (budget split; for a correction, delete the row it replaces),
/// then record it delivered. A correction whose old row could not be
/// deleted stays in flight, so the next run finds it and deletes again.
async fn finish<S: DeliveryLedger + TransactionStore, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    id: &str,
    request: &SinkRequest,
    remote: &str,
    reconciled: bool,
) -> Result<Settled, SinkError> {
    if let Err(e) = sink.complete(client, request, remote).await {
        tracing::warn!(sink = %sink.name(), remote, error = %e, "could not finish the delivery (delete of the replaced row); it stays in flight for the next run");
        return Ok(Settled::Left);
    }
    let moved = settle(store, sink.name(), id, DeliveryState::Delivered, Some(remote), None).await?;
    if let Some(other) = &request.covers {
        // The other leg of the transfer is on the sink in this row.
        let reason = format!("delivered within sink row {remote}, the transfer sent for {id}");
        store
            .settle_delivery(sink.name(), other, DeliveryState::Pending, DeliveryState::Delivered, None, Some(&reason))
            .await
            .map_err(|source| SinkError::Store { sink: sink.name().to_owned(), source })?;
    }
    Ok(if moved { Settled::Delivered { reconciled } } else { Settled::Left })
}

/// Move an `in_flight` delivery to `to`, if it still is in flight.
async fn settle<S: DeliveryLedger + TransactionStore>(
    store: &S,
    sink: &str,
    id: &str,
    to: DeliveryState,
    remote: Option<&str>,
    reason: Option<&str>,
) -> Result<bool, SinkError> {
    let moved = store
        .settle_delivery(sink, id, DeliveryState::InFlight, to, remote, reason)
        .await
        .map_err(|source| SinkError::Store { sink: sink.to_owned(), source })?;
    if !moved {
        tracing::warn!(sink, transaction = %id, "delivery was moved by another worker; leaving it");
    }
    Ok(moved)
}

/// Search the sink for the markers of `rows`, per sink account and date
/// (widened by a day on each side): marker → remote id.
async fn find_all<K: Sink>(
    sink: &mut K,
    client: &HttpClient,
    rows: &[(InFlight, SinkRequest)],
) -> Result<std::collections::HashMap<String, String>, SinkError> {
    let mut by_account: BTreeMap<(&str, NaiveDate), Vec<&str>> = BTreeMap::new();
    for (_, r) in rows {
        by_account.entry((r.account.as_str(), r.date)).or_default().push(r.marker.as_str());
    }
    let mut found = std::collections::HashMap::new();
    for ((account, date), markers) in by_account {
        let from = date.checked_sub_days(Days::new(1)).unwrap_or(date);
        let to = date.checked_add_days(Days::new(1)).unwrap_or(date);
        found.extend(sink.find(client, account, from, to, &markers).await?);
    }
    Ok(found)
}

async fn count_in_flight<S: DeliveryLedger + TransactionStore>(
    store: &S,
    sink: &str,
) -> Result<u64, bankpipe_store::StoreError> {
    let mut n = 0u64;
    let mut after: Option<String> = None;
    loop {
        let batch = store.in_flight(sink, after.as_deref(), BATCH).await?;
        let Some(last) = batch.last() else { return Ok(n) };
        after = Some(last.transaction_id.clone());
        n += batch.len() as u64;
    }
}

/// Tell the sink each account's batch is done (mibudge mark-imported);
/// failures are logged, not fatal (the deliveries themselves are recorded).
async fn finish_accounts<K: Sink>(sink: &mut K, client: &HttpClient, latest: &BTreeMap<String, NaiveDate>) {
    for (account, date) in latest {
        if let Err(e) = sink.account_done(client, account, *date).await {
            tracing::warn!(sink = %sink.name(), %account, error = %e, "could not mark the account's import date");
        }
    }
}

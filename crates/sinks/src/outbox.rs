//! The transactional outbox (DESIGN §6): exactly once per (sink,
//! transaction), across crashes (kill -9 included), ambiguous failures and
//! rate limits.
//!
//! 1. Queue every deliverable transaction not yet queued.
//! 2. Reconcile every `in_flight` delivery — one whose outcome is unknown
//!    because the process died or the response was lost — by listing the
//!    sink (account, date range) and matching amount, date and payee or
//!    description, skipping sink rows already known as delivered and pairing
//!    identical rows one by one by count. Found: `delivered`. Not found:
//!    back to `pending`, to be sent.
//! 3. Deliver the queue: mark `in_flight` and **commit before the POST**,
//!    then record `delivered(remote id)`. An ambiguous failure goes through
//!    the same reconciliation, never a blind retry. Validation errors are
//!    `failed(reason)` and the rest proceeds; a plan limit stops the sink
//!    for the run; an exhausted rate budget stops it with the queue kept
//!    (exit 75, resumed next run).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bankpipe_http::{HttpClient, HttpError};
use bankpipe_model::Transaction;
use bankpipe_store::{DeliveryState, Store};
use chrono::NaiveDate;
use serde::Serialize;

use crate::sink::{MatchKey, Plan, Sink, SinkError};

/// What one delivery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Sink name.
    pub sink: String,
    /// Newly queued.
    pub queued: u64,
    /// Delivered in this run (sent, or found by reconciliation).
    pub delivered: u64,
    /// `in_flight` rows found on the sink by reconciliation.
    pub reconciled_found: u64,
    /// `in_flight` rows not found, sent again.
    pub reconciled_resent: u64,
    /// Refused (validation, currency, missing category): recorded as failed.
    pub failed: u64,
    /// Left queued (unmapped accounts).
    pub skipped: u64,
    /// Why the sink stopped early, if it did.
    pub stopped: Option<String>,
    /// Notices (one per unmapped account).
    pub notices: Vec<String>,
}

const BATCH: u32 = 500;
/// Sends of one transaction within a run before it is left for the next run.
const MAX_ATTEMPTS: u32 = 3;

/// Run one delivery pass of `sink`.
///
/// # Errors
/// [`SinkError`] that stops the run: the HTTP layer (rate budget exhausted
/// → exit 75; auth), the store. Everything decided before it stays recorded.
pub async fn deliver<S: Store, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    include_pending: bool,
) -> Result<DeliveryReport, SinkError> {
    let name = sink.name().to_owned();
    let store_err = |source| SinkError::Store { sink: name.clone(), source };
    let mut report = DeliveryReport { sink: name.clone(), ..DeliveryReport::default() };
    report.queued = store.enqueue_deliveries(&name, include_pending).await.map_err(store_err)?;
    sink.prepare(client).await?;

    // 2. Reconcile what an earlier run left in flight.
    loop {
        let in_flight = store.deliveries(&name, DeliveryState::InFlight, None, BATCH).await.map_err(store_err)?;
        if in_flight.is_empty() {
            break;
        }
        let mut planned = Vec::with_capacity(in_flight.len());
        for tx in in_flight {
            match sink.plan(client, &tx).await? {
                Plan::Send(req) => planned.push((tx, req.key)),
                // Mapping changed since it was sent: decide again from the queue.
                _ => store
                    .set_delivery(&name, &tx.id.to_string(), DeliveryState::Pending, None, None)
                    .await
                    .map_err(store_err)?,
            }
        }
        let found = reconcile(store, sink, client, &planned).await?;
        for (tx, _) in &planned {
            let id = tx.id.to_string();
            match found.get(&id) {
                Some(remote) => {
                    store
                        .set_delivery(&name, &id, DeliveryState::Delivered, Some(remote), None)
                        .await
                        .map_err(store_err)?;
                    report.reconciled_found += 1;
                    report.delivered += 1;
                }
                None => {
                    store.set_delivery(&name, &id, DeliveryState::Pending, None, None).await.map_err(store_err)?;
                    report.reconciled_resent += 1;
                }
            }
        }
    }

    // 3. Deliver the queue, once through, in (account, date) order.
    let mut cursor: Option<Transaction> = None;
    let mut notified: BTreeSet<String> = BTreeSet::new();
    let mut latest: BTreeMap<String, NaiveDate> = BTreeMap::new();
    'batches: loop {
        let batch = store.deliveries(&name, DeliveryState::Pending, cursor.as_ref(), BATCH).await.map_err(store_err)?;
        let Some(last) = batch.last().cloned() else { break };
        for tx in &batch {
            let id = tx.id.to_string();
            let request = match sink.plan(client, tx).await? {
                Plan::Skip { account, notice } => {
                    report.skipped += 1;
                    if notified.insert(account) {
                        tracing::warn!(sink = %name, "{notice}");
                        report.notices.push(notice);
                    }
                    continue;
                }
                Plan::Refuse(reason) => {
                    store
                        .set_delivery(&name, &id, DeliveryState::Failed, None, Some(&reason))
                        .await
                        .map_err(store_err)?;
                    report.failed += 1;
                    continue;
                }
                Plan::Send(request) => request,
            };
            let mut attempts = 0;
            loop {
                attempts += 1;
                store.set_delivery(&name, &id, DeliveryState::InFlight, None, None).await.map_err(store_err)?;
                match sink.send(client, tx, &request).await {
                    Ok(remote) => {
                        store
                            .set_delivery(&name, &id, DeliveryState::Delivered, Some(&remote), None)
                            .await
                            .map_err(store_err)?;
                        report.delivered += 1;
                        let d = latest.entry(request.key.account.clone()).or_insert(tx.booking_date);
                        *d = (*d).max(tx.booking_date);
                        break;
                    }
                    Err(HttpError::Ambiguous { cause, .. }) => {
                        tracing::warn!(sink = %name, transaction = %id, %cause, "outcome unknown; reconciling");
                        let found = reconcile(store, sink, client, &[(tx.clone(), request.key.clone())]).await?;
                        if let Some(remote) = found.get(&id) {
                            store
                                .set_delivery(&name, &id, DeliveryState::Delivered, Some(remote), None)
                                .await
                                .map_err(store_err)?;
                            report.delivered += 1;
                            report.reconciled_found += 1;
                            break;
                        }
                        report.reconciled_resent += 1;
                        if attempts >= MAX_ATTEMPTS {
                            // Left in flight: the next run reconciles it first.
                            break;
                        }
                    }
                    Err(e) => {
                        if let Some(message) = sink.stops_the_run(&e) {
                            store
                                .set_delivery(&name, &id, DeliveryState::Pending, None, None)
                                .await
                                .map_err(store_err)?;
                            report.stopped = Some(message);
                            break 'batches;
                        }
                        if sink.is_permanent(&e) {
                            store
                                .set_delivery(&name, &id, DeliveryState::Failed, None, Some(&e.to_string()))
                                .await
                                .map_err(store_err)?;
                            report.failed += 1;
                            break;
                        }
                        // Not sent (rate budget, connect error) or refused before
                        // processing (401, 429 after retries): back to the queue,
                        // and this sink stops for the run.
                        store.set_delivery(&name, &id, DeliveryState::Pending, None, None).await.map_err(store_err)?;
                        finish_accounts(sink, client, &latest).await;
                        return Err(SinkError::Http { sink: name, source: e });
                    }
                }
            }
        }
        cursor = Some(last);
    }
    finish_accounts(sink, client, &latest).await;
    Ok(report)
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

/// Find `(transaction, key)`s on the sink: list each (account, date range),
/// drop rows already known as delivered, then pair equal keys by count.
/// Returns transaction id → remote id for those found.
async fn reconcile<S: Store, K: Sink>(
    store: &S,
    sink: &mut K,
    client: &HttpClient,
    items: &[(Transaction, MatchKey)],
) -> Result<HashMap<String, String>, SinkError> {
    let name = sink.name().to_owned();
    let mut by_account: BTreeMap<&str, Vec<&(Transaction, MatchKey)>> = BTreeMap::new();
    for item in items {
        by_account.entry(item.1.account.as_str()).or_default().push(item);
    }
    let mut found = HashMap::new();
    for (account, group) in by_account {
        let from = group.iter().map(|(_, k)| k.date).min().expect("non-empty");
        let to = group.iter().map(|(_, k)| k.date).max().expect("non-empty");
        let listed = sink
            .list(client, account, from, to)
            .await
            .map_err(|source| SinkError::Http { sink: name.clone(), source })?;
        // Sink rows already accounted for by delivered transactions of these source accounts.
        let mut known: BTreeSet<String> = BTreeSet::new();
        let sources: BTreeSet<(&str, &str)> =
            group.iter().map(|(t, _)| (&*t.source, t.source_account_id.as_str())).collect();
        for (source, source_account) in sources {
            known.extend(
                store
                    .delivered_remote_ids(&name, source, source_account, from, to)
                    .await
                    .map_err(|e| SinkError::Store { sink: name.clone(), source: e })?,
            );
        }
        let mut available: HashMap<&MatchKey, Vec<&str>> = HashMap::new();
        for (remote, key) in &listed {
            if !known.contains(remote) {
                available.entry(key).or_default().push(remote.as_str());
            }
        }
        for (tx, key) in group {
            if let Some(remote) = available.get_mut(key).and_then(Vec::pop) {
                found.insert(tx.id.to_string(), remote.to_owned());
            }
        }
    }
    Ok(found)
}

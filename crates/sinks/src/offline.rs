//! Offline delivery plans: the exact requests each sink would receive,
//! decided from the configuration alone — no HTTP, no state. Used by
//! `replay --sink-requests` (golden files for CI) and `sync --dry-run`.
//!
//! Each sink's own pure plan decides (`trupocket::plan::plan`,
//! `mibudge::plan::plan`, the functions the live sinks call), so a golden
//! request is the request a sync sends for the same facts. What cannot be
//! known offline is given to it as a fact: a sink account must be mapped in
//! `[sinks.accounts]` (accounts bankpipe would create are shown as skipped),
//! Trupocket categories are assumed to exist and no transfer counterpart is
//! known (each leg is its own row), mibudge's currencies and bank account
//! currencies are not known (not checked) and budget ids neither (no
//! split follow-up).

use bankpipe_config::{SinkConfig, SinkKind};
use bankpipe_enrich::categorize::sink_maps::SinkCategoryMaps;
use bankpipe_model::Transaction;
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

use crate::sink::{marker, Plan};
use crate::{mibudge, trupocket};

/// One line of a plan file.
#[derive(Debug, Serialize)]
pub struct PlannedRequest<'a> {
    /// Canonical transaction id.
    pub transaction: String,
    /// `send`, `skip` or `refuse`.
    pub action: &'static str,
    /// HTTP method (send only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    /// Path relative to the sink's base URL (send only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// JSON body (send only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Why not sent (skip, refuse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The plan of `sink` for a transaction that counts (callers filter
/// deliverable rows: posted unless `deliver_pending`, never MEMO, duplicate
/// or superseded), with the offline facts of the module docs.
///
/// `zone` is the booking zone (`sync.timezone`).
pub fn plan(sink: &SinkConfig, maps: &SinkCategoryMaps, zone: Tz, tx: &Transaction) -> Plan {
    let mapped = crate::sink::mapped_account(&sink.accounts, &tx.source, &tx.source_account_id);
    let notice = format!("source account {}:{} is not mapped in [sinks.accounts]", tx.source, tx.source_account_id);
    let account = mapped.map(String::as_str).ok_or(notice.as_str());
    let marker = marker(&tx.id, 0);
    match &sink.kind {
        SinkKind::Trupocket(tp) => {
            let settings = match trupocket::plan::Settings::of(tp, maps) {
                Ok(s) => s,
                Err(reason) => return Plan::Refuse(reason),
            };
            let facts = trupocket::plan::Facts {
                account,
                transfer: Some(&trupocket::plan::Transfer::None),
                categories: trupocket::plan::Categories::AssumedToExist,
            };
            // Every fact is given: the plan asks for none.
            trupocket::plan::plan(&settings, &facts, tx, &marker)
                .unwrap_or_else(|needs| unreachable!("offline, every fact is given: {needs:?}"))
        }
        SinkKind::Mibudge(_) => {
            let facts =
                mibudge::plan::Facts { account, accepted: None, account_currency: Some(&Ok(None)), budget: None };
            mibudge::plan::plan(&facts, tx, &marker, zone)
                .unwrap_or_else(|needs| unreachable!("offline, every fact is given: {needs:?}"))
        }
        SinkKind::File => Plan::Skip { account: String::new(), notice: "file sinks take no requests".into() },
    }
}

/// The plan as a JSON line.
pub fn line(tx: &Transaction, plan: &Plan) -> String {
    let transaction = tx.id.to_string();
    let planned = match plan {
        Plan::Send(r) => PlannedRequest {
            transaction,
            action: "send",
            method: Some(r.method.as_str()),
            path: Some(r.path.clone()),
            body: Some(r.body.clone()),
            reason: None,
        },
        Plan::Skip { notice, .. } => PlannedRequest {
            transaction,
            action: "skip",
            method: None,
            path: None,
            body: None,
            reason: Some(notice.clone()),
        },
        Plan::Covered(reason) => PlannedRequest {
            transaction,
            action: "covered",
            method: None,
            path: None,
            body: None,
            reason: Some(reason.clone()),
        },
        Plan::Refuse(reason) => PlannedRequest {
            transaction,
            action: "refuse",
            method: None,
            path: None,
            body: None,
            reason: Some(reason.clone()),
        },
    };
    serde_json::to_string(&planned).expect("plans serialize")
}

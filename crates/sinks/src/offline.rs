//! Offline delivery plans: the exact requests each sink would receive,
//! decided from the configuration alone — no HTTP, no state. Used by
//! `replay --sink-requests` (golden files for CI) and `sync --dry-run`.
//!
//! Offline, a sink account must be mapped in `[sinks.accounts]` (accounts
//! bankpipe would create are shown as skipped), Trupocket categories are
//! assumed to exist, and mibudge account currencies are unknown, so the
//! currency check is the Trupocket household currency only.

use bankpipe_config::{SinkConfig, SinkKind};
use bankpipe_enrich::categorize::sink_maps::SinkCategoryMaps;
use bankpipe_model::{Currency, Transaction};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

use crate::sink::{marker, Plan};

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
/// or superseded).
///
/// `zone` is the booking zone (`sync.timezone`). Offline, mibudge budget
/// ids are unknown, so no split follow-up is planned.
pub fn plan(sink: &SinkConfig, maps: &SinkCategoryMaps, zone: Tz, tx: &Transaction) -> Plan {
    let Some(account) = crate::sink::mapped_account(&sink.accounts, &tx.source, &tx.source_account_id) else {
        return Plan::Skip {
            account: format!("{}:{}", tx.source, tx.source_account_id),
            notice: format!("source account {}:{} is not mapped in [sinks.accounts]", tx.source, tx.source_account_id),
        };
    };
    match &sink.kind {
        SinkKind::Trupocket(tp) => {
            let household_currency = Currency::from_code(&tp.currency).ok();
            if household_currency.is_some_and(|c| c != tx.amount.currency()) {
                return Plan::Refuse(format!(
                    "amount in {} but the Trupocket household is in {}; bankpipe never converts currencies",
                    tx.amount.currency(),
                    tp.currency
                ));
            }
            let category = maps.trupocket(tx.category.as_deref().unwrap_or("Uncategorized")).to_owned();
            match crate::trupocket::payload::transaction(tx, &marker(&tx.id, 0), &tp.household_id, account, &category) {
                Ok(request) => Plan::Send(request),
                Err(reason) => Plan::Refuse(reason),
            }
        }
        SinkKind::Mibudge(_) => {
            if tx.amount.amount().normalize().scale() > 2 {
                return Plan::Refuse(format!("amount {} has more than 2 decimals", tx.amount));
            }
            Plan::Send(crate::mibudge::payload::transaction(tx, &marker(&tx.id, 0), account, zone, None))
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

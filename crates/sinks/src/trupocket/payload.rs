//! Trupocket request bodies and listing keys.

use bankpipe_model::{Account, Status, Transaction};
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::sink::{markers_in, SinkRequest};

/// `chkg`, `svgs` or `cc` for a source account type.
fn account_type(account: Option<&Account>) -> &'static str {
    match account.and_then(|a| a.account_type.as_deref()).map(str::to_ascii_uppercase).as_deref() {
        Some("SAVINGS") => "svgs",
        Some("CREDIT_CARD" | "LINE_OF_CREDIT") => "cc",
        _ => "chkg",
    }
}

/// Body of `POST …/detailed-tracking/accounts` for a source account.
pub(super) fn new_account(source: &str, account_id: &str, account: Option<&Account>) -> Value {
    let name = account.and_then(|a| a.name.clone()).unwrap_or_else(|| format!("{source} {account_id}"));
    let name = match account.and_then(|a| a.mask.as_deref()) {
        Some(mask) => format!("{name} ••{mask}"),
        None => name,
    };
    json!({"type": account_type(account), "name": name, "balance": 0})
}

/// Unix seconds of 00:00 UTC of a date.
fn unix_seconds(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp()
}

/// The memo of a created row: the bank's description (its `#` dropped, so
/// a store number such as `STARBUCKS #1234` does not become a Trupocket
/// hashtag) followed by the delivery's marker as a hashtag.
fn memo(description: &str, marker: &str) -> String {
    let text: String = description.replace('#', "");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        format!("#{marker}")
    } else {
        format!("{text} #{marker}")
    }
}

/// The request creating `tx` in `account` under `category`, carrying the
/// delivery's idempotency marker in its memo; `Err` with a reason when the
/// amount cannot be sent exactly in cents.
pub(crate) fn transaction(
    tx: &Transaction,
    marker: &str,
    household: &str,
    account: &str,
    category: &str,
) -> Result<SinkRequest, String> {
    let cents = tx.amount.abs().to_minor_units().map_err(|e| format!("amount cannot be sent in cents: {e}"))?;
    let payee = tx.merchant_name.clone().filter(|m| !m.trim().is_empty()).unwrap_or_else(|| tx.description.clone());
    let payee = if payee.trim().is_empty() { "(no description)".to_owned() } else { payee };
    let cashflow = if tx.amount.is_negative() { "expense" } else { "income" };
    let marker = marker.to_owned();
    let body = json!({
        "cashflow": cashflow,
        "type": "debit_credit",
        "fromAccountID": account,
        "payee": payee,
        "date": unix_seconds(tx.booking_date),
        "categories": [{
            "name": category,
            "amount": cents,
            "memo": memo(&tx.description, &marker),
            "dontImpactBudget": false,
            "isCleared": tx.status == Status::Posted,
        }],
    });
    Ok(SinkRequest {
        method: "POST".into(),
        path: format!("households/{household}/detailed-tracking/transactions"),
        body,
        marker,
        account: account.to_owned(),
        date: tx.booking_date,
        follow_up: None,
        covers: None,
        replaces: None,
    })
}

/// A transfer between two accounts of the household as one row: `cashflow:
/// transfer` from the debit leg's account to the credit leg's, the
/// absolute amount in cents; the request settles the credit leg too.
pub(crate) fn transfer(
    debit: &Transaction,
    credit_id: &str,
    marker: &str,
    household: &str,
    from: &str,
    to: &str,
    category: &str,
) -> Result<SinkRequest, String> {
    let mut request = transaction(debit, marker, household, from, category)?;
    request.body["cashflow"] = json!("transfer");
    request.body["toAccountID"] = json!(to);
    request.covers = Some(credit_id.to_owned());
    Ok(request)
}

/// The (remote id, markers) of a listed Trupocket transaction.
///
/// # Errors
/// A reason when the row has no `transactionID` or its `categories` are not
/// a list of objects (an unreadable row is never "not ours").
pub(super) fn listed_markers(t: &Value) -> Result<(String, Vec<String>), String> {
    let id = t["transactionID"].as_str().ok_or_else(|| format!("a listed transaction has no transactionID: {t}"))?;
    let lines = t["categories"].as_array().ok_or_else(|| format!("transaction {id} has no categories list"))?;
    let mut markers = Vec::new();
    for line in lines {
        match &line["memo"] {
            Value::String(m) => markers.extend(markers_in(m).into_iter().map(str::to_owned)),
            Value::Null => {}
            other => return Err(format!("transaction {id} has a memo that is not text: {other}")),
        }
    }
    Ok((id.to_owned(), markers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::marker;
    use crate::testing::tx;

    #[test]
    fn absolute_cents_cashflow_unix_seconds_and_the_marker() {
        let t = tx("-4.75", "USD", Some("Starbucks"));
        let r = transaction(&t, &marker(&t.id, 0), "h1", "acc", "Coffee Shops").unwrap();
        let body = &r.body;
        assert_eq!(body["cashflow"], "expense");
        assert_eq!(body["categories"][0]["amount"], 475, "absolute integer cents");
        assert_eq!(body["date"], 1_709_596_800, "2024-03-05T00:00:00Z in Unix seconds");
        assert_eq!(body["payee"], "Starbucks");
        let m = marker(&t.id, 0);
        assert_eq!(body["categories"][0]["memo"], format!("STARBUCKS 1234 #{m}"), "no stray hashtag, our marker");
        assert_eq!(body["categories"][0]["isCleared"], true);
        assert_eq!(
            (r.account.as_str(), r.date, r.path.as_str()),
            ("acc", t.booking_date, "households/h1/detailed-tracking/transactions")
        );
        let r = transaction(&tx("2500.00", "USD", None), "m", "h1", "acc", "Paycheck").unwrap();
        assert_eq!(
            (r.body["cashflow"].as_str(), r.body["categories"][0]["amount"].as_i64()),
            (Some("income"), Some(250_000))
        );
        assert_eq!(r.body["payee"], "STARBUCKS #1234", "description when there is no merchant");
    }

    #[test]
    fn listed_rows_give_their_markers_and_unreadable_rows_are_errors() {
        let t = tx("-4.75", "USD", Some("Starbucks"));
        let r = transaction(&t, &marker(&t.id, 0), "h1", "acc", "Coffee Shops").unwrap();
        let mut listed = r.body.clone();
        listed["transactionID"] = json!("r1");
        assert_eq!(listed_markers(&listed), Ok(("r1".into(), vec![r.marker.clone()])));
        let own = json!({"transactionID": "u1", "categories": [{"memo": "Coffee with Ann #friends"}]});
        assert_eq!(listed_markers(&own), Ok(("u1".into(), vec![])), "a user's own row carries no marker");
        assert!(listed_markers(&json!({"categories": []})).is_err());
        assert!(listed_markers(&json!({"transactionID": "x", "categories": "no"})).is_err());
    }
}

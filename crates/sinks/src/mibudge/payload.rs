//! mibudge request bodies and listed rows.

use bankpipe_model::{Kind, Status, Transaction};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::sink::{markers_in, SinkRequest};

/// The most a mibudge `memo` holds (characters).
const MEMO_MAX: usize = 512;

/// mibudge `transaction_type` for a canonical kind and direction.
pub(super) fn transaction_type(tx: &Transaction) -> &'static str {
    let credit = !tx.amount.is_negative();
    match tx.kind {
        Kind::Purchase if credit => "signature_return",
        Kind::Purchase => "signature_purchase",
        Kind::Atm => "atm_withdrawal",
        Kind::Fee => "fee",
        Kind::Interest => "interest_credit",
        Kind::Transfer => "ach",
        Kind::Deposit | Kind::Payroll => "ach",
        Kind::Check if credit => "check_deposit",
        Kind::Check => "check",
        Kind::Adjustment => "adjustment",
        Kind::Other if credit => "bank_generated_credit",
        Kind::Other => "bill_payment",
    }
}

/// The memo: the source's memo, if any, shortened so that the marker
/// hashtag always fits in [`MEMO_MAX`] characters.
fn memo(tx: &Transaction, marker: &str) -> String {
    let tag = format!("#{marker}");
    match tx.memo.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        None => tag,
        Some(text) => {
            let room = MEMO_MAX - tag.chars().count() - 1;
            let text: String = text.chars().take(room).collect();
            format!("{text} #{marker}")
        }
    }
}

/// The date the transaction happened, in the booking zone: the booking
/// date itself when the source gives one instant (Firefly, or a row not yet
/// posted), else the transacted instant's date in `zone`.
fn transaction_date(tx: &Transaction, zone: Tz) -> NaiveDate {
    match (tx.transacted_at, tx.posted_at) {
        (Some(t), Some(p)) if t != p => t.with_timezone(&zone).date_naive().min(tx.booking_date),
        _ => tx.booking_date,
    }
}

/// The request creating `tx` in bank account `account` (whose currency is
/// the transaction's): signed decimal amount with `amount_currency`,
/// booking-zone dates, the marker in `memo`, and as follow-up the budget
/// split `{"splits": {budget: "<positive amount>"}}` when `budget` is given.
pub(crate) fn transaction(
    tx: &Transaction,
    marker: &str,
    account: &str,
    zone: Tz,
    budget: Option<&str>,
) -> SinkRequest {
    let merchant = tx.merchant_name.clone().filter(|m| !m.trim().is_empty()).unwrap_or_else(|| tx.description.clone());
    let marker = marker.to_owned();
    let body = json!({
        "bank_account": account,
        "amount": tx.amount.to_string(),
        "amount_currency": tx.amount.currency().code(),
        "posted_date": tx.booking_date.to_string(),
        "transaction_date": transaction_date(tx, zone).to_string(),
        "transaction_type": transaction_type(tx),
        "raw_description": tx.description,
        "description": merchant,
        "memo": memo(tx, &marker),
        "pending": tx.status == Status::Pending,
    });
    SinkRequest {
        method: "POST".into(),
        path: "api/v1/transactions/".into(),
        body,
        marker,
        account: account.to_owned(),
        date: tx.booking_date,
        follow_up: budget.map(|b| json!({"splits": {b: tx.amount.abs().to_string()}})),
        covers: None,
        replaces: None,
    }
}

/// A mibudge date or datetime (`2024-02-13`, `2024-02-13T00:00:00-08:00`):
/// the calendar date in the offset it is written in.
pub(super) fn listed_date(s: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc3339(s).map(|d| d.date_naive()).ok().or_else(|| s.parse().ok())
}

/// The (remote id, markers) of a listed mibudge transaction.
///
/// # Errors
/// A reason when the row has no string `id`, a `memo` that is not text, or
/// a `posted_date` that is neither a date nor a datetime.
pub(super) fn listed_markers(t: &Value) -> Result<(String, Vec<String>), String> {
    let id = t["id"].as_str().ok_or_else(|| format!("a listed transaction has no id: {t}"))?;
    match &t["posted_date"] {
        Value::String(d) if listed_date(d).is_some() => {}
        other => return Err(format!("transaction {id} has an unreadable posted_date {other}")),
    }
    let markers = match &t["memo"] {
        Value::String(m) => markers_in(m).into_iter().map(str::to_owned).collect(),
        Value::Null => Vec::new(),
        other => return Err(format!("transaction {id} has a memo that is not text: {other}")),
    };
    Ok((id.to_owned(), markers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::marker;

    fn tx(amount: &str, currency: &str) -> Transaction {
        let mut t = crate::testing::tx(amount, currency, Some("Starbucks"));
        t.transacted_at = Some("2024-03-04T23:30:00Z".parse().unwrap());
        t.posted_at = Some("2024-03-05T10:00:00Z".parse().unwrap());
        t.category = None;
        t
    }

    #[test]
    fn body_carries_currency_marker_and_booking_zone_dates() {
        let t = tx("-500", "JPY");
        let r = transaction(&t, &marker(&t.id, 0), "acc", chrono_tz::Asia::Tokyo, Some("b1"));
        assert_eq!(r.body["amount"], "-500");
        assert_eq!(r.body["amount_currency"], "JPY");
        assert_eq!(r.body["posted_date"], "2024-03-05");
        assert_eq!(r.body["transaction_date"], "2024-03-05", "23:30 UTC is the 5th in Tokyo");
        let r = transaction(&t, &marker(&t.id, 0), "acc", chrono_tz::UTC, None);
        assert_eq!(r.body["transaction_date"], "2024-03-04");
        assert_eq!(r.body["memo"], format!("#{}", r.marker));
        assert_eq!(r.follow_up, None);
        let r = transaction(&t, &marker(&t.id, 0), "acc", chrono_tz::UTC, Some("b1"));
        assert_eq!(r.follow_up, Some(json!({"splits": {"b1": "500"}})));
    }

    #[test]
    fn memo_keeps_user_text_and_always_fits_the_marker() {
        let mut t = tx("-4.75", "USD");
        t.memo = Some("x".repeat(2_000));
        let r = transaction(&t, &marker(&t.id, 0), "acc", chrono_tz::UTC, None);
        let memo = r.body["memo"].as_str().unwrap();
        assert_eq!(memo.chars().count(), MEMO_MAX);
        assert_eq!(markers_in(memo), [r.marker.as_str()]);
    }

    #[test]
    fn listed_rows_parse_datetimes_with_offsets_and_refuse_unreadable_rows() {
        assert_eq!(listed_date("2024-02-13T00:00:00-08:00"), "2024-02-13".parse().ok());
        assert_eq!(listed_date("2024-02-13"), "2024-02-13".parse().ok());
        let row = json!({"id": "r1", "posted_date": "2024-02-13T00:00:00-08:00", "memo": "#bp0123456789abcdef"});
        assert_eq!(listed_markers(&row), Ok(("r1".into(), vec!["bp0123456789abcdef".into()])));
        let own = json!({"id": "u1", "posted_date": "2024-02-13T00:00:00-08:00", "memo": ""});
        assert_eq!(listed_markers(&own), Ok(("u1".into(), vec![])));
        assert!(listed_markers(&json!({"id": "r1", "posted_date": "13/02/2024", "memo": null})).is_err());
        assert!(listed_markers(&json!({"posted_date": "2024-02-13"})).is_err());
    }
}

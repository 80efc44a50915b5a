//! Trupocket request bodies and listing keys.

use bankpipe_model::{Account, Status, Transaction};
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::sink::MatchKey;

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

/// The transaction body and its listing key; `Err` with a reason when the
/// amount cannot be sent exactly in cents.
pub(crate) fn transaction(tx: &Transaction, account: &str, category: &str) -> Result<(Value, MatchKey), String> {
    let cents = tx.amount.abs().to_minor_units().map_err(|e| format!("amount cannot be sent in cents: {e}"))?;
    let payee = tx.merchant_name.clone().filter(|m| !m.trim().is_empty()).unwrap_or_else(|| tx.description.clone());
    let payee = if payee.trim().is_empty() { "(no description)".to_owned() } else { payee };
    let cashflow = if tx.amount.is_negative() { "expense" } else { "income" };
    let body = json!({
        "cashflow": cashflow,
        "type": "debit_credit",
        "fromAccountID": account,
        "payee": payee,
        "date": unix_seconds(tx.booking_date),
        "categories": [{
            "name": category,
            "amount": cents,
            "memo": tx.description,
            "dontImpactBudget": false,
            "isCleared": tx.status == Status::Posted,
        }],
    });
    let signed = if cashflow == "expense" { -cents } else { cents };
    Ok((body, MatchKey { account: account.to_owned(), date: tx.booking_date, amount: signed.to_string(), text: payee }))
}

/// The key of a listed Trupocket transaction (as [`transaction`] builds it).
pub(super) fn listed_key(t: &Value) -> Option<(String, MatchKey)> {
    let id = t["transactionID"].as_str()?.to_owned();
    let date = chrono::DateTime::from_timestamp(t["date"].as_i64()?, 0)?.date_naive();
    let cents: i64 = t["categories"].as_array()?.iter().filter_map(|c| c["amount"].as_i64()).sum();
    let signed = if t["cashflow"] == "expense" { -cents } else { cents };
    let key = MatchKey {
        account: t["fromAccountID"].as_str()?.to_owned(),
        date,
        amount: signed.to_string(),
        text: t["payee"].as_str()?.to_owned(),
    };
    Some((id, key))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bankpipe_model::{CanonicalId, CategorySource, Currency, Kind, Money};

    use super::*;

    fn tx(amount: &str, currency: &str, merchant: Option<&str>) -> Transaction {
        Transaction {
            id: CanonicalId::for_transaction("truv", "a", "1"),
            source: Arc::from("truv"),
            source_account_id: "a".into(),
            source_transaction_id: "1".into(),
            external_id: None,
            group_id: None,
            status: Status::Posted,
            source_status: "POSTED",
            source_type: "DEBIT",
            memo_only: false,
            amount: Money::parse(amount, Currency::from_code(currency).unwrap()).unwrap(),
            transacted_at: None,
            posted_at: None,
            booking_date: "2024-03-05".parse().unwrap(),
            updated_at: None,
            description: "STARBUCKS #1234".into(),
            merchant_name: merchant.map(str::to_owned),
            mcc: None,
            source_categories: vec![],
            memo: None,
            check_number: None,
            kind: Kind::Purchase,
            category: Some(Arc::from("Food & Dining/Coffee Shops")),
            category_source: CategorySource::Mcc,
            duplicate_of: None,
            superseded_by: None,
            source_fields: None,
        }
    }

    #[test]
    fn absolute_cents_cashflow_and_unix_seconds() {
        let (body, key) = transaction(&tx("-4.75", "USD", Some("Starbucks")), "acc", "Coffee Shops").unwrap();
        assert_eq!(body["cashflow"], "expense");
        assert_eq!(body["categories"][0]["amount"], 475, "absolute integer cents");
        assert_eq!(body["date"], 1_709_596_800, "2024-03-05T00:00:00Z in Unix seconds");
        assert_eq!(body["payee"], "Starbucks");
        assert_eq!(body["categories"][0]["memo"], "STARBUCKS #1234");
        assert_eq!(body["categories"][0]["isCleared"], true);
        assert_eq!((key.amount.as_str(), key.text.as_str()), ("-475", "Starbucks"));
        let (body, _) = transaction(&tx("2500.00", "USD", None), "acc", "Paycheck").unwrap();
        assert_eq!(
            (body["cashflow"].as_str(), body["categories"][0]["amount"].as_i64()),
            (Some("income"), Some(250_000))
        );
        assert_eq!(body["payee"], "STARBUCKS #1234", "description when there is no merchant");
    }

    #[test]
    fn listing_keys_match_the_posted_keys() {
        let (body, key) = transaction(&tx("-4.75", "USD", Some("Starbucks")), "acc", "Coffee Shops").unwrap();
        let mut listed = body.clone();
        listed["transactionID"] = json!("r1");
        assert_eq!(listed_key(&listed), Some(("r1".into(), key)));
    }
}

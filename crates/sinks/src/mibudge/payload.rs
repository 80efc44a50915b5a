//! mibudge request bodies and listing keys.

use bankpipe_model::{Kind, Status, Transaction};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::sink::MatchKey;

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

/// Decimal text normalized for comparison (`"-42.10"` and `"-42.1"` agree).
fn normalized(amount: &str) -> String {
    amount.parse::<Decimal>().map(|d| d.normalize().to_string()).unwrap_or_else(|_| amount.to_owned())
}

/// The transaction body and its listing key.
pub(crate) fn transaction(tx: &Transaction, account: &str) -> (Value, MatchKey) {
    let merchant = tx.merchant_name.clone().filter(|m| !m.trim().is_empty()).unwrap_or_else(|| tx.description.clone());
    let body = json!({
        "bank_account": account,
        "amount": tx.amount.to_string(),
        "posted_date": tx.booking_date.to_string(),
        "transaction_date": tx.transacted_at.map_or(tx.booking_date, |t| t.date_naive()).to_string(),
        "transaction_type": transaction_type(tx),
        "raw_description": tx.description,
        "description": merchant,
        "pending": tx.status == Status::Pending,
    });
    let key = MatchKey {
        account: account.to_owned(),
        date: tx.booking_date,
        amount: normalized(&tx.amount.to_string()),
        text: tx.description.clone(),
    };
    (body, key)
}

/// The key of a listed mibudge transaction.
pub(super) fn listed_key(t: &Value) -> Option<(String, MatchKey)> {
    Some((
        t["id"].as_str()?.to_owned(),
        MatchKey {
            account: t["bank_account"].as_str()?.to_owned(),
            date: t["posted_date"].as_str()?.parse().ok()?,
            amount: normalized(t["amount"].as_str()?),
            text: t["raw_description"].as_str().unwrap_or("").to_owned(),
        },
    ))
}

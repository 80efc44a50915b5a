//! Rows for the sinks' unit tests.

use std::sync::Arc;

use bankpipe_model::{CanonicalId, CategorySource, Currency, Kind, Money, Status, Transaction};

/// A posted Truv purchase `STARBUCKS #1234` of `amount` in `currency`
/// booked on 2024-03-05, with `merchant` as merchant name.
pub(crate) fn tx(amount: &str, currency: &str, merchant: Option<&str>) -> Transaction {
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

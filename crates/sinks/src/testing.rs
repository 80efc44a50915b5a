//! Rows for the sinks' unit tests.

use std::sync::Arc;

use bankpipe_model::{CategorySource, Currency, Kind, Money, Transaction};

/// A posted Truv purchase `STARBUCKS #1234` of `amount` in `currency`
/// booked on 2024-03-05, with `merchant` as merchant name.
pub(crate) fn tx(amount: &str, currency: &str, merchant: Option<&str>) -> Transaction {
    let amount = Money::parse(amount, Currency::from_code(currency).unwrap()).unwrap();
    let mut t = Transaction::bare_posted("truv", "a", "1", amount, "2024-03-05".parse().unwrap());
    t.source_type = "DEBIT";
    t.description = "STARBUCKS #1234".into();
    t.merchant_name = merchant.map(str::to_owned);
    t.kind = Kind::Purchase;
    t.category = Some(Arc::from("Food & Dining/Coffee Shops"));
    t.category_source = CategorySource::Mcc;
    t
}

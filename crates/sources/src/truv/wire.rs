//! Truv response wire format (seeds 001, 002). Fields are borrowed from the
//! page buffer where possible; loosely typed ones are kept as raw JSON and
//! read exactly by the normalizer.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The top-level response. `transactions` is required; `accounts` and
/// `daily_totals` may be absent (older shape). Records stay raw so that one
/// malformed record is quarantined without losing the page.
#[derive(Deserialize)]
pub(super) struct Page<'a> {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default, borrow)]
    pub next: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub previous: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub accounts: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    pub transactions: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub daily_totals: Option<Vec<&'a RawValue>>,
}

/// The same response with records parsed in one pass: the fast path, used
/// when every record has the expected JSON types. When any record does not,
/// the page is read again as [`Page`] so that only that record is quarantined.
#[derive(Deserialize)]
pub(super) struct TypedPage<'a> {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default, borrow)]
    pub next: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub previous: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub accounts: Option<Vec<Account<'a>>>,
    #[serde(borrow)]
    pub transactions: Vec<Txn<'a>>,
    #[serde(default, borrow)]
    pub daily_totals: Option<Vec<DailyTotal<'a>>>,
}

/// A transaction record (seed 001 "Transactions object").
#[derive(Deserialize)]
pub(super) struct Txn<'a> {
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub updated_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub external_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub amount: Option<&'a RawValue>,
    #[serde(borrow)]
    pub currency_code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub check_number: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub categories: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    pub description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub merchant_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub posted_at: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub transacted_at: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub memo: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub merchant_category_code: Option<&'a RawValue>,
}

/// An account record (seed 001 "Accounts object").
#[derive(Deserialize)]
pub(super) struct Account<'a> {
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub updated_at: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub subtype: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub mask: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub nickname: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub balances: Option<Balances<'a>>,
}

/// Balances object (seed 001): decimal strings.
#[derive(Deserialize)]
pub(super) struct Balances<'a> {
    #[serde(default, borrow)]
    pub currency_code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub balance: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub available_balance: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub credit_limit: Option<&'a RawValue>,
}

/// A daily totals entry (seed 002). `account_id` and `currency_code` are not
/// documented but honoured when present.
#[derive(Deserialize)]
pub(super) struct DailyTotal<'a> {
    #[serde(borrow)]
    pub date: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub net_total: Option<&'a RawValue>,
    pub transaction_count: Option<u64>,
    #[serde(default, borrow)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub currency_code: Option<Cow<'a, str>>,
}

//! Firefly III wire format: JSON:API-style groups holding splits.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// `{"data": [group…], "meta": {"pagination": …}, "links": …}`. Groups stay
/// raw so one malformed group is quarantined without losing the page.
#[derive(Deserialize)]
pub(super) struct Page<'a> {
    #[serde(borrow)]
    pub data: Vec<&'a RawValue>,
    pub meta: Meta,
    #[serde(default, borrow)]
    pub links: Option<Links<'a>>,
}

#[derive(Deserialize)]
pub(super) struct Meta {
    pub pagination: Pagination,
}

/// `meta.pagination`. `total` and `count` count splits, not groups.
#[derive(Deserialize)]
pub(super) struct Pagination {
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub per_page: Option<u64>,
    pub current_page: u64,
    pub total_pages: u64,
}

/// Top-level `links`; `prev`/`next` are omitted when absent.
#[derive(Deserialize)]
pub(super) struct Links<'a> {
    #[serde(default, borrow)]
    pub next: Option<Cow<'a, str>>,
}

/// One transaction group.
#[derive(Deserialize)]
pub(super) struct Group<'a> {
    #[serde(borrow)]
    pub id: &'a RawValue,
    #[serde(borrow)]
    pub attributes: GroupAttributes<'a>,
}

#[derive(Deserialize)]
pub(super) struct GroupAttributes<'a> {
    #[serde(default, borrow)]
    pub updated_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub transactions: Vec<&'a RawValue>,
}

/// One split (a journal).
#[derive(Deserialize)]
pub(super) struct Split<'a> {
    #[serde(borrow)]
    pub transaction_journal_id: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub date: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub amount: Option<&'a RawValue>,
    #[serde(borrow)]
    pub currency_code: Option<Cow<'a, str>>,
    #[serde(default)]
    pub currency_decimal_places: Option<u32>,
    #[serde(default, borrow)]
    pub foreign_amount: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub foreign_currency_code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub source_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub source_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub source_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub destination_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub destination_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub destination_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub category_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub budget_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tags: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    pub notes: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub external_id: Option<Cow<'a, str>>,
}

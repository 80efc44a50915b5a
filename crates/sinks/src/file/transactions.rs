//! `transactions.csv` / `transactions.jsonl`.

use std::io::{self, Write};

use bankpipe_model::Transaction;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{opt, write_line};

/// Columns of `transactions.csv`, in order. `amount` is signed decimal text at
/// the currency's minor units; `counts` is `1` when the row counts in daily
/// totals (posted, not MEMO, not duplicate or superseded), else `0`;
/// `source_categories` and `tags` are joined with `" | "`.
pub const TRANSACTION_COLUMNS: &[&str] = &[
    "id",
    "source",
    "source_account_id",
    "source_transaction_id",
    "status",
    "booking_date",
    "amount",
    "currency",
    "description",
    "merchant_name",
    "mcc",
    "category",
    "category_source",
    "kind",
    "counts",
    "duplicate_of",
    "superseded_by",
    "transacted_at",
    "posted_at",
    "updated_at",
    "source_status",
    "source_type",
    "external_id",
    "group_id",
    "source_categories",
    "memo",
    "check_number",
    "foreign_amount",
    "foreign_currency",
    "tags",
    "notes",
    "budget_name",
];

fn instant(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)).unwrap_or_default()
}

pub(super) fn fill_row(tx: &Transaction, row: &mut Vec<String>) {
    row.clear();
    let f = &tx.source_fields;
    row.extend([
        tx.id.to_string(),
        tx.source.to_string(),
        tx.source_account_id.clone(),
        tx.source_transaction_id.clone(),
        tx.status.as_str().to_owned(),
        tx.booking_date.to_string(),
        tx.amount.to_string(),
        tx.amount.currency().code().to_owned(),
        tx.description.clone(),
        opt(tx.merchant_name.as_deref()),
        opt(tx.mcc),
        opt(tx.category.as_deref()),
        tx.category_source.as_str().to_owned(),
        tx.kind.as_str().to_owned(),
        if tx.counts() { "1" } else { "0" }.to_owned(),
        opt(tx.duplicate_of),
        opt(tx.superseded_by),
        instant(tx.transacted_at),
        instant(tx.posted_at),
        instant(tx.updated_at),
        tx.source_status.clone(),
        tx.source_type.clone(),
        opt(tx.external_id.as_deref()),
        opt(tx.group_id.as_deref()),
        tx.source_categories.join(" | "),
        opt(tx.memo.as_deref()),
        opt(tx.check_number.as_deref()),
        opt(f.foreign_amount.as_deref()),
        opt(f.foreign_currency.as_deref()),
        f.tags.join(" | "),
        opt(f.notes.as_deref()),
        opt(f.budget_name.as_deref()),
    ]);
}

/// The JSONL shape: the CSV columns with typed values (`counts` boolean,
/// `mcc` 4-digit string, lists as arrays, absent values as `null`).
#[derive(Serialize)]
struct Row<'a> {
    id: String,
    source: &'a str,
    source_account_id: &'a str,
    source_transaction_id: &'a str,
    status: &'static str,
    booking_date: String,
    amount: String,
    currency: &'a str,
    description: &'a str,
    merchant_name: Option<&'a str>,
    mcc: Option<String>,
    category: Option<&'a str>,
    category_source: &'static str,
    kind: &'static str,
    counts: bool,
    duplicate_of: Option<String>,
    superseded_by: Option<String>,
    transacted_at: Option<String>,
    posted_at: Option<String>,
    updated_at: Option<String>,
    source_status: &'a str,
    source_type: &'a str,
    external_id: Option<&'a str>,
    group_id: Option<&'a str>,
    source_categories: &'a [String],
    memo: Option<&'a str>,
    check_number: Option<&'a str>,
    foreign_amount: Option<&'a str>,
    foreign_currency: Option<&'a str>,
    tags: &'a [String],
    notes: Option<&'a str>,
    budget_name: Option<&'a str>,
}

pub(super) fn write_json<W: Write>(tx: &Transaction, out: &mut W) -> io::Result<()> {
    let f = &tx.source_fields;
    let some_instant = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    let currency = tx.amount.currency();
    let row = Row {
        id: tx.id.to_string(),
        source: &tx.source,
        source_account_id: &tx.source_account_id,
        source_transaction_id: &tx.source_transaction_id,
        status: tx.status.as_str(),
        booking_date: tx.booking_date.to_string(),
        amount: tx.amount.to_string(),
        currency: currency.code(),
        description: &tx.description,
        merchant_name: tx.merchant_name.as_deref(),
        mcc: tx.mcc.map(|m| m.to_string()),
        category: tx.category.as_deref(),
        category_source: tx.category_source.as_str(),
        kind: tx.kind.as_str(),
        counts: tx.counts(),
        duplicate_of: tx.duplicate_of.map(|i| i.to_string()),
        superseded_by: tx.superseded_by.map(|i| i.to_string()),
        transacted_at: some_instant(tx.transacted_at),
        posted_at: some_instant(tx.posted_at),
        updated_at: some_instant(tx.updated_at),
        source_status: &tx.source_status,
        source_type: &tx.source_type,
        external_id: tx.external_id.as_deref(),
        group_id: tx.group_id.as_deref(),
        source_categories: &tx.source_categories,
        memo: tx.memo.as_deref(),
        check_number: tx.check_number.as_deref(),
        foreign_amount: f.foreign_amount.as_deref(),
        foreign_currency: f.foreign_currency.as_deref(),
        tags: &f.tags,
        notes: f.notes.as_deref(),
        budget_name: f.budget_name.as_deref(),
    };
    write_line(out, &row)
}

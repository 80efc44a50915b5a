//! Firefly III page → canonical rows: one row per asset-account leg.
//!
//! DESIGN §3: amounts are always positive and the direction comes from the
//! split type relative to the asset account — withdrawal: source asset −;
//! deposit: destination asset +; transfer between asset accounts: two legs
//! (−/+) sharing the group id, kind transfer; reconciliation: an adjustment
//! on the asset side; opening balance: the account's opening balance, not a
//! transaction. Amounts (up to 12 decimals) must be exact at
//! `currency_decimal_places`; a non-zero digit beyond is a data error.

use std::borrow::Cow;
use std::collections::HashMap;

use bankpipe_model::{
    parse_decimal, Account, CanonicalId, CategorySource, Currency, Kind, Money, MoneyError, SourceFields, Status,
    Transaction, MAX_ABS_MINOR_UNITS,
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::value::RawValue;

use super::wire;
use crate::context::NormalizeContext;
use crate::error::{malformed_page, page_text, PageError};
use crate::json::{non_empty, scalar_text};
use crate::page::NormalizedPage;
use crate::reject::{currency_field, parse_record, raw_id, Reject};
use crate::time::parse_offset_datetime;

/// The pagination fields of one Firefly page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FireflyCursor {
    /// `meta.pagination.current_page` (1-based).
    pub current_page: u64,
    /// `meta.pagination.total_pages`.
    pub total_pages: u64,
    /// `links.next` is present.
    pub has_next: bool,
    /// `meta.pagination.total`: splits in the whole result.
    pub total: Option<u64>,
}

/// Account types that are the user's own ledger accounts.
const OWN_ACCOUNT_TYPES: &[&str] = &["Asset account", "Default account"];

fn is_own(account_type: Option<&str>) -> bool {
    account_type.is_some_and(|t| OWN_ACCOUNT_TYPES.iter().any(|o| o.eq_ignore_ascii_case(t)))
}

/// Normalize one Firefly III `/api/v1/transactions` page.
///
/// Every split ends up as transaction legs, an opening balance (in
/// `accounts`) or one quarantine record. A group whose group-level data is
/// unusable (`id`, `attributes.updated_at`, the group object itself)
/// quarantines each of its splits, with the group-level field and reason and
/// the split's `transaction_journal_id` in `record_id`
/// (`<group id>/<journal id>`, or the journal id alone when the group id is
/// unreadable); only a group whose splits cannot be listed at all yields a
/// single record for the group. A blank `transaction_journal_id` is
/// rejected. Amounts and foreign amounts beyond
/// [`bankpipe_model::MAX_ABS_MINOR_UNITS`] are quarantined ("amount out of
/// range …"). A leading UTF-8 byte-order mark is stripped (with a warning).
///
/// # Errors
/// [`PageError::Malformed`] when the page is not a Firefly list response
/// (not JSON, trailing data, `data` or `meta.pagination` missing or
/// mistyped), naming the file, JSON path and problem.
pub fn normalize_page(
    ctx: &NormalizeContext,
    file: &str,
    bytes: &[u8],
) -> Result<(NormalizedPage, FireflyCursor), PageError> {
    let page_text = page_text(file, bytes)?;
    let page: wire::Page<'_> = match serde_json::from_str(page_text.text) {
        Ok(p) => p,
        Err(_) => return Err(malformed_page::<wire::Page<'_>>(file, &page_text)),
    };
    let mut out = NormalizedPage::default();
    out.warnings.extend(page_text.bom_warning(file));
    let mut accounts: HashMap<String, usize> = HashMap::new();
    let mut splits_on_page = 0u64;
    for (i, raw) in page.data.iter().enumerate() {
        let group: wire::Group<'_> = match parse_record(raw) {
            Ok(g) => g,
            Err(r) => {
                let group_id = raw_id(raw, "id");
                let splits = journal_ids_of_raw_group(raw);
                splits_on_page += splits.len() as u64;
                quarantine_group(&mut out, ctx, file, i, r, group_id.as_deref(), &splits);
                continue;
            }
        };
        let journal_ids = || -> Vec<Option<String>> {
            group.attributes.transactions.iter().map(|s| raw_id(s, "transaction_journal_id")).collect()
        };
        let group_id = match scalar_text(group.id) {
            Ok(Some(id)) if !id.trim().is_empty() => id.into_owned(),
            _ => {
                let splits = journal_ids();
                splits_on_page += splits.len() as u64;
                let r = Reject::new("id", group.id.get(), "group id must be a non-empty string");
                quarantine_group(&mut out, ctx, file, i, r, None, &splits);
                continue;
            }
        };
        let updated_at = match group.attributes.updated_at.as_deref().map(parse_offset_datetime).transpose() {
            Ok(t) => t.map(|t| t.with_timezone(&chrono::Utc)),
            Err(e) => {
                let splits = journal_ids();
                splits_on_page += splits.len() as u64;
                let v = group.attributes.updated_at.as_deref().unwrap_or_default();
                let r = Reject::new("attributes.updated_at", v, e);
                quarantine_group(&mut out, ctx, file, i, r, Some(&group_id), &splits);
                continue;
            }
        };
        for (j, split_raw) in group.attributes.transactions.iter().enumerate() {
            splits_on_page += 1;
            out.records_read += 1;
            let group_ctx = GroupCtx { id: &group_id, updated_at };
            match normalize_split(ctx, &group_ctx, split_raw) {
                Ok(legs) => {
                    for account in legs.accounts {
                        merge_account(&mut out.accounts, &mut accounts, account);
                    }
                    out.transactions.extend(legs.transactions);
                }
                Err(r) => {
                    let pointer = format!("/data/{i}/attributes/transactions/{j}");
                    let id = raw_id(split_raw, "transaction_journal_id").map(|j| format!("{group_id}/{j}"));
                    out.quarantine.push(
                        r.with_record_id(id.or_else(|| Some(format!("{group_id}/#{j}"))))
                            .into_record(ctx, file, pointer),
                    );
                }
            }
        }
    }
    let p = &page.meta.pagination;
    if let Some(count) = p.count {
        if count != splits_on_page {
            out.warnings
                .push(format!("{file}: meta.pagination.count is {count} but the page holds {splits_on_page} splits"));
        }
    }
    let _ = p.per_page;
    let cursor = FireflyCursor {
        current_page: p.current_page,
        total_pages: p.total_pages,
        has_next: page.links.as_ref().is_some_and(|l| l.next.is_some()),
        total: p.total,
    };
    Ok((out, cursor))
}

/// The `transaction_journal_id` of each split of a group that could not be
/// parsed (e.g. a mistyped group-level field), read from the raw JSON; empty
/// when its `attributes.transactions` is not a list.
fn journal_ids_of_raw_group(raw: &RawValue) -> Vec<Option<String>> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.get()) else { return Vec::new() };
    let Some(splits) = v.pointer("/attributes/transactions").and_then(serde_json::Value::as_array) else {
        return Vec::new();
    };
    splits
        .iter()
        .map(|s| match s.get("transaction_journal_id") {
            Some(serde_json::Value::String(j)) if !j.trim().is_empty() => Some(j.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// Quarantine a group whose group-level data is unusable: one record per
/// split (`splits` holds their journal ids, `None` when unreadable), each
/// carrying the group-level field, value and reason; or one record for the
/// group when it lists no split.
fn quarantine_group(
    out: &mut NormalizedPage,
    ctx: &NormalizeContext,
    file: &str,
    i: usize,
    reject: Reject,
    group_id: Option<&str>,
    splits: &[Option<String>],
) {
    let pointer = format!("/data/{i}");
    if splits.is_empty() {
        out.records_read += 1;
        out.quarantine.push(reject.with_record_id(group_id.map(str::to_owned)).into_record(ctx, file, pointer));
        return;
    }
    for (j, journal) in splits.iter().enumerate() {
        out.records_read += 1;
        let record_id = match (group_id, journal) {
            (Some(g), Some(jid)) => Some(format!("{g}/{jid}")),
            (None, Some(jid)) => Some(jid.clone()),
            (Some(g), None) => Some(format!("{g}/#{j}")),
            (None, None) => None,
        };
        let jid = journal.as_deref().map_or_else(|| "unreadable".to_owned(), |j| format!("{j:?}"));
        let r = Reject {
            field: reject.field.clone(),
            value: reject.value.clone(),
            reason: format!(
                "{} (group-level field; its split {pointer}/attributes/transactions/{j}, transaction_journal_id {jid}, is quarantined with the group)",
                reject.reason
            ),
            record_id,
        };
        out.quarantine.push(r.into_record(ctx, file, pointer.clone()));
    }
}

/// Keep one account entry per id on a page; an opening balance found on a
/// later split is merged into the entry.
fn merge_account(list: &mut Vec<Account>, index: &mut HashMap<String, usize>, account: Account) {
    match index.get(&account.source_account_id) {
        Some(&i) => {
            let existing = &mut list[i];
            if account.opening_balance.is_some() {
                existing.opening_balance = account.opening_balance;
                existing.opening_balance_date = account.opening_balance_date;
            }
            existing.name = existing.name.take().or(account.name);
            existing.currency = existing.currency.or(account.currency);
        }
        None => {
            index.insert(account.source_account_id.clone(), list.len());
            list.push(account);
        }
    }
}

struct GroupCtx<'g> {
    id: &'g str,
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Default)]
struct Legs {
    transactions: Vec<Transaction>,
    accounts: Vec<Account>,
}

/// One side of a split: account id, name and type.
struct Side {
    id: Option<String>,
    name: Option<String>,
    own: bool,
    account_type: Option<String>,
}

fn side(
    id: Option<&RawValue>,
    name: Option<Cow<'_, str>>,
    account_type: Option<Cow<'_, str>>,
    field: &str,
) -> Result<Side, Reject> {
    let id = match id {
        None => None,
        Some(raw) => scalar_text(raw)
            .map_err(|v| Reject::new(field, v, "account id must be a string or number"))?
            .filter(|s| !s.is_empty())
            .map(Cow::into_owned),
    };
    Ok(Side { id, name: non_empty(name), own: is_own(account_type.as_deref()), account_type: non_empty(account_type) })
}

fn normalize_split(ctx: &NormalizeContext, group: &GroupCtx<'_>, raw: &RawValue) -> Result<Legs, Reject> {
    let w: wire::Split<'_> = parse_record(raw)?;
    let journal_id = match w.transaction_journal_id {
        None => None,
        Some(r) => scalar_text(r)
            .map_err(|v| Reject::new("transaction_journal_id", v, "must be a string or number"))?
            .map(Cow::into_owned),
    }
    .ok_or_else(|| Reject::missing("transaction_journal_id"))?;
    if journal_id.trim().is_empty() {
        return Err(Reject::new(
            "transaction_journal_id",
            journal_id,
            "transaction_journal_id is blank: a split cannot be identified without it",
        ));
    }
    let type_word = w.kind.as_deref().ok_or_else(|| Reject::missing("type"))?.to_owned();
    let date_text = w.date.as_deref().ok_or_else(|| Reject::missing("date"))?;
    let date = parse_offset_datetime(date_text).map_err(|e| Reject::new("date", date_text, e))?;
    let currency = currency_field(w.currency_code.as_deref(), "currency_code")?;
    let amount = exact_amount(w.amount, w.currency_decimal_places, currency)?;
    let source = side(w.source_id, w.source_name, w.source_type, "source_id")?;
    let destination = side(w.destination_id, w.destination_name, w.destination_type, "destination_id")?;

    let booking_date = date.naive_local().date();
    let instant = date.with_timezone(&chrono::Utc);
    let mut legs = Legs::default();
    let account_of = |s: &Side| {
        let mut a = Account::bare(ctx.source.clone(), s.id.clone().unwrap_or_default());
        a.name = s.name.clone();
        a.account_type = s.account_type.clone();
        a.currency = Some(currency);
        a
    };

    let normalized = type_word.to_ascii_lowercase().replace('-', " ");
    if normalized == "opening balance" {
        let (acct, signed) = if destination.own {
            (&destination, amount)
        } else if source.own {
            (&source, amount.negated())
        } else {
            return Err(Reject::new("type", &type_word, "opening balance without an asset account on either side"));
        };
        let id_field = if destination.own { "destination_id" } else { "source_id" };
        if acct.id.is_none() {
            return Err(Reject::missing(id_field));
        }
        let mut a = account_of(acct);
        a.opening_balance = Some(signed);
        a.opening_balance_date = Some(booking_date);
        legs.accounts.push(a);
        return Ok(legs);
    }

    let canonical_type = match normalized.as_str() {
        "withdrawal" => "withdrawal",
        "deposit" => "deposit",
        "transfer" => "transfer",
        _ => "reconciliation",
    };
    // (account side, debit?, merchant) per leg.
    let mut plan: Vec<(&Side, bool, Option<String>)> = Vec::with_capacity(2);
    match normalized.as_str() {
        "withdrawal" if source.own => plan.push((&source, true, destination.name.clone())),
        "deposit" if destination.own => plan.push((&destination, false, source.name.clone())),
        "transfer" if source.own && destination.own => {
            if source.id == destination.id {
                return Err(Reject::new(
                    "destination_id",
                    destination.id.clone().unwrap_or_default(),
                    "transfer from an account to itself",
                ));
            }
            plan.push((&source, true, None));
            plan.push((&destination, false, None));
        }
        "reconciliation" if source.own => plan.push((&source, true, None)),
        "reconciliation" if destination.own => plan.push((&destination, false, None)),
        "withdrawal" | "deposit" | "transfer" | "reconciliation" => {
            let (field, s) =
                if normalized == "deposit" { ("destination_type", &destination) } else { ("source_type", &source) };
            return Err(Reject::new(
                field,
                s.account_type.clone().unwrap_or_else(|| "null".into()),
                format!("{type_word} without an asset account on the side that carries the money; only asset accounts are synced"),
            ));
        }
        _ => {
            return Err(Reject::new(
                "type",
                &type_word,
                "type must be withdrawal, deposit, transfer, reconciliation or opening balance",
            ))
        }
    }
    let category = non_empty(w.category_name);
    let fields = SourceFields {
        foreign_amount: foreign_amount(w.foreign_amount, w.foreign_currency_code.as_deref())?,
        foreign_currency: non_empty(w.foreign_currency_code),
        tags: w.tags.unwrap_or_default().into_iter().map(Cow::into_owned).collect(),
        notes: non_empty(w.notes),
        budget_name: non_empty(w.budget_name),
    };
    let description = w.description.map(Cow::into_owned).unwrap_or_default();
    let external_id = non_empty(w.external_id);
    for (acct, debit, merchant) in plan {
        let account_id =
            acct.id.clone().ok_or_else(|| Reject::missing(if debit { "source_id" } else { "destination_id" }))?;
        legs.accounts.push(account_of(acct));
        legs.transactions.push(Transaction {
            id: CanonicalId::for_transaction(&ctx.source, &account_id, &journal_id),
            source: ctx.source.clone(),
            source_account_id: account_id,
            source_transaction_id: journal_id.clone(),
            external_id: external_id.clone(),
            group_id: Some(group.id.to_owned()),
            status: Status::Posted,
            source_status: "",
            source_type: canonical_type,
            memo_only: false,
            amount: if debit { amount.negated() } else { amount },
            transacted_at: Some(instant),
            posted_at: Some(instant),
            booking_date,
            updated_at: group.updated_at,
            description: description.clone(),
            merchant_name: merchant,
            mcc: None,
            source_categories: category.iter().cloned().collect(),
            memo: None,
            check_number: None,
            kind: Kind::Other, // derived by enrichment from source_type
            category: None,
            category_source: CategorySource::Default,
            duplicate_of: None,
            superseded_by: None,
            source_fields: Some(Box::new(fields.clone())),
        });
    }
    Ok(legs)
}

/// The split amount, exact at `currency_decimal_places` (Firefly sends up to
/// 12 decimals: `"12.340000000000"` is 12.34; `"12.345000000000"` with two
/// places is a data error), at the ISO 4217 minor units, and within
/// [`bankpipe_model::MAX_ABS_MINOR_UNITS`].
fn exact_amount(raw: Option<&RawValue>, places: Option<u32>, currency: Currency) -> Result<Money, Reject> {
    let raw = raw.ok_or_else(|| Reject::missing("amount"))?;
    let text = scalar_text(raw)
        .map_err(|v| Reject::new("amount", v, "expected a decimal string"))?
        .ok_or_else(|| Reject::missing("amount"))?;
    let value = decimal_field("amount", &text, currency)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(Reject::new(
            "amount",
            text.as_ref(),
            "Firefly amounts are always positive; direction comes from the type",
        ));
    }
    let places = places.unwrap_or(currency.minor_units());
    if value.round_dp_with_strategy(places, RoundingStrategy::ToZero) != value {
        return Err(Reject::new(
            "amount",
            text.as_ref(),
            format!("non-zero digit beyond currency_decimal_places = {places}; refusing to round"),
        ));
    }
    Money::new_in_range(value, currency).map_err(|e| Reject::new("amount", text.as_ref(), e.to_string()))
}

/// A plain decimal; a value too large for any decimal is out of range in
/// `currency`.
fn decimal_field(field: &str, text: &str, currency: Currency) -> Result<Decimal, Reject> {
    parse_decimal(text).map_err(|e| {
        let e = match e {
            MoneyError::Overflow { .. } => MoneyError::out_of_range(text, currency),
            other => other,
        };
        Reject::new(field, text, e.to_string())
    })
}

/// `foreign_amount`: kept as the exact text received, but it must be a plain
/// decimal within [`bankpipe_model::MAX_ABS_MINOR_UNITS`] minor units of
/// `foreign_currency_code` — of a 4-minor-digit currency (the strictest)
/// when that code is missing or not ISO 4217. Digits beyond the foreign
/// currency's minor units are not judged here (the text is not money of
/// the account).
fn foreign_amount(raw: Option<&RawValue>, code: Option<&str>) -> Result<Option<String>, Reject> {
    let Some(raw) = raw else { return Ok(None) };
    let text = scalar_text(raw).map_err(|v| Reject::new("foreign_amount", v, "expected a decimal string"))?;
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else { return Ok(None) };
    let currency = code.and_then(|c| Currency::from_code(c).ok());
    // CLF has 4 minor units, the most in the table.
    let strictest = Currency::from_code("CLF").expect("CLF is in the table");
    let value = decimal_field("foreign_amount", &text, currency.unwrap_or(strictest))?;
    let minor = currency.map_or(4, |c| c.minor_units());
    if value.abs() > Decimal::from_i128_with_scale(i128::from(MAX_ABS_MINOR_UNITS), minor) {
        let e = MoneyError::out_of_range(&text, currency.unwrap_or(strictest));
        let reason = match currency {
            Some(_) => e.to_string(),
            None => format!("{e} (foreign_currency_code is missing or unknown: the strictest bound applies)"),
        };
        return Err(Reject::new("foreign_amount", text.as_ref(), reason));
    }
    Ok(Some(text.into_owned()))
}

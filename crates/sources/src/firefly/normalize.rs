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
    parse_decimal, Account, CanonicalId, CategorySource, Currency, Kind, Money, SourceFields, Status, Transaction,
};
use rust_decimal::RoundingStrategy;
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
/// # Errors
/// [`PageError::Malformed`] when the page is not a Firefly list response
/// (`data` or `meta.pagination` missing or mistyped). Malformed groups and
/// splits are quarantined and the page proceeds.
pub fn normalize_page(
    ctx: &NormalizeContext,
    file: &str,
    bytes: &[u8],
) -> Result<(NormalizedPage, FireflyCursor), PageError> {
    let text = page_text(file, bytes)?;
    let page: wire::Page<'_> = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(_) => return Err(malformed_page::<wire::Page<'_>>(file, bytes)),
    };
    let mut out = NormalizedPage::default();
    let mut accounts: HashMap<String, usize> = HashMap::new();
    let mut splits_on_page = 0u64;
    for (i, raw) in page.data.iter().enumerate() {
        let group: wire::Group<'_> = match parse_record(raw) {
            Ok(g) => g,
            Err(r) => {
                out.records_read += 1;
                out.quarantine.push(r.with_record_id(raw_id(raw, "id")).into_record(ctx, file, format!("/data/{i}")));
                continue;
            }
        };
        let group_id = match scalar_text(group.id) {
            Ok(Some(id)) if !id.is_empty() => id.into_owned(),
            _ => {
                out.records_read += group.attributes.transactions.len().max(1) as u64;
                let r = Reject::new("id", group.id.get(), "group id must be a non-empty string");
                out.quarantine.push(r.into_record(ctx, file, format!("/data/{i}")));
                continue;
            }
        };
        let updated_at = match group.attributes.updated_at.as_deref().map(parse_offset_datetime).transpose() {
            Ok(t) => t.map(|t| t.with_timezone(&chrono::Utc)),
            Err(e) => {
                out.records_read += group.attributes.transactions.len().max(1) as u64;
                let v = group.attributes.updated_at.as_deref().unwrap_or_default();
                let r = Reject::new("attributes.updated_at", v, e).with_record_id(Some(group_id.clone()));
                out.quarantine.push(r.into_record(ctx, file, format!("/data/{i}")));
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
            .filter(|s| !s.is_empty())
            .map(Cow::into_owned),
    }
    .ok_or_else(|| Reject::missing("transaction_journal_id"))?;
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
        foreign_amount: match w.foreign_amount {
            None => None,
            Some(r) => scalar_text(r)
                .map_err(|v| Reject::new("foreign_amount", v, "expected a decimal string"))?
                .filter(|s| !s.is_empty())
                .map(Cow::into_owned),
        },
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
/// places is a data error) and at the ISO 4217 minor units.
fn exact_amount(raw: Option<&RawValue>, places: Option<u32>, currency: Currency) -> Result<Money, Reject> {
    let raw = raw.ok_or_else(|| Reject::missing("amount"))?;
    let text = scalar_text(raw)
        .map_err(|v| Reject::new("amount", v, "expected a decimal string"))?
        .ok_or_else(|| Reject::missing("amount"))?;
    let value = parse_decimal(&text).map_err(|e| Reject::new("amount", text.as_ref(), e.to_string()))?;
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
    Money::new(value, currency).map_err(|e| Reject::new("amount", text.as_ref(), e.to_string()))
}

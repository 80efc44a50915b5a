//! Truv page → canonical accounts, transactions and reported daily totals.
//!
//! Semantics (DESIGN §3, seeds 001/002): the sign comes from `type` whatever
//! the sign of the string (`"100.00"` DEBIT and `"-4.75"` DEBIT are both
//! debits); `POSTED` → posted, `PENDING`/`AUTHORIZATION` → pending; `MEMO`
//! (as status or type) is kept but never counts as money.

use std::borrow::Cow;

use bankpipe_model::account::mask_account_number;
use bankpipe_model::{Account, CanonicalId, CategorySource, Kind, Mcc, ReportedDailyTotal, Status, Transaction};
use serde_json::value::RawValue;

use super::wire;
use crate::context::NormalizeContext;
use crate::error::{malformed_page, page_text, PageError};
use crate::json::{non_empty, scalar_text};
use crate::page::NormalizedPage;
use crate::reject::{balance_field, currency_field, money_field, parse_record, raw_id, Dropped, Reject};
use crate::time::{date_in, parse_date, parse_utc};

/// The pagination fields of one Truv page (`count`, `next`, `previous`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruvCursor {
    /// Total number of transactions in the whole result.
    pub count: Option<u64>,
    /// URL of the next page; `None` on the last page.
    pub next: Option<String>,
    /// URL of the previous page; `None` on the first page.
    pub previous: Option<String>,
}

/// Normalize one Truv response page.
///
/// `file` names the page (path or URL) in errors and quarantine records.
/// Every record of `transactions[]` ends up either as one transaction or as
/// one quarantine record (pointer `/transactions/<i>`, with its `id` when
/// readable). Amounts beyond [`bankpipe_model::MAX_ABS_MINOR_UNITS`] are
/// quarantined ("amount out of range …"); an account balance out of range is
/// dropped to `None` with a page warning and the account kept. A leading
/// UTF-8 byte-order mark is stripped (with a warning); a blank `next` or
/// `previous` (`""`) means there is none.
///
/// # Errors
/// [`PageError::Malformed`] when the page itself is not a Truv response
/// (not JSON, trailing data after the document, `transactions` missing,
/// wrong type at top level), naming the file, JSON path and problem.
/// Malformed records do not fail the page: they are returned in `quarantine`.
pub fn normalize_page(
    ctx: &NormalizeContext,
    file: &str,
    bytes: &[u8],
) -> Result<(NormalizedPage, TruvCursor), PageError> {
    let page_text = page_text(file, bytes)?;
    let text = page_text.text;
    if let Ok(page) = serde_json::from_str::<wire::TypedPage<'_>>(text) {
        let (mut out, cursor) = normalize_typed(ctx, file, page);
        out.warnings.extend(page_text.bom_warning(file));
        return Ok((out, cursor));
    }
    let page: wire::Page<'_> = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(_) => return Err(malformed_page::<wire::Page<'_>>(file, &page_text)),
    };
    let mut out = NormalizedPage { records_read: page.transactions.len() as u64, ..NormalizedPage::default() };
    out.warnings.extend(page_text.bom_warning(file));
    for (i, raw) in page.accounts.iter().flatten().enumerate() {
        let mut dropped = Vec::new();
        let account = parse_record(raw)
            .and_then(|w| normalize_account(ctx, w, &mut dropped))
            .map_err(|r| r.with_record_id(raw_id(raw, "id")));
        if let Ok(a) = &account {
            warn_dropped(&mut out.warnings, &dropped, file, i, Some(&a.source_account_id));
        }
        collect(&mut out.accounts, &mut out.quarantine, account, || (ctx, file, format!("/accounts/{i}")));
    }
    out.transactions.reserve(page.transactions.len());
    for (i, raw) in page.transactions.iter().enumerate() {
        let tx = parse_record(raw)
            .and_then(|w| normalize_transaction(ctx, w))
            .map_err(|r| r.with_record_id(raw_id(raw, "id")));
        collect(&mut out.transactions, &mut out.quarantine, tx, || (ctx, file, format!("/transactions/{i}")));
    }
    for (i, raw) in page.daily_totals.iter().flatten().enumerate() {
        let pointer = format!("/daily_totals/{i}");
        let total = parse_record(raw)
            .and_then(|w| normalize_daily_total(ctx, w, file, &pointer))
            .map_err(|r| r.with_record_id(raw_id(raw, "date").map(|d| format!("daily_total:{d}"))));
        collect(&mut out.reported_totals, &mut out.quarantine, total, || (ctx, file, pointer.clone()));
    }
    let cursor = cursor(page.count, page.next, page.previous);
    Ok((out, cursor))
}

/// The fast path: every record already parsed with the expected types.
fn normalize_typed(ctx: &NormalizeContext, file: &str, page: wire::TypedPage<'_>) -> (NormalizedPage, TruvCursor) {
    let mut out = NormalizedPage { records_read: page.transactions.len() as u64, ..NormalizedPage::default() };
    for (i, w) in page.accounts.into_iter().flatten().enumerate() {
        let id = w.id.as_deref().filter(|id| !id.trim().is_empty()).map(str::to_owned);
        let mut dropped = Vec::new();
        let account = normalize_account(ctx, w, &mut dropped).map_err(|r| r.with_record_id(id));
        if let Ok(a) = &account {
            warn_dropped(&mut out.warnings, &dropped, file, i, Some(&a.source_account_id));
        }
        collect(&mut out.accounts, &mut out.quarantine, account, || (ctx, file, format!("/accounts/{i}")));
    }
    out.transactions.reserve(page.transactions.len());
    for (i, w) in page.transactions.into_iter().enumerate() {
        let id = w.id.as_deref().filter(|id| !id.trim().is_empty()).map(str::to_owned);
        let tx = normalize_transaction(ctx, w).map_err(|r| r.with_record_id(id));
        collect(&mut out.transactions, &mut out.quarantine, tx, || (ctx, file, format!("/transactions/{i}")));
    }
    for (i, w) in page.daily_totals.into_iter().flatten().enumerate() {
        let pointer = format!("/daily_totals/{i}");
        let id = w.date.as_deref().map(|d| format!("daily_total:{d}"));
        let total = normalize_daily_total(ctx, w, file, &pointer).map_err(|r| r.with_record_id(id));
        collect(&mut out.reported_totals, &mut out.quarantine, total, || (ctx, file, pointer.clone()));
    }
    (out, cursor(page.count, page.next, page.previous))
}

/// Push a normalized record, or its quarantine record (location built lazily).
fn collect<'c, T>(
    ok: &mut Vec<T>,
    quarantine: &mut Vec<bankpipe_model::QuarantineRecord>,
    result: Result<T, Reject>,
    at: impl FnOnce() -> (&'c NormalizeContext, &'c str, String),
) {
    match result {
        Ok(v) => ok.push(v),
        Err(r) => {
            let (ctx, file, pointer) = at();
            quarantine.push(r.into_record(ctx, file, pointer));
        }
    }
}

/// Page warnings for balances dropped from account `i` (out of range), when
/// the account itself is kept (a rejected account is quarantined instead).
fn warn_dropped(warnings: &mut Vec<String>, dropped: &[Dropped], file: &str, i: usize, id: Option<&str>) {
    for d in dropped {
        warnings.push(d.warning(file, &format!("/accounts/{i}"), id));
    }
}

/// The cursor; a blank `next`/`previous` (`""`, spaces) means none — some
/// servers send `""` instead of `null` on the last (first) page.
fn cursor(count: Option<u64>, next: Option<Cow<'_, str>>, previous: Option<Cow<'_, str>>) -> TruvCursor {
    TruvCursor { count, next: non_empty(next), previous: non_empty(previous) }
}

fn normalize_transaction(ctx: &NormalizeContext, w: wire::Txn<'_>) -> Result<Transaction, Reject> {
    let id = non_empty(w.id).ok_or_else(|| Reject::missing("id"))?;
    let account_id = non_empty(w.account_id).ok_or_else(|| Reject::missing("account_id"))?;
    let currency = currency_field(w.currency_code.as_deref(), "currency_code")?;
    let amount = money_field(w.amount, "amount", currency)?.ok_or_else(|| Reject::missing("amount"))?;

    let type_word = w.kind.as_deref().ok_or_else(|| Reject::missing("type"))?;
    let status_word = w.status.as_deref().ok_or_else(|| Reject::missing("status"))?;
    const TYPES: [&str; 3] = ["DEBIT", "CREDIT", "MEMO"];
    const STATUSES: [&str; 4] = ["POSTED", "PENDING", "AUTHORIZATION", "MEMO"];
    let type_index = match_ascii(type_word, &TYPES);
    let status_index = match_ascii(status_word, &STATUSES);
    let (amount, type_memo) = type_index
        .map(|i| match i {
            0 => (amount.abs().negated(), false),
            1 => (amount.abs(), false),
            _ => (amount, true),
        })
        .ok_or_else(|| Reject::new("type", type_word, "type must be CREDIT, DEBIT or MEMO"))?;
    let (status, status_memo) = status_index
        .map(|i| match i {
            0 => (Status::Posted, false),
            1 | 2 => (Status::Pending, false),
            _ => (Status::Posted, true),
        })
        .ok_or_else(|| Reject::new("status", status_word, "status must be POSTED, PENDING, AUTHORIZATION or MEMO"))?;

    let posted_at = optional_instant(w.posted_at.as_deref(), "posted_at")?;
    let transacted_at = optional_instant(w.transacted_at.as_deref(), "transacted_at")?;
    let booked = posted_at.or(transacted_at).ok_or_else(|| {
        Reject::new("transacted_at", "null", "neither posted_at nor transacted_at is given: no booking date")
    })?;
    let updated_at = optional_instant(w.updated_at.as_deref(), "updated_at")?;
    let mcc = mcc_field(w.merchant_category_code)?;
    let check_number = match w.check_number {
        None => None,
        Some(raw) => scalar_text(raw)
            .map_err(|v| Reject::new("check_number", v, "check_number must be a string or number"))?
            .filter(|s| !s.trim().is_empty())
            .map(Cow::into_owned),
    };
    let memo_only = type_memo || status_memo;
    Ok(Transaction {
        id: CanonicalId::for_transaction(&ctx.source, &account_id, &id),
        source: ctx.source.clone(),
        source_account_id: account_id,
        source_transaction_id: id,
        external_id: non_empty(w.external_id),
        group_id: None,
        status,
        source_status: status_index.map_or("", |i| STATUSES[i]),
        source_type: type_index.map_or("", |i| TYPES[i]),
        memo_only,
        amount,
        transacted_at,
        posted_at,
        booking_date: date_in(booked, ctx.timezone),
        updated_at,
        description: w.description.map(Cow::into_owned).unwrap_or_default(),
        merchant_name: non_empty(w.merchant_name),
        mcc,
        source_categories: w.categories.unwrap_or_default().into_iter().map(Cow::into_owned).collect(),
        memo: non_empty(w.memo),
        check_number,
        kind: Kind::Other, // derived by enrichment (bankpipe-enrich categorize::kind)
        category: None,
        category_source: CategorySource::Default,
        duplicate_of: None,
        superseded_by: None,
        source_fields: None,
    })
}

fn normalize_account(
    ctx: &NormalizeContext,
    w: wire::Account<'_>,
    dropped: &mut Vec<Dropped>,
) -> Result<Account, Reject> {
    let id = non_empty(w.id).ok_or_else(|| Reject::missing("id"))?;
    let mut account = Account::bare(ctx.source.clone(), id);
    account.account_type = non_empty(w.kind);
    account.subtype = non_empty(w.subtype);
    account.name = non_empty(w.nickname);
    account.mask = non_empty(w.mask).map(|m| mask_account_number(&m));
    account.updated_at = optional_instant(w.updated_at.as_deref(), "updated_at")?;
    if let Some(b) = w.balances {
        if let Some(code) = b.currency_code.as_deref().filter(|c| !c.is_empty()) {
            let currency = currency_field(Some(code), "balances.currency_code")?;
            account.currency = Some(currency);
            account.balance = balance_field(b.balance, "balances.balance", currency, dropped)?;
            account.available_balance =
                balance_field(b.available_balance, "balances.available_balance", currency, dropped)?;
            account.credit_limit = balance_field(b.credit_limit, "balances.credit_limit", currency, dropped)?;
        } else if b.balance.is_some_and(|r| r.get() != "null") {
            return Err(Reject::missing("balances.currency_code"));
        }
    }
    Ok(account)
}

fn normalize_daily_total(
    ctx: &NormalizeContext,
    w: wire::DailyTotal<'_>,
    file: &str,
    pointer: &str,
) -> Result<ReportedDailyTotal, Reject> {
    let date_text = w.date.as_deref().ok_or_else(|| Reject::missing("date"))?;
    let date = parse_date(date_text).map_err(|e| Reject::new("date", date_text, e))?;
    let net_raw = w.net_total.ok_or_else(|| Reject::missing("net_total"))?;
    let net_text = scalar_text(net_raw)
        .map_err(|v| Reject::new("net_total", v, "expected a decimal string"))?
        .ok_or_else(|| Reject::missing("net_total"))?;
    let net_total = bankpipe_model::parse_decimal(&net_text)
        .map_err(|e| Reject::new("net_total", net_text.as_ref(), e.to_string()))?;
    let transaction_count = w.transaction_count.ok_or_else(|| Reject::missing("transaction_count"))?;
    let currency = match w.currency_code.as_deref().filter(|c| !c.is_empty()) {
        Some(code) => Some(currency_field(Some(code), "currency_code")?),
        None => None,
    };
    Ok(ReportedDailyTotal {
        source: ctx.source.clone(),
        account_id: non_empty(w.account_id),
        currency,
        date,
        net_total,
        transaction_count,
        file: file.to_owned(),
        pointer: pointer.to_owned(),
    })
}

fn match_ascii(word: &str, options: &[&str]) -> Option<usize> {
    options.iter().position(|o| o.eq_ignore_ascii_case(word))
}

fn optional_instant(text: Option<&str>, field: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, Reject> {
    match text {
        None => Ok(None),
        Some("") => Ok(None),
        Some(t) => parse_utc(t).map(Some).map_err(|e| Reject::new(field, t, e)),
    }
}

fn mcc_field(raw: Option<&RawValue>) -> Result<Option<Mcc>, Reject> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = |v: &str| Reject::new("merchant_category_code", v, "merchant_category_code must be an integer 0-9999");
    match scalar_text(raw).map_err(|v| bad(&v))? {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => t.parse::<u64>().ok().and_then(Mcc::new).map(Some).ok_or_else(|| bad(&t)),
    }
}

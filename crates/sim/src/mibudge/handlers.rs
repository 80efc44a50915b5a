//! The `/api/v1/` endpoints: bank accounts, budgets, currencies,
//! transactions, splits.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Response, StatusCode};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::drf::{
    description_date, field_error, invalid_page, json_object, money, not_found, parse_amount, parse_bool, parse_date,
    reply, uuid4, uuid_hex, Page, Params, Reply, CURRENCIES, DATETIME_FORMAT, TRANSACTION_TYPES,
};
use super::zone::{parse_filter, parse_iso, Zone};
use super::{account_json, Allocation, Budget, Data, MibudgeSim, Txn};
use crate::faults::html_500;

type Sim = State<Arc<MibudgeSim>>;
type Q = Query<Vec<(String, String)>>;

const REQUIRED: &str = "This field is required.";
const NOT_NULL: &str = "This field may not be null.";
const BLANK: &str = "This field may not be blank.";

/// One page of `rows`, rendered.
fn paged<T>(
    sim: &MibudgeSim,
    params: &Params,
    headers: &HeaderMap,
    path: &str,
    rows: &[T],
    render: impl Fn(&T) -> Value,
) -> Reply {
    match Page::select(params, rows.len(), sim.config.page_size) {
        None => invalid_page(),
        Some(page) => {
            let results = rows[page.range()].iter().map(render).collect();
            reply(StatusCode::OK, page.body(results, headers, path, params))
        }
    }
}

fn bad_request(errors: Map<String, Value>) -> Reply {
    reply(StatusCode::BAD_REQUEST, Value::Object(errors))
}

/// A django-filter `UUIDFilter` value: `Err` is its 400; a well-formed
/// UUID that matches nothing simply filters everything out.
fn uuid_filter(params: &Params, k: &str, errors: &mut Map<String, Value>) -> Option<String> {
    let v = params.get(k)?;
    let hex = uuid_hex(v);
    if hex.is_none() {
        field_error(errors, k, "Enter a valid UUID.");
    }
    hex
}

fn same_uuid(id: &str, hex: &str) -> bool {
    uuid_hex(id).is_some_and(|h| h == hex)
}

/// `GET /api/v1/bank-accounts/` (filter `account_type`: C, S or X).
pub(super) async fn list_accounts(State(sim): Sim, Query(q): Q, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let params = Params(q);
    if let Some(t) = params.get("account_type").filter(|t| !["C", "S", "X"].contains(t)) {
        let msg = format!("Select a valid choice. {t} is not one of the available choices.");
        return reply(StatusCode::BAD_REQUEST, json!({ "account_type": [msg] }));
    }
    let d = sim.data.lock().expect("data lock");
    let rows: Vec<_> = d.accounts.iter().filter(|_| params.get("account_type").is_none_or(|t| t == "C")).collect();
    paged(&sim, &params, &headers, "/api/v1/bank-accounts/", &rows, |a| account_json(a))
}

/// `GET /api/v1/bank-accounts/{id}/`.
pub(super) async fn get_account(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let d = sim.data.lock().expect("data lock");
    d.account(&id).map_or_else(|| not_found("BankAccount"), |a| reply(StatusCode::OK, account_json(a)))
}

/// `POST /api/v1/bank-accounts/{id}/mark-imported/` with
/// `{"last_posted_through": "YYYY-MM-DD"}`: sets `last_imported_at` to now
/// and advances `last_posted_through`, never backwards. Errors are
/// `{"last_posted_through": "msg"}` (a plain string).
pub(super) async fn mark_imported(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let now = sim.now();
    let ok = {
        let mut d = sim.data.lock().expect("data lock");
        let Some(account) = d.accounts.iter_mut().find(|a| a.id == id) else {
            return not_found("BankAccount");
        };
        let b = match json_object(&headers, &body) {
            Ok(b) => b,
            Err((status, body)) => return reply(status, body),
        };
        let date = match b.get("last_posted_through") {
            None | Some(Value::Null | Value::Bool(false)) => Err("This field is required."),
            Some(Value::String(s)) if s.is_empty() => Err("This field is required."),
            Some(Value::Number(n)) if n.as_f64() == Some(0.0) => Err("This field is required."),
            Some(v) => v.as_str().and_then(parse_date).ok_or("Expected YYYY-MM-DD format."),
        };
        let date = match date {
            Ok(date) => date,
            Err(msg) => return reply(StatusCode::BAD_REQUEST, json!({ "last_posted_through": msg })),
        };
        account.last_posted_through = account.last_posted_through.max(Some(date));
        account.last_imported_at = Some(now.clone());
        account.modified_at = now;
        reply(StatusCode::OK, account_json(account))
    };
    sim.config.faults.after_commit(ok).await
}

fn budget_json(d: &Data, b: &Budget) -> Value {
    let currency = d.account(&b.bank_account).map_or("USD", |a| a.currency.as_str());
    json!({
        "id": b.id, "name": b.name, "bank_account": b.bank_account,
        "balance": money(b.balance), "balance_currency": currency,
        "target_balance": money(Decimal::ZERO), "target_balance_currency": currency,
        "funding_amount": null, "funding_amount_currency": currency,
        "budget_type": "G", "funding_type": "F", "target_date": null,
        "with_fillup_goal": false, "fillup_goal": null,
        "archived": false, "archived_at": null, "complete": false, "paused": false,
        "funding_schedule": null, "recurrance_schedule": null, "memo": null, "auto_spend": null,
        "next_funding": null, "created_at": b.created_at, "modified_at": b.created_at,
    })
}

/// `GET /api/v1/budgets/` (filter `bank_account`).
pub(super) async fn list_budgets(State(sim): Sim, Query(q): Q, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let params = Params(q);
    let mut e = Map::new();
    let account = uuid_filter(&params, "bank_account", &mut e);
    if !e.is_empty() {
        return bad_request(e);
    }
    let d = sim.data.lock().expect("data lock");
    let rows: Vec<&Budget> =
        d.budgets.iter().filter(|b| account.as_ref().is_none_or(|a| same_uuid(&b.bank_account, a))).collect();
    paged(&sim, &params, &headers, "/api/v1/budgets/", &rows, |b| budget_json(&d, b))
}

/// `GET /api/v1/budgets/{id}/`.
pub(super) async fn get_budget(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let d = sim.data.lock().expect("data lock");
    let found = d.budgets.iter().find(|b| b.id == id);
    found.map_or_else(|| not_found("Budget"), |b| reply(StatusCode::OK, budget_json(&d, b)))
}

/// `GET /api/v1/currencies/`: the server's `currencies` view, a plain JSON
/// array (no pagination) of `{"code": "USD", "name": "US Dollar",
/// "numeric": "840"}` sorted by code: the 20 currencies of the server's
/// `CURRENCIES` setting (no KWD).
pub(super) async fn currencies(State(sim): Sim, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let list: Vec<Value> = CURRENCIES
        .iter()
        .map(|(code, name, numeric)| json!({"code": code, "name": name, "numeric": numeric}))
        .collect();
    reply(StatusCode::OK, Value::Array(list))
}

/// A present, non-null field, else its error.
fn required<'a>(b: &'a Map<String, Value>, k: &str, errors: &mut Map<String, Value>) -> Option<&'a Value> {
    match b.get(k) {
        None => field_error(errors, k, REQUIRED),
        Some(Value::Null) => field_error(errors, k, NOT_NULL),
        Some(v) => return Some(v),
    }
    None
}

/// A DRF `CharField` value: numbers are coerced to strings, whitespace is
/// trimmed (`trim_whitespace`), then blank and `max_length` are checked.
fn text(v: &Value, k: &str, max: usize, allow_blank: bool, errors: &mut Map<String, Value>) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => {
            field_error(errors, k, "Not a valid string.");
            return None;
        }
    };
    if s.is_empty() && !allow_blank {
        field_error(errors, k, BLANK);
        return None;
    }
    if s.chars().count() > max {
        field_error(errors, k, format!("Ensure this field has no more than {max} characters."));
        return None;
    }
    Some(s)
}

/// An optional, nullable `CharField`: `Some(None)` when absent or null.
fn optional_text(
    b: &Map<String, Value>,
    k: &str,
    max: usize,
    errors: &mut Map<String, Value>,
) -> Option<Option<String>> {
    match b.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(v) => text(v, k, max, true, errors).map(Some),
    }
}

/// A DRF `DateTimeField` value: a bare date is local midnight, a naive
/// datetime is local, an offset makes it an instant.
fn datetime(v: &Value, k: &str, zone: &Zone, errors: &mut Map<String, Value>) -> Option<DateTime<Utc>> {
    let t = v.as_str().and_then(|s| parse_iso(s, zone));
    if t.is_none() {
        field_error(errors, k, DATETIME_FORMAT);
    }
    t
}

fn transaction_type(v: &Value, errors: &mut Map<String, Value>) -> Option<String> {
    let k = text(v, "transaction_type", usize::MAX, true, errors)?;
    if TRANSACTION_TYPES.contains(&k.as_str()) {
        Some(k)
    } else {
        field_error(errors, "transaction_type", format!("\"{k}\" is not a valid choice."));
        None
    }
}

/// The `bank_account` slug field (`slug_field="id"`): the index of the account.
fn bank_account(d: &Data, v: &Value, errors: &mut Map<String, Value>) -> Option<usize> {
    let pk = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let Some(hex) = uuid_hex(&pk) else {
        field_error(errors, "bank_account", format!("\u{201c}{pk}\u{201d} is not a valid UUID."));
        return None;
    };
    let found = d.accounts.iter().position(|a| same_uuid(&a.id, &hex));
    if found.is_none() {
        field_error(errors, "bank_account", format!("Object with id={pk} does not exist."));
    }
    found
}

/// Why a create was refused.
pub(super) enum Refused {
    /// 400 with these field errors.
    Invalid(Map<String, Value>),
    /// The amount's currency (absent = USD) is not the account's: the
    /// server's balance arithmetic raises and Django answers its HTML 500.
    Currency { amount: String, account: String },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Invalid(e) => write!(f, "400 {}", Value::Object(e.clone())),
            Refused::Currency { amount, account } => {
                write!(f, "500: an amount in {amount} on an account in {account} (pass amount_currency)")
            }
        }
    }
}

/// A transaction as the API renders it.
pub(super) fn txn_json(zone: &Zone, t: &Txn) -> Value {
    json!({
        "id": t.id,
        "bank_account": t.bank_account,
        "amount": money(t.amount),
        "amount_currency": t.currency,
        "party": null,
        "posted_date": zone.render(t.posted),
        "transaction_date": zone.render(t.date),
        "transaction_type": t.kind,
        "pending": t.pending,
        "memo": t.memo,
        "raw_description": t.raw,
        "description": t.description,
        "bank_transaction_id": t.bank_transaction_id,
        "linked_transaction": null,
        "bank_account_posted_balance": money(t.posted_balance),
        "bank_account_posted_balance_currency": t.currency,
        "bank_account_available_balance": money(t.available_balance),
        "bank_account_available_balance_currency": t.currency,
        "image": null,
        "document": null,
        "created_at": t.created_at,
        "modified_at": t.modified_at,
    })
}

/// Validate a create body like the server's serializer (all field errors
/// at once), then create the row as its `TransactionService.create` does:
/// no dedupe, `bank_transaction_id` not stored, the amount added to the
/// available balance (and to the posted one unless pending), a default
/// allocation of the whole amount to the account's `Unallocated` budget,
/// `transaction_date` (when absent) the local midnight of the date in
/// `raw_description` or of the posted date, `description` (when blank)
/// the raw description. Returns the row as the create answers it.
pub(super) fn create(sim: &MibudgeSim, d: &mut Data, b: &Map<String, Value>) -> Result<Value, Refused> {
    let zone = &sim.zone;
    let mut e = Map::new();
    let account = required(b, "bank_account", &mut e).and_then(|v| bank_account(d, v, &mut e));
    let amount =
        required(b, "amount", &mut e).and_then(|v| parse_amount(v).map_err(|m| field_error(&mut e, "amount", m)).ok());
    let posted = required(b, "posted_date", &mut e).and_then(|v| datetime(v, "posted_date", zone, &mut e));
    let txn_date = match b.get("transaction_date") {
        None | Some(Value::Null) => Some(None),
        Some(v) => datetime(v, "transaction_date", zone, &mut e).map(Some),
    };
    let kind = required(b, "transaction_type", &mut e).and_then(|v| transaction_type(v, &mut e));
    let raw = required(b, "raw_description", &mut e).and_then(|v| text(v, "raw_description", 512, false, &mut e));
    let description = match b.get("description") {
        None => Some(String::new()),
        Some(Value::Null) => {
            field_error(&mut e, "description", NOT_NULL);
            None
        }
        Some(v) => text(v, "description", 512, true, &mut e),
    };
    let memo = optional_text(b, "memo", 512, &mut e);
    let _ = optional_text(b, "bank_transaction_id", 256, &mut e);
    let pending = match b.get("pending") {
        None => Some(false),
        Some(v) => parse_bool(v).or_else(|| {
            field_error(&mut e, "pending", if v.is_null() { NOT_NULL } else { "Must be a valid boolean." });
            None
        }),
    };
    let (Some(ai), Some(amount), Some(posted), Some(txn_date), Some(kind), Some(raw), Some(description)) =
        (account, amount, posted, txn_date, kind, raw, description)
    else {
        return Err(Refused::Invalid(e));
    };
    let (Some(memo), Some(pending), true) = (memo, pending, e.is_empty()) else {
        return Err(Refused::Invalid(e));
    };
    // djmoney reads `amount_currency` from the raw body, upper-cased; USD
    // when absent. Adding money of two currencies raises a TypeError.
    let currency = match b.get("amount_currency") {
        None | Some(Value::Null) => "USD".to_owned(),
        Some(Value::String(c)) => c.trim().to_uppercase(),
        Some(other) => other.to_string(),
    };
    if currency != d.accounts[ai].currency {
        return Err(Refused::Currency { amount: currency, account: d.accounts[ai].currency.clone() });
    }
    let now = sim.now();
    let account = &mut d.accounts[ai];
    account.available += amount;
    if !pending {
        account.posted += amount;
    }
    let local_posted = zone.local(posted).date_naive();
    let date = txn_date.unwrap_or_else(|| zone.midnight(description_date(&raw, local_posted)));
    let description = if description.is_empty() { raw.clone() } else { description };
    let txn = Txn {
        id: uuid4(),
        bank_account: account.id.clone(),
        amount,
        currency,
        posted,
        date,
        kind,
        pending,
        memo,
        raw,
        description,
        bank_transaction_id: None,
        posted_balance: account.posted,
        available_balance: account.available,
        created_at: now.clone(),
        modified_at: now.clone(),
    };
    let unallocated = account.unallocated_budget.clone();
    adjust(d, &unallocated, amount);
    let default = Allocation { id: uuid4(), budget: unallocated, amount, created_at: now };
    d.allocations.insert(txn.id.clone(), vec![default]);
    let row = txn_json(zone, &txn);
    d.by_id.insert(txn.id.clone(), d.transactions.len());
    d.transactions.push(txn);
    d.created.push(row.clone());
    Ok(row)
}

/// `POST /api/v1/transactions/`: see [`create`]. An `amount_currency`
/// (absent = USD) other than the account's currency is an HTML 500 page
/// (nothing created).
pub(super) async fn create_transaction(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let b = match json_object(&headers, &body) {
        Ok(b) => b,
        Err((status, body)) => return reply(status, body),
    };
    let created = {
        let mut d = sim.data.lock().expect("data lock");
        create(&sim, &mut d, &b)
    };
    match created {
        Ok(row) => sim.config.faults.after_commit(reply(StatusCode::CREATED, row)).await,
        Err(Refused::Invalid(e)) => bad_request(e),
        Err(Refused::Currency { .. }) => html_500(),
    }
}

fn adjust(d: &mut Data, budget: &str, delta: Decimal) {
    if let Some(b) = d.budgets.iter_mut().find(|b| b.id == budget) {
        b.balance += delta;
    }
}

/// `PUT` (`partial` false) or `PATCH` `/api/v1/transactions/{id}/`, as the
/// server's serializer validates an update: only `transaction_type`,
/// `memo`, `description` and `bank_transaction_id` change; `pending` may go
/// from true to false (the posted balance then takes the amount), not back;
/// a `bank_account`, `amount`, `posted_date`, non-null `transaction_date`
/// or `raw_description` in the body is refused ("Cannot change … after
/// creation."), so a PUT, which requires them, is always a 400; a null
/// `transaction_date` reaches the NOT NULL column (HTML 500); `image` and
/// `document` are ignored.
async fn update(sim: Arc<MibudgeSim>, id: String, headers: HeaderMap, body: Bytes, partial: bool) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let now = sim.now();
    let ok = {
        let mut guard = sim.data.lock().expect("data lock");
        let d = &mut *guard;
        let Some(&i) = d.by_id.get(&id) else { return not_found("Transaction") };
        let b = match json_object(&headers, &body) {
            Ok(b) => b,
            Err((status, body)) => return reply(status, body),
        };
        let mut e = Map::new();
        if !partial {
            for k in ["bank_account", "amount", "posted_date", "transaction_type", "raw_description"] {
                if !b.contains_key(k) {
                    field_error(&mut e, k, REQUIRED);
                }
            }
        }
        let present = |k: &str| b.get(k).filter(|v| !v.is_null());
        for k in ["bank_account", "amount", "posted_date", "raw_description", "transaction_type", "pending"] {
            if b.get(k).is_some_and(Value::is_null) {
                field_error(&mut e, k, NOT_NULL);
            }
        }
        if let Some(v) = present("bank_account") {
            if bank_account(d, v, &mut e).is_some() {
                field_error(&mut e, "bank_account", "Cannot change the bank account after creation.");
            }
        }
        if let Some(v) = present("amount") {
            match parse_amount(v) {
                Ok(_) => field_error(&mut e, "amount", "Cannot change the transaction amount after creation."),
                Err(m) => field_error(&mut e, "amount", m),
            }
        }
        if let Some(v) = present("posted_date") {
            if datetime(v, "posted_date", &sim.zone, &mut e).is_some() {
                field_error(&mut e, "posted_date", "Cannot change the posted date after creation.");
            }
        }
        let null_date = b.get("transaction_date").is_some_and(Value::is_null);
        if let Some(v) = present("transaction_date") {
            if datetime(v, "transaction_date", &sim.zone, &mut e).is_some() {
                field_error(&mut e, "transaction_date", "Cannot change the transaction date after creation.");
            }
        }
        if let Some(v) = present("raw_description") {
            if text(v, "raw_description", 512, false, &mut e).is_some() {
                field_error(&mut e, "raw_description", "Cannot change the raw description after creation.");
            }
        }
        let kind = present("transaction_type").and_then(|v| transaction_type(v, &mut e));
        let memo = b.contains_key("memo").then(|| optional_text(&b, "memo", 512, &mut e)).flatten();
        let description = match b.get("description") {
            None => None,
            Some(Value::Null) => {
                field_error(&mut e, "description", NOT_NULL);
                None
            }
            Some(v) => text(v, "description", 512, true, &mut e),
        };
        let bank_id = b
            .contains_key("bank_transaction_id")
            .then(|| optional_text(&b, "bank_transaction_id", 256, &mut e))
            .flatten();
        let was_pending = d.transactions[i].pending;
        let settle = match present("pending").map(|v| (v, parse_bool(v))) {
            None => false,
            Some((_, None)) => {
                field_error(&mut e, "pending", "Must be a valid boolean.");
                false
            }
            Some((_, Some(true))) if !was_pending => {
                field_error(&mut e, "pending", "Cannot revert a posted transaction to pending.");
                false
            }
            Some((_, Some(p))) => was_pending && !p,
        };
        if !e.is_empty() {
            return bad_request(e);
        }
        if null_date {
            return html_500();
        }
        let t = &mut d.transactions[i];
        if let Some(k) = kind {
            t.kind = k;
        }
        if let Some(m) = memo {
            t.memo = m;
        }
        if let Some(desc) = description {
            t.description = if desc.is_empty() { t.raw.clone() } else { desc };
        }
        if let Some(bid) = bank_id {
            t.bank_transaction_id = bid;
        }
        t.modified_at = now;
        if settle {
            t.pending = false;
            let (amount, account) = (t.amount, t.bank_account.clone());
            if let Some(a) = d.accounts.iter_mut().find(|a| a.id == account) {
                a.posted += amount;
            }
        }
        reply(StatusCode::OK, txn_json(&sim.zone, &d.transactions[i]))
    };
    sim.config.faults.after_commit(ok).await
}

/// `PUT /api/v1/transactions/{id}/`: see [`update`].
pub(super) async fn put_transaction(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Reply {
    update(sim, id, headers, body, false).await
}

/// `PATCH /api/v1/transactions/{id}/`: see [`update`].
pub(super) async fn patch_transaction(
    State(sim): Sim,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    update(sim, id, headers, body, true).await
}

/// `DELETE /api/v1/transactions/{id}/`: 204 with no body; the allocations
/// go (their budgets give their amounts back) and the account's balances
/// are reversed (available always, posted unless pending), as the server's
/// `TransactionService.delete` does. Other rows' balance snapshots stay.
pub(super) async fn delete_transaction(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    {
        let mut d = sim.data.lock().expect("data lock");
        let Some(t) = d.remove_txn(&id) else { return not_found("Transaction") };
        for a in d.allocations.remove(&id).unwrap_or_default() {
            adjust(&mut d, &a.budget, -a.amount);
        }
        if let Some(a) = d.accounts.iter_mut().find(|a| a.id == t.bank_account) {
            a.available -= t.amount;
            if !t.pending {
                a.posted -= t.amount;
            }
        }
    }
    let gone = Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).expect("valid response");
    sim.config.faults.after_commit(gone).await
}

/// A `DateTimeFilter` value (bare date = local midnight), or its error.
fn datetime_filter(zone: &Zone, params: &Params, k: &str, errors: &mut Map<String, Value>) -> Option<DateTime<Utc>> {
    let v = params.get(k)?;
    let t = parse_filter(v, zone);
    if t.is_none() {
        field_error(errors, k, "Enter a valid date/time.");
    }
    t
}

/// `GET /api/v1/transactions/`, in arrival order. `posted_date_from/to`
/// and `date_from/to` compare instants, `gte` and `lte`.
pub(super) async fn list_transactions(State(sim): Sim, Query(q): Q, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let params = Params(q);
    let mut e = Map::new();
    let account = uuid_filter(&params, "bank_account", &mut e);
    let kind = params.get("transaction_type");
    if let Some(k) = kind.filter(|k| !TRANSACTION_TYPES.contains(k)) {
        field_error(
            &mut e,
            "transaction_type",
            format!("Select a valid choice. {k} is not one of the available choices."),
        );
    }
    // django-filter's BooleanWidget: true/false/1/0 in any case, else no filter.
    let pending = params.get("pending").and_then(|p| match p.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    });
    let zone = &sim.zone;
    let posted = (
        datetime_filter(zone, &params, "posted_date_from", &mut e),
        datetime_filter(zone, &params, "posted_date_to", &mut e),
    );
    let dated =
        (datetime_filter(zone, &params, "date_from", &mut e), datetime_filter(zone, &params, "date_to", &mut e));
    if !e.is_empty() {
        return bad_request(e);
    }
    let within = |t: DateTime<Utc>, (from, to): &(Option<DateTime<Utc>>, Option<DateTime<Utc>>)| {
        from.is_none_or(|f| t >= f) && to.is_none_or(|u| t <= u)
    };
    let d = sim.data.lock().expect("data lock");
    let rows: Vec<&Txn> = d
        .transactions
        .iter()
        .filter(|t| {
            account.as_ref().is_none_or(|a| same_uuid(&t.bank_account, a))
                && kind.is_none_or(|k| t.kind == k)
                && pending.is_none_or(|p| t.pending == p)
                && within(t.posted, &posted)
                && within(t.date, &dated)
        })
        .collect();
    paged(&sim, &params, &headers, "/api/v1/transactions/", &rows, |t| txn_json(zone, t))
}

/// `GET /api/v1/transactions/{id}/`.
pub(super) async fn get_transaction(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let d = sim.data.lock().expect("data lock");
    d.txn(&id).map_or_else(|| not_found("Transaction"), |t| reply(StatusCode::OK, txn_json(&sim.zone, t)))
}

/// The allocations of `transaction` as the API renders them (amounts signed
/// like the transaction).
pub(super) fn allocations_json(d: &Data, transaction: &str) -> Vec<Value> {
    let Some(list) = d.allocations.get(transaction) else { return Vec::new() };
    let currency = d.txn(transaction).map_or("USD", |t| t.currency.as_str());
    list.iter()
        .map(|a| {
            let balance = d.budgets.iter().find(|b| b.id == a.budget).map_or(Decimal::ZERO, |b| b.balance);
            json!({
                "id": a.id, "transaction": transaction, "budget": a.budget,
                "amount": money(a.amount), "amount_currency": currency,
                "budget_balance": money(balance), "budget_balance_currency": currency,
                "category": null, "memo": null, "created_at": a.created_at, "modified_at": a.created_at,
            })
        })
        .collect()
}

fn list_error(message: impl Into<String>) -> Reply {
    reply(StatusCode::BAD_REQUEST, json!([message.into()]))
}

/// `POST /api/v1/transactions/{id}/splits/` with `{"splits": {"<budget
/// id>": "<amount>"}}`: positive decimal strings whose total is at most the
/// transaction's absolute amount, each budget of the transaction's account;
/// the sign comes from the transaction and any remainder goes to
/// `Unallocated`. Answers 200 with every allocation of the transaction as a
/// one-page list; refusals are `["msg"]`.
pub(super) async fn splits(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    sim.split_calls.fetch_add(1, Ordering::Relaxed);
    let now = sim.now();
    let body = {
        let mut guard = sim.data.lock().expect("data lock");
        let d = &mut *guard;
        let Some(txn) = d.txn(&id) else {
            return not_found("Transaction");
        };
        let b = match json_object(&headers, &body) {
            Ok(b) => b,
            Err((status, body)) => return reply(status, body),
        };
        let (account_id, total) = (txn.bank_account.clone(), txn.amount);
        let Some(account) = d.account(&account_id) else { return not_found("BankAccount") };
        let unallocated = account.unallocated_budget.clone();
        let map = match b.get("splits") {
            None | Some(Value::Null) => return reply(StatusCode::BAD_REQUEST, json!({ "splits": [REQUIRED] })),
            Some(Value::Object(m)) => m,
            Some(other) => {
                let kind = if other.is_array() { "list" } else { "str" };
                let msg = format!("Expected a dictionary of items but got type \"{kind}\".");
                return reply(StatusCode::BAD_REQUEST, json!({ "splits": [msg] }));
            }
        };
        let mut wanted: Vec<(String, Decimal)> = Vec::new();
        for (budget, amount) in map {
            match d.budgets.iter().find(|x| &x.id == budget) {
                None => return list_error(format!("Budget {budget} does not exist.")),
                Some(x) if x.bank_account != account_id => {
                    return list_error("All budgets must belong to the same bank account as the transaction.")
                }
                Some(_) => {}
            }
            let amount = match parse_amount(amount) {
                Ok(a) if a > Decimal::ZERO => a,
                Ok(_) => return list_error("Split amounts must be positive."),
                Err(m) => return reply(StatusCode::BAD_REQUEST, json!({ "splits": { budget.as_str(): [m] } })),
            };
            wanted.push((budget.clone(), amount));
        }
        let sum: Decimal = wanted.iter().map(|w| w.1).sum();
        if sum > total.abs() {
            let (sum, total) = (money(sum), money(total.abs()));
            return list_error(format!("Split amounts total {sum}, more than the transaction amount {total}."));
        }
        let remainder = total.abs() - sum;
        if remainder > Decimal::ZERO {
            match wanted.iter_mut().find(|w| w.0 == unallocated) {
                Some(w) => w.1 += remainder,
                None => wanted.push((unallocated, remainder)),
            }
        }
        let sign = if total < Decimal::ZERO { Decimal::NEGATIVE_ONE } else { Decimal::ONE };
        let old = d.allocations.remove(&id).unwrap_or_default();
        for a in &old {
            adjust(d, &a.budget, -a.amount);
        }
        let mut fresh = Vec::new();
        for (budget, amount) in wanted {
            let prior = old.iter().find(|a| a.budget == budget);
            let (aid, created) = prior.map_or_else(|| (uuid4(), now.clone()), |a| (a.id.clone(), a.created_at.clone()));
            adjust(d, &budget, amount * sign);
            fresh.push(Allocation { id: aid, budget, amount: amount * sign, created_at: created });
        }
        d.allocations.insert(id.clone(), fresh);
        let results = allocations_json(d, &id);
        json!({"count": results.len(), "next": null, "previous": null, "results": results})
    };
    sim.config.faults.after_commit(reply(StatusCode::OK, body)).await
}

//! The `/api/v1/` endpoints: bank accounts, budgets, transactions, splits.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::drf::{
    description_date, field_error, invalid_page, json_object, minor_digits, money, not_found, parse_amount, parse_bool,
    parse_date, reply, uuid4, Page, Params, Reply, DATE_FORMAT, TRANSACTION_TYPES,
};
use super::{account_json, Allocation, Budget, Data, MibudgeSim};
use crate::faults::html_500;

type Sim = State<Arc<MibudgeSim>>;
type Q = Query<Vec<(String, String)>>;

const REQUIRED: &str = "This field is required.";
const NOT_NULL: &str = "This field may not be null.";
const NO_CHOICE: &str = "Select a valid choice. That choice is not one of the available choices.";

/// One page of `rows`, rendered.
fn paged<T>(params: &Params, headers: &HeaderMap, path: &str, rows: &[T], render: impl Fn(&T) -> Value) -> Reply {
    match Page::select(params, rows.len()) {
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
    paged(&params, &headers, "/api/v1/bank-accounts/", &rows, |a| account_json(a))
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
    let b = match json_object(&headers, &body) {
        Ok(b) => b,
        Err((status, body)) => return reply(status, body),
    };
    let now = sim.now();
    let mut d = sim.data.lock().expect("data lock");
    let Some(account) = d.accounts.iter_mut().find(|a| a.id == id) else {
        return not_found("BankAccount");
    };
    let date = match b.get("last_posted_through") {
        None | Some(Value::Null) => Err("This field is required.".to_owned()),
        Some(v) => v.as_str().and_then(parse_date).ok_or_else(|| format!("Invalid date {v}; expected YYYY-MM-DD.")),
    };
    let date = match date {
        Ok(date) => date,
        Err(msg) => return reply(StatusCode::BAD_REQUEST, json!({ "last_posted_through": msg })),
    };
    account.last_posted_through = account.last_posted_through.max(Some(date));
    account.last_imported_at = Some(now.clone());
    account.modified_at = now;
    let ok = reply(StatusCode::OK, account_json(account));
    drop(d);
    sim.config.faults.maybe_drop(ok)
}

fn budget_json(d: &Data, b: &Budget) -> Value {
    let currency = d.account(&b.bank_account).map_or("USD", |a| a.currency.as_str());
    let digits = minor_digits(currency);
    json!({
        "id": b.id, "name": b.name, "bank_account": b.bank_account,
        "balance": money(b.balance, digits), "balance_currency": currency,
        "target_balance": money(Decimal::ZERO, digits), "target_balance_currency": currency,
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
    let d = sim.data.lock().expect("data lock");
    let account = params.get("bank_account");
    if account.is_some_and(|a| d.account(a).is_none()) {
        return reply(StatusCode::BAD_REQUEST, json!({ "bank_account": [NO_CHOICE] }));
    }
    let rows: Vec<&Budget> = d.budgets.iter().filter(|b| account.is_none_or(|a| b.bank_account == a)).collect();
    paged(&params, &headers, "/api/v1/budgets/", &rows, |b| budget_json(&d, b))
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

/// A present, non-null field, else its error.
fn required<'a>(b: &'a Map<String, Value>, k: &str, errors: &mut Map<String, Value>) -> Option<&'a Value> {
    match b.get(k) {
        None => field_error(errors, k, REQUIRED),
        Some(Value::Null) => field_error(errors, k, NOT_NULL),
        Some(v) => return Some(v),
    }
    None
}

/// A DRF `CharField` value (numbers are coerced to strings).
fn text(v: &Value, k: &str, errors: &mut Map<String, Value>) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => {
            field_error(errors, k, "Not a valid string.");
            None
        }
    }
}

fn date_field(v: &Value, k: &str, errors: &mut Map<String, Value>) -> Option<chrono::NaiveDate> {
    let d = v.as_str().and_then(parse_date);
    if d.is_none() {
        field_error(errors, k, DATE_FORMAT);
    }
    d
}

/// `POST /api/v1/transactions/`: validates like the DRF serializer (all
/// field errors at once), then creates the row: no dedupe,
/// `bank_transaction_id` ignored, a default allocation of the whole amount
/// to the account's `Unallocated` budget. An `amount_currency` other than
/// the account's currency is an HTML 500 page (nothing created).
pub(super) async fn create_transaction(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let b = match json_object(&headers, &body) {
        Ok(b) => b,
        Err((status, body)) => return reply(status, body),
    };
    let now = sim.now();
    let mut guard = sim.data.lock().expect("data lock");
    let d = &mut *guard;
    let mut e = Map::new();
    let account = required(&b, "bank_account", &mut e).and_then(|v| {
        let pk = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let found = d.accounts.iter().position(|a| a.id == pk);
        if found.is_none() {
            field_error(&mut e, "bank_account", format!("Invalid pk \"{pk}\" - object does not exist."));
        }
        found
    });
    let digits = account.map_or(2, |i| minor_digits(&d.accounts[i].currency));
    let amount = required(&b, "amount", &mut e)
        .and_then(|v| parse_amount(v, digits).map_err(|m| field_error(&mut e, "amount", m)).ok());
    let posted = required(&b, "posted_date", &mut e).and_then(|v| date_field(v, "posted_date", &mut e));
    let txn_date = match b.get("transaction_date") {
        None | Some(Value::Null) => None,
        Some(v) => date_field(v, "transaction_date", &mut e),
    };
    let kind = required(&b, "transaction_type", &mut e).and_then(|v| text(v, "transaction_type", &mut e));
    if let Some(k) = kind.as_deref().filter(|k| !TRANSACTION_TYPES.contains(k)) {
        field_error(&mut e, "transaction_type", format!("\"{k}\" is not a valid choice."));
    }
    let raw = required(&b, "raw_description", &mut e).and_then(|v| text(v, "raw_description", &mut e));
    if raw.as_deref().is_some_and(|r| r.trim().is_empty()) {
        field_error(&mut e, "raw_description", "This field may not be blank.");
    }
    let mut optional_text = |k: &str| match b.get(k) {
        None | Some(Value::Null) => Some(String::new()),
        Some(v) => text(v, k, &mut e),
    };
    let (description, memo) = (optional_text("description"), optional_text("memo"));
    let pending = match b.get("pending") {
        None => Some(false),
        Some(v) => parse_bool(v).or_else(|| {
            field_error(&mut e, "pending", if v.is_null() { NOT_NULL } else { "Must be a valid boolean." });
            None
        }),
    };
    let (Some(ai), Some(amount), Some(posted), Some(kind), Some(raw), Some(description), Some(memo), Some(pending)) =
        (account, amount, posted, kind, raw, description, memo, pending)
    else {
        return bad_request(e);
    };
    if !e.is_empty() {
        return bad_request(e);
    }
    let account = &mut d.accounts[ai];
    if b.get("amount_currency").and_then(Value::as_str).is_some_and(|c| c != account.currency) {
        return html_500();
    }
    if !pending {
        account.posted += amount;
    }
    if !pending || amount < Decimal::ZERO {
        account.available += amount;
    }
    let (id, currency) = (uuid4(), account.currency.clone());
    let row = json!({
        "id": id,
        "bank_account": account.id,
        "amount": money(amount, digits),
        "amount_currency": currency,
        "party": null,
        "posted_date": posted.to_string(),
        "transaction_date": txn_date.unwrap_or_else(|| description_date(&raw, posted)).to_string(),
        "transaction_type": kind,
        "pending": pending,
        "memo": memo,
        "raw_description": raw,
        "description": description,
        "linked_transaction": null,
        "bank_account_posted_balance": money(account.posted, digits),
        "bank_account_posted_balance_currency": currency,
        "bank_account_available_balance": money(account.available, digits),
        "bank_account_available_balance_currency": currency,
        "image": null,
        "document": null,
        "bank_transaction_id": null,
        "created_at": now,
        "modified_at": now,
    });
    let unallocated = account.unallocated_budget.clone();
    adjust(d, &unallocated, amount);
    let default = Allocation { id: uuid4(), budget: unallocated, amount, created_at: now };
    d.allocations.insert(id.clone(), vec![default]);
    d.by_id.insert(id, d.transactions.len());
    d.transactions.push(row.clone());
    drop(guard);
    sim.config.faults.maybe_drop(reply(StatusCode::CREATED, row))
}

fn adjust(d: &mut Data, budget: &str, delta: Decimal) {
    if let Some(b) = d.budgets.iter_mut().find(|b| b.id == budget) {
        b.balance += delta;
    }
}

/// A `YYYY-MM-DD` filter value, or a django-filter error.
fn date_filter(params: &Params, k: &str, errors: &mut Map<String, Value>) -> Option<String> {
    let v = params.get(k)?;
    let d = parse_date(v).map(|d| d.to_string());
    if d.is_none() {
        field_error(errors, k, "Enter a valid date.");
    }
    d
}

/// `GET /api/v1/transactions/`, in arrival order.
pub(super) async fn list_transactions(State(sim): Sim, Query(q): Q, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let params = Params(q);
    let d = sim.data.lock().expect("data lock");
    let mut e = Map::new();
    let account = params.get("bank_account");
    if account.is_some_and(|a| d.account(a).is_none()) {
        field_error(&mut e, "bank_account", NO_CHOICE);
    }
    let kind = params.get("transaction_type");
    if let Some(k) = kind.filter(|k| !TRANSACTION_TYPES.contains(k)) {
        field_error(
            &mut e,
            "transaction_type",
            format!("Select a valid choice. {k} is not one of the available choices."),
        );
    }
    // django-filter's boolean widget ignores values it does not know.
    let pending = params.get("pending").and_then(|p| match p {
        "true" | "True" | "1" => Some(true),
        "false" | "False" | "0" => Some(false),
        _ => None,
    });
    let posted = (date_filter(&params, "posted_date_from", &mut e), date_filter(&params, "posted_date_to", &mut e));
    let dated = (date_filter(&params, "date_from", &mut e), date_filter(&params, "date_to", &mut e));
    if !e.is_empty() {
        return bad_request(e);
    }
    let within = |v: &Value, (from, to): &(Option<String>, Option<String>)| {
        let s = v.as_str().unwrap_or("");
        from.as_deref().is_none_or(|f| s >= f) && to.as_deref().is_none_or(|t| s <= t)
    };
    let rows: Vec<&Value> = d
        .transactions
        .iter()
        .filter(|t| {
            account.is_none_or(|a| t["bank_account"] == a)
                && kind.is_none_or(|k| t["transaction_type"] == k)
                && pending.is_none_or(|p| t["pending"] == p)
                && within(&t["posted_date"], &posted)
                && within(&t["transaction_date"], &dated)
        })
        .collect();
    paged(&params, &headers, "/api/v1/transactions/", &rows, |t| (*t).clone())
}

/// `GET /api/v1/transactions/{id}/`.
pub(super) async fn get_transaction(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit(&headers).await {
        return r;
    }
    let d = sim.data.lock().expect("data lock");
    let found = d.by_id.get(&id).map(|i| d.transactions[*i].clone());
    found.map_or_else(|| not_found("Transaction"), |t| reply(StatusCode::OK, t))
}

/// The allocations of `transaction` as the API renders them (amounts signed
/// like the transaction).
pub(super) fn allocations_json(d: &Data, transaction: &str) -> Vec<Value> {
    let Some(list) = d.allocations.get(transaction) else { return Vec::new() };
    let row = d.by_id.get(transaction).map(|i| &d.transactions[*i]);
    let currency = row.and_then(|t| t["amount_currency"].as_str()).unwrap_or("USD");
    let digits = minor_digits(currency);
    list.iter()
        .map(|a| {
            let balance = d.budgets.iter().find(|b| b.id == a.budget).map_or(Decimal::ZERO, |b| b.balance);
            json!({
                "id": a.id, "transaction": transaction, "budget": a.budget,
                "amount": money(a.amount, digits), "amount_currency": currency,
                "budget_balance": money(balance, digits), "budget_balance_currency": currency,
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
    let b = match json_object(&headers, &body) {
        Ok(b) => b,
        Err((status, body)) => return reply(status, body),
    };
    let now = sim.now();
    let mut guard = sim.data.lock().expect("data lock");
    let d = &mut *guard;
    let Some(txn) = d.by_id.get(&id).map(|i| &d.transactions[*i]) else {
        return not_found("Transaction");
    };
    let account_id = txn["bank_account"].as_str().unwrap_or_default().to_owned();
    let total: Decimal = txn["amount"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default();
    let Some(account) = d.account(&account_id) else { return not_found("BankAccount") };
    let (digits, unallocated) = (minor_digits(&account.currency), account.unallocated_budget.clone());
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
        let amount = match parse_amount(amount, digits) {
            Ok(a) if a > Decimal::ZERO => a,
            Ok(_) => return list_error("Split amounts must be positive."),
            Err(m) => return reply(StatusCode::BAD_REQUEST, json!({ "splits": { budget.as_str(): [m] } })),
        };
        wanted.push((budget.clone(), amount));
    }
    let sum: Decimal = wanted.iter().map(|w| w.1).sum();
    if sum > total.abs() {
        let (sum, total) = (money(sum, digits), money(total.abs(), digits));
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
    drop(guard);
    let body = json!({"count": results.len(), "next": null, "previous": null, "results": results});
    sim.config.faults.maybe_drop(reply(StatusCode::OK, body))
}

//! Trupocket simulator (seed 000): PAT auth, households, detailed-tracking
//! accounts, categories, payees and transactions, with the flat error
//! shape `{"errorCode", "errorMessage", "errorField"}`.
//!
//! - Auth: `Authorization: Bearer tp_<64 hex>` equal to the configured PAT,
//!   else 401 `unauthorized`.
//! - Every response carries `X-RateLimit-Limit/Remaining/Reset`; a request
//!   beyond the window's limit gets 429 `rate-limit-exceeded` with
//!   `Retry-After`. Windows: Free 20/day, Premium 1,000/day, or any N per
//!   second for tests ([`RateLimit`]).
//! - Transactions: `cashflow` expense/income/transfer, amounts integer
//!   cents > 0 (direction is the cashflow), `date` integer Unix seconds (a
//!   millisecond value is refused), 1–5 categories that exist, an existing
//!   `fromAccountID`; the monthly plan cap answers 403
//!   `plan-limit-exceeded`.
//! - Listing filters: `accounts` (account ids), `categories` (category
//!   ids), `fromDate`/`toDate` (`YYYY-MM-DD`, UTC days, inclusive) and
//!   `hashtags` (tags without `#`, comma-separated: a transaction whose
//!   `categories[].memo` carries any of them, case-insensitively; tags are
//!   `#[A-Za-z0-9_-]+`), all combined (AND). Transactions are listed as
//!   posted (memos included) plus `transactionID`, `createdAt`, `totalAmount`.
//! - A request runs to its end even if the client hangs up (each handler
//!   runs in its own task); [`Faults::latency_after_commit`],
//!   [`Faults::drop_after_processing_rate`] and
//!   [`Faults::unreadable_success_rate`] act on `POST …/transactions`
//!   after the transaction is stored.
//! - The ledger ([`TrupocketSim::ledger`]) holds every transaction accepted
//!   (and seeded, [`TrupocketSim::seed_transaction`]), for "exactly once"
//!   assertions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::faults::{detached, json_response, Faults};
use crate::ratelimit::{RateLimit, WindowLimiter};

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct TrupocketConfig {
    /// The valid PAT (`tp_` + 64 hex).
    pub token: String,
    /// Plan id reported by who-am-i (`free`, `premium`, `developer`).
    pub plan: String,
    /// API calls per window.
    pub rate_limit: RateLimit,
    /// Transactions per calendar month (`None` = unlimited; Free is 60).
    pub monthly_transactions: Option<u64>,
    /// Faults to inject.
    pub faults: Faults,
}

impl Default for TrupocketConfig {
    fn default() -> Self {
        TrupocketConfig {
            token: format!("tp_{}", "0123456789abcdef".repeat(4)),
            plan: "premium".into(),
            rate_limit: RateLimit::PREMIUM,
            monthly_transactions: None,
            faults: Faults::none(),
        }
    }
}

#[derive(Default)]
struct Household {
    name: String,
    accounts: Vec<Value>,
    categories: Vec<Value>,
    payees: Vec<Value>,
    transactions: Vec<Value>,
}

/// The simulator's state.
pub struct TrupocketSim {
    config: TrupocketConfig,
    limiter: WindowLimiter,
    households: Mutex<BTreeMap<String, Household>>,
    ids: AtomicU64,
    requests: AtomicU64,
    rejected_429: AtomicU64,
    log: Mutex<Vec<String>>,
}

type Reply = Response<Body>;

impl TrupocketSim {
    /// A simulator with no households.
    pub fn new(config: TrupocketConfig) -> Arc<TrupocketSim> {
        Arc::new(TrupocketSim {
            limiter: WindowLimiter::new(config.rate_limit),
            config,
            households: Mutex::new(BTreeMap::new()),
            ids: AtomicU64::new(1),
            requests: AtomicU64::new(0),
            rejected_429: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        })
    }

    /// Every request received, as `METHOD /path?query`, in arrival order.
    pub fn request_log(&self) -> Vec<String> {
        self.log.lock().expect("lock").clone()
    }

    /// Create a household directly (test setup, not counted against the rate limit).
    pub fn seed_household(&self, name: &str) -> String {
        let id = self.next_id();
        self.households
            .lock()
            .expect("lock")
            .insert(id.clone(), Household { name: name.into(), ..Household::default() });
        id
    }

    /// Create an account directly (test setup).
    pub fn seed_account(&self, household: &str, kind: &str, name: &str) -> String {
        let id = self.next_id();
        let mut hs = self.households.lock().expect("lock");
        if let Some(h) = hs.get_mut(household) {
            h.accounts.push(json!({"accountID": id, "type": kind, "name": name, "balance": 0}));
        }
        id
    }

    /// Create a category directly (test setup).
    pub fn seed_category(&self, household: &str, name: &str) -> String {
        let id = self.next_id();
        let mut hs = self.households.lock().expect("lock");
        if let Some(h) = hs.get_mut(household) {
            h.categories.push(json!({"categoryID": id, "name": name, "budget": {"amount": 0, "balance": 0}}));
        }
        id
    }

    /// Store a transaction in `household` as `POST
    /// …/detailed-tracking/transactions` would with `body` (same
    /// validation; no request counted, no rate or plan limit, no fault): an
    /// entry the user made by hand. Returns its `transactionID`.
    ///
    /// # Panics
    /// When the household does not exist or the POST would refuse `body`.
    pub fn seed_transaction(&self, household: &str, body: Value) -> String {
        // Panic only once the lock is released, so the simulator stays usable.
        let stored =
            self.households.lock().expect("lock").get_mut(household).map(|h| store_transaction(self, h, &body));
        match stored {
            None => panic!("seed_transaction: no household {household}"),
            Some(Ok((id, _))) => id,
            Some(Err((msg, field))) => panic!("seed_transaction refused ({field}): {msg}"),
        }
    }

    /// Every transaction accepted or seeded, across households, in arrival
    /// order (per household), as stored.
    pub fn ledger(&self) -> Vec<Value> {
        self.households.lock().expect("lock").values().flat_map(|h| h.transactions.iter().cloned()).collect()
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests refused with 429.
    pub fn rejected_429(&self) -> u64 {
        self.rejected_429.load(Ordering::Relaxed)
    }

    /// Requests accepted per rate window: window index (Unix seconds ÷
    /// window length) → count.
    pub fn accepted_per_window(&self) -> std::collections::BTreeMap<u64, u64> {
        self.limiter.accepted_per_window()
    }

    /// The most requests accepted within one rate window.
    pub fn max_in_a_window(&self) -> u64 {
        self.limiter.max_in_a_window()
    }

    fn next_id(&self) -> String {
        // 27 characters, like Trupocket's KSUID-style ids.
        format!("2B{:025}", self.ids.fetch_add(1, Ordering::Relaxed))
    }

    /// The axum router (all paths under `/v1`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/users/who-am-i", get(who_am_i))
            .route("/v1/households", get(households).post(households))
            .route("/v1/households/{hid}", get(household))
            .route("/v1/households/{hid}/detailed-tracking/{collection}", get(collection).post(collection))
            .route("/v1/households/{hid}/detailed-tracking/accounts/{aid}", get(account))
            .layer(axum::middleware::from_fn(detached))
            .layer(axum::middleware::from_fn_with_state(Arc::clone(self), log_request))
            .with_state(Arc::clone(self))
    }

    /// Count, rate-limit and authenticate a request. `Err` is the reply to send.
    async fn admit(&self, headers: &HeaderMap) -> Result<crate::ratelimit::Verdict, Reply> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.config.faults.delay().await;
        let verdict = self.limiter.check();
        if !verdict.allowed {
            self.rejected_429.fetch_add(1, Ordering::Relaxed);
            return Err(reply(
                &verdict,
                StatusCode::TOO_MANY_REQUESTS,
                error("rate-limit-exceeded", "Too many API calls", None),
            ));
        }
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = auth.strip_prefix("Bearer ").unwrap_or("");
        let well_formed = token.len() == 67
            && token.starts_with("tp_")
            && token[3..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed || token != self.config.token {
            return Err(reply(
                &verdict,
                StatusCode::UNAUTHORIZED,
                error("unauthorized", "Invalid or expired token", None),
            ));
        }
        if let Some(e) = self.config.faults.server_error() {
            let mut e = e;
            verdict.write_headers(e.headers_mut());
            return Err(e);
        }
        Ok(verdict)
    }
}

async fn log_request(
    State(sim): State<Arc<TrupocketSim>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Reply {
    let line = format!("{} {}", request.method(), request.uri());
    sim.log.lock().expect("lock").push(line);
    next.run(request).await
}

fn error(code: &str, message: &str, field: Option<&str>) -> Value {
    json!({"errorCode": code, "errorMessage": message, "errorField": field})
}

fn reply(verdict: &crate::ratelimit::Verdict, status: StatusCode, body: Value) -> Reply {
    let mut r = json_response(status, body.to_string());
    verdict.write_headers(r.headers_mut());
    r
}

async fn who_am_i(State(sim): State<Arc<TrupocketSim>>, headers: HeaderMap) -> Reply {
    let v = match sim.admit(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    reply(
        &v,
        StatusCode::OK,
        json!({"userID": "2BxFGhvDwSoabBEqf2V5ZgC3ifo", "firstName": "Sim", "email": "sim@example.com", "planID": sim.config.plan}),
    )
}

async fn households(State(sim): State<Arc<TrupocketSim>>, method: Method, headers: HeaderMap, body: Bytes) -> Reply {
    let v = match sim.admit(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if method == Method::POST {
        let Ok(b) = serde_json::from_slice::<Value>(&body) else {
            return reply(&v, StatusCode::BAD_REQUEST, error("validation-error", "Body must be JSON", None));
        };
        let Some(name) = b["name"].as_str().filter(|n| !n.is_empty()) else {
            return reply(&v, StatusCode::BAD_REQUEST, error("validation-error", "name is required", Some("name")));
        };
        let id = sim.next_id();
        sim.households
            .lock()
            .expect("lock")
            .insert(id.clone(), Household { name: name.into(), ..Household::default() });
        return reply(&v, StatusCode::CREATED, json!({"householdID": id}));
    }
    let hs = sim.households.lock().expect("lock");
    let list: Vec<Value> =
        hs.iter().map(|(id, h)| json!({"householdID": id, "name": h.name, "style": "dt", "purpose": "home"})).collect();
    reply(&v, StatusCode::OK, json!({"households": list}))
}

async fn household(State(sim): State<Arc<TrupocketSim>>, Path(hid): Path<String>, headers: HeaderMap) -> Reply {
    let v = match sim.admit(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let hs = sim.households.lock().expect("lock");
    match hs.get(&hid) {
        None => reply(&v, StatusCode::NOT_FOUND, error("not-found", "Household not found", None)),
        Some(h) => reply(&v, StatusCode::OK, json!({"householdID": hid, "name": h.name, "accounts": h.accounts})),
    }
}

async fn account(
    State(sim): State<Arc<TrupocketSim>>,
    Path((hid, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let v = match sim.admit(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let hs = sim.households.lock().expect("lock");
    match hs.get(&hid).and_then(|h| h.accounts.iter().find(|a| a["accountID"] == aid.as_str())) {
        None => reply(&v, StatusCode::NOT_FOUND, error("not-found", "Account not found", None)),
        Some(a) => reply(&v, StatusCode::OK, a.clone()),
    }
}

async fn collection(
    State(sim): State<Arc<TrupocketSim>>,
    Path((hid, collection)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let v = match sim.admit(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body: Option<Value> = (method == Method::POST).then(|| serde_json::from_slice(&body).unwrap_or(Value::Null));
    match serve_collection(&sim, &v, &hid, &collection, &q, body) {
        Served::Done(r) => r,
        Served::Committed(r) => sim.config.faults.after_commit(r).await,
    }
}

enum Served {
    /// A read or a refusal.
    Done(Reply),
    /// A transaction was stored: the after-commit faults apply.
    Committed(Reply),
}

fn serve_collection(
    sim: &TrupocketSim,
    v: &crate::ratelimit::Verdict,
    hid: &str,
    collection: &str,
    q: &BTreeMap<String, String>,
    body: Option<Value>,
) -> Served {
    use Served::Done;
    let mut hs = sim.households.lock().expect("lock");
    let Some(h) = hs.get_mut(hid) else {
        return Done(reply(v, StatusCode::NOT_FOUND, error("not-found", "Household not found", None)));
    };
    let bad =
        |msg: &str, field: &str| Done(reply(v, StatusCode::BAD_REQUEST, error("validation-error", msg, Some(field))));
    match (collection, body) {
        ("accounts", None) => Done(reply(v, StatusCode::OK, json!({"accounts": h.accounts}))),
        ("accounts", Some(b)) => {
            let Some(kind) = b["type"].as_str().filter(|t| ["chkg", "svgs", "cc"].contains(t)) else {
                return bad("type must be chkg, svgs or cc", "type");
            };
            let Some(name) = b["name"].as_str().filter(|n| !n.is_empty()) else {
                return bad("name is required", "name");
            };
            if !b["balance"].is_i64() && !b["balance"].is_null() {
                return bad("balance must be an integer number of cents", "balance");
            }
            let id = sim.next_id();
            h.accounts.push(
                json!({"accountID": id, "type": kind, "name": name, "balance": b["balance"].as_i64().unwrap_or(0)}),
            );
            Done(reply(v, StatusCode::CREATED, json!({"accountID": id})))
        }
        ("categories", None) => Done(reply(v, StatusCode::OK, json!({"categories": h.categories}))),
        ("categories", Some(b)) => {
            let Some(name) = b["name"].as_str().filter(|n| !n.is_empty()) else {
                return bad("name is required", "name");
            };
            if h.categories.iter().any(|c| c["name"] == name) {
                return bad("a category with this name exists", "name");
            }
            let id = sim.next_id();
            let amount = b["budgetAmount"].as_i64().unwrap_or(0);
            h.categories.push(json!({"categoryID": id, "name": name, "budget": {"amount": amount, "balance": amount}}));
            Done(reply(v, StatusCode::CREATED, json!({"categoryID": id})))
        }
        ("payees", None) => Done(reply(v, StatusCode::OK, json!({"payees": h.payees}))),
        ("payees", Some(b)) => {
            let Some(name) = b["name"].as_str().filter(|n| !n.is_empty()) else {
                return bad("name is required", "name");
            };
            let id = sim.next_id();
            h.payees.push(json!({"payeeID": id, "name": name}));
            Done(reply(v, StatusCode::CREATED, json!({"payeeID": id})))
        }
        ("transactions", None) => Done(reply(v, StatusCode::OK, json!({"transactions": list_transactions(h, q)}))),
        ("transactions", Some(b)) => {
            if let Err((msg, field)) = validate_transaction(&b, h) {
                return bad(&msg, field);
            }
            if let Some(cap) = sim.config.monthly_transactions {
                let month = |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m").to_string());
                let now = month(chrono::Utc::now().timestamp());
                let this_month =
                    h.transactions.iter().filter(|t| month(t["createdAt"].as_i64().unwrap_or(0)) == now).count();
                if this_month as u64 >= cap {
                    return Done(reply(
                        v,
                        StatusCode::FORBIDDEN,
                        error("plan-limit-exceeded", "Monthly transaction limit of your plan reached", None),
                    ));
                }
            }
            match store_transaction(sim, h, &b) {
                Err((msg, field)) => bad(&msg, field),
                Ok((id, total)) => Served::Committed(reply(
                    v,
                    StatusCode::CREATED,
                    json!({"transactionID": id, "totalAmount": {"currency": "USD", "amount": total}}),
                )),
            }
        }
        _ => Done(reply(v, StatusCode::NOT_FOUND, error("not-found", "Unknown resource", None))),
    }
}

/// The `#hashtags` of a transaction's category memos, lower-cased.
fn hashtags(t: &Value) -> Vec<String> {
    let memos = t["categories"].as_array().into_iter().flatten().filter_map(|c| c["memo"].as_str());
    let mut tags = Vec::new();
    for memo in memos {
        for piece in memo.split('#').skip(1) {
            let tag: String =
                piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
            if !tag.is_empty() {
                tags.push(tag.to_ascii_lowercase());
            }
        }
    }
    tags
}

/// A comma-separated list parameter (empty items dropped), if given.
fn list_param<'a>(q: &'a BTreeMap<String, String>, k: &str) -> Option<Vec<&'a str>> {
    let items: Vec<&str> = q.get(k)?.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    (!items.is_empty()).then_some(items)
}

/// The household's transactions matching every filter given.
fn list_transactions<'a>(h: &'a Household, q: &BTreeMap<String, String>) -> Vec<&'a Value> {
    let accounts = list_param(q, "accounts");
    let categories: Option<Vec<&Value>> = list_param(q, "categories").map(|ids| {
        h.categories.iter().filter(|c| ids.iter().any(|id| c["categoryID"] == *id)).map(|c| &c["name"]).collect()
    });
    let tags: Option<Vec<String>> =
        list_param(q, "hashtags").map(|t| t.iter().map(|t| t.trim_start_matches('#').to_ascii_lowercase()).collect());
    let day = |k: &str| q.get(k).and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (from, to) = (day("fromDate"), day("toDate"));
    h.transactions
        .iter()
        .filter(|t| accounts.as_ref().is_none_or(|a| a.contains(&t["fromAccountID"].as_str().unwrap_or(""))))
        .filter(|t| {
            categories.as_ref().is_none_or(|names| {
                t["categories"].as_array().into_iter().flatten().any(|c| names.contains(&&c["name"]))
            })
        })
        .filter(|t| tags.as_ref().is_none_or(|wanted| hashtags(t).iter().any(|tag| wanted.contains(tag))))
        .filter(|t| {
            let d = chrono::DateTime::from_timestamp(t["date"].as_i64().unwrap_or(0), 0).map(|d| d.date_naive());
            from.is_none_or(|f| d.is_some_and(|d| d >= f)) && to.is_none_or(|e| d.is_some_and(|d| d <= e))
        })
        .collect()
}

/// Validate and store a transaction; returns its id and total in cents.
fn store_transaction(
    sim: &TrupocketSim,
    h: &mut Household,
    b: &Value,
) -> Result<(String, i64), (String, &'static str)> {
    let total = validate_transaction(b, h)?;
    let id = sim.next_id();
    let mut stored = b.clone();
    stored["transactionID"] = json!(id);
    stored["createdAt"] = json!(chrono::Utc::now().timestamp());
    stored["totalAmount"] = json!({"currency": "USD", "amount": total});
    h.transactions.push(stored);
    Ok((id, total))
}

/// Validate a transaction body; returns its total in cents.
fn validate_transaction(b: &Value, h: &Household) -> Result<i64, (String, &'static str)> {
    let cashflow = b["cashflow"].as_str().unwrap_or("");
    if !["expense", "income", "transfer"].contains(&cashflow) {
        return Err(("cashflow must be expense, income or transfer".into(), "cashflow"));
    }
    let from = b["fromAccountID"].as_str().unwrap_or("");
    if !h.accounts.iter().any(|a| a["accountID"] == from) {
        return Err(("fromAccountID does not exist in this household".into(), "fromAccountID"));
    }
    if cashflow == "transfer" {
        let to = b["toAccountID"].as_str().unwrap_or("");
        if !h.accounts.iter().any(|a| a["accountID"] == to) {
            return Err(("toAccountID is required for transfers".into(), "toAccountID"));
        }
    }
    let Some(date) = b["date"].as_i64().filter(|_| b["date"].is_i64()) else {
        return Err(("date must be an integer Unix timestamp in seconds".into(), "date"));
    };
    if !(0..100_000_000_000).contains(&date) {
        return Err(("date must be Unix seconds (this looks like milliseconds)".into(), "date"));
    }
    if b["payee"].as_str().is_none_or(str::is_empty) {
        return Err(("payee is required".into(), "payee"));
    }
    let cats = b["categories"].as_array().cloned().unwrap_or_default();
    if !(1..=5).contains(&cats.len()) {
        return Err(("a transaction needs 1 to 5 categories".into(), "categories"));
    }
    let mut total = 0i64;
    for c in &cats {
        if !h.categories.iter().any(|k| k["name"] == c["name"]) {
            return Err((format!("category {} does not exist", c["name"]), "categories.name"));
        }
        let Some(amount) = c["amount"].as_i64().filter(|a| c["amount"].is_i64() && *a > 0) else {
            return Err(("amount must be a positive integer number of cents".into(), "categories.amount"));
        };
        total += amount;
    }
    Ok(total)
}

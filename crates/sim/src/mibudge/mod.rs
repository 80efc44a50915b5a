//! mibudge simulator (seed 003, the mibudge REST API 1.0.0, completed and
//! overridden by the mibudge facts of seeds/README.md): a Django REST
//! framework server with SimpleJWT.
//!
//! - Login: `POST /api/token/` with `{"<login_field>", "password"}` (the
//!   field is `email` by default) answers 200 `{"access"}`; the refresh token
//!   is only the HttpOnly cookie `refresh`, which `POST /api/token/refresh/`
//!   reads. Access tokens are opaque JWT-shaped strings that expire after
//!   [`MibudgeConfig::token_lifetime`]; then every call answers 401
//!   `{"detail": "Given token not valid for any token type", "code":
//!   "token_not_valid", …}`. Logins and refreshes are anonymous requests
//!   sharing a sliding-window throttle (100 per hour by default); beyond it,
//!   429 `{"detail": "Request was throttled. Expected available in N
//!   seconds."}` with `Retry-After: N`. No `X-RateLimit-*` headers anywhere.
//! - `GET /api/v1/bank-accounts/`, `/{id}/`; `POST
//!   /api/v1/bank-accounts/{id}/mark-imported/` with `{"last_posted_through":
//!   "YYYY-MM-DD"}`, which never moves that date backwards.
//! - `GET /api/v1/budgets/`, `/{id}/`; each account has an `Unallocated`
//!   budget.
//! - `POST /api/v1/transactions/` (signed decimal-string amounts in the
//!   account's currency, no dedupe, `bank_transaction_id` not stored, a
//!   currency other than the account's is an HTML 500 page); `GET
//!   /api/v1/transactions/` (page-number pagination, filters `bank_account`,
//!   `pending`, `posted_date_from/to`, `date_from/to`, `transaction_type`),
//!   `/{id}/`; `POST /api/v1/transactions/{id}/splits/` with `{"splits":
//!   {"<budget id>": "<positive amount>"}}`.
//! - Errors are DRF JSON of varying shapes: `{"field": ["msg"]}`,
//!   `{"field": "msg"}` (mark-imported), `["msg"]` (splits), `{"detail"}`.
//! - Datetimes returned (`created_at`, `modified_at`, `last_imported_at`)
//!   carry the server's fixed non-UTC offset.

mod drf;
mod handlers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use chrono::{FixedOffset, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::faults::Faults;
use drf::{field_error, json_object, jwt_like, reply, throttled, unauthorized, uuid4, Reply, Throttle};

/// How long a refresh cookie stays valid.
const REFRESH_LIFETIME: Duration = Duration::from_secs(86_400);

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct MibudgeConfig {
    /// Name of the login field of `POST /api/token/` (the server uses
    /// `email`; the document says `username`).
    pub login_field: String,
    /// The account's login.
    pub email: String,
    /// The account's password.
    pub password: String,
    /// Lifetime of an access token (the server's is 60 minutes).
    pub token_lifetime: Duration,
    /// Anonymous throttle on logins and refreshes: (requests, window in
    /// seconds), sliding window. The server's is 100 per hour.
    pub login_limit: (u64, u64),
    /// Throttle on authenticated API calls: (requests, window in seconds);
    /// `None` = unthrottled.
    pub api_limit: Option<(u64, u64)>,
    /// Faults to inject.
    pub faults: Faults,
    /// The server's zone as a fixed offset east of UTC, in minutes, used
    /// for every datetime it returns.
    pub utc_offset_minutes: i32,
}

impl Default for MibudgeConfig {
    fn default() -> Self {
        MibudgeConfig {
            login_field: "email".into(),
            email: "sim@example.com".into(),
            password: "sim-password".into(),
            token_lifetime: Duration::from_secs(3_600),
            login_limit: (100, 3_600),
            api_limit: None,
            faults: Faults::none(),
            utc_offset_minutes: 120,
        }
    }
}

struct Account {
    id: String,
    name: String,
    currency: String,
    posted: Decimal,
    available: Decimal,
    unallocated_budget: String,
    last_imported_at: Option<String>,
    last_posted_through: Option<NaiveDate>,
    created_at: String,
    modified_at: String,
}

struct Budget {
    id: String,
    name: String,
    bank_account: String,
    balance: Decimal,
    created_at: String,
}

struct Allocation {
    id: String,
    budget: String,
    amount: Decimal,
    created_at: String,
}

#[derive(Default)]
struct Data {
    accounts: Vec<Account>,
    budgets: Vec<Budget>,
    /// Transactions as served, in arrival order.
    transactions: Vec<Value>,
    by_id: HashMap<String, usize>,
    /// Allocations per transaction id.
    allocations: HashMap<String, Vec<Allocation>>,
}

impl Data {
    fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }
}

#[derive(Default)]
struct Tokens {
    access: HashMap<String, Instant>,
    refresh: HashMap<String, Instant>,
}

/// The simulator's state.
pub struct MibudgeSim {
    config: MibudgeConfig,
    offset: FixedOffset,
    data: Mutex<Data>,
    tokens: Mutex<Tokens>,
    anon_throttle: Throttle,
    api_throttle: Option<Throttle>,
    requests: AtomicU64,
    logins: AtomicU64,
    tokens_issued: AtomicU64,
    split_calls: AtomicU64,
    rejected_429: AtomicU64,
}

impl MibudgeSim {
    /// A simulator with no bank accounts.
    pub fn new(config: MibudgeConfig) -> Arc<MibudgeSim> {
        Arc::new(MibudgeSim {
            offset: FixedOffset::east_opt(config.utc_offset_minutes * 60)
                .unwrap_or(FixedOffset::east_opt(0).expect("UTC")),
            anon_throttle: Throttle::new(config.login_limit),
            api_throttle: config.api_limit.map(Throttle::new),
            config,
            data: Mutex::new(Data::default()),
            tokens: Mutex::new(Tokens::default()),
            requests: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            split_calls: AtomicU64::new(0),
            rejected_429: AtomicU64::new(0),
        })
    }

    /// Create a bank account (checking, balances 0, `last_posted_through`
    /// null) and its `Unallocated` budget; returns the account's UUID.
    /// `currency` is an ISO 4217 code such as `USD`.
    pub fn seed_bank_account(&self, name: &str, currency: &str) -> String {
        let (id, unallocated, now) = (uuid4(), uuid4(), self.now());
        let mut d = self.data.lock().expect("data lock");
        d.budgets.push(Budget {
            id: unallocated.clone(),
            name: "Unallocated".into(),
            bank_account: id.clone(),
            balance: Decimal::ZERO,
            created_at: now.clone(),
        });
        d.accounts.push(Account {
            id: id.clone(),
            name: name.into(),
            currency: currency.into(),
            posted: Decimal::ZERO,
            available: Decimal::ZERO,
            unallocated_budget: unallocated,
            last_imported_at: None,
            last_posted_through: None,
            created_at: now.clone(),
            modified_at: now,
        });
        id
    }

    /// Create a budget (balance 0) under `bank_account`; returns its UUID.
    /// Splits may only use budgets of the transaction's own account.
    pub fn seed_budget(&self, bank_account: &str, name: &str) -> String {
        let id = uuid4();
        let budget = Budget {
            id: id.clone(),
            name: name.into(),
            bank_account: bank_account.into(),
            balance: Decimal::ZERO,
            created_at: self.now(),
        };
        self.data.lock().expect("data lock").budgets.push(budget);
        id
    }

    /// Every transaction created, in arrival order, as the create call
    /// answered it (amounts are decimal strings in the account's currency,
    /// dates `YYYY-MM-DD`).
    pub fn ledger(&self) -> Vec<Value> {
        self.data.lock().expect("data lock").transactions.clone()
    }

    /// A bank account as `GET /api/v1/bank-accounts/{id}/` shows it.
    pub fn bank_account(&self, id: &str) -> Option<Value> {
        let d = self.data.lock().expect("data lock");
        d.account(id).map(account_json)
    }

    /// The allocations of a transaction (the default one to `Unallocated`,
    /// or those set by splits), as the splits call answers them.
    pub fn allocations(&self, transaction: &str) -> Vec<Value> {
        let d = self.data.lock().expect("data lock");
        handlers::allocations_json(&d, transaction)
    }

    /// Requests received, on every path.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `POST /api/token/` requests received (successful, refused or throttled).
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// Access tokens issued by logins and refreshes.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens_issued.load(Ordering::Relaxed)
    }

    /// Authenticated `POST /api/v1/transactions/{id}/splits/` calls.
    pub fn split_calls(&self) -> u64 {
        self.split_calls.load(Ordering::Relaxed)
    }

    /// Requests answered 429.
    pub fn rejected_429(&self) -> u64 {
        self.rejected_429.load(Ordering::Relaxed)
    }

    /// The axum router.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/api/token/", post(login))
            .route("/api/token/refresh/", post(refresh))
            .route("/api/v1/bank-accounts/", get(handlers::list_accounts))
            .route("/api/v1/bank-accounts/{id}/", get(handlers::get_account))
            .route("/api/v1/bank-accounts/{id}/mark-imported/", post(handlers::mark_imported))
            .route("/api/v1/budgets/", get(handlers::list_budgets))
            .route("/api/v1/budgets/{id}/", get(handlers::get_budget))
            .route("/api/v1/transactions/", get(handlers::list_transactions).post(handlers::create_transaction))
            .route("/api/v1/transactions/{id}/", get(handlers::get_transaction))
            .route("/api/v1/transactions/{id}/splits/", post(handlers::splits))
            .with_state(Arc::clone(self))
    }

    /// Now in the server's zone, as DRF renders datetimes.
    fn now(&self) -> String {
        Utc::now().with_timezone(&self.offset).format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
    }

    /// Count, authenticate and throttle an API call (DRF's order), then
    /// draw an injected fault. `Err` is the reply to send.
    async fn admit(&self, headers: &HeaderMap) -> Result<(), Reply> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.config.faults.delay().await;
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some(token) = auth.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(unauthorized(json!({"detail": "Authentication credentials were not provided."})));
        };
        let expiry = self.tokens.lock().expect("tokens lock").access.get(token).copied();
        if let Some(why) = match expiry {
            None => Some("Token is invalid"),
            Some(at) if at <= Instant::now() => Some("Token is expired"),
            Some(_) => None,
        } {
            return Err(unauthorized(json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
                "messages": [{"token_class": "AccessToken", "token_type": "access", "message": why}],
            })));
        }
        if let Some(Err(wait)) = self.api_throttle.as_ref().map(Throttle::check) {
            self.rejected_429.fetch_add(1, Ordering::Relaxed);
            return Err(throttled(wait));
        }
        self.config.faults.server_error().map_or(Ok(()), Err)
    }

    /// Count and throttle an anonymous request (login, refresh).
    async fn admit_anonymous(&self) -> Result<(), Reply> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.config.faults.delay().await;
        if let Err(wait) = self.anon_throttle.check() {
            self.rejected_429.fetch_add(1, Ordering::Relaxed);
            return Err(throttled(wait));
        }
        self.config.faults.server_error().map_or(Ok(()), Err)
    }

    fn issue_access(&self) -> String {
        let token = jwt_like();
        let expiry = Instant::now() + self.config.token_lifetime;
        self.tokens.lock().expect("tokens lock").access.insert(token.clone(), expiry);
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        token
    }
}

/// `POST /api/token/`.
async fn login(State(sim): State<Arc<MibudgeSim>>, headers: HeaderMap, body: Bytes) -> Reply {
    sim.logins.fetch_add(1, Ordering::Relaxed);
    if let Err(r) = sim.admit_anonymous().await {
        return r;
    }
    let b = match json_object(&headers, &body) {
        Ok(b) => b,
        Err((status, body)) => return reply(status, body),
    };
    let field = sim.config.login_field.as_str();
    let mut errors = serde_json::Map::new();
    for k in [field, "password"] {
        match b.get(k) {
            None => field_error(&mut errors, k, "This field is required."),
            Some(Value::String(s)) if s.is_empty() => field_error(&mut errors, k, "This field may not be blank."),
            Some(Value::Null) => field_error(&mut errors, k, "This field may not be null."),
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return reply(StatusCode::BAD_REQUEST, Value::Object(errors));
    }
    if b[field] != sim.config.email.as_str() || b["password"] != sim.config.password.as_str() {
        return unauthorized(json!({"detail": "No active account found with the given credentials"}));
    }
    let refresh = jwt_like();
    sim.tokens.lock().expect("tokens lock").refresh.insert(refresh.clone(), Instant::now() + REFRESH_LIFETIME);
    let mut r = reply(StatusCode::OK, json!({"access": sim.issue_access()}));
    let expires = (Utc::now() + REFRESH_LIFETIME).format("%a, %d %b %Y %H:%M:%S GMT");
    let cookie = format!(
        "refresh={refresh}; expires={expires}; HttpOnly; Max-Age={}; Path=/api/token/; SameSite=Strict",
        REFRESH_LIFETIME.as_secs()
    );
    r.headers_mut().insert("set-cookie", HeaderValue::from_str(&cookie).expect("cookie is ASCII"));
    r
}

/// `POST /api/token/refresh/`: a new access token for the `refresh` cookie.
async fn refresh(State(sim): State<Arc<MibudgeSim>>, headers: HeaderMap) -> Reply {
    if let Err(r) = sim.admit_anonymous().await {
        return r;
    }
    let cookies = headers.get_all("cookie").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';'));
    let Some(token) = cookies.filter_map(|c| c.trim().strip_prefix("refresh=")).next_back() else {
        return reply(StatusCode::BAD_REQUEST, json!({"refresh": ["This field is required."]}));
    };
    let valid = sim.tokens.lock().expect("tokens lock").refresh.get(token).is_some_and(|at| *at > Instant::now());
    if !valid {
        return unauthorized(json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}));
    }
    reply(StatusCode::OK, json!({"access": sim.issue_access()}))
}

/// A bank account as the API renders it.
fn account_json(a: &Account) -> Value {
    let digits = drf::minor_digits(&a.currency);
    json!({
        "id": a.id,
        "name": a.name,
        "bank": "00000000-0000-4000-8000-000000000001",
        "owners": [1],
        "account_type": "C",
        "account_number": "",
        "currency": a.currency,
        "posted_balance": drf::money(a.posted, digits),
        "posted_balance_currency": a.currency,
        "available_balance": drf::money(a.available, digits),
        "available_balance_currency": a.currency,
        "unallocated_budget": a.unallocated_budget,
        "last_imported_at": a.last_imported_at,
        "last_posted_through": a.last_posted_through.map(|d| d.to_string()),
        "created_at": a.created_at,
        "modified_at": a.modified_at,
    })
}

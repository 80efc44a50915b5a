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
//! - `GET /api/v1/currencies/`: the 20 currencies the server accepts, a
//!   plain JSON array (not paginated) of `{"code", "name", "numeric"}`
//!   sorted by code, as the server's `currencies` view renders them.
//! - `POST /api/v1/transactions/`: signed decimal-string amounts stored as
//!   `numeric(14,2)` (more than 2 decimals or 14 digits is a 400);
//!   `amount_currency` absent means USD, and a currency other than the
//!   account's is an HTML 500 page (nothing stored); `posted_date` and
//!   `transaction_date` are datetimes (a bare date is local midnight); no
//!   dedupe; `bank_transaction_id` not stored on create; `memo` up to 512
//!   characters. `GET /api/v1/transactions/` (page-number pagination,
//!   default page size [`MibudgeConfig::page_size`], filters
//!   `bank_account`, `pending`, `posted_date_from/to`, `date_from/to` as
//!   datetime `gte`/`lte`, `transaction_type`), `GET/PUT/PATCH/DELETE
//!   /{id}/` (after creation only `transaction_type`, `memo`,
//!   `description`, `bank_transaction_id` and the pending → posted
//!   transition may change; the server's serializer refuses a changed
//!   amount, account, posted date, transaction date or raw description
//!   with a 400); `POST /api/v1/transactions/{id}/splits/` with
//!   `{"splits": {"<budget id>": "<positive amount>"}}`.
//! - Errors are DRF JSON of varying shapes: `{"field": ["msg"]}`,
//!   `{"field": "msg"}` (mark-imported), `["msg"]` (splits), `{"detail"}`.
//! - Every datetime returned (`posted_date`, `transaction_date`,
//!   `created_at`, `modified_at`, `last_imported_at`) carries the server's
//!   offset ([`MibudgeConfig::utc_offset_minutes`], [`MibudgeConfig::us_dst`]).
//! - A request runs to its end even if the client hangs up or times out
//!   (each handler runs in its own task): a cut-off write usually did
//!   take effect. [`Faults::latency_after_commit`] and
//!   [`Faults::unreadable_success_rate`] act after the state change.

mod drf;
mod handlers;
mod zone;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::faults::{detached, Faults};
use drf::{field_error, json_object, jwt_like, reply, throttled, unauthorized, uuid4, Reply, Throttle};
use zone::Zone;

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
    /// The server's zone (Django `TIME_ZONE`) as an offset east of UTC, in
    /// minutes: every datetime is rendered with it, and a bare date or a
    /// datetime without offset (in a body or a filter) is local to it.
    /// Default -480, `America/Los_Angeles` standard time. A fixed offset
    /// unless [`MibudgeConfig::us_dst`] is set: the real server's zone is
    /// `America/Los_Angeles`, which renders summer datetimes with `-07:00`.
    pub utc_offset_minutes: i32,
    /// Apply the US daylight-saving rules (since 2007) on top of
    /// `utc_offset_minutes`; with -480 this is exactly `America/Los_Angeles`.
    /// Default false (a fixed offset).
    pub us_dst: bool,
    /// Default page size of the lists (DRF `PAGE_SIZE`; the server's is
    /// 100). A client's `page_size` still goes up to 500.
    pub page_size: usize,
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
            utc_offset_minutes: -480,
            us_dst: false,
            page_size: 100,
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

/// A stored transaction (datetimes as instants, rendered per request).
struct Txn {
    id: String,
    bank_account: String,
    amount: Decimal,
    currency: String,
    posted: DateTime<Utc>,
    date: DateTime<Utc>,
    kind: String,
    pending: bool,
    memo: Option<String>,
    raw: String,
    description: String,
    bank_transaction_id: Option<String>,
    /// The account's balances just after the create (snapshots).
    posted_balance: Decimal,
    available_balance: Decimal,
    created_at: String,
    modified_at: String,
}

#[derive(Default)]
struct Data {
    accounts: Vec<Account>,
    budgets: Vec<Budget>,
    /// Stored transactions, in arrival order.
    transactions: Vec<Txn>,
    by_id: HashMap<String, usize>,
    /// Allocations per transaction id.
    allocations: HashMap<String, Vec<Allocation>>,
    /// Every transaction created, as the create answered it.
    created: Vec<Value>,
}

impl Data {
    fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    fn txn(&self, id: &str) -> Option<&Txn> {
        self.by_id.get(id).map(|i| &self.transactions[*i])
    }

    /// Remove a transaction (and its index entry), keeping arrival order.
    fn remove_txn(&mut self, id: &str) -> Option<Txn> {
        let i = self.by_id.remove(id)?;
        let t = self.transactions.remove(i);
        for (k, t) in self.transactions.iter().enumerate().skip(i) {
            self.by_id.insert(t.id.clone(), k);
        }
        Some(t)
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
    zone: Zone,
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
            zone: Zone::new(config.utc_offset_minutes, config.us_dst),
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
    ///
    /// # Panics
    /// When `currency` is not one of the 20 the server accepts (see
    /// [`MibudgeSim::currencies`]; e.g. `KWD`): the server cannot hold
    /// such an account.
    pub fn seed_bank_account(&self, name: &str, currency: &str) -> String {
        assert!(
            drf::CURRENCIES.iter().any(|c| c.0 == currency),
            "mibudge accepts only {:?}; no bank account in {currency}",
            MibudgeSim::currencies()
        );
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

    /// Every transaction created (by POST or [`MibudgeSim::seed_transaction`]),
    /// in arrival order, as the create answered it, including those deleted
    /// since and without later changes: a log of creations, for "exactly
    /// once" assertions. [`MibudgeSim::transactions`] has the stored rows.
    pub fn ledger(&self) -> Vec<Value> {
        self.data.lock().expect("data lock").created.clone()
    }

    /// Every stored transaction row, in arrival order, as `GET
    /// /api/v1/transactions/{id}/` renders it now (after PATCHes; deleted
    /// rows gone).
    pub fn transactions(&self) -> Vec<Value> {
        let d = self.data.lock().expect("data lock");
        d.transactions.iter().map(|t| handlers::txn_json(&self.zone, t)).collect()
    }

    /// The user deletes a transaction in the app (no API call, no balance
    /// bookkeeping): for "the row is gone from the sink" tests. `false` when
    /// there is no such row.
    pub fn user_deletes(&self, id: &str) -> bool {
        let mut d = self.data.lock().expect("data lock");
        d.allocations.remove(id);
        d.remove_txn(id).is_some()
    }

    /// Create a transaction as `POST /api/v1/transactions/` would with
    /// `body` (same validation, balances and default allocation; no
    /// request counted, no fault): a row the user entered by hand.
    /// Returns its id.
    ///
    /// # Panics
    /// When the POST would not answer 201 (the panic shows its body).
    pub fn seed_transaction(&self, body: Value) -> String {
        let Value::Object(b) = body else { panic!("seed_transaction: a JSON object, not {body}") };
        // Panic only once the lock is released, so the simulator stays usable.
        let created = handlers::create(self, &mut self.data.lock().expect("data lock"), &b);
        match created {
            Ok(row) => row["id"].as_str().expect("id").to_owned(),
            Err(why) => panic!("seed_transaction refused: {why}"),
        }
    }

    /// The codes of the currencies the server accepts (`GET
    /// /api/v1/currencies/`), sorted.
    pub fn currencies() -> Vec<&'static str> {
        drf::CURRENCIES.iter().map(|c| c.0).collect()
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
            .route("/api/v1/currencies/", get(handlers::currencies))
            .route("/api/v1/transactions/", get(handlers::list_transactions).post(handlers::create_transaction))
            .route(
                "/api/v1/transactions/{id}/",
                get(handlers::get_transaction)
                    .put(handlers::put_transaction)
                    .patch(handlers::patch_transaction)
                    .delete(handlers::delete_transaction),
            )
            .route("/api/v1/transactions/{id}/splits/", post(handlers::splits))
            .layer(axum::middleware::from_fn(detached))
            .with_state(Arc::clone(self))
    }

    /// Now in the server's zone, as DRF renders datetimes.
    fn now(&self) -> String {
        self.zone.render(Utc::now())
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
    json!({
        "id": a.id,
        "name": a.name,
        "bank": "00000000-0000-4000-8000-000000000001",
        "owners": [1],
        "account_type": "C",
        "account_number": "",
        "currency": a.currency,
        "posted_balance": drf::money(a.posted),
        "posted_balance_currency": a.currency,
        "available_balance": drf::money(a.available),
        "available_balance_currency": a.currency,
        "unallocated_budget": a.unallocated_budget,
        "last_imported_at": a.last_imported_at,
        "last_posted_through": a.last_posted_through.map(|d| d.to_string()),
        "created_at": a.created_at,
        "modified_at": a.modified_at,
    })
}

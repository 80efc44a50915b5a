//! The mibudge simulator over real loopback HTTP.

use std::sync::Arc;
use std::time::Duration;

use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::{Faults, SimServer};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

struct Env {
    sim: Arc<MibudgeSim>,
    _server: SimServer,
    http: reqwest::Client,
    base: String,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn env(config: MibudgeConfig) -> Env {
    let sim = MibudgeSim::new(config);
    let server = SimServer::start(sim.router(), 0).await.expect("bind");
    let base = server.base_url();
    Env { sim, _server: server, http: reqwest::Client::new(), base }
}

impl Env {
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let r = req.send().await.expect("send");
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        Answer { status, headers, text: r.text().await.expect("body") }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    async fn login_as(&self, email: &str, password: &str) -> Answer {
        self.call(Method::POST, "/api/token/", None, Some(json!({"email": email, "password": password}))).await
    }

    async fn login(&self) -> String {
        let a = self.login_as("sim@example.com", "sim-password").await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()["access"].as_str().expect("access").to_owned()
    }
}

fn txn(account: &str, amount: &str, posted: &str, raw: &str) -> Value {
    json!({
        "bank_account": account,
        "amount": amount,
        "posted_date": posted,
        "transaction_type": "signature_purchase",
        "raw_description": raw,
        "pending": false,
        "bank_transaction_id": "bank-1",
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn login_returns_access_and_an_httponly_refresh_cookie() {
    let e = env(MibudgeConfig::default()).await;
    let a = e.login_as("sim@example.com", "sim-password").await;
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_eq!(body.as_object().expect("object").len(), 1, "only the access token: {body}");
    let access = body["access"].as_str().expect("access");
    assert_eq!(access.split('.').count(), 3, "JWT-shaped: {access}");
    let cookie = a.headers["set-cookie"].to_str().expect("ascii");
    assert!(cookie.starts_with("refresh="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(a.headers.keys().all(|k| !k.as_str().starts_with("x-ratelimit")));

    let again = e.login().await;
    assert_ne!(again, access, "tokens differ per login");
    assert_eq!(e.sim.logins(), 2);
    assert_eq!(e.get("/api/v1/bank-accounts/", access).await.status, 200);

    // The refresh endpoint reads the cookie.
    let refresh = cookie.split(';').next().expect("pair");
    let r = e.http.post(format!("{}/api/token/refresh/", e.base)).header("cookie", refresh).send().await.expect("send");
    assert_eq!(r.status(), 200);
    let fresh: Value = serde_json::from_str(&r.text().await.expect("body")).expect("json");
    assert_eq!(e.get("/api/v1/budgets/", fresh["access"].as_str().expect("access")).await.status, 200);
    let none = e.call(Method::POST, "/api/token/refresh/", None, None).await;
    assert_eq!((none.status, none.json()), (400, json!({"refresh": ["This field is required."]})));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_are_a_401_drf_detail_and_the_login_field_is_configurable() {
    let e = env(MibudgeConfig::default()).await;
    let a = e.login_as("sim@example.com", "wrong").await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json(), json!({"detail": "No active account found with the given credentials"}));
    let a = e.call(Method::POST, "/api/token/", None, Some(json!({"username": "sim@example.com"}))).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json(), json!({"email": ["This field is required."], "password": ["This field is required."]}));

    let e = env(MibudgeConfig { login_field: "username".into(), ..MibudgeConfig::default() }).await;
    let body = json!({"username": "sim@example.com", "password": "sim-password"});
    assert_eq!(e.call(Method::POST, "/api/token/", None, Some(body)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_401_token_not_valid() {
    let e = env(MibudgeConfig { token_lifetime: Duration::from_secs(1), ..MibudgeConfig::default() }).await;
    let token = e.login().await;
    assert_eq!(e.get("/api/v1/transactions/", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let a = e.get("/api/v1/transactions/", &token).await;
    assert_eq!(a.status, 401);
    let body = a.json();
    assert_eq!(body["detail"], "Given token not valid for any token type");
    assert_eq!(body["code"], "token_not_valid");
    let a = e.call(Method::GET, "/api/v1/transactions/", None, None).await;
    assert_eq!((a.status, a.json()), (401, json!({"detail": "Authentication credentials were not provided."})));
    assert_eq!(e.sim.logins(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_post_twice_creates_two_rows() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let body = txn(&account, "-42.17", "2024-05-14", "POS PURCHASE COFFEE 05/13");
    let first = e.post("/api/v1/transactions/", &token, body.clone()).await;
    let second = e.post("/api/v1/transactions/", &token, body).await;
    assert_eq!((first.status, second.status), (201, 201));
    let (a, b) = (first.json(), second.json());
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["amount"], "-42.17");
    assert_eq!(a["amount_currency"], "USD");
    assert_eq!(a["bank_transaction_id"], Value::Null, "not stored on create");
    assert_eq!(a["posted_date"], "2024-05-14T00:00:00-08:00", "a datetime at local midnight");
    assert_eq!(a["transaction_date"], "2024-05-13T00:00:00-08:00", "parsed from the description");
    assert!(a["created_at"].as_str().expect("created_at").ends_with("-08:00"), "{}", a["created_at"]);
    assert_eq!(b["bank_account_posted_balance"], "-84.34");
    let ledger = e.sim.ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[0]["id"], a["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn field_errors_use_the_drf_shape() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let a = e.post("/api/v1/transactions/", &token, txn(&account, "-42.175", "2024-05-14", "X")).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json(), json!({"amount": ["Ensure that there are no more than 2 decimal places."]}));

    let mut bad = txn(&account, "12.50", "14/05/2024", "X");
    bad["transaction_type"] = json!("teleport");
    let body = e.post("/api/v1/transactions/", &token, bad).await.json();
    assert_eq!(
        body["posted_date"][0],
        "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
    );
    assert_eq!(body["transaction_type"][0], "\"teleport\" is not a valid choice.");

    let body = e.post("/api/v1/transactions/", &token, json!({"bank_account": account})).await.json();
    for field in ["amount", "posted_date", "transaction_type", "raw_description"] {
        assert_eq!(body[field], json!(["This field is required."]), "{field}: {body}");
    }
    assert!(e.sim.ledger().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_bank_account_is_a_400() {
    let e = env(MibudgeConfig::default()).await;
    let token = e.login().await;
    let missing = "3f6c0d1e-7a1b-4c2d-9e8f-0a1b2c3d4e5f";
    let a = e.post("/api/v1/transactions/", &token, txn(missing, "-1.00", "2024-05-14", "X")).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json(), json!({"bank_account": [format!("Object with id={missing} does not exist.")]}));
    let a = e.post("/api/v1/transactions/", &token, txn("nope", "-1.00", "2024-05-14", "X")).await;
    assert_eq!((a.status, a.json()), (400, json!({"bank_account": ["\u{201c}nope\u{201d} is not a valid UUID."]})));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_currency_mismatch_is_an_html_500_page() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let mut body = txn(&account, "-5.00", "2024-05-14", "X");
    body["amount_currency"] = json!("EUR");
    let a = e.post("/api/v1/transactions/", &token, body).await;
    assert_eq!(a.status, 500);
    assert!(a.headers["content-type"].to_str().expect("ascii").starts_with("text/html"));
    assert!(a.text.contains("Server Error (500)"));
    assert!(e.sim.ledger().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_is_paginated_like_drf() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    for i in 1..=5 {
        let a = e.post("/api/v1/transactions/", &token, txn(&account, &format!("-{i}.00"), "2024-05-14", "X")).await;
        assert_eq!(a.status, 201);
    }
    let host = e.base.trim_start_matches("http://");
    let p1 = e.get("/api/v1/transactions/?page_size=2", &token).await.json();
    assert_eq!(p1["count"], 5);
    assert_eq!(p1["results"].as_array().expect("results").len(), 2);
    assert_eq!(p1["previous"], Value::Null);
    assert_eq!(p1["next"], format!("http://{host}/api/v1/transactions/?page=2&page_size=2"));
    assert_eq!(p1["results"][0]["amount"], "-1.00", "arrival order");

    let p2 = e.get("/api/v1/transactions/?page_size=2&page=2", &token).await.json();
    assert_eq!(p2["previous"], format!("http://{host}/api/v1/transactions/?page_size=2"));
    assert_eq!(p2["next"], format!("http://{host}/api/v1/transactions/?page=3&page_size=2"));
    let p3 = e.get("/api/v1/transactions/?page_size=2&page=3", &token).await.json();
    assert_eq!((p3["results"].as_array().expect("results").len(), &p3["next"]), (1, &Value::Null));

    let p4 = e.get("/api/v1/transactions/?page_size=2&page=4", &token).await;
    assert_eq!((p4.status, p4.json()), (404, json!({"detail": "Invalid page."})));

    for i in 0..496 {
        let a = e.post("/api/v1/transactions/", &token, txn(&account, &format!("{i}.01"), "2024-05-15", "Y")).await;
        assert_eq!(a.status, 201);
    }
    let big = e.get("/api/v1/transactions/?page_size=1000", &token).await.json();
    assert_eq!(big["count"], 501);
    assert_eq!(big["results"].as_array().expect("results").len(), 500, "page_size clamped to 500");
    assert_eq!(big["next"], format!("http://{host}/api/v1/transactions/?page=2&page_size=1000"));
    let default = e.get("/api/v1/transactions/", &token).await.json();
    assert_eq!(default["results"].as_array().expect("results").len(), 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_filters_by_posted_date_account_and_more() {
    let e = env(MibudgeConfig::default()).await;
    let (a, b) = (e.sim.seed_bank_account("Checking", "USD"), e.sim.seed_bank_account("Savings", "USD"));
    let token = e.login().await;
    for (account, posted) in [(&a, "2024-05-01"), (&a, "2024-05-10"), (&a, "2024-05-20"), (&b, "2024-05-10")] {
        let body = txn(account, "-3.00", posted, &format!("ROW {posted}"));
        assert_eq!(e.post("/api/v1/transactions/", &token, body).await.status, 201);
    }
    let mut pending = txn(&a, "-9.99", "2024-05-11", "HOLD");
    pending["pending"] = json!(true);
    pending["transaction_type"] = json!("atm_withdrawal");
    pending["transaction_date"] = json!("2024-05-09");
    assert_eq!(e.post("/api/v1/transactions/", &token, pending).await.status, 201);

    let count = |q: String| {
        let e = &e;
        let token = token.clone();
        async move { e.get(&format!("/api/v1/transactions/?{q}"), &token).await.json()["count"].clone() }
    };
    assert_eq!(count(format!("bank_account={a}")).await, 4);
    assert_eq!(count(format!("bank_account={b}")).await, 1);
    assert_eq!(count("posted_date_from=2024-05-10&posted_date_to=2024-05-11".into()).await, 3);
    assert_eq!(count(format!("bank_account={a}&posted_date_from=2024-05-10&posted_date_to=2024-05-19")).await, 2);
    assert_eq!(count("pending=true".into()).await, 1);
    assert_eq!(count("pending=false".into()).await, 4);
    assert_eq!(count("transaction_type=atm_withdrawal".into()).await, 1);
    assert_eq!(count("date_from=2024-05-09&date_to=2024-05-09".into()).await, 1);

    let bad = e.get("/api/v1/transactions/?posted_date_from=May", &token).await;
    assert_eq!((bad.status, bad.json()), (400, json!({"posted_date_from": ["Enter a valid date/time."]})));
    let unknown = e.get("/api/v1/transactions/?bank_account=nope", &token).await;
    assert_eq!((unknown.status, unknown.json()), (400, json!({"bank_account": ["Enter a valid UUID."]})));
    let nobody = "3f6c0d1e-7a1b-4c2d-9e8f-0a1b2c3d4e5f";
    assert_eq!(count(format!("bank_account={nobody}")).await, 0, "a UUIDFilter, not a choice");
}

#[tokio::test(flavor = "multi_thread")]
async fn splits_allocate_to_budgets_and_refuse_over_allocation() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let other = e.sim.seed_bank_account("Other", "USD");
    let groceries = e.sim.seed_budget(&account, "Groceries");
    let fun = e.sim.seed_budget(&account, "Fun");
    let elsewhere = e.sim.seed_budget(&other, "Elsewhere");
    let token = e.login().await;
    let t = e.post("/api/v1/transactions/", &token, txn(&account, "-42.17", "2024-05-14", "SHOP")).await.json();
    let path = format!("/api/v1/transactions/{}/splits/", t["id"].as_str().expect("id"));
    assert_eq!(e.sim.allocations(t["id"].as_str().expect("id")).len(), 1, "the default allocation");

    let a = e.post(&path, &token, json!({"splits": {groceries.clone(): "30.00", fun.clone(): "10.00"}})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let body = a.json();
    assert_eq!(body["count"], 3, "two budgets and the unallocated remainder: {body}");
    let amount_of = |budget: &str| {
        body["results"].as_array().expect("results").iter().find(|r| r["budget"] == budget).map(|r| r["amount"].clone())
    };
    assert_eq!(amount_of(&groceries), Some(json!("-30.00")), "sign from the transaction");
    assert_eq!(amount_of(&fun), Some(json!("-10.00")));
    let budgets = e.get(&format!("/api/v1/budgets/?bank_account={account}"), &token).await.json();
    let unallocated = budgets["results"].as_array().expect("results").iter().find(|b| b["name"] == "Unallocated");
    assert_eq!(unallocated.expect("unallocated")["balance"], "-2.17");

    let over = e.post(&path, &token, json!({"splits": {groceries.clone(): "40.00", fun.clone(): "2.18"}})).await;
    assert_eq!(over.status, 400);
    assert!(over.json().is_array(), "a list of messages: {}", over.text);
    let negative = e.post(&path, &token, json!({"splits": {groceries.clone(): "-1.00"}})).await;
    assert_eq!(negative.status, 400);
    let foreign = e.post(&path, &token, json!({"splits": {elsewhere: "1.00"}})).await;
    assert_eq!(foreign.status, 400);
    assert_eq!(e.sim.allocations(t["id"].as_str().expect("id")).len(), 3, "refusals change nothing");
    assert_eq!(e.sim.split_calls(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn mark_imported_never_moves_backwards() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let path = format!("/api/v1/bank-accounts/{account}/mark-imported/");
    let a = e.post(&path, &token, json!({"last_posted_through": "2024-05-10"})).await;
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_eq!(body["last_posted_through"], "2024-05-10");
    assert!(body["last_imported_at"].as_str().expect("set").ends_with("-08:00"));
    let back = e.post(&path, &token, json!({"last_posted_through": "2024-05-01"})).await;
    assert_eq!((back.status, &back.json()["last_posted_through"]), (200, &json!("2024-05-10")));
    let on = e.post(&path, &token, json!({"last_posted_through": "2024-05-20"})).await;
    assert_eq!(on.json()["last_posted_through"], "2024-05-20");
    assert_eq!(
        e.get(&format!("/api/v1/bank-accounts/{account}/"), &token).await.json()["last_posted_through"],
        "2024-05-20"
    );
    let missing = e.post(&path, &token, json!({})).await;
    assert_eq!((missing.status, missing.json()), (400, json!({"last_posted_through": "This field is required."})));
    let list = e.get("/api/v1/bank-accounts/", &token).await.json();
    assert_eq!((list["count"].clone(), list["results"][0]["currency"].clone()), (json!(1), json!("USD")));
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_are_throttled_with_retry_after() {
    let e = env(MibudgeConfig { login_limit: (2, 3_600), ..MibudgeConfig::default() }).await;
    e.login().await;
    e.login().await;
    let a = e.login_as("sim@example.com", "sim-password").await;
    assert_eq!(a.status, 429);
    let wait: u64 = a.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((3_590..=3_600).contains(&wait), "{wait}");
    assert_eq!(a.json(), json!({"detail": format!("Request was throttled. Expected available in {wait} seconds.")}));
    assert!(a.headers.keys().all(|k| !k.as_str().starts_with("x-ratelimit")));
    assert_eq!(e.sim.logins(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_calls_are_throttled_when_configured() {
    let e = env(MibudgeConfig { api_limit: Some((2, 60)), ..MibudgeConfig::default() }).await;
    let token = e.login().await;
    assert_eq!(e.get("/api/v1/transactions/", &token).await.status, 200);
    assert_eq!(e.get("/api/v1/transactions/", &token).await.status, 200);
    let a = e.get("/api/v1/transactions/", &token).await;
    assert_eq!(a.status, 429);
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(e.sim.rejected_429(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_still_creates_the_row() {
    let faults = Faults { drop_after_processing_rate: 1.0, ..Faults::none() };
    let e = env(MibudgeConfig { faults, ..MibudgeConfig::default() }).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let sent = e
        .http
        .post(format!("{}/api/v1/transactions/", e.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(txn(&account, "-7.00", "2024-05-14", "X").to_string())
        .send()
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed, "the client must not see a clean answer");
    assert_eq!(e.sim.ledger().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_errors_can_be_html_pages() {
    let faults = Faults { error_rate: 1.0, html_errors: true, ..Faults::none() };
    let e = env(MibudgeConfig { faults, ..MibudgeConfig::default() }).await;
    let a = e.login_as("sim@example.com", "sim-password").await;
    assert_eq!(a.status, 500);
    assert!(a.headers["content-type"].to_str().expect("ascii").starts_with("text/html"));
}

// ---- Fidelity to the real server (seeds/README.md, mibudge facts) ----

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn dates_are_datetimes_rendered_with_the_server_offset() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let bare = e.post("/api/v1/transactions/", &token, txn(&account, "-1.00", "2024-02-13", "SHOP")).await.json();
    assert_eq!(bare["posted_date"], "2024-02-13T00:00:00-08:00", "local midnight, America/Los_Angeles");
    assert_eq!(bare["transaction_date"], "2024-02-13T00:00:00-08:00", "the posted date when none is parsed");
    let body = with(
        txn(&account, "-2.00", "2024-02-13T10:00:00+01:00", "SHOP"),
        json!({"transaction_date": "2024-02-12T23:30:00Z"}),
    );
    let instant = e.post("/api/v1/transactions/", &token, body).await.json();
    assert_eq!(instant["posted_date"], "2024-02-13T01:00:00-08:00", "the same instant, server offset");
    assert_eq!(instant["transaction_date"], "2024-02-12T15:30:00-08:00");
    let detail = e.get(&format!("/api/v1/transactions/{}/", instant["id"].as_str().expect("id")), &token).await;
    assert_eq!(detail.json()["posted_date"], "2024-02-13T01:00:00-08:00");

    let e = env(MibudgeConfig { utc_offset_minutes: 60, ..MibudgeConfig::default() }).await;
    let account = e.sim.seed_bank_account("Checking", "EUR");
    let token = e.login().await;
    let body = with(txn(&account, "-1.00", "2024-02-13", "X"), json!({"amount_currency": "EUR"}));
    let row = e.post("/api/v1/transactions/", &token, body).await.json();
    assert_eq!(row["posted_date"], "2024-02-13T00:00:00+01:00", "the configured offset");

    let e = env(MibudgeConfig { us_dst: true, ..MibudgeConfig::default() }).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let row = e.post("/api/v1/transactions/", &token, txn(&account, "-1.00", "2024-05-14", "X")).await.json();
    assert_eq!(row["posted_date"], "2024-05-14T00:00:00-07:00", "daylight time in May");
}

#[tokio::test(flavor = "multi_thread")]
async fn date_filters_compare_instants_and_to_is_inclusive_of_midnight_only() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    for posted in ["2024-05-09", "2024-05-10", "2024-05-10T15:00:00-08:00", "2024-05-11"] {
        assert_eq!(e.post("/api/v1/transactions/", &token, txn(&account, "-1.00", posted, "X")).await.status, 201);
    }
    let count = |q: &str| {
        let (e, token, q) = (&e, token.clone(), q.to_owned());
        async move {
            let a = e.get(&format!("/api/v1/transactions/?{q}"), &token).await;
            assert_eq!(a.status, 200, "{q}: {}", a.text);
            a.json()["count"].as_u64().expect("count")
        }
    };
    // A bare date is local midnight: `_to` takes the midnight row of that
    // day but not the same day's afternoon row.
    assert_eq!(count("posted_date_to=2024-05-10").await, 2);
    assert_eq!(count("posted_date_from=2024-05-10").await, 3);
    assert_eq!(count("posted_date_from=2024-05-10&posted_date_to=2024-05-10").await, 1);
    // Datetimes with offsets are instants: 23:00Z is 15:00 PST, and lte is inclusive.
    assert_eq!(count("posted_date_to=2024-05-10T23:00:00Z").await, 3);
    assert_eq!(count("posted_date_from=2024-05-10T16:00:00-07:00").await, 2);
    assert_eq!(count("posted_date_from=2024-05-11T09:00:00%2B01:00").await, 1, "an encoded + offset");
    // A derived transaction_date is the local midnight of the posted day,
    // whatever the posted time.
    assert_eq!(count("date_from=2024-05-10&date_to=2024-05-10").await, 2);
    assert_eq!(count("date_from=2024-05-10T00:00:01-08:00&date_to=2024-05-10T23:59:59-08:00").await, 0);
    // An unencoded `+` is a space in a query string: not a datetime.
    let bad = e.get("/api/v1/transactions/?posted_date_from=2024-05-11T09:00:00+01:00", &token).await;
    assert_eq!((bad.status, bad.json()), (400, json!({"posted_date_from": ["Enter a valid date/time."]})));
}

#[tokio::test(flavor = "multi_thread")]
async fn amount_currency_defaults_to_usd_not_to_the_account_currency() {
    let e = env(MibudgeConfig::default()).await;
    let yen = e.sim.seed_bank_account("Yen", "JPY");
    let token = e.login().await;
    let a = e.post("/api/v1/transactions/", &token, txn(&yen, "-500", "2024-05-14", "RAMEN")).await;
    assert_eq!(a.status, 500);
    assert!(a.headers["content-type"].to_str().expect("ascii").starts_with("text/html"));
    assert!(a.text.contains("Server Error (500)"));
    let list = e.get("/api/v1/transactions/", &token).await.json();
    assert_eq!(list["count"], 0, "nothing stored");
    assert!(e.sim.ledger().is_empty() && e.sim.transactions().is_empty());
    assert_eq!(e.sim.bank_account(&yen).expect("account")["available_balance"], "0.00");

    let body = with(txn(&yen, "-500", "2024-05-14", "RAMEN"), json!({"amount_currency": "JPY"}));
    let a = e.post("/api/v1/transactions/", &token, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let row = a.json();
    assert_eq!((&row["amount"], &row["amount_currency"]), (&json!("-500.00"), &json!("JPY")), "numeric(14,2)");
    assert_eq!(row["bank_account_posted_balance"], "-500.00");
    assert_eq!(e.get("/api/v1/transactions/", &token).await.json()["count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_lists_twenty_currencies_and_no_kwd() {
    let e = env(MibudgeConfig::default()).await;
    assert_eq!(e.call(Method::GET, "/api/v1/currencies/", None, None).await.status, 401);
    let token = e.login().await;
    let a = e.get("/api/v1/currencies/", &token).await;
    assert_eq!(a.status, 200);
    let list = a.json();
    let list = list.as_array().expect("a plain array, not a page");
    assert_eq!(list.len(), 20);
    let codes: Vec<&str> = list.iter().map(|c| c["code"].as_str().expect("code")).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(codes, sorted, "sorted by code");
    assert!(!codes.contains(&"KWD"));
    for code in "USD EUR GBP CAD JPY AUD CHF CNY HKD SGD NZD SEK NOK DKK MXN BRL INR KRW ZAR TWD".split(' ') {
        assert!(codes.contains(&code), "{code}");
    }
    let usd = list.iter().find(|c| c["code"] == "USD").expect("USD");
    assert_eq!(usd, &json!({"code": "USD", "name": "US Dollar", "numeric": "840"}));
    assert_eq!(MibudgeSim::currencies(), codes);
}

#[test]
#[should_panic(expected = "KWD")]
fn a_kwd_bank_account_cannot_be_seeded() {
    MibudgeSim::new(MibudgeConfig::default()).seed_bank_account("Dinars", "KWD");
}

#[tokio::test(flavor = "multi_thread")]
async fn amounts_are_numeric_14_2() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let refused = [
        ("-42.175", "Ensure that there are no more than 2 decimal places."),
        ("1.250", "Ensure that there are no more than 2 decimal places."),
        ("1234567890123.45", "Ensure that there are no more than 14 digits in total."),
        ("1234567890123", "Ensure that there are no more than 12 digits before the decimal point."),
        ("12,50", "A valid number is required."),
    ];
    for (amount, msg) in refused {
        let a = e.post("/api/v1/transactions/", &token, txn(&account, amount, "2024-05-14", "X")).await;
        assert_eq!((a.status, a.json()), (400, json!({ "amount": [msg] })), "{amount}");
    }
    assert!(e.sim.transactions().is_empty());
    let a = e.post("/api/v1/transactions/", &token, txn(&account, "123456789012.34", "2024-05-14", "X")).await;
    assert_eq!((a.status, &a.json()["amount"]), (201, &json!("123456789012.34")));
    let a = e.post("/api/v1/transactions/", &token, txn(&account, "-7.5", "2024-05-14", "X")).await;
    assert_eq!(a.json()["amount"], "-7.50");
}

#[tokio::test(flavor = "multi_thread")]
async fn memo_round_trips_and_is_at_most_512_characters() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let plain = e.post("/api/v1/transactions/", &token, txn(&account, "-1.00", "2024-05-14", "A")).await.json();
    assert_eq!(plain["memo"], Value::Null, "no memo is null");
    assert_eq!(plain["description"], "A", "a blank description becomes the raw description");
    let body = with(txn(&account, "-2.00", "2024-05-14", "B"), json!({"memo": "bankpipe:abc123 #imported"}));
    let row = e.post("/api/v1/transactions/", &token, body).await.json();
    assert_eq!(row["memo"], "bankpipe:abc123 #imported");
    let id = row["id"].as_str().expect("id");
    assert_eq!(e.get(&format!("/api/v1/transactions/{id}/"), &token).await.json()["memo"], row["memo"]);
    let list = e.get("/api/v1/transactions/", &token).await.json();
    assert_eq!(list["results"][1]["memo"], row["memo"], "returned in lists");

    let long = with(txn(&account, "-3.00", "2024-05-14", "C"), json!({"memo": "é".repeat(513)}));
    let a = e.post("/api/v1/transactions/", &token, long).await;
    assert_eq!((a.status, a.json()), (400, json!({"memo": ["Ensure this field has no more than 512 characters."]})));
    let max = with(txn(&account, "-3.00", "2024-05-14", "C"), json!({"memo": "é".repeat(512)}));
    assert_eq!(e.post("/api/v1/transactions/", &token, max).await.status, 201, "characters, not bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_creation_only_type_memo_and_description_change() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let row = e.post("/api/v1/transactions/", &token, txn(&account, "-42.17", "2024-05-14", "SHOP")).await.json();
    let path = format!("/api/v1/transactions/{}/", row["id"].as_str().expect("id"));
    let patch = |body: Value| e.call(Method::PATCH, &path, Some(&token), Some(body));

    let a = patch(json!({"memo": "lunch", "description": "Lunch", "transaction_type": "pin_purchase"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let now = a.json();
    assert_eq!(
        (&now["memo"], &now["description"], &now["transaction_type"]),
        (&json!("lunch"), &json!("Lunch"), &json!("pin_purchase"))
    );
    assert_eq!((&now["amount"], &now["posted_date"]), (&row["amount"], &row["posted_date"]));

    // The server's serializer refuses a changed read-only field (nothing changes).
    let a = patch(json!({"memo": "dinner", "amount": "-1.00"})).await;
    assert_eq!(
        (a.status, a.json()),
        (400, json!({"amount": ["Cannot change the transaction amount after creation."]}))
    );
    let a = patch(json!({"posted_date": "2024-05-15", "raw_description": "OTHER"})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["posted_date"], json!(["Cannot change the posted date after creation."]));
    let stored = e.get(&path, &token).await.json();
    assert_eq!((&stored["memo"], &stored["amount"]), (&json!("lunch"), &json!("-42.17")));
    assert_eq!(e.sim.transactions()[0]["memo"], "lunch");

    // bank_transaction_id is not stored on create, but a PATCH stores it.
    assert_eq!(patch(json!({"bank_transaction_id": "bank-1"})).await.json()["bank_transaction_id"], "bank-1");
    // A PUT must carry the read-only fields, which the serializer then refuses.
    let put = e.call(Method::PUT, &path, Some(&token), Some(txn(&account, "-42.17", "2024-05-14", "SHOP"))).await;
    assert_eq!(put.status, 400);
    assert_eq!(put.json()["bank_account"], json!(["Cannot change the bank account after creation."]));
    let missing = "/api/v1/transactions/3f6c0d1e-7a1b-4c2d-9e8f-0a1b2c3d4e5f/";
    let a = e.call(Method::PATCH, missing, Some(&token), Some(json!({"memo": "x"}))).await;
    assert_eq!((a.status, a.json()), (404, json!({"detail": "No Transaction matches the given query."})));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_the_row_and_reverses_balances() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let groceries = e.sim.seed_budget(&account, "Groceries");
    let token = e.login().await;
    let keep = e.post("/api/v1/transactions/", &token, txn(&account, "-10.00", "2024-05-14", "KEEP")).await.json();
    let gone = e.post("/api/v1/transactions/", &token, txn(&account, "-42.17", "2024-05-14", "GONE")).await.json();
    let id = gone["id"].as_str().expect("id");
    let splits = format!("/api/v1/transactions/{id}/splits/");
    assert_eq!(e.post(&splits, &token, json!({"splits": {groceries.clone(): "30.00"}})).await.status, 200);

    let a = e.call(Method::DELETE, &format!("/api/v1/transactions/{id}/"), Some(&token), None).await;
    assert_eq!((a.status, a.text.as_str()), (204, ""));
    assert_eq!(e.get(&format!("/api/v1/transactions/{id}/"), &token).await.status, 404);
    let list = e.get("/api/v1/transactions/", &token).await.json();
    assert_eq!((list["count"].clone(), list["results"][0]["id"].clone()), (json!(1), keep["id"].clone()));
    let bank = e.sim.bank_account(&account).expect("account");
    assert_eq!((&bank["posted_balance"], &bank["available_balance"]), (&json!("-10.00"), &json!("-10.00")));
    assert!(e.sim.allocations(id).is_empty());
    let budgets = e.get(&format!("/api/v1/budgets/?bank_account={account}"), &token).await.json();
    for b in budgets["results"].as_array().expect("results") {
        let want = if b["name"] == "Unallocated" { "-10.00" } else { "0.00" };
        assert_eq!(b["balance"], want, "{b}");
    }
    assert_eq!(e.sim.transactions().len(), 1);
    assert_eq!(e.sim.ledger().len(), 2, "the ledger logs creations");
    let again = e.call(Method::DELETE, &format!("/api/v1/transactions/{id}/"), Some(&token), None).await;
    assert_eq!((again.status, again.json()), (404, json!({"detail": "No Transaction matches the given query."})));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_page_size_makes_clients_follow_next() {
    let e = env(MibudgeConfig { page_size: 3, ..MibudgeConfig::default() }).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    for i in 1..=7 {
        let body = txn(&account, &format!("-{i}.00"), "2024-05-14", "X");
        assert_eq!(e.post("/api/v1/transactions/", &token, body).await.status, 201);
    }
    let first = e.get("/api/v1/transactions/", &token).await.json();
    assert_eq!((first["count"].clone(), first["results"].as_array().expect("results").len()), (json!(7), 3));
    let mut next = first["next"].as_str().map(str::to_owned);
    assert!(next.as_deref().is_some_and(|n| n.ends_with("/api/v1/transactions/?page=2")), "{next:?}");
    let mut seen: Vec<Value> = first["results"].as_array().expect("results").iter().map(|r| r["id"].clone()).collect();
    while let Some(url) = next {
        let page: Value = serde_json::from_str(
            &e.http.get(&url).bearer_auth(&token).send().await.expect("send").text().await.expect("body"),
        )
        .expect("json");
        seen.extend(page["results"].as_array().expect("results").iter().map(|r| r["id"].clone()));
        next = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 7);
    let past = e.get("/api/v1/transactions/?page=4", &token).await;
    assert_eq!((past.status, past.json()), (404, json!({"detail": "Invalid page."})));
    let big = e.get("/api/v1/transactions/?page_size=5", &token).await.json();
    assert_eq!(big["results"].as_array().expect("results").len(), 5, "a client page_size still applies");
}

async fn post_with_timeout(
    e: &Env,
    token: &str,
    body: &Value,
    timeout: Duration,
) -> reqwest::Result<reqwest::Response> {
    e.http
        .post(format!("{}/api/v1/transactions/", e.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(timeout)
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_whose_client_timed_out_is_still_stored() {
    let faults = Faults { latency_after_commit: Duration::from_millis(500), ..Faults::none() };
    let e = env(MibudgeConfig { faults, ..MibudgeConfig::default() }).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let sent =
        post_with_timeout(&e, &token, &txn(&account, "-7.00", "2024-05-14", "X"), Duration::from_millis(100)).await;
    assert!(sent.as_ref().is_err_and(reqwest::Error::is_timeout), "{sent:?}");
    // Committed before the answer (allow a loaded machine a moment, well
    // under the 500 ms the answer waits).
    for _ in 0..30 {
        if !e.sim.transactions().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.sim.transactions().len(), 1, "committed before the answer");
    assert_eq!(e.sim.transactions()[0]["amount"], "-7.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_cut_off_before_the_commit_still_runs_to_its_end() {
    let faults = Faults { latency: Duration::from_millis(300), ..Faults::none() };
    let e = env(MibudgeConfig { faults, ..MibudgeConfig::default() }).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let sent =
        post_with_timeout(&e, &token, &txn(&account, "-7.00", "2024-05-14", "X"), Duration::from_millis(100)).await;
    assert!(sent.is_err());
    assert!(e.sim.transactions().is_empty(), "not yet");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(e.sim.transactions().len(), 1, "the server finished the request after the client left");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_201_still_stored_the_row() {
    let faults = Faults { unreadable_success_rate: 1.0, ..Faults::none() };
    let e = env(MibudgeConfig { faults, ..MibudgeConfig::default() }).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let token = e.login().await;
    let a = e.post("/api/v1/transactions/", &token, txn(&account, "-7.00", "2024-05-14", "X")).await;
    assert_eq!(a.status, 201);
    assert!(a.headers["content-type"].to_str().expect("ascii").starts_with("application/json"));
    assert!(!a.text.is_empty() && serde_json::from_str::<Value>(&a.text).is_err(), "{}", a.text);
    assert_eq!(e.sim.transactions().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_entered_row_is_seeded_like_a_post() {
    let e = env(MibudgeConfig::default()).await;
    let account = e.sim.seed_bank_account("Checking", "USD");
    let id = e.sim.seed_transaction(with(
        txn(&account, "-42.17", "2024-05-14", "POS PURCHASE COFFEE 05/13"),
        json!({"memo": "entered by hand"}),
    ));
    assert_eq!(e.sim.requests(), 0, "seeding is not a request");
    let token = e.login().await;
    let row = e.get(&format!("/api/v1/transactions/{id}/"), &token).await.json();
    assert_eq!(row["memo"], "entered by hand");
    assert_eq!(row["transaction_date"], "2024-05-13T00:00:00-08:00");
    assert_eq!(e.sim.bank_account(&account).expect("account")["posted_balance"], "-42.17");
    assert_eq!(e.sim.transactions(), vec![row]);
    let refused = std::panic::catch_unwind(|| e.sim.seed_transaction(txn(&account, "-1.001", "2024-05-14", "X")));
    assert!(refused.is_err());
    assert_eq!(e.sim.transactions().len(), 1, "still usable, nothing added");
}

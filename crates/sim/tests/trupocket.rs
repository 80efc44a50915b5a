//! The Trupocket simulator over real loopback HTTP: hashtags, the
//! after-commit faults and seeded entries.

use std::sync::Arc;
use std::time::Duration;

use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::{Faults, SimServer};
use serde_json::{json, Value};

struct Env {
    sim: Arc<TrupocketSim>,
    _server: SimServer,
    http: reqwest::Client,
    base: String,
    token: String,
    household: String,
    checking: String,
    card: String,
}

async fn env(faults: Faults) -> Env {
    let config = TrupocketConfig { faults, ..TrupocketConfig::default() };
    let token = config.token.clone();
    let sim = TrupocketSim::new(config);
    let household = sim.seed_household("Home");
    let checking = sim.seed_account(&household, "chkg", "Checking");
    let card = sim.seed_account(&household, "cc", "Card");
    for name in ["Groceries", "Home Improvement", "Travel"] {
        sim.seed_category(&household, name);
    }
    let server = SimServer::start(sim.router(), 0).await.expect("bind");
    let base = format!("{}/v1/households/{household}/detailed-tracking", server.base_url());
    Env { sim, _server: server, http: reqwest::Client::new(), base, token, household, checking, card }
}

fn txn(account: &str, memos: &[(&str, &str)]) -> Value {
    let categories: Vec<Value> = memos
        .iter()
        .map(|(name, memo)| json!({"name": name, "amount": 1250, "memo": memo, "dontImpactBudget": false, "isCleared": true}))
        .collect();
    json!({
        "cashflow": "expense",
        "type": "debit_credit",
        "fromAccountID": account,
        "payee": "Shop",
        "date": 1_715_644_800,
        "categories": categories,
    })
}

impl Env {
    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/transactions", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    async fn create(&self, body: &Value) -> String {
        let r = self.post(body).send().await.expect("send");
        assert_eq!(r.status(), 201);
        let v: Value = serde_json::from_str(&r.text().await.expect("body")).expect("json");
        v["transactionID"].as_str().expect("id").to_owned()
    }

    /// The ids listed for `query`.
    async fn list(&self, query: &str) -> Vec<String> {
        let r = self.http.get(format!("{}/transactions?{query}", self.base)).bearer_auth(&self.token).send().await;
        let r = r.expect("send");
        assert_eq!(r.status(), 200, "{query}");
        let v: Value = serde_json::from_str(&r.text().await.expect("body")).expect("json");
        v["transactions"]
            .as_array()
            .expect("list")
            .iter()
            .map(|t| t["transactionID"].as_str().expect("id").to_owned())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hashtags_filter_case_insensitively_and_combine_with_accounts() {
    let e = env(Faults::none()).await;
    let remodel = e.create(&txn(&e.checking, &[("Home Improvement", "Tiles #Kitchen-Remodel #taxdeductible")])).await;
    let trip = e.create(&txn(&e.checking, &[("Travel", "Flights #vacation2024")])).await;
    let paint = e.create(&txn(&e.card, &[("Home Improvement", "Paint #kitchen-remodel")])).await;
    let _plain = e.create(&txn(&e.checking, &[("Groceries", "no tags at all")])).await;
    let split =
        e.create(&txn(&e.checking, &[("Groceries", "food"), ("Home Improvement", "receipt #TaxDeductible")])).await;

    assert_eq!(e.list("hashtags=kitchen-remodel,VACATION2024").await, [remodel.clone(), trip.clone(), paint]);
    assert_eq!(
        e.list(&format!("hashtags=kitchen-remodel,vacation2024&accounts={}", e.checking)).await,
        [remodel.clone(), trip]
    );
    assert_eq!(e.list("hashtags=taxdeductible").await, [remodel, split], "any category's memo");
    assert!(e.list("hashtags=kitchen").await.is_empty(), "whole tags only");
    assert!(e.list(&format!("hashtags=vacation2024&accounts={}", e.card)).await.is_empty());
    assert_eq!(e.list("").await.len(), 5);

    let r = e.http.get(format!("{}/transactions?hashtags=vacation2024", e.base)).bearer_auth(&e.token).send().await;
    let listed: Value = serde_json::from_str(&r.expect("send").text().await.expect("body")).expect("json");
    assert_eq!(listed["transactions"][0]["categories"][0]["memo"], "Flights #vacation2024", "memos as posted");
    assert_eq!(e.sim.ledger().len(), 5);
    assert_eq!(e.household.len(), 27);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_whose_client_timed_out_is_still_stored() {
    let e = env(Faults { latency_after_commit: Duration::from_millis(500), ..Faults::none() }).await;
    let sent = e.post(&txn(&e.checking, &[("Groceries", "#weekly")])).timeout(Duration::from_millis(100)).send().await;
    assert!(sent.as_ref().is_err_and(reqwest::Error::is_timeout), "{sent:?}");
    for _ in 0..30 {
        if !e.sim.ledger().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.sim.ledger().len(), 1, "committed before the answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_201_still_stored_the_transaction() {
    let e = env(Faults { unreadable_success_rate: 1.0, ..Faults::none() }).await;
    let r = e.post(&txn(&e.checking, &[("Groceries", "#weekly")])).send().await.expect("send");
    assert_eq!(r.status(), 201);
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("application/json"));
    assert!(r.headers().contains_key("x-ratelimit-remaining"));
    let text = r.text().await.expect("body");
    assert!(!text.is_empty() && serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(e.sim.ledger().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_still_stores_the_transaction() {
    let e = env(Faults { drop_after_processing_rate: 1.0, ..Faults::none() }).await;
    let failed = match e.post(&txn(&e.checking, &[("Groceries", "x")])).send().await {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed);
    assert_eq!(e.sim.ledger().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_entered_transaction_is_seeded_like_a_post() {
    let e = env(Faults::none()).await;
    let id = e.sim.seed_transaction(&e.household, txn(&e.checking, &[("Groceries", "market #cash")]));
    assert_eq!(e.sim.requests(), 0, "seeding is not a request");
    assert_eq!(e.list("hashtags=cash").await, [id]);
    let ledger = e.sim.ledger();
    assert_eq!((ledger.len(), &ledger[0]["totalAmount"]), (1, &json!({"currency": "USD", "amount": 1250})));
    let household = e.household.clone();
    let sim = Arc::clone(&e.sim);
    let refused = std::panic::catch_unwind(move || sim.seed_transaction(&household, json!({"cashflow": "gift"})));
    assert!(refused.is_err());
    assert_eq!(e.sim.ledger().len(), 1, "still usable, nothing added");
}

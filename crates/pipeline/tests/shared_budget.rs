//! Four workers — four HTTP clients, each with its own PostgreSQL store
//! (its own connection pool, as four `bankpipe sync` processes would have)
//! on one database — share one rate budget per sink origin: together they
//! use the advertised limit with no 429, and a 429 seen by one holds all.
//! Skipped (with a notice) when BANKPIPE_TEST_DATABASE_URL is not set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bankpipe_http::{Credentials, Endpoint, HttpClient, Method, Policy, SecretString};
use bankpipe_pipeline::rate::shared_budget;
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::SimServer;
use bankpipe_store::PgStore;
use serde_json::json;

const WORKERS: usize = 4;

/// One client per worker, each over its own store on one fresh schema, or
/// `None` (with a notice) without a database.
async fn workers(test: &str, policy: Policy) -> Option<Vec<Arc<HttpClient>>> {
    let Ok(url) = std::env::var("BANKPIPE_TEST_DATABASE_URL") else {
        eprintln!("NOTICE: {test}: skipped: BANKPIPE_TEST_DATABASE_URL is not set");
        return None;
    };
    let schema = format!("rate{:016x}", fastrand::u64(..));
    let mut clients = Vec::new();
    for _ in 0..WORKERS {
        let store = PgStore::open_in_schema(&url, Some(&schema)).await.expect("PostgreSQL");
        let budget = shared_budget(&store).expect("PostgreSQL shares its rate budgets");
        clients.push(Arc::new(HttpClient::new(policy.clone()).unwrap().with_shared_budget(budget)));
    }
    Some(clients)
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_use_the_advertised_limit_with_no_429() {
    const LIMIT: u64 = 50;
    const MEASURED: u64 = 4;
    let policy = Policy { max_wait: Duration::from_secs(5), ..Policy::default() };
    let Some(clients) = workers("four_workers", policy).await else { return };
    let cfg = TrupocketConfig { rate_limit: RateLimit { limit: LIMIT, window_secs: 1 }, ..TrupocketConfig::default() };
    let token = cfg.token.clone();
    let sim = TrupocketSim::new(cfg);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let endpoint =
        Endpoint::new(&format!("{}/v1", server.base_url()), Credentials::Bearer(SecretString::from(token))).unwrap();

    // From a window's start, run MEASURED + 2 windows; the first (the
    // workers' first probe) and the last (cut short) are not measured.
    let first = now().as_secs() + 1;
    tokio::time::sleep(Duration::from_secs(first) - now()).await;
    let end = Duration::from_secs(first + MEASURED + 2);
    // Accepted requests per window, keyed by the window's X-RateLimit-Reset.
    let per_window: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::default();
    let mut tasks = Vec::new();
    for client in &clients {
        let (client, endpoint, per_window) = (Arc::clone(client), endpoint.clone(), Arc::clone(&per_window));
        tasks.push(tokio::spawn(async move {
            let url = endpoint.url("users/who-am-i").unwrap();
            let mut sent = 0u64;
            while now() < end {
                let r = client.get(&endpoint, &url).await.unwrap();
                let reset: u64 = r.headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
                *per_window.lock().unwrap().entry(reset).or_default() += 1;
                sent += 1;
            }
            sent
        }));
    }
    let mut by_worker = Vec::new();
    for t in tasks {
        by_worker.push(t.await.unwrap());
    }
    let counts = per_window.lock().unwrap().clone();
    // Window k (from second k) ends, and is reset, at k + 1.
    let measured: Vec<u64> =
        (first + 2..first + 2 + MEASURED).map(|reset| counts.get(&reset).copied().unwrap_or(0)).collect();
    let total: u64 = measured.iter().sum();
    let share = total as f64 / (MEASURED * LIMIT) as f64;
    println!(
        "shared budget: {WORKERS} workers, limit {LIMIT}/s, {MEASURED} full windows: {measured:?} = {total} of {} \
         ({:.1}% of the limit); requests per worker {by_worker:?}; 429s: {}; most accepted in one window: {}",
        MEASURED * LIMIT,
        share * 100.0,
        sim.rejected_429(),
        sim.max_in_a_window()
    );
    assert_eq!(sim.rejected_429(), 0, "no 429: the workers never spent more than the shared budget");
    assert!(sim.max_in_a_window() <= LIMIT);
    assert!(share >= 0.95, "together the workers used {:.1}% of the limit (≥ 95% wanted): {measured:?}", share * 100.0);
    assert!(by_worker.iter().all(|&n| n > 0), "every worker sent: {by_worker:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_seen_by_one_worker_holds_the_others() {
    let policy = Policy { max_wait: Duration::from_secs(10), ..Policy::default() };
    let Some(clients) = workers("held", policy.clone()).await else { return };
    // mibudge: no X-RateLimit headers, a sliding-window throttle answering
    // 429 + Retry-After (seconds) — here 4 calls per 4 s.
    let sim = MibudgeSim::new(MibudgeConfig { api_limit: Some((4, 4)), ..MibudgeConfig::default() });
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let outsider = HttpClient::new(policy).unwrap();
    let login = Endpoint::new(&server.base_url(), Credentials::None).unwrap();
    let body = json!({"email": "sim@example.com", "password": "sim-password"});
    let r =
        outsider.send_idempotent(&login, Method::POST, &login.url("api/token/").unwrap(), Some(&body)).await.unwrap();
    let access: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let endpoint = Endpoint::new(
        &server.base_url(),
        Credentials::Bearer(SecretString::from(access["access"].as_str().unwrap().to_owned())),
    )
    .unwrap();
    let url = endpoint.url("api/v1/bank-accounts/").unwrap();
    // Someone else (no shared budget) spends the throttle's 4 calls.
    for _ in 0..4 {
        outsider.get(&endpoint, &url).await.unwrap();
    }

    // The first worker is refused: 429, Retry-After ≈ 4 s. It waits that
    // out itself and retries.
    let first = {
        let (client, endpoint, url) = (Arc::clone(&clients[0]), endpoint.clone(), url.clone());
        tokio::spawn(async move { client.get(&endpoint, &url).await.map(|r| r.status) })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.rejected_429() == 0 {
        assert!(Instant::now() < deadline, "the first worker was never refused");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let its observation reach the database.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The others start now, knowing nothing but what the database says.
    let started = Instant::now();
    let others: Vec<_> = clients[1..]
        .iter()
        .map(|client| {
            let (client, endpoint, url) = (Arc::clone(client), endpoint.clone(), url.clone());
            tokio::spawn(async move {
                let status = client.get(&endpoint, &url).await.map(|r| r.status);
                (status, started.elapsed())
            })
        })
        .collect();
    assert_eq!(first.await.unwrap().unwrap(), 200);
    let mut waited = Vec::new();
    for t in others {
        let (status, elapsed) = t.await.unwrap();
        assert_eq!(status.unwrap(), 200);
        waited.push(elapsed);
    }
    println!("held: the other workers waited {waited:?}; 429s: {}", sim.rejected_429());
    assert_eq!(sim.rejected_429(), 1, "only the first worker was ever refused: the others held");
    assert!(
        waited.iter().all(|w| *w >= Duration::from_secs(2)),
        "the others waited for Retry-After before sending: {waited:?}"
    );
}

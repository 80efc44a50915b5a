//! Pacing efficiency: against the Trupocket simulator advertising L
//! requests per window, how much of L does the client sustain, and with
//! how many 429s, over several windows?
//!
//! `cargo bench -p bankpipe-http --bench pacing` (target: ≥ 95% of L, zero 429s).
//! Environment: `PACING_LIMIT` (default 50), `PACING_WINDOW_SECS` (default 1),
//! `PACING_WINDOWS` (default 6), `PACING_CONCURRENCY` (default 4 callers).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bankpipe_http::{Credentials, Endpoint, HttpClient, Policy, SecretString};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::SimServer;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let limit = env("PACING_LIMIT", 50);
    let window = env("PACING_WINDOW_SECS", 1);
    let windows = env("PACING_WINDOWS", 6);
    let concurrency = env("PACING_CONCURRENCY", 4);
    let cfg = TrupocketConfig { rate_limit: RateLimit { limit, window_secs: window }, ..TrupocketConfig::default() };
    let token = cfg.token.clone();
    let sim = TrupocketSim::new(cfg);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let endpoint =
        Endpoint::new(&format!("{}/v1", server.base_url()), Credentials::Bearer(SecretString::from(token))).unwrap();
    let client =
        Arc::new(HttpClient::new(Policy { max_wait: Duration::from_secs(window + 5), ..Policy::default() }).unwrap());

    // Start at a window boundary; run `windows + 2` windows, measure the middle ones.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let first = now.as_secs() / window + 1;
    tokio::time::sleep(Duration::from_secs(first * window) - now).await;
    let end = Duration::from_secs((first + windows + 2) * window);
    let per_window: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, endpoint, per_window) = (Arc::clone(&client), endpoint.clone(), Arc::clone(&per_window));
        tasks.push(tokio::spawn(async move {
            let url = endpoint.url("users/who-am-i").unwrap();
            while SystemTime::now().duration_since(UNIX_EPOCH).unwrap() < end {
                client.get(&endpoint, &url).await.unwrap();
                let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / window;
                *per_window.lock().unwrap().entry(at).or_default() += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = per_window.lock().unwrap().clone();
    let measured: Vec<u64> = (first + 1..first + 1 + windows).map(|w| counts.get(&w).copied().unwrap_or(0)).collect();
    let total: u64 = measured.iter().sum();
    let efficiency = total as f64 / (windows * limit) as f64 * 100.0;
    println!(
        "pacing: limit {limit}/{window}s, {concurrency} concurrent callers, {windows} full windows measured: {measured:?} \
         -> {total} of {} = {efficiency:.1}% of the limit; 429s: {}; max accepted in one window: {}",
        windows * limit,
        sim.rejected_429(),
        sim.max_in_a_window()
    );
}

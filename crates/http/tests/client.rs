//! The HTTP client against the simulators, over real loopback HTTP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bankpipe_http::{ApiErrorBody, Credentials, Endpoint, HttpClient, HttpError, Method, Policy, SecretString};
use bankpipe_sim::faults::Faults;
use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::json;

fn fast_policy() -> Policy {
    Policy {
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_retries: 8,
        ..Policy::default()
    }
}

async fn trupocket(limit: RateLimit, faults: Faults) -> (Arc<TrupocketSim>, SimServer, Endpoint) {
    let cfg = TrupocketConfig { rate_limit: limit, faults, ..TrupocketConfig::default() };
    let token = cfg.token.clone();
    let sim = TrupocketSim::new(cfg);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let ep =
        Endpoint::new(&format!("{}/v1", server.base_url()), Credentials::Bearer(SecretString::from(token))).unwrap();
    (sim, server, ep)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn pacing_never_exceeds_the_advertised_limit_and_gets_no_429() {
    let (sim, _server, ep) = trupocket(RateLimit { limit: 8, window_secs: 1 }, Faults::none()).await;
    let client = HttpClient::new(fast_policy()).unwrap();
    let url = ep.url("users/who-am-i").unwrap();
    for _ in 0..20 {
        client.get(&ep, &url).await.unwrap();
    }
    assert_eq!(sim.rejected_429(), 0, "no 429 when pacing by the advertised budget");
    assert!(sim.max_in_a_window() <= 8, "never more than the limit in a window: {}", sim.max_in_a_window());
    assert_eq!(sim.requests(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn remaining_zero_holds_requests_until_reset() {
    let (sim, _server, ep) = trupocket(RateLimit { limit: 3, window_secs: 2 }, Faults::none()).await;
    let client = HttpClient::new(Policy { max_wait: Duration::from_secs(5), ..fast_policy() }).unwrap();
    let url = ep.url("users/who-am-i").unwrap();
    let first_window = unix_now() / 2;
    for _ in 0..4 {
        client.get(&ep, &url).await.unwrap();
    }
    assert_eq!(sim.rejected_429(), 0);
    assert!(unix_now() / 2 > first_window, "the fourth request waited for the next window");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_beyond_the_maximum_is_rate_budget_exhausted() {
    let (sim, _server, ep) = trupocket(RateLimit { limit: 2, window_secs: 3600 }, Faults::none()).await;
    let client = HttpClient::new(Policy { max_wait: Duration::from_secs(1), ..fast_policy() }).unwrap();
    let url = ep.url("users/who-am-i").unwrap();
    client.get(&ep, &url).await.unwrap();
    client.get(&ep, &url).await.unwrap();
    let started = Instant::now();
    match client.get(&ep, &url).await {
        Err(HttpError::RateBudgetExhausted { until, .. }) => {
            let until = until.duration_since(UNIX_EPOCH).unwrap().as_secs();
            assert_eq!(until % 3600, 0, "until is the window's reset");
            assert!(until > unix_now());
        }
        other => panic!("expected RateBudgetExhausted, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(500), "refused at once, not after sleeping");
    assert_eq!(sim.requests(), 2, "the third request was never sent");
}

/// Sleep until just after the start of the next `window_secs` window, so a
/// test's requests cannot straddle a window boundary by accident.
async fn start_of_next_window(window_secs: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let next = Duration::from_secs((now.as_secs() / window_secs + 1) * window_secs) + Duration::from_millis(20);
    tokio::time::sleep(next - now).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_waited_out_then_retried() {
    let (sim, _server, ep) = trupocket(RateLimit { limit: 2, window_secs: 2 }, Faults::none()).await;
    start_of_next_window(2).await;
    let url = ep.url("users/who-am-i").unwrap();
    // Another client spends the window's budget; this one knows nothing of it.
    let other = HttpClient::new(fast_policy()).unwrap();
    other.get(&ep, &url).await.unwrap();
    other.get(&ep, &url).await.unwrap();
    let client = HttpClient::new(Policy { max_wait: Duration::from_secs(5), ..fast_policy() }).unwrap();
    let r = client.get(&ep, &url).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sim.rejected_429(), 1, "one 429, then the retry after Retry-After succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_of_each_api_are_surfaced() {
    // Trupocket: wrong PAT.
    let (_sim, server, _) = trupocket(RateLimit::PREMIUM, Faults::none()).await;
    let bad = Endpoint::new(
        &format!("{}/v1", server.base_url()),
        Credentials::Bearer(SecretString::from(format!("tp_{}", "f".repeat(64)))),
    )
    .unwrap();
    let client = HttpClient::new(fast_policy()).unwrap();
    let err = client.get(&bad, &bad.url("households").unwrap()).await.unwrap_err();
    match &err {
        HttpError::Status { status: 401, body, .. } => {
            assert!(matches!(&**body, ApiErrorBody::Trupocket { code, .. } if code == "unauthorized"), "{body:?}")
        }
        other => panic!("{other:?}"),
    }
    // Truv: wrong secret.
    let truv = TruvSim::new(TruvConfig::default(), TruvData::default());
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let creds = Credentials::Headers(vec![
        ("x-access-client-id".parse().unwrap(), SecretString::from("sim-client")),
        ("x-access-secret".parse().unwrap(), SecretString::from("wrong")),
    ]);
    let ep = Endpoint::new(&ts.base_url(), creds).unwrap();
    let err =
        client.get(&ep, &ep.url("v1/links/24d7e80942ce4ad58a93f70ce4115f5c/transactions/").unwrap()).await.unwrap_err();
    assert!(
        matches!(&err, HttpError::Status { status: 401, body, .. }
            if matches!(&**body, ApiErrorBody::Truv { code, .. } if code == "unauthorized")),
        "{err:?}"
    );
    assert!(err.to_string().contains("Invalid client id or access secret"), "{err}");
    // Firefly: wrong PAT.
    let ff = FireflySim::new(FireflyConfig::default(), FireflyData::default());
    let fs = SimServer::start(ff.router(), 0).await.unwrap();
    let ep = Endpoint::new(&fs.base_url(), Credentials::Bearer(SecretString::from("nope"))).unwrap();
    let err = client.get(&ep, &ep.url("api/v1/transactions").unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 401: Unauthenticated."), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_never_sent_to_another_origin() {
    let (sim_a, _a, ep) = trupocket(RateLimit::PREMIUM, Faults::none()).await;
    let (sim_b, b, _) = trupocket(RateLimit::PREMIUM, Faults::none()).await;
    let client = HttpClient::new(fast_policy()).unwrap();
    let foreign = reqwest_url(&format!("{}/v1/users/who-am-i", b.base_url()));
    let err = client.get(&ep, &foreign).await.unwrap_err();
    assert!(matches!(err, HttpError::CrossOrigin { .. }), "{err:?}");
    assert_eq!((sim_a.requests(), sim_b.requests()), (0, 0), "nothing was sent anywhere");
    let https = reqwest_url(&ep.url("users/who-am-i").unwrap().as_str().replacen("http://", "https://", 1));
    assert!(
        matches!(client.get(&ep, &https).await, Err(HttpError::CrossOrigin { .. })),
        "another scheme is another origin"
    );
}

fn reqwest_url(s: &str) -> bankpipe_http::Url {
    bankpipe_http::Url::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_requests_are_retried_through_5xx() {
    let faults = Faults { error_rate: 0.5, ..Faults::none() };
    let (sim, _server, ep) = trupocket(RateLimit::PREMIUM, faults).await;
    let client = HttpClient::new(Policy { max_retries: 20, ..fast_policy() }).unwrap();
    let url = ep.url("users/who-am-i").unwrap();
    for _ in 0..10 {
        assert_eq!(client.get(&ep, &url).await.unwrap().status, 200);
    }
    assert!(sim.requests() > 10, "some requests drew a 503 and were retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_that_may_have_been_applied_is_ambiguous_never_resent() {
    let faults = Faults { drop_after_processing_rate: 1.0, ..Faults::none() };
    let (sim, _server, ep) = trupocket(RateLimit::PREMIUM, faults).await;
    let hid = sim.seed_household("Home");
    let aid = sim.seed_account(&hid, "chkg", "Checking");
    sim.seed_category(&hid, "Groceries");
    let client = HttpClient::new(fast_policy()).unwrap();
    let url = ep.url(&format!("households/{hid}/detailed-tracking/transactions")).unwrap();
    let body = json!({"cashflow": "expense", "type": "debit_credit", "fromAccountID": aid, "payee": "Shop", "date": 1_700_000_000,
        "categories": [{"name": "Groceries", "amount": 1234, "memo": "x", "dontImpactBudget": false, "isCleared": true}]});
    let err = client.send(&ep, Method::POST, &url, Some(&body)).await.unwrap_err();
    assert!(matches!(err, HttpError::Ambiguous { .. }), "{err:?}");
    assert_eq!(sim.ledger().len(), 1, "the server applied it once and it was not sent again");
    assert_eq!(sim.requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_to_a_closed_port_is_retried_and_not_ambiguous() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ep = Endpoint::new(&format!("http://127.0.0.1:{port}/v1"), Credentials::None).unwrap();
    let client = HttpClient::new(Policy { max_retries: 2, ..fast_policy() }).unwrap();
    let err = client.send(&ep, Method::POST, &ep.url("x").unwrap(), Some(&json!({}))).await.unwrap_err();
    assert!(matches!(err, HttpError::Transport { .. }), "connection refused never reached the server: {err:?}");
}

/// A tracing writer that keeps everything written.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_never_reaches_logs_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let faults = Faults { error_rate: 0.3, ..Faults::none() };
    let (sim, server, ep) = trupocket(RateLimit { limit: 5, window_secs: 1 }, faults).await;
    let client = HttpClient::new(Policy { max_retries: 20, ..fast_policy() }).unwrap();
    let mut errors = Vec::new();
    for _ in 0..8 {
        if let Err(e) = client.get(&ep, &ep.url("households").unwrap()).await {
            errors.push(format!("{e} {e:?}"));
        }
    }
    let wrong = format!("tp_{}", "e".repeat(64));
    let bad =
        Endpoint::new(&format!("{}/v1", server.base_url()), Credentials::Bearer(SecretString::from(wrong.clone())))
            .unwrap();
    let e = client.get(&bad, &bad.url("households").unwrap()).await.unwrap_err();
    errors.push(format!("{e} {e:?} {bad:?}"));
    assert!(sim.requests() > 8);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let token = TrupocketConfig::default().token;
    assert!(logs.contains("retrying") || logs.contains("rate gate"), "the capture works: {logs}");
    for secret in [&token[..], &token[3..], &wrong[..]] {
        assert!(!logs.contains(secret), "token in logs");
        assert!(!errors.iter().any(|e| e.contains(secret)), "token in an error: {errors:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_declared_idempotent_is_retried_through_5xx() {
    let faults = Faults { error_rate: 1.0, ..Faults::none() };
    let (sim, _server, ep) = trupocket(RateLimit::PREMIUM, faults).await;
    let client = HttpClient::new(Policy { max_retries: 3, ..fast_policy() }).unwrap();
    let url = ep.url("households").unwrap();
    let body = json!({"name": "Home"});
    // A plain POST answered 503 may have been applied: ambiguous, not retried.
    let e = client.send(&ep, Method::POST, &url, Some(&body)).await.unwrap_err();
    assert!(matches!(e, HttpError::Ambiguous { .. }), "{e:?}");
    // Declared safe to repeat: retried, and after the retries a plain status error.
    let e = client.send_idempotent(&ep, Method::POST, &url, Some(&body)).await.unwrap_err();
    assert!(matches!(e, HttpError::Status { status: 503, .. }), "{e:?}");
    assert_eq!(sim.requests(), 1 + 4, "one plain attempt, then 1 + 3 retries");
}

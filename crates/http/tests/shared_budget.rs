//! The client with a `SharedBudget` (a scripted one here; the PostgreSQL
//! one is tested in crates/store and crates/pipeline): every attempt is
//! reserved, every response observed, waits are slept or refused.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bankpipe_http::{
    BoxFuture, Credentials, Decision, Endpoint, HttpClient, HttpError, Observation, Policy, RetryAfter, SecretString,
    SharedBudget, SharedBudgetError,
};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::SimServer;

/// Answers from a script (then `Go`), records what it is asked and told.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Result<Decision, String>>>,
    reserved: Mutex<Vec<(String, Duration)>>,
    observed: Mutex<Vec<(String, Observation)>>,
}

impl Scripted {
    fn new(script: Vec<Result<Decision, String>>) -> Arc<Scripted> {
        Arc::new(Scripted { script: Mutex::new(script.into()), ..Scripted::default() })
    }
}

impl SharedBudget for Scripted {
    fn reserve<'a>(
        &'a self,
        origin: &'a str,
        max_pace_interval: Duration,
    ) -> BoxFuture<'a, Result<Decision, SharedBudgetError>> {
        Box::pin(async move {
            self.reserved.lock().unwrap().push((origin.to_owned(), max_pace_interval));
            match self.script.lock().unwrap().pop_front() {
                None => Ok(Decision::Go),
                Some(answer) => answer.map_err(SharedBudgetError::from),
            }
        })
    }

    fn observe<'a>(
        &'a self,
        origin: &'a str,
        observation: &'a Observation,
    ) -> BoxFuture<'a, Result<(), SharedBudgetError>> {
        Box::pin(async move {
            self.observed.lock().unwrap().push((origin.to_owned(), observation.clone()));
            Ok(())
        })
    }
}

fn policy() -> Policy {
    Policy { min_backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(50), ..Policy::default() }
}

async fn trupocket(limit: RateLimit) -> (Arc<TrupocketSim>, SimServer, Endpoint) {
    let cfg = TrupocketConfig { rate_limit: limit, ..TrupocketConfig::default() };
    let token = cfg.token.clone();
    let sim = TrupocketSim::new(cfg);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let ep =
        Endpoint::new(&format!("{}/v1", server.base_url()), Credentials::Bearer(SecretString::from(token))).unwrap();
    (sim, server, ep)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attempt_is_reserved_and_every_response_observed() {
    let (sim, _server, ep) = trupocket(RateLimit { limit: 100, window_secs: 60 }).await;
    let budget = Scripted::new(vec![]);
    let client = HttpClient::new(policy()).unwrap().with_shared_budget(budget.clone());
    assert!(client.has_shared_budget());
    let url = ep.url("users/who-am-i").unwrap();
    for _ in 0..3 {
        client.get(&ep, &url).await.unwrap();
    }
    assert_eq!(sim.requests(), 3);
    let origin = ep.origin().to_string();
    let reserved = budget.reserved.lock().unwrap().clone();
    assert_eq!(reserved, vec![(origin.clone(), policy().max_pace_interval); 3], "one reservation per request");
    let observed = budget.observed.lock().unwrap().clone();
    assert_eq!(observed.len(), 3);
    for (i, (o, seen)) in observed.iter().enumerate() {
        assert_eq!(o, &origin);
        assert_eq!((seen.status, seen.limit, seen.remaining), (200, Some(100), Some(99 - i as u64)));
        assert!(seen.reset.is_some_and(|r| r % 60 == 0), "X-RateLimit-Reset, Unix seconds: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_are_slept_then_the_request_goes() {
    let (sim, _server, ep) = trupocket(RateLimit::PREMIUM).await;
    let wait = |ms| Ok(Decision::Wait { until: SystemTime::now(), wait: Duration::from_millis(ms) });
    let budget = Scripted::new(vec![wait(150), wait(150)]);
    let client = HttpClient::new(policy()).unwrap().with_shared_budget(budget.clone());
    let started = Instant::now();
    client.get(&ep, &ep.url("users/who-am-i").unwrap()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "both waits slept: {:?}", started.elapsed());
    assert_eq!(budget.reserved.lock().unwrap().len(), 3, "asked again after each wait");
    assert_eq!(sim.requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_beyond_max_wait_is_refused_at_once_and_nothing_sent() {
    let (sim, _server, ep) = trupocket(RateLimit::PREMIUM).await;
    let until = SystemTime::now() + Duration::from_secs(3600);
    let budget = Scripted::new(vec![Ok(Decision::Wait { until, wait: Duration::from_secs(3600) })]);
    let client = HttpClient::new(Policy { max_wait: Duration::from_secs(1), ..policy() })
        .unwrap()
        .with_shared_budget(budget.clone());
    let started = Instant::now();
    match client.get(&ep, &ep.url("users/who-am-i").unwrap()).await {
        Err(HttpError::RateBudgetExhausted { until: got, max_wait_secs: 1, .. }) => assert_eq!(got, until),
        other => panic!("expected RateBudgetExhausted, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(500), "refused at once, not after sleeping");
    assert_eq!(sim.requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_that_cannot_answer_sends_nothing() {
    let (sim, _server, ep) = trupocket(RateLimit::PREMIUM).await;
    let budget = Scripted::new(vec![Err("connection refused".into())]);
    let client = HttpClient::new(policy()).unwrap().with_shared_budget(budget);
    let err = client.get(&ep, &ep.url("users/who-am-i").unwrap()).await.unwrap_err();
    assert!(matches!(&err, HttpError::SharedBudget { cause, .. } if cause.contains("connection refused")), "{err:?}");
    assert_eq!(sim.requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_reported_with_its_retry_after() {
    let (sim, _server, ep) = trupocket(RateLimit { limit: 1, window_secs: 3600 }).await;
    let budget = Scripted::new(vec![]);
    let client = HttpClient::new(Policy { max_retries: 0, ..policy() }).unwrap().with_shared_budget(budget.clone());
    let url = ep.url("users/who-am-i").unwrap();
    client.get(&ep, &url).await.unwrap();
    let err = client.get(&ep, &url).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(sim.rejected_429(), 1);
    let observed = budget.observed.lock().unwrap().clone();
    let (_, refused) = observed.last().unwrap();
    assert_eq!((refused.status, refused.remaining), (429, Some(0)));
    assert!(
        matches!(refused.retry_after, Some(RetryAfter::Delay(d)) if d > Duration::ZERO && d <= Duration::from_secs(3600)),
        "{refused:?}"
    );
}

//! Live walks against the simulators, over real loopback HTTP.

use std::collections::BTreeSet;
use std::sync::Arc;

use bankpipe_gen::GenConfig;
use bankpipe_http::{Credentials, Endpoint, HttpClient, HttpError, Policy, SecretString};
use bankpipe_model::Transaction;
use bankpipe_sim::faults::Faults;
use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use bankpipe_sources::live::{LiveError, LiveSource, Window};
use bankpipe_sources::recorded::walk_dir;
use bankpipe_sources::{NormalizeContext, PageError, SourceKind};

fn truv_source(base: &str, secret: &str, page_size: u32) -> LiveSource {
    let creds = Credentials::Headers(vec![
        ("x-access-client-id".parse().unwrap(), SecretString::from("sim-client")),
        ("x-access-secret".parse().unwrap(), SecretString::from(secret.to_owned())),
    ]);
    LiveSource {
        ctx: NormalizeContext::new("truv"),
        kind: SourceKind::Truv,
        endpoint: Endpoint::new(base, creds).unwrap(),
        link_id: Some(TruvConfig::default().link_id),
        account_ids: Vec::new(),
        page_size,
    }
}

fn firefly_source(base: &str, page_size: u32) -> LiveSource {
    LiveSource {
        ctx: NormalizeContext::new("firefly"),
        kind: SourceKind::Firefly,
        endpoint: Endpoint::new(base, Credentials::Bearer(SecretString::from("sim-firefly-token"))).unwrap(),
        link_id: None,
        account_ids: Vec::new(),
        page_size,
    }
}

fn client() -> HttpClient {
    HttpClient::new(Policy { min_backoff: std::time::Duration::from_millis(5), ..Policy::default() }).unwrap()
}

fn gen(n: u64) -> GenConfig {
    GenConfig { accounts: 6, transactions: n, page_size: 500, seed: 3, ..GenConfig::default() }
}

async fn collect(
    source: &LiveSource,
    window: Window,
) -> Result<(Vec<Transaction>, Vec<(String, bytes::Bytes)>, Vec<String>), LiveError> {
    let mut txs = Vec::new();
    let mut bodies = Vec::new();
    let mut warnings = Vec::new();
    source
        .walk::<LiveError, _>(&client(), window, async |p| {
            txs.extend(p.page.transactions);
            warnings.extend(p.page.warnings);
            bodies.push((p.url.to_string(), p.body));
            Ok(())
        })
        .await?;
    Ok((txs, bodies, warnings))
}

#[tokio::test(flavor = "multi_thread")]
async fn truv_pages_are_followed_to_the_end_and_match_their_recording() {
    let data = TruvData::generated(gen(2_000));
    let n = data.transactions.len();
    let sim = TruvSim::new(TruvConfig::default(), data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let source = truv_source(&server.base_url(), "sim-secret", 150);
    let (live, bodies, warnings) = collect(&source, Window::default()).await.unwrap();
    assert_eq!(live.len(), n, "every record, no quarantine");
    assert_eq!(bodies.len(), n.div_ceil(150));
    assert_eq!(sim.requests() as usize, bodies.len(), "one request per page");
    assert!(warnings.is_empty(), "{warnings:?}");

    // The same pages, recorded and replayed, give the same canonical rows.
    let dir = tempfile::tempdir().unwrap();
    for (i, (_, body)) in bodies.iter().enumerate() {
        std::fs::write(dir.path().join(format!("page-{:06}.json", i + 1)), body).unwrap();
    }
    let mut replayed = Vec::new();
    walk_dir::<PageError, _>(SourceKind::Truv, &NormalizeContext::new("truv"), dir.path(), |_, p| {
        replayed.extend(p.transactions);
        Ok(())
    })
    .unwrap();
    assert_eq!(replayed, live);
}

#[tokio::test(flavor = "multi_thread")]
async fn truv_window_filters_on_transacted_at() {
    let data = TruvData::generated(gen(3_000));
    let sim = TruvSim::new(TruvConfig::default(), data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let source = truv_source(&server.base_url(), "sim-secret", 500);
    let from = chrono::NaiveDate::from_ymd_opt(2024, 2, 1).unwrap();
    let to = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let (txs, ..) = collect(&source, Window { from: Some(from), to: Some(to) }).await.unwrap();
    assert!(!txs.is_empty());
    for t in &txs {
        let d = t.transacted_at.unwrap().date_naive();
        assert!(d >= from && d <= to, "{d}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn firefly_pages_are_followed_until_current_equals_total() {
    let data = FireflyData::generated(gen(1_500));
    let sim = FireflySim::new(FireflyConfig::default(), data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let source = firefly_source(&server.base_url(), 100);
    let mut splits = 0;
    let stats = source
        .walk::<LiveError, _>(&client(), Window::default(), async |p| {
            splits += p.page.records_read;
            assert!(p.page.quarantine.is_empty());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(splits, 1_500, "total counts splits");
    assert_eq!(stats.pages, sim.requests());
    assert!(stats.pages >= 15);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_shifting_between_pages_are_walked_again_until_none_is_missing() {
    // A burst of activity during the first walk: 3 records arrive at the
    // front of the listing while it is paged, so the first pass reads fewer
    // distinct records than the `count` of its last page.
    let data = TruvData::generated(gen(600));
    let n = data.transactions.len();
    let config =
        TruvConfig { faults: Faults { drift: true, ..Faults::none() }, drift_limit: Some(3), ..TruvConfig::default() };
    let sim = TruvSim::new(config, data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let source = truv_source(&server.base_url(), "sim-secret", 100);
    let mut ids = BTreeSet::new();
    let mut warnings = Vec::new();
    let stats = source
        .walk::<LiveError, _>(&client(), Window::default(), async |p| {
            ids.extend(p.page.transactions.iter().map(|t| t.id));
            warnings.extend(p.page.warnings);
            Ok(())
        })
        .await
        .unwrap();
    assert!(warnings.iter().any(|w| w.contains("page drift")), "{warnings:?}");
    assert_eq!(stats.walks, 2, "the short first pass was followed by a complete one");
    assert_eq!(stats.expected, Some(n as u64 + 3));
    assert_eq!(ids.len(), n + 3, "every record, the 3 new ones included, read");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_that_never_holds_still_fails_loudly_with_the_numbers() {
    let data = TruvData::generated(gen(600));
    let sim =
        TruvSim::new(TruvConfig { faults: Faults { drift: true, ..Faults::none() }, ..TruvConfig::default() }, data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let err = collect(&truv_source(&server.base_url(), "sim-secret", 100), Window::default()).await.err().unwrap();
    let LiveError::Incomplete { read, expected, walks, .. } = &err else { panic!("{err}") };
    assert!(read < expected && *walks == bankpipe_sources::live::MAX_WALKS, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("\"truv\"") && text.contains("the beginning..now") && text.contains("distinct records"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_surface_the_401_body() {
    let sim = TruvSim::new(TruvConfig::default(), TruvData::default());
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let err = collect(&truv_source(&server.base_url(), "wrong-secret", 100), Window::default()).await.err().unwrap();
    assert!(matches!(&err, LiveError::Http(HttpError::Status { status: 401, .. })), "{err:?}");
    assert!(err.to_string().contains("Invalid client id or access secret"), "{err}");
    assert!(!err.to_string().contains("wrong-secret"));
}

/// A hand-made Truv server whose page 1 links `next` to `next_url`.
async fn one_page_server(next_url: Arc<std::sync::Mutex<String>>) -> SimServer {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/v1/links/{link}/transactions/",
        get(move || {
            let next = next_url.lock().unwrap().clone();
            async move {
                axum::Json(
                    serde_json::json!({"count": 2, "next": next, "previous": null, "accounts": [], "transactions": []}),
                )
            }
        }),
    );
    SimServer::start(app, 0).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_next_link_to_another_origin_is_refused_without_sending_credentials() {
    let elsewhere = TruvSim::new(TruvConfig::default(), TruvData::default());
    let other = SimServer::start(elsewhere.router(), 0).await.unwrap();
    let next = Arc::new(std::sync::Mutex::new(format!(
        "{}/v1/links/{}/transactions/?page=2&page_size=100",
        other.base_url(),
        TruvConfig::default().link_id
    )));
    let server = one_page_server(next).await;
    let err = collect(&truv_source(&server.base_url(), "sim-secret", 100), Window::default()).await.err().unwrap();
    assert!(matches!(&err, LiveError::Http(HttpError::CrossOrigin { .. })), "{err:?}");
    assert_eq!(elsewhere.requests(), 0, "the other origin never saw a request");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_next_link_back_to_the_first_page_is_a_loop() {
    let next = Arc::new(std::sync::Mutex::new(String::new()));
    let server = one_page_server(Arc::clone(&next)).await;
    *next.lock().unwrap() =
        format!("{}/v1/links/{}/transactions/?page_size=100", server.base_url(), TruvConfig::default().link_id);
    let err = collect(&truv_source(&server.base_url(), "sim-secret", 100), Window::default()).await.err().unwrap();
    assert!(err.to_string().contains("loop"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn truv_account_ids_limit_the_walk() {
    let data = TruvData::generated(gen(800));
    let sim = TruvSim::new(TruvConfig::default(), data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let mut source = truv_source(&server.base_url(), "sim-secret", 200);
    source.account_ids = vec!["acct-0001".into(), "acct-0004".into()];
    let (txs, ..) = collect(&source, Window::default()).await.unwrap();
    assert!(!txs.is_empty());
    assert!(txs.iter().all(|t| t.source_account_id == "acct-0001" || t.source_account_id == "acct-0004"));
}

#[tokio::test(flavor = "multi_thread")]
async fn firefly_page_drift_is_reported_and_nothing_is_lost() {
    let data = FireflyData::generated(gen(400));
    let groups = data.groups.len();
    let faults = Faults { drift: true, ..Faults::none() };
    let sim = FireflySim::new(FireflyConfig { faults, drift_limit: Some(3), ..FireflyConfig::default() }, data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let (txs, _, warnings) = collect(&firefly_source(&server.base_url(), 50), Window::default()).await.unwrap();
    assert!(warnings.iter().any(|w| w.contains("page drift")), "{warnings:?}");
    let groups_seen: BTreeSet<_> =
        txs.iter().filter_map(|t| t.group_id.clone()).filter(|g| !g.starts_with("drift-")).collect();
    assert_eq!(groups_seen.len(), groups, "every original group read: the short pass was walked again");
}

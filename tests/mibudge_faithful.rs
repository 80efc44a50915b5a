//! mibudge as the real server behaves (seeds/README.md), over loopback HTTP:
//! a non-USD account gets `amount_currency` (else the server answers an HTML
//! 500 and stores nothing), a currency the server does not list is failed
//! with its reason before any request and the run says so (exit 3); and a
//! server answering nonsense stops the sink with an error naming the sink and
//! the URL, losing nothing.

mod support;

use bankpipe_store::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use bankpipe_store::{DeliveryState, SqliteStore};

const ENV: [(&str, &str); 4] = [
    ("T_ID", "sim-client"),
    ("T_SECRET", "sim-secret"),
    ("MB_LOGIN", "sim@example.com"),
    ("MB_PASSWORD", "sim-password"),
];

#[tokio::test(flavor = "multi_thread")]
async fn jpy_is_delivered_with_its_currency_and_kwd_is_failed_with_the_reason() {
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&support::root().join("fixtures/truv/currencies")).unwrap(),
    );
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let yen = mibudge.seed_bank_account("Yen", "JPY");
    let dollars = mibudge.seed_bank_account("Dollars", "USD");
    let servers =
        [SimServer::start(truv.router(), 0).await.unwrap(), SimServer::start(mibudge.router(), 0).await.unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let extra =
        support::mibudge_sink(&servers[1].base_url(), &format!("\"jp-001\" = \"{yen}\"\n\"kw-001\" = \"{dollars}\"\n"));
    let config = support::write_config(dir.path(), Some(&servers[0].base_url()), None, None, &extra);
    let o = support::bankpipe_async(support::args(&["sync", "--config", config.to_str().unwrap()]), ENV.to_vec()).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "completed with failures: {stderr}");
    let rows = mibudge.transactions();
    let mut amounts: Vec<(&str, &str)> =
        rows.iter().map(|t| (t["amount"].as_str().unwrap(), t["amount_currency"].as_str().unwrap())).collect();
    amounts.sort();
    assert_eq!(amounts, [("-1200.00", "JPY"), ("-500.00", "JPY")], "both yen rows, in yen");
    assert_eq!(mibudge.ledger().len(), 2, "no KWD request was ever sent");

    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("state.db").display())).await.unwrap();
    let k1 = bankpipe_model::CanonicalId::for_transaction("truv", "kw-001", "k-1").to_string();
    let row = store.delivery("mibudge", &k1).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Failed);
    let reason = row.reason.unwrap();
    assert!(reason.contains("mibudge does not accept KWD") && reason.contains("JPY"), "{reason}");
}

/// A mibudge look-alike that logs in and lists currencies, then answers
/// every transaction POST with an HTML 500 and lists transactions with a
/// `next` link pointing at itself.
fn nonsense(posts: Arc<AtomicUsize>, listing: &'static str) -> Router {
    Router::new()
        .route("/api/token/", post(|| async { axum::Json(serde_json::json!({"access": "a.b.c"})) }))
        .route("/api/v1/currencies/", get(|| async { axum::Json(serde_json::json!([{"code": "USD"}])) }))
        .route(
            "/api/v1/bank-accounts/{id}/",
            get(|| async { axum::Json(serde_json::json!({"id": "acc", "currency": "USD"})) }),
        )
        .route(
            "/api/v1/transactions/",
            get(move || async move { ([("content-type", "application/json")], listing) }).post(move || {
                let posts = Arc::clone(&posts);
                async move {
                    posts.fetch_add(1, Ordering::Relaxed);
                    (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [("content-type", "text/html")],
                        "<html><body><h1>Server Error (500)</h1></body></html>",
                    )
                }
            }),
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_answering_nonsense_is_named_with_its_url_and_nothing_is_lost() {
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let truv_server = SimServer::start(truv.router(), 0).await.unwrap();
    for (listing, says) in [
        (r#"{"count": 1, "next": "/api/v1/transactions/?page=1", "previous": null, "results": []}"#, "repeats"),
        (r#"{"count": 1, "next": null, "results": [{"id": "x", "posted_d"#, "unreadable"),
        ("<html>maintenance</html>", "unreadable"),
        (
            r#"{"count": 1, "next": null, "results": [{"id": "x", "posted_date": "13/02/2024", "memo": null}]}"#,
            "posted_date",
        ),
    ] {
        let posts = Arc::new(AtomicUsize::new(0));
        let sink = SimServer::start(nonsense(Arc::clone(&posts), listing), 0).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let extra = support::mibudge_sink(&sink.base_url(), "\"chk-001\" = \"acc\"\n");
        let config = support::write_config(dir.path(), Some(&truv_server.base_url()), None, None, &extra);
        let o =
            support::bankpipe_async(support::args(&["sync", "--config", config.to_str().unwrap()]), ENV.to_vec()).await;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "completed with failures: {listing}: {stderr}");
        assert!(
            stderr.contains("mibudge:") && stderr.contains("/api/v1/transactions/?") && stderr.contains(says),
            "{listing}: the error names the sink, the URL and the problem: {stderr}"
        );
        assert_eq!(posts.load(Ordering::Relaxed), 1, "one POST, then no blind resend");
        // Nothing lost: the row whose outcome is unknown stays in flight for
        // the next run, with the request that was sent.
        let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("state.db").display())).await.unwrap();
        let flying = store.in_flight("mibudge", None, 10).await.unwrap();
        assert_eq!(flying.len(), 1, "{listing}");
        assert!(flying[0].request.as_deref().unwrap().contains("#bp"), "the stored request carries the marker");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_answered_by_an_html_500_every_time_ends_failed_with_the_reason_not_in_flight_forever() {
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let truv_server = SimServer::start(truv.router(), 0).await.unwrap();
    let posts = Arc::new(AtomicUsize::new(0));
    let empty = r#"{"count": 0, "next": null, "previous": null, "results": []}"#;
    let sink = SimServer::start(nonsense(Arc::clone(&posts), empty), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = support::mibudge_sink(&sink.base_url(), "\"chk-001\" = \"acc\"\n");
    let config = support::write_config(dir.path(), Some(&truv_server.base_url()), None, None, &extra);
    let o = support::bankpipe_async(support::args(&["sync", "--config", config.to_str().unwrap()]), ENV.to_vec()).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "completed with failures, never `ok`: {stderr}");
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("state.db").display())).await.unwrap();
    assert!(store.in_flight("mibudge", None, 10).await.unwrap().is_empty(), "nothing left in flight");
    let report = store.status(1).await.unwrap();
    let (_, reason, count) = &report.failures[0];
    assert!(reason.contains("HTTP 500") && reason.contains("6 times in a row"), "{reason}");
    let sends = posts.load(Ordering::Relaxed);
    assert_eq!(sends, *count as usize * 6, "each row sent 6 times, each time after a search by its marker");
    // A failed row is not sent again by later runs.
    support::bankpipe_async(support::args(&["sync", "--config", config.to_str().unwrap()]), ENV.to_vec()).await;
    assert_eq!(posts.load(Ordering::Relaxed), sends);
}

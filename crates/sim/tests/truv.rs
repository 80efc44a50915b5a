//! The Truv simulator over real loopback HTTP: several links, one platform.

use bankpipe_gen::GenConfig;
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::Value;

async fn get(base: &str, link: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/links/{link}/transactions/?page_size=1000"))
        .header("X-Access-Client-Id", "sim-client")
        .header("X-Access-Secret", "sim-secret")
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.expect("body")).expect("JSON"))
}

#[tokio::test]
async fn each_link_id_serves_its_own_data_and_an_unknown_one_is_a_404() {
    let gen = |seed, transactions| TruvData::generated(GenConfig { seed, transactions, ..GenConfig::default() });
    let (a, b) = (gen(11, 40), gen(12, 25));
    let want = |d: &TruvData| d.transactions.iter().map(|t| t["amount"].clone()).collect::<Vec<_>>();
    let (want_a, want_b) = (want(&a), want(&b));
    assert_ne!(want_a[..5], want_b[..5], "per-link seeds give distinct data");
    let sim = TruvSim::with_links(TruvConfig::default(), [("link-a".to_owned(), a), ("link-b".to_owned(), b)]);
    let server = SimServer::start(sim.router(), 0).await.expect("bind");
    let base = server.base_url();
    for (link, want) in [("link-a", &want_a), ("link-b", &want_b)] {
        let (status, page) = get(&base, link).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["count"].as_u64(), Some(want.len() as u64), "{link}");
        let mut got: Vec<Value> =
            page["transactions"].as_array().unwrap().iter().map(|t| t["amount"].clone()).collect();
        let mut want = want.clone();
        got.sort_by_key(Value::to_string);
        want.sort_by_key(Value::to_string);
        assert_eq!(got, want, "{link} serves its own transactions");
        assert!(page["next"].as_str().is_none_or(|n| n.contains(link)));
    }
    let (status, page) = get(&base, &TruvConfig::default().link_id).await;
    assert_eq!((status, page["error"]["code"].as_str()), (404, Some("not_found")), "only the listed links are served");
}

//! A world of many links and two API sinks for the scale-out test
//! (`tests/workers.rs`) and benchmark (`tests/benches/workers.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use bankpipe_gen::GenConfig;
use bankpipe_model::CanonicalId;
use bankpipe_sim::faults::Faults;
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use bankpipe_sinks::{marker, markers_in};

/// Credentials the world's config names.
pub const ENV: [(&str, &str); 5] = [
    ("T_ID", "sim-client"),
    ("T_SECRET", "sim-secret"),
    ("TP_PAT", "tp_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("MB_LOGIN", "sim@example.com"),
    ("MB_PASSWORD", "sim-password"),
];

const SINK_ACCOUNTS: usize = 8;

/// The memos of every row each sink holds: (Trupocket, mibudge).
pub fn memos(w: &World) -> (Vec<String>, Vec<String>) {
    let tp = w
        .trupocket
        .ledger()
        .iter()
        .flat_map(|t| t["categories"].as_array().unwrap().iter().map(|c| c["memo"].as_str().unwrap_or("").to_owned()))
        .collect();
    let mb = w.mibudge.transactions().iter().map(|t| t["memo"].as_str().unwrap_or("").to_owned()).collect();
    (tp, mb)
}

pub fn marker_counts<'a>(memos: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for memo in memos {
        for m in markers_in(memo) {
            *counts.entry(m.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Every marker of `expected` exactly once among `memos`, nothing else.
pub fn exactly_once(sink: &str, memos: &[String], expected: &BTreeMap<String, String>) {
    let counts = marker_counts(memos.iter().map(String::as_str));
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(doubled.is_empty(), "{sink}: doubled {doubled:?}");
    let missing: Vec<_> = expected.keys().filter(|m| !counts.contains_key(*m)).take(5).collect();
    assert!(missing.is_empty(), "{sink}: missing, e.g. {missing:?}");
    assert_eq!(counts.len(), expected.len(), "{sink}: nothing unexpected");
    assert_eq!(memos.len(), expected.len(), "{sink}: one row per delivery");
}

/// Simulators, the expected markers and a config (see [`world`]).
pub struct World {
    pub servers: Vec<SimServer>,
    pub trupocket: std::sync::Arc<TrupocketSim>,
    pub mibudge: std::sync::Arc<MibudgeSim>,
    /// Marker → source transaction id of every deliverable row.
    pub expected: BTreeMap<String, String>,
    /// Distinct transactions the links serve (a pending row that posts
    /// under its own id counts once): the rows a complete fetch stores.
    pub stored: usize,
    pub dir: tempfile::TempDir,
    pub config: std::path::PathBuf,
}

/// The sizes of a [`world`].
pub struct Scale {
    /// Links of the template source `bank` (`bank.l0000`, …).
    pub links: usize,
    /// Transactions in all (spread over the links; at least 2 a link).
    pub transactions: u64,
    /// Latency of every simulator answer.
    pub latency: Duration,
    /// Trupocket's per-second limit.
    pub trupocket_per_second: u64,
    /// `sync.lease_secs`.
    pub lease_secs: u32,
}

/// `scale.links` links of generated data (2 accounts each), a Trupocket
/// household with a per-second limit and a mibudge server, each with 8
/// accounts the links' accounts map to; a PostgreSQL config in `schema`.
pub async fn world(url: &str, schema: &str, scale: &Scale) -> World {
    let (links_n, latency, limit) = (scale.links, scale.latency, scale.trupocket_per_second);
    let per_link = (scale.transactions / links_n as u64).max(2);
    let links: Vec<(String, TruvData)> = (0..links_n)
        .map(|i| {
            let gen = GenConfig {
                accounts: 2,
                transactions: per_link,
                page_size: 100,
                seed: 1_000 + i as u64,
                ..GenConfig::default()
            };
            (format!("L{i:04}"), TruvData::generated(gen))
        })
        .collect();
    let mut expected = BTreeMap::new();
    let stored = links
        .iter()
        .map(|(_, data)| {
            data.transactions.iter().map(|t| t["id"].as_str().unwrap()).collect::<std::collections::BTreeSet<_>>().len()
        })
        .sum();
    for (i, (_, data)) in links.iter().enumerate() {
        for t in data.transactions.iter().filter(|t| t["status"] == "POSTED" && t["type"] != "MEMO") {
            let source = format!("bank.l{i:04}");
            let id =
                CanonicalId::for_transaction(&source, t["account_id"].as_str().unwrap(), t["id"].as_str().unwrap());
            expected.insert(marker(&id, 0), t["id"].as_str().unwrap().to_owned());
        }
    }
    let faults = Faults { latency, ..Faults::none() };
    let truv = TruvSim::with_links(TruvConfig { faults: faults.clone(), ..TruvConfig::default() }, links);
    let trupocket = TrupocketSim::new(TrupocketConfig {
        faults: faults.clone(),
        rate_limit: RateLimit { limit, window_secs: 1 },
        ..TrupocketConfig::default()
    });
    let household = trupocket.seed_household("Home");
    let mibudge = MibudgeSim::new(MibudgeConfig { faults, ..MibudgeConfig::default() });
    let tp: Vec<String> =
        (0..SINK_ACCOUNTS).map(|k| trupocket.seed_account(&household, "chkg", &format!("A{k}"))).collect();
    let mb: Vec<String> = (0..SINK_ACCOUNTS).map(|k| mibudge.seed_bank_account(&format!("A{k}"), "USD")).collect();
    let servers = vec![
        SimServer::start(truv.router(), 0).await.unwrap(),
        SimServer::start(trupocket.router(), 0).await.unwrap(),
        SimServer::start(mibudge.router(), 0).await.unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("link_id,name,sink,source_account,sink_account\n");
    for i in 0..links_n {
        for a in 0..2 {
            let k = (i * 2 + a) % SINK_ACCOUNTS;
            csv += &format!("L{i:04},l{i:04},trupocket,acct-{a:04},{}\n", tp[k]);
            csv += &format!("L{i:04},l{i:04},mibudge,acct-{a:04},{}\n", mb[k]);
        }
    }
    std::fs::write(dir.path().join("links.csv"), csv).unwrap();
    let text = format!(
        "[store]\ndatabase_url = \"{url}\"\nschema = \"{schema}\"\n[sync]\nlease_secs = {}\n\
         [[sources]]\nname = \"bank\"\nkind = \"truv\"\nbase_url = \"{}\"\nclient_id_env = \"T_ID\"\n\
         secret_env = \"T_SECRET\"\nlinks_file = \"links.csv\"\n\
         [[sinks]]\nname = \"trupocket\"\nkind = \"trupocket\"\nbase_url = \"{}/v1\"\ntoken_env = \"TP_PAT\"\n\
         household_id = \"{household}\"\ncreate_categories = true\n\
         [[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\n\
         password_env = \"MB_PASSWORD\"\n",
        scale.lease_secs,
        servers[0].base_url(),
        servers[1].base_url(),
        servers[2].base_url(),
    );
    let config = dir.path().join("bankpipe.toml");
    std::fs::write(&config, text).unwrap();
    World { servers, trupocket, mibudge, expected, stored, dir, config }
}

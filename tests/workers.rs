//! Scale-out (issue #13, DESIGN §7): several `bankpipe sync` processes on
//! one PostgreSQL database share a round's units; one is killed with
//! SIGKILL mid-run and another has its database sessions terminated
//! (`pg_terminate_backend`). Every deliverable row reaches each sink
//! exactly once, nothing is lost, Trupocket sees no 429, every surviving
//! worker exits 0 and a final run finds nothing to deliver.
//!
//! Scale: 200 links in CI (`BANKPIPE_WORKERS_TX` transactions in all,
//! default 2,000); the figure — 100,000 — is the same test with
//! `BANKPIPE_WORKERS_TX=100000`. PostgreSQL only (SQLite is one worker per
//! file): skipped with a notice when BANKPIPE_TEST_DATABASE_URL is unset.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bankpipe_gen::GenConfig;
use bankpipe_model::CanonicalId;
use bankpipe_sim::faults::Faults;
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use bankpipe_sinks::{marker, markers_in};
use serde_json::Value;

const ENV: [(&str, &str); 5] = [
    ("T_ID", "sim-client"),
    ("T_SECRET", "sim-secret"),
    ("TP_PAT", "tp_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("MB_LOGIN", "sim@example.com"),
    ("MB_PASSWORD", "sim-password"),
];

const LINKS: usize = 200;
const SINK_ACCOUNTS: usize = 8;

fn marker_counts<'a>(memos: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for memo in memos {
        for m in markers_in(memo) {
            *counts.entry(m.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Every marker of `expected` exactly once among `memos`, nothing else.
fn exactly_once(sink: &str, memos: &[String], expected: &BTreeMap<String, String>) {
    let counts = marker_counts(memos.iter().map(String::as_str));
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(doubled.is_empty(), "{sink}: doubled {doubled:?}");
    let missing: Vec<_> = expected.keys().filter(|m| !counts.contains_key(*m)).take(5).collect();
    assert!(missing.is_empty(), "{sink}: missing, e.g. {missing:?}");
    assert_eq!(counts.len(), expected.len(), "{sink}: nothing unexpected");
    assert_eq!(memos.len(), expected.len(), "{sink}: one row per delivery");
}

struct World {
    _servers: Vec<SimServer>,
    trupocket: std::sync::Arc<TrupocketSim>,
    mibudge: std::sync::Arc<MibudgeSim>,
    expected: BTreeMap<String, String>,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

/// 200 links of generated data, a Trupocket household with a per-second
/// limit and a mibudge server, each with 8 accounts the links map to; a
/// config with `lease_secs` (short, so a lost lease is retaken quickly).
async fn world(url: String, schema: String, total: u64, latency: Duration, limit: u64) -> World {
    let per_link = (total / LINKS as u64).max(2);
    let links: Vec<(String, TruvData)> = (0..LINKS)
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
    for i in 0..LINKS {
        for a in 0..2 {
            let k = (i * 2 + a) % SINK_ACCOUNTS;
            csv += &format!("L{i:04},l{i:04},trupocket,acct-{a:04},{}\n", tp[k]);
            csv += &format!("L{i:04},l{i:04},mibudge,acct-{a:04},{}\n", mb[k]);
        }
    }
    std::fs::write(dir.path().join("links.csv"), csv).unwrap();
    let text = format!(
        "[store]\ndatabase_url = \"{url}\"\nschema = \"{schema}\"\n[sync]\nlease_secs = 6\n\
         [[sources]]\nname = \"bank\"\nkind = \"truv\"\nbase_url = \"{}\"\nclient_id_env = \"T_ID\"\n\
         secret_env = \"T_SECRET\"\nlinks_file = \"links.csv\"\n\
         [[sinks]]\nname = \"trupocket\"\nkind = \"trupocket\"\nbase_url = \"{}/v1\"\ntoken_env = \"TP_PAT\"\n\
         household_id = \"{household}\"\ncreate_categories = true\n\
         [[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\n\
         password_env = \"MB_PASSWORD\"\n",
        servers[0].base_url(),
        servers[1].base_url(),
        servers[2].base_url(),
    );
    let config = dir.path().join("bankpipe.toml");
    std::fs::write(&config, text).unwrap();
    World { _servers: servers, trupocket, mibudge, expected, _dir: dir, config }
}

fn worker(config: &std::path::Path, log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bankpipe"))
        .args(["sync", "--config", config.to_str().unwrap(), "--json"])
        .envs(ENV)
        .current_dir(support::root())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Terminate every PostgreSQL session of process `pid` (its pool reconnects).
async fn cut_connections(url: &str, pid: u32) -> u64 {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await.unwrap();
    let cut: Vec<(bool,)> =
        sqlx::query_as("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(format!("bankpipe {pid}"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
    cut.len() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn four_workers_deliver_exactly_once_through_a_kill_and_a_cut_connection() {
    let Some((url, schema)) = support::postgres("four_workers", "t_workers") else { return };
    let total: u64 = std::env::var("BANKPIPE_WORKERS_TX").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let w = world(url.clone(), schema, total, Duration::from_millis(2), 400).await;
    assert!(w.expected.len() as u64 >= total / 2, "enough deliverable rows: {}", w.expected.len());
    let logs = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut children: Vec<Child> =
        (0..4).map(|i| worker(&w.config, &logs.path().join(format!("worker{i}.log")))).collect();

    // Mid-run: kill worker 0 (SIGKILL) once it has work in hand; cut worker 1's sessions twice.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(children[0].try_wait().unwrap().is_none(), "worker 0 still running when killed");
    children[0].kill().unwrap();
    children[0].wait().unwrap();
    let mut cut = 0;
    for _ in 0..2 {
        cut += cut_connections(&url, children[1].id()).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(cut > 0, "worker 1 had database sessions to cut");

    let mut outputs = Vec::new();
    for (i, child) in children.into_iter().enumerate().skip(1) {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        let log = std::fs::read_to_string(logs.path().join(format!("worker{i}.log"))).unwrap();
        assert_eq!(out.status.code(), Some(0), "worker {i} exits 0:\n{log}");
        outputs.push(serde_json::from_slice::<Value>(&out.stdout).unwrap());
    }
    let elapsed = started.elapsed();
    let delivered: u64 = outputs
        .iter()
        .flat_map(|o| o["deliveries"].as_array().cloned().unwrap_or_default())
        .map(|d| d["delivered"].as_u64().unwrap_or(0))
        .sum();
    eprintln!(
        "workers: {} deliverable rows × 2 sinks in {elapsed:.1?}; the 3 surviving workers delivered {delivered} \
         (the rest by worker 0 before the kill); {cut} sessions cut",
        w.expected.len()
    );
    assert!(
        outputs.iter().filter(|o| o["sources"].as_array().is_some_and(|s| !s.is_empty())).count() >= 2,
        "the fetch units were shared"
    );

    // A final run (one worker) may finish what the killed worker left in
    // flight; after it, nothing is left to do.
    let o = support::bankpipe_async(
        support::args(&["sync", "--config", w.config.to_str().unwrap(), "--json"]),
        ENV.to_vec(),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = support::bankpipe_async(
        support::args(&["sync", "--config", w.config.to_str().unwrap(), "--json"]),
        ENV.to_vec(),
    )
    .await;
    let last = support::json_out(&o);
    assert!(
        last["deliveries"].as_array().unwrap().iter().all(|d| d["delivered"] == 0 && d["queued"] == 0),
        "a final run finds nothing to do: {last}"
    );

    let memos: Vec<String> = w
        .trupocket
        .ledger()
        .iter()
        .flat_map(|t| t["categories"].as_array().unwrap().iter().map(|c| c["memo"].as_str().unwrap_or("").to_owned()))
        .collect();
    exactly_once("trupocket", &memos, &w.expected);
    let memos: Vec<String> =
        w.mibudge.transactions().iter().map(|t| t["memo"].as_str().unwrap_or("").to_owned()).collect();
    exactly_once("mibudge", &memos, &w.expected);
    assert_eq!(w.trupocket.rejected_429(), 0, "no 429 from Trupocket");
}

/// Two workers with different sink mappings on one database: the second is
/// refused with exit 2 and a message naming the other worker.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_another_configuration_is_refused() {
    let Some((url, schema)) = support::postgres("mixed_configs", "t_mixed") else { return };
    // Latency keeps the first worker busy while the second starts.
    let w = world(url, schema, 400, Duration::from_millis(40), 1_000).await;
    let logs = tempfile::tempdir().unwrap();
    let mut first = worker(&w.config, &logs.path().join("first.log"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let other = w.config.with_file_name("other.toml");
    let text =
        std::fs::read_to_string(&w.config).unwrap().replace("create_categories = true", "create_categories = false");
    std::fs::write(&other, text).unwrap();
    let o = support::bankpipe_async(support::args(&["sync", "--config", other.to_str().unwrap()]), ENV.to_vec()).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "refused as a configuration problem: {err}");
    assert!(err.contains("another configuration") && err.contains("pid"), "{err}");
    assert!(first.try_wait().unwrap().is_none(), "the first worker was still running");
    let status = tokio::task::spawn_blocking(move || first.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
}

//! Delivery figures against the simulators over loopback HTTP:
//!
//! - Trupocket advertising DELIVERY_LIMIT calls per second (default 50):
//!   delivered transactions per second as a share of the limit, 429s, and
//!   API calls per delivered transaction (target: one POST each plus O(1)
//!   metadata calls per run);
//! - mibudge (no rate headers): calls per delivered transaction, with one
//!   category mapped to a budget (a splits call only for those rows).
//!
//! `cargo bench -p bankpipe-sinks --bench delivery` (DELIVERY_N, default 500).

use bankpipe_store::prelude::*;
use std::time::Instant;

use bankpipe_config::{CategoriesConfig, Config, SinkConfig};
use bankpipe_enrich::Categorizer;
use bankpipe_gen::{GenConfig, TruvGenerator};
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::SimServer;
use bankpipe_sinks::mibudge::MibudgeSink;
use bankpipe_sinks::trupocket::TrupocketSink;
use bankpipe_sources::{truv, NormalizeContext};
use bankpipe_store::{RunKind, SqliteStore};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `[[sinks]]` entry of `kind` (`trupocket` or `mibudge`) at `base`, `accounts` mapped, as a file gives it, its credentials
/// read from the environment.
fn sink(kind: &str, base: String, accounts: &[(String, String)], household: Option<String>) -> SinkConfig {
    let own = match household {
        Some(h) => format!("token_env = \"BENCH_TP\"\nhousehold_id = \"{h}\"\ncreate_categories = true\n"),
        None => "login_env = \"BENCH_MB_LOGIN\"\npassword_env = \"BENCH_MB_PASSWORD\"\n".to_owned(),
    };
    let mapped: String = accounts.iter().map(|(from, to)| format!("\"{from}\" = \"{to}\"\n")).collect();
    let text = format!(
        "[[sinks]]\nname = \"{kind}\"\nkind = \"{kind}\"\nbase_url = \"{base}\"\nmax_wait_secs = 5\n{own}[sinks.accounts]\n{mapped}"
    );
    let mut sink = Config::parse(&text, std::path::Path::new("sinks.toml")).expect("a valid sink").sinks.remove(0);
    sink.resolve_secrets().expect("the credentials are set");
    sink
}

/// The Trupocket keys of a `kind = "trupocket"` entry.
fn tp_keys(config: &SinkConfig) -> &bankpipe_config::TrupocketConfig {
    config.trupocket().expect("a trupocket sink")
}

/// The mibudge keys of a `kind = "mibudge"` entry.
fn mb_keys(config: &SinkConfig) -> &bankpipe_config::MibudgeConfig {
    config.mibudge().expect("a mibudge sink")
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env("DELIVERY_N", 500);
    let limit = env("DELIVERY_LIMIT", 50);
    std::env::set_var("BENCH_TP", TrupocketConfig::default().token);
    std::env::set_var("BENCH_MB_LOGIN", "sim@example.com");
    std::env::set_var("BENCH_MB_PASSWORD", "sim-password");

    // One USD account's worth of generated, categorized transactions in a fresh store.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await.unwrap();
    let mut categories = CategoriesConfig::default();
    categories.mibudge.insert("Food & Dining/Groceries".into(), "Groceries".into());
    let categorizer = Categorizer::new(&[], &categories, None).unwrap();
    let ctx = NormalizeContext::new("truv");
    let run = store.begin_run(RunKind::Sync).await.unwrap();
    let cfg = GenConfig { accounts: 1, transactions: n, page_size: 1000, seed: 9, ..GenConfig::default() };
    for page in TruvGenerator::new(cfg) {
        let (mut p, _) = truv::normalize_page(&ctx, "bench", page.as_bytes()).unwrap();
        for tx in &mut p.transactions {
            categorizer.categorize(tx);
        }
        store.write_page(run, &p.accounts, &p.transactions, &[]).await.unwrap();
    }

    // Trupocket at `limit` calls per second.
    let tp = TrupocketSim::new(TrupocketConfig {
        rate_limit: RateLimit { limit, window_secs: 1 },
        ..TrupocketConfig::default()
    });
    let household = tp.seed_household("Home");
    let account = tp.seed_account(&household, "chkg", "Checking");
    let server = SimServer::start(tp.router(), 0).await.unwrap();
    let config =
        sink("trupocket", format!("{}/v1", server.base_url()), &[("acct-0000".into(), account)], Some(household));
    let client = HttpClient::new(Policy::default()).unwrap();
    let accounts = store.accounts().await.unwrap();
    let mut s = TrupocketSink::new(&config, tp_keys(&config), &categorizer.sink_maps, &store, accounts).unwrap();
    let unix = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (started, first_window) = (Instant::now(), unix());
    let report = bankpipe_sinks::deliver(&store, &mut s, &client, false).await.unwrap();
    let (secs, windows) = (started.elapsed().as_secs_f64(), unix() - first_window + 1);
    let log = tp.request_log();
    let posts = log.iter().filter(|l| l.starts_with("POST") && l.contains("/transactions")).count();
    let other = log.len() - posts;
    println!(
        "trupocket: {} delivered in {secs:.1} s; {} calls across {windows} one-second windows = {:.1} per window against an \
         advertised {limit} ({:.1}% of the limit, first and last windows partial); 429s: {}; calls per delivered transaction: \
         {:.3} ({posts} transaction POSTs + {other} metadata calls: category list and creations)",
        report.delivered,
        log.len(),
        log.len() as f64 / windows as f64,
        log.len() as f64 / windows as f64 / limit as f64 * 100.0,
        tp.rejected_429(),
        log.len() as f64 / report.delivered.max(1) as f64
    );

    // mibudge, with the Groceries budget mapped.
    let mb = MibudgeSim::new(MibudgeConfig::default());
    let bank = mb.seed_bank_account("Checking", "USD");
    mb.seed_budget(&bank, "Groceries");
    let server = SimServer::start(mb.router(), 0).await.unwrap();
    let config = sink("mibudge", server.base_url(), &[("acct-0000".into(), bank)], None);
    let mut s = MibudgeSink::new(&config, mb_keys(&config), &categorizer.sink_maps, chrono_tz::UTC).unwrap();
    let started = Instant::now();
    let report = bankpipe_sinks::deliver(&store, &mut s, &client, false).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "mibudge: {} delivered in {secs:.1} s; {} requests = {:.3} per delivered transaction ({} logins, {} budget splits for the Groceries rows, 1 mark-imported)",
        report.delivered,
        mb.requests(),
        mb.requests() as f64 / report.delivered.max(1) as f64,
        mb.logins(),
        mb.split_calls()
    );
}

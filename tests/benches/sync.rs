//! End-to-end figures of the scheduled and one-off jobs, against the Truv
//! simulator over loopback HTTP, with the release binary:
//!
//! 1. incremental sync of a store holding SYNC_BENCH_N (default 100,000)
//!    transactions when 1,000 new ones arrived: wall time and source requests;
//! 2. backfill of BACKFILL_BENCH_N (default 1,000,000; 0 skips it)
//!    transactions: wall time and peak RSS of the bankpipe process.
//!
//! `cargo bench --bench sync`

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bankpipe_gen::GenConfig;
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::Value;

const ENV: [(&str, &str); 2] = [("T_ID", "sim-client"), ("T_SECRET", "sim-secret")];

fn config(dir: &Path, base: &str) -> String {
    let path = dir.join("bankpipe.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\ndatabase_url = \"sqlite://{}\"\n[[sources]]\nname = \"truv\"\nkind = \"truv\"\nbase_url = \"{base}\"\n\
             link_id = \"24d7e80942ce4ad58a93f70ce4115f5c\"\nclient_id_env = \"T_ID\"\nsecret_env = \"T_SECRET\"\n",
            dir.join("state.db").display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Run the binary under /usr/bin/time when available: (wall s, peak RSS KiB).
fn timed(args: &[&str]) -> (f64, Option<u64>) {
    let exe = env!("CARGO_BIN_EXE_bankpipe");
    let started = Instant::now();
    let time = Path::new("/usr/bin/time").exists();
    let out = if time {
        Command::new("/usr/bin/time").arg("-f").arg("PEAK_RSS_KB=%M").arg(exe).args(args).envs(ENV).output().unwrap()
    } else {
        Command::new(exe).args(args).envs(ENV).output().unwrap()
    };
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rss = stderr.lines().find_map(|l| l.strip_prefix("PEAK_RSS_KB=")).and_then(|v| v.trim().parse().ok());
    (wall, rss)
}

fn env_n(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // 1. Incremental sync.
    let n = env_n("SYNC_BENCH_N", 100_000);
    let data = TruvData::generated(GenConfig {
        accounts: 50,
        transactions: n,
        page_size: 1000,
        seed: 21,
        ..GenConfig::default()
    });
    let last = data.transactions.iter().filter_map(|t| t["transacted_at"].as_str()).max().unwrap().to_owned();
    let sim = TruvSim::new(TruvConfig::default(), data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url());
    let (first, rss) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || timed(&["sync", "--config", &cfg])
    })
    .await
    .unwrap();
    println!(
        "sync: first run over {n} records: {first:.2} s wall, peak RSS {} KiB, {} requests",
        rss.unwrap_or(0),
        sim.requests()
    );
    let start =
        chrono::DateTime::parse_from_rfc3339(&last).map(|t| t.date_naive() + chrono::Days::new(1)).unwrap_or_default();
    let new = TruvData::generated(GenConfig { accounts: 50, transactions: 1000, page_size: 1000, seed: 22, start });
    sim.push_transactions(new.transactions.into_iter().map(|mut t: Value| {
        t["id"] = Value::String(format!("new-{}", t["id"].as_str().unwrap()));
        t
    }));
    let before = sim.requests();
    let (wall, rss) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || timed(&["sync", "--config", &cfg])
    })
    .await
    .unwrap();
    println!(
        "sync: incremental run, store of {n} + 1,000 new (14-day overlap): {wall:.2} s wall, {} source requests, peak RSS {} KiB",
        sim.requests() - before,
        rss.unwrap_or(0)
    );
    drop(server);

    // 2. Backfill.
    let n = env_n("BACKFILL_BENCH_N", 1_000_000);
    if n == 0 {
        return;
    }
    let data = TruvData::generated(GenConfig {
        accounts: 200,
        transactions: n,
        page_size: 1000,
        seed: 23,
        ..GenConfig::default()
    });
    let last = data.transactions.iter().filter_map(|t| t["transacted_at"].as_str()).max().unwrap()[..10].to_owned();
    let sim = TruvSim::new(TruvConfig::default(), data);
    let server = SimServer::start(sim.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url());
    let to = last.clone();
    let (wall, rss) = tokio::task::spawn_blocking(move || {
        timed(&["backfill", "--config", &cfg, "--from", "2024-01-01", "--to", &to])
    })
    .await
    .unwrap();
    println!(
        "backfill: {n} records, 2024-01-01..{last} in monthly windows: {wall:.1} s wall ({:.0} records/s), peak RSS {} KiB, {} requests",
        n as f64 / wall,
        rss.unwrap_or(0),
        sim.requests()
    );
}

//! Scale-out figures (issue #13), with the release binary against loopback
//! simulators and PostgreSQL (`BANKPIPE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`):
//!
//! 1. wall time of one sync round done by 1, 2 and 4 worker processes on
//!    the same I/O-bound work — WORKERS_BENCH_LINKS links (default 40),
//!    WORKERS_BENCH_TX transactions (default 400), every simulator answer
//!    delayed WORKERS_BENCH_LATENCY_MS (default 20 ms) — and the speedup;
//! 2. the delivery rate of 4 workers against Trupocket's advertised
//!    per-second limit (WORKERS_BENCH_LIMIT, default 20/s): requests
//!    accepted per second over the delivery, and 429s.
//!
//! Each run is checked: every deliverable row in each sink exactly once.
//!
//! `cargo bench --bench workers`

#[path = "../support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::scale::{exactly_once, memos, world, Scale, ENV};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Start `n` workers at once on a fresh world; wall seconds until all exit 0.
async fn round(url: &str, scale: &Scale, n: usize) -> (f64, support::scale::World) {
    let schema = format!("bench_workers_{n}_{}", fastrand::u64(..));
    let w = world(url, &schema, scale).await;
    let started = Instant::now();
    let logs: Vec<_> = (0..n).map(|i| w.dir.path().join(format!("worker{i}.log"))).collect();
    let children: Vec<_> = logs
        .iter()
        .map(|log| {
            Command::new(env!("CARGO_BIN_EXE_bankpipe"))
                .args(["sync", "--config", w.config.to_str().unwrap()])
                .envs(ENV)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    for (mut c, log) in children.into_iter().zip(&logs) {
        let status = tokio::task::spawn_blocking(move || c.wait().unwrap()).await.unwrap();
        assert!(status.success(), "a worker failed: {status}\n{}", std::fs::read_to_string(log).unwrap_or_default());
    }
    let wall = started.elapsed().as_secs_f64();
    let (tp, mb) = memos(&w);
    exactly_once("trupocket", &tp, &w.expected);
    exactly_once("mibudge", &mb, &w.expected);
    (wall, w)
}

fn main() {
    let url = std::env::var("BANKPIPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let links = env_or("WORKERS_BENCH_LINKS", 40usize);
        let transactions = env_or("WORKERS_BENCH_TX", 400u64);
        let latency = Duration::from_millis(env_or("WORKERS_BENCH_LATENCY_MS", 20u64));
        let scale = Scale { links, transactions, latency, trupocket_per_second: 10_000, lease_secs: 60 };
        let mut one = None;
        for n in [1, 2, 4] {
            let (wall, w) = round(&url, &scale, n).await;
            let base = *one.get_or_insert(wall);
            println!(
                "workers/{n}: {wall:.2} s for {links} links, {} deliverable rows x 2 sinks, {} ms latency; speedup {:.2}x",
                w.expected.len(),
                latency.as_millis(),
                base / wall
            );
        }

        let limit = env_or("WORKERS_BENCH_LIMIT", 20u64);
        let scale = Scale { trupocket_per_second: limit, latency: Duration::from_millis(2), ..scale };
        let (wall, w) = round(&url, &scale, 4).await;
        let accepted = w.trupocket.requests() - w.trupocket.rejected_429();
        println!(
            "workers/rate: 4 workers, Trupocket limit {limit}/s: {accepted} requests accepted in {wall:.1} s \
             ({:.1}/s, {:.0}% of the limit over the whole run, fetch and queueing included), {} 429s",
            accepted as f64 / wall,
            100.0 * accepted as f64 / wall / limit as f64,
            w.trupocket.rejected_429()
        );
    });
}

//! Scale-out figures (issue #13), with the release binary against loopback
//! simulators and PostgreSQL (`BANKPIPE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`):
//!
//! 1. wall time of one sync round done by 1, 2 and 4 worker processes on
//!    the same I/O-bound work — WORKERS_BENCH_LINKS links (default 40),
//!    WORKERS_BENCH_TX transactions (default 400), every simulator answer
//!    delayed WORKERS_BENCH_LATENCY_MS (default 20 ms) — and the speedup;
//! 2. the delivery rate of 4 workers against Trupocket's advertised
//!    per-second limit (WORKERS_BENCH_LIMIT, default 20/s, over
//!    WORKERS_BENCH_RATE_TX transactions, default 1,000): requests accepted
//!    in each whole rate window of the delivery stretch (from the window
//!    after the first row reached Trupocket to the window before the last
//!    did) against the limit, over the whole run, and 429s.
//!
//! Each run is checked: every deliverable row in each sink exactly once.
//!
//! `cargo bench --bench workers`

#[path = "../support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::scale::{exactly_once, memos, world, Scale, ENV};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The first and last Unix second in which Trupocket's ledger grew.
type Stretch = Option<(u64, u64)>;

/// Start `n` workers at once on a fresh world; wall seconds until all exit
/// 0, and the stretch of seconds in which rows reached Trupocket.
async fn round(url: &str, scale: &Scale, n: usize) -> (f64, support::scale::World, Stretch) {
    let schema = format!("bench_workers_{n}_{}", fastrand::u64(..));
    let w = world(url, &schema, scale).await;
    let done = Arc::new(AtomicBool::new(false));
    let watch = {
        let (sim, done) = (Arc::clone(&w.trupocket), Arc::clone(&done));
        tokio::spawn(async move {
            let (mut rows, mut stretch): (usize, Stretch) = (0, None);
            while !done.load(Ordering::Relaxed) {
                let now = sim.ledger().len();
                if now > rows {
                    rows = now;
                    let second = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
                    stretch = Some((stretch.map_or(second, |s| s.0), second));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stretch
        })
    };
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
    done.store(true, Ordering::Relaxed);
    let stretch = watch.await.unwrap();
    let (tp, mb) = memos(&w);
    exactly_once("trupocket", &tp, &w.expected);
    exactly_once("mibudge", &mb, &w.expected);
    (wall, w, stretch)
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
            let (wall, w, _) = round(&url, &scale, n).await;
            let base = *one.get_or_insert(wall);
            println!(
                "workers/{n}: {wall:.2} s for {links} links, {} deliverable rows x 2 sinks, {} ms latency; speedup {:.2}x",
                w.expected.len(),
                latency.as_millis(),
                base / wall
            );
        }

        let limit = env_or("WORKERS_BENCH_LIMIT", 20u64);
        let transactions = env_or("WORKERS_BENCH_RATE_TX", 1_000u64);
        let scale = Scale { trupocket_per_second: limit, latency: Duration::from_millis(2), transactions, ..scale };
        let (wall, w, stretch) = round(&url, &scale, 4).await;
        let accepted = w.trupocket.requests() - w.trupocket.rejected_429();
        let (first, last) = stretch.expect("rows reached Trupocket");
        // Whole windows only: the first and last are partly outside the
        // delivery (window length 1 s, indexed by Unix second).
        let windows = w.trupocket.accepted_per_window();
        let inner: Vec<u64> = (first + 1..last).map(|s| windows.get(&s).copied().unwrap_or(0)).collect();
        let in_delivery: u64 = inner.iter().sum();
        println!(
            "workers/rate: 4 workers, Trupocket limit {limit}/s, {} rows: delivery stretch {} whole windows, \
             {in_delivery} requests accepted = {:.1}/s, {:.1}% of the limit (lowest window {}); whole run {accepted} \
             requests in {wall:.1} s = {:.1}/s, fetch and queueing included; {} 429s",
            w.expected.len(),
            inner.len(),
            in_delivery as f64 / inner.len().max(1) as f64,
            100.0 * in_delivery as f64 / (inner.len().max(1) as u64 * limit) as f64,
            inner.iter().min().copied().unwrap_or(0),
            accepted as f64 / wall,
            w.trupocket.rejected_429()
        );
    });
}

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

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::scale::{exactly_once, memos, world, Scale, ENV};

fn scale(transactions: u64, latency: Duration, trupocket_per_second: u64) -> Scale {
    Scale { links: 200, transactions, latency, trupocket_per_second, lease_secs: 6 }
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
    let w = world(&url, &schema, &scale(total, Duration::from_millis(2), 400)).await;
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

    let (tp, mb) = memos(&w);
    exactly_once("trupocket", &tp, &w.expected);
    exactly_once("mibudge", &mb, &w.expected);
    assert_eq!(w.trupocket.rejected_429(), 0, "no 429 from Trupocket");
}

/// Two workers with different sink mappings on one database: the second is
/// refused with exit 2 and a message naming the other worker.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_another_configuration_is_refused() {
    let Some((url, schema)) = support::postgres("mixed_configs", "t_mixed") else { return };
    // Latency keeps the first worker busy while the second starts.
    let w = world(&url, &schema, &scale(400, Duration::from_millis(40), 1_000)).await;
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

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

/// The database clock, Unix milliseconds (the clock leases use).
async fn db_now_ms(url: &str) -> i64 {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// The worker id and the delivery unit that process `pid` holds, if any.
async fn held_delivery_unit(url: &str, schema: &str, pid: u32) -> Option<(String, String)> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await.unwrap();
    sqlx::query_as(&format!(
        "SELECT w.id, u.unit FROM \"{schema}\".workers w JOIN \"{schema}\".work_units u ON u.owner = w.id \
         WHERE w.pid = $1 AND u.unit LIKE 'deliver:%' AND u.done_ms IS NULL"
    ))
    .bind(i64::from(pid))
    .fetch_optional(&mut conn)
    .await
    .unwrap()
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

/// A worker frozen (SIGSTOP) in the middle of its deliveries for longer than
/// its lease: the other worker takes its unit over when the lease expires
/// and finishes it; woken up (SIGCONT), the frozen worker finds its local
/// deadline passed, drops the unit without sending or recording anything,
/// and exits 0. Every row is in each sink exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_frozen_past_its_lease_commits_nothing_stale() {
    let Some((url, schema)) = support::postgres("frozen_worker", "t_frozen") else { return };
    let lease_secs = 3;
    let w = world(
        &url,
        &schema,
        &Scale {
            links: 20,
            transactions: 600,
            latency: Duration::from_millis(20),
            trupocket_per_second: 100,
            lease_secs,
        },
    )
    .await;
    let logs = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..2).map(|i| worker(&w.config, &logs.path().join(format!("worker{i}.log")))).collect();

    // Freeze worker 0 while it holds a delivery unit (checked frozen).
    let deadline = Instant::now() + Duration::from_secs(120);
    while w.trupocket.ledger().len() < w.expected.len() / 10 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signal = |sig: &str, pid: u32| {
        let ok = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig} {pid}");
    };
    let frozen = children[0].id();
    let (owner, unit) = loop {
        assert!(Instant::now() < deadline, "worker 0 never held a delivery unit");
        signal("-STOP", frozen);
        if let Some(held) = held_delivery_unit(&url, &schema, frozen).await {
            break held;
        }
        signal("-CONT", frozen);
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let frozen_at = db_now_ms(&url).await;
    let rows_at_freeze = w.trupocket.ledger().len() + w.mibudge.transactions().len();
    // Three leases: the other worker takes the unit over meanwhile.
    tokio::time::sleep(Duration::from_secs(3 * u64::from(lease_secs))).await;
    let rows_while_frozen = w.trupocket.ledger().len() + w.mibudge.transactions().len();
    signal("-CONT", frozen);

    for (i, child) in children.into_iter().enumerate() {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        let log = std::fs::read_to_string(logs.path().join(format!("worker{i}.log"))).unwrap();
        assert_eq!(out.status.code(), Some(0), "worker {i} exits 0:\n{log}");
        if i == 0 {
            assert!(log.contains("lease lost"), "the frozen worker found its lease gone:\n{log}");
        }
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let (finisher, claimed, done): (Option<String>, Option<i64>, Option<i64>) = sqlx::query_as(&format!(
        "SELECT owner, claimed_ms, done_ms FROM \"{schema}\".work_units WHERE unit = $1 ORDER BY round_id DESC LIMIT 1"
    ))
    .bind(&unit)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(done.is_some(), "unit {unit} was finished");
    // Not under the lease held when frozen: claimed anew after the freeze
    // (by the other worker, or by this one once awake).
    assert!(
        claimed.is_some_and(|c| c > frozen_at),
        "unit {unit} (held by {owner} when frozen) was finished under a lease claimed after the freeze, by {finisher:?}"
    );
    assert!(rows_while_frozen > rows_at_freeze, "the other worker went on delivering");
    let (tp, mb) = memos(&w);
    exactly_once("trupocket", &tp, &w.expected);
    exactly_once("mibudge", &mb, &w.expected);
    assert_eq!(w.trupocket.rejected_429(), 0, "no 429 from Trupocket");
}

/// Backfill workers share the windows (DESIGN §7): three `bankpipe
/// backfill` processes with one range on one database, one killed with
/// SIGKILL mid-run. The survivors exit 0 having both fetched windows, every
/// transaction is stored once, and a rerun finds every window checkpointed.
#[tokio::test(flavor = "multi_thread")]
async fn backfill_workers_share_the_windows_through_a_kill() {
    let Some((url, schema)) = support::postgres("backfill_workers", "t_bfw") else { return };
    let w = world(
        &url,
        &schema,
        &Scale {
            links: 20,
            transactions: 2_000,
            latency: Duration::from_millis(20),
            trupocket_per_second: 100,
            lease_secs: 6,
        },
    )
    .await;
    let cmd = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bankpipe"));
        c.args(["backfill", "--config", w.config.to_str().unwrap(), "--from", "2024-01-01", "--to", "2024-02-29"])
            .args(["--window-days", "5"])
            .args(if json { &["--json"][..] } else { &[][..] })
            .envs(ENV)
            .current_dir(support::root());
        c
    };
    let logs = tempfile::tempdir().unwrap();
    let mut children: Vec<Child> = (0..3)
        .map(|i| {
            cmd(true)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(logs.path().join(format!("backfill{i}.log"))).unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(children[0].try_wait().unwrap().is_none(), "worker 0 still running when killed");
    children[0].kill().unwrap();
    children[0].wait().unwrap();
    for (i, child) in children.into_iter().enumerate().skip(1) {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        let log = std::fs::read_to_string(logs.path().join(format!("backfill{i}.log"))).unwrap();
        assert_eq!(out.status.code(), Some(0), "worker {i} exits 0:\n{log}");
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let pages: u64 = summary["sources"].as_array().unwrap().iter().map(|s| s["pages"].as_u64().unwrap_or(0)).sum();
        assert!(pages > 0, "worker {i} fetched windows too: {summary}");
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let (rows, ids): (i64, i64) = sqlx::query_as(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT (source, source_account_id, source_transaction_id)) FROM \"{schema}\".transactions"
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((rows, ids), (w.stored as i64, w.stored as i64), "every transaction stored once");
    let mut rerun = cmd(true);
    let out = tokio::task::spawn_blocking(move || rerun.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pages: u64 = again["sources"].as_array().unwrap().iter().map(|s| s["pages"].as_u64().unwrap_or(0)).sum();
    assert_eq!(pages, 0, "every window is checkpointed: {again}");
}

//! Store upsert throughput: generated Truv transactions written in pages of
//! 1,000 (one database transaction per page), then written again (the
//! idempotent re-read path); then, into a fresh database, 8 pages per
//! transaction (`write_pages`, as ingest batches the pages waiting), and
//! into another as a first load (every index deferred, the id's too, then built:
//! SQLite only). On SQLite and — when BANKPIPE_TEST_DATABASE_URL is set —
//! PostgreSQL.
//!
//! `cargo bench -p bankpipe-store --bench upsert` (UPSERT_N, default 100000).

use std::time::Instant;

use bankpipe_gen::{GenConfig, TruvGenerator};
use bankpipe_model::Transaction;
use bankpipe_sources::{truv, NormalizeContext};
use bankpipe_store::{PageWrite, PgStore, RunKind, SqliteStore, Store};

fn transactions(n: u64) -> Vec<Vec<Transaction>> {
    let ctx = NormalizeContext::new("truv");
    let cfg = GenConfig { accounts: 50, transactions: n, page_size: 1000, seed: 5, ..GenConfig::default() };
    TruvGenerator::new(cfg)
        .map(|p| truv::normalize_page(&ctx, "bench", p.as_bytes()).expect("valid").0.transactions)
        .collect()
}

async fn measure<S: Store>(name: &str, store: &S, pages: &[Vec<Transaction>]) {
    let n: usize = pages.iter().map(Vec::len).sum();
    let run = store.begin_run(RunKind::Backfill).await.unwrap();
    for (label, expect_new) in [("first write", true), ("re-write, unchanged", false)] {
        let started = Instant::now();
        let mut inserted = 0;
        for page in pages {
            inserted += store.write_page(run, &[], page, &[]).await.unwrap().inserted;
        }
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(inserted > 0, expect_new);
        println!(
            "upsert {name:<10} {label:<20} {n} transactions in {secs:.2} s = {:.0} transactions/s",
            n as f64 / secs
        );
    }
}

/// First write of `pages` into the empty `store`, 8 pages per transaction;
/// with `deferred`, as a first load does it: every index (the id's too) is
/// deferred before and built after (included in the time).
async fn measure_batched<S: Store>(name: &str, store: &S, pages: &[Vec<Transaction>], deferred: bool) {
    let n: usize = pages.iter().map(Vec::len).sum();
    let run = store.begin_run(RunKind::Backfill).await.unwrap();
    let started = Instant::now();
    if deferred {
        assert!(store.defer_indexes().await.unwrap(), "an empty SQLite store defers");
    }
    let mut inserted = 0;
    for batch in pages.chunks(8) {
        let writes: Vec<PageWrite<'_>> =
            batch.iter().map(|p| PageWrite { accounts: &[], transactions: p, quarantine: &[] }).collect();
        inserted += store.write_pages(run, &writes).await.unwrap().inserted;
    }
    if deferred {
        assert!(store.build_deferred_indexes().await.unwrap() > 0);
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(inserted > 0);
    let label = if deferred { "first load, 8 pages/tx, indexes deferred" } else { "first write, 8 pages/tx" };
    println!("upsert {name:<10} {label:<20} {n} transactions in {secs:.2} s = {:.0} transactions/s", n as f64 / secs);
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = std::env::var("UPSERT_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let pages = transactions(n);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await.unwrap();
    measure("sqlite", &sqlite, &pages).await;
    let sqlite = SqliteStore::open(&format!("sqlite://{}", dir.path().join("batched.db").display())).await.unwrap();
    measure_batched("sqlite", &sqlite, &pages, false).await;
    let sqlite = SqliteStore::open(&format!("sqlite://{}", dir.path().join("deferred.db").display())).await.unwrap();
    measure_batched("sqlite", &sqlite, &pages, true).await;
    match std::env::var("BANKPIPE_TEST_DATABASE_URL") {
        Ok(url) => {
            let schema = format!("bench_{}", std::process::id());
            let pg = PgStore::open_in_schema(&url, Some(&schema)).await.unwrap();
            measure("postgres", &pg, &pages).await;
            let pg = PgStore::open_in_schema(&url, Some(&format!("{schema}_batched"))).await.unwrap();
            measure_batched("postgres", &pg, &pages, false).await;
            let db = sqlx::PgPool::connect(&url).await.unwrap();
            for s in [schema.clone(), format!("{schema}_batched")] {
                sqlx::query(&format!("DROP SCHEMA {s} CASCADE")).execute(&db).await.unwrap();
            }
        }
        Err(_) => println!("upsert postgres: skipped (BANKPIPE_TEST_DATABASE_URL is not set)"),
    }
}

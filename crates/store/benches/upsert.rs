//! Store upsert throughput: generated Truv transactions written in pages of
//! 1,000 (one database transaction per page), then written again (the
//! idempotent re-read path); then, into a fresh database, 8 pages per
//! transaction (`write_pages`, as ingest batches the pages waiting), and
//! into another as a first load (every index deferred, the id's too, then built:
//! SQLite only). On SQLite and — when BANKPIPE_TEST_DATABASE_URL is set —
//! PostgreSQL.
//!
//! Each backend's **engine floor** is measured beside it on the same rows:
//! the rows bankpipe stored, staged in a table of the same database, then
//! copied by one `INSERT … SELECT` into a fresh store's empty
//! `transactions` (same schema and settings, one transaction, no client:
//! no conversion, no binding, no round trips). It is what the database
//! alone needs for that write, so `bankpipe / floor` is measured in one run.
//! (bankpipe's figures count the transactions read, re-sightings included;
//! the floor's the rows stored: 100,000 read give 97,076 rows. The ratio
//! compares the times.)
//!
//! `cargo bench -p bankpipe-store --bench upsert` (UPSERT_N, default 100000).

use std::path::Path;
use std::time::Instant;

use bankpipe_gen::{GenConfig, TruvGenerator};
use bankpipe_model::Transaction;
use bankpipe_sources::{truv, NormalizeContext};
use bankpipe_store::{PageWrite, PgStore, RunKind, SqliteStore, Store};
use sqlx::{Connection, Executor, Row};

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
        report(name, label, n as u64, secs);
    }
}

/// First write of `pages` into the empty `store`, 8 pages per transaction;
/// with `deferred`, as a first load does it: every index (the id's too) is
/// deferred before and built after (included in the time).
async fn measure_batched<S: Store>(name: &str, store: &S, pages: &[Vec<Transaction>], deferred: bool) -> f64 {
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
    report(name, label, n as u64, secs);
    secs
}

fn report(name: &str, label: &str, n: u64, secs: f64) {
    println!("upsert {name:<10} {label:<20} {n} transactions in {secs:.2} s = {:.0} transactions/s", n as f64 / secs);
}

/// SQLite's floor: the rows of `written` (a bankpipe store) copied into
/// the empty store `fresh` by one `INSERT … SELECT` from a staging table,
/// into the indexed table, or (`deferred`) with every index dropped
/// before and built after (timed, with the two sorter threads bankpipe's
/// builds use).
async fn sqlite_floor(written: &Path, fresh: &Path, deferred: bool) -> f64 {
    drop(SqliteStore::open(&format!("sqlite://{}", fresh.display())).await.unwrap());
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", fresh.display())).await.unwrap();
    // bankpipe's writer settings (its larger, 64 MiB cache: the floor gets
    // the engine's best case).
    let pragmas = [
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA threads = 2",
        "PRAGMA cache_size = -65536",
        "PRAGMA temp_store = MEMORY",
    ];
    for pragma in pragmas {
        db.execute(pragma).await.unwrap();
    }
    db.execute(&*format!("ATTACH '{}' AS written", written.display())).await.unwrap();
    db.execute("CREATE TEMP TABLE staged AS SELECT * FROM written.transactions").await.unwrap();
    let indexes: Vec<(String, String)> = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' AND sql IS NOT NULL",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let started = Instant::now();
    let mut tx = db.begin().await.unwrap();
    if deferred {
        for (name, _) in &indexes {
            tx.execute(&*format!("DROP INDEX {name}")).await.unwrap();
        }
    }
    let n = tx.execute("INSERT INTO main.transactions SELECT * FROM staged").await.unwrap().rows_affected();
    tx.commit().await.unwrap();
    assert!(n > 0, "bankpipe stored rows to copy");
    if deferred {
        for (_, sql) in &indexes {
            db.execute(&**sql).await.unwrap();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let label = if deferred { "floor: first load, indexes built after" } else { "floor: first write" };
    report("sqlite", label, n, secs);
    secs
}

/// PostgreSQL's floor: the rows stored in `written` copied into the empty
/// `transactions` of the fresh store in `fresh` (both schemas of `url`) by
/// one `INSERT … SELECT … ON CONFLICT (id) DO NOTHING` (as the upsert
/// inserts) from an unlogged staging table, in id order as bankpipe
/// writes them, with `synchronous_commit = off` as page writes commit.
async fn postgres_floor(url: &str, written: &str, fresh: &str) -> f64 {
    drop(PgStore::open_in_schema(url, Some(fresh)).await.unwrap());
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    db.execute(&*format!("CREATE UNLOGGED TABLE {fresh}.staged AS SELECT * FROM {written}.transactions ORDER BY id"))
        .await
        .unwrap();
    db.execute(&*format!("VACUUM ANALYZE {fresh}.staged")).await.unwrap();
    let started = Instant::now();
    let mut tx = db.begin().await.unwrap();
    tx.execute("SET LOCAL synchronous_commit = off").await.unwrap();
    let n = tx
        .execute(&*format!(
            "INSERT INTO {fresh}.transactions SELECT * FROM {fresh}.staged ORDER BY id ON CONFLICT (id) DO NOTHING"
        ))
        .await
        .unwrap()
        .rows_affected();
    tx.commit().await.unwrap();
    assert!(n > 0, "bankpipe stored rows to copy");
    let secs = started.elapsed().as_secs_f64();
    report("postgres", "floor: first write", n, secs);
    secs
}

/// bankpipe's time for a write against the engine floor's for the same rows.
fn ratio(name: &str, label: &str, bankpipe: f64, floor: f64) {
    println!("upsert {name:<10} {label}: {:.2}x the engine floor", bankpipe / floor);
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
    let batched = measure_batched("sqlite", &sqlite, &pages, false).await;
    let sqlite = SqliteStore::open(&format!("sqlite://{}", dir.path().join("deferred.db").display())).await.unwrap();
    let loaded = measure_batched("sqlite", &sqlite, &pages, true).await;
    drop(sqlite);
    let written = dir.path().join("deferred.db");
    let floor = sqlite_floor(&written, &dir.path().join("floor.db"), false).await;
    let floor_load = sqlite_floor(&written, &dir.path().join("floor_load.db"), true).await;
    ratio("sqlite", "first write, 8 pages/tx", batched, floor);
    ratio("sqlite", "first load", loaded, floor_load);
    match std::env::var("BANKPIPE_TEST_DATABASE_URL") {
        Ok(url) => {
            let schema = format!("bench_{}", std::process::id());
            let pg = PgStore::open_in_schema(&url, Some(&schema)).await.unwrap();
            measure("postgres", &pg, &pages).await;
            let pg = PgStore::open_in_schema(&url, Some(&format!("{schema}_batched"))).await.unwrap();
            let batched = measure_batched("postgres", &pg, &pages, false).await;
            drop(pg);
            let floor = postgres_floor(&url, &format!("{schema}_batched"), &format!("{schema}_floor")).await;
            ratio("postgres", "first write, 8 pages/tx", batched, floor);
            let db = sqlx::PgPool::connect(&url).await.unwrap();
            for s in [schema.clone(), format!("{schema}_batched"), format!("{schema}_floor")] {
                sqlx::query(&format!("DROP SCHEMA {s} CASCADE")).execute(&db).await.unwrap();
            }
        }
        Err(_) => println!("upsert postgres: skipped (BANKPIPE_TEST_DATABASE_URL is not set)"),
    }
}

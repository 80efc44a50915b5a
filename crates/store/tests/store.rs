//! Store semantics, run against SQLite and (when BANKPIPE_TEST_DATABASE_URL
//! is set) PostgreSQL — the same test bodies for both backends.

use bankpipe_store::prelude::*;
use std::path::Path;

use bankpipe_model::{Account, QuarantineRecord, Status, Transaction};
use bankpipe_sources::recorded::walk_dir;
use bankpipe_sources::{NormalizeContext, PageError, SourceKind};
use bankpipe_store::{DedupeLink, LinkKind, PgStore, RunKind, RunSummary, SqliteStore, Store, StoreError};
use chrono::NaiveDate;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Normalized transactions, accounts and quarantine of a fixture directory.
fn fixture(kind: SourceKind, dir: &str) -> (Vec<Transaction>, Vec<Account>, Vec<QuarantineRecord>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    walk_dir::<PageError, _>(kind, &NormalizeContext::new(kind.as_str()), &root().join(dir), |_, p| {
        out.0.extend(p.transactions);
        out.1.extend(p.accounts);
        out.2.extend(p.quarantine);
        Ok(())
    })
    .unwrap();
    out
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    (dir, store)
}

/// A PostgreSQL store in a fresh schema, or `None` (with a printed notice)
/// when BANKPIPE_TEST_DATABASE_URL is not set.
async fn postgres(test: &str) -> Option<PgStore> {
    let Ok(url) = std::env::var("BANKPIPE_TEST_DATABASE_URL") else {
        eprintln!("NOTICE: {test}: PostgreSQL half skipped: BANKPIPE_TEST_DATABASE_URL is not set");
        return None;
    };
    // The random part first: PostgreSQL cuts identifiers at 63 bytes, and a
    // long test name must not cut it off (runs would share one schema).
    let mut schema = format!("t{:016x}_{test}", fastrand::u64(..));
    schema.truncate(63);
    Some(PgStore::open_in_schema(&url, Some(&schema)).await.expect("PostgreSQL from BANKPIPE_TEST_DATABASE_URL"))
}

/// `both_backends!` and the in-memory store replay uses (same semantics,
/// no delivery ledger).
macro_rules! every_store {
    ($name:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            $body(&bankpipe_store::MemoryStore::new(stringify!($name))).await;
            let (_dir, s) = sqlite().await;
            $body(&s).await;
            if let Some(p) = postgres(stringify!($name)).await {
                $body(&p).await;
            }
        }
    };
}

macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            let (_dir, s) = sqlite().await;
            $body(&s).await;
            if let Some(p) = postgres(stringify!($name)).await {
                $body(&p).await;
            }
        }
    };
}

async fn upsert_is_idempotent_and_newest_wins<S: RunLog + TransactionStore>(s: &S) {
    let (txs, accounts, quarantine) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    let c = s.write_page(run, &accounts, &txs, &quarantine).await.unwrap();
    // 11 records, 9 identities: t-003 and t-004 appear twice in the input.
    assert_eq!((c.inserted, c.updated, c.unchanged), (9, 0, 2));
    let again = s.write_page(run, &accounts, &txs, &[]).await.unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 11), "a re-read changes nothing");

    let t4 = txs.iter().find(|t| t.source_transaction_id == "t-004" && t.status == Status::Posted).unwrap();
    let stored = s.transaction(&t4.id.to_string()).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.amount.to_string()), (Status::Posted, "-48.10".into()), "newest sighting stored");

    // An edit with a newer updated_at updates in place; an older one does not.
    let mut edited = t4.clone();
    edited.description = "TRATTORIA ROMA (edited)".into();
    edited.updated_at = Some("2024-03-04T00:00:00Z".parse().unwrap());
    assert_eq!(s.write_page(run, &[], std::slice::from_ref(&edited), &[]).await.unwrap().updated, 1);
    let mut stale = t4.clone();
    stale.description = "stale".into();
    stale.updated_at = Some("2024-03-01T00:00:00Z".parse().unwrap());
    assert_eq!(s.write_page(run, &[], &[stale], &[]).await.unwrap().unchanged, 1);
    assert_eq!(s.transaction(&t4.id.to_string()).await.unwrap().unwrap().description, "TRATTORIA ROMA (edited)");
}
every_store!(upsert_is_idempotent_and_newest_wins_on_every_store, upsert_is_idempotent_and_newest_wins);

/// Account copies merge in page order, one copy at a time, even when a page
/// lists an account twice: an empty field keeps the stored value, an older
/// `updated_at` changes nothing, a later copy wins.
async fn account_copies_merge_in_page_order<S: RunLog + TransactionStore>(s: &S) {
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    let at = |t: &str| Some(t.parse().unwrap());
    let mut first = Account::bare("truv".into(), "a-1".into());
    first.name = Some("Checking".into());
    first.mask = Some("1234".into());
    first.updated_at = at("2024-03-01T00:00:00Z");
    let mut newer = Account::bare("truv".into(), "a-1".into());
    newer.name = Some("Everyday checking".into());
    newer.updated_at = at("2024-03-02T00:00:00Z");
    let mut older = Account::bare("truv".into(), "a-1".into());
    older.name = Some("stale".into());
    older.updated_at = at("2024-02-01T00:00:00Z");
    let other = Account::bare("truv".into(), "a-2".into());
    let page =
        [first.clone(), other.clone(), newer.clone(), older, first.clone(), Account::bare("truv".into(), "a-1".into())];
    s.write_page(run, &page, &[], &[]).await.unwrap();
    let stored = s.accounts().await.unwrap();
    let a1 = stored.iter().find(|a| a.source_account_id == "a-1").unwrap();
    assert_eq!(a1.name.as_deref(), Some("Everyday checking"), "the newest copy wins, an older one changes nothing");
    assert_eq!(a1.mask.as_deref(), Some("1234"), "a field a copy leaves empty keeps its value");
    assert_eq!(a1.updated_at, newer.updated_at);
    assert!(stored.iter().any(|a| a.source_account_id == "a-2"));
    // The same copies again change nothing.
    s.write_page(run, &page, &[], &[]).await.unwrap();
    assert_eq!(s.accounts().await.unwrap(), stored);
}
every_store!(account_copies_merge_in_page_order_on_every_store, account_copies_merge_in_page_order);

async fn transactions_round_trip_exactly<S: RunLog + TransactionStore>(s: &S) {
    let (mut txs, accounts, quarantine) = fixture(SourceKind::Firefly, "fixtures/firefly/groups");
    let (truv, more_accounts, _) = fixture(SourceKind::Truv, "fixtures/truv/currencies");
    txs.extend(truv);
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    s.write_page(run, &accounts, &txs, &quarantine).await.unwrap();
    s.write_page(run, &more_accounts, &[], &[]).await.unwrap();
    for tx in &txs {
        let back = s.transaction(&tx.id.to_string()).await.unwrap().unwrap();
        assert_eq!(&back, tx, "round trip of {}", tx.source_transaction_id);
    }
    let stored_accounts = s.accounts().await.unwrap();
    let savings = stored_accounts.iter().find(|a| a.source_account_id == "2").unwrap();
    assert_eq!(savings.opening_balance.unwrap().to_string(), "1000.00");
    let kwd = stored_accounts.iter().find(|a| a.source_account_id == "kw-001").unwrap();
    assert_eq!(kwd.balance.unwrap().to_string(), "12.500");
    assert_eq!(s.quarantine().await.unwrap(), quarantine);
    let next = s.begin_run(RunKind::Sync).await.unwrap();
    s.write_page(next, &[], &[], &quarantine).await.unwrap();
    assert_eq!(s.quarantine().await.unwrap(), quarantine, "a re-read bad record is not stored twice");
    // Another record with the same bad value and reason is a different record: kept.
    let mut other = quarantine[0].clone();
    assert!(other.record_id.is_some(), "{other:?}");
    other.record_id = Some("another-record".into());
    s.write_page(next, &[], &[], std::slice::from_ref(&other)).await.unwrap();
    assert_eq!(s.quarantine().await.unwrap().len(), quarantine.len() + 1, "distinct bad records are all kept");
    let mut seen = Vec::new();
    s.for_each_transaction(|t| {
        seen.push((t.booking_date, t.id));
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(seen.len(), txs.len());
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "ordered by booking date, id");
}
every_store!(transactions_round_trip_exactly_on_every_store, transactions_round_trip_exactly);

async fn many_rows_stream_in_order<S: RunLog + TransactionStore>(s: &S) {
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let template = txs[0].clone();
    let rows: Vec<Transaction> = (0..12_000)
        .map(|i| {
            let mut t = template.clone();
            t.source_transaction_id = format!("bulk-{i}");
            t.id = bankpipe_model::CanonicalId::for_transaction("truv", &t.source_account_id, &t.source_transaction_id);
            t.booking_date = d("2024-01-01") + chrono::Days::new(i % 400);
            t
        })
        .collect();
    let run = s.begin_run(RunKind::Backfill).await.unwrap();
    for chunk in rows.chunks(1000) {
        assert_eq!(s.write_page(run, &[], chunk, &[]).await.unwrap().inserted, 1000);
    }
    let mut n = 0;
    let mut last = None;
    s.for_each_transaction(|t| {
        let key = (t.booking_date, t.id);
        assert!(last.is_none_or(|l| l < key));
        last = Some(key);
        n += 1;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(n, 12_000);
}
every_store!(many_rows_stream_in_order_on_every_store, many_rows_stream_in_order);

/// Pages of odd sizes (multi-row statements of several sizes, padded id
/// lists) mixing new rows, changed rows, stale edits, unchanged rows and
/// repeated sightings: every row counted once, the right version stored.
async fn odd_sized_pages_count_every_kind_of_row<S: RunLog + TransactionStore>(s: &S) {
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let template = txs.iter().find(|t| t.status == Status::Posted).unwrap();
    let at = |t: &str| Some(t.parse().unwrap());
    let rows: Vec<Transaction> = (0..1237)
        .map(|i| {
            let mut t = row(template, "truv", &format!("odd-{i}"), Status::Posted, -i - 1, "2024-02-01");
            t.description = format!("ROW {i}");
            t.updated_at = at("2024-03-02T00:00:00Z");
            t
        })
        .collect();
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    let c = s.write_page(run, &[], &rows[..733], &[]).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (733, 0, 0));

    let mut page = rows.clone();
    for t in &mut page[..100] {
        t.description.push_str(" (edited)");
        t.updated_at = at("2024-03-03T00:00:00Z");
    }
    for t in &mut page[100..150] {
        t.description = "stale".into();
        t.updated_at = at("2024-03-01T00:00:00Z");
    }
    // Repeated sightings of new rows: an older one after the newer (the
    // newer wins) and an equally new one (the later wins).
    let mut older = page[900].clone();
    older.description = "older".into();
    older.updated_at = at("2024-03-01T00:00:00Z");
    let mut tie = page[901].clone();
    tie.description = "later".into();
    page.extend([older, tie]);
    let c = s.write_page(run, &[], &page, &[]).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (504, 100, 50 + 583 + 2));

    let description = |i: usize| {
        let id = rows[i].id.to_string();
        async move { s.transaction(&id).await.unwrap().unwrap().description }
    };
    assert_eq!(description(0).await, "ROW 0 (edited)");
    assert_eq!(description(99).await, "ROW 99 (edited)");
    assert_eq!(description(120).await, "ROW 120", "a stale edit is not stored");
    assert_eq!(description(900).await, "ROW 900", "the newest sighting is stored");
    assert_eq!(description(901).await, "later", "on equal updated_at the later sighting is stored");
    assert_eq!(description(1236).await, "ROW 1236");
    let c = s.write_page(run, &[], &page, &[]).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (0, 0, page.len() as u64), "a re-read changes nothing");
}
every_store!(odd_sized_pages_count_every_kind_of_row_on_every_store, odd_sized_pages_count_every_kind_of_row);

async fn watermarks_never_move_backwards<S: RunLog + TransactionStore>(s: &S) {
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    s.advance_watermarks(run, "truv", &[("a".into(), d("2024-03-10")), ("b".into(), d("2024-03-01"))]).await.unwrap();
    s.advance_watermarks(run, "truv", &[("a".into(), d("2024-02-01")), ("b".into(), d("2024-03-05"))]).await.unwrap();
    let w = s.watermarks("truv").await.unwrap();
    let dates: Vec<(String, NaiveDate)> = w.into_iter().map(|w| (w.source_account_id, w.booking_date)).collect();
    assert_eq!(dates, [("a".into(), d("2024-03-10")), ("b".into(), d("2024-03-05"))]);
    assert!(s.watermarks("firefly").await.unwrap().is_empty());
}
every_store!(watermarks_never_move_backwards_on_every_store, watermarks_never_move_backwards);

async fn dedupe_decisions_persist_once<S: RunLog + TransactionStore>(s: &S) {
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    s.write_page(run, &[], &txs, &[]).await.unwrap();
    let id = |sid: &str| txs.iter().find(|t| t.source_transaction_id == sid).unwrap().id.to_string();
    let link = DedupeLink {
        transaction_id: id("t-006"),
        kind: LinkKind::Superseded,
        target_id: id("t-011"),
        reason: "test".into(),
    };
    assert_eq!(s.apply_dedupe(run, std::slice::from_ref(&link)).await.unwrap(), 1);
    assert_eq!(s.apply_dedupe(run, std::slice::from_ref(&link)).await.unwrap(), 0, "already decided");
    let t6 = s.transaction(&id("t-006")).await.unwrap().unwrap();
    assert_eq!(t6.superseded_by.map(|i| i.to_string()), Some(id("t-011")));
    assert_eq!(s.links_of(&id("t-011")).await.unwrap(), [link]);
    let candidates = s.dedupe_candidates(&[("truv".into(), "card-002".into())], d("2024-01-01")).await.unwrap();
    assert!(candidates.iter().all(|c| c.id != id("t-006")), "a superseded row is no candidate");
    assert_eq!(candidates.len(), 2);
    // A re-read of the superseded row keeps the decision.
    s.write_page(run, &[], &txs, &[]).await.unwrap();
    assert!(s.transaction(&id("t-006")).await.unwrap().unwrap().superseded_by.is_some());
}
every_store!(dedupe_decisions_persist_once_on_every_store, dedupe_decisions_persist_once);

async fn runs_checkpoints_and_status<S: RunLog + TransactionStore>(s: &S) {
    let run = s.begin_run(RunKind::Backfill).await.unwrap();
    assert!(!s.backfill_window_done("truv", d("2024-01-01"), d("2024-01-31")).await.unwrap());
    s.complete_backfill_window(run, "truv", d("2024-01-01"), d("2024-01-31"), 42).await.unwrap();
    s.complete_backfill_window(run, "truv", d("2024-01-01"), d("2024-01-31"), 42).await.unwrap();
    assert!(s.backfill_window_done("truv", d("2024-01-01"), d("2024-01-31")).await.unwrap());
    assert!(!s.backfill_window_done("firefly", d("2024-01-01"), d("2024-01-31")).await.unwrap());
    let summary = RunSummary { outcome: "ok".into(), pages: 3, records: 11, ..RunSummary::default() };
    s.finish_run(run, &summary).await.unwrap();
    let status = s.status(5).await.unwrap();
    assert_eq!(status.runs.len(), 1);
    assert_eq!((status.runs[0].outcome.as_str(), status.runs[0].counts[0], status.runs[0].counts[1]), ("ok", 3, 11));
}
every_store!(runs_checkpoints_and_status_on_every_store, runs_checkpoints_and_status);

#[tokio::test(flavor = "multi_thread")]
async fn one_sync_lock_per_database() {
    let (_dir, s) = sqlite().await;
    let held = s.lock().await.unwrap();
    assert!(matches!(s.lock().await, Err(StoreError::Locked(_))));
    drop(held);
    s.lock().await.unwrap();
    if let Some(p) = postgres("lock").await {
        let held = p.lock().await.unwrap();
        assert!(matches!(p.lock().await, Err(StoreError::Locked(_))));
        drop(held);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        p.lock().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_databases_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not an SQLite database, it is a text file that happens to be long enough")
        .unwrap();
    let e = SqliteStore::open(&format!("sqlite://{}", garbage.display())).await.err().unwrap().to_string();
    assert!(e.contains("garbage.db") && e.contains("not a database"), "{e}");
    let e = SqliteStore::open(&format!("sqlite://{}/missing/state.db", dir.path().display()))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing") && e.contains("does not exist"), "{e}");
    let e = PgStore::open("postgres://bankpipe:hunter2@127.0.0.1:1/nowhere").await.err().unwrap().to_string();
    assert!(e.contains("127.0.0.1:1/nowhere") && !e.contains("hunter2"), "{e}");
    assert!(e.to_lowercase().contains("refused"), "a closed port says so, not 'pool timed out': {e}");
    let e = PgStore::open("postgres://bankpipe@127.0.0.1:1/nowhere?password=hunter2").await.err().unwrap().to_string();
    assert!(e.contains("password=***") && !e.contains("hunter2"), "{e}");
    let e = bankpipe_store::open("mysql://u:hunter2@h/db", None).await.err().unwrap().to_string();
    assert!(!e.contains("hunter2"), "{e}");
}

/// `sslmode=require` works (sqlx with rustls) against a server with SSL on.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_tls() {
    let Ok(url) = std::env::var("BANKPIPE_TEST_DATABASE_URL") else {
        eprintln!("NOTICE: postgres_over_tls skipped: BANKPIPE_TEST_DATABASE_URL is not set");
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(&pool).await.unwrap();
    if ssl != "on" {
        eprintln!("NOTICE: postgres_over_tls skipped: the test server has ssl = {ssl}");
        return;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let s = PgStore::open_in_schema(&format!("{url}{sep}sslmode=require"), Some(&format!("tls_{}", fastrand::u64(..))))
        .await
        .expect("sslmode=require connects");
    let used: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&sqlx::PgPool::connect(&format!("{url}{sep}sslmode=require")).await.unwrap())
        .await
        .unwrap();
    assert!(used, "the connection is encrypted");
    s.status(1).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let s = SqliteStore::open(&url).await.unwrap();
    drop(s);
    // Pretend a future bankpipe migrated this database.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'future', 1, X'00', 0)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let e = SqliteStore::open(&url).await.err().unwrap();
    assert!(matches!(e, StoreError::NewerSchema { found: 9999, .. }), "{e}");
    assert!(e.to_string().contains("upgrade bankpipe"));
}

async fn deliveries_move_through_the_outbox_states<S: Store>(s: &S) {
    use bankpipe_store::DeliveryState::*;
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    s.write_page(run, &[], &txs, &[]).await.unwrap();
    // 9 rows: 6 posted and counted, t-006 pending, t-005/t-007 MEMO.
    assert_eq!(s.enqueue_deliveries("tp", false, false).await.unwrap(), 6);
    assert_eq!(s.enqueue_deliveries("tp", false, false).await.unwrap(), 0, "queued once");
    assert_eq!(s.enqueue_deliveries("mb", true, true).await.unwrap(), 7, "pending rows only when asked");
    let queued: Vec<_> =
        s.deliveries("tp", Pending, None, 100).await.unwrap().into_iter().map(|q| q.transaction).collect();
    let page: Vec<_> =
        s.deliveries("tp", Pending, Some(&queued[1]), 2).await.unwrap().into_iter().map(|q| q.transaction).collect();
    assert_eq!(page, queued[2..4].to_vec(), "keyset cursor");
    assert_eq!(queued.len(), 6);
    let first = queued[0].id.to_string();
    assert!(s.begin_delivery("tp", &queued[0], "bp0001", r#"{"path":"x"}"#).await.unwrap());
    assert!(!s.begin_delivery("tp", &queued[0], "bp0001", "{}").await.unwrap(), "only a pending row can go in flight");
    let flying = s.in_flight("tp", None, 100).await.unwrap();
    assert_eq!(flying.len(), 1);
    assert_eq!(
        (flying[0].marker.as_deref(), flying[0].request.as_deref(), flying[0].attempts),
        (Some("bp0001"), Some(r#"{"path":"x"}"#), 1),
        "the exact request is stored with the marker"
    );
    assert!(s.resend_delivery("tp", &first, 1, "HTTP 500").await.unwrap());
    assert!(!s.resend_delivery("tp", &first, 1, "HTTP 500").await.unwrap(), "attempts act as a version");
    assert!(!s.settle_delivery("tp", &first, Pending, Delivered, Some("remote-1"), None).await.unwrap());
    assert!(s.settle_delivery("tp", &first, InFlight, Delivered, Some("remote-1"), None).await.unwrap());
    let row = s.delivery("tp", &first).await.unwrap().unwrap();
    assert_eq!((row.state, row.remote_id.as_deref(), row.attempts), (Delivered, Some("remote-1"), 2));
    // A remote row is recorded for at most one delivery.
    let second = queued[3].id.to_string();
    assert!(s.begin_delivery("tp", &queued[3], "bp0002", "{}").await.unwrap());
    assert!(s.settle_delivery("tp", &second, InFlight, Delivered, Some("remote-1"), None).await.is_err());
    assert!(s.settle_delivery("tp", &second, InFlight, Pending, None, None).await.unwrap());
    let back = s.delivery("tp", &second).await.unwrap().unwrap();
    assert_eq!((back.request, back.attempts), (None, 0), "back in the queue: request cleared, attempt taken back");
    // Several rows go in flight in one commit; a row not pending is left.
    let batch = [
        bankpipe_store::Begin { tx: &queued[3], marker: "bp0002", request: "{}" },
        bankpipe_store::Begin { tx: &queued[0], marker: "bp0001", request: "{}" },
        bankpipe_store::Begin { tx: &queued[4], marker: "bp0004", request: "{}" },
    ];
    assert_eq!(s.begin_deliveries("tp", &batch).await.unwrap(), [true, false, true]);
    for (q, marker) in [(&queued[3], "bp0002"), (&queued[4], "bp0004")] {
        let row = s.delivery("tp", &q.id.to_string()).await.unwrap().unwrap();
        assert_eq!((row.state, row.marker.as_deref(), row.attempts), (InFlight, Some(marker), 1));
        assert!(s.settle_delivery("tp", &q.id.to_string(), InFlight, Pending, None, None).await.unwrap());
    }
    assert!(s.begin_delivery("tp", &queued[1], "bp0003", "{}").await.unwrap());
    s.settle_delivery("tp", &queued[1].id.to_string(), InFlight, Failed, None, Some("validation-error: bad payee"))
        .await
        .unwrap();
    let report = s.status(1).await.unwrap();
    let tp = report.deliveries.iter().find(|d| d.sink == "tp").unwrap();
    assert_eq!(
        (tp.waiting, tp.in_flight, tp.failed, tp.delivered),
        (4, 0, 1, 1),
        "waiting, in flight, failed, delivered"
    );
    assert_eq!(report.failures, [("tp".to_owned(), "validation-error: bad payee".to_owned(), 1)]);
    // A queued row that becomes a duplicate leaves the queue.
    let victim = queued[2].id.to_string();
    let link = DedupeLink {
        transaction_id: victim.clone(),
        kind: LinkKind::Duplicate,
        target_id: first.clone(),
        reason: "t".into(),
    };
    s.apply_dedupe(run, &[link]).await.unwrap();
    s.enqueue_deliveries("tp", false, false).await.unwrap();
    assert!(s
        .deliveries("tp", Pending, None, 100)
        .await
        .unwrap()
        .iter()
        .all(|q| q.transaction.id.to_string() != victim));
    // Sink accounts are remembered.
    assert_eq!(s.sink_account("tp", "truv", "chk-001").await.unwrap(), None);
    s.set_sink_account("tp", "truv", "chk-001", "acc-9").await.unwrap();
    assert_eq!(s.sink_account("tp", "truv", "chk-001").await.unwrap().as_deref(), Some("acc-9"));
}
both_backends!(deliveries_move_through_the_outbox_states_on_both, deliveries_move_through_the_outbox_states);

/// A copy of a fixture row with its own identity and the given status,
/// amount (minor units) and booking date.
fn row(template: &Transaction, source: &str, txid: &str, status: Status, minor: i64, date: &str) -> Transaction {
    let mut t = template.clone();
    t.source = std::sync::Arc::from(source);
    t.source_transaction_id = txid.into();
    t.id = bankpipe_model::CanonicalId::for_transaction(source, &t.source_account_id, txid);
    t.status = status;
    t.amount = bankpipe_model::Money::from_minor_units(minor, t.amount.currency());
    t.booking_date = d(date);
    t.memo_only = false;
    t.updated_at = None;
    t
}

/// Deliver `tx` to `sink` as remote row `remote` through the ledger's states.
async fn delivered<S: Store>(s: &S, sink: &str, tx: &Transaction, remote: &str) {
    use bankpipe_store::DeliveryState::*;
    s.enqueue_deliveries(sink, true, true).await.unwrap();
    assert!(s.begin_delivery(sink, tx, &format!("bp{remote}"), "{}").await.unwrap(), "{sink} {remote} queued");
    assert!(s.settle_delivery(sink, &tx.id.to_string(), InFlight, Delivered, Some(remote), None).await.unwrap());
}

fn queued_ids(q: &[bankpipe_store::Queued]) -> Vec<String> {
    q.iter().map(|q| q.transaction.id.to_string()).collect()
}

async fn enqueue_is_delivery_aware<S: Store>(s: &S) {
    use bankpipe_store::DeliveryState::*;
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let template = txs.iter().find(|t| t.status == Status::Posted && !t.memo_only).unwrap();
    let run = s.begin_run(RunKind::Sync).await.unwrap();

    // Cross-source (DESIGN §4.7): the ledger side reached "mb" first; when
    // the bank side is later kept, "mb" must not get it too, "fresh" must.
    let bank = row(template, "truv", "x-bank", Status::Posted, -2345, "2024-03-05");
    let ledger = row(template, "firefly", "x-ledger", Status::Posted, -2345, "2024-03-04");
    s.write_page(run, &[], std::slice::from_ref(&ledger), &[]).await.unwrap();
    delivered(s, "mb", &ledger, "r-ledger").await;
    s.write_page(run, &[], std::slice::from_ref(&bank), &[]).await.unwrap();
    let link = DedupeLink {
        transaction_id: ledger.id.to_string(),
        kind: LinkKind::Duplicate,
        target_id: bank.id.to_string(),
        reason: "t".into(),
    };
    assert_eq!(s.apply_dedupe(run, &[link]).await.unwrap(), 1);
    s.enqueue_deliveries("mb", false, true).await.unwrap();
    assert!(!queued_ids(&s.deliveries("mb", Pending, None, 100).await.unwrap()).contains(&bank.id.to_string()));
    s.enqueue_deliveries("fresh", false, true).await.unwrap();
    assert_eq!(queued_ids(&s.deliveries("fresh", Pending, None, 100).await.unwrap()), [bank.id.to_string()]);

    // Pending delivered, then superseded by a posted row under a new id:
    // a sink that can delete gets a replacement, one that cannot gets nothing.
    let pending = row(template, "truv", "p-1", Status::Pending, -4210, "2024-03-10");
    s.write_page(run, &[], std::slice::from_ref(&pending), &[]).await.unwrap();
    delivered(s, "corrects", &pending, "r-pending").await;
    delivered(s, "cannot", &pending, "r-pending-2").await;
    let posted = row(template, "truv", "q-1", Status::Posted, -4810, "2024-03-11");
    s.write_page(run, &[], std::slice::from_ref(&posted), &[]).await.unwrap();
    let link = DedupeLink {
        transaction_id: pending.id.to_string(),
        kind: LinkKind::Superseded,
        target_id: posted.id.to_string(),
        reason: "t".into(),
    };
    assert_eq!(s.apply_dedupe(run, &[link]).await.unwrap(), 1);
    s.enqueue_deliveries("corrects", true, true).await.unwrap();
    let q = s.deliveries("corrects", Pending, None, 100).await.unwrap();
    let replacement = q.iter().find(|q| q.transaction.id == posted.id).expect("posted row queued");
    assert_eq!(replacement.replaces.as_deref(), Some("r-pending"));
    assert_eq!(s.delivery("corrects", &pending.id.to_string()).await.unwrap().unwrap().state, Replaced);
    s.enqueue_deliveries("cannot", true, false).await.unwrap();
    assert!(!queued_ids(&s.deliveries("cannot", Pending, None, 100).await.unwrap()).contains(&posted.id.to_string()));
    // If the replaced pending row then posts under its own id, it was its own
    // movement (DESIGN §4.6): queued anew, at its next revision.
    let mut own = pending.clone();
    own.status = Status::Posted;
    s.write_page(run, &[], &[own], &[]).await.unwrap();
    s.enqueue_deliveries("corrects", true, true).await.unwrap();
    let again = s.delivery("corrects", &pending.id.to_string()).await.unwrap().unwrap();
    assert_eq!((again.state, again.revision, again.remote_id), (Pending, 1, None));
    // A sink that cannot correct: a source change after delivery is reported.
    let kept = row(template, "truv", "k-1", Status::Posted, -700, "2024-03-13");
    s.write_page(run, &[], std::slice::from_ref(&kept), &[]).await.unwrap();
    delivered(s, "cannot", &kept, "r-kept").await;
    let mut later = kept.clone();
    later.amount = bankpipe_model::Money::from_minor_units(-750, kept.amount.currency());
    s.write_page(run, &[], &[later], &[]).await.unwrap();
    s.enqueue_deliveries("cannot", true, false).await.unwrap();
    let report = s.status(1).await.unwrap();
    let cannot = report.deliveries.iter().find(|d| d.sink == "cannot").unwrap();
    assert_eq!(cannot.changed_since_delivery, 1);
    assert_eq!(s.delivery("cannot", &kept.id.to_string()).await.unwrap().unwrap().state, Delivered, "left as it is");

    // Same id, amount changed at the source after delivery: a correction.
    let edited = row(template, "truv", "e-1", Status::Posted, -1000, "2024-03-12");
    s.write_page(run, &[], std::slice::from_ref(&edited), &[]).await.unwrap();
    delivered(s, "corrects", &edited, "r-edited").await;
    s.enqueue_deliveries("corrects", true, true).await.unwrap();
    assert_eq!(s.delivery("corrects", &edited.id.to_string()).await.unwrap().unwrap().state, Delivered, "unchanged");
    let mut changed = edited.clone();
    changed.amount = bankpipe_model::Money::from_minor_units(-1250, edited.amount.currency());
    changed.merchant_name = Some("tip added".into());
    s.write_page(run, &[], &[changed], &[]).await.unwrap();
    s.enqueue_deliveries("corrects", true, true).await.unwrap();
    let row_now = s.delivery("corrects", &edited.id.to_string()).await.unwrap().unwrap();
    assert_eq!(
        (row_now.state, row_now.revision, row_now.replaces.as_deref(), row_now.remote_id.as_deref()),
        (Pending, 1, Some("r-edited"), None)
    );
}
both_backends!(enqueue_is_delivery_aware_on_both, enqueue_is_delivery_aware);

async fn a_superseded_row_posting_under_its_own_id_is_unsuperseded<S: Store>(s: &S) {
    use bankpipe_store::DeliveryState::*;
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let template = txs.iter().find(|t| t.status == Status::Posted && !t.memo_only).unwrap();
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    // Two coffees: c1 pending was (wrongly, by similarity) superseded by c2 posted.
    let c1 = row(template, "truv", "c-1", Status::Pending, -450, "2024-03-02");
    let c2 = row(template, "truv", "c-2", Status::Posted, -450, "2024-03-02");
    s.write_page(run, &[], &[c1.clone(), c2.clone()], &[]).await.unwrap();
    let link = DedupeLink {
        transaction_id: c1.id.to_string(),
        kind: LinkKind::Superseded,
        target_id: c2.id.to_string(),
        reason: "t".into(),
    };
    assert_eq!(s.apply_dedupe(run, &[link]).await.unwrap(), 1);
    let candidates =
        s.dedupe_candidates(&[("truv".into(), c2.source_account_id.clone())], d("2024-01-01")).await.unwrap();
    let c2c = candidates.iter().find(|c| c.id == c2.id.to_string()).unwrap();
    assert!(c2c.supersedes && !c2c.seen_pending, "c2 already supersedes one row; it was never pending itself");
    // c1 posts under its own id: it was its own movement.
    let mut c1_posted = c1.clone();
    c1_posted.status = Status::Posted;
    let counts = s.write_page(run, &[], &[c1_posted], &[]).await.unwrap();
    assert_eq!(counts.unsuperseded, 1);
    let stored = s.transaction(&c1.id.to_string()).await.unwrap().unwrap();
    assert_eq!(stored.superseded_by, None);
    assert!(s.links_of(&c1.id.to_string()).await.unwrap().iter().all(|l| l.kind != LinkKind::Superseded));
    s.enqueue_deliveries("tp", false, false).await.unwrap();
    let q = queued_ids(&s.deliveries("tp", Pending, None, 100).await.unwrap());
    assert!(q.contains(&c1.id.to_string()) && q.contains(&c2.id.to_string()), "both coffees are delivered");
    let candidates =
        s.dedupe_candidates(&[("truv".into(), c1.source_account_id.clone())], d("2024-01-01")).await.unwrap();
    assert!(candidates.iter().find(|c| c.id == c1.id.to_string()).unwrap().seen_pending, "sticky");
}
both_backends!(
    a_superseded_row_posting_under_its_own_id_is_unsuperseded_on_both,
    a_superseded_row_posting_under_its_own_id_is_unsuperseded
);

/// Instants are kept to the microsecond (RFC 3339 text with 6 fraction
/// digits in the SQL stores): read back truncated, and a copy that differs
/// only below the microsecond is a re-read with nothing new.
async fn instants_are_kept_to_the_microsecond<S: RunLog + TransactionStore>(s: &S) {
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let template = txs.iter().find(|t| t.status == Status::Posted && !t.memo_only).unwrap();
    let at = |t: &str| Some(t.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    let mut t = row(template, "truv", "ns-1", Status::Posted, -100, "2024-03-02");
    t.updated_at = at("2024-03-02T10:00:00.123456789Z");
    t.posted_at = at("2024-03-02T09:00:00.000000999Z");
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    assert_eq!(s.write_page(run, &[], std::slice::from_ref(&t), &[]).await.unwrap().inserted, 1);
    let back = s.transaction(&t.id.to_string()).await.unwrap().unwrap();
    assert_eq!((back.updated_at, back.posted_at), (at("2024-03-02T10:00:00.123456Z"), at("2024-03-02T09:00:00Z")));
    let mut again = t.clone();
    again.updated_at = at("2024-03-02T10:00:00.123456001Z");
    let c = s.write_page(run, &[], &[again], &[]).await.unwrap();
    assert_eq!((c.updated, c.unchanged), (0, 1));
}
every_store!(instants_are_kept_to_the_microsecond_on_every_store, instants_are_kept_to_the_microsecond);

/// Several pages in one store transaction: each written as `write_page`
/// writes it, in order (a later page's newer copy updates an earlier
/// page's row), the counts summed; and all or none — a page the store must
/// refuse leaves the pages before it unwritten.
async fn pages_written_together_as_one<S: RunLog + TransactionStore>(s: &S) {
    use bankpipe_store::PageWrite;
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let template = txs.iter().find(|t| t.status == Status::Posted && !t.memo_only).unwrap();
    let at = |t: &str| Some(t.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    let page = |transactions| PageWrite { accounts: &[], transactions, quarantine: &[] };
    let mut a = row(template, "truv", "wp-1", Status::Posted, -100, "2024-03-02");
    a.updated_at = at("2024-03-02T10:00:00Z");
    let b = row(template, "truv", "wp-2", Status::Posted, -200, "2024-03-02");
    let mut edited = a.clone();
    edited.description = "edited".into();
    edited.updated_at = at("2024-03-03T10:00:00Z");
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    let first = [a.clone(), b.clone()];
    let second = [edited.clone(), b.clone()];
    let c = s.write_pages(run, &[page(&first), page(&second)]).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (2, 1, 1));
    assert_eq!(s.transaction(&a.id.to_string()).await.unwrap().unwrap().description, "edited");

    let fresh = [row(template, "truv", "wp-3", Status::Posted, -300, "2024-03-02")];
    let mut huge = row(template, "truv", "wp-4", Status::Posted, -1, "2024-03-02");
    let beyond = rust_decimal::Decimal::from(i64::MAX) * rust_decimal::Decimal::from(1000);
    huge.amount = bankpipe_model::Money::new(beyond, huge.amount.currency()).unwrap();
    let refused = [huge];
    let err = s.write_pages(run, &[page(&fresh), page(&refused)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Money { .. }), "{err}");
    assert!(s.transaction(&fresh[0].id.to_string()).await.unwrap().is_none(), "the page before it is not written");
}
every_store!(pages_written_together_as_one_on_every_store, pages_written_together_as_one);

/// Source daily totals (DESIGN §3): stored, a later figure replacing an
/// earlier one (and its last result), reconciled against the counted rows
/// (posted, not MEMO, not superseded or a duplicate) of the accounts in
/// scope; every mismatch returned with the computed figures and shown by
/// `status`.
async fn source_totals_reconcile_against_counted_rows<S: RunLog + TransactionStore>(s: &S) {
    use bankpipe_model::{Money, ReconcileTarget, SourceDailyTotal};
    let (txs, _, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let template = txs.iter().find(|t| t.status == Status::Posted && !t.memo_only).unwrap();
    let (account, currency) = (template.source_account_id.clone(), template.amount.currency());
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    let kept = row(template, "truv", "p-1", Status::Posted, -1000, "2024-03-02");
    let dup = row(template, "truv", "p-2", Status::Posted, -1000, "2024-03-02");
    let page = [
        kept.clone(),
        row(template, "truv", "p-3", Status::Posted, -250, "2024-03-02"),
        row(template, "truv", "p-4", Status::Pending, -999, "2024-03-02"),
        dup.clone(),
        row(template, "truv", "p-5", Status::Posted, -1, "2024-03-03"),
    ];
    s.write_page(run, &[], &page, &[]).await.unwrap();
    let link = DedupeLink {
        transaction_id: dup.id.to_string(),
        kind: LinkKind::Duplicate,
        target_id: kept.id.to_string(),
        reason: "t".into(),
    };
    assert_eq!(s.apply_dedupe(run, &[link]).await.unwrap(), 1);
    let target = |date: &str, minor: i64, count: u64| ReconcileTarget {
        source: "truv".into(),
        account: account.clone(),
        date: d(date),
        currency,
        reported: SourceDailyTotal { net_total: Money::from_minor_units(minor, currency), transaction_count: count },
        scope: vec![account.clone()],
        origin: "test".into(),
    };
    s.save_source_totals(run, &[target("2024-03-02", -1250, 2), target("2024-03-03", -2, 1)]).await.unwrap();
    assert_eq!(s.status(1).await.unwrap().source_totals.unreconciled, 2);
    let mismatches = s.reconcile_source_totals(None).await.unwrap();
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert_eq!(mismatches[0].target, target("2024-03-03", -2, 1));
    assert_eq!((mismatches[0].computed_net, mismatches[0].computed_count), (Money::from_minor_units(-1, currency), 1));
    let totals = s.status(1).await.unwrap().source_totals;
    assert_eq!((totals.matching, totals.mismatching, totals.unreconciled), (1, 1, 0));
    assert_eq!(totals.mismatches, mismatches);
    // A corrected figure replaces the old one and its result.
    s.save_source_totals(run, &[target("2024-03-03", -1, 1)]).await.unwrap();
    let totals = s.status(1).await.unwrap().source_totals;
    assert_eq!((totals.matching, totals.mismatching, totals.unreconciled), (1, 0, 1));
    assert_eq!(s.source_totals(Some(d("2024-03-03"))).await.unwrap(), [target("2024-03-03", -1, 1)]);
    assert!(s.reconcile_source_totals(Some(d("2024-03-03"))).await.unwrap().is_empty());
    assert_eq!(s.status(1).await.unwrap().source_totals.matching, 2);
}
every_store!(source_totals_reconcile_against_counted_rows_on_every_store, source_totals_reconcile_against_counted_rows);

/// A SQLite database `state.db` in a new directory, migrated by the
/// migration files named before `first_missing` only (as an older bankpipe
/// left it), and a pool on it.
async fn sqlite_before(first_missing: &str) -> (tempfile::TempDir, sqlx::SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("migrations");
    std::fs::create_dir_all(&old).unwrap();
    for entry in std::fs::read_dir(root().join("crates/store/migrations/sqlite")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < first_missing {
            std::fs::copy(&path, old.join(name)).unwrap();
        }
    }
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let options: sqlx::sqlite::SqliteConnectOptions =
        url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap().create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
    (dir, pool)
}

/// A database written by the previous bankpipe (migrations 1–4) with what
/// that version could leave behind: two deliveries recorded for one sink
/// row (twins reconciled to the same row) and a row in flight sent without
/// a marker. Opening it with this bankpipe must keep the first, queue the
/// second again, and fail the unreconcilable one with its reason.
#[tokio::test(flavor = "multi_thread")]
async fn upgrading_a_ledger_without_markers_loses_nothing_and_resends_nothing_blindly() {
    use bankpipe_store::DeliveryState::*;
    let (dir, pool) = sqlite_before("0005").await;
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    for (id, state, remote) in
        [("a", "delivered", Some("r1")), ("b", "delivered", Some("r1")), ("c", "in_flight", None)]
    {
        sqlx::query(
            "INSERT INTO deliveries (sink, transaction_id, state, remote_id, updated_at) VALUES ('mb', ?, ?, ?, 'x')",
        )
        .bind(id)
        .bind(state)
        .bind(remote)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let s = SqliteStore::open(&url).await.unwrap();
    let a = s.delivery("mb", "a").await.unwrap().unwrap();
    let b = s.delivery("mb", "b").await.unwrap().unwrap();
    let c = s.delivery("mb", "c").await.unwrap().unwrap();
    assert_eq!((a.state, a.remote_id.as_deref()), (Delivered, Some("r1")));
    assert_eq!((b.state, b.remote_id.as_deref()), (Pending, None), "queued again: r1 is a's row");
    assert_eq!(c.state, Failed);
    assert!(c.reason.unwrap().contains("without an idempotency marker"));
}

/// The rows `sql` reads from the SQLite file `db`, on a connection of its own.
async fn read_db<T>(db: &Path, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
    pool.close().await;
    rows
}

/// The indexes of `transactions` that have a definition, as SQLite lists them.
async fn transaction_indexes(db: &Path) -> Vec<(String, String)> {
    read_db(
        db,
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' AND sql IS NOT NULL \
         ORDER BY name",
    )
    .await
}

/// A first load into an empty SQLite store defers the secondary indexes of
/// `transactions` and builds exactly the same ones again; a store holding
/// rows never defers; a process that died in between leaves them to the
/// next one that opens the database while no sync holds its lock.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_load_defers_the_indexes_and_builds_the_same_ones() {
    let (dir, s) = sqlite().await;
    let db = dir.path().join("state.db");
    let schema = transaction_indexes(&db).await;
    assert!(schema.len() >= 5, "{schema:?}");

    assert!(s.defer_indexes().await.unwrap(), "an empty store defers");
    assert!(transaction_indexes(&db).await.is_empty());
    let (txs, accounts, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let run = s.begin_run(RunKind::Backfill).await.unwrap();
    let written = s.write_page(run, &accounts, &txs, &[]).await.unwrap();
    assert!(written.inserted > 0);
    // Reads that would use the missing indexes give the same answers.
    let mut order = Vec::new();
    s.for_each_transaction(|t| {
        order.push((t.booking_date, t.id.to_string()));
        Ok(())
    })
    .await
    .unwrap();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "(booking date, id) order without the index");
    assert_eq!(s.build_deferred_indexes().await.unwrap(), schema.len() as u64);
    assert_eq!(transaction_indexes(&db).await, schema, "the same definitions, built again");
    assert_eq!(s.build_deferred_indexes().await.unwrap(), 0, "nothing left to build");
    assert!(!s.defer_indexes().await.unwrap(), "a store holding rows never defers");
    assert_eq!(transaction_indexes(&db).await, schema);

    // Deferred, then the process "dies": the next open builds them, unless
    // a sync holds the lock (it may be the load still under way).
    let (dir, s) = sqlite().await;
    let db = dir.path().join("state.db");
    let url = format!("sqlite://{}", db.display());
    assert!(s.defer_indexes().await.unwrap());
    let held = s.lock().await.unwrap();
    drop(SqliteStore::open(&url).await.unwrap());
    assert!(transaction_indexes(&db).await.is_empty(), "not built while the lock is held");
    drop(held);
    drop(s);
    drop(SqliteStore::open(&url).await.unwrap());
    assert_eq!(transaction_indexes(&db).await, schema, "built by the next open");
}

/// PostgreSQL keeps its indexes (other workers read them while one loads),
/// and the in-memory store has none to defer.
#[tokio::test(flavor = "multi_thread")]
async fn only_sqlite_defers_indexes() {
    let memory = bankpipe_store::MemoryStore::new("defer");
    assert!(!memory.defer_indexes().await.unwrap());
    assert_eq!(memory.build_deferred_indexes().await.unwrap(), 0);
    if let Some(p) = postgres("defer_indexes").await {
        assert!(!p.defer_indexes().await.unwrap(), "an empty PostgreSQL store keeps its indexes");
        assert_eq!(p.build_deferred_indexes().await.unwrap(), 0);
    }
}

/// A page is written whole or not at all, even when a statement fails part
/// way: the SQLite upserts are `INSERT OR FAIL` (no statement journal), so
/// the rows a failing statement already wrote are undone only because the
/// error rolls the whole write transaction back. A trigger makes the third
/// row fail.
#[tokio::test(flavor = "multi_thread")]
async fn a_statement_failing_part_way_leaves_nothing_of_its_page() {
    let (dir, s) = sqlite().await;
    let (txs, accounts, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    let mut page = txs.clone();
    page.sort_by_key(|t| t.id);
    page.dedup_by_key(|t| t.id);
    assert!(page.len() >= 4);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("state.db").display())).await.unwrap();
    sqlx::query(&format!(
        "CREATE TRIGGER fail_third BEFORE INSERT ON transactions WHEN NEW.id = '{}' \
         BEGIN SELECT RAISE(FAIL, 'the third row fails'); END",
        page[2].id
    ))
    .execute(&pool)
    .await
    .unwrap();
    let run = s.begin_run(RunKind::Backfill).await.unwrap();
    let err = s.write_page(run, &accounts, &page, &[]).await.unwrap_err();
    assert!(err.to_string().contains("the third row fails"), "{err}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 0, "the rows before the failing one are rolled back with it");
    let accounts_stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(&pool).await.unwrap();
    assert_eq!(accounts_stored, 0, "and the page's accounts");
    sqlx::query("DROP TRIGGER fail_third").execute(&pool).await.unwrap();
    assert_eq!(s.write_page(run, &accounts, &page, &[]).await.unwrap().inserted, page.len() as u64);
}

/// Every row of `s`, printed, in (booking date, id) order.
async fn printed_rows<S: Store>(s: &S) -> Vec<String> {
    let mut rows = Vec::new();
    s.for_each_transaction(|t| {
        rows.push(format!("{t:?}"));
        Ok(())
    })
    .await
    .unwrap();
    rows
}

/// The columns an upsert keeps or derives, which `Transaction` does not
/// carry, in id order.
async fn kept_columns(db: &Path) -> Vec<(String, i64, i64, bool, Option<String>)> {
    read_db(db, "SELECT id, first_run, last_run, seen_pending, superseded_by FROM transactions ORDER BY id, rowid")
        .await
}

/// While a first load has the id index deferred, its rows are found by the
/// rowid it gave them: an id seen again (on a later batch, twice in one
/// batch, pending then posted) must still update its one row, keeping
/// `first_run` and `seen_pending` as the upsert keeps them. The same
/// writes into a store that never deferred are the reference: the same
/// counts, the same rows, the same kept columns.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_load_that_sees_an_id_again_writes_what_a_loaded_store_writes() {
    use bankpipe_store::PageWrite;
    let (txs, accounts, _) = fixture(SourceKind::Truv, "fixtures/truv/multipage");
    assert!(txs.len() >= 6, "{}", txs.len());
    let newer = |t: &Transaction, what: &str| {
        let mut t = t.clone();
        t.description = format!("{} ({what})", t.description);
        t.updated_at = Some(t.updated_at.unwrap_or_default() + chrono::Duration::days(1));
        t
    };
    let half = txs.len() / 2;
    let mut first = txs[..half].to_vec();
    first[1].status = Status::Pending;
    // A later batch: the rest, a newer copy of the first row and the
    // posted copy of the pending one.
    let mut second = txs[half..].to_vec();
    second.push(newer(&txs[0], "again"));
    second.push(newer(&txs[1], "posted"));
    // One batch of two pages sighting the same id.
    let (p1, p2) = (vec![newer(&txs[half], "page 1")], vec![newer(&newer(&txs[half], "page 1"), "page 2")]);

    /// Each batch in a run of its own; the counts of each.
    async fn apply<S: Store>(
        s: &S,
        batches: &[Vec<Vec<Transaction>>],
        accounts: &[bankpipe_model::Account],
    ) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::new();
        for batch in batches {
            let run = s.begin_run(RunKind::Backfill).await.unwrap();
            let writes: Vec<PageWrite<'_>> =
                batch.iter().map(|p| PageWrite { accounts, transactions: p, quarantine: &[] }).collect();
            let c = s.write_pages(run, &writes).await.unwrap();
            out.push((c.inserted, c.updated, c.unchanged));
        }
        out
    }
    let scenarios: [Vec<Vec<Vec<Transaction>>>; 2] =
        [vec![vec![first.clone()], vec![second.clone()]], vec![vec![first.clone(), second.clone()], vec![p1, p2]]];
    for batches in scenarios {
        let (reference_dir, reference) = sqlite().await;
        let (dir, s) = sqlite().await;
        let db = dir.path().join("state.db");
        let schema = transaction_indexes(&db).await;
        assert!(schema.iter().any(|(name, sql)| name == "transactions_id" && sql.starts_with("CREATE UNIQUE INDEX")));
        assert!(s.defer_indexes().await.unwrap());
        assert!(transaction_indexes(&db).await.is_empty(), "the id index is deferred too");

        let expected = apply(&reference, &batches, &accounts).await;
        assert_eq!(apply(&s, &batches, &accounts).await, expected, "the same counts");
        assert!(expected.iter().map(|c| c.1).sum::<u64>() >= 2, "ids seen again are updates: {expected:?}");
        assert!(transaction_indexes(&db).await.is_empty(), "still deferred");
        assert_eq!(printed_rows(&s).await, printed_rows(&reference).await, "the same rows");
        let kept = kept_columns(&db).await;
        assert_eq!(kept, kept_columns(&reference_dir.path().join("state.db")).await, "the same kept columns");
        assert!(kept.iter().any(|(_, first_run, last_run, seen_pending, _)| first_run < last_run && *seen_pending));

        assert_eq!(s.build_deferred_indexes().await.unwrap(), schema.len() as u64);
        assert_eq!(transaction_indexes(&db).await, schema, "unique: no id was stored twice");
        // From here on every write looks its ids up.
        let again = apply(&s, &[vec![first.clone()]], &accounts).await;
        assert_eq!(again, apply(&reference, &[vec![first.clone()]], &accounts).await);
        assert_eq!(again[0].0, 0, "nothing inserted twice");
    }
}

/// Migration 0013 rebuilds `transactions` (the id becomes a unique index a
/// first load can defer): a database written before it keeps its rows and
/// ends with exactly the indexes of a fresh one; the id stays unique.
#[tokio::test(flavor = "multi_thread")]
async fn the_id_index_migration_keeps_rows_and_uniqueness() {
    let (dir, pool) = sqlite_before("0013").await;
    let db = dir.path().join("state.db");
    let url = format!("sqlite://{}", db.display());
    let insert = "INSERT INTO transactions (id, source, source_account_id, source_transaction_id, status, \
                  booking_date, amount_minor, currency, description, category_source, kind, memo_only, source_status, \
                  source_type, source_categories, fingerprint, first_run, last_run, superseded_by) \
                  VALUES (?, 'truv', 'a1', ?, 'posted', '2024-03-01', -1250, 'USD', 'coffee', 'mcc', 'purchase', 0, \
                  'POSTED', 'DEBIT', '[]', 'f', 1, 1, ?)";
    for (id, superseded_by) in [
        ("00000000000000000000000000000001", None),
        ("00000000000000000000000000000002", Some("00000000000000000000000000000001")),
    ] {
        sqlx::query(insert).bind(id).bind(id).bind(superseded_by).execute(&pool).await.unwrap();
    }
    // An interrupted first load's leftovers describe the old table.
    sqlx::query("INSERT INTO deferred_indexes (name, sql) VALUES ('transactions_pending', 'CREATE INDEX x ON y (z)')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let s = SqliteStore::open(&url).await.unwrap();
    let kept = s.transaction("00000000000000000000000000000002").await.unwrap().expect("kept");
    assert_eq!((kept.amount.to_minor_units().unwrap(), kept.description.as_str()), (-1250, "coffee"));
    assert_eq!(kept.superseded_by.map(|i| i.to_string()).as_deref(), Some("00000000000000000000000000000001"));
    assert_eq!(printed_rows(&s).await.len(), 2);
    let (fresh_dir, _fresh) = sqlite().await;
    assert_eq!(transaction_indexes(&db).await, transaction_indexes(&fresh_dir.path().join("state.db")).await);
    assert_eq!(s.build_deferred_indexes().await.unwrap(), 0, "the leftovers were dropped with the old table");
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let twice = sqlx::query(insert)
        .bind("00000000000000000000000000000001")
        .bind("t3")
        .bind(None::<String>)
        .execute(&pool)
        .await;
    assert!(twice.unwrap_err().to_string().contains("UNIQUE constraint failed: transactions.id"));
}

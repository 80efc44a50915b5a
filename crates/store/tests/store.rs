//! Store semantics, run against SQLite and (when BANKPIPE_TEST_DATABASE_URL
//! is set) PostgreSQL — the same test bodies for both backends.

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
    let schema = format!("t_{}_{}", test, fastrand::u64(..));
    Some(PgStore::open_in_schema(&url, Some(&schema)).await.expect("PostgreSQL from BANKPIPE_TEST_DATABASE_URL"))
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

async fn upsert_is_idempotent_and_newest_wins<S: Store>(s: &S) {
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
    assert_eq!(s.write_page(run, &[], &[edited.clone()], &[]).await.unwrap().updated, 1);
    let mut stale = t4.clone();
    stale.description = "stale".into();
    stale.updated_at = Some("2024-03-01T00:00:00Z".parse().unwrap());
    assert_eq!(s.write_page(run, &[], &[stale], &[]).await.unwrap().unchanged, 1);
    assert_eq!(s.transaction(&t4.id.to_string()).await.unwrap().unwrap().description, "TRATTORIA ROMA (edited)");
}
both_backends!(upsert_is_idempotent_and_newest_wins_on_both, upsert_is_idempotent_and_newest_wins);

async fn transactions_round_trip_exactly<S: Store>(s: &S) {
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
both_backends!(transactions_round_trip_exactly_on_both, transactions_round_trip_exactly);

async fn many_rows_stream_in_order<S: Store>(s: &S) {
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
both_backends!(many_rows_stream_in_order_on_both, many_rows_stream_in_order);

async fn watermarks_never_move_backwards<S: Store>(s: &S) {
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    s.advance_watermarks(run, "truv", &[("a".into(), d("2024-03-10")), ("b".into(), d("2024-03-01"))]).await.unwrap();
    s.advance_watermarks(run, "truv", &[("a".into(), d("2024-02-01")), ("b".into(), d("2024-03-05"))]).await.unwrap();
    let w = s.watermarks("truv").await.unwrap();
    let dates: Vec<(String, NaiveDate)> = w.into_iter().map(|w| (w.source_account_id, w.booking_date)).collect();
    assert_eq!(dates, [("a".into(), d("2024-03-10")), ("b".into(), d("2024-03-05"))]);
    assert!(s.watermarks("firefly").await.unwrap().is_empty());
}
both_backends!(watermarks_never_move_backwards_on_both, watermarks_never_move_backwards);

async fn dedupe_decisions_persist_once<S: Store>(s: &S) {
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
both_backends!(dedupe_decisions_persist_once_on_both, dedupe_decisions_persist_once);

async fn runs_checkpoints_and_status<S: Store>(s: &S) {
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
both_backends!(runs_checkpoints_and_status_on_both, runs_checkpoints_and_status);

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
    assert_eq!(s.enqueue_deliveries("tp", false).await.unwrap(), 6);
    assert_eq!(s.enqueue_deliveries("tp", false).await.unwrap(), 0, "queued once");
    assert_eq!(s.enqueue_deliveries("mb", true).await.unwrap(), 7, "pending rows only when asked");
    let queued = s.deliveries("tp", Pending, None, 100).await.unwrap();
    let page = s.deliveries("tp", Pending, Some(&queued[1]), 2).await.unwrap();
    assert_eq!(page, queued[2..4].to_vec(), "keyset cursor");
    assert_eq!(queued.len(), 6);
    let first = queued[0].id.to_string();
    s.set_delivery("tp", &first, InFlight, None, None).await.unwrap();
    assert_eq!(s.deliveries("tp", InFlight, None, 100).await.unwrap().len(), 1);
    s.set_delivery("tp", &first, Delivered, Some("remote-1"), None).await.unwrap();
    let t = &queued[0];
    let ids =
        s.delivered_remote_ids("tp", &t.source, &t.source_account_id, t.booking_date, t.booking_date).await.unwrap();
    assert_eq!(ids, ["remote-1"]);
    s.set_delivery("tp", &queued[1].id.to_string(), Failed, None, Some("validation-error: bad payee")).await.unwrap();
    let report = s.status(1).await.unwrap();
    let tp = report.deliveries.iter().find(|d| d.0 == "tp").unwrap();
    assert_eq!((tp.1, tp.2, tp.3), (4, 1, 1), "waiting, failed, delivered");
    // A queued row that becomes a duplicate leaves the queue.
    let victim = queued[2].id.to_string();
    let link = DedupeLink {
        transaction_id: victim.clone(),
        kind: LinkKind::Duplicate,
        target_id: first.clone(),
        reason: "t".into(),
    };
    s.apply_dedupe(run, &[link]).await.unwrap();
    s.enqueue_deliveries("tp", false).await.unwrap();
    assert!(s.deliveries("tp", Pending, None, 100).await.unwrap().iter().all(|t| t.id.to_string() != victim));
    // Sink accounts are remembered.
    assert_eq!(s.sink_account("tp", "truv", "chk-001").await.unwrap(), None);
    s.set_sink_account("tp", "truv", "chk-001", "acc-9").await.unwrap();
    assert_eq!(s.sink_account("tp", "truv", "chk-001").await.unwrap().as_deref(), Some("acc-9"));
}
both_backends!(deliveries_move_through_the_outbox_states_on_both, deliveries_move_through_the_outbox_states);

//! Rounds, units and leases (DESIGN §7, issue #13), on SQLite and (when
//! BANKPIPE_TEST_DATABASE_URL is set) PostgreSQL: the same bodies for both,
//! plus PostgreSQL-only races between separately connected workers.

use std::path::Path;
use std::time::Duration;

use bankpipe_model::Transaction;
use bankpipe_sources::recorded::walk_dir;
use bankpipe_sources::{NormalizeContext, PageError, SourceKind};
use bankpipe_store::leases::{DeliveryScope, Fence, Phase, UnitSpec, WorkerInfo};
use bankpipe_store::prelude::*;
use bankpipe_store::{DeliveryState, PgStore, RunKind, SqliteStore, StoreError};
use chrono::NaiveDate;

fn rows() -> Vec<Transaction> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut out = Vec::new();
    walk_dir::<PageError, _>(
        SourceKind::Truv,
        &NormalizeContext::new("truv"),
        &root.join("fixtures/truv/multipage"),
        |_, p| {
            out.extend(p.transactions);
            Ok(())
        },
    )
    .unwrap();
    out
}

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    (dir, SqliteStore::open(&url).await.unwrap())
}

fn pg_url(test: &str) -> Option<String> {
    match std::env::var("BANKPIPE_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!("NOTICE: {test}: PostgreSQL half skipped: BANKPIPE_TEST_DATABASE_URL is not set");
            None
        }
    }
}

fn worker(id: &str, hash: &str) -> WorkerInfo {
    WorkerInfo { id: id.into(), host: "test".into(), pid: 1, node: "test-node".into(), config_hash: hash.into() }
}

fn units() -> Vec<UnitSpec> {
    vec![
        UnitSpec { unit: "fetch:a".into(), phase: Phase::Fetch },
        UnitSpec { unit: "fetch:b".into(), phase: Phase::Fetch },
        UnitSpec { unit: "dedupe".into(), phase: Phase::Dedupe },
        UnitSpec { unit: "deliver:tp:*".into(), phase: Phase::Deliver },
    ]
}

macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            let (_dir, s) = sqlite().await;
            $body(&s).await;
            if let Some(url) = pg_url(stringify!($name)) {
                let name = stringify!($name);
                let schema = format!("t_{}_{}", &name[..name.len().min(40)], fastrand::u64(..));
                $body(&PgStore::open_in_schema(&url, Some(&schema)).await.unwrap()).await;
            }
        }
    };
}

/// A worker paused past its lease's expiry cannot commit: its watermark
/// move, its delivery state changes and its unit's result are refused once
/// another worker has claimed the unit — and even before (expired is enough).
async fn a_stale_holder_cannot_commit<S: Store>(s: &S) {
    let joined = s.join_round(&worker("a", "h"), "sync", &units(), 300).await.unwrap();
    assert!(joined.created);
    let a = s.claim_unit(joined.round, Phase::Fetch, "a", 300).await.unwrap().unwrap();
    assert_eq!((a.unit.as_str(), a.attempts), ("fetch:a", 1));
    let fence_a = Fence { round: joined.round, unit: a.unit.clone(), owner: "a".into(), margin_ms: 0 };
    let held = s.bound(fence_a.clone(), None);
    // While held, fenced writes go through.
    held.advance_watermarks(1, "a", &[("acct".into(), "2024-03-01".parse::<NaiveDate>().unwrap())]).await.unwrap();

    tokio::time::sleep(Duration::from_millis(450)).await; // "paused" past the expiry
    let expired = held.advance_watermarks(1, "a", &[("acct".into(), "2024-03-09".parse().unwrap())]).await;
    assert!(matches!(expired, Err(StoreError::LeaseLost { .. })), "{expired:?}");

    // Another worker claims: units never claimed come first (fewest
    // attempts), then the expired lease.
    s.join_round(&worker("b", "h"), "sync", &units(), 300).await.unwrap();
    let b = s.claim_unit(joined.round, Phase::Fetch, "b", 60_000).await.unwrap().unwrap();
    assert_eq!(b.unit, "fetch:b", "fewest attempts first");
    let b2 = s.claim_unit(joined.round, Phase::Fetch, "b", 60_000).await.unwrap().unwrap();
    assert_eq!((b2.unit.as_str(), b2.attempts), ("fetch:a", 2), "the expired lease is claimed again");

    let stale = held.advance_watermarks(1, "a", &[("acct".into(), "2024-03-09".parse().unwrap())]).await;
    assert!(matches!(stale, Err(StoreError::LeaseLost { .. })), "{stale:?}");
    assert!(matches!(s.finish_unit(&fence_a, "{}", None).await, Err(StoreError::LeaseLost { .. })));
    assert_eq!(
        s.watermarks("a").await.unwrap()[0].booking_date.to_string(),
        "2024-03-01",
        "the stale move is not stored"
    );

    let fence_b = Fence { round: joined.round, unit: "fetch:a".into(), owner: "b".into(), margin_ms: 0 };
    s.bound(fence_b.clone(), None)
        .advance_watermarks(1, "a", &[("acct".into(), "2024-03-09".parse().unwrap())])
        .await
        .unwrap();
    s.finish_unit(&fence_b, r#"{"ok":true}"#, None).await.unwrap();
    let results = s.unit_results(joined.round, Phase::Fetch).await.unwrap();
    assert_eq!(results, vec![("fetch:a".to_owned(), Some(r#"{"ok":true}"#.to_owned()), None)]);
}
both_backends!(a_stale_holder_cannot_commit_on_both, a_stale_holder_cannot_commit);

/// A delivery may only begin with enough lease left to be answered; a
/// lost lease stops it with `LeaseLost`, not a silent "someone else took
/// the row"; the scope limits the queue a delivery unit reads.
async fn deliveries_are_fenced_and_scoped<S: Store>(s: &S) {
    let txs = rows();
    let run = s.begin_run(RunKind::Sync).await.unwrap();
    s.write_page(run, &[], &txs, &[]).await.unwrap();
    assert_eq!(s.enqueue_deliveries("tp", false, false).await.unwrap(), 6);
    let joined = s.join_round(&worker("a", "h"), "sync", &units(), 60_000).await.unwrap();
    for _ in 0..2 {
        s.claim_unit(joined.round, Phase::Fetch, "a", 60_000).await.unwrap().unwrap();
    }
    let fence = |margin_ms| Fence { round: joined.round, unit: "fetch:a".into(), owner: "a".into(), margin_ms };
    let queued = s.deliveries("tp", DeliveryState::Pending, None, 100).await.unwrap();
    let first = &queued[0].transaction;

    // 60 s lease, 10 s margin: goes.
    let ok = s.bound(fence(10_000), None);
    assert!(ok.begin_delivery("tp", first, "#bp1", "{}").await.unwrap());
    // A margin longer than the lease left: refused before anything is sent.
    let short = s.bound(fence(120_000), None);
    let second = &queued[1].transaction;
    let refused = short.begin_delivery("tp", second, "#bp2", "{}").await;
    assert!(matches!(refused, Err(StoreError::LeaseLost { .. })), "{refused:?}");
    assert_eq!(s.delivery("tp", &second.id.to_string()).await.unwrap().unwrap().state, DeliveryState::Pending);
    // Settling needs the lease too, but no margin.
    assert!(short
        .settle_delivery(
            "tp",
            &first.id.to_string(),
            DeliveryState::InFlight,
            DeliveryState::Delivered,
            Some("r1"),
            None
        )
        .await
        .unwrap());
    // A row another worker moved is still `false`, not a lost lease.
    assert!(!ok.begin_delivery("tp", first, "#bp1", "{}").await.unwrap());

    // Scope: one account's rows only, or every other account's.
    let account = first.source_account_id.clone();
    let key = format!("truv:{account}");
    let only = s.bound(fence(0), Some(DeliveryScope { accounts: vec![key.clone()], except: false }));
    let rest = s.bound(fence(0), Some(DeliveryScope { accounts: vec![key], except: true }));
    let mine = only.deliveries("tp", DeliveryState::Pending, None, 100).await.unwrap();
    let others = rest.deliveries("tp", DeliveryState::Pending, None, 100).await.unwrap();
    assert!(mine.iter().all(|q| q.transaction.source_account_id == account));
    assert!(others.iter().all(|q| q.transaction.source_account_id != account));
    assert_eq!(mine.len() + others.len(), queued.len() - 1, "each queued row in exactly one scope");
    let nothing = s.bound(fence(0), Some(DeliveryScope { accounts: vec![], except: false }));
    assert!(nothing.deliveries("tp", DeliveryState::Pending, None, 100).await.unwrap().is_empty());
}
both_backends!(deliveries_are_fenced_and_scoped_on_both, deliveries_are_fenced_and_scoped);

/// Phases open in order; the last unit done closes the round; a round
/// whose workers are all gone is abandoned and a fresh one starts.
async fn rounds_close_and_abandoned_rounds_are_replaced<S: Store>(s: &S) {
    let joined = s.join_round(&worker("a", "h"), "sync", &units(), 60_000).await.unwrap();
    let again = s.join_round(&worker("b", "h"), "sync", &units(), 60_000).await.unwrap();
    assert_eq!((again.round, again.created), (joined.round, false), "a live round is joined");
    assert_eq!(s.open_units(joined.round, Phase::Fetch).await.unwrap(), 2);
    assert_eq!(s.open_units(joined.round, Phase::Deliver).await.unwrap(), 4);
    for phase in Phase::ALL {
        while let Some(c) = s.claim_unit(joined.round, phase, "a", 60_000).await.unwrap() {
            let fence = Fence { round: joined.round, unit: c.unit, owner: "a".into(), margin_ms: 0 };
            s.finish_unit(&fence, "{}", None).await.unwrap();
        }
        assert_eq!(s.open_units(joined.round, phase).await.unwrap(), 0);
    }
    let report = s.coordination().await.unwrap();
    let round = report.round.unwrap();
    assert_eq!((round.id, round.outcome.as_deref(), round.done, round.units), (joined.round, Some("done"), 4, 4));
    let next = s.join_round(&worker("c", "h"), "sync", &units(), 60_000).await.unwrap();
    assert!(next.created && next.round > joined.round, "a finished round is not joined");

    // Every worker of `next` gone (no heartbeat for longer than the lease,
    // no lease held): the round is abandoned, a new one starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = s.join_round(&worker("d", "h"), "sync", &units(), 200).await.unwrap();
    assert!(fresh.created && fresh.round > next.round);
    let report = s.coordination().await.unwrap();
    assert_eq!(report.round.unwrap().id, fresh.round);
    assert!(report.workers.iter().any(|w| w.id == "d" && w.round == Some(fresh.round)));
    assert_eq!(report.open_units.len(), 4, "status lists the open units");
}
both_backends!(rounds_close_and_abandoned_rounds_are_replaced_on_both, rounds_close_and_abandoned_rounds_are_replaced);

/// A worker with another configuration is refused while the round is
/// live, with a message naming the worker in the way.
async fn mixed_configurations_are_refused<S: Store>(s: &S) {
    s.join_round(&worker("a", "hash-one"), "sync", &units(), 60_000).await.unwrap();
    let e = s.join_round(&worker("b", "hash-two"), "sync", &units(), 60_000).await.unwrap_err();
    assert!(matches!(e, StoreError::MixedConfig(_)), "{e}");
    let text = e.to_string();
    assert!(text.contains("another configuration") && text.contains("pid 1"), "{text}");
}
both_backends!(mixed_configurations_are_refused_on_both, mixed_configurations_are_refused);

/// Runs of live workers are never marked interrupted by another worker's
/// start; those of gone workers are.
async fn only_gone_workers_runs_are_interrupted<S: Store>(s: &S) {
    s.join_round(&worker("a", "h"), "sync", &units(), 60_000).await.unwrap();
    s.join_round(&worker("b", "h"), "sync", &units(), 60_000).await.unwrap();
    let run_a = s.begin_worker_run(RunKind::Sync, "a").await.unwrap();
    let run_b = s.begin_worker_run(RunKind::Sync, "b").await.unwrap();
    s.finish_worker("a", "ok").await.unwrap(); // a ended without finishing its run: killed
    s.begin_worker_run(RunKind::Sync, "c").await.unwrap();
    let status = s.status(10).await.unwrap();
    let outcome = |id| status.runs.iter().find(|r| r.id == id).unwrap().outcome.clone();
    assert_eq!(outcome(run_a), "interrupted");
    assert_eq!(outcome(run_b), "running", "a live worker's run is left alone");
    // Nor does a backfill's start (it holds the advisory lock, not a lease).
    s.begin_run(RunKind::Backfill).await.unwrap();
    let status = s.status(10).await.unwrap();
    assert_eq!(status.runs.iter().find(|r| r.id == run_b).unwrap().outcome, "running");
}
both_backends!(only_gone_workers_runs_are_interrupted_on_both, only_gone_workers_runs_are_interrupted);

/// PostgreSQL: four separately connected workers claiming at once never
/// get the same unit, and together claim every unit exactly once; four
/// simultaneous joins on a fresh schema make one round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_share_units_without_doubling() {
    let Some(url) = pg_url("concurrent_workers_share_units_without_doubling") else { return };
    let schema = format!("t_concurrent_claims_{}", fastrand::u64(..));
    let many: Vec<UnitSpec> =
        (0..200).map(|i| UnitSpec { unit: format!("fetch:s{i:03}"), phase: Phase::Fetch }).collect();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (url, schema, many) = (url.clone(), schema.clone(), many.clone());
        tasks.push(tokio::spawn(async move {
            let s = PgStore::open_in_schema(&url, Some(&schema)).await.unwrap();
            let id = format!("w{w}");
            let joined = s.join_round(&worker(&id, "h"), "sync", &many, 60_000).await.unwrap();
            let mut mine = Vec::new();
            while let Some(c) = s.claim_unit(joined.round, Phase::Fetch, &id, 60_000).await.unwrap() {
                let fence = Fence { round: joined.round, unit: c.unit.clone(), owner: id.clone(), margin_ms: 0 };
                s.finish_unit(&fence, "{}", None).await.unwrap();
                mine.push(c.unit);
            }
            (joined.round, mine)
        }));
    }
    let mut rounds = std::collections::BTreeSet::new();
    let mut all = Vec::new();
    for t in tasks {
        let (round, mine) = t.await.unwrap();
        rounds.insert(round);
        all.extend(mine);
    }
    assert_eq!(rounds.len(), 1, "simultaneous starts join one round: {rounds:?}");
    all.sort();
    let want: Vec<String> = many.iter().map(|u| u.unit.clone()).collect();
    assert_eq!(all, want, "every unit claimed exactly once");
}

/// A heartbeat renews only the unit the worker is working on: a unit it
/// gave up without recording (its session was cut then) expires and is
/// claimed again — by the same worker or another — instead of being kept
/// alive forever by a worker that no longer works on it.
async fn a_heartbeat_renews_only_the_unit_in_hand<S: Store>(s: &S) {
    let joined = s.join_round(&worker("a", "h"), "sync", &units(), 300).await.unwrap();
    let abandoned = s.claim_unit(joined.round, Phase::Fetch, "a", 300).await.unwrap().unwrap();
    let in_hand = s.claim_unit(joined.round, Phase::Fetch, "a", 300).await.unwrap().unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let renewed = s.heartbeat("a", Some((joined.round, &in_hand.unit)), 300).await.unwrap();
        assert_eq!(renewed, 1);
    }
    let again = s.claim_unit(joined.round, Phase::Fetch, "a", 300).await.unwrap().unwrap();
    assert_eq!((again.unit, again.attempts), (abandoned.unit, 2), "the abandoned unit expired and is claimed again");
    assert_eq!(s.heartbeat("a", None, 300).await.unwrap(), 0, "nothing in hand, nothing renewed");
}
both_backends!(a_heartbeat_renews_only_the_unit_in_hand_on_both, a_heartbeat_renews_only_the_unit_in_hand);

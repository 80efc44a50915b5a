//! The decision rules of the PostgreSQL shared rate budget
//! (`SharedRateBudgets`): reserve and observe, one worker or several, on
//! the database's clock. Skipped (with a notice) when
//! BANKPIPE_TEST_DATABASE_URL is not set; SQLite shares nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bankpipe_store::prelude::*;
use bankpipe_store::{PgStore, RateObservation, RatePacing, RateVerdict, SharedRateBudgets, SqliteStore};

const ORIGIN: &str = "https://api.trupocket.test:443";

/// `workers` PostgreSQL stores on one fresh schema, each with its own
/// connection pool (as separate processes would have), or `None`.
async fn workers(test: &str, workers: usize) -> Option<Vec<PgStore>> {
    let Ok(url) = std::env::var("BANKPIPE_TEST_DATABASE_URL") else {
        eprintln!("NOTICE: {test}: skipped: BANKPIPE_TEST_DATABASE_URL is not set");
        return None;
    };
    // The random part first: PostgreSQL cuts identifiers at 63 bytes, and a
    // long test name must not cut it off (runs would share one schema).
    let mut schema = format!("t{:016x}_{test}", fastrand::u64(..));
    schema.truncate(63);
    let mut out = Vec::new();
    for _ in 0..workers {
        out.push(PgStore::open_in_schema(&url, Some(&schema)).await.expect("PostgreSQL"));
    }
    Some(out)
}

fn shared(s: &PgStore) -> SharedRateBudgets {
    s.shared_rate_budgets().expect("PostgreSQL shares its rate budgets")
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn unix_ms_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn counts(limit: i64, remaining: i64, reset_unix: i64) -> RateObservation {
    RateObservation {
        limit: Some(limit),
        remaining: Some(remaining),
        reset_unix: Some(reset_unix),
        status: 200,
        ..RateObservation::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_shares_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&format!("sqlite://{}", dir.path().join("state.db").display())).await.unwrap();
    assert!(s.shared_rate_budgets().is_none(), "one worker per SQLite file: the local gate decides");
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_then_paced_then_exhausted() {
    let Some(w) = workers("probe_paced", 1).await else { return };
    let b = shared(&w[0]);
    let pacing = RatePacing::default();
    let first = b.reserve(ORIGIN, &pacing).await.unwrap();
    assert_eq!(first.verdict, RateVerdict::Probe, "nothing known: the first request probes");
    let second = b.reserve(ORIGIN, &pacing).await.unwrap();
    assert_eq!(second.verdict, RateVerdict::AwaitingProbe);
    assert!(second.wait_ms.unwrap() <= 10, "waiters ask again every probe_poll: {second:?}");
    assert!(w[0].rate_budget(ORIGIN).await.unwrap().is_none(), "no window known yet");

    let reset = unix_now() + 10;
    b.observe(ORIGIN, &counts(10, 9, reset)).await.unwrap();
    assert_eq!(w[0].rate_budget(ORIGIN).await.unwrap(), Some((Some(10), 9, reset)), "status reads the live row");
    assert_eq!(b.reserve(ORIGIN, &pacing).await.unwrap().verdict, RateVerdict::Paced);
    let pacing_wait = b.reserve(ORIGIN, &pacing).await.unwrap();
    assert_eq!(pacing_wait.verdict, RateVerdict::Pacing);
    // 9 left over 9–10 s: the next slot is about 1 s after the first.
    let wait = pacing_wait.wait_ms.unwrap();
    assert!((800..=1200).contains(&wait), "paced (Reset − now) / Remaining apart: {wait} ms");
    assert_eq!(w[0].rate_budget(ORIGIN).await.unwrap(), Some((Some(10), 8, reset)), "one unit taken, not two");

    b.observe(ORIGIN, &counts(10, 0, reset)).await.unwrap();
    let spent = b.reserve(ORIGIN, &pacing).await.unwrap();
    assert_eq!(spent.verdict, RateVerdict::Exhausted);
    assert_eq!(spent.until_unix_ms, Some(reset * 1000), "wait for Reset");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_windows_are_spent_as_needed_and_ended_windows_probed() {
    let Some(w) = workers("as_needed", 1).await else { return };
    let b = shared(&w[0]);
    let pacing = RatePacing::default();
    let daily = "https://daily.test:443";
    b.observe(daily, &counts(20, 3, unix_now() + 80_000)).await.unwrap();
    for _ in 0..3 {
        assert_eq!(b.reserve(daily, &pacing).await.unwrap().verdict, RateVerdict::AsNeeded, "not one call an hour");
    }
    let r = b.reserve(daily, &pacing).await.unwrap();
    assert_eq!(r.verdict, RateVerdict::Exhausted);
    assert!(r.wait_ms.unwrap() > 70_000_000, "until Reset, the next day: {r:?}");

    let ended = "https://ended.test:443";
    b.observe(ended, &counts(20, 15, unix_now() - 1)).await.unwrap();
    assert_eq!(
        b.reserve(ended, &pacing).await.unwrap().verdict,
        RateVerdict::Probe,
        "a window that ended is re-probed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_order_counts_keep_the_lower_within_a_window() {
    let Some(w) = workers("out_of_order", 1).await else { return };
    let b = shared(&w[0]);
    let pacing = RatePacing::default();
    let reset = unix_now() + 100;
    b.observe(ORIGIN, &counts(10, 5, reset)).await.unwrap();
    assert_eq!(b.reserve(ORIGIN, &pacing).await.unwrap().verdict, RateVerdict::AsNeeded, "5 in 100 s");
    let left = || async { w[0].rate_budget(ORIGIN).await.unwrap().map(|(_, r, reset)| (r, reset)) };
    assert_eq!(left().await, Some((4, reset)));
    b.observe(ORIGIN, &counts(10, 5, reset)).await.unwrap();
    assert_eq!(left().await, Some((4, reset)), "an earlier response's count does not undo a reservation");
    b.observe(ORIGIN, &counts(10, 2, reset)).await.unwrap();
    assert_eq!(left().await, Some((2, reset)), "a lower server count wins");
    b.observe(ORIGIN, &counts(10, 9, reset - 100)).await.unwrap();
    assert_eq!(left().await, Some((2, reset)), "a straggler of an ended window changes nothing");
    b.observe(ORIGIN, &counts(10, 9, reset + 100)).await.unwrap();
    assert_eq!(left().await, Some((9, reset + 100)), "a later Reset starts a new window, its count as sent");
    b.observe(ORIGIN, &RateObservation { status: 502, ..RateObservation::default() }).await.unwrap();
    assert_eq!(left().await, Some((9, reset + 100)), "a response without headers changes no count");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_snapshot_never_undoes_what_other_workers_reserved() {
    let Some(w) = workers("snapshot_merge", 2).await else { return };
    let reset = unix_now() + 100;
    shared(&w[0]).observe(ORIGIN, &counts(10, 5, reset)).await.unwrap();
    // One process's local gate saw 9 left (it knew nothing of the others).
    w[1].save_rate_budget(ORIGIN, Some(10), 9, reset).await.unwrap();
    assert_eq!(w[0].rate_budget(ORIGIN).await.unwrap(), Some((Some(10), 5, reset)), "the lower count stands");
    w[1].save_rate_budget(ORIGIN, Some(10), 8, reset + 100).await.unwrap();
    assert_eq!(w[0].rate_budget(ORIGIN).await.unwrap(), Some((Some(10), 8, reset + 100)), "a later window is taken");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_seen_by_one_worker_holds_every_worker() {
    let Some(w) = workers("held", 2).await else { return };
    let (a, b) = (shared(&w[0]), shared(&w[1]));
    let pacing = RatePacing::default();
    a.observe(ORIGIN, &counts(100, 50, unix_now() + 100)).await.unwrap();
    assert_eq!(b.reserve(ORIGIN, &pacing).await.unwrap().verdict, RateVerdict::Paced);

    a.observe(ORIGIN, &RateObservation { status: 429, retry_after_ms: Some(3000), ..RateObservation::default() })
        .await
        .unwrap();
    let held = b.reserve(ORIGIN, &pacing).await.unwrap();
    assert_eq!(held.verdict, RateVerdict::Blocked, "the other worker holds too");
    let wait = held.wait_ms.unwrap();
    assert!((2800..=3000).contains(&wait), "for Retry-After (delta-seconds, on the database's clock): {wait}");

    // A shorter Retry-After arriving later never shortens the hold.
    a.observe(ORIGIN, &RateObservation { status: 429, retry_after_ms: Some(1000), ..RateObservation::default() })
        .await
        .unwrap();
    assert!(b.reserve(ORIGIN, &pacing).await.unwrap().wait_ms.unwrap() > 2500);

    // Retry-After as an HTTP-date.
    let date = "https://dated.test:443";
    let at = unix_ms_now() + 5000;
    a.observe(date, &RateObservation { status: 429, retry_at_unix_ms: Some(at), ..RateObservation::default() })
        .await
        .unwrap();
    let r = b.reserve(date, &pacing).await.unwrap();
    assert_eq!((r.verdict, r.until_unix_ms), (RateVerdict::Blocked, Some(at)));

    // No Retry-After: until Reset, when ahead.
    let reset_only = "https://reset-only.test:443";
    let reset = unix_now() + 30;
    a.observe(reset_only, &RateObservation { status: 429, ..counts(10, 0, reset) }).await.unwrap();
    let r = b.reserve(reset_only, &pacing).await.unwrap();
    assert_eq!((r.verdict, r.until_unix_ms), (RateVerdict::Blocked, Some(reset * 1000)));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_without_budget_headers_goes_unpaced_until_a_429() {
    let Some(w) = workers("unmetered", 1).await else { return };
    let b = shared(&w[0]);
    let pacing = RatePacing::default();
    let mibudge = "https://mibudge.test:443";
    assert_eq!(b.reserve(mibudge, &pacing).await.unwrap().verdict, RateVerdict::Probe);
    b.observe(mibudge, &RateObservation { status: 201, ..RateObservation::default() }).await.unwrap();
    for _ in 0..5 {
        assert_eq!(b.reserve(mibudge, &pacing).await.unwrap().verdict, RateVerdict::Unmetered);
    }
    b.observe(mibudge, &RateObservation { status: 429, retry_after_ms: Some(2000), ..RateObservation::default() })
        .await
        .unwrap();
    assert_eq!(b.reserve(mibudge, &pacing).await.unwrap().verdict, RateVerdict::Blocked);
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_one_worker_probes_until_its_claim_expires() {
    let Some(w) = workers("one_probe", 4).await else { return };
    let pacing = RatePacing { probe_hold: Duration::from_millis(300), ..RatePacing::default() };
    let tasks: Vec<_> = w
        .iter()
        .map(|s| {
            let b = shared(s);
            tokio::spawn(async move { b.reserve(ORIGIN, &pacing).await.unwrap().verdict })
        })
        .collect();
    let mut verdicts = Vec::new();
    for t in tasks {
        verdicts.push(t.await.unwrap());
    }
    verdicts.sort_by_key(|v| v.as_str());
    assert_eq!(
        verdicts,
        [RateVerdict::AwaitingProbe, RateVerdict::AwaitingProbe, RateVerdict::AwaitingProbe, RateVerdict::Probe]
    );
    // The probe's answer never came (its worker died): another one probes.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(shared(&w[2]).reserve(ORIGIN, &pacing).await.unwrap().verdict, RateVerdict::Probe);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_reservations_never_take_more_than_remains() {
    let Some(w) = workers("no_oversell", 4).await else { return };
    let pacing = RatePacing::default();
    // A long window (spent as needed, no pacing): only the count limits.
    shared(&w[0]).observe(ORIGIN, &counts(1000, 50, unix_now() + 3600)).await.unwrap();
    let tasks: Vec<_> = w
        .iter()
        .map(|s| {
            let b = shared(s);
            tokio::spawn(async move {
                let mut went = 0;
                for _ in 0..20 {
                    went += u32::from(b.reserve(ORIGIN, &pacing).await.unwrap().verdict.goes());
                }
                went
            })
        })
        .collect();
    let mut went = 0;
    for t in tasks {
        went += t.await.unwrap();
    }
    assert_eq!(went, 50, "80 asked, exactly the 50 remaining went");
    assert_eq!(w[0].rate_budget(ORIGIN).await.unwrap().map(|b| b.1), Some(0));
}

//! A worker's share of a round (DESIGN §7): claim the round's units phase
//! by phase, run each under its lease, record how it ended. Shared by
//! `sync` (fetch, dedupe, queue, deliver units) and `backfill` (window and
//! dedupe units); what a unit *does* is the caller's closure.

use std::future::Future;

use anyhow::Result;
use bankpipe_store::leases::{Claimed, Fence, Joined, Phase, UnitSpec, WorkerInfo};
use bankpipe_store::{RunId, RunKind, RunSummary, Store, StoreError};

use crate::leases::{self, LeaseTiming, LeaseWatch};

/// How a unit's work ended.
pub(crate) enum Ended {
    /// Record it done: its result (JSON), and its failure if it failed.
    Done(serde_json::Value, Option<String>),
    /// Give it back to be claimed again (a database error).
    Retry(String),
    /// The lease was lost: another worker has it; nothing to record.
    Lost,
}

/// Attempts at a unit whose work failed on the database before it is
/// recorded failed.
pub(crate) const MAX_ATTEMPTS: i32 = 3;

/// Classify a unit's failure: lost lease, a database error worth another
/// attempt, or (`None`) a final failure.
pub(crate) fn ended_by(err: &anyhow::Error, claimed: &Claimed) -> Option<Ended> {
    if leases::is_lease_lost(err) {
        return Some(Ended::Lost);
    }
    if leases::is_database_error(err) && claimed.attempts < MAX_ATTEMPTS {
        return Some(Ended::Retry(format!("{err:#}")));
    }
    None
}

/// Join the live round of `kind` (or start one with `units`) and record
/// this worker's run. Workers of this host that died (kill -9) are recorded
/// gone first, so a round only they worked on is not joined but started
/// afresh.
///
/// # Errors
/// A live round runs another configuration (`StoreError::MixedConfig`),
/// or the store is down.
pub(crate) async fn join<S: Store>(
    store: &S,
    worker: &WorkerInfo,
    kind: RunKind,
    units: &[UnitSpec],
    timing: &LeaseTiming,
) -> Result<(Joined, RunId), StoreError> {
    if let Err(e) = leases::reap_dead_neighbours(store, None, worker).await {
        tracing::warn!("looking for dead workers failed: {e}");
    }
    let joined = store.join_round(worker, kind.as_str(), units, timing.lease_ms()).await?;
    let run = store.begin_worker_run(kind, &worker.id).await?;
    tracing::info!(
        worker = %worker.id,
        round = joined.round,
        "{} {} round {} ({} units)",
        if joined.created { "started" } else { "joined" },
        kind.as_str(),
        joined.round,
        units.len()
    );
    Ok((joined, run))
}

/// Record the end of this worker's run (`record`) and of the worker.
///
/// # Errors
/// The run could not be recorded (a worker's end that could not is only
/// logged: its heartbeat ages and it counts as gone).
pub(crate) async fn finish<S: Store>(
    store: &S,
    worker: &WorkerInfo,
    run: RunId,
    record: &RunSummary,
) -> Result<(), StoreError> {
    store.finish_run(run, record).await?;
    if let Err(e) = store.finish_worker(&worker.id, &record.outcome).await {
        tracing::warn!(worker = %worker.id, "recording the worker's end failed: {e}");
    }
    Ok(())
}

/// Run `work` beside the worker's heartbeat (which renews the lease of the
/// unit in hand every sixth of the lease) until it finishes.
pub(crate) async fn with_heartbeat<S: Store, T>(
    store: &S,
    worker: &WorkerInfo,
    timing: &LeaseTiming,
    watch: &LeaseWatch,
    work: impl Future<Output = T>,
) -> T {
    let beat = leases::heartbeat(store, &worker.id, timing, watch);
    tokio::select! {
        r = work => r,
        () = beat => unreachable!("the heartbeat never ends"),
    }
}

/// Claim and run units of `round` phase by phase until it has none left.
/// Each unit runs under its local deadline ([`LeaseWatch::guard`]); its
/// end is recorded through a store fenced by its lease. A phase opens when
/// every unit of the earlier phases is done: while others hold units, a
/// dead neighbour's leases are freed, and the worker polls.
///
/// # Errors
/// Claiming or counting units failed on the database for longer than two
/// leases.
pub(crate) async fn work<S: Store>(
    store: &S,
    round: i64,
    worker: &WorkerInfo,
    timing: &LeaseTiming,
    watch: &LeaseWatch,
    mut run: impl AsyncFnMut(&Claimed, &Fence) -> Ended,
) -> Result<()> {
    let patience = timing.lease * 2;
    for phase in Phase::ALL {
        loop {
            let Some(claimed) = leases::claim(store, round, phase, &worker.id, timing, watch, patience).await? else {
                if leases::open_units(store, round, phase, patience).await? == 0 {
                    break;
                }
                match leases::reap_dead_neighbours(store, Some(round), worker).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!("looking for dead workers failed: {e}"),
                }
                tokio::time::sleep(timing.poll).await;
                continue;
            };
            let fence = timing.fence(round, &claimed.unit, &worker.id);
            let ended = watch.guard(run(&claimed, &fence)).await.unwrap_or(Ended::Lost);
            watch.released();
            let unit = &claimed.unit;
            let recorded = match ended {
                Ended::Done(result, error) => {
                    let result = result.to_string();
                    record(|| store.finish_unit(&fence, &result, error.as_deref())).await
                }
                Ended::Retry(why) => {
                    tracing::warn!(unit = %unit, attempt = claimed.attempts, "giving the unit back to retry: {why}");
                    record(|| store.release_unit(&fence, &why)).await
                }
                Ended::Lost => {
                    tracing::warn!(unit = %unit, "lease lost (expired or taken over): another worker finishes the unit");
                    Ok(())
                }
            };
            if let Err(e) = recorded {
                // Its lease expires and the unit is done again (units are idempotent).
                tracing::warn!(unit = %unit, "recording the unit failed: {e}");
            }
        }
    }
    Ok(())
}

/// Record a unit's end, retrying twice a second apart when the database
/// session drops (the pool reconnects); a lost lease is not retried. If it
/// still fails, the unit's lease — no longer renewed — expires and the unit
/// is done again.
async fn record<F, Fut>(write: F) -> Result<(), StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(StoreError::Database { .. }) if attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

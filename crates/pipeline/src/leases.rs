//! A worker's side of a round of leased units (DESIGN §7, issue #13; the
//! tables and SQL are `bankpipe_store::leases`).
//!
//! One worker runs one unit at a time; concurrency comes from running
//! several workers (processes, on one host or many) against one
//! PostgreSQL database. While it holds a unit:
//!
//! - a **heartbeat** extends its lease every sixth of the lease length;
//! - a **local deadline** — the instant the last successful claim or
//!   renewal was *sent*, plus the lease, minus a margin of a sixth — stops
//!   the unit's work (its future is dropped, an HTTP request in progress is
//!   abandoned) before the lease can expire in the database, so a worker
//!   whose heartbeats fail (database connection cut, process paused)
//!   stops sending before another worker may take the unit over;
//! - the store is **bound** to the lease: delivery state changes and
//!   watermark moves fail with `StoreError::LeaseLost` once it is gone.
//!
//! The one gap left is a request already handed to the network when the
//! process is frozen for longer than the margin; the sink's idempotency
//! marker (DESIGN §6) is what reconciliation finds then.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use bankpipe_store::leases::{Claimed, Fence, Phase, WorkerInfo};
use bankpipe_store::{StoreError, WorkLeases};

/// Lease timing of a worker.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTiming {
    /// How long a lease lasts without a heartbeat (`sync.lease_secs`).
    pub lease: Duration,
    /// How often a worker with nothing to claim looks again.
    pub poll: Duration,
}

impl LeaseTiming {
    /// From `sync.lease_secs`; polls every 200 ms.
    pub fn from_secs(lease_secs: u32) -> LeaseTiming {
        LeaseTiming { lease: Duration::from_secs(u64::from(lease_secs)), poll: Duration::from_millis(200) }
    }

    /// Heartbeat interval, and the safety margin: a sixth of the lease.
    pub fn sixth(&self) -> Duration {
        self.lease / 6
    }

    /// The lease in milliseconds.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// The fence of a claimed unit.
    pub fn fence(&self, round: i64, unit: &str, owner: &str) -> Fence {
        Fence {
            round,
            unit: unit.to_owned(),
            owner: owner.to_owned(),
            margin_ms: i64::try_from(self.sixth().as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// The local deadline of the unit a worker holds (see the module docs).
#[derive(Debug, Default)]
pub struct LeaseWatch {
    state: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    /// The held unit: (round, unit name).
    unit: Option<(i64, String)>,
    /// When the held unit's claim was sent; `None` while nothing is held.
    claimed: Option<Instant>,
    /// Work on the held unit stops at this instant.
    deadline: Option<Instant>,
}

impl LeaseWatch {
    /// Unit `unit` of `round` was claimed with a request sent at `sent`.
    pub fn claimed(&self, sent: Instant, timing: &LeaseTiming, round: i64, unit: &str) {
        let mut s = self.state.lock().expect("lease watch");
        s.unit = Some((round, unit.to_owned()));
        s.claimed = Some(sent);
        s.deadline = Some(sent + timing.lease - timing.sixth());
    }

    /// The held unit is done or given back.
    pub fn released(&self) {
        let mut s = self.state.lock().expect("lease watch");
        *s = WatchState::default();
    }

    /// A heartbeat sent at `sent` renewed `renewed` leases.
    pub fn renewed(&self, sent: Instant, renewed: u64, timing: &LeaseTiming) {
        let mut s = self.state.lock().expect("lease watch");
        let Some(claimed) = s.claimed else { return };
        if sent < claimed {
            return; // sent before the claim: says nothing of this lease
        }
        if renewed == 0 {
            // Another worker has it: stop now.
            s.deadline = Some(Instant::now());
        } else {
            let next = sent + timing.lease - timing.sixth();
            s.deadline = Some(s.deadline.map_or(next, |d| d.max(next)));
        }
    }

    /// Resolves when the held unit's deadline has passed (never while
    /// nothing is held).
    pub async fn expired(&self) {
        loop {
            let deadline = self.state.lock().expect("lease watch").deadline;
            match deadline {
                Some(d) if Instant::now() >= d => return,
                Some(d) => tokio::time::sleep_until(d).await,
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Run `work` until it finishes or the lease's local deadline passes
    /// (`None`: the work was dropped unfinished).
    pub async fn guard<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.expired() => None,
            r = work => Some(r),
        }
    }
}

/// Renew the lease of the unit `owner` is working on (and its worker
/// heartbeat) every sixth of the lease, forever (run it beside
/// the work, e.g. in a `select!`). Failures are logged and retried: the
/// local deadline stops the work if renewals keep failing.
pub async fn heartbeat<S: WorkLeases>(store: &S, owner: &str, timing: &LeaseTiming, watch: &LeaseWatch) {
    let mut failed = 0u32;
    loop {
        tokio::time::sleep(timing.sixth()).await;
        let sent = Instant::now();
        let held = watch.state.lock().expect("lease watch").unit.clone();
        match store.heartbeat(owner, held.as_ref().map(|(r, u)| (*r, u.as_str())), timing.lease_ms()).await {
            Ok(n) => {
                failed = 0;
                watch.renewed(sent, n, timing);
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(worker = owner, failures = failed, "heartbeat failed (retrying): {e}");
            }
        }
    }
}

/// Claim the next unit of `phase`, retrying database errors for up to
/// `patience` (a connection cut by the server is replaced by the pool).
///
/// # Errors
/// A database error that outlasts `patience`.
pub async fn claim<S: WorkLeases>(
    store: &S,
    round: i64,
    phase: Phase,
    owner: &str,
    timing: &LeaseTiming,
    watch: &LeaseWatch,
    patience: Duration,
) -> Result<Option<Claimed>, StoreError> {
    let started = Instant::now();
    loop {
        let sent = Instant::now();
        match store.claim_unit(round, phase, owner, timing.lease_ms()).await {
            Ok(Some(c)) => {
                watch.claimed(sent, timing, round, &c.unit);
                return Ok(Some(c));
            }
            Ok(None) => return Ok(None),
            Err(e) if started.elapsed() < patience => {
                tracing::warn!(worker = owner, "claiming a unit failed (retrying): {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Units of `round` up to `phase` not done yet, retrying database errors
/// like [`claim`].
///
/// # Errors
/// A database error that outlasts `patience`.
pub async fn open_units<S: WorkLeases>(
    store: &S,
    round: i64,
    phase: Phase,
    patience: Duration,
) -> Result<i64, StoreError> {
    let started = Instant::now();
    loop {
        match store.open_units(round, phase).await {
            Ok(n) => return Ok(n),
            Err(e) if started.elapsed() < patience => {
                tracing::warn!("reading the round failed (retrying): {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// This process as a worker: `host:pid:start nanos` and the hash of what
/// it runs (`config_hash`, see [`config_hash`]).
pub fn worker_info(config_hash: String) -> WorkerInfo {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let node = node(&host);
    WorkerInfo { id: format!("{host}:{pid}:{nanos:08x}"), host, pid: i64::from(pid), node, config_hash }
}

/// Host name, PID namespace and boot id (Linux): processes with the same
/// node see each other in `/proc`. Empty where that cannot be told, so no
/// other worker is ever judged by its pid.
fn node(host: &str) -> String {
    let pidns = std::fs::read_link("/proc/self/ns/pid").ok().map(|p| p.display().to_string());
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|b| b.trim().to_owned());
    match (pidns, boot) {
        (Some(ns), Some(boot)) if !boot.is_empty() => format!("{host}|{ns}|{boot}"),
        _ => String::new(),
    }
}

/// Expire the leases of workers on this node whose process is gone (kill
/// -9, a crash): their units need not wait for the lease to run out. Only
/// a worker on the same node (host, PID namespace, boot) is judged, by the
/// absence of `/proc/PID`; a reused pid only makes it wait for the expiry.
/// With `round` `None`, every unfinished worker is judged (before joining
/// a round: a round whose workers are all gone is not joined). Returns
/// how many were found dead (at least one per dead worker).
///
/// # Errors
/// Database errors.
pub async fn reap_dead_neighbours<S: WorkLeases>(
    store: &S,
    round: Option<i64>,
    me: &WorkerInfo,
) -> Result<u64, StoreError> {
    if me.node.is_empty() {
        return Ok(0);
    }
    let mut expired = 0;
    for (worker, node, pid) in store.lease_holders(round, &me.id).await? {
        if node == me.node && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let n = store.expire_worker(&worker).await?;
            tracing::warn!(worker = %worker, leases = n, "worker process {pid} is gone: its leases are released now");
            expired += n.max(1);
        }
    }
    Ok(expired)
}

/// A hash of `parts` (the configuration as the workers of a round must
/// share it, `Debug`-formatted, and this bankpipe version), as hex.
pub fn config_hash(parts: &[&dyn std::fmt::Debug]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    for p in parts {
        format!("{p:?}").hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// `true` when `err`'s chain holds a lost lease.
pub fn is_lease_lost(err: &anyhow::Error) -> bool {
    err.chain().any(|e| matches!(e.downcast_ref::<StoreError>(), Some(StoreError::LeaseLost { .. })))
}

/// `true` when `err`'s chain holds a database error (a dropped connection,
/// say): the unit is given back to be tried again.
pub fn is_database_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| matches!(e.downcast_ref::<StoreError>(), Some(StoreError::Database { .. })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> LeaseTiming {
        LeaseTiming { lease: Duration::from_secs(6), poll: Duration::from_millis(10) }
    }

    #[test]
    fn the_deadline_is_the_lease_less_a_sixth_after_the_claim_was_sent() {
        let w = LeaseWatch::default();
        let sent = Instant::now();
        w.claimed(sent, &timing(), 1, "u");
        assert_eq!(w.state.lock().unwrap().deadline, Some(sent + Duration::from_secs(5)));
    }

    #[test]
    fn a_renewal_moves_the_deadline_on_and_a_lost_lease_stops_at_once() {
        let w = LeaseWatch::default();
        let t = timing();
        let sent = Instant::now();
        w.claimed(sent, &t, 1, "u");
        let later = sent + Duration::from_secs(2);
        w.renewed(later, 1, &t);
        assert_eq!(w.state.lock().unwrap().deadline, Some(later + Duration::from_secs(5)));
        // A renewal sent before the claim says nothing about it.
        w.renewed(sent - Duration::from_millis(1), 0, &t);
        assert_eq!(w.state.lock().unwrap().deadline, Some(later + Duration::from_secs(5)));
        w.renewed(later + Duration::from_secs(1), 0, &t);
        assert!(w.state.lock().unwrap().deadline.unwrap() <= Instant::now());
    }

    #[tokio::test]
    async fn guarded_work_is_dropped_when_the_deadline_passes() {
        let short = LeaseTiming { lease: Duration::from_millis(60), poll: Duration::from_millis(10) };
        let w = LeaseWatch::default();
        w.claimed(Instant::now(), &short, 1, "u");
        let out = w.guard(tokio::time::sleep(Duration::from_secs(60))).await;
        assert_eq!(out, None);
        w.claimed(Instant::now(), &short, 1, "u");
        assert_eq!(w.guard(async { 7 }).await, Some(7));
    }

    #[test]
    fn config_hashes_differ_with_the_config() {
        assert_eq!(config_hash(&[&"a", &1]), config_hash(&[&"a", &1]));
        assert_ne!(config_hash(&[&"a", &1]), config_hash(&[&"a", &2]));
    }
}

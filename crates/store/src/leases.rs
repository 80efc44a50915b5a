//! Cooperating workers (DESIGN §7, issue #13): the work of a sync as a
//! *round* of units claimed with leases.
//!
//! A round holds one row per unit (`work_units`), each in a phase: fetch
//! one source (1), dedupe and reconcile (2), queue one sink (3), deliver
//! one (sink, sink account) (4). A phase opens when every unit of the
//! earlier phases is done. Workers claim units with a lease — owner and
//! expiry, on the **database clock**, Unix milliseconds — PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, SQLite under its write lock (one process per
//! file there anyway). A heartbeat extends a worker's leases; a dead
//! worker's leases expire and the unit is claimed again, by another worker
//! or the next run.
//!
//! **Fencing**: a store bound to a lease ([`Fence`], see
//! `PgStore::bound` / `SqliteStore::bound`) makes every delivery state
//! change and watermark move conditional on that lease still being held by
//! its owner — with at least [`Fence::margin_ms`] left when a request is
//! about to be sent — so a worker paused past its expiry cannot commit
//! stale work ([`StoreError::LeaseLost`](crate::StoreError::LeaseLost)).

use std::future::Future;

use serde::Serialize;

use crate::StoreError;

/// Phases of a round, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Fetch one source into the store.
    Fetch = 1,
    /// Pending → posted and cross-source pairing; source totals reconciled.
    Dedupe = 2,
    /// Queue one sink's deliveries (the outbox).
    Queue = 3,
    /// Deliver one (sink, sink account) batch.
    Deliver = 4,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 4] = [Phase::Fetch, Phase::Dedupe, Phase::Queue, Phase::Deliver];

    /// The stored number.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The phase of a stored number.
    pub fn from_number(n: i32) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.number() == n)
    }
}

/// A unit of a round, as the round is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitSpec {
    /// Unique within the round, e.g. `fetch:truv-main`, `deliver:mibudge:ACCOUNT`.
    pub unit: String,
    /// Its phase.
    pub phase: Phase,
}

/// A worker process, as registered.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// Unique id: `host:pid:random`.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Host name, PID namespace and boot id: two workers with the same
    /// node see each other's processes (`/proc/PID`).
    pub node: String,
    /// Hash of the configuration (and source selection) the worker runs.
    pub config_hash: String,
}

/// The round a worker joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined {
    /// Round id.
    pub round: i64,
    /// `true` when this worker created it (no live round existed).
    pub created: bool,
}

/// A unit claimed by a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The unit name.
    pub unit: String,
    /// Claims so far, this one included (a unit given up by a dead worker
    /// is claimed again).
    pub attempts: i32,
}

/// What binds a store to one held lease: writes made through the bound
/// store succeed only while `owner` still holds `unit` of `round`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// Round id.
    pub round: i64,
    /// Unit name.
    pub unit: String,
    /// Worker id holding the lease.
    pub owner: String,
    /// Milliseconds of lease that must remain when a request is about to
    /// be sent (`begin_delivery`, a resend): at least as long as it may
    /// take the request to be answered or given up.
    pub margin_ms: i64,
}

/// Which transactions a delivery unit covers: by source account id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryScope {
    /// Source account ids.
    pub accounts: Vec<String>,
    /// `true`: every account *except* `accounts` (the unit of accounts
    /// mapped to no configured sink account).
    pub except: bool,
}

/// A unit as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LeaseRow {
    /// Round id.
    pub round: i64,
    /// Unit name.
    pub unit: String,
    /// Phase.
    pub phase: i32,
    /// Worker holding it, if any.
    pub owner: Option<String>,
    /// Milliseconds since it was claimed (database clock).
    pub held_ms: Option<i64>,
    /// Milliseconds until its lease expires (negative: expired).
    pub expires_in_ms: Option<i64>,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: Option<i64>,
    /// Claims so far.
    pub attempts: i32,
    /// Last failure.
    pub error: Option<String>,
}

/// A worker as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerRow {
    /// Worker id.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Round it works on.
    pub round: Option<i64>,
    /// Milliseconds since its last heartbeat (database clock).
    pub heartbeat_age_ms: i64,
    /// `None` while running; else `ok`, `failed`, …
    pub outcome: Option<String>,
}

/// Workers and leases (the `status` view).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CoordinationReport {
    /// The newest round: (id, started ms ago, finished?, units done, units in all).
    pub round: Option<RoundRow>,
    /// Workers seen in the last hour, newest first.
    pub workers: Vec<WorkerRow>,
    /// Units of the newest round not done, held or not.
    pub open_units: Vec<LeaseRow>,
}

/// A round as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RoundRow {
    /// Round id.
    pub id: i64,
    /// Milliseconds since it started.
    pub age_ms: i64,
    /// `done`, `abandoned`, or `None` while open.
    pub outcome: Option<String>,
    /// Units done.
    pub done: i64,
    /// Units in all.
    pub units: i64,
}

/// A done unit: (unit name, its result JSON, its failure).
pub type UnitResult = (String, Option<String>, Option<String>);

/// Rounds, units and leases (see the module docs).
pub trait WorkLeases: Send + Sync {
    /// This store bound to a held lease (and, for a delivery unit, to the
    /// accounts it covers): delivery state changes, watermark moves and
    /// backfill checkpoints made through it succeed only while `fence`
    /// holds ([`StoreError::LeaseLost`] otherwise), and the delivery
    /// queue it reads is limited to `scope`. Shares the connection pool.
    fn bound(&self, fence: Fence, scope: Option<DeliveryScope>) -> Self
    where
        Self: Sized;

    /// Record the start of a run by `worker` (registered by
    /// [`WorkLeases::join_round`]); runs still marked running whose worker
    /// is gone become `interrupted` (those of live workers are left alone).
    fn begin_worker_run(
        &self,
        kind: crate::RunKind,
        worker: &str,
    ) -> impl Future<Output = Result<crate::RunId, StoreError>> + Send;

    /// Register `worker` and join the open round of its kind, or create one
    /// with `units` when none is live. A round is live while a worker of it
    /// not recorded finished has a heartbeat younger than `lease_ms`; an
    /// open round that is not live is closed as abandoned (the new round
    /// does everything again: units are idempotent, and what a dead worker
    /// left in flight is reconciled by the new round's delivery units).
    /// Serialized across workers (advisory lock / write lock).
    ///
    /// # Errors
    /// [`StoreError::MixedConfig`] when the live round runs another
    /// configuration; database errors.
    fn join_round(
        &self,
        worker: &WorkerInfo,
        kind: &str,
        units: &[UnitSpec],
        lease_ms: i64,
    ) -> impl Future<Output = Result<Joined, StoreError>> + Send;

    /// Claim one unit of `phase` in `round` that is not done and not leased
    /// (or whose lease expired), for `lease_ms`; `None` when there is none.
    fn claim_unit(
        &self,
        round: i64,
        phase: Phase,
        owner: &str,
        lease_ms: i64,
    ) -> impl Future<Output = Result<Option<Claimed>, StoreError>> + Send;

    /// Units of `round` in phases up to and including `phase` not done yet.
    fn open_units(&self, round: i64, phase: Phase) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Record the worker's heartbeat and extend the lease of the unit it is
    /// working on, `held` (round, unit), by `lease_ms` from now — only that
    /// one: a unit the worker gave up without recording (its database
    /// session cut at that moment) must expire for others to take it.
    /// Returns the number of leases extended (0 or 1).
    fn heartbeat(
        &self,
        owner: &str,
        held: Option<(i64, &str)>,
        lease_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Record a unit done, with its `result` (JSON) and optional `error`,
    /// if `fence` still holds it; closes the round when it was the last.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the lease is no longer held.
    fn finish_unit(
        &self,
        fence: &Fence,
        result: &str,
        error: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Give a unit back (not done) with the reason, if `fence` still holds
    /// it, so any worker claims it again.
    fn release_unit(&self, fence: &Fence, error: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Results (JSON) of the done units of `phase` in `round`, by unit.
    fn unit_results(
        &self,
        round: i64,
        phase: Phase,
    ) -> impl Future<Output = Result<Vec<UnitResult>, StoreError>> + Send;

    /// Workers other than `me` not recorded finished — of `round`, or of
    /// any round: (worker id, node, pid).
    fn lease_holders(
        &self,
        round: Option<i64>,
        me: &str,
    ) -> impl Future<Output = Result<Vec<(String, String, i64)>, StoreError>> + Send;

    /// A worker known dead (its process is gone): expire its leases now
    /// and record it gone. Returns the leases expired.
    fn expire_worker(&self, worker: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Record the worker's end.
    fn finish_worker(&self, worker: &str, outcome: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Workers and leases, for `status`.
    fn coordination(&self) -> impl Future<Output = Result<CoordinationReport, StoreError>> + Send;
}

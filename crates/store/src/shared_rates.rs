//! Rate budgets shared by several workers (DESIGN §6, §7): one
//! `rate_budgets` row per sink origin in PostgreSQL, reserved and updated
//! by single atomic statements that read the **database's clock**
//! (`now()`), never a worker's.
//!
//! A row holds the server's view of the current window — `rate_limit`,
//! `remaining`, `reset_unix` (the window's end, Unix seconds) — plus
//! `blocked_until` (a 429's `Retry-After`, else Reset), `next_slot`
//! (pacing), `probe_until` (one worker's probe claim) and `metered`
//! (whether the origin sends `X-RateLimit-*` at all).
//!
//! [`SharedRateBudgets::reserve`] decides, in this order:
//! 1. `blocked_until` ahead → wait until then ([`RateVerdict::Blocked`]);
//! 2. an origin without budget headers → go ([`RateVerdict::Unmetered`]);
//! 3. budget unknown or its window ended → the first worker goes as the
//!    probe and claims `probe_until = now + probe_hold`
//!    ([`RateVerdict::Probe`]); the others ask again every `probe_poll`
//!    until its answer is observed ([`RateVerdict::AwaitingProbe`]);
//! 4. Remaining 0 → wait until Reset ([`RateVerdict::Exhausted`]);
//! 5. pacing interval `(Reset − now) / Remaining` longer than
//!    `max_pace_interval` → take one unit unpaced ([`RateVerdict::AsNeeded`]);
//! 6. `greatest(next_slot, now)` ahead → wait for it ([`RateVerdict::Pacing`]);
//! 7. else take one unit and move `next_slot` to
//!    `greatest(next_slot, now) + (Reset − now) / Remaining`
//!    ([`RateVerdict::Paced`]) — the local gate's rule, over every
//!    worker's requests.
//!
//! [`SharedRateBudgets::observe`] reconciles responses arriving out of
//! order from several workers: the server's counts are authoritative, but
//! within one window (same Reset) the **lower** Remaining is kept (a count
//! sent before some of our requests reached the server is stale); a later
//! Reset starts a new window (its Remaining taken as sent, pacing
//! restarted); an earlier Reset (a straggler of an ended window) changes no
//! count. A 429 sets Remaining to 0 and `blocked_until` (never earlier than
//! it was) to its `Retry-After` — delta-seconds counted on the database's
//! clock, or an HTTP-date — else to Reset when ahead: every worker holds.
//!
//! Both statements lock the origin's row (`UPDATE`, the decision read with
//! `FOR UPDATE` in the same statement), so concurrent workers are
//! serialized on it and two never take the same unit or slot.

use std::time::Duration;

use sqlx::{PgPool, Row};

use crate::types::{RateObservation, RatePacing, RateReservation, RateVerdict};
use crate::StoreError;

/// `updated_at` text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, as `rows::instant`)
/// from the database's clock.
const NOW_TEXT: &str = r#"to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#;

/// The reservation: `$1` origin, `$2` max pace interval (ms), `$3` probe
/// hold (ms), `$4` probe poll (ms). One row when the origin has a row.
const RESERVE_SQL: &str = r#"
UPDATE rate_budgets AS b SET
    remaining = CASE WHEN d.verdict IN ('paced', 'as_needed') THEN b.remaining - 1 ELSE b.remaining END,
    next_slot = CASE d.verdict WHEN 'paced' THEN d.slot + d.pace WHEN 'probe' THEN NULL ELSE b.next_slot END,
    probe_until = CASE WHEN d.verdict = 'probe' THEN d.now + $3::bigint * interval '1 millisecond'
                       ELSE b.probe_until END,
    updated_at = to_char(d.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM (
    SELECT s.origin, s.now, s.slot, s.pace, v.verdict,
        CASE v.verdict
            WHEN 'blocked' THEN s.blocked_until
            WHEN 'exhausted' THEN s.reset_at
            WHEN 'pacing' THEN s.slot
            WHEN 'awaiting_probe' THEN least(s.probe_until, s.now + $4::bigint * interval '1 millisecond')
        END AS until
    FROM (
        SELECT r.origin, r.remaining, r.metered, r.blocked_until, r.probe_until, now() AS now,
            to_timestamp(r.reset_unix) AS reset_at,
            greatest(r.next_slot, now()) AS slot,
            (to_timestamp(r.reset_unix) - now()) / greatest(r.remaining, 1) AS pace
        FROM rate_budgets AS r
        WHERE r.origin = $1
        FOR UPDATE
    ) AS s
    CROSS JOIN LATERAL (SELECT CASE
        WHEN s.blocked_until > s.now THEN 'blocked'
        WHEN s.metered IS FALSE THEN 'unmetered'
        WHEN s.remaining IS NULL OR s.reset_at IS NULL OR s.reset_at <= s.now THEN
            CASE WHEN s.probe_until > s.now THEN 'awaiting_probe' ELSE 'probe' END
        WHEN s.remaining <= 0 THEN 'exhausted'
        WHEN s.pace > $2::bigint * interval '1 millisecond' THEN 'as_needed'
        WHEN s.slot > s.now THEN 'pacing'
        ELSE 'paced'
    END AS verdict) AS v
) AS d
WHERE b.origin = d.origin
RETURNING d.verdict,
    ceil(extract(epoch FROM d.until) * 1000)::bigint AS until_ms,
    ceil(extract(epoch FROM d.until - d.now) * 1000)::bigint AS wait_ms
"#;

/// The observation: `$1` origin, `$2` limit, `$3` remaining, `$4` reset
/// (Unix s), `$5` status, `$6` Retry-After delay (ms), `$7` Retry-After
/// date (Unix ms). In `SET`, `b.*` is the row as it was (locked).
const OBSERVE_SQL: &str = r#"
UPDATE rate_budgets AS b SET
    rate_limit = COALESCE(p.lim, b.rate_limit),
    metered = p.headers OR COALESCE(b.metered, false),
    remaining = CASE
        WHEN p.rst < b.reset_unix THEN b.remaining
        WHEN p.status = 429 THEN 0
        WHEN p.rem IS NULL THEN b.remaining
        WHEN p.rst > b.reset_unix OR b.reset_unix IS NULL OR b.remaining IS NULL THEN p.rem
        ELSE least(b.remaining, p.rem)
    END,
    reset_unix = CASE WHEN p.rst > b.reset_unix OR b.reset_unix IS NULL THEN COALESCE(p.rst, b.reset_unix)
                      ELSE b.reset_unix END,
    next_slot = CASE WHEN p.rst > b.reset_unix THEN NULL ELSE b.next_slot END,
    blocked_until = CASE
        WHEN p.status = 429 AND p.rst < b.reset_unix THEN b.blocked_until
        WHEN p.status = 429 THEN greatest(b.blocked_until, COALESCE(
            now() + p.retry_ms * interval '1 millisecond',
            to_timestamp(p.retry_at_ms / 1000.0),
            nullif(greatest(to_timestamp(greatest(p.rst, b.reset_unix)), now()), now())))
        ELSE b.blocked_until
    END,
    probe_until = CASE
        WHEN p.status = 429 OR greatest(p.rst, b.reset_unix) > extract(epoch FROM now())
            OR NOT (p.headers OR COALESCE(b.metered, false)) THEN NULL
        ELSE b.probe_until
    END,
    updated_at = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM (
    SELECT $2::bigint AS lim, $3::bigint AS rem, $4::bigint AS rst, $5::integer AS status,
        $6::bigint AS retry_ms, $7::bigint AS retry_at_ms,
        $2::bigint IS NOT NULL OR $3::bigint IS NOT NULL OR $4::bigint IS NOT NULL AS headers
) AS p
WHERE b.origin = $1
"#;

/// The rate budgets of a PostgreSQL store, shared by every worker on that
/// database (see the module docs). Cheap to clone (one connection pool);
/// obtained with [`RateBudgets::shared_rate_budgets`](crate::RateBudgets::shared_rate_budgets).
#[derive(Clone, Debug)]
pub struct SharedRateBudgets {
    pool: PgPool,
    name: String,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SharedRateBudgets {
    pub(crate) fn new(pool: PgPool, name: String) -> SharedRateBudgets {
        SharedRateBudgets { pool, name }
    }

    fn fail(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |e| StoreError::Database { database: self.name.clone(), operation, cause: e.to_string() }
    }

    /// Create the origin's row (budget unknown) unless another worker has.
    async fn ensure_row(&self, origin: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO rate_budgets (origin, updated_at) VALUES ($1, {NOW_TEXT}) ON CONFLICT (origin) DO NOTHING"
        ))
        .bind(origin)
        .execute(&self.pool)
        .await
        .map_err(self.fail("creating a shared rate budget"))?;
        Ok(())
    }

    /// Reserve one request to `origin`: go (a unit, a pacing slot or the
    /// probe taken) or wait, decided atomically on the database's clock by
    /// the rules of the module docs.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for a verdict this
    /// code does not know.
    pub async fn reserve(&self, origin: &str, pacing: &RatePacing) -> Result<RateReservation, StoreError> {
        for _ in 0..2 {
            let row = sqlx::query(RESERVE_SQL)
                .bind(origin)
                .bind(millis(pacing.max_pace_interval))
                .bind(millis(pacing.probe_hold))
                .bind(millis(pacing.probe_poll))
                .fetch_optional(&self.pool)
                .await
                .map_err(self.fail("reserving from a shared rate budget"))?;
            let Some(row) = row else {
                self.ensure_row(origin).await?;
                continue;
            };
            let fail = self.fail("reading a shared rate budget");
            let verdict: String = row.try_get(0).map_err(&fail)?;
            let verdict = RateVerdict::parse(&verdict).ok_or_else(|| StoreError::Corrupt {
                database: self.name.clone(),
                id: origin.to_owned(),
                field: "rate verdict",
                value: verdict.clone(),
            })?;
            return Ok(RateReservation {
                verdict,
                until_unix_ms: row.try_get(1).map_err(&fail)?,
                wait_ms: row.try_get(2).map_err(&fail)?,
            });
        }
        Err(StoreError::Database {
            database: self.name.clone(),
            operation: "reserving from a shared rate budget",
            cause: format!("the row of {origin} vanished while reserving"),
        })
    }

    /// Record what a response from `origin` said (see the module docs for
    /// how out-of-order responses of several workers are reconciled).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn observe(&self, origin: &str, o: &RateObservation) -> Result<(), StoreError> {
        for _ in 0..2 {
            let done = sqlx::query(OBSERVE_SQL)
                .bind(origin)
                .bind(o.limit)
                .bind(o.remaining)
                .bind(o.reset_unix)
                .bind(i32::from(o.status))
                .bind(o.retry_after_ms)
                .bind(o.retry_at_unix_ms)
                .execute(&self.pool)
                .await
                .map_err(self.fail("recording a response in a shared rate budget"))?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            self.ensure_row(origin).await?;
        }
        Err(StoreError::Database {
            database: self.name.clone(),
            operation: "recording a response in a shared rate budget",
            cause: format!("the row of {origin} vanished while recording"),
        })
    }
}

//! The per-origin rate gate (DESIGN §6).
//!
//! State kept per origin from the server's own headers:
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds, wall
//! clock) of the current window, and a "blocked until" instant set by a 429
//! (`Retry-After` as delta-seconds or HTTP-date, else Reset). Before each
//! request [`RateGate::acquire`]:
//!
//! 1. waits while blocked, or while Remaining is 0 and Reset is ahead;
//! 2. otherwise paces: with `r` requests left and `t` until Reset, requests
//!    are spaced `t / r` apart, so the budget lasts the window and is used
//!    evenly (≥ 95% of it over several windows, with no 429) — when that
//!    spacing is at most `max_pace_interval` (default 2 s). Longer windows
//!    (per-day plans: 20 or 1,000 calls a day) are spent as needed instead
//!    of one call every minute or hour; when they run out, step 1 refuses
//!    the wait and the run stops cleanly, to resume after Reset;
//! 3. reserves one request of the budget locally, so concurrent callers
//!    cannot overspend it before the server's next count arrives;
//! 4. waits for the fixed `governor` ceiling (requests/second), if set.
//!
//! A wait longer than the allowed maximum is refused with
//! [`HttpError::RateBudgetExhausted`] (the caller stops cleanly, e.g. with
//! exit 75, instead of sleeping for hours).

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::HttpError;
use crate::shared::RetryAfter;

/// The server's view of the current window.
#[derive(Debug, Default)]
struct Budget {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<SystemTime>,
    blocked_until: Option<SystemTime>,
    /// Earliest instant the next paced request may go.
    next_slot: Option<Instant>,
}

/// Rate limits of one origin.
#[derive(Debug)]
pub struct RateGate {
    origin: String,
    budget: Mutex<Budget>,
    ceiling: Option<DefaultDirectRateLimiter>,
    max_pace_interval: Duration,
}

/// Snapshot of a gate, for progress output and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetView {
    /// `X-RateLimit-Limit` last seen.
    pub limit: Option<u64>,
    /// Requests left in the window (server count, minus local reservations).
    pub remaining: Option<u64>,
    /// End of the window.
    pub reset: Option<SystemTime>,
}

enum Step {
    Go,
    Wait(Duration, SystemTime),
}

impl RateGate {
    /// A gate for `origin` with an optional fixed ceiling in requests/second;
    /// requests are paced when the spacing needed is at most `max_pace_interval`.
    pub fn new(origin: String, ceiling_per_second: Option<NonZeroU32>, max_pace_interval: Duration) -> RateGate {
        RateGate {
            origin,
            budget: Mutex::new(Budget::default()),
            ceiling: ceiling_per_second.map(|n| RateLimiter::direct(Quota::per_second(n))),
            max_pace_interval,
        }
    }

    /// Wait until one request may be sent, and reserve it.
    ///
    /// # Errors
    /// [`HttpError::RateBudgetExhausted`] when the wait would exceed `max_wait`.
    pub async fn acquire(&self, max_wait: Duration) -> Result<(), HttpError> {
        loop {
            match self.step() {
                Step::Go => break,
                Step::Wait(wait, until) => {
                    if wait > max_wait {
                        return Err(HttpError::RateBudgetExhausted {
                            origin: self.origin.clone(),
                            until,
                            max_wait_secs: max_wait.as_secs(),
                        });
                    }
                    tracing::debug!(origin = %self.origin, wait_ms = wait.as_millis() as u64, "rate gate: waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.await_ceiling().await;
        Ok(())
    }

    /// Wait for the fixed `governor` ceiling only (no budget): what a client
    /// with a [`SharedBudget`](crate::SharedBudget) does after the shared
    /// budget said go.
    pub async fn await_ceiling(&self) {
        if let Some(ceiling) = &self.ceiling {
            ceiling.until_ready().await;
        }
    }

    /// Decide under the lock: go now (reserving budget and a pacing slot) or wait.
    fn step(&self) -> Step {
        let mut b = self.budget.lock().expect("rate gate lock");
        let now_wall = SystemTime::now();
        let now = Instant::now();
        if let Some(until) = b.blocked_until {
            match until.duration_since(now_wall) {
                Ok(wait) if !wait.is_zero() => return Step::Wait(wait, until),
                _ => b.blocked_until = None,
            }
        }
        let ahead = b.reset.and_then(|r| r.duration_since(now_wall).ok()).filter(|d| !d.is_zero());
        match (b.remaining, ahead) {
            (Some(0), Some(wait)) => Step::Wait(wait, b.reset.expect("reset known")),
            (Some(remaining), Some(to_reset)) => {
                let interval = to_reset / u32::try_from(remaining).unwrap_or(u32::MAX);
                if interval > self.max_pace_interval {
                    // A long window: spend as needed (see the module docs).
                    b.remaining = Some(remaining - 1);
                    return Step::Go;
                }
                let slot = b.next_slot.map_or(now, |s| s.max(now));
                if slot > now {
                    let wait = slot - now;
                    return Step::Wait(wait, now_wall + wait);
                }
                b.next_slot = Some(slot + interval);
                b.remaining = Some(remaining - 1);
                Step::Go
            }
            _ => {
                // Unknown, or the window has passed: go; the response tells the new budget.
                if ahead.is_none() {
                    b.remaining = None;
                    b.reset = None;
                    b.next_slot = None;
                }
                Step::Go
            }
        }
    }

    /// Read the rate-limit headers of a response (any status).
    pub fn observe(&self, headers: &HeaderMap, status: u16) {
        let num =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        let mut b = self.budget.lock().expect("rate gate lock");
        if let Some(limit) = num("x-ratelimit-limit") {
            b.limit = Some(limit);
        }
        let reset = num("x-ratelimit-reset").map(|s| UNIX_EPOCH + Duration::from_secs(s));
        if let Some(remaining) = num("x-ratelimit-remaining") {
            let same_window = reset.is_none() || reset == b.reset;
            // Within one window keep the lower count: our own reservations for
            // requests still in flight are not in the server's count yet.
            b.remaining = Some(match (same_window, b.remaining) {
                (true, Some(local)) => local.min(remaining),
                _ => remaining,
            });
            if !same_window {
                b.next_slot = None;
            }
        }
        if reset.is_some() {
            b.reset = reset;
        }
        if status == 429 {
            b.remaining = Some(0);
            let now = SystemTime::now();
            let retry_after =
                headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, now));
            b.blocked_until = retry_after.or(b.reset.filter(|r| *r > now));
        }
    }

    /// `true` when a 429 set a wait the gate will honour (so the retry
    /// loop need not add its own backoff).
    pub fn is_blocked(&self) -> bool {
        let b = self.budget.lock().expect("rate gate lock");
        b.blocked_until.is_some_and(|u| u > SystemTime::now())
    }

    /// Start from a budget remembered by an earlier process (e.g. from the
    /// store), unless this gate has already heard from the server. A
    /// window that has already ended is ignored.
    pub fn seed(&self, view: &BudgetView) {
        let mut b = self.budget.lock().expect("rate gate lock");
        let current = view.reset.is_some_and(|r| r > SystemTime::now());
        if b.remaining.is_none() && current {
            b.limit = view.limit;
            b.remaining = view.remaining;
            b.reset = view.reset;
        }
    }

    /// The current budget.
    pub fn view(&self) -> BudgetView {
        let b = self.budget.lock().expect("rate gate lock");
        BudgetView { limit: b.limit, remaining: b.remaining, reset: b.reset }
    }
}

/// Parse `Retry-After`: delta-seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), as an absolute instant.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    RetryAfter::parse(value).map(|r| r.instant(now))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn unix(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn retry_after_both_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_400);
        assert_eq!(parse_retry_after("120", now), Some(now + Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(UNIX_EPOCH + Duration::from_secs(1_445_412_480))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn remaining_zero_beyond_max_wait_is_exhausted_with_the_reset_instant() {
        let gate = RateGate::new("https://api.example.com:443".into(), None, Duration::from_secs(2));
        let reset = unix(SystemTime::now()) + 3600;
        gate.observe(&headers(&[("x-ratelimit-remaining", "0".into()), ("x-ratelimit-reset", reset.to_string())]), 200);
        match gate.acquire(Duration::from_secs(60)).await {
            Err(HttpError::RateBudgetExhausted { until, .. }) => assert_eq!(unix(until), reset),
            other => panic!("expected RateBudgetExhausted, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_429_blocks_for_retry_after() {
        let gate = RateGate::new("o".into(), None, Duration::from_secs(2));
        gate.observe(&headers(&[("retry-after", "7200".into())]), 429);
        assert!(gate.is_blocked());
        let err = gate.acquire(Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(err, HttpError::RateBudgetExhausted { .. }), "{err:?}");
    }

    #[test]
    fn short_windows_are_paced_long_windows_are_spent_as_needed() {
        let short = RateGate::new("o".into(), None, Duration::from_secs(2));
        let reset = (unix(SystemTime::now()) + 10).to_string();
        short.observe(&headers(&[("x-ratelimit-remaining", "10".into()), ("x-ratelimit-reset", reset)]), 200);
        assert!(matches!(short.step(), Step::Go));
        assert!(matches!(short.step(), Step::Wait(w, _) if w > Duration::from_millis(500)), "~1 s apart");

        let daily = RateGate::new("o".into(), None, Duration::from_secs(2));
        let reset = (unix(SystemTime::now()) + 80_000).to_string();
        daily.observe(&headers(&[("x-ratelimit-remaining", "3".into()), ("x-ratelimit-reset", reset)]), 200);
        for _ in 0..3 {
            assert!(matches!(daily.step(), Step::Go));
        }
        assert!(matches!(daily.step(), Step::Wait(w, _) if w > Duration::from_secs(70_000)), "then wait for Reset");
    }

    #[test]
    fn a_remembered_budget_seeds_a_fresh_gate_only_while_its_window_lasts() {
        let reset = SystemTime::now() + Duration::from_secs(3600);
        let gate = RateGate::new("o".into(), None, Duration::from_secs(2));
        gate.seed(&BudgetView { limit: Some(20), remaining: Some(0), reset: Some(reset) });
        assert!(matches!(gate.step(), Step::Wait(..)), "a spent budget of an earlier run is honoured");
        let fresh = RateGate::new("o".into(), None, Duration::from_secs(2));
        fresh.seed(&BudgetView {
            limit: Some(20),
            remaining: Some(0),
            reset: Some(SystemTime::now() - Duration::from_secs(1)),
        });
        assert!(matches!(fresh.step(), Step::Go), "an ended window is ignored");
    }

    #[test]
    fn local_reservations_are_not_undone_by_a_stale_count() {
        let gate = RateGate::new("o".into(), None, Duration::from_secs(2));
        let reset = (unix(SystemTime::now()) + 10).to_string();
        gate.observe(&headers(&[("x-ratelimit-remaining", "5".into()), ("x-ratelimit-reset", reset.clone())]), 200);
        assert!(matches!(gate.step(), Step::Go));
        assert_eq!(gate.view().remaining, Some(4));
        // A response to an earlier request still says 5: keep 4.
        gate.observe(&headers(&[("x-ratelimit-remaining", "5".into()), ("x-ratelimit-reset", reset)]), 200);
        assert_eq!(gate.view().remaining, Some(4));
    }
}

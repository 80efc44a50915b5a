//! The store's shared rate budgets (PostgreSQL) as the HTTP client's
//! [`SharedBudget`] (DESIGN §6, §7): several `bankpipe sync` workers on one
//! database reserve each request to a sink origin from one budget row, so
//! together they keep to the sink's limit, and a 429 seen by one holds all.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bankpipe_http::{BoxFuture, Decision, Observation, RetryAfter, SharedBudget, SharedBudgetError};
use bankpipe_store::{RateBudgets, RateObservation, RatePacing, SharedRateBudgets};

/// [`SharedRateBudgets`] behind the [`SharedBudget`] seam.
#[derive(Clone, Debug)]
pub struct StoreBudget {
    shared: SharedRateBudgets,
    pacing: RatePacing,
}

impl StoreBudget {
    /// Over `shared`, with [`RatePacing::default`]'s probe hold and poll
    /// (the pacing cutoff comes from each request's client policy).
    pub fn new(shared: SharedRateBudgets) -> StoreBudget {
        StoreBudget { shared, pacing: RatePacing::default() }
    }

    /// With another probe hold and poll (tests).
    pub fn with_pacing(mut self, pacing: RatePacing) -> StoreBudget {
        self.pacing = pacing;
        self
    }
}

/// The budget every worker on `store`'s database shares, for
/// [`HttpClient::with_shared_budget`](bankpipe_http::HttpClient::with_shared_budget):
/// `Some` for PostgreSQL, `None` for SQLite (one worker per file; its
/// client's own gate decides).
pub fn shared_budget<S: RateBudgets>(store: &S) -> Option<Arc<dyn SharedBudget>> {
    store.shared_rate_budgets().map(|s| Arc::new(StoreBudget::new(s)) as Arc<dyn SharedBudget>)
}

fn millis(ms: Option<i64>) -> Duration {
    Duration::from_millis(ms.unwrap_or(0).max(0).unsigned_abs())
}

/// A response's figures as the store records them (counts beyond `i64`
/// saturate; Unix instants in milliseconds).
pub fn rate_observation(o: &Observation) -> RateObservation {
    let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let (retry_after_ms, retry_at_unix_ms) = match o.retry_after {
        Some(RetryAfter::Delay(d)) => (Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)), None),
        Some(RetryAfter::At(t)) => {
            let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            (None, Some(ms))
        }
        None => (None, None),
    };
    RateObservation {
        limit: int(o.limit),
        remaining: int(o.remaining),
        reset_unix: int(o.reset),
        status: o.status,
        retry_after_ms,
        retry_at_unix_ms,
    }
}

impl SharedBudget for StoreBudget {
    fn reserve<'a>(
        &'a self,
        origin: &'a str,
        max_pace_interval: Duration,
    ) -> BoxFuture<'a, Result<Decision, SharedBudgetError>> {
        Box::pin(async move {
            let pacing = RatePacing { max_pace_interval, ..self.pacing };
            let r = self.shared.reserve(origin, &pacing).await?;
            tracing::trace!(%origin, verdict = r.verdict.as_str(), wait_ms = r.wait_ms, "shared rate budget");
            if r.verdict.goes() {
                return Ok(Decision::Go);
            }
            Ok(Decision::Wait { until: UNIX_EPOCH + millis(r.until_unix_ms), wait: millis(r.wait_ms) })
        })
    }

    fn observe<'a>(
        &'a self,
        origin: &'a str,
        observation: &'a Observation,
    ) -> BoxFuture<'a, Result<(), SharedBudgetError>> {
        Box::pin(async move { Ok(self.shared.observe(origin, &rate_observation(observation)).await?) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn observations_keep_their_units() {
        let o = Observation {
            limit: Some(50),
            remaining: Some(u64::MAX),
            reset: Some(1_700_000_060),
            status: 429,
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(3))),
        };
        assert_eq!(
            rate_observation(&o),
            RateObservation {
                limit: Some(50),
                remaining: Some(i64::MAX),
                reset_unix: Some(1_700_000_060),
                status: 429,
                retry_after_ms: Some(3000),
                retry_at_unix_ms: None,
            }
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_445_412_480_000);
        let dated = rate_observation(&Observation { retry_after: Some(RetryAfter::At(at)), ..o });
        assert_eq!((dated.retry_after_ms, dated.retry_at_unix_ms), (None, Some(1_445_412_480_000)));
    }
}

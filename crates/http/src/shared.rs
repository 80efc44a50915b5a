//! A rate budget shared by several processes (DESIGN §6, §7).
//!
//! Each [`HttpClient`](crate::HttpClient) has its own per-origin
//! [`RateGate`](crate::gate::RateGate): enough for one process, but N
//! processes ("workers") delivering to the same sink would each spend the
//! whole budget. A [`SharedBudget`] is the seam for a budget they share
//! (bankpipe's is a PostgreSQL row per origin, reserved atomically: see
//! `bankpipe_store::SharedRateBudgets`). When a client has one
//! ([`HttpClient::with_shared_budget`](crate::HttpClient::with_shared_budget)):
//!
//! - before every attempt it asks [`SharedBudget::reserve`] until the answer
//!   is [`Decision::Go`], sleeping through each [`Decision::Wait`]; a wait
//!   longer than [`Policy::max_wait`](crate::Policy::max_wait) is refused
//!   with [`HttpError::RateBudgetExhausted`](crate::HttpError::RateBudgetExhausted)
//!   as with the local gate, and the fixed `governor` ceiling still applies;
//! - every response (any status) is reported with
//!   [`SharedBudget::observe`] as an [`Observation`] of its headers.
//!
//! Without one, the local gate alone decides (SQLite: one process per
//! database).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// A boxed, `Send` future (the trait stays object-safe without a macro crate).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a shared budget could not answer (e.g. its database is unreachable).
pub type SharedBudgetError = Box<dyn std::error::Error + Send + Sync>;

/// A shared budget's answer to one reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send now: one unit of the budget (and a pacing slot) is taken.
    Go,
    /// Ask again later; nothing was taken.
    Wait {
        /// When to ask again, as an absolute instant (UTC) on the budget's
        /// own clock (for messages such as "exhausted until …").
        until: SystemTime,
        /// How long that is from now, measured on the budget's clock: what
        /// the caller sleeps, so that its own clock never enters the decision.
        wait: Duration,
    },
}

/// A 429's `Retry-After`, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Delta-seconds (`Retry-After: 120`): a delay from when it was received.
    Delay(Duration),
    /// An HTTP-date (`Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`): an
    /// absolute instant (UTC) on the server's clock.
    At(SystemTime),
}

impl RetryAfter {
    /// Parse a `Retry-After` value: delta-seconds or an HTTP-date.
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        httpdate::parse_http_date(value).ok().map(RetryAfter::At)
    }

    /// The instant it names, a delay counted from `now`.
    pub fn instant(self, now: SystemTime) -> SystemTime {
        match self {
            RetryAfter::Delay(d) => now + d,
            RetryAfter::At(t) => t,
        }
    }
}

/// What one response says about its origin's budget.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// `X-RateLimit-Limit`: requests per window.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: requests left in the window after this one.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: end of the window, Unix seconds (UTC).
    pub reset: Option<u64>,
    /// The HTTP status (429: refused for the rate limit).
    pub status: u16,
    /// `Retry-After`, when sent and parseable.
    pub retry_after: Option<RetryAfter>,
}

impl Observation {
    /// Read a response's `X-RateLimit-*` and `Retry-After` headers; an
    /// absent or unparseable header is `None`.
    pub fn from_headers(headers: &HeaderMap, status: u16) -> Observation {
        let num =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        Observation {
            limit: num("x-ratelimit-limit"),
            remaining: num("x-ratelimit-remaining"),
            reset: num("x-ratelimit-reset"),
            status,
            retry_after: headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(RetryAfter::parse),
        }
    }

    /// `true` when the response carried any `X-RateLimit-*` header.
    pub fn has_budget_headers(&self) -> bool {
        self.limit.is_some() || self.remaining.is_some() || self.reset.is_some()
    }
}

/// A rate budget per origin shared by several processes. Origins are keyed
/// by their text (`https://host:443`, [`Origin`](crate::Origin)'s `Display`).
///
/// Implementations decide atomically (two callers never get the same unit)
/// and on one clock of their own; the rules are those of the local gate
/// ([`crate::gate`]): hold on a 429 (`Retry-After`, else Reset), hold while
/// Remaining is 0 until Reset, pace `t / r` apart when that is at most
/// `max_pace_interval`, spend long windows as needed.
pub trait SharedBudget: Send + Sync {
    /// Ask for one request to `origin`. `max_pace_interval` is the client's
    /// [`Policy::max_pace_interval`](crate::Policy::max_pace_interval).
    ///
    /// # Errors
    /// The budget could not be consulted; the client sends nothing.
    fn reserve<'a>(
        &'a self,
        origin: &'a str,
        max_pace_interval: Duration,
    ) -> BoxFuture<'a, Result<Decision, SharedBudgetError>>;

    /// Report what a response to `origin` said. Responses of several
    /// processes arrive in any order; the implementation reconciles them.
    ///
    /// # Errors
    /// The budget could not be updated (the client logs it and goes on:
    /// the response itself is good).
    fn observe<'a>(
        &'a self,
        origin: &'a str,
        observation: &'a Observation,
    ) -> BoxFuture<'a, Result<(), SharedBudgetError>>;
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn observations_read_the_budget_headers_and_retry_after() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("50"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static(" 7 "));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000060"));
        h.insert("retry-after", HeaderValue::from_static("3"));
        let o = Observation::from_headers(&h, 429);
        assert_eq!(
            o,
            Observation {
                limit: Some(50),
                remaining: Some(7),
                reset: Some(1_700_000_060),
                status: 429,
                retry_after: Some(RetryAfter::Delay(Duration::from_secs(3))),
            }
        );
        assert!(o.has_budget_headers());

        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("many"));
        let o = Observation::from_headers(&h, 429);
        assert_eq!(o.retry_after, Some(RetryAfter::At(SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480))));
        assert!(!o.has_budget_headers(), "an unparseable count is no count (mibudge sends none at all)");
    }
}

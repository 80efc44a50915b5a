//! A fixed-window request limiter advertising `X-RateLimit-*`, as the
//! Trupocket API does (Free 20/day, Premium 1,000/day, or N per second in
//! tests). Windows are aligned to multiples of their length since the Unix
//! epoch, so `X-RateLimit-Reset` (Unix seconds) is exact.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};

/// Limit and window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per window.
    pub limit: u64,
    /// Window length in whole seconds.
    pub window_secs: u64,
}

impl RateLimit {
    /// Trupocket Free: 20 calls per day.
    pub const FREE: RateLimit = RateLimit { limit: 20, window_secs: 86_400 };
    /// Trupocket Premium: 1,000 calls per day.
    pub const PREMIUM: RateLimit = RateLimit { limit: 1_000, window_secs: 86_400 };
}

/// The limiter's verdict for one request.
#[derive(Clone, Copy, Debug)]
pub struct Verdict {
    /// Within the limit.
    pub allowed: bool,
    /// `X-RateLimit-Limit`.
    pub limit: u64,
    /// `X-RateLimit-Remaining` after this request.
    pub remaining: u64,
    /// `X-RateLimit-Reset`, Unix seconds.
    pub reset: u64,
    /// Seconds until reset (for `Retry-After`), at least 1.
    pub retry_after: u64,
}

impl Verdict {
    /// Put the three `X-RateLimit-*` headers (and `Retry-After` when refused).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset));
        if !self.allowed {
            headers.insert("retry-after", HeaderValue::from(self.retry_after));
        }
    }
}

/// Counts requests per window.
#[derive(Debug)]
pub struct WindowLimiter {
    limit: RateLimit,
    state: Mutex<(u64, u64)>,
    /// Largest number of requests accepted in any single window.
    max_seen: Mutex<u64>,
    /// Requests accepted per window (window index → count).
    accepted: Mutex<BTreeMap<u64, u64>>,
}

impl WindowLimiter {
    /// A limiter.
    pub fn new(limit: RateLimit) -> WindowLimiter {
        WindowLimiter {
            limit,
            state: Mutex::new((0, 0)),
            max_seen: Mutex::new(0),
            accepted: Mutex::new(BTreeMap::new()),
        }
    }

    /// Count one request now.
    pub fn check(&self) -> Verdict {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let w = self.limit.window_secs.max(1);
        let window = now.as_secs() / w;
        let reset = (window + 1) * w;
        let mut s = self.state.lock().expect("limiter lock");
        if s.0 != window {
            *s = (window, 0);
        }
        let allowed = s.1 < self.limit.limit;
        if allowed {
            s.1 += 1;
            let mut max = self.max_seen.lock().expect("limiter lock");
            *max = (*max).max(s.1);
            *self.accepted.lock().expect("limiter lock").entry(window).or_default() += 1;
        }
        let until_reset = Duration::from_secs(reset).saturating_sub(now);
        Verdict {
            allowed,
            limit: self.limit.limit,
            remaining: self.limit.limit - s.1,
            reset,
            retry_after: until_reset.as_secs_f64().ceil().max(1.0) as u64,
        }
    }

    /// The most requests accepted within one window so far.
    pub fn max_in_a_window(&self) -> u64 {
        *self.max_seen.lock().expect("limiter lock")
    }

    /// Requests accepted in each window that accepted any: window index
    /// (Unix seconds ÷ window length) → count.
    pub fn accepted_per_window(&self) -> BTreeMap<u64, u64> {
        self.accepted.lock().expect("limiter lock").clone()
    }
}

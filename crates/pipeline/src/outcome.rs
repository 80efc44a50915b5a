//! How a job ended, and the exit code that stands for it (DESIGN §8).
//!
//! The errors that decide an outcome are typed ([`ConfigProblem`],
//! [`CompletedWithFailures`], the store's `Locked`, an exhausted rate
//! budget); [`Outcome::of`] finds the first of them in an error's chain, so
//! the binary maps any error to its exit code in one place.

use bankpipe_http::HttpError;
use bankpipe_sinks::SinkError;
use bankpipe_sources::live::LiveError;
use bankpipe_store::StoreError;

/// A configuration problem (file, key, environment variable): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigProblem(pub String);

/// A job that completed, but a source failed, or some deliveries of this
/// run failed (their reasons are in the ledger) or stayed in flight: exit
/// code 3.
#[derive(Debug, thiserror::Error)]
#[error("completed with failures: {0}")]
pub struct CompletedWithFailures(pub String);

/// The outcome of a run, as recorded in the store's `runs.outcome` and
/// mapped to the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done: exit 0.
    Ok,
    /// Usage or configuration error: exit 2.
    ConfigError,
    /// Completed, some sources or deliveries failed: exit 3.
    CompletedWithFailures,
    /// A rate budget ran out: exit 75 (EX_TEMPFAIL, try again later).
    RateLimited,
    /// Another sync holds the database: exit 75.
    Locked,
    /// Anything else: exit 1.
    Failed,
}

impl Outcome {
    /// The outcome an error stands for: the first typed cause in its chain.
    pub fn of(err: &anyhow::Error) -> Outcome {
        for e in err.chain() {
            if e.is::<CompletedWithFailures>() {
                return Outcome::CompletedWithFailures;
            }
            if e.is::<ConfigProblem>() || matches!(e.downcast_ref::<SinkError>(), Some(SinkError::Config { .. })) {
                return Outcome::ConfigError;
            }
            if matches!(e.downcast_ref::<StoreError>(), Some(StoreError::MixedConfig(_))) {
                return Outcome::ConfigError;
            }
            if matches!(e.downcast_ref::<StoreError>(), Some(StoreError::Locked(_))) {
                return Outcome::Locked;
            }
            if matches!(e.downcast_ref::<HttpError>(), Some(HttpError::RateBudgetExhausted { .. }))
                || matches!(e.downcast_ref::<LiveError>(), Some(LiveError::Http(HttpError::RateBudgetExhausted { .. })))
                || matches!(
                    e.downcast_ref::<SinkError>(),
                    Some(SinkError::Http { source: HttpError::RateBudgetExhausted { .. }, .. })
                )
            {
                return Outcome::RateLimited;
            }
        }
        Outcome::Failed
    }

    /// `ok`, `config-error`, `completed-with-failures`, `rate-limited`,
    /// `locked` or `failed` (the store's `runs.outcome`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ConfigError => "config-error",
            Outcome::CompletedWithFailures => "completed-with-failures",
            Outcome::RateLimited => "rate-limited",
            Outcome::Locked => "locked",
            Outcome::Failed => "failed",
        }
    }

    /// DESIGN §8: 0 ok, 1 failed, 2 usage or configuration error, 3
    /// completed with failures, 75 (EX_TEMPFAIL) rate budget exhausted or
    /// another sync holds the lock.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::ConfigError => 2,
            Outcome::CompletedWithFailures => 3,
            Outcome::RateLimited | Outcome::Locked => 75,
            Outcome::Failed => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_typed_cause_decides() {
        let e = anyhow::Error::new(ConfigProblem("sync.timezone".into())).context("loading");
        assert_eq!(Outcome::of(&e), Outcome::ConfigError);
        assert_eq!(Outcome::of(&e).exit_code(), 2);
        let e = anyhow::Error::new(StoreError::Locked("db".into())).context("sync");
        assert_eq!(Outcome::of(&e).exit_code(), 75);
        let e = anyhow::Error::new(CompletedWithFailures("sink x".into()));
        assert_eq!((Outcome::of(&e).as_str(), Outcome::of(&e).exit_code()), ("completed-with-failures", 3));
        assert_eq!(Outcome::of(&anyhow::anyhow!("boom")), Outcome::Failed);
    }
}

//! How a job ended, and the exit code that stands for it (DESIGN §8).
//!
//! Each error type a job can end with says which outcome it stands for
//! ([`HasOutcome`]): [`ConfigProblem`] and a sink's or the store's
//! configuration error exit 2, [`CompletedWithFailures`] 3, an exhausted
//! rate budget or the store's `Locked` 75; the others defer to their cause.
//! The impls match every variant (no wildcard), and a wrapper asks what it
//! wraps, so a new variant or a new wrapping is decided where it is added,
//! never silently exit 1. [`Outcome::of`] finds the first deciding cause in
//! an `anyhow` chain, so the binary maps any error to its exit code in one
//! place.

use std::error::Error;

use bankpipe_config::ConfigError;
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

/// An error that knows which outcome (exit code) it stands for.
pub trait HasOutcome {
    /// The outcome this error decides, or `None` when it decides none (its
    /// cause may; if nothing in the chain decides, the job failed: exit 1).
    fn outcome(&self) -> Option<Outcome>;
}

impl HasOutcome for ConfigProblem {
    fn outcome(&self) -> Option<Outcome> {
        Some(Outcome::ConfigError)
    }
}

impl HasOutcome for CompletedWithFailures {
    fn outcome(&self) -> Option<Outcome> {
        Some(Outcome::CompletedWithFailures)
    }
}

impl HasOutcome for ConfigError {
    fn outcome(&self) -> Option<Outcome> {
        match self {
            ConfigError::Io { .. }
            | ConfigError::Parse { .. }
            | ConfigError::Invalid { .. }
            | ConfigError::Links { .. }
            | ConfigError::Secret { .. } => Some(Outcome::ConfigError),
        }
    }
}

impl HasOutcome for HttpError {
    fn outcome(&self) -> Option<Outcome> {
        match self {
            HttpError::RateBudgetExhausted { .. } => Some(Outcome::RateLimited),
            HttpError::CrossOrigin { .. }
            | HttpError::SharedBudget { .. }
            | HttpError::Ambiguous { .. }
            | HttpError::BodyTooLarge { .. }
            | HttpError::Status { .. }
            | HttpError::Transport { .. }
            | HttpError::Url(_)
            | HttpError::Build(_) => None,
        }
    }
}

impl HasOutcome for StoreError {
    fn outcome(&self) -> Option<Outcome> {
        match self {
            StoreError::Locked(_) => Some(Outcome::Locked),
            // Workers of one round running different configurations.
            StoreError::MixedConfig(_) => Some(Outcome::ConfigError),
            // An unusable `database_url` (not sqlite:// or postgres://).
            StoreError::Config(_) => Some(Outcome::ConfigError),
            StoreError::Database { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Money { .. }
            | StoreError::LeaseLost { .. }
            | StoreError::Callback(_) => None,
        }
    }
}

impl HasOutcome for LiveError {
    fn outcome(&self) -> Option<Outcome> {
        match self {
            // Transparent: the HTTP error is not a cause of its own in the chain.
            LiveError::Http(e) => e.outcome(),
            // A source entry that cannot be used (a missing key or
            // credential variable, an unusable base_url).
            LiveError::Config { .. } => Some(Outcome::ConfigError),
            LiveError::Page(_) | LiveError::Incomplete { .. } | LiveError::TooManyPages { .. } => None,
        }
    }
}

impl HasOutcome for SinkError {
    fn outcome(&self) -> Option<Outcome> {
        match self {
            SinkError::Config { .. } => Some(Outcome::ConfigError),
            SinkError::Http { source, .. } => source.outcome(),
            SinkError::Store { source, .. } => source.outcome(),
            SinkError::Stopped { .. } | SinkError::Protocol { .. } => None,
        }
    }
}

/// The outcome `e` decides, when it is of a type that can decide one
/// (`Some(None)`: it is, and decides none).
fn decided_by<T: HasOutcome + Error + 'static>(e: &(dyn Error + 'static)) -> Option<Option<Outcome>> {
    e.downcast_ref::<T>().map(T::outcome)
}

/// [`decided_by`] for one error type.
type Decider = fn(&(dyn Error + 'static)) -> Option<Option<Outcome>>;

/// Every error type that implements [`HasOutcome`]: a new one is added
/// here (an `anyhow` chain holds `dyn Error`s, found by their type).
const DECIDERS: [Decider; 7] = [
    decided_by::<CompletedWithFailures>,
    decided_by::<ConfigProblem>,
    decided_by::<ConfigError>,
    decided_by::<SinkError>,
    decided_by::<StoreError>,
    decided_by::<LiveError>,
    decided_by::<HttpError>,
];

impl Outcome {
    /// The outcome an error stands for: that of the first cause in its
    /// chain that decides one ([`HasOutcome`]), else [`Outcome::Failed`].
    pub fn of(err: &anyhow::Error) -> Outcome {
        err.chain().find_map(|e| DECIDERS.iter().find_map(|decider| decider(e)).flatten()).unwrap_or(Outcome::Failed)
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

    /// Wrapped errors decide through what they wrap, at any depth; an
    /// error that decides nothing leaves it to its cause, else exit 1.
    #[test]
    fn wrappers_decide_through_what_they_wrap() {
        let exhausted = || HttpError::RateBudgetExhausted {
            origin: "https://api.trupocket.app".into(),
            until: std::time::SystemTime::UNIX_EPOCH,
            max_wait_secs: 60,
        };
        let code = |e: anyhow::Error| Outcome::of(&e.context("sync")).exit_code();
        assert_eq!(code(LiveError::Http(exhausted()).into()), 75, "a transparent wrapper");
        assert_eq!(code(SinkError::Http { sink: "tp".into(), source: exhausted() }.into()), 75);
        assert_eq!(code(SinkError::Store { sink: "tp".into(), source: StoreError::Locked("db".into()) }.into()), 75);
        assert_eq!(code(SinkError::Config { sink: "tp".into(), message: "base_url".into() }.into()), 2);
        assert_eq!(code(StoreError::MixedConfig("another configuration".into()).into()), 2);
        let secret = ConfigError::Secret {
            sink: "mb".into(),
            key: "password_env",
            var: "MB_PASSWORD".into(),
            problem: "not set",
        };
        assert_eq!(code(secret.into()), 2);
        assert_eq!(code(SinkError::Protocol { sink: "mb".into(), message: "no results".into() }.into()), 1);
        let lost = StoreError::LeaseLost { unit: "deliver:tp:a".into(), owner: "w1".into() };
        assert_eq!(code(SinkError::Store { sink: "tp".into(), source: lost }.into()), 1);
        let transport = HttpError::Transport { method: "GET".into(), url: "u".into(), cause: "reset".into() };
        assert_eq!(code(SinkError::Http { sink: "tp".into(), source: transport }.into()), 1);
    }
}

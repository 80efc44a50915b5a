//! bankpipe's one HTTP client for every source and sink (DESIGN §6).
//!
//! - **Rate-limit gate per origin** ([`gate`]): reads `X-RateLimit-Limit`,
//!   `-Remaining` and `-Reset` (Unix seconds) on every response; holds all
//!   requests to an origin while Remaining is 0 until Reset; paces requests
//!   so the remaining budget lasts until Reset; honours 429 `Retry-After`
//!   (delta-seconds or HTTP-date), else Reset, else backoff; a `governor`
//!   limiter is the configured fixed ceiling beside it. A wait longer than
//!   [`Policy::max_wait`] ends the operation with
//!   [`HttpError::RateBudgetExhausted`] instead of sleeping for hours.
//! - **A budget shared by several processes** ([`shared`]): with
//!   [`HttpClient::with_shared_budget`], every request is reserved from a
//!   [`SharedBudget`] (bankpipe's is a PostgreSQL row per origin) and every
//!   response reported to it, so N workers together keep to one origin's
//!   limit and a 429 seen by one holds them all.
//! - **Retries** ([`client`]): exponential backoff with full jitter (backon's
//!   exponential schedule, a uniformly random wait below each step) for 5xx,
//!   408, connect errors and timeouts on idempotent requests (GET, PUT,
//!   DELETE). A POST is retried only when it provably never reached the
//!   server (connect error: refused, DNS) or was refused with 429; any other
//!   failure is [`HttpError::Ambiguous`], for the caller to reconcile.
//! - **Credentials bound to their origin** ([`Endpoint`]): a URL of another
//!   scheme, host or port is refused ([`HttpError::CrossOrigin`]) before
//!   anything is sent; redirects are never followed. Secrets are `secrecy`
//!   types, marked sensitive in headers, and never appear in logs or errors.
//! - Connect and request timeouts ([`Policy::request_timeout`] bounds each
//!   attempt including reading its body; its expiry names the URL), gzip,
//!   `User-Agent: bankpipe/<version>`.
//! - **Bounded bodies**: a response body is read chunk by chunk and never
//!   beyond [`Policy::max_body_bytes`] after decompression (default 64 MiB);
//!   more is [`HttpError::BodyTooLarge`] naming the URL and the limit
//!   ([`HttpError::Ambiguous`] for a POST). Error bodies are read up to 1 MiB.
//! - **Error bodies** parsed per API ([`ApiErrorBody`]) with a truncated text
//!   fallback for HTML and other non-JSON bodies.

pub mod client;
pub mod credentials;
pub mod error;
pub mod gate;
pub mod origin;
pub mod shared;

pub use client::{Endpoint, HttpClient, HttpResponse, Policy, DEFAULT_MAX_BODY_BYTES};
pub use credentials::Credentials;
pub use error::{ApiErrorBody, HttpError};
pub use gate::BudgetView;
pub use origin::Origin;
pub use reqwest::{Method, StatusCode, Url};
pub use secrecy::{self, SecretString};
pub use shared::{BoxFuture, Decision, Observation, RetryAfter, SharedBudget, SharedBudgetError};

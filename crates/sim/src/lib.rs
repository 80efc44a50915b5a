//! Faithful simulators of the four APIs bankpipe talks to (DESIGN §9), on
//! 127.0.0.1 with ephemeral ports, for tests, benchmarks and the demo:
//!
//! - [`truv`]: `GET /v1/links/{link_id}/transactions/` (client id/secret
//!   headers, `account_ids`, `transacted_at_from/to`, `page`, `page_size`,
//!   DRF-style `next`/`previous`, Truv error bodies);
//! - [`firefly`]: `GET /api/v1/transactions` (Bearer PAT, `start`, `end`,
//!   `type`, `limit`, `page`; pages counted in splits; `meta.pagination`);
//! - [`trupocket`]: households and detailed-tracking accounts, categories,
//!   payees and transactions; PAT format check; cents and Unix-seconds
//!   validation; `X-RateLimit-*` on every response with a configurable
//!   window; 429 `rate-limit-exceeded`; `plan-limit-exceeded`; a ledger.
//! - [`mibudge`]: JWT login (`/api/token/`, HttpOnly refresh cookie, token
//!   expiry, login throttle), bank accounts, budgets, transactions
//!   (decimal-string amounts, no dedupe, DRF pagination and filters),
//!   splits and `mark-imported`; DRF error shapes; HTML 500 pages; a ledger.
//!
//! Every simulator takes [`Faults`]: a 5xx rate, latency, connections
//! dropped after the request was processed, malformed JSON pages, and data
//! that changes between page requests; the sinks (Trupocket, mibudge) also
//! a latency after the commit and unreadable success bodies, and they run
//! every request to its end even when the client hangs up.

pub mod faults;
pub mod firefly;
pub mod mibudge;
pub mod ratelimit;
pub mod server;
pub mod trupocket;
pub mod truv;

pub use faults::Faults;
pub use server::SimServer;

//! Firefly III transaction groups (`GET /api/v1/transactions`), seed 004 and
//! the API facts in seeds/README.md.

pub mod chain;
pub(crate) mod live;
mod normalize;
mod wire;

pub use chain::FireflyChain;
pub use normalize::{normalize_page, FireflyCursor};

//! Truv transactions pages (`GET /v1/links/{link_id}/transactions/`),
//! seeds 001 (older shape) and 002 (newer shape with `daily_totals`).

pub mod chain;
pub(crate) mod live;
mod normalize;
mod wire;

pub use chain::TruvChain;
pub use normalize::{normalize_page, TruvCursor};

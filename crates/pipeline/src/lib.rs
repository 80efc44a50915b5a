//! bankpipe's jobs as a library (DESIGN §2, §8): the orchestration of
//! sync, backfill windows, replay and delivery over the stage crates'
//! seams — a [`ingest::PageSource`] (live API or recorded directory), the
//! `bankpipe_store::Store` and the `bankpipe_sinks` outbox. The binary
//! parses arguments, calls these functions and prints what they return.
//!
//! | module | job |
//! |---|---|
//! | [`sync`] | the scheduled job: windows per account, ingest, dedupe, totals, delivery |
//! | [`backfill`] | the one-off job: checkpointed windows, resumable |
//! | [`leases`] | a worker's side of a round of leased units: heartbeat, local deadline, claims |
//! | [`ingest`] | one source's walk into the store, page by page; pairing; totals reconciliation |
//! | [`windows`] | which date windows a sync fetches (pure) |
//! | [`recorded`] | a recorded directory as a page source (replay) |
//! | [`replay`] | replay = a sync over recordings into a scratch store, then export |
//! | [`export`] | the stored dataset as the canonical files |
//! | [`golden`] | comparing output files with golden ones, row by row |
//! | [`deliver`] | one delivery pass to one configured sink |
//! | [`dry_run`] | `sync --dry-run`: what a sync would fetch and send, nothing written or sent |
//! | [`rate`] | the PostgreSQL rate budget every worker shares, as the HTTP client's `SharedBudget` |
//! | [`outcome`] | how a job ended and its exit code |

pub mod backfill;
pub mod deliver;
pub mod dry_run;
pub mod export;
pub mod golden;
pub mod ingest;
pub mod leases;
pub mod outcome;
pub mod rate;
pub mod recorded;
pub mod replay;
mod round;
pub mod sync;
pub mod windows;

pub use outcome::{CompletedWithFailures, ConfigProblem, Outcome};

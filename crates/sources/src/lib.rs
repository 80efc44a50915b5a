//! Source adapters: turn Truv and Firefly III response pages into the
//! canonical model (DESIGN §3) and walk recorded page directories.
//!
//! Each adapter lives in its own folder ([`truv`], [`firefly`]) with the wire
//! format (`wire.rs`), the normalizer (`normalize.rs`) and the pagination
//! chain check (`chain.rs`). [`recorded`] reads a directory of page files as
//! `bankpipe record` writes them; `bankpipe-gen` writes large realistic ones.

pub mod context;
pub mod error;
pub mod firefly;
mod json;
pub mod live;
pub mod page;
pub mod recorded;
mod reject;
pub mod time;
pub mod truv;

pub use context::NormalizeContext;
pub use error::PageError;
pub use page::{NormalizedPage, SourceKind};

//! The canonical model of bankpipe (DESIGN §3): exact [`Money`] in ISO 4217
//! [`Currency`] minor units, [`Account`], [`Transaction`], [`DailyTotal`] and
//! the [`QuarantineRecord`] every rejected input record becomes.
//!
//! Sources normalize into these types; enrichment, the store and the sinks
//! consume them. Nothing here does I/O.

pub mod account;
pub mod currency;
pub mod daily_total;
pub mod dedupe;
pub mod id;
pub mod money;
pub mod quarantine;
pub mod transaction;

pub use account::Account;
pub use currency::{Currency, UnknownCurrency};
pub use daily_total::{DailyTotal, ReconcileStatus, ReconcileTarget, ReportedDailyTotal, SourceDailyTotal};
pub use id::CanonicalId;
pub use money::{parse_decimal, Money, MoneyError, MAX_ABS_MINOR_UNITS};
pub use quarantine::QuarantineRecord;
pub use transaction::{CategorySource, Kind, Mcc, SourceFields, Status, Transaction};

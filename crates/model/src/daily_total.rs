//! Daily totals and their reconciliation against the source's own totals.

use std::sync::Arc;

use chrono::NaiveDate;

use crate::currency::Currency;
use crate::money::Money;

/// Totals of one account's counted transactions on one booking date in one
/// currency (DESIGN §3). `net_total = inflow + outflow`; `outflow` is ≤ 0.
#[derive(Clone, Debug, PartialEq)]
pub struct DailyTotal {
    /// Source name.
    pub source: Arc<str>,
    /// The source account id, or `*` for a reconciliation across all of a
    /// response's accounts in that currency (a Truv entry without `account_id`).
    pub source_account_id: String,
    /// Booking date.
    pub date: NaiveDate,
    /// Currency.
    pub currency: Currency,
    /// Signed sum of counted transactions.
    pub net_total: Money,
    /// Number of counted transactions.
    pub transaction_count: u64,
    /// Sum of credits (≥ 0).
    pub inflow: Money,
    /// Sum of debits (≤ 0).
    pub outflow: Money,
    /// The source's own figure for this key, when it sent one.
    pub source_total: Option<SourceDailyTotal>,
}

/// A daily total as the source reported it (Truv `daily_totals[]`).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceDailyTotal {
    /// Source `net_total`.
    pub net_total: Money,
    /// Source `transaction_count`.
    pub transaction_count: u64,
}

/// Outcome of reconciling a computed total with the source's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileStatus {
    /// Net total and count agree.
    Match,
    /// They differ: reported, never overwritten.
    Mismatch,
    /// The source gave no figure for this key.
    Computed,
}

impl ReconcileStatus {
    /// `match`, `mismatch` or `computed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReconcileStatus::Match => "match",
            ReconcileStatus::Mismatch => "mismatch",
            ReconcileStatus::Computed => "computed",
        }
    }
}

impl DailyTotal {
    /// Compare with the source's figure, if any.
    pub fn status(&self) -> ReconcileStatus {
        match &self.source_total {
            None => ReconcileStatus::Computed,
            Some(s) if s.net_total == self.net_total && s.transaction_count == self.transaction_count => {
                ReconcileStatus::Match
            }
            Some(_) => ReconcileStatus::Mismatch,
        }
    }
}

/// A daily total as a source reported it, before its scope is resolved
/// (Truv `daily_totals[]` entry; the documented entry has no account id and
/// no currency, so both are optional here).
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedDailyTotal {
    /// Source name.
    pub source: Arc<str>,
    /// `account_id`, when the entry carries one.
    pub account_id: Option<String>,
    /// `currency_code`, when the entry carries one.
    pub currency: Option<Currency>,
    /// `date`.
    pub date: NaiveDate,
    /// `net_total`, exact decimal (currency resolved later).
    pub net_total: rust_decimal::Decimal,
    /// `transaction_count`.
    pub transaction_count: u64,
    /// Page file (or URL) it came from.
    pub file: String,
    /// JSON pointer of the entry in that page.
    pub pointer: String,
}

/// A source-reported daily total with its scope resolved: the figure the
/// computed total of `(source, account, date, currency)` is reconciled
/// against. `account` is a source account id, or `*` when the
/// figure speaks for several accounts (`scope`, summed).
#[derive(Clone, Debug, PartialEq)]
pub struct ReconcileTarget {
    /// Source name.
    pub source: Arc<str>,
    /// Source account id, or `*`.
    pub account: String,
    /// Booking date.
    pub date: NaiveDate,
    /// Currency (resolved from the entry or its accounts).
    pub currency: Currency,
    /// The source's figure (exact, in this currency's minor units).
    pub reported: SourceDailyTotal,
    /// The source account ids the figure covers (one for a per-account figure).
    pub scope: Vec<String>,
    /// Where it was read: page file or URL, `#`, JSON pointer.
    pub origin: String,
}

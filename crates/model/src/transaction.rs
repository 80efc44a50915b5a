//! The canonical transaction (DESIGN §3).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::id::CanonicalId;
use crate::money::Money;

/// Settlement status. Truv `POSTED` → `Posted`; `PENDING` and
/// `AUTHORIZATION` (a card hold) → `Pending`. Firefly III journals are booked
/// entries, hence always `Posted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Funds have moved; counts in daily totals and is delivered to sinks.
    Posted,
    /// Authorised or in flight; may later be superseded by a posted row.
    Pending,
}

impl Status {
    /// `"posted"` or `"pending"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Posted => "posted",
            Status::Pending => "pending",
        }
    }

    /// The status named by [`Status::as_str`].
    pub fn from_name(name: &str) -> Option<Status> {
        match name {
            "posted" => Some(Status::Posted),
            "pending" => Some(Status::Pending),
            _ => None,
        }
    }
}

/// What kind of movement a transaction is (used by sinks: Trupocket
/// `cashflow`, mibudge `transaction_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Purchase,
    Atm,
    Fee,
    Interest,
    Transfer,
    Deposit,
    Payroll,
    Check,
    Adjustment,
    Other,
}

impl Kind {
    /// Lower-case name, e.g. `"purchase"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Atm => "atm",
            Kind::Fee => "fee",
            Kind::Interest => "interest",
            Kind::Transfer => "transfer",
            Kind::Deposit => "deposit",
            Kind::Payroll => "payroll",
            Kind::Check => "check",
            Kind::Adjustment => "adjustment",
            Kind::Other => "other",
        }
    }

    /// The kind named by [`Kind::as_str`] (`purchase`, `atm`, …).
    pub fn from_name(name: &str) -> Option<Kind> {
        [
            Kind::Purchase,
            Kind::Atm,
            Kind::Fee,
            Kind::Interest,
            Kind::Transfer,
            Kind::Deposit,
            Kind::Payroll,
            Kind::Check,
            Kind::Adjustment,
            Kind::Other,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// Which step of categorization decided [`Transaction::category`] (DESIGN §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CategorySource {
    /// A user rule from the config.
    Rule,
    /// The MCC table alone.
    Mcc,
    /// The MCC table's parent, refined by a source label under that parent.
    MccAndSource,
    /// The source's own label (no MCC).
    Source,
    /// Nothing applied: `Uncategorized`.
    Default,
}

impl CategorySource {
    /// `rule`, `mcc`, `mcc+source`, `source` or `default`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CategorySource::Rule => "rule",
            CategorySource::Mcc => "mcc",
            CategorySource::MccAndSource => "mcc+source",
            CategorySource::Source => "source",
            CategorySource::Default => "default",
        }
    }

    /// The source named by [`CategorySource::as_str`].
    pub fn from_name(name: &str) -> Option<CategorySource> {
        [
            CategorySource::Rule,
            CategorySource::Mcc,
            CategorySource::MccAndSource,
            CategorySource::Source,
            CategorySource::Default,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }
}

/// The documented status and type words of the sources, as `'static`
/// strings (Truv `POSTED`, `PENDING`, `AUTHORIZATION`, `MEMO`, `DEBIT`,
/// `CREDIT`; Firefly `withdrawal`, `deposit`, `transfer`, `reconciliation`).
pub const SOURCE_WORDS: &[&str] = &[
    "POSTED",
    "PENDING",
    "AUTHORIZATION",
    "MEMO",
    "DEBIT",
    "CREDIT",
    "withdrawal",
    "deposit",
    "transfer",
    "reconciliation",
];

/// The `'static` spelling of a source word, `""` for anything else.
pub fn source_word(word: &str) -> &'static str {
    SOURCE_WORDS.iter().find(|w| **w == word).copied().unwrap_or("")
}

/// An ISO 18245 merchant category code, 0–9999, printed with four digits (`0742`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mcc(u16);

impl Mcc {
    /// `None` outside 0–9999.
    pub fn new(code: u64) -> Option<Mcc> {
        (code <= 9999).then_some(Mcc(code as u16))
    }

    /// The numeric code.
    pub fn get(&self) -> u16 {
        self.0
    }
}

impl fmt::Display for Mcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl fmt::Debug for Mcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Source fields that have no canonical meaning but are kept for users and
/// sinks (Firefly III: foreign amount, tags, notes, category and budget names).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceFields {
    /// Firefly `foreign_amount`, exact decimal text as received (unsigned).
    pub foreign_amount: Option<String>,
    /// Firefly `foreign_currency_code`.
    pub foreign_currency: Option<String>,
    /// Firefly `tags`.
    pub tags: Vec<String>,
    /// Firefly `notes`.
    pub notes: Option<String>,
    /// Firefly `budget_name`.
    pub budget_name: Option<String>,
}

/// One canonical transaction: one movement on one account.
///
/// Identity is `(source, source_account_id, source_transaction_id)` and
/// [`Transaction::id`] is its hash. Amounts are signed from the account
/// holder's view (debit negative, credit positive).
#[derive(Clone, Debug, PartialEq)]
pub struct Transaction {
    /// Deterministic id of the identity triple.
    pub id: CanonicalId,
    /// Source name (`truv`, `firefly`, or a configured source name).
    pub source: Arc<str>,
    /// The source's account id (Truv `account_id`; Firefly asset account id).
    pub source_account_id: String,
    /// Truv `id`; Firefly `transaction_journal_id`.
    pub source_transaction_id: String,
    /// Source `external_id`, when given.
    pub external_id: Option<String>,
    /// Firefly transaction group id (shared by the two legs of a transfer).
    pub group_id: Option<String>,
    /// Posted or pending.
    pub status: Status,
    /// The source's status word in its documented spelling (Truv `POSTED`,
    /// `PENDING`, `AUTHORIZATION`, `MEMO`; empty for Firefly, which has none).
    pub source_status: &'static str,
    /// The source's type word in its documented spelling (Truv `DEBIT`,
    /// `CREDIT`, `MEMO`; Firefly `withdrawal`, `deposit`, `transfer`,
    /// `reconciliation`).
    pub source_type: &'static str,
    /// `true` for Truv `MEMO` lines (status or type): stored, but never money.
    pub memo_only: bool,
    /// Signed amount in the transaction currency.
    pub amount: Money,
    /// When the transaction happened (UTC).
    pub transacted_at: Option<DateTime<Utc>>,
    /// When funds moved (UTC); `None` while pending.
    pub posted_at: Option<DateTime<Utc>>,
    /// The date it books on: date of `posted_at`, else `transacted_at`, in the
    /// configured zone; for Firefly the calendar date as written in `date`.
    pub booking_date: NaiveDate,
    /// Source's last-modified instant (UTC): the newest wins on re-fetch.
    pub updated_at: Option<DateTime<Utc>>,
    /// Human-readable description.
    pub description: String,
    /// Merchant name, when the source extracted one.
    pub merchant_name: Option<String>,
    /// ISO 18245 merchant category code.
    pub mcc: Option<Mcc>,
    /// The source's category labels (Truv `categories`, Firefly `category_name`).
    pub source_categories: Vec<String>,
    /// Source memo text.
    pub memo: Option<String>,
    /// Check number.
    pub check_number: Option<String>,
    /// Movement kind.
    pub kind: Kind,
    /// Canonical category path (`Food & Dining/Coffee Shops`), set by
    /// enrichment; shared with the taxonomy, so cloning it is cheap.
    pub category: Option<Arc<str>>,
    /// Which step decided `category`.
    pub category_source: CategorySource,
    /// Set when this row duplicates another source's row (kept elsewhere).
    pub duplicate_of: Option<CanonicalId>,
    /// Set when a posted row supersedes this pending row.
    pub superseded_by: Option<CanonicalId>,
    /// Non-canonical source fields kept for users (Firefly III only; boxed
    /// so that rows without them stay small).
    pub source_fields: Option<Box<SourceFields>>,
}

impl Transaction {
    /// A bare posted row of `source` account `account` with source id `id`:
    /// `amount` (its sign the direction), booked on `booking_date`, the id
    /// as description, kind `other`, no enrichment, no timestamps. For
    /// tests, benchmarks and generators, which then set what they need.
    pub fn bare_posted(source: &str, account: &str, id: &str, amount: Money, booking_date: NaiveDate) -> Transaction {
        Transaction {
            id: CanonicalId::for_transaction(source, account, id),
            source: Arc::from(source),
            source_account_id: account.into(),
            source_transaction_id: id.into(),
            external_id: None,
            group_id: None,
            status: Status::Posted,
            source_status: "POSTED",
            source_type: if amount.is_negative() { "DEBIT" } else { "CREDIT" },
            memo_only: false,
            amount,
            transacted_at: None,
            posted_at: None,
            booking_date,
            updated_at: None,
            description: id.into(),
            merchant_name: None,
            mcc: None,
            source_categories: Vec::new(),
            memo: None,
            check_number: None,
            kind: Kind::Other,
            category: None,
            category_source: CategorySource::Default,
            duplicate_of: None,
            superseded_by: None,
            source_fields: None,
        }
    }

    /// `true` when the row counts in daily totals and is money for sinks:
    /// posted, not a MEMO line, not a duplicate and not superseded.
    pub fn counts(&self) -> bool {
        self.status == Status::Posted && !self.memo_only && self.duplicate_of.is_none() && self.superseded_by.is_none()
    }
}

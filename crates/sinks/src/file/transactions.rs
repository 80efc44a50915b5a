//! `transactions.csv` / `transactions.jsonl`.

use std::fmt::{Display, Write as _};
use std::io::{self, Write};

use bankpipe_model::{CanonicalId, Mcc, Money, SourceFields, Transaction};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};
use serde::Serialize;

use super::write_line;

static NO_SOURCE_FIELDS: SourceFields =
    SourceFields { foreign_amount: None, foreign_currency: None, tags: Vec::new(), notes: None, budget_name: None };

/// Columns of `transactions.csv`, in order. `amount` is signed decimal text at
/// the currency's minor units; `counts` is `1` when the row counts in daily
/// totals (posted, not MEMO, not duplicate or superseded), else `0`;
/// `source_categories` and `tags` are joined with `" | "`.
pub const TRANSACTION_COLUMNS: &[&str] = &[
    "id",
    "source",
    "source_account_id",
    "source_transaction_id",
    "status",
    "booking_date",
    "amount",
    "currency",
    "description",
    "merchant_name",
    "mcc",
    "category",
    "category_source",
    "kind",
    "counts",
    "duplicate_of",
    "superseded_by",
    "transacted_at",
    "posted_at",
    "updated_at",
    "source_status",
    "source_type",
    "external_id",
    "group_id",
    "source_categories",
    "memo",
    "check_number",
    "foreign_amount",
    "foreign_currency",
    "tags",
    "notes",
    "budget_name",
];

/// Writes `Display` values through a reused buffer, so a row costs no allocation.
struct Fields<'w, W: Write> {
    w: &'w mut csv::Writer<W>,
    scratch: String,
}

impl<W: Write> Fields<'_, W> {
    fn text(&mut self, s: &str) -> csv::Result<()> {
        self.w.write_field(s)
    }
    fn show(&mut self, v: impl Display) -> csv::Result<()> {
        self.scratch.clear();
        let _ = write!(self.scratch, "{v}");
        self.w.write_field(&self.scratch)
    }
    fn opt_text(&mut self, s: Option<&str>) -> csv::Result<()> {
        self.w.write_field(s.unwrap_or(""))
    }
    fn opt_show(&mut self, v: Option<impl Display>) -> csv::Result<()> {
        match v {
            Some(v) => self.show(v),
            None => self.w.write_field(""),
        }
    }
    fn joined(&mut self, list: &[String]) -> csv::Result<()> {
        self.scratch.clear();
        for (i, item) in list.iter().enumerate() {
            if i > 0 {
                self.scratch.push_str(" | ");
            }
            self.scratch.push_str(item);
        }
        self.w.write_field(&self.scratch)
    }
}

/// RFC 3339 UTC, whole seconds unless the source had fractions.
struct Instant(DateTime<Utc>);

impl Display for Instant {
    /// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`, as chrono's
    /// `to_rfc3339_opts(AutoSi, true)` prints it, digit by digit (three
    /// instants per row, in both files).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, t) = (self.0.date_naive(), self.0.time());
        let nanos = t.nanosecond();
        if nanos >= 1_000_000_000 || !(0..=9999).contains(&d.year()) {
            return f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
        let mut out = *b"0000-00-00T00:00:00.000000000Z";
        let put = |out: &mut [u8; 30], at: usize, digits: usize, mut value: u32| {
            for i in (at..at + digits).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(&mut out, 0, 4, d.year() as u32);
        put(&mut out, 5, 2, d.month());
        put(&mut out, 8, 2, d.day());
        put(&mut out, 11, 2, t.hour());
        put(&mut out, 14, 2, t.minute());
        put(&mut out, 17, 2, t.second());
        let end = match nanos {
            0 => 19,
            n if n % 1_000_000 == 0 => {
                put(&mut out, 20, 3, n / 1_000_000);
                23
            }
            n if n % 1_000 == 0 => {
                put(&mut out, 20, 6, n / 1_000);
                26
            }
            n => {
                put(&mut out, 20, 9, n);
                29
            }
        };
        out[end] = b'Z';
        f.write_str(std::str::from_utf8(&out[..=end]).map_err(|_| std::fmt::Error)?)
    }
}

impl Serialize for Instant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Serialize any `Display` value as a JSON string without allocating.
struct Shown<T>(T);

impl<T: Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

pub(super) fn write_csv<W: Write>(tx: &Transaction, w: &mut csv::Writer<W>, scratch: &mut String) -> csv::Result<()> {
    let f = tx.source_fields.as_deref().unwrap_or(&NO_SOURCE_FIELDS);
    let mut out = Fields { w, scratch: std::mem::take(scratch) };
    out.show(tx.id)?;
    out.text(&tx.source)?;
    out.text(&tx.source_account_id)?;
    out.text(&tx.source_transaction_id)?;
    out.text(tx.status.as_str())?;
    out.show(tx.booking_date)?;
    out.show(tx.amount)?;
    out.text(tx.amount.currency().code())?;
    out.text(&tx.description)?;
    out.opt_text(tx.merchant_name.as_deref())?;
    out.opt_show(tx.mcc)?;
    out.opt_text(tx.category.as_deref())?;
    out.text(tx.category_source.as_str())?;
    out.text(tx.kind.as_str())?;
    out.text(if tx.counts() { "1" } else { "0" })?;
    out.opt_show(tx.duplicate_of)?;
    out.opt_show(tx.superseded_by)?;
    out.opt_show(tx.transacted_at.map(Instant))?;
    out.opt_show(tx.posted_at.map(Instant))?;
    out.opt_show(tx.updated_at.map(Instant))?;
    out.text(tx.source_status)?;
    out.text(tx.source_type)?;
    out.opt_text(tx.external_id.as_deref())?;
    out.opt_text(tx.group_id.as_deref())?;
    out.joined(&tx.source_categories)?;
    out.opt_text(tx.memo.as_deref())?;
    out.opt_text(tx.check_number.as_deref())?;
    out.opt_text(f.foreign_amount.as_deref())?;
    out.opt_text(f.foreign_currency.as_deref())?;
    out.joined(&f.tags)?;
    out.opt_text(f.notes.as_deref())?;
    out.opt_text(f.budget_name.as_deref())?;
    *scratch = out.scratch;
    w.write_record(None::<&[u8]>)
}

/// The JSONL shape: the CSV columns with typed values (`counts` boolean,
/// `mcc` 4-digit string, lists as arrays, absent values as `null`).
#[derive(Serialize)]
struct Row<'a> {
    id: Shown<CanonicalId>,
    source: &'a str,
    source_account_id: &'a str,
    source_transaction_id: &'a str,
    status: &'static str,
    booking_date: Shown<NaiveDate>,
    amount: Shown<Money>,
    currency: &'a str,
    description: &'a str,
    merchant_name: Option<&'a str>,
    mcc: Option<Shown<Mcc>>,
    category: Option<&'a str>,
    category_source: &'static str,
    kind: &'static str,
    counts: bool,
    duplicate_of: Option<Shown<CanonicalId>>,
    superseded_by: Option<Shown<CanonicalId>>,
    transacted_at: Option<Instant>,
    posted_at: Option<Instant>,
    updated_at: Option<Instant>,
    source_status: &'static str,
    source_type: &'static str,
    external_id: Option<&'a str>,
    group_id: Option<&'a str>,
    source_categories: &'a [String],
    memo: Option<&'a str>,
    check_number: Option<&'a str>,
    foreign_amount: Option<&'a str>,
    foreign_currency: Option<&'a str>,
    tags: &'a [String],
    notes: Option<&'a str>,
    budget_name: Option<&'a str>,
}

pub(super) fn write_json<W: Write>(tx: &Transaction, out: &mut W) -> io::Result<()> {
    let f = tx.source_fields.as_deref().unwrap_or(&NO_SOURCE_FIELDS);
    let currency = tx.amount.currency();
    let row = Row {
        id: Shown(tx.id),
        source: &tx.source,
        source_account_id: &tx.source_account_id,
        source_transaction_id: &tx.source_transaction_id,
        status: tx.status.as_str(),
        booking_date: Shown(tx.booking_date),
        amount: Shown(tx.amount),
        currency: currency.code(),
        description: &tx.description,
        merchant_name: tx.merchant_name.as_deref(),
        mcc: tx.mcc.map(Shown),
        category: tx.category.as_deref(),
        category_source: tx.category_source.as_str(),
        kind: tx.kind.as_str(),
        counts: tx.counts(),
        duplicate_of: tx.duplicate_of.map(Shown),
        superseded_by: tx.superseded_by.map(Shown),
        transacted_at: tx.transacted_at.map(Instant),
        posted_at: tx.posted_at.map(Instant),
        updated_at: tx.updated_at.map(Instant),
        source_status: tx.source_status,
        source_type: tx.source_type,
        external_id: tx.external_id.as_deref(),
        group_id: tx.group_id.as_deref(),
        source_categories: &tx.source_categories,
        memo: tx.memo.as_deref(),
        check_number: tx.check_number.as_deref(),
        foreign_amount: f.foreign_amount.as_deref(),
        foreign_currency: f.foreign_currency.as_deref(),
        tags: &f.tags,
        notes: f.notes.as_deref(),
        budget_name: f.budget_name.as_deref(),
    };
    write_line(out, &row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_matches_chrono_auto_si() {
        for text in [
            "2024-03-01T15:00:00Z",
            "2024-03-01T15:00:00.250Z",
            "2024-03-01T15:00:00.000123Z",
            "2024-03-01T15:00:00.000000007Z",
            "0999-01-02T03:04:05Z",
            "9999-12-31T23:59:59.123456789Z",
            "2024-02-29T00:00:00.100Z",
            "2024-02-29T10:20:30.010200Z",
        ] {
            let t: DateTime<Utc> = text.parse().unwrap();
            assert_eq!(Instant(t).to_string(), t.to_rfc3339_opts(SecondsFormat::AutoSi, true), "{text}");
        }
        let far = NaiveDate::from_ymd_opt(12345, 1, 1).unwrap().and_hms_nano_opt(1, 2, 3, 4_000).unwrap().and_utc();
        assert_eq!(Instant(far).to_string(), far.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    }
}

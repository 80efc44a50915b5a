//! Mapping canonical values to stored columns and back.
//!
//! Amounts: signed integer minor units + currency code (exact; an amount
//! beyond `i64` minor units is refused, never truncated). Dates:
//! `YYYY-MM-DD`. Instants: RFC 3339 UTC. Lists and Firefly source fields:
//! JSON text. `fingerprint`: XXH3-64 of the content columns, so a re-read
//! with nothing new is recognised without comparing every column.

use std::sync::Arc;

use bankpipe_model::transaction::{source_word, SourceFields};
use bankpipe_model::{CanonicalId, CategorySource, Currency, Kind, Mcc, Money, Status, Transaction};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};
use serde::ser::{Serialize, SerializeTuple, Serializer};
use serde_json::{json, Value};

use crate::error::StoreError;

/// A transaction as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TxRow {
    pub id: String,
    pub source: String,
    pub source_account_id: String,
    pub source_transaction_id: String,
    pub status: String,
    pub booking_date: String,
    pub amount_minor: i64,
    pub currency: String,
    pub description: String,
    pub merchant_name: Option<String>,
    pub mcc: Option<i64>,
    pub category: Option<String>,
    pub category_source: String,
    pub kind: String,
    pub memo_only: bool,
    pub duplicate_of: Option<String>,
    pub superseded_by: Option<String>,
    pub transacted_at: Option<String>,
    pub posted_at: Option<String>,
    pub updated_at: Option<String>,
    pub source_status: String,
    pub source_type: String,
    pub external_id: Option<String>,
    pub group_id: Option<String>,
    pub source_categories: String,
    pub memo: Option<String>,
    pub check_number: Option<String>,
    pub source_fields: Option<String>,
    pub fingerprint: String,
}

/// RFC 3339 UTC with a fixed 6 fraction digits, so that stored instants
/// compare correctly as text (`updated_at` guards in SQL).
pub fn instant(t: DateTime<Utc>) -> String {
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // A sign or a fifth year digit, or a leap second: chrono's own text.
        return t.to_rfc3339_opts(SecondsFormat::Micros, true);
    }
    // `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as `to_rfc3339_opts(Micros, true)`
    // writes it (fraction truncated to microseconds), without going
    // through chrono's format machinery (three instants a row).
    let mut out = [0u8; 27];
    let mut put = |at: usize, digits: usize, mut value: u32| {
        for i in (at..at + digits).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 6, nanos / 1000);
    for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (26, b'Z')] {
        out[at] = c;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// The content columns of a row, serialized as one JSON array (the input
/// of [`TxRow::content_fingerprint`]; the order is part of every stored
/// fingerprint and must not change).
struct Content<'a>(&'a TxRow);

impl Serialize for Content<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut t = s.serialize_tuple(22)?;
        t.serialize_element(&r.status)?;
        t.serialize_element(&r.booking_date)?;
        t.serialize_element(&r.amount_minor)?;
        t.serialize_element(&r.currency)?;
        t.serialize_element(&r.description)?;
        t.serialize_element(&r.merchant_name)?;
        t.serialize_element(&r.mcc)?;
        t.serialize_element(&r.category)?;
        t.serialize_element(&r.category_source)?;
        t.serialize_element(&r.kind)?;
        t.serialize_element(&r.memo_only)?;
        t.serialize_element(&r.transacted_at)?;
        t.serialize_element(&r.posted_at)?;
        t.serialize_element(&r.updated_at)?;
        t.serialize_element(&r.source_status)?;
        t.serialize_element(&r.source_type)?;
        t.serialize_element(&r.external_id)?;
        t.serialize_element(&r.group_id)?;
        t.serialize_element(&r.source_categories)?;
        t.serialize_element(&r.memo)?;
        t.serialize_element(&r.check_number)?;
        t.serialize_element(&r.source_fields)?;
        t.end()
    }
}

impl TxRow {
    /// The row for a canonical transaction.
    ///
    /// # Errors
    /// [`StoreError::Money`] when the amount exceeds `i64` minor units.
    pub fn from_tx(tx: &Transaction) -> Result<TxRow, StoreError> {
        let amount_minor = tx
            .amount
            .to_minor_units()
            .map_err(|e| StoreError::Money { id: tx.id.to_string(), cause: e.to_string() })?;
        let source_fields = tx.source_fields.as_deref().map(|f| {
            json!({
                "foreign_amount": f.foreign_amount,
                "foreign_currency": f.foreign_currency,
                "tags": f.tags,
                "notes": f.notes,
                "budget_name": f.budget_name,
            })
            .to_string()
        });
        let mut row = TxRow {
            id: tx.id.to_string(),
            source: tx.source.to_string(),
            source_account_id: tx.source_account_id.clone(),
            source_transaction_id: tx.source_transaction_id.clone(),
            status: tx.status.as_str().to_owned(),
            booking_date: tx.booking_date.to_string(),
            amount_minor,
            currency: tx.amount.currency().code().to_owned(),
            description: tx.description.clone(),
            merchant_name: tx.merchant_name.clone(),
            mcc: tx.mcc.map(|m| i64::from(m.get())),
            category: tx.category.as_deref().map(str::to_owned),
            category_source: tx.category_source.as_str().to_owned(),
            kind: tx.kind.as_str().to_owned(),
            memo_only: tx.memo_only,
            duplicate_of: tx.duplicate_of.map(|i| i.to_string()),
            superseded_by: tx.superseded_by.map(|i| i.to_string()),
            transacted_at: tx.transacted_at.map(instant),
            posted_at: tx.posted_at.map(instant),
            updated_at: tx.updated_at.map(instant),
            source_status: tx.source_status.to_owned(),
            source_type: tx.source_type.to_owned(),
            external_id: tx.external_id.clone(),
            group_id: tx.group_id.clone(),
            source_categories: serde_json::to_string(&tx.source_categories).expect("strings serialize"),
            memo: tx.memo.clone(),
            check_number: tx.check_number.clone(),
            source_fields,
            fingerprint: String::new(),
        };
        row.fingerprint = row.content_fingerprint();
        Ok(row)
    }

    /// XXH3-64 (hex) of every content column (not the dedupe decisions):
    /// the hash of the compact JSON array of those columns, in the order of
    /// [`Content`]. Serialized straight to bytes (no intermediate JSON
    /// value): the text, and so every stored fingerprint, is unchanged.
    pub fn content_fingerprint(&self) -> String {
        let mut text = Vec::with_capacity(512);
        serde_json::to_writer(&mut text, &Content(self)).expect("strings, integers and booleans serialize");
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&text))
    }

    /// Back to the canonical transaction.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the column that does not parse.
    pub fn into_tx(self, database: &str) -> Result<Transaction, StoreError> {
        let id_text = self.id.clone();
        let corrupt = |field: &'static str, value: &str| StoreError::Corrupt {
            database: database.to_owned(),
            id: id_text.clone(),
            field,
            value: value.to_owned(),
        };
        let when = |field: &'static str, v: &Option<String>| -> Result<Option<DateTime<Utc>>, StoreError> {
            v.as_deref()
                .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt(field, t)))
                .transpose()
        };
        let currency = Currency::from_code(&self.currency).map_err(|_| corrupt("currency", &self.currency))?;
        let link = |field: &'static str, v: &Option<String>| -> Result<Option<CanonicalId>, StoreError> {
            v.as_deref().map(|i| CanonicalId::parse(i).ok_or_else(|| corrupt(field, i))).transpose()
        };
        let source_fields = match self.source_fields.as_deref() {
            None => None,
            Some(text) => {
                let v: Value = serde_json::from_str(text).map_err(|_| corrupt("source_fields", text))?;
                let s = |k: &str| v[k].as_str().map(str::to_owned);
                Some(Box::new(SourceFields {
                    foreign_amount: s("foreign_amount"),
                    foreign_currency: s("foreign_currency"),
                    tags: v["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect(),
                    notes: s("notes"),
                    budget_name: s("budget_name"),
                }))
            }
        };
        Ok(Transaction {
            id: CanonicalId::parse(&self.id).ok_or_else(|| corrupt("id", &self.id))?,
            source: Arc::from(self.source.as_str()),
            status: Status::from_name(&self.status).ok_or_else(|| corrupt("status", &self.status))?,
            booking_date: NaiveDate::parse_from_str(&self.booking_date, "%Y-%m-%d")
                .map_err(|_| corrupt("booking_date", &self.booking_date))?,
            amount: Money::from_minor_units(self.amount_minor, currency),
            merchant_name: self.merchant_name,
            mcc: self.mcc.map(|m| Mcc::new(m as u64).ok_or_else(|| corrupt("mcc", &m.to_string()))).transpose()?,
            category: self.category.map(|c| Arc::from(c.as_str())),
            category_source: CategorySource::from_name(&self.category_source)
                .ok_or_else(|| corrupt("category_source", &self.category_source))?,
            kind: Kind::from_name(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))?,
            memo_only: self.memo_only,
            duplicate_of: link("duplicate_of", &self.duplicate_of)?,
            superseded_by: link("superseded_by", &self.superseded_by)?,
            transacted_at: when("transacted_at", &self.transacted_at)?,
            posted_at: when("posted_at", &self.posted_at)?,
            updated_at: when("updated_at", &self.updated_at)?,
            source_status: source_word(&self.source_status),
            source_type: source_word(&self.source_type),
            source_categories: serde_json::from_str(&self.source_categories)
                .map_err(|_| corrupt("source_categories", &self.source_categories))?,
            source_fields,
            description: self.description,
            source_account_id: self.source_account_id,
            source_transaction_id: self.source_transaction_id,
            external_id: self.external_id,
            group_id: self.group_id,
            memo: self.memo,
            check_number: self.check_number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint as every earlier release computed it (through a
    /// `serde_json::Value`): stored fingerprints must keep matching.
    fn fingerprint_through_value(r: &TxRow) -> String {
        let content = json!([
            r.status,
            r.booking_date,
            r.amount_minor,
            r.currency,
            r.description,
            r.merchant_name,
            r.mcc,
            r.category,
            r.category_source,
            r.kind,
            r.memo_only,
            r.transacted_at,
            r.posted_at,
            r.updated_at,
            r.source_status,
            r.source_type,
            r.external_id,
            r.group_id,
            r.source_categories,
            r.memo,
            r.check_number,
            r.source_fields,
        ]);
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(content.to_string().as_bytes()))
    }

    fn row(text: &str, optional: Option<&str>, amount: i64, mcc: Option<i64>, memo_only: bool) -> TxRow {
        let o = optional.map(str::to_owned);
        TxRow {
            id: "0123456789abcdef0123456789abcdef".into(),
            source: "truv".into(),
            source_account_id: "acct".into(),
            source_transaction_id: "tx".into(),
            status: "posted".into(),
            booking_date: "2024-02-29".into(),
            amount_minor: amount,
            currency: "EUR".into(),
            description: text.into(),
            merchant_name: o.clone(),
            mcc,
            category: o.clone(),
            category_source: "source".into(),
            kind: "debit".into(),
            memo_only,
            duplicate_of: None,
            superseded_by: None,
            transacted_at: o.clone(),
            posted_at: Some("2024-02-29T10:00:00.000000Z".into()),
            updated_at: o.clone(),
            source_status: "posted".into(),
            source_type: "card".into(),
            external_id: o.clone(),
            group_id: o.clone(),
            source_categories: format!("[{:?}]", text),
            memo: Some(text.into()),
            check_number: o.clone(),
            source_fields: o,
            fingerprint: String::new(),
        }
    }

    #[test]
    fn instants_are_written_as_chrono_writes_them() {
        let mut seen = 0;
        let mut check = |t: DateTime<Utc>| {
            assert_eq!(instant(t), t.to_rfc3339_opts(SecondsFormat::Micros, true), "{t:?}");
            seen += 1;
        };
        for text in [
            "0000-01-01T00:00:00Z",
            "0001-02-03T04:05:06.000007Z",
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T00:00:00.0000001Z",
            "2024-02-29T12:34:56.123456789Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            check(text.parse().unwrap());
        }
        // Years chrono writes with a sign or a fifth digit.
        for (y, m, d) in [(10_000, 1, 1), (-1, 12, 31), (-10_000, 6, 15)] {
            check(NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_micro_opt(1, 2, 3, 4).unwrap().and_utc());
        }
        // A leap second (nanosecond ≥ 1e9) goes through chrono.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        check(leap.and_utc());
        // Pseudo-random instants over years 0–9999 and every fraction digit.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = (x % 315_537_897_600) as i64 - 62_167_219_200;
            check(DateTime::from_timestamp(secs, (x >> 33) as u32 % 1_000_000_000).unwrap());
        }
        assert_eq!(seen, 20_010);
    }

    #[test]
    fn fingerprints_are_unchanged_by_direct_serialization() {
        let texts = [
            "",
            "plain",
            "quotes \" and \\ backslash / slash",
            "control \u{0} \u{1f} \n\r\t \u{7f}",
            "unicode: café Ω 漢字 🦀 \u{2028}\u{2029}",
        ];
        for text in texts {
            for optional in [None, Some(text), Some("x")] {
                for (amount, mcc, memo_only) in
                    [(0, None, false), (-1, Some(5411), true), (i64::MIN, Some(0), false), (i64::MAX, None, true)]
                {
                    let r = row(text, optional, amount, mcc, memo_only);
                    assert_eq!(
                        r.content_fingerprint(),
                        fingerprint_through_value(&r),
                        "{text:?} {optional:?} {amount}"
                    );
                }
            }
        }
    }
}

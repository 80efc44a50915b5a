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
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
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
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
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

    /// XXH3-64 (hex) of every content column (not the dedupe decisions).
    pub fn content_fingerprint(&self) -> String {
        let content = json!([
            self.status,
            self.booking_date,
            self.amount_minor,
            self.currency,
            self.description,
            self.merchant_name,
            self.mcc,
            self.category,
            self.category_source,
            self.kind,
            self.memo_only,
            self.transacted_at,
            self.posted_at,
            self.updated_at,
            self.source_status,
            self.source_type,
            self.external_id,
            self.group_id,
            self.source_categories,
            self.memo,
            self.check_number,
            self.source_fields,
        ]);
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(content.to_string().as_bytes()))
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

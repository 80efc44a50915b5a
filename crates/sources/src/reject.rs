//! Record-level rejection: the reason a record goes to quarantine.

use bankpipe_model::{Currency, Money, QuarantineRecord};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::context::NormalizeContext;
use crate::json::{scalar_text, truncate};

/// Why one record was rejected: the field (relative to the record), the
/// value as received, and the reason.
#[derive(Debug)]
pub(crate) struct Reject {
    pub field: String,
    pub value: String,
    pub reason: String,
    pub record_id: Option<String>,
}

impl Reject {
    pub(crate) fn new(field: &str, value: impl Into<String>, reason: impl Into<String>) -> Reject {
        Reject { field: field.to_owned(), value: value.into(), reason: reason.into(), record_id: None }
    }

    /// Attach the rejected record's own id (when it could be read).
    pub(crate) fn with_record_id(mut self, id: Option<String>) -> Reject {
        self.record_id = self.record_id.or(id);
        self
    }

    /// A required field that is missing or null.
    pub(crate) fn missing(field: &str) -> Reject {
        Reject::new(field, "null", format!("required field {field} is missing or null"))
    }

    /// Turn into the quarantine record for `pointer` in `file`.
    pub(crate) fn into_record(self, ctx: &NormalizeContext, file: &str, pointer: String) -> QuarantineRecord {
        QuarantineRecord {
            source: ctx.source.to_string(),
            file: file.to_owned(),
            pointer,
            field: self.field,
            value: truncate(&self.value),
            reason: self.reason,
            record_id: self.record_id,
        }
    }
}

/// The scalar at `key` of a raw record, read only on the failure path.
pub(crate) fn raw_id(raw: &RawValue, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    match &v[key] {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Deserialize one record. The fast path is a plain serde parse; only on
/// failure is the record parsed again to name the offending field and value.
pub(crate) fn parse_record<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T, Reject> {
    serde_json::from_str::<T>(raw.get()).map_err(|_| explain_parse_failure::<T>(raw))
}

fn explain_parse_failure<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Reject {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => Reject::new("", raw.get(), "record could not be parsed"),
        Err(err) => {
            let field = err.path().to_string();
            let field = if field == "." { String::new() } else { field };
            let value = value_at(raw.get(), err.path()).unwrap_or_else(|| raw.get().to_owned());
            Reject::new(&field, value, err.into_inner().to_string())
        }
    }
}

fn value_at(record: &str, path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut v: serde_json::Value = serde_json::from_str(record).ok()?;
    for seg in path.iter() {
        v = match seg {
            Segment::Map { key } => v.get_mut(key.as_str())?.take(),
            Segment::Seq { index } => v.get_mut(*index)?.take(),
            _ => return None,
        };
    }
    Some(v.to_string())
}

/// Read a money field exactly: a decimal string (or a JSON number's exact
/// digits) in `currency`, refusing anything that would need rounding.
pub(crate) fn money_field(raw: Option<&RawValue>, field: &str, currency: Currency) -> Result<Option<Money>, Reject> {
    let Some(raw) = raw else { return Ok(None) };
    let text = scalar_text(raw).map_err(|v| Reject::new(field, v, "expected a decimal string"))?;
    match text {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => Money::parse(&t, currency).map(Some).map_err(|e| Reject::new(field, t.as_ref(), e.to_string())),
    }
}

/// Look a currency code up in the ISO 4217 table.
pub(crate) fn currency_field(code: Option<&str>, field: &str) -> Result<Currency, Reject> {
    let code = code.ok_or_else(|| Reject::missing(field))?;
    Currency::from_code(code).map_err(|e| Reject::new(field, code, e.to_string()))
}

//! Record-level rejection: the reason a record goes to quarantine.

use std::borrow::Cow;

use bankpipe_model::{Currency, Money, MoneyError, QuarantineRecord};
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

/// The scalar at `key` of a raw record (a non-blank string or a number),
/// read only on the failure path.
pub(crate) fn raw_id(raw: &RawValue, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    match &v[key] {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
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
/// digits) in `currency`, refusing anything that would need rounding or
/// that lies beyond [`bankpipe_model::MAX_ABS_MINOR_UNITS`] ("amount out of
/// range …"). Blank and `null` read as `None`.
pub(crate) fn money_field(raw: Option<&RawValue>, field: &str, currency: Currency) -> Result<Option<Money>, Reject> {
    match money_text(raw, field, currency)? {
        None => Ok(None),
        Some((_, Ok(m))) => Ok(Some(m)),
        Some((text, Err(e))) => Err(Reject::new(field, text.as_ref(), e.to_string())),
    }
}

/// The text of a money field and its parse (bounded), `None` when absent.
#[allow(clippy::type_complexity)]
fn money_text<'r>(
    raw: Option<&'r RawValue>,
    field: &str,
    currency: Currency,
) -> Result<Option<(Cow<'r, str>, Result<Money, MoneyError>)>, Reject> {
    let Some(raw) = raw else { return Ok(None) };
    let text = scalar_text(raw).map_err(|v| Reject::new(field, v, "expected a decimal string"))?;
    Ok(match text {
        None => None,
        Some(t) if t.trim().is_empty() => None,
        Some(t) => {
            let parsed = Money::parse_in_range(&t, currency);
            Some((t, parsed))
        }
    })
}

/// A balance that was read but dropped: its field, value and reason.
#[derive(Debug)]
pub(crate) struct Dropped {
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl Dropped {
    /// The page warning for a value dropped from the record at `pointer`.
    pub(crate) fn warning(&self, file: &str, pointer: &str, record_id: Option<&str>) -> String {
        let id = record_id.map(|id| format!(" (id {id:?})")).unwrap_or_default();
        format!(
            "{file}: {pointer}{id}: {} = {:?} dropped (kept as no value; the record is kept): {}",
            self.field,
            truncate(&self.value),
            self.reason
        )
    }
}

/// A balance field (current, available, credit limit): read like
/// [`money_field`], except that a value out of range is not a reason to
/// reject the whole account — it becomes `None` and is noted in `dropped`.
/// Malformed values (not a decimal, digits beyond the minor units) still
/// reject the record.
pub(crate) fn balance_field(
    raw: Option<&RawValue>,
    field: &str,
    currency: Currency,
    dropped: &mut Vec<Dropped>,
) -> Result<Option<Money>, Reject> {
    match money_text(raw, field, currency)? {
        None => Ok(None),
        Some((_, Ok(m))) => Ok(Some(m)),
        Some((value, Err(e @ MoneyError::OutOfRange { .. }))) => {
            dropped.push(Dropped { field: field.to_owned(), value: value.into_owned(), reason: e.to_string() });
            Ok(None)
        }
        Some((text, Err(e))) => Err(Reject::new(field, text.as_ref(), e.to_string())),
    }
}

/// Look a currency code up in the ISO 4217 table.
pub(crate) fn currency_field(code: Option<&str>, field: &str) -> Result<Currency, Reject> {
    let code = code.ok_or_else(|| Reject::missing(field))?;
    Currency::from_code(code).map_err(|e| Reject::new(field, code, e.to_string()))
}

//! Timestamp parsing for the forms the sources send.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;

/// Parse an ISO 8601 / RFC 3339 timestamp with an offset, accepting both
/// forms Truv sends — `2022-05-04T11:30:00Z` and `2022-05-04 11:30:00+00:00`
/// — with optional fractional seconds. The offset is kept.
///
/// # Errors
/// A message naming the expected forms.
pub fn parse_offset_datetime(text: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(text).map_err(|e| {
        format!(
            "not an ISO 8601 timestamp with offset (expected 2022-05-04T11:30:00Z or 2022-05-04 11:30:00+00:00): {e}"
        )
    })
}

/// [`parse_offset_datetime`] converted to UTC.
///
/// # Errors
/// As [`parse_offset_datetime`].
pub fn parse_utc(text: &str) -> Result<DateTime<Utc>, String> {
    parse_offset_datetime(text).map(|t| t.with_timezone(&Utc))
}

/// The calendar date of a UTC instant in `tz` (the configured booking zone).
pub fn date_in(instant: DateTime<Utc>, tz: Tz) -> NaiveDate {
    if tz == Tz::UTC {
        instant.date_naive()
    } else {
        instant.with_timezone(&tz).date_naive()
    }
}

/// Parse a `YYYY-MM-DD` date.
///
/// # Errors
/// A message naming the expected form.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| format!("not a YYYY-MM-DD date: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_truv_forms_are_the_same_instant() {
        let a = parse_utc("2022-05-04T11:30:00Z").unwrap();
        let b = parse_utc("2022-05-04 11:30:00+00:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_utc("2022-05-04T13:30:00.250+02:00").unwrap().timestamp_millis(), a.timestamp_millis() + 250);
    }

    #[test]
    fn refuses_timestamps_without_offset_or_garbage() {
        for bad in ["2022-05-04T11:30:00", "2022-05-04", "yesterday", "", "2022-13-04T11:30:00Z"] {
            assert!(parse_utc(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn booking_date_follows_the_zone() {
        let t = parse_utc("2024-03-05T02:00:00Z").unwrap();
        assert_eq!(date_in(t, Tz::UTC).to_string(), "2024-03-05");
        assert_eq!(date_in(t, chrono_tz::America::New_York).to_string(), "2024-03-04");
    }
}

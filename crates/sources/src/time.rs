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
/// The two UTC forms Truv sends (`…T11:30:00Z`, `… 11:30:00+00:00`) take a
/// fast path; every other form goes through chrono's RFC 3339 parser.
///
/// # Errors
/// As [`parse_offset_datetime`].
pub fn parse_utc(text: &str) -> Result<DateTime<Utc>, String> {
    if let Some(t) = parse_plain_utc(text.as_bytes()) {
        return Ok(t);
    }
    parse_offset_datetime(text).map(|t| t.with_timezone(&Utc))
}

/// `YYYY-MM-DD[T ]HH:MM:SS(Z|+00:00)` without fractions, or `None`.
fn parse_plain_utc(b: &[u8]) -> Option<DateTime<Utc>> {
    let utc_suffix = match b.len() {
        20 => b[19] == b'Z',
        25 => &b[19..] == b"+00:00",
        _ => false,
    };
    if !utc_suffix
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(date.and_time(time).and_utc())
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
    fn fast_path_agrees_with_chrono() {
        for text in
            ["2022-05-04T11:30:00Z", "2022-05-04 11:30:00+00:00", "1999-12-31T23:59:59Z", "2024-02-29 00:00:00+00:00"]
        {
            let slow = DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
            assert_eq!(parse_plain_utc(text.as_bytes()), Some(slow), "{text}");
        }
        for text in
            ["2023-02-29T00:00:00Z", "2022-05-04T24:00:00Z", "2022-05-04X11:30:00Z", "2022-05-04T11:30:00+01:00"]
        {
            assert_eq!(parse_plain_utc(text.as_bytes()), None, "{text}");
        }
        assert!(parse_utc("2023-02-29T00:00:00Z").is_err());
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

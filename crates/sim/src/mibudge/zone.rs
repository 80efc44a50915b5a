//! The server's time zone (Django `TIME_ZONE` with `USE_TZ = True`) and
//! the datetime parsing of DRF's `DateTimeField` and django-filter's
//! `DateTimeFilter`.
//!
//! The zone is a fixed offset, optionally with the US daylight-saving
//! rules in force since 2007 (second Sunday of March, 02:00 local, to the
//! first Sunday of November, 02:00 local), which with an offset of -480
//! reproduces `America/Los_Angeles` from 2007 on.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};

/// A fixed standard offset, with or without US daylight saving.
#[derive(Clone, Copy, Debug)]
pub(super) struct Zone {
    standard: FixedOffset,
    us_dst: bool,
}

impl Zone {
    /// `minutes` east of UTC (clamped to a valid offset), with US DST if `us_dst`.
    pub(super) fn new(minutes: i32, us_dst: bool) -> Zone {
        let standard = FixedOffset::east_opt(minutes.clamp(-1439, 1439) * 60).expect("offset within a day");
        Zone { standard, us_dst }
    }

    fn daylight(&self) -> FixedOffset {
        FixedOffset::east_opt(self.standard.local_minus_utc() + 3_600).expect("offset within a day")
    }

    /// The offset in force at the UTC instant `utc`.
    pub(super) fn offset_at(&self, utc: NaiveDateTime) -> FixedOffset {
        if !self.us_dst {
            return self.standard;
        }
        let year = utc.year();
        let nth_sunday = |month: u32, n: u8| {
            NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n).expect("a month has a 2nd Sunday")
        };
        let two_am = NaiveTime::from_hms_opt(2, 0, 0).expect("valid time");
        // 02:00 standard time in March; 02:00 daylight time in November.
        let start = nth_sunday(3, 2).and_time(two_am) - Duration::seconds(i64::from(self.standard.local_minus_utc()));
        let end = nth_sunday(11, 1).and_time(two_am) - Duration::seconds(i64::from(self.daylight().local_minus_utc()));
        if (start..end).contains(&utc) {
            self.daylight()
        } else {
            self.standard
        }
    }

    /// `t` in the server's zone.
    pub(super) fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.offset_at(t.naive_utc()))
    }

    /// The instant of the local wall-clock time `local`, as Django's
    /// `make_aware` with zoneinfo (`fold=0`) resolves it: an ambiguous
    /// time takes the offset before the transition (daylight), a time in
    /// the spring gap takes the offset before the transition (standard).
    pub(super) fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let valid = |off: FixedOffset| {
            let utc = local - Duration::seconds(i64::from(off.local_minus_utc()));
            (self.offset_at(utc) == off).then_some(utc)
        };
        let utc = match (valid(self.daylight()).filter(|_| self.us_dst), valid(self.standard)) {
            (Some(utc), _) | (None, Some(utc)) => utc,
            (None, None) => local - Duration::seconds(i64::from(self.standard.local_minus_utc())),
        };
        utc.and_utc()
    }

    /// Local midnight starting `date`.
    pub(super) fn midnight(&self, date: NaiveDate) -> DateTime<Utc> {
        self.instant(date.and_time(NaiveTime::MIN))
    }

    /// DRF's rendering of a datetime: `isoformat()` in the server's zone,
    /// `Z` for a zero offset, microseconds only when not zero.
    pub(super) fn render(&self, t: DateTime<Utc>) -> String {
        let local = self.local(t);
        let micros = if local.timestamp_subsec_micros() == 0 { "" } else { "%.6f" };
        let text = local.format(&format!("%Y-%m-%dT%H:%M:%S{micros}%:z")).to_string();
        match text.strip_suffix("+00:00") {
            Some(head) => format!("{head}Z"),
            None => text,
        }
    }
}

/// Parse an ISO 8601 datetime as Python's `datetime.fromisoformat` (which
/// Django's `parse_datetime` tries first) reads the usual forms: a bare
/// `YYYY-MM-DD` (midnight), or `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]` with an
/// optional `Z`, `±HH`, `±HHMM` or `±HH:MM`. A time without an offset is
/// local to the server (`make_aware` in the current zone).
pub(super) fn parse_iso(s: &str, zone: &Zone) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| zone.midnight(d));
    }
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, offset) = rest.split_at(split);
    let time = ["%H:%M:%S%.f", "%H:%M"].iter().find_map(|f| NaiveTime::parse_from_str(time, f).ok())?;
    let local = date.and_time(time);
    let offset = match offset {
        "" => return Some(zone.instant(local)),
        "Z" | "z" => 0,
        o => {
            let (sign, digits) = (if o.starts_with('-') { -1 } else { 1 }, o[1..].replace(':', ""));
            if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i32 = digits[..2].parse().ok()?;
            let minutes: i32 = digits.get(2..).filter(|m| !m.is_empty()).map_or(Some(0), |m| m.parse().ok())?;
            if hours > 23 || minutes > 59 || (o[1..].contains(':') && o.len() != 6) {
                return None;
            }
            sign * (hours * 3_600 + minutes * 60)
        }
    };
    let offset = FixedOffset::east_opt(offset)?;
    local.and_local_timezone(offset).single().map(|t| t.with_timezone(&Utc))
}

/// A django-filter `DateTimeFilter` value (Django's `forms.DateTimeField`):
/// ISO 8601 as [`parse_iso`], else one of Django's default
/// `DATETIME_INPUT_FORMATS` (`%m/%d/%Y`, `%m/%d/%y`, with optional time);
/// a naive value is local to the server.
pub(super) fn parse_filter(s: &str, zone: &Zone) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Some(t) = parse_iso(s, zone) {
        return Some(t);
    }
    const FORMATS: [&str; 9] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%m/%d/%Y %H:%M:%S%.f",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
        "%m/%d/%y %H:%M:%S%.f",
        "%m/%d/%y %H:%M:%S",
        "%m/%d/%y %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ];
    if let Some(t) = FORMATS.iter().find_map(|f| NaiveDateTime::parse_from_str(s, f).ok()) {
        return Some(zone.instant(t));
    }
    ["%m/%d/%Y", "%m/%d/%y"].iter().find_map(|f| NaiveDate::parse_from_str(s, f).ok()).map(|d| zone.midnight(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("rfc3339").with_timezone(&Utc)
    }

    #[test]
    fn a_bare_date_is_local_midnight_and_renders_with_the_offset() {
        let pst = Zone::new(-480, false);
        let t = parse_iso("2024-02-13", &pst).expect("date");
        assert_eq!(t, utc("2024-02-13T08:00:00Z"));
        assert_eq!(pst.render(t), "2024-02-13T00:00:00-08:00");
        assert_eq!(Zone::new(0, false).render(t), "2024-02-13T08:00:00Z");
        assert_eq!(pst.render(utc("2024-02-13T08:00:00.25Z")), "2024-02-13T00:00:00.250000-08:00");
    }

    #[test]
    fn offsets_are_instants() {
        let pst = Zone::new(-480, false);
        assert_eq!(parse_iso("2024-02-13T10:00:00+01:00", &pst), Some(utc("2024-02-13T09:00:00Z")));
        assert_eq!(parse_iso("2024-02-13 10:00Z", &pst), Some(utc("2024-02-13T10:00:00Z")));
        assert_eq!(parse_iso("2024-02-13T10:00:00-0330", &pst), Some(utc("2024-02-13T13:30:00Z")));
        assert_eq!(parse_iso("2024-02-13T10:00:00", &pst), Some(utc("2024-02-13T18:00:00Z")));
        for bad in ["2024-02-13T", "13/02/2024", "2024-02-13T10", "2024-02-13T10:00:00 01:00", "May"] {
            assert_eq!(parse_iso(bad, &pst), None, "{bad}");
        }
        assert_eq!(parse_filter("05/14/2024", &pst), Some(utc("2024-05-14T08:00:00Z")));
    }

    #[test]
    fn us_daylight_saving_follows_los_angeles() {
        let la = Zone::new(-480, true);
        assert_eq!(la.render(parse_iso("2024-05-14", &la).expect("date")), "2024-05-14T00:00:00-07:00");
        assert_eq!(la.render(parse_iso("2024-12-14", &la).expect("date")), "2024-12-14T00:00:00-08:00");
        // 2024-03-10 02:30 does not exist; 2024-11-03 01:30 happens twice.
        assert_eq!(la.render(utc("2024-03-10T09:59:59Z")), "2024-03-10T01:59:59-08:00");
        assert_eq!(la.render(utc("2024-03-10T10:00:00Z")), "2024-03-10T03:00:00-07:00");
        assert_eq!(parse_iso("2024-03-10T02:30:00", &la), Some(utc("2024-03-10T10:30:00Z")));
        assert_eq!(parse_iso("2024-11-03T01:30:00", &la), Some(utc("2024-11-03T08:30:00Z")), "fold=0");
        assert_eq!(la.render(utc("2024-11-03T09:30:00Z")), "2024-11-03T01:30:00-08:00");
    }
}

//! Wall-clock times as records write them (RFC 3339, UTC) and calendar
//! dates for quarantine expiry. jiff does the calendar: one implementation
//! for the records, the report and the quarantine file, so a date that does
//! not exist (`2026-02-31`) is refused everywhere, never shifted.

use std::fmt;
use std::time::SystemTime;

use jiff::Timestamp;

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(jiff::civil::Date);

impl Date {
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let year = i16::try_from(year).ok()?;
        let month = i8::try_from(month).ok()?;
        let day = i8::try_from(day).ok()?;
        jiff::civil::Date::new(year, month, day).ok().map(Date)
    }

    /// `YYYY-MM-DD`, exactly.
    pub fn parse(text: &str) -> Option<Date> {
        let text = text.trim();
        // jiff also reads `+002026-01-05` and `20260105`: a quarantine file says it plainly.
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        text.parse().ok().map(Date)
    }

    /// Today in UTC.
    pub fn today() -> Date {
        Date(Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A moment as RFC 3339 in UTC with milliseconds: `2026-03-01T12:00:00.250Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let t = Timestamp::try_from(at).unwrap_or(Timestamp::UNIX_EPOCH);
    // Truncated, not rounded, to the millisecond: a time is never written later than it was.
    let t = t
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Millisecond)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap_or(t);
    format!("{t:.3}")
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_of_known_moments() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_294_400_250);
        assert_eq!(rfc3339(t), "2024-03-01T12:00:00.250Z");
        let t = UNIX_EPOCH + Duration::from_nanos(1_709_294_400_999_999_999);
        assert_eq!(rfc3339(t), "2024-03-01T12:00:00.999Z", "truncated");
        // The day after a leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_868_800);
        assert_eq!(rfc3339(t), "2000-03-01T00:00:00.000Z");
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(Date::parse("2026-02-28"), Date::new(2026, 2, 28));
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(Date::parse("2026-02-29").is_none());
        assert!(Date::parse("2026-02-31").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("26-01-01").is_none());
        assert!(Date::parse("20260105").is_none());
        assert!(Date::parse("next week").is_none());
        assert!(Date::new(2026, 4, 31).is_none());
        assert_eq!(Date::parse("2026-01-05").unwrap().to_string(), "2026-01-05");
    }

    #[test]
    fn dates_order_by_calendar() {
        assert!(Date::parse("2025-12-31") < Date::parse("2026-01-01"));
        assert!(Date::today() > Date::parse("2020-01-01").unwrap());
    }
}

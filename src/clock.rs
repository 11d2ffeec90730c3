//! Wall-clock times as records write them (RFC 3339, UTC) and calendar
//! dates for quarantine expiry, without a date crate: the civil-from-days
//! conversion is a few lines.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days_in_month)
            .contains(&day)
            .then_some(Date { year, month, day })
    }

    /// `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.trim().splitn(3, '-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
    }

    /// Today in UTC.
    pub fn today() -> Date {
        civil_from_days(now_seconds().div_euclid(86_400))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn now_seconds() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// Days since 1970-01-01 to a date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date {
        year: i32::try_from(year).unwrap_or(i32::MAX),
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

/// A moment as RFC 3339 in UTC with milliseconds: `2026-03-01T12:00:00.250Z`.
/// Written digit by digit: a record is made per test.
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let date = civil_from_days(secs.div_euclid(86_400));
    let rem = u32::try_from(secs.rem_euclid(86_400)).unwrap_or(0);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + u8::try_from(value % 10).unwrap_or(0);
            value /= 10;
        }
    };
    put(0, 4, u32::try_from(date.year).unwrap_or(0));
    put(5, 2, date.month);
    put(8, 2, date.day);
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 3, since.subsec_millis());
    String::from_utf8_lossy(&out).into_owned()
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_of_known_moments() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_294_400_250);
        assert_eq!(rfc3339(t), "2024-03-01T12:00:00.250Z");
        // The day after a leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_868_800);
        assert_eq!(rfc3339(t), "2000-03-01T00:00:00.000Z");
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(Date::parse("2026-02-28"), Date::new(2026, 2, 28));
        assert_eq!(Date::parse("2024-02-29").unwrap().day, 29);
        assert!(Date::parse("2026-02-29").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("26-01-01").is_none());
        assert!(Date::parse("next week").is_none());
        assert_eq!(Date::parse("2026-01-05").unwrap().to_string(), "2026-01-05");
    }

    #[test]
    fn dates_order_by_calendar() {
        assert!(Date::parse("2025-12-31") < Date::parse("2026-01-01"));
        assert!(Date::today() > Date::parse("2020-01-01").unwrap());
    }
}

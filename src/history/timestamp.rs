//! RFC 3339 timestamps of the records, as seconds since the Unix epoch:
//! runs are ordered by them and charts use them as their x axis. jiff parses
//! and writes them (the same calendar as `clock`): a date that does not
//! exist, like `2026-02-31`, is no timestamp, so the reader counts the field
//! as corrupt instead of reading March 3.

use jiff::Timestamp;

/// Seconds since 1970-01-01T00:00:00Z, or None when `text` is not an RFC 3339
/// timestamp (a date, a time and an offset or `Z`) of a real date.
pub fn parse(text: &str) -> Option<f64> {
    let t: Timestamp = text.parse().ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some(t.as_second() as f64 + f64::from(t.subsec_nanosecond()) * 1e-9)
}

fn at(epoch: f64) -> Timestamp {
    #[allow(clippy::cast_possible_truncation)]
    let secs = epoch.floor() as i64;
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `YYYY-MM-DD` of an epoch time (UTC).
pub fn date(epoch: f64) -> String {
    at(epoch).strftime("%Y-%m-%d").to_string()
}

/// RFC 3339 with seconds, in UTC: `2026-03-01T12:00:00Z`. Every time the
/// report writes (run times, `generated_at`) has this form.
pub fn seconds(epoch: f64) -> String {
    at(epoch).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `YYYY-MM-DD HH:MM` (UTC), for sentences a person reads (gate baselines);
/// what a program reads gets `seconds`.
pub fn minute(epoch: f64) -> String {
    at(epoch).strftime("%Y-%m-%d %H:%M").to_string()
}

/// Now, from the system clock.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse("2026-03-01T12:00:00Z"), Some(1_772_366_400.0));
        assert_eq!(parse("2026-03-01T13:00:00+01:00"), Some(1_772_366_400.0));
        assert_eq!(parse("2026-03-01T11:30:00-00:30"), Some(1_772_366_400.0));
        assert_eq!(parse("2026-03-01 12:00:00Z"), Some(1_772_366_400.0));
        let f = parse("2026-03-01T12:00:00.25Z").unwrap();
        assert!((f - 1_772_366_400.25).abs() < 1e-6);
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-03-01",
            "2026-13-01T00:00:00Z",
            "2026-03-01T00:00:00",
            "2026-03-01T00:00:00.Z",
            "yesterday at noon, roughly",
            "2026-03-01T25:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn impossible_dates_are_refused_not_shifted() {
        // The hand-written parser read this as March 3.
        assert_eq!(parse("2026-02-31T00:00:00Z"), None);
        assert_eq!(parse("2026-02-29T00:00:00Z"), None);
        assert_eq!(parse("2026-04-31T12:00:00+02:00"), None);
        assert!(parse("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn times_are_written_with_seconds_and_offset() {
        let t = parse("2024-02-29T23:59:59.75Z").unwrap();
        assert_eq!(date(t), "2024-02-29");
        assert_eq!(seconds(t), "2024-02-29T23:59:59Z");
        assert_eq!(date(t + 1.0), "2024-03-01");
        assert_eq!(date(-1.0), "1969-12-31");
        assert_eq!(seconds(-0.5), "1969-12-31T23:59:59Z");
        assert_eq!(minute(t), "2024-02-29 23:59");
    }
}

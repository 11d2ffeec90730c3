//! Time budgets as people write them: `"30m"`, `"1h 30m"`, `"90s"` (jiff's
//! friendly format, or ISO 8601 `"PT30M"`), checked at load so a typo is an
//! error naming the key, never a budget nobody meant.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The longest budget accepted: a week (the weekly pipeline's stress runs
/// take 24-72 h); anything longer is a typo.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// A duration as the plan, the budget gate and the budget errors show it:
/// `42.0s`, `3m 05s`, `2h 10m`.
pub fn human(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = seconds.round() as u64;
    if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// A budget as the configuration wrote it, checked by [`parse`].
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetText {
    Text(String),
    Number(f64),
}

impl<'de> Deserialize<'de> for BudgetText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = BudgetText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with its unit, e.g. \"30m\" or \"1h 30m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<BudgetText, E> {
                Ok(BudgetText::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<BudgetText, E> {
                Ok(BudgetText::Number(v))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<BudgetText, E> {
                Ok(BudgetText::Number(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a budget should look like, for every message.
pub const EXAMPLE: &str =
    "write a duration with its unit, e.g. budget = \"30m\", \"1h 30m\" or \"90s\"";

/// The budget in seconds, or why not (the message; the fix is [`EXAMPLE`]
/// unless the message says otherwise).
pub fn parse(value: &BudgetText) -> Result<f64, (String, String)> {
    let text = match value {
        BudgetText::Text(t) => t.trim(),
        BudgetText::Number(n) => {
            return Err((
                format!("{n} is a number without a unit"),
                format!("{EXAMPLE} (a bare number could be seconds or minutes)"),
            ))
        }
    };
    if text.is_empty() {
        return Err(("the budget is empty".into(), EXAMPLE.into()));
    }
    let span: jiff::SignedDuration = text.parse().map_err(|e: jiff::Error| {
        let why = e.to_string();
        let fix = if why.contains("day") || why.contains("week") || why.contains("month") || why.contains("year") {
            "use hours for long budgets, e.g. \"48h\" (days are not all 24 hours long to a calendar)".to_string()
        } else {
            EXAMPLE.to_string()
        };
        (format!("'{text}' is not a duration ({why})"), fix)
    })?;
    let seconds = span.as_secs_f64();
    if seconds < 0.0 {
        return Err((
            format!("'{text}' is negative"),
            "a budget is the longest the pipeline or stage may take: give a positive duration"
                .into(),
        ));
    }
    if seconds == 0.0 {
        return Err((
            format!("'{text}' is zero: nothing fits in it"),
            "give a positive duration, or remove the key for no budget".into(),
        ));
    }
    if seconds > MAX_SECONDS {
        return Err((
            format!("'{text}' is longer than a week ({} h)", seconds / 3600.0),
            "check the unit (\"30m\" is 30 minutes, \"30h\" 30 hours); budgets up to \"168h\" are accepted".into(),
        ));
    }
    Ok(seconds)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact answers
mod tests {
    use super::*;

    fn text(t: &str) -> Result<f64, (String, String)> {
        parse(&BudgetText::Text(t.into()))
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(text("30m").unwrap(), 1800.0);
        assert_eq!(text("1h 30m").unwrap(), 5400.0);
        assert_eq!(text("1h30m").unwrap(), 5400.0);
        assert_eq!(text("90s").unwrap(), 90.0);
        assert_eq!(text("2.5s").unwrap(), 2.5);
        assert_eq!(text(" 3h ").unwrap(), 10800.0);
        assert_eq!(text("PT30M").unwrap(), 1800.0);
        assert_eq!(text("45 minutes").unwrap(), 2700.0);
        assert_eq!(text("168h").unwrap(), MAX_SECONDS);
    }

    #[test]
    fn bad_budgets_say_what_is_wrong() {
        for (t, words) in [
            ("-30m", "negative"),
            ("0s", "zero"),
            ("0m", "zero"),
            ("169h", "longer than a week"),
            ("30", "not a duration"),
            ("30x", "not a duration"),
            ("thirty minutes", "not a duration"),
            ("", "empty"),
            ("2d", "not a duration"),
        ] {
            let (message, fix) = text(t).unwrap_err();
            assert!(message.contains(words), "{t}: {message}");
            assert!(!fix.is_empty());
        }
        let (message, fix) = parse(&BudgetText::Number(30.0)).unwrap_err();
        assert!(
            message.contains("without a unit") && fix.contains("\"30m\""),
            "{message} {fix}"
        );
    }

    #[test]
    fn durations_read_as_people_do() {
        assert_eq!(human(4.34), "4.3s");
        assert_eq!(human(185.0), "3m 05s");
        assert_eq!(human(7800.0), "2h 10m");
    }
}

//! `[tool.pytest-dynamo.timeouts]` and `[tool.pytest-dynamo.advice]`: when a
//! test must carry a timeout, how generous the recommended values are.
//! Every value is checked as the configuration loads: a bad one is an error
//! with its line and column, never a surprise in a report.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The longest duration a setting takes (a year): anything longer is a typo.
const MAX_SECONDS: f64 = 366.0 * 86_400.0;

/// `[tool.pytest-dynamo.timeouts]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// A test whose p95 duration is above this must carry a `timeout` marker.
    #[serde(deserialize_with = "seconds")]
    pub require_above: f64,
    /// The recommended timeout is this times the p95 duration, rounded up.
    #[serde(deserialize_with = "timeout_factor")]
    pub factor: f64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            require_above: 60.0,
            factor: 3.0,
        }
    }
}

/// `[tool.pytest-dynamo.advice]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdviceConfig {
    /// The recommended VRAM value is the measured peak times this, rounded up.
    #[serde(deserialize_with = "vram_factor")]
    pub vram_factor: f64,
}

impl Default for AdviceConfig {
    fn default() -> Self {
        AdviceConfig { vram_factor: 1.2 }
    }
}

/// A duration in seconds from `"90s"`, `"1m30s"`, `"2h"`, `"PT1M"` or a number of seconds.
pub fn parse_seconds(text: &str) -> std::result::Result<f64, String> {
    let trimmed = text.trim();
    let seconds = match trimmed.parse::<f64>() {
        Ok(n) => n,
        Err(_) => trimmed
            .parse::<jiff::SignedDuration>()
            .map_err(|_| {
                format!("'{text}' is not a duration (say \"90s\", \"10m\", \"1h30m\" or a number of seconds)")
            })?
            .as_secs_f64(),
    };
    if seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("'{text}' must be 0 seconds to a year"))
    }
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"60s\", \"5m\" or a number of seconds")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<f64, E> {
            parse_seconds(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<f64, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<f64, E> {
            self.visit_str(&v.to_string())
        }
    }
    d.deserialize_any(V)
}

/// A factor from `low` to `high`, inclusive.
fn factor<'de, D: Deserializer<'de>>(
    d: D,
    low: f64,
    high: f64,
    why: &'static str,
) -> std::result::Result<f64, D::Error> {
    struct V {
        low: f64,
        high: f64,
        why: &'static str,
    }
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a number from {} to {}", self.low, self.high)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<f64, E> {
            if v.is_finite() && (self.low..=self.high).contains(&v) {
                Ok(v)
            } else {
                Err(E::custom(format!(
                    "{v} is not from {} to {} ({})",
                    self.low, self.high, self.why
                )))
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<f64, E> {
            #[allow(clippy::cast_precision_loss)]
            self.visit_f64(v as f64)
        }
    }
    d.deserialize_any(V { low, high, why })
}

fn timeout_factor<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    factor(
        d,
        1.0,
        100.0,
        "a timeout below the p95 duration fails the tests it guards",
    )
}

fn vram_factor<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    factor(
        d,
        1.0,
        10.0,
        "a VRAM value below the measured peak does not fit the test",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;

    fn load(text: &str) -> crate::error::Result<Option<crate::config::Config>> {
        from_pyproject("pyproject.toml", text)
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_seconds("60s"), Ok(60.0));
        assert_eq!(parse_seconds("1m30s"), Ok(90.0));
        assert_eq!(parse_seconds("2h"), Ok(7200.0));
        assert_eq!(parse_seconds(" 45 "), Ok(45.0));
        assert_eq!(parse_seconds("PT1M"), Ok(60.0));
        assert!(parse_seconds("soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_seconds("-5s")
            .unwrap_err()
            .contains("0 seconds to a year"));
        assert!(parse_seconds("nan").is_err());
    }

    #[test]
    fn the_tables_load_with_defaults_and_refuse_bad_values() {
        let c = load("[tool.pytest-dynamo]\n").unwrap().unwrap();
        assert_eq!(c.timeouts, TimeoutsConfig::default());
        assert!((c.advice.vram_factor - 1.2).abs() < f64::EPSILON);
        let c = load(
            "[tool.pytest-dynamo.timeouts]\nrequire_above = \"2m\"\nfactor = 2\n\
             [tool.pytest-dynamo.advice]\nvram_factor = 1.5\n",
        )
        .unwrap()
        .unwrap();
        assert!((c.timeouts.require_above - 120.0).abs() < f64::EPSILON);
        assert!((c.timeouts.factor - 2.0).abs() < f64::EPSILON);
        assert!((c.advice.vram_factor - 1.5).abs() < f64::EPSILON);
        for (bad, says) in [
            (
                "[tool.pytest-dynamo.timeouts]\nrequire_above = \"often\"\n",
                "not a duration",
            ),
            (
                "[tool.pytest-dynamo.timeouts]\nfactor = 0.5\n",
                "below the p95",
            ),
            (
                "[tool.pytest-dynamo.timeouts]\nfactor = \"3\"\n",
                "a number from 1 to 100",
            ),
            ("[tool.pytest-dynamo.timeouts]\nfactr = 3\n", "factr"),
            (
                "[tool.pytest-dynamo.advice]\nvram_factor = 0.9\n",
                "below the measured peak",
            ),
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}

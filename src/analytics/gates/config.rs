//! `[tool.pytest-dynamo.gates]`: the quality gates' thresholds (defaults:
//! the testing strategy's, listed in docs/gates.md) and the history window
//! the report and the gates share.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The testing strategy's line-coverage minimums per language, what
/// `coverage_floors = "spec"` asks for.
pub const SPEC_FLOORS: [(&str, f64); 2] = [("python", 85.0), ("rust", 80.0)];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatesConfig {
    /// Runs in the flakiness window (the last N runs).
    pub window: usize,
    /// Results a test needs in the window before it is judged flaky or broken.
    pub min_runs: usize,
    /// Suite flaky rate, in percent, above which the flaky gate fails.
    pub flaky_rate: f64,
    /// Regression of a performance metric against its baseline median, in percent.
    pub performance_regression: f64,
    /// A test's p50 must also grow by at least this many seconds to be a
    /// slow-down: a few milliseconds more is noise, whatever the percentage.
    pub slowdown_min_s: f64,
    /// Earlier runs on the same GPU model that make a metric's baseline.
    pub performance_baseline_runs: usize,
    /// Values a baseline needs before a metric is judged.
    pub performance_min_baseline: usize,
    /// Drop of line coverage against the baseline, in percentage points.
    pub coverage_drop: f64,
    /// Minimum line coverage per language, in percent (`"spec"`: `SPEC_FLOORS`).
    pub coverage_floors: CoverageFloors,
    /// Coverage reports of this run (coverage.py JSON or LCOV), relative to the rootdir.
    pub coverage_report: Vec<String>,
    /// Coverage reports of the baseline (e.g. the target branch).
    pub coverage_baseline: Vec<String>,
    /// Consecutive passes after which the report suggests releasing a quarantined test.
    pub release_after: usize,
    /// Days a suggested quarantine entry lasts (its `expires`).
    pub quarantine_days: u32,
}

impl Default for GatesConfig {
    fn default() -> Self {
        GatesConfig {
            window: 20,
            min_runs: 5,
            flaky_rate: 5.0,
            performance_regression: 5.0,
            slowdown_min_s: 1.0,
            performance_baseline_runs: 10,
            performance_min_baseline: 3,
            coverage_drop: 2.0,
            coverage_floors: CoverageFloors::default(),
            coverage_report: Vec::new(),
            coverage_baseline: Vec::new(),
            release_after: 10,
            quarantine_days: 30,
        }
    }
}

impl GatesConfig {
    /// Values serde cannot refuse by type: a window of 0, a negative percentage.
    pub fn check(&self, source: &str) -> Result<()> {
        let fail = |key: &str, why: &str| {
            Err(Error::config(
                source,
                format!("[tool.pytest-dynamo.gates] {key} {why}"),
                concat!(
                    crate::docs_url!("gates.md"),
                    " lists every key, its default and its range"
                ),
            ))
        };
        for (key, value) in [
            ("window", self.window),
            ("min_runs", self.min_runs),
            ("performance_baseline_runs", self.performance_baseline_runs),
            ("performance_min_baseline", self.performance_min_baseline),
            ("release_after", self.release_after),
        ] {
            if value == 0 {
                return fail(key, "must be at least 1");
            }
        }
        for (key, value) in [
            ("flaky_rate", self.flaky_rate),
            ("performance_regression", self.performance_regression),
            ("coverage_drop", self.coverage_drop),
        ] {
            if !value.is_finite() || value < 0.0 {
                return fail(
                    key,
                    &format!("must be a percentage of 0 or more, not {value}"),
                );
            }
        }
        if !self.slowdown_min_s.is_finite() || self.slowdown_min_s < 0.0 {
            return fail(
                "slowdown_min_s",
                &format!("must be seconds, 0 or more, not {}", self.slowdown_min_s),
            );
        }
        for (lang, floor) in &self.coverage_floors.0 {
            if !(0.0..=100.0).contains(floor) {
                return fail(
                    &format!("coverage_floors.{lang}"),
                    &format!("must be between 0 and 100, not {floor}"),
                );
            }
        }
        Ok(())
    }
}

/// Minimum line coverage per language, in percent; empty means no floors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoverageFloors(pub BTreeMap<String, f64>);

impl<'de> Deserialize<'de> for CoverageFloors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CoverageFloors;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"spec\" or a table of language = percent")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<CoverageFloors, E> {
                if v == "spec" {
                    Ok(CoverageFloors(
                        SPEC_FLOORS
                            .iter()
                            .map(|(l, p)| ((*l).to_string(), *p))
                            .collect(),
                    ))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<CoverageFloors, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, f64>()? {
                    out.insert(k, v);
                }
                Ok(CoverageFloors(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use crate::config::from_pyproject;

    use super::*;

    #[test]
    fn defaults_are_the_specs() {
        let g = GatesConfig::default();
        assert_eq!(
            (g.flaky_rate, g.performance_regression, g.coverage_drop),
            (5.0, 5.0, 2.0)
        );
        assert!(g.coverage_floors.0.is_empty());
        assert_eq!(g.slowdown_min_s, 1.0);
        assert!(g.check("x").is_ok());
        let negative = GatesConfig {
            slowdown_min_s: -0.5,
            ..GatesConfig::default()
        };
        let err = negative.check("x").unwrap_err().to_string();
        assert!(err.contains("slowdown_min_s must be seconds"), "{err}");
    }

    #[test]
    fn the_section_reads_and_refuses_typos() {
        let text = "[tool.pytest-dynamo.gates]\nflaky_rate = 2.5\ncoverage_floors = \"spec\"\nwindow = 30\n";
        let c = from_pyproject("p", text).unwrap().unwrap();
        assert_eq!(c.gates.flaky_rate, 2.5);
        assert_eq!(c.gates.window, 30);
        assert_eq!(c.gates.coverage_floors.0["python"], 85.0);
        let text = "[tool.pytest-dynamo.gates]\ncoverage_floors = { rust = 90 }\n";
        let c = from_pyproject("p", text).unwrap().unwrap();
        assert_eq!(c.gates.coverage_floors.0["rust"], 90.0);
        let err = from_pyproject("p", "[tool.pytest-dynamo.gates]\nflaky_rat = 1\n").unwrap_err();
        assert!(err.to_string().contains("flaky_rat"), "{err}");
        let err = from_pyproject(
            "p",
            "[tool.pytest-dynamo.gates]\ncoverage_floors = \"strict\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"spec\""), "{err}");
    }

    #[test]
    fn ranges_are_checked() {
        let g = GatesConfig {
            window: 0,
            ..GatesConfig::default()
        };
        assert!(g
            .check("p")
            .unwrap_err()
            .to_string()
            .contains("window must be at least 1"));
        let g = GatesConfig {
            flaky_rate: -1.0,
            ..GatesConfig::default()
        };
        assert!(g.check("p").unwrap_err().to_string().contains("flaky_rate"));
        let mut g = GatesConfig::default();
        g.coverage_floors.0.insert("go".into(), 120.0);
        assert!(g
            .check("p")
            .unwrap_err()
            .to_string()
            .contains("coverage_floors.go"));
    }
}

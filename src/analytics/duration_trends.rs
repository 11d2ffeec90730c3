//! Durations: p50 and p95 per test and per stage over a window of runs,
//! against the window before it, and the biggest slow-downs.
//!
//! A test's samples are its `duration_s` in each run where it passed or
//! failed (skips take no time worth tracking). A stage's samples are, per
//! run, the sum of its tests' durations: how long the stage keeps a runner.

use std::collections::BTreeMap;

use crate::analytics::flakiness::results_by_test;
use crate::history::stats;
use crate::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50: f64,
    pub p95: f64,
}

impl Percentiles {
    fn of(mut values: Vec<f64>) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable_by(f64::total_cmp);
        Some(Percentiles {
            samples: values.len(),
            p50: stats::percentile_sorted(&values, 50.0),
            p95: stats::percentile_sorted(&values, 95.0),
        })
    }
}

/// One test or stage: now and in the previous window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Timing {
    pub name: String,
    #[serde(skip)]
    pub test: Option<u32>,
    pub current: Percentiles,
    pub previous: Option<Percentiles>,
    /// p50 change against the previous window, in percent.
    pub change_percent: Option<f64>,
    /// p50 change in seconds.
    pub change_s: Option<f64>,
}

impl Timing {
    fn new(
        name: String,
        test: Option<u32>,
        current: Percentiles,
        previous: Option<Percentiles>,
    ) -> Self {
        let change_percent = previous
            .as_ref()
            .and_then(|p| stats::change_percent(p.p50, current.p50));
        let change_s = previous.as_ref().map(|p| current.p50 - p.p50);
        Timing {
            name,
            test,
            current,
            previous,
            change_percent,
            change_s,
        }
    }
}

/// Per test, for tests with a result in `window`; sorted by current p95, slowest first.
pub fn per_test(history: &History, window: &[usize], previous: &[usize]) -> Vec<Timing> {
    let durations = |runs: &[usize]| -> Vec<Vec<f64>> {
        results_by_test(history, runs)
            .into_iter()
            .map(|rows| rows.iter().map(|&i| history.rows[i].duration_s).collect())
            .collect()
    };
    let now = durations(window);
    let before = durations(previous);
    let mut out: Vec<Timing> = now
        .into_iter()
        .zip(before)
        .enumerate()
        .filter_map(|(test, (now, before))| {
            let current = Percentiles::of(now)?;
            let test = u32::try_from(test).expect("test count");
            Some(Timing::new(
                history.tests[test as usize].clone(),
                Some(test),
                current,
                Percentiles::of(before),
            ))
        })
        .collect();
    out.sort_by(|a, b| {
        b.current
            .p95
            .total_cmp(&a.current.p95)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// Per stage ("none" for tests without one), its time per run.
pub fn per_stage(history: &History, window: &[usize], previous: &[usize]) -> Vec<Timing> {
    let now = stage_totals(history, window);
    let mut before = stage_totals(history, previous);
    now.into_iter()
        .map(|(stage, totals)| {
            let prev = before
                .remove(&stage)
                .and_then(|t| Percentiles::of(t.into_values().collect()));
            let current =
                Percentiles::of(totals.into_values().collect()).expect("a stage has a run");
            Timing::new(stage, None, current, prev)
        })
        .collect()
}

/// Stage name -> run -> summed duration of its results in that run.
pub fn stage_totals(history: &History, runs: &[usize]) -> BTreeMap<String, BTreeMap<usize, f64>> {
    let ranges = history.rows_by_run();
    let mut out: BTreeMap<String, BTreeMap<usize, f64>> = BTreeMap::new();
    for &run in runs {
        let mut per_stage: BTreeMap<u32, f64> = BTreeMap::new();
        for row in &history.rows[ranges[run].clone()] {
            if row.outcome.is_sample() {
                *per_stage.entry(row.stage).or_default() += row.duration_s;
            }
        }
        for (stage, total) in per_stage {
            let name = history.name(stage).unwrap_or("none").to_string();
            out.entry(name).or_default().insert(run, total);
        }
    }
    out
}

/// Tests whose p50 grew the most in seconds, by at least `min_percent` and
/// at least `min_change_s` seconds (a millisecond test that took 2 ms more is
/// +100% and no slow-down), with at least `min_samples` results in both
/// windows; at most `top`.
pub fn slowdowns(
    tests: &[Timing],
    min_samples: usize,
    min_percent: f64,
    min_change_s: f64,
    top: usize,
) -> Vec<Timing> {
    let mut out: Vec<Timing> = tests
        .iter()
        .filter(|t| {
            t.current.samples >= min_samples
                && t.previous
                    .as_ref()
                    .is_some_and(|p| p.samples >= min_samples)
                && t.change_s.is_some_and(|d| d > 0.0 && d >= min_change_s)
                && t.change_percent.is_some_and(|p| p >= min_percent)
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        b.change_s
            .unwrap_or(0.0)
            .total_cmp(&a.change_s.unwrap_or(0.0))
            .then_with(|| a.name.cmp(&b.name))
    });
    out.truncate(top);
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    fn history(runs: &[&[(&str, &str, f64, &str)]]) -> History {
        let mut lines = Vec::new();
        for (day, results) in runs.iter().enumerate() {
            lines.push(format!(
                r#"{{"record":"run_start","run_id":"r{day}","git":{{"commit":"c{day}"}},"started_at":"2026-01-{:02}T00:00:00Z"}}"#,
                day + 1
            ));
            for (nodeid, outcome, duration, stage) in *results {
                let stage = if stage.is_empty() {
                    "null".to_string()
                } else {
                    format!("\"{stage}\"")
                };
                lines.push(format!(
                    r#"{{"record":"test","run_id":"r{day}","nodeid":"{nodeid}","outcome":"{outcome}","duration_s":{duration},"stage":{stage}}}"#
                ));
            }
        }
        History::from_lines(lines.iter().map(String::as_str))
    }

    #[test]
    fn test_percentiles_and_change_against_the_previous_window() {
        let h = history(&[
            &[("a", "passed", 1.0, "unit"), ("b", "passed", 5.0, "unit")],
            &[("a", "passed", 3.0, "unit"), ("b", "skipped", 0.0, "unit")],
            &[("a", "passed", 2.0, "unit"), ("b", "passed", 5.0, "unit")],
            &[("a", "failed", 6.0, "unit"), ("b", "passed", 5.0, "unit")],
        ]);
        let t = per_test(&h, &[2, 3], &[0, 1]);
        let a = t.iter().find(|t| t.name == "a").unwrap();
        assert_eq!(a.current.samples, 2);
        assert_eq!(a.current.p50, 4.0);
        assert!((a.current.p95 - 5.8).abs() < 1e-12);
        assert_eq!(a.previous.as_ref().unwrap().p50, 2.0);
        assert_eq!(a.change_percent, Some(100.0));
        assert_eq!(a.change_s, Some(2.0));
        let b = t.iter().find(|t| t.name == "b").unwrap();
        assert_eq!(
            b.previous.as_ref().unwrap().samples,
            1,
            "the skip is no sample"
        );
        assert_eq!(b.change_percent, Some(0.0));
        assert_eq!(t[0].name, "a", "slowest p95 first");
        let slow = slowdowns(&t, 1, 5.0, 1.0, 10);
        assert_eq!(slow.len(), 1);
        assert_eq!(slow[0].name, "a");
        assert!(
            slowdowns(&t, 3, 5.0, 1.0, 10).is_empty(),
            "too few samples to call it"
        );
        assert!(
            slowdowns(&t, 1, 200.1, 1.0, 10).is_empty(),
            "below the threshold"
        );
        assert!(
            slowdowns(&t, 1, 5.0, 2.5, 10).is_empty(),
            "2 s more is under a 2.5 s floor"
        );
    }

    #[test]
    fn milliseconds_more_are_no_slowdown() {
        let h = history(&[
            &[("ms", "passed", 0.002, "unit")],
            &[("ms", "passed", 0.004, "unit")],
        ]);
        let t = per_test(&h, &[1], &[0]);
        assert!(t[0].change_percent.unwrap() > 99.0, "+100%");
        assert!(slowdowns(&t, 1, 5.0, 1.0, 10).is_empty());
        assert_eq!(
            slowdowns(&t, 1, 5.0, 0.0, 10).len(),
            1,
            "no floor, as before"
        );
    }

    #[test]
    fn stage_time_is_the_sum_per_run() {
        let h = history(&[
            &[
                ("a", "passed", 1.0, "e2e"),
                ("b", "passed", 2.0, "e2e"),
                ("c", "passed", 10.0, ""),
            ],
            &[("a", "passed", 2.0, "e2e"), ("b", "passed", 2.0, "e2e")],
            &[("a", "passed", 3.0, "e2e"), ("b", "passed", 4.0, "e2e")],
        ]);
        let s = per_stage(&h, &[1, 2], &[0]);
        let e2e = s.iter().find(|s| s.name == "e2e").unwrap();
        assert_eq!(e2e.current.p50, 5.5);
        assert_eq!(e2e.previous.as_ref().unwrap().p50, 3.0);
        assert!((e2e.change_percent.unwrap() - 83.333_333_333).abs() < 1e-6);
        assert!(
            s.iter().all(|s| s.name != "none"),
            "stage none only ran before the window"
        );
        let s = per_stage(&h, &[0], &[]);
        assert_eq!(
            s.iter().find(|s| s.name == "none").unwrap().current.p50,
            10.0
        );
    }
}

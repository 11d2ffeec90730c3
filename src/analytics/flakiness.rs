//! Flakiness over a window of runs: which tests are flaky, and the suite's
//! flaky-test rate (the gates alert above 5% by default).
//!
//! A test is *flaky* when the window shows it both passing and failing on
//! the same commit, or passing only on a retry (outcome `flaky`): the code
//! did not change, the result did. It is *broken* when it is failing now
//! without such evidence: every result since its last pass failed, whatever
//! the commit. A test with fewer results than the minimum is not judged.
//! Skips and xfails say nothing about a test and are not results here.

use std::collections::HashMap;

use crate::history::stats;
use crate::history::{History, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Flaky,
    Broken,
    Passing,
    /// Fewer results in the window than the minimum sample size.
    Insufficient,
}

/// One test over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct TestFlakiness {
    pub test: u32,
    /// Results (passes and failures) in the window.
    pub runs: usize,
    pub passed: usize,
    pub failed: usize,
    /// Passed only on a retry (outcome `flaky`).
    pub retried: usize,
    /// Commits on which the test both passed and failed, in run order.
    pub mixed_commits: Vec<String>,
    /// Results that are evidence of flakiness: retries, and failures on a mixed commit.
    pub flaky_results: usize,
    /// `flaky_results / runs` in percent.
    pub flake_rate: f64,
    pub verdict: Verdict,
    /// Run index of the latest failure in the window.
    pub last_failure: Option<usize>,
    /// Run index where the current streak of failures began (broken tests).
    pub failing_since: Option<usize>,
    /// Length of the current streak of failures.
    pub failing_streak: usize,
    /// Row index of the test's latest result in the window (for owner and stage).
    pub latest_row: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flakiness {
    pub min_runs: usize,
    /// Tests with at least one result in the window, by test index.
    pub tests: Vec<TestFlakiness>,
    /// Tests judged (enough results).
    pub assessed: usize,
    pub flaky: usize,
    pub broken: usize,
    pub insufficient: usize,
    /// Flaky tests among the judged ones, in percent: the suite's flaky rate.
    pub flaky_rate: f64,
}

/// Row indices of each test's results in `runs` (sorted run indices), in run
/// order; a test read twice for one run keeps its last record.
pub fn results_by_test(history: &History, runs: &[usize]) -> Vec<Vec<usize>> {
    let ranges = history.rows_by_run();
    let mut by_test: Vec<Vec<usize>> = vec![Vec::new(); history.tests.len()];
    for &run in runs {
        for i in ranges[run].clone() {
            let row = &history.rows[i];
            if !row.outcome.is_sample() {
                continue;
            }
            let list = &mut by_test[row.test as usize];
            if list.last().is_some_and(|&j| history.rows[j].run == row.run) {
                list.pop();
            }
            list.push(i);
        }
    }
    by_test
}

/// Commit of each run as a small integer (None: unknown commit).
fn commit_ids(history: &History) -> Vec<Option<u32>> {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    history
        .runs
        .iter()
        .map(|r| {
            r.commit.as_deref().map(|c| {
                let n = u32::try_from(ids.len()).expect("commit count");
                *ids.entry(c).or_insert(n)
            })
        })
        .collect()
}

/// Judge every test seen in `window` (run indices, in order).
pub fn assess(history: &History, window: &[usize], min_runs: usize) -> Flakiness {
    let commits = commit_ids(history);
    let by_test = results_by_test(history, window);
    let mut tests = Vec::new();
    for (test, rows) in by_test.iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        tests.push(judge(history, &commits, test, rows, min_runs));
    }
    let assessed = tests
        .iter()
        .filter(|t| t.verdict != Verdict::Insufficient)
        .count();
    let flaky = tests.iter().filter(|t| t.verdict == Verdict::Flaky).count();
    let broken = tests
        .iter()
        .filter(|t| t.verdict == Verdict::Broken)
        .count();
    Flakiness {
        min_runs,
        insufficient: tests.len() - assessed,
        flaky_rate: stats::percent(flaky, assessed),
        tests,
        assessed,
        flaky,
        broken,
    }
}

/// One test's results in the window, counted in one pass.
struct Tally {
    passed: usize,
    failed: usize,
    retried: usize,
    last_failure: Option<usize>,
    /// Per commit: (commit, passed, failed, first run index) — a window holds few commits.
    per_commit: Vec<(u32, bool, bool, usize)>,
}

fn tally(history: &History, commits: &[Option<u32>], rows: &[usize]) -> Tally {
    let mut per_commit: Vec<(u32, bool, bool, usize)> = Vec::new();
    let (mut passed, mut failed, mut retried) = (0, 0, 0);
    let mut last_failure = None;
    for &i in rows {
        let row = &history.rows[i];
        let run = row.run as usize;
        if row.outcome.passed() {
            passed += 1;
        } else {
            failed += 1;
            last_failure = Some(run);
        }
        if row.outcome == Outcome::Flaky {
            retried += 1;
        }
        if let Some(c) = commits[run] {
            match per_commit.iter_mut().find(|e| e.0 == c) {
                Some(e) => {
                    e.1 |= row.outcome.passed();
                    e.2 |= row.outcome.failed();
                }
                None => per_commit.push((c, row.outcome.passed(), row.outcome.failed(), run)),
            }
        }
    }
    Tally {
        passed,
        failed,
        retried,
        last_failure,
        per_commit,
    }
}

fn judge(
    history: &History,
    commits: &[Option<u32>],
    test: usize,
    rows: &[usize],
    min_runs: usize,
) -> TestFlakiness {
    let Tally {
        passed,
        failed,
        retried,
        last_failure,
        per_commit,
    } = tally(history, commits, rows);
    let mixed: Vec<u32> = per_commit
        .iter()
        .filter(|e| e.1 && e.2)
        .map(|e| e.0)
        .collect();
    let mixed_commits = per_commit
        .iter()
        .filter(|e| e.1 && e.2)
        .filter_map(|e| history.runs[e.3].commit.clone())
        .collect();
    let flaky_results = rows
        .iter()
        .filter(|&&i| {
            let row = &history.rows[i];
            row.outcome == Outcome::Flaky
                || (row.outcome.failed()
                    && commits[row.run as usize].is_some_and(|c| mixed.contains(&c)))
        })
        .count();
    let failing_streak = rows
        .iter()
        .rev()
        .take_while(|&&i| history.rows[i].outcome.failed())
        .count();
    let failing_since =
        (failing_streak > 0).then(|| history.rows[rows[rows.len() - failing_streak]].run as usize);
    let verdict = if rows.len() < min_runs {
        Verdict::Insufficient
    } else if retried > 0 || !mixed.is_empty() {
        Verdict::Flaky
    } else if failing_streak > 0 {
        Verdict::Broken
    } else {
        Verdict::Passing
    };
    TestFlakiness {
        test: u32::try_from(test).expect("test count"),
        runs: rows.len(),
        passed,
        failed,
        retried,
        mixed_commits,
        flaky_results,
        flake_rate: stats::percent(flaky_results, rows.len()),
        verdict,
        last_failure,
        failing_since,
        failing_streak,
        latest_row: rows[rows.len() - 1],
    }
}

/// Consecutive passes at the end of each test's results in `runs`, by test index.
pub fn trailing_passes(history: &History, runs: &[usize]) -> Vec<usize> {
    results_by_test(history, runs)
        .iter()
        .map(|rows| {
            rows.iter()
                .rev()
                .take_while(|&&i| history.rows[i].outcome.passed())
                .count()
        })
        .collect()
}

/// One run's point on the flake-rate chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrendPoint {
    pub run_id: String,
    pub started_at: String,
    pub commit: Option<String>,
    /// Tests with a result in the run.
    pub tests: usize,
    /// Of those, results that were flaky: passed on a retry, or failed on a
    /// commit where the same test also passed (in any run of `runs`).
    pub flaky: usize,
    /// `flaky` of `tests`, in percent.
    pub flaky_results_percent: f64,
    #[serde(skip)]
    pub epoch: f64,
}

/// The share of flaky results of each run in `runs` ("flaky results per run").
pub fn trend(history: &History, runs: &[usize]) -> Vec<TrendPoint> {
    let commits = commit_ids(history);
    let ranges = history.rows_by_run();
    // Runs grouped by commit: within a group, one flag byte per test says
    // whether it passed (1) and failed (2) on that commit. Linear in rows,
    // no map of (test, commit) pairs.
    let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
    for &run in runs {
        if let Some(c) = commits[run] {
            groups.entry(c).or_default().push(run);
        }
    }
    let mut flaky = vec![0usize; history.runs.len()];
    for &run in runs {
        flaky[run] = history.rows[ranges[run].clone()]
            .iter()
            .filter(|r| r.outcome == Outcome::Flaky)
            .count();
    }
    let mut flags = vec![0u8; history.tests.len()];
    for group in groups.values() {
        let rows = || {
            group
                .iter()
                .flat_map(|&run| &history.rows[ranges[run].clone()])
        };
        for r in rows() {
            flags[r.test as usize] |=
                u8::from(r.outcome.passed()) | u8::from(r.outcome.failed()) << 1;
        }
        for &run in group {
            flaky[run] += history.rows[ranges[run].clone()]
                .iter()
                .filter(|r| r.outcome.failed() && flags[r.test as usize] == 3)
                .count();
        }
        for r in rows() {
            flags[r.test as usize] = 0;
        }
    }
    runs.iter()
        .map(|&run| {
            let sampled = history.rows[ranges[run].clone()]
                .iter()
                .filter(|r| r.outcome.is_sample())
                .count();
            let r = &history.runs[run];
            TrendPoint {
                run_id: r.run_id.clone(),
                started_at: crate::history::timestamp::seconds(r.started_at),
                commit: r.commit.clone(),
                tests: sampled,
                flaky: flaky[run],
                flaky_results_percent: stats::percent(flaky[run], sampled),
                epoch: r.started_at,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
pub mod tests {
    use super::*;

    /// `(run id, commit, [(nodeid, outcome)])`.
    pub type HandRun<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    /// A history of hand-made runs, one run a day.
    pub fn history(runs: &[HandRun<'_>]) -> History {
        let mut lines = Vec::new();
        for (day, (run, commit, results)) in runs.iter().enumerate() {
            lines.push(format!(
                r#"{{"record":"run_start","schema":1,"run_id":"{run}","pipeline":"pr","stage":null,"framework":null,"gpus":null,"git":{{"commit":"{commit}","branch":"main"}},"host":"h","plugin_version":"0","started_at":"2026-01-{:02}T00:00:00Z"}}"#,
                day + 1
            ));
            for (nodeid, outcome) in *results {
                lines.push(format!(
                    r#"{{"record":"test","schema":1,"run_id":"{run}","nodeid":"{nodeid}","outcome":"{outcome}","duration_s":1.0,"stage":null,"gating":true,"owner":null,"metrics":[]}}"#
                ));
            }
        }
        History::from_lines(lines.iter().map(String::as_str))
    }

    fn find<'a>(f: &'a Flakiness, h: &History, nodeid: &str) -> &'a TestFlakiness {
        f.tests
            .iter()
            .find(|t| h.tests[t.test as usize] == nodeid)
            .unwrap()
    }

    #[test]
    #[allow(clippy::many_single_char_names)]
    fn same_commit_pass_and_fail_is_flaky_a_consistent_failure_is_broken() {
        let h = history(&[
            (
                "r1",
                "c1",
                &[("a", "passed"), ("b", "passed"), ("c", "passed")],
            ),
            (
                "r2",
                "c1",
                &[("a", "failed"), ("b", "passed"), ("c", "passed")],
            ),
            (
                "r3",
                "c2",
                &[("a", "passed"), ("b", "failed"), ("c", "passed")],
            ),
            (
                "r4",
                "c3",
                &[("a", "passed"), ("b", "failed"), ("c", "flaky")],
            ),
        ]);
        let all: Vec<usize> = (0..4).collect();
        let f = assess(&h, &all, 3);
        let a = find(&f, &h, "a");
        assert_eq!(a.verdict, Verdict::Flaky);
        assert_eq!(a.mixed_commits, vec!["c1".to_string()]);
        assert_eq!((a.runs, a.passed, a.failed, a.flaky_results), (4, 3, 1, 1));
        assert_eq!(a.flake_rate, 25.0);
        assert_eq!(a.last_failure, Some(1));
        let b = find(&f, &h, "b");
        assert_eq!(b.verdict, Verdict::Broken);
        assert_eq!((b.failing_streak, b.failing_since), (2, Some(2)));
        let c = find(&f, &h, "c");
        assert_eq!(c.verdict, Verdict::Flaky);
        assert_eq!(c.retried, 1);
        assert_eq!((f.assessed, f.flaky, f.broken), (3, 2, 1));
        assert!((f.flaky_rate - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_minimum_sample_size_and_skips() {
        let h = history(&[
            ("r1", "c1", &[("a", "passed"), ("s", "skipped")]),
            ("r2", "c1", &[("a", "failed"), ("s", "skipped")]),
        ]);
        let f = assess(&h, &[0, 1], 3);
        assert_eq!(f.tests.len(), 1, "a skipped test has no results");
        assert_eq!(f.tests[0].verdict, Verdict::Insufficient);
        assert_eq!((f.assessed, f.insufficient, f.flaky_rate), (0, 1, 0.0));
        let f = assess(&h, &[0, 1], 2);
        assert_eq!(f.tests[0].verdict, Verdict::Flaky);
        assert_eq!(f.flaky_rate, 100.0);
    }

    #[test]
    fn the_window_limits_what_is_seen() {
        let h = history(&[
            ("r1", "c1", &[("a", "passed")]),
            ("r2", "c1", &[("a", "failed")]),
            ("r3", "c2", &[("a", "passed")]),
            ("r4", "c3", &[("a", "passed")]),
        ]);
        let f = assess(&h, &[2, 3], 2);
        assert_eq!(f.tests[0].verdict, Verdict::Passing);
        assert_eq!(trailing_passes(&h, &[0, 1, 2, 3]), vec![2]);
    }

    #[test]
    fn the_trend_counts_flaky_results_per_run() {
        let h = history(&[
            ("r1", "c1", &[("a", "passed"), ("b", "passed")]),
            ("r2", "c1", &[("a", "failed"), ("b", "flaky")]),
            ("r3", "c2", &[("a", "failed"), ("b", "passed")]),
        ]);
        let t = trend(&h, &[0, 1, 2]);
        assert_eq!(
            t.iter().map(|p| (p.tests, p.flaky)).collect::<Vec<_>>(),
            vec![(2, 0), (2, 2), (2, 0)]
        );
        assert_eq!(t[1].flaky_results_percent, 100.0);
        assert_eq!(t[1].commit.as_deref(), Some("c1"));
    }
}

//! Timeouts (issue #17): a test whose recorded p95 duration is above
//! `[timeouts] require_above` must carry a `timeout` marker (pytest-timeout's),
//! and a timeout is judged against the durations it guards. The recommended
//! value is `factor x p95`, rounded up to a whole second.

use std::fmt::Write as _;

use serde::Serialize;

use super::config::TimeoutsConfig;
use crate::analytics::flakiness::results_by_test;
use crate::history::stats;
use crate::history::{History, RecordedTimeout};

/// A timeout is too tight when the p95 duration is above this share of it.
pub const TIGHT_SHARE: f64 = 0.8;
/// A timeout is too loose above this many times the p95 duration.
pub const LOOSE_TIMES: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Above `require_above` and no `timeout` marker.
    Missing,
    /// The p95 duration is above 80% of the timeout: it will fail slow runs.
    TooTight,
    /// Above 10x the p95 duration (and above `require_above`): a hang holds the runner that long.
    TooLoose,
}

impl Problem {
    pub fn words(self) -> &'static str {
        match self {
            Problem::Missing => "no timeout marker",
            Problem::TooTight => "timeout too tight",
            Problem::TooLoose => "timeout too loose",
        }
    }
}

/// One test's durations and timeout, as the records of the window tell them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestTimeout {
    pub nodeid: String,
    /// Results in the window whose duration counts (passed or failed).
    pub runs: usize,
    pub p95_s: f64,
    /// The `timeout` marker's seconds in the latest record; None without one.
    pub timeout_s: Option<f64>,
    /// False when the latest record does not say (written before records carried `timeout_s`).
    pub known: bool,
    /// `factor x p95`, rounded up to a whole second.
    pub recommended_s: u64,
    /// What is wrong, if anything.
    pub problem: Option<Problem>,
    #[serde(skip)]
    pub test: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeoutsSection {
    pub require_above_s: f64,
    pub factor: f64,
    /// Tests whose p95 is above `require_above` (whatever their marker).
    pub long_tests: usize,
    /// Long tests whose latest record does not say whether they carry a timeout.
    pub unknown: usize,
    /// The tests with a problem: missing first, then too tight, too loose; slowest first.
    pub findings: Vec<TestTimeout>,
}

impl TimeoutsSection {
    pub fn missing(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.problem == Some(Problem::Missing))
            .count()
    }
}

/// `factor x p95` rounded up to a whole second (at least 1).
pub fn recommended(p95_s: f64, factor: f64) -> u64 {
    // A p95 is at most the records' largest duration (1e9 s): it fits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let seconds = (p95_s * factor - 1e-9).ceil().max(1.0) as u64;
    seconds
}

/// What is wrong with a test's timeout, given its p95 duration.
pub fn judge(p95_s: f64, timeout: Option<f64>, config: &TimeoutsConfig) -> Option<Problem> {
    match timeout {
        None => (p95_s > config.require_above).then_some(Problem::Missing),
        Some(t) if p95_s > TIGHT_SHARE * t => Some(Problem::TooTight),
        Some(t) if t > LOOSE_TIMES * p95_s && t > config.require_above => Some(Problem::TooLoose),
        Some(_) => None,
    }
}

/// Every test with a duration in `runs`, with its timeout judged.
pub fn per_test(history: &History, runs: &[usize], config: &TimeoutsConfig) -> Vec<TestTimeout> {
    let mut out = Vec::new();
    for (test, rows) in results_by_test(history, runs).into_iter().enumerate() {
        let Some(&latest) = rows.last() else { continue };
        let mut durations: Vec<f64> = rows.iter().map(|&i| history.rows[i].duration_s).collect();
        durations.sort_unstable_by(f64::total_cmp);
        let p95_s = stats::percentile_sorted(&durations, 95.0);
        let (timeout_s, known) = match history.rows[latest].timeout {
            RecordedTimeout::Unknown => (None, false),
            RecordedTimeout::None => (None, true),
            RecordedTimeout::Seconds(s) => (Some(s), true),
        };
        out.push(TestTimeout {
            nodeid: history.tests[test].clone(),
            runs: rows.len(),
            p95_s,
            timeout_s,
            known,
            recommended_s: recommended(p95_s, config.factor),
            problem: if known {
                judge(p95_s, timeout_s, config)
            } else {
                None
            },
            test: u32::try_from(test).expect("test count"),
        });
    }
    out
}

/// The report's and the gate's section.
pub fn assess(history: &History, runs: &[usize], config: &TimeoutsConfig) -> TimeoutsSection {
    let tests = per_test(history, runs, config);
    let long: Vec<&TestTimeout> = tests
        .iter()
        .filter(|t| t.p95_s > config.require_above)
        .collect();
    let mut findings: Vec<TestTimeout> = tests
        .iter()
        .filter(|t| t.problem.is_some())
        .cloned()
        .collect();
    findings.sort_by(|a, b| {
        a.problem
            .map(|p| p as u8)
            .cmp(&b.problem.map(|p| p as u8))
            .then(b.p95_s.total_cmp(&a.p95_s))
            .then_with(|| a.nodeid.cmp(&b.nodeid))
    });
    TimeoutsSection {
        require_above_s: config.require_above,
        factor: config.factor,
        long_tests: long.len(),
        unknown: long.iter().filter(|t| !t.known).count(),
        findings,
    }
}

/// `90` -> `90s`, `150` -> `2m30s`: seconds as people read them.
pub fn human(seconds: f64) -> String {
    if seconds < 60.0 {
        let s = format!("{seconds:.1}");
        return format!("{}s", s.trim_end_matches(".0"));
    }
    // Whole seconds from here; a record's durations stay below 1e9.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// The section as Markdown for the report's summary (empty when nothing was found).
pub fn render_markdown(section: &TimeoutsSection) -> String {
    let mut out = String::new();
    if section.findings.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "### Timeouts\n\nA test above {} p95 carries a `timeout` marker; recommended: {} x p95.\n\n\
         | test | problem | p95 | runs | timeout | recommended |\n|---|---|--:|--:|--:|---|",
        human(section.require_above_s),
        crate::gpu::requirement::number(section.factor)
    );
    for f in &section.findings {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | `@pytest.mark.timeout({})` |",
            crate::analytics::render::escape::code_cell(&f.nodeid),
            f.problem.map_or("", Problem::words),
            human(f.p95_s),
            f.runs,
            f.timeout_s
                .map_or_else(|| "-".to_string(), crate::gpu::requirement::number),
            f.recommended_s
        );
    }
    out.push('\n');
    out
}

/// The text lines of the section (empty when nothing is to be said).
pub fn render_text(section: &TimeoutsSection) -> Vec<String> {
    let mut lines = Vec::new();
    if section.findings.is_empty() && section.unknown == 0 {
        return lines;
    }
    lines.push(format!(
        "Timeouts (a test above {} p95 carries one; recommended: {} x p95):",
        human(section.require_above_s),
        crate::gpu::requirement::number(section.factor)
    ));
    for f in &section.findings {
        let current = f.timeout_s.map_or_else(
            || "none".to_string(),
            |t| format!("timeout({})", crate::gpu::requirement::number(t)),
        );
        lines.push(format!(
            "  {}: {} (p95 {} over {} run(s), marked {current}): @pytest.mark.timeout({})",
            f.nodeid,
            f.problem.map_or("", Problem::words),
            human(f.p95_s),
            f.runs,
            f.recommended_s
        ));
    }
    if section.unknown > 0 {
        lines.push(format!(
            "  {} long test(s) not judged: their records do not say whether they carry a timeout \
             (written before pytest-dynamo recorded timeout_s)",
            section.unknown
        ));
    }
    lines
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    /// Records of `runs` runs; each test: node id, durations by run, timeout field as JSON.
    fn history(tests: &[(&str, &[f64], &str)]) -> History {
        let mut lines = Vec::new();
        let runs = tests.iter().map(|t| t.1.len()).max().unwrap_or(0);
        for run in 0..runs {
            lines.push(format!(
                r#"{{"record":"run_start","schema":1,"run_id":"r{run}","started_at":"2026-03-0{}T12:00:00Z"}}"#,
                run + 1
            ));
            for (nodeid, durations, timeout) in tests {
                if let Some(d) = durations.get(run) {
                    let field = if timeout.is_empty() {
                        String::new()
                    } else {
                        format!(r#","timeout_s":{timeout}"#)
                    };
                    lines.push(format!(
                        r#"{{"record":"test","schema":1,"run_id":"r{run}","nodeid":"{nodeid}","outcome":"passed","duration_s":{d}{field},"finished_at":"2026-03-0{}T12:10:00Z"}}"#,
                        run + 1
                    ));
                }
            }
        }
        History::from_lines(lines.iter().map(String::as_str))
    }

    #[test]
    fn recommendations_round_up_to_whole_seconds() {
        assert_eq!(recommended(100.0, 3.0), 300);
        assert_eq!(recommended(100.1, 3.0), 301);
        assert_eq!(recommended(0.01, 3.0), 1);
        assert_eq!(recommended(33.4, 1.5), 51);
    }

    #[test]
    fn long_tests_without_a_timeout_and_bad_timeouts_are_found() {
        let config = TimeoutsConfig::default();
        // p95 of 20 runs of 1..=20 s plus one long: the known percentile is 19.05.
        let ramp: Vec<f64> = (1..=20).map(f64::from).collect();
        let h = history(&[
            ("t.py::long_bare", &[100.0, 120.0, 90.0], "null"),
            ("t.py::long_ok", &[100.0, 100.0], "300"),
            ("t.py::tight", &[100.0, 100.0], "110"),
            ("t.py::loose", &[10.0, 10.0], "600"),
            ("t.py::short_generous", &[0.5], "60"),
            ("t.py::short_bare", &ramp, "null"),
            ("t.py::old_record", &[500.0], ""),
        ]);
        let runs: Vec<usize> = (0..h.runs.len()).collect();
        let s = assess(&h, &runs, &config);
        let found: Vec<(&str, Option<Problem>, u64)> = s
            .findings
            .iter()
            .map(|f| (f.nodeid.as_str(), f.problem, f.recommended_s))
            .collect();
        assert_eq!(
            found,
            [
                ("t.py::long_bare", Some(Problem::Missing), 354),
                ("t.py::tight", Some(Problem::TooTight), 300),
                ("t.py::loose", Some(Problem::TooLoose), 30),
            ]
        );
        // 120, 100, 90: p95 is 118 (linear between the two largest).
        assert_eq!(s.findings[0].p95_s, 118.0);
        assert_eq!(s.long_tests, 4);
        assert_eq!(s.unknown, 1);
        assert_eq!(s.missing(), 1);
        let text = render_text(&s).join("\n");
        assert!(text.contains("t.py::long_bare: no timeout marker (p95 1m58s over 3 run(s), marked none): @pytest.mark.timeout(354)"), "{text}");
        assert!(text.contains("1 long test(s) not judged"), "{text}");
    }

    #[test]
    fn the_threshold_and_factor_come_from_the_configuration() {
        let config = TimeoutsConfig {
            require_above: 5.0,
            factor: 2.0,
        };
        let h = history(&[("t.py::a", &[6.0], "null"), ("t.py::b", &[4.0], "null")]);
        let s = assess(&h, &[0], &config);
        assert_eq!(s.findings.len(), 1);
        assert_eq!(s.findings[0].recommended_s, 12);
        assert!(render_text(&assess(&h, &[0], &TimeoutsConfig::default())).is_empty());
    }

    #[test]
    fn durations_read_as_people_do() {
        assert_eq!(human(0.5), "0.5s");
        assert_eq!(human(59.0), "59s");
        assert_eq!(human(60.0), "1m");
        assert_eq!(human(3725.0), "1h2m5s");
    }
}

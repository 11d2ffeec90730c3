//! `pytest-dynamo advise`: the decorators each test should carry, read from
//! its records — the lowest `gpu_N` marker that covers the GPUs the audit saw
//! it use, a VRAM value from the measured peak times `[advice] vram_factor`,
//! and a timeout from its p95 duration — each with its evidence.

use std::fmt::Write as _;

use serde::Serialize;

use super::config::{AdviceConfig, TimeoutsConfig};
use super::timeouts::{self, Problem};
use crate::analytics::flakiness::results_by_test;
use crate::gpu::requirement::number;
use crate::gpu::rules::Rules;
use crate::history::History;

/// What a decorator is about: what `--apply` replaces when it writes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A `gpu_N` marker: replaces the test's other `gpu_N` markers.
    Hardware,
    /// The VRAM marker: its value is replaced.
    Vram,
    /// pytest-timeout's `timeout` marker: its value is replaced.
    Timeout,
    /// The next lifecycle marker: replaces the pipeline's (`replaces`).
    Lifecycle,
}

/// One decorator a test should carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decorator {
    pub kind: Kind,
    pub marker: String,
    /// The argument, as written in Python (`16.8`, `90`); None for a bare marker.
    pub arg: Option<String>,
    /// Why: the figures it comes from.
    pub evidence: String,
    /// The marker it takes the place of (a lifecycle move).
    pub replaces: Option<String>,
}

impl Decorator {
    /// `@pytest.mark.vram_gib(16.8)`.
    pub fn text(&self) -> String {
        match &self.arg {
            Some(a) => format!("@pytest.mark.{}({a})", self.marker),
            None => format!("@pytest.mark.{}", self.marker),
        }
    }
}

/// One test's advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestAdvice {
    pub nodeid: String,
    /// Results in the window (passed or failed).
    pub runs: usize,
    /// Of which passed: only those tell what the test needs.
    pub passed: usize,
    pub p95_s: f64,
    /// The most GPUs a passing run used, where the audit measured it.
    pub gpus_used: Option<u32>,
    /// The highest peak on one GPU of a passing run, in MiB.
    pub peak_mib: Option<f64>,
    pub decorators: Vec<Decorator>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub runs: usize,
    pub vram_factor: f64,
    pub timeouts: TimeoutsConfig,
    pub tests: Vec<TestAdvice>,
}

/// `peak x factor` in GiB, rounded up to a tenth (at least 0.1).
pub fn vram_gib(peak_mib: f64, factor: f64) -> f64 {
    // A tenth's tolerance below: 4.0 x 1.2 is 4.800000000000001 in floating point.
    ((peak_mib / 1024.0 * factor * 10.0 - 1e-9).ceil() / 10.0).max(0.1)
}

/// The advice for every test with a result in `runs`; tests with nothing to
/// carry are left out. `moves`: the lifecycle moves the budgets call for.
pub fn advise(
    history: &History,
    runs: &[usize],
    rules: &Rules,
    advice: &AdviceConfig,
    timeouts: &TimeoutsConfig,
    moves: &[super::moves::Move],
) -> Advice {
    let timing = timeouts::per_test(history, runs, timeouts);
    let by_test = results_by_test(history, runs);
    let mut tests: Vec<TestAdvice> = timing
        .into_iter()
        .filter_map(|t| {
            let rows = &by_test[t.test as usize];
            test_advice(history, rows, t, rules, advice, timeouts, moves)
        })
        .collect();
    tests.sort_by(|a, b| a.nodeid.cmp(&b.nodeid));
    Advice {
        runs: runs.len(),
        vram_factor: advice.vram_factor,
        timeouts: timeouts.clone(),
        tests,
    }
}

/// One test's decorators from its results (`rows`) and its timing: the
/// `gpu_N` marker, the VRAM value, the timeout, the lifecycle moves; None
/// when it should carry none.
fn test_advice(
    history: &History,
    rows: &[usize],
    t: timeouts::TestTimeout,
    rules: &Rules,
    advice: &AdviceConfig,
    timeouts: &TimeoutsConfig,
    moves: &[super::moves::Move],
) -> Option<TestAdvice> {
    let passed: Vec<&crate::history::Row> = rows
        .iter()
        .map(|&i| &history.rows[i])
        .filter(|r| r.outcome.passed())
        .collect();
    let gpu_runs: Vec<u32> = passed.iter().filter_map(|r| r.gpus_used).collect();
    let gpus_used = gpu_runs.iter().copied().max();
    let peak_mib = passed
        .iter()
        .filter_map(|r| r.gpu_peak_mib)
        .filter(|p| *p > 0.0)
        .reduce(f64::max);
    let mut decorators = Vec::new();
    if let Some(used) = gpus_used {
        decorators.extend(hardware(rules, used, gpu_runs.len()));
    }
    // A peak means something only where the test used a GPU.
    if let (Some(peak), true) = (peak_mib, gpus_used.is_some_and(|u| u > 0)) {
        decorators.push(Decorator {
            kind: Kind::Vram,
            marker: rules.vram_marker.clone(),
            arg: Some(number(vram_gib(peak, advice.vram_factor))),
            evidence: format!(
                "peak {:.2} GiB on one GPU x {}",
                peak / 1024.0,
                number(advice.vram_factor)
            ),
            replaces: None,
        });
    }
    if let Some(problem) = t.problem {
        decorators.push(timeout(&t, problem, timeouts));
    }
    for m in moves.iter().filter(|m| m.nodeid == t.nodeid) {
        decorators.push(Decorator {
            kind: Kind::Lifecycle,
            marker: m.to.clone(),
            arg: None,
            evidence: format!("instead of {}: {}", m.from, m.evidence),
            replaces: Some(m.from.clone()),
        });
    }
    if decorators.is_empty() {
        return None;
    }
    Some(TestAdvice {
        nodeid: t.nodeid,
        runs: t.runs,
        passed: passed.len(),
        p95_s: t.p95_s,
        gpus_used,
        peak_mib,
        decorators,
    })
}

/// The lowest `gpu_N` marker that covers `used` GPUs, seen in `measured` passing runs.
fn hardware(rules: &Rules, used: u32, measured: usize) -> Option<Decorator> {
    let gpus = match used {
        0 => "no GPU".to_string(),
        1 => "at most 1 GPU".to_string(),
        n => format!("at most {n} GPUs"),
    };
    rules.lowest_for(used).map(|marker| Decorator {
        kind: Kind::Hardware,
        marker: marker.to_string(),
        arg: None,
        evidence: format!("used {gpus} in {measured} passing run(s) measured"),
        replaces: None,
    })
}

/// The timeout its p95 calls for, and what is wrong with the one it has.
fn timeout(t: &timeouts::TestTimeout, problem: Problem, timeouts: &TimeoutsConfig) -> Decorator {
    let now = match (problem, t.timeout_s) {
        (Problem::Missing, _) | (_, None) => "no timeout marker".to_string(),
        (_, Some(s)) => format!("{}: timeout({})", problem.words(), number(s)),
    };
    Decorator {
        kind: Kind::Timeout,
        marker: "timeout".to_string(),
        arg: Some(t.recommended_s.to_string()),
        evidence: format!(
            "p95 {} over {} run(s) x {} ({now})",
            timeouts::human(t.p95_s),
            t.runs,
            number(timeouts.factor)
        ),
        replaces: None,
    }
}

pub fn render_text(advice: &Advice) -> String {
    let mut out = String::new();
    if advice.tests.is_empty() {
        let _ = writeln!(
            out,
            "pytest-dynamo advise: nothing to advise from {} run(s): no GPU figures \
             (the GPU audit records them) and no timeout to add or change",
            advice.runs
        );
        return out;
    }
    let width = advice
        .tests
        .iter()
        .flat_map(|t| t.decorators.iter().map(|d| d.text().len()))
        .max()
        .unwrap_or(0);
    for t in &advice.tests {
        let _ = writeln!(
            out,
            "{}  ({} run(s), {} passed, p95 {})",
            t.nodeid,
            t.runs,
            t.passed,
            timeouts::human(t.p95_s)
        );
        for d in &t.decorators {
            let _ = writeln!(out, "  {:<width$}  {}", d.text(), d.evidence);
        }
    }
    let _ = writeln!(
        out,
        "pytest-dynamo advise: {} test(s) from {} run(s); `pytest-dynamo advise --apply` writes them",
        advice.tests.len(),
        advice.runs
    );
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;
    use crate::config::from_pyproject;
    use crate::taxonomy::customize;

    fn rules() -> Rules {
        let config = from_pyproject("p", "[tool.pytest-dynamo]\n")
            .unwrap()
            .unwrap();
        let taxonomy = customize::taxonomy(&config, "p").unwrap();
        Rules::new(&config.gpu, &taxonomy, "p").unwrap()
    }

    fn line(run: usize, nodeid: &str, outcome: &str, d: f64, extra: &str) -> String {
        format!(
            r#"{{"record":"test","schema":1,"run_id":"r{run}","nodeid":"{nodeid}","outcome":"{outcome}","duration_s":{d}{extra},"finished_at":"2026-03-0{}T12:10:00Z"}}"#,
            run + 1
        )
    }

    #[test]
    fn vram_values_round_up_to_a_tenth() {
        assert_eq!(vram_gib(4096.0, 1.2), 4.8);
        assert_eq!(vram_gib(14_336.0, 1.2), 16.8);
        assert_eq!(vram_gib(1000.0, 1.2), 1.2);
        assert_eq!(vram_gib(1.0, 1.0), 0.1);
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one history, every answer checked
    fn each_test_gets_the_lowest_marker_its_vram_and_its_timeout() {
        let mut lines = Vec::new();
        for run in 0..3 {
            lines.push(format!(
                r#"{{"record":"run_start","schema":1,"run_id":"r{run}","started_at":"2026-03-0{}T12:00:00Z"}}"#,
                run + 1
            ));
            // Marked gpu_2, used one GPU, peaks 4, 3.5 and 3 GiB; 100 s with no timeout.
            let peak = 4096.0 - 512.0 * f64::from(u8::try_from(run).unwrap());
            lines.push(line(
                run,
                "t.py::big",
                "passed",
                100.0,
                &format!(r#","gpus_used":1,"gpu_peak_mib":{peak},"timeout_s":null"#),
            ));
            // A failed run that used two GPUs does not count.
            let outcome = if run == 2 { "failed" } else { "passed" };
            lines.push(line(
                run,
                "t.py::two",
                outcome,
                1.0,
                &format!(
                    r#","gpus_used":{},"gpu_peak_mib":2048,"timeout_s":null"#,
                    if run == 2 { 4 } else { 2 }
                ),
            ));
            lines.push(line(
                run,
                "t.py::cpu",
                "passed",
                0.1,
                r#","gpus_used":0,"timeout_s":null"#,
            ));
            lines.push(line(
                run,
                "t.py::plain",
                "passed",
                0.1,
                r#","timeout_s":null"#,
            ));
        }
        let h = History::from_lines(lines.iter().map(String::as_str));
        let a = advise(
            &h,
            &[0, 1, 2],
            &rules(),
            &AdviceConfig::default(),
            &TimeoutsConfig::default(),
            &[],
        );
        let shown: Vec<(&str, Vec<String>)> = a
            .tests
            .iter()
            .map(|t| {
                (
                    t.nodeid.as_str(),
                    t.decorators.iter().map(Decorator::text).collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "t.py::big",
                    vec![
                        "@pytest.mark.gpu_1".into(),
                        "@pytest.mark.vram_gib(4.8)".into(),
                        "@pytest.mark.timeout(300)".into()
                    ]
                ),
                ("t.py::cpu", vec!["@pytest.mark.gpu_0".into()]),
                (
                    "t.py::two",
                    vec![
                        "@pytest.mark.gpu_2".into(),
                        "@pytest.mark.vram_gib(2.4)".into()
                    ]
                ),
            ]
        );
        let big = &a.tests[0];
        assert_eq!(
            (big.runs, big.passed, big.gpus_used, big.peak_mib),
            (3, 3, Some(1), Some(4096.0))
        );
        assert_eq!(
            big.decorators[0].evidence,
            "used at most 1 GPU in 3 passing run(s) measured"
        );
        assert_eq!(big.decorators[1].evidence, "peak 4.00 GiB on one GPU x 1.2");
        assert_eq!(
            big.decorators[2].evidence,
            "p95 1m40s over 3 run(s) x 3 (no timeout marker)"
        );
        assert_eq!(a.tests[2].passed, 2);
        let text = render_text(&a);
        assert!(
            text.contains("t.py::big  (3 run(s), 3 passed, p95 1m40s)\n  @pytest.mark.gpu_1 "),
            "{text}"
        );
        assert!(
            text.ends_with("3 test(s) from 3 run(s); `pytest-dynamo advise --apply` writes them\n"),
            "{text}"
        );
    }
}

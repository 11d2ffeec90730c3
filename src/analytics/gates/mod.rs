//! Quality gates a pipeline must pass: the suite's flaky
//! rate, performance metrics against their baseline on the same GPU model,
//! and line coverage against a baseline and per-language floors. Each gate
//! says what it compared, against which baseline, and passes, fails or is
//! skipped with the reason.

mod budget;
pub mod config;
mod coverage;
mod timeouts;
mod verdict;

pub use coverage::Coverage;
pub use verdict::{Check, Gate, Status};

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::ops::Range;

use serde::Serialize;

use crate::analytics::flakiness;
use crate::analytics::gates::config::GatesConfig;
use crate::analytics::gates::verdict::{skipped, span, verdict};
use crate::analytics::render::escape;
use crate::analytics::report::{short, windows};
use crate::error::{Error, Result};
use crate::history::stats;
use crate::history::History;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub passed: bool,
    /// The run judged (the latest, or the one asked for).
    pub run_id: Option<String>,
    pub gates: Vec<Gate>,
}

/// What the gates look at.
#[derive(Default)]
pub struct Inputs<'a> {
    pub history: Option<&'a History>,
    pub pipeline: Option<String>,
    pub run_id: Option<String>,
    pub coverage: Option<Coverage>,
    pub coverage_baseline: Option<Coverage>,
    /// `[tool.pytest-dynamo.timeouts]`, for the timeouts gate.
    pub timeouts: crate::analytics::advice::TimeoutsConfig,
    /// The project's pipelines, for the budget gate.
    pub pipelines: Option<&'a crate::selection::pipeline::Pipelines>,
}

pub const GATES: [&str; 5] = ["flaky", "performance", "coverage", "budget", "timeouts"];
/// Gates that run only when asked for (`--only`, or `gate --budget` / `--timeouts`).
const OPT_IN: [&str; 2] = ["budget", "timeouts"];

/// The judged run and the history it is in: the history, the selected runs
/// and the judged run's position among them (None without records).
type Judged<'h> = Option<(&'h History, &'h [usize], usize)>;

pub fn evaluate(config: &GatesConfig, inputs: &Inputs<'_>, only: &[String]) -> Result<GateReport> {
    check_names(only)?;
    let wanted = |g: &str| {
        if only.is_empty() {
            !OPT_IN.contains(&g)
        } else {
            only.iter().any(|o| o == g)
        }
    };
    let judged = judged_run(inputs)?;
    let at = inputs
        .history
        .zip(judged.as_ref())
        .map(|(h, (selected, at))| (h, selected.as_slice(), *at));
    let mut gates = Vec::new();
    if wanted("flaky") {
        gates.push(run_flaky(config, inputs, at));
    }
    if wanted("performance") {
        gates.push(run_performance(config, at));
    }
    if wanted("coverage") {
        gates.push(coverage_gate(
            config,
            inputs.coverage.as_ref(),
            inputs.coverage_baseline.as_ref(),
        ));
    }
    if wanted("budget") {
        gates.push(run_budget(config, inputs, at)?);
    }
    if wanted("timeouts") {
        gates.push(run_timeouts(config, inputs, at));
    }
    Ok(GateReport {
        passed: gates.iter().all(|g| g.status != Status::Fail),
        run_id: judged.map(|(s, at)| {
            inputs.history.expect("judged implies history").runs[s[at]]
                .run_id
                .clone()
        }),
        gates,
    })
}

/// `--only`'s names, each a gate.
fn check_names(only: &[String]) -> Result<()> {
    for name in only {
        if !GATES.contains(&name.as_str()) {
            return Err(Error::config(
                "--only",
                format!("unknown gate '{name}'"),
                format!("choose from {}", GATES.join(", ")),
            ));
        }
    }
    Ok(())
}

fn run_flaky(config: &GatesConfig, inputs: &Inputs<'_>, at: Judged<'_>) -> Gate {
    match at {
        Some((h, selected, at)) => {
            flaky_gate(config, h, &selected[..=at], inputs.pipeline.as_deref())
        }
        None => skipped(
            "flaky",
            "no records given",
            format!("flaky_rate = {}%", config.flaky_rate),
        ),
    }
}

fn run_performance(config: &GatesConfig, at: Judged<'_>) -> Gate {
    match at {
        Some((h, selected, at)) => performance_gate(config, h, selected, at),
        None => skipped(
            "performance",
            "no records given",
            format!(
                "performance_regression = {}%",
                config.performance_regression
            ),
        ),
    }
}

fn run_budget(config: &GatesConfig, inputs: &Inputs<'_>, at: Judged<'_>) -> Result<Gate> {
    Ok(match (at, inputs.pipelines) {
        (Some((h, selected, at)), Some(pipelines)) => {
            let pipeline = inputs
                .pipeline
                .as_deref()
                .map(|name| pipelines.find(name))
                .transpose()?;
            budget::gate(config, h, pipelines, pipeline, selected[at])
        }
        _ => skipped(
            "budget",
            "no records given",
            "[pipelines.NAME] budget".into(),
        ),
    })
}

fn run_timeouts(config: &GatesConfig, inputs: &Inputs<'_>, at: Judged<'_>) -> Gate {
    match at {
        Some((h, selected, at)) => timeouts::timeouts_gate(
            &inputs.timeouts,
            config.window,
            h,
            &selected[..=at],
            inputs.pipeline.as_deref(),
        ),
        None => skipped(
            "timeouts",
            "no records given",
            format!(
                "require_above = \"{}\"",
                crate::analytics::advice::timeouts::human(inputs.timeouts.require_above)
            ),
        ),
    }
}

/// The selected runs and the position of the judged one among them.
fn judged_run(inputs: &Inputs<'_>) -> Result<Option<(Vec<usize>, usize)>> {
    let Some(h) = inputs.history else {
        return Ok(None);
    };
    let selected = h.select(inputs.pipeline.as_deref());
    if selected.is_empty() {
        return Err(Error::config(
            "--pipeline",
            format!(
                "no runs of pipeline {} in the records",
                inputs.pipeline.as_deref().unwrap_or("(any)")
            ),
            "check the pipeline name against run_start's `pipeline`, or leave --pipeline out",
        ));
    }
    let at = match &inputs.run_id {
        None => selected.len() - 1,
        Some(id) => selected
            .iter()
            .position(|&r| h.runs[r].run_id == *id)
            .ok_or_else(|| {
                Error::config(
                    "--run",
                    format!(
                        "run {id} is not in the records{}",
                        inputs
                            .pipeline
                            .as_ref()
                            .map(|p| format!(" of pipeline {p}"))
                            .unwrap_or_default()
                    ),
                    "name a run_id from the records, or leave --run out to judge the latest run",
                )
            })?,
    };
    Ok(Some((selected, at)))
}

fn flaky_gate(config: &GatesConfig, h: &History, upto: &[usize], pipeline: Option<&str>) -> Gate {
    let (window, _) = windows(upto, config.window);
    let f = flakiness::assess(h, &window, config.min_runs);
    let threshold = format!("flaky_rate = {}%", config.flaky_rate);
    let compared = format!(
        "flaky tests: the share of the {} tests with at least {} results that are flaky",
        f.assessed, config.min_runs
    );
    let baseline = format!(
        "window (window = {}): {}{}",
        config.window,
        span(h, &window),
        pipeline
            .map(|p| format!(" of pipeline {p}"))
            .unwrap_or_default()
    );
    if f.assessed == 0 {
        return Gate {
            name: "flaky".into(),
            status: Status::Skipped,
            threshold,
            compared,
            baseline,
            summary: format!(
                "not judged: no test has {} results in the window yet ({} tests seen)",
                config.min_runs,
                f.tests.len()
            ),
            checks: Vec::new(),
        };
    }
    let status = if f.flaky_rate > config.flaky_rate {
        Status::Fail
    } else {
        Status::Pass
    };
    let checks = f
        .tests
        .iter()
        .filter(|t| t.verdict == flakiness::Verdict::Flaky)
        .map(|t| Check {
            subject: h.tests[t.test as usize].clone(),
            value: format!("{} of {} results flaky", t.flaky_results, t.runs),
            baseline: t.mixed_commits.first().map_or_else(
                || "passed on retry".to_string(),
                |c| format!("passed and failed on commit {}", short(c)),
            ),
            change: format!("{:.1}%", t.flake_rate),
            status: Status::Fail,
        })
        .collect();
    Gate {
        name: "flaky".into(),
        status,
        summary: format!(
            "flaky tests {:.1}% ({} of {} tests) {} {}%",
            f.flaky_rate,
            f.flaky,
            f.assessed,
            if status == Status::Fail { ">" } else { "<=" },
            config.flaky_rate
        ),
        threshold,
        compared,
        baseline,
        checks,
    }
}

fn gpu(h: &History, run: usize) -> &str {
    h.runs[run].gpu_model.as_deref().unwrap_or("unknown GPU")
}

/// `(test, metric) -> (value, unit, higher_is_better)`: one run's metrics.
type Metrics = BTreeMap<(String, String), (f64, String, bool)>;

/// Gather the judged run's metrics, their baselines on the same GPU model,
/// judge each, and summarise.
fn performance_gate(config: &GatesConfig, h: &History, selected: &[usize], at: usize) -> Gate {
    let run = selected[at];
    let model = gpu(h, run).to_string();
    let threshold = format!(
        "performance_regression = {}%",
        config.performance_regression
    );
    let ranges = h.rows_by_run();
    let current = run_metrics(h, &ranges, run);
    let compared = format!(
        "{} metric(s) recorded with dynamo_metric in run {} on {model}",
        current.len(),
        h.runs[run].run_id
    );
    let baseline = format!(
        "per metric, the median of its values in up to {} earlier runs on {model} (at least {} needed)",
        config.performance_baseline_runs, config.performance_min_baseline
    );
    if current.is_empty() {
        return Gate {
            name: "performance".into(),
            status: Status::Skipped,
            threshold,
            compared,
            baseline,
            summary: "not judged: the run recorded no performance metrics".into(),
            checks: Vec::new(),
        };
    }
    let past = earlier_values(config, h, &ranges, &selected[..at], &model);
    let checks: Vec<Check> = current
        .iter()
        .map(|((test, name), (value, unit, higher))| {
            let values = past
                .get(&(test.as_str(), name.as_str()))
                .cloned()
                .unwrap_or_default();
            metric_check(
                config,
                &model,
                format!("{test} {name}"),
                (*value, unit, *higher),
                values,
            )
        })
        .collect();
    let (status, failed, judged) = verdict(&checks);
    let summary = match status {
        Status::Fail => format!(
            "{failed} of {judged} metric(s) regressed more than {}%",
            config.performance_regression
        ),
        Status::Pass => format!(
            "{judged} metric(s) within {}% of their baseline",
            config.performance_regression
        ),
        Status::Skipped => format!(
            "not judged: no metric has {} earlier values on {model} yet",
            config.performance_min_baseline
        ),
    };
    Gate {
        name: "performance".into(),
        status,
        threshold,
        compared,
        baseline,
        summary,
        checks,
    }
}

/// The metrics `run` recorded, by test and name.
fn run_metrics(h: &History, ranges: &[Range<usize>], run: usize) -> Metrics {
    let mut current = Metrics::new();
    for row in &h.rows[ranges[run].clone()] {
        for m in &row.metrics {
            current.insert(
                (h.tests[row.test as usize].clone(), m.name.clone()),
                (m.value, m.unit.clone(), m.higher_is_better),
            );
        }
    }
    current
}

/// Per (test, metric), its values in the `earlier` runs on the same GPU
/// model, newest first; each metric takes its values from the first
/// `performance_baseline_runs` runs that have it.
fn earlier_values<'h>(
    config: &GatesConfig,
    h: &'h History,
    ranges: &[Range<usize>],
    earlier: &[usize],
    model: &str,
) -> HashMap<(&'h str, &'h str), Vec<f64>> {
    let mut past: HashMap<(&str, &str), Vec<f64>> = HashMap::new();
    for &earlier in earlier.iter().rev() {
        if gpu(h, earlier) != model {
            continue;
        }
        let mut seen_in_run: Vec<(&str, &str)> = Vec::new();
        for row in &h.rows[ranges[earlier].clone()] {
            for m in &row.metrics {
                let key = (h.tests[row.test as usize].as_str(), m.name.as_str());
                if seen_in_run.contains(&key) {
                    continue;
                }
                seen_in_run.push(key);
                let values = past.entry(key).or_default();
                if values.len() < config.performance_baseline_runs {
                    values.push(m.value);
                }
            }
        }
    }
    past
}

/// One metric against the median of its earlier `values`: skipped with
/// too few of them or a zero median, failed past the allowed regression.
fn metric_check(
    config: &GatesConfig,
    model: &str,
    subject: String,
    (value, unit, higher): (f64, &str, bool),
    mut values: Vec<f64>,
) -> Check {
    let shown = |v: f64| {
        if unit.is_empty() {
            format!("{v:.4}")
        } else {
            format!("{v:.4} {unit}")
        }
    };
    let n = values.len();
    if n < config.performance_min_baseline {
        return Check {
            subject,
            value: shown(value),
            baseline: format!("{n} earlier value(s) on {model}: too few"),
            change: "-".into(),
            status: Status::Skipped,
        };
    }
    let median = stats::median(&mut values).expect("values are not empty");
    let direction = if higher {
        "higher is better"
    } else {
        "lower is better"
    };
    let Some(change) = stats::change_percent(median, value) else {
        return Check {
            subject,
            value: shown(value),
            baseline: format!(
                "median {} of {n} runs: zero, no relative change",
                shown(median)
            ),
            change: "-".into(),
            status: Status::Skipped,
        };
    };
    let regression = if higher { -change } else { change };
    Check {
        subject,
        value: shown(value),
        baseline: format!("median {} of {n} runs", shown(median)),
        change: format!("{change:+.1}% ({direction})"),
        status: if regression > config.performance_regression {
            Status::Fail
        } else {
            Status::Pass
        },
    }
}

fn coverage_gate(
    config: &GatesConfig,
    current: Option<&Coverage>,
    base: Option<&Coverage>,
) -> Gate {
    let floors = &config.coverage_floors.0;
    let mut threshold = format!("coverage_drop = {} percentage points", config.coverage_drop);
    if !floors.is_empty() {
        let f: Vec<String> = floors.iter().map(|(l, p)| format!("{l} >= {p}%")).collect();
        let _ = write!(threshold, "; coverage_floors: {}", f.join(", "));
    }
    let Some(current) = current else {
        return skipped(
            "coverage",
            "no coverage report given (--coverage, or coverage_report in the configuration)",
            threshold,
        );
    };
    let compared = format!("line coverage per language in {}", current.files.join(", "));
    let baseline = match base {
        Some(b) => format!("line coverage in {}", b.files.join(", ")),
        None => "no baseline given (--coverage-baseline): floors only".into(),
    };
    let checks = coverage_checks(config, current, base);
    let (status, failed, judged) = verdict(&checks);
    let summary = match status {
        Status::Fail => format!("{failed} of {judged} coverage check(s) failed"),
        Status::Pass => format!("{judged} coverage check(s) passed"),
        Status::Skipped => {
            "not judged: no language in both the report and the baseline, and no floor that applies"
                .into()
        }
    };
    Gate {
        name: "coverage".into(),
        status,
        threshold,
        compared,
        baseline,
        summary,
        checks,
    }
}

/// Per language measured: its drop against the baseline and its floor;
/// then the floors of languages not measured (skipped).
fn coverage_checks(
    config: &GatesConfig,
    current: &Coverage,
    base: Option<&Coverage>,
) -> Vec<Check> {
    let floors = &config.coverage_floors.0;
    let mut checks = Vec::new();
    for lang in current.languages.keys() {
        let Some(now) = current.percent(lang) else {
            continue;
        };
        if let Some(before) = base.and_then(|b| b.percent(lang)) {
            let drop = before - now;
            checks.push(Check {
                subject: format!("{lang} line coverage"),
                value: format!("{now:.2}%"),
                baseline: format!("{before:.2}%"),
                change: format!("{:+.2} points", now - before),
                status: if drop > config.coverage_drop {
                    Status::Fail
                } else {
                    Status::Pass
                },
            });
        }
        if let Some(&floor) = floors.get(lang) {
            checks.push(Check {
                subject: format!("{lang} floor"),
                value: format!("{now:.2}%"),
                baseline: format!("floor {floor}%"),
                change: format!("{:+.2} points", now - floor),
                status: if now < floor {
                    Status::Fail
                } else {
                    Status::Pass
                },
            });
        }
    }
    for lang in floors.keys() {
        if !current.languages.contains_key(lang) {
            checks.push(Check {
                subject: format!("{lang} floor"),
                value: "not measured".into(),
                baseline: format!("floor {}%", floors[lang]),
                change: "-".into(),
                status: Status::Skipped,
            });
        }
    }
    checks
}

pub fn render_text(r: &GateReport) -> String {
    let mut out = String::new();
    for g in &r.gates {
        let _ = writeln!(out, "{}  {}: {}", g.status.word(), g.name, g.summary);
        let _ = writeln!(out, "      compared: {}", g.compared);
        let _ = writeln!(out, "      baseline: {}", g.baseline);
        let _ = writeln!(out, "      threshold: {}", g.threshold);
        for c in &g.checks {
            let _ = writeln!(
                out,
                "      {} {}: {} vs {} ({})",
                c.status.word(),
                c.subject,
                c.value,
                c.baseline,
                c.change
            );
        }
    }
    let failed: Vec<&str> = r
        .gates
        .iter()
        .filter(|g| g.status == Status::Fail)
        .map(|g| g.name.as_str())
        .collect();
    let _ = writeln!(
        out,
        "pytest-dynamo gate: {}",
        if failed.is_empty() {
            format!("passed ({} gates)", r.gates.len())
        } else {
            format!("FAILED: {}", failed.join(", "))
        }
    );
    out
}

pub fn render_markdown(r: &GateReport) -> String {
    let mut out = String::from("## pytest-dynamo quality gates\n\n| gate | result | compared | baseline | threshold |\n|---|---|---|---|---|\n");
    // Metric and GPU names come from the records: escaped like any input.
    let cell = escape::text;
    for g in &r.gates {
        let _ = writeln!(
            out,
            "| {} | **{}** {} | {} | {} | {} |",
            cell(&g.name),
            g.status.word(),
            cell(&g.summary),
            cell(&g.compared),
            cell(&g.baseline),
            cell(&g.threshold)
        );
    }
    for g in r.gates.iter().filter(|g| !g.checks.is_empty()) {
        let _ = writeln!(
            out,
            "\n### {}\n\n| | check | value | baseline | change |\n|---|---|--:|--:|--:|",
            cell(&g.name)
        );
        for c in &g.checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                c.status.word(),
                escape::code_cell(&c.subject),
                cell(&c.value),
                cell(&c.baseline),
                cell(&c.change)
            );
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;
    use crate::analytics::flakiness::tests::history;

    fn perf_history(values: &[(&str, f64)]) -> History {
        let mut lines = Vec::new();
        for (i, (gpu, v)) in values.iter().enumerate() {
            lines.push(format!(
                r#"{{"record":"run_start","run_id":"r{i}","gpus":{{"devices":[{{"name":"{gpu}"}}]}},"git":{{"commit":"c{i}"}},"started_at":"2026-02-{:02}T00:00:00Z"}}"#,
                i + 1
            ));
            lines.push(format!(
                r#"{{"record":"test","run_id":"r{i}","nodeid":"b.py::ttft","outcome":"passed","duration_s":1,"metrics":[{{"name":"ttft_ms","value":{v},"unit":"ms","higher_is_better":false}},{{"name":"tok_s","value":{},"unit":"tok/s","higher_is_better":true}}]}}"#,
                1000.0 / v
            ));
        }
        History::from_lines(lines.iter().map(String::as_str))
    }

    fn run(h: &History, config: &GatesConfig) -> GateReport {
        let inputs = Inputs {
            history: Some(h),
            ..Inputs::default()
        };
        evaluate(config, &inputs, &["performance".into()]).unwrap()
    }

    #[test]
    fn a_metric_is_judged_against_the_median_on_the_same_gpu() {
        // Baseline on H100: 40, 41, 42 -> median 41; the A100 run is ignored.
        let h = perf_history(&[
            ("H100", 40.0),
            ("A100", 99.0),
            ("H100", 42.0),
            ("H100", 41.0),
            ("H100", 43.0),
        ]);
        let r = run(&h, &GatesConfig::default());
        let g = &r.gates[0];
        assert_eq!(g.status, Status::Pass, "{g:?}");
        assert!(g.compared.contains("on H100"));
        let ttft = g
            .checks
            .iter()
            .find(|c| c.subject.ends_with("ttft_ms"))
            .unwrap();
        assert_eq!(ttft.baseline, "median 41.0000 ms of 3 runs");
        assert!(ttft.change.starts_with("+4.9%"), "{}", ttft.change);
        let h = perf_history(&[
            ("H100", 40.0),
            ("H100", 42.0),
            ("H100", 41.0),
            ("H100", 43.1),
        ]);
        let r = run(&h, &GatesConfig::default());
        assert_eq!(r.gates[0].status, Status::Fail);
        assert!(!r.passed);
        let failed: Vec<&str> = r.gates[0]
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.subject.as_str())
            .collect();
        // Throughput fell by the same ratio: 1000/43.1 vs 1000/41 is -4.9%: passes.
        assert_eq!(failed, vec!["b.py::ttft ttft_ms"]);
        let loose = GatesConfig {
            performance_regression: 10.0,
            ..GatesConfig::default()
        };
        assert!(run(&h, &loose).passed);
    }

    #[test]
    fn too_short_a_baseline_skips() {
        let h = perf_history(&[("H100", 40.0), ("H100", 80.0)]);
        let r = run(&h, &GatesConfig::default());
        assert_eq!(r.gates[0].status, Status::Skipped);
        assert!(r.passed);
        let one = GatesConfig {
            performance_min_baseline: 1,
            ..GatesConfig::default()
        };
        assert_eq!(run(&h, &one).gates[0].status, Status::Fail);
    }

    #[test]
    fn the_flaky_gate_compares_the_suite_rate_with_the_threshold() {
        let h = history(&[
            ("r1", "c1", &[("a", "passed"), ("b", "passed")]),
            ("r2", "c1", &[("a", "failed"), ("b", "passed")]),
            ("r3", "c2", &[("a", "passed"), ("b", "passed")]),
        ]);
        let config = GatesConfig {
            min_runs: 3,
            ..GatesConfig::default()
        };
        let inputs = Inputs {
            history: Some(&h),
            ..Inputs::default()
        };
        let r = evaluate(&config, &inputs, &["flaky".into()]).unwrap();
        assert_eq!(r.gates[0].status, Status::Fail);
        assert!(
            r.gates[0]
                .summary
                .starts_with("flaky tests 50.0% (1 of 2 tests) > 5%"),
            "{}",
            r.gates[0].summary
        );
        let lenient = GatesConfig {
            flaky_rate: 50.0,
            ..config.clone()
        };
        assert!(evaluate(&lenient, &inputs, &[]).unwrap().passed);
        // Judging the second run: its window has two results per test, too few.
        let inputs = Inputs {
            history: Some(&h),
            run_id: Some("r2".into()),
            ..Inputs::default()
        };
        let r = evaluate(&config, &inputs, &["flaky".into()]).unwrap();
        assert_eq!(r.gates[0].status, Status::Skipped);
        let inputs = Inputs {
            history: Some(&h),
            run_id: Some("nope".into()),
            ..Inputs::default()
        };
        assert!(evaluate(&config, &inputs, &[]).is_err());
        assert!(evaluate(&config, &Inputs::default(), &["speed".into()]).is_err());
    }

    #[test]
    fn coverage_drop_and_floors() {
        let mut now = Coverage::default();
        now.add_text("now.info", "SF:a.rs\nLF:100\nLH:79\nend_of_record\n")
            .unwrap();
        let mut base = Coverage::default();
        base.add_text("base.info", "SF:a.rs\nLF:100\nLH:81\nend_of_record\n")
            .unwrap();
        let inputs = Inputs {
            coverage: Some(now.clone()),
            coverage_baseline: Some(base.clone()),
            ..Inputs::default()
        };
        let config = GatesConfig::default();
        let r = evaluate(&config, &inputs, &["coverage".into()]).unwrap();
        assert_eq!(
            r.gates[0].status,
            Status::Pass,
            "a 2-point drop is not above 2"
        );
        let mut base2 = Coverage::default();
        base2
            .add_text("base.info", "SF:a.rs\nLF:1000\nLH:811\nend_of_record\n")
            .unwrap();
        let inputs = Inputs {
            coverage: Some(now.clone()),
            coverage_baseline: Some(base2),
            ..Inputs::default()
        };
        let r = evaluate(&config, &inputs, &["coverage".into()]).unwrap();
        assert_eq!(r.gates[0].status, Status::Fail);
        assert_eq!(r.gates[0].checks[0].change, "-2.10 points");
        let mut floors = GatesConfig::default();
        floors.coverage_floors.0.insert("rust".into(), 80.0);
        let inputs = Inputs {
            coverage: Some(now),
            ..Inputs::default()
        };
        let r = evaluate(&floors, &inputs, &["coverage".into()]).unwrap();
        assert_eq!(r.gates[0].status, Status::Fail);
        assert!(r.gates[0].baseline.contains("floors only"));
        let r = evaluate(&GatesConfig::default(), &Inputs::default(), &[]).unwrap();
        assert!(r.gates.iter().all(|g| g.status == Status::Skipped));
        assert!(r.passed);
        assert!(render_text(&r).ends_with("pytest-dynamo gate: passed (3 gates)\n"));
    }
}

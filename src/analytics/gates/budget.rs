//! `pytest-dynamo gate --budget`: a pipeline's measured wall time against
//! its budget. Each stage's measure is the p95 of its runs' wall times over
//! the gates' window; the pipeline's is its slowest stage's (stages run side
//! by side). A failure names the stages and tests that grew the most: the
//! median of the window against the window before it (or, with no earlier
//! runs, the newer half of the window against the older half).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::analytics::gates::config::GatesConfig;
use crate::analytics::gates::verdict::{Check, Gate, Status};
use crate::analytics::report::windows;
use crate::history::stats;
use crate::history::History;
use crate::selection::budgets::human;
use crate::selection::pipeline::{Pipeline, Pipelines};

/// Runs of one pipeline without a stage ran the whole pipeline in one job.
const WHOLE: &str = "(all stages)";
/// Tests named in a failure's summary.
const TESTS_NAMED: usize = 5;

struct Measured {
    stage: String,
    p95: f64,
    runs: usize,
    /// Median wall time now minus before (None: nothing to compare).
    growth: Option<f64>,
    window: Vec<usize>,
    before: Vec<usize>,
}

fn median_of(h: &History, runs: &[usize]) -> Option<f64> {
    let mut v: Vec<f64> = runs
        .iter()
        .filter_map(|&r| h.runs[r].end.as_ref().map(|e| e.wall_s))
        .collect();
    stats::median(&mut v)
}

/// The window and what it is compared with.
fn split(runs: &[usize], window: usize) -> (Vec<usize>, Vec<usize>) {
    let (now, before) = windows(runs, window);
    if before.is_empty() && now.len() >= 2 {
        let half = now.len() / 2;
        return (now[half..].to_vec(), now[..half].to_vec());
    }
    (now, before)
}

fn measure(h: &History, runs: &[usize], window: usize, stage: &str) -> Option<Measured> {
    let (now, _) = windows(runs, window);
    let mut walls: Vec<f64> = now
        .iter()
        .filter_map(|&r| h.runs[r].end.as_ref().map(|e| e.wall_s))
        .collect();
    let p95 = stats::percentile(&mut walls, 95.0)?;
    let (newer, older) = split(runs, window);
    let growth = match (median_of(h, &newer), median_of(h, &older)) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    Some(Measured {
        stage: stage.to_string(),
        p95,
        runs: walls.len(),
        growth,
        window: newer,
        before: older,
    })
}

/// Tests whose median duration grew the most between the two sets of runs
/// (a test only in the newer runs grew by its whole median).
fn grown_tests(h: &History, newer: &[usize], older: &[usize]) -> Vec<(String, f64, bool)> {
    let ranges = h.rows_by_run();
    let collect = |runs: &[usize]| {
        let mut by: HashMap<u32, Vec<f64>> = HashMap::new();
        for &r in runs {
            for row in &h.rows[ranges[r].clone()] {
                if row.outcome.is_sample() {
                    by.entry(row.test).or_default().push(row.duration_s);
                }
            }
        }
        by.into_iter()
            .filter_map(|(t, mut v)| stats::median(&mut v).map(|m| (t, m)))
            .collect::<HashMap<u32, f64>>()
    };
    let (now, before) = (collect(newer), collect(older));
    let mut grown: Vec<(String, f64, bool)> = now
        .iter()
        .filter_map(|(t, m)| {
            let (growth, new) = match before.get(t) {
                Some(b) => (m - b, false),
                None => (*m, true),
            };
            (growth > 0.0).then(|| (h.tests[*t as usize].clone(), growth, new))
        })
        .collect();
    grown.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    grown.truncate(TESTS_NAMED);
    grown
}

fn growth_text(g: Option<f64>) -> String {
    match g {
        Some(g) if g >= 0.0 => format!("median +{} since before", human(g)),
        Some(g) => format!("median -{} since before", human(-g)),
        None => "no earlier runs to compare".into(),
    }
}

struct Judged {
    checks: Vec<Check>,
    /// What failed, for the summary, with the stages that grew the most.
    failed: Vec<String>,
    grown: Vec<String>,
}

fn judge(config: &GatesConfig, h: &History, p: &Pipeline, upto: usize) -> Judged {
    // Runs of the pipeline up to the judged run, by stage.
    let mut by_stage: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in h.select(Some(&p.name)) {
        if r > upto || h.runs[r].end.is_none() {
            continue;
        }
        let stage = h.runs[r].stage.clone().unwrap_or_else(|| WHOLE.to_string());
        by_stage.entry(stage).or_default().push(r);
    }
    let measured: Vec<Measured> = by_stage
        .iter()
        .filter_map(|(s, runs)| measure(h, runs, config.window, s))
        .collect();
    let mut checks = Vec::new();
    let mut failed_stages: Vec<&Measured> = Vec::new();
    let mut failed = Vec::new();
    for m in &measured {
        let Some(budget) = p.stage(&m.stage).and_then(|i| p.stages[i].budget) else {
            continue;
        };
        let over = m.p95 > budget;
        checks.push(Check {
            subject: format!("{} stage {}", p.name, m.stage),
            value: format!("p95 {} over {} run(s)", human(m.p95), m.runs),
            baseline: format!("budget {}", human(budget)),
            change: growth_text(m.growth),
            status: if over { Status::Fail } else { Status::Pass },
        });
        if over {
            failed_stages.push(m);
            failed.push(format!(
                "{} stage {} p95 {} > {}",
                p.name,
                m.stage,
                human(m.p95),
                human(budget)
            ));
        }
    }
    let slowest = measured.iter().max_by(|a, b| a.p95.total_cmp(&b.p95));
    if let (Some(budget), Some(slowest)) = (p.budget, slowest) {
        let over = slowest.p95 > budget;
        checks.push(Check {
            subject: format!("pipeline {}", p.name),
            value: format!(
                "p95 {} (slowest stage {}, {} run(s))",
                human(slowest.p95),
                slowest.stage,
                slowest.runs
            ),
            baseline: format!("budget {}", human(budget)),
            change: growth_text(slowest.growth),
            status: if over { Status::Fail } else { Status::Pass },
        });
        if over {
            failed.push(format!(
                "pipeline {} p95 {} > {}",
                p.name,
                human(slowest.p95),
                human(budget)
            ));
            // Every stage over the pipeline's budget made it fail.
            for m in measured.iter().filter(|m| m.p95 > budget) {
                if !failed_stages.iter().any(|f| f.stage == m.stage) {
                    failed_stages.push(m);
                }
            }
        }
    }
    let grown = what_grew(h, &failed_stages);
    Judged {
        checks,
        failed,
        grown,
    }
}

/// The stages over budget by growth, and the tests of theirs that grew the most.
fn what_grew(h: &History, failed_stages: &[&Measured]) -> Vec<String> {
    let mut grown = Vec::new();
    if failed_stages.is_empty() {
        return grown;
    }
    let mut stages: Vec<&&Measured> = failed_stages.iter().collect();
    stages.sort_by(|a, b| {
        b.growth
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.growth.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| a.stage.cmp(&b.stage))
    });
    let named: Vec<String> = stages
        .iter()
        .filter_map(|m| {
            m.growth.map(|g| {
                format!(
                    "stage {} {}{}",
                    m.stage,
                    if g >= 0.0 { "+" } else { "-" },
                    human(g.abs())
                )
            })
        })
        .collect();
    if !named.is_empty() {
        grown.push(named.join(", "));
    }
    let newer: Vec<usize> = failed_stages
        .iter()
        .flat_map(|m| m.window.iter().copied())
        .collect();
    let older: Vec<usize> = failed_stages
        .iter()
        .flat_map(|m| m.before.iter().copied())
        .collect();
    if !older.is_empty() {
        let tests: Vec<String> = grown_tests(h, &newer, &older)
            .into_iter()
            .map(|(t, g, new)| format!("{t} +{}{}", human(g), if new { " (new)" } else { "" }))
            .collect();
        if !tests.is_empty() {
            grown.push(format!("tests {}", tests.join(", ")));
        }
    }
    grown
}

/// The budget gate over the runs up to `upto` (the judged run's index);
/// `pipeline`: only that one, else every pipeline with a budget.
#[must_use]
pub fn gate(
    config: &GatesConfig,
    h: &History,
    pipelines: &Pipelines,
    pipeline: Option<&Pipeline>,
    upto: usize,
) -> Gate {
    let shown: Vec<&Pipeline> = match pipeline {
        Some(p) => vec![p],
        None => pipelines
            .list
            .iter()
            .filter(|p| p.budget.is_some() || p.stages.iter().any(|s| s.budget.is_some()))
            .collect(),
    };
    let threshold = threshold(&shown);
    let compared = format!(
        "p95 wall time of each stage's last {} runs (window); a pipeline takes its slowest stage's (stages run side by side)",
        config.window
    );
    let baseline = "the budgets".to_string();
    let mut checks = Vec::new();
    let mut failed = Vec::new();
    let mut grown = Vec::new();
    for p in &shown {
        let j = judge(config, h, p, upto);
        checks.extend(j.checks);
        failed.extend(j.failed);
        grown.extend(j.grown);
    }
    let judged = checks
        .iter()
        .filter(|c| c.status != Status::Skipped)
        .count();
    let (status, summary) = summary(&shown, judged, &failed, &grown);
    Gate {
        name: "budget".into(),
        status,
        threshold,
        compared,
        baseline,
        summary,
        checks,
    }
}

/// The budgets of the pipelines judged, as configured.
fn threshold(shown: &[&Pipeline]) -> String {
    let mut parts = Vec::new();
    for p in shown {
        let mut own: Vec<String> = Vec::new();
        if let Some(b) = p.budget {
            own.push(format!("budget = {}", human(b)));
        }
        for s in p.stages.iter().filter(|s| s.budget.is_some()) {
            own.push(format!(
                "{} {}",
                s.name,
                human(s.budget.unwrap_or_default())
            ));
        }
        if !own.is_empty() {
            parts.push(format!("[pipelines.{}] {}", p.name, own.join(", ")));
        }
    }
    if parts.is_empty() {
        "no budget configured".to_string()
    } else {
        parts.join("; ")
    }
}

/// The verdict and its line: what was exceeded and what grew the most,
/// or why nothing was judged.
fn summary(
    shown: &[&Pipeline],
    judged: usize,
    failed: &[String],
    grown: &[String],
) -> (Status, String) {
    if !failed.is_empty() {
        let mut s = format!(
            "{} of {judged} budget(s) exceeded: {}",
            failed.len(),
            failed.join("; ")
        );
        if !grown.is_empty() {
            let _ = write!(s, "; grew the most: {}", grown.join("; "));
        }
        (Status::Fail, s)
    } else if judged == 0 {
        let why = if shown
            .iter()
            .all(|p| p.budget.is_none() && p.stages.iter().all(|s| s.budget.is_none()))
        {
            "no pipeline has a budget ([tool.pytest-dynamo.pipelines.NAME] budget = \"30m\")"
        } else {
            "no run of a pipeline or stage with a budget has a run_end in the records"
        };
        (Status::Skipped, format!("not judged: {why}"))
    } else {
        (
            Status::Pass,
            format!("{judged} budget(s) met by the p95 wall time"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;
    use crate::taxonomy::customize;

    fn pipelines(toml: &str) -> Pipelines {
        let config = from_pyproject("pyproject.toml", toml)
            .unwrap()
            .unwrap_or_default();
        let taxonomy = customize::taxonomy(&config, "pyproject.toml").unwrap();
        Pipelines::build(&taxonomy, &config.pipelines, "pyproject.toml").unwrap()
    }

    /// One run: stage, wall seconds, and each test's seconds.
    type Run<'a> = (&'a str, f64, &'a [(&'a str, f64)]);

    /// Runs of `pre_merge`, a day apart.
    fn history(runs: &[Run]) -> History {
        let mut lines = Vec::new();
        for (i, (stage, wall, tests)) in runs.iter().enumerate() {
            let day = i + 1;
            lines.push(format!(
                r#"{{"record":"run_start","run_id":"r{i}","pipeline":"pre_merge","stage":"{stage}","started_at":"2026-02-{day:02}T00:00:00Z"}}"#
            ));
            for (t, d) in *tests {
                lines.push(format!(
                    r#"{{"record":"test","run_id":"r{i}","nodeid":"{t}","outcome":"passed","duration_s":{d}}}"#
                ));
            }
            lines.push(format!(
                r#"{{"record":"run_end","run_id":"r{i}","exit_status":0,"counts":{{}},"wall_s":{wall},"finished_at":"2026-02-{day:02}T01:00:00Z"}}"#
            ));
        }
        History::from_lines(lines.iter().map(String::as_str))
    }

    const CONFIG: &str = r#"
[tool.pytest-dynamo.pipelines.pre_merge]
budget = "30m"
add_stages = [{ name = "e2e_1", budget = "20m" }]
"#;

    fn window(n: usize) -> GatesConfig {
        GatesConfig {
            window: n,
            ..GatesConfig::default()
        }
    }

    #[test]
    fn the_p95_of_the_window_against_each_budget() {
        // e2e_1: 10 runs of 600..1500 s (p95 = 1455 s > 1200); unit: 5 min.
        let mut runs: Vec<Run> = Vec::new();
        for i in 0..10_u32 {
            runs.push(("e2e_1", 600.0 + 100.0 * f64::from(i), &[]));
        }
        runs.push(("unit", 300.0, &[]));
        let h = history(&runs);
        let p = pipelines(CONFIG);
        let g = gate(&window(20), &h, &p, None, h.runs.len() - 1);
        assert_eq!(g.status, Status::Fail, "{g:?}");
        let e2e = &g.checks[0];
        assert_eq!(e2e.subject, "pre_merge stage e2e_1");
        assert_eq!(e2e.value, "p95 24m 15s over 10 run(s)");
        assert_eq!(e2e.status, Status::Fail);
        // The pipeline: its slowest stage, under 30 min.
        let whole = g.checks.last().unwrap();
        assert_eq!(whole.subject, "pipeline pre_merge");
        assert_eq!(whole.status, Status::Pass);
        assert!(
            g.summary.starts_with(
                "1 of 2 budget(s) exceeded: pre_merge stage e2e_1 p95 24m 15s > 20m 00s"
            ),
            "{}",
            g.summary
        );
        // A window of the last 3 runs of each stage: 1300, 1400, 1500 -> p95 1490.
        let g = gate(&window(3), &h, &p, None, h.runs.len() - 1);
        assert_eq!(g.checks[0].value, "p95 24m 50s over 3 run(s)");
        // Judged at the fourth run: 600..900 s, within the budget.
        let g = gate(&window(20), &h, &p, None, 3);
        assert_eq!(g.status, Status::Pass, "{g:?}");
        assert_eq!(g.summary, "2 budget(s) met by the p95 wall time");
    }

    #[test]
    fn a_failure_names_the_stages_and_tests_that_grew() {
        let fast: &[(&str, f64)] = &[("t.py::a", 100.0), ("t.py::b", 200.0), ("t.py::c", 50.0)];
        let slow: &[(&str, f64)] = &[
            ("t.py::a", 700.0),
            ("t.py::b", 260.0),
            ("t.py::c", 50.0),
            ("t.py::new", 900.0),
        ];
        let mut runs: Vec<Run> = Vec::new();
        for _ in 0..2 {
            runs.push(("e2e_1", 400.0, fast));
            runs.push(("unit", 100.0, &[("u.py::x", 1.0)]));
        }
        for _ in 0..2 {
            runs.push(("e2e_1", 2000.0, slow));
            runs.push(("unit", 130.0, &[("u.py::x", 2.0)]));
        }
        let h = history(&runs);
        let p = pipelines(CONFIG);
        // Window 2: the last two runs of each stage against the two before.
        let g = gate(&window(2), &h, &p, None, h.runs.len() - 1);
        assert_eq!(g.status, Status::Fail);
        assert!(
            g.summary
                .contains("pipeline pre_merge p95 33m 20s > 30m 00s"),
            "{}",
            g.summary
        );
        assert!(
            g.summary.contains(
                "grew the most: stage e2e_1 +26m 40s; tests t.py::new +15m 00s (new), t.py::a +10m 00s, t.py::b +1m 00s"
            ),
            "{}",
            g.summary
        );
        // unit is under the pipeline's budget and grew less: not named.
        assert!(!g.summary.contains("stage unit"), "{}", g.summary);
        assert_eq!(g.checks[0].change, "median +26m 40s since before");
    }

    #[test]
    fn nothing_to_judge_is_skipped_with_the_reason() {
        let h = history(&[("unit", 100.0, &[])]);
        let g = gate(&window(20), &h, &pipelines(""), None, 0);
        assert_eq!(g.status, Status::Skipped);
        assert!(
            g.summary.contains("no pipeline has a budget"),
            "{}",
            g.summary
        );
        // A run without run_end (interrupted) is not measured.
        let mut lines = vec![r#"{"record":"run_start","run_id":"x","pipeline":"pre_merge","stage":"e2e_1","started_at":"2026-02-01T00:00:00Z"}"#.to_string()];
        lines.push(
            r#"{"record":"test","run_id":"x","nodeid":"a","outcome":"passed","duration_s":1}"#
                .into(),
        );
        let h = History::from_lines(lines.iter().map(String::as_str));
        let g = gate(&window(20), &h, &pipelines(CONFIG), None, 0);
        assert_eq!(g.status, Status::Skipped, "{g:?}");
    }
}

//! Lifecycle moves (issue #17): where a stage of a pipeline with a budget
//! measured a p95 time per run above its budget (its own, else its
//! pipeline's), its slowest tests — the fewest whose p95 durations add up
//! to the excess — should move to the next lifecycle, as the strategy asks
//! ("prefer downgrading existing slow tests").

use std::collections::BTreeMap;
use std::ops::Range;

use crate::history::stats;
use crate::history::History;
use crate::selection::pipeline::Pipelines;

use super::timeouts::human;

/// One test to move.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub nodeid: String,
    /// The pipeline's lifecycle marker, and the next one.
    pub from: String,
    pub to: String,
    pub evidence: String,
}

fn p95(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    stats::percentile_sorted(&values, 95.0)
}

/// The moves the records of `runs` call for. `lifecycles`: the lifecycle markers in order.
pub fn moves(
    history: &History,
    runs: &[usize],
    pipelines: &Pipelines,
    lifecycles: &[String],
) -> Vec<Move> {
    let ranges = history.rows_by_run();
    let mut out = Vec::new();
    for p in &pipelines.list {
        let Some(next) = lifecycles
            .iter()
            .position(|l| *l == p.lifecycle)
            .and_then(|i| lifecycles.get(i + 1))
        else {
            continue;
        };
        let of_pipeline: Vec<usize> = runs
            .iter()
            .copied()
            .filter(|&r| {
                history.runs[r]
                    .pipeline
                    .as_deref()
                    .is_some_and(|n| n == p.name || p.aliases.iter().any(|a| a == n))
            })
            .collect();
        for stage in &p.stages {
            let Some(limit) = stage.budget.or(p.budget) else {
                continue;
            };
            let (totals, tests) = stage_times(history, &ranges, &of_pipeline, &stage.name);
            if totals.is_empty() {
                continue;
            }
            let measured = p95(totals);
            if measured <= limit {
                continue;
            }
            let (chosen, moved) = slowest_for(tests, measured - limit);
            for (d, t) in &chosen {
                out.push(Move {
                    nodeid: history.tests[*t as usize].clone(),
                    from: p.lifecycle.clone(),
                    to: next.clone(),
                    evidence: format!(
                        "p95 {} in stage {} of {}, whose p95 {} is over its budget {}; \
                         moving its {} slowest test(s) frees {}",
                        human(*d),
                        stage.name,
                        p.name,
                        human(measured),
                        human(limit),
                        chosen.len(),
                        human(moved)
                    ),
                });
            }
        }
    }
    out
}

/// Per run: the stage's time (the sum of its tests' durations); per test: its durations.
fn stage_times(
    history: &History,
    ranges: &[Range<usize>],
    runs: &[usize],
    stage: &str,
) -> (Vec<f64>, BTreeMap<u32, Vec<f64>>) {
    let mut totals = Vec::new();
    let mut tests: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for &r in runs {
        let mut total = None;
        for row in &history.rows[ranges[r].clone()] {
            if history.name(row.stage) != Some(stage) || !row.outcome.is_sample() {
                continue;
            }
            *total.get_or_insert(0.0) += row.duration_s;
            tests.entry(row.test).or_default().push(row.duration_s);
        }
        totals.extend(total);
    }
    (totals, tests)
}

/// The fewest slowest tests (by p95) whose p95 durations add up to
/// `excess`, as `(p95, test)`, and the time they free.
fn slowest_for(tests: BTreeMap<u32, Vec<f64>>, excess: f64) -> (Vec<(f64, u32)>, f64) {
    let mut slowest: Vec<(f64, u32)> = tests.into_iter().map(|(t, d)| (p95(d), t)).collect();
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut moved = 0.0;
    let mut chosen = Vec::new();
    for (d, t) in slowest {
        if moved >= excess {
            break;
        }
        moved += d;
        chosen.push((d, t));
    }
    (chosen, moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;
    use crate::taxonomy::customize;

    fn setup(toml: &str) -> (Pipelines, Vec<String>) {
        let config = from_pyproject("p", toml).unwrap().unwrap_or_default();
        let taxonomy = customize::taxonomy(&config, "p").unwrap();
        let lifecycles = taxonomy
            .category(crate::taxonomy::LIFECYCLE)
            .unwrap()
            .markers
            .clone();
        (
            Pipelines::build(&taxonomy, &config.pipelines, "p").unwrap(),
            lifecycles,
        )
    }

    /// Two runs of `pre_merge`, stage `unit`: tests of 300, 200, 100 and 10 s (610 s per run).
    fn history(pipeline: &str) -> History {
        let mut lines = Vec::new();
        for run in 0..2 {
            lines.push(format!(
                r#"{{"record":"run_start","schema":1,"run_id":"r{run}","pipeline":"{pipeline}","started_at":"2026-03-0{}T12:00:00Z"}}"#,
                run + 1
            ));
            for (name, d) in [("a", 300.0), ("b", 200.0), ("c", 100.0), ("d", 10.0)] {
                lines.push(format!(
                    r#"{{"record":"test","schema":1,"run_id":"r{run}","nodeid":"t.py::{name}","outcome":"passed","duration_s":{d},"stage":"unit","finished_at":"2026-03-0{}T12:10:00Z"}}"#,
                    run + 1
                ));
            }
        }
        History::from_lines(lines.iter().map(String::as_str))
    }

    #[test]
    fn the_fewest_slowest_tests_move_to_the_next_lifecycle() {
        // 610 s against 8 minutes (480 s): 130 s to free, test a (300 s) is enough.
        let (p, l) = setup("[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = \"8m\"\n");
        let m = moves(&history("pre_merge"), &[0, 1], &p, &l);
        assert_eq!(
            m.iter()
                .map(|m| (m.nodeid.as_str(), m.from.as_str(), m.to.as_str()))
                .collect::<Vec<_>>(),
            [("t.py::a", "pre_merge", "post_merge")]
        );
        assert_eq!(
            m[0].evidence,
            "p95 5m in stage unit of pre_merge, whose p95 10m10s is over its budget 8m; \
             moving its 1 slowest test(s) frees 5m"
        );
        // 5 minutes: 310 s to free takes a and b.
        let (p, l) = setup("[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = \"5m\"\n");
        let names: Vec<String> = moves(&history("pre_merge"), &[0, 1], &p, &l)
            .into_iter()
            .map(|m| m.nodeid)
            .collect();
        assert_eq!(names, ["t.py::a", "t.py::b"]);
        // Within budget, no budget, or another pipeline's runs: nothing moves.
        let (p, l) = setup("[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = \"11m\"\n");
        assert!(moves(&history("pre_merge"), &[0, 1], &p, &l).is_empty());
        let (p, l) = setup("[tool.pytest-dynamo]\n");
        assert!(moves(&history("pre_merge"), &[0, 1], &p, &l).is_empty());
        let (p, l) = setup("[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = \"5m\"\n");
        assert!(moves(&history("nightly"), &[0, 1], &p, &l).is_empty());
    }
}

//! `--dynamo-plan`: what each stage would run, on which machine, for how
//! long as far as durations are known, and the tests no stage of any
//! pipeline ever selects (they never run in CI).

use std::collections::HashMap;
use std::fmt::Write as _;

use rayon::prelude::*;

use crate::selection::budgets::human;
use crate::selection::pipeline::{Pipeline, Pipelines};
use crate::selection::{self, FrameworkFilter};
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::Item;
use crate::taxonomy::{Taxonomy, HARDWARE, LIFECYCLE, TYPE};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub tests: usize,
    /// Tests with a known duration, and their sum in seconds.
    pub known: usize,
    pub seconds: f64,
}

impl Tally {
    fn add(&mut self, duration: Option<f64>) {
        self.tests += 1;
        if let Some(s) = duration {
            self.known += 1;
            self.seconds += s;
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.tests += other.tests;
        self.known += other.known;
        self.seconds += other.seconds;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub name: String,
    pub expr: String,
    pub machine: String,
    /// pytest options the stage runs with.
    pub options: Vec<String>,
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelinePlan {
    pub name: String,
    pub lifecycle: String,
    pub gating: Option<String>,
    pub stages: Vec<StagePlan>,
    /// Tests any shown stage selects, each once.
    pub total: Tally,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub pipelines: Vec<PipelinePlan>,
    /// Node id and its lifecycle, hardware and type markers.
    pub never: Vec<(String, Vec<String>)>,
    pub checked: usize,
}

/// What to show: pipelines, each with one stage or all of them.
pub struct Scope<'a> {
    pub shown: Vec<(&'a Pipeline, Option<usize>)>,
    pub all: &'a Pipelines,
    pub framework: Option<FrameworkFilter<'a>>,
}

fn stage_indices(p: &Pipeline, only: Option<usize>) -> Vec<usize> {
    only.map_or_else(|| (0..p.stages.len()).collect(), |i| vec![i])
}

/// Per shown pipeline: a tally per stage and the union.
type Counts = Vec<(Vec<Tally>, Tally)>;

fn empty_counts(scope: &Scope) -> Counts {
    scope
        .shown
        .iter()
        .map(|(p, only)| {
            (
                vec![Tally::default(); stage_indices(p, *only).len()],
                Tally::default(),
            )
        })
        .collect()
}

/// Plan the tests at `in_run` (those -m/-k left); look for never-selected
/// tests among the whole batch.
pub fn build<S: std::hash::BuildHasher + Sync>(
    taxonomy: &Taxonomy,
    scope: &Scope,
    items: &[Item],
    resolved: &[Resolution],
    in_run: &[usize],
    durations: &HashMap<String, f64, S>,
) -> Plan {
    let counts = in_run
        .par_iter()
        .fold(
            || empty_counts(scope),
            |mut acc, &i| {
                let duration = durations.get(&items[i].nodeid).copied();
                count(taxonomy, scope, &items[i], &resolved[i], duration, &mut acc);
                acc
            },
        )
        .reduce(|| empty_counts(scope), merge_counts);
    Plan {
        pipelines: pipeline_plans(scope, counts),
        never: never_selected(taxonomy, scope, items, resolved),
        checked: items.len(),
    }
}

/// Add one test to the tallies of the shown stages that select it.
fn count(
    taxonomy: &Taxonomy,
    scope: &Scope,
    item: &Item,
    r: &Resolution,
    duration: Option<f64>,
    acc: &mut Counts,
) {
    if scope
        .framework
        .as_ref()
        .is_some_and(|f| !selection::framework_keeps(f, r))
    {
        return;
    }
    for ((p, only), (stages, total)) in scope.shown.iter().zip(acc.iter_mut()) {
        if selection::lifecycle_reason(taxonomy, r, p.lifecycle_rank).is_some() {
            continue;
        }
        let mut any = false;
        for (slot, s) in stage_indices(p, *only).into_iter().enumerate() {
            if p.stages[s].expr.matches(item, r) {
                stages[slot].add(duration);
                any = true;
            }
        }
        if any {
            total.add(duration);
        }
    }
}

/// Two threads' tallies added up.
fn merge_counts(mut a: Counts, b: Counts) -> Counts {
    for ((sa, ta), (sb, tb)) in a.iter_mut().zip(b.iter()) {
        for (x, y) in sa.iter_mut().zip(sb) {
            x.merge(y);
        }
        ta.merge(tb);
    }
    a
}

/// The shown pipelines and stages with their tallies.
fn pipeline_plans(scope: &Scope, counts: Counts) -> Vec<PipelinePlan> {
    scope
        .shown
        .iter()
        .zip(counts)
        .map(|((p, only), (tallies, total))| PipelinePlan {
            name: p.name.clone(),
            lifecycle: p.lifecycle.clone(),
            gating: p.gating.as_ref().map(|g| g.text.clone()),
            stages: stage_indices(p, *only)
                .into_iter()
                .zip(tallies)
                .map(|(s, tally)| StagePlan {
                    name: p.stages[s].name.clone(),
                    expr: p.stages[s].expr.text.clone(),
                    machine: p.stages[s].machine.clone(),
                    options: p.stages[s].options.clone(),
                    tally,
                })
                .collect(),
            total,
        })
        .collect()
}

/// The tests of the whole batch no stage of any pipeline selects, with
/// the markers that say why.
fn never_selected(
    taxonomy: &Taxonomy,
    scope: &Scope,
    items: &[Item],
    resolved: &[Resolution],
) -> Vec<(String, Vec<String>)> {
    items
        .par_iter()
        .zip(resolved.par_iter())
        .filter(|(item, r)| {
            !scope.all.list.iter().any(|p| {
                selection::lifecycle_reason(taxonomy, r, p.lifecycle_rank).is_none()
                    && selection::first_stage(p, None, item, r).is_some()
            })
        })
        .map(|(item, r)| {
            let markers = shown_markers(taxonomy, r);
            (item.nodeid.clone(), markers)
        })
        .collect()
}

/// A never-selected test's lifecycle, hardware and type markers; a category
/// met by `satisfied_by` shows the marker that meets it.
fn shown_markers(taxonomy: &Taxonomy, r: &Resolution) -> Vec<String> {
    [LIFECYCLE, HARDWARE, TYPE]
        .iter()
        .flat_map(|c| {
            let own: Vec<String> = r.in_category(c).map(String::from).collect();
            if !own.is_empty() {
                return own;
            }
            taxonomy
                .category(c)
                .map(|cat| {
                    cat.satisfied_by
                        .iter()
                        .filter(|m| r.markers.contains_key(*m))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

fn duration(t: &Tally, have_durations: bool) -> String {
    if !have_durations || t.known == 0 {
        return "-".into();
    }
    if t.known == t.tests {
        human(t.seconds)
    } else {
        format!("{} ({}/{} known)", human(t.seconds), t.known, t.tests)
    }
}

/// The plan as the terminal shows it.
pub fn render(plan: &Plan, have_durations: bool) -> String {
    let mut out = String::new();
    for p in &plan.pipelines {
        let gating = p.gating.as_deref().unwrap_or("all");
        let _ = writeln!(
            out,
            "pipeline {} (tests marked {} or earlier; gating: {gating})",
            p.name, p.lifecycle
        );
        let mut rows = vec![[
            "stage".to_string(),
            "machine".into(),
            "tests".into(),
            "duration".into(),
            "expression".into(),
        ]];
        for s in &p.stages {
            rows.push([
                s.name.clone(),
                s.machine.clone(),
                s.tally.tests.to_string(),
                duration(&s.tally, have_durations),
                s.expr.clone(),
            ]);
        }
        if p.stages.len() > 1 {
            rows.push([
                "(pipeline)".into(),
                String::new(),
                p.total.tests.to_string(),
                duration(&p.total, have_durations),
                "each test once".into(),
            ]);
        }
        let widths: Vec<usize> = (0..5)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            // Padded by hand: a format width above u16::MAX panics.
            let mut line = String::new();
            for (c, (cell, w)) in r.iter().zip(&widths).take(4).enumerate() {
                line.push_str("  ");
                crate::analytics::render::text::pad(&mut line, cell, *w, c == 2);
            }
            let _ = writeln!(out, "{line}  {}", r[4]);
        }
        for s in p.stages.iter().filter(|s| !s.options.is_empty()) {
            let _ = writeln!(out, "  options of {}: {}", s.name, s.options.join(" "));
        }
    }
    if plan.never.is_empty() {
        let _ = writeln!(
            out,
            "every one of the {} collected tests is selected by some stage",
            plan.checked
        );
    } else {
        let _ = writeln!(
            out,
            "{} of {} collected tests are selected by no stage of any pipeline (they never run in CI):",
            plan.never.len(),
            plan.checked
        );
        for (nodeid, markers) in &plan.never {
            let _ = writeln!(out, "  {nodeid}  [{}]", markers.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::taxonomy::validate;
    use std::collections::HashSet;

    #[test]
    fn stages_are_counted_and_timed_and_orphans_listed() {
        let t = Taxonomy::builtin();
        let pipelines = Pipelines::build(&t, &Config::default().pipelines, "built-in").unwrap();
        let items = vec![
            Item::new("a.py::unit", &["pre_merge", "gpu_0", "unit"]),
            Item::new("a.py::both", &["pre_merge", "gpu_1", "integration", "e2e"]),
            Item::new("a.py::late", &["nightly", "gpu_1", "e2e"]),
            Item::new("a.py::perf", &["nightly", "gpu_1", "performance"]),
        ];
        let resolved: Vec<_> = items
            .iter()
            .map(|i| {
                validate::resolve(
                    &t,
                    i.marks.iter().map(|m| m.name.as_str()),
                    &HashSet::<String>::new(),
                )
            })
            .collect();
        let durations: HashMap<String, f64> = [
            ("a.py::unit".to_string(), 2.0),
            ("a.py::both".to_string(), 90.0),
        ]
        .into();
        let scope = Scope {
            shown: vec![(pipelines.find("pr").unwrap(), None)],
            all: &pipelines,
            framework: None,
        };
        let plan = build(&t, &scope, &items, &resolved, &[0, 1, 2, 3], &durations);
        let pr = &plan.pipelines[0];
        let tests: Vec<_> = pr.stages.iter().map(|s| s.tally.tests).collect();
        assert_eq!(tests, [1, 1, 1]);
        assert_eq!(pr.total.tests, 2);
        assert!((pr.total.seconds - 92.0).abs() < 1e-9);
        assert_eq!(
            plan.never,
            [(
                "a.py::perf".to_string(),
                vec!["nightly".into(), "gpu_1".into(), "performance".into()]
            )]
        );
        let text = render(&plan, true);
        assert!(
            text.contains("pipeline pre_merge (tests marked pre_merge or earlier; gating: all)"),
            "{text}"
        );
        assert!(
            text.contains("  unit           cpu          1  2.0s      unit"),
            "{text}"
        );
        assert!(
            text.contains("  (pipeline)                  2  1m 32s    each test once"),
            "{text}"
        );
        assert!(
            text.contains("1 of 4 collected tests are selected by no stage of any pipeline"),
            "{text}"
        );
        assert!(
            text.contains("  a.py::perf  [nightly, gpu_1, performance]"),
            "{text}"
        );
    }
}

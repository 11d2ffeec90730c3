//! `--dynamo-plan` against budgets: each shown pipeline's and stage's
//! estimated wall time (shards and GPU packing included), its budget, and
//! when over, the slowest tests to move to the next lifecycle.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::estimate::{Job, Moves, Setup, Stage};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::requirement;
use crate::gpu::rules::Rules;
use crate::parallel::{Placement, Resources};
use crate::selection;
use crate::selection::budgets::human;
use crate::selection::plan::Scope;
use crate::shards::Group;
use crate::taxonomy::marker::Item;
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::LIFECYCLE;

/// The stage option that makes a stage pack GPU tests.
pub const GPU_PARALLEL: &str = "--dynamo-gpu-parallel";

/// How the plan's stages run.
pub struct Runs {
    /// Machines per stage (`--dynamo-shard=K/N`: N).
    pub shards: usize,
    /// `--dynamo-gpu-parallel` on for this plan (every stage packs).
    pub gpu_parallel: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageBudget {
    pub name: String,
    pub machine: String,
    /// None: no recorded duration for any of its tests.
    pub wall: Option<f64>,
    pub tests: usize,
    pub known: usize,
    pub budget: Option<f64>,
    /// `min(stage budget, pipeline budget)`.
    pub limit: Option<f64>,
    /// How the wall time was estimated, e.g. "2 shards, GPU packing on 8 GPUs".
    pub how: String,
    pub moves: Option<Moves>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineBudget {
    pub name: String,
    pub budget: Option<f64>,
    /// The slowest stage (None when only one stage is shown, or none is known).
    pub wall: Option<(f64, String)>,
    pub stages: Vec<StageBudget>,
    /// The lifecycle over-budget tests move to (None: the pipeline's is the last).
    pub next_lifecycle: Option<String>,
}

fn placement(
    item: &Item,
    resolved: &Resolution,
    rules: &Rules,
    parallel: &crate::parallel::ParallelConfig,
) -> Result<Placement> {
    let req = requirement::of(item, resolved, rules)
        .map_err(|e| Error::config("--dynamo-plan", e, "give the VRAM marker a number of GiB"))?;
    Ok(Placement::of(req.gpus(), req.vram_gib, parallel))
}

/// The budgets of the shown pipelines (those with a budget, or all of them
/// when shards or GPU packing make a stage's wall time differ from its sum).
#[allow(clippy::too_many_lines)] // one pass per stage: gather, estimate, choose
pub fn build<S: std::hash::BuildHasher>(
    engine: &Engine,
    scope: &Scope,
    items: &[Item],
    resolved: &[Resolution],
    in_run: &[usize],
    durations: &HashMap<String, f64, S>,
    runs: &Runs,
) -> Result<Vec<PipelineBudget>> {
    let taxonomy = &engine.taxonomy;
    let config = &engine.config;
    let group: Group = config.shards.group;
    let mut rules: Option<Rules> = None;
    let mut out = Vec::new();
    for (p, only) in &scope.shown {
        let indices: Vec<usize> = only.map_or_else(|| (0..p.stages.len()).collect(), |i| vec![i]);
        let packs =
            |s: usize| runs.gpu_parallel || p.stages[s].options.iter().any(|o| o == GPU_PARALLEL);
        let has_budget =
            p.budget.is_some() || indices.iter().any(|&s| p.stages[s].budget.is_some());
        let shaped = runs.shards > 1 || indices.iter().any(|&s| packs(s));
        if !has_budget && !shaped {
            continue;
        }
        let next_lifecycle = taxonomy
            .category(LIFECYCLE)
            .and_then(|c| c.markers.get(p.lifecycle_rank + 1))
            .cloned();
        let mut stages = Vec::new();
        let mut gone: HashSet<String> = HashSet::new();
        for &s in &indices {
            let stage = &p.stages[s];
            let machine: Option<Resources> = if packs(s) {
                config
                    .machines
                    .get(&stage.machine)
                    .map(|m| m.resources(&config.parallel))
            } else {
                None
            };
            if machine.is_some() && rules.is_none() {
                let source = engine.source_name();
                rules = Some(Rules::new(&config.gpu, taxonomy, source)?.with_packages(
                    &config.packages,
                    &config.gpu,
                    taxonomy,
                    source,
                )?);
            }
            let mut jobs = Vec::new();
            for &i in in_run {
                let (item, r) = (&items[i], &resolved[i]);
                if scope
                    .framework
                    .as_ref()
                    .is_some_and(|f| !selection::framework_keeps(f, r))
                    || selection::lifecycle_reason(taxonomy, r, p.lifecycle_rank).is_some()
                    || !stage.expr.matches(item, r)
                {
                    continue;
                }
                let placement = match (&machine, &rules) {
                    (Some(_), Some(rules)) => placement(item, r, rules, &config.parallel)?,
                    _ => Placement::Cpu,
                };
                jobs.push(Job {
                    id: item.nodeid.clone(),
                    seconds: durations.get(&item.nodeid).copied(),
                    placement,
                });
            }
            let mut how = Vec::new();
            if runs.shards > 1 {
                how.push(format!("{} shards", runs.shards));
            }
            match (&machine, packs(s)) {
                (Some(m), _) => how.push(format!(
                    "GPU packing on {} GPU{} x {} GiB budget",
                    m.gpus.len(),
                    if m.gpus.len() == 1 { "" } else { "s" },
                    crate::gpu::requirement::number(m.gpus.first().map_or(0.0, |g| g.budget_gib))
                )),
                (None, true) => how.push(format!(
                    "no GPU packing: machine class {} is not described under [tool.pytest-dynamo.machines]",
                    stage.machine
                )),
                (None, false) => {}
            }
            let setup = Setup {
                shards: runs.shards.max(1),
                group,
                machine: machine.as_ref(),
            };
            let limit = match (stage.budget, p.budget) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let estimate = Stage::new(&jobs);
            let already: HashSet<&str> = gone.iter().map(String::as_str).collect();
            let wall = estimate.as_ref().map(|e| e.wall(&setup, &already).seconds);
            let moves = match (&estimate, wall, limit) {
                (Some(e), Some(w), Some(l)) if w > l && next_lifecycle.is_some() => {
                    let m = e.to_move(&setup, l, &already);
                    gone.extend(m.tests.iter().map(|t| t.0.clone()));
                    Some(m)
                }
                _ => None,
            };
            stages.push(StageBudget {
                name: stage.name.clone(),
                machine: stage.machine.clone(),
                wall,
                tests: jobs.len(),
                known: estimate.as_ref().map_or(0, |e| e.known),
                budget: stage.budget,
                limit,
                how: how.join(", "),
                moves,
            });
        }
        let wall = if indices.len() > 1 {
            stages
                .iter()
                .filter_map(|s| s.wall.map(|w| (w, s.name.clone())))
                .max_by(|a, b| a.0.total_cmp(&b.0))
        } else {
            None
        };
        out.push(PipelineBudget {
            name: p.name.clone(),
            budget: p.budget,
            wall,
            stages,
            next_lifecycle,
        });
    }
    Ok(out)
}

fn verdict(wall: Option<f64>, limit: Option<f64>) -> String {
    match (wall, limit) {
        (Some(w), Some(l)) if w > l => format!("OVER by {}", human(w - l)),
        (Some(_), Some(_)) => "ok".into(),
        (None, Some(_)) => "not estimated (no recorded durations)".into(),
        _ => String::new(),
    }
}

/// The budgets as the plan prints them, after the stage tables.
#[must_use]
pub fn render(budgets: &[PipelineBudget], have_durations: bool) -> String {
    let mut out = String::new();
    if budgets.is_empty() {
        return out;
    }
    if !have_durations {
        let _ = writeln!(
            out,
            "wall time against budgets: no durations file, nothing to estimate (--dynamo-durations, or .test_durations)"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "wall time against budgets (the stages of a pipeline run side by side; a test without a recorded duration counts as its stage's median):"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |s| format!("~{}", human(s)));
    let budget = |v: Option<f64>| v.map_or_else(|| "-".to_string(), human);
    for p in budgets {
        let mut rows: Vec<[String; 5]> = Vec::new();
        rows.push([
            format!("pipeline {}", p.name),
            String::new(),
            p.wall
                .as_ref()
                .map_or_else(String::new, |(w, _)| cell(Some(*w))),
            if p.budget.is_some() {
                budget(p.budget)
            } else {
                String::new()
            },
            match &p.wall {
                Some((w, slowest)) => {
                    let v = verdict(Some(*w), p.budget);
                    if v.is_empty() {
                        format!("slowest stage {slowest}")
                    } else {
                        format!("{v} (slowest stage {slowest})")
                    }
                }
                None => String::new(),
            },
        ]);
        for s in &p.stages {
            let mut note = if s.tests == 0 {
                "no test".to_string()
            } else {
                verdict(s.wall, s.limit)
            };
            if s.wall.is_some() && s.known < s.tests {
                let known = format!("{}/{} known", s.known, s.tests);
                note = if note.is_empty() {
                    known
                } else {
                    format!("{note}; {known}")
                };
            }
            if !s.how.is_empty() {
                note = if note.is_empty() {
                    s.how.clone()
                } else {
                    format!("{note}; {}", s.how)
                };
            }
            let shown_budget = match (s.budget, s.limit) {
                (Some(b), _) => budget(Some(b)),
                (None, Some(l)) => format!("({})", human(l)),
                (None, None) => "-".into(),
            };
            rows.push([
                format!("  {}", s.name),
                s.machine.clone(),
                cell(s.wall),
                shown_budget,
                note,
            ]);
        }
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let mut line = String::new();
            for (c, (text, w)) in r.iter().zip(&widths).enumerate() {
                line.push_str("  ");
                crate::analytics::render::text::pad(&mut line, text, *w, c == 2 || c == 3);
            }
            line.push_str("  ");
            line.push_str(&r[4]);
            let _ = writeln!(out, "{}", line.trim_end());
        }
        over_budget(&mut out, p);
    }
    out
}

/// The over-budget stages of one pipeline, each with the tests to move.
fn over_budget(out: &mut String, p: &PipelineBudget) {
    for s in &p.stages {
        let (Some(wall), Some(limit)) = (s.wall, s.limit) else {
            continue;
        };
        if wall <= limit {
            continue;
        }
        let Some(next) = &p.next_lifecycle else {
            let _ = writeln!(
                out,
                "  over budget: stage {} of {} (~{} > {}); {} is the last lifecycle, so no test can move to a later one: raise the budget, add shards, or make tests faster",
                s.name,
                p.name,
                human(wall),
                human(limit),
                p.name
            );
            continue;
        };
        let Some(m) = &s.moves else { continue };
        if m.enough {
            let _ = writeln!(
                out,
                "  over budget: stage {} of {} (~{} > {}): moving the {} slowest test{} to {next} brings it to ~{}:",
                s.name,
                p.name,
                human(wall),
                human(limit),
                m.tests.len(),
                if m.tests.len() == 1 { "" } else { "s" },
                human(m.after)
            );
        } else {
            let _ = writeln!(
                out,
                "  over budget: stage {} of {} (~{} > {}): even moving all {} tests with a recorded duration to {next} leaves ~{} (the tests without one count as the median):",
                s.name,
                p.name,
                human(wall),
                human(limit),
                m.tests.len(),
                human(m.after)
            );
        }
        let width = m
            .tests
            .iter()
            .map(|(_, d)| human(*d).len())
            .max()
            .unwrap_or(0);
        for (id, d) in &m.tests {
            let mut line = String::from("    ");
            crate::analytics::render::text::pad(&mut line, &human(*d), width, true);
            let _ = writeln!(out, "{line}  {id}");
        }
    }
}

//! `--dynamo-plan` against budgets: each shown pipeline's and stage's
//! estimated wall time (shards and GPU packing included), its budget, and
//! when over, the slowest tests to move to the next lifecycle.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::estimate::{Job, Moves, Setup, Stage};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::requirement;
use crate::gpu::Rules;
use crate::parallel::{Placement, Resources};
use crate::selection;
use crate::selection::budgets::human;
use crate::selection::pipeline::{self, Pipeline};
use crate::selection::plan::Scope;
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::Item;
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
pub fn build<S: std::hash::BuildHasher>(
    engine: &Engine,
    scope: &Scope,
    items: &[Item],
    resolved: &[Resolution],
    in_run: &[usize],
    durations: &HashMap<String, f64, S>,
    runs: &Runs,
) -> Result<Vec<PipelineBudget>> {
    let inputs = Inputs {
        engine,
        scope,
        items,
        resolved,
        in_run,
        durations,
        runs,
    };
    // The GPU rules are built once, by the first stage that packs.
    let mut rules: Option<Rules> = None;
    let mut out = Vec::new();
    for (p, only) in &scope.shown {
        if let Some(budget) = inputs.pipeline(p, *only, &mut rules)? {
            out.push(budget);
        }
    }
    Ok(out)
}

/// What every pipeline's estimate reads.
struct Inputs<'a, S> {
    engine: &'a Engine,
    scope: &'a Scope<'a>,
    items: &'a [Item],
    resolved: &'a [Resolution],
    in_run: &'a [usize],
    durations: &'a HashMap<String, f64, S>,
    runs: &'a Runs,
}

impl<S: std::hash::BuildHasher> Inputs<'_, S> {
    /// One pipeline's budgets; None when it is not shown (no budget, and
    /// neither shards nor packing change a stage's wall time).
    fn pipeline(
        &self,
        p: &Pipeline,
        only: Option<usize>,
        rules: &mut Option<Rules>,
    ) -> Result<Option<PipelineBudget>> {
        let indices: Vec<usize> = only.map_or_else(|| (0..p.stages.len()).collect(), |i| vec![i]);
        let packs = |s: usize| {
            self.runs.gpu_parallel || p.stages[s].options.iter().any(|o| o == GPU_PARALLEL)
        };
        let has_budget =
            p.budget.is_some() || indices.iter().any(|&s| p.stages[s].budget.is_some());
        let shaped = self.runs.shards > 1 || indices.iter().any(|&s| packs(s));
        if !has_budget && !shaped {
            return Ok(None);
        }
        let next_lifecycle = self
            .engine
            .taxonomy
            .category(LIFECYCLE)
            .and_then(|c| c.markers.get(p.lifecycle_rank + 1))
            .cloned();
        let mut stages = Vec::new();
        // The tests an earlier stage's moves took out of the pipeline.
        let mut gone: HashSet<String> = HashSet::new();
        for &s in &indices {
            stages.push(self.stage(p, s, packs(s), next_lifecycle.is_some(), rules, &mut gone)?);
        }
        let wall = if indices.len() > 1 {
            stages
                .iter()
                .filter_map(|s| s.wall.map(|w| (w, s.name.clone())))
                .max_by(|a, b| a.0.total_cmp(&b.0))
        } else {
            None
        };
        Ok(Some(PipelineBudget {
            name: p.name.clone(),
            budget: p.budget,
            wall,
            stages,
            next_lifecycle,
        }))
    }

    /// One stage: its jobs, its estimated wall time against its limit, and
    /// the tests to move when over (when a later lifecycle exists).
    fn stage(
        &self,
        p: &Pipeline,
        index: usize,
        packs: bool,
        can_move: bool,
        rules: &mut Option<Rules>,
        gone: &mut HashSet<String>,
    ) -> Result<StageBudget> {
        let config = &self.engine.config;
        let stage = &p.stages[index];
        let machine: Option<Resources> = if packs {
            config
                .machines
                .get(&stage.machine)
                .map(|m| m.resources(&config.parallel))
        } else {
            None
        };
        if machine.is_some() && rules.is_none() {
            *rules = Some(self.rules()?);
        }
        let jobs = self.jobs(p, stage, machine.as_ref().and(rules.as_ref()))?;
        let setup = Setup {
            shards: self.runs.shards.max(1),
            group: config.shards.group,
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
            (Some(e), Some(w), Some(l)) if w > l && can_move => {
                let chosen = e.to_move(&setup, l, &already);
                gone.extend(chosen.tests.iter().map(|t| t.0.clone()));
                Some(chosen)
            }
            _ => None,
        };
        Ok(StageBudget {
            name: stage.name.clone(),
            machine: stage.machine.clone(),
            wall,
            tests: jobs.len(),
            known: estimate.as_ref().map_or(0, |e| e.known),
            budget: stage.budget,
            limit,
            how: how(self.runs.shards, machine.as_ref(), packs, &stage.machine),
            moves,
        })
    }

    /// The GPU rules the packing places tests by.
    fn rules(&self) -> Result<Rules> {
        let (config, taxonomy) = (&self.engine.config, &self.engine.taxonomy);
        let source = self.engine.source_name();
        Rules::new(&config.gpu, taxonomy, source)?.with_packages(
            &config.packages,
            &config.gpu,
            taxonomy,
            source,
        )
    }

    /// The run's tests the stage selects in this pipeline, with their
    /// durations and (on a packing machine: `rules` given) their GPU needs.
    fn jobs(
        &self,
        p: &Pipeline,
        stage: &pipeline::Stage,
        rules: Option<&Rules>,
    ) -> Result<Vec<Job>> {
        let taxonomy = &self.engine.taxonomy;
        let mut jobs = Vec::new();
        for &i in self.in_run {
            let (item, r) = (&self.items[i], &self.resolved[i]);
            if self
                .scope
                .framework
                .as_ref()
                .is_some_and(|f| !selection::framework_keeps(f, r))
                || selection::lifecycle_reason(taxonomy, r, p.lifecycle_rank).is_some()
                || !stage.expr.matches(item, r)
            {
                continue;
            }
            let placement = match rules {
                Some(rules) => placement(item, r, rules, &self.engine.config.parallel)?,
                None => Placement::Cpu,
            };
            jobs.push(Job {
                id: item.nodeid.clone(),
                seconds: self.durations.get(&item.nodeid).copied(),
                placement,
            });
        }
        Ok(jobs)
    }
}

/// How a stage's wall time was estimated: shards, GPU packing (or why not).
fn how(shards: usize, machine: Option<&Resources>, packs: bool, class: &str) -> String {
    let mut how = Vec::new();
    if shards > 1 {
        how.push(format!("{shards} shards"));
    }
    match (machine, packs) {
        (Some(m), _) => how.push(format!(
            "GPU packing on {} GPU{} x {} GiB budget",
            m.gpus.len(),
            if m.gpus.len() == 1 { "" } else { "s" },
            crate::gpu::requirement::number(m.gpus.first().map_or(0.0, |g| g.budget_gib))
        )),
        (None, true) => how.push(format!(
            "no GPU packing: machine class {class} is not described under [tool.pytest-dynamo.machines]"
        )),
        (None, false) => {}
    }
    how.join(", ")
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
    for p in budgets {
        let mut rows: Vec<[String; 5]> = vec![pipeline_row(p)];
        rows.extend(p.stages.iter().map(stage_row));
        write_rows(&mut out, &rows);
        over_budget(&mut out, p);
    }
    out
}

/// An estimated wall time's cell: `~3m 05s`, or `-`.
fn wall_cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("~{}", human(s)))
}

fn budget_cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), human)
}

/// The pipeline's row: its slowest stage against its budget.
fn pipeline_row(p: &PipelineBudget) -> [String; 5] {
    [
        format!("pipeline {}", p.name),
        String::new(),
        p.wall
            .as_ref()
            .map_or_else(String::new, |(w, _)| wall_cell(Some(*w))),
        if p.budget.is_some() {
            budget_cell(p.budget)
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
    ]
}

/// A stage's row: its wall time, its budget (the pipeline's in
/// parentheses), the verdict and how it was estimated.
fn stage_row(s: &StageBudget) -> [String; 5] {
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
        (Some(b), _) => budget_cell(Some(b)),
        (None, Some(l)) => format!("({})", human(l)),
        (None, None) => "-".into(),
    };
    [
        format!("  {}", s.name),
        s.machine.clone(),
        wall_cell(s.wall),
        shown_budget,
        note,
    ]
}

/// The rows as a table: the first four columns padded (times to the
/// right), the note last.
fn write_rows(out: &mut String, rows: &[[String; 5]]) {
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, (text, w)) in r.iter().zip(&widths).enumerate() {
            line.push_str("  ");
            crate::analytics::render::text::pad(&mut line, text, *w, c == 2 || c == 3);
        }
        line.push_str("  ");
        line.push_str(&r[4]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
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

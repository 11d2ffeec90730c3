//! `Batch`, the collected items of one run as Python sees them: every one
//! of its methods, each a whole-batch call into the core (validation,
//! selection, hardware, records, budgets, GPU-parallel needs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;

use crate::bindings::convert::ConfigError;
use crate::bindings::gpu::{GpuRules, Hardware, PyInventory, VramBudget};
use crate::bindings::parallel_run::GpuNeeds;
use crate::bindings::pipeline::{Pipelines, Selection};
use crate::bindings::records::{CollectedFacts, FactsTable, FlakyProblem, RunPolicy};
use crate::bindings::shards::ShardPlan;
use crate::bindings::validation::Validation;
use crate::clock::Date;
use crate::engine;
use crate::error::Error;
use crate::gpu::requirement::{self, Requirements};
use crate::gpu::Rules;
use crate::parallel::Placement;
use crate::policy::retries::Retrier;
use crate::records::{self, Kept, Selected};
use crate::selection::budgets;
use crate::selection::plan;
use crate::selection::{self, Reason};
use crate::shards::packed::{self, Packed};
use crate::taxonomy::marker_args;
use crate::taxonomy::validate::{self, Resolution};
use crate::taxonomy::Groups;
use crate::taxonomy::Item;

/// The collected items of one run, their markers resolved once.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Batch {
    pub engine: Arc<engine::Engine>,
    pub items: Arc<Vec<Item>>,
    pub resolved: Arc<Vec<Resolution>>,
    /// The groups of alike tests the resolution was worked out for, kept
    /// for the later once-per-group work (packages, GPU requirements).
    pub groups: Arc<Groups>,
}

#[pymethods]
impl Batch {
    /// Split the tests at `positions` (batch indices, in order; None: all)
    /// into `count` shards whose loads are makespans on the machine class of
    /// `pipeline`'s `stage` (GPU tests packed as `--dynamo-gpu-parallel`
    /// runs them). Raises `ConfigError` when the stage's machine class is not
    /// described under `[machines]`, or for a bad durations file or VRAM marker.
    #[pyo3(signature = (positions, count, group, pipeline, stage, durations=None))]
    #[allow(clippy::too_many_arguments)]
    fn partition_packed(
        &self,
        py: Python<'_>,
        positions: Option<Vec<usize>>,
        count: usize,
        group: &str,
        pipeline: &str,
        stage: &str,
        durations: Option<PathBuf>,
    ) -> PyResult<ShardPlan> {
        let group = crate::bindings::shards::shard_group(group, count)?;
        let engine = &self.engine;
        let source = engine.source_name();
        let config = &engine.config;
        let pipelines = crate::selection::pipeline::Pipelines::build(
            &engine.taxonomy,
            &config.pipelines,
            source,
        )?;
        let (p, s) = pipelines.find_stage(pipeline, stage)?;
        let class = &p.stages[s].machine;
        let Some(machine) = config.machines.get(class) else {
            return Err(Error::config(
                source,
                format!(
                    "the shards of stage {stage} balance by summed durations: its machine class {class} is not described, so GPU packing cannot be estimated"
                ),
                format!(
                    "describe it: [{}.machines.{class}] gpus = 8, gpu_memory_gib = 80",
                    crate::config::TABLE
                ),
            )
            .into());
        };
        let resources = machine.resources(&config.parallel);
        let rules = Rules::new(&config.gpu, &engine.taxonomy, source)?.with_packages(
            &config.packages,
            &config.gpu,
            &engine.taxonomy,
            source,
        )?;
        let positions = positions.unwrap_or_else(|| (0..self.items.len()).collect());
        if let Some(bad) = positions.iter().find(|p| **p >= self.items.len()) {
            return Err(PyValueError::new_err(format!(
                "position {bad} is outside the batch of {} tests",
                self.items.len()
            )));
        }
        let inner = py.detach(|| {
            let known = match &durations {
                Some(path) => records::read_durations(path)?,
                None => BTreeMap::new(),
            };
            let mut tests = Vec::with_capacity(positions.len());
            for &i in &positions {
                let item = &self.items[i];
                let req = requirement::of(item, &self.resolved[i], &rules).map_err(|e| {
                    Error::config(source, e, "give the VRAM marker a number of GiB")
                })?;
                tests.push(Packed {
                    id: item.nodeid.as_str(),
                    seconds: known.get(&item.nodeid).copied(),
                    placement: Placement::of(req.gpus(), req.vram_gib, &config.parallel),
                });
            }
            Ok::<_, Error>(packed::partition(&tests, count, group, &resources))
        })?;
        Ok(ShardPlan { inner })
    }

    fn __len__(&self) -> usize {
        self.items.len()
    }

    /// Apply the marker rules to every item. `retrier` names the plugin
    /// that retries flaky tests (None: ours), whose arguments `flaky` takes.
    #[pyo3(signature = (retrier=None))]
    fn validate(&self, py: Python<'_>, retrier: Option<&str>) -> PyResult<Validation> {
        let Some(retrier) = Retrier::named(retrier) else {
            return Err(PyValueError::new_err(format!(
                "unknown retrier {retrier:?}: rerunfailures, flaky or None"
            )));
        };
        let engine = &self.engine;
        let inner = py.detach(|| {
            let mut v = validate::validate_resolved(&engine.taxonomy, &self.items, &self.resolved);
            let vram = engine.config.gpu.vram_marker.as_str();
            marker_args::add_to(&mut v, &engine.taxonomy, vram, retrier, &self.items);
            v
        });
        Ok(Validation { inner })
    }

    /// Each test whose `flaky` marker the plugin named `retrier`
    /// (rerunfailures or flaky) cannot use.
    fn flaky_problems(&self, py: Python<'_>, retrier: &str) -> PyResult<Vec<FlakyProblem>> {
        let Some(retrier) = Retrier::named(Some(retrier)) else {
            return Err(PyValueError::new_err(format!(
                "unknown retrier {retrier:?}: rerunfailures or flaky"
            )));
        };
        let problems = py.detach(|| marker_args::flaky_problems(retrier, &self.items));
        Ok(problems.into_iter().map(FlakyProblem::from).collect())
    }

    /// The packages the batch's markers need (frameworks, `[packages]`), to
    /// look up once each.
    fn framework_packages(&self, rules: &GpuRules) -> Vec<String> {
        // The batch's distinct marker names first: a suite has thousands of
        // tests and a handful of names; alike tests (a group) share theirs.
        let mut names: foldhash::HashSet<&str> = foldhash::HashSet::default();
        for &i in &self.groups.first {
            names.extend(self.resolved[i].markers.keys().map(String::as_str));
            names.extend(self.items[i].marks.iter().map(|m| m.name.as_str()));
        }
        let mut out: Vec<String> = names
            .into_iter()
            .filter_map(|name| rules.inner.packages.get(name))
            .flatten()
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        out.sort();
        out
    }

    /// The tests a VRAM budget of `max_gib` leaves out: those whose VRAM
    /// marker exceeds it, and GPU tests without one. Raises `ConfigError`
    /// for a VRAM marker without a number.
    fn vram_budget(&self, py: Python<'_>, rules: &GpuRules, max_gib: f64) -> PyResult<VramBudget> {
        let reqs = self.requirements(py, rules)?;
        let (mut over, mut unknown) = (Vec::new(), Vec::new());
        for position in 0..self.items.len() {
            let req = reqs.get(position);
            match req.vram_gib {
                Some(gib) if gib > max_gib => over.push(position),
                None if req.gpus() >= 1 => unknown.push(position),
                _ => {}
            }
        }
        Ok(VramBudget { over, unknown })
    }

    /// Decide for every test at once against the inventory and the packages
    /// found missing. Raises `ConfigError` for a VRAM marker without a number.
    fn hardware(
        &self,
        py: Python<'_>,
        rules: &GpuRules,
        inventory: &PyInventory,
        missing_packages: Vec<String>,
    ) -> PyResult<Hardware> {
        let reqs = self.requirements(py, rules)?;
        let missing: HashSet<String> = missing_packages.into_iter().collect();
        let (inv, rules) = (&inventory.inner, &rules.inner);
        Ok(py.detach(|| {
            // Once per distinct requirement, then a number per test.
            let verdicts = crate::gpu::decide_all(&reqs.distinct, inv, rules, &missing);
            let (mut positions, mut which) = (Vec::new(), Vec::new());
            let mut requirements = HashMap::new();
            for (position, &r) in reqs.of_item.iter().enumerate() {
                if let Some(n) = verdicts.of[r] {
                    positions.push(position);
                    which.push(n);
                } else if reqs.distinct[r].marked_gpus() >= 1 {
                    // Audited: a gpu_N test this machine runs.
                    let nodeid = self.items[position].nodeid.clone();
                    requirements.insert(nodeid, reqs.distinct[r].clone());
                }
            }
            Hardware {
                reasons: verdicts.reasons,
                positions,
                which,
                requirements: Arc::new(requirements),
            }
        }))
    }

    /// Every test's GPU need, from its `gpu_N` and VRAM markers. Raises
    /// `ConfigError` for a VRAM marker without a number.
    fn gpu_needs(&self, py: Python<'_>, rules: &GpuRules) -> PyResult<GpuNeeds> {
        let reqs = self.requirements(py, rules)?;
        let all = 0..self.items.len();
        let gpus = all.clone().map(|i| reqs.get(i).gpus()).collect();
        let vram_gib = all.map(|i| reqs.get(i).vram_gib).collect();
        Ok(GpuNeeds { gpus, vram_gib })
    }

    /// Select for a pipeline (and stage) and a framework among the tests
    /// pytest still runs: `positions` holds their batch indices in their
    /// order (None: the whole batch, in order).
    #[pyo3(signature = (pipelines, pipeline, stage, framework, positions=None))]
    fn select(
        &self,
        py: Python<'_>,
        pipelines: PyRef<'_, Pipelines>,
        pipeline: Option<&str>,
        stage: Option<&str>,
        framework: Option<&str>,
        positions: Option<Vec<usize>>,
    ) -> PyResult<Selection> {
        let req = pipelines.request(pipeline, stage, framework)?;
        let positions = in_run(self, positions)?;
        let taxonomy = &self.engine.taxonomy;
        let selection = py.detach(|| {
            let verdicts =
                selection::select(taxonomy, &req, &self.items, &self.resolved, &positions);
            let mut keep = Vec::with_capacity(verdicts.len());
            let mut kept = Vec::new();
            let mut counts: HashMap<Reason, usize> = HashMap::new();
            let mut non_gating = Vec::new();
            for (v, &at) in verdicts.iter().zip(&positions) {
                keep.push(v.reason.is_none());
                if let Some(r) = v.reason {
                    *counts.entry(r).or_default() += 1;
                } else {
                    kept.push(Kept {
                        position: at,
                        stage: v.stage,
                        gating: v.gating,
                    });
                    if !v.gating {
                        non_gating.push(self.items[at].nodeid.clone());
                    }
                }
            }
            let counts = Reason::ALL
                .iter()
                .filter_map(|r| counts.get(r).map(|n| (r.key(), *n)))
                .collect();
            let stage_names = req
                .pipeline
                .map(|p| p.stages.iter().map(|s| s.name.clone()).collect())
                .unwrap_or_default();
            // The pipeline's own words for its non-gating tests, in the
            // summary, the records and pytest's last line alike.
            let non_gating_reason = req.pipeline.and_then(|p| {
                let gating = p.gating.as_ref()?;
                Some(format!(
                    "non-gating in the {} pipeline (gating: {})",
                    p.name, gating.text
                ))
            });
            Selection {
                keep,
                counts,
                non_gating,
                kept: Arc::new(Selected {
                    stage_names,
                    kept,
                    non_gating: non_gating_reason,
                }),
                items: Arc::clone(&self.items),
            }
        });
        Ok(selection)
    }

    /// The `--dynamo-plan` text for one pipeline (and stage) or, with
    /// `pipeline` None, for all of them. `positions` are the batch indices of
    /// the tests -m/-k left (None: all); `durations` a pytest-split durations
    /// file. Raises `ConfigError`.
    /// `shards`: machines per stage (`--dynamo-shard=K/N`'s N);
    /// `gpu_parallel`: every stage packs GPU tests (`--dynamo-gpu-parallel`).
    /// Budgets are checked against wall times estimated that way.
    #[pyo3(signature = (pipelines, pipeline, stage, framework, positions=None, durations=None, *, shards=1, gpu_parallel=false))]
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        py: Python<'_>,
        pipelines: PyRef<'_, Pipelines>,
        pipeline: Option<&str>,
        stage: Option<&str>,
        framework: Option<&str>,
        positions: Option<Vec<usize>>,
        durations: Option<PathBuf>,
        shards: usize,
        gpu_parallel: bool,
    ) -> PyResult<String> {
        let req = pipelines.request(pipeline, stage, framework)?;
        let positions = in_run(self, positions)?;
        let shown = match req.pipeline {
            Some(p) => vec![(p, req.stage)],
            None => pipelines.inner.list.iter().map(|p| (p, None)).collect(),
        };
        let scope = plan::Scope {
            shown,
            all: &pipelines.inner,
            framework: req.framework,
        };
        let taxonomy = &self.engine.taxonomy;
        let text = py.detach(|| {
            let known = match &durations {
                Some(path) => records::read_durations(path)?.into_iter().collect(),
                None => HashMap::new(),
            };
            let plan = plan::build(
                taxonomy,
                &scope,
                &self.items,
                &self.resolved,
                &positions,
                &known,
            );
            let runs = budgets::plan::Runs {
                shards,
                gpu_parallel,
            };
            let budgets = budgets::plan::build(
                &self.engine,
                &scope,
                &self.items,
                &self.resolved,
                &positions,
                &known,
                &runs,
            )?;
            let mut text = plan::render(&plan, durations.is_some());
            text.push_str(&budgets::plan::render(&budgets, durations.is_some()));
            Ok::<_, Error>(text)
        })?;
        Ok(text)
    }

    /// The facts of the tests `nodeids` names, for their records, at once,
    /// with what collection must know before any test runs. `selection` is
    /// the run's `Batch.select` result (None: no pipeline or framework
    /// selected): each kept test's stage and gating; `retries` is False
    /// when pytest-rerunfailures retries instead. Raises `ValueError` for a
    /// selection made over another batch.
    #[pyo3(signature = (policy, nodeids, selection, default_reruns, retries))]
    fn record_facts(
        &self,
        py: Python<'_>,
        policy: &RunPolicy,
        nodeids: Vec<String>,
        selection: Option<&Selection>,
        default_reruns: u32,
        retries: bool,
    ) -> PyResult<CollectedFacts> {
        let policy = records::FactsPolicy {
            engine: Arc::clone(&self.engine),
            owners: Arc::clone(&policy.owners),
            quarantine: Arc::clone(&policy.quarantine),
            today: Date::today(),
            default_reruns,
            retries,
        };
        if selection.is_some_and(|s| !Arc::ptr_eq(&s.items, &self.items)) {
            return Err(PyValueError::new_err(
                "the selection was made over another batch: pass this batch's own Batch.select result",
            ));
        }
        let (items, resolved) = (Arc::clone(&self.items), Arc::clone(&self.resolved));
        let selected = selection.map(|s| Arc::clone(&s.kept));
        let (inner, checks) = py.detach(|| {
            records::FactsTable::new(policy, items, resolved, nodeids, selected.as_deref())
        });
        CollectedFacts::new(
            py,
            FactsTable {
                inner: Arc::new(inner),
            },
            checks,
        )
    }
}

/// The batch positions of the tests pytest still runs: `positions` as given
/// (checked), or the whole batch in order when None.
fn in_run(batch: &Batch, positions: Option<Vec<usize>>) -> PyResult<Vec<usize>> {
    let Some(positions) = positions else {
        return Ok((0..batch.items.len()).collect());
    };
    if let Some(bad) = positions.iter().find(|p| **p >= batch.items.len()) {
        return Err(PyIndexError::new_err(format!(
            "position {bad} is outside the batch of {} tests",
            batch.items.len()
        )));
    }
    Ok(positions)
}

impl Batch {
    /// Every test's GPU requirement, once per group of alike tests; a
    /// `ConfigError` listing every test whose VRAM marker has no number.
    fn requirements(&self, py: Python<'_>, rules: &GpuRules) -> PyResult<Requirements> {
        let rules = &rules.inner;
        py.detach(|| requirement::of_batch(&self.items, &self.resolved, &self.groups, rules))
            .map_err(|errors| ConfigError::new_err(errors.join("\n")))
    }
}

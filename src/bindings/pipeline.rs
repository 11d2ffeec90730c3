//! The Python face of pipelines, stages and frameworks: the run's pipelines
//! built once from the engine, and selection and the plan computed over the
//! whole batch in one call each (the GIL released while Rust works). Tests
//! are named by their batch position, so no node id crosses the boundary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::engine;
use crate::error::Error;
use crate::records::Selected;
use crate::selection::changes;
use crate::selection::pipeline;
use crate::selection::{Agnostic, Frameworks};
use crate::selection::{FrameworkFilter, Request};
use crate::taxonomy::Item;

/// The pipelines, stages and framework rules of one run.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Pipelines {
    pub(crate) engine: Arc<engine::Engine>,
    pub(crate) inner: Arc<pipeline::Pipelines>,
    pub(crate) frameworks: Arc<Frameworks>,
}

/// Which of the tests handed to `Batch.select` are kept, and why not.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Selection {
    pub(crate) keep: Vec<bool>,
    pub(crate) counts: Vec<(&'static str, usize)>,
    pub(crate) non_gating: Vec<String>,
    /// The kept tests' stages and gating: `Batch.record_facts` takes them
    /// from here, so they do not go through Python and back.
    pub(crate) kept: Arc<Selected>,
    /// The batch's items the positions in `kept` index: only that batch's
    /// `record_facts` may read them.
    pub(crate) items: Arc<Vec<Item>>,
}

/// A stage of a pipeline, as configured.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
#[derive(Clone)]
pub struct StageInfo {
    pub name: String,
    /// The `-m` expression that selects its tests.
    pub expression: String,
    /// The machine it runs on (free text from the configuration).
    pub machine: String,
}

/// A pipeline, as configured.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct PipelineInfo {
    pub name: String,
    pub aliases: Vec<String>,
    /// The lifecycle marker its tests carry.
    pub lifecycle: String,
    /// The expression of the tests whose failures fail the run; None: all.
    pub gating: Option<String>,
    pub description: String,
    pub stages: Vec<StageInfo>,
}

/// A pipeline and stage as named, checked and resolved.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct ResolvedStage {
    /// The canonical pipeline name (an alias resolved).
    pub pipeline: String,
    pub stage: Option<String>,
}

/// The framework `auto` chose from the changed files, and why.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct FrameworkChoice {
    /// None: every framework.
    pub framework: Option<String>,
    pub why: String,
}

impl Pipelines {
    pub(crate) fn request<'a>(
        &'a self,
        pipeline: Option<&str>,
        stage: Option<&str>,
        framework: Option<&'a str>,
    ) -> Result<Request<'a>, Error> {
        let (pipeline, stage) = match (pipeline, stage) {
            (None, None) => (None, None),
            (None, Some(s)) => {
                return Err(Error::config(
                    "--dynamo-stage",
                    format!("the stage '{s}' was given without a pipeline"),
                    "name the pipeline too: --dynamo-pipeline=NAME (or dynamo_pipeline, DYNAMO_PIPELINE)",
                ))
            }
            (Some(p), None) => (Some(self.inner.find(p)?), None),
            (Some(p), Some(s)) => {
                let (p, i) = self.inner.find_stage(p, s)?;
                (Some(p), Some(i))
            }
        };
        Ok(Request {
            pipeline,
            stage,
            framework: framework.map(|name| FrameworkFilter {
                name,
                agnostic: self.frameworks.agnostic,
            }),
        })
    }
}

#[pymethods]
impl Pipelines {
    /// Every pipeline and its stages.
    fn describe(&self) -> Vec<PipelineInfo> {
        self.inner
            .list
            .iter()
            .map(|p| PipelineInfo {
                name: p.name.clone(),
                aliases: p.aliases.clone(),
                lifecycle: p.lifecycle.clone(),
                gating: p.gating.as_ref().map(|g| g.text.clone()),
                description: p.description.clone(),
                stages: p
                    .stages
                    .iter()
                    .map(|s| StageInfo {
                        name: s.name.clone(),
                        expression: s.expr.text.clone(),
                        machine: s.machine.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The canonical pipeline name (aliases resolved) and the stage, checked.
    /// An unknown one raises `ConfigError` listing the known ones.
    #[pyo3(signature = (pipeline, stage=None))]
    fn resolve(&self, pipeline: &str, stage: Option<&str>) -> PyResult<ResolvedStage> {
        let req = self.request(Some(pipeline), stage, None)?;
        let p = req.pipeline.expect("a pipeline was named");
        Ok(ResolvedStage {
            pipeline: p.name.clone(),
            stage: req.stage.map(|i| p.stages[i].name.clone()),
        })
    }

    /// A framework name given by `source` (a flag or variable), checked
    /// against the framework markers of the taxonomy.
    fn framework(&self, name: &str, source: &str) -> PyResult<String> {
        Ok(self.frameworks.check(&self.engine.taxonomy, source, name)?)
    }

    /// A framework named by the environment variable `var`, one that
    /// `[tool.pytest-dynamo.frameworks] env` lists; a value that is no
    /// framework raises `ConfigError` naming the variable, value and key.
    fn framework_from_env(&self, var: &str, value: &str) -> PyResult<String> {
        Ok(self
            .frameworks
            .check_env(&self.engine.taxonomy, var, value)?)
    }

    /// The environment variable that names the framework, if the
    /// configuration reads one (`[tool.pytest-dynamo.frameworks] env`).
    #[getter]
    fn framework_env(&self) -> Option<String> {
        self.frameworks.named_env.clone()
    }

    /// The environment variable that gives the default framework, if any.
    #[getter]
    fn default_framework_env(&self) -> Option<String> {
        self.frameworks.default_env.clone()
    }

    /// The pytest options of a stage (`options = [...]`); raises
    /// `ConfigError` for an unknown pipeline or stage.
    fn stage_options(&self, pipeline: &str, stage: &str) -> PyResult<Vec<String>> {
        let (p, i) = self.inner.find_stage(pipeline, stage)?;
        Ok(p.stages[i].options.clone())
    }

    /// The configured default framework (`[tool.pytest-dynamo.frameworks] default`).
    #[getter]
    fn default_framework(&self) -> Option<String> {
        self.frameworks.default.clone()
    }

    /// What happens to tests without a framework marker: `keep` or `drop`.
    #[getter]
    fn agnostic(&self) -> &'static str {
        match self.frameworks.agnostic {
            Agnostic::Keep => "keep",
            Agnostic::Drop => "drop",
        }
    }

    /// `auto`: run `git diff --name-only BASE...HEAD` in `rootdir` and choose
    /// the one framework the changes touch, else `default` (`(name, where it
    /// came from)`, or None for all).
    fn changed_framework(
        &self,
        py: Python<'_>,
        rootdir: PathBuf,
        base: &str,
        default: Option<(String, String)>,
    ) -> PyResult<FrameworkChoice> {
        let choice = py.detach(|| {
            let changed = changes::changed_files(&rootdir, base)?;
            let default = default.as_ref().map(|(f, w)| (f.as_str(), w.as_str()));
            Ok::<_, Error>(self.frameworks.choose(&changed, default))
        })?;
        Ok(FrameworkChoice {
            framework: choice.framework,
            why: choice.why,
        })
    }
}

#[pymethods]
impl Selection {
    /// One flag per test handed in, in order: True to run it.
    fn keep(&self) -> Vec<bool> {
        self.keep.clone()
    }

    /// One entry per kept test, in order: the first stage that selects it
    /// (None without a pipeline).
    fn stages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // One string object per stage, shared by every test in it.
        let names: Vec<Bound<'py, PyString>> = self
            .kept
            .stage_names
            .iter()
            .map(|n| PyString::new(py, n))
            .collect();
        let none = py.None().into_bound(py);
        let entries = self.kept.kept.iter().map(|k| match k.stage {
            Some(i) => names[i].clone().into_any(),
            None => none.clone(),
        });
        PyList::new(py, entries)
    }

    /// Deselected tests by reason: `lifecycle`, `no_lifecycle`, `stage`, `framework`.
    fn counts(&self) -> HashMap<&'static str, usize> {
        self.counts.iter().copied().collect()
    }

    /// Node ids of kept tests that do not gate the pipeline.
    fn non_gating(&self) -> Vec<String> {
        self.non_gating.clone()
    }

    /// Why the tests `non_gating` names do not gate:
    /// `non-gating in the NAME pipeline (gating: EXPRESSION)`; None without
    /// a pipeline that has a gating expression.
    #[getter]
    fn non_gating_reason(&self) -> Option<String> {
        self.kept.non_gating.clone()
    }

    /// How many of the tests handed in are kept.
    #[getter]
    fn selected(&self) -> usize {
        self.keep.iter().filter(|k| **k).count()
    }
}

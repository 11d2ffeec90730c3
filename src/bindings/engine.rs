//! The Python face of the engine: load the configuration, list the markers,
//! take the collected items in one batch and validate them.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bindings::convert::{self, PyItem};
use crate::bindings::pytest::collect;
use crate::engine;
use crate::policy::retries::Retrier;
use crate::taxonomy::marker::Item;
use crate::taxonomy::marker_args;
use crate::taxonomy::validate::{self, Resolution};
use crate::taxonomy::validation_report;

/// The taxonomy and configuration of one pytest run.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Engine {
    pub inner: Arc<engine::Engine>,
}

/// The collected items of one run, their markers resolved once.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Batch {
    pub engine: Arc<engine::Engine>,
    pub items: Arc<Vec<Item>>,
    pub resolved: Arc<Vec<Resolution>>,
}

/// The outcome of the collection-time rules.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Validation {
    pub inner: validate::Validation,
}

#[pymethods]
impl Engine {
    /// Load `[tool.pytest-dynamo]` from the rootdir's pyproject.toml, or the
    /// file `config_file` names. Raises `ConfigError` with the key and the fix.
    #[staticmethod]
    #[pyo3(signature = (rootdir, config_file=None))]
    fn load(py: Python<'_>, rootdir: PathBuf, config_file: Option<PathBuf>) -> PyResult<Self> {
        let inner = py.detach(|| engine::Engine::load(&rootdir, config_file.as_deref()))?;
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }

    /// The built-in taxonomy and defaults, reading no file.
    #[staticmethod]
    fn builtin() -> PyResult<Self> {
        Ok(Engine {
            inner: Arc::new(engine::Engine::builtin()?),
        })
    }

    /// The file the configuration came from, or None for the built-in defaults.
    #[getter]
    fn source(&self) -> Option<String> {
        self.inner.source.clone()
    }

    /// Why the configuration is not the rootdir's own (a nested pytest root
    /// using the nearest table above it), or None.
    #[getter]
    fn note(&self) -> Option<String> {
        self.inner.note.clone()
    }

    /// What `--dynamo-shard` keeps together: "test", "class" or "module"
    /// (`[tool.pytest-dynamo.shards] group`).
    #[getter]
    fn shard_group(&self) -> &'static str {
        self.inner.config.shards.group.name()
    }

    /// Every marker of the taxonomy, category by category.
    fn markers(&self) -> Vec<MarkerInfo> {
        self.inner
            .taxonomy
            .markers()
            .map(|m| MarkerInfo {
                name: m.name.clone(),
                category: m.category.clone(),
                description: m.description.clone(),
            })
            .collect()
    }

    /// The taxonomy's marker that a misspelled `name` most likely means, if any.
    fn suggest(&self, name: &str) -> Option<String> {
        self.inner.taxonomy.suggest(name).map(str::to_string)
    }

    /// Every alias and the marker it stands for, sorted by alias.
    fn aliases(&self) -> Vec<MarkerAlias> {
        let mut out: Vec<_> = self.inner.taxonomy.aliases().collect();
        out.sort_unstable();
        out.into_iter()
            .map(|(a, c)| MarkerAlias {
                alias: a.to_string(),
                canonical: c.to_string(),
            })
            .collect()
    }

    /// Every category of the taxonomy, in its order.
    fn categories(&self) -> Vec<CategoryInfo> {
        self.inner
            .taxonomy
            .categories
            .iter()
            .map(|c| CategoryInfo {
                name: c.name.clone(),
                description: c.description.clone(),
                min: c.min,
                max: c.max,
            })
            .collect()
    }

    /// Take every collected item at once: `(nodeid, line, [(name, args, kwargs)])`.
    /// `registered` lists markers registered outside the taxonomy.
    fn ingest(
        &self,
        py: Python<'_>,
        items: Vec<PyItem<'_>>,
        registered: Vec<String>,
    ) -> PyResult<Batch> {
        let items = items
            .into_iter()
            .map(convert::item)
            .collect::<PyResult<Vec<_>>>()?;
        Ok(self.batch(py, items, registered))
    }

    /// Take every collected pytest item at once, reading each one's marks
    /// from its nodes as `iter_markers` would. `registered` lists markers
    /// registered outside the taxonomy.
    fn ingest_items(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyList>,
        registered: Vec<String>,
    ) -> PyResult<Batch> {
        let items = collect::read_items(items)?;
        Ok(self.batch(py, items, registered))
    }
}

impl Engine {
    fn batch(&self, py: Python<'_>, items: Vec<Item>, registered: Vec<String>) -> Batch {
        let registered: foldhash::HashSet<String> = registered.into_iter().collect();
        let engine = Arc::clone(&self.inner);
        let resolved = py.detach(|| {
            items
                .iter()
                .map(|i| {
                    validate::resolve(
                        &engine.taxonomy,
                        i.marks.iter().map(|m| m.name.as_str()),
                        &registered,
                    )
                })
                .collect::<Vec<_>>()
        });
        Batch {
            engine,
            items: Arc::new(items),
            resolved: Arc::new(resolved),
        }
    }
}

#[pymethods]
impl Batch {
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

    /// `(nodeid, message)` per test whose `flaky` marker the plugin named
    /// `retrier` (rerunfailures or flaky) cannot use.
    fn flaky_problems(&self, py: Python<'_>, retrier: &str) -> PyResult<Vec<(String, String)>> {
        let Some(retrier) = Retrier::named(Some(retrier)) else {
            return Err(PyValueError::new_err(format!(
                "unknown retrier {retrier:?}: rerunfailures or flaky"
            )));
        };
        Ok(py.detach(|| marker_args::flaky_problems(retrier, &self.items)))
    }
}

#[pymethods]
impl Validation {
    /// How many tests break the rules.
    #[getter]
    fn count(&self) -> usize {
        self.inner.findings.len()
    }

    /// How many tests were checked.
    #[getter]
    fn checked(&self) -> usize {
        self.inner.checked
    }

    /// `N tests in M files break the marker rules (of K checked)`.
    #[getter]
    fn headline(&self) -> String {
        validation_report::headline(&self.inner)
    }

    /// Each file with findings and its part of the report; each text lists
    /// at most `per_file` tests (None: all) and says how many it left out.
    #[pyo3(signature = (per_file=None))]
    fn files(&self, per_file: Option<usize>) -> Vec<FileFindings> {
        validation_report::by_file_capped(&self.inner, per_file.unwrap_or(usize::MAX))
            .into_iter()
            .map(|f| FileFindings {
                file: f.file,
                tests: f.tests,
                text: f.text,
            })
            .collect()
    }

    /// The whole report: headline and every file.
    fn render(&self) -> String {
        validation_report::render(&self.inner)
    }

    /// Every rule broken, one line each: its code, how many tests, what it is about.
    fn rule_counts(&self) -> String {
        validation_report::rule_counts(&self.inner)
    }

    /// The full list of offending tests and their problems as JSON.
    fn to_json(&self) -> String {
        validation_report::to_json(&self.inner)
    }

    /// Every offending test and its problems.
    fn findings(&self) -> Vec<TestFindings> {
        self.inner
            .findings
            .iter()
            .map(|f| TestFindings {
                nodeid: f.nodeid.clone(),
                line: f.line,
                problems: f
                    .problems
                    .iter()
                    .map(|p| RuleProblem {
                        code: p.code.to_string(),
                        message: p.message.clone(),
                        fix: p.fix.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The deprecated aliases the tests use.
    fn aliases(&self) -> Vec<AliasUse> {
        self.inner
            .aliases
            .iter()
            .map(|a| AliasUse {
                alias: a.alias.clone(),
                canonical: a.canonical.clone(),
                tests: a.tests,
                first_nodeid: a.first_nodeid.clone(),
                first_line: a.first_line,
            })
            .collect()
    }
}

/// A marker of the taxonomy.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct MarkerInfo {
    pub name: String,
    pub category: String,
    /// One line, as `pytest --markers` shows it.
    pub description: String,
}

/// An alias of a marker (a deprecated or alternative spelling).
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct MarkerAlias {
    pub alias: String,
    /// The marker it stands for.
    pub canonical: String,
}

/// A category of the taxonomy and how many of its markers a test carries.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct CategoryInfo {
    pub name: String,
    pub description: String,
    pub min: u32,
    /// None: no upper limit.
    pub max: Option<u32>,
}

/// One file's part of the validation report.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct FileFindings {
    pub file: String,
    /// How many of its tests break the rules.
    pub tests: usize,
    /// The report text for this file.
    pub text: String,
}

/// A rule one test breaks, and the fix.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
#[derive(Clone)]
pub struct RuleProblem {
    /// The rule's code (`DYN001`, ...).
    pub code: String,
    pub message: String,
    pub fix: String,
}

/// A test that breaks the rules.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct TestFindings {
    pub nodeid: String,
    pub line: u32,
    pub problems: Vec<RuleProblem>,
}

/// A deprecated alias the tests use.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct AliasUse {
    pub alias: String,
    pub canonical: String,
    /// How many tests use it.
    pub tests: usize,
    /// The first of them, and its line.
    pub first_nodeid: String,
    pub first_line: u32,
}

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

/// `(nodeid, line, [(code, message, fix)])`.
type PyFinding = (String, u32, Vec<(String, String, String)>);

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

    /// Every marker as `(name, category, description)`, category by category.
    fn markers(&self) -> Vec<(String, String, String)> {
        self.inner
            .taxonomy
            .markers()
            .map(|m| (m.name.clone(), m.category.clone(), m.description.clone()))
            .collect()
    }

    /// The taxonomy's marker that a misspelled `name` most likely means, if any.
    fn suggest(&self, name: &str) -> Option<String> {
        self.inner.taxonomy.suggest(name).map(str::to_string)
    }

    /// Every alias as `(alias, canonical)`.
    fn aliases(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .inner
            .taxonomy
            .aliases()
            .map(|(a, c)| (a.to_string(), c.to_string()))
            .collect();
        out.sort();
        out
    }

    /// Every category as `(name, description, min, max)`; max None is unlimited.
    fn categories(&self) -> Vec<(String, String, u32, Option<u32>)> {
        self.inner
            .taxonomy
            .categories
            .iter()
            .map(|c| (c.name.clone(), c.description.clone(), c.min, c.max))
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

    /// `(file, tests, report text)` per file with findings; each text lists
    /// at most `per_file` tests (None: all) and says how many it left out.
    #[pyo3(signature = (per_file=None))]
    fn files(&self, per_file: Option<usize>) -> Vec<(String, usize, String)> {
        validation_report::by_file_capped(&self.inner, per_file.unwrap_or(usize::MAX))
            .into_iter()
            .map(|f| (f.file, f.tests, f.text))
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

    /// `(nodeid, line, [(code, message, fix)])` per offending test.
    fn findings(&self) -> Vec<PyFinding> {
        self.inner
            .findings
            .iter()
            .map(|f| {
                let problems = f
                    .problems
                    .iter()
                    .map(|p| (p.code.to_string(), p.message.clone(), p.fix.clone()))
                    .collect();
                (f.nodeid.clone(), f.line, problems)
            })
            .collect()
    }

    /// Deprecated aliases in use: `(alias, canonical, tests, first nodeid, its line)`.
    fn aliases(&self) -> Vec<(String, String, usize, String, u32)> {
        self.inner
            .aliases
            .iter()
            .map(|a| {
                (
                    a.alias.clone(),
                    a.canonical.clone(),
                    a.tests,
                    a.first_nodeid.clone(),
                    a.first_line,
                )
            })
            .collect()
    }
}

//! The Python face of the engine: load the configuration, list the markers,
//! take the collected items in one batch and validate them.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bindings::batch::Batch;
use crate::bindings::convert::{self, PyItem};
use crate::bindings::gpu::GpuRules;
use crate::bindings::parallel_run::ParallelSettings;
use crate::bindings::pipeline::Pipelines;
use crate::bindings::pytest::collect;
use crate::bindings::records::RunPolicy;
use crate::engine;
use crate::gpu::Rules;
use crate::selection::pipeline;
use crate::selection::Frameworks;
use crate::taxonomy::Groups;
use crate::taxonomy::Item;

/// The taxonomy and configuration of one pytest run.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Engine {
    pub inner: Arc<engine::Engine>,
}

impl Engine {
    fn batch(&self, py: Python<'_>, items: Vec<Item>, registered: Vec<String>) -> Batch {
        let registered: foldhash::HashSet<String> = registered.into_iter().collect();
        let engine = Arc::clone(&self.inner);
        // Once per group of tests holding the same marks, shared by the group.
        let (groups, resolved) = py.detach(|| {
            let groups = Groups::of(&items);
            let resolved = groups.resolve(&engine.taxonomy, &items, &registered);
            (groups, resolved)
        });
        Batch {
            engine,
            items: Arc::new(items),
            resolved: Arc::new(resolved),
            groups: Arc::new(groups),
        }
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

    /// The GPU rules; raises `ConfigError` naming the key and the fix.
    fn gpu_rules(&self) -> PyResult<GpuRules> {
        let source = self.inner.source_name();
        let config = &self.inner.config;
        let rules = Rules::new(&config.gpu, &self.inner.taxonomy, source)?.with_packages(
            &config.packages,
            &config.gpu,
            &self.inner.taxonomy,
            source,
        )?;
        Ok(GpuRules {
            inner: Arc::new(rules),
        })
    }

    /// `[tool.pytest-dynamo.parallel]`, checked at load.
    fn parallel(&self) -> ParallelSettings {
        ParallelSettings {
            inner: self.inner.config.parallel.clone(),
        }
    }

    /// Whether `[tool.pytest-dynamo.retries] transient` names any pattern.
    #[getter]
    fn retries_transient(&self) -> bool {
        !self.inner.config.retries.transient.is_empty()
    }

    /// The first `[tool.pytest-dynamo.retries] transient` pattern found in a
    /// failure's text, or None.
    fn transient_match(&self, text: &str) -> Option<String> {
        self.inner
            .config
            .retries
            .transient_match(text)
            .map(String::from)
    }

    /// Build the built-in pipelines with `[tool.pytest-dynamo.pipelines]` and
    /// `[tool.pytest-dynamo.frameworks]` applied. Raises `ConfigError`.
    fn pipelines(&self) -> PyResult<Pipelines> {
        let engine = Arc::clone(&self.inner);
        let source = engine.source_name();
        let inner = pipeline::Pipelines::build(&engine.taxonomy, &engine.config.pipelines, source)?;
        let frameworks = Frameworks::build(&engine.taxonomy, &engine.config.frameworks, source)?;
        Ok(Pipelines {
            engine,
            inner: Arc::new(inner),
            frameworks: Arc::new(frameworks),
        })
    }

    /// Read the quarantine file and the owners table the configuration
    /// names. Raises `ConfigError` naming the file or key and the fix.
    fn run_policy(&self, py: Python<'_>, rootdir: PathBuf) -> PyResult<RunPolicy> {
        let engine = &self.inner;
        Ok(py.detach(|| RunPolicy::load(engine, &rootdir))?)
    }
}

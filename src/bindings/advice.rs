//! `pytest-dynamo advise` across the boundary: the advice computed in the
//! core from a `History`, handed to Python as one object that renders itself.

use pyo3::prelude::*;

use crate::analytics::advice::advise as recommend;
use crate::bindings::analytics::History;
use crate::bindings::engine::Engine;
use crate::gpu::rules::Rules;

/// The decorators each test should carry, with their evidence.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Advice {
    pub(crate) inner: recommend::Advice,
}

#[pymethods]
impl Advice {
    /// Tests with advice.
    #[getter]
    fn tests(&self) -> usize {
        self.inner.tests.len()
    }

    /// Runs the advice was read from.
    #[getter]
    fn runs(&self) -> usize {
        self.inner.runs
    }

    /// Per test, its decorators and their evidence.
    fn text(&self) -> String {
        recommend::render_text(&self.inner)
    }

    fn json(&self) -> String {
        serde_json::to_string_pretty(&self.inner).expect("advice serializes")
    }
}

/// The advice from the last `window` runs (default: `gates.window`) of
/// `pipeline` (default: every run), with the engine's GPU rules,
/// `[tool.pytest-dynamo.advice]` and `[tool.pytest-dynamo.timeouts]`.
#[pyfunction]
#[pyo3(signature = (engine, history, *, window=None, pipeline=None))]
pub fn advise(
    py: Python<'_>,
    engine: &Engine,
    history: &History,
    window: Option<usize>,
    pipeline: Option<String>,
) -> PyResult<Advice> {
    let e = &engine.inner;
    let rules = Rules::new(&e.config.gpu, &e.taxonomy, e.source_name())?;
    let pipelines = crate::selection::pipeline::Pipelines::build(
        &e.taxonomy,
        &e.config.pipelines,
        e.source_name(),
    )?;
    let lifecycles = e
        .taxonomy
        .category(crate::taxonomy::LIFECYCLE)
        .map(|c| c.markers.clone())
        .unwrap_or_default();
    let window = window.unwrap_or(e.config.gates.window).max(1);
    let h = std::sync::Arc::clone(&history.inner);
    let (settings, timeouts) = (e.config.advice.clone(), e.config.timeouts.clone());
    let inner = py.detach(|| {
        let selected = h.select(pipeline.as_deref());
        let (runs, _) = crate::analytics::report::windows(&selected, window);
        let moves = crate::analytics::advice::moves(&h, &runs, &pipelines, &lifecycles);
        recommend::advise(&h, &runs, &rules, &settings, &timeouts, &moves)
    });
    Ok(Advice { inner })
}

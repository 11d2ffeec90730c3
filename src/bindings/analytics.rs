//! The Python face of the history analytics: read records into a `History`
//! (in parallel, without the GIL), build a `Report`, run the gates, and
//! encode or push a run's Prometheus metrics. One call each: Python never
//! loops over records.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use crate::analytics::gates::{self, Coverage, GateReport};
use crate::analytics::report::{self, Settings};
use crate::analytics::QuarantineFile;
use crate::analytics::{prometheus, pushgateway, render};
use crate::bindings::engine::Engine;
use crate::history;
use crate::history::timestamp;

/// Runs read from records files: parsed once, reported on many ways.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct History {
    pub(crate) inner: Arc<history::History>,
}

/// The history report, ready to render as text, JSON, Markdown or HTML.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Report {
    inner: report::HistoryReport,
    quarantine: Option<QuarantineFile>,
}

/// The quality gates' verdicts.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct GateOutcome {
    inner: GateReport,
}

/// A Markdown ticket for one owner, ready to file.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct Ticket {
    /// The owner, as the records name them (`(no owner)` for tests without one).
    pub owner: String,
    /// A file-name-safe form of the owner's name, unique among the report's tickets.
    pub slug: String,
    /// The ticket's Markdown body.
    pub body: String,
}

/// One gate's verdict.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct GateStatus {
    /// The gate: flaky, performance, coverage, budget or timeouts.
    pub name: String,
    /// pass, fail or skipped.
    pub status: String,
}

/// One run's metrics in the Prometheus text format.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct PrometheusMetrics {
    /// The exposition text.
    pub text: String,
    /// Test records in the metrics.
    pub tests: usize,
    /// Test records that could not be read, left out of the metrics.
    pub corrupt: usize,
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("reports serialize")
}

#[pymethods]
impl History {
    /// Read records files and folders (gzip included) in parallel.
    /// Corrupt lines are counted and skipped; a missing path, a path that is
    /// not a regular file or folder, or a gzip file that decompresses to more
    /// than `max_decompressed` bytes (default 1 GiB) raises `ConfigError`.
    #[staticmethod]
    #[pyo3(signature = (paths, max_decompressed=None))]
    fn load(
        py: Python<'_>,
        paths: Vec<PathBuf>,
        max_decompressed: Option<u64>,
    ) -> PyResult<History> {
        let limit = max_decompressed.unwrap_or(crate::history::MAX_DECOMPRESSED);
        let inner = py.detach(|| history::History::load(&paths, limit))?;
        Ok(History {
            inner: Arc::new(inner),
        })
    }

    /// Records given as JSON strings, one record each (a run's own records).
    #[staticmethod]
    fn from_records(py: Python<'_>, records: Vec<String>) -> History {
        let inner = py.detach(|| history::History::from_lines(records.iter().map(String::as_str)));
        History {
            inner: Arc::new(inner),
        }
    }

    /// Runs read.
    #[getter]
    fn runs(&self) -> usize {
        self.inner.runs.len()
    }

    /// Records read (test, run start and run end lines, and unknown kinds).
    #[getter]
    fn records(&self) -> usize {
        self.inner.inputs.records
    }

    /// Lines that were not records (truncated, corrupt), skipped.
    #[getter]
    fn corrupt(&self) -> usize {
        self.inner.inputs.corrupt
    }

    /// Test lines read again (same run id and node id), counted once.
    #[getter]
    fn duplicates(&self) -> usize {
        self.inner.inputs.duplicates
    }

    /// Entries of walked folders skipped as not regular files, as `path: why`.
    #[getter]
    fn skipped(&self) -> Vec<String> {
        self.inner.inputs.skipped.clone()
    }

    /// The first corrupt lines as `file:line: why`, gzip problems, folder
    /// entries skipped (not regular files) and duplicate test lines.
    #[getter]
    fn problems(&self) -> Vec<String> {
        self.inner.inputs.problems.clone()
    }

    /// Build the report. Settings left as None come from the engine's
    /// `[tool.pytest-dynamo.gates]`. `quarantine` is the quarantine file's path.
    #[pyo3(signature = (engine, *, window=None, min_runs=None, release_after=None, top=10, pipeline=None, quarantine=None, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        py: Python<'_>,
        engine: &Engine,
        window: Option<usize>,
        min_runs: Option<usize>,
        release_after: Option<usize>,
        top: usize,
        pipeline: Option<String>,
        quarantine: Option<PathBuf>,
        now: Option<f64>,
    ) -> PyResult<Report> {
        let gates = &engine.inner.config.gates;
        gates.check(engine.inner.source_name())?;
        let settings = Settings {
            window: window.unwrap_or(gates.window).max(1),
            min_runs: min_runs.unwrap_or(gates.min_runs).max(1),
            release_after: release_after.unwrap_or(gates.release_after).max(1),
            top,
            slowdown_percent: gates.performance_regression,
            slowdown_min_s: gates.slowdown_min_s,
            quarantine_days: gates.quarantine_days,
            pipeline,
            timeouts: engine.inner.config.timeouts.clone(),
        };
        let quarantine = quarantine
            .map(|p| {
                let shown = p.display().to_string();
                let text =
                    std::fs::read_to_string(&p).map_err(|e| crate::error::Error::io(&shown, &e))?;
                QuarantineFile::parse(&shown, &text)
            })
            .transpose()?;
        let history = Arc::clone(&self.inner);
        let now = now.unwrap_or_else(timestamp::now);
        let inner = py.detach(|| report::build(&history, &settings, quarantine.as_ref(), now));
        Ok(Report { inner, quarantine })
    }
}

#[pymethods]
impl Report {
    /// Flaky tests in percent of the tests judged (the flaky gate's measure).
    #[getter]
    fn flaky_tests_percent(&self) -> f64 {
        self.inner.flakiness.flaky_tests_percent
    }

    /// Plain-text tables.
    fn text(&self) -> String {
        render::render_text(&self.inner)
    }

    /// Everything, as JSON.
    fn json(&self) -> String {
        json(&self.inner)
    }

    /// A Markdown summary for a CI job page.
    fn markdown(&self) -> String {
        render::render_markdown(&self.inner)
    }

    /// One self-contained HTML page with inline SVG charts.
    fn html(&self) -> String {
        render::render_html(&self.inner)
    }

    /// One ready-to-file ticket per owner with something to act on.
    fn tickets(&self) -> Vec<Ticket> {
        render::tickets(&self.inner)
            .into_iter()
            .map(|t| Ticket {
                owner: t.owner,
                slug: t.slug,
                body: t.body,
            })
            .collect()
    }

    /// The quarantine file with the suggested changes applied (released
    /// entries cut out, new ones appended); a new file when none was read.
    /// `ticket` and `owner` fill added entries that have none: an entry
    /// without them does not load.
    #[pyo3(signature = (ticket=None, owner=None))]
    fn quarantine_file(&self, ticket: Option<&str>, owner: Option<&str>) -> String {
        let q = &self.inner.quarantine;
        let fill = |value: &mut String, with: Option<&str>| {
            if let Some(with) = with.filter(|_| value.trim().is_empty()) {
                *value = with.to_string();
            }
        };
        let add: Vec<_> = q
            .add
            .iter()
            .cloned()
            .map(|mut e| {
                fill(&mut e.ticket, ticket);
                fill(&mut e.owner, owner);
                e
            })
            .collect();
        self.quarantine
            .clone()
            .unwrap_or_default()
            .updated(&q.release_indices, &add)
    }
}

#[pymethods]
impl GateOutcome {
    /// True when no gate failed (skipped gates do not fail).
    #[getter]
    fn passed(&self) -> bool {
        self.inner.passed
    }

    /// Each gate's name and status, in the order they ran.
    fn statuses(&self) -> Vec<GateStatus> {
        self.inner
            .gates
            .iter()
            .map(|g| {
                let status = serde_json::to_value(g.status).expect("status serializes");
                GateStatus {
                    name: g.name.clone(),
                    status: status.as_str().unwrap_or_default().to_string(),
                }
            })
            .collect()
    }

    fn text(&self) -> String {
        gates::render_text(&self.inner)
    }

    fn json(&self) -> String {
        json(&self.inner)
    }

    fn markdown(&self) -> String {
        gates::render_markdown(&self.inner)
    }
}

/// Run the quality gates with the engine's `[tool.pytest-dynamo.gates]`.
/// Coverage paths are files (coverage.py JSON or LCOV); when none are
/// given, the configuration's `coverage_report` and `coverage_baseline`
/// are used, relative to `rootdir`. `only` picks gates.
#[pyfunction]
#[pyo3(signature = (engine, history=None, *, rootdir=None, pipeline=None, run_id=None, coverage=Vec::new(), coverage_baseline=Vec::new(), only=Vec::new()))]
#[allow(clippy::too_many_arguments)]
pub fn run_gates(
    py: Python<'_>,
    engine: &Engine,
    history: Option<&History>,
    rootdir: Option<PathBuf>,
    pipeline: Option<String>,
    run_id: Option<String>,
    coverage: Vec<PathBuf>,
    coverage_baseline: Vec<PathBuf>,
    only: Vec<String>,
) -> PyResult<GateOutcome> {
    let config = &engine.inner.config.gates;
    config.check(engine.inner.source_name())?;
    let rootdir = rootdir.unwrap_or_default();
    let configured = |given: Vec<PathBuf>, from_config: &[String]| -> Vec<PathBuf> {
        if given.is_empty() {
            from_config.iter().map(|p| rootdir.join(p)).collect()
        } else {
            given
        }
    };
    let coverage = configured(coverage, &config.coverage_report);
    let coverage_baseline = configured(coverage_baseline, &config.coverage_baseline);
    let history = history.map(|h| Arc::clone(&h.inner));
    let pipelines = if only.iter().any(|g| g == "budget") {
        Some(crate::selection::pipeline::Pipelines::build(
            &engine.inner.taxonomy,
            &engine.inner.config.pipelines,
            engine.inner.source_name(),
        )?)
    } else {
        None
    };
    let inner = py.detach(|| -> crate::error::Result<GateReport> {
        let load = |paths: &[PathBuf]| {
            (!paths.is_empty())
                .then(|| Coverage::load(paths))
                .transpose()
        };
        let inputs = gates::Inputs {
            history: history.as_deref(),
            pipeline,
            run_id,
            coverage: load(&coverage)?,
            coverage_baseline: load(&coverage_baseline)?,
            timeouts: engine.inner.config.timeouts.clone(),
            pipelines: pipelines.as_ref(),
        };
        gates::evaluate(config, &inputs, &only)
    })?;
    Ok(GateOutcome { inner })
}

/// One run's metrics in the Prometheus text format, from its test records
/// and its run-end record.
#[pyfunction]
#[pyo3(signature = (records, run_end=None, pipeline=None))]
pub fn prometheus_text(
    py: Python<'_>,
    records: Vec<String>,
    run_end: Option<String>,
    pipeline: Option<String>,
) -> PrometheusMetrics {
    let e = py.detach(|| {
        prometheus::encode(
            &records,
            run_end.as_deref(),
            pipeline.as_deref(),
            timestamp::now(),
        )
    });
    PrometheusMetrics {
        text: e.text,
        tests: e.tests,
        corrupt: e.corrupt,
    }
}

/// Raise `ConfigError` unless `url` is an http:// URL with a host.
#[pyfunction]
pub fn check_pushgateway_url(url: &str) -> PyResult<()> {
    Ok(pushgateway::check_url(url)?)
}

/// PUT `text` into the Pushgateway group of `pipeline`; returns the URL
/// pushed to. Raises `ConfigError` naming the URL when the push fails.
#[pyfunction]
#[pyo3(signature = (url, pipeline, text, timeout_s=10.0))]
pub fn push_metrics(
    py: Python<'_>,
    url: &str,
    pipeline: &str,
    text: &str,
    timeout_s: f64,
) -> PyResult<String> {
    let timeout = Duration::from_secs_f64(timeout_s.max(0.1));
    Ok(py.detach(|| pushgateway::push(url, pipeline, text, timeout))?)
}

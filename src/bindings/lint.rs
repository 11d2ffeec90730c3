//! The Python face of the static lint: one call that lints a whole project
//! (the GIL released while it parses in parallel) and its report.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::lint::run;
use crate::lint::{report, Request, Severity};

/// One finding at one place, shared by every test it concerns.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct LintFinding {
    inner: crate::lint::Finding,
}

#[pymethods]
impl LintFinding {
    /// The file, relative to the invocation directory when under it.
    #[getter]
    fn path(&self) -> String {
        self.inner.path.clone()
    }

    /// 1-based line.
    #[getter]
    fn line(&self) -> u32 {
        self.inner.pos.line
    }

    /// 1-based column.
    #[getter]
    fn column(&self) -> u32 {
        self.inner.pos.col
    }

    /// The rule's code (`DYN001`, `DYN900` ...).
    #[getter]
    fn code(&self) -> &'static str {
        self.inner.code
    }

    /// `"error"` or `"warning"`.
    #[getter]
    fn severity(&self) -> &'static str {
        self.inner.severity.as_str()
    }

    /// What is wrong.
    #[getter]
    fn message(&self) -> String {
        self.inner.message.clone()
    }

    /// How to fix it.
    #[getter]
    fn fix(&self) -> String {
        self.inner.fix.clone()
    }

    /// Node ids of the tests concerned, in collection order.
    #[getter]
    fn tests(&self) -> Vec<String> {
        self.inner.tests.clone()
    }

    /// How many tests it concerns: more than `tests` lists when one of them
    /// stands for parametrizations too many to expand (`name[*]`).
    #[getter]
    fn count(&self) -> u64 {
        self.inner.count
    }
}

/// What `lint` found: findings grouped by place, and counts.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct LintReport {
    inner: crate::lint::LintReport,
}

/// Lint the markers of the tests under `paths` without importing them.
/// Raises `ConfigError` for a bad configuration or a path that does not exist.
#[pyfunction]
#[pyo3(signature = (paths, *, invocation_dir, rootdir=None, config_file=None, dynamo_config=None, strict_unresolved=false))]
pub fn lint(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    invocation_dir: PathBuf,
    rootdir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    dynamo_config: Option<PathBuf>,
    strict_unresolved: bool,
) -> PyResult<LintReport> {
    let request = Request {
        invocation_dir,
        paths,
        rootdir,
        inifile: config_file,
        dynamo_config,
        strict_unresolved,
    };
    let inner = py.detach(|| run(&request))?;
    Ok(LintReport { inner })
}

#[pymethods]
impl LintReport {
    /// Findings of error severity (the command fails when there is any).
    #[getter]
    fn errors(&self) -> usize {
        self.inner.count(Severity::Error)
    }

    /// Findings of warning severity.
    #[getter]
    fn warnings(&self) -> usize {
        self.inner.count(Severity::Warning)
    }

    /// Test files linted.
    #[getter]
    fn files(&self) -> usize {
        self.inner.files
    }

    /// Tests found.
    #[getter]
    fn tests(&self) -> usize {
        self.inner.tests
    }

    /// Tests whose markers are not all known statically.
    #[getter]
    fn unresolved(&self) -> usize {
        self.inner.unresolved
    }

    /// The pytest rootdir the node ids are relative to.
    #[getter]
    fn rootdir(&self) -> String {
        self.inner.rootdir.clone()
    }

    /// Where the configuration came from when it is not the rootdir's own
    /// (a nested pytest root), or None.
    #[getter]
    fn config_note(&self) -> Option<String> {
        self.inner.config_note.clone()
    }

    /// The node id of every test found, file by file.
    fn nodeids(&self) -> Vec<String> {
        self.inner.nodeids.clone()
    }

    /// `path:line:col: CODE message (fix: ...)` lines and a summary.
    fn text(&self) -> String {
        report::text(&self.inner)
    }

    /// The findings as JSON.
    fn json(&self) -> String {
        report::json(&self.inner)
    }

    /// The findings as SARIF 2.1.0.
    fn sarif(&self) -> String {
        report::sarif(&self.inner)
    }

    /// The findings, in the report's order (by file and place).
    fn findings(&self) -> Vec<LintFinding> {
        self.inner
            .findings
            .iter()
            .map(|f| LintFinding { inner: f.clone() })
            .collect()
    }
}

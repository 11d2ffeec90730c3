//! `lint --fix` and `advise --apply` across the boundary: the core plans the
//! edits and hands back each file's old and new text; Python shows the diff
//! or writes the files (through a temporary file and a rename).

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::bindings::advice::Advice;
use crate::lint::fix::{self, Goal};
use crate::lint::Request;

/// One file's change.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct FileFix {
    inner: fix::FileFix,
}

#[pymethods]
impl FileFix {
    /// The file, relative to the invocation directory when under it.
    #[getter]
    fn path(&self) -> String {
        self.inner.path.clone()
    }

    /// The file's absolute path, to write to.
    #[getter]
    fn absolute(&self) -> PathBuf {
        self.inner.absolute.clone()
    }

    /// The text as read.
    #[getter]
    fn original(&self) -> String {
        self.inner.original.clone()
    }

    /// The text with the edits (line ends and everything else untouched).
    #[getter]
    fn fixed(&self) -> String {
        self.inner.fixed.clone()
    }

    /// `path:line: what changed`, in line order.
    #[getter]
    fn changes(&self) -> Vec<String> {
        self.inner.changes.clone()
    }
}

/// What `lint --fix` or `advise --apply` would change, and what it leaves.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct FixReport {
    inner: fix::FixReport,
}

#[pymethods]
impl FixReport {
    /// Files with a change, in path order.
    fn files(&self) -> Vec<FileFix> {
        self.inner
            .files
            .iter()
            .map(|f| FileFix { inner: f.clone() })
            .collect()
    }

    /// `path:line: what was not edited, and why`.
    #[getter]
    fn left(&self) -> Vec<String> {
        self.inner.left.clone()
    }

    /// Files that could not be read or parsed, or whose edits would not parse: untouched.
    #[getter]
    fn errors(&self) -> Vec<String> {
        self.inner.errors.clone()
    }

    /// Test files looked at.
    #[getter]
    fn checked(&self) -> usize {
        self.inner.checked
    }
}

fn request(
    paths: Vec<PathBuf>,
    invocation_dir: PathBuf,
    rootdir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    dynamo_config: Option<PathBuf>,
) -> Request {
    Request {
        invocation_dir,
        paths,
        rootdir,
        inifile: config_file,
        dynamo_config,
        strict_unresolved: false,
    }
}

/// The lint's fixable findings as edits: misspelled markers with one clear
/// suggestion and deprecated aliases renamed, a second hardware marker dropped.
#[pyfunction]
#[pyo3(signature = (paths, *, invocation_dir, rootdir=None, config_file=None, dynamo_config=None))]
pub fn lint_fix(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    invocation_dir: PathBuf,
    rootdir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    dynamo_config: Option<PathBuf>,
) -> PyResult<FixReport> {
    let request = request(paths, invocation_dir, rootdir, config_file, dynamo_config);
    let inner = py.detach(|| fix::fix(&request, &Goal::Lint))?;
    Ok(FixReport { inner })
}

/// The advice's markers as edits of the test files under `paths` (default:
/// the test paths, found as the lint finds them).
#[pyfunction]
#[pyo3(signature = (advice, paths, *, invocation_dir, rootdir=None, config_file=None, dynamo_config=None))]
pub fn advice_fix(
    py: Python<'_>,
    advice: &Advice,
    paths: Vec<PathBuf>,
    invocation_dir: PathBuf,
    rootdir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    dynamo_config: Option<PathBuf>,
) -> PyResult<FixReport> {
    let request = request(paths, invocation_dir, rootdir, config_file, dynamo_config);
    let inner = py.detach(|| fix::fix(&request, &Goal::Advice(&advice.inner)))?;
    Ok(FixReport { inner })
}

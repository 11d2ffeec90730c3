//! `$DYNAMO_FLOW_ID`, set once per test through `os.environ[name] = value`,
//! as pytest sets `$PYTEST_CURRENT_TEST`: Python's own mapping and the C
//! environment then agree, and nothing here writes behind Python's back.

use pyo3::prelude::*;
use pyo3::types::PyString;

/// One environment variable, set for each test.
pub struct Variable {
    name: Py<PyString>,
    environ: Py<PyAny>,
}

impl Variable {
    /// The variable `name` of `environ` (`os.environ`).
    pub fn new(environ: Py<PyAny>, name: Py<PyString>) -> Self {
        Variable { name, environ }
    }

    /// Set the variable to `value` (a flow id).
    pub fn set(&self, py: Python<'_>, value: &str) -> PyResult<()> {
        self.environ
            .bind(py)
            .set_item(self.name.bind(py), PyString::new(py, value))
    }
}

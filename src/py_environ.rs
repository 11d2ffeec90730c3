//! `$DYNAMO_FLOW_ID`, set once per test, cheaply. `os.environ[name] = value`
//! ends in glibc's `setenv`, which keeps every value it was ever given in a
//! search tree so that no reader of the environment sees freed memory; with
//! a new value per test that tree grows by one node a test, and each call
//! walks it twice with cold caches (pytest's own `$PYTEST_CURRENT_TEST` grows
//! it three nodes a test). On Linux the flow id instead goes in with
//! `putenv` and a string of our own, kept for the life of the process as
//! glibc keeps its own, and `os.environ`'s mapping is updated to match.
//! Elsewhere, or where `os.environ` is not the standard library's mapping,
//! it is set through `os.environ` itself.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

/// One environment variable, set for each test.
pub struct Variable {
    name: Py<PyString>,
    /// The name as text, for the C environment.
    text: String,
    environ: Py<PyAny>,
    /// `os.environ`'s own mapping of encoded names to encoded values.
    mapping: Option<(Py<PyDict>, Py<PyBytes>)>,
}

impl Variable {
    /// The variable `name` of `environ` (`os.environ`).
    pub fn new(py: Python<'_>, environ: Py<PyAny>, name: Py<PyString>) -> PyResult<Self> {
        let text = name.bind(py).to_cow()?.into_owned();
        let data = if cfg!(target_os = "linux") {
            environ.bind(py).getattr_opt(intern!(py, "_data"))?
        } else {
            None
        };
        let mapping = data
            .and_then(|d| d.cast_into::<PyDict>().ok())
            .map(|d| (d.unbind(), PyBytes::new(py, text.as_bytes()).unbind()));
        Ok(Variable {
            name,
            text,
            environ,
            mapping,
        })
    }

    /// Set the variable to `value` (ASCII: a flow id).
    pub fn set(&self, py: Python<'_>, value: &str) -> PyResult<()> {
        match &self.mapping {
            Some((data, key)) if put(&self.text, value) => data
                .bind(py)
                .set_item(key.bind(py), PyBytes::new(py, value.as_bytes())),
            _ => self
                .environ
                .bind(py)
                .set_item(self.name.bind(py), PyString::new(py, value)),
        }
    }
}

/// `putenv` with a string that is never freed: a thread reading the
/// environment may hold a pointer into it at any time. False where the C
/// environment cannot take it (a NUL in it, a system without `putenv`).
#[cfg(target_os = "linux")]
fn put(name: &str, value: &str) -> bool {
    let Ok(entry) = std::ffi::CString::new(format!("{name}={value}")) else {
        return false;
    };
    // SAFETY: `entry` is a NUL-terminated "name=value" string that is leaked,
    // so it outlives every use the C environment makes of it.
    unsafe { libc::putenv(entry.into_raw()) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn put(_: &str, _: &str) -> bool {
    false
}

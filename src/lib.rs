//! pytest-dynamo's core: the marker taxonomy and its rules, configuration,
//! and (in later modules) pipelines, the GPU probe and records. The Python
//! package `pytest_dynamo` is a thin layer of pytest hooks over it.

pub mod clock;
pub mod config;
pub mod customize;
pub mod durations;
pub mod engine;
pub mod error;
pub mod facts;
pub mod flaky;
pub mod git;
pub mod glob;
pub mod marker;
pub mod owners;
pub mod quarantine;
pub mod record;
pub mod recorder;
pub mod records_file;
pub mod suggest;
pub mod taxonomy;
pub mod validate;
pub mod validation_report;

mod py_convert;
mod py_engine;
mod py_records;
mod py_report;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    use super::PyModule;
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::py_engine::{Batch, Engine, Validation};
    #[pymodule_export]
    use crate::py_records::{new_run_id, test_id, Recorder, RunPolicy};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        // Rust log records reach Python's logging (caplog, --log-cli-level).
        // Loggers are cached, levels are not: pytest changes levels per test
        // (caplog.set_level, log_level), and a cached level would hide records.
        let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?.install();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add(
            "ConfigError",
            m.py().get_type::<crate::py_convert::ConfigError>(),
        )?;
        Ok(())
    }
}

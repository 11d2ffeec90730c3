//! pytest-dynamo's core: the marker taxonomy and its rules, configuration,
//! and (in later modules) pipelines, the GPU probe and records. The Python
//! package `pytest_dynamo` is a thin layer of pytest hooks over it.

pub mod changes;
pub mod config;
pub mod customize;
pub mod durations;
pub mod engine;
pub mod error;
pub mod expr;
pub mod framework;
pub mod gpu;
pub mod lint;
pub mod marker;
pub mod matcher;
pub mod pipeline;
pub mod plan;
pub mod selection;
pub mod suggest;
pub mod taxonomy;
pub mod validate;
pub mod validation_report;

mod py_convert;
mod py_engine;
mod py_gpu;
mod py_lint;
mod py_pipeline;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    use super::PyModule;
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::py_engine::{Batch, Engine, Validation};
    #[pymodule_export]
    use crate::py_gpu::{describe_gpus, probe_gpus, Audit, GpuRules, Hardware};
    #[pymodule_export]
    use crate::py_pipeline::{Pipelines, Selection};

    #[pymodule_export]
    use crate::py_lint::{lint, LintReport};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        // Rust log records reach Python's logging (caplog, --log-cli-level).
        let _ = pyo3_log::try_init();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add(
            "ConfigError",
            m.py().get_type::<crate::py_convert::ConfigError>(),
        )?;
        Ok(())
    }
}

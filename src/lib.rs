//! pytest-dynamo's core: the marker taxonomy and its rules, configuration,
//! and (in later modules) pipelines, the GPU probe and records. The Python
//! package `pytest_dynamo` is a thin layer of pytest hooks over it.

pub mod changes;
pub mod charts;
pub mod clock;
pub mod config;
pub mod config_check;
pub mod coverage;
pub mod customize;
pub mod docs;
pub mod duration_trends;
pub mod durations;
pub mod engine;
pub mod error;
pub mod expr;
pub mod facts;
mod facts_table;
pub mod flakiness;
pub mod flaky;
pub mod framework;
pub mod gate_config;
pub mod gates;
pub mod git;
pub mod glob;
pub mod gpu;
pub mod history;
pub mod history_read;
pub mod lint;
pub mod markdown;
pub mod marker;
pub mod marker_args;
pub mod matcher;
pub mod owners;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod prometheus;
pub mod pushgateway;
pub mod quarantine;
pub mod quarantine_advice;
pub mod record;
pub mod record_scan;
pub mod recorder;
pub mod records_file;
pub mod report;
pub mod report_html;
pub mod report_markdown;
pub mod report_text;
pub mod selection;
pub mod shards;
pub mod stats;
pub mod suggest;
pub mod taxonomy;
pub mod timestamp;
pub mod validate;
pub mod validation_report;

mod py_analytics;
mod py_collect;
mod py_convert;
mod py_engine;
mod py_environ;
mod py_expr;
mod py_gpu;
mod py_lint;
mod py_parallel;
mod py_parallel_run;
mod py_pipeline;
mod py_records;
mod py_report;
mod py_shards;
mod py_test_start;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    use super::PyModule;
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::py_engine::{Batch, Engine, Validation};
    #[pymodule_export]
    use crate::py_gpu::{describe_gpus, probe_gpus, Audit, GpuRules, Hardware, VramBudget};
    #[pymodule_export]
    use crate::py_pipeline::{Pipelines, Selection};

    #[pymodule_export]
    use crate::py_lint::{lint, LintReport};
    #[pymodule_export]
    use crate::py_parallel::{GpuAssignment, GpuScheduler, ParallelSimulation};
    #[pymodule_export]
    use crate::py_parallel_run::{GpuNeeds, ParallelSettings, ParallelWorkers};

    #[pymodule_export]
    use crate::py_expr::{judge_marker_expression, ExpressionVerdicts};

    #[pymodule_export]
    use crate::py_analytics::{
        check_pushgateway_url, prometheus_text, push_metrics, run_gates, GateOutcome, History,
        Report,
    };
    #[pymodule_export]
    use crate::py_records::{new_flow_id, new_run_id, test_id, FactsTable, Recorder, RunPolicy};
    #[pymodule_export]
    use crate::py_shards::{partition_shards, ShardPlan};
    #[pymodule_export]
    use crate::py_test_start::TestStart;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        // Rust log records reach Python's logging (caplog, --log-cli-level).
        // Loggers are cached, levels are not: pytest changes levels per test
        // (caplog.set_level, log_level), and a cached level would hide records.
        let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?.install();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("DOCS_URL", crate::docs::BASE)?;
        m.add(
            "ConfigError",
            m.py().get_type::<crate::py_convert::ConfigError>(),
        )?;
        Ok(())
    }
}

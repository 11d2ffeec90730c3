//! The Python face of the core, and the only folder that uses pyo3: the
//! `#[pymodule]`, the conversions between Python objects and the core's
//! plain types (`convert`), one file per Python-facing class family, and
//! `pytest/`, the readers of pytest's own objects.

pub mod advice;
pub mod analytics;
pub mod batch;
pub mod convert;
pub mod engine;
pub mod expr;
pub mod fix;
pub mod gpu;
pub mod lint;
pub mod parallel;
pub mod parallel_run;
pub mod pipeline;
pub mod pytest;
pub mod records;
pub mod shards;
pub mod validation;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    use super::PyModule;
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::bindings::batch::Batch;
    #[pymodule_export]
    use crate::bindings::engine::{CategoryInfo, Engine, MarkerAlias, MarkerInfo};
    #[pymodule_export]
    use crate::bindings::gpu::{
        probe_gpus, Audit, GpuDevice, GpuRules, GpuUsage, Hardware, PyInventory, Refusals,
        VramBudget,
    };
    #[pymodule_export]
    use crate::bindings::pipeline::{
        FrameworkChoice, PipelineInfo, Pipelines, ResolvedStage, Selection, StageInfo,
    };
    #[pymodule_export]
    use crate::bindings::validation::{
        AliasUse, FileFindings, RuleProblem, TestFindings, Validation,
    };

    #[pymodule_export]
    use crate::bindings::lint::{lint, LintFinding, LintReport};
    #[pymodule_export]
    use crate::bindings::parallel::{GpuAssignment, GpuScheduler, ParallelSimulation};
    #[pymodule_export]
    use crate::bindings::parallel_run::{GpuNeeds, ParallelSettings, ParallelWorkers};

    #[pymodule_export]
    use crate::bindings::expr::{judge_marker_expression, ExpressionVerdicts};

    #[pymodule_export]
    use crate::bindings::advice::{advise, Advice};
    #[pymodule_export]
    use crate::bindings::analytics::{
        check_pushgateway_url, prometheus_text, push_metrics, run_gates, GateOutcome, GateStatus,
        History, PrometheusMetrics, Report, Ticket,
    };
    #[pymodule_export]
    use crate::bindings::fix::{advice_fix, lint_fix, FileFix, FixReport};
    #[pymodule_export]
    use crate::bindings::pytest::report::failure_reason;
    #[pymodule_export]
    use crate::bindings::pytest::test_start::TestStart;
    #[pymodule_export]
    use crate::bindings::records::{
        new_flow_id, new_run_id, test_id, CollectedFacts, Exemption, ExpiredQuarantine, FactsTable,
        FlakyProblem, FlakyTest, QuarantinedTest, Recorder, RunPolicy, SlowTest, WriteError,
    };
    #[pymodule_export]
    use crate::bindings::shards::{partition_shards, ShardPlan};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        // Rust log records reach Python's logging (caplog, --log-cli-level).
        // Loggers are cached, levels are not: pytest changes levels per test
        // (caplog.set_level, log_level), and a cached level would hide records.
        let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?.install();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("DOCS_URL", crate::docs::BASE)?;
        add_names(m)?;
        m.add(
            "ConfigError",
            m.py().get_type::<crate::bindings::convert::ConfigError>(),
        )?;
        Ok(())
    }

    /// Names both languages use, spelled once in the core.
    fn add_names(m: &Bound<'_, PyModule>) -> PyResult<()> {
        use crate::bindings::records::{FAILED, FINISHED, RETRIED};
        use crate::records::properties;
        m.add("PROPERTY_FACTS", properties::FACTS)?;
        m.add("PROPERTY_FLOW_ID", properties::FLOW_ID)?;
        m.add("PROPERTY_EXEMPT", properties::EXEMPT)?;
        m.add("PROPERTY_PARALLEL_GPUS", properties::PARALLEL_GPUS)?;
        m.add("PROPERTY_GPUS_USED", properties::GPUS_USED)?;
        m.add("PROPERTY_GPU_PEAK_MIB", properties::GPU_PEAK_MIB)?;
        m.add("PROPERTY_METRIC", properties::METRIC)?;
        m.add("ATTEMPTS_ATTRIBUTE", properties::ATTEMPTS)?;
        m.add("REPORT_FAILED", FAILED)?;
        m.add("REPORT_FINISHED", FINISHED)?;
        m.add("REPORT_RETRIED", RETRIED)?;
        Ok(())
    }
}

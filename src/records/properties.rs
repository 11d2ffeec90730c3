//! The names under which a test's reports carry what the records need:
//! `report.user_properties` entries the plugin and other features set, and
//! the report attribute the retries set. Spelled here once; the Python
//! package reads them from `_core` (`PROPERTY_*`, `ATTEMPTS_ATTRIBUTE`).

/// The test's facts as JSON (set in the process that collected it).
pub const FACTS: &str = "dynamo_facts";
/// The test's flow id.
pub const FLOW_ID: &str = "dynamo_flow_id";
/// Why a failure of the test does not gate (a pipeline's non-gating tests,
/// quarantine), carried to an xdist controller.
pub const EXEMPT: &str = "dynamo_exempt";
/// The GPUs a GPU-parallel run gave the test (ids, comma-separated).
pub const PARALLEL_GPUS: &str = "dynamo_parallel_gpus";
/// How many GPUs the audit saw the test use (an integer).
pub const GPUS_USED: &str = "dynamo_gpus_used";
/// The peak memory on one GPU the audit saw, in MiB (a float).
pub const GPU_PEAK_MIB: &str = "dynamo_gpu_peak_mib";
/// A performance metric from the `dynamo_metric` fixture
/// (`{"name", "value", "unit", "higher_is_better"}`).
pub const METRIC: &str = "dynamo_metric";
/// The attribute of a test's last teardown report that lists its earlier
/// attempts (our own retries).
pub const ATTEMPTS: &str = "dynamo_attempts";

//! The Python face of GPU awareness: the probe, the run's GPU rules, the
//! hardware decisions for a whole batch in one call, and the audit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::gpu::audit::{self, Record};
use crate::gpu::inventory::Inventory;
use crate::gpu::probe;
use crate::gpu::requirement::Requirement;
use crate::gpu::rules::Rules;
use crate::gpu::sampler::Sampler;

/// The NVML time limit in seconds as a `Duration`, or why not.
fn limit(seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "the NVML time limit must be a positive number of seconds, not {seconds}"
            ))
        })
}

/// Probe NVML once, waiting at most `timeout_s`, and apply
/// `CUDA_VISIBLE_DEVICES`; the inventory as JSON. `count` sets the number
/// of GPUs instead (`count_label` says by what): NVML is then not asked.
#[pyfunction]
#[pyo3(signature = (nvml_lib=None, cuda_visible_devices=None, count=None, count_label=None, timeout_s=10.0))]
pub fn probe_gpus(
    py: Python<'_>,
    nvml_lib: Option<String>,
    cuda_visible_devices: Option<String>,
    count: Option<u32>,
    count_label: Option<String>,
    timeout_s: f64,
) -> PyResult<String> {
    let limit = limit(timeout_s)?;
    let cvd = cuda_visible_devices.as_deref();
    let inventory = match count {
        Some(n) => Inventory::counted(n, count_label.as_deref().unwrap_or("override"), cvd),
        None => py.detach(|| probe::probe_within(nvml_lib.as_deref(), cvd, limit)),
    };
    Ok(serde_json::to_string(&inventory).expect("an inventory serialises"))
}

pub(crate) fn inventory(json: &str) -> PyResult<Inventory> {
    serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("not a GPU inventory: {e}")))
}

/// The header line for an inventory (JSON).
#[pyfunction]
pub fn describe_gpus(inventory_json: &str) -> PyResult<String> {
    Ok(inventory(inventory_json)?.describe())
}

/// The GPU rules of one run: `[tool.pytest-dynamo.gpu]` checked against the taxonomy.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct GpuRules {
    pub inner: Arc<Rules>,
}

#[pymethods]
impl GpuRules {
    /// The marker that carries a test's VRAM need in GiB.
    #[getter]
    fn vram_marker(&self) -> String {
        self.inner.vram_marker.clone()
    }
}

/// What the machine can run of one batch.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Hardware {
    /// `(position in the batch, reason)`.
    pub(crate) decisions: Vec<(usize, String)>,
    pub(crate) requirements: Arc<HashMap<String, Requirement>>,
}

#[pymethods]
impl Hardware {
    /// The tests this machine cannot run, flat: the distinct reasons, and
    /// for each such test its position in the batch and its reason's index.
    /// Flat lists of numbers make no Python object per test, which on a
    /// large suite costs garbage-collection time.
    fn by_position(&self) -> Refusals {
        let mut reasons: Vec<String> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut positions = Vec::with_capacity(self.decisions.len());
        let mut which = Vec::with_capacity(self.decisions.len());
        for (position, reason) in &self.decisions {
            let n = *index.entry(reason.as_str()).or_insert_with(|| {
                reasons.push(reason.clone());
                reasons.len() - 1
            });
            positions.push(*position);
            which.push(n);
        }
        Refusals {
            reasons,
            positions,
            which,
        }
    }

    /// How many `gpu_N` tests (N >= 1) this machine runs: the audited ones.
    #[getter]
    fn gpu_tests(&self) -> usize {
        self.requirements.len()
    }
}

/// The tests a VRAM budget leaves out, by batch position.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct VramBudget {
    pub(crate) over: Vec<usize>,
    pub(crate) unknown: Vec<usize>,
}

#[pymethods]
impl VramBudget {
    /// Tests whose VRAM marker asks for more than the budget.
    #[getter]
    fn over(&self) -> Vec<usize> {
        self.over.clone()
    }

    /// GPU tests without a VRAM marker: unknown means unsafe.
    #[getter]
    fn unknown(&self) -> Vec<usize> {
        self.unknown.clone()
    }
}

struct AuditState {
    requirements: Arc<HashMap<String, Requirement>>,
    sampler: Option<Sampler>,
    /// The test being sampled.
    current: Option<String>,
    audit: audit::Audit,
}

/// The lowest-hardware audit of one process: samples NVML while each
/// `gpu_N` test runs, and reports at the end.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Audit {
    rules: Arc<Rules>,
    nvml_lib: Option<String>,
    interval: Duration,
    /// How long opening NVML may take.
    limit: Duration,
    run_pid: u32,
    state: Mutex<AuditState>,
}

impl Audit {
    fn lock(&self) -> MutexGuard<'_, AuditState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[pymethods]
impl Audit {
    /// `run_pid`: the run's root process (the xdist controller, or this one).
    #[new]
    #[pyo3(signature = (rules, nvml_lib, interval_s, run_pid, nvml_timeout_s=10.0))]
    fn new(
        rules: &GpuRules,
        nvml_lib: Option<String>,
        interval_s: f64,
        run_pid: u32,
        nvml_timeout_s: f64,
    ) -> PyResult<Self> {
        if !(interval_s.is_finite() && interval_s > 0.0) {
            return Err(PyValueError::new_err(format!(
                "the sampling interval must be a positive number of seconds, not {interval_s}"
            )));
        }
        Ok(Audit {
            rules: Arc::clone(&rules.inner),
            nvml_lib,
            interval: Duration::from_secs_f64(interval_s),
            limit: limit(nvml_timeout_s)?,
            run_pid,
            state: Mutex::new(AuditState {
                requirements: Arc::new(HashMap::new()),
                sampler: None,
                current: None,
                audit: audit::Audit::default(),
            }),
        })
    }

    /// Which tests to audit: the batch's hardware decisions.
    fn attach(&self, hardware: &Hardware) {
        self.lock().requirements = Arc::clone(&hardware.requirements);
    }

    /// Begin sampling if `nodeid` is a `gpu_N` test; True when it is.
    fn start(&self, nodeid: &str) -> bool {
        let mut st = self.lock();
        if !st.requirements.contains_key(nodeid) {
            return false;
        }
        if st.audit.unavailable.is_some() {
            st.audit.unsampled += 1;
            return false;
        }
        let (lib, interval, limit) = (self.nvml_lib.clone(), self.interval, self.limit);
        let sampler = st
            .sampler
            .get_or_insert_with(|| Sampler::spawn(lib, interval, limit));
        sampler.start(std::process::id(), self.run_pid);
        st.current = Some(nodeid.to_string());
        true
    }

    /// End sampling of `nodeid`: what it used, or None when it was not
    /// sampled or the figures may miss some of its GPU work.
    fn stop(&self, py: Python<'_>, nodeid: &str, passed: bool) -> Option<GpuUsage> {
        py.detach(|| {
            let mut st = self.lock();
            if st.current.as_deref() != Some(nodeid) {
                return None;
            }
            st.current = None;
            let usage = st.sampler.as_ref()?.stop();
            let usage = match usage {
                Ok(u) => u,
                Err(why) => {
                    st.audit.unavailable.get_or_insert(why);
                    st.audit.unsampled += 1;
                    return None;
                }
            };
            let req = st.requirements.get(nodeid)?.clone();
            let figures = (usage.doubt.is_none()).then_some(GpuUsage {
                gpus_used: usage.gpus.len(),
                peak_mib: usage.peak_mib,
            });
            let (marker, gpus) = req.hardware.unwrap_or_default();
            st.audit.records.push(Record {
                nodeid: nodeid.to_string(),
                marker,
                marked: gpus,
                vram_gib: req.vram_gib,
                passed,
                usage,
            });
            figures
        })
    }

    /// Stop sampling without recording (the test did not get to run).
    fn cancel(&self, py: Python<'_>) {
        py.detach(|| {
            let mut st = self.lock();
            if st.current.take().is_some() {
                if let Some(s) = &st.sampler {
                    let _ = s.stop();
                }
            }
        });
    }

    /// Everything recorded, as JSON (an xdist worker sends it to the controller).
    fn export(&self) -> String {
        serde_json::to_string(&self.lock().audit).expect("an audit serialises")
    }

    /// Merge what another process recorded (`export`'s JSON).
    fn absorb(&self, exported: &str) -> PyResult<()> {
        let other: audit::Audit = serde_json::from_str(exported)
            .map_err(|e| PyValueError::new_err(format!("not an exported GPU audit: {e}")))?;
        self.lock().audit.merge(other);
        Ok(())
    }

    /// How many tests are marked with more or fewer GPUs than they used.
    fn failing(&self) -> usize {
        self.lock().audit.failing(&self.rules)
    }

    /// The end-of-run report; empty when there is nothing to say.
    fn render(&self) -> String {
        self.lock()
            .audit
            .render(&self.rules, self.interval.as_secs_f64())
    }

    /// NVML samples taken in this process so far.
    #[getter]
    fn samples(&self) -> u64 {
        self.lock().sampler.as_ref().map_or(0, Sampler::samples)
    }

    /// Stop the sampling thread (idempotent).
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            if let Some(mut s) = self.lock().sampler.take() {
                s.close();
            }
        });
    }
}

/// The tests a machine cannot run, as flat lists (see `Hardware.by_position`).
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct Refusals {
    /// The distinct reasons.
    pub reasons: Vec<String>,
    /// Each refused test's position in the batch.
    pub positions: Vec<usize>,
    /// For each of them, the index of its reason in `reasons`.
    pub which: Vec<usize>,
}

/// What one `gpu_N` test used, as the audit sampled it.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct GpuUsage {
    /// How many GPUs it used.
    pub gpus_used: usize,
    /// The peak memory on any one GPU, in MiB.
    pub peak_mib: f64,
}

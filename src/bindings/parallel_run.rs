//! The pytest side of GPU-aware parallel runs (issue #16) for Python: each
//! collected test's GPU need, `[tool.pytest-dynamo.parallel]` as a run reads
//! it, the budgets, the tests that can never run, and the worker count.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::parallel::{ParallelConfig, Placement, Resources, UnknownVram, WorkerPlan};

/// Per test of a batch (by position): the GPUs it needs (0: a CPU test) and
/// its VRAM value per GPU (None: unknown).
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct GpuNeeds {
    pub gpus: Vec<u32>,
    pub vram_gib: Vec<Option<f64>>,
}

/// How many workers a parallel run starts, and the GPU and CPU slots.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct ParallelWorkers {
    pub workers: u32,
    pub gpu_slots: u32,
    pub cpu_slots: u32,
    /// The most GPU tests that can run at once on this machine.
    pub max_gpu_tests: u32,
}

/// `[tool.pytest-dynamo.parallel]` as a run reads it.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct ParallelSettings {
    pub(crate) inner: ParallelConfig,
}

impl ParallelSettings {
    fn resources(&self, totals_gib: &[f64]) -> Resources {
        let machine: Vec<(String, f64)> = totals_gib
            .iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), *t))
            .collect();
        Resources::new(&machine, &self.inner, u32::MAX, u32::MAX)
    }
}

#[pymethods]
impl ParallelSettings {
    #[getter]
    fn memory_margin(&self) -> f64 {
        self.inner.memory_margin
    }

    #[getter]
    fn gpu_memory_gib(&self) -> Option<f64> {
        self.inner.gpu_memory_gib
    }

    /// `"exclusive"`, `"skip"` or a number of GiB (what `GpuScheduler` takes).
    #[getter]
    fn unknown_vram(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.inner.unknown_vram {
            UnknownVram::Exclusive => "exclusive".into_py_any(py),
            UnknownVram::Skip => "skip".into_py_any(py),
            UnknownVram::Gib(g) => g.into_py_any(py),
        }
    }

    #[getter]
    fn cpu_slots(&self) -> Option<u32> {
        self.inner.cpu_slots
    }

    #[getter]
    fn max_workers(&self) -> Option<u32> {
        self.inner.max_workers
    }

    /// The least time between two starts on one GPU, in seconds (0: none).
    #[getter]
    fn start_interval_s(&self) -> f64 {
        self.inner.start_interval_s()
    }

    #[getter]
    fn check_free_memory(&self) -> bool {
        self.inner.check_free_memory
    }

    /// Marker name -> the environment variable its first argument sets.
    #[getter]
    fn env(&self) -> BTreeMap<String, String> {
        self.inner.env.clone()
    }

    /// Each GPU's budget in GiB from its total memory.
    fn budgets_gib(&self, totals_gib: Vec<f64>) -> Vec<f64> {
        self.resources(&totals_gib)
            .gpus
            .into_iter()
            .map(|g| g.budget_gib)
            .collect()
    }

    /// Per test: why it can never run on GPUs of these totals (the hardware
    /// skips' words), or None.
    fn unrunnable(
        &self,
        totals_gib: Vec<f64>,
        gpus: Vec<u32>,
        vram_gib: Vec<Option<f64>>,
    ) -> Vec<Option<String>> {
        let resources = self.resources(&totals_gib);
        gpus.into_iter()
            .zip(vram_gib)
            .map(|(g, v)| match Placement::of(g, v, &self.inner) {
                Placement::Cpu => None,
                Placement::Skip(why) => Some(why),
                Placement::Gpu(need) => resources.never_fits(&need),
            })
            .collect()
    }

    /// The worker count for `-n auto` (`requested` None) or `-n N`, from the
    /// tests' needs on GPUs of these totals.
    #[pyo3(signature = (totals_gib, gpus, vram_gib, requested, cpu_count))]
    fn worker_plan(
        &self,
        totals_gib: Vec<f64>,
        gpus: Vec<u32>,
        vram_gib: Vec<Option<f64>>,
        requested: Option<u32>,
        cpu_count: u32,
    ) -> ParallelWorkers {
        let resources = self.resources(&totals_gib);
        let mut needs = Vec::new();
        let mut has_cpu_tests = false;
        for (g, v) in gpus.into_iter().zip(vram_gib) {
            match Placement::of(g, v, &self.inner) {
                Placement::Cpu => has_cpu_tests = true,
                Placement::Gpu(need) if resources.never_fits(&need).is_none() => needs.push(need),
                _ => {}
            }
        }
        let max_gpu_tests = resources.max_concurrent(&needs);
        let plan = WorkerPlan::new(
            max_gpu_tests,
            has_cpu_tests,
            requested,
            cpu_count,
            &self.inner,
        );
        ParallelWorkers {
            workers: plan.workers,
            gpu_slots: plan.gpu_slots,
            cpu_slots: plan.cpu_slots,
            max_gpu_tests,
        }
    }
}

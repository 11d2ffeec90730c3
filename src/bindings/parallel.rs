//! GPU-aware parallel runs (issue #16) for Python: the packing scheduler
//! the xdist integration drives, and its simulation for plans and benchmarks.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::parallel::{
    simulate, Assignment, ParallelConfig, Placement, Resources, Scheduler, Simulation, TestSpec,
    UnknownVram,
};

fn unknown_vram(value: &Bound<'_, PyAny>) -> PyResult<UnknownVram> {
    if let Ok(s) = value.extract::<String>() {
        return match s.as_str() {
            "exclusive" => Ok(UnknownVram::Exclusive),
            "skip" => Ok(UnknownVram::Skip),
            _ => Err(PyValueError::new_err(format!(
                "unknown_vram: {s:?} is not \"exclusive\", \"skip\" or a number of GiB"
            ))),
        };
    }
    Ok(UnknownVram::Gib(value.extract::<f64>()?))
}

/// A test handed out: its position in the scheduler's list and its GPUs.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct GpuAssignment {
    pub test: usize,
    /// Indices into the scheduler's GPUs.
    pub gpus: Vec<usize>,
    /// The GPUs' ids as the outer `CUDA_VISIBLE_DEVICES` names them.
    pub ids: Vec<String>,
    /// Memory reserved on each (its whole budget when exclusive).
    pub reserved_gib: f64,
    pub exclusive: bool,
}

/// The simulated run: makespan against the sequential sum and the bound.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct ParallelSimulation {
    pub makespan: f64,
    pub sequential: f64,
    pub lower_bound: f64,
    /// Per GPU: seconds busy, and the most memory reserved at once.
    pub busy: Vec<f64>,
    pub peak_gib: Vec<f64>,
    /// Per test that ran (by position): start, end, GPU indices.
    pub starts: Vec<f64>,
    pub ends: Vec<f64>,
    pub tests: Vec<usize>,
    pub test_gpus: Vec<Vec<usize>>,
}

impl From<Simulation> for ParallelSimulation {
    fn from(s: Simulation) -> Self {
        ParallelSimulation {
            makespan: s.makespan,
            sequential: s.sequential,
            lower_bound: s.lower_bound,
            busy: s.busy,
            peak_gib: s.peak_gib,
            starts: s.slots.iter().map(|x| x.start).collect(),
            ends: s.slots.iter().map(|x| x.end).collect(),
            tests: s.slots.iter().map(|x| x.test).collect(),
            test_gpus: s.slots.into_iter().map(|x| x.gpus).collect(),
        }
    }
}

/// The packing scheduler over the visible GPUs and the collected tests.
#[pyclass(module = "pytest_dynamo._core")]
pub struct GpuScheduler {
    inner: Scheduler,
}

#[pymethods]
impl GpuScheduler {
    /// `gpu_ids`/`totals_gib`: the visible GPUs (outer form) and their total
    /// memory; per test: node id, GPUs needed (0: a CPU test), VRAM value
    /// (None: unknown) and recorded duration (None: unknown).
    #[new]
    #[pyo3(signature = (gpu_ids, totals_gib, gpu_slots, cpu_slots, ids, gpus, vram_gib, durations, *, memory_margin=0.15, gpu_memory_gib=None, unknown_vram=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        gpu_ids: Vec<String>,
        totals_gib: Vec<f64>,
        gpu_slots: u32,
        cpu_slots: u32,
        ids: Vec<String>,
        gpus: Vec<u32>,
        vram_gib: Vec<Option<f64>>,
        durations: Vec<Option<f64>>,
        memory_margin: f64,
        gpu_memory_gib: Option<f64>,
        unknown_vram: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n = ids.len();
        if gpu_ids.len() != totals_gib.len()
            || gpus.len() != n
            || vram_gib.len() != n
            || durations.len() != n
        {
            return Err(PyValueError::new_err(
                "the per-GPU and per-test lists must have equal lengths",
            ));
        }
        let config = ParallelConfig {
            memory_margin,
            gpu_memory_gib,
            unknown_vram: unknown_vram
                .map(self::unknown_vram)
                .transpose()?
                .unwrap_or_default(),
            ..ParallelConfig::default()
        };
        config.check("GpuScheduler")?;
        let machine: Vec<(String, f64)> = gpu_ids.into_iter().zip(totals_gib).collect();
        let resources = Resources::new(&machine, &config, gpu_slots, cpu_slots);
        let specs = ids
            .into_iter()
            .zip(gpus)
            .zip(vram_gib)
            .zip(durations)
            .map(|(((id, g), v), d)| TestSpec {
                id,
                placement: Placement::of(g, v, &config),
                duration: d,
            })
            .collect();
        Ok(GpuScheduler {
            inner: Scheduler::new(resources, specs),
        })
    }

    /// The next test that fits now for a free CPU and/or GPU slot, reserved.
    #[pyo3(signature = (cpu_ok=true, gpu_ok=true))]
    fn next(&mut self, cpu_ok: bool, gpu_ok: bool) -> Option<GpuAssignment> {
        self.inner.next_for(cpu_ok, gpu_ok).map(|a| self.convert(a))
    }

    /// Free what a finished (or dead worker's) test held; False if not running.
    fn release(&mut self, test: usize) -> bool {
        self.inner.release(test)
    }

    /// Put a handed-out test that never ran back in the queue.
    fn requeue(&mut self, test: usize) {
        self.inner.requeue(test);
    }

    fn stop(&mut self) {
        self.inner.stop();
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.is_done()
    }

    #[getter]
    fn pending(&self) -> Vec<usize> {
        self.inner.pending().to_vec()
    }

    /// Node id -> why it will not run (never fits, or no VRAM value with "skip").
    #[getter]
    fn unrunnable(&self) -> BTreeMap<String, String> {
        self.inner
            .unrunnable()
            .iter()
            .map(|(t, why)| (self.inner.spec(*t).id.clone(), why.clone()))
            .collect()
    }

    #[getter]
    fn budgets_gib(&self) -> Vec<f64> {
        self.inner
            .resources()
            .gpus
            .iter()
            .map(|g| g.budget_gib)
            .collect()
    }

    #[getter]
    fn peak_gib(&self) -> Vec<f64> {
        self.inner.peak_gib().to_vec()
    }

    /// The same suite on a simulated clock, from the start (this scheduler's
    /// own state is untouched).
    fn simulate(&self, py: Python<'_>) -> ParallelSimulation {
        let resources = self.inner.resources().clone();
        let specs: Vec<TestSpec> = (0..self.inner.spec_count())
            .map(|t| self.inner.spec(t).clone())
            .collect();
        py.detach(|| simulate(resources, specs).into())
    }
}

impl GpuScheduler {
    fn convert(&self, a: Assignment) -> GpuAssignment {
        let gpus = &self.inner.resources().gpus;
        GpuAssignment {
            test: a.test,
            ids: a.gpus.iter().map(|&g| gpus[g].id.clone()).collect(),
            gpus: a.gpus,
            reserved_gib: a.reserved_gib,
            exclusive: a.exclusive,
        }
    }
}

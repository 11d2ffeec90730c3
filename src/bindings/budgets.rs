//! The Python face of budgets: shards of a GPU-parallel stage balanced by
//! makespan on the stage's machine class (`[machines.<class>]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::bindings::engine::Batch;
use crate::bindings::shards::ShardPlan;
use crate::error::Error;
use crate::gpu::requirement;
use crate::gpu::rules::Rules;
use crate::parallel::Placement;
use crate::records::durations;
use crate::selection::pipeline::Pipelines;
use crate::shards::packed::{self, Packed};

#[pymethods]
impl Batch {
    /// Split the tests at `positions` (batch indices, in order; None: all)
    /// into `count` shards whose loads are makespans on the machine class of
    /// `pipeline`'s `stage` (GPU tests packed as `--dynamo-gpu-parallel`
    /// runs them). Raises `ConfigError` when the stage's machine class is not
    /// described under `[machines]`, or for a bad durations file or VRAM marker.
    #[pyo3(signature = (positions, count, group, pipeline, stage, durations=None))]
    #[allow(clippy::too_many_arguments)]
    fn partition_packed(
        &self,
        py: Python<'_>,
        positions: Option<Vec<usize>>,
        count: usize,
        group: &str,
        pipeline: &str,
        stage: &str,
        durations: Option<PathBuf>,
    ) -> PyResult<ShardPlan> {
        let group = crate::bindings::shards::shard_group(group, count)?;
        let engine = &self.engine;
        let source = engine.source_name();
        let config = &engine.config;
        let pipelines = Pipelines::build(&engine.taxonomy, &config.pipelines, source)?;
        let (p, s) = pipelines.find_stage(pipeline, stage)?;
        let class = &p.stages[s].machine;
        let Some(machine) = config.machines.get(class) else {
            return Err(Error::config(
                source,
                format!(
                    "the shards of stage {stage} balance by summed durations: its machine class {class} is not described, so GPU packing cannot be estimated"
                ),
                format!(
                    "describe it: [{}.machines.{class}] gpus = 8, gpu_memory_gib = 80",
                    crate::config::TABLE
                ),
            )
            .into());
        };
        let resources = machine.resources(&config.parallel);
        let rules = Rules::new(&config.gpu, &engine.taxonomy, source)?.with_packages(
            &config.packages,
            &config.gpu,
            &engine.taxonomy,
            source,
        )?;
        let positions = positions.unwrap_or_else(|| (0..self.items.len()).collect());
        if let Some(bad) = positions.iter().find(|p| **p >= self.items.len()) {
            return Err(PyValueError::new_err(format!(
                "position {bad} is outside the batch of {} tests",
                self.items.len()
            )));
        }
        let inner = py.detach(|| {
            let known = match &durations {
                Some(path) => durations::read(path)?,
                None => BTreeMap::new(),
            };
            let mut tests = Vec::with_capacity(positions.len());
            for &i in &positions {
                let item = &self.items[i];
                let req = requirement::of(item, &self.resolved[i], &rules).map_err(|e| {
                    Error::config(source, e, "give the VRAM marker a number of GiB")
                })?;
                tests.push(Packed {
                    id: item.nodeid.as_str(),
                    seconds: known.get(&item.nodeid).copied(),
                    placement: Placement::of(req.gpus(), req.vram_gib, &config.parallel),
                });
            }
            Ok::<_, Error>(packed::partition(&tests, count, group, &resources))
        })?;
        Ok(ShardPlan { inner })
    }
}

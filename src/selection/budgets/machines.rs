//! `[tool.pytest-dynamo.machines.<class>]`: what a stage's machine class has,
//! so a plan made anywhere (a laptop, a CPU runner) can estimate a stage run
//! with GPU packing, and every shard of a stage computes the same partition
//! (a partition from each machine's own probe could differ between machines).

use serde::Deserialize;

use crate::config::TABLE;
use crate::error::{Error, Result};
use crate::parallel::{ParallelConfig, Resources};

/// GPU slots when none is configured: memory, not workers, is the limit.
const UNLIMITED_SLOTS: u32 = 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// GPUs on one machine of the class.
    pub gpus: u32,
    /// Total memory of each GPU in GiB (the budget is this x (1 -
    /// `[parallel] memory_margin`), or `[parallel] gpu_memory_gib`).
    pub gpu_memory_gib: f64,
    /// Workers for GPU tests (default: as many as fit in memory).
    #[serde(default)]
    pub gpu_slots: Option<u32>,
    /// Workers for `gpu_0` tests (default: `[parallel] cpu_slots`, else 1).
    #[serde(default)]
    pub cpu_slots: Option<u32>,
}

impl MachineConfig {
    pub fn check(&self, class: &str, source: &str) -> Result<()> {
        let key = |k: &str| format!("[{TABLE}.machines.{class}] {k}");
        if self.gpus == 0 || self.gpus > 64 {
            return Err(Error::config(
                source,
                format!(
                    "{}: {} GPUs is not a machine that packs GPU tests",
                    key("gpus"),
                    self.gpus
                ),
                "give the GPUs of one machine of the class, 1 to 64 (a CPU machine needs no entry)",
            ));
        }
        let g = self.gpu_memory_gib;
        if !(g.is_finite() && g > 0.0 && g <= 4096.0) {
            return Err(Error::config(
                source,
                format!(
                    "{}: {g} is not a GPU's memory in GiB",
                    key("gpu_memory_gib")
                ),
                "give each GPU's total memory in GiB, e.g. 80 for an H100",
            ));
        }
        for (name, v) in [("gpu_slots", self.gpu_slots), ("cpu_slots", self.cpu_slots)] {
            if v == Some(0) {
                return Err(Error::config(
                    source,
                    format!("{}: 0 workers could run nothing", key(name)),
                    "give at least 1, or remove the key for the default",
                ));
            }
        }
        Ok(())
    }

    /// The machine as the packing scheduler sees it.
    #[must_use]
    pub fn resources(&self, parallel: &ParallelConfig) -> Resources {
        let gpus: Vec<(String, f64)> = (0..self.gpus)
            .map(|i| (i.to_string(), self.gpu_memory_gib))
            .collect();
        Resources::new(
            &gpus,
            parallel,
            self.gpu_slots.unwrap_or(UNLIMITED_SLOTS),
            self.cpu_slots.or(parallel.cpu_slots).unwrap_or(1),
        )
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact answers
mod tests {
    use crate::config::from_pyproject;
    use crate::config_check;
    use crate::parallel::ParallelConfig;
    use crate::taxonomy::customize;

    fn load(body: &str) -> crate::error::Result<crate::config::Config> {
        let config = from_pyproject("p", body)?.unwrap_or_default();
        let taxonomy = customize::taxonomy(&config, "p")?;
        config_check::whole(&config, &taxonomy, "p")?;
        Ok(config)
    }

    #[test]
    fn a_machine_class_becomes_the_schedulers_machine() {
        let c = load("[tool.pytest-dynamo.machines.multi_gpu]\ngpus = 4\ngpu_memory_gib = 80\ncpu_slots = 2\n").unwrap();
        let r = c.machines["multi_gpu"].resources(&ParallelConfig::default());
        assert_eq!(r.gpus.len(), 4);
        // The budget follows [parallel]: 80 x (1 - 0.15).
        assert_eq!(r.gpus[0].budget_gib, 68.0);
        assert_eq!((r.cpu_slots, r.gpu_slots), (2, 1024));
    }

    #[test]
    fn bad_machine_classes_name_the_key_and_the_fix() {
        for (body, words) in [
            ("gpus = 0\ngpu_memory_gib = 80", "machines.x] gpus"),
            ("gpus = 2\ngpu_memory_gib = -1", "gpu_memory_gib"),
            ("gpus = 2\ngpu_memory_gib = 80\ngpu_slots = 0", "gpu_slots"),
            ("gpus = 2", "gpu_memory_gib"),
            ("gpus = 2\ngpu_memory_gib = 80\ngpu = 1", "gpu"),
        ] {
            let e = load(&format!("[tool.pytest-dynamo.machines.x]\n{body}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{body}: {e}");
        }
    }
}

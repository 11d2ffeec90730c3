//! The machine as the scheduler sees it (visible GPUs, each with a memory
//! budget, and worker slots), and what one test needs of it.

use super::config::{ParallelConfig, UnknownVram};

/// One visible GPU: its id in the outer `CUDA_VISIBLE_DEVICES` form (an
/// index or a UUID) and the memory tests may reserve on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    pub id: String,
    pub budget_gib: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub gpus: Vec<Gpu>,
    /// Workers that run GPU tests.
    pub gpu_slots: u32,
    /// Workers that run `gpu_0` tests.
    pub cpu_slots: u32,
}

impl Resources {
    /// Budgets from total memory: `gpu_memory_gib` when set, else total x (1 - margin).
    pub fn new(
        gpus: &[(String, f64)],
        config: &ParallelConfig,
        gpu_slots: u32,
        cpu_slots: u32,
    ) -> Self {
        let gpus = gpus
            .iter()
            .map(|(id, total)| Gpu {
                id: id.clone(),
                budget_gib: config
                    .gpu_memory_gib
                    .unwrap_or(total * (1.0 - config.memory_margin)),
            })
            .collect();
        Resources {
            gpus,
            gpu_slots,
            cpu_slots,
        }
    }

    /// The sum of the budgets.
    pub fn capacity_gib(&self) -> f64 {
        self.gpus.iter().map(|g| g.budget_gib).sum()
    }

    /// Why a test with this need can never run here, whatever else runs.
    pub fn never_fits(&self, need: &Need) -> Option<String> {
        let n = need.gpus as usize;
        if n > self.gpus.len() {
            return Some(format!(
                "needs {} GPU{}, {} visible",
                need.gpus,
                if need.gpus == 1 { "" } else { "s" },
                self.gpus.len()
            ));
        }
        if let Some(v) = need.vram_gib {
            let roomy = self
                .gpus
                .iter()
                .filter(|g| g.budget_gib + EPSILON >= v)
                .count();
            if roomy < n {
                let best = self.gpus.iter().map(|g| g.budget_gib).fold(0.0, f64::max);
                return Some(format!(
                    "needs {} GiB on each of {} GPU{}, the largest parallel budget is {} GiB ({roomy} GPU{} that large)",
                    crate::gpu::requirement::number(v),
                    need.gpus,
                    if need.gpus == 1 { "" } else { "s" },
                    crate::gpu::requirement::number((best * 10.0).floor() / 10.0),
                    if roomy == 1 { "" } else { "s" },
                ));
            }
        }
        None
    }
}

/// Tolerance on GiB sums: budgets and needs are decimals.
pub const EPSILON: f64 = 1e-9;

/// A GPU test's need: `gpus` GPUs, and on each `vram_gib`, or the GPUs to
/// itself when None.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Need {
    pub gpus: u32,
    pub vram_gib: Option<f64>,
}

/// Where a test goes in a parallel run.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// A `gpu_0` test: a CPU slot.
    Cpu,
    Gpu(Need),
    /// Not run (why).
    Skip(String),
}

impl Placement {
    /// From the test's GPU count (`gpu_N`, or 1 implied by a VRAM value) and
    /// its VRAM marker's value.
    pub fn of(gpus: u32, vram_gib: Option<f64>, config: &ParallelConfig) -> Placement {
        if gpus == 0 {
            return Placement::Cpu;
        }
        let vram_gib = match (vram_gib, config.unknown_vram) {
            (None, UnknownVram::Exclusive) => None,
            (Some(v), _) | (None, UnknownVram::Gib(v)) => Some(v),
            (None, UnknownVram::Skip) => return Placement::Skip(
                "no VRAM value for a parallel run (unknown_vram = \"skip\"): add the VRAM marker"
                    .into(),
            ),
        };
        Placement::Gpu(Need { gpus, vram_gib })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(n: usize, total: f64) -> Resources {
        let gpus: Vec<(String, f64)> = (0..n).map(|i| (i.to_string(), total)).collect();
        Resources::new(&gpus, &ParallelConfig::default(), 8, 2)
    }

    #[test]
    fn budgets_come_from_the_margin_or_the_explicit_value() {
        let r = machine(2, 80.0);
        assert!((r.gpus[0].budget_gib - 68.0).abs() < 1e-9);
        assert!((r.capacity_gib() - 136.0).abs() < 1e-9);
        let config = ParallelConfig {
            gpu_memory_gib: Some(40.0),
            ..ParallelConfig::default()
        };
        let r = Resources::new(&[("GPU-a".into(), 80.0)], &config, 1, 1);
        assert_eq!(
            r.gpus[0],
            Gpu {
                id: "GPU-a".into(),
                budget_gib: 40.0
            }
        );
    }

    #[test]
    fn placements_follow_the_unknown_vram_setting() {
        let mut c = ParallelConfig::default();
        assert_eq!(Placement::of(0, Some(3.0), &c), Placement::Cpu);
        assert_eq!(
            Placement::of(2, None, &c),
            Placement::Gpu(Need {
                gpus: 2,
                vram_gib: None
            })
        );
        c.unknown_vram = UnknownVram::Gib(10.0);
        assert_eq!(
            Placement::of(1, None, &c),
            Placement::Gpu(Need {
                gpus: 1,
                vram_gib: Some(10.0)
            })
        );
        assert_eq!(
            Placement::of(1, Some(3.5), &c),
            Placement::Gpu(Need {
                gpus: 1,
                vram_gib: Some(3.5)
            })
        );
        c.unknown_vram = UnknownVram::Skip;
        assert!(matches!(Placement::of(1, None, &c), Placement::Skip(r) if r.contains("VRAM")));
    }

    #[test]
    fn needs_beyond_the_machine_never_fit() {
        let r = machine(4, 80.0);
        assert_eq!(
            r.never_fits(&Need {
                gpus: 8,
                vram_gib: None
            })
            .unwrap(),
            "needs 8 GPUs, 4 visible"
        );
        let why = r
            .never_fits(&Need {
                gpus: 1,
                vram_gib: Some(70.0),
            })
            .unwrap();
        assert!(
            why.contains("needs 70 GiB") && why.contains("68 GiB"),
            "{why}"
        );
        assert!(r
            .never_fits(&Need {
                gpus: 4,
                vram_gib: Some(68.0)
            })
            .is_none());
        assert!(r
            .never_fits(&Need {
                gpus: 4,
                vram_gib: None
            })
            .is_none());
    }
}

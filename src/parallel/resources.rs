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

impl Resources {
    /// The most GPU tests that can run at once here: the smallest needs
    /// placed first, each on the GPUs with the most room (an exclusive need
    /// on an empty GPU). What `-n auto` sizes the GPU workers by.
    pub fn max_concurrent(&self, needs: &[Need]) -> u32 {
        let size = |n: &Need| f64::from(n.gpus) * n.vram_gib.unwrap_or(f64::INFINITY);
        let mut needs: Vec<&Need> = needs.iter().collect();
        needs.sort_by(|a, b| size(a).total_cmp(&size(b)));
        let mut free: Vec<f64> = self.gpus.iter().map(|g| g.budget_gib).collect();
        let mut used = vec![false; free.len()];
        let mut placed = 0;
        for need in needs {
            let mut order: Vec<usize> = (0..free.len()).collect();
            order.sort_by(|&a, &b| free[b].total_cmp(&free[a]).then(a.cmp(&b)));
            let fits = |g: &usize| match need.vram_gib {
                None => !used[*g],
                Some(v) => free[*g] + EPSILON >= v,
            };
            let chosen: Vec<usize> = order
                .into_iter()
                .filter(fits)
                .take(need.gpus as usize)
                .collect();
            if chosen.len() < need.gpus as usize || chosen.is_empty() {
                continue;
            }
            for g in chosen {
                used[g] = true;
                free[g] = match need.vram_gib {
                    None => 0.0,
                    Some(v) => free[g] - v,
                };
            }
            placed += 1;
        }
        placed
    }
}

/// How many workers run, and how many of them may run GPU and `gpu_0`
/// tests at once (caps, not a partition: one worker may serve both kinds
/// when there are fewer workers than kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPlan {
    pub workers: u32,
    pub gpu_slots: u32,
    pub cpu_slots: u32,
}

impl WorkerPlan {
    /// `requested`: `-n N`, or None for `-n auto` (the most tests that can
    /// run at once, capped by the CPU count and `max_workers`).
    pub fn new(
        max_gpu_tests: u32,
        has_cpu_tests: bool,
        requested: Option<u32>,
        cpu_count: u32,
        config: &ParallelConfig,
    ) -> WorkerPlan {
        let wanted_cpu = config.cpu_slots.unwrap_or(u32::from(has_cpu_tests));
        let workers = requested
            .unwrap_or_else(|| {
                (max_gpu_tests + wanted_cpu)
                    .min(cpu_count)
                    .min(config.max_workers.unwrap_or(u32::MAX))
            })
            .max(1);
        let mut gpu_slots = max_gpu_tests.min(workers);
        let mut cpu_slots = match (requested, config.cpu_slots) {
            (_, Some(c)) => c.min(workers),
            // -n N: the workers the GPU tests cannot use.
            (Some(_), None) => workers - gpu_slots,
            (None, None) => wanted_cpu.min(workers),
        };
        if has_cpu_tests && cpu_slots == 0 {
            cpu_slots = 1;
        }
        // Leave the CPU slots their workers when there are enough of them.
        if gpu_slots + cpu_slots > workers && workers > cpu_slots {
            gpu_slots = workers - cpu_slots;
        }
        WorkerPlan {
            workers,
            gpu_slots,
            cpu_slots,
        }
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
    fn the_most_tests_at_once_packs_the_smallest_first() {
        let r = machine(2, 80.0);
        let one = |v: f64| Need {
            gpus: 1,
            vram_gib: Some(v),
        };
        // 68 GiB each: six 20 GiB tests fit (three per GPU), the 60 does not beside them.
        let needs = [
            one(20.0),
            one(20.0),
            one(20.0),
            one(20.0),
            one(20.0),
            one(20.0),
            one(60.0),
        ];
        assert_eq!(r.max_concurrent(&needs), 6);
        let exclusive = Need {
            gpus: 1,
            vram_gib: None,
        };
        assert_eq!(r.max_concurrent(&[exclusive, exclusive, exclusive]), 2);
        assert_eq!(
            r.max_concurrent(
                &[Need {
                    gpus: 2,
                    vram_gib: Some(30.0)
                }; 3]
            ),
            2
        );
        assert_eq!(r.max_concurrent(&[]), 0);
    }

    #[test]
    fn worker_plans_for_auto_and_explicit_counts() {
        let c = ParallelConfig::default();
        // -n auto: 10 GPU tests at once and gpu_0 tests: 11 workers, capped by CPUs.
        assert_eq!(
            WorkerPlan::new(10, true, None, 64, &c),
            WorkerPlan {
                workers: 11,
                gpu_slots: 10,
                cpu_slots: 1
            }
        );
        assert_eq!(
            WorkerPlan::new(10, true, None, 8, &c),
            WorkerPlan {
                workers: 8,
                gpu_slots: 7,
                cpu_slots: 1
            }
        );
        let capped = ParallelConfig {
            max_workers: Some(4),
            cpu_slots: Some(2),
            ..c.clone()
        };
        assert_eq!(
            WorkerPlan::new(10, true, None, 64, &capped),
            WorkerPlan {
                workers: 4,
                gpu_slots: 2,
                cpu_slots: 2
            }
        );
        // -n 12: the workers the GPU tests cannot use run gpu_0 tests.
        assert_eq!(
            WorkerPlan::new(10, true, Some(12), 64, &c),
            WorkerPlan {
                workers: 12,
                gpu_slots: 10,
                cpu_slots: 2
            }
        );
        // -n 1: one worker serves both kinds.
        assert_eq!(
            WorkerPlan::new(10, true, Some(1), 64, &c),
            WorkerPlan {
                workers: 1,
                gpu_slots: 1,
                cpu_slots: 1
            }
        );
        // No GPU test at all.
        assert_eq!(
            WorkerPlan::new(0, true, None, 64, &c),
            WorkerPlan {
                workers: 1,
                gpu_slots: 0,
                cpu_slots: 1
            }
        );
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

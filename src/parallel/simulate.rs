//! The scheduler run against a clock instead of workers: each test takes its
//! (known or median) duration. Gives the makespan of a suite on a machine,
//! for the benchmark, a packing plan, and shard balancing (issue #17).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::resources::{Placement, Resources};
use super::scheduler::{Scheduler, TestSpec};

/// One test in the simulated run.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub test: usize,
    pub start: f64,
    pub end: f64,
    pub gpus: Vec<usize>,
    pub reserved_gib: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Seconds from the first start to the last end.
    pub makespan: f64,
    /// The sum of the durations of the tests that run.
    pub sequential: f64,
    /// `max(longest test, GPU memory-time / total budget)`: no schedule beats it.
    pub lower_bound: f64,
    pub slots: Vec<Slot>,
    /// Per GPU: seconds with at least one test on it, and the peak reserved.
    pub busy: Vec<f64>,
    pub peak_gib: Vec<f64>,
    /// Tests that will not run, with why.
    pub unrunnable: Vec<(usize, String)>,
}

/// An end time in the heap (earliest first; ties by test, for determinism).
struct End(f64, usize);

impl PartialEq for End {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for End {}
impl PartialOrd for End {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for End {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
    }
}

/// Run the suite on the machine, on a simulated clock.
pub fn simulate(resources: Resources, specs: Vec<TestSpec>) -> Simulation {
    let mut s = Scheduler::new(resources, specs);
    let n = s.resources().gpus.len();
    let mut heap = BinaryHeap::new();
    let mut slots = Vec::new();
    let mut busy = vec![0.0; n];
    let mut now = 0.0_f64;
    loop {
        while let Some(a) = s.dispatch() {
            let end = now + s.duration(a.test);
            heap.push(End(end, a.test));
            slots.push(Slot {
                test: a.test,
                start: now,
                end,
                gpus: a.gpus,
                reserved_gib: a.reserved_gib,
            });
        }
        let Some(End(t, test)) = heap.pop() else {
            break;
        };
        for (g, b) in busy.iter_mut().enumerate() {
            if s.tests_on()[g] > 0 {
                *b += t - now;
            }
        }
        now = t;
        s.release(test);
    }
    let resources = s.resources();
    let min_budget = resources
        .gpus
        .iter()
        .map(|g| g.budget_gib)
        .fold(f64::INFINITY, f64::min);
    let mut memory_time = 0.0;
    let mut longest = 0.0_f64;
    let mut sequential = 0.0;
    for slot in &slots {
        let d = slot.end - slot.start;
        sequential += d;
        longest = longest.max(d);
        if let Placement::Gpu(need) = &s.spec(slot.test).placement {
            // Exclusive tests hold a whole GPU: count the smallest budget.
            let per_gpu = need.vram_gib.unwrap_or(min_budget);
            memory_time += d * f64::from(need.gpus) * per_gpu;
        }
    }
    let capacity = resources.capacity_gib();
    let lower_bound = if capacity > 0.0 {
        longest.max(memory_time / capacity)
    } else {
        longest
    };
    Simulation {
        makespan: now,
        sequential,
        lower_bound,
        slots,
        busy,
        peak_gib: s.peak_gib().to_vec(),
        unrunnable: s.unrunnable().to_vec(),
    }
}

/// The estimated wall time of a suite run in parallel on the machine: the
/// simulated makespan (for shard balancing, issue #17).
pub fn makespan(resources: Resources, specs: Vec<TestSpec>) -> f64 {
    simulate(resources, specs).makespan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::config::ParallelConfig;
    use crate::parallel::resources::Need;

    fn gpu(id: &str, gpus: u32, vram: Option<f64>, d: f64) -> TestSpec {
        TestSpec {
            id: id.into(),
            placement: Placement::Gpu(Need {
                gpus,
                vram_gib: vram,
            }),
            duration: Some(d),
        }
    }

    fn machine(n: usize, slots: u32) -> Resources {
        let gpus: Vec<(String, f64)> = (0..n).map(|i| (i.to_string(), 80.0)).collect();
        Resources::new(&gpus, &ParallelConfig::default(), slots, 1)
    }

    #[test]
    fn small_tests_share_a_gpu_and_big_ones_wait() {
        // Budget 68: three 20 GiB tests of 10 s run together, then a 60 GiB one.
        let specs = vec![
            gpu("a", 1, Some(20.0), 10.0),
            gpu("b", 1, Some(20.0), 10.0),
            gpu("c", 1, Some(20.0), 10.0),
            gpu("big", 1, Some(60.0), 10.0),
        ];
        let sim = simulate(machine(1, 8), specs);
        assert!((sim.makespan - 20.0).abs() < 1e-9, "{sim:?}");
        assert!((sim.sequential - 40.0).abs() < 1e-9);
        assert!((sim.peak_gib[0] - 60.0).abs() < 1e-9);
        assert!((sim.busy[0] - 20.0).abs() < 1e-9);
        // Memory-time 3*20*10 + 60*10 = 1200 over 68 GiB.
        assert!((sim.lower_bound - 1200.0 / 68.0).abs() < 1e-9);
        assert!(sim.makespan >= sim.lower_bound);
    }

    #[test]
    fn no_moment_exceeds_a_budget_and_the_run_is_deterministic() {
        let mut specs = Vec::new();
        for i in 0..60_u32 {
            let vram = f64::from(2 + (i * 7) % 39);
            let gpus = [1, 1, 1, 2, 1, 4, 1][(i % 7) as usize];
            specs.push(gpu(
                &format!("t{i:02}"),
                gpus,
                Some(vram),
                f64::from(1 + (i * 13) % 17),
            ));
        }
        specs.push(gpu("ex", 1, None, 5.0));
        let r = machine(4, 12);
        let sim = simulate(r.clone(), specs.clone());
        assert_eq!(sim, simulate(r, specs.clone()));
        assert_eq!(sim.slots.len(), specs.len());
        // At every start, the memory of the tests running on each GPU fits its budget.
        for probe in &sim.slots {
            for g in 0..4 {
                let on: Vec<&Slot> = sim
                    .slots
                    .iter()
                    .filter(|s| {
                        s.start <= probe.start && probe.start < s.end && s.gpus.contains(&g)
                    })
                    .collect();
                let exclusive = on.iter().any(|s| s.reserved_gib == 0.0);
                assert!(
                    !exclusive || on.len() == 1,
                    "an exclusive test shared GPU {g}"
                );
                let sum: f64 = on.iter().map(|s| s.reserved_gib).sum();
                assert!(sum <= 68.0 + 1e-9, "GPU {g} over budget: {sum}");
            }
            let mut g = probe.gpus.clone();
            g.dedup();
            assert_eq!(g.len(), probe.gpus.len());
        }
        assert!(sim.makespan >= sim.lower_bound && sim.makespan < sim.sequential);
        assert!((makespan(machine(4, 12), specs) - sim.makespan).abs() < 1e-12);
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        fn test_spec() -> impl Strategy<Value = (u32, Option<u32>, Option<u32>)> {
            (
                prop::sample::select(vec![0_u32, 1, 1, 1, 2, 4, 8]),
                prop::option::weighted(0.9, 1_u32..90),
                prop::option::weighted(0.8, 0_u32..50),
            )
        }

        proptest! {
            #[test]
            fn every_test_runs_once_or_is_reported_and_no_budget_is_exceeded(
                tests in prop::collection::vec(test_spec(), 0..40),
                gpus in 1_usize..5,
                slots in 1_u32..6,
            ) {
                let config = ParallelConfig::default();
                let specs: Vec<TestSpec> = tests
                    .iter()
                    .enumerate()
                    .map(|(i, (g, v, d))| TestSpec {
                        id: format!("t{i}"),
                        placement: Placement::of(*g, v.map(f64::from), &config),
                        duration: d.map(f64::from),
                    })
                    .collect();
                let sim = simulate(machine(gpus, slots), specs.clone());
                let mut seen: Vec<usize> = sim.slots.iter().map(|s| s.test).collect();
                seen.extend(sim.unrunnable.iter().map(|u| u.0));
                seen.sort_unstable();
                prop_assert_eq!(seen, (0..specs.len()).collect::<Vec<_>>());
                for probe in &sim.slots {
                    let on_now = |s: &&Slot| s.start <= probe.start && probe.start < s.end;
                    prop_assert!(sim.slots.iter().filter(|s| !s.gpus.is_empty()).filter(on_now).count() <= slots as usize);
                    for g in 0..gpus {
                        let on: Vec<&Slot> = sim.slots.iter().filter(on_now).filter(|s| s.gpus.contains(&g)).collect();
                        let sum: f64 = on.iter().map(|s| s.reserved_gib).sum();
                        prop_assert!(sum <= 68.0 + 1e-9);
                        let exclusive = on.iter().any(|s| {
                            matches!(specs[s.test].placement, Placement::Gpu(Need { vram_gib: None, .. }))
                        });
                        prop_assert!(!exclusive || on.len() == 1);
                    }
                }
                prop_assert!(sim.makespan + 1e-9 >= sim.lower_bound);
            }
        }
    }
}

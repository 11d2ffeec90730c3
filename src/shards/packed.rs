//! Shards of a stage that runs GPU tests in parallel on each machine
//! (`--dynamo-gpu-parallel`): a shard's load is its makespan on its
//! machine's GPUs (the parallel core's simulation), not the sum of its
//! durations, since tests that share a GPU overlap.
//!
//! Groups are placed longest first onto the shard whose packing bound grows
//! least: `max(longest test, GPU memory-time / capacity, CPU time / CPU
//! slots)`, the bound no schedule beats and one the packing scheduler comes
//! close to; each shard's load is then its simulated makespan.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{group_key, median, usable, Group, Partition};
use crate::parallel::{makespan, Placement, Resources, TestSpec};

/// A test to place: its node id, recorded seconds and what it needs.
#[derive(Debug, Clone)]
pub struct Packed<'a> {
    pub id: &'a str,
    pub seconds: Option<f64>,
    pub placement: Placement,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bound {
    longest: f64,
    gpu: f64,
    cpu: f64,
}

impl Bound {
    fn value(self) -> f64 {
        self.longest.max(self.gpu).max(self.cpu)
    }

    fn with(self, other: Bound) -> Bound {
        Bound {
            longest: self.longest.max(other.longest),
            gpu: self.gpu + other.gpu,
            cpu: self.cpu + other.cpu,
        }
    }
}

/// Per shard: its test count and its simulated makespan on `machine`.
fn makespans(
    tests: &[Packed],
    seconds: &[f64],
    shard_of: &[usize],
    count: usize,
    machine: &Resources,
) -> (Vec<usize>, Vec<f64>) {
    let mut counts = vec![0_usize; count];
    let mut specs: Vec<Vec<TestSpec>> = vec![Vec::new(); count];
    for ((t, &s), &d) in tests.iter().zip(shard_of).zip(seconds) {
        counts[s] += 1;
        specs[s].push(TestSpec {
            id: t.id.to_string(),
            placement: t.placement.clone(),
            duration: Some(d),
        });
    }
    let loads = specs
        .into_par_iter()
        .map(|s| {
            if s.is_empty() {
                0.0
            } else {
                makespan(machine.clone(), s)
            }
        })
        .collect();
    (counts, loads)
}

/// Split `tests` into `count` shards for `machine`; `loads` are makespans.
#[must_use]
pub fn partition(tests: &[Packed], count: usize, group: Group, machine: &Resources) -> Partition {
    let count = count.max(1);
    let known: Vec<f64> = tests
        .iter()
        .filter_map(|t| t.seconds.and_then(usable))
        .collect();
    let known_count = known.len();
    let assumed = median(known).unwrap_or(1.0);
    let seconds: Vec<f64> = tests
        .iter()
        .map(|t| t.seconds.and_then(usable).unwrap_or(assumed))
        .collect();
    let (group_of, groups) = grouped(tests, &seconds, group, &Shares::of(machine));
    let shard_of_group = assign(&groups, count);
    let shard_of: Vec<usize> = group_of.iter().map(|&g| shard_of_group[g]).collect();
    let (counts, loads) = makespans(tests, &seconds, &shard_of, count, machine);
    Partition {
        shard_of,
        loads,
        counts,
        known: known_count,
        assumed,
    }
}

/// What a machine has for a test's bound: its GPU memory in all, the
/// smallest GPU budget, its CPU slots.
struct Shares {
    capacity: f64,
    smallest_budget: f64,
    cpu_slots: f64,
}

impl Shares {
    fn of(machine: &Resources) -> Self {
        Shares {
            capacity: machine.capacity_gib(),
            smallest_budget: machine
                .gpus
                .iter()
                .map(|g| g.budget_gib)
                .fold(f64::INFINITY, f64::min),
            cpu_slots: f64::from(machine.cpu_slots.max(1)),
        }
    }

    /// One test of `d` seconds: its share of the machine's GPU memory-time
    /// or CPU slots.
    fn bound(&self, t: &Packed, d: f64) -> Bound {
        match &t.placement {
            Placement::Cpu => Bound {
                longest: d,
                gpu: 0.0,
                cpu: d / self.cpu_slots,
            },
            Placement::Gpu(need) if self.capacity > 0.0 => {
                // An exclusive test holds whole GPUs: count the smallest budget.
                let per_gpu = need
                    .vram_gib
                    .unwrap_or(self.smallest_budget)
                    .min(self.smallest_budget);
                Bound {
                    longest: d,
                    gpu: d * f64::from(need.gpus) * per_gpu / self.capacity,
                    cpu: 0.0,
                }
            }
            // Never runs there (skipped, or no GPU): it takes no time.
            _ => Bound::default(),
        }
    }
}

/// Per test, its group's index; per group (in order of first test), its
/// key and bound.
fn grouped<'a>(
    tests: &[Packed<'a>],
    seconds: &[f64],
    group: Group,
    shares: &Shares,
) -> (Vec<usize>, Vec<(&'a str, Bound)>) {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(tests.len());
    let mut groups: Vec<(&str, Bound)> = Vec::new();
    let group_of: Vec<usize> = tests
        .iter()
        .zip(seconds)
        .map(|(t, &d)| {
            let key = group_key(t.id, group);
            let at = *index.entry(key).or_insert_with(|| {
                groups.push((key, Bound::default()));
                groups.len() - 1
            });
            groups[at].1 = groups[at].1.with(shares.bound(t, d));
            at
        })
        .collect();
    (group_of, groups)
}

/// Per group, its shard: the largest groups first, each onto the shard
/// whose bound grows least (ties: the lowest shard).
fn assign(groups: &[(&str, Bound)], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let (ga, gb) = (groups[a].1, groups[b].1);
        (gb.gpu + gb.cpu)
            .total_cmp(&(ga.gpu + ga.cpu))
            .then_with(|| gb.longest.total_cmp(&ga.longest))
            .then_with(|| groups[a].0.cmp(groups[b].0))
    });
    let mut bounds = vec![Bound::default(); count];
    let mut shard_of_group = vec![0_usize; groups.len()];
    for g in order {
        let mut best = 0;
        let mut best_value = bounds[0].with(groups[g].1).value();
        for (k, b) in bounds.iter().enumerate().skip(1) {
            let v = b.with(groups[g].1).value();
            if v.total_cmp(&best_value).is_lt() {
                best = k;
                best_value = v;
            }
        }
        bounds[best] = bounds[best].with(groups[g].1);
        shard_of_group[g] = best;
    }
    shard_of_group
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;
    use crate::parallel::{Need, ParallelConfig};

    fn machine(gpus: usize, total: f64) -> Resources {
        let g: Vec<(String, f64)> = (0..gpus).map(|i| (i.to_string(), total)).collect();
        let config = ParallelConfig {
            gpu_memory_gib: Some(total),
            ..ParallelConfig::default()
        };
        Resources::new(&g, &config, 64, 1)
    }

    fn gpu(id: &str, d: f64, vram: Option<f64>) -> Packed<'_> {
        Packed {
            id,
            seconds: Some(d),
            placement: Placement::Gpu(Need {
                gpus: 1,
                vram_gib: vram,
            }),
        }
    }

    #[test]
    fn a_shards_load_is_its_makespan_not_its_sum() {
        // One 40 GiB GPU per machine. Four 10 GiB tests of 10 s share it and
        // take 10 s together; an exclusive 10 s test takes the GPU alone.
        let tests = vec![
            gpu("a", 10.0, Some(10.0)),
            gpu("b", 10.0, Some(10.0)),
            gpu("c", 10.0, Some(10.0)),
            gpu("d", 10.0, Some(10.0)),
            gpu("x", 10.0, None),
            gpu("y", 10.0, None),
        ];
        let p = partition(&tests, 2, Group::Test, &machine(1, 40.0));
        // By sums the split would be 3 + 3 tests (30 s each); packed, the two
        // exclusive tests (a whole GPU each) go one per shard with the small
        // ones beside them: each shard takes 20 s.
        assert_eq!(p.counts.iter().sum::<usize>(), 6);
        assert_eq!(p.loads, vec![20.0, 20.0]);
        assert_ne!(p.shard_of[4], p.shard_of[5]);
        // The sum-balanced partition's slowest shard, packed, is no better.
        let one = partition(&tests, 1, Group::Test, &machine(1, 40.0));
        assert_eq!(one.loads, vec![30.0]);
    }

    #[test]
    fn deterministic_and_complete() {
        let ids: Vec<String> = (0..200).map(|i| format!("t{i:03}")).collect();
        let tests: Vec<Packed> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                #[allow(clippy::cast_precision_loss)]
                let d = (i * 37 % 50) as f64 + 1.0;
                #[allow(clippy::cast_precision_loss)]
                let v = (i * 13 % 30) as f64 + 1.0;
                match i % 4 {
                    0 => Packed {
                        id,
                        seconds: Some(d),
                        placement: Placement::Cpu,
                    },
                    1 => Packed {
                        id,
                        seconds: None,
                        placement: Placement::Gpu(Need {
                            gpus: 2,
                            vram_gib: Some(v),
                        }),
                    },
                    _ => gpu(id, d, Some(v)),
                }
            })
            .collect();
        for n in 1..=6 {
            let m = machine(4, 80.0);
            let p = partition(&tests, n, Group::Test, &m);
            assert_eq!(p, partition(&tests, n, Group::Test, &m));
            assert_eq!(p.counts.iter().sum::<usize>(), tests.len());
            assert!(p.shard_of.iter().all(|&s| s < n));
            assert_eq!(p.known, 150);
        }
    }
}

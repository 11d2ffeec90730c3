//! A stage's estimated wall time from recorded durations (on N shards, with
//! GPU packing on its machine when it runs GPU tests in parallel), and, when
//! it is over its budget, the fewest of its slowest tests whose move to the
//! next lifecycle brings it under (the strategy: "prefer downgrading existing
//! slow tests").

use std::collections::{HashMap, HashSet};

use crate::parallel::{Placement, Resources};
use crate::shards::packed::{self, Packed};
use crate::shards::{self, Group};

/// How a stage runs: on how many machines, and whether tests share GPUs.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    pub shards: usize,
    pub group: Group,
    /// The machine's GPUs when the stage packs GPU tests (`--dynamo-gpu-parallel`).
    pub machine: Option<&'a Resources>,
}

impl Setup<'_> {
    /// The slowest shard's seconds, each test taking `seconds[i]`.
    fn wall(&self, ids: &[&str], seconds: &[f64], placements: &[Placement]) -> f64 {
        if ids.is_empty() {
            return 0.0;
        }
        match self.machine {
            Some(m) => {
                let tests: Vec<Packed> = ids
                    .iter()
                    .zip(seconds)
                    .zip(placements)
                    .map(|((id, s), p)| Packed {
                        id,
                        seconds: Some(*s),
                        placement: p.clone(),
                    })
                    .collect();
                packed::partition(&tests, self.shards, self.group, m).slowest()
            }
            None if self.shards <= 1 => seconds.iter().sum(),
            None => {
                let by_id: HashMap<&str, f64> =
                    ids.iter().copied().zip(seconds.iter().copied()).collect();
                shards::partition(ids, |id| by_id.get(id).copied(), self.shards, self.group)
                    .slowest()
            }
        }
    }
}

/// One test of a stage.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// Recorded seconds; None when never recorded.
    pub seconds: Option<f64>,
    pub placement: Placement,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wall {
    pub seconds: f64,
    pub tests: usize,
    pub known: usize,
    /// Seconds counted for a test without a recorded duration (the median
    /// of the stage's known ones).
    pub assumed: f64,
}

/// The tests to move and what the stage would take without them.
#[derive(Debug, Clone, PartialEq)]
pub struct Moves {
    /// Node ids and recorded seconds, slowest first.
    pub tests: Vec<(String, f64)>,
    pub after: f64,
    /// False when moving every test with a recorded duration is not enough.
    pub enough: bool,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        f64::midpoint(v[mid - 1], v[mid])
    })
}

fn usable(s: Option<f64>) -> Option<f64> {
    s.filter(|s| s.is_finite() && *s >= 0.0)
}

/// A stage's tests with the durations the estimate uses: the unknown ones
/// count as the median of the known (fixed, so moving tests out does not
/// change what the others are assumed to take).
pub struct Stage<'a> {
    jobs: &'a [Job],
    seconds: Vec<f64>,
    pub known: usize,
    pub assumed: f64,
}

impl<'a> Stage<'a> {
    /// None when no test of the stage has a recorded duration.
    #[must_use]
    pub fn new(jobs: &'a [Job]) -> Option<Stage<'a>> {
        let known: Vec<f64> = jobs.iter().filter_map(|j| usable(j.seconds)).collect();
        let count = known.len();
        let assumed = median(known)?;
        let seconds = jobs
            .iter()
            .map(|j| usable(j.seconds).unwrap_or(assumed))
            .collect();
        Some(Stage {
            jobs,
            seconds,
            known: count,
            assumed,
        })
    }

    fn wall_without(&self, setup: &Setup, gone: &HashSet<&str>) -> f64 {
        let mut ids = Vec::with_capacity(self.jobs.len());
        let mut seconds = Vec::with_capacity(self.jobs.len());
        let mut placements = Vec::with_capacity(self.jobs.len());
        for (j, s) in self.jobs.iter().zip(&self.seconds) {
            if !gone.contains(j.id.as_str()) {
                ids.push(j.id.as_str());
                seconds.push(*s);
                placements.push(j.placement.clone());
            }
        }
        setup.wall(&ids, &seconds, &placements)
    }

    /// The stage's estimated wall time once the tests in `gone` have moved.
    #[must_use]
    pub fn wall(&self, setup: &Setup, gone: &HashSet<&str>) -> Wall {
        Wall {
            seconds: self.wall_without(setup, gone),
            tests: self
                .jobs
                .iter()
                .filter(|j| !gone.contains(j.id.as_str()))
                .count(),
            known: self.known,
            assumed: self.assumed,
        }
    }

    /// The fewest of the slowest recorded tests (not in `gone`) whose move
    /// brings the stage to `limit` or under: the k slowest for the smallest
    /// such k (binary search: the wall time falls as slow tests leave).
    #[must_use]
    pub fn to_move(&self, setup: &Setup, limit: f64, gone: &HashSet<&'a str>) -> Moves {
        let mut candidates: Vec<(&str, f64)> = self
            .jobs
            .iter()
            .filter(|j| !gone.contains(j.id.as_str()))
            .filter_map(|j| usable(j.seconds).map(|s| (j.id.as_str(), s)))
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let wall_after = |k: usize| {
            let mut without = gone.clone();
            without.extend(candidates[..k].iter().map(|c| c.0));
            self.wall_without(setup, &without)
        };
        let all = wall_after(candidates.len());
        if all > limit {
            return Moves {
                tests: candidates
                    .iter()
                    .map(|(i, s)| ((*i).to_string(), *s))
                    .collect(),
                after: all,
                enough: false,
            };
        }
        let now = wall_after(0);
        if now <= limit {
            return Moves {
                tests: Vec::new(),
                after: now,
                enough: true,
            };
        }
        // wall_after(lo) > limit; wall_after(hi) <= limit.
        let (mut lo, mut hi, mut at_hi) = (0, candidates.len(), all);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let w = wall_after(mid);
            if w <= limit {
                hi = mid;
                at_hi = w;
            } else {
                lo = mid;
            }
        }
        Moves {
            tests: candidates[..hi]
                .iter()
                .map(|(i, s)| ((*i).to_string(), *s))
                .collect(),
            after: at_hi,
            enough: true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;
    use crate::parallel::{Need, ParallelConfig};

    fn cpu(id: &str, s: Option<f64>) -> Job {
        Job {
            id: id.into(),
            seconds: s,
            placement: Placement::Cpu,
        }
    }

    const ONE: Setup = Setup {
        shards: 1,
        group: Group::Test,
        machine: None,
    };

    #[test]
    fn one_machine_sums_and_unknowns_count_as_the_median() {
        let jobs = [
            cpu("a", Some(600.0)),
            cpu("b", Some(300.0)),
            cpu("c", Some(100.0)),
            cpu("u", None),
        ];
        let stage = Stage::new(&jobs).unwrap();
        assert_eq!((stage.known, stage.assumed), (3, 300.0));
        let w = stage.wall(&ONE, &HashSet::new());
        assert_eq!((w.seconds, w.tests), (1300.0, 4));
        assert!(Stage::new(&[cpu("x", None)]).is_none());
    }

    #[test]
    fn the_fewest_slowest_tests_that_bring_it_under() {
        let jobs = [
            cpu("a", Some(600.0)),
            cpu("b", Some(300.0)),
            cpu("c", Some(200.0)),
            cpu("d", Some(100.0)),
        ];
        let stage = Stage::new(&jobs).unwrap();
        let none = HashSet::new();
        // 1200 s against 700: moving a (600) leaves 600.
        let m = stage.to_move(&ONE, 700.0, &none);
        assert_eq!(m.tests, vec![("a".to_string(), 600.0)]);
        assert_eq!((m.after, m.enough), (600.0, true));
        // Against 250: a, b and c must go (leaving 100); a and b leave 300.
        let m = stage.to_move(&ONE, 250.0, &none);
        assert_eq!(m.tests.len(), 3);
        assert_eq!(m.after, 100.0);
        // A test another stage already moved is not counted again.
        let gone: HashSet<&str> = ["a"].into();
        let m = stage.to_move(&ONE, 350.0, &gone);
        assert_eq!(m.tests, vec![("b".to_string(), 300.0)]);
        assert_eq!(m.after, 300.0);
        // Unknown tests stay: when they alone exceed the limit, it is not enough.
        let jobs = [cpu("k", Some(10.0)), cpu("u1", None), cpu("u2", None)];
        let m = Stage::new(&jobs).unwrap().to_move(&ONE, 15.0, &none);
        assert!(!m.enough);
        assert_eq!(m.after, 20.0);
    }

    #[test]
    fn shards_take_the_slowest_shard() {
        let jobs = [
            cpu("a", Some(5.0)),
            cpu("b", Some(4.0)),
            cpu("c", Some(3.0)),
            cpu("d", Some(3.0)),
            cpu("e", Some(3.0)),
        ];
        let stage = Stage::new(&jobs).unwrap();
        let two = Setup {
            shards: 2,
            group: Group::Test,
            machine: None,
        };
        // The shards' own split: {a, d} = 8 and {b, c, e} = 10.
        assert_eq!(stage.wall(&two, &HashSet::new()).seconds, 10.0);
        // Under 8: moving a leaves {b, e} 7 / {c, d} 6 ... the slowest shard is 7.
        let m = stage.to_move(&two, 8.0, &HashSet::new());
        assert_eq!(m.tests, vec![("a".to_string(), 5.0)]);
        assert_eq!(m.after, 7.0);
    }

    #[test]
    fn gpu_packing_overlaps_tests_on_the_machine() {
        let config = ParallelConfig {
            gpu_memory_gib: Some(40.0),
            ..ParallelConfig::default()
        };
        let machine = Resources::new(&[("0".into(), 80.0)], &config, 64, 1);
        let g = |id: &str, s: f64| Job {
            id: id.into(),
            seconds: Some(s),
            placement: Placement::Gpu(Need {
                gpus: 1,
                vram_gib: Some(20.0),
            }),
        };
        let jobs = [g("a", 60.0), g("b", 60.0), g("c", 30.0), g("d", 30.0)];
        let setup = Setup {
            shards: 1,
            group: Group::Test,
            machine: Some(&machine),
        };
        let stage = Stage::new(&jobs).unwrap();
        // Two at a time on the 40 GiB budget: a+b for 60 s, then c+d for 30 s.
        assert_eq!(stage.wall(&setup, &HashSet::new()).seconds, 90.0);
        assert_eq!(stage.wall(&ONE, &HashSet::new()).seconds, 180.0);
        // Within 60: moving a lets c then d run beside b (60 s in all).
        let m = stage.to_move(&setup, 60.0, &HashSet::new());
        assert_eq!(m.tests, vec![("a".to_string(), 60.0)]);
        assert_eq!(m.after, 60.0);
        // Within 50: b must go too, leaving c and d side by side.
        let m = stage.to_move(&setup, 50.0, &HashSet::new());
        assert_eq!(m.tests.len(), 2);
        assert_eq!(m.after, 30.0);
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn the_moved_tests_are_the_fewest_slowest_that_fit(
                seconds in prop::collection::vec(prop::option::weighted(0.8, 1_u32..1000), 1..40),
                limit in 1_u32..5000,
                shards in 1_usize..4,
            ) {
                let jobs: Vec<Job> = seconds
                    .iter()
                    .enumerate()
                    .map(|(i, s)| cpu(&format!("t{i:02}"), s.map(f64::from)))
                    .collect();
                let Some(stage) = Stage::new(&jobs) else { return Ok(()) };
                let setup = Setup { shards, group: Group::Test, machine: None };
                let limit = f64::from(limit);
                let none = HashSet::new();
                let m = stage.to_move(&setup, limit, &none);
                let gone: HashSet<&str> = m.tests.iter().map(|t| t.0.as_str()).collect();
                prop_assert_eq!(stage.wall(&setup, &gone).seconds, m.after);
                // Slowest first.
                prop_assert!(m.tests.windows(2).all(|w| w[0].1 >= w[1].1));
                if m.enough {
                    prop_assert!(m.after <= limit);
                    // One fewer is not enough (on one machine the wall time
                    // only falls as tests leave, so this is the minimum).
                    if shards == 1 && !m.tests.is_empty() {
                        let fewer: HashSet<&str> =
                            m.tests[..m.tests.len() - 1].iter().map(|t| t.0.as_str()).collect();
                        prop_assert!(stage.wall(&setup, &fewer).seconds > limit);
                    }
                } else {
                    prop_assert!(m.after > limit);
                }
            }
        }
    }
}

//! Shards: one stage's selected tests split over N machines, balanced by
//! recorded durations. The partition depends only on the selected node ids,
//! the durations and N, never on the order pytest collected the tests in,
//! so every machine (and every xdist worker) computes the same one.

use std::collections::HashMap;

use serde::Deserialize;

mod config;
pub mod packed;

pub use config::ShardsConfig;

/// What the shards keep together: tests that share a module- or class-scoped
/// fixture pay its setup once when they run on the same machine.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Every test on its own (the best balance).
    #[default]
    Test,
    /// The tests of one class together (module-level tests on their own).
    Class,
    /// The tests of one file together.
    Module,
}

impl Group {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Group::Test => "test",
            Group::Class => "class",
            Group::Module => "module",
        }
    }
}

/// The key of the group a test belongs to.
#[must_use]
pub fn group_key(nodeid: &str, group: Group) -> &str {
    match group {
        Group::Test => nodeid,
        Group::Module => nodeid.split_once("::").map_or(nodeid, |(file, _)| file),
        Group::Class => {
            // Parameters may hold "::" themselves: look for the parent
            // before the first '[' only.
            let bare = nodeid.find('[').map_or(nodeid, |at| &nodeid[..at]);
            match bare.rsplit_once("::") {
                Some((parent, _)) if parent.contains("::") => parent,
                _ => nodeid,
            }
        }
    }
}

/// Which shard each test goes to, and what each shard holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// Per test handed in, in that order: its shard (0-based).
    pub shard_of: Vec<usize>,
    /// Per shard: the estimated seconds (sum of its tests' durations).
    pub loads: Vec<f64>,
    /// Per shard: how many tests.
    pub counts: Vec<usize>,
    /// How many of the tests had a recorded duration.
    pub known: usize,
    /// The duration assumed for a test without one (the median of the known).
    pub assumed: f64,
}

impl Partition {
    /// The ideal slowest shard: total / N, or the longest group when larger.
    #[must_use]
    pub fn ideal(&self, longest_group: f64) -> f64 {
        let total: f64 = self.loads.iter().sum();
        #[allow(clippy::cast_precision_loss)]
        let even = total / self.loads.len().max(1) as f64;
        even.max(longest_group)
    }

    /// The slowest shard's estimated seconds.
    #[must_use]
    pub fn slowest(&self) -> f64 {
        self.loads.iter().copied().fold(0.0, f64::max)
    }
}

fn usable(seconds: f64) -> Option<f64> {
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

fn median(mut known: Vec<f64>) -> Option<f64> {
    if known.is_empty() {
        return None;
    }
    known.sort_by(f64::total_cmp);
    let mid = known.len() / 2;
    Some(if known.len() % 2 == 1 {
        known[mid]
    } else {
        f64::midpoint(known[mid - 1], known[mid])
    })
}

/// Split `nodeids` into `count` shards (`count` >= 1): groups longest first
/// onto the least-loaded shard (ties: the group with the smaller key first,
/// the shard with the lower index). A test without a usable duration from
/// `seconds_of` counts as the median of the known ones (1 s when none is
/// known, so counts balance).
#[must_use]
pub fn partition(
    nodeids: &[&str],
    seconds_of: impl Fn(&str) -> Option<f64>,
    count: usize,
    group: Group,
) -> Partition {
    let count = count.max(1);
    let seconds: Vec<Option<f64>> = nodeids
        .iter()
        .map(|id| seconds_of(id).and_then(usable))
        .collect();
    let known: Vec<f64> = seconds.iter().filter_map(|s| *s).collect();
    let known_count = known.len();
    let assumed = median(known).unwrap_or(1.0);
    // One entry per group (no list of members: a test finds its shard
    // through its group's index).
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodeids.len());
    let mut groups: Vec<(&str, f64, usize)> = Vec::new();
    let group_of: Vec<usize> = nodeids
        .iter()
        .zip(&seconds)
        .map(|(id, s)| {
            let key = group_key(id, group);
            let at = *index.entry(key).or_insert_with(|| {
                groups.push((key, 0.0, 0));
                groups.len() - 1
            });
            groups[at].1 += s.unwrap_or(assumed);
            groups[at].2 += 1;
            at
        })
        .collect();
    // Longest first, ties by key: an order that depends on no input order.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        groups[b]
            .1
            .total_cmp(&groups[a].1)
            .then_with(|| groups[a].0.cmp(groups[b].0))
    });
    let mut loads = vec![0.0_f64; count];
    let mut counts = vec![0_usize; count];
    let mut shard_of_group = vec![0_usize; groups.len()];
    for g in order {
        // N is small (a CI matrix): a scan beats a heap and ties are plain.
        let mut best = 0;
        for (k, l) in loads.iter().enumerate().skip(1) {
            if l.total_cmp(&loads[best]).is_lt() {
                best = k;
            }
        }
        loads[best] += groups[g].1;
        counts[best] += groups[g].2;
        shard_of_group[g] = best;
    }
    Partition {
        shard_of: group_of.iter().map(|&g| shard_of_group[g]).collect(),
        loads,
        counts,
        known: known_count,
        assumed,
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("tests/test_m{}.py::TestC{}::test_{i}", i % 7, i % 3))
            .collect()
    }

    fn long_tailed(ids: &[String]) -> HashMap<String, f64> {
        // Deterministic, long-tailed, and every fifth test unknown.
        ids.iter()
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(i, id)| {
                #[allow(clippy::cast_precision_loss)]
                let x = ((i * 7919) % 1000) as f64 / 1000.0;
                (id.clone(), 0.01 / (1.0 - x).max(0.001))
            })
            .collect()
    }

    #[test]
    fn every_test_in_exactly_one_shard_and_the_same_every_time() {
        for size in [1, 2, 3, 7, 10, 99, 500, 5000] {
            let all = ids(size);
            let durations = long_tailed(&all);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let mut reversed = refs.clone();
            reversed.reverse();
            for n in 1..=8 {
                for group in [Group::Test, Group::Class, Group::Module] {
                    let p = partition(&refs, |id| durations.get(id).copied(), n, group);
                    assert_eq!(p.shard_of.len(), size);
                    assert!(p.shard_of.iter().all(|&s| s < n));
                    assert_eq!(p.counts.iter().sum::<usize>(), size);
                    // Union = all, no test twice: each index lands once.
                    let mut seen = vec![0; size];
                    for s in 0..n {
                        for (i, _) in p.shard_of.iter().enumerate().filter(|&(_, &x)| x == s) {
                            seen[i] += 1;
                        }
                    }
                    assert!(seen.iter().all(|&c| c == 1));
                    // Deterministic, and independent of the input order.
                    assert_eq!(
                        p,
                        partition(&refs, |id| durations.get(id).copied(), n, group)
                    );
                    let q = partition(&reversed, |id| durations.get(id).copied(), n, group);
                    for (i, id) in refs.iter().enumerate() {
                        let j = size - 1 - i;
                        assert_eq!(p.shard_of[i], q.shard_of[j], "{id}");
                    }
                    if group != Group::Test {
                        let mut home: HashMap<&str, usize> = HashMap::new();
                        for (i, id) in refs.iter().enumerate() {
                            let s = *home.entry(group_key(id, group)).or_insert(p.shard_of[i]);
                            assert_eq!(s, p.shard_of[i], "{id} left its group");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn longest_first_onto_the_least_loaded() {
        let refs = ["a", "b", "c", "d", "e"];
        let d: HashMap<String, f64> = [("a", 5.0), ("b", 4.0), ("c", 3.0), ("d", 3.0), ("e", 3.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let p = partition(&refs, |id| d.get(id).copied(), 2, Group::Test);
        // a -> 0; b -> 1; c -> 1 (4 < 5); d -> 0 (5 < 7); e -> 1 (7 < 8).
        assert_eq!(p.shard_of, vec![0, 1, 1, 0, 1]);
        assert_eq!(p.loads, vec![8.0, 10.0]);
    }

    #[test]
    fn unknown_durations_count_as_the_median() {
        let refs = ["a", "b", "c", "x"];
        let d: HashMap<String, f64> = [("a", 1.0), ("b", 2.0), ("c", 9.0), ("gone", 100.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let p = partition(&refs, |id| d.get(id).copied(), 1, Group::Test);
        assert_eq!(p.assumed, 2.0);
        assert_eq!(p.known, 3);
        assert_eq!(p.loads, vec![14.0]);
        let none = partition(&refs, |_| None, 2, Group::Test);
        assert_eq!(none.counts, vec![2, 2]);
        let bad: HashMap<String, f64> = [("a".to_string(), f64::NAN), ("b".to_string(), -1.0)]
            .into_iter()
            .collect();
        assert_eq!(
            partition(&refs, |id| bad.get(id).copied(), 1, Group::Test).known,
            0
        );
    }

    #[test]
    fn more_shards_than_tests_leaves_some_empty() {
        let p = partition(&["a", "b"], |_| None, 5, Group::Test);
        assert_eq!(p.counts, vec![1, 1, 0, 0, 0]);
    }

    #[test]
    fn group_keys() {
        let t = "tests/a.py::TestX::test_y[p::q]";
        assert_eq!(group_key(t, Group::Module), "tests/a.py");
        assert_eq!(group_key(t, Group::Class), "tests/a.py::TestX");
        assert_eq!(group_key(t, Group::Test), t);
        assert_eq!(
            group_key("tests/a.py::test_f[x]", Group::Class),
            "tests/a.py::test_f[x]"
        );
        assert_eq!(group_key("tests/a.py", Group::Module), "tests/a.py");
    }
}

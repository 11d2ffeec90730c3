//! One test's markers resolved against the taxonomy (`Resolution`), and the
//! groups of collected tests that carry the very same marks (`Groups`).
//!
//! Selection, matching, the plan, the records' facts, owners and the GPU
//! requirement all read a test's resolution, so it lives with the taxonomy.
//! It is shared (`Arc`): the tests of one group resolve alike, and a copy
//! per test was most of resolving a large collection.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Deref;
use std::sync::Arc;

use foldhash::HashMap;

use crate::taxonomy::Item;
use crate::taxonomy::{Resolved, Taxonomy};

/// A test's markers, resolved against the taxonomy. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution(Arc<Markers>);

/// What a `Resolution` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markers {
    /// Canonical marker names, deduplicated, with their category.
    pub markers: BTreeMap<String, String>,
    /// Aliases used (alias -> canonical).
    pub aliases: BTreeSet<(String, String)>,
    /// Unknown, unregistered names close to a known marker (name -> suggestion).
    pub typos: BTreeMap<String, String>,
}

impl Deref for Resolution {
    type Target = Markers;

    fn deref(&self) -> &Markers {
        &self.0
    }
}

impl Resolution {
    /// Whether two resolutions are one shared value (not merely equal):
    /// the tests of one group share theirs.
    pub fn same(&self, other: &Resolution) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// An identity for memoising work that depends only on the resolution.
    pub fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl Markers {
    pub fn in_category<'a>(&'a self, category: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.markers
            .iter()
            .filter(move |(_, c)| c.as_str() == category)
            .map(|(m, _)| m.as_str())
    }
}

/// Resolve one test's marker names. `registered` holds markers registered
/// outside the taxonomy (pytest's own, other plugins', the ini `markers`).
pub fn resolve<'a, S: std::hash::BuildHasher>(
    taxonomy: &Taxonomy,
    names: impl Iterator<Item = &'a str>,
    registered: &HashSet<String, S>,
) -> Resolution {
    let mut out = Markers::default();
    for name in names {
        match taxonomy.resolve(name) {
            Resolved::Known(def) => {
                out.markers.insert(def.name.clone(), def.category.clone());
            }
            Resolved::Alias(def) => {
                out.markers.insert(def.name.clone(), def.category.clone());
                out.aliases.insert((name.to_string(), def.name.clone()));
            }
            Resolved::Unknown if registered.contains(name) => {}
            Resolved::Unknown => {
                if let Some(s) = taxonomy.suggest(name) {
                    out.typos.insert(name.to_string(), s.to_string());
                }
            }
        }
    }
    Resolution(Arc::new(out))
}

/// The collected tests grouped by their marks: tests that hold the very
/// same marks (the same shared `Arc<Mark>`s, in the same order) are alike
/// for everything read from marks (resolution, rules, GPU requirement),
/// so that work is done once per group. A large suite has thousands of
/// tests and a few dozen groups; reading the items shares its marks so.
/// Identity, not equality: valid only with the items it was made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    /// Each item's group.
    pub of_item: Vec<usize>,
    /// Each group's first item.
    pub first: Vec<usize>,
}

impl Groups {
    pub fn of(items: &[Item]) -> Groups {
        let mut index: HashMap<Box<[usize]>, usize> = HashMap::default();
        let mut of_item = Vec::with_capacity(items.len());
        let mut first = Vec::new();
        let mut key: Vec<usize> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            key.clear();
            key.extend(item.marks.iter().map(|m| Arc::as_ptr(m) as usize));
            let group = if let Some(&g) = index.get(key.as_slice()) {
                g
            } else {
                first.push(i);
                index.insert(key.clone().into_boxed_slice(), first.len() - 1);
                first.len() - 1
            };
            of_item.push(group);
        }
        Groups { of_item, first }
    }

    /// Each item's resolution, worked out once per group.
    pub fn resolve<S: std::hash::BuildHasher>(
        &self,
        taxonomy: &Taxonomy,
        items: &[Item],
        registered: &HashSet<String, S>,
    ) -> Vec<Resolution> {
        let per_group: Vec<Resolution> = self
            .first
            .iter()
            .map(|&i| {
                resolve(
                    taxonomy,
                    items[i].marks.iter().map(|m| m.name.as_str()),
                    registered,
                )
            })
            .collect();
        self.of_item.iter().map(|&g| per_group[g].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::Mark;

    #[test]
    fn tests_holding_the_same_marks_share_one_group_and_resolution() {
        let t = Taxonomy::builtin();
        let gpu = Arc::new(Mark::named("gpu_1"));
        let unit = Arc::new(Mark::named("unit"));
        let other_unit = Arc::new(Mark::named("unit"));
        let item = |marks: Vec<Arc<Mark>>| Item {
            nodeid: "t.py::t".into(),
            line: 0,
            marks,
        };
        let items = [
            item(vec![Arc::clone(&gpu), Arc::clone(&unit)]),
            item(vec![Arc::clone(&unit)]),
            item(vec![Arc::clone(&gpu), Arc::clone(&unit)]),
            // Equal but not the same mark: a group of its own, resolved alike.
            item(vec![Arc::clone(&gpu), Arc::clone(&other_unit)]),
            item(vec![Arc::clone(&unit), Arc::clone(&gpu)]),
        ];
        let groups = Groups::of(&items);
        assert_eq!(groups.of_item, [0, 1, 0, 2, 3]);
        assert_eq!(groups.first, [0, 1, 3, 4]);
        let registered = HashSet::<String>::new();
        let resolved = groups.resolve(&t, &items, &registered);
        assert!(resolved[0].same(&resolved[2]));
        assert!(!resolved[0].same(&resolved[3]));
        for (item, r) in items.iter().zip(&resolved) {
            let alone = resolve(&t, item.marks.iter().map(|m| m.name.as_str()), &registered);
            assert_eq!(*r, alone);
        }
        assert_eq!(
            resolved[4].in_category("hardware").collect::<Vec<_>>(),
            ["gpu_1"]
        );
    }
}

//! What collection knows about each test that its record carries: markers by
//! category, stage, gating, owner, quarantine, retries. Worked out once for
//! the whole batch in the process that collected, and handed to the process
//! that writes records (the xdist controller collects nothing) as one small
//! JSON text per test.

use std::collections::HashMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::flaky;
use crate::marker::Item;
use crate::owners::Owners;
use crate::quarantine::{Entry, Quarantine};
use crate::taxonomy::Taxonomy;
use crate::validate::Resolution;

/// Marker names by category, categories and markers in taxonomy order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markers(pub Vec<(String, Vec<String>)>);

impl Serialize for Markers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (category, names) in &self.0 {
            map.serialize_entry(category, names)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Markers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Markers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of category to marker names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Markers, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Vec<String>>()? {
                    out.push((k, v));
                }
                Ok(Markers(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Markers {
    pub fn of(taxonomy: &Taxonomy, resolution: &Resolution) -> Markers {
        // (category position, marker position, category, marker): sorted,
        // that is taxonomy order.
        let mut found: Vec<(usize, usize, &str, &str)> = resolution
            .markers
            .iter()
            .filter_map(|(name, category)| {
                let c = taxonomy
                    .categories
                    .iter()
                    .position(|c| c.name == *category)?;
                let m = taxonomy.categories[c]
                    .markers
                    .iter()
                    .position(|m| m == name)
                    .unwrap_or(usize::MAX);
                Some((c, m, category.as_str(), name.as_str()))
            })
            .collect();
        found.sort_unstable();
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (_, _, category, name) in found {
            match out.last_mut() {
                Some((c, names)) if c == category => names.push(name.to_string()),
                _ => out.push((category.to_string(), vec![name.to_string()])),
            }
        }
        Markers(out)
    }

    pub fn category(&self, name: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, n)| n.as_slice())
    }
}

/// The quarantine entry that covers a test, as its record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRef {
    pub ticket: String,
    pub owner: String,
    pub reason: String,
    pub expires: String,
    pub expired: bool,
}

impl QuarantineRef {
    fn of(entry: &Entry, today: crate::clock::Date) -> QuarantineRef {
        QuarantineRef {
            ticket: entry.ticket.clone(),
            owner: entry.owner.clone(),
            reason: entry.reason.clone(),
            expires: entry.expires.to_string(),
            expired: entry.expires < today,
        }
    }
}

/// One test's facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The test's flow id (a UUID), made with the facts.
    #[serde(default)]
    pub flow_id: Option<String>,
    pub markers: Markers,
    pub stage: Option<String>,
    pub gating: bool,
    /// Why the test does not gate (a pipeline's or the quarantine's word).
    pub exempt: Option<String>,
    pub owner: Option<String>,
    pub quarantine: Option<QuarantineRef>,
}

/// Facts as the recorder reads them back, borrowing from the JSON text: the
/// markers are kept as written, not parsed and written again.
#[derive(Debug, Deserialize)]
pub struct FactsRef<'a> {
    #[serde(default, borrow)]
    pub flow_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub markers: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    pub stage: Option<std::borrow::Cow<'a, str>>,
    #[serde(default = "gates")]
    pub gating: bool,
    #[serde(default, borrow)]
    pub owner: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub quarantine: Option<QuarantineRef>,
}

fn gates() -> bool {
    true
}

impl Default for FactsRef<'_> {
    /// A test nobody described (a crashed worker's report): it gates.
    fn default() -> Self {
        FactsRef {
            flow_id: None,
            markers: None,
            stage: None,
            gating: true,
            owner: None,
            quarantine: None,
        }
    }
}

/// The facts of the whole batch, in the order asked for.
#[derive(Debug, Default)]
pub struct BatchFacts {
    /// `(facts as JSON, retries, flow id)` per asked-for test.
    pub tests: Vec<(String, Option<u32>, String)>,
    /// Tests the quarantine exempts from gating: `(nodeid, why)`.
    pub quarantined: Vec<(String, String)>,
    /// Markers that cannot be understood: `(nodeid, message)`.
    pub problems: Vec<(String, String)>,
}

/// The run's rules that facts come from.
pub struct Rules<'a> {
    pub taxonomy: &'a Taxonomy,
    pub owners: &'a Owners,
    pub quarantine: &'a Quarantine,
    pub today: crate::clock::Date,
    /// The run's `dynamo_reruns`.
    pub default_reruns: u32,
    /// False when pytest-rerunfailures retries instead (its marker options
    /// are then its own business).
    pub retries: bool,
}

/// A random (version 4) UUID from a keyed hash of `n`: `keys` holds the
/// random keys the standard library draws from the OS, so ids are
/// unpredictable and distinct without a random-number crate.
pub fn flow_id(keys: &std::collections::hash_map::RandomState, n: u64) -> String {
    use std::hash::BuildHasher;
    let hi = keys.hash_one((n, 0x666c_6f77_u32));
    let lo = keys.hash_one((n, 0x6964_7373_u32));
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0xc0 << 56)) | (0x80 << 56); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// One test's facts. `exempt`: a reason it does not gate already (a pipeline's).
pub fn facts(
    rules: &Rules<'_>,
    item: &Item,
    resolution: &Resolution,
    stage: Option<&str>,
    exempt: Option<&str>,
) -> (Facts, Option<u32>, Result<(), String>) {
    let entry = rules.quarantine.entry_for(&item.nodeid);
    let exempt = exempt
        .map(String::from)
        .or_else(|| entry.map(Entry::exemption));
    let (reruns, problem) = if rules.retries {
        match flaky::reruns(rules.taxonomy, item, rules.default_reruns) {
            Ok(r) => (r, Ok(())),
            Err(e) => (None, Err(e)),
        }
    } else {
        (None, Ok(()))
    };
    let facts = Facts {
        flow_id: None,
        markers: Markers::of(rules.taxonomy, resolution),
        stage: stage.map(String::from),
        gating: exempt.is_none(),
        exempt,
        // A quarantined test's owner is the one who owns its fix.
        owner: entry.map(|e| e.owner.clone()).or_else(|| {
            rules
                .owners
                .owner_of(&item.nodeid, resolution)
                .map(String::from)
        }),
        quarantine: entry.map(|e| QuarantineRef::of(e, rules.today)),
    };
    (facts, reruns, problem)
}

/// Facts of the tests `nodeids` names, looked up in the batch's items.
pub fn batch_facts<S: std::hash::BuildHasher + Sync>(
    rules: &Rules<'_>,
    items: &[Item],
    resolved: &[Resolution],
    nodeids: &[String],
    stages: &HashMap<String, String, S>,
    exempt: &HashMap<String, String, S>,
) -> BatchFacts {
    let index: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.nodeid.as_str(), i))
        .collect();
    let empty = Resolution::default();
    let keys = std::collections::hash_map::RandomState::new();
    let per_test: Vec<_> = nodeids
        .iter()
        .enumerate()
        .map(|(n, nodeid)| {
            let stage = stages.get(nodeid).map(String::as_str);
            let exempt = exempt.get(nodeid).map(String::as_str);
            let (mut facts, reruns, problem) = match index.get(nodeid.as_str()) {
                Some(&i) => facts(rules, &items[i], &resolved[i], stage, exempt),
                // Not in the batch (an item a plugin made after collection):
                // what the node id alone tells.
                None => facts(
                    rules,
                    &Item::new(nodeid.clone(), &[]),
                    &empty,
                    stage,
                    exempt,
                ),
            };
            let flow = flow_id(&keys, n as u64);
            facts.flow_id = Some(flow.clone());
            let json = serde_json::to_string(&facts).expect("facts serialize");
            (nodeid, json, reruns, flow, facts, problem)
        })
        .collect();
    let mut out = BatchFacts::default();
    for (nodeid, json, reruns, flow, facts, problem) in per_test {
        if let Some(q) = &facts.quarantine {
            out.quarantined.push((
                nodeid.clone(),
                format!("quarantined: {} ({})", q.ticket, q.owner),
            ));
        }
        if let Err(message) = problem {
            out.problems.push((nodeid.clone(), message));
        }
        out.tests.push((json, reruns, flow));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owners::OwnersConfig;

    #[test]
    fn flow_ids_are_version_4_uuids() {
        let keys = std::collections::hash_map::RandomState::new();
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|n| flow_id(&keys, n)).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'), "{id}");
            assert!(
                matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{id}"
            );
        }
        let other = std::collections::hash_map::RandomState::new();
        assert_ne!(flow_id(&keys, 0), flow_id(&other, 0));
    }
    use std::collections::HashSet;

    fn setup() -> (Taxonomy, Owners, Quarantine) {
        let t = Taxonomy::builtin();
        let owners = Owners::new(
            &OwnersConfig {
                markers: [("vllm".to_string(), "alec".to_string())].into(),
                ..OwnersConfig::default()
            },
            &t,
        )
        .unwrap();
        let q = Quarantine::parse(
            "q.toml",
            "[[quarantine]]\ntest = \"t.py::q*\"\nreason = \"r\"\nowner = \"o\"\nticket = \"T-1\"\nexpires = 2000-01-01\n",
        )
        .unwrap();
        (t, owners, q)
    }

    #[test]
    fn facts_of_a_batch() {
        let (t, owners, q) = setup();
        let rules = Rules {
            taxonomy: &t,
            owners: &owners,
            quarantine: &q,
            today: crate::clock::Date::parse("2026-01-01").unwrap(),
            default_reruns: 2,
            retries: true,
        };
        let items = vec![
            Item::new("t.py::plain", &["unit", "pre_merge", "gpu_0", "vllm"]),
            Item::new("t.py::quarantined", &["unit", "flaky"]),
            Item::new("t.py::nongating", &["e2e"]),
        ];
        let none = HashSet::<String>::new();
        let resolved: Vec<_> = items
            .iter()
            .map(|i| crate::validate::resolve(&t, i.marks.iter().map(|m| m.name.as_str()), &none))
            .collect();
        let nodeids: Vec<String> = [
            "t.py::plain",
            "t.py::quarantined",
            "t.py::nongating",
            "t.py::unknown",
        ]
        .map(String::from)
        .into();
        let stages = HashMap::from([("t.py::plain".to_string(), "unit".to_string())]);
        let exempt = HashMap::from([(
            "t.py::nongating".to_string(),
            "stage e2e is non-gating".to_string(),
        )]);
        let out = batch_facts(&rules, &items, &resolved, &nodeids, &stages, &exempt);
        assert_eq!(out.tests.len(), 4);
        let plain: Facts = serde_json::from_str(&out.tests[0].0).unwrap();
        assert_eq!(
            serde_json::to_string(&plain.markers).unwrap(),
            r#"{"lifecycle":["pre_merge"],"hardware":["gpu_0"],"type":["unit"],"framework":["vllm"]}"#
        );
        assert_eq!(plain.owner.as_deref(), Some("alec"));
        assert_eq!(plain.stage.as_deref(), Some("unit"));
        assert!(plain.gating);
        assert_eq!(out.tests[0].1, None);
        assert_eq!(plain.flow_id.as_deref(), Some(out.tests[0].2.as_str()));
        assert_ne!(out.tests[0].2, out.tests[1].2);
        let q: Facts = serde_json::from_str(&out.tests[1].0).unwrap();
        assert!(!q.gating);
        assert!(q.quarantine.as_ref().unwrap().expired);
        assert_eq!(q.owner.as_deref(), Some("o"));
        assert_eq!(out.tests[1].1, Some(2));
        assert_eq!(
            out.quarantined,
            [(
                "t.py::quarantined".to_string(),
                "quarantined: T-1 (o)".to_string()
            )]
        );
        let n: Facts = serde_json::from_str(&out.tests[2].0).unwrap();
        assert_eq!(n.exempt.as_deref(), Some("stage e2e is non-gating"));
        let unknown: Facts = serde_json::from_str(&out.tests[3].0).unwrap();
        assert!(unknown.markers.0.is_empty() && unknown.gating);
        assert!(out.problems.is_empty());
    }
}

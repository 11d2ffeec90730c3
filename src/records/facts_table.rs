//! The facts of one run's collected tests. At collection only what must be
//! known before any test runs is worked out (quarantine exemptions, retries,
//! flaky-marker problems); each test's facts JSON and flow id are made as
//! the test starts. On a large suite that keeps tens of thousands of strings
//! and tuples out of collection, and `--collect-only` pays nothing for them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Date;
use crate::engine::Engine;
use crate::policy::owners::Owners;
use crate::policy::quarantine::{Entry, Quarantine};
use crate::policy::retries;
use crate::records::facts::{facts, Facts, FlowIds, Rules};
use crate::taxonomy::marker::Item;
use crate::taxonomy::validate::Resolution;

/// The run's rules, owned so that the table outlives the call that made it.
pub struct Policy {
    pub engine: Arc<Engine>,
    pub owners: Arc<Owners>,
    pub quarantine: Arc<Quarantine>,
    pub today: Date,
    /// The run's `dynamo_reruns`.
    pub default_reruns: u32,
    /// False when pytest-rerunfailures retries instead (its marker options
    /// are then its own business).
    pub retries: bool,
}

impl Policy {
    fn rules(&self) -> Rules<'_> {
        Rules {
            taxonomy: &self.engine.taxonomy,
            owners: &self.owners,
            quarantine: &self.quarantine,
            today: self.today,
        }
    }
}

/// What collection must know before any test runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// Tests the quarantine exempts from gating: `(nodeid, why)`.
    pub quarantined: Vec<(String, String)>,
    /// Flaky markers that cannot be understood: `(nodeid, message)`.
    pub problems: Vec<(String, String)>,
    /// Retries of the tests marked flaky: `(nodeid, retries)`.
    pub reruns: Vec<(String, u32)>,
}

pub struct Table {
    policy: Policy,
    items: Arc<Vec<Item>>,
    resolved: Arc<Vec<Resolution>>,
    /// What each collected test's facts are made from, by node id: one
    /// lookup per test.
    tests: foldhash::HashMap<String, Known>,
    flows: FlowIds,
}

/// A collected test, as the table knows it.
struct Known {
    /// Its position in the batch, if there.
    position: Option<usize>,
    /// Its position among the collected tests, which seeds its flow id.
    n: u64,
    stage: Option<String>,
    /// Why it already does not gate (a pipeline's word).
    exempt: Option<String>,
}

impl Table {
    /// The table of the tests `nodeids` names, looked up in the batch's
    /// items; `stages` maps node ids to their stage, `exempt` to why they
    /// already do not gate.
    pub fn new(
        policy: Policy,
        items: Arc<Vec<Item>>,
        resolved: Arc<Vec<Resolution>>,
        nodeids: Vec<String>,
        mut stages: HashMap<String, String>,
        mut exempt: HashMap<String, String>,
    ) -> (Table, Checks) {
        let index: foldhash::HashMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.nodeid.as_str(), i))
            .collect();
        let mut checks = Checks::default();
        let mut tests = foldhash::HashMap::with_capacity_and_hasher(
            nodeids.len(),
            foldhash::fast::RandomState::default(),
        );
        for (n, nodeid) in nodeids.into_iter().enumerate() {
            let position = index.get(nodeid.as_str()).copied();
            if let Some(entry) = policy.quarantine.entry_for(&nodeid) {
                checks
                    .quarantined
                    .push((nodeid.clone(), Entry::exemption(entry)));
            }
            if let (true, Some(i)) = (policy.retries, position) {
                match retries::reruns(&policy.engine.taxonomy, &items[i], policy.default_reruns) {
                    Ok(Some(r)) => checks.reruns.push((nodeid.clone(), r)),
                    Ok(None) => {}
                    Err(message) => checks.problems.push((nodeid.clone(), message)),
                }
            }
            let known = Known {
                position,
                n: n as u64,
                stage: stages.remove(&nodeid),
                exempt: exempt.remove(&nodeid),
            };
            tests.insert(nodeid, known);
        }
        let table = Table {
            policy,
            items,
            resolved,
            tests,
            flows: FlowIds::default(),
        };
        (table, checks)
    }

    /// The facts of a collected test, its flow id among them; None for
    /// another node id.
    pub fn facts(&self, nodeid: &str) -> Option<Facts> {
        let known = self.tests.get(nodeid)?;
        let fallback;
        let empty = Resolution::default();
        let (item, resolution) = if let Some(i) = known.position {
            (&self.items[i], &self.resolved[i])
        } else {
            // Not in the batch (an item a plugin made after collection):
            // what the node id alone tells.
            fallback = Item::new(nodeid, &[]);
            (&fallback, &empty)
        };
        let (stage, exempt) = (known.stage.as_deref(), known.exempt.as_deref());
        let mut facts = facts(&self.policy.rules(), item, resolution, stage, exempt);
        facts.flow_id = Some(self.flows.get(known.n));
        Some(facts)
    }

    /// `(facts JSON, flow id)` of a collected test, for a process that does
    /// not write the records; None for another node id.
    pub fn get(&self, nodeid: &str) -> Option<(String, String)> {
        let facts = self.facts(nodeid)?;
        let json = serde_json::to_string(&facts).expect("facts serialize");
        Some((json, facts.flow_id.unwrap_or_default()))
    }

    /// The flow id of a collected test (as `get` gives it); None for another node id.
    pub fn flow(&self, nodeid: &str) -> Option<String> {
        let known = self.tests.get(nodeid)?;
        Some(self.flows.get(known.n))
    }

    pub fn len(&self) -> usize {
        self.tests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::owners::OwnersConfig;

    fn table(nodeids: &[&str]) -> (Table, Checks) {
        let engine = Arc::new(Engine::from_config(Config::default(), "defaults").unwrap());
        let owners = Owners::new(
            &OwnersConfig {
                markers: [("vllm".to_string(), "alec".to_string())].into(),
                ..OwnersConfig::default()
            },
            &engine.taxonomy,
        )
        .unwrap();
        let quarantine = Quarantine::parse(
            "q.toml",
            "[[quarantine]]\ntest = \"t.py::q*\"\nreason = \"r\"\nowner = \"o\"\nticket = \"T-1\"\nexpires = 2000-01-01\n",
        )
        .unwrap();
        let items = vec![
            Item::new("t.py::plain", &["unit", "pre_merge", "gpu_0", "vllm"]),
            Item::new("t.py::quarantined", &["unit", "flaky"]),
            Item::new("t.py::nongating", &["e2e"]),
        ];
        let none = std::collections::HashSet::<String>::new();
        let resolved: Vec<_> = items
            .iter()
            .map(|i| {
                crate::taxonomy::validate::resolve(
                    &engine.taxonomy,
                    i.marks.iter().map(|m| m.name.as_str()),
                    &none,
                )
            })
            .collect();
        let policy = Policy {
            engine,
            owners: Arc::new(owners),
            quarantine: Arc::new(quarantine),
            today: Date::parse("2026-01-01").unwrap(),
            default_reruns: 2,
            retries: true,
        };
        let stages = HashMap::from([("t.py::plain".to_string(), "unit".to_string())]);
        let exempt = HashMap::from([(
            "t.py::nongating".to_string(),
            "stage e2e is non-gating".to_string(),
        )]);
        Table::new(
            policy,
            Arc::new(items),
            Arc::new(resolved),
            nodeids.iter().map(|n| (*n).to_string()).collect(),
            stages,
            exempt,
        )
    }

    fn facts_of(table: &Table, nodeid: &str) -> (Facts, String) {
        let (json, flow) = table.get(nodeid).unwrap();
        (serde_json::from_str(&json).unwrap(), flow)
    }

    #[test]
    fn collection_learns_quarantine_and_retries_and_each_test_its_facts() {
        let ids = [
            "t.py::plain",
            "t.py::quarantined",
            "t.py::nongating",
            "t.py::unknown",
        ];
        let (table, checks) = table(&ids);
        assert_eq!(table.len(), 4);
        assert_eq!(
            checks,
            Checks {
                quarantined: vec![(
                    "t.py::quarantined".to_string(),
                    "quarantined: T-1 (o)".to_string()
                )],
                problems: vec![],
                reruns: vec![("t.py::quarantined".to_string(), 2)],
            }
        );
        let (plain, plain_flow) = facts_of(&table, "t.py::plain");
        assert_eq!(
            serde_json::to_string(&plain.markers).unwrap(),
            r#"{"lifecycle":["pre_merge"],"hardware":["gpu_0"],"type":["unit"],"framework":["vllm"]}"#
        );
        assert_eq!(plain.owner.as_deref(), Some("alec"));
        assert_eq!(plain.stage.as_deref(), Some("unit"));
        assert!(plain.gating);
        assert_eq!(plain.flow_id.as_deref(), Some(plain_flow.as_str()));
        // The same test asked twice gets the same flow id; another test another.
        assert_eq!(table.get("t.py::plain").unwrap().1, plain_flow);
        assert_eq!(table.flow("t.py::plain").unwrap(), plain_flow);
        assert!(table.flow("t.py::never_collected").is_none());
        let (q, q_flow) = facts_of(&table, "t.py::quarantined");
        assert_ne!(q_flow, plain_flow);
        assert!(!q.gating);
        assert!(q.quarantine.as_ref().unwrap().expired);
        assert_eq!(q.owner.as_deref(), Some("o"));
        let (n, _) = facts_of(&table, "t.py::nongating");
        assert_eq!(n.exempt.as_deref(), Some("stage e2e is non-gating"));
        let (unknown, _) = facts_of(&table, "t.py::unknown");
        assert!(unknown.markers.0.is_empty() && unknown.gating);
        assert!(table.get("t.py::never_collected").is_none());
    }

    #[test]
    fn a_flaky_marker_it_cannot_use_is_a_problem_at_collection() {
        let engine = Arc::new(Engine::from_config(Config::default(), "defaults").unwrap());
        let mut item = Item::new("t.py::bad", &["unit"]);
        let mut mark = crate::taxonomy::marker::Mark::named("flaky");
        mark.kwargs.insert(
            "reruns".to_string(),
            crate::taxonomy::marker::MarkValue::Str("many".to_string()),
        );
        item.marks.push(Arc::new(mark));
        let resolved = vec![Resolution::default()];
        let policy = Policy {
            engine,
            owners: Arc::new(Owners::default()),
            quarantine: Arc::new(Quarantine::default()),
            today: Date::parse("2026-01-01").unwrap(),
            default_reruns: 2,
            retries: true,
        };
        let (_, checks) = Table::new(
            policy,
            Arc::new(vec![item]),
            Arc::new(resolved),
            vec!["t.py::bad".to_string()],
            HashMap::new(),
            HashMap::new(),
        );
        assert_eq!(checks.problems.len(), 1, "{checks:?}");
        assert_eq!(checks.problems[0].0, "t.py::bad");
        assert!(checks.reruns.is_empty());
    }
}

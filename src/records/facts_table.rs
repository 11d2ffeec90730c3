//! The facts of one run's collected tests. At collection only what must be
//! known before any test runs is worked out (quarantine exemptions, retries,
//! flaky-marker problems); each test's facts JSON and flow id are made as
//! the test starts. On a large suite that keeps tens of thousands of strings
//! and tuples out of collection, and `--collect-only` pays nothing for them.

use std::sync::Arc;

use crate::clock::Date;
use crate::engine::Engine;
use crate::policy::retries;
use crate::policy::{Owners, Quarantine, QuarantineEntry as Entry};
use crate::records::facts::{facts, Facts, FlowIds, Rules};
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::Item;

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

/// What a pipeline's selection decided for the tests it kept, handed from
/// the selection to the facts without leaving the core.
#[derive(Debug, Default)]
pub struct Selected {
    /// The pipeline's stages, by name; `Kept::stage` indexes them.
    pub stage_names: Vec<String>,
    /// The kept tests, in the order they run.
    pub kept: Vec<Kept>,
    /// Why a non-gating kept test does not gate; None without a pipeline.
    pub non_gating: Option<String>,
}

/// One test the selection kept.
#[derive(Debug, Clone, Copy)]
pub struct Kept {
    /// Its position in the batch.
    pub position: usize,
    /// The first stage that selects it; None without a pipeline.
    pub stage: Option<usize>,
    /// False when the pipeline's gating expression leaves it out.
    pub gating: bool,
}

impl Selected {
    /// The stage name of a kept test, if a pipeline selected it.
    pub fn stage_name(&self, kept: &Kept) -> Option<&str> {
        kept.stage.map(|i| self.stage_names[i].as_str())
    }

    /// Each kept test's stage and exemption by node id; for a node id kept
    /// twice, the first of each wins.
    fn by_nodeid<'a>(
        &'a self,
        items: &'a [Item],
    ) -> foldhash::HashMap<&'a str, (Option<&'a str>, Option<&'a str>)> {
        let mut out: foldhash::HashMap<&str, (Option<&str>, Option<&str>)> =
            foldhash::HashMap::default();
        for kept in &self.kept {
            let entry = out.entry(items[kept.position].nodeid.as_str()).or_default();
            if entry.0.is_none() {
                entry.0 = self.stage_name(kept);
            }
            if entry.1.is_none() && !kept.gating {
                entry.1 = self.non_gating.as_deref();
            }
        }
        out
    }
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

/// A collected test's facts as its reports carry them to the process that
/// writes the records (an xdist controller).
#[derive(Debug)]
pub struct Attached {
    /// Its facts, as JSON.
    pub facts: String,
    pub flow_id: String,
    /// Why it does not gate (a pipeline's or the quarantine's word).
    pub exempt: Option<String>,
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
    /// items; `selected` is what a pipeline's selection decided for the
    /// tests it kept (their stage, and why a non-gating one does not gate).
    pub fn new(
        policy: Policy,
        items: Arc<Vec<Item>>,
        resolved: Arc<Vec<Resolution>>,
        nodeids: Vec<String>,
        selected: Option<&Selected>,
    ) -> (Table, Checks) {
        let index: foldhash::HashMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.nodeid.as_str(), i))
            .collect();
        let mut chosen = selected.map(|s| s.by_nodeid(&items)).unwrap_or_default();
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
            // Taken, not read: a node id collected twice keeps what the
            // selection said for its first collection only.
            let (stage, exempt) = chosen.remove(nodeid.as_str()).unwrap_or_default();
            let known = Known {
                position,
                n: n as u64,
                stage: stage.map(String::from),
                exempt: exempt.map(String::from),
            };
            tests.insert(nodeid, known);
        }
        drop(chosen);
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

    /// What a process that does not write the records sends with a
    /// collected test's reports; None for another node id.
    pub fn get(&self, nodeid: &str) -> Option<Attached> {
        let mut facts = self.facts(nodeid)?;
        let json = serde_json::to_string(&facts).expect("facts serialize");
        Some(Attached {
            facts: json,
            flow_id: facts.flow_id.take().unwrap_or_default(),
            exempt: facts.exempt.take(),
        })
    }

    /// The flow id of a collected test (as `get` gives it); None for another node id.
    pub fn flow(&self, nodeid: &str) -> Option<String> {
        let known = self.tests.get(nodeid)?;
        Some(self.flows.get(known.n))
    }

    pub fn len(&self) -> usize {
        self.tests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::OwnersConfig;

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
        let selected = Selected {
            stage_names: vec!["unit".to_string()],
            kept: vec![
                Kept {
                    position: 0,
                    stage: Some(0),
                    gating: true,
                },
                Kept {
                    position: 2,
                    stage: None,
                    gating: false,
                },
            ],
            non_gating: Some("stage e2e is non-gating".to_string()),
        };
        Table::new(
            policy,
            Arc::new(items),
            Arc::new(resolved),
            nodeids.iter().map(|n| (*n).to_string()).collect(),
            Some(&selected),
        )
    }

    fn facts_of(table: &Table, nodeid: &str) -> (Facts, String) {
        let attached = table.get(nodeid).unwrap();
        assert_eq!(
            serde_json::from_str::<Facts>(&attached.facts)
                .unwrap()
                .exempt,
            attached.exempt
        );
        (
            serde_json::from_str(&attached.facts).unwrap(),
            attached.flow_id,
        )
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
        assert_eq!(table.get("t.py::plain").unwrap().flow_id, plain_flow);
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
        let mut mark = crate::taxonomy::Mark::named("flaky");
        mark.kwargs.insert(
            "reruns".to_string(),
            crate::taxonomy::MarkValue::Str("many".to_string()),
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
            None,
        );
        assert_eq!(checks.problems.len(), 1, "{checks:?}");
        assert_eq!(checks.problems[0].0, "t.py::bad");
        assert!(checks.reruns.is_empty());
    }

    #[test]
    fn a_node_id_kept_twice_takes_the_first_stage_and_the_first_exemption() {
        let items = vec![Item::new("t.py::twice", &[]), Item::new("t.py::twice", &[])];
        let selected = Selected {
            stage_names: vec!["unit".to_string(), "e2e".to_string()],
            kept: vec![
                Kept {
                    position: 0,
                    stage: Some(0),
                    gating: true,
                },
                Kept {
                    position: 1,
                    stage: Some(1),
                    gating: false,
                },
            ],
            non_gating: Some("non-gating".to_string()),
        };
        let by_id = selected.by_nodeid(&items);
        assert_eq!(by_id["t.py::twice"], (Some("unit"), Some("non-gating")));
    }
}

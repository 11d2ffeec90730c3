//! Ownership (each component has a person in charge, its PIC): who follows up a failing
//! test, by the test's path or its markers.
//!
//! ```toml
//! [tool.pytest-dynamo.owners]
//! default = "pavithra"               # CI area "Test Fail"
//! [tool.pytest-dynamo.owners.markers]
//! vllm = "alec"
//! kvbm = "ryan"
//! [tool.pytest-dynamo.owners.paths]
//! "tests/router" = "router-team"     # a folder owns what is under it
//! ```
//!
//! A path rule wins over a marker (the longest pattern first), a component
//! marker over a framework marker over the other categories, then `default`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::policy::glob::{self, Glob};
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::{Resolved, Taxonomy, COMPONENT, FRAMEWORK};

const SOURCE: &str = "[tool.pytest-dynamo.owners]";

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OwnersConfig {
    /// The owner of tests no other rule names.
    pub default: Option<String>,
    /// Marker name -> owner.
    pub markers: BTreeMap<String, String>,
    /// Path, folder or pattern (relative to the rootdir) -> owner.
    pub paths: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// Canonical marker -> (precedence, owner).
    markers: HashMap<String, (usize, String)>,
    /// Longest pattern first.
    paths: Vec<(Glob, String)>,
    default: Option<String>,
}

fn check_owner(key: &str, owner: &str) -> Result<()> {
    if owner.trim().is_empty() {
        return Err(Error::config(
            SOURCE,
            format!("'{key}' has an empty owner"),
            "name the owner (a person or a team), or remove the line",
        ));
    }
    Ok(())
}

impl Owners {
    pub fn new(config: &OwnersConfig, taxonomy: &Taxonomy) -> Result<Owners> {
        // Precedence: component markers, then framework, then the rest, each
        // in taxonomy order.
        let order: Vec<&str> = [COMPONENT, FRAMEWORK]
            .into_iter()
            .chain(
                taxonomy
                    .categories
                    .iter()
                    .map(|c| c.name.as_str())
                    .filter(|c| *c != COMPONENT && *c != FRAMEWORK),
            )
            .collect();
        let mut markers = HashMap::new();
        for (name, owner) in &config.markers {
            check_owner(name, owner)?;
            let def = match taxonomy.resolve(name) {
                Resolved::Known(def) | Resolved::Alias(def) => def,
                Resolved::Unknown => {
                    let fix = match taxonomy.suggest(name) {
                        Some(s) => format!("did you mean '{s}'? A path belongs under [tool.pytest-dynamo.owners.paths]"),
                        None => "use a marker of the taxonomy (pytest --markers lists them), or put a path under [tool.pytest-dynamo.owners.paths]".into(),
                    };
                    return Err(Error::config(
                        format!("{SOURCE}.markers"),
                        format!("'{name}' is not a marker"),
                        fix,
                    ));
                }
            };
            let category = order
                .iter()
                .position(|c| *c == def.category)
                .unwrap_or(order.len());
            let within = taxonomy
                .category(&def.category)
                .and_then(|c| c.markers.iter().position(|m| *m == def.name))
                .unwrap_or(0);
            markers.insert(
                def.name.clone(),
                (category * 10_000 + within, owner.clone()),
            );
        }
        let mut paths = Vec::new();
        for (pattern, owner) in &config.paths {
            check_owner(pattern, owner)?;
            if pattern.contains("::") {
                return Err(Error::config(
                    format!("{SOURCE}.paths"),
                    format!("'{pattern}' is a test id, not a path"),
                    "own a file or a folder (tests/router), or a pattern (tests/**/test_kv*.py)",
                ));
            }
            let cleaned = pattern.trim_start_matches("./").to_string();
            paths.push((Glob::new(&cleaned), owner.clone()));
        }
        // The most specific rule first: more literal characters, then longer.
        paths.sort_by_key(|(g, _)| {
            let literal = g
                .pattern()
                .chars()
                .filter(|c| !matches!(c, '*' | '?'))
                .count();
            (
                std::cmp::Reverse(literal),
                std::cmp::Reverse(g.pattern().len()),
            )
        });
        if let Some(d) = &config.default {
            check_owner("default", d)?;
        }
        Ok(Owners {
            markers,
            paths,
            default: config.default.clone(),
        })
    }

    /// The owner of one test: its file (the node id up to `::`), then its markers.
    pub fn owner_of(&self, nodeid: &str, resolution: &Resolution) -> Option<&str> {
        if !self.paths.is_empty() {
            let file = nodeid.split("::").next().unwrap_or(nodeid);
            if let Some((_, owner)) = self.paths.iter().find(|(g, _)| glob::path_matches(g, file)) {
                return Some(owner);
            }
        }
        resolution
            .markers
            .keys()
            .filter_map(|m| self.markers.get(m))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, owner)| owner.as_str())
            .or(self.default.as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.markers.is_empty() && self.paths.is_empty() && self.default.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn resolution(t: &Taxonomy, names: &[&str]) -> Resolution {
        crate::taxonomy::validate::resolve(t, names.iter().copied(), &HashSet::<String>::new())
    }

    fn config(
        markers: &[(&str, &str)],
        paths: &[(&str, &str)],
        default: Option<&str>,
    ) -> OwnersConfig {
        OwnersConfig {
            default: default.map(String::from),
            markers: markers
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect(),
            paths: paths
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect(),
        }
    }

    #[test]
    fn a_component_wins_over_a_framework_and_a_path_over_both() {
        let t = Taxonomy::builtin();
        let owners = Owners::new(
            &config(
                &[("vllm", "alec"), ("kvbm", "ryan")],
                &[
                    ("tests/router", "router-team"),
                    ("tests/**/test_special.py", "sam"),
                ],
                Some("pavithra"),
            ),
            &t,
        )
        .unwrap();
        let r = resolution(&t, &["vllm", "kvbm", "nightly"]);
        assert_eq!(owners.owner_of("tests/kv/test_a.py::t", &r), Some("ryan"));
        let r = resolution(&t, &["vllm"]);
        assert_eq!(owners.owner_of("tests/kv/test_a.py::t", &r), Some("alec"));
        assert_eq!(
            owners.owner_of("tests/router/test_r.py::t[x]", &r),
            Some("router-team")
        );
        // More literal characters is more specific.
        assert_eq!(
            owners.owner_of("tests/router/x/test_special.py::t", &r),
            Some("sam")
        );
        assert_eq!(
            owners.owner_of("tests/a/test_special.py::t", &r),
            Some("sam")
        );
        let r = resolution(&t, &["unit"]);
        assert_eq!(
            owners.owner_of("tests/a/test_b.py::t", &r),
            Some("pavithra")
        );
    }

    #[test]
    fn no_rule_is_no_owner() {
        let t = Taxonomy::builtin();
        let owners = Owners::new(&OwnersConfig::default(), &t).unwrap();
        assert!(owners.is_empty());
        assert_eq!(owners.owner_of("t.py::a", &resolution(&t, &["vllm"])), None);
    }

    #[test]
    fn a_misspelled_marker_gets_a_suggestion() {
        let t = Taxonomy::builtin();
        let err = Owners::new(&config(&[("vlm", "alec")], &[], None), &t)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'vlm' is not a marker"), "{err}");
        assert!(err.contains("did you mean 'vllm'"), "{err}");
    }

    #[test]
    fn empty_owners_and_test_ids_are_errors() {
        let t = Taxonomy::builtin();
        let err = Owners::new(&config(&[("vllm", " ")], &[], None), &t)
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty owner"), "{err}");
        let err = Owners::new(&config(&[], &[("t.py::test_a", "x")], None), &t)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a test id"), "{err}");
    }
}

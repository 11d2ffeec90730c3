//! Which framework's tests a run keeps: by inclusion (the spec's "Option 1":
//! `... and vllm`), with framework-agnostic tests kept or dropped by the
//! configured rule, and the framework chosen from the changed files when
//! asked for (`auto`): the one framework the changes touch, else the default.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::Deserialize;

use crate::config::TABLE;
use crate::error::{Error, Result};
use crate::taxonomy::{Taxonomy, FRAMEWORK};

/// What happens to tests without a framework marker when a framework is chosen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agnostic {
    /// They run with every framework (they need none).
    #[default]
    Keep,
    /// Only the framework's own tests run (the spec's literal `and vllm`).
    Drop,
}

/// `[tool.pytest-dynamo.frameworks]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrameworksConfig {
    /// The framework when none is named (after `DYNAMO_TEST_FRAMEWORK` and
    /// `DYNAMO_DEFAULT_FRAMEWORK`), and `auto`'s fallback.
    pub default: Option<String>,
    pub agnostic: Agnostic,
    /// Framework -> regular expressions over changed paths (for `auto`).
    /// When absent, a path touches a framework when a path component or a
    /// `.`/`_`/`-` separated part of one is the framework's name.
    pub paths: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Clone)]
pub struct Frameworks {
    pub known: Vec<String>,
    pub default: Option<String>,
    pub agnostic: Agnostic,
    rules: Vec<(String, Regex)>,
}

/// The framework a run keeps and why, in words for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// None: every framework's tests.
    pub framework: Option<String>,
    pub why: String,
}

impl Frameworks {
    pub fn build(taxonomy: &Taxonomy, config: &FrameworksConfig, source: &str) -> Result<Self> {
        let known: Vec<String> = taxonomy
            .category(FRAMEWORK)
            .map(|c| c.markers.clone())
            .unwrap_or_default();
        let err = |key: &str, message: String, fix: String| {
            Error::config(
                source,
                format!("[{TABLE}.frameworks] {key}: {message}"),
                fix,
            )
        };
        let check = |key: &str, name: &str| -> Result<()> {
            if known.iter().any(|k| k == name) {
                return Ok(());
            }
            Err(err(
                key,
                unknown(taxonomy, &known, name),
                known_list(&known),
            ))
        };
        if let Some(d) = &config.default {
            check("default", d)?;
        }
        let mut rules = Vec::new();
        match &config.paths {
            Some(paths) => {
                for (framework, patterns) in paths {
                    let key = format!("paths.{framework}");
                    check(&key, framework)?;
                    for pattern in patterns {
                        let re = Regex::new(pattern).map_err(|e| {
                            err(
                                &key,
                                format!("'{pattern}' is not a valid regular expression: {e}"),
                                "fix the pattern (Rust regex syntax, like Python's re without look-around)"
                                    .into(),
                            )
                        })?;
                        rules.push((framework.clone(), re));
                    }
                }
            }
            None => {
                for framework in &known {
                    let re = Regex::new(&format!(
                        r"(^|[/._-]){}([/._-]|$)",
                        regex::escape(framework)
                    ))
                    .expect("an escaped name is a valid regex");
                    rules.push((framework.clone(), re));
                }
            }
        }
        Ok(Frameworks {
            known,
            default: config.default.clone(),
            agnostic: config.agnostic,
            rules,
        })
    }

    /// A framework named by a flag or variable (`where_` says which).
    pub fn check(&self, taxonomy: &Taxonomy, where_: &str, name: &str) -> Result<String> {
        if self.known.iter().any(|k| k == name) {
            return Ok(name.to_string());
        }
        Err(Error::config(
            where_,
            unknown(taxonomy, &self.known, name),
            format!(
                "{}, or auto (from the changed files), or all",
                known_list(&self.known)
            ),
        ))
    }

    /// The frameworks each changed path touches, with how many paths each.
    pub fn touched<'a>(&self, paths: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for path in paths {
            let hit: BTreeSet<&str> = self
                .rules
                .iter()
                .filter(|(_, re)| re.is_match(path))
                .map(|(f, _)| f.as_str())
                .collect();
            for f in hit {
                *out.entry(f.to_string()).or_default() += 1;
            }
        }
        out
    }

    /// `auto`: the one framework the changes touch, else the default
    /// (`default` is the default framework and where it came from).
    pub fn choose(&self, changed: &[String], default: Option<(&str, &str)>) -> Choice {
        let touched = self.touched(changed.iter().map(String::as_str));
        let files = plural(changed.len(), "changed file");
        if touched.len() == 1 {
            let (f, n) = touched.iter().next().expect("one entry");
            return Choice {
                framework: Some(f.clone()),
                why: format!("auto: the changes touch only {f} ({n} of {files})"),
            };
        }
        let situation = if touched.is_empty() {
            format!("auto: no framework-specific change ({files})")
        } else {
            let names: Vec<_> = touched.keys().map(String::as_str).collect();
            format!("auto: the changes touch {} ({files})", names.join(", "))
        };
        match default {
            Some((f, from)) => Choice {
                framework: Some(f.to_string()),
                why: format!("{situation}; default {f} from {from}"),
            },
            None => Choice {
                framework: None,
                why: format!("{situation}; no default framework, so all of them"),
            },
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn unknown(taxonomy: &Taxonomy, known: &[String], name: &str) -> String {
    let hint = crate::suggest::closest(name, known.iter().map(String::as_str))
        .or_else(|| taxonomy.suggest(name))
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    format!("'{name}' is not a framework marker{hint}")
}

fn known_list(known: &[String]) -> String {
    format!("use one of: {}", known.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frameworks(paths: Option<&[(&str, &[&str])]>) -> Result<Frameworks> {
        let config = FrameworksConfig {
            default: None,
            agnostic: Agnostic::Keep,
            paths: paths.map(|p| {
                p.iter()
                    .map(|(f, r)| {
                        (
                            (*f).to_string(),
                            r.iter().map(|s| (*s).to_string()).collect(),
                        )
                    })
                    .collect()
            }),
        };
        Frameworks::build(&Taxonomy::builtin(), &config, "pyproject.toml")
    }

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn the_default_rules_find_the_framework_in_a_path() {
        let f = frameworks(None).unwrap();
        let touched = f.touched(
            [
                "components/backends/vllm/main.py",
                "container/Dockerfile.sglang",
                "tests/test_trtllm_serve.py",
                "lib/vllmx/x.rs",
                "docs/README.md",
            ]
            .into_iter(),
        );
        let names: Vec<_> = touched.keys().map(String::as_str).collect();
        assert_eq!(names, ["sglang", "trtllm", "vllm"]);
    }

    #[test]
    fn one_touched_framework_is_chosen_else_the_default() {
        let f = frameworks(Some(&[
            ("vllm", &["^components/vllm/"]),
            ("sglang", &["^components/sglang/"]),
        ]))
        .unwrap();
        let one = f.choose(
            &files(&["components/vllm/a.py", "README.md"]),
            Some(("sglang", "x")),
        );
        assert_eq!(one.framework.as_deref(), Some("vllm"));
        assert_eq!(
            one.why,
            "auto: the changes touch only vllm (1 of 2 changed files)"
        );
        let two = f.choose(
            &files(&["components/vllm/a.py", "components/sglang/b.py"]),
            Some(("vllm", "DYNAMO_DEFAULT_FRAMEWORK")),
        );
        assert_eq!(two.framework.as_deref(), Some("vllm"));
        assert_eq!(
            two.why,
            "auto: the changes touch sglang, vllm (2 changed files); default vllm from DYNAMO_DEFAULT_FRAMEWORK"
        );
        let none = f.choose(&files(&["README.md"]), None);
        assert_eq!(none.framework, None);
        assert_eq!(
            none.why,
            "auto: no framework-specific change (1 changed file); no default framework, so all of them"
        );
    }

    #[test]
    fn bad_framework_configuration_is_an_error() {
        let err = frameworks(Some(&[("vllmm", &["x"])]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("paths.vllmm: 'vllmm' is not a framework marker (did you mean 'vllm'?)"),
            "{err}"
        );
        let err = frameworks(Some(&[("vllm", &["(unclosed"])]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'(unclosed' is not a valid regular expression"),
            "{err}"
        );
        let f = frameworks(None).unwrap();
        let err = f
            .check(&Taxonomy::builtin(), "--dynamo-framework", "sglan")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'sglan' is not a framework marker (did you mean 'sglang'?)"),
            "{err}"
        );
        assert!(
            err.contains("auto (from the changed files), or all"),
            "{err}"
        );
    }
}

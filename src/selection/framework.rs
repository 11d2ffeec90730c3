//! Which framework's tests a run keeps: by inclusion (a stage's expression
//! `and vllm`), with framework-agnostic tests kept or dropped by the
//! configured rule, and the framework chosen from the changed files when
//! asked for (`auto`): the one framework the changes touch, else the default.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use crate::error::TABLE;
use crate::error::{Error, Result};
use crate::selection::config::{Agnostic, FrameworksConfig};
use crate::taxonomy::{Taxonomy, FRAMEWORK};

static ENV_NAME: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("valid regex"));

/// The strategy's variables: the framework a job tests, and the default.
pub const DEFAULT_ENV: [&str; 2] = ["DYNAMO_TEST_FRAMEWORK", "DYNAMO_DEFAULT_FRAMEWORK"];

#[derive(Debug, Clone)]
pub struct Frameworks {
    pub known: Vec<String>,
    pub default: Option<String>,
    pub agnostic: Agnostic,
    /// The variable that names the framework, if any.
    pub named_env: Option<String>,
    /// The variable that gives the default framework, if any.
    pub default_env: Option<String>,
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
        let keys = Keys {
            taxonomy,
            known: &known,
            source,
        };
        if let Some(d) = &config.default {
            keys.check("default", d)?;
        }
        let env = keys.env(config)?;
        let rules = keys.path_rules(config)?;
        Ok(Frameworks {
            known,
            default: config.default.clone(),
            agnostic: config.agnostic,
            named_env: env.first().cloned(),
            default_env: env.get(1).cloned(),
            rules,
        })
    }

    /// A framework named by an environment variable the configuration lists
    /// under `env`: a value that is no framework names the variable, the
    /// value, and the key that says which variables are read.
    pub fn check_env(&self, taxonomy: &Taxonomy, var: &str, value: &str) -> Result<String> {
        if self.known.iter().any(|k| k == value) {
            return Ok(value.to_string());
        }
        Err(Error::config(
            format!("{var}={value}"),
            format!(
                "{} (pytest-dynamo reads {var} because [{TABLE}.frameworks] env lists it)",
                unknown(taxonomy, &self.known, value)
            ),
            format!(
                "set {var} to a framework marker ({}), auto or all; or, if {var} means something else in your CI, \
                 leave it out of [{TABLE}.frameworks] env (env = [] ignores the environment)",
                self.known.join(", ")
            ),
        ))
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

/// Checks of the `[frameworks]` keys, each error naming its key.
struct Keys<'a> {
    taxonomy: &'a Taxonomy,
    known: &'a [String],
    source: &'a str,
}

impl Keys<'_> {
    fn err(&self, key: &str, message: String, fix: String) -> Error {
        Error::config(
            self.source,
            format!("[{TABLE}.frameworks] {key}: {message}"),
            fix,
        )
    }

    /// `name` must be a framework marker.
    fn check(&self, key: &str, name: &str) -> Result<()> {
        if self.known.iter().any(|k| k == name) {
            return Ok(());
        }
        Err(self.err(
            key,
            unknown(self.taxonomy, self.known, name),
            known_list(self.known),
        ))
    }

    /// `env`: the variable that names the framework, then the one that
    /// gives the default (at most two, different, valid names).
    fn env(&self, config: &FrameworksConfig) -> Result<Vec<String>> {
        let env: Vec<String> = config
            .env
            .clone()
            .unwrap_or_else(|| DEFAULT_ENV.iter().map(|v| (*v).to_string()).collect());
        if env.len() > 2 {
            return Err(self.err(
                "env",
                format!("{} variables given; it takes at most two", env.len()),
                "list the variable that names the framework, then the one that gives the default, e.g. env = [\"DYNAMO_TEST_FRAMEWORK\", \"DYNAMO_DEFAULT_FRAMEWORK\"]".into(),
            ));
        }
        if let Some(bad) = env.iter().find(|v| !ENV_NAME.is_match(v)) {
            return Err(self.err(
                "env",
                format!("'{bad}' is not an environment variable name"),
                "use letters, digits and '_', not starting with a digit".into(),
            ));
        }
        if env.len() == 2 && env[0] == env[1] {
            return Err(self.err(
                "env",
                format!("'{}' is given twice", env[0]),
                "give two different variables, or only one".into(),
            ));
        }
        Ok(env)
    }

    /// The patterns over changed paths that say a change touches a
    /// framework: the configured `paths`, else the framework's name as a
    /// path component or a part of one.
    fn path_rules(&self, config: &FrameworksConfig) -> Result<Vec<(String, Regex)>> {
        let mut rules = Vec::new();
        match &config.paths {
            Some(paths) => {
                for (framework, patterns) in paths {
                    let key = format!("paths.{framework}");
                    self.check(&key, framework)?;
                    for pattern in patterns {
                        let re = Regex::new(pattern).map_err(|e| {
                            self.err(
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
                for framework in self.known {
                    let re = Regex::new(&format!(
                        r"(^|[/._-]){}([/._-]|$)",
                        regex::escape(framework)
                    ))
                    .expect("an escaped name is a valid regex");
                    rules.push((framework.clone(), re));
                }
            }
        }
        Ok(rules)
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
    let hint = crate::taxonomy::suggest::closest(name, known.iter().map(String::as_str))
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
            env: None,
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
    fn the_environment_variables_are_configurable() {
        let f = frameworks(None).unwrap();
        assert_eq!(f.named_env.as_deref(), Some("DYNAMO_TEST_FRAMEWORK"));
        assert_eq!(f.default_env.as_deref(), Some("DYNAMO_DEFAULT_FRAMEWORK"));
        let build = |env: &[&str]| {
            let config = FrameworksConfig {
                env: Some(env.iter().map(|v| (*v).to_string()).collect()),
                ..FrameworksConfig::default()
            };
            Frameworks::build(&Taxonomy::builtin(), &config, "pyproject.toml")
        };
        let none = build(&[]).unwrap();
        assert_eq!((none.named_env, none.default_env), (None, None));
        let one = build(&["CI_FRAMEWORK"]).unwrap();
        assert_eq!(one.named_env.as_deref(), Some("CI_FRAMEWORK"));
        assert_eq!(one.default_env, None);
        for (env, expected) in [
            (&["A", "B", "C"][..], "3 variables given"),
            (&["A B"][..], "'A B' is not an environment variable name"),
            (&["A", "A"][..], "'A' is given twice"),
        ] {
            let err = build(env).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("[tool.pytest-dynamo.frameworks] env"), "{err}");
        }
        let err = f
            .check_env(&Taxonomy::builtin(), "DYNAMO_TEST_FRAMEWORK", "dynamo")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("DYNAMO_TEST_FRAMEWORK=dynamo: 'dynamo' is not a framework marker"),
            "{err}"
        );
        assert!(err.contains("[tool.pytest-dynamo.frameworks] env"), "{err}");
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

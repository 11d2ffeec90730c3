//! Quarantine, how flaky tests are managed: tests that still run and are
//! recorded, but whose failures never gate. Each entry names the test (an id
//! or a pattern), why, who owns the fix, the ticket, and when the quarantine
//! expires; an expired entry is reported every run and, in strict mode,
//! fails it.
//!
//! ```toml
//! # pyproject.toml
//! [tool.pytest-dynamo.quarantine]
//! file = "quarantine.toml"
//! strict = true
//!
//! # quarantine.toml
//! [[quarantine]]
//! test = "tests/e2e/test_serve.py::test_restart[*]"
//! reason = "port race on restart"
//! owner = "alec"
//! ticket = "DYN-1234"
//! expires = 2026-03-31
//! ```

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::clock::Date;
use crate::error::{Error, Result};
use crate::policy::glob::{self, Glob};

const FIX: &str = concat!(
    "see ",
    crate::docs_url!("flakiness.md"),
    " for the quarantine file's format"
);

/// `[tool.pytest-dynamo.quarantine]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// The quarantine file, relative to the rootdir.
    pub file: Option<String>,
    /// An expired entry fails the run.
    pub strict: bool,
}

/// One entry of the quarantine file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// A test id, or a pattern (`*`, `**`, `?`).
    pub test: String,
    pub reason: String,
    pub owner: String,
    pub ticket: String,
    #[serde(
        deserialize_with = "deserialize_date",
        serialize_with = "serialize_date"
    )]
    pub expires: Date,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    quarantine: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Rule {
    entry: Entry,
    /// None: an exact test id.
    pattern: Option<Glob>,
}

/// The loaded quarantine of one run.
#[derive(Debug, Clone, Default)]
pub struct Quarantine {
    rules: Vec<Rule>,
    pub strict: bool,
    /// The file read (None: no quarantine configured).
    pub source: Option<String>,
}

/// A TOML date (`2026-03-31`) or the same as a string.
fn deserialize_date<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Date, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Date;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a date like 2026-03-31")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Date, E> {
            Date::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, m: A) -> std::result::Result<Date, A::Error> {
            let dt = toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(m))?;
            match (dt.date, dt.time) {
                (Some(d), None) => {
                    Date::new(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                        .ok_or_else(|| de::Error::custom(format!("{dt} is not a calendar date")))
                }
                _ => Err(de::Error::custom(format!(
                    "expected a date like 2026-03-31, found the date-time {dt}"
                ))),
            }
        }
    }
    d.deserialize_any(V)
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` passes a reference
fn serialize_date<S: serde::Serializer>(date: &Date, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(date)
}

impl Quarantine {
    /// Read the file the configuration names (relative to `rootdir`).
    pub fn load(rootdir: &Path, config: &QuarantineConfig) -> Result<Quarantine> {
        let Some(name) = config.file.as_deref() else {
            if config.strict {
                return Err(Error::config(
                    "[tool.pytest-dynamo.quarantine]",
                    "strict = true but no quarantine file is named",
                    "add file = \"quarantine.toml\" (relative to the rootdir), or remove strict",
                ));
            }
            return Ok(Quarantine::default());
        };
        let path = rootdir.join(name);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::config(
                &shown,
                format!("cannot read the quarantine file: {e}"),
                "create it, or fix file = ... in [tool.pytest-dynamo.quarantine] (relative to the rootdir)",
            )
        })?;
        let mut q = Quarantine::parse(&shown, &text)?;
        q.strict = config.strict;
        Ok(q)
    }

    pub fn parse(source: &str, text: &str) -> Result<Quarantine> {
        let file: File = toml::from_str(text).map_err(|e| {
            Error::config(
                source,
                format!("invalid quarantine file\n{}", e.to_string().trim_end()),
                FIX,
            )
        })?;
        let mut rules: Vec<Rule> = Vec::with_capacity(file.quarantine.len());
        for entry in file.quarantine {
            for (field, value) in [
                ("test", &entry.test),
                ("reason", &entry.reason),
                ("owner", &entry.owner),
                ("ticket", &entry.ticket),
            ] {
                if value.trim().is_empty() {
                    return Err(Error::config(
                        source,
                        format!("quarantine entry '{}' has an empty {field}", entry.test),
                        format!("every entry needs test, reason, owner, ticket and expires; fill in {field}"),
                    ));
                }
            }
            if rules.iter().any(|r| r.entry.test == entry.test) {
                return Err(Error::config(
                    source,
                    format!("'{}' is quarantined twice", entry.test),
                    "keep one entry per test or pattern",
                ));
            }
            let pattern = glob::is_pattern(&entry.test).then(|| Glob::new(&entry.test));
            rules.push(Rule { entry, pattern });
        }
        Ok(Quarantine {
            rules,
            strict: false,
            source: Some(source.to_string()),
        })
    }

    /// The entry that quarantines a test: an exact id first, then the first
    /// pattern in the file's order.
    pub fn entry_for(&self, nodeid: &str) -> Option<&Entry> {
        self.rules
            .iter()
            .find(|r| r.pattern.is_none() && r.entry.test == nodeid)
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|r| r.pattern.as_ref().is_some_and(|p| p.matches(nodeid)))
            })
            .map(|r| &r.entry)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.rules.iter().map(|r| &r.entry)
    }

    /// Entries whose expiry date is before `today`.
    pub fn expired(&self, today: Date) -> Vec<&Entry> {
        self.entries().filter(|e| e.expires < today).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Entry {
    /// Why a quarantined test does not gate, as the gating summary shows it.
    pub fn exemption(&self) -> String {
        format!("quarantined: {} ({})", self.ticket, self.owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[quarantine]]
test = "tests/test_a.py::test_exact[1]"
reason = "races"
owner = "alec"
ticket = "DYN-1"
expires = 2999-01-01

[[quarantine]]
test = "tests/e2e/**"
reason = "cluster unstable"
owner = "ryan"
ticket = "DYN-2"
expires = "2000-01-01"
"#;

    #[test]
    fn ids_and_patterns_match() {
        let q = Quarantine::parse("q.toml", FILE).unwrap();
        assert_eq!(
            q.entry_for("tests/test_a.py::test_exact[1]")
                .unwrap()
                .ticket,
            "DYN-1"
        );
        assert!(q.entry_for("tests/test_a.py::test_exact[2]").is_none());
        let e = q.entry_for("tests/e2e/sub/test_b.py::test_x").unwrap();
        assert_eq!(e.exemption(), "quarantined: DYN-2 (ryan)");
    }

    #[test]
    fn expired_entries_are_found() {
        let q = Quarantine::parse("q.toml", FILE).unwrap();
        let today = Date::parse("2026-06-01").unwrap();
        let expired: Vec<_> = q.expired(today).iter().map(|e| e.ticket.clone()).collect();
        assert_eq!(expired, ["DYN-2"]);
        // The expiry day itself is still covered.
        assert!(q.expired(Date::parse("2000-01-01").unwrap()).is_empty());
    }

    #[test]
    fn a_missing_field_is_named() {
        let text =
            "[[quarantine]]\ntest = \"t.py::a\"\nreason = \"r\"\nowner = \"o\"\nticket = \"T\"\n";
        let err = Quarantine::parse("q.toml", text).unwrap_err().to_string();
        assert!(err.contains("missing field `expires`"), "{err}");
        assert!(err.contains("fix: "), "{err}");
    }

    #[test]
    fn bad_dates_and_keys_are_errors() {
        let base =
            "[[quarantine]]\ntest = \"t.py::a\"\nreason = \"r\"\nowner = \"o\"\nticket = \"T\"\n";
        for (extra, expect) in [
            ("expires = \"soon\"", "2026-03-31"),
            ("expires = 2026-02-30", ""),
            ("expires = 2026-01-01T10:00:00", "date-time"),
            ("expires = 2026-01-01\nowners = \"x\"", "owners"),
        ] {
            let err = Quarantine::parse("q.toml", &format!("{base}{extra}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{extra}: {err}");
        }
    }

    #[test]
    fn empty_fields_and_duplicates_are_errors() {
        let entry = |ticket: &str| {
            format!(
                "[[quarantine]]\ntest = \"t.py::a\"\nreason = \"r\"\nowner = \"o\"\nticket = \"{ticket}\"\nexpires = 2999-01-01\n"
            )
        };
        let err = Quarantine::parse("q.toml", &entry(" "))
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty ticket"), "{err}");
        let err = Quarantine::parse("q.toml", &format!("{}{}", entry("A"), entry("B")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("quarantined twice"), "{err}");
    }

    #[test]
    fn strict_needs_a_file() {
        let config = QuarantineConfig {
            file: None,
            strict: true,
        };
        let err = Quarantine::load(Path::new("."), &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no quarantine file"), "{err}");
        let config = QuarantineConfig {
            file: Some("does-not-exist.toml".into()),
            strict: false,
        };
        let err = Quarantine::load(Path::new("."), &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the quarantine file"), "{err}");
    }
}

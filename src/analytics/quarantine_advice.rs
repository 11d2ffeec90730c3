//! Quarantine advice: flaky tests to quarantine, and quarantined tests to
//! release after K consecutive passes, written as a change to the quarantine
//! file (`[[quarantine]]` tables with `test`, `reason`, `owner`, `ticket`,
//! `expires`; `test` is a node id or a node-id pattern, see `crate::policy::glob`).
//!
//! The file's format belongs to the records feature; this reader only needs
//! `test`, keeps every other key as it is, and edits the text in place so
//! comments and order survive.

use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub test: String,
    pub reason: String,
    pub owner: String,
    pub ticket: String,
    /// `YYYY-MM-DD`.
    pub expires: String,
}

/// One `[[quarantine]]` table of the file as read.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub test: String,
    /// Lines `[start, end)` of the table in the file (0-based), when it is a
    /// `[[quarantine]]` table one can cut out.
    pub lines: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuarantineFile {
    pub path: String,
    pub text: String,
    pub entries: Vec<FileEntry>,
}

impl QuarantineFile {
    pub fn parse(path: &str, text: &str) -> Result<QuarantineFile> {
        let doc: toml::Table = toml::from_str(text).map_err(|e| {
            Error::config(
                path,
                format!("invalid quarantine file\n{}", e.to_string().trim_end()),
                "fix the TOML; each entry is a [[quarantine]] table with a `test` key",
            )
        })?;
        let mut tests = Vec::new();
        if let Some(list) = doc.get("quarantine") {
            let list = list.as_array().ok_or_else(|| {
                Error::config(
                    path,
                    "`quarantine` is not an array of tables",
                    "write each entry as a [[quarantine]] table",
                )
            })?;
            for (i, entry) in list.iter().enumerate() {
                let name = entry.get("test").and_then(toml::Value::as_str).ok_or_else(|| {
                    Error::config(
                        path,
                        format!("quarantine entry {} has no `test` string", i + 1),
                        "give every [[quarantine]] table a `test` key: a node id, test id or glob pattern",
                    )
                })?;
                tests.push(name.to_string());
            }
        }
        let spans = table_spans(text);
        let entries = tests
            .into_iter()
            .enumerate()
            .map(|(i, test)| FileEntry {
                test,
                lines: spans.get(i).copied(),
            })
            .collect::<Vec<_>>();
        // Only trust the spans when every entry is a [[quarantine]] table.
        let entries = if spans.len() == entries.len() {
            entries
        } else {
            entries
                .into_iter()
                .map(|e| FileEntry { lines: None, ..e })
                .collect()
        };
        Ok(QuarantineFile {
            path: path.to_string(),
            text: text.to_string(),
            entries,
        })
    }

    /// The file with `release` (entry indices) cut out and `add` appended.
    pub fn updated(&self, release: &[usize], add: &[Entry]) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut keep = vec![true; lines.len()];
        for &i in release {
            if let Some((a, mut b)) = self.entries[i].lines {
                // The blank lines after a table go with it.
                while b < lines.len() && lines[b].trim().is_empty() {
                    b += 1;
                }
                keep[a..b].iter_mut().for_each(|k| *k = false);
            }
        }
        let mut out = String::new();
        for (line, keep) in lines.iter().zip(&keep) {
            if *keep {
                out.push_str(line);
                out.push('\n');
            }
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        for entry in add {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&render_entry(entry));
        }
        out
    }
}

/// Lines `[start, end)` of each `[[quarantine]]` table: from its header to
/// the next table header, less trailing blank lines.
fn table_spans(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let headers: Vec<(usize, bool)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with('['))
        .map(|(i, l)| {
            let compact: String = l
                .split('#')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            (i, compact == "[[quarantine]]")
        })
        .collect();
    let mut spans = Vec::new();
    for (k, &(start, ours)) in headers.iter().enumerate() {
        if !ours {
            continue;
        }
        let mut end = headers.get(k + 1).map_or(lines.len(), |h| h.0);
        while end > start + 1 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
        spans.push((start, end));
    }
    spans
}

/// A `[[quarantine]]` table, values quoted by the TOML library.
pub fn render_entry(e: &Entry) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        "[[quarantine]]\ntest = {}\nreason = {}\nowner = {}\nticket = {}\nexpires = {}\n",
        q(&e.test),
        q(&e.reason),
        q(&e.owner),
        q(&e.ticket),
        q(&e.expires)
    )
}

/// Does an entry's `test` name this test: its node id, or a node-id
/// pattern over it (`crate::policy::glob`, the dialect the run and owners use).
pub fn matches(pattern: &str, nodeid: &str) -> bool {
    crate::policy::glob::names(pattern, nodeid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# quarantined tests\n\n[[quarantine]]\ntest = \"tests/a.py::test_x\"\nreason = \"flaky\"\nowner = \"alec\"\nticket = \"DYN-1\"\nexpires = \"2026-04-01\"\n\n[[quarantine]] # whole module\ntest = \"tests/b.py::*\"\nreason = \"port clash\"\nowner = \"ishan\"\nticket = \"DYN-2\"\nexpires = 2026-05-01\n";

    #[test]
    fn reads_entries_and_where_they_are() {
        let f = QuarantineFile::parse("q.toml", FILE).unwrap();
        assert_eq!(f.entries.len(), 2);
        assert_eq!(f.entries[0].test, "tests/a.py::test_x");
        assert_eq!(f.entries[0].lines, Some((2, 8)));
        assert_eq!(f.entries[1].lines, Some((9, 15)));
    }

    #[test]
    fn the_updated_file_drops_released_tables_and_appends_new_ones() {
        let f = QuarantineFile::parse("q.toml", FILE).unwrap();
        let add = Entry {
            test: "tests/c.py::test_\"q\"".into(),
            reason: "flaky: 2 of 10".into(),
            owner: String::new(),
            ticket: String::new(),
            expires: "2026-02-01".into(),
        };
        let out = f.updated(&[0], &[add]);
        assert!(
            out.starts_with("# quarantined tests\n\n[[quarantine]] # whole module\n"),
            "{out}"
        );
        assert!(!out.contains("test_x"));
        assert!(out.ends_with("expires = \"2026-02-01\"\n"), "{out}");
        let again = QuarantineFile::parse("q.toml", &out).unwrap();
        assert_eq!(again.entries.len(), 2);
        assert_eq!(again.entries[1].test, "tests/c.py::test_\"q\"");
    }

    #[test]
    fn bad_files_are_errors_that_say_what_to_fix() {
        let err = QuarantineFile::parse("q.toml", "[[quarantine]]\nreason = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("no `test`"), "{err}");
        let err = QuarantineFile::parse("q.toml", "[[quarantine]\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("q.toml: invalid quarantine file"),
            "{err}"
        );
        assert!(QuarantineFile::parse("q.toml", "")
            .unwrap()
            .entries
            .is_empty());
    }

    #[test]
    fn globs() {
        assert!(matches("tests/b.py::*", "tests/b.py::test_y[1]"));
        assert!(matches("tests/*/test_?.py::*", "tests/e2e/test_a.py::t"));
        // Brackets are literal, as at run time: parametrized ids carry them.
        assert!(!matches("t.py::test_[ab]", "t.py::test_b"));
        assert!(matches("t.py::test_split[*]", "t.py::test_split[a/b]"));
        assert!(matches("t.py::p[x", "t.py::p[x"));
        assert!(!matches("tests/b.py::*", "tests/a.py::t"));
        assert!(!matches("t.py::a", "t.py::ab"));
        // `*` stops at `/` in the file's path, as at run time.
        assert!(!matches("tests/*", "tests/unit/t.py::t"));
    }
}

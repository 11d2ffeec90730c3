//! Quarantine advice: flaky tests to quarantine, and quarantined tests to
//! release after K consecutive passes, written as a change to the quarantine
//! file (`[[quarantine]]` tables with `test`, `reason`, `owner`, `ticket`,
//! `expires`; `test` is a node id or a node-id pattern, see `policy/glob.rs`).
//!
//! The file's format belongs to the records feature; this reader only needs
//! `test`, keeps every other key as it is, and edits the file with
//! `toml_edit`, which keeps comments, order and formatting: a hand-made line
//! editor took a line starting with `[` inside a multi-line string for a
//! table header.

use serde::Serialize;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

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

/// One entry of the file as read.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub test: String,
    /// The entry as the file writes it, with the comment lines just above
    /// it: what releasing it cuts out.
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct QuarantineFile {
    pub path: String,
    pub entries: Vec<FileEntry>,
    doc: DocumentMut,
}

impl QuarantineFile {
    pub fn parse(path: &str, text: &str) -> Result<QuarantineFile> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            Error::config(
                path,
                format!("invalid quarantine file\n{}", e.to_string().trim_end()),
                "fix the TOML; each entry is a [[quarantine]] table with a `test` key",
            )
        })?;
        let missing = |i: usize| {
            Error::config(
                path,
                format!("quarantine entry {} has no `test` string", i + 1),
                "give every [[quarantine]] table a `test` key: a node id, test id or glob pattern",
            )
        };
        let entries = match doc.get("quarantine") {
            None => Vec::new(),
            Some(Item::ArrayOfTables(list)) => list
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let name = t
                        .get("test")
                        .and_then(Item::as_str)
                        .ok_or_else(|| missing(i))?;
                    Ok(FileEntry {
                        test: name.to_string(),
                        text: table_text(t),
                    })
                })
                .collect::<Result<_>>()?,
            Some(Item::Value(Value::Array(list))) => list
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let name = v
                        .as_inline_table()
                        .and_then(|t| t.get("test"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing(i))?;
                    Ok(FileEntry {
                        test: name.to_string(),
                        text: format!("{}\n", v.to_string().trim()),
                    })
                })
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(Error::config(
                    path,
                    "`quarantine` is not an array of tables",
                    "write each entry as a [[quarantine]] table",
                ))
            }
        };
        Ok(QuarantineFile {
            path: path.to_string(),
            entries,
            doc,
        })
    }

    /// The file with `release` (entry indices) cut out and `add` appended
    /// after the last entry; every other byte as it was.
    pub fn updated(&self, release: &[usize], add: &[Entry]) -> String {
        let mut doc = self.doc.clone();
        let mut release: Vec<usize> = release.to_vec();
        release.sort_unstable();
        release.dedup();
        // Comment lines above a released table that a blank line parts from
        // it (a file's heading, notes on the section) stay, for the table
        // that now follows; `(position, text)`.
        let mut orphans: Vec<(isize, String)> = Vec::new();
        let mut anchor = None;
        match doc.get_mut("quarantine") {
            Some(Item::ArrayOfTables(list)) => {
                anchor = list.iter().filter_map(Table::position).max();
                let n = list.len();
                for &i in release.iter().rev().filter(|&&i| i < n) {
                    let table = list.remove(i);
                    let (kept, _) = split_prefix(prefix_of(&table));
                    if let Some(pos) = table.position().filter(|_| !kept.is_empty()) {
                        orphans.push((pos, kept.to_string()));
                    }
                }
                for (k, e) in add.iter().enumerate() {
                    let mut t = entry_table(e);
                    // Right after the last entry of the file, in the order given.
                    t.set_position(anchor);
                    if k > 0 || !list.is_empty() || anchor.is_some() {
                        t.decor_mut().set_prefix("\n");
                    }
                    list.push(t);
                }
            }
            Some(Item::Value(Value::Array(list))) => {
                let n = list.len();
                for &i in release.iter().rev().filter(|&&i| i < n) {
                    list.remove(i);
                }
                for e in add {
                    list.push(entry_table(e).into_inline_table());
                }
            }
            _ => {
                if !add.is_empty() {
                    let mut list = ArrayOfTables::new();
                    let blank = !doc.to_string().trim().is_empty();
                    for (k, e) in add.iter().enumerate() {
                        let mut t = entry_table(e);
                        if k > 0 || blank {
                            t.decor_mut().set_prefix("\n");
                        }
                        list.push(t);
                    }
                    doc.insert("quarantine", Item::ArrayOfTables(list));
                }
            }
        }
        orphans.sort_by_key(|o| o.0);
        for (pos, kept) in orphans.into_iter().rev() {
            adopt(&mut doc, pos, anchor, !add.is_empty(), &kept);
        }
        doc.to_string()
    }
}

/// Give `kept` (comments above a released table at `pos`) to the table that
/// now follows it, or to the end of the file.
fn adopt(doc: &mut DocumentMut, pos: isize, anchor: Option<isize>, added: bool, kept: &str) {
    let mut positions = Vec::new();
    collect_positions(doc.as_table(), &mut positions);
    let next_before_added = positions
        .iter()
        .copied()
        .filter(|&p| p > pos && anchor.is_some_and(|a| p <= a))
        .min();
    let target = match next_before_added {
        Some(p) => table_at(doc.as_table_mut(), p),
        None if added => doc
            .get_mut("quarantine")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|list| list.iter_mut().find(|t| t.position() == anchor)),
        None => positions
            .iter()
            .copied()
            .filter(|&p| p > pos)
            .min()
            .and_then(|p| table_at(doc.as_table_mut(), p)),
    };
    // `kept` ends with a blank line: one blank line where it meets what
    // follows, not two.
    if let Some(table) = target {
        let joined = format!("{kept}{}", prefix_of(table).trim_start_matches('\n'));
        table.decor_mut().set_prefix(joined);
    } else {
        let rest = doc
            .trailing()
            .as_str()
            .unwrap_or("")
            .trim_start_matches('\n');
        let joined = format!("{kept}{rest}");
        doc.set_trailing(joined);
    }
}

fn collect_positions(table: &Table, out: &mut Vec<isize>) {
    for (_, item) in table {
        let children: Vec<&Table> = match item {
            Item::Table(t) => vec![t],
            Item::ArrayOfTables(list) => list.iter().collect(),
            _ => continue,
        };
        for t in children {
            if let Some(p) = t.position().filter(|_| !t.is_implicit() && !t.is_dotted()) {
                out.push(p);
            }
            collect_positions(t, out);
        }
    }
}

fn table_at(table: &mut Table, pos: isize) -> Option<&mut Table> {
    for (_, item) in table.iter_mut() {
        let children: Vec<&mut Table> = match item {
            Item::Table(t) => vec![t],
            Item::ArrayOfTables(list) => list.iter_mut().collect(),
            _ => continue,
        };
        for t in children {
            if t.position() == Some(pos) && !t.is_implicit() && !t.is_dotted() {
                return Some(t);
            }
            if let Some(found) = table_at(t, pos) {
                return Some(found);
            }
        }
    }
    None
}

fn prefix_of(table: &Table) -> &str {
    table
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
}

/// A table's prefix as `(kept, attached)`: the comment lines (and the
/// header's indent) right above the header go with the table; what a blank
/// line parts from it does not.
fn split_prefix(prefix: &str) -> (&str, &str) {
    let mut cut = prefix.len();
    let mut lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        cut -= lines.pop().map_or(0, str::len);
    }
    for line in lines.iter().rev() {
        if line.trim().is_empty() {
            break;
        }
        cut -= line.len();
    }
    prefix.split_at(cut)
}

/// The entry as its own file would write it: its header, keys and the
/// comment lines attached above it.
fn table_text(table: &Table) -> String {
    let mut t = table.clone();
    let (_, attached) = split_prefix(prefix_of(table));
    let attached = attached.to_string();
    t.decor_mut().set_prefix(attached);
    t.set_position(None);
    one_table(t)
}

fn one_table(table: Table) -> String {
    let mut list = ArrayOfTables::new();
    list.push(table);
    let mut doc = DocumentMut::new();
    doc.insert("quarantine", Item::ArrayOfTables(list));
    doc.to_string()
}

fn entry_table(e: &Entry) -> Table {
    let mut t = Table::new();
    for (key, value) in [
        ("test", &e.test),
        ("reason", &e.reason),
        ("owner", &e.owner),
        ("ticket", &e.ticket),
        ("expires", &e.expires),
    ] {
        t.insert(key, toml_edit::value(value.as_str()));
    }
    t
}

/// A `[[quarantine]]` table, values quoted by `toml_edit`, as `updated` writes it.
pub fn render_entry(e: &Entry) -> String {
    one_table(entry_table(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    // Whether an entry's `test` names a test: the dialect the run and owners use.
    use crate::policy::names as matches;

    const FILE: &str = "# quarantined tests\n\n[[quarantine]]\ntest = \"tests/a.py::test_x\"\nreason = \"flaky\"\nowner = \"alec\"\nticket = \"DYN-1\"\nexpires = \"2026-04-01\"\n\n[[quarantine]] # whole module\ntest = \"tests/b.py::*\"\nreason = \"port clash\"\nowner = \"ishan\"\nticket = \"DYN-2\"\nexpires = 2026-05-01\n";

    /// Comments, a multi-line string whose lines start with `[`, odd spacing,
    /// another table after the entries, and a comment at the end.
    const TRICKY: &str = r#"# Tests out of the gate until fixed.
# File a ticket first.

# the router
[[quarantine]]
test = "tests/a.py::test_x"
reason = """
port clash on restart; seen on:
[x] H100
[[quarantine]]
"""
owner   = "alec"    # on call
ticket = 'DYN-1'
expires = 2026-04-01

[[quarantine]]   # whole module
test = "tests/b.py::*"
reason = "teardown race"
owner = "ishan"
ticket = "DYN-2"
expires = 2026-05-01

[notes]
text = "kept"
# end
"#;

    fn new_entry(test: &str) -> Entry {
        Entry {
            test: test.into(),
            reason: "flaky: 2 of 10".into(),
            owner: "ryan".into(),
            ticket: "DYN-9".into(),
            expires: "2026-02-01".into(),
        }
    }

    #[test]
    fn reads_entries_and_their_text() {
        let f = QuarantineFile::parse("q.toml", FILE).unwrap();
        assert_eq!(f.entries.len(), 2);
        assert_eq!(f.entries[0].test, "tests/a.py::test_x");
        // The heading a blank line parts from the table is not the table's.
        assert!(f.entries[0]
            .text
            .starts_with("[[quarantine]]\ntest = \"tests/a.py::test_x\"\n"));
        assert!(f.entries[1]
            .text
            .starts_with("[[quarantine]] # whole module\n"));
        let f = QuarantineFile::parse("q.toml", TRICKY).unwrap();
        let tests: Vec<&str> = f.entries.iter().map(|e| e.test.as_str()).collect();
        assert_eq!(tests, ["tests/a.py::test_x", "tests/b.py::*"]);
        assert!(f.entries[0]
            .text
            .starts_with("# the router\n[[quarantine]]\n"));
    }

    #[test]
    fn adding_keeps_every_byte_and_inserts_after_the_last_entry() {
        let f = QuarantineFile::parse("q.toml", TRICKY).unwrap();
        let out = f.updated(&[], &[new_entry("tests/c.py::test_\"q\"[a|b]")]);
        let at = TRICKY.find("\n[notes]").unwrap();
        let inserted = "\n[[quarantine]]\ntest = 'tests/c.py::test_\"q\"[a|b]'\nreason = \"flaky: 2 of 10\"\nowner = \"ryan\"\nticket = \"DYN-9\"\nexpires = \"2026-02-01\"\n";
        assert_eq!(out, format!("{}{inserted}{}", &TRICKY[..at], &TRICKY[at..]));
        let again = QuarantineFile::parse("q.toml", &out).unwrap();
        assert_eq!(again.entries.len(), 3);
        assert_eq!(again.entries[2].test, "tests/c.py::test_\"q\"[a|b]");
        // Nothing to change: the file as it was.
        assert_eq!(f.updated(&[], &[]), TRICKY);
    }

    #[test]
    fn releasing_cuts_the_table_and_its_comment_lines_only() {
        let f = QuarantineFile::parse("q.toml", TRICKY).unwrap();
        let out = f.updated(&[0], &[]);
        let first = TRICKY.find("# the router").unwrap();
        let second = TRICKY.find("[[quarantine]]   # whole module").unwrap();
        assert_eq!(out, format!("{}{}", &TRICKY[..first], &TRICKY[second..]));
        let out = f.updated(&[1], &[new_entry("t.py::n")]);
        assert!(!out.contains("tests/b.py::*") && out.contains("[x] H100\n[[quarantine]]\n\"\"\""));
        assert!(
            out.contains("expires = 2026-04-01\n\n[[quarantine]]\ntest = \"t.py::n\""),
            "{out}"
        );
        assert!(
            out.ends_with("expires = \"2026-02-01\"\n\n[notes]\ntext = \"kept\"\n# end\n"),
            "{out}"
        );
        // Everything released: the heading stays, new entries follow it.
        let out = f.updated(&[0, 1], &[new_entry("t.py::n")]);
        assert!(out.starts_with("# Tests out of the gate until fixed.\n# File a ticket first.\n\n[[quarantine]]\ntest = \"t.py::n\""), "{out}");
        let out = QuarantineFile::parse("q.toml", FILE)
            .unwrap()
            .updated(&[0, 1], &[]);
        assert_eq!(out, "# quarantined tests\n\n");
    }

    #[test]
    fn a_new_file_and_an_inline_array() {
        let out =
            QuarantineFile::default().updated(&[], &[new_entry("t.py::a"), new_entry("t.py::b")]);
        assert!(
            out.starts_with("[[quarantine]]\ntest = \"t.py::a\""),
            "{out}"
        );
        assert_eq!(QuarantineFile::parse("q", &out).unwrap().entries.len(), 2);
        assert_eq!(out.matches("\n\n[[quarantine]]").count(), 1, "{out}");
        let inline = "quarantine = [\n  { test = \"t.py::a\", reason = \"r\" },\n  { test = \"t.py::b\", reason = \"r\" },\n]\n";
        let f = QuarantineFile::parse("q.toml", inline).unwrap();
        assert_eq!(f.entries[1].test, "t.py::b");
        let out = f.updated(&[0], &[new_entry("t.py::c")]);
        let tests: Vec<String> = QuarantineFile::parse("q.toml", &out)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.test)
            .collect();
        assert_eq!(tests, ["t.py::b", "t.py::c"], "{out}");
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
        let err = QuarantineFile::parse("q.toml", "[quarantine]\ntest = \"a\"\n").unwrap_err();
        assert!(err.to_string().contains("not an array of tables"), "{err}");
        assert!(QuarantineFile::parse("q.toml", "")
            .unwrap()
            .entries
            .is_empty());
    }

    #[test]
    fn the_prefix_splits_at_the_last_blank_line() {
        assert_eq!(split_prefix("# a\n\n# b\n"), ("# a\n\n", "# b\n"));
        assert_eq!(split_prefix("# a\n\n"), ("# a\n\n", ""));
        assert_eq!(split_prefix("# b\n  "), ("", "# b\n  "));
        assert_eq!(split_prefix(""), ("", ""));
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

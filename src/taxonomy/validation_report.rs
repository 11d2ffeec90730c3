//! The validation report the user reads: every offending test, grouped by
//! file, each problem with its fix. Parametrizations of one function with the
//! same problems are folded into one entry.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::taxonomy::validate::{code, Finding, Problem, Validation};

/// The report of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub file: String,
    pub tests: usize,
    pub text: String,
}

struct Entry<'a> {
    name: String,
    count: usize,
    problems: &'a [Problem],
}

fn entries<'a>(findings: &[&'a Finding]) -> Vec<Entry<'a>> {
    let mut out: Vec<Entry> = Vec::new();
    for f in findings {
        let function = f.nodeid.split('[').next().unwrap_or(&f.nodeid);
        if let Some(last) = out.last_mut() {
            let last_function = last.name.split('[').next().unwrap_or(&last.name);
            if last_function == function
                && last.problems == f.problems.as_slice()
                && f.nodeid.contains('[')
            {
                last.count += 1;
                last.name = format!("{function}[*]");
                continue;
            }
        }
        out.push(Entry {
            name: f.nodeid.clone(),
            count: 1,
            problems: &f.problems,
        });
    }
    out
}

/// One report per file, in file order.
pub fn by_file(validation: &Validation) -> Vec<FileReport> {
    by_file_capped(validation, usize::MAX)
}

/// One report per file, in file order, each listing at most `per_file`
/// entries and then how many tests it left out: a legacy suite with
/// thousands of offenders must not print a line per problem of each.
pub fn by_file_capped(validation: &Validation, per_file: usize) -> Vec<FileReport> {
    let mut files: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &validation.findings {
        files
            .entry(f.nodeid.split("::").next().unwrap_or(&f.nodeid))
            .or_default()
            .push(f);
    }
    files
        .into_iter()
        .map(|(file, findings)| {
            let mut text = String::new();
            let all = entries(&findings);
            let left_out: usize = all.iter().skip(per_file).map(|e| e.count).sum();
            for e in all.iter().take(per_file) {
                let shown = e
                    .name
                    .strip_prefix(file)
                    .and_then(|s| s.strip_prefix("::"))
                    .unwrap_or(&e.name);
                if e.count > 1 {
                    let _ = writeln!(text, "{shown}  ({} parametrizations)", e.count);
                } else {
                    let _ = writeln!(text, "{shown}");
                }
                for p in e.problems {
                    let _ = writeln!(text, "    {} {}", p.code, p.message);
                    let _ = writeln!(text, "           fix: {}", p.fix);
                }
            }
            if left_out > 0 {
                let _ = writeln!(
                    text,
                    "... and {left_out} more test{} in this file",
                    if left_out == 1 { "" } else { "s" }
                );
            }
            FileReport {
                file: file.to_string(),
                tests: findings.len(),
                text,
            }
        })
        .collect()
}

/// What a rule is about, for the per-rule counts.
fn rule_title(code: &str) -> &'static str {
    match code {
        code::LIFECYCLE => "no lifecycle marker",
        code::HARDWARE => "no hardware marker, or more than one",
        code::TYPE => "no type marker",
        code::CONTRADICTION => "contradicting markers",
        code::UNKNOWN => "unknown marker",
        code::CATEGORY_COUNT => "too few or too many markers of a category",
        _ => "other",
    }
}

/// Every rule that some test breaks, with how many tests break it, one
/// line each (`  DYN001  4200 tests: no lifecycle marker`), by code.
pub fn rule_counts(validation: &Validation) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &validation.findings {
        let mut codes: Vec<&str> = f.problems.iter().map(|p| p.code).collect();
        codes.sort_unstable();
        codes.dedup();
        for c in codes {
            *counts.entry(c).or_default() += 1;
        }
    }
    counts.into_iter().fold(String::new(), |mut out, (c, n)| {
        let _ = writeln!(
            out,
            "  {c}  {n} test{}: {}",
            if n == 1 { "" } else { "s" },
            rule_title(c)
        );
        out
    })
}

/// The full list as JSON: the headline's numbers and every offending test
/// with its problems, for tools and for reading what the terminal left out.
pub fn to_json(validation: &Validation) -> String {
    let findings: Vec<serde_json::Value> = validation
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "nodeid": f.nodeid,
                "line": f.line,
                "problems": f.problems.iter().map(|p| serde_json::json!({
                    "code": p.code,
                    "message": p.message,
                    "fix": p.fix,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "checked": validation.checked,
        "offenders": validation.findings.len(),
        "findings": findings,
    });
    format!("{doc:#}\n")
}

/// `12 tests in 3 files break the marker rules`.
pub fn headline(validation: &Validation) -> String {
    let tests = validation.findings.len();
    let mut files: Vec<&str> = validation
        .findings
        .iter()
        .map(|f| f.nodeid.split("::").next().unwrap_or(&f.nodeid))
        .collect();
    files.dedup();
    files.sort_unstable();
    files.dedup();
    format!(
        "{tests} test{} in {} file{} break{} the marker rules (of {} checked)",
        if tests == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if tests == 1 { "s" } else { "" },
        validation.checked
    )
}

/// The whole report as one text: headline, then each file.
pub fn render(validation: &Validation) -> String {
    let mut out = format!("pytest-dynamo: {}\n", headline(validation));
    for file in by_file(validation) {
        let _ = write!(out, "\n{}\n{}", file.file, indent(&file.text));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().fold(String::new(), |mut out, l| {
        let _ = writeln!(out, "  {l}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(nodeid: &str, code: &'static str) -> Finding {
        Finding {
            nodeid: nodeid.into(),
            line: 1,
            problems: vec![Problem {
                code,
                message: "m".into(),
                fix: "f".into(),
            }],
        }
    }

    #[test]
    fn findings_are_grouped_by_file_and_parametrizations_fold() {
        let v = Validation {
            findings: vec![
                finding("a.py::t[1]", code::LIFECYCLE),
                finding("a.py::t[2]", code::LIFECYCLE),
                finding("a.py::u", code::TYPE),
                finding("b.py::C::v", code::TYPE),
            ],
            aliases: vec![],
            checked: 10,
        };
        let files = by_file(&v);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].tests, 3);
        assert!(
            files[0].text.starts_with("t[*]  (2 parametrizations)\n"),
            "{}",
            files[0].text
        );
        assert!(files[1].text.starts_with("C::v\n"));
        assert_eq!(
            headline(&v),
            "4 tests in 2 files break the marker rules (of 10 checked)"
        );
        assert!(render(&v).contains("\nb.py\n  C::v\n"));
    }

    #[test]
    fn a_capped_file_says_how_many_tests_it_left_out() {
        let v = Validation {
            findings: vec![
                finding("a.py::t", code::LIFECYCLE),
                finding("a.py::u", code::TYPE),
                finding("a.py::w[1]", code::TYPE),
                finding("a.py::w[2]", code::TYPE),
            ],
            aliases: vec![],
            checked: 4,
        };
        let files = by_file_capped(&v, 1);
        assert_eq!(files[0].tests, 4);
        assert!(files[0].text.starts_with("t\n"), "{}", files[0].text);
        assert!(!files[0].text.contains("\nu\n"), "{}", files[0].text);
        assert!(
            files[0]
                .text
                .ends_with("... and 3 more tests in this file\n"),
            "{}",
            files[0].text
        );
        assert_eq!(
            rule_counts(&v),
            "  DYN001  1 test: no lifecycle marker\n  DYN003  3 tests: no type marker\n"
        );
        let json: serde_json::Value = serde_json::from_str(&to_json(&v)).unwrap();
        assert_eq!(json["offenders"], 4);
        assert_eq!(json["findings"][2]["nodeid"], "a.py::w[1]");
        assert_eq!(json["findings"][0]["problems"][0]["code"], "DYN001");
    }
}

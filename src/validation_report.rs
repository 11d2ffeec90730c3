//! The validation report the user reads: every offending test, grouped by
//! file, each problem with its fix. Parametrizations of one function with the
//! same problems are folded into one entry.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::validate::{Finding, Problem, Validation};

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
            for e in entries(&findings) {
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
            FileReport {
                file: file.to_string(),
                tests: findings.len(),
                text,
            }
        })
        .collect()
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
    use crate::validate::code;

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
}

//! The lint's output: `path:line:col: CODE message (fix: ...)` lines as
//! linters print them, JSON, and SARIF 2.1.0 for code-scanning services.

use std::fmt::Write;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::lint::{Finding, LintReport, Severity, SYNTAX, UNRESOLVED};
use crate::taxonomy::validate::code;

/// Every code the lint reports: `(code, name, description)`.
pub const RULES: &[(&str, &str, &str)] = &[
    (code::LIFECYCLE, "lifecycle", "A test carries its lifecycle marker: when it runs."),
    (code::HARDWARE, "hardware", "A test carries exactly one hardware marker, the lowest hardware it runs on."),
    (code::TYPE, "type", "A test carries a type marker: what kind of test it is."),
    (code::CONTRADICTION, "contradiction", "No contradictory markers, such as a GPU model on a CPU-only test."),
    (code::UNKNOWN, "unknown-marker", "No misspelled marker: an unknown name close to a known marker."),
    (code::CATEGORY_COUNT, "category-count", "A project-defined category's marker count."),
    (code::ALIAS, "deprecated-alias", "A deprecated alias of a taxonomy marker is in use."),
    (UNRESOLVED, "unresolved", "Markers that cannot be resolved without importing the test; collection-time validation checks them."),
    (SYNTAX, "syntax-error", "The file does not parse, so its tests cannot be checked."),
];

/// What a SARIF path keeps as it is: RFC 3986's unreserved characters and
/// the `/` between segments. Everything else is percent-encoded (`:` too,
/// which would read as a scheme in a relative reference).
const URI_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A finding's path as a SARIF `artifactLocation`: relative to the source
/// root, or a `file://` URI for a file outside the invocation directory.
fn artifact_location(path: &str) -> Value {
    let encoded = utf8_percent_encode(path, URI_PATH).to_string();
    if path.starts_with('/') {
        json!({"uri": format!("file://{encoded}")})
    } else {
        json!({"uri": encoded, "uriBaseId": "%SRCROOT%"})
    }
}

/// Who a finding concerns: one test, the parametrizations of one, or a count.
pub fn label(finding: &Finding) -> Option<String> {
    let local = |nodeid: &str| -> String {
        nodeid
            .split_once("::")
            .map_or(nodeid, |(_, rest)| rest)
            .to_string()
    };
    // More than listed when a node id stands for many parametrizations.
    let count = finding.count.max(finding.tests.len() as u64);
    match finding.tests.as_slice() {
        [] => None,
        [one] if count == 1 => Some(local(one)),
        many => {
            let function = |n: &str| n.split('[').next().unwrap_or(n).to_string();
            let first = function(&many[0]);
            if many.iter().all(|n| function(n) == first) {
                Some(format!("{}[*] ({count} parametrizations)", local(&first)))
            } else {
                Some(format!("{count} tests"))
            }
        }
    }
}

fn line(f: &Finding) -> String {
    let who = label(f).map(|l| format!("{l}: ")).unwrap_or_default();
    format!(
        "{}:{}:{}: {} {who}{} (fix: {})",
        f.path, f.pos.line, f.pos.col, f.code, f.message, f.fix
    )
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The closing summary line.
pub fn summary(report: &LintReport) -> String {
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    let mut out = format!(
        "pytest-dynamo lint: {}, {} ({} in {} checked",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(report.tests, "test"),
        plural(report.files, "file"),
    );
    if report.unresolved > 0 {
        let _ = write!(
            out,
            "; {} left to collection-time validation",
            plural(report.unresolved, "test")
        );
    }
    out.push(')');
    out
}

/// One line per finding, then the summary.
pub fn text(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let _ = writeln!(out, "{}", line(f));
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "path": f.path,
        "line": f.pos.line,
        "column": f.pos.col,
        "code": f.code,
        "severity": f.severity.as_str(),
        "message": f.message,
        "fix": f.fix,
        "tests": f.tests,
        "count": f.count,
    })
}

pub fn json(report: &LintReport) -> String {
    let value = json!({
        "version": 1,
        "rootdir": report.rootdir,
        "files": report.files,
        "tests": report.tests,
        "unresolved": report.unresolved,
        "errors": report.count(Severity::Error),
        "warnings": report.count(Severity::Warning),
        "findings": report.findings.iter().map(finding_json).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// SARIF 2.1.0, one result per finding, rules described in the driver.
pub fn sarif(report: &LintReport) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, name, description)| {
            let level = if *id == code::ALIAS || *id == UNRESOLVED {
                "warning"
            } else {
                "error"
            };
            json!({
                "id": id,
                "name": name,
                "shortDescription": {"text": description},
                "fullDescription": {"text": description},
                "defaultConfiguration": {"level": level},
                "help": {"text": format!("{description} See {} and {}.", crate::docs_url!("lint.md"), crate::docs_url!("markers.md"))},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let who = label(f).map(|l| format!("{l}: ")).unwrap_or_default();
            json!({
                "ruleId": f.code,
                "ruleIndex": RULES.iter().position(|(id, _, _)| *id == f.code).unwrap_or(0),
                "level": f.severity.as_str(),
                "message": {"text": format!("{who}{} (fix: {})", f.message, f.fix)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact_location(&f.path),
                        "region": {"startLine": f.pos.line, "startColumn": f.pos.col},
                    }
                }],
                "partialFingerprints": {
                    "dynamoFinding/v1": format!("{}:{}:{}", f.code, f.path, f.tests.first().map_or(f.message.as_str(), String::as_str)),
                },
                "properties": {"tests": f.tests, "fix": f.fix},
            })
        })
        .collect();
    let value = json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pytest-dynamo",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::source::Pos;

    fn finding(code: &'static str, tests: &[&str]) -> Finding {
        Finding {
            path: "tests/test_a.py".into(),
            pos: Pos { line: 3, col: 5 },
            code,
            severity: Severity::Error,
            message: "no lifecycle marker".into(),
            fix: "add one".into(),
            tests: tests.iter().map(|s| (*s).to_string()).collect(),
            count: tests.len() as u64,
        }
    }

    #[test]
    fn lines_read_like_a_linters() {
        let f = finding(code::LIFECYCLE, &["tests/test_a.py::TestA::test_x"]);
        assert_eq!(
            line(&f),
            "tests/test_a.py:3:5: DYN001 TestA::test_x: no lifecycle marker (fix: add one)"
        );
        let f = finding(code::LIFECYCLE, &["t.py::test_p[1]", "t.py::test_p[2]"]);
        assert_eq!(label(&f).unwrap(), "test_p[*] (2 parametrizations)");
        let f = finding(code::LIFECYCLE, &["t.py::test_p", "t.py::test_q"]);
        assert_eq!(label(&f).unwrap(), "2 tests");
        assert_eq!(label(&finding(SYNTAX, &[])), None);
        let mut f = finding(code::LIFECYCLE, &["t.py::test_p[*]"]);
        f.count = 1 << 40;
        assert_eq!(
            label(&f).unwrap(),
            "test_p[*] (1099511627776 parametrizations)"
        );
    }

    #[test]
    fn sarif_has_the_shape_code_scanning_reads() {
        let report = LintReport {
            rootdir: "/r".into(),
            findings: vec![finding(code::TYPE, &["tests/test_a.py::test_x"])],
            files: 1,
            tests: 1,
            unresolved: 0,
            nodeids: vec!["tests/test_a.py::test_x".into()],
            config_note: None,
        };
        let v: Value = serde_json::from_str(&sarif(&report)).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "pytest-dynamo");
        let result = &run["results"][0];
        assert_eq!(result["ruleId"], "DYN003");
        let index = usize::try_from(result["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(run["tool"]["driver"]["rules"][index]["id"], "DYN003");
        let loc = &result["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "tests/test_a.py");
        assert_eq!(loc["region"]["startLine"], 3);
        let j: Value = serde_json::from_str(&json(&report)).unwrap();
        assert_eq!(j["findings"][0]["tests"][0], "tests/test_a.py::test_x");
        assert_eq!(j["errors"], 1);
        assert!(text(&report)
            .ends_with("pytest-dynamo lint: 1 error, 0 warnings (1 test in 1 file checked)\n"));
    }

    #[test]
    fn sarif_uris_are_percent_encoded() {
        let uri = |path: &str| {
            let mut f = finding(code::TYPE, &[]);
            f.path = path.into();
            let report = LintReport {
                findings: vec![f],
                ..LintReport::default()
            };
            let v: Value = serde_json::from_str(&sarif(&report)).unwrap();
            let location = v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
                ["artifactLocation"]
                .clone();
            (
                location["uri"].as_str().unwrap().to_string(),
                location.get("uriBaseId").is_some(),
            )
        };
        assert_eq!(uri("tests/test a.py"), ("tests/test%20a.py".into(), true));
        assert_eq!(
            uri("tests/t\u{e9}st_\u{65e5}.py"),
            ("tests/t%C3%A9st_%E6%97%A5.py".into(), true)
        );
        // A literal `%20` is a file of that name, not a space.
        assert_eq!(uri("tests/a%20b.py"), ("tests/a%2520b.py".into(), true));
        assert_eq!(uri("tests/a\nb.py"), ("tests/a%0Ab.py".into(), true));
        // A colon would read as a scheme; `#` and `?` end the path.
        assert_eq!(uri("c:d/x#y?z.py"), ("c%3Ad/x%23y%3Fz.py".into(), true));
        assert_eq!(uri("a-b_c.d~/e.py"), ("a-b_c.d~/e.py".into(), true));
        // Outside the invocation directory: an absolute file URI.
        assert_eq!(
            uri("/srv/my tests/test_a.py"),
            ("file:///srv/my%20tests/test_a.py".into(), false)
        );
    }
}

//! Line coverage per language from coverage.py's JSON report
//! (`coverage json`) and LCOV files (what cargo-llvm-cov, grcov and most
//! other tools write). A coverage file is an input the user named, so a
//! broken one is an error with its place, not a skipped line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Lines covered and lines measured, per language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    pub languages: BTreeMap<String, (u64, u64)>,
    pub files: Vec<String>,
}

impl Coverage {
    pub fn percent(&self, language: &str) -> Option<f64> {
        self.languages.get(language).and_then(|&(covered, total)| {
            #[allow(clippy::cast_precision_loss)]
            (total > 0).then(|| covered as f64 / total as f64 * 100.0)
        })
    }

    fn add(&mut self, language: &str, covered: u64, total: u64) {
        let e = self.languages.entry(language.to_string()).or_default();
        e.0 += covered;
        e.1 += total;
    }

    /// Read and add every file (coverage.py JSON or LCOV, told apart by content).
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Coverage> {
        let mut out = Coverage::default();
        for path in paths {
            let path = path.as_ref();
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(&shown, &e))?;
            out.add_text(&shown, &text)?;
        }
        Ok(out)
    }

    pub fn add_text(&mut self, path: &str, text: &str) -> Result<()> {
        if text.trim_start().starts_with('{') {
            let (covered, total) = coverage_py(path, text)?;
            self.add("python", covered, total);
        } else {
            for (lang, (covered, total)) in lcov(path, text)? {
                self.add(&lang, covered, total);
            }
        }
        self.files.push(path.to_string());
        Ok(())
    }
}

#[derive(Deserialize)]
struct CoveragePy {
    totals: Totals,
}

#[derive(Deserialize)]
struct Totals {
    covered_lines: u64,
    num_statements: u64,
}

/// coverage.py's JSON: `totals.covered_lines` of `totals.num_statements`
/// (line coverage; `percent_covered` mixes in branches when they are on).
fn coverage_py(path: &str, text: &str) -> Result<(u64, u64)> {
    let report: CoveragePy = serde_json::from_str(text).map_err(|e| {
        Error::config(
            path,
            format!("not a coverage.py JSON report: {e}"),
            "write it with `coverage json -o FILE` (or pytest-cov's --cov-report=json)",
        )
    })?;
    Ok((report.totals.covered_lines, report.totals.num_statements))
}

/// The language of a source file, by extension.
pub fn language(file: &str) -> String {
    let ext = Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "rs" => "rust",
        "py" | "pyx" => "python",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "cu" | "cuh" => "cpp",
        "go" => "go",
        "js" | "mjs" | "ts" | "tsx" | "jsx" => "javascript",
        "" => "other",
        other => other,
    }
    .to_string()
}

/// LCOV: per `SF:` record, `LH`/`LF` when given, else its `DA:` lines.
fn lcov(path: &str, text: &str) -> Result<BTreeMap<String, (u64, u64)>> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut file: Option<String> = None;
    let (mut da_hit, mut da_found) = (0u64, 0u64);
    let (mut lh, mut lf): (Option<u64>, Option<u64>) = (None, None);
    let bad = |n: usize, line: &str, why: &str| {
        Error::config(
            format!("{path}:{}", n + 1),
            format!("not an LCOV line ({why}): {line:?}"),
            "pass a coverage.py JSON report or an LCOV tracefile (cargo llvm-cov --lcov, grcov -t lcov)",
        )
    };
    let mut records = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line == "end_of_record" {
            let name = file
                .take()
                .ok_or_else(|| bad(n, line, "end_of_record without SF"))?;
            let e = out.entry(language(&name)).or_default();
            e.0 += lh.unwrap_or(da_hit);
            e.1 += lf.unwrap_or(da_found);
            (da_hit, da_found, lh, lf) = (0, 0, None, None);
            records += 1;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(bad(n, line, "no `KEY:` prefix"));
        };
        let number = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| bad(n, line, "not a count"))
        };
        match key {
            "SF" => file = Some(value.to_string()),
            "DA" => {
                let mut parts = value.split(',');
                let _line_no = number(parts.next().unwrap_or(""))?;
                // Counts may be negative or huge in some writers' output; only zero matters.
                let count = parts
                    .next()
                    .ok_or_else(|| bad(n, line, "DA without a count"))?;
                da_found += 1;
                if count.trim().trim_start_matches('-') != "0" {
                    da_hit += 1;
                }
            }
            "LH" => lh = Some(number(value)?),
            "LF" => lf = Some(number(value)?),
            _ => {}
        }
    }
    if records == 0 {
        return Err(Error::config(
            path,
            "no coverage records found (no `SF:` ... `end_of_record`)",
            "pass a coverage.py JSON report or an LCOV tracefile",
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    const LCOV: &str = "TN:\nSF:src/lib.rs\nDA:1,3\nDA:2,0\nDA:3,1\nLF:3\nLH:2\nend_of_record\nSF:src/x.rs\nDA:1,0\nDA:2,5\nend_of_record\nSF:python/p.py\nDA:1,1\nend_of_record\n";

    #[test]
    fn lcov_counts_lines_per_language() {
        let mut c = Coverage::default();
        c.add_text("lcov.info", LCOV).unwrap();
        assert_eq!(c.languages["rust"], (3, 5));
        assert_eq!(c.languages["python"], (1, 1));
        assert!((c.percent("rust").unwrap() - 60.0).abs() < 1e-9);
        assert_eq!(c.percent("go"), None);
    }

    #[test]
    fn coverage_py_json_is_python_lines() {
        let mut c = Coverage::default();
        c.add_text(
            "coverage.json",
            r#"{"meta":{"version":"7.6"},"files":{},"totals":{"covered_lines":80,"num_statements":100,"percent_covered":75.0,"num_branches":20}}"#,
        )
        .unwrap();
        assert_eq!(c.percent("python"), Some(80.0));
    }

    #[test]
    fn broken_files_are_errors_with_their_place() {
        let mut c = Coverage::default();
        let err = c
            .add_text("c.json", r#"{"totals":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.json: not a coverage.py JSON report"),
            "{err}"
        );
        let err = c
            .add_text("l.info", "SF:a.rs\nDA:x,1\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("l.info:2: not an LCOV line"), "{err}");
        let err = c.add_text("l.info", "hello\n").unwrap_err().to_string();
        assert!(err.contains("no `KEY:` prefix"), "{err}");
        let err = c.add_text("l.info", "TN:\n").unwrap_err().to_string();
        assert!(err.contains("no coverage records"), "{err}");
    }

    #[test]
    fn languages_by_extension() {
        assert_eq!(language("a/b.rs"), "rust");
        assert_eq!(language("x.PY"), "python");
        assert_eq!(language("k.cu"), "cpp");
        assert_eq!(language("Makefile"), "other");
        assert_eq!(language("a.zig"), "zig");
    }
}

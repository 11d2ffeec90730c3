//! The outcome of the collection-time marker rules, as Python reads it:
//! the headline, each file's part of the report, every finding.

use pyo3::prelude::*;

use crate::taxonomy::validate;
use crate::taxonomy::validation_report;

/// The outcome of the collection-time rules.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct Validation {
    pub inner: validate::Validation,
}

#[pymethods]
impl Validation {
    /// How many tests break the rules.
    #[getter]
    fn count(&self) -> usize {
        self.inner.findings.len()
    }

    /// How many tests were checked.
    #[getter]
    fn checked(&self) -> usize {
        self.inner.checked
    }

    /// `N tests in M files break the marker rules (of K checked)`.
    #[getter]
    fn headline(&self) -> String {
        validation_report::headline(&self.inner)
    }

    /// Each file with findings and its part of the report; each text lists
    /// at most `per_file` tests (None: all) and says how many it left out.
    #[pyo3(signature = (per_file=None))]
    fn files(&self, per_file: Option<usize>) -> Vec<FileFindings> {
        validation_report::by_file_capped(&self.inner, per_file.unwrap_or(usize::MAX))
            .into_iter()
            .map(|f| FileFindings {
                file: f.file,
                tests: f.tests,
                text: f.text,
            })
            .collect()
    }

    /// The whole report: headline and every file.
    fn render(&self) -> String {
        validation_report::render(&self.inner)
    }

    /// Every rule broken, one line each: its code, how many tests, what it is about.
    fn rule_counts(&self) -> String {
        validation_report::rule_counts(&self.inner)
    }

    /// The full list of offending tests and their problems as JSON.
    fn to_json(&self) -> String {
        validation_report::to_json(&self.inner)
    }

    /// Every offending test and its problems.
    fn findings(&self) -> Vec<TestFindings> {
        self.inner
            .findings
            .iter()
            .map(|f| TestFindings {
                nodeid: f.nodeid.clone(),
                line: f.line,
                problems: f
                    .problems
                    .iter()
                    .map(|p| RuleProblem {
                        code: p.code.to_string(),
                        message: p.message.clone(),
                        fix: p.fix.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The deprecated aliases the tests use.
    fn aliases(&self) -> Vec<AliasUse> {
        self.inner
            .aliases
            .iter()
            .map(|a| AliasUse {
                alias: a.alias.clone(),
                canonical: a.canonical.clone(),
                tests: a.tests,
                first_nodeid: a.first_nodeid.clone(),
                first_line: a.first_line,
            })
            .collect()
    }
}

/// One file's part of the validation report.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct FileFindings {
    pub file: String,
    /// How many of its tests break the rules.
    pub tests: usize,
    /// The report text for this file.
    pub text: String,
}

/// A rule one test breaks, and the fix.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
#[derive(Clone)]
pub struct RuleProblem {
    /// The rule's code (`DYN001`, ...).
    pub code: String,
    pub message: String,
    pub fix: String,
}

/// A test that breaks the rules.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct TestFindings {
    pub nodeid: String,
    pub line: u32,
    pub problems: Vec<RuleProblem>,
}

/// A deprecated alias the tests use.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct AliasUse {
    pub alias: String,
    pub canonical: String,
    /// How many tests use it.
    pub tests: usize,
    /// The first of them, and its line.
    pub first_nodeid: String,
    pub first_line: u32,
}

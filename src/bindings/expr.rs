//! The `-m` grammar exactly as pipelines and stages use it, opened to Python
//! so a test can hold it against pytest's own `Expression` (issue #14 item
//! 11: the grammar is reimplemented for speed and must not drift).

use std::collections::HashSet;

use pyo3::prelude::*;

use crate::bindings::convert::{self, PyMark};
use crate::selection::expr;
use crate::selection::matcher;
use crate::taxonomy::validate;
use crate::taxonomy::{Resolved, Taxonomy};

/// How pytest-dynamo reads one marker expression: a syntax error, or one
/// verdict per test.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct ExpressionVerdicts {
    /// 1-based column of the syntax error, None when the expression parses.
    #[pyo3(get)]
    error_column: Option<usize>,
    #[pyo3(get)]
    error_message: Option<String>,
    /// Whether each test matches (empty after a syntax error).
    #[pyo3(get)]
    verdicts: Vec<bool>,
}

/// Parse `text` and judge each test (a list of `(name, args, kwargs)` marks)
/// through the same compile and match a stage uses. Every name in the
/// expression is taken as a marker of the taxonomy.
#[pyfunction]
pub fn judge_marker_expression(
    text: &str,
    tests: Vec<Vec<PyMark<'_>>>,
) -> PyResult<ExpressionVerdicts> {
    let parsed = match expr::parse(text) {
        Ok(p) => p,
        Err(e) => {
            return Ok(ExpressionVerdicts {
                error_column: Some(e.column),
                error_message: Some(e.message),
                verdicts: Vec::new(),
            })
        }
    };
    let mut taxonomy = Taxonomy::builtin();
    for (name, _) in &parsed.names {
        if matches!(taxonomy.resolve(name), Resolved::Unknown) {
            taxonomy.insert_marker("other", name, "named by the expression", None, None);
        }
    }
    let compiled = matcher::compile(&taxonomy, text)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let registered: HashSet<String> = HashSet::new();
    let mut verdicts = Vec::with_capacity(tests.len());
    for marks in tests {
        let item = convert::item((String::from("t.py::t"), 1, marks))?;
        let resolution = validate::resolve(
            &taxonomy,
            item.marks.iter().map(|m| m.name.as_str()),
            &registered,
        );
        verdicts.push(compiled.matches(&item, &resolution));
    }
    Ok(ExpressionVerdicts {
        error_column: None,
        error_message: None,
        verdicts,
    })
}

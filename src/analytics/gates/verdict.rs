//! What every gate is made of: a status, the checks it made, and the one
//! `Gate` it reports, with the helpers the gates share (a status from its
//! checks, a gate not run, the runs a window spans).

use serde::Serialize;

use crate::history::History;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skipped,
}

/// A gate's status from its checks: failed if any failed, skipped if none
/// was judged; with the counts of failed and judged checks.
pub(crate) fn verdict(checks: &[Check]) -> (Status, usize, usize) {
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let judged = checks
        .iter()
        .filter(|c| c.status != Status::Skipped)
        .count();
    let status = if failed > 0 {
        Status::Fail
    } else if judged == 0 {
        Status::Skipped
    } else {
        Status::Pass
    };
    (status, failed, judged)
}

impl Status {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skipped => "SKIP",
        }
    }
}

/// One comparison inside a gate (a metric, a language).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub subject: String,
    pub value: String,
    pub baseline: String,
    pub change: String,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub name: String,
    pub status: Status,
    /// The threshold, with the configuration key that sets it.
    pub threshold: String,
    /// What was measured.
    pub compared: String,
    /// What it was measured against.
    pub baseline: String,
    /// One line: the verdict and why.
    pub summary: String,
    pub checks: Vec<Check>,
}

/// A gate that did not run, and why.
pub(crate) fn skipped(name: &str, why: &str, threshold: String) -> Gate {
    Gate {
        name: name.into(),
        status: Status::Skipped,
        threshold,
        compared: "nothing".into(),
        baseline: "none".into(),
        summary: format!("not run: {why}"),
        checks: Vec::new(),
    }
}

/// The runs of a window: how many, and the first and last with their start.
pub(crate) fn span(h: &History, runs: &[usize]) -> String {
    match (runs.first(), runs.last()) {
        (Some(&a), Some(&b)) => format!(
            "{} runs from {} ({}) to {} ({})",
            runs.len(),
            crate::history::timestamp::minute(h.runs[a].started_at),
            h.runs[a].run_id,
            crate::history::timestamp::minute(h.runs[b].started_at),
            h.runs[b].run_id
        ),
        _ => "no runs".into(),
    }
}

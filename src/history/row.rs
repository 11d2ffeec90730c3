//! What a history holds: runs, and one row per test result with its
//! outcome, duration and metrics.

use crate::records::outcome_name;
use crate::records::RecordedTimeout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
    XFailed,
    XPassed,
    /// Failed, then passed on a retry.
    Flaky,
    /// Failed while quarantined: the run did not fail for it.
    QuarantinedFailed,
    /// An outcome a newer writer knows: kept out of every statistic.
    Other,
}

impl Outcome {
    pub fn parse(text: &str) -> Outcome {
        match text {
            outcome_name::PASSED => Outcome::Passed,
            outcome_name::FAILED => Outcome::Failed,
            outcome_name::ERROR => Outcome::Error,
            outcome_name::SKIPPED => Outcome::Skipped,
            outcome_name::XFAILED => Outcome::XFailed,
            outcome_name::XPASSED => Outcome::XPassed,
            outcome_name::FLAKY => Outcome::Flaky,
            outcome_name::QUARANTINED_FAILED => Outcome::QuarantinedFailed,
            _ => Outcome::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => outcome_name::PASSED,
            Outcome::Failed => outcome_name::FAILED,
            Outcome::Error => outcome_name::ERROR,
            Outcome::Skipped => outcome_name::SKIPPED,
            Outcome::XFailed => outcome_name::XFAILED,
            Outcome::XPassed => outcome_name::XPASSED,
            Outcome::Flaky => outcome_name::FLAKY,
            Outcome::QuarantinedFailed => outcome_name::QUARANTINED_FAILED,
            Outcome::Other => "other",
        }
    }

    /// The test ended passing (a flaky test passed on its retry).
    pub fn passed(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::XPassed | Outcome::Flaky)
    }

    /// The test ended failing (quarantine changes who cares, not the result).
    pub fn failed(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Error | Outcome::QuarantinedFailed
        )
    }

    /// Passed or failed: a result that says something about the test.
    pub fn is_sample(self) -> bool {
        self.passed() || self.failed()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub higher_is_better: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub exit_status: i64,
    pub wall_s: f64,
    pub finished_at: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub run_id: String,
    /// `run_start`'s time, or the earliest test's `finished_at` without one.
    pub started_at: f64,
    pub has_start: bool,
    pub pipeline: Option<String>,
    pub stage: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// The first GPU's name, or "cpu" (None without a `run_start`).
    pub gpu_model: Option<String>,
    pub host: Option<String>,
    pub end: Option<RunEnd>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index into `History::runs` (which are in start order).
    pub run: u32,
    pub test: u32,
    pub outcome: Outcome,
    pub duration_s: f64,
    /// Index into `History::names`; 0 is "no stage".
    pub stage: u32,
    /// Index into `History::names`; 0 is "no owner".
    pub owner: u32,
    pub gating: bool,
    pub gpu_peak_mib: Option<f64>,
    /// GPUs the GPU audit saw the test use.
    pub gpus_used: Option<u32>,
    pub timeout: RecordedTimeout,
    pub metrics: Vec<Metric>,
}

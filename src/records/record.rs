//! Records, what reports and monitoring read of every run: one JSON line when
//! a run starts, one per test as it finishes, one when the run ends. Schema
//! version 1; docs/records.md is the reference. Other tools read these
//! names: add fields, never rename one.

use std::fmt;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::records::facts::{QuarantineRef, RecordedTimeout};
use crate::records::git::Git;

pub const SCHEMA: u32 = 1;
/// A reason is cut to its first line and this many characters.
pub const REASON_CHARS: usize = 300;

/// The phase a pytest report comes from; `Other` is a report made outside
/// the phases (pytest-xdist's report of a crashed worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Setup,
    Call,
    Teardown,
    Other,
}

impl Phase {
    pub fn parse(when: &str) -> Phase {
        match when {
            "setup" => Phase::Setup,
            "call" => Phase::Call,
            "teardown" => Phase::Teardown,
            _ => Phase::Other,
        }
    }
}

/// A report's outcome; `Rerun` is a failure that was retried (ours, or
/// pytest-rerunfailures').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    Passed,
    Failed,
    Skipped,
    Rerun,
}

impl ReportOutcome {
    pub fn parse(outcome: &str) -> ReportOutcome {
        match outcome {
            "passed" => ReportOutcome::Passed,
            "skipped" => ReportOutcome::Skipped,
            "rerun" => ReportOutcome::Rerun,
            // "failed", and any outcome a plugin invents: never a silent pass.
            _ => ReportOutcome::Failed,
        }
    }

    fn failed(self) -> bool {
        matches!(self, ReportOutcome::Failed | ReportOutcome::Rerun)
    }
}

/// One pytest report of one test, as the records need it.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReport {
    pub when: Phase,
    pub outcome: ReportOutcome,
    pub duration: f64,
    /// The report carries `wasxfail` (an xfail or xpass).
    pub xfail: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl AttemptOutcome {
    pub fn parse(text: &str) -> Option<AttemptOutcome> {
        Some(match text {
            "passed" => AttemptOutcome::Passed,
            "failed" => AttemptOutcome::Failed,
            "error" => AttemptOutcome::Error,
            "skipped" => AttemptOutcome::Skipped,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Passed => "passed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Error => "error",
            AttemptOutcome::Skipped => "skipped",
        }
    }

    fn failed(self) -> bool {
        matches!(self, AttemptOutcome::Failed | AttemptOutcome::Error)
    }
}

/// One run of a test's setup, call and teardown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    #[serde(serialize_with = "micro")]
    pub setup_s: f64,
    #[serde(serialize_with = "micro")]
    pub call_s: f64,
    #[serde(serialize_with = "micro")]
    pub teardown_s: f64,
    #[serde(skip)]
    pub xfail: bool,
    #[serde(skip)]
    pub reason: Option<String>,
}

impl Attempt {
    pub fn total(&self) -> f64 {
        self.setup_s + self.call_s + self.teardown_s
    }
}

/// The outcome names of the records' schema, spelled once for the writer
/// (`Outcome`) and the reader (`history::Outcome`).
pub mod outcome_name {
    pub const PASSED: &str = "passed";
    pub const FAILED: &str = "failed";
    pub const ERROR: &str = "error";
    pub const SKIPPED: &str = "skipped";
    pub const XFAILED: &str = "xfailed";
    pub const XPASSED: &str = "xpassed";
    pub const FLAKY: &str = "flaky";
    pub const QUARANTINED_FAILED: &str = "quarantined-failed";
}

/// A test's final outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
    Xfailed,
    Xpassed,
    Flaky,
    QuarantinedFailed,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Passed,
        Outcome::Failed,
        Outcome::Error,
        Outcome::Skipped,
        Outcome::Xfailed,
        Outcome::Xpassed,
        Outcome::Flaky,
        Outcome::QuarantinedFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => outcome_name::PASSED,
            Outcome::Failed => outcome_name::FAILED,
            Outcome::Error => outcome_name::ERROR,
            Outcome::Skipped => outcome_name::SKIPPED,
            Outcome::Xfailed => outcome_name::XFAILED,
            Outcome::Xpassed => outcome_name::XPASSED,
            Outcome::Flaky => outcome_name::FLAKY,
            Outcome::QuarantinedFailed => outcome_name::QUARANTINED_FAILED,
        }
    }

    /// Failed, errored, or quarantined and failed.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Error | Outcome::QuarantinedFailed
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Seconds rounded to the microsecond: shorter lines, no false precision.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn micro<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round_micro(*v))
}

pub fn round_micro(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The first line of a message, at most `REASON_CHARS` characters.
pub fn short_reason(text: &str) -> Option<String> {
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return None;
    }
    Some(match line.char_indices().nth(REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    })
}

/// Group reports into attempts: each setup report starts one. A report
/// outside the phases (a crashed worker) ends the attempt it belongs to, so
/// the report after it starts the next: pytest-rerunfailures logs an
/// attempt's reports only once the attempt is over, and a crashed attempt
/// it reschedules reaches us as that one report, with no setup before it.
pub fn attempts(reports: &[PhaseReport]) -> Vec<Attempt> {
    let mut groups: Vec<Vec<&PhaseReport>> = Vec::new();
    for report in reports {
        let after_crash = groups
            .last()
            .and_then(|g| g.last())
            .is_some_and(|r| r.when == Phase::Other);
        if report.when == Phase::Setup || groups.is_empty() || after_crash {
            groups.push(Vec::new());
        }
        groups.last_mut().expect("a group was pushed").push(report);
    }
    groups.iter().map(|g| attempt(g)).collect()
}

fn attempt(reports: &[&PhaseReport]) -> Attempt {
    let mut a = Attempt {
        outcome: AttemptOutcome::Passed,
        setup_s: 0.0,
        call_s: 0.0,
        teardown_s: 0.0,
        xfail: false,
        reason: None,
    };
    let mut failure: Option<(AttemptOutcome, Option<String>)> = None;
    let mut skipped: Option<Option<String>> = None;
    for r in reports {
        match r.when {
            Phase::Setup => a.setup_s += r.duration,
            Phase::Call | Phase::Other => a.call_s += r.duration,
            Phase::Teardown => a.teardown_s += r.duration,
        }
        a.xfail |= r.xfail;
        if r.outcome.failed() {
            let kind = match r.when {
                Phase::Setup | Phase::Teardown => AttemptOutcome::Error,
                Phase::Call | Phase::Other => AttemptOutcome::Failed,
            };
            // A failed call outranks an error in the teardown after it.
            match &failure {
                Some((AttemptOutcome::Failed, _)) => {}
                Some((AttemptOutcome::Error, _)) if kind == AttemptOutcome::Error => {}
                _ => failure = Some((kind, r.reason.clone())),
            }
        } else if r.outcome == ReportOutcome::Skipped && skipped.is_none() {
            skipped = Some(r.reason.clone());
        } else if r.xfail && a.reason.is_none() {
            a.reason.clone_from(&r.reason);
        }
    }
    if let Some((kind, reason)) = failure {
        a.outcome = kind;
        a.reason = reason;
    } else if let Some(reason) = skipped {
        a.outcome = AttemptOutcome::Skipped;
        a.reason = reason;
    }
    a
}

/// The final outcome of a test from its attempts, and its reason: a failure's
/// message, a skip's or xfail's reason, or for a flaky test the failure that
/// made it flaky.
pub fn resolve(attempts: &[Attempt], quarantined: bool) -> (Outcome, Option<String>) {
    let Some(last) = attempts.last() else {
        return (
            Outcome::Error,
            Some("no report of this test arrived".into()),
        );
    };
    let earlier_failure = attempts[..attempts.len() - 1]
        .iter()
        .find(|a| a.outcome.failed());
    let outcome = match last.outcome {
        AttemptOutcome::Passed if last.xfail => Outcome::Xpassed,
        AttemptOutcome::Passed if earlier_failure.is_some() => Outcome::Flaky,
        AttemptOutcome::Passed => Outcome::Passed,
        AttemptOutcome::Skipped if last.xfail => Outcome::Xfailed,
        AttemptOutcome::Skipped => Outcome::Skipped,
        AttemptOutcome::Failed | AttemptOutcome::Error if quarantined => Outcome::QuarantinedFailed,
        AttemptOutcome::Failed => Outcome::Failed,
        AttemptOutcome::Error => Outcome::Error,
    };
    let reason = match outcome {
        Outcome::Flaky => earlier_failure.and_then(|a| a.reason.clone()),
        Outcome::Passed => None,
        _ => last.reason.clone(),
    };
    (outcome, reason)
}

/// A figure the test reported (the analytics fixture's `dynamo_metric`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub higher_is_better: bool,
}

#[derive(Serialize)]
pub struct RunStart<'a> {
    pub record: &'static str,
    pub schema: u32,
    pub run_id: &'a str,
    pub pipeline: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub framework: Option<&'a str>,
    /// `"K/N"` for one shard of a stage; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<&'a str>,
    pub gpus: Option<&'a serde_json::Value>,
    pub git: &'a Git,
    pub host: &'a str,
    pub plugin_version: &'static str,
    pub started_at: &'a str,
}

#[derive(Serialize)]
pub struct TestRecord<'a> {
    pub record: &'static str,
    pub schema: u32,
    pub run_id: &'a str,
    pub nodeid: &'a str,
    pub test_id: &'a str,
    pub outcome: Outcome,
    pub attempts: &'a [Attempt],
    #[serde(serialize_with = "micro")]
    pub duration_s: f64,
    /// Marker names by category.
    pub markers: crate::records::facts::MarkersView<'a>,
    pub reason: Option<&'a str>,
    pub gpus_used: Option<i64>,
    pub gpu_peak_mib: Option<f64>,
    /// Added in schema 1: the `timeout` marker's seconds, null without one;
    /// left out where the facts do not say (a crashed worker's test).
    #[serde(skip_serializing_if = "RecordedTimeout::is_unknown")]
    pub timeout_s: RecordedTimeout,
    pub worker: Option<&'a str>,
    /// The GPUs a GPU-parallel run gave the test (the outer
    /// `CUDA_VISIBLE_DEVICES` form); absent from other runs' lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus_assigned: Option<&'a [String]>,
    pub flow_id: &'a str,
    pub stage: Option<&'a str>,
    pub gating: bool,
    pub owner: Option<&'a str>,
    pub metrics: &'a [Metric],
    /// Added in schema 1: the quarantine entry that covers the test.
    pub quarantine: Option<&'a QuarantineRef>,
    pub finished_at: &'a str,
}

/// Every outcome with its count, zeros included, in a fixed order.
pub struct Counts(pub [u64; 8]);

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(Outcome::ALL.len()))?;
        for (o, n) in Outcome::ALL.iter().zip(self.0) {
            map.serialize_entry(o.as_str(), &n)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
pub struct RunEnd<'a> {
    pub record: &'static str,
    pub schema: u32,
    pub run_id: &'a str,
    pub exit_status: i32,
    pub counts: Counts,
    #[serde(serialize_with = "micro")]
    pub wall_s: f64,
    pub finished_at: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(when: &str, outcome: &str, reason: Option<&str>) -> PhaseReport {
        PhaseReport {
            when: Phase::parse(when),
            outcome: ReportOutcome::parse(outcome),
            duration: 0.5,
            xfail: false,
            reason: reason.map(String::from),
        }
    }

    fn xf(mut r: PhaseReport) -> PhaseReport {
        r.xfail = true;
        r
    }

    fn outcome_of(reports: &[PhaseReport]) -> (Outcome, Option<String>, Vec<AttemptOutcome>) {
        let a = attempts(reports);
        let (o, r) = resolve(&a, false);
        (o, r, a.iter().map(|a| a.outcome).collect())
    }

    use AttemptOutcome as A;

    #[test]
    fn a_pass_and_a_failure() {
        let pass = [
            rep("setup", "passed", None),
            rep("call", "passed", None),
            rep("teardown", "passed", None),
        ];
        let (o, r, a) = outcome_of(&pass);
        assert_eq!((o, r, a), (Outcome::Passed, None, vec![A::Passed]));
        let attempt = &attempts(&pass)[0];
        assert!((attempt.total() - 1.5).abs() < 1e-9);
        let fail = [
            rep("setup", "passed", None),
            rep("call", "failed", Some("AssertionError")),
            rep("teardown", "passed", None),
        ];
        assert_eq!(outcome_of(&fail).0, Outcome::Failed);
        assert_eq!(outcome_of(&fail).1.as_deref(), Some("AssertionError"));
    }

    #[test]
    fn setup_and_teardown_failures_are_errors() {
        let (o, r, _) = outcome_of(&[
            rep("setup", "failed", Some("fixture broke")),
            rep("teardown", "passed", None),
        ]);
        assert_eq!((o, r.as_deref()), (Outcome::Error, Some("fixture broke")));
        let (o, _, _) = outcome_of(&[
            rep("setup", "passed", None),
            rep("call", "passed", None),
            rep("teardown", "failed", Some("leak")),
        ]);
        assert_eq!(o, Outcome::Error);
        // A failed call stays a failure when the teardown errors too.
        let (o, r, _) = outcome_of(&[
            rep("setup", "passed", None),
            rep("call", "failed", Some("boom")),
            rep("teardown", "failed", Some("leak")),
        ]);
        assert_eq!((o, r.as_deref()), (Outcome::Failed, Some("boom")));
    }

    #[test]
    fn skips_xfails_and_xpasses() {
        let (o, r, a) = outcome_of(&[
            rep("setup", "skipped", Some("no GPU")),
            rep("teardown", "passed", None),
        ]);
        assert_eq!(
            (o, r.as_deref(), a),
            (Outcome::Skipped, Some("no GPU"), vec![A::Skipped])
        );
        let (o, r, a) = outcome_of(&[
            rep("setup", "passed", None),
            xf(rep("call", "skipped", Some("bug 7"))),
            rep("teardown", "passed", None),
        ]);
        assert_eq!(
            (o, r.as_deref(), a),
            (Outcome::Xfailed, Some("bug 7"), vec![A::Skipped])
        );
        let (o, r, a) = outcome_of(&[
            rep("setup", "passed", None),
            xf(rep("call", "passed", Some("bug 7"))),
            rep("teardown", "passed", None),
        ]);
        assert_eq!(
            (o, r.as_deref(), a),
            (Outcome::Xpassed, Some("bug 7"), vec![A::Passed])
        );
    }

    #[test]
    fn failed_then_passed_is_flaky_with_the_first_failure_as_reason() {
        let reports = [
            rep("setup", "passed", None),
            rep("call", "rerun", Some("timeout")),
            rep("teardown", "passed", None),
            rep("setup", "rerun", Some("port busy")),
            rep("teardown", "passed", None),
            rep("setup", "passed", None),
            rep("call", "passed", None),
            rep("teardown", "passed", None),
        ];
        let (o, r, a) = outcome_of(&reports);
        assert_eq!((o, r.as_deref()), (Outcome::Flaky, Some("timeout")));
        assert_eq!(a, vec![A::Failed, A::Error, A::Passed]);
    }

    #[test]
    fn failing_every_attempt_is_a_failure_and_quarantine_turns_it() {
        let reports = [
            rep("setup", "passed", None),
            rep("call", "rerun", Some("one")),
            rep("setup", "passed", None),
            rep("call", "failed", Some("two")),
            rep("teardown", "passed", None),
        ];
        let a = attempts(&reports);
        assert_eq!(a.len(), 2);
        assert_eq!(resolve(&a, false), (Outcome::Failed, Some("two".into())));
        assert_eq!(
            resolve(&a, true),
            (Outcome::QuarantinedFailed, Some("two".into()))
        );
        let pass = attempts(&[rep("setup", "passed", None), rep("call", "passed", None)]);
        assert_eq!(resolve(&pass, true).0, Outcome::Passed);
    }

    #[test]
    fn a_crashed_worker_is_a_failure() {
        let reports = [
            rep("setup", "passed", None),
            rep("???", "failed", Some("worker 'gw0' crashed")),
        ];
        let (o, r, a) = outcome_of(&reports);
        assert_eq!(
            (o, r.as_deref(), a),
            (
                Outcome::Failed,
                Some("worker 'gw0' crashed"),
                vec![A::Failed]
            )
        );
        assert_eq!(outcome_of(&[rep("???", "failed", None)]).0, Outcome::Failed);
        assert_eq!(resolve(&[], false).0, Outcome::Error);
    }

    #[test]
    fn each_rescheduled_crash_is_an_attempt() {
        // pytest-rerunfailures under xdist: a crashed attempt arrives as the
        // crash report alone (its setup report is never logged), rescheduled
        // twice, then a last crash that fails.
        let reports = [
            rep("???", "rerun", Some("worker 'gw0' crashed")),
            rep("???", "rerun", Some("worker 'gw2' crashed")),
            rep("???", "failed", Some("worker 'gw3' crashed")),
        ];
        let (o, r, a) = outcome_of(&reports);
        assert_eq!(a, vec![A::Failed; 3]);
        assert_eq!(
            (o, r.as_deref()),
            (Outcome::Failed, Some("worker 'gw3' crashed"))
        );
        // A crash, then an attempt that passes on another worker: flaky.
        let reports = [
            rep("???", "rerun", Some("worker 'gw0' crashed")),
            rep("setup", "passed", None),
            rep("call", "passed", None),
            rep("teardown", "passed", None),
        ];
        let (o, r, a) = outcome_of(&reports);
        assert_eq!(a, vec![A::Failed, A::Passed]);
        assert_eq!(
            (o, r.as_deref()),
            (Outcome::Flaky, Some("worker 'gw0' crashed"))
        );
    }

    #[test]
    fn reasons_are_short() {
        assert_eq!(short_reason("  \n"), None);
        assert_eq!(short_reason("first\nsecond").as_deref(), Some("first"));
        let long = "é".repeat(REASON_CHARS + 10);
        let cut = short_reason(&long).unwrap();
        assert_eq!(cut.chars().count(), REASON_CHARS + 3);
    }

    #[test]
    fn counts_list_every_outcome_in_order() {
        let mut c = Counts([0; 8]);
        c.0[7] = 2;
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.starts_with("{\"passed\":0,\"failed\":0,"), "{text}");
        assert!(text.ends_with("\"quarantined-failed\":2}"), "{text}");
    }

    #[test]
    fn durations_are_rounded_to_the_microsecond() {
        assert!((round_micro(0.123_456_789) - 0.123_457).abs() < 1e-12);
    }
}

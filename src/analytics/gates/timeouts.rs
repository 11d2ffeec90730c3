//! The timeouts gate (`pytest-dynamo gate --timeouts`): fails when a test
//! whose p95 duration in the window is above `[timeouts] require_above`
//! carries no `timeout` marker in its latest record.

use crate::analytics::advice::config::TimeoutsConfig;
use crate::analytics::advice::timeouts::{self, human, Problem};
use crate::analytics::gates::verdict::{span, Check, Gate, Status};
use crate::analytics::report::windows;
use crate::history::History;

/// `upto`: the selected runs up to the judged one; the window is the last `window` of them.
pub fn timeouts_gate(
    config: &TimeoutsConfig,
    window: usize,
    h: &History,
    upto: &[usize],
    pipeline: Option<&str>,
) -> Gate {
    let (runs, _) = windows(upto, window);
    let section = timeouts::assess(h, &runs, config);
    let threshold = format!(
        "require_above = \"{}\" (a test whose p95 is above it carries a timeout marker)",
        human(config.require_above)
    );
    let compared = format!(
        "{} test(s) with a p95 above {}",
        section.long_tests,
        human(config.require_above)
    );
    let baseline = format!(
        "window (window = {window}): {}{}",
        span(h, &runs),
        pipeline
            .map(|p| format!(" of pipeline {p}"))
            .unwrap_or_default()
    );
    let judged = section.long_tests - section.unknown;
    if section.long_tests > 0 && judged == 0 {
        return Gate {
            name: "timeouts".into(),
            status: Status::Skipped,
            threshold,
            compared,
            baseline,
            summary: format!(
                "not judged: the records of the {} long test(s) do not say whether they carry a \
                 timeout (written before pytest-dynamo recorded timeout_s)",
                section.unknown
            ),
            checks: Vec::new(),
        };
    }
    let checks = missing(&section, config);
    let status = if checks.is_empty() {
        Status::Pass
    } else {
        Status::Fail
    };
    let summary = summary(&checks, judged, config);
    Gate {
        name: "timeouts".into(),
        status,
        threshold,
        compared,
        baseline,
        summary,
        checks,
    }
}

/// A failed check per long test without a timeout marker.
fn missing(section: &timeouts::TimeoutsSection, config: &TimeoutsConfig) -> Vec<Check> {
    section
        .findings
        .iter()
        .filter(|f| f.problem == Some(Problem::Missing))
        .map(|f| Check {
            subject: f.nodeid.clone(),
            value: format!(
                "p95 {} over {} run(s), no timeout marker",
                human(f.p95_s),
                f.runs
            ),
            baseline: format!("above {}", human(config.require_above)),
            change: format!("add @pytest.mark.timeout({})", f.recommended_s),
            status: Status::Fail,
        })
        .collect()
}

fn summary(checks: &[Check], judged: usize, config: &TimeoutsConfig) -> String {
    if checks.is_empty() {
        format!(
            "every test above {} carries a timeout ({judged} judged)",
            human(config.require_above)
        )
    } else {
        format!(
            "{} of {judged} test(s) above {} carry no timeout marker",
            checks.len(),
            human(config.require_above)
        )
    }
}

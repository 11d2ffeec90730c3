//! Reading a finished test's pytest reports (Python objects) into the core's
//! plain types, in one call per test: what the records need of each report,
//! and of the last one the `user_properties` other features set
//! (`dynamo_facts`, `dynamo_flow_id`, `dynamo_gpus_used`,
//! `dynamo_gpu_peak_mib`, `dynamo_metric`) and our retries' earlier attempts.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::record::{short_reason, Attempt, AttemptOutcome, Metric, Phase, Report, ReportOutcome};
use crate::recorder::TestInput;

/// A finished test as read from its reports; `input()` lends it to the recorder.
#[derive(Debug, Default)]
pub struct ReadTest {
    pub nodeid: String,
    pub reports: Vec<Report>,
    pub previous: Vec<Attempt>,
    pub facts: Option<String>,
    pub flow_id: Option<String>,
    pub worker: Option<String>,
    pub gpus_used: Option<i64>,
    pub gpu_peak_mib: Option<f64>,
    pub metrics: Vec<Metric>,
    /// Properties that could not be read, for a warning.
    pub dropped: Vec<String>,
}

impl ReadTest {
    pub fn input(&self) -> TestInput<'_> {
        TestInput {
            nodeid: &self.nodeid,
            reports: self.reports.clone(),
            previous: self.previous.clone(),
            facts: self.facts.as_deref(),
            flow_id: self.flow_id.as_deref(),
            worker: self.worker.as_deref(),
            gpus_used: self.gpus_used,
            gpu_peak_mib: self.gpu_peak_mib,
            metrics: self.metrics.clone(),
        }
    }
}

fn instance_dict<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    Ok(obj
        .getattr(intern!(obj.py(), "__dict__"))?
        .cast_into::<PyDict>()?)
}

/// Why a report is not a plain pass: the xfail reason, the skip reason, or
/// the failure's message.
fn reason(
    report: &Bound<'_, PyAny>,
    dict: &Bound<'_, PyDict>,
    passed: bool,
) -> PyResult<Option<String>> {
    let py = report.py();
    if let Some(wasxfail) = dict.get_item(intern!(py, "wasxfail"))? {
        return Ok(short_reason(&wasxfail.str()?.to_cow()?));
    }
    if passed {
        return Ok(None);
    }
    let longrepr = report.getattr(intern!(py, "longrepr"))?;
    if longrepr.is_none() {
        return Ok(None);
    }
    if let Ok(tuple) = longrepr.cast::<PyTuple>() {
        if tuple.len() == 3 {
            let message = tuple.get_item(2)?.str()?.to_string();
            let message = message.strip_prefix("Skipped: ").unwrap_or(&message);
            return Ok(short_reason(message));
        }
    }
    if let Some(crash) = longrepr.getattr_opt(intern!(py, "reprcrash"))? {
        if !crash.is_none() {
            return Ok(short_reason(
                &crash.getattr(intern!(py, "message"))?.str()?.to_cow()?,
            ));
        }
    }
    Ok(short_reason(&longrepr.str()?.to_cow()?))
}

fn metric(value: &Bound<'_, PyAny>) -> Option<Metric> {
    let dict = value.cast::<PyDict>().ok()?;
    let get = |key: &str| dict.get_item(key).ok().flatten();
    Some(Metric {
        name: get("name")?.str().ok()?.to_string(),
        value: get("value")?.extract().ok()?,
        unit: get("unit")?.str().ok()?.to_string(),
        higher_is_better: get("higher_is_better")?.is_truthy().ok()?,
    })
}

fn previous(value: &Bound<'_, PyAny>) -> PyResult<Vec<Attempt>> {
    let rows: Vec<(String, f64, f64, f64, Option<String>)> = value.extract()?;
    Ok(rows
        .into_iter()
        .map(|(outcome, setup_s, call_s, teardown_s, reason)| Attempt {
            outcome: AttemptOutcome::parse(&outcome).unwrap_or(AttemptOutcome::Failed),
            setup_s,
            call_s,
            teardown_s,
            xfail: false,
            reason,
        })
        .collect())
}

/// pytest's phase names are interned strings: compare by identity first.
fn phase(when: &Bound<'_, PyAny>) -> PyResult<Phase> {
    let py = when.py();
    for (name, phase) in [
        (intern!(py, "setup"), Phase::Setup),
        (intern!(py, "call"), Phase::Call),
        (intern!(py, "teardown"), Phase::Teardown),
    ] {
        if when.is(name) {
            return Ok(phase);
        }
    }
    Ok(Phase::parse(&when.extract::<String>()?))
}

fn report_outcome(outcome: &Bound<'_, PyAny>) -> PyResult<ReportOutcome> {
    if outcome.is(intern!(outcome.py(), "passed")) {
        return Ok(ReportOutcome::Passed);
    }
    Ok(ReportOutcome::parse(&outcome.extract::<String>()?))
}

/// Read the reports of one test, the last one ending it.
pub fn read<'py>(reports: &[Bound<'py, PyAny>]) -> PyResult<ReadTest> {
    let Some(last) = reports.last() else {
        return Ok(ReadTest::default());
    };
    let py = last.py();
    let mut test = ReadTest {
        nodeid: last.getattr(intern!(py, "nodeid"))?.extract()?,
        ..ReadTest::default()
    };
    let last_dict = instance_dict(last)?;
    let mut from = 0;
    if let Some(earlier) = last_dict.get_item(intern!(py, "dynamo_attempts"))? {
        // Our own retries sum the earlier attempts up; the reports of the
        // last attempt start at its setup.
        test.previous = previous(&earlier)?;
        from = reports
            .iter()
            .rposition(|r| {
                r.getattr(intern!(py, "when"))
                    .and_then(|w| w.extract::<String>())
                    .is_ok_and(|w| w == "setup")
            })
            .unwrap_or(0);
    }
    for report in &reports[from..] {
        // Report attributes live in the instance dict: a dict lookup costs
        // less than attribute lookup through the class.
        let dict = instance_dict(report)?;
        let field = |name: &Bound<'py, pyo3::types::PyString>| -> PyResult<Bound<'py, PyAny>> {
            match dict.get_item(name)? {
                Some(v) => Ok(v),
                None => report.getattr(name),
            }
        };
        let when = field(intern!(py, "when"))?;
        let outcome = field(intern!(py, "outcome"))?;
        let duration: f64 = field(intern!(py, "duration"))?.extract()?;
        let phase = phase(&when)?;
        let outcome = report_outcome(&outcome)?;
        let xfail = dict.contains(intern!(py, "wasxfail"))?;
        test.reports.push(Report {
            when: phase,
            outcome,
            duration,
            xfail,
            reason: if outcome == ReportOutcome::Passed && !xfail {
                None
            } else {
                reason(report, &dict, outcome == ReportOutcome::Passed)?
            },
        });
    }
    test.worker = match last_dict.get_item(intern!(py, "worker_id"))? {
        Some(w) => Some(w.str()?.to_string()),
        // pytest-xdist's report of a crashed worker names it by its node.
        None => match last_dict.get_item(intern!(py, "node"))? {
            Some(node) => node
                .getattr_opt(intern!(py, "gateway"))?
                .map(|g| g.getattr(intern!(py, "id")))
                .transpose()?
                .map(|id| id.str().map(|s| s.to_string()))
                .transpose()?,
            None => None,
        },
    };
    // The last report carries every property the test set; a report made
    // outside the test (a crashed worker) carries none, its setup's do.
    let mut properties = last.getattr(intern!(py, "user_properties"))?;
    if properties.is_empty()? {
        for report in reports.iter().rev() {
            let p = report.getattr(intern!(py, "user_properties"))?;
            if !p.is_empty()? {
                properties = p;
                break;
            }
        }
    }
    for pair in properties.try_iter()? {
        let pair = pair?;
        let Ok((name, value)) = pair.extract::<(String, Bound<'_, PyAny>)>() else {
            continue;
        };
        match name.as_str() {
            "dynamo_facts" => test.facts = Some(value.str()?.to_string()),
            "dynamo_flow_id" => test.flow_id = Some(value.str()?.to_string()),
            "dynamo_gpus_used" => match value.extract::<i64>() {
                Ok(n) => test.gpus_used = Some(n),
                Err(_) => test.dropped.push(format!("{name}={}", value.repr()?)),
            },
            "dynamo_gpu_peak_mib" => match value.extract::<f64>() {
                Ok(n) => test.gpu_peak_mib = Some(n),
                Err(_) => test.dropped.push(format!("{name}={}", value.repr()?)),
            },
            "dynamo_metric" => match metric(&value) {
                Some(m) => test.metrics.push(m),
                None => test.dropped.push(format!("{name}={}", value.repr()?)),
            },
            _ => {}
        }
    }
    Ok(test)
}

//! Reading a finished test's pytest reports (Python objects) into the core's
//! plain types, in one call per test: what the records need of each report,
//! and of the last one the `user_properties` other features set
//! (`dynamo_facts`, `dynamo_flow_id`, `dynamo_gpus_used`,
//! `dynamo_gpu_peak_mib`, `dynamo_metric`) and our retries' earlier attempts.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::records::properties;
use crate::records::{
    short_reason, Attempt, AttemptOutcome, Facts, FactsIn, Metric, Phase, PhaseReport,
    ReportOutcome, TestInput,
};

/// A finished test as read from its reports; `input()` lends it to the recorder.
#[derive(Debug, Default)]
pub struct ReadTest {
    pub nodeid: String,
    pub reports: Vec<PhaseReport>,
    pub previous: Vec<Attempt>,
    pub facts: Option<String>,
    pub flow_id: Option<String>,
    pub worker: Option<String>,
    /// `dynamo_parallel_gpus`: the GPUs a GPU-parallel run gave the test.
    pub gpus_assigned: Option<Vec<String>>,
    pub gpus_used: Option<i64>,
    pub gpu_peak_mib: Option<f64>,
    pub metrics: Vec<Metric>,
    /// Properties that could not be read, for a warning.
    pub dropped: Vec<String>,
}

impl ReadTest {
    /// The test as the recorder takes it; `known` holds its facts where this
    /// process collected it and its reports carry none.
    pub fn input<'a>(&'a self, known: Option<&'a Facts>) -> TestInput<'a> {
        TestInput {
            nodeid: &self.nodeid,
            reports: &self.reports,
            previous: &self.previous,
            facts: match (&self.facts, known) {
                (Some(json), _) => FactsIn::Json(json),
                (None, Some(facts)) => FactsIn::Known(facts),
                (None, None) => FactsIn::Unknown,
            },
            flow_id: self.flow_id.as_deref(),
            worker: self.worker.as_deref(),
            gpus_assigned: self.gpus_assigned.as_deref(),
            gpus_used: self.gpus_used,
            gpu_peak_mib: self.gpu_peak_mib,
            metrics: &self.metrics,
        }
    }
}

/// Report attributes live in the instance dict: a dict lookup costs less
/// than attribute lookup through the class.
pub fn instance_dict<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
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

/// Why a failed report failed, as the records say it: the first line of
/// the failure's message, cut short. Our retries note each earlier
/// attempt's reason with it, so one language words every reason.
#[pyfunction]
pub fn failure_reason(report: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let dict = instance_dict(report)?;
    reason(report, &dict, false)
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
    // A report made outside the phases may carry no phase name at all.
    match when.cast::<PyString>() {
        Ok(name) => Ok(Phase::parse(&name.to_cow()?)),
        Err(_) => Ok(Phase::Other),
    }
}

fn report_outcome(outcome: &Bound<'_, PyAny>) -> PyResult<ReportOutcome> {
    if outcome.is(intern!(outcome.py(), "passed")) {
        return Ok(ReportOutcome::Passed);
    }
    Ok(ReportOutcome::parse(&outcome.extract::<String>()?))
}

/// One pytest report as the records read it, taken as it arrives, and
/// whether its outcome is exactly "failed" (gating counts what pytest
/// counts; `Report` reads any unknown outcome as a failure). `dict` is its
/// instance dict (`instance_dict`).
pub fn report<'py>(
    report: &Bound<'py, PyAny>,
    dict: &Bound<'py, PyDict>,
) -> PyResult<(PhaseReport, bool)> {
    let py = report.py();
    let field = |name: &Bound<'py, PyString>| -> PyResult<Bound<'py, PyAny>> {
        match dict.get_item(name)? {
            Some(v) => Ok(v),
            None => report.getattr(name),
        }
    };
    let when = phase(&field(intern!(py, "when"))?)?;
    let outcome = field(intern!(py, "outcome"))?;
    let failed = outcome.is(intern!(py, "failed"))
        || (!outcome.is(intern!(py, "passed")) && outcome.eq(intern!(py, "failed"))?);
    let outcome = report_outcome(&outcome)?;
    let duration: f64 = field(intern!(py, "duration"))?.extract()?;
    let xfail = dict.contains(intern!(py, "wasxfail"))?;
    let reason = if outcome == ReportOutcome::Passed && !xfail {
        None
    } else {
        reason(report, dict, outcome == ReportOutcome::Passed)?
    };
    let read = PhaseReport {
        when,
        outcome,
        duration,
        xfail,
        reason,
    };
    Ok((read, failed))
}

/// A finished test: its reports as `report` read them, and the report
/// objects themselves, the last one ending it.
pub fn read(
    nodeid: String,
    mut reports: Vec<PhaseReport>,
    objects: &[Bound<'_, PyAny>],
) -> PyResult<ReadTest> {
    let Some(last) = objects.last() else {
        return Ok(ReadTest {
            nodeid,
            ..ReadTest::default()
        });
    };
    let py = last.py();
    let mut test = ReadTest {
        nodeid,
        ..ReadTest::default()
    };
    let last_dict = instance_dict(last)?;
    if let Some(earlier) = last_dict.get_item(intern!(py, properties::ATTEMPTS))? {
        // Our own retries sum the earlier attempts up; the reports of the
        // last attempt start at its setup.
        test.previous = previous(&earlier)?;
        let from = reports
            .iter()
            .rposition(|r| r.when == Phase::Setup)
            .unwrap_or(0);
        reports.drain(..from);
    }
    test.reports = reports;
    test.worker = worker(&last_dict)?;
    let outside = test.reports.last().is_some_and(|r| r.when == Phase::Other);
    let properties = user_properties(last, objects, outside)?;
    take_properties(&mut test, &properties)?;
    Ok(test)
}

/// The xdist worker that ran the test, from its last report.
fn worker(last: &Bound<'_, PyDict>) -> PyResult<Option<String>> {
    let py = last.py();
    Ok(match last.get_item(intern!(py, "worker_id"))? {
        Some(w) => Some(w.str()?.to_string()),
        // pytest-xdist's report of a crashed worker names it by its node.
        None => match last.get_item(intern!(py, "node"))? {
            Some(node) => node
                .getattr_opt(intern!(py, "gateway"))?
                .map(|g| g.getattr(intern!(py, "id")))
                .transpose()?
                .map(|id| id.str().map(|s| s.to_string()))
                .transpose()?,
            None => None,
        },
    })
}

/// The `user_properties` the test set. The `last` report carries every
/// property; a report made `outside` the test (a crashed worker) carries
/// none, its setup's do.
fn user_properties<'py>(
    last: &Bound<'py, PyAny>,
    objects: &[Bound<'py, PyAny>],
    outside: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = last.py();
    let mut properties = last.getattr(intern!(py, "user_properties"))?;
    if outside && properties.is_empty()? {
        for report in objects.iter().rev() {
            let p = report.getattr(intern!(py, "user_properties"))?;
            if !p.is_empty()? {
                properties = p;
                break;
            }
        }
    }
    Ok(properties)
}

/// What the records read of the test's `(name, value)` properties; a value
/// they cannot read is noted in `dropped`.
fn take_properties(test: &mut ReadTest, properties: &Bound<'_, PyAny>) -> PyResult<()> {
    for pair in properties.try_iter()? {
        let pair = pair?;
        let Ok((name, value)) = pair.extract::<(String, Bound<'_, PyAny>)>() else {
            continue;
        };
        match name.as_str() {
            properties::FACTS => test.facts = Some(value.str()?.to_string()),
            properties::FLOW_ID => test.flow_id = Some(value.str()?.to_string()),
            properties::PARALLEL_GPUS => {
                let ids = value.str()?.to_string();
                test.gpus_assigned = Some(ids.split(',').map(String::from).collect());
            }
            properties::GPUS_USED => match value.extract::<i64>() {
                Ok(n) => test.gpus_used = Some(n),
                Err(_) => test.dropped.push(format!("{name}={}", value.repr()?)),
            },
            properties::GPU_PEAK_MIB => match value.extract::<f64>() {
                Ok(n) => test.gpu_peak_mib = Some(n),
                Err(_) => test.dropped.push(format!("{name}={}", value.repr()?)),
            },
            properties::METRIC => match metric(&value) {
                Some(m) => test.metrics.push(m),
                None => test.dropped.push(format!("{name}={}", value.repr()?)),
            },
            _ => {}
        }
    }
    Ok(())
}

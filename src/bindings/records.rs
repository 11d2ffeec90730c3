//! The Python face of records, retries, quarantine and ownership: the run's
//! rules (`RunPolicy`), the facts of a collected batch, and the `Recorder`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::bindings::pytest::report;
use crate::clock::Date;
use crate::error::Error;
use crate::policy::{Owners, Quarantine};
use crate::records::{self, properties, Phase, PhaseReport, ReportOutcome, RunContext};

/// The collected tests' facts, and what collection must know before any
/// test runs (`Batch.record_facts`).
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct CollectedFacts {
    table: Py<FactsTable>,
    quarantined: Vec<Py<Exemption>>,
    problems: Vec<Py<FlakyProblem>>,
    reruns: foldhash::HashMap<String, u32>,
}

impl CollectedFacts {
    pub(crate) fn new(
        py: Python<'_>,
        table: FactsTable,
        checks: records::FactsChecks,
    ) -> PyResult<Self> {
        Ok(CollectedFacts {
            table: Py::new(py, table)?,
            quarantined: checks
                .quarantined
                .into_iter()
                .map(|(nodeid, reason)| Py::new(py, Exemption { nodeid, reason }))
                .collect::<PyResult<_>>()?,
            problems: checks
                .problems
                .into_iter()
                .map(|p| Py::new(py, FlakyProblem::from(p)))
                .collect::<PyResult<_>>()?,
            reruns: checks.reruns.into_iter().collect(),
        })
    }
}

#[pymethods]
impl CollectedFacts {
    /// Each collected test's facts and flow id, made as the test starts.
    #[getter]
    fn table(&self, py: Python<'_>) -> Py<FactsTable> {
        self.table.clone_ref(py)
    }

    /// The tests the quarantine exempts from gating.
    #[getter]
    fn quarantined(&self, py: Python<'_>) -> Vec<Py<Exemption>> {
        self.quarantined.iter().map(|e| e.clone_ref(py)).collect()
    }

    /// The tests whose `flaky` marker cannot be understood.
    #[getter]
    fn problems(&self, py: Python<'_>) -> Vec<Py<FlakyProblem>> {
        self.problems.iter().map(|p| p.clone_ref(py)).collect()
    }

    /// How many times each test marked flaky is retried, by node id.
    #[getter]
    fn reruns(&self) -> foldhash::HashMap<String, u32> {
        self.reruns.clone()
    }
}

/// A test that does not gate, and why.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct Exemption {
    pub nodeid: String,
    /// The words gating's summary shows, e.g. `quarantined: DYN-1 (alec)`.
    pub reason: String,
}

/// A test whose `flaky` marker cannot be used, and what is wrong with it.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct FlakyProblem {
    pub nodeid: String,
    pub message: String,
}

impl From<(String, String)> for FlakyProblem {
    fn from((nodeid, message): (String, String)) -> Self {
        FlakyProblem { nodeid, message }
    }
}

/// Each collected test's facts JSON and flow id, made in the core as the
/// test starts: a Python tuple per test made at collection would cost a large
/// suite garbage-collection time.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct FactsTable {
    pub(crate) inner: Arc<records::FactsTable>,
}

impl FactsTable {
    pub fn table(&self) -> Arc<records::FactsTable> {
        Arc::clone(&self.inner)
    }
}

#[pymethods]
impl FactsTable {
    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

/// The run's quarantine and owners, loaded and checked once.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct RunPolicy {
    pub(crate) quarantine: Arc<Quarantine>,
    pub(crate) owners: Arc<Owners>,
}

impl RunPolicy {
    /// Read the quarantine file and the owners table `engine`'s
    /// configuration names.
    pub(crate) fn load(
        engine: &crate::engine::Engine,
        rootdir: &std::path::Path,
    ) -> Result<Self, Error> {
        let quarantine = Quarantine::load(rootdir, &engine.config.quarantine)?;
        let owners = Owners::new(&engine.config.owners, &engine.taxonomy)?;
        Ok(RunPolicy {
            quarantine: Arc::new(quarantine),
            owners: Arc::new(owners),
        })
    }
}

#[pymethods]
impl RunPolicy {
    /// The quarantine file read, or None.
    #[getter]
    fn quarantine_file(&self) -> Option<String> {
        self.quarantine.source.clone()
    }

    /// Expired quarantine entries fail the run.
    #[getter]
    fn strict(&self) -> bool {
        self.quarantine.strict
    }

    /// Quarantine entries past their expiry date (UTC); each is logged as a
    /// warning with the run id as its flow id.
    fn expired(&self, run_id: &str) -> Vec<ExpiredQuarantine> {
        self.quarantine
            .expired(Date::today())
            .into_iter()
            .map(|e| {
                log::warn!(
                    target: "pytest_dynamo.quarantine",
                    "quarantine - {run_id} - expired {} on {}: {} ({}; owner {})",
                    e.ticket, e.expires, e.test, e.reason, e.owner
                );
                ExpiredQuarantine {
                    test: e.test.clone(),
                    ticket: e.ticket.clone(),
                    owner: e.owner.clone(),
                    expires: e.expires.to_string(),
                    reason: e.reason.clone(),
                }
            })
            .collect()
    }
}

/// What the report hook does once `Recorder.report` has taken a report:
/// bit flags, exported to Python as `REPORT_*`. A failed report: gating
/// hears of it.
pub const FAILED: u8 = 1;
/// The report ended its test, whose line was made.
pub const FINISHED: u8 = 2;
/// The report ended an attempt that is retried.
pub const RETRIED: u8 = 4;

/// A report of a test still running: as the records read it, and itself.
struct Pending {
    report: PhaseReport,
    object: Py<PyAny>,
}

/// The reports of a test still running.
struct Running {
    nodeid: Py<PyString>,
    /// Its reports' `location`: in a single process every report of a test
    /// holds the item's own tuple, found by identity without asking pytest
    /// for the node id (a property that builds a string on pytest 9).
    location: Option<Py<PyAny>>,
    reports: Vec<Pending>,
}

/// Whether the attempt the last report ends was retried.
fn retried(reports: &[Pending]) -> bool {
    let last = reports.len().saturating_sub(1);
    for (i, p) in reports.iter().enumerate().rev() {
        // A crashed worker's report before the last one ended an earlier
        // attempt (see `record::attempts`).
        if i < last && p.report.when == Phase::Other {
            return false;
        }
        if p.report.outcome == ReportOutcome::Rerun {
            return true;
        }
        if p.report.when == Phase::Setup {
            return false;
        }
    }
    false
}

/// What the run-start line says, known before it is written.
struct StartContext {
    rootdir: PathBuf,
    host: String,
    pipeline: Option<String>,
    stage: Option<String>,
    framework: Option<String>,
    shard: Option<String>,
    gpus: Option<serde_json::Value>,
}

/// One run's records: the run-start line, a line per finished test, the
/// run-end line, appended to the records file when one is named. It takes
/// every pytest report as it comes, and keeps each test's until the test ends.
#[pyclass(module = "pytest_dynamo._core")]
pub struct Recorder {
    inner: records::Recorder,
    /// This process's facts, where it collected the tests it records: a
    /// test's facts then come from here, not through its reports.
    facts: Option<Arc<records::FactsTable>>,
    /// The reports of tests still running: one test at a time in a single
    /// process, one per worker under xdist, so a short list.
    running: Vec<Running>,
    /// Given by `begin`; the run-start line is written before the first test's.
    context: Option<StartContext>,
    /// Every test line of the run, in order.
    lines: Vec<String>,
}

impl Recorder {
    /// Write the run-start line from the context `begin` gave, once.
    fn start_once(&mut self) {
        if self.inner.has_started() {
            return;
        }
        let Some(c) = self.context.take() else {
            return;
        };
        let context = RunContext {
            git: records::describe_git(&c.rootdir, |v| std::env::var(v).ok()),
            pipeline: c.pipeline,
            stage: c.stage,
            framework: c.framework,
            shard: c.shard,
            gpus: c.gpus,
            host: c.host,
        };
        self.inner.start(&context);
    }

    /// Make (and write) the line of a finished test from its reports.
    fn finish(&mut self, py: Python<'_>, running: Running) -> PyResult<()> {
        self.start_once();
        let nodeid = running.nodeid.bind(py).to_cow()?.into_owned();
        let (reports, objects): (Vec<PhaseReport>, Vec<Bound<'_, PyAny>>) = running
            .reports
            .into_iter()
            .map(|p| (p.report, p.object.into_bound(py)))
            .unzip();
        let read = report::read(nodeid, reports, &objects)?;
        let known = match (&read.facts, &self.facts) {
            (None, Some(table)) => table.facts(&read.nodeid),
            _ => None,
        };
        let (line, finished) = self.inner.test(&read.input(known.as_ref()));
        for dropped in &read.dropped {
            log::warn!(
                target: "pytest_dynamo.records",
                "records - {} - property dropped {}: {dropped} is not what the records read",
                finished.flow_id,
                read.nodeid
            );
        }
        self.lines.push(line);
        Ok(())
    }

    /// Where the test a report belongs to is in `running`: by its location
    /// tuple in a single process, else by an equal node id (an xdist
    /// worker's report is a copy). Starts a test not running yet.
    fn find(&mut self, report: &Bound<'_, PyAny>, dict: &Bound<'_, PyDict>) -> PyResult<usize> {
        let py = report.py();
        let location = dict
            .get_item(intern!(py, "location"))?
            .filter(PyAnyMethods::is_instance_of::<PyTuple>);
        if let Some(location) = &location {
            let same = |r: &Running| r.location.as_ref().is_some_and(|l| l.is(location));
            if let Some(i) = self.running.iter().position(same) {
                return Ok(i);
            }
        }
        let nodeid = report
            .getattr(intern!(py, "nodeid"))?
            .cast_into::<PyString>()?;
        for (i, r) in self.running.iter().enumerate() {
            if r.nodeid.is(&nodeid) || PyAnyMethods::eq(r.nodeid.bind(py).as_any(), &nodeid)? {
                return Ok(i);
            }
        }
        self.running.push(Running {
            nodeid: nodeid.unbind(),
            location: location.map(Bound::unbind),
            reports: Vec::new(),
        });
        Ok(self.running.len() - 1)
    }
}

/// `JUnit` properties of a finished test: its outcome, every attempt, its
/// markers by category, its owner and flow id.
fn junit_properties(
    outcome: &str,
    attempts: &[serde_json::Value],
    markers: &serde_json::Value,
    owner: Option<&str>,
    flow_id: &str,
) -> Vec<(String, String)> {
    let mut props = vec![("dynamo_outcome".to_string(), outcome.to_string())];
    for (i, a) in attempts.iter().enumerate() {
        props.push((
            format!("dynamo_attempt_{}", i + 1),
            format!(
                "{} (setup {}s, call {}s, teardown {}s)",
                a["outcome"].as_str().unwrap_or("?"),
                a["setup_s"],
                a["call_s"],
                a["teardown_s"]
            ),
        ));
    }
    if let Some(map) = markers.as_object() {
        for (category, names) in map {
            let names: Vec<&str> = names
                .as_array()
                .map(|n| n.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            props.push((format!("dynamo_markers_{category}"), names.join(",")));
        }
    }
    if let Some(owner) = owner {
        props.push(("dynamo_owner".into(), owner.into()));
    }
    props.push((properties::FLOW_ID.into(), flow_id.into()));
    props
}

#[pymethods]
impl Recorder {
    /// Start a run's records; `path` names the records file (None: keep the
    /// records in memory only). Raises `ConfigError` when it cannot be opened.
    #[new]
    #[pyo3(signature = (run_id, path=None))]
    fn new(py: Python<'_>, run_id: String, path: Option<PathBuf>) -> PyResult<Self> {
        let mut inner = py.detach(|| records::Recorder::new(path.as_deref()))?;
        inner.run_id = run_id;
        Ok(Recorder {
            inner,
            facts: None,
            running: Vec::new(),
            context: None,
            lines: Vec::new(),
        })
    }

    /// The run id: 32 hex digits.
    #[getter]
    fn run_id(&self) -> String {
        self.inner.run_id.clone()
    }

    /// The records file, or None.
    #[getter]
    fn path(&self) -> Option<String> {
        self.inner.path().map(|p| p.display().to_string())
    }

    /// Whether the run-start line was made.
    #[getter]
    fn started(&self) -> bool {
        self.inner.has_started()
    }

    /// What the run-start line will say; it is written before the first
    /// test's line, or with the run-end line. `gpus` is the GPU inventory as
    /// JSON; `shard` is `"K/N"` for one shard of a stage.
    #[pyo3(signature = (rootdir, host, pipeline=None, stage=None, framework=None, gpus=None, shard=None))]
    #[allow(clippy::too_many_arguments)]
    fn begin(
        &mut self,
        rootdir: PathBuf,
        host: String,
        pipeline: Option<String>,
        stage: Option<String>,
        framework: Option<String>,
        gpus: Option<String>,
        shard: Option<String>,
    ) -> PyResult<()> {
        let gpus = gpus
            .map(|g| serde_json::from_str(&g))
            .transpose()
            .map_err(|e| {
                pyo3::exceptions::PyValueError::new_err(format!("gpus is not JSON: {e}"))
            })?;
        self.context = Some(StartContext {
            rootdir,
            host,
            pipeline,
            stage,
            framework,
            shard,
            gpus,
        });
        Ok(())
    }

    /// Make (and write) the run-start line now, from what `begin` gave, and
    /// return it; None before `begin`.
    fn start(&mut self) -> Option<String> {
        self.start_once();
        self.inner.start_line().map(String::from)
    }

    /// Take this process's facts table: tests whose reports carry no facts
    /// (this process collected them) get theirs from it.
    fn use_facts(&mut self, table: &FactsTable) {
        self.facts = Some(Arc::clone(&table.inner));
    }

    /// Take one pytest report, as `pytest_runtest_logreport` sees it; the
    /// last teardown of a test (or a report outside the phases, from a
    /// crashed xdist worker) makes and writes its line. Returns bit flags:
    /// 1, the report failed; 2, the test's line was made; 4, the report ends
    /// an attempt that is retried.
    fn report(&mut self, report: &Bound<'_, PyAny>) -> PyResult<u8> {
        let py = report.py();
        let dict = report::instance_dict(report)?;
        let (read, failed) = report::report(report, &dict)?;
        let flags = if failed { FAILED } else { 0 };
        let pending = Pending {
            report: read,
            object: report.clone().unbind(),
        };
        let phase = pending.report.when;
        let at = self.find(report, &dict)?;
        self.running[at].reports.push(pending);
        if matches!(phase, Phase::Setup | Phase::Call) {
            return Ok(flags);
        }
        if retried(&self.running[at].reports) {
            return Ok(flags | RETRIED);
        }
        let running = self.running.swap_remove(at);
        self.finish(py, running)?;
        Ok(flags | FINISHED)
    }

    /// Record the tests cut short (an interrupted run) that got as far as
    /// a result; a test with only a passed setup has none. Returns how many.
    fn finish_cut_short(&mut self, py: Python<'_>) -> PyResult<usize> {
        let mut count = 0;
        for running in std::mem::take(&mut self.running) {
            let has_result = running.reports.iter().any(|p| {
                p.report.when != Phase::Setup || p.report.outcome != ReportOutcome::Passed
            });
            if has_result {
                self.finish(py, running)?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Every test line made so far, in order.
    fn lines(&self) -> Vec<String> {
        self.lines.clone()
    }

    /// How many test lines were made.
    fn __len__(&self) -> usize {
        self.lines.len()
    }

    /// `JUnit` properties of the last test line made (see `junit_properties`).
    fn last_junit_properties(&self) -> PyResult<Vec<(String, String)>> {
        Self::junit_properties(self.lines.last().map_or("", String::as_str))
    }

    /// `JUnit` properties of a test line: its outcome, every attempt, its
    /// markers by category, its owner and flow id.
    #[staticmethod]
    fn junit_properties(line: &str) -> PyResult<Vec<(String, String)>> {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!("not a test record: {e}"))
        })?;
        let empty = Vec::new();
        Ok(junit_properties(
            v["outcome"].as_str().unwrap_or(""),
            v["attempts"].as_array().unwrap_or(&empty),
            &v["markers"],
            v["owner"].as_str(),
            v["flow_id"].as_str().unwrap_or(""),
        ))
    }

    /// Failed tests (failed, error, quarantined-failed) with an owner:
    /// `(nodeid, owner)`.
    fn failure_owners(&self) -> Vec<(String, String)> {
        self.inner
            .tests()
            .iter()
            .filter(|t| t.outcome.is_failure())
            .filter_map(|t| Some((t.nodeid.clone(), t.owner.clone()?)))
            .collect()
    }

    /// Make (and write) the run-end line, after the run-start line if no
    /// test wrote it.
    fn end(&mut self, exit_status: i32) -> String {
        self.start_once();
        self.inner.end(exit_status)
    }

    /// How many tests ended with `outcome`.
    fn count(&self, outcome: &str) -> u64 {
        records::Outcome::ALL
            .iter()
            .find(|o| o.as_str() == outcome)
            .map_or(0, |o| self.inner.count(*o))
    }

    /// The tests that passed on a retry.
    fn flaky(&self) -> Vec<FlakyTest> {
        self.inner
            .tests()
            .iter()
            .filter(|t| t.outcome == records::Outcome::Flaky)
            .map(|t| FlakyTest {
                nodeid: t.nodeid.clone(),
                attempts: t.attempts,
                owner: t.owner.clone(),
                reason: t.reason.clone(),
            })
            .collect()
    }

    /// The quarantined tests that ran.
    fn quarantined(&self) -> Vec<QuarantinedTest> {
        self.inner
            .tests()
            .iter()
            .filter_map(|t| {
                let q = t.quarantine.as_ref()?;
                Some(QuarantinedTest {
                    nodeid: t.nodeid.clone(),
                    outcome: t.outcome.as_str().to_string(),
                    ticket: q.ticket.clone(),
                    owner: q.owner.clone(),
                    expires: q.expires.clone(),
                })
            })
            .collect()
    }

    /// The `n` slowest tests, slowest first.
    fn slowest(&self, n: usize) -> Vec<SlowTest> {
        self.inner
            .slowest(n)
            .into_iter()
            .map(|t| SlowTest {
                nodeid: t.nodeid.clone(),
                seconds: t.duration_s,
                stage: t.stage.clone(),
            })
            .collect()
    }

    /// The first failed write to the records file and how many lines were lost.
    fn write_error(&self) -> Option<WriteError> {
        self.inner.write_error().map(|(e, n)| WriteError {
            message: e.to_string(),
            lost: n,
        })
    }

    /// Merge this run's test durations into a pytest-split durations file
    /// (replaced atomically). Returns how many tests the file holds.
    fn merge_durations(&self, py: Python<'_>, path: PathBuf) -> PyResult<usize> {
        let tests: Vec<(String, f64)> = self
            .inner
            .tests()
            .iter()
            .map(|t| (t.nodeid.clone(), records::round_micro(t.duration_s)))
            .collect();
        Ok(py.detach(|| records::merge_durations(&path, tests))?)
    }

    /// Check that a durations file (if it exists) can be read and merged.
    #[staticmethod]
    fn check_durations(path: PathBuf) -> PyResult<()> {
        records::read_durations(&path)?;
        Ok(())
    }
}

/// A new run id: 32 hex digits.
#[pyfunction]
pub fn new_run_id() -> String {
    records::new_run_id()
}

/// A new flow id: a random version 4 UUID, made as the core makes every
/// test's (one implementation for both languages).
#[pyfunction]
pub fn new_flow_id() -> String {
    records::FlowIds::fresh()
}

/// The stable id of a test: the sha256 of its node id, in hex.
#[pyfunction]
pub fn test_id(nodeid: &str) -> String {
    records::test_id(nodeid)
}

/// A quarantine entry past its expiry date.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct ExpiredQuarantine {
    /// The test's node id or pattern, as the entry writes it.
    pub test: String,
    pub ticket: String,
    pub owner: String,
    /// The expiry date, `YYYY-MM-DD`.
    pub expires: String,
    pub reason: String,
}

/// A test that passed on a retry.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct FlakyTest {
    pub nodeid: String,
    /// How many attempts it took.
    pub attempts: usize,
    pub owner: Option<String>,
    /// The `flaky` marker's reason, if it gives one.
    pub reason: Option<String>,
}

/// A quarantined test that ran.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct QuarantinedTest {
    pub nodeid: String,
    /// Its outcome (`passed`, `failed`, ...).
    pub outcome: String,
    pub ticket: String,
    pub owner: String,
    /// The quarantine's expiry date, `YYYY-MM-DD`.
    pub expires: String,
}

/// One of the slowest tests of a run.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct SlowTest {
    pub nodeid: String,
    pub seconds: f64,
    pub stage: Option<String>,
}

/// The first failed write to the records file.
#[pyclass(frozen, get_all, module = "pytest_dynamo._core")]
pub struct WriteError {
    pub message: String,
    /// How many lines were lost.
    pub lost: usize,
}

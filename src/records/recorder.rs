//! One run's records: builds each line, writes it to the records file (when
//! one is named) as the test finishes, and keeps what the end-of-run summary
//! and the durations file need. Lives on the pytest config, never in a static.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::clock;
use crate::error::Result;

use crate::records::facts::{Facts, FactsRef, FactsView, QuarantineRef};
use crate::records::file::RecordsFile;
use crate::records::git::Git;
use crate::records::record::{
    self, Attempt, Counts, Metric, Outcome, PhaseReport, RunEnd, RunStart, TestRecord, SCHEMA,
};

/// Lowercase hex of bytes (sha2 0.11 digests do not format as hex).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The stable id of a test: sha256 of its node id, in hex.
pub fn test_id(nodeid: &str) -> String {
    hex(&Sha256::digest(nodeid.as_bytes()))
}

/// 32 hex digits, unique per run: the time, the process and the hasher
/// seed the standard library draws from the OS.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut digest = Sha256::new();
    digest.update(nanos.to_le_bytes());
    digest.update(hasher.finish().to_le_bytes());
    digest.update(std::process::id().to_le_bytes());
    hex(&digest.finalize()[..16])
}

/// Tests quicker than this are not "slow" (pytest's `--durations-min` default).
pub const SLOWEST_FLOOR_S: f64 = 0.005;

/// What a run-start line says about the run.
#[derive(Debug, Default, Clone)]
pub struct RunContext {
    pub pipeline: Option<String>,
    pub stage: Option<String>,
    pub framework: Option<String>,
    /// `"K/N"` when the run is one shard of a stage.
    pub shard: Option<String>,
    pub gpus: Option<serde_json::Value>,
    pub git: Git,
    pub host: String,
}

/// Where a finished test's facts come from.
#[derive(Debug, Default, Clone, Copy)]
pub enum FactsIn<'a> {
    /// Nobody described the test (a crashed worker's report): it gates.
    #[default]
    Unknown,
    /// As the collecting process (an xdist worker) sent them: JSON of `Facts`.
    Json(&'a str),
    /// Worked out by this process, which collected the test.
    Known(&'a Facts),
}

/// One finished test, as the reports of its attempts arrived.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestInput<'a> {
    pub nodeid: &'a str,
    pub reports: &'a [PhaseReport],
    /// Attempts run before the reports (our own retries send them this way).
    pub previous: &'a [Attempt],
    pub facts: FactsIn<'a>,
    pub flow_id: Option<&'a str>,
    pub worker: Option<&'a str>,
    pub gpus_assigned: Option<&'a [String]>,
    pub gpus_used: Option<i64>,
    pub gpu_peak_mib: Option<f64>,
    pub metrics: &'a [Metric],
}

/// What the summary and the durations file keep of a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub nodeid: String,
    pub flow_id: String,
    pub outcome: Outcome,
    pub attempts: usize,
    pub duration_s: f64,
    pub stage: Option<String>,
    pub owner: Option<String>,
    pub gating: bool,
    pub reason: Option<String>,
    pub quarantine: Option<QuarantineRef>,
}

pub struct Recorder {
    pub run_id: String,
    file: Option<RecordsFile>,
    started: Instant,
    started_at: String,
    /// The run-start line, once made.
    start_line: Option<String>,
    counts: [u64; 8],
    tests: Vec<Finished>,
    /// The first write that failed, and how many lines were lost.
    write_error: Option<(String, usize)>,
}

impl Recorder {
    pub fn new(path: Option<&Path>) -> Result<Recorder> {
        let file = path.map(RecordsFile::open).transpose()?;
        Ok(Recorder {
            run_id: new_run_id(),
            file,
            started: Instant::now(),
            started_at: clock::now_rfc3339(),
            start_line: None,
            counts: [0; 8],
            tests: Vec::new(),
            write_error: None,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(RecordsFile::path)
    }

    pub fn has_started(&self) -> bool {
        self.start_line.is_some()
    }

    fn write(&mut self, line: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Err(e) = file.append(line) {
            if let Some((_, lost)) = &mut self.write_error {
                *lost += 1;
            } else {
                log::error!(
                    target: "pytest_dynamo.records",
                    "records - {} - write failed {e}",
                    self.run_id
                );
                self.write_error = Some((e.to_string(), 1));
            }
        }
    }

    /// The run-start line, written once.
    pub fn start(&mut self, context: &RunContext) -> String {
        let line = serde_json::to_string(&RunStart {
            record: "run_start",
            schema: SCHEMA,
            run_id: &self.run_id,
            pipeline: context.pipeline.as_deref(),
            stage: context.stage.as_deref(),
            framework: context.framework.as_deref(),
            shard: context.shard.as_deref(),
            gpus: context.gpus.as_ref(),
            git: &context.git,
            host: &context.host,
            plugin_version: env!("CARGO_PKG_VERSION"),
            started_at: &self.started_at,
        })
        .expect("a run-start record serializes");
        self.write(&line);
        if let Some(path) = self.path() {
            log::info!(
                target: "pytest_dynamo.records",
                "records - {} - started appending records to {}",
                self.run_id,
                path.display()
            );
        }
        self.start_line = Some(line.clone());
        line
    }

    /// The run-start line, once made.
    pub fn start_line(&self) -> Option<&str> {
        self.start_line.as_deref()
    }

    /// A finished test's line: written, counted, kept for the summary.
    pub fn test(&mut self, input: &TestInput<'_>) -> (String, &Finished) {
        let parsed: FactsRef<'_>;
        let facts: FactsView<'_> = match input.facts {
            FactsIn::Known(known) => known.into(),
            FactsIn::Json(text) => {
                parsed = serde_json::from_str(text).unwrap_or_default();
                (&parsed).into()
            }
            FactsIn::Unknown => {
                parsed = FactsRef::default();
                (&parsed).into()
            }
        };
        let mut attempts = input.previous.to_vec();
        attempts.extend(record::attempts(input.reports));
        let (outcome, reason) = record::resolve(&attempts, facts.quarantine.is_some());
        let reason = reason.as_deref().and_then(record::short_reason);
        let duration_s: f64 = attempts.iter().map(Attempt::total).sum();
        let test_id = test_id(input.nodeid);
        let flow_id = input
            .flow_id
            .or(facts.flow_id)
            .map_or_else(|| test_id[..32].to_string(), String::from);
        let finished_at = clock::now_rfc3339();
        let mut buffer = Vec::with_capacity(1024);
        serde_json::to_writer(
            &mut buffer,
            &TestRecord {
                record: "test",
                schema: SCHEMA,
                run_id: &self.run_id,
                nodeid: input.nodeid,
                test_id: &test_id,
                outcome,
                attempts: &attempts,
                duration_s,
                markers: facts.markers,
                reason: reason.as_deref(),
                gpus_used: input.gpus_used,
                gpu_peak_mib: input.gpu_peak_mib,
                timeout_s: facts.timeout_s,
                worker: input.worker,
                gpus_assigned: input.gpus_assigned,
                flow_id: &flow_id,
                stage: facts.stage,
                gating: facts.gating,
                owner: facts.owner,
                metrics: input.metrics,
                quarantine: facts.quarantine,
                finished_at: &finished_at,
            },
        )
        .expect("a test record serializes");
        let line = String::from_utf8(buffer).expect("serde_json writes UTF-8");
        self.write(&line);
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.counts[index] += 1;
        self.tests.push(Finished {
            nodeid: input.nodeid.to_string(),
            flow_id,
            outcome,
            attempts: attempts.len(),
            duration_s,
            stage: facts.stage.map(String::from),
            owner: facts.owner.map(String::from),
            gating: facts.gating,
            reason,
            quarantine: facts.quarantine.cloned(),
        });
        (line, self.tests.last().expect("just pushed"))
    }

    /// The run-end line.
    pub fn end(&mut self, exit_status: i32) -> String {
        let finished_at = clock::now_rfc3339();
        let line = serde_json::to_string(&RunEnd {
            record: "run_end",
            schema: SCHEMA,
            run_id: &self.run_id,
            exit_status,
            counts: Counts(self.counts),
            wall_s: self.started.elapsed().as_secs_f64(),
            finished_at: &finished_at,
        })
        .expect("a run-end record serializes");
        self.write(&line);
        line
    }

    pub fn tests(&self) -> &[Finished] {
        &self.tests
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.counts[index]
    }

    pub fn write_error(&self) -> Option<(&str, usize)> {
        self.write_error.as_ref().map(|(e, n)| (e.as_str(), *n))
    }

    /// The `n` slowest tests, slowest first; tests quicker than
    /// `SLOWEST_FLOOR_S` are left out, as pytest's `--durations` does.
    pub fn slowest(&self, n: usize) -> Vec<&Finished> {
        let mut by_time: Vec<&Finished> = self
            .tests
            .iter()
            .filter(|t| t.duration_s >= SLOWEST_FLOOR_S)
            .collect();
        by_time.sort_by(|a, b| b.duration_s.total_cmp(&a.duration_s));
        by_time.truncate(n);
        by_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::record::{Phase, ReportOutcome};

    fn report(when: &str, outcome: &str) -> PhaseReport {
        PhaseReport {
            when: Phase::parse(when),
            outcome: ReportOutcome::parse(outcome),
            duration: 0.25,
            xfail: false,
            reason: (outcome != "passed").then(|| "AssertionError: assert 1 == 2\nmore".into()),
        }
    }

    #[test]
    fn hex_and_ids() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(test_id("t.py::a"), hex(&Sha256::digest(b"t.py::a")),);
        assert_eq!(test_id("").len(), 64);
        let a = new_run_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_run_id());
    }

    #[test]
    fn a_run_writes_start_tests_and_end() {
        let dir = std::env::temp_dir().join(format!("dynamo-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("r.jsonl");
        let mut r = Recorder::new(Some(&path)).unwrap();
        let start = r.start(&RunContext {
            host: "ci-1".into(),
            gpus: Some(serde_json::json!({"count": 0})),
            ..RunContext::default()
        });
        let facts = r#"{"markers":{"type":["unit"]},"stage":"pre_merge","gating":true,"exempt":null,"owner":"alec","quarantine":null}"#;
        let (line, finished) = r.test(&TestInput {
            nodeid: "t.py::a",
            reports: &[
                report("setup", "passed"),
                report("call", "failed"),
                report("teardown", "passed"),
            ],
            facts: FactsIn::Json(facts),
            flow_id: Some("f-1"),
            worker: Some("gw1"),
            gpus_assigned: Some(&["GPU-a".to_string(), "GPU-b".to_string()]),
            gpus_used: Some(1),
            gpu_peak_mib: Some(512.5),
            metrics: &[Metric {
                name: "tok_s".into(),
                value: 10.0,
                unit: "tok/s".into(),
                higher_is_better: true,
            }],
            ..TestInput::default()
        });
        assert_eq!(finished.outcome, Outcome::Failed);
        assert_eq!(finished.owner.as_deref(), Some("alec"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["record"], "test");
        assert_eq!(v["test_id"], test_id("t.py::a"));
        assert_eq!(v["reason"], "AssertionError: assert 1 == 2");
        assert_eq!(v["markers"]["type"][0], "unit");
        assert_eq!(v["attempts"][0]["outcome"], "failed");
        assert_eq!(v["duration_s"], 0.75);
        assert_eq!(v["stage"], "pre_merge");
        assert_eq!(v["worker"], "gw1");
        assert_eq!(v["gpus_assigned"], serde_json::json!(["GPU-a", "GPU-b"]));
        assert_eq!(v["metrics"][0]["unit"], "tok/s");
        assert_eq!(v["gpu_peak_mib"], 512.5);
        let end = r.end(1);
        let e: serde_json::Value = serde_json::from_str(&end).unwrap();
        assert_eq!(e["counts"]["failed"], 1);
        assert_eq!(e["exit_status"], 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{start}\n{line}\n{end}\n"));
    }

    #[test]
    fn missing_facts_still_make_a_record() {
        let mut r = Recorder::new(None).unwrap();
        let (line, f) = r.test(&TestInput {
            nodeid: "t.py::crashed",
            reports: &[report("???", "failed")],
            ..TestInput::default()
        });
        assert!(f.gating);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["markers"], serde_json::json!({}));
        assert_eq!(v["flow_id"].as_str().unwrap().len(), 32);
        assert_eq!(r.count(Outcome::Failed), 1);
        assert_eq!(r.slowest(5).len(), 1);
    }
}

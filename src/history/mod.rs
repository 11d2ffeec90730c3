//! The history of runs read from records files: runs in order of their
//! start, the tests they ran and one row per test result. Names are interned
//! so a million rows stay small and every statistic works on indices.
//!
//! A run is known by its `run_id`. Test lines of a run without its
//! `run_start` (an interrupted or partly copied file) still count: the run is
//! placed by its earliest test's `finished_at`, with no commit or GPU model.

pub mod read;
pub mod scan;
pub mod stats;
pub mod timestamp;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::error::Result;
use crate::history::read::{Chunk, Parsed, TestLine};
use crate::records::outcome_name;

/// At most this many corrupt lines are quoted; all are counted.
const PROBLEMS_SHOWN: usize = 20;

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

// The record schema owns the field's type; read back here.
pub use crate::records::RecordedTimeout;

/// The record's `gpus_used` as a count: a whole number of GPUs, else unknown.
pub fn gpus_of(value: Option<f64>) -> Option<u32> {
    // Cast after the check: a whole number from 0 to 4096 fits a u32 exactly.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    value
        .filter(|v| v.fract() == 0.0 && (0.0..=4096.0).contains(v))
        .map(|v| v as u32)
}

/// What the inputs held, for the report's header.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Inputs {
    pub files: usize,
    pub lines: usize,
    pub records: usize,
    pub corrupt: usize,
    pub unknown: usize,
    /// Test lines read again (same run id and node id: a history copied
    /// twice), each result counted once.
    pub duplicates: usize,
    /// `path: why` for each entry of a walked folder that has a records
    /// file's name but is not a regular file (a FIFO, a broken link), skipped.
    pub skipped: Vec<String>,
    /// The first corrupt lines as `file:line: why`, gzip problems, and
    /// entries of folders skipped because they are not regular files.
    pub problems: Vec<String>,
    pub runs_without_start: usize,
    pub runs_without_end: usize,
}

#[derive(Debug, Clone, Default)]
pub struct History {
    pub runs: Vec<Run>,
    /// Node ids by test index.
    pub tests: Vec<String>,
    /// Interned stage and owner names; index 0 is the empty name (none).
    pub names: Vec<String>,
    /// Rows ordered by run, then by where they were read.
    pub rows: Vec<Row>,
    pub inputs: Inputs,
}

impl History {
    /// Read records files and folders (gzip included) in parallel; a gzip
    /// file may decompress to at most `max_decompressed` bytes.
    pub fn load(paths: &[PathBuf], max_decompressed: u64) -> Result<History> {
        let expanded = read::expand(paths)?;
        let sources = expanded
            .files
            .par_iter()
            .map(|p| read::read(p, max_decompressed))
            .collect::<Result<Vec<_>>>()?;
        let chunks = read::parse_all(&sources);
        let mut history = assemble(&sources, chunks);
        // After the corrupt lines: a summary quoting "the first" problem
        // quotes a line.
        history
            .inputs
            .problems
            .extend(expanded.skipped.iter().cloned());
        history.inputs.skipped = expanded.skipped;
        Ok(history)
    }

    /// Parse records from text already in memory (one JSON record a line).
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> History {
        let mut text = String::new();
        for line in lines {
            text.push_str(line.trim_end_matches('\n'));
            text.push('\n');
        }
        let source = read::Source {
            path: "<records>".into(),
            bytes: read::Bytes::Owned(text.into_bytes()),
            problem: None,
        };
        let sources = [source];
        let chunks = read::parse_all(&sources);
        assemble(&sources, chunks)
    }

    pub fn name(&self, index: u32) -> Option<&str> {
        (index != 0).then(|| self.names[index as usize].as_str())
    }

    /// Indices of the runs of `pipeline` (all runs for None), in order.
    pub fn select(&self, pipeline: Option<&str>) -> Vec<usize> {
        (0..self.runs.len())
            .filter(|&i| pipeline.is_none_or(|p| self.runs[i].pipeline.as_deref() == Some(p)))
            .collect()
    }

    /// Row indices per run, in the order of `runs`.
    pub fn rows_by_run(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = vec![0..0; self.runs.len()];
        let mut start = 0;
        while start < self.rows.len() {
            let run = self.rows[start].run;
            let end = start + self.rows[start..].partition_point(|r| r.run == run);
            out[run as usize] = start..end;
            start = end;
        }
        out
    }
}

/// `FxHash` (rustc's): a fast hash for short keys; the keys are node ids from
/// files the user gave, not input an attacker picks.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

/// Names to indices: each distinct name is copied once, lookups borrow.
#[derive(Default)]
struct Interner {
    index: FxMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn with_empty() -> Self {
        let mut i = Interner::default();
        i.get("");
        i
    }

    fn get(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).expect("fewer than 4 billion names");
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        i
    }
}

fn owned(c: Option<&std::borrow::Cow<'_, str>>) -> Option<String> {
    c.map(ToString::to_string)
}

/// A run being built: what its lines said so far.
struct Building {
    run: Run,
    earliest_test: f64,
}

/// A chunk's test lines as rows, made in the parallel phase as each line is
/// read: run, stage and owner are indices into the chunk's own lists, the
/// test is left to the merge.
#[derive(Default)]
pub struct Prepared<'c> {
    rows: Vec<LocalRow>,
    /// Metrics by row, for the few rows that have them.
    metrics: Vec<(usize, Vec<Metric>)>,
    /// Per row: where its node id ends in `nodeid_text` (it starts where
    /// the previous one ends), and its hash (computed here, in parallel).
    nodeids: Vec<(usize, u64)>,
    /// The node ids, copied one after another while the line is in cache:
    /// the merge reads them in order rather than from all over the file.
    nodeid_text: String,
    /// Run ids of the chunk's test lines, with their earliest `finished_at`.
    runs: Vec<(Cow<'c, str>, f64)>,
    /// Stage and owner names; index 0 is "none", so names\[i - 1\] is index i.
    names: Vec<Cow<'c, str>>,
    /// Names past the first few, to their index (a chunk rarely has more).
    more_names: FxMap<String, u32>,
}

/// A row as its chunk holds it until the merge (narrower than a `Row`:
/// fewer pages to touch): run, stage and owner are the chunk's indices.
struct LocalRow {
    duration_s: f64,
    gpu_peak_mib: Option<f64>,
    gpus_used: Option<u32>,
    timeout: RecordedTimeout,
    run: u32,
    stage: u32,
    owner: u32,
    outcome: Outcome,
    gating: bool,
}

/// Equal bytes, compared in line: stage and owner names are short, and a
/// call to `memcmp` for each cost more than the comparison.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Names a chunk looks up one by one before it keeps a map of them.
const FEW_NAMES: usize = 8;

/// Fx-hash a node id once, in the parallel phase.
fn hash_name(name: &str) -> u64 {
    use std::hash::BuildHasher;
    std::hash::BuildHasherDefault::<Fx>::default().hash_one(name)
}

impl<'c> Prepared<'c> {
    pub fn with_capacity(rows: usize) -> Self {
        Prepared {
            rows: Vec::with_capacity(rows),
            nodeids: Vec::with_capacity(rows),
            nodeid_text: String::with_capacity(rows * 64),
            ..Prepared::default()
        }
    }

    /// Test lines in the chunk.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows with metrics, by their index in the chunk.
    pub fn metric_rows(&self) -> impl Iterator<Item = (usize, &[Metric])> {
        self.metrics.iter().map(|(i, m)| (*i, m.as_slice()))
    }

    fn nodeid(&self, i: usize) -> (&str, u64) {
        let start = i.checked_sub(1).map_or(0, |p| self.nodeids[p].0);
        let (end, hash) = self.nodeids[i];
        (&self.nodeid_text[start..end], hash)
    }

    fn name(&mut self, name: Option<Cow<'c, str>>) -> u32 {
        let Some(name) = name else { return 0 };
        let few = self.names.len().min(FEW_NAMES);
        if let Some(i) = self.names[..few]
            .iter()
            .position(|n| same(n.as_bytes(), name.as_bytes()))
        {
            return u32::try_from(i + 1).expect("name count");
        }
        if let Some(&i) = self.more_names.get(name.as_ref()) {
            return i;
        }
        let i = u32::try_from(self.names.len() + 1).expect("name count");
        if self.names.len() >= FEW_NAMES {
            self.more_names.insert(name.to_string(), i);
        }
        self.names.push(name);
        i
    }

    /// One test line as a row.
    pub fn push(&mut self, t: TestLine<'c>) {
        // A chunk holds the lines of one run or two: look from the latest.
        let run = if let Some(i) = self.runs.iter().rposition(|r| r.0 == t.run_id) {
            i
        } else {
            self.runs.push((t.run_id, f64::INFINITY));
            self.runs.len() - 1
        };
        if let Some(f) = t.finished_at {
            self.runs[run].1 = self.runs[run].1.min(f);
        }
        let stage = self.name(t.stage);
        let owner = self.name(t.owner);
        self.nodeid_text.push_str(&t.nodeid);
        self.nodeids
            .push((self.nodeid_text.len(), hash_name(&t.nodeid)));
        if !t.metrics.is_empty() {
            let metrics = t
                .metrics
                .iter()
                .map(|m| Metric {
                    name: m.name.to_string(),
                    value: m.value,
                    unit: m.unit.as_deref().unwrap_or_default().to_string(),
                    higher_is_better: m.higher_is_better,
                })
                .collect();
            self.metrics.push((self.rows.len(), metrics));
        }
        self.rows.push(LocalRow {
            run: u32::try_from(run).expect("run count"),
            outcome: Outcome::parse(&t.outcome),
            duration_s: t.duration_s,
            stage,
            owner,
            gating: t.gating,
            gpu_peak_mib: t.gpu_peak_mib,
            gpus_used: t.gpus_used,
            timeout: t.timeout,
        });
    }
}

/// Node ids to test indices by a hash computed beforehand: the sequential
/// merge only probes and compares.
#[derive(Default)]
struct TestIndex {
    /// hash -> the latest test with it; `next` chains tests that share a hash.
    heads: FxMap<u64, u32>,
    next: Vec<u32>,
    names: Vec<String>,
}

impl TestIndex {
    fn get(&mut self, name: &str, hash: u64) -> u32 {
        let head = self.heads.get(&hash).copied().unwrap_or(u32::MAX);
        let mut at = head;
        while at != u32::MAX {
            if self.names[at as usize] == name {
                return at;
            }
            at = self.next[at as usize];
        }
        let i = u32::try_from(self.names.len()).expect("fewer than 4 billion tests");
        self.names.push(name.to_string());
        self.next.push(head);
        self.heads.insert(hash, i);
        i
    }
}

/// Chunk-local indices to history-wide ones.
struct Mapping {
    runs: Vec<u32>,
    names: Vec<u32>,
    tests: Vec<u32>,
}

// Parallel (in the parse): rows per chunk. Sequential: run records, corrupt
// lines, and one index lookup per row. Parallel again: rows rewritten; then
// ordered by run (unless they already are).
#[allow(clippy::too_many_lines)]
fn assemble(sources: &[read::Source], mut chunks: Vec<Chunk<'_>>) -> History {
    let mut inputs = Inputs {
        files: sources.len(),
        ..Inputs::default()
    };
    for s in sources {
        if let Some(p) = &s.problem {
            inputs.problems.push(p.clone());
        }
    }
    let mut runs: Vec<Building> = Vec::new();
    let mut run_index: FxMap<String, u32> = FxMap::default();
    let mut tests = TestIndex::default();
    let mut names = Interner::with_empty();
    let mut line_base = vec![0usize; sources.len()];

    let mut run_of = |id: &str, runs: &mut Vec<Building>| -> u32 {
        if let Some(&i) = run_index.get(id) {
            return i;
        }
        let i = u32::try_from(runs.len()).expect("fewer than 4 billion runs");
        run_index.insert(id.to_string(), i);
        runs.push(Building {
            run: Run {
                run_id: id.to_string(),
                started_at: f64::INFINITY,
                has_start: false,
                pipeline: None,
                stage: None,
                commit: None,
                branch: None,
                gpu_model: None,
                host: None,
                end: None,
            },
            earliest_test: f64::INFINITY,
        });
        i
    };

    let mut mappings = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let prep = &chunk.tests;
        let base = line_base[chunk.source];
        line_base[chunk.source] += chunk.lines;
        inputs.lines += chunk.lines;
        inputs.unknown += chunk.unknown;
        inputs.records += chunk.parsed.len() + prep.len() + chunk.unknown;
        inputs.corrupt += chunk.corrupt.len();
        for (line, why) in &chunk.corrupt {
            if inputs.problems.len() < PROBLEMS_SHOWN {
                inputs.problems.push(format!(
                    "{}:{}: {why}",
                    sources[chunk.source].path,
                    base + line
                ));
            }
        }
        for parsed in &chunk.parsed {
            match parsed {
                Parsed::Start(s) => {
                    let i = run_of(&s.run_id, &mut runs) as usize;
                    take_start(&mut runs[i].run, s);
                }
                Parsed::End(e) => {
                    let i = run_of(&e.run_id, &mut runs) as usize;
                    take_end(&mut runs[i].run, e);
                }
                Parsed::Test(_) => {}
            }
        }
        let run_map: Vec<u32> = prep
            .runs
            .iter()
            .map(|(id, earliest)| {
                let i = run_of(id, &mut runs);
                let b = &mut runs[i as usize];
                b.earliest_test = b.earliest_test.min(*earliest);
                i
            })
            .collect();
        let name_map: Vec<u32> = std::iter::once(0)
            .chain(prep.names.iter().map(|n| names.get(n)))
            .collect();
        let test_map: Vec<u32> = (0..prep.nodeids.len())
            .map(|i| {
                let (name, hash) = prep.nodeid(i);
                tests.get(name, hash)
            })
            .collect();
        mappings.push(Mapping {
            runs: run_map,
            names: name_map,
            tests: test_map,
        });
    }

    let (order, rank) = order_runs(&mut runs);
    let mut rows = fill_rows(&mut chunks, &mappings, &rank);
    let read = rows.len();
    drop_repeats(&mut rows, tests.names.len());
    inputs.duplicates = read - rows.len();
    if inputs.duplicates > 0 {
        inputs.problems.push(format!(
            "{} duplicate test lines (a run id and node id read before) counted once",
            inputs.duplicates
        ));
    }
    let mut slots: Vec<Option<Run>> = runs.into_iter().map(|b| Some(b.run)).collect();
    let runs: Vec<Run> = order
        .iter()
        .map(|&i| slots[i as usize].take().expect("each run once"))
        .collect();
    inputs.runs_without_start = runs.iter().filter(|r| !r.has_start).count();
    inputs.runs_without_end = runs.iter().filter(|r| r.end.is_none()).count();
    History {
        runs,
        tests: tests.names,
        names: names.names,
        rows,
        inputs,
    }
}

/// A run-start line into its run.
fn take_start(run: &mut Run, s: &read::StartLine<'_>) {
    // The shards of one run (`--dynamo-shard`) share its run_id: one start
    // per machine. The run starts with the first; the first to say the
    // context keeps it.
    if run.has_start {
        run.started_at = run.started_at.min(s.started_at);
        return;
    }
    run.has_start = true;
    run.started_at = s.started_at;
    run.pipeline = owned(s.pipeline.as_ref());
    run.stage = owned(s.stage.as_ref());
    run.commit = owned(s.commit.as_ref());
    run.branch = owned(s.branch.as_ref());
    run.host = owned(s.host.as_ref());
    run.gpu_model = Some(owned(s.gpu_model.as_ref()).unwrap_or_else(|| "cpu".into()));
}

/// A run-end line into its run.
fn take_end(run: &mut Run, e: &read::EndLine<'_>) {
    let mut end = RunEnd {
        exit_status: e.exit_status,
        wall_s: e.wall_s,
        finished_at: e.finished_at,
    };
    // Shards end one by one: the run failed if one did, and took as long
    // as its slowest machine.
    if let Some(before) = &run.end {
        end.exit_status = end.exit_status.max(before.exit_status);
        end.wall_s = end.wall_s.max(before.wall_s);
        end.finished_at = match (end.finished_at, before.finished_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    run.end = Some(end);
}

/// The runs in order of their start, and each run's rank in that order.
fn order_runs(runs: &mut [Building]) -> (Vec<u32>, Vec<u32>) {
    // Order runs by start; a run without run_start by its earliest test.
    for b in runs.iter_mut() {
        if !b.run.has_start {
            b.run.started_at = if b.earliest_test.is_finite() {
                b.earliest_test
            } else {
                b.run
                    .end
                    .as_ref()
                    .and_then(|e| e.finished_at)
                    .unwrap_or(0.0)
            };
        }
    }
    let mut order: Vec<u32> = (0..u32::try_from(runs.len()).expect("run count")).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&runs[a as usize].run, &runs[b as usize].run);
        a.started_at
            .total_cmp(&b.started_at)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    let mut rank = vec![0u32; runs.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = u32::try_from(r).expect("run count");
    }
    (order, rank)
}

/// Every chunk's rows with history-wide indices, sorted by run.
fn fill_rows(chunks: &mut [Chunk<'_>], mappings: &[Mapping], rank: &[u32]) -> Vec<Row> {
    // Each chunk writes its rows, with history-wide indices, straight into
    // its own part of the final vector.
    let total: usize = chunks.iter().map(|c| c.tests.len()).sum();
    let mut rows: Vec<Row> = Vec::with_capacity(total);
    let mut spare = &mut rows.spare_capacity_mut()[..total];
    let mut parts = Vec::with_capacity(chunks.len());
    for chunk in chunks.iter() {
        let (part, rest) = spare.split_at_mut(chunk.tests.len());
        parts.push(part);
        spare = rest;
    }
    chunks
        .par_iter_mut()
        .zip(parts)
        .zip(mappings)
        .for_each(|((chunk, part), map)| {
            let prep = &mut chunk.tests;
            assert!(part.len() == prep.rows.len() && map.tests.len() == prep.rows.len());
            let mut metrics = std::mem::take(&mut prep.metrics).into_iter().peekable();
            for (i, ((slot, row), &test)) in
                part.iter_mut().zip(&prep.rows).zip(&map.tests).enumerate()
            {
                let row_metrics = metrics
                    .next_if(|m| m.0 == i)
                    .map(|m| m.1)
                    .unwrap_or_default();
                slot.write(Row {
                    run: rank[map.runs[row.run as usize] as usize],
                    test,
                    outcome: row.outcome,
                    duration_s: row.duration_s,
                    stage: map.names[row.stage as usize],
                    owner: map.names[row.owner as usize],
                    gating: row.gating,
                    gpu_peak_mib: row.gpu_peak_mib,
                    gpus_used: row.gpus_used,
                    timeout: row.timeout,
                    metrics: row_metrics,
                });
            }
        });
    // SAFETY: the parts split the first `total` slots among the chunks, each
    // as long as its chunk's rows (asserted), and every slot of every part
    // was written just above.
    unsafe { rows.set_len(total) };
    // Stable: rows of one run keep the order they were read in. Files
    // written run after run are in order already.
    if !rows.is_sorted_by_key(|r| r.run) {
        rows.par_sort_by_key(|r| r.run);
    }
    rows
}

/// Drop repeated results, keeping the first read.
fn drop_repeats(rows: &mut Vec<Row>, tests: usize) {
    // One result per test and run: the same line read twice (a history
    // copied into two files) would count a run's tests twice. The first
    // read is kept. Rows of a run are together now, so a test's last run
    // seen tells a repeat.
    let mut last_run = vec![u32::MAX; tests];
    rows.retain(|r| {
        let seen = &mut last_run[r.test as usize];
        let fresh = *seen != r.run;
        *seen = r.run;
        fresh
    });
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    fn start(run: &str, at: &str, commit: &str) -> String {
        format!(
            r#"{{"record":"run_start","schema":1,"run_id":"{run}","pipeline":"nightly","stage":null,"framework":null,"gpus":{{"visible":1,"physical":1,"devices":[{{"index":0,"name":"NVIDIA H100","uuid":"GPU-1","memory_total_mib":80000,"memory_free_mib":80000,"mig":false}}]}},"git":{{"commit":"{commit}","branch":"main"}},"host":"h","plugin_version":"0.1.0","started_at":"{at}"}}"#
        )
    }

    fn test(run: &str, nodeid: &str, outcome: &str, at: &str) -> String {
        format!(
            r#"{{"record":"test","schema":1,"run_id":"{run}","nodeid":"{nodeid}","test_id":"x","outcome":"{outcome}","attempts":[],"duration_s":2.0,"markers":{{}},"reason":null,"gpus_used":null,"gpu_peak_mib":null,"worker":null,"flow_id":"f","stage":"e2e","gating":true,"owner":"alec","metrics":[],"finished_at":"{at}"}}"#
        )
    }

    #[test]
    fn runs_are_ordered_by_start_and_rows_follow() {
        let lines = [
            start("b", "2026-03-02T00:00:00Z", "c2"),
            test("b", "t.py::a", "failed", "2026-03-02T00:01:00Z"),
            start("a", "2026-03-01T00:00:00Z", "c1"),
            test("a", "t.py::a", "passed", "2026-03-01T00:01:00Z"),
            r#"{"record":"run_end","schema":1,"run_id":"a","exit_status":0,"counts":{"passed":1},"wall_s":60.0,"finished_at":"2026-03-01T00:01:00Z"}"#.to_string(),
        ];
        let h = History::from_lines(lines.iter().map(String::as_str));
        assert_eq!(h.runs.len(), 2);
        assert_eq!(h.runs[0].run_id, "a");
        assert_eq!(h.runs[0].commit.as_deref(), Some("c1"));
        assert_eq!(h.runs[0].gpu_model.as_deref(), Some("NVIDIA H100"));
        assert_eq!(h.runs[0].end.as_ref().unwrap().wall_s, 60.0);
        assert!(h.runs[1].end.is_none());
        assert_eq!(h.rows[0].run, 0);
        assert_eq!(h.rows[0].outcome, Outcome::Passed);
        assert_eq!(h.rows[1].outcome, Outcome::Failed);
        assert_eq!(h.tests, vec!["t.py::a".to_string()]);
        assert_eq!(h.name(h.rows[0].stage), Some("e2e"));
        assert_eq!(h.name(h.rows[0].owner), Some("alec"));
        assert_eq!(h.inputs.runs_without_end, 1);
        assert_eq!(h.rows_by_run(), vec![0..1, 1..2]);
    }

    #[test]
    fn the_shards_of_a_run_are_one_run() {
        let end = |status: i32, wall: f64, at: &str| {
            format!(
                r#"{{"record":"run_end","schema":1,"run_id":"s","exit_status":{status},"counts":{{}},"wall_s":{wall},"finished_at":"{at}"}}"#
            )
        };
        let lines = [
            start("s", "2026-03-01T00:00:05Z", "c1"),
            test("s", "t.py::a", "passed", "2026-03-01T00:01:00Z"),
            end(1, 90.0, "2026-03-01T00:01:35Z"),
            start("s", "2026-03-01T00:00:00Z", "c1"),
            test("s", "t.py::b", "passed", "2026-03-01T00:02:00Z"),
            end(0, 120.0, "2026-03-01T00:02:00Z"),
        ];
        let h = History::from_lines(lines.iter().map(String::as_str));
        assert_eq!(h.runs.len(), 1);
        let run = &h.runs[0];
        assert_eq!(
            crate::history::timestamp::minute(run.started_at),
            "2026-03-01 00:00"
        );
        let end = run.end.as_ref().unwrap();
        assert_eq!((end.exit_status, end.wall_s), (1, 120.0));
        assert_eq!(h.rows_by_run(), vec![0..2]);
    }

    #[test]
    fn a_run_without_run_start_is_placed_by_its_tests() {
        let lines = [
            start("late", "2026-03-05T00:00:00Z", "c"),
            test("orphan", "t.py::a", "passed", "2026-03-03T10:00:00Z"),
            test("orphan", "t.py::b", "passed", "2026-03-03T09:00:00Z"),
        ];
        let h = History::from_lines(lines.iter().map(String::as_str));
        assert_eq!(h.runs[0].run_id, "orphan");
        assert!(!h.runs[0].has_start);
        assert_eq!(h.runs[0].gpu_model, None);
        assert_eq!(
            crate::history::timestamp::minute(h.runs[0].started_at),
            "2026-03-03 09:00"
        );
        assert_eq!(h.inputs.runs_without_start, 1);
    }

    #[test]
    fn corrupt_lines_are_counted_with_their_place() {
        let good = test("r", "t.py::a", "passed", "2026-03-01T00:00:00Z");
        let other = test("r", "t.py::b", "passed", "2026-03-01T00:00:00Z");
        let lines = [
            good.as_str(),
            "{\"record\":\"test\",\"run_",
            "",
            "garbage",
            other.as_str(),
        ];
        let h = History::from_lines(lines);
        assert_eq!(h.inputs.corrupt, 2);
        assert_eq!(h.inputs.lines, 5);
        assert_eq!(h.rows.len(), 2);
        assert!(
            h.inputs.problems[0].starts_with("<records>:2: "),
            "{:?}",
            h.inputs.problems
        );
        assert!(h.inputs.problems[1].starts_with("<records>:4: "));
    }

    #[test]
    fn a_test_line_read_twice_counts_once() {
        // One history copied into a second file: every line twice.
        let run = [
            start("r1", "2026-03-01T00:00:00Z", "c"),
            test("r1", "t.py::a", "passed", "2026-03-01T00:01:00Z"),
            test("r1", "t.py::b", "failed", "2026-03-01T00:02:00Z"),
            start("r2", "2026-03-02T00:00:00Z", "c"),
            test("r2", "t.py::a", "failed", "2026-03-02T00:01:00Z"),
        ];
        let twice: Vec<&str> = run.iter().chain(run.iter()).map(String::as_str).collect();
        let h = History::from_lines(twice);
        assert_eq!(h.rows.len(), 3);
        assert_eq!(h.inputs.duplicates, 3);
        let kept: Vec<(u32, &str)> = h
            .rows
            .iter()
            .map(|r| (r.run, h.tests[r.test as usize].as_str()))
            .collect();
        assert_eq!(kept, [(0, "t.py::a"), (0, "t.py::b"), (1, "t.py::a")]);
        assert!(h.inputs.problems[0].starts_with("3 duplicate test lines"));
        // The same test in another run is not a duplicate.
        let once = History::from_lines(run.iter().map(String::as_str));
        assert_eq!((once.rows.len(), once.inputs.duplicates), (3, 0));
        assert!(once.inputs.problems.is_empty());
    }

    #[test]
    fn many_owners_in_one_chunk_keep_their_names() {
        // More names than a chunk compares one by one, repeated out of order.
        let lines: Vec<String> = (0..60)
            .map(|i| {
                test(
                    "r",
                    &format!("t.py::t{i}"),
                    "passed",
                    "2026-03-01T00:00:00Z",
                )
                .replace(
                    r#""owner":"alec""#,
                    &format!(r#""owner":"team-{}""#, (i * 7) % 20),
                )
            })
            .collect();
        let h = History::from_lines(lines.iter().map(String::as_str));
        assert_eq!(h.rows.len(), 60);
        for (i, row) in h.rows.iter().enumerate() {
            assert_eq!(h.tests[row.test as usize], format!("t.py::t{i}"));
            assert_eq!(
                h.name(row.owner),
                Some(format!("team-{}", (i * 7) % 20).as_str())
            );
            assert_eq!(h.name(row.stage), Some("e2e"));
        }
        // Each name interned once: the empty one, the stage and 20 owners.
        assert_eq!(h.names.len(), 22);
    }

    #[test]
    fn escaped_node_ids_intern_to_one_test() {
        let a = test("r1", "t.py::a[\\u00e9]", "passed", "2026-03-01T00:00:00Z");
        let b = test("r2", "t.py::a[é]", "passed", "2026-03-02T00:00:00Z");
        let h = History::from_lines([a.as_str(), b.as_str()]);
        assert_eq!(h.tests.len(), 1);
        assert_eq!(h.tests[0], "t.py::a[é]");
    }
}

//! The history of runs read from records files: runs in order of their
//! start, the tests they ran and one row per test result. Names are interned
//! so a million rows stay small and every statistic works on indices.
//!
//! A run is known by its `run_id`. Test lines of a run without its
//! `run_start` (an interrupted or partly copied file) still count: the run is
//! placed by its earliest test's `finished_at`, with no commit or GPU model.

mod chunk;
mod intern;
mod read;
mod row;
mod scan;
pub mod stats;
pub mod timestamp;

// What other folders use: runs and rows, record lines read one at a time
// (the Prometheus export), and the fast scan (its benchmark).
pub use crate::history::read::{parse_line, Parsed, MAX_DECOMPRESSED};
pub use crate::history::row::{Metric, Outcome, Row, Run, RunEnd};
pub use crate::history::scan::test_line;
// The record schema owns the field's type; read back here.
pub use crate::records::RecordedTimeout;

use std::path::PathBuf;

use rayon::prelude::*;

use crate::error::Result;
use crate::history::chunk::Chunk;
use crate::history::intern::{FxMap, Interner, TestIndex};

/// At most this many corrupt lines are quoted; all are counted.
const PROBLEMS_SHOWN: usize = 20;

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
        let chunks = chunk::parse_all(&sources);
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
        let chunks = chunk::parse_all(&sources);
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

fn owned(c: Option<&std::borrow::Cow<'_, str>>) -> Option<String> {
    c.map(ToString::to_string)
}

/// A run being built: what its lines said so far.
struct Building {
    run: Run,
    earliest_test: f64,
}

/// Chunk-local indices to history-wide ones.
struct Mapping {
    runs: Vec<u32>,
    names: Vec<u32>,
    tests: Vec<u32>,
}

/// The runs being built, by run id, in the order first seen.
#[derive(Default)]
struct Runs {
    building: Vec<Building>,
    index: FxMap<String, u32>,
}

impl Runs {
    /// The run of `id`, started empty when first seen.
    fn of(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = u32::try_from(self.building.len()).expect("fewer than 4 billion runs");
        self.index.insert(id.to_string(), i);
        self.building.push(Building {
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
    }
}

/// History-wide indices: of tests by node id, of stage and owner names.
struct Indices {
    tests: TestIndex,
    names: Interner,
}

// Parallel (in the parse): rows per chunk. Sequential: run records, corrupt
// lines, and one index lookup per row. Parallel again: rows rewritten; then
// ordered by run (unless they already are).
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
    let mut runs = Runs::default();
    let mut index = Indices {
        tests: TestIndex::default(),
        names: Interner::with_empty(),
    };
    let mut line_base = vec![0usize; sources.len()];
    let mut mappings = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let base = line_base[chunk.source];
        line_base[chunk.source] += chunk.lines;
        count_chunk(chunk, &sources[chunk.source].path, base, &mut inputs);
        take_runs(chunk, &mut runs);
        mappings.push(map_chunk(chunk, &mut runs, &mut index));
    }

    let mut runs = runs.building;
    let (order, rank) = order_runs(&mut runs);
    let mut rows = fill_rows(&mut chunks, &mappings, &rank);
    let read = rows.len();
    drop_repeats(&mut rows, index.tests.names.len());
    inputs.duplicates = read - rows.len();
    if inputs.duplicates > 0 {
        inputs.problems.push(format!(
            "{} duplicate test lines (a run id and node id read before) counted once",
            inputs.duplicates
        ));
    }
    let runs = in_order(runs, &order);
    inputs.runs_without_start = runs.iter().filter(|r| !r.has_start).count();
    inputs.runs_without_end = runs.iter().filter(|r| r.end.is_none()).count();
    History {
        runs,
        tests: index.tests.names,
        names: index.names.names,
        rows,
        inputs,
    }
}

/// A chunk's lines, records and corrupt lines into the counts; the first
/// corrupt lines quoted as `file:line: why` (`base`: the file's lines before
/// the chunk).
fn count_chunk(chunk: &Chunk<'_>, path: &str, base: usize, inputs: &mut Inputs) {
    inputs.lines += chunk.lines;
    inputs.unknown += chunk.unknown;
    inputs.records += chunk.parsed.len() + chunk.tests.len() + chunk.unknown;
    inputs.corrupt += chunk.corrupt.len();
    for (line, why) in &chunk.corrupt {
        if inputs.problems.len() < PROBLEMS_SHOWN {
            inputs
                .problems
                .push(format!("{path}:{}: {why}", base + line));
        }
    }
}

/// A chunk's run starts and ends into their runs.
fn take_runs(chunk: &Chunk<'_>, runs: &mut Runs) {
    for parsed in &chunk.parsed {
        match parsed {
            Parsed::Start(s) => {
                let i = runs.of(&s.run_id) as usize;
                take_start(&mut runs.building[i].run, s);
            }
            Parsed::End(e) => {
                let i = runs.of(&e.run_id) as usize;
                take_end(&mut runs.building[i].run, e);
            }
            Parsed::Test(_) => {}
        }
    }
}

/// A chunk's own run, name and test indices to history-wide ones; each run
/// learns its earliest test.
fn map_chunk(chunk: &Chunk<'_>, runs: &mut Runs, index: &mut Indices) -> Mapping {
    let prep = &chunk.tests;
    let run_map: Vec<u32> = prep
        .runs
        .iter()
        .map(|(id, earliest)| {
            let i = runs.of(id);
            let b = &mut runs.building[i as usize];
            b.earliest_test = b.earliest_test.min(*earliest);
            i
        })
        .collect();
    let name_map: Vec<u32> = std::iter::once(0)
        .chain(prep.names.iter().map(|n| index.names.get(n)))
        .collect();
    let test_map: Vec<u32> = (0..prep.nodeids.len())
        .map(|i| {
            let (name, hash) = prep.nodeid(i);
            index.tests.get(name, hash)
        })
        .collect();
    Mapping {
        runs: run_map,
        names: name_map,
        tests: test_map,
    }
}

/// The runs, taken in `order`.
fn in_order(runs: Vec<Building>, order: &[u32]) -> Vec<Run> {
    let mut slots: Vec<Option<Run>> = runs.into_iter().map(|b| Some(b.run)).collect();
    order
        .iter()
        .map(|&i| slots[i as usize].take().expect("each run once"))
        .collect()
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

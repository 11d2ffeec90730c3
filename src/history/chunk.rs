//! One chunk of a records file, parsed in the parallel phase: its run starts
//! and ends, and its test lines already made rows.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::history::intern::{hash_name, FxMap};
use crate::history::read::{parse_line, Parsed, Source, TestLine};
use crate::history::row::{Metric, Outcome};
use crate::history::scan::Scanner;
use crate::records::RecordedTimeout;

/// Lines per parallel task are cut at about this many bytes.
const CHUNK_BYTES: usize = 1 << 20;

/// What one chunk of one file held.
#[derive(Default)]
pub struct Chunk<'a> {
    pub source: usize,
    /// Lines in the chunk (to number the lines of the chunks after it).
    pub lines: usize,
    /// Run starts and ends, in line order.
    pub parsed: Vec<Parsed<'a>>,
    /// Test lines, already rows (made here, in the parallel phase).
    pub tests: Prepared<'a>,
    /// `(line within the chunk, 1-based; what is wrong)`.
    pub corrupt: Vec<(usize, String)>,
    /// Records of a kind this reader does not know (a newer writer's).
    pub unknown: usize,
}

/// Cut `bytes` into slices of whole lines of about `CHUNK_BYTES` each.
pub fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(bytes.len() / CHUNK_BYTES + 1);
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + CHUNK_BYTES).min(bytes.len());
        if end < bytes.len() {
            end = bytes[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |p| end + p + 1);
        }
        out.push(&bytes[start..end]);
        start = end;
    }
    out
}

/// Parse every source's chunks in parallel, in file and line order.
pub fn parse_all(sources: &[Source]) -> Vec<Chunk<'_>> {
    let work: Vec<(usize, &[u8])> = sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| chunks(&s.bytes).into_iter().map(move |c| (i, c)))
        .collect();
    work.into_par_iter()
        .map(|(i, c)| parse_chunk(i, c))
        .collect()
}

pub fn parse_chunk(source: usize, bytes: &[u8]) -> Chunk<'_> {
    let mut chunk = Chunk {
        source,
        // Test records are a few hundred bytes: one allocation per chunk.
        tests: Prepared::with_capacity(bytes.len() / 256 + 1),
        ..Chunk::default()
    };
    let mut scanner = Scanner::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        chunk.lines += 1;
        // The fast scan finds where its line ends.
        if let Some((t, end)) = scanner.test_record(rest) {
            chunk.tests.push(t);
            rest = rest.get(end + 1..).unwrap_or_default();
            continue;
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(n) => (&rest[..n], &rest[n + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line(line) {
            Ok(Some(Parsed::Test(t))) => chunk.tests.push(t),
            Ok(Some(p)) => chunk.parsed.push(p),
            Ok(None) => chunk.unknown += 1,
            Err(why) => chunk.corrupt.push((chunk.lines, why)),
        }
    }
    chunk
}

/// A chunk's test lines as rows, made in the parallel phase as each line is
/// read: run, stage and owner are indices into the chunk's own lists, the
/// test is left to the merge.
#[derive(Default)]
pub struct Prepared<'c> {
    pub(super) rows: Vec<LocalRow>,
    /// Metrics by row, for the few rows that have them.
    pub(super) metrics: Vec<(usize, Vec<Metric>)>,
    /// Per row: where its node id ends in `nodeid_text` (it starts where
    /// the previous one ends), and its hash (computed here, in parallel).
    pub(super) nodeids: Vec<(usize, u64)>,
    /// The node ids, copied one after another while the line is in cache:
    /// the merge reads them in order rather than from all over the file.
    nodeid_text: String,
    /// Run ids of the chunk's test lines, with their earliest `finished_at`.
    pub(super) runs: Vec<(Cow<'c, str>, f64)>,
    /// Stage and owner names; index 0 is "none", so names\[i - 1\] is index i.
    pub(super) names: Vec<Cow<'c, str>>,
    /// Names past the first few, to their index (a chunk rarely has more).
    more_names: FxMap<String, u32>,
}

/// A row as its chunk holds it until the merge (narrower than a `Row`:
/// fewer pages to touch): run, stage and owner are the chunk's indices.
pub(super) struct LocalRow {
    pub(super) duration_s: f64,
    pub(super) gpu_peak_mib: Option<f64>,
    pub(super) gpus_used: Option<u32>,
    pub(super) timeout: RecordedTimeout,
    pub(super) run: u32,
    pub(super) stage: u32,
    pub(super) owner: u32,
    pub(super) outcome: Outcome,
    pub(super) gating: bool,
}

/// Equal bytes, compared in line: stage and owner names are short, and a
/// call to `memcmp` for each cost more than the comparison.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Names a chunk looks up one by one before it keeps a map of them.
const FEW_NAMES: usize = 8;

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

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows with metrics, by their index in the chunk.
    #[cfg(test)]
    pub fn metric_rows(&self) -> impl Iterator<Item = (usize, &[Metric])> {
        self.metrics.iter().map(|(i, m)| (*i, m.as_slice()))
    }

    pub(super) fn nodeid(&self, i: usize) -> (&str, u64) {
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

//! Reading records files: folders walked, gzip recognised by its magic bytes,
//! every file cut into chunks at line ends and the chunks parsed in parallel.
//! A line that is not a record (truncated, corrupt, a field of the wrong
//! type) is counted and skipped, never fatal: an interrupted run leaves half
//! a line behind, and one bad line must not hide a month of history.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::records::RecordedTimeout;

/// File names taken from a folder; a file named on the command line is read whatever its name.
const RECORD_SUFFIXES: [&str; 4] = [".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz"];

/// One file's bytes, decompressed.
pub struct Source {
    pub path: String,
    pub bytes: Bytes,
    /// Set when a gzip stream ended early: the lines before it are still read.
    pub problem: Option<String>,
}

/// The fields of every record kind in one flat struct: faster than a tagged
/// enum (no buffering) and unknown fields are skipped, so newer writers'
/// records still read.
#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow)]
    record: Cow<'a, str>,
    #[serde(borrow, default)]
    run_id: Option<Cow<'a, str>>,
    // run_start
    #[serde(borrow, default)]
    pipeline: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stage: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    gpus: Option<RawGpus<'a>>,
    #[serde(borrow, default)]
    git: Option<RawGit<'a>>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    started_at: Option<Cow<'a, str>>,
    // test
    #[serde(borrow, default)]
    nodeid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    outcome: Option<Cow<'a, str>>,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default)]
    gating: Option<bool>,
    #[serde(borrow, default)]
    owner: Option<Cow<'a, str>>,
    #[serde(default)]
    gpu_peak_mib: Option<f64>,
    #[serde(default)]
    gpus_used: Option<f64>,
    /// Absent (an older writer) is not null (no `timeout` marker).
    #[serde(default, deserialize_with = "RecordedTimeout::deserialize")]
    timeout_s: RecordedTimeout,
    #[serde(borrow, default)]
    metrics: Option<Vec<RawMetric<'a>>>,
    // test and run_end
    #[serde(borrow, default)]
    finished_at: Option<Cow<'a, str>>,
    // run_end
    #[serde(default)]
    exit_status: Option<i64>,
    #[serde(default)]
    wall_s: Option<f64>,
}

#[derive(Deserialize)]
struct RawGpus<'a> {
    #[serde(borrow, default)]
    devices: Vec<RawDevice<'a>>,
}

#[derive(Deserialize)]
struct RawDevice<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawGit<'a> {
    #[serde(borrow, default)]
    commit: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    branch: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub struct RawMetric<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub value: f64,
    #[serde(borrow, default)]
    pub unit: Option<Cow<'a, str>>,
    #[serde(default)]
    pub higher_is_better: bool,
}

pub struct StartLine<'a> {
    pub run_id: Cow<'a, str>,
    pub pipeline: Option<Cow<'a, str>>,
    pub stage: Option<Cow<'a, str>>,
    pub gpu_model: Option<Cow<'a, str>>,
    pub commit: Option<Cow<'a, str>>,
    pub branch: Option<Cow<'a, str>>,
    pub host: Option<Cow<'a, str>>,
    pub started_at: f64,
}

pub struct TestLine<'a> {
    pub run_id: Cow<'a, str>,
    pub nodeid: Cow<'a, str>,
    pub outcome: Cow<'a, str>,
    pub duration_s: f64,
    pub stage: Option<Cow<'a, str>>,
    pub gating: bool,
    pub owner: Option<Cow<'a, str>>,
    pub gpu_peak_mib: Option<f64>,
    pub gpus_used: Option<u32>,
    pub timeout: RecordedTimeout,
    pub metrics: Vec<RawMetric<'a>>,
    pub finished_at: Option<f64>,
}

pub struct EndLine<'a> {
    pub run_id: Cow<'a, str>,
    pub exit_status: i64,
    pub wall_s: f64,
    pub finished_at: Option<f64>,
}

/// Run starts and ends are rare and large: boxed, so the vector of
/// parsed lines is as narrow as a test line. A test line is never kept as
/// a `Parsed` (it goes straight into its chunk's rows), so it is not boxed:
/// one allocation per test line would cost more than the width.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<'a> {
    Start(Box<StartLine<'a>>),
    Test(TestLine<'a>),
    End(Box<EndLine<'a>>),
}

/// The records files under the paths given, and what was passed over.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Regular files, sorted, each once.
    pub files: Vec<PathBuf>,
    /// `path: why` for each entry of a walked folder that has a records
    /// file's name but is not one (a FIFO, a socket, a device, a broken
    /// link): opening a FIFO would wait for a writer for ever.
    pub skipped: Vec<String>,
}

/// What a path that is neither a folder nor a regular file is, in words.
fn kind_of(path: &Path) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let kind = meta.file_type();
            return if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() || kind.is_char_device() {
                "a device"
            } else {
                "not a regular file"
            };
        }
    }
    if std::fs::symlink_metadata(path).is_ok() {
        "a broken link"
    } else {
        "missing"
    }
}

/// Files and folders to the records files in them, sorted, each once. A
/// path named here that is not a regular file or a folder is refused; inside
/// folders such entries are skipped and listed.
pub fn expand(paths: &[PathBuf]) -> Result<Expanded> {
    let mut files = BTreeSet::new();
    let mut out = Expanded::default();
    let mut seen = BTreeSet::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files, &mut out.skipped, &mut seen)?;
        } else if path.is_file() {
            files.insert(canonical(path));
        } else if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::config(
                path.display().to_string(),
                format!("not a records file: it is {}", kind_of(path)),
                "name a regular records file (.jsonl or .jsonl.gz) or a folder holding them",
            ));
        } else {
            return Err(Error::config(
                path.display().to_string(),
                "no such records file or folder",
                "name a records file (.jsonl or .jsonl.gz) or a folder holding them",
            ));
        }
    }
    out.files = files.into_iter().collect();
    Ok(out)
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// `seen` holds the folders walked (canonical): a link back to a folder
/// above is walked once, not until the stack runs out.
fn walk(
    dir: &Path,
    out: &mut BTreeSet<PathBuf>,
    skipped: &mut Vec<String>,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<()> {
    if !seen.insert(canonical(dir)) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display().to_string(), &e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(
            entry
                .map_err(|e| Error::io(dir.display().to_string(), &e))?
                .path(),
        );
    }
    // Sorted, so the skipped entries are listed in a stable order.
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, out, skipped, seen)?;
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !RECORD_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            continue;
        }
        if path.is_file() {
            out.insert(canonical(&path));
        } else {
            skipped.push(format!(
                "{}: skipped, {} is not a records file",
                path.display(),
                kind_of(&path)
            ));
        }
    }
    Ok(())
}

/// The default of `--max-decompressed`: what one gzip records file may
/// decompress to. A month of a large suite's records is a few hundred MiB;
/// a gzip bomb is refused long before it fills memory.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Read one file, gunzipping it when it starts with the gzip magic bytes;
/// a gzip stream that decompresses to more than `max_decompressed` bytes is
/// refused (memory stays bounded whatever the file holds).
pub fn read(path: &Path, max_decompressed: u64) -> Result<Source> {
    let shown = path.display().to_string();
    let raw = read_bytes(path).map_err(|e| Error::io(&shown, &e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(Source {
            path: shown,
            bytes: raw,
            problem: None,
        });
    }
    let guess = u64::try_from(raw.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8)
        .min(max_decompressed);
    let mut bytes = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
    // One byte past the limit tells a stream at the limit from one above it.
    let mut decoder =
        flate2::read::MultiGzDecoder::new(&raw[..]).take(max_decompressed.saturating_add(1));
    let problem = decoder.read_to_end(&mut bytes).err().map(|e| {
        format!(
            "{shown}: gzip stream is truncated or corrupt after {} bytes ({e}); \
             the lines before that point are read",
            bytes.len()
        )
    });
    if bytes.len() as u64 > max_decompressed {
        return Err(Error::config(
            shown,
            format!("decompresses to more than {max_decompressed} bytes (--max-decompressed)"),
            "raise --max-decompressed if the file is a real history, or remove the file",
        ));
    }
    Ok(Source {
        path: shown,
        bytes: Bytes::Owned(bytes),
        problem,
    })
}

/// A file's bytes: owned, or mapped from the page cache.
pub enum Bytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// Files above this size are mapped rather than read.
const MAP_ABOVE: u64 = 8 << 20;

fn read_bytes(path: &Path) -> std::io::Result<Bytes> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // A FIFO put in a file's place after the folder was walked must not
    // block the open: without a writer it would wait for ever.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file; name a records file or a folder holding them",
        ));
    }
    if meta.len() > MAP_ABOVE {
        // SAFETY: records files are only ever appended to, and an append
        // past the mapped length is not seen. A file truncated by another
        // process while it is read is the one case this does not survive.
        if let Ok(map) = unsafe { memmap2::MmapOptions::new().populate().map(&file) } {
            return Ok(Bytes::Mapped(map));
        }
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes)?;
    Ok(Bytes::Owned(bytes))
}

/// The longest duration a record may hold (about 31 years): a larger,
/// negative or non-finite one is corrupt, so no sum of durations can reach
/// infinity and no report shows a figure no test took.
pub const MAX_SECONDS: f64 = 1e9;

/// A duration as records hold it: 0 to `MAX_SECONDS` seconds (NaN is not).
pub fn seconds_ok(v: f64) -> bool {
    (0.0..=MAX_SECONDS).contains(&v)
}

/// The record's `gpus_used` as a count: a whole number of GPUs, else unknown.
pub fn gpus_of(value: Option<f64>) -> Option<u32> {
    // Cast after the check: a whole number from 0 to 4096 fits a u32 exactly.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    value
        .filter(|v| v.fract() == 0.0 && (0.0..=4096.0).contains(v))
        .map(|v| v as u32)
}

fn seconds(field: &str, value: Option<f64>) -> std::result::Result<f64, String> {
    match value {
        None => Ok(0.0),
        Some(v) if seconds_ok(v) => Ok(v),
        Some(v) => Err(format!(
            "`{field}` is {v}: a duration is 0 to {MAX_SECONDS:e} seconds"
        )),
    }
}

fn text_time(field: &str, value: Option<&Cow<'_, str>>) -> std::result::Result<f64, String> {
    let value = value.ok_or_else(|| format!("missing field `{field}`"))?;
    crate::history::timestamp::parse(value)
        .ok_or_else(|| format!("`{field}` is not an RFC 3339 timestamp: {value:?}"))
}

/// One line: Some record, None for a kind this reader does not know, or why it is corrupt.
pub fn parse_line(line: &[u8]) -> std::result::Result<Option<Parsed<'_>>, String> {
    let raw: RawLine<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let run_id = raw
        .run_id
        .ok_or_else(|| format!("{} record without `run_id`", raw.record))?;
    let parsed = match raw.record.as_ref() {
        "run_start" => Parsed::Start(Box::new(StartLine {
            started_at: text_time("started_at", raw.started_at.as_ref())?,
            run_id,
            pipeline: raw.pipeline,
            stage: raw.stage,
            gpu_model: raw
                .gpus
                .and_then(|g| g.devices.into_iter().next())
                .and_then(|d| d.name),
            commit: raw.git.as_ref().and_then(|g| g.commit.clone()),
            branch: raw.git.and_then(|g| g.branch),
            host: raw.host,
        })),
        "test" => Parsed::Test(TestLine {
            finished_at: raw
                .finished_at
                .as_ref()
                .map(|_| text_time("finished_at", raw.finished_at.as_ref()))
                .transpose()?,
            run_id,
            nodeid: raw.nodeid.ok_or("test record without `nodeid`")?,
            outcome: raw.outcome.ok_or("test record without `outcome`")?,
            duration_s: seconds("duration_s", raw.duration_s)?,
            stage: raw.stage,
            gating: raw.gating.unwrap_or(true),
            owner: raw.owner,
            gpu_peak_mib: raw.gpu_peak_mib,
            gpus_used: gpus_of(raw.gpus_used),
            timeout: raw.timeout_s,
            metrics: raw.metrics.unwrap_or_default(),
        }),
        "run_end" => Parsed::End(Box::new(EndLine {
            finished_at: raw
                .finished_at
                .as_ref()
                .map(|_| text_time("finished_at", raw.finished_at.as_ref()))
                .transpose()?,
            run_id,
            exit_status: raw
                .exit_status
                .ok_or("run_end record without `exit_status`")?,
            wall_s: seconds("wall_s", raw.wall_s)?,
        })),
        _ => return Ok(None),
    };
    Ok(Some(parsed))
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;
    use crate::history::chunk::{chunks, parse_chunk};

    #[test]
    fn chunks_end_at_line_ends_and_cover_everything() {
        let line = b"{\"record\":\"x\"}\n";
        let bytes: Vec<u8> = line.repeat(200_000);
        let parts = chunks(&bytes);
        assert!(parts.len() > 1);
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), bytes.len());
        assert!(parts.iter().all(|p| p.ends_with(b"\n")));
        assert!(chunks(b"").is_empty());
        assert_eq!(chunks(b"no newline"), vec![b"no newline".as_slice()]);
    }

    #[test]
    fn unknown_fields_and_kinds_are_tolerated() {
        let line = br#"{"record":"test","schema":2,"run_id":"r","nodeid":"t.py::a","outcome":"passed","duration_s":1.5,"new_field":{"x":[1,2]}}"#;
        match parse_line(line).unwrap().unwrap() {
            Parsed::Test(t) => {
                assert_eq!(t.nodeid, "t.py::a");
                assert!((t.duration_s - 1.5).abs() < f64::EPSILON);
                assert!(t.gating);
            }
            _ => panic!("not a test record"),
        }
        assert!(parse_line(br#"{"record":"annotation","run_id":"r"}"#)
            .unwrap()
            .is_none());
    }

    #[test]
    fn corrupt_lines_say_why() {
        let err = |l: &[u8]| parse_line(l).err().unwrap();
        assert!(err(br#"{"record":"test","run_id":"r","nodeid":"a","outc"#).contains("EOF"));
        assert!(err(br#"{"record":"test","run_id":"r","outcome":"passed"}"#).contains("nodeid"));
        assert!(err(br#"{"record":"test","nodeid":"a","outcome":"passed"}"#).contains("run_id"));
        assert!(
            err(br#"{"record":"run_start","run_id":"r","started_at":"noon"}"#).contains("RFC 3339")
        );
        assert!(err(br#"{"record":"test","run_id":"r","nodeid":"a","outcome":"passed","duration_s":"slow"}"#).contains("invalid type"));
        assert!(err(b"[1,2]").contains("invalid type"));
    }

    #[test]
    fn a_chunk_numbers_its_lines() {
        let text = b"{\"record\":\"run_end\",\"run_id\":\"r\",\"exit_status\":0}\n\nnot json\n{\"record\":\"other\",\"run_id\":\"r\"}\n";
        let c = parse_chunk(0, text);
        assert_eq!(c.lines, 4);
        assert_eq!(c.parsed.len(), 1);
        assert!(c.tests.is_empty());
        assert_eq!(c.unknown, 1);
        assert_eq!(c.corrupt.len(), 1);
        assert_eq!(c.corrupt[0].0, 3);
    }

    #[test]
    fn fast_and_full_reads_share_one_line_count() {
        let test = |nodeid: &str| {
            format!(
                r#"{{"record":"test","run_id":"r","nodeid":"{nodeid}","outcome":"passed","duration_s":1.5,"stage":null,"owner":"o","metrics":[]}}"#
            )
        };
        let with_metric = test("t.py::m").replace(
            r#""metrics":[]"#,
            r#""metrics":[{"name":"tps","value":3.5}]"#,
        );
        let lines = [
            test("t.py::a"), // 1: fast
            r#"{"record":"run_start","run_id":"r","started_at":"2026-03-01T00:00:00Z"}"#.into(), // 2
            with_metric,                                       // 3: serde (metrics)
            " \t\x0c".into(),                                  // 4: blank
            format!("{}\r", test("t.py::b")),                  // 5: fast, CRLF
            test("t.py::c")[..40].to_string(),                 // 6: cut
            test("t.py::\\u00e9"),                             // 7: serde (escape)
            "{\"record\":\"test\",\"run_id\":\"r\",".into(),   // 8: cut, and
            "\"nodeid\":\"x\",\"outcome\":\"passed\"}".into(), // 9: its end on the next line
            test("t.py::d"),                                   // 10: fast, no line feed
        ]
        .join("\n");
        let c = parse_chunk(0, lines.as_bytes());
        assert_eq!(c.lines, 10);
        assert_eq!(c.parsed.len(), 1);
        assert_eq!(c.tests.len(), 5);
        let metrics: Vec<(usize, usize)> =
            c.tests.metric_rows().map(|(i, m)| (i, m.len())).collect();
        assert_eq!(metrics, vec![(1, 1)]);
        let lines: Vec<usize> = c.corrupt.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![6, 8, 9]);
    }

    #[test]
    fn a_truncated_gzip_keeps_the_lines_before_the_cut() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..2000 {
            writeln!(
                enc,
                "{{\"record\":\"run_end\",\"run_id\":\"r{i}\",\"exit_status\":0}}"
            )
            .unwrap();
        }
        let full = enc.finish().unwrap();
        let dir = std::env::temp_dir().join(format!("dynamo-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cut.jsonl.gz");
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        let source = read(&path, MAX_DECOMPRESSED).unwrap();
        assert!(source.problem.as_deref().unwrap().contains("truncated"));
        assert!(!source.bytes.is_empty());
        std::fs::write(&path, &full).unwrap();
        let source = read(&path, MAX_DECOMPRESSED).unwrap();
        assert!(source.problem.is_none());
        assert_eq!(source.bytes.split(|&b| b == b'\n').count(), 2001);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

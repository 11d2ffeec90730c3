//! The durations file, in pytest-split's `.test_durations` format (a JSON
//! object of node id -> seconds, keys sorted, indented by four), so teams can
//! shard by our data. A run merges its tests into it and replaces the file
//! atomically: readers never see half a file. Concurrent runs (shards of one
//! job writing one file) merge one at a time, under an exclusive lock of
//! `<file>.lock` beside it (std's file lock, as the records take): the file
//! itself is replaced by each merge, so it cannot hold the lock.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

const FIX: &str = "delete the file (the next run writes a fresh one) or fix its JSON: an object of test id -> seconds";

fn corrupt(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::config(
        path.display().to_string(),
        format!("not a durations file: {why}"),
        FIX,
    )
}

/// Read the file; a missing file is empty. pytest-split's older list of
/// `[id, seconds]` pairs is read too.
pub fn read(path: &Path) -> Result<BTreeMap<String, f64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path.display().to_string(), &e)),
    };
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| corrupt(path, format!("invalid JSON ({e})")))?;
    let mut out = BTreeMap::new();
    let mut put = |id: &serde_json::Value, secs: &serde_json::Value| -> Result<()> {
        let (Some(id), Some(secs)) = (id.as_str(), secs.as_f64()) else {
            return Err(corrupt(
                path,
                format!("the entry {id}: {secs} is not a test id and seconds"),
            ));
        };
        out.insert(id.to_string(), secs);
        Ok(())
    };
    match &value {
        serde_json::Value::Object(map) => {
            for (id, secs) in map {
                put(&serde_json::Value::String(id.clone()), secs)?;
            }
        }
        serde_json::Value::Array(pairs) => {
            for pair in pairs {
                match pair.as_array().map(Vec::as_slice) {
                    Some([id, secs]) => put(id, secs)?,
                    _ => {
                        return Err(corrupt(
                            path,
                            format!("{pair} is not an [id, seconds] pair"),
                        ))
                    }
                }
            }
        }
        other => return Err(corrupt(path, format!("the top level is {}", kind(other)))),
    }
    Ok(out)
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Merge `durations` into the file (this run's value wins) and replace it
/// atomically, under the lock. Returns how many tests the file holds.
pub fn merge(path: &Path, durations: impl IntoIterator<Item = (String, f64)>) -> Result<usize> {
    let io = |e: std::io::Error| Error::io(path.display().to_string(), &e);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map_or_else(|| "durations".into(), |n| n.to_string_lossy().into_owned());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{name}.lock")))
        .map_err(io)?;
    // Held until `lock` is dropped: read, merge and replace are one step.
    lock.lock().map_err(io)?;
    let mut all = read(path)?;
    all.extend(durations);
    let mut text = Vec::with_capacity(all.len() * 80);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
    all.serialize(&mut ser).map_err(|e| corrupt(path, e))?;
    text.push(b'\n');
    // tempfile: a unique name in the same folder (rename stays atomic), removed
    // on any error; the replaced file keeps its mode (tempfile's is 0600).
    let mut builder = tempfile::Builder::new();
    builder.prefix(".").suffix(".tmp");
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o777);
        std::fs::Permissions::from_mode(mode)
    };
    #[cfg(unix)]
    builder.permissions(mode);
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(&text).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    drop(lock);
    Ok(all.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dynamo-durations-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_run_merges_into_the_file_in_pytest_split_format() {
        let dir = scratch("merge");
        let path = dir.join(".test_durations");
        std::fs::write(&path, r#"{"t.py::b": 2.0, "t.py::a": 1.0}"#).unwrap();
        let n = merge(
            &path,
            [("t.py::a".to_string(), 0.5), ("t.py::c".to_string(), 3.0)],
        )
        .unwrap();
        assert_eq!(n, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\n    \"t.py::a\": 0.5,\n    \"t.py::b\": 2.0,\n    \"t.py::c\": 3.0\n}\n"
        );
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".test_durations", ".test_durations.lock"],
            "no temporary file is left"
        );
    }

    #[test]
    fn the_old_list_format_and_a_missing_file_are_read() {
        let dir = scratch("old");
        let path = dir.join("d.json");
        assert!(read(&path).unwrap().is_empty());
        std::fs::write(&path, r#"[["t.py::a", 1.5]]"#).unwrap();
        assert!((read(&path).unwrap()["t.py::a"] - 1.5).abs() < 1e-12);
    }

    #[test]
    fn a_corrupt_file_is_an_error_with_the_fix() {
        let dir = scratch("corrupt");
        let path = dir.join("d.json");
        for text in ["{not json", "[1, 2]", "{\"a\": \"slow\"}", "42"] {
            std::fs::write(&path, text).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains("not a durations file"), "{text}: {err}");
            assert!(err.contains("fix: delete the file"), "{err}");
            assert!(merge(&path, []).is_err());
        }
    }

    /// One of the processes of `two_processes_merging_one_file_lose_nothing`
    /// (run by it, ignored otherwise): merges `MERGES` tests of its own, one
    /// merge each.
    #[test]
    #[ignore = "a worker process of another test"]
    fn durations_merge_worker() {
        let (Ok(path), Ok(me)) = (
            std::env::var("DYNAMO_DURATIONS_FILE"),
            std::env::var("DYNAMO_DURATIONS_WORKER"),
        ) else {
            return;
        };
        for i in 0..MERGES {
            merge(Path::new(&path), [(format!("{me}::{i}"), 1.0)]).unwrap();
        }
    }

    const MERGES: usize = 150;

    #[test]
    fn two_processes_merging_one_file_lose_nothing() {
        let dir = scratch("processes");
        let path = dir.join(".test_durations");
        let exe = std::env::current_exe().unwrap();
        let workers: Vec<_> = ["a", "b"]
            .iter()
            .map(|me| {
                std::process::Command::new(&exe)
                    .args(["--exact", "--ignored", "--quiet"])
                    .arg("records::durations::tests::durations_merge_worker")
                    .env("DYNAMO_DURATIONS_FILE", &path)
                    .env("DYNAMO_DURATIONS_WORKER", me)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut w in workers {
            assert!(w.wait().unwrap().success());
        }
        // Without the lock, a merge that read the file before the other
        // process replaced it writes the other's latest test away.
        assert_eq!(read(&path).unwrap().len(), 2 * MERGES);
    }
}

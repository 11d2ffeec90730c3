//! The records file: JSON Lines, append-only, shared by every pytest process
//! that names it. Each line is one `write` to a file opened for appending, so
//! concurrent runs neither interleave nor lose lines, and a process killed at
//! any moment leaves only whole lines behind. Linux's local filesystems hold
//! the file's inode lock for the whole of such a write; elsewhere (network
//! filesystems, other systems) each write also takes an exclusive lock on the
//! file, which costs two system calls a line.

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct RecordsFile {
    file: File,
    path: PathBuf,
    /// The end of the file was checked for a line a crashed writer of an
    /// older version (or a full disk) left unfinished.
    checked_end: bool,
    /// Take the file lock around each write (see the module's note).
    lock: bool,
    buffer: Vec<u8>,
}

/// Linux filesystems that hold the inode lock for the whole of a write:
/// ext2/3/4, xfs, btrfs, tmpfs, overlayfs, zfs, f2fs.
#[cfg(target_os = "linux")]
const LOCAL: [i64; 7] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0x794C_7630,
    0x2FC1_2FC1,
    0xF2F5_2010,
];

/// The filesystem an open file is on (its magic number), if the system says.
#[cfg(target_os = "linux")]
fn filesystem(file: &File) -> Option<i64> {
    use std::os::fd::AsRawFd;
    // SAFETY: `statfs` is plain data, for which all zeroes is a valid value,
    // and fstatfs only writes into it for the open descriptor it is given.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &raw mut stat) } != 0 {
        return None;
    }
    #[allow(clippy::useless_conversion)] // the field's type differs between targets
    Some(i64::from(stat.f_type))
}

/// Whether one `write` in append mode lands whole, whoever else appends:
/// true on Linux's local filesystems, which hold the inode lock for the
/// whole write. Network filesystems (NFS, SMB, FUSE, ...) append on the
/// client and promise nothing, so they, and anything unknown, take the lock.
#[cfg(target_os = "linux")]
fn appends_are_whole(file: &File) -> bool {
    filesystem(file).is_some_and(|kind| LOCAL.contains(&kind))
}

#[cfg(not(target_os = "linux"))]
fn appends_are_whole(_: &File) -> bool {
    false
}

/// Holds the file's lock; releasing it on drop keeps every path unlocked.
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(unix)]
fn byte_at(file: &File, offset: u64) -> std::io::Result<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, offset)?;
    Ok(b[0])
}

#[cfg(windows)]
fn byte_at(file: &File, offset: u64) -> std::io::Result<u8> {
    use std::os::windows::fs::FileExt;
    let mut b = [0u8; 1];
    file.seek_read(&mut b, offset)?;
    Ok(b[0])
}

impl RecordsFile {
    /// Open for appending, creating the file and its folder.
    pub fn open(path: &Path) -> Result<RecordsFile> {
        let shown = path.display().to_string();
        let fail = |e: std::io::Error| {
            Error::config(
                &shown,
                format!("cannot open the records file: {e}"),
                "fix --dynamo-records / dynamo_records, or the folder's permissions",
            )
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(fail)?;
        Ok(RecordsFile {
            lock: !appends_are_whole(&file),
            file,
            path: path.to_path_buf(),
            checked_end: false,
            buffer: Vec::with_capacity(1024),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line (a newline is added) in one write.
    pub fn append(&mut self, line: &str) -> Result<()> {
        let RecordsFile {
            file,
            path,
            checked_end,
            lock,
            buffer,
        } = self;
        let io = |e: &std::io::Error| Error::io(path.display().to_string(), e);
        buffer.clear();
        buffer.extend_from_slice(line.as_bytes());
        buffer.push(b'\n');
        let file: &File = file;
        let _unlock = if *lock {
            file.lock().map_err(|e| io(&e))?;
            Some(Locked(file))
        } else {
            None
        };
        // With O_APPEND every write lands at the end; `write_all` repeats
        // only after a short write (a full disk, a signal).
        let mut out = file;
        out.write_all(buffer).map_err(|e| io(&e))?;
        if !*checked_end {
            *checked_end = true;
            // A crashed writer of an older version (or a full disk) may have
            // left the file's last line unfinished, and this run's first line
            // then continues it. Look once, after the write: a look before it
            // could see another writer's line half copied. If so, that line
            // is lost to the torn one; write it again, whole.
            let end = out.stream_position().map_err(|e| io(&e))?;
            let start = end - buffer.len() as u64;
            if start > 0 && byte_at(file, start - 1).map_err(|e| io(&e))? != b'\n' {
                out.write_all(buffer).map_err(|e| io(&e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dynamo-records-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn lines_are_appended_and_the_folder_is_made() {
        let path = scratch("append").join("sub/records.jsonl");
        let mut f = RecordsFile::open(&path).unwrap();
        f.append("{\"a\":1}").unwrap();
        f.append("{\"a\":2}").unwrap();
        let mut again = RecordsFile::open(&path).unwrap();
        again.append("{\"a\":3}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
    }

    #[test]
    fn an_unfinished_last_line_is_not_continued() {
        let dir = scratch("torn");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":").unwrap();
        let mut f = RecordsFile::open(&path).unwrap();
        f.append("{\"b\":2}").unwrap();
        f.append("{\"b\":3}").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // The torn line swallowed the first copy; the second is whole.
        assert_eq!(text, "{\"a\":1}\n{\"a\":{\"b\":2}\n{\"b\":2}\n{\"b\":3}\n");
    }

    #[test]
    fn concurrent_writers_lose_and_duplicate_nothing() {
        for lock in [false, true] {
            concurrent_writers(lock);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_local_filesystems_append_without_the_lock() {
        let dir = scratch("kind");
        let f = RecordsFile::open(&dir.join("r.jsonl")).unwrap();
        let kind = filesystem(&f.file).expect("fstatfs answers for an open file");
        // ext4 or tmpfs: no lock; a network filesystem: the lock.
        match kind {
            0xEF53 | 0x0102_1994 => assert!(!f.lock, "{kind:#x}"),
            0x6969 | 0xFF53_4D42 | 0xFE53_4D42 | 0x6573_5546 => assert!(f.lock, "{kind:#x}"),
            _ => assert_eq!(f.lock, !LOCAL.contains(&kind), "{kind:#x}"),
        }
    }

    fn concurrent_writers(lock: bool) {
        let dir = scratch(&format!("concurrent-{lock}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        let writers = 8;
        let lines = 2_000;
        std::thread::scope(|s| {
            for w in 0..writers {
                let path = path.clone();
                s.spawn(move || {
                    // Each writer opens its own handle, as separate processes do.
                    let mut f = RecordsFile::open(&path).unwrap();
                    f.lock = lock;
                    let pad = "x".repeat(300 + w * 50);
                    for i in 0..lines {
                        f.append(&format!("{{\"w\":{w},\"i\":{i},\"pad\":\"{pad}\"}}"))
                            .unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let mut seen = HashSet::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(seen.insert((v["w"].as_u64().unwrap(), v["i"].as_u64().unwrap())));
        }
        assert_eq!(seen.len(), writers * lines);
    }

    #[test]
    fn an_unwritable_place_is_a_clear_error() {
        let dir = scratch("blocked");
        std::fs::create_dir_all(&dir).unwrap();
        let file_in_the_way = dir.join("file");
        std::fs::write(&file_in_the_way, "").unwrap();
        let err = RecordsFile::open(&file_in_the_way.join("r.jsonl"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot open the records file"), "{err}");
        assert!(err.contains("fix: "), "{err}");
    }
}

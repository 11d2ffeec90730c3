//! Which files are test modules, found the way pytest walks directories:
//! `python_files` patterns, `norecursedirs`, virtualenvs skipped, files named
//! on the command line taken as they are. Also the `conftest.py` files whose
//! hooks may add markers to those tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lint::pytest_config::PytestConfig;

/// Python's `fnmatch.fnmatchcase`: the project's one implementation.
pub use crate::policy::fnmatch;

/// pytest's `fnmatch_ex`: a pattern without `/` matches the file name, one
/// with `/` the whole path.
pub fn path_matches(path: &Path, pattern: &str) -> bool {
    if pattern.contains('/') {
        let full = path.to_string_lossy();
        let pattern = if path.is_absolute() && !pattern.starts_with('/') {
            format!("*/{pattern}")
        } else {
            pattern.to_string()
        };
        fnmatch(&full, &pattern)
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        fnmatch(&name, pattern)
    }
}

/// The existing paths a `testpaths` entry names: components may hold
/// `*`, `?` and `[...]`, and `**` stands for any number of directories.
pub fn glob(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for part in pattern.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let mut next = Vec::new();
        for base in &current {
            if part == "**" {
                let mut stack = vec![base.clone()];
                while let Some(dir) = stack.pop() {
                    next.push(dir.clone());
                    let Ok(entries) = std::fs::read_dir(&dir) else {
                        continue;
                    };
                    stack.extend(
                        entries
                            .filter_map(std::result::Result::ok)
                            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                            .map(|e| e.path())
                            .filter(|p| p.is_dir()),
                    );
                }
            } else if part.contains(['*', '?', '[']) {
                let Ok(entries) = std::fs::read_dir(base) else {
                    continue;
                };
                next.extend(
                    entries
                        .filter_map(std::result::Result::ok)
                        .filter(|e| {
                            // As Python's glob: `*` does not match hidden names.
                            let name = e.file_name().to_string_lossy().into_owned();
                            (!name.starts_with('.') || part.starts_with('.'))
                                && fnmatch(&name, part)
                        })
                        .map(|e| e.path()),
                );
            } else {
                next.push(base.join(part));
            }
        }
        current = next;
    }
    let mut found: Vec<PathBuf> = current.into_iter().filter(|p| p.exists()).collect();
    found.sort();
    found.dedup();
    found
}

/// The files to lint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Files {
    /// Test modules, sorted.
    pub tests: Vec<PathBuf>,
    /// `conftest.py` files in the test modules' directories and above, up to the rootdir.
    pub conftests: Vec<PathBuf>,
    /// The paths the walk started from (pytest never ignores these).
    pub roots: Vec<PathBuf>,
}

fn is_venv(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file()
}

fn walk(dir: &Path, patterns: &[String], norecurse: &[String], out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(std::result::Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
            let name = entry.file_name();
            if name == "__pycache__"
                || is_venv(&path)
                || norecurse.iter().any(|p| path_matches(&path, p))
            {
                continue;
            }
            walk(&path, patterns, norecurse, out);
        } else if path.extension().is_some_and(|e| e == "py")
            && entry.file_name() != "conftest.py"
            && patterns.iter().any(|p| path_matches(&path, p))
        {
            out.insert(path);
        }
    }
}

/// Find the test modules under `paths` (relative to `invocation_dir`); with
/// no paths, the `testpaths` ini option or the invocation directory.
pub fn discover(invocation_dir: &Path, paths: &[PathBuf], config: &PytestConfig) -> Result<Files> {
    let mut roots: Vec<PathBuf> = paths.iter().map(|p| invocation_dir.join(p)).collect();
    if roots.is_empty() {
        // pytest reads testpaths (globs, missing ones skipped) only from the rootdir.
        if invocation_dir == config.rootdir {
            for testpath in config.testpaths() {
                roots.extend(glob(&config.rootdir, &testpath));
            }
        }
        if roots.is_empty() {
            roots.push(invocation_dir.to_path_buf());
        }
    }
    let patterns = config.python_files();
    let norecurse = config.norecursedirs();
    let mut tests = BTreeSet::new();
    for root in &roots {
        if root.is_dir() {
            walk(root, &patterns, &norecurse, &mut tests);
        } else if root.exists() {
            // A file named on the command line is collected whatever its name,
            // as pytest does; a conftest.py is read for its hooks only. One that
            // is no regular file (a FIFO) is reported when it is read, not opened.
            if root.extension().is_some_and(|e| e == "py")
                && root.file_name().is_some_and(|n| n != "conftest.py")
            {
                tests.insert(root.clone());
            }
        } else {
            return Err(Error::config(
                "pytest-dynamo lint",
                format!("file or directory not found: {}", root.display()),
                "name existing test files or directories",
            ));
        }
    }
    let mut conftests = BTreeSet::new();
    let dirs: BTreeSet<&Path> = tests.iter().filter_map(|t| t.parent()).collect();
    for dir in dirs {
        for ancestor in dir.ancestors() {
            let conftest = ancestor.join("conftest.py");
            if conftest.is_file() {
                conftests.insert(conftest);
            }
            if ancestor == config.rootdir || !ancestor.starts_with(&config.rootdir) {
                break;
            }
        }
    }
    Ok(Files {
        tests: tests.into_iter().collect(),
        conftests: conftests.into_iter().collect(),
        roots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_is_pythons() {
        assert!(fnmatch("test_a.py", "test_*.py"));
        assert!(fnmatch("a_test.py", "*_test.py"));
        assert!(!fnmatch("atest.py", "*_test.py"));
        assert!(fnmatch("x1", "x[0-9]"));
        assert!(!fnmatch("xa", "x[0-9]"));
        assert!(fnmatch("xa", "x[!0-9]"));
        assert!(fnmatch("a?c", "a[?]c"));
        assert!(fnmatch(".git", ".*"));
        assert!(fnmatch("{arch}", "{arch}"));
        assert!(fnmatch("Test", "T*"));
        assert!(!fnmatch("test", "T*"));
    }

    #[test]
    fn path_patterns_with_a_slash_match_the_whole_path() {
        assert!(path_matches(
            Path::new("/r/tests/unit/test_a.py"),
            "tests/*/test_*.py"
        ));
        assert!(!path_matches(
            Path::new("/r/other/test_a.py"),
            "tests/*/test_*.py"
        ));
        assert!(path_matches(Path::new("/r/tests/test_a.py"), "test_*.py"));
    }

    #[test]
    fn discovery_follows_pytests_rules() {
        let root = std::env::temp_dir().join(format!("dynamo-lint-disc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in [
            "tests/unit",
            "tests/.hidden",
            "tests/build",
            "venvx",
            "tests/node_modules",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("venvx/pyvenv.cfg"), "").unwrap();
        for file in [
            "tests/unit/test_a.py",
            "tests/unit/b_test.py",
            "tests/unit/helper.py",
            "tests/unit/conftest.py",
            "tests/conftest.py",
            "tests/.hidden/test_h.py",
            "tests/build/test_b.py",
            "tests/node_modules/test_n.py",
            "venvx/test_v.py",
            "conftest.py",
        ] {
            std::fs::write(root.join(file), "").unwrap();
        }
        let config = PytestConfig::defaults(root.clone());
        let files = discover(&root, &[], &config).unwrap();
        let rel = |v: &[PathBuf]| -> Vec<String> {
            v.iter()
                .map(|p| {
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        };
        assert_eq!(
            rel(&files.tests),
            ["tests/unit/b_test.py", "tests/unit/test_a.py"]
        );
        assert_eq!(
            rel(&files.conftests),
            ["conftest.py", "tests/conftest.py", "tests/unit/conftest.py"]
        );
        // A file named explicitly is linted whatever its name.
        let files = discover(&root, &[PathBuf::from("tests/unit/helper.py")], &config).unwrap();
        assert_eq!(rel(&files.tests), ["tests/unit/helper.py"]);
        assert_eq!(glob(&root, "tests/*").len(), 4);
        assert_eq!(
            glob(&root, "tests/**/test_a.py"),
            [root.join("tests/unit/test_a.py")]
        );
        assert!(glob(&root, "missing").is_empty());
        let err = discover(&root, &[PathBuf::from("nope")], &config).unwrap_err();
        assert!(
            err.to_string().contains("file or directory not found"),
            "{err}"
        );
    }
}

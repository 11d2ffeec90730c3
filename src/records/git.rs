//! The commit and branch a run tested, for its run-start record. CI systems
//! check out a detached commit and say the branch in the environment, so the
//! environment wins; otherwise the `git` command answers, once per run (argv,
//! no shell): it knows every ref store (loose, packed, reftable), worktrees
//! and `$GIT_DIR`, which a reader of `.git` would each have to copy. Where git
//! cannot answer (not installed, a repository it refuses) the record says why.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Git {
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// Why git gave no answer where it was asked: the record then explains
    /// its nulls. Absent when git answered, or said there is no repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

const COMMIT_VARS: &[&str] = &["GITHUB_SHA", "CI_COMMIT_SHA"];
/// `GITHUB_HEAD_REF` is the source branch of a pull request (empty otherwise).
const BRANCH_VARS: &[&str] = &["GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"];

/// `env` looks a variable up (the process environment in production).
pub fn describe(rootdir: &Path, env: impl Fn(&str) -> Option<String>) -> Git {
    describe_with(rootdir, env, OsStr::new("git"))
}

fn describe_with(rootdir: &Path, env: impl Fn(&str) -> Option<String>, program: &OsStr) -> Git {
    let from_env = |vars: &[&str]| {
        vars.iter()
            .find_map(|v| env(v).filter(|s| !s.trim().is_empty()))
    };
    let commit = from_env(COMMIT_VARS);
    let branch = from_env(BRANCH_VARS);
    if commit.is_some() && branch.is_some() {
        // The environment said it all: no process.
        return Git {
            commit,
            branch,
            unavailable: None,
        };
    }
    let local = ask(rootdir, program);
    Git {
        commit: commit.or(local.commit),
        branch: branch.or(local.branch),
        unavailable: local.unavailable,
    }
}

fn unavailable(why: String) -> Git {
    Git {
        unavailable: Some(why),
        ..Git::default()
    }
}

/// `git rev-parse HEAD --symbolic-full-name HEAD`: the commit, then the ref
/// HEAD points at (`HEAD` itself when detached). `-C`, not a working
/// directory, so that "not found" can only mean git itself.
fn ask(rootdir: &Path, program: &OsStr) -> Git {
    let out = Command::new(program)
        .arg("-C")
        .arg(rootdir)
        .args(["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        // Its messages are matched below: untranslated.
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return unavailable(
                "git was not found on PATH: install git in the CI image, or set GITHUB_SHA/CI_COMMIT_SHA"
                    .to_string(),
            );
        }
        Err(e) => return unavailable(format!("git could not run: {e}")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("not a git repository") {
            return Git::default();
        }
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        return unavailable(format!(
            "`git rev-parse HEAD` failed: {}",
            first.trim_start_matches("fatal: ")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines().map(str::trim);
    let commit = lines.next().filter(|s| !s.is_empty()).map(String::from);
    let branch = lines
        .next()
        .filter(|r| !r.is_empty() && *r != "HEAD")
        .map(|r| r.strip_prefix("refs/heads/").unwrap_or(r).to_string());
    Git {
        commit,
        branch,
        unavailable: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dynamo-git-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Run git in `dir` with a fixed identity; its stdout.
    fn git(dir: &Path, args: &[&str]) -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A repository with one commit on `main`, in `format` (None: git's default).
    fn repository(name: &str, format: Option<&str>) -> Option<(PathBuf, String)> {
        let root = scratch(name);
        let mut init = vec!["init", "-q"];
        let flag;
        if let Some(f) = format {
            flag = format!("--ref-format={f}");
            init.push(&flag);
        }
        git(&root, &init)?;
        git(&root, &["commit", "-q", "--allow-empty", "-m", "first"])?;
        let sha = git(&root, &["rev-parse", "HEAD"])?;
        Some((root, sha))
    }

    #[test]
    fn a_branch_and_its_commit_come_from_git() {
        let Some((root, sha)) = repository("branch", None) else {
            eprintln!("skipped: git is not installed");
            return;
        };
        git(&root, &["checkout", "-q", "-b", "feat/x"]).unwrap();
        fs::create_dir_all(root.join("sub")).unwrap();
        let got = describe(&root.join("sub"), |_| None);
        assert_eq!(got.commit.as_deref(), Some(sha.as_str()));
        assert_eq!(got.branch.as_deref(), Some("feat/x"));
        assert_eq!(got.unavailable, None);
    }

    #[test]
    fn a_reftable_repository_is_read() {
        // reftable came with git 2.45: older gits refuse the flag.
        let Some((root, sha)) = repository("reftable", Some("reftable")) else {
            eprintln!("skipped: this git cannot create a reftable repository");
            return;
        };
        let got = describe(&root, |_| None);
        assert_eq!(got.commit.as_deref(), Some(sha.as_str()));
        assert_eq!(got.branch.as_deref(), Some("main"));
    }

    #[test]
    fn worktrees_and_detached_checkouts() {
        let Some((root, sha)) = repository("worktree", None) else {
            eprintln!("skipped: git is not installed");
            return;
        };
        let wt = root.with_extension("wt");
        let _ = fs::remove_dir_all(&wt);
        git(
            &root,
            &["worktree", "add", "-q", "-b", "topic", wt.to_str().unwrap()],
        )
        .unwrap();
        let got = describe(&wt, |_| None);
        assert_eq!(got.commit.as_deref(), Some(sha.as_str()));
        assert_eq!(got.branch.as_deref(), Some("topic"));
        git(&root, &["checkout", "-q", "--detach"]).unwrap();
        let got = describe(&root, |_| None);
        assert_eq!(
            (got.commit.as_deref(), got.branch),
            (Some(sha.as_str()), None)
        );
        let got = describe(&root, |v| match v {
            "CI_COMMIT_REF_NAME" => Some("main".into()),
            "GITHUB_HEAD_REF" => Some(String::new()),
            _ => None,
        });
        assert_eq!(got.branch.as_deref(), Some("main"));
        assert_eq!(got.commit.as_deref(), Some(sha.as_str()));
    }

    #[test]
    fn no_repository_is_no_commit_and_no_complaint() {
        let root = scratch("none");
        let got = describe(&root, |_| None);
        assert_eq!(got, Git::default());
    }

    #[test]
    fn a_missing_git_is_said_not_crashed() {
        let root = scratch("missing");
        let got = describe_with(&root, |_| None, OsStr::new("git-that-is-not-installed"));
        assert_eq!((got.commit, got.branch), (None, None));
        let why = got.unavailable.unwrap();
        assert!(why.contains("git was not found on PATH"), "{why}");
        // The environment still names the commit.
        let got = describe_with(
            &root,
            |v| (v == "GITHUB_SHA").then(|| "a".repeat(40)),
            OsStr::new("git-that-is-not-installed"),
        );
        assert_eq!(got.commit, Some("a".repeat(40)));
    }

    #[test]
    fn a_full_ci_environment_asks_no_git() {
        let got = describe_with(
            Path::new("/"),
            |v| match v {
                "GITHUB_SHA" => Some("b".repeat(40)),
                "GITHUB_REF_NAME" => Some("main".into()),
                _ => None,
            },
            OsStr::new("git-that-is-not-installed"),
        );
        assert_eq!(got.unavailable, None, "git was not asked");
        assert_eq!(got.branch.as_deref(), Some("main"));
    }
}

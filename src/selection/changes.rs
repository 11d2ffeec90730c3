//! The files a branch changed: `git diff --name-only BASE...HEAD` (changes
//! since the merge base, as a pull request shows them), run directly, no
//! shell. A missing git, a base git does not know and a shallow clone that
//! lacks the merge base are errors that say what to do.

use std::path::Path;
use std::process::{Command, Output};

use crate::error::{Error, Result};

const WHERE: &str = "--dynamo-framework=auto";

fn git(repo: &Path, args: &[&str]) -> Result<Output> {
    Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::config(
                    WHERE,
                    "git was not found on PATH; auto reads the changed files with `git diff`",
                    "install git in the CI image, or name the framework: --dynamo-framework=NAME",
                )
            } else {
                Error::config(
                    WHERE,
                    format!("could not run git: {e}"),
                    "name the framework instead: --dynamo-framework=NAME",
                )
            }
        })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn is_shallow(repo: &Path) -> bool {
    git(repo, &["rev-parse", "--is-shallow-repository"])
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true")
}

const SHALLOW_FIX: &str = "fetch the history the diff needs: `git fetch --unshallow` \
(or fetch-depth: 0 in actions/checkout), then fetch the base branch";

/// Paths changed between the merge base of `base` and `HEAD`, relative to the
/// repository root.
pub fn changed_files(repo: &Path, base: &str) -> Result<Vec<String>> {
    if base.is_empty() || base.starts_with('-') {
        return Err(Error::config(
            WHERE,
            format!("'{base}' is not a usable base revision"),
            "name the branch the change targets: --dynamo-base=origin/main (or dynamo_base, DYNAMO_BASE)",
        ));
    }
    let inside = git(repo, &["rev-parse", "--is-inside-work-tree"])?;
    if !inside.status.success() {
        return Err(Error::config(
            WHERE,
            format!(
                "{} is not inside a git repository ({})",
                repo.display(),
                stderr(&inside)
            ),
            "run from a git checkout, or name the framework: --dynamo-framework=NAME",
        ));
    }
    let commit = format!("{base}^{{commit}}");
    let known = git(repo, &["rev-parse", "--verify", "--quiet", &commit])?;
    if !known.status.success() {
        let (why, fix) = if is_shallow(repo) {
            (
                " (the clone is shallow)".to_string(),
                SHALLOW_FIX.to_string(),
            )
        } else {
            (
                String::new(),
                format!("fetch it (`git fetch origin {}`), or fix --dynamo-base / dynamo_base / DYNAMO_BASE", base.trim_start_matches("origin/")),
            )
        };
        return Err(Error::config(
            WHERE,
            format!("the base '{base}' is not a commit, branch or tag of this repository{why}"),
            fix,
        ));
    }
    let range = format!("{base}...HEAD");
    let diff = git(repo, &["diff", "--name-only", "-z", &range, "--"])?;
    if !diff.status.success() {
        let shallow = is_shallow(repo);
        return Err(Error::config(
            WHERE,
            format!(
                "`git diff --name-only {range}` failed{}: {}",
                if shallow {
                    " because the clone is shallow"
                } else {
                    ""
                },
                stderr(&diff)
            ),
            if shallow {
                SHALLOW_FIX.to_string()
            } else {
                "check that HEAD and the base share history".to_string()
            },
        ));
    }
    Ok(String::from_utf8_lossy(&diff.stdout)
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_like_base_is_refused_before_git_runs() {
        let err = changed_files(Path::new("."), "--output=x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a usable base"), "{err}");
    }
}

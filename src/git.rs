//! The commit and branch a run tested, for its run-start record. CI systems
//! check out a detached commit and say the branch in the environment, so the
//! environment wins; otherwise `.git` is read directly (no `git` process).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Git {
    pub commit: Option<String>,
    pub branch: Option<String>,
}

const COMMIT_VARS: &[&str] = &["GITHUB_SHA", "CI_COMMIT_SHA"];
/// `GITHUB_HEAD_REF` is the source branch of a pull request (empty otherwise).
const BRANCH_VARS: &[&str] = &["GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"];

/// `env` looks a variable up (the process environment in production).
pub fn describe(rootdir: &Path, env: impl Fn(&str) -> Option<String>) -> Git {
    let from_env = |vars: &[&str]| {
        vars.iter()
            .find_map(|v| env(v).filter(|s| !s.trim().is_empty()))
    };
    let local = read_repository(rootdir).unwrap_or_default();
    Git {
        commit: from_env(COMMIT_VARS).or(local.commit),
        branch: from_env(BRANCH_VARS).or(local.branch),
    }
}

/// The `.git` folder that holds HEAD (for a worktree, its own), and the one
/// that holds the refs.
fn git_dirs(start: &Path) -> Option<(PathBuf, PathBuf)> {
    for dir in start.ancestors() {
        let dot_git = dir.join(".git");
        if dot_git.is_dir() {
            return Some((dot_git.clone(), dot_git));
        }
        if dot_git.is_file() {
            let text = fs::read_to_string(&dot_git).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            let head_dir = dir.join(target);
            let common = match fs::read_to_string(head_dir.join("commondir")) {
                Ok(rel) => head_dir.join(rel.trim()),
                Err(_) => head_dir.clone(),
            };
            return Some((head_dir, common));
        }
    }
    None
}

fn read_repository(rootdir: &Path) -> Option<Git> {
    let (head_dir, common) = git_dirs(rootdir)?;
    let head = fs::read_to_string(head_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:").map(str::trim) else {
        // Detached HEAD: the commit itself.
        return Some(Git {
            commit: Some(head.to_string()),
            branch: None,
        });
    };
    let branch = reference
        .strip_prefix("refs/heads/")
        .unwrap_or(reference)
        .to_string();
    let commit = fs::read_to_string(common.join(reference))
        .ok()
        .map(|s| s.trim().to_string())
        .or_else(|| packed_ref(&common, reference));
    Some(Git {
        commit,
        branch: Some(branch),
    })
}

fn packed_ref(common: &Path, reference: &str) -> Option<String> {
    let packed = fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (sha, name) = line.split_once(' ')?;
        (name == reference).then(|| sha.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dynamo-git-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn a_branch_and_its_commit_are_read_from_git() {
        let root = scratch("branch");
        fs::create_dir_all(root.join(".git/refs/heads/feat")).unwrap();
        fs::write(root.join(".git/HEAD"), "ref: refs/heads/feat/x\n").unwrap();
        fs::write(root.join(".git/refs/heads/feat/x"), format!("{SHA}\n")).unwrap();
        fs::create_dir_all(root.join("sub")).unwrap();
        let git = describe(&root.join("sub"), |_| None);
        assert_eq!(git.commit.as_deref(), Some(SHA));
        assert_eq!(git.branch.as_deref(), Some("feat/x"));
    }

    #[test]
    fn packed_refs_and_worktrees_are_followed() {
        let root = scratch("worktree");
        let main = root.join("main/.git");
        fs::create_dir_all(main.join("worktrees/wt")).unwrap();
        fs::write(
            main.join("packed-refs"),
            format!("# pack-refs\n{SHA} refs/heads/topic\n"),
        )
        .unwrap();
        fs::write(main.join("worktrees/wt/HEAD"), "ref: refs/heads/topic\n").unwrap();
        fs::write(main.join("worktrees/wt/commondir"), "../..\n").unwrap();
        fs::create_dir_all(root.join("wt")).unwrap();
        fs::write(
            root.join("wt/.git"),
            format!("gitdir: {}\n", main.join("worktrees/wt").display()),
        )
        .unwrap();
        let git = describe(&root.join("wt"), |_| None);
        assert_eq!(git.commit.as_deref(), Some(SHA));
        assert_eq!(git.branch.as_deref(), Some("topic"));
    }

    #[test]
    fn the_ci_environment_wins_over_a_detached_checkout() {
        let root = scratch("detached");
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join(".git/HEAD"), format!("{SHA}\n")).unwrap();
        let git = describe(&root, |_| None);
        assert_eq!(git.commit.as_deref(), Some(SHA));
        assert_eq!(git.branch, None);
        let git = describe(&root, |v| match v {
            "CI_COMMIT_REF_NAME" => Some("main".into()),
            "GITHUB_HEAD_REF" => Some(String::new()),
            _ => None,
        });
        assert_eq!(git.branch.as_deref(), Some("main"));
    }

    #[test]
    fn no_repository_is_no_commit() {
        let git = describe(Path::new("/"), |_| None);
        assert_eq!(git, Git::default());
    }
}

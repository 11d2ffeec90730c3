//! Whose process is a GPU process? NVML lists processes by pid; walking up
//! the parent chain in `/proc` tells whether one descends from the process
//! running the test (the pytest process, or its xdist worker), from the run
//! (another xdist worker of the same run), or from neither. Only the few pids
//! NVML reports are walked, never the whole process table.

use std::fs;

/// How a GPU process relates to the test being audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The process running the test, or one of its descendants.
    Test,
    /// A descendant of the run (another xdist worker's test).
    Run,
    /// Some other process this PID namespace can see.
    Other,
    /// A pid this PID namespace does not have: NVML reports host pids, so a
    /// container without the host's PID namespace sees its own processes so.
    Hidden,
}

/// The parent of `pid`, from `/proc/<pid>/stat` (None: no such process).
pub fn parent(pid: u32) -> Option<u32> {
    parent_in_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parent_in_stat(stat: &str) -> Option<u32> {
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. They are: state, ppid, ...
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Where `pid` sits relative to the test's process and the run's.
pub fn owner(pid: u32, test: u32, run: u32) -> Owner {
    let mut current = pid;
    // Deep enough for any real tree; a cycle (pid reuse mid-walk) ends it.
    for step in 0..128 {
        if current == test {
            return Owner::Test;
        }
        if current == run {
            return Owner::Run;
        }
        if current <= 1 {
            return Owner::Other;
        }
        match parent(current) {
            Some(p) => current = p,
            None if step == 0 => return Owner::Hidden,
            None => return Owner::Other,
        }
    }
    Owner::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_child_belongs_to_the_test_and_init_does_not() {
        let me = std::process::id();
        let mut child = Command::new("sleep")
            .arg("5")
            .stdout(Stdio::null())
            .spawn()
            .expect("sleep runs");
        let pid = child.id();
        assert_eq!(parent(pid), Some(me));
        assert_eq!(owner(pid, me, me), Owner::Test);
        assert_eq!(owner(me, me, 0), Owner::Test);
        // Seen from a sibling worker of the same run.
        let my_parent = parent(me).unwrap();
        assert_eq!(owner(pid, 999_999_999, my_parent), Owner::Run);
        assert_eq!(owner(1, me, my_parent), Owner::Other);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(owner(pid, me, me), Owner::Hidden);
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_is_read() {
        assert_eq!(parent_in_stat("77 (vllm (x) 2) S 42 77 1 0"), Some(42));
        assert_eq!(parent_in_stat("77 (python) R 1 77"), Some(1));
        assert_eq!(parent_in_stat("garbage"), None);
    }
}

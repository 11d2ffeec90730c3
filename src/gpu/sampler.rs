//! The audit's background thread: while a `gpu_N` test runs, it asks NVML
//! every interval which compute processes are on each GPU and how much
//! memory they hold, and keeps what the test's own processes used. It takes
//! one sample when the test starts and one when it stops, so a test shorter
//! than the interval is still seen.
//!
//! The thread touches no Python object and logs nothing (logging from it
//! would need the GIL, which the test thread may hold).

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use serde::{Deserialize, Serialize};

use super::nvml;
use super::probe;
use super::procs::{self, Owner};

const MIB: f64 = 1024.0 * 1024.0;
/// How long `stop` waits for the thread's last sample (at least: opening
/// NVML may take its own time limit first).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `close` waits for the thread to end before leaving it behind.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// More compute processes than one GPU can hold.
pub const MAX_PROCESSES: u32 = 4096;

/// What one test's processes did on the GPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// NVML indices of the GPUs the test's processes were on.
    pub gpus: BTreeSet<u32>,
    /// The most memory the test's processes held on one GPU at once, MiB.
    pub peak_mib: f64,
    pub samples: u32,
    /// Why GPU work of the test may have gone unseen (None: it cannot have).
    pub doubt: Option<String>,
}

/// One GPU process in one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub gpu: u32,
    pub pid: u32,
    pub mib: Option<f64>,
    pub owner: Owner,
}

/// Accumulates one test's samples into its `Usage`.
#[derive(Debug, Default)]
pub struct Tracker {
    pub usage: Usage,
    hidden_once: HashSet<u32>,
    /// In a nested PID namespace a pid missing from /proc is a host pid;
    /// in the initial one it is a process that just ended.
    nested_namespace: bool,
}

impl Tracker {
    pub fn new(nested_namespace: bool) -> Self {
        Tracker {
            nested_namespace,
            ..Tracker::default()
        }
    }

    fn doubt(&mut self, why: String) {
        self.usage.doubt.get_or_insert(why);
    }

    pub fn observe(&mut self, sample: &[Seen]) {
        self.usage.samples += 1;
        let mut held: Vec<(u32, f64)> = Vec::new();
        for s in sample {
            match s.owner {
                Owner::Test => {
                    self.usage.gpus.insert(s.gpu);
                    match held.iter_mut().find(|(g, _)| *g == s.gpu) {
                        Some((_, m)) => *m += s.mib.unwrap_or(0.0),
                        None => held.push((s.gpu, s.mib.unwrap_or(0.0))),
                    }
                }
                Owner::Run => {}
                Owner::Other => self.doubt(format!(
                    "GPU {} also ran process {}, which is not the test's (a container or daemon it started?)",
                    s.gpu, s.pid
                )),
                Owner::Hidden => {
                    if self.nested_namespace || !self.hidden_once.insert(s.pid) {
                        self.doubt(format!(
                            "GPU {} ran process {}, which this PID namespace cannot see (a container without the host's PID namespace?)",
                            s.gpu, s.pid
                        ));
                    }
                }
            }
        }
        for (_, mib) in held {
            self.usage.peak_mib = self.usage.peak_mib.max(mib);
        }
    }
}

/// True when this process runs in a PID namespace below the initial one
/// (`PROC_PID_INIT_INO` is the initial namespace's inode).
pub fn nested_pid_namespace() -> bool {
    const PROC_PID_INIT_INO: &str = "pid:[4026531836]";
    fs::read_link("/proc/self/ns/pid").is_ok_and(|link| link.to_string_lossy() != PROC_PID_INIT_INO)
}

#[derive(Default)]
struct State {
    /// Counts `start`s; a sample belongs to the test of its generation.
    generation: u64,
    active: bool,
    /// The generation whose closing sample is taken.
    finished: u64,
    tracker: Tracker,
    test_pid: u32,
    run_pid: u32,
    /// NVML cannot be used: why.
    unavailable: Option<String>,
    shutdown: bool,
    /// The thread has returned: `close` can join it without waiting.
    exited: bool,
    samples: u64,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sampling thread, started on the first audited test and kept for the
/// run (one NVML session, not one per test).
pub struct Sampler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// How long `stop` waits for the closing sample.
    stop_timeout: Duration,
}

impl Sampler {
    /// `limit`: how long opening NVML may take before the audit gives up.
    pub fn spawn(lib: Option<String>, interval: Duration, limit: Duration) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dynamo-gpu-audit".into())
            .spawn(move || {
                run(&for_thread, lib, interval, limit);
                for_thread.lock().exited = true;
                for_thread.wake.notify_all();
            })
            .ok();
        if thread.is_none() {
            shared.lock().unavailable = Some("the GPU audit thread could not start".into());
        }
        Sampler {
            shared,
            thread,
            stop_timeout: STOP_TIMEOUT.max(limit + Duration::from_secs(1)),
        }
    }

    /// Why NVML cannot be sampled, once the thread found out.
    pub fn unavailable(&self) -> Option<String> {
        self.shared.lock().unavailable.clone()
    }

    /// Samples taken so far, over the whole run.
    pub fn samples(&self) -> u64 {
        self.shared.lock().samples
    }

    /// Begin a test: `test_pid` runs it, `run_pid` is the run's root process.
    pub fn start(&self, test_pid: u32, run_pid: u32) {
        let mut st = self.shared.lock();
        st.generation += 1;
        st.active = true;
        st.tracker = Tracker::new(nested_pid_namespace());
        st.test_pid = test_pid;
        st.run_pid = run_pid;
        self.shared.wake.notify_all();
    }

    /// End the test: wait for the closing sample and hand over the usage.
    pub fn stop(&self) -> Result<Usage, String> {
        let mut st = self.shared.lock();
        st.active = false;
        let generation = st.generation;
        self.shared.wake.notify_all();
        let (mut st, timeout) = self
            .shared
            .wake
            .wait_timeout_while(st, self.stop_timeout, |s| {
                s.finished < generation && s.unavailable.is_none()
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(why) = &st.unavailable {
            return Err(why.clone());
        }
        if timeout.timed_out() {
            return Err(format!(
                "the GPU audit thread took more than {} s to sample",
                self.stop_timeout.as_secs()
            ));
        }
        Ok(std::mem::take(&mut st.tracker.usage))
    }

    /// Stop the thread. One stuck in an NVML call that never returns is
    /// left behind after `CLOSE_TIMEOUT`: joining it would hang pytest's exit.
    pub fn close(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let mut st = self.shared.lock();
        st.shutdown = true;
        self.shared.wake.notify_all();
        let (st, _) = self
            .shared
            .wake
            .wait_timeout_while(st, CLOSE_TIMEOUT, |s| !s.exited)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if st.exited {
            drop(st);
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.close();
    }
}

enum Failure {
    /// NVML cannot do this at all (a missing symbol): stop sampling.
    Unusable(String),
    /// This sample is incomplete.
    Partial(String),
}

fn take(
    devices: &[(u32, nvml_wrapper::Device<'_>)],
    test: u32,
    run: u32,
) -> Result<Vec<Seen>, Failure> {
    let mut out = Vec::new();
    for (gpu, device) in devices {
        // Asked first: nvml-wrapper allocates for as many as NVML claims.
        let listed = device.running_compute_processes_count().and_then(|n| {
            if n > MAX_PROCESSES {
                Ok(Err(n))
            } else {
                device.running_compute_processes().map(Ok)
            }
        });
        let processes = match listed {
            Ok(Ok(p)) => p,
            Ok(Err(n)) => {
                return Err(Failure::Unusable(probe::implausible(&format!(
                    "{n} processes on GPU {gpu}"
                ))))
            }
            Err(e @ NvmlError::FailedToLoadSymbol(_)) => {
                return Err(Failure::Unusable(nvml::call_error(
                    "list the processes on a GPU",
                    &e,
                )))
            }
            Err(e) => {
                return Err(Failure::Partial(format!(
                    "NVML could not list the processes on GPU {gpu}: {e}"
                )))
            }
        };
        for p in processes {
            #[allow(clippy::cast_precision_loss)]
            let mib = match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes as f64 / MIB),
                UsedGpuMemory::Unavailable => None,
            };
            out.push(Seen {
                gpu: *gpu,
                pid: p.pid,
                mib,
                owner: procs::owner(p.pid, test, run),
            });
        }
    }
    Ok(out)
}

fn run(shared: &Shared, lib: Option<String>, interval: Duration, limit: Duration) {
    let give_up = |why: String| {
        let mut st = shared.lock();
        st.unavailable = Some(why);
        shared.wake.notify_all();
    };
    let session = match nvml::within(limit, move || nvml::open(lib.as_deref())) {
        Ok(Ok(s)) => s,
        Ok(Err(why)) | Err(why) => return give_up(why),
    };
    let count = match probe::count(&session) {
        Ok(n) => n,
        Err(why) => return give_up(why),
    };
    // Every physical GPU: a test's child may pick GPUs of its own.
    let devices: Vec<_> = (0..count)
        .filter_map(|i| session.device_by_index(i).ok().map(|d| (i, d)))
        .collect();
    let mut st = shared.lock();
    loop {
        if st.shutdown {
            return;
        }
        let closing = !st.active && st.finished < st.generation;
        if !st.active && !closing {
            st = shared
                .wake
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            continue;
        }
        let (generation, test, run) = (st.generation, st.test_pid, st.run_pid);
        drop(st);
        let sample = take(&devices, test, run);
        st = shared.lock();
        st.samples += 1;
        if st.generation == generation {
            match sample {
                Ok(seen) => st.tracker.observe(&seen),
                Err(Failure::Partial(why)) => {
                    st.tracker.usage.samples += 1;
                    st.tracker.doubt(why);
                }
                Err(Failure::Unusable(why)) => {
                    st.unavailable = Some(why);
                    shared.wake.notify_all();
                    return;
                }
            }
            if closing {
                st.finished = generation;
                shared.wake.notify_all();
                continue;
            }
        }
        if st.active && st.generation == generation {
            st = shared
                .wake
                .wait_timeout(st, interval)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(gpu: u32, pid: u32, mib: f64, owner: Owner) -> Seen {
        Seen {
            gpu,
            pid,
            mib: Some(mib),
            owner,
        }
    }

    #[test]
    fn the_test_processes_make_the_usage() {
        let mut t = Tracker::new(false);
        t.observe(&[
            seen(0, 10, 1000.0, Owner::Test),
            seen(0, 11, 500.0, Owner::Test),
        ]);
        t.observe(&[
            seen(0, 10, 800.0, Owner::Test),
            seen(3, 12, 1200.0, Owner::Test),
            seen(1, 20, 9000.0, Owner::Run),
        ]);
        assert_eq!(t.usage.gpus, BTreeSet::from([0, 3]));
        // Per GPU at one moment: 1000 + 500 on GPU 0.
        assert!((t.usage.peak_mib - 1500.0).abs() < 1e-9);
        assert_eq!(t.usage.samples, 2);
        assert_eq!(t.usage.doubt, None);
    }

    #[test]
    fn someone_elses_process_casts_doubt() {
        let mut t = Tracker::new(false);
        t.observe(&[seen(2, 4242, 100.0, Owner::Other)]);
        assert!(t.usage.gpus.is_empty());
        let doubt = t.usage.doubt.unwrap();
        assert!(doubt.starts_with("GPU 2 also ran process 4242"), "{doubt}");
    }

    #[test]
    fn a_pid_gone_from_proc_is_forgiven_once_in_the_initial_namespace() {
        let mut t = Tracker::new(false);
        t.observe(&[seen(0, 77, 10.0, Owner::Hidden)]);
        assert_eq!(t.usage.doubt, None);
        t.observe(&[seen(0, 77, 10.0, Owner::Hidden)]);
        assert!(t.usage.doubt.unwrap().contains("PID namespace"));
        let mut nested = Tracker::new(true);
        nested.observe(&[seen(0, 77, 10.0, Owner::Hidden)]);
        assert!(nested.usage.doubt.is_some());
    }

    #[test]
    fn a_missing_library_makes_the_sampler_unavailable() {
        let mut s = Sampler::spawn(
            Some("/nonexistent/libnvidia-ml.so.1".into()),
            Duration::from_millis(5),
            Duration::from_secs(10),
        );
        s.start(std::process::id(), std::process::id());
        assert_eq!(
            s.stop(),
            Err("/nonexistent/libnvidia-ml.so.1 not found".to_string())
        );
        s.close();
    }
}

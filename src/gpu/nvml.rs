//! Opening NVML (`libnvidia-ml.so.1`, or a library named by path) so that a
//! missing, driverless or broken library is an explanation, never a crash.
//! NVML is not CUDA: opening it leaves CUDA uninitialised, so forked tests
//! can still initialise CUDA themselves.

use std::ffi::OsStr;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::mpsc;
use std::time::Duration;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

/// The name nvml-wrapper opens when no path is given.
pub const DEFAULT_LIB: &str = "libnvidia-ml.so.1";

/// An initialised NVML. nvml-wrapper's own `Drop` panics when the library
/// lacks `nvmlShutdown`; such a library is then left loaded instead.
pub struct Session {
    nvml: ManuallyDrop<Nvml>,
    can_shut_down: bool,
}

impl Deref for Session {
    type Target = Nvml;
    fn deref(&self) -> &Nvml {
        &self.nvml
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.can_shut_down {
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.nvml) }
        }
    }
}

/// Load and initialise NVML; the error says why in words.
pub fn open(lib: Option<&str>) -> Result<Session, String> {
    let name = lib.unwrap_or(DEFAULT_LIB);
    let mut builder = Nvml::builder();
    if let Some(path) = lib {
        builder.lib_path(OsStr::new(path));
    }
    let nvml = builder.init().map_err(|e| init_error(name, &e))?;
    let can_shut_down = nvml.lib().nvmlShutdown.is_ok();
    Ok(Session {
        nvml: ManuallyDrop::new(nvml),
        can_shut_down,
    })
}

/// Why NVML took too long, for the header and the skip reasons.
pub fn no_answer(limit: Duration) -> String {
    format!("NVML did not answer in {} s", limit.as_secs_f64())
}

/// Run `work` (NVML calls) on a thread of its own and wait at most `limit`
/// for its answer: a wedged driver blocks `nvmlInit_v2` forever. On time
/// out the thread is left behind, detached: it holds no lock of ours and
/// does not keep the process from exiting.
pub fn within<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (answer, answered) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("dynamo-nvml".into())
        .spawn(move || {
            // The receiver is gone when the wait timed out.
            let _ = answer.send(work());
        })
        .map_err(|e| format!("could not start a thread to ask NVML: {e}"))?;
    answered.recv_timeout(limit).map_err(|_| no_answer(limit))
}

/// Why NVML could not be opened, for the header and the skip reasons.
pub fn init_error(name: &str, err: &NvmlError) -> String {
    match err {
        NvmlError::LibloadingError(e) => {
            let text = e.to_string();
            if text.contains("No such file") {
                format!("{name} not found")
            } else {
                format!("{name} could not be loaded: {text}")
            }
        }
        NvmlError::FailedToLoadSymbol(text) => {
            format!("{name} is not a usable NVML library: {text}")
        }
        NvmlError::DriverNotLoaded => format!("the NVIDIA driver is not loaded ({name} found)"),
        NvmlError::NoPermission => {
            format!("no permission to talk to the NVIDIA driver ({name})")
        }
        other => format!("{name} failed to initialise: {other}"),
    }
}

/// A failed NVML call, named by what it was for.
pub fn call_error(what: &str, err: &NvmlError) -> String {
    match err {
        NvmlError::FailedToLoadSymbol(text) => {
            format!("the NVML library cannot {what}: {text}")
        }
        other => format!("NVML could not {what}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_not_found() {
        let err = open(Some("/nonexistent/libnvidia-ml.so.1"))
            .err()
            .expect("no such library");
        assert_eq!(err, "/nonexistent/libnvidia-ml.so.1 not found");
    }

    #[test]
    fn a_file_that_is_no_library_says_so() {
        let dir = std::env::temp_dir().join(format!("dynamo-nvml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("libnvidia-ml.so.1");
        std::fs::write(&path, "not an ELF file").unwrap();
        let shown = path.display().to_string();
        let err = open(Some(&shown)).err().expect("not a library");
        assert!(
            err.starts_with(&format!("{shown} could not be loaded: ")),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_answer_that_does_not_come_is_a_reason() {
        let quick = within(Duration::from_secs(5), || 42);
        assert_eq!(quick, Ok(42));
        let (release, wait) = mpsc::channel::<()>();
        let stuck = within(Duration::from_millis(50), move || wait.recv().is_ok());
        assert_eq!(stuck, Err("NVML did not answer in 0.05 s".to_string()));
        drop(release);
    }

    #[test]
    fn init_errors_read_as_reasons() {
        assert_eq!(
            init_error(DEFAULT_LIB, &NvmlError::DriverNotLoaded),
            "the NVIDIA driver is not loaded (libnvidia-ml.so.1 found)"
        );
        assert_eq!(
            call_error(
                "count GPUs",
                &NvmlError::FailedToLoadSymbol("x: undefined symbol: y".into())
            ),
            "the NVML library cannot count GPUs: x: undefined symbol: y"
        );
    }
}

//! GPU awareness: what the machine has (the NVML probe and
//! `CUDA_VISIBLE_DEVICES`), which tests it cannot run (hardware, GPU model,
//! VRAM and framework requirements), and the lowest-hardware audit that
//! measures what a `gpu_N` test really used.
//!
//! The files are private; what other folders use is listed here.

mod audit;
mod config;
mod hardware;
mod inventory;
mod nvml;
mod probe;
mod procs;
pub mod requirement;
mod rules;
mod sampler;
mod visible;

pub use audit::{Audit, Record};
pub use config::{GpuConfig, OneOrMany, VRAM_MARKER};
pub use hardware::decide_all;
pub use inventory::Inventory;
pub use probe::probe_within;
pub use requirement::Requirement;
pub use rules::Rules;
pub use sampler::Sampler;

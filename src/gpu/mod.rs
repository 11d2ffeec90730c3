//! GPU awareness: what the machine has (the NVML probe and
//! `CUDA_VISIBLE_DEVICES`), which tests it cannot run (hardware, GPU model,
//! VRAM and framework requirements), and the lowest-hardware audit that
//! measures what a `gpu_N` test really used.

pub mod audit;
pub mod config;
pub mod hardware;
pub mod inventory;
pub mod nvml;
pub mod probe;
pub mod procs;
pub mod requirement;
pub mod rules;
pub mod sampler;
pub mod visible;

//! GPU-aware parallel runs (issue #16): the machine's GPUs with a memory
//! budget each, what each test needs of them, and a deterministic packing
//! scheduler that hands out tests only when their GPUs have room. Knows
//! nothing of pytest or xdist: the Python side feeds it node ids, markers
//! and reports.

mod config;
mod resources;
mod scheduler;
mod simulate;

pub use config::{ParallelConfig, UnknownVram};
pub use resources::{Need, Placement, Resources, WorkerPlan};
pub use scheduler::{Assignment, Scheduler, TestSpec};
pub use simulate::{makespan, simulate, Simulation};

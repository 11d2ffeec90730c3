//! pytest-dynamo's core: the marker taxonomy and its rules, selection by
//! pipeline and stage, GPU awareness, policy, records, their history and
//! the analytics over it. Plain Rust, no Python: `bindings` alone uses pyo3
//! and makes the `_core` extension module. docs/architecture.md maps the
//! folders.

pub mod clock;
pub mod config;
pub mod config_check;
pub mod docs;
pub mod engine;
pub mod error;

pub mod analytics;
pub mod gpu;
pub mod history;
pub mod lint;
pub mod parallel;
pub mod policy;
pub mod records;
pub mod selection;
pub mod shards;
pub mod taxonomy;

mod bindings;

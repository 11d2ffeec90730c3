//! Records: what a run writes down. The record schema (one JSON line per
//! run start, test and run end), the recorder that builds the lines, the
//! append-only records file, the per-test facts collection hands to the
//! writer, the git context of a run and the pytest-split durations file.

pub mod durations;
pub mod facts;
pub(crate) mod facts_table;
pub mod file;
pub mod git;
pub mod properties;
pub mod record;
pub mod recorder;

//! Policy: what a project decides about its tests beyond their markers.
//! Retries of `flaky` tests and of failures that say they are transient,
//! quarantine (tests that run but never gate), owners (who follows up a
//! failure), and the node-id and path pattern dialects these files are
//! written in.

pub mod glob;
pub mod owners;
pub mod quarantine;
pub mod retries;
pub mod transient;

//! Analytics over a history of runs: flakiness, duration trends,
//! quarantine advice and owners gathered into one report (`report`),
//! rendered as text, Markdown or HTML (`render`); the quality gates
//! (`gates`); advice from the records: timeouts, the markers each test
//! should carry, lifecycle moves (`advice`); and a run's metrics for Prometheus.
//!
//! The statistics (`flakiness`, `duration_trends`, `quarantine_advice`)
//! are private: the rest of the crate reads them through the report.

pub mod advice;
mod duration_trends;
mod flakiness;
pub mod gates;
pub mod prometheus;
pub mod pushgateway;
mod quarantine_advice;
pub mod render;
pub mod report;

pub use quarantine_advice::QuarantineFile;

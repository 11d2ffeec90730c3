//! Analytics over a history of runs: flakiness, duration trends,
//! quarantine advice and owners gathered into one report (`report`),
//! rendered as text, Markdown or HTML (`render`); the quality gates
//! (`gates`); and a run's metrics for Prometheus.

pub mod duration_trends;
pub mod flakiness;
pub mod gates;
pub mod prometheus;
pub mod pushgateway;
pub mod quarantine_advice;
pub mod render;
pub mod report;

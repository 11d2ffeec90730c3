//! Records: what a run writes down. The record schema (one JSON line per
//! run start, test and run end), the recorder that builds the lines, the
//! append-only records file, the per-test facts collection hands to the
//! writer, the git context of a run and the pytest-split durations file.

mod durations;
mod facts;
mod facts_table;
mod file;
mod git;
pub mod properties;
mod record;
mod recorder;

pub use durations::{merge as merge_durations, read as read_durations};
pub use facts::{Facts, FlowIds, RecordedTimeout};
pub use facts_table::{
    Checks as FactsChecks, Kept, Policy as FactsPolicy, Selected, Table as FactsTable,
};
pub use git::describe as describe_git;
pub use record::{
    outcome_name, round_micro, short_reason, Attempt, AttemptOutcome, Metric, Outcome, Phase,
    PhaseReport, ReportOutcome,
};
pub use recorder::{new_run_id, test_id, FactsIn, Recorder, RunContext, TestInput};

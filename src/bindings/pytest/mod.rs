//! Readers of pytest's own objects: collected items and their marks,
//! a finished test's reports, the start of a test (its flow id and
//! `$DYNAMO_FLOW_ID`). Each reads a whole batch or a whole test in one call.

pub mod collect;
pub mod environ;
pub mod report;
pub mod test_start;

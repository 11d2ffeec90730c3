//! Policy: what a project decides about its tests beyond their markers.
//! Retries of `flaky` tests and of failures that say they are transient,
//! quarantine (tests that run but never gate), owners (who follows up a
//! failure), and the node-id and path pattern dialects these files are
//! written in.

mod glob;
mod owners;
mod quarantine;
// Public as a namespace: the marker rules read its `MARKER`,
// `check_arguments` and `spelled`, names that mean little outside it.
pub mod retries;
mod transient;

pub use glob::{fnmatch, names, Names};
pub use owners::{Owners, OwnersConfig};
pub use quarantine::{Entry as QuarantineEntry, Quarantine, QuarantineConfig};
pub use retries::Retrier;
pub use transient::RetriesConfig;

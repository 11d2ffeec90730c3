//! Advice from the records (issue #17): which tests must carry a timeout and
//! how long, and the markers each test should carry (`pytest-dynamo advise`).

pub mod advise;
pub mod config;
mod moves;
pub mod timeouts;

pub use config::{AdviceConfig, TimeoutsConfig};
pub use moves::{moves, Move};

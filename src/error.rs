//! The one error type of the core. It knows nothing of Python: the bindings
//! turn it into `ConfigError` in one place (`impl From<Error> for PyErr` in
//! `bindings/convert.rs`), so the core itself needs no interpreter. (The
//! bindings raise Python's own `ValueError` and `IndexError` themselves
//! for arguments no configuration could cause.)

use std::fmt;

/// The configuration table every configuration error names. Here, not in
/// `config.rs`, so that the concepts whose settings `config.rs` gathers can
/// name it without importing `config` back.
pub const TABLE: &str = "tool.pytest-dynamo";

/// What went wrong, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The user's configuration (a TOML table, an ini value, a flag) is wrong.
    /// `source` names where it came from, `fix` says what to do.
    Config {
        source: String,
        message: String,
        fix: String,
    },
    /// A file could not be read or written.
    Io { path: String, message: String },
}

impl Error {
    pub fn config(
        source: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::Config {
            source: source.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A wrong value at `key` of the configuration table `[table]`: the
    /// message names the table and the key the user must edit.
    pub fn at_key(
        source: &str,
        table: &str,
        key: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::config(source, format!("[{table}] {key}: {}", message.into()), fix)
    }

    pub fn io(path: impl Into<String>, err: &std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config {
                source,
                message,
                fix,
            } => {
                write!(f, "{source}: {message}")?;
                if !fix.is_empty() {
                    write!(f, "\n  fix: {fix}")?;
                }
                Ok(())
            }
            Error::Io { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

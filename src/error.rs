//! The one error type of the core. Python exceptions are made from it in
//! exactly one place (`lib.rs`), so the core itself needs no interpreter.

use std::fmt;

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

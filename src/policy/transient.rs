//! `[tool.pytest-dynamo.retries]`: failures worth retrying because of what
//! they say (an engine's start-up lost a race for a port or for memory),
//! whatever the test's markers. Each pattern is checked at load.

use regex::Regex;
use serde::Deserialize;

use crate::error::TABLE;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetriesConfig {
    /// Regular expressions searched in a failure's text: a match retries it.
    pub transient: Vec<String>,
}

impl RetriesConfig {
    pub fn check(&self, source: &str) -> Result<()> {
        for (i, pattern) in self.transient.iter().enumerate() {
            if let Err(e) = Regex::new(pattern) {
                return Err(Error::config(
                    source,
                    format!("[{TABLE}.retries] transient[{i}]: {pattern:?} is not a regular expression: {e}"),
                    "write a regular expression (Rust regex syntax), e.g. \"CUDA out of memory\"",
                ));
            }
        }
        Ok(())
    }

    /// The first pattern found in `text`, if any.
    pub fn transient_match(&self, text: &str) -> Option<&str> {
        self.transient
            .iter()
            .find(|p| Regex::new(p).is_ok_and(|r| r.is_match(text)))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;

    fn parse(body: &str) -> Result<RetriesConfig> {
        let text = format!("[tool.pytest-dynamo.retries]\n{body}\n");
        let config = from_pyproject("p", &text)?.unwrap().retries;
        config.check("p")?;
        Ok(config)
    }

    #[test]
    fn transient_patterns_match_failure_text() {
        let c = parse(r#"transient = ["Address already in use", "CUDA out of memory\\. Tried"]"#)
            .unwrap();
        assert_eq!(
            c.transient_match("OSError: [Errno 98] Address already in use"),
            Some("Address already in use")
        );
        assert_eq!(
            c.transient_match("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate"),
            Some("CUDA out of memory\\. Tried")
        );
        assert_eq!(c.transient_match("AssertionError: 3 != 4"), None);
        assert_eq!(parse("").unwrap().transient_match("anything"), None);
    }

    #[test]
    fn a_bad_pattern_is_refused_with_the_key_and_the_fix() {
        let e = parse(r#"transient = ["ok", "(unclosed"]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("transient[1]") && e.contains("fix:"), "{e}");
        assert!(parse("transient = \"one\"").is_err());
    }
}

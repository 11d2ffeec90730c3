//! Known test durations: pytest-split's `.test_durations` file, a JSON object
//! of node id -> seconds. A file that is not that is an error, not an
//! empty plan.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

const FIX: &str = "regenerate it (pytest-split's --store-durations writes this format), or point \
--dynamo-durations / dynamo_durations at another file";

/// Parse the text of a durations file; `shown` names it in errors.
pub fn parse(shown: &str, text: &str) -> Result<HashMap<String, f64>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::config(
            shown,
            format!("not a durations file: invalid JSON ({e})"),
            FIX,
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(Error::config(
            shown,
            "not a durations file: expected a JSON object of node id -> seconds",
            FIX,
        ));
    };
    let mut out = HashMap::with_capacity(map.len());
    for (nodeid, seconds) in map {
        match seconds.as_f64() {
            Some(s) if s >= 0.0 && s.is_finite() => {
                out.insert(nodeid, s);
            }
            _ => {
                return Err(Error::config(
                    shown,
                    format!("the duration of '{nodeid}' is {seconds}, not a number of seconds"),
                    FIX,
                ))
            }
        }
    }
    Ok(out)
}

pub fn read(path: &Path) -> Result<HashMap<String, f64>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(&shown, &e))?;
    parse(&shown, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pytest_split_file_is_read() {
        let d = parse("d", r#"{"a.py::t": 1.5, "a.py::u[x]": 2}"#).unwrap();
        assert!((d["a.py::t"] - 1.5).abs() < 1e-9);
        assert!((d["a.py::u[x]"] - 2.0).abs() < 1e-9);
    }

    #[test]
    fn anything_else_is_an_error_naming_the_file() {
        for (text, expected) in [
            ("{", "invalid JSON"),
            ("[1]", "expected a JSON object"),
            (r#"{"a": "1"}"#, "the duration of 'a' is \"1\""),
            (r#"{"a": -1}"#, "the duration of 'a' is -1"),
        ] {
            let err = parse(".test_durations", text).unwrap_err().to_string();
            assert!(err.starts_with(".test_durations: "), "{err}");
            assert!(err.contains(expected), "{err}");
        }
    }
}

//! Markers as the core sees them: a name with positional and keyword
//! arguments, already converted from Python objects.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A marker argument. Values the core cannot interpret keep their `repr`.
#[derive(Debug, Clone, PartialEq)]
pub enum MarkValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Other(String),
}

impl MarkValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MarkValue::Int(i) =>
            {
                #[allow(clippy::cast_precision_loss)]
                Some(*i as f64)
            }
            MarkValue::Float(f) => Some(*f),
            MarkValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            MarkValue::Int(i) => Some(*i),
            MarkValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// One marker on one test, as `item.iter_markers()` yields it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mark {
    pub name: String,
    pub args: Vec<MarkValue>,
    pub kwargs: BTreeMap<String, MarkValue>,
}

impl Mark {
    pub fn named(name: impl Into<String>) -> Self {
        Mark {
            name: name.into(),
            ..Mark::default()
        }
    }
}

/// One collected test: its node id, the line it starts on, and every marker
/// pytest resolved for it (function, class, module, parameter, dynamic).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    pub nodeid: String,
    pub line: u32,
    /// Shared: the items of one function, class or module hold the same
    /// marks, and a copy per item was most of reading a large collection.
    pub marks: Vec<Arc<Mark>>,
}

impl Item {
    pub fn new(nodeid: impl Into<String>, marks: &[&str]) -> Self {
        Item {
            nodeid: nodeid.into(),
            line: 0,
            marks: marks.iter().map(|m| Arc::new(Mark::named(*m))).collect(),
        }
    }

    /// The file part of the node id (`tests/test_a.py` of `tests/test_a.py::T::t[x]`).
    pub fn file(&self) -> &str {
        self.nodeid.split("::").next().unwrap_or(&self.nodeid)
    }

    /// The node id without its parametrization suffix.
    pub fn function(&self) -> &str {
        match self.nodeid.find('[') {
            Some(i) => &self.nodeid[..i],
            None => &self.nodeid,
        }
    }
}

/// `40.0` -> `40`, `3.8` -> `3.8`: numbers as a marker argument shows them.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

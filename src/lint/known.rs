//! What the lint knows of a test's markers once read from source: markers
//! as written, `parametrize` sets with their own markers, what cannot be
//! known without running the code, and the values marker expressions
//! evaluate to. `marks.rs` reads expressions into these; `params.rs` reads
//! `parametrize`.

use std::path::PathBuf;

use tree_sitter::Node;

use crate::lint::source::Pos;

/// A marker as written: its name and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spelled {
    pub name: String,
    pub pos: Pos,
}

/// Markers that cannot be known without running the code: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unresolved {
    /// The file the cause is in, when it is not the test's own (a conftest.py).
    pub file: Option<PathBuf>,
    pub pos: Pos,
    pub reason: String,
}

impl Unresolved {
    pub fn at(node: Node<'_>, reason: impl Into<String>) -> Self {
        Unresolved {
            file: None,
            pos: Pos::of(node),
            reason: reason.into(),
        }
    }
}

/// What is known of the markers an expression applies.
#[derive(Debug, Clone, Default, PartialEq)]
// `marks.marks` are the markers proper among all a `Marks` holds.
#[allow(clippy::struct_field_names)]
pub struct Marks {
    pub marks: Vec<Spelled>,
    pub params: Vec<Parametrize>,
    pub unresolved: Vec<Unresolved>,
    /// Fixture names given to `usefixtures` markers.
    pub usefixtures: Vec<String>,
    /// Argument names of `parametrize` markers (they win over fixtures' params).
    pub argnames: Vec<String>,
}

impl Marks {
    pub fn extend(&mut self, other: Marks) {
        self.marks.extend(other.marks);
        self.params.extend(other.params);
        self.unresolved.extend(other.unresolved);
        self.usefixtures.extend(other.usefixtures);
        self.argnames.extend(other.argnames);
    }

    pub(super) fn unresolved(u: Unresolved) -> Self {
        Marks {
            unresolved: vec![u],
            ..Marks::default()
        }
    }
}

/// What an expression evaluates to, as far as markers go.
#[derive(Debug, Clone)]
pub enum Val<'t> {
    Pytest,
    MarkNs,
    ParamFn,
    Fixture,
    /// `pytest.mark.name`, not yet called.
    Decorator(Spelled),
    Marks(Marks),
    /// A `pytest.param(...)` call.
    Param,
    Module(&'t str),
    /// A function defined in this module, and whether it mentions markers.
    Helper(&'t str, bool),
    Builtin(&'t str),
    /// Anything that certainly is no marker.
    NotMark,
    Unknown(Unresolved),
}

/// One parameter set: its id and its own markers.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSet {
    pub id: String,
    pub pos: Pos,
    pub marks: Vec<Spelled>,
    pub unresolved: Vec<Unresolved>,
}

/// One `parametrize` marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Parametrize {
    pub pos: Pos,
    /// None when the values are computed at run time.
    pub sets: Option<Vec<ParamSet>>,
    /// Set when computed values may carry markers of their own.
    pub unknown: Option<Unresolved>,
}

impl Parametrize {
    /// Whether any parameter set carries markers of its own.
    pub fn has_own_marks(&self) -> bool {
        self.sets
            .iter()
            .flatten()
            .any(|s| !s.marks.is_empty() || !s.unresolved.is_empty())
    }
}

//! Base classes as the lint knows them: of the same module, read from
//! another module of the project (`imports.rs` reads it), `unittest.TestCase`,
//! one that carries no markers, or one out of sight; and the project's
//! modules, read on demand and kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tree_sitter::Node;

use crate::lint::fixtures::Fixture;
use crate::lint::known::{Marks, Unresolved};
use crate::lint::source::Pos;

/// Whether a class is a `unittest.TestCase` (Maybe: a base is out of sight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCase {
    Yes,
    No,
    Maybe,
}

/// A base class: one of this module, one read from another module of the
/// project (and where this module names it), `unittest.TestCase`, one that
/// carries no markers (`object`, the standard library's), or one out of sight.
#[derive(Clone)]
pub enum Base<'t> {
    Local(Node<'t>),
    Imported(Arc<Imported>, Pos),
    UnitTest,
    Plain,
    Unknown(Unresolved),
}

/// A method of an imported class.
#[derive(Debug, Clone)]
pub struct Method {
    pub name: String,
    pub marks: Marks,
    pub fixture: bool,
    pub as_fixture: Option<Fixture>,
    pub args: Vec<String>,
}

/// A class read from another module of the project.
#[derive(Debug)]
pub struct Imported {
    /// The module it is defined in.
    pub file: PathBuf,
    /// Its markers along its MRO, as written in `file`.
    pub marks: Marks,
    /// Its methods, its own and inherited.
    pub methods: Vec<Method>,
    pub unittest: TestCase,
}

impl Imported {
    /// Markers written in `file`, placed where the test's module names the
    /// class (the lint reports a test's findings in the test's file); what is
    /// unresolved keeps its own file.
    pub fn placed(&self, mut marks: Marks, at: Pos) -> Marks {
        for m in &mut marks.marks {
            m.pos = at;
        }
        for p in &mut marks.params {
            p.pos = at;
            if let Some(u) = &mut p.unknown {
                u.file.get_or_insert_with(|| self.file.clone());
            }
            for set in p.sets.iter_mut().flatten() {
                set.pos = at;
                for m in &mut set.marks {
                    m.pos = at;
                }
                for u in &mut set.unresolved {
                    u.file.get_or_insert_with(|| self.file.clone());
                }
            }
        }
        for u in &mut marks.unresolved {
            u.file.get_or_insert_with(|| self.file.clone());
        }
        marks
    }

    pub fn marks_at(&self, at: Pos) -> Marks {
        self.placed(self.marks.clone(), at)
    }
}

pub(super) type Found = Result<Arc<Imported>, Option<String>>;

/// The modules of one project, read on demand and kept.
pub struct Modules {
    pub(super) rootdir: PathBuf,
    pub(super) cache: Mutex<HashMap<(PathBuf, String), Found>>,
}

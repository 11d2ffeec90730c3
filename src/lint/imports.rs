//! Base classes imported from other modules of the project (`from .common
//! import BaseTest`, `from tests.common import BaseTest`, `import common`):
//! the module is found inside the rootdir the way a test module's imports
//! find it (relative to the module, or from one of the directories above it),
//! read without importing it, and the class's markers, methods and
//! `unittest.TestCase` ancestry taken from it. What cannot be found or read
//! stays out of sight (unresolved).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::lint::bases::{Found, Imported, Method, Modules};
use crate::lint::collect::{Collector, Context, Rules};
use crate::lint::grammar;
use crate::lint::source::{Binding, Scope};
use crate::lint::syntax;

/// How many imports deep a base class is followed.
const MAX_DEPTH: u32 = 4;

impl Modules {
    pub fn new(rootdir: &Path) -> Self {
        Modules {
            rootdir: rootdir.to_path_buf(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The file of `module` as imported from the module at `from`: relative
    /// to it (`.common`, `..pkg.common`), or from the directories above it up
    /// to the rootdir (`tests.common`, `common`). None outside the rootdir.
    pub fn find(&self, from: &Path, module: &str) -> Option<PathBuf> {
        let dots = module.chars().take_while(|c| *c == '.').count();
        let rest: Vec<&str> = module[dots..]
            .split('.')
            .filter(|p| !p.is_empty())
            .collect();
        let here = from.parent()?;
        let dirs: Vec<&Path> = if dots > 0 {
            let mut dir = here;
            for _ in 1..dots {
                dir = dir.parent()?;
            }
            vec![dir]
        } else {
            here.ancestors()
                .take_while(|a| a.starts_with(&self.rootdir))
                .collect()
        };
        for dir in dirs {
            let mut base = dir.to_path_buf();
            for part in &rest {
                base.push(part);
            }
            let mut candidates = vec![base.join("__init__.py")];
            if !rest.is_empty() {
                candidates.insert(0, base.with_extension("py"));
            }
            if let Some(found) = candidates
                .into_iter()
                .find(|c| c.is_file() && c.starts_with(&self.rootdir))
            {
                return Some(found);
            }
        }
        None
    }

    /// The class `name` of `module` imported from the module at `from`.
    /// `Err(None)`: the module is not one of the project's; `Err(Some(why))`:
    /// it is, but the class cannot be read from it.
    pub fn class(&self, from: &Path, module: &str, name: &str, depth: u32) -> Found {
        if depth >= MAX_DEPTH {
            return Err(Some("imported too indirectly".into()));
        }
        let Some(path) = self.find(from, module) else {
            return Err(None);
        };
        let key = (path.clone(), name.to_string());
        if let Some(found) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return found;
        }
        let found = self.read(&path, module, name, depth).map(Arc::new);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, found.clone());
        }
        found
    }

    fn read(
        &self,
        path: &Path,
        module: &str,
        name: &str,
        depth: u32,
    ) -> Result<Imported, Option<String>> {
        let src = std::fs::read(path).map_err(|e| Some(format!("cannot read it: {e}")))?;
        let mut parser = grammar::parser();
        let tree = parser
            .parse(&src, None)
            .filter(|t| syntax::syntax_error(t, &src).is_none())
            .ok_or_else(|| Some(format!("{} does not parse", path.display())))?;
        let root = tree.root_node();
        let scope = Scope::new(&src, root);
        match scope.lookup(name, usize::MAX) {
            Some(Binding::Def(def)) if def.kind() == "class_definition" => {
                let rules = Rules {
                    python_classes: Vec::new(),
                    python_functions: Vec::new(),
                    collect_imported_tests: false,
                };
                let ctx = Context {
                    path: Some(path),
                    conftest_fixtures: Vec::new(),
                    opaque_fixtures: Vec::new(),
                    modules: Some(self),
                    depth: depth + 1,
                };
                let c = Collector::new(&scope, root, &rules, "", &ctx);
                let marks = c.class_marks(def, &mut HashSet::new());
                let methods = c
                    .methods(def, &mut HashSet::new())
                    .into_iter()
                    .map(|m| Method {
                        name: m.name.into_owned(),
                        marks: m.marks,
                        fixture: m.fixture,
                        as_fixture: m.as_fixture.map(|mut f| {
                            f.file.get_or_insert_with(|| path.to_path_buf());
                            f
                        }),
                        args: m.args,
                    })
                    .collect();
                let unittest = c.unittest(def, &mut HashSet::new());
                Ok(Imported {
                    file: path.to_path_buf(),
                    marks,
                    methods,
                    unittest,
                })
            }
            // A name the module imports in turn: `from .base import BaseTest`.
            Some(Binding::From(m, attr)) => {
                self.class(path, m, attr, depth + 1).map(|found| Imported {
                    file: found.file.clone(),
                    marks: found.marks.clone(),
                    methods: found.methods.clone(),
                    unittest: found.unittest,
                })
            }
            _ => Err(Some(format!("{module} defines no class `{name}`"))),
        }
    }
}

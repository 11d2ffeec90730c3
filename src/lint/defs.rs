//! The definitions of a body as pytest reads them: functions and classes
//! with their decorators' markers and the fixtures they are or request, and
//! `pytestmark` and `pytest_generate_tests` of a module or class body.

use std::borrow::Cow;
use std::collections::HashMap;

use tree_sitter::Node;

use crate::lint::fixtures::{self, Fixture};
use crate::lint::grammar::fields;
use crate::lint::known::{Marks, Unresolved};
use crate::lint::literal::text;
use crate::lint::source::{children, decorators, definition, Pos, Scope};

/// `pytestmark` as a body leaves it: assigned, added to, appended to.
pub(super) fn pytestmark<'t>(scope: &Scope<'t>, body: &[Node<'t>]) -> Marks {
    let src = scope.src;
    let mut marks = Marks::default();
    for stmt in body {
        if stmt.kind() != "expression_statement" {
            continue;
        }
        for expr in children(*stmt) {
            let left = expr.child_by_field_id(fields().left.get());
            let is_target = left.is_some_and(|l| text(l, src) == "pytestmark");
            match expr.kind() {
                "assignment" if is_target => {
                    if let Some(right) = expr.child_by_field_id(fields().right.get()) {
                        marks = scope.mark_list(right, 0);
                    }
                }
                "augmented_assignment" if is_target => {
                    if let Some(right) = expr.child_by_field_id(fields().right.get()) {
                        marks.extend(scope.mark_list(right, 0));
                    }
                }
                "call" => {
                    let Some(function) = expr.child_by_field_id(fields().function.get()) else {
                        continue;
                    };
                    let t = text(function, src);
                    if t == "pytestmark.append" || t == "pytestmark.extend" {
                        for arg in expr
                            .child_by_field_id(fields().arguments.get())
                            .map(children)
                            .unwrap_or_default()
                        {
                            marks.extend(scope.mark_list(arg, 0));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    marks
}

/// `pytest_generate_tests` that may parametrize with markers.
pub fn generate_tests<'t>(scope: &Scope<'t>, body: &[Node<'t>]) -> Option<Unresolved> {
    body.iter().map(|s| definition(*s)).find_map(|def| {
        let name = def.child_by_field_id(fields().name.get())?;
        (def.kind() == "function_definition"
            && text(name, scope.src) == "pytest_generate_tests"
            && scope.parametrizes_with_marks(def))
        .then(|| {
            Unresolved::at(
                name,
                "pytest_generate_tests may parametrize with markers of its own",
            )
        })
    })
}

/// A function or class definition with its decorators' markers.
pub(super) struct Def<'t> {
    pub(super) name: Cow<'t, str>,
    /// None for a method of a class read from another module.
    pub(super) node: Option<Node<'t>>,
    /// Where its name is written (for a method of another module: where
    /// that module's class is named as a base).
    pub(super) pos: Pos,
    pub(super) marks: Marks,
    pub(super) fixture: bool,
    /// The fixture it is, when it is one.
    pub(super) as_fixture: Option<Fixture>,
    /// The fixtures it requests by argument name.
    pub(super) args: Vec<String>,
}

/// The function and class definitions of a body; `method` says it is a
/// class body (the first argument of a method is no fixture).
pub(super) fn defs<'t>(
    scope: &Scope<'t>,
    body: &[Node<'t>],
    kind: &str,
    method: bool,
) -> Vec<Def<'t>> {
    let mut out: Vec<Def<'t>> = Vec::new();
    // Where each name is in `out`: a search of `out` made a file of n tests
    // cost n² (6.7 s for 40,000 tests).
    let mut index: HashMap<&'t str, usize> = HashMap::new();
    for stmt in body {
        let def = definition(*stmt);
        if def.kind() != kind {
            continue;
        }
        let Some(name) = def.child_by_field_id(fields().name.get()) else {
            continue;
        };
        let mut marks = Marks::default();
        let mut fixture = false;
        // pytest stores the innermost decorator's marker first.
        for dec in decorators(*stmt).into_iter().rev() {
            let (m, f) = scope.decorator(dec);
            marks.extend(m);
            fixture |= f;
        }
        let pos = Pos::of(name);
        let name = text(name, scope.src);
        let static_method = fixtures::is_static(*stmt, scope.src);
        let item = Def {
            name: Cow::Borrowed(name),
            node: Some(def),
            pos,
            marks,
            fixture,
            as_fixture: if fixture {
                fixtures::read(scope, *stmt, method)
            } else {
                None
            },
            args: if kind == "function_definition" {
                fixtures::argnames(def, scope.src, method && !static_method)
            } else {
                Vec::new()
            },
        };
        // A later definition replaces an earlier one of the same name.
        if let Some(&at) = index.get(name) {
            out[at] = item;
        } else {
            index.insert(name, out.len());
            out.push(item);
        }
    }
    out
}

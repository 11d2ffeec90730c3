//! Test classes as pytest sees them: their bases (classes of the same
//! module, `unittest.TestCase`, or imported and out of sight), their markers
//! along the MRO, and the methods they inherit.

use std::borrow::Cow;
use std::collections::HashSet;
use std::rc::Rc;

use tree_sitter::Node;

use crate::lint::bases::{Base, TestCase};
use crate::lint::collect::{Collector, Context};
use crate::lint::defs::{defs, generate_tests, pytestmark, Def};
use crate::lint::grammar::fields;
use crate::lint::known::{Marks, Unresolved};
use crate::lint::literal::{text, Literal};
use crate::lint::marks::is_mark_free_module;
use crate::lint::source::{children, decorators, definition, statements, Binding, Pos, Scope};

/// A class of another module of the project, read without importing it;
/// `why` is the reason it stays out of sight when it cannot be read.
fn imported<'t>(
    ctx: &Context<'_>,
    node: Node<'t>,
    module: &str,
    class: &str,
    unknown: impl Fn(String) -> Base<'t>,
    why: String,
) -> Base<'t> {
    let (Some(modules), Some(path)) = (ctx.modules, ctx.path) else {
        return unknown(why);
    };
    match modules.class(path, module, class, ctx.depth) {
        Ok(found) => Base::Imported(found, Pos::of(node)),
        Err(None) => unknown(why),
        Err(Some(reason)) => unknown(format!("{why} ({reason})")),
    }
}

fn base<'t>(scope: &Scope<'t>, ctx: &Context<'_>, node: Node<'t>, depth: u32) -> Base<'t> {
    let src = scope.src;
    let unknown = |why: String| {
        Base::Unknown(Unresolved::at(
            node,
            format!(
                "base class `{}` {why}: its markers cannot be seen",
                text(node, src)
            ),
        ))
    };
    if depth > 8 {
        return unknown("is defined too indirectly".into());
    }
    match node.kind() {
        "identifier" => match scope.lookup(text(node, src), node.start_byte()) {
            Some(Binding::Def(def)) if def.kind() == "class_definition" => Base::Local(def),
            Some(Binding::Value(v)) => base(scope, ctx, v, depth + 1),
            Some(Binding::From(m, attr))
                if m.starts_with("unittest") && attr.ends_with("TestCase") =>
            {
                Base::UnitTest
            }
            Some(Binding::From(m, _)) if m == "pytest" || is_mark_free_module(m) => Base::Plain,
            Some(Binding::From(m, attr)) => {
                imported(ctx, node, m, attr, unknown, format!("is imported from {m}"))
            }
            None if matches!(text(node, src), "object" | "Exception") => Base::Plain,
            _ => unknown("is not a class of this module".into()),
        },
        "attribute" => {
            let t = text(node, src);
            let parts: Vec<&str> = t.split('.').map(str::trim).collect();
            let (root, middle, class) = match parts.as_slice() {
                [root, middle @ .., class] => (*root, middle, *class),
                _ => return unknown("is not a class of this module".into()),
            };
            // `common.Base` after `import common` or `from . import common`.
            let module = match scope.lookup(root, node.start_byte()) {
                Some(Binding::Module(module)) => module.to_string(),
                Some(Binding::From(m, a)) if m.ends_with('.') => format!("{m}{a}"),
                Some(Binding::From(m, a)) if !is_mark_free_module(m) && m != "pytest" => {
                    format!("{m}.{a}")
                }
                _ => return unknown("is not a class of this module".into()),
            };
            if module.starts_with("unittest") && t.ends_with("TestCase") {
                Base::UnitTest
            } else if is_mark_free_module(&module) {
                Base::Plain
            } else {
                let full = std::iter::once(module.as_str())
                    .chain(middle.iter().copied())
                    .collect::<Vec<_>>()
                    .join(".");
                let why = format!("comes from module {module}");
                imported(ctx, node, &full, class, unknown, why)
            }
        }
        "subscript" => Base::Plain,
        _ => unknown("is computed".into()),
    }
}

pub fn bases<'t>(scope: &Scope<'t>, ctx: &Context<'_>, class: Node<'t>) -> Vec<Base<'t>> {
    class
        .child_by_field_id(fields().superclasses.get())
        .map(children)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.kind() != "keyword_argument")
        .map(|n| base(scope, ctx, n, 0))
        .collect()
}

pub fn body(class: Node<'_>) -> Vec<Node<'_>> {
    class
        .child_by_field_id(fields().body.get())
        .map(statements)
        .unwrap_or_default()
}

/// The class's own decorators, as the `decorated_definition` around it holds them.
pub fn class_decorators<'t>(scope: &Scope<'t>, class: Node<'t>) -> Marks {
    let mut marks = Marks::default();
    if let Some(parent) = class
        .parent()
        .filter(|p| p.kind() == "decorated_definition")
    {
        for dec in decorators(parent).into_iter().rev() {
            marks.extend(scope.decorator(dec).0);
        }
    }
    marks
}

impl<'t> Collector<'_, 't> {
    pub(super) fn body(&self, class: Node<'t>) -> Rc<Vec<Node<'t>>> {
        Rc::clone(
            self.bodies
                .borrow_mut()
                .entry(class.id())
                .or_insert_with(|| Rc::new(body(class))),
        )
    }

    pub(super) fn bases(&self, class: Node<'t>) -> Rc<Vec<Base<'t>>> {
        Rc::clone(
            self.bases
                .borrow_mut()
                .entry(class.id())
                .or_insert_with(|| Rc::new(bases(self.scope, self.ctx, class))),
        )
    }

    pub(super) fn unittest(&self, class: Node<'t>, seen: &mut HashSet<usize>) -> TestCase {
        if !seen.insert(class.id()) {
            return TestCase::No;
        }
        let mut answer = TestCase::No;
        for b in self.bases(class).iter() {
            let this = match b {
                Base::UnitTest => TestCase::Yes,
                Base::Local(def) => self.unittest(*def, seen),
                Base::Imported(i, _) => i.unittest,
                Base::Unknown(_) => TestCase::Maybe,
                Base::Plain => TestCase::No,
            };
            if this == TestCase::Yes {
                return TestCase::Yes;
            }
            if this == TestCase::Maybe {
                answer = TestCase::Maybe;
            }
        }
        answer
    }

    /// A class's markers through its bases (pytest reads `pytestmark` along the MRO).
    pub(super) fn class_marks(&self, class: Node<'t>, seen: &mut HashSet<usize>) -> Marks {
        let mut marks = Marks::default();
        if !seen.insert(class.id()) {
            return marks;
        }
        for b in self.bases(class).iter() {
            match b {
                Base::Local(def) => marks.extend(self.class_marks(*def, seen)),
                Base::Imported(i, at) => marks.extend(i.marks_at(*at)),
                Base::Unknown(u) => marks.unresolved.push(u.clone()),
                Base::UnitTest | Base::Plain => {}
            }
        }
        marks.extend(class_decorators(self.scope, class));
        let body = self.body(class);
        marks.extend(pytestmark(self.scope, &body));
        if let Some(u) = generate_tests(self.scope, &body) {
            marks.unresolved.push(u);
        }
        marks
    }

    /// Methods defined in the class and inherited from classes of this module.
    pub(super) fn methods(&self, class: Node<'t>, seen: &mut HashSet<usize>) -> Vec<Def<'t>> {
        let mut out: Vec<Def<'t>> = Vec::new();
        if !seen.insert(class.id()) {
            return out;
        }
        // Names already taken, in a set: a search of `out` was quadratic.
        let mut taken: HashSet<String> = HashSet::new();
        let mut add = |defs: Vec<Def<'t>>, out: &mut Vec<Def<'t>>| {
            for d in defs {
                if taken.insert(d.name.to_string()) {
                    out.push(d);
                }
            }
        };
        add(
            defs(self.scope, &self.body(class), "function_definition", true),
            &mut out,
        );
        for b in self.bases(class).iter() {
            match b {
                Base::Local(def) => {
                    let inherited = self.methods(*def, seen);
                    add(inherited, &mut out);
                }
                Base::Imported(i, at) => {
                    let inherited = i
                        .methods
                        .iter()
                        .map(|m| Def {
                            name: Cow::Owned(m.name.clone()),
                            node: None,
                            pos: *at,
                            marks: i.placed(m.marks.clone(), *at),
                            fixture: m.fixture,
                            as_fixture: m.as_fixture.clone(),
                            args: m.args.clone(),
                        })
                        .collect();
                    add(inherited, &mut out);
                }
                _ => {}
            }
        }
        out
    }

    pub(super) fn class_attr(&self, class: Node<'t>, name: &str) -> Option<bool> {
        self.body(class).iter().find_map(|&stmt| {
            let expr = *children(stmt).first()?;
            if expr.kind() != "assignment" {
                return None;
            }
            let left = expr.child_by_field_id(fields().left.get())?;
            if text(left, self.scope.src) != name {
                return None;
            }
            let right = expr.child_by_field_id(fields().right.get())?;
            match crate::lint::literal::literal(right, self.scope.src) {
                Some(Literal::Bool(b)) => Some(b),
                _ => None,
            }
        })
    }

    pub(super) fn defines(&self, class: Node<'t>, names: &[&str]) -> bool {
        self.body(class).iter().any(|&stmt| {
            let def = definition(stmt);
            def.kind() == "function_definition"
                && def
                    .child_by_field_id(fields().name.get())
                    .is_some_and(|n| names.contains(&text(n, self.scope.src)))
                || decorators(stmt)
                    .into_iter()
                    .any(|d| text(d, self.scope.src).contains("abstractmethod"))
        })
    }
}

//! Marker expressions read statically: what a decorator, a `pytestmark`
//! value or a `marks=` argument stands for, with every spelling of pytest
//! (`pytest.mark.x`, `import pytest as pt`, `from pytest import mark`, names
//! bound to markers at module level, `getattr(pytest.mark, "x")`). What only
//! running the code could tell is an [`Unresolved`] with its reason.

use tree_sitter::Node;

use crate::lint::grammar::fields;
use crate::lint::known::{Marks, Spelled, Unresolved, Val};
use crate::lint::literal::{literal, text, Literal};
use crate::lint::params;
#[cfg(test)]
use crate::lint::source::statements;
use crate::lint::source::{children, Binding, Pos, Scope};

const BUILTINS: &[&str] = &[
    "staticmethod",
    "classmethod",
    "property",
    "getattr",
    "object",
    "len",
    "range",
    "list",
    "tuple",
    "dict",
    "set",
    "frozenset",
    "str",
    "int",
    "float",
    "bool",
    "bytes",
    "zip",
    "enumerate",
    "sorted",
    "reversed",
    "map",
    "filter",
    "min",
    "max",
    "sum",
    "any",
    "all",
    "abs",
    "round",
    "repr",
    "type",
    "isinstance",
    "print",
    "iter",
    "next",
    "Exception",
    "ValueError",
    "TypeError",
    "RuntimeError",
];

/// Modules of the standard library (and a few test libraries) whose
/// decorators and values never carry pytest markers.
const MARK_FREE_MODULES: &[&str] = &[
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "atexit",
    "base64",
    "bisect",
    "builtins",
    "bz2",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "concurrent",
    "configparser",
    "contextlib",
    "contextvars",
    "copy",
    "csv",
    "ctypes",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "dis",
    "doctest",
    "email",
    "enum",
    "errno",
    "faulthandler",
    "fnmatch",
    "fractions",
    "functools",
    "gc",
    "getpass",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "locale",
    "logging",
    "lzma",
    "math",
    "mimetypes",
    "multiprocessing",
    "numbers",
    "operator",
    "os",
    "pathlib",
    "pickle",
    "platform",
    "pprint",
    "queue",
    "random",
    "re",
    "resource",
    "secrets",
    "select",
    "selectors",
    "shlex",
    "shutil",
    "signal",
    "socket",
    "sqlite3",
    "ssl",
    "stat",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sys",
    "sysconfig",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "traceback",
    "tracemalloc",
    "types",
    "typing",
    "unittest",
    "urllib",
    "uuid",
    "warnings",
    "weakref",
    "xml",
    "zipfile",
    "zlib",
    "__future__",
    "typing_extensions",
    "mock",
    "hypothesis",
];

pub fn is_mark_free_module(module: &str) -> bool {
    let top = module.split('.').next().unwrap_or(module);
    MARK_FREE_MODULES.contains(&top)
}

const MAX_DEPTH: u32 = 12;

impl<'t> Scope<'t> {
    /// What an identifier stands for at its place.
    fn name(&self, node: Node<'t>, depth: u32) -> Val<'t> {
        let name = text(node, self.src);
        match self.lookup(name, node.start_byte()) {
            Some(Binding::Value(value)) => self.eval(value, depth + 1),
            Some(Binding::Module(module)) => {
                if module == "pytest" {
                    Val::Pytest
                } else {
                    Val::Module(module)
                }
            }
            Some(Binding::From(module, attr)) => match (module, attr) {
                ("pytest", "mark") => Val::MarkNs,
                ("pytest", "param") => Val::ParamFn,
                ("pytest", "fixture" | "yield_fixture") => Val::Fixture,
                ("pytest", _) => Val::NotMark,
                (m, _) if is_mark_free_module(m) => Val::NotMark,
                (m, a) => Val::Unknown(Unresolved::at(
                    node,
                    format!("`{name}` is imported from {m} (as {a}): its markers cannot be seen without importing it"),
                )),
            },
            Some(Binding::Def(def)) => {
                let body = text(def, self.src);
                Val::Helper(name, body.contains("mark"))
            }
            None if BUILTINS.contains(&name) => Val::Builtin(name),
            None => Val::Unknown(Unresolved::at(
                node,
                format!("`{name}` is not defined in this module"),
            )),
        }
    }

    /// Evaluate an expression as far as markers go.
    pub fn eval(&self, node: Node<'t>, depth: u32) -> Val<'t> {
        if depth > MAX_DEPTH {
            return Val::Unknown(Unresolved::at(node, "markers defined too indirectly"));
        }
        match node.kind() {
            "identifier" => self.name(node, depth),
            "parenthesized_expression" => match children(node).first() {
                Some(inner) => self.eval(*inner, depth),
                None => Val::NotMark,
            },
            "attribute" => self.attribute(node, depth),
            "call" => self.call(node, depth),
            "list" | "tuple" | "binary_operator" => Val::Marks(self.mark_list(node, depth)),
            "lambda" if !text(node, self.src).contains("mark") => Val::NotMark,
            _ if literal(node, self.src).is_some() => Val::NotMark,
            _ => Val::Unknown(Unresolved::at(
                node,
                format!("computed markers: `{}`", self.snippet(node)),
            )),
        }
    }

    fn attribute(&self, node: Node<'t>, depth: u32) -> Val<'t> {
        let (Some(object), Some(attr)) = (
            node.child_by_field_id(fields().object.get()),
            node.child_by_field_id(fields().attribute.get()),
        ) else {
            return Val::NotMark;
        };
        let attr_name = text(attr, self.src);
        match self.eval(object, depth) {
            Val::Pytest => match attr_name {
                "mark" => Val::MarkNs,
                "param" => Val::ParamFn,
                "fixture" | "yield_fixture" => Val::Fixture,
                _ => Val::NotMark,
            },
            Val::MarkNs if attr_name.starts_with('_') => Val::Unknown(Unresolved::at(
                node,
                format!("`{}` is not a marker", self.snippet(node)),
            )),
            Val::MarkNs => Val::Decorator(Spelled {
                name: attr_name.to_string(),
                pos: Pos::of(attr),
            }),
            Val::Decorator(d) if attr_name == "with_args" => Val::Decorator(d),
            Val::Module(m) if is_mark_free_module(m) => Val::NotMark,
            Val::Module(m) => Val::Unknown(Unresolved::at(
                node,
                format!(
                    "`{}` comes from module {m}: its markers cannot be seen without importing it",
                    self.snippet(node)
                ),
            )),
            Val::NotMark | Val::Builtin(_) => Val::NotMark,
            Val::Unknown(u) => Val::Unknown(u),
            _ => Val::Unknown(Unresolved::at(
                node,
                format!("computed markers: `{}`", self.snippet(node)),
            )),
        }
    }

    fn call(&self, node: Node<'t>, depth: u32) -> Val<'t> {
        let Some(function) = node.child_by_field_id(fields().function.get()) else {
            return Val::NotMark;
        };
        let args = node.child_by_field_id(fields().arguments.get());
        match self.eval(function, depth) {
            Val::Decorator(d) => {
                let mut marks = Marks::default();
                if d.name == "parametrize" {
                    if let Some(args) = args {
                        marks
                            .params
                            .push(params::parametrize(self, args, d.pos, depth));
                        marks
                            .argnames
                            .extend(params::parametrized_names(self, args));
                    }
                }
                if d.name == "usefixtures" {
                    marks.usefixtures.extend(
                        args.map(children)
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(|a| match literal(a, self.src) {
                                Some(Literal::Str(s)) => Some(s),
                                _ => None,
                            }),
                    );
                }
                marks.marks.push(d);
                Val::Marks(marks)
            }
            Val::Marks(m) => Val::Marks(m),
            Val::ParamFn => Val::Param,
            Val::Fixture => Val::Fixture,
            Val::Builtin("getattr") => self.getattr(node, args, depth),
            Val::NotMark | Val::Builtin(_) | Val::Pytest | Val::Helper(_, false) => Val::NotMark,
            Val::Module(m) if is_mark_free_module(m) => Val::NotMark,
            Val::Helper(name, true) => Val::Unknown(Unresolved::at(
                node,
                format!("markers built by the helper function `{name}()`"),
            )),
            Val::Unknown(u) => {
                // One prefix, the outermost call's, before the cause: a
                // prefix per call made a chain of n calls n prefixes long.
                let cause = u
                    .reason
                    .strip_prefix('`')
                    .and_then(|r| r.split_once("`: "))
                    .map_or(u.reason.as_str(), |(_, cause)| cause);
                Val::Unknown(Unresolved {
                    reason: format!("`{}`: {cause}", self.snippet(node)),
                    ..u
                })
            }
            _ => Val::Unknown(Unresolved::at(
                node,
                format!("computed markers: `{}`", self.snippet(node)),
            )),
        }
    }

    fn getattr(&self, node: Node<'t>, args: Option<Node<'t>>, depth: u32) -> Val<'t> {
        let args = args.map(children).unwrap_or_default();
        let (Some(object), Some(attr)) = (args.first(), args.get(1)) else {
            return Val::NotMark;
        };
        match (self.eval(*object, depth), literal(*attr, self.src)) {
            (Val::MarkNs, Some(Literal::Str(name))) if !name.starts_with('_') => {
                Val::Decorator(Spelled {
                    name,
                    pos: Pos::of(*attr),
                })
            }
            (Val::Pytest, Some(Literal::Str(name))) if name == "mark" => Val::MarkNs,
            (Val::MarkNs, _) => Val::Unknown(Unresolved::at(
                node,
                format!("marker name computed at run time: `{}`", self.snippet(node)),
            )),
            (Val::NotMark | Val::Builtin(_), _) => Val::NotMark,
            _ => Val::Unknown(Unresolved::at(
                node,
                format!("computed markers: `{}`", self.snippet(node)),
            )),
        }
    }

    /// A value where pytest wants markers (`pytestmark`, `marks=`): one
    /// marker, or a list or tuple of them, or lists added together.
    pub fn mark_list(&self, node: Node<'t>, depth: u32) -> Marks {
        match node.kind() {
            "list" | "tuple" => {
                let mut out = Marks::default();
                for item in children(node) {
                    if item.kind() == "list_splat" {
                        if let Some(inner) = children(item).first() {
                            out.extend(self.mark_list(*inner, depth + 1));
                        }
                    } else {
                        out.extend(self.mark_list(item, depth + 1));
                    }
                }
                out
            }
            "binary_operator" => {
                let op = node
                    .child_by_field_id(fields().operator.get())
                    .map_or("", |o| text(o, self.src));
                match (
                    op,
                    node.child_by_field_id(fields().left.get()),
                    node.child_by_field_id(fields().right.get()),
                ) {
                    // Lists added together are one list written in parts, not
                    // an indirection: however many, they keep the depth (the
                    // file's nesting is bounded before it is walked).
                    ("+", Some(l), Some(r)) => {
                        let mut out = self.mark_list(l, depth);
                        out.extend(self.mark_list(r, depth));
                        out
                    }
                    _ => Marks::unresolved(Unresolved::at(
                        node,
                        format!("computed markers: `{}`", self.snippet(node)),
                    )),
                }
            }
            _ => match self.eval(node, depth) {
                Val::Decorator(d) => Marks {
                    marks: vec![d],
                    ..Marks::default()
                },
                Val::Marks(m) => m,
                Val::Unknown(u) => Marks::unresolved(u),
                _ => Marks::unresolved(Unresolved::at(
                    node,
                    format!("`{}` is not a marker", self.snippet(node)),
                )),
            },
        }
    }

    /// What a decorator applies: markers, nothing, or something unknown.
    /// The bool says whether it makes the function a fixture.
    pub fn decorator(&self, node: Node<'t>) -> (Marks, bool) {
        match self.eval(node, 0) {
            Val::Decorator(d) => (
                Marks {
                    marks: vec![d],
                    ..Marks::default()
                },
                false,
            ),
            Val::Marks(m) => (m, false),
            Val::Fixture => (Marks::default(), true),
            Val::Unknown(u) => (Marks::unresolved(u), false),
            Val::MarkNs => (
                Marks::unresolved(Unresolved::at(node, "`pytest.mark` without a marker name")),
                false,
            ),
            _ => (Marks::default(), false),
        }
    }

    /// Whether a function (a `pytest_generate_tests`) calls `.parametrize`
    /// with values that may carry markers.
    pub fn parametrizes_with_marks(&self, def: Node<'t>) -> bool {
        let mut stack = vec![def];
        while let Some(node) = stack.pop() {
            if node.kind() == "call" {
                let function = node.child_by_field_id(fields().function.get());
                let method = function
                    .and_then(|f| f.child_by_field_id(fields().attribute.get()))
                    .map(|a| text(a, self.src));
                if method == Some("parametrize")
                    && node
                        .child_by_field_id(fields().arguments.get())
                        .is_some_and(|a| self.may_carry_marks(a, 0))
                {
                    return true;
                }
            }
            stack.extend(children(node));
        }
        false
    }

    /// Whether an expression starts at a name bound nowhere in the module:
    /// a comprehension's or a function's own variable.
    fn is_local(&self, mut node: Node<'t>) -> bool {
        while node.kind() == "attribute" {
            match node.child_by_field_id(fields().object.get()) {
                Some(o) => node = o,
                None => return false,
            }
        }
        if node.kind() != "identifier" {
            return false;
        }
        let name = text(node, self.src);
        self.lookup(name, node.start_byte()).is_none() && !BUILTINS.contains(&name)
    }

    /// Could this expression hold `pytest.param(..., marks=...)` or markers?
    /// (For parameter lists that cannot be enumerated.)
    pub fn may_carry_marks(&self, node: Node<'t>, depth: u32) -> bool {
        if depth > MAX_DEPTH {
            return true;
        }
        match node.kind() {
            "call" => {
                let Some(function) = node.child_by_field_id(fields().function.get()) else {
                    return true;
                };
                let risky = !self.is_local(function)
                    && match self.eval(function, depth) {
                        Val::NotMark | Val::Builtin(_) | Val::Helper(_, false) => false,
                        Val::Module(m) => !is_mark_free_module(m),
                        _ => true,
                    };
                risky
                    || node
                        .child_by_field_id(fields().arguments.get())
                        .is_some_and(|a| self.may_carry_marks(a, depth + 1))
            }
            "identifier" => {
                let name = text(node, self.src);
                match self.lookup(name, node.start_byte()) {
                    Some(Binding::Value(value)) => self.may_carry_marks(value, depth + 1),
                    Some(Binding::From(m, _) | Binding::Module(m)) => {
                        m == "pytest" || !is_mark_free_module(m)
                    }
                    Some(Binding::Def(_)) | None => false,
                }
            }
            "attribute" if self.is_local(node) => false,
            "attribute" => match self.eval(node, depth) {
                Val::NotMark | Val::Builtin(_) => false,
                Val::Module(m) => !is_mark_free_module(m),
                _ => true,
            },
            _ => children(node)
                .into_iter()
                .any(|c| self.may_carry_marks(c, depth + 1)),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use tree_sitter::Tree;

    pub fn parse(src: &str) -> Tree {
        let mut parser = crate::lint::grammar::parser();
        parser.parse(src, None).expect("parses")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::parse;
    use super::*;

    /// The markers of the last statement's expression, evaluated in its module.
    fn marks_of(src: &str) -> Marks {
        let tree = parse(src);
        let root = tree.root_node();
        let scope = Scope::new(src.as_bytes(), root);
        let last = *statements(root).last().unwrap();
        let expr = children(last)[0];
        scope.mark_list(expr, 0)
    }

    fn names(m: &Marks) -> Vec<&str> {
        m.marks.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn every_spelling_of_pytest_mark_resolves() {
        for src in [
            "import pytest\npytest.mark.nightly",
            "import pytest as pt\npt.mark.nightly",
            "from pytest import mark\nmark.nightly",
            "from pytest import mark as m\nm.nightly",
            "import pytest\nm = pytest.mark\nm.nightly",
            "import pytest\npytest.mark.nightly(reason='x')",
            "import pytest\npytest.mark.nightly.with_args(1)",
            "import pytest\ngetattr(pytest.mark, 'nightly')",
            "import pytest\nn = pytest.mark.nightly\nn",
        ] {
            let m = marks_of(src);
            assert_eq!(names(&m), ["nightly"], "{src}");
            assert!(m.unresolved.is_empty(), "{src}: {:?}", m.unresolved);
        }
    }

    #[test]
    fn lists_and_sums_of_markers_resolve() {
        let m = marks_of(
            "import pytest\nbase = [pytest.mark.unit]\n[pytest.mark.nightly, *base] + (pytest.mark.gpu_0,)",
        );
        assert_eq!(names(&m), ["nightly", "unit", "gpu_0"]);
    }

    #[test]
    fn what_cannot_be_known_is_unresolved_with_a_reason() {
        for (src, reason) in [
            (
                "import pytest\nname = 'x'\ngetattr(pytest.mark, name)",
                "computed at run time",
            ),
            (
                "import pytest\ndef make():\n    return pytest.mark.x\nmake()",
                "helper function `make()`",
            ),
            (
                "from tests.helpers import gpu\ngpu",
                "imported from tests.helpers",
            ),
            (
                "import helpers\nhelpers.gpu_marks",
                "comes from module helpers",
            ),
            ("nowhere", "not defined"),
            (
                "import pytest\n[pytest.mark.a if x else pytest.mark.b]",
                "computed markers",
            ),
            ("import os\nos.sep", "is not a marker"),
        ] {
            let m = marks_of(src);
            assert_eq!(m.unresolved.len(), 1, "{src}");
            assert!(
                m.unresolved[0].reason.contains(reason),
                "{src}: {}",
                m.unresolved[0].reason
            );
        }
    }

    #[test]
    fn decorators_that_are_no_markers_are_ignored() {
        let src =
            "import pytest, functools\nfrom unittest import mock\ndef plain(f):\n    return f\n";
        let tree = parse(src);
        let scope = Scope::new(src.as_bytes(), tree.root_node());
        for (expr, fixture) in [
            ("staticmethod", false),
            ("functools.wraps(x)", false),
            ("mock.patch('a.b')", false),
            ("plain", false),
            ("pytest.fixture", true),
            ("pytest.fixture(scope='module')", true),
        ] {
            let full = format!("{src}{expr}\n");
            let tree = parse(&full);
            let root = tree.root_node();
            let scope2 = Scope::new(full.as_bytes(), root);
            let last = children(*statements(root).last().unwrap())[0];
            let (marks, is_fixture) = scope2.decorator(last);
            assert!(
                marks.marks.is_empty() && marks.unresolved.is_empty(),
                "{expr}"
            );
            assert_eq!(is_fixture, fixture, "{expr}");
        }
        drop(scope);
    }

    #[test]
    fn bindings_are_read_where_they_are_used() {
        let m = marks_of("import pytest\nx = pytest.mark.a\ny = x\nx = pytest.mark.b\n[y, x]");
        assert_eq!(names(&m), ["a", "b"]);
    }
}

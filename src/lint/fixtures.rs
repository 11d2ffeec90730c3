//! Fixtures read statically, as far as markers go: a fixture with
//! `params=[...]` parametrizes every test that uses it (by argument name,
//! through `usefixtures`, as `autouse`, or through another fixture), and a
//! `pytest.param(..., marks=...)` among them puts its markers on those tests.
//! Which definition a test sees follows pytest: the nearest (class, module,
//! then the conftests from the nearest up), and one that requests its own
//! name reaches the one it overrides.

use std::collections::HashSet;
use std::path::PathBuf;

use tree_sitter::Node;

use crate::lint::grammar::fields;
use crate::lint::known::{Parametrize, Unresolved, Val};
use crate::lint::literal::{literal, text, Literal};
use crate::lint::marks::is_mark_free_module;
use crate::lint::params;
use crate::lint::source::{children, decorators, definition, Pos, Scope};

/// Fixtures pytest itself provides (never parametrized).
const BUILTIN: &[&str] = &[
    "cache",
    "capfd",
    "capfdbinary",
    "caplog",
    "capsys",
    "capsysbinary",
    "capteesys",
    "doctest_namespace",
    "monkeypatch",
    "pytestconfig",
    "pytester",
    "record_property",
    "record_testsuite_property",
    "record_xml_attribute",
    "recwarn",
    "request",
    "subtests",
    "testdir",
    "tmp_path",
    "tmp_path_factory",
    "tmpdir",
    "tmpdir_factory",
];

/// Where a module gets fixtures the lint cannot read: `pytest_plugins`, or
/// `from module import *` of a module that is not the standard library's.
pub fn opaque_source(scope: &Scope<'_>, body: &[Node<'_>]) -> Option<Unresolved> {
    let src = scope.src;
    body.iter().find_map(|stmt| match stmt.kind() {
        "import_from_statement" => {
            let module = stmt
                .child_by_field_id(fields().module_name.get())
                .map_or("", |m| text(m, src));
            let star = children(*stmt)
                .iter()
                .any(|c| c.kind() == "wildcard_import");
            (star && module != "pytest" && !is_mark_free_module(module))
                .then(|| Unresolved::at(*stmt, format!("`from {module} import *`")))
        }
        "expression_statement" => children(*stmt).into_iter().find_map(|e| {
            let left = e.child_by_field_id(fields().left.get())?;
            (e.kind() == "assignment" && text(left, src) == "pytest_plugins")
                .then(|| Unresolved::at(e, "`pytest_plugins`"))
        }),
        _ => None,
    })
}

/// pytest's scopes, widest first (a closure is sorted by them).
const SCOPES: &[&str] = &["session", "package", "module", "class", "function"];

/// One fixture definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    pub name: String,
    /// The fixtures it requests (its arguments without defaults).
    pub args: Vec<String>,
    pub autouse: bool,
    /// Index in [`SCOPES`].
    pub scope: usize,
    /// Its `params=`, read like a `parametrize` of its name.
    pub params: Option<Parametrize>,
    /// The conftest.py it is defined in, when not the test's own module.
    pub file: Option<PathBuf>,
}

/// The names a function requests: its parameters without defaults, but not
/// `*args`, `**kwargs` nor (for a method) the first one.
pub fn argnames(def: Node<'_>, src: &[u8], method: bool) -> Vec<String> {
    let Some(params) = def.child_by_field_name("parameters") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut positional = 0;
    for p in children(params) {
        let name = match p.kind() {
            "identifier" => Some(p),
            "typed_parameter" => children(p).into_iter().find(|c| c.kind() == "identifier"),
            _ => None,
        };
        let is_positional = matches!(
            p.kind(),
            "identifier" | "typed_parameter" | "default_parameter" | "typed_default_parameter"
        );
        if is_positional {
            positional += 1;
        }
        if let Some(name) = name {
            if !(method && positional == 1) {
                out.push(text(name, src).to_string());
            }
        }
    }
    out
}

/// Whether a method is a `@staticmethod` (it has no `self`).
pub fn is_static(stmt: Node<'_>, src: &[u8]) -> bool {
    decorators(stmt)
        .into_iter()
        .any(|d| text(d, src) == "staticmethod")
}

/// The fixture a definition is, if one of its decorators is `pytest.fixture`.
/// `stmt` is the (decorated) statement; `method` says it is in a class body.
pub fn read<'t>(scope: &Scope<'t>, stmt: Node<'t>, method: bool) -> Option<Fixture> {
    let src = scope.src;
    let def = definition(stmt);
    if def.kind() != "function_definition" {
        return None;
    }
    let def_name = text(def.child_by_field_id(fields().name.get())?, src);
    for dec in decorators(stmt) {
        let (is_fixture, args) = match dec.kind() {
            "call" => {
                let f = dec.child_by_field_id(fields().function.get())?;
                (
                    matches!(scope.eval(f, 0), Val::Fixture),
                    dec.child_by_field_id(fields().arguments.get()),
                )
            }
            _ => (matches!(scope.eval(dec, 0), Val::Fixture), None),
        };
        if !is_fixture {
            continue;
        }
        let mut fixture = Fixture {
            name: def_name.to_string(),
            args: argnames(def, src, method && !is_static(stmt, src)),
            autouse: false,
            scope: SCOPES.len() - 1,
            params: None,
            file: None,
        };
        let mut values = None;
        let mut ids = None;
        for arg in args.map(children).unwrap_or_default() {
            if arg.kind() != "keyword_argument" {
                // `pytest.fixture(function)` or a positional scope: nothing markers need.
                continue;
            }
            let (Some(key), Some(value)) = (
                arg.child_by_field_id(fields().name.get()),
                arg.child_by_field_id(fields().value.get()),
            ) else {
                continue;
            };
            match (text(key, src), literal(value, src)) {
                ("params", _) => values = Some(value),
                ("ids", _) => ids = Some(value),
                ("autouse", Some(Literal::Bool(b))) => fixture.autouse = b,
                // A computed autouse may be true: take it as used.
                ("autouse", _) => fixture.autouse = true,
                ("scope", Some(Literal::Str(s))) => {
                    fixture.scope = SCOPES.iter().position(|x| *x == s).unwrap_or(fixture.scope);
                }
                ("name", Some(Literal::Str(s))) => fixture.name = s,
                _ => {}
            }
        }
        if let Some(values) = values {
            fixture.params = Some(params::fixture_params(
                scope,
                &fixture.name,
                values,
                ids,
                Pos::of(values),
            ));
        }
        return Some(fixture);
    }
    None
}

/// The fixtures defined at the top of a module (or a conftest.py).
pub fn module_fixtures<'t>(scope: &Scope<'t>, body: &[Node<'t>]) -> Vec<Fixture> {
    body.iter().filter_map(|s| read(scope, *s, false)).collect()
}

/// The fixture definitions one test sees, nearest level first (its classes,
/// its module, the conftests from the nearest up); within a level a later
/// definition wins.
pub struct Visible<'a> {
    pub levels: Vec<&'a [Fixture]>,
}

impl<'a> Visible<'a> {
    /// The definitions of `name`, nearest first.
    fn defs(&self, name: &str) -> Vec<&'a Fixture> {
        self.levels
            .iter()
            .filter_map(|level| level.iter().rev().find(|f| f.name == name))
            .collect()
    }

    /// A test's fixture closure: autouse fixtures, then `usefixtures`, then
    /// its arguments, then what those request, sorted by scope.
    fn closure(
        &self,
        usefixtures: &[String],
        args: &[String],
        direct: &HashSet<String>,
    ) -> Vec<String> {
        let mut closure: Vec<String> = Vec::new();
        let push = |name: &str, closure: &mut Vec<String>| {
            if !closure.iter().any(|c| c == name) {
                closure.push(name.to_string());
            }
        };
        for level in self.levels.iter().rev() {
            for f in level.iter().filter(|f| f.autouse) {
                push(&f.name, &mut closure);
            }
        }
        for name in usefixtures.iter().chain(args) {
            push(name, &mut closure);
        }
        let mut i = 0;
        while i < closure.len() {
            let name = closure[i].clone();
            i += 1;
            if direct.contains(&name) {
                continue;
            }
            for def in self.defs(&name) {
                for arg in &def.args {
                    push(arg, &mut closure);
                }
                // An override that requests its own name reaches the one above.
                if !def.args.contains(&name) {
                    break;
                }
            }
        }
        let scope_of = |name: &str| {
            self.defs(name)
                .first()
                .map_or(SCOPES.len() - 1, |f| f.scope)
        };
        closure.sort_by_key(|name| scope_of(name));
        closure
    }

    /// The parametrized fixtures a test uses, in the order pytest
    /// parametrizes them, without the names the test parametrizes itself.
    pub fn params(
        &self,
        usefixtures: &[String],
        args: &[String],
        direct: &HashSet<String>,
    ) -> Vec<&'a Fixture> {
        let mut out = Vec::new();
        for name in &self.closure(usefixtures, args, direct) {
            if direct.contains(name) {
                continue;
            }
            for def in self.defs(name) {
                if def.params.is_some() {
                    out.push(def);
                    break;
                }
                if !def.args.contains(name) {
                    break;
                }
            }
        }
        out
    }

    /// The fixtures a test uses that are defined nowhere in sight (nor by pytest).
    pub fn missing(
        &self,
        usefixtures: &[String],
        args: &[String],
        direct: &HashSet<String>,
    ) -> Vec<String> {
        self.closure(usefixtures, args, direct)
            .into_iter()
            .filter(|n| {
                !direct.contains(n) && !BUILTIN.contains(&n.as_str()) && self.defs(n).is_empty()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::marks::testing::parse;
    use crate::lint::source::statements;

    fn fixtures(src: &str) -> Vec<Fixture> {
        let tree = parse(src);
        let root = tree.root_node();
        let scope = Scope::new(src.as_bytes(), root);
        module_fixtures(&scope, &statements(root))
    }

    fn ids(f: &Fixture) -> Vec<String> {
        f.params
            .as_ref()
            .and_then(|p| p.sets.as_ref())
            .map(|s| s.iter().map(|s| s.id.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn fixture_decorators_are_read() {
        let f = fixtures(
            "import pytest\nfrom pytest import fixture\n\
             @pytest.fixture(params=[1, pytest.param(2, marks=pytest.mark.gpu_1, id='two')], scope='module')\ndef engine(request, tmp_path): pass\n\
             @fixture(autouse=True, name='other')\ndef _o(engine, x=1): pass\n\
             @pytest.fixture\ndef plain(): pass\n\
             def helper(): pass\n",
        );
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, "engine");
        assert_eq!(f[0].args, ["request", "tmp_path"]);
        assert_eq!(f[0].scope, 2);
        assert_eq!(ids(&f[0]), ["1", "two"]);
        let sets = f[0].params.as_ref().unwrap().sets.as_ref().unwrap();
        assert_eq!(sets[1].marks[0].name, "gpu_1");
        assert_eq!((f[1].name.as_str(), f[1].autouse), ("other", true));
        assert_eq!(f[1].args, ["engine"]);
        assert!(f[2].params.is_none());
    }

    #[test]
    fn a_test_sees_the_nearest_parametrized_fixtures_in_pytests_order() {
        let module = fixtures(
            "import pytest\n\
             @pytest.fixture(params=['a', 'b'])\ndef g(f): pass\n\
             @pytest.fixture\ndef f(f): pass\n",
        );
        let conftest = fixtures(
            "import pytest\n\
             @pytest.fixture(params=[1, 2])\ndef f(): pass\n\
             @pytest.fixture(params=['s'], scope='session')\ndef s(): pass\n\
             @pytest.fixture(params=['u'], autouse=True)\ndef auto(): pass\n",
        );
        let visible = Visible {
            levels: vec![&module, &conftest],
        };
        let names = |usefixtures: &[&str], args: &[&str], direct: &[&str]| -> Vec<String> {
            let u: Vec<String> = usefixtures.iter().map(|s| (*s).to_string()).collect();
            let a: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
            let d: HashSet<String> = direct.iter().map(|s| (*s).to_string()).collect();
            visible
                .params(&u, &a, &d)
                .into_iter()
                .map(|f| f.name.clone())
                .collect()
        };
        // g requests f, whose override reaches the conftest's parametrized f.
        assert_eq!(names(&[], &["x", "g"], &["x"]), ["auto", "g", "f"]);
        assert_eq!(names(&["s"], &["f"], &[]), ["s", "auto", "f"]);
        // A name the test parametrizes itself wins over the fixture's params.
        assert_eq!(names(&[], &["f"], &["f"]), ["auto"]);
    }

    #[test]
    fn fixtures_out_of_sight_are_told_from_pytests_own() {
        let module = fixtures("import pytest\n@pytest.fixture\ndef mine(other): pass\n");
        let visible = Visible {
            levels: vec![&module],
        };
        let args: Vec<String> = ["mine", "tmp_path", "theirs"].map(String::from).to_vec();
        assert_eq!(
            visible.missing(&[], &args, &HashSet::new()),
            ["theirs", "other"]
        );
        for (src, found) in [
            ("from fixtures import *\n", true),
            ("pytest_plugins = ['a.b']\n", true),
            ("from os.path import *\nfrom x import y\n", false),
        ] {
            let tree = parse(src);
            let root = tree.root_node();
            let scope = Scope::new(src.as_bytes(), root);
            assert_eq!(
                opaque_source(&scope, &statements(root)).is_some(),
                found,
                "{src}"
            );
        }
    }
}

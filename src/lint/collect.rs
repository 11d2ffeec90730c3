//! The tests of one module, found the way pytest collects them, without
//! importing it: test functions, test classes (nested too) with the methods
//! they inherit from classes in the same file, `unittest.TestCase` classes,
//! and one test per parameter set. Each test gets the markers pytest would
//! give it: its own, its classes' (and their bases'), the module's
//! `pytestmark`, and its parameter set's.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use tree_sitter::{Node, Tree};

use crate::lint::bases::{Base, Modules, TestCase};
use crate::lint::defs::{defs, generate_tests, pytestmark, Def};
use crate::lint::discover::fnmatch;
use crate::lint::fixtures::{self, Fixture, Visible};
use crate::lint::grammar::fields;
use crate::lint::known::{Marks, Parametrize, Spelled, Unresolved};
use crate::lint::literal::text;
use crate::lint::marks::is_mark_free_module;
use crate::lint::source::{statements, Pos, Scope};

/// One test as the lint sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticTest {
    pub nodeid: String,
    /// The test function's name.
    pub pos: Pos,
    pub marks: Vec<Spelled>,
    /// Why its markers may not all be known; empty when they are.
    pub unresolved: Vec<Unresolved>,
    /// Where its parameter set is written, when parameter sets carry markers.
    pub param_pos: Option<Pos>,
    /// How many tests this one stands for: 1, or the parametrizations of a
    /// function with more than [`MAX_PARAMETRIZATIONS`] (node id `name[*]`).
    pub count: u64,
}

/// Parametrizations of one function expanded one by one; beyond, they are
/// counted (40 stacked two-value `parametrize` are 2^40 tests).
pub const MAX_PARAMETRIZATIONS: u64 = 100_000;

/// pytest's names for tests: `python_classes`, `python_functions`.
pub struct Rules {
    pub python_classes: Vec<String>,
    pub python_functions: Vec<String>,
    pub collect_imported_tests: bool,
}

/// pytest's `_matches_prefix_or_glob_option`.
fn name_matches(name: &str, options: &[String]) -> bool {
    options
        .iter()
        .any(|o| name.starts_with(o.as_str()) || (o.contains(['*', '?', '[']) && fnmatch(name, o)))
}

/// What a module's tests see from outside it.
#[derive(Default)]
pub struct Context<'a> {
    /// The module's own path, for the imports relative to it.
    pub path: Option<&'a Path>,
    /// Fixtures of the conftest.py files above the module, nearest first.
    pub conftest_fixtures: Vec<&'a [Fixture]>,
    /// Where those conftests get fixtures the lint cannot read.
    pub opaque_fixtures: Vec<&'a Unresolved>,
    /// The project's modules, read when a base class is imported from one.
    pub modules: Option<&'a Modules>,
    /// How many imports away from a test module this module is.
    pub depth: u32,
}

pub(super) struct Collector<'a, 't> {
    pub(super) scope: &'a Scope<'t>,
    rules: &'a Rules,
    file: &'a str,
    module_marks: Marks,
    tests: Vec<StaticTest>,
    pub(super) ctx: &'a Context<'a>,
    /// Fixtures defined at the top of the module.
    module_fixtures: Vec<Fixture>,
    /// Where the module gets fixtures the lint cannot read.
    module_opaque: Option<Unresolved>,
    /// Fixtures of the classes a test is in, outermost first.
    class_fixtures: Vec<Vec<Fixture>>,
    /// Class bodies and bases, read once per class (node id).
    pub(super) bodies: RefCell<HashMap<usize, Rc<Vec<Node<'t>>>>>,
    pub(super) bases: RefCell<HashMap<usize, Rc<Vec<Base<'t>>>>>,
}

impl<'t> Collector<'_, 't> {
    /// Add the tests of one function under `chain` (its classes' markers,
    /// innermost first; the module's come last).
    fn function(&mut self, prefix: &str, def: &Def<'t>, chain: &[&Marks], unittest: bool) {
        let mut all = def.marks.clone();
        for marks in chain {
            all.extend((*marks).clone());
        }
        all.extend(self.module_marks.clone());
        let pos = def.pos;
        let base = format!("{prefix}::{}", def.name);
        // pytest parametrizes with fixtures' params before `parametrize` markers.
        let mut params = if unittest {
            Vec::new()
        } else {
            let (params, unseen) = self.fixture_params(def, &all, pos);
            all.unresolved.extend(unseen);
            params
        };
        params.extend(std::mem::take(&mut all.params));
        all.params = params;
        if unittest || all.params.is_empty() {
            self.tests.push(StaticTest {
                nodeid: base,
                pos,
                marks: all.marks,
                unresolved: all.unresolved,
                param_pos: None,
                count: 1,
            });
            return;
        }
        let total = all.params.iter().fold(1u64, |n, p| {
            n.saturating_mul(p.sets.as_ref().map_or(1, |s| s.len() as u64))
        });
        if total > MAX_PARAMETRIZATIONS {
            self.counted(base, pos, all, total);
            return;
        }
        let mut combos = vec![(
            Vec::<String>::new(),
            all.marks.clone(),
            all.unresolved.clone(),
            None,
        )];
        for p in &all.params {
            match &p.sets {
                Some(sets) => {
                    let own = p.has_own_marks();
                    let mut next = Vec::with_capacity(combos.len() * sets.len());
                    for (ids, marks, unresolved, at) in &combos {
                        for set in sets {
                            let mut ids = ids.clone();
                            ids.push(set.id.clone());
                            let mut marks = marks.clone();
                            marks.extend(set.marks.iter().cloned());
                            let mut unresolved = unresolved.clone();
                            unresolved.extend(set.unresolved.iter().cloned());
                            let at = at.or(own.then_some(set.pos));
                            next.push((ids, marks, unresolved, at));
                        }
                    }
                    combos = next;
                }
                None => {
                    for (ids, _, unresolved, _) in &mut combos {
                        ids.push("*".into());
                        unresolved.extend(p.unknown.iter().cloned());
                    }
                }
            }
        }
        for (ids, marks, unresolved, at) in combos {
            self.tests.push(StaticTest {
                nodeid: format!("{base}[{}]", ids.join("-")),
                pos,
                marks,
                unresolved,
                param_pos: at,
                count: 1,
            });
        }
    }

    /// The `params` of the fixtures a test uses, in pytest's order; those of
    /// a conftest.py placed at the test (their markers are spelled there).
    /// Also why fixtures it uses may be out of sight: where the module or a
    /// conftest gets fixtures the lint cannot read.
    fn fixture_params(
        &self,
        def: &Def<'t>,
        all: &Marks,
        pos: Pos,
    ) -> (Vec<Parametrize>, Vec<Unresolved>) {
        let mut levels: Vec<&[Fixture]> = self
            .class_fixtures
            .iter()
            .rev()
            .map(Vec::as_slice)
            .collect();
        levels.push(&self.module_fixtures);
        levels.extend(self.ctx.conftest_fixtures.iter().copied());
        let visible = Visible { levels };
        let direct: HashSet<String> = all.argnames.iter().cloned().collect();
        let params = visible
            .params(&all.usefixtures, &def.args, &direct)
            .into_iter()
            .filter_map(|f| {
                let mut p = f.params.clone()?;
                if let Some(file) = &f.file {
                    placed_at(&mut p, pos, file);
                }
                Some(p)
            })
            .collect();
        let opaque: Vec<&Unresolved> = self
            .module_opaque
            .iter()
            .chain(self.ctx.opaque_fixtures.iter().copied())
            .collect();
        let mut unseen = Vec::new();
        if !opaque.is_empty() {
            for name in visible.missing(&all.usefixtures, &def.args, &direct) {
                for source in &opaque {
                    unseen.push(Unresolved {
                        reason: format!(
                            "fixture `{name}` is not defined where the lint can see it ({} may define it): its params may carry markers",
                            source.reason
                        ),
                        ..(*source).clone()
                    });
                }
            }
        }
        (params, unseen)
    }

    /// Too many parametrizations to expand: one entry that counts them. When
    /// their parameter sets carry no markers of their own they all have the
    /// function's markers, and are checked as one; otherwise which markers
    /// each has is left to collection.
    fn counted(&mut self, base: String, pos: Pos, all: Marks, total: u64) {
        let mut unresolved = all.unresolved;
        for p in &all.params {
            unresolved.extend(p.unknown.iter().cloned());
        }
        if let Some(p) = all.params.iter().find(|p| p.has_own_marks()) {
            let shown = if total == u64::MAX {
                "more than 18446744073709551615".to_string()
            } else {
                total.to_string()
            };
            unresolved.push(Unresolved {
                file: None,
                pos: p.pos,
                reason: format!(
                    "{shown} parametrizations, some with markers of their own: \
                     too many to check one by one (the lint expands up to {MAX_PARAMETRIZATIONS})"
                ),
            });
        }
        self.tests.push(StaticTest {
            nodeid: format!("{base}[*]"),
            pos,
            marks: all.marks,
            unresolved,
            param_pos: None,
            count: total,
        });
    }

    fn class(&mut self, prefix: &str, def: &Def<'t>, chain: &[&Marks]) {
        let Some(class) = def.node else {
            return;
        };
        let nodeid = format!("{prefix}::{}", def.name);
        let kind = self.unittest(class, &mut HashSet::new());
        let test_attr = self.class_attr(class, "__test__");
        if test_attr == Some(false) {
            return;
        }
        let named = name_matches(&def.name, &self.rules.python_classes) || test_attr == Some(true);
        let marks = self.class_marks(class, &mut HashSet::new());
        match kind {
            TestCase::Yes => {
                self.unittest_class(class, &nodeid, &marks, chain);
                return;
            }
            TestCase::Maybe if !named => {
                self.maybe_unittest_class(class, nodeid, &marks);
                return;
            }
            _ => {}
        }
        if !named || self.defines(class, &["__init__", "__new__"]) {
            return;
        }
        let mut inner_chain: Vec<&Marks> = vec![];
        let methods = self.methods(class, &mut HashSet::new());
        let nested = defs(self.scope, &self.body(class), "class_definition", true);
        inner_chain.push(&marks);
        inner_chain.extend_from_slice(chain);
        self.class_fixtures.push(
            methods
                .iter()
                .filter_map(|m| m.as_fixture.clone())
                .collect(),
        );
        for m in &methods {
            if name_matches(&m.name, &self.rules.python_functions) && !m.fixture {
                self.function(&nodeid, m, &inner_chain, false);
            }
        }
        for n in &nested {
            self.class(&nodeid, n, &inner_chain);
        }
        self.class_fixtures.pop();
    }

    /// The tests of a `unittest.TestCase` class: its `test*` methods (else
    /// `runTest`), in name order; no parametrization.
    fn unittest_class(&mut self, class: Node<'t>, nodeid: &str, marks: &Marks, chain: &[&Marks]) {
        let methods = self.methods(class, &mut HashSet::new());
        let mut tests: Vec<&Def<'t>> = methods
            .iter()
            .filter(|m| m.name.starts_with("test"))
            .collect();
        if tests.is_empty() {
            tests = methods.iter().filter(|m| m.name == "runTest").collect();
        }
        tests.sort_by(|a, b| a.name.cmp(&b.name));
        let mut inner_chain: Vec<&Marks> = vec![marks];
        inner_chain.extend_from_slice(chain);
        for m in tests {
            self.function(nodeid, m, &inner_chain, true);
        }
    }

    /// A class pytest does not collect by name that may be a
    /// `unittest.TestCase` (a base is out of sight): one unresolved entry
    /// when it has test methods.
    fn maybe_unittest_class(&mut self, class: Node<'t>, nodeid: String, marks: &Marks) {
        let has_tests = self
            .methods(class, &mut HashSet::new())
            .iter()
            .any(|m| m.name.starts_with("test"));
        if has_tests {
            let why = marks
                .unresolved
                .first()
                .map_or_else(String::new, |u| u.reason.clone());
            self.tests.push(StaticTest {
                nodeid,
                pos: class
                    .child_by_field_id(fields().name.get())
                    .map_or_else(|| Pos::of(class), Pos::of),
                marks: Vec::new(),
                unresolved: vec![Unresolved {
                    reason: format!("may be a unittest.TestCase ({why})"),
                    ..Unresolved::at(class, "")
                }],
                param_pos: None,
                count: 1,
            });
        }
    }
}

/// Put a conftest fixture's parameter sets at the test that uses them: the
/// lint reports a test's findings in its own file.
fn placed_at(p: &mut Parametrize, pos: Pos, file: &Path) {
    p.pos = pos;
    if let Some(u) = &mut p.unknown {
        u.file.get_or_insert_with(|| file.to_path_buf());
    }
    for set in p.sets.iter_mut().flatten() {
        set.pos = pos;
        for m in &mut set.marks {
            m.pos = pos;
        }
        for u in &mut set.unresolved {
            u.file.get_or_insert_with(|| file.to_path_buf());
        }
    }
}

impl<'a, 't> Collector<'a, 't> {
    /// A collector of one module's tests.
    pub(super) fn new(
        scope: &'a Scope<'t>,
        root: Node<'t>,
        rules: &'a Rules,
        file: &'a str,
        ctx: &'a Context<'a>,
    ) -> Self {
        let body = statements(root);
        let mut module_marks = pytestmark(scope, &body);
        if let Some(u) = generate_tests(scope, &body) {
            module_marks.unresolved.push(u);
        }
        Collector {
            scope,
            rules,
            file,
            module_marks,
            tests: Vec::new(),
            ctx,
            module_fixtures: fixtures::module_fixtures(scope, &body),
            module_opaque: fixtures::opaque_source(scope, &body),
            class_fixtures: Vec::new(),
            bodies: RefCell::default(),
            bases: RefCell::default(),
        }
    }
}

/// Every test of a parsed module. `file` is its path relative to the rootdir.
#[cfg(test)]
pub fn collect(src: &[u8], tree: &Tree, file: &str, rules: &Rules) -> Vec<StaticTest> {
    collect_in(src, tree, file, rules, &Context::default())
}

/// Every test of a parsed module, with what it sees from outside it.
pub fn collect_in(
    src: &[u8],
    tree: &Tree,
    file: &str,
    rules: &Rules,
    ctx: &Context<'_>,
) -> Vec<StaticTest> {
    let root = tree.root_node();
    let scope = Scope::new(src, root);
    let body = statements(root);
    let mut c = Collector::new(&scope, root, rules, file, ctx);
    for def in defs(&scope, &body, "function_definition", false) {
        if name_matches(&def.name, &rules.python_functions) && !def.fixture {
            c.function(file, &def, &[], false);
        }
    }
    for def in defs(&scope, &body, "class_definition", false) {
        c.class(file, &def, &[]);
    }
    if rules.collect_imported_tests {
        c.imported(&body);
    }
    c.tests
}

impl Collector<'_, '_> {
    /// Test functions and classes imported from other modules are collected
    /// here too; their markers are out of sight.
    fn imported(&mut self, body: &[Node<'_>]) {
        let src = self.scope.src;
        for stmt in body {
            if stmt.kind() != "import_from_statement" {
                continue;
            }
            let module = stmt
                .child_by_field_id(fields().module_name.get())
                .map_or("", |m| text(m, src));
            if module == "pytest" || is_mark_free_module(module) {
                continue;
            }
            let mut cursor = stmt.walk();
            for name in stmt.children_by_field_id(fields().name, &mut cursor) {
                let bound = match name.kind() {
                    "aliased_import" => name.child_by_field_id(fields().alias.get()),
                    _ => Some(name),
                };
                let Some(bound) = bound else { continue };
                let bound = text(bound, src);
                if name_matches(bound, &self.rules.python_functions)
                    || name_matches(bound, &self.rules.python_classes)
                {
                    self.tests.push(StaticTest {
                        nodeid: format!("{}::{bound}", self.file),
                        pos: Pos::of(name),
                        marks: Vec::new(),
                        unresolved: vec![Unresolved::at(
                            name,
                            format!("`{bound}` is imported from {module} and collected here too: its markers cannot be seen"),
                        )],
                        param_pos: None,
                        count: 1,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::marks::testing::parse;

    fn rules() -> Rules {
        Rules {
            python_classes: vec!["Test".into()],
            python_functions: vec!["test".into()],
            collect_imported_tests: true,
        }
    }

    /// `nodeid -> sorted marker names`, plus whether unresolved.
    fn tests_of(src: &str) -> Vec<(String, Vec<String>, bool)> {
        let tree = parse(src);
        collect(src.as_bytes(), &tree, "t.py", &rules())
            .into_iter()
            .map(|t| {
                let mut names: Vec<String> = t.marks.into_iter().map(|m| m.name).collect();
                names.sort();
                names.dedup();
                (t.nodeid, names, !t.unresolved.is_empty())
            })
            .collect()
    }

    fn marks(src: &str, nodeid: &str) -> Vec<String> {
        tests_of(src)
            .into_iter()
            .find(|t| t.0 == nodeid)
            .unwrap_or_else(|| panic!("{nodeid} not in {:?}", tests_of(src)))
            .1
    }

    #[test]
    fn function_decorators_and_module_pytestmark() {
        let src = "import pytest\npytestmark = pytest.mark.nightly\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_a(): pass\ndef helper(): pass\n";
        assert_eq!(
            tests_of(src),
            [(
                "t.py::test_a".to_string(),
                vec!["gpu_0".to_string(), "nightly".into(), "unit".into()],
                false
            )]
        );
        let src = "import pytest\npytestmark = [pytest.mark.nightly]\npytestmark += [pytest.mark.unit]\npytestmark.append(pytest.mark.gpu_1)\ndef test_a(): pass\n";
        assert_eq!(marks(src, "t.py::test_a"), ["gpu_1", "nightly", "unit"]);
    }

    #[test]
    fn class_markers_reach_methods_nested_classes_and_subclasses() {
        let src = r"
import pytest

@pytest.mark.nightly
class TestBase:
    pytestmark = [pytest.mark.unit]

    @pytest.mark.gpu_0
    def test_base(self): pass

    class TestInner:
        @pytest.mark.gpu_1
        def test_inner(self): pass

@pytest.mark.e2e
class TestChild(TestBase):
    def test_child(self): pass

class Helper:
    def test_not_collected(self): pass

class TestWithInit:
    def __init__(self): pass
    def test_x(self): pass
";
        assert_eq!(
            marks(src, "t.py::TestBase::test_base"),
            ["gpu_0", "nightly", "unit"]
        );
        assert_eq!(
            marks(src, "t.py::TestBase::TestInner::test_inner"),
            ["gpu_1", "nightly", "unit"]
        );
        assert_eq!(
            marks(src, "t.py::TestChild::test_child"),
            ["e2e", "nightly", "unit"]
        );
        // Inherited methods are collected in the subclass with its markers too.
        assert_eq!(
            marks(src, "t.py::TestChild::test_base"),
            ["e2e", "gpu_0", "nightly", "unit"]
        );
        let ids: Vec<String> = tests_of(src).into_iter().map(|t| t.0).collect();
        assert!(
            !ids.iter()
                .any(|i| i.contains("Helper") || i.contains("TestWithInit")),
            "{ids:?}"
        );
    }

    #[test]
    fn unittest_classes_are_collected_whatever_their_name() {
        let src = r"
import unittest
from unittest import TestCase
import pytest

@pytest.mark.nightly
class Checks(unittest.TestCase):
    @pytest.mark.unit
    def test_b(self): pass
    def test_a(self): pass
    def helper(self): pass

class More(TestCase):
    def runTest(self): pass

class Derived(Checks):
    pass
";
        let ids: Vec<String> = tests_of(src).into_iter().map(|t| t.0).collect();
        assert_eq!(
            ids,
            [
                "t.py::Checks::test_a",
                "t.py::Checks::test_b",
                "t.py::More::runTest",
                "t.py::Derived::test_a",
                "t.py::Derived::test_b"
            ]
        );
        assert_eq!(marks(src, "t.py::Checks::test_b"), ["nightly", "unit"]);
        assert_eq!(marks(src, "t.py::Derived::test_a"), ["nightly"]);
    }

    #[test]
    fn parametrizations_beyond_the_limit_are_counted_not_expanded() {
        use std::fmt::Write;
        // 2^40 ids once reached 12 GB before anything was reported.
        let stacked = |n: usize, marked: bool| {
            let mut src = String::from("import pytest\n@pytest.mark.unit\n");
            for i in 0..n {
                if marked && i == 0 {
                    src.push_str("@pytest.mark.parametrize('p0', [pytest.param(0, marks=pytest.mark.gpu_1), 1])\n");
                } else {
                    let _ = writeln!(src, "@pytest.mark.parametrize('p{i}', [0, 1])");
                }
            }
            src.push_str("def test_p(): pass\n");
            let tree = parse(&src);
            collect(src.as_bytes(), &tree, "t.py", &rules())
        };
        let tests = stacked(40, false);
        assert_eq!(tests.len(), 1);
        assert_eq!(tests[0].nodeid, "t.py::test_p[*]");
        assert_eq!(tests[0].count, 1 << 40);
        assert_eq!(tests[0].marks.len(), 41, "unit and the 40 parametrize");
        assert!(tests[0].unresolved.is_empty());
        // Sets with markers of their own: counted, and left to collection.
        let tests = stacked(40, true);
        assert_eq!((tests.len(), tests[0].count), (1, 1 << 40));
        assert!(
            tests[0].unresolved[0]
                .reason
                .starts_with("1099511627776 parametrizations, some with markers"),
            "{:?}",
            tests[0].unresolved
        );
        // At the limit and below, every parametrization is its own test.
        let tests = stacked(16, true);
        assert_eq!(tests.len(), 1 << 16);
        assert!(tests.iter().all(|t| t.count == 1));
        assert_eq!(stacked(80, false)[0].count, u64::MAX);
    }

    #[test]
    fn parameter_sets_become_tests_with_their_own_markers() {
        let src = r#"
import pytest as pt
from pytest import param

@pt.mark.parametrize("b", [1, 2])
@pt.mark.parametrize("a", [param("x", marks=pt.mark.slow), "y"])
def test_p(a, b): pass
"#;
        let t = tests_of(src);
        let ids: Vec<&str> = t.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(
            ids,
            [
                "t.py::test_p[x-1]",
                "t.py::test_p[x-2]",
                "t.py::test_p[y-1]",
                "t.py::test_p[y-2]"
            ]
        );
        assert_eq!(t[0].1, ["parametrize", "slow"]);
        assert_eq!(t[2].1, ["parametrize"]);
    }

    #[test]
    fn unresolvable_markers_mark_the_test_unresolved() {
        for src in [
            "import pytest\n@getattr(pytest.mark, NAME)\ndef test_a(): pass\n",
            "from helpers import gpu\n@gpu\ndef test_a(): pass\n",
            "import pytest\ndef marks():\n    return [pytest.mark.x]\npytestmark = marks()\ndef test_a(): pass\n",
            "import pytest\n@pytest.mark.parametrize('x', [pytest.param(1, marks=choose())])\ndef test_a(x): pass\n",
            "from base import Base\nclass TestA(Base):\n    def test_a(self): pass\n",
            "import pytest\ndef pytest_generate_tests(metafunc):\n    metafunc.parametrize('x', [pytest.param(1, marks=pytest.mark.slow)])\ndef test_a(x): pass\n",
        ] {
            let t = tests_of(src);
            assert_eq!(t.len(), 1, "{src}");
            assert!(t[0].2, "{src}");
        }
        // Imported tests are collected here too, unseen.
        let t = tests_of("from other_tests import test_shared, TestShared\n");
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.2));
    }

    #[test]
    fn fixtures_helpers_and_disabled_classes_are_no_tests() {
        let src = r"
import pytest
@pytest.fixture
def test_data(): return 1
class TestOff:
    __test__ = False
    def test_x(self): pass
def test_real(test_data): pass
";
        let ids: Vec<String> = tests_of(src).into_iter().map(|t| t.0).collect();
        assert_eq!(ids, ["t.py::test_real"]);
    }
}

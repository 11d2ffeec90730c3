//! What a `conftest.py` may do to the markers of the tests below it: hooks
//! that call `item.add_marker(...)` or touch `own_markers`, and
//! `pytest_generate_tests` that parametrizes with markers. Markers a hook
//! adds that cannot change the rules' outcome (`skip`, `xfail`, registered
//! foreign markers) are harmless; anything else leaves those tests to
//! collection-time validation.

use std::path::Path;

use tree_sitter::{Node, Tree};

use crate::lint::grammar::fields;
use crate::lint::known::Unresolved;
use crate::lint::literal::{literal, text, Literal};
use crate::lint::source::{children, statements, Scope};

/// Every call in a tree (walked without recursion: files may nest deeply).
fn calls<'t>(root: Node<'t>, out: &mut Vec<Node<'t>>) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.kind() == "call" {
            out.push(node);
        }
        stack.extend(children(node));
    }
}

/// The function definition a node is written in, if any.
fn enclosing_function(node: Node<'_>) -> Option<Node<'_>> {
    let mut current = node.parent();
    while let Some(n) = current {
        if n.kind() == "function_definition" {
            return Some(n);
        }
        current = n.parent();
    }
    None
}

/// Every node of a function's own body, not of the functions, lambdas and
/// classes defined in it (their names are theirs).
fn own_nodes<'t>(function: Node<'t>) -> Vec<Node<'t>> {
    let mut out = Vec::new();
    let mut stack: Vec<Node<'t>> = function
        .child_by_field_id(fields().body.get())
        .into_iter()
        .collect();
    while let Some(node) = stack.pop() {
        if matches!(
            node.kind(),
            "function_definition" | "class_definition" | "lambda"
        ) {
            continue;
        }
        out.push(node);
        stack.extend(children(node));
    }
    out
}

/// What a name means inside a function.
enum Local<'t> {
    /// Not bound in the function: a module-level (or builtin) name.
    Global,
    /// Bound only by plain assignments: the values assigned.
    Values(Vec<Node<'t>>),
    /// A parameter, a loop or `with` target, or bound some other way.
    Unknown,
}

/// How `name` is bound in a function's own body.
fn local<'t>(function: Node<'t>, name: &str, src: &[u8]) -> Local<'t> {
    if function
        .child_by_field_name("parameters")
        .is_some_and(|p| mentions(p, name, src))
    {
        return Local::Unknown;
    }
    let mut values = Vec::new();
    for node in own_nodes(function) {
        let target = match node.kind() {
            "assignment" => {
                let left = node.child_by_field_id(fields().left.get());
                let right = node.child_by_field_id(fields().right.get());
                if let (Some(l), Some(r)) = (left, right) {
                    if l.kind() == "identifier" && text(l, src) == name {
                        // `a = b = value`: the value is the innermost right side.
                        let mut value = r;
                        while value.kind() == "assignment" {
                            match value.child_by_field_id(fields().right.get()) {
                                Some(v) => value = v,
                                None => break,
                            }
                        }
                        values.push(value);
                        continue;
                    }
                }
                left
            }
            "augmented_assignment" | "for_statement" | "for_in_clause" => {
                node.child_by_field_id(fields().left.get())
            }
            "named_expression" => node.child_by_field_id(fields().name.get()),
            "as_pattern" => node.child_by_field_id(fields().alias.get()),
            "global_statement" | "nonlocal_statement" => Some(node),
            _ => None,
        };
        if target.is_some_and(|t| mentions(t, name, src)) {
            return Local::Unknown;
        }
    }
    if values.is_empty() {
        Local::Global
    } else {
        Local::Values(values)
    }
}

/// Whether an identifier `name` occurs in a node.
fn mentions(node: Node<'_>, name: &str, src: &[u8]) -> bool {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.kind() == "identifier" && text(n, src) == name {
            return true;
        }
        stack.extend(children(n));
    }
    false
}

/// Whether what a hook passes to `add_marker` can change no rule: a marker
/// (or marker name) `inert` accepts, followed through the hook's own local
/// names and both branches of `a if c else b`.
fn harmless<'t>(
    scope: &Scope<'t>,
    arg: Node<'t>,
    function: Option<Node<'t>>,
    inert: &dyn Fn(&str) -> bool,
    depth: u32,
) -> bool {
    if depth > 8 {
        return false;
    }
    let src = scope.src;
    match arg.kind() {
        "parenthesized_expression" => children(arg)
            .first()
            .is_some_and(|inner| harmless(scope, *inner, function, inert, depth + 1)),
        "conditional_expression" => {
            // `a if condition else b`: the branches are the first and last children.
            let parts = children(arg);
            match (parts.first(), parts.last()) {
                (Some(a), Some(b)) if parts.len() == 3 => {
                    harmless(scope, *a, function, inert, depth + 1)
                        && harmless(scope, *b, function, inert, depth + 1)
                }
                _ => false,
            }
        }
        "identifier" => {
            // A local name of the hook: every value it is given must be harmless.
            match function.map_or(Local::Global, |f| local(f, text(arg, src), src)) {
                Local::Values(values) => values
                    .into_iter()
                    .all(|v| harmless(scope, v, function, inert, depth + 1)),
                Local::Unknown => false,
                Local::Global => marks_harmless(scope, arg, inert),
            }
        }
        _ => {
            if let Some(Literal::Str(name)) = literal(arg, src) {
                return inert(&name);
            }
            marks_harmless(scope, arg, inert)
        }
    }
}

/// Whether markers read at module level are all inert.
fn marks_harmless<'t>(scope: &Scope<'t>, arg: Node<'t>, inert: &dyn Fn(&str) -> bool) -> bool {
    let marks = scope.mark_list(arg, 0);
    marks.unresolved.is_empty() && marks.marks.iter().all(|m| inert(&m.name))
}

/// Methods that change a list in place.
const MUTATORS: &[&str] = &[
    "append",
    "extend",
    "insert",
    "remove",
    "pop",
    "clear",
    "sort",
    "reverse",
    "__setitem__",
    "__delitem__",
    "__iadd__",
];

/// Whether the value of `expr` (an `own_markers` list) is changed where it
/// is used: mutated, assigned to, deleted from, or bound to a local name
/// that is mutated later. Reading it (`for m in ...`, `any(...)`, `len(...)`)
/// changes nothing.
fn is_written(expr: Node<'_>, src: &[u8], depth: u32) -> bool {
    let Some(parent) = expr.parent() else {
        return false;
    };
    if depth > 4 {
        // Aliases of aliases: too far to follow, so take it as changed.
        return true;
    }
    let is = |field: u16, n: Node<'_>| {
        parent
            .child_by_field_id(field)
            .is_some_and(|c| c.id() == n.id())
    };
    match parent.kind() {
        "parenthesized_expression" => is_written(parent, src, depth),
        "attribute" if is(fields().object.get(), expr) => {
            let method = parent
                .child_by_field_id(fields().attribute.get())
                .map_or("", |a| text(a, src));
            MUTATORS.contains(&method)
        }
        "subscript" if parent.child_by_field_name("value").map(|v| v.id()) == Some(expr.id()) => {
            // `own_markers[0] = ...`, `del own_markers[0]`.
            is_target(parent)
        }
        "assignment" if is(fields().right.get(), expr) => {
            // `markers = item.own_markers`, then `markers.append(...)`.
            let Some(left) = parent.child_by_field_id(fields().left.get()) else {
                return false;
            };
            if left.kind() != "identifier" {
                return false;
            }
            let alias = text(left, src);
            let body = enclosing_function(parent).map_or_else(
                || {
                    let mut root = parent;
                    while let Some(p) = root.parent() {
                        root = p;
                    }
                    vec![root]
                },
                |f| vec![f],
            );
            let mut stack = body;
            while let Some(n) = stack.pop() {
                let rebound = n.parent().is_some_and(|p| {
                    p.kind() == "assignment"
                        && p.child_by_field_id(fields().left.get())
                            .is_some_and(|l| l.id() == n.id())
                });
                if n.kind() == "identifier"
                    && text(n, src) == alias
                    && !rebound
                    && is_written(n, src, depth + 1)
                {
                    return true;
                }
                stack.extend(children(n));
            }
            false
        }
        _ => is_target(expr),
    }
}

/// Whether a node is (part of) what an assignment or `del` writes to.
fn is_target(node: Node<'_>) -> bool {
    let mut child = node;
    let mut current = node.parent();
    while let Some(p) = current {
        match p.kind() {
            "assignment" | "augmented_assignment" => {
                return p
                    .child_by_field_id(fields().left.get())
                    .is_some_and(|l| l.id() == child.id());
            }
            "delete_statement" => return true,
            "pattern_list" | "tuple_pattern" | "list_pattern" | "expression_list" => {}
            _ => return false,
        }
        child = p;
        current = p.parent();
    }
    false
}

/// The places a conftest changes the `own_markers` of tests.
fn own_markers_writes<'t>(root: Node<'t>, src: &[u8]) -> Vec<Node<'t>> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        stack.extend(children(node));
        match node.kind() {
            "attribute"
                if node
                    .child_by_field_id(fields().attribute.get())
                    .is_some_and(|a| text(a, src) == "own_markers")
                    && is_written(node, src, 0) =>
            {
                out.push(node);
            }
            "call" => {
                let function = node
                    .child_by_field_id(fields().function.get())
                    .map_or("", |f| text(f, src));
                if !matches!(function, "getattr" | "setattr") {
                    continue;
                }
                let args = node
                    .child_by_field_id(fields().arguments.get())
                    .map(children)
                    .unwrap_or_default();
                let named = args.get(1).is_some_and(
                    |a| matches!(literal(*a, src), Some(Literal::Str(s)) if s == "own_markers"),
                );
                if named && (function == "setattr" || is_written(node, src, 0)) {
                    out.push(node);
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(Node::start_byte);
    out
}

/// A call's text on one line, cut at 60 characters (for messages).
fn one_line(node: Node<'_>, src: &[u8]) -> String {
    text(node, src)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(60)
        .collect()
}

/// The reasons a conftest's hooks make its tests' markers unknown.
/// `inert(name)` says whether adding that marker can change no rule.
pub fn effects(
    path: &Path,
    src: &[u8],
    tree: &Tree,
    inert: &dyn Fn(&str) -> bool,
) -> Vec<Unresolved> {
    let root = tree.root_node();
    let scope = Scope::new(src, root);
    let mut out = Vec::new();
    let mut found = Vec::new();
    calls(root, &mut found);
    for call in found {
        let Some(function) = call.child_by_field_id(fields().function.get()) else {
            continue;
        };
        let method = function
            .child_by_field_id(fields().attribute.get())
            .map_or("", |a| text(a, src));
        if function.kind() != "attribute" || !matches!(method, "add_marker" | "applymarker") {
            continue;
        }
        let arg = call
            .child_by_field_id(fields().arguments.get())
            .and_then(|a| {
                children(a)
                    .into_iter()
                    .find(|c| c.kind() != "keyword_argument")
            });
        let hook = enclosing_function(call);
        if !arg.is_some_and(|arg| harmless(&scope, arg, hook, inert, 0)) {
            out.push(Unresolved::at(
                call,
                format!(
                    "a hook in this conftest.py adds markers: `{}`",
                    one_line(call, src)
                ),
            ));
        }
    }
    if let Some(mut u) = crate::lint::defs::generate_tests(&scope, &statements(root)) {
        u.reason = "pytest_generate_tests in this conftest.py may parametrize with markers".into();
        out.push(u);
    }
    for write in own_markers_writes(root, src) {
        let at = write
            .parent()
            .filter(|p| p.kind() == "attribute")
            .and_then(|p| p.parent())
            .filter(|p| p.kind() == "call")
            .unwrap_or(write);
        out.push(Unresolved::at(
            at,
            format!(
                "this conftest.py changes `own_markers` of tests: `{}`",
                one_line(at, src)
            ),
        ));
    }
    for u in &mut out {
        u.file = Some(path.to_path_buf());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::marks::testing::parse;

    fn reasons(src: &str) -> Vec<String> {
        let tree = parse(src);
        let inert = |name: &str| matches!(name, "skip" | "xfail" | "asyncio");
        effects(Path::new("conftest.py"), src.as_bytes(), &tree, &inert)
            .into_iter()
            .map(|u| u.reason)
            .collect()
    }

    #[test]
    fn hooks_adding_rule_markers_make_tests_unresolved() {
        let src = "import pytest\ndef pytest_collection_modifyitems(items):\n    for item in items:\n        item.add_marker(pytest.mark.unit)\n";
        assert_eq!(reasons(src).len(), 1);
        assert!(reasons(src)[0].contains("adds markers"));
        let src = "def pytest_itemcollected(item):\n    item.add_marker(choose(item))\n";
        assert_eq!(reasons(src).len(), 1);
        let src = "def pytest_itemcollected(item):\n    item.add_marker('nightly')\n";
        assert_eq!(reasons(src).len(), 1);
    }

    #[test]
    fn harmless_hooks_and_plain_fixtures_change_nothing() {
        let src = "import pytest\n@pytest.fixture\ndef engine(): return 1\ndef pytest_collection_modifyitems(items):\n    for i in items:\n        i.add_marker(pytest.mark.skip(reason='x'))\n        i.add_marker('xfail')\n";
        assert!(reasons(src).is_empty(), "{:?}", reasons(src));
    }

    #[test]
    fn markers_are_followed_through_a_hooks_local_names() {
        let src = "import pytest\ndef pytest_collection_modifyitems(config, items):\n    skip = pytest.mark.skip(reason='x')\n    other = skip if config else pytest.mark.xfail\n    for item in items:\n        item.add_marker(skip)\n        item.add_marker(other)\n        item.add_marker(pytest.mark.asyncio)\n";
        assert!(reasons(src).is_empty(), "{:?}", reasons(src));
        // A local bound to a rule marker, a parameter, a loop variable: unknown or changing.
        for src in [
            "import pytest\ndef pytest_itemcollected(item):\n    m = pytest.mark.unit\n    item.add_marker(m)\n",
            "import pytest\ndef pytest_itemcollected(item):\n    m = pytest.mark.skip\n    if item:\n        m = pytest.mark.nightly\n    item.add_marker(m)\n",
            "def pytest_itemcollected(item, m):\n    item.add_marker(m)\n",
            "def pytest_itemcollected(item):\n    for m in NAMES:\n        item.add_marker(m)\n",
        ] {
            assert_eq!(reasons(src).len(), 1, "{src}");
        }
        // A module-level name is read as before.
        let src = "import pytest\nSKIP = pytest.mark.skip\ndef pytest_itemcollected(item):\n    item.add_marker(SKIP)\n";
        assert!(reasons(src).is_empty());
    }

    #[test]
    fn only_writes_to_own_markers_count() {
        for src in [
            "def pytest_itemcollected(item):\n    marks = getattr(item, 'own_markers', [])\n    if any(m.name == 'x' for m in marks): pass\n",
            "def pytest_itemcollected(item):\n    names = [m.name for m in item.own_markers]\n    n = len(item.own_markers)\n",
        ] {
            assert!(reasons(src).is_empty(), "{src}: {:?}", reasons(src));
        }
        for src in [
            "def pytest_itemcollected(item):\n    item.own_markers.append(M)\n",
            "def pytest_itemcollected(item):\n    item.own_markers = []\n",
            "def pytest_itemcollected(item):\n    item.own_markers += [M]\n",
            "def pytest_itemcollected(item):\n    del item.own_markers[0]\n",
            "def pytest_itemcollected(item):\n    item.own_markers[0] = M\n",
            "def pytest_itemcollected(item):\n    setattr(item, 'own_markers', [])\n",
            "def pytest_itemcollected(item):\n    getattr(item, 'own_markers').extend([M])\n",
            "def pytest_itemcollected(item):\n    marks = item.own_markers\n    marks.insert(0, M)\n",
        ] {
            let r = reasons(src);
            assert_eq!(r.len(), 1, "{src}: {r:?}");
            assert!(r[0].contains("changes `own_markers`"), "{src}: {r:?}");
        }
    }

    #[test]
    fn generate_tests_with_marks_is_reported() {
        let src = "import pytest\ndef pytest_generate_tests(metafunc):\n    metafunc.parametrize('x', [pytest.param(1, marks=pytest.mark.gpu_1)])\n";
        assert!(reasons(src)
            .iter()
            .any(|r| r.contains("pytest_generate_tests")));
        let src = "def pytest_generate_tests(metafunc):\n    metafunc.parametrize('x', [1, 2])\n";
        assert!(reasons(src).is_empty());
    }
}
